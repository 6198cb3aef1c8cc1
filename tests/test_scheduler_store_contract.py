"""The job-store contract exported from ferrotick.scheduler: the shipped stores
implement every operation of JobStore, and a claim answers a Claim."""

from __future__ import annotations

import inspect
import time

import pytest

from ferrotick.scheduler import (
    BaseJobStore,
    Claim,
    ClaimResult,
    JobStore,
    RedisJobStore,
    SQLiteJobStore,
)

OPERATIONS = [
    name
    for name, member in vars(JobStore).items()
    if not name.startswith("_") and (callable(member) or isinstance(member, property))
]


def test_the_contract_names_every_operation():
    assert set(OPERATIONS) >= {
        "label",
        "stats",
        "open",
        "close",
        "load_jobs",
        "add",
        "replace",
        "update",
        "remove",
        "claim",
        "complete",
    }


@pytest.mark.parametrize("store_type", [SQLiteJobStore, RedisJobStore])
def test_the_persistent_stores_implement_the_contract(store_type):
    assert issubclass(store_type, BaseJobStore)
    assert store_type.persistent is True
    for name in OPERATIONS:
        ours = getattr(store_type, name)
        # overridden where BaseJobStore only raises NotImplementedError
        if name in ("add", "replace", "update", "remove", "claim", "complete", "load_jobs"):
            assert ours is not getattr(BaseJobStore, name), name
        contract = getattr(JobStore, name)
        if callable(contract):
            assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(contract), name
            assert list(inspect.signature(ours).parameters) == list(
                inspect.signature(contract).parameters
            ), name


def test_claim_results_are_ints_as_stores_send_them():
    assert ClaimResult.WON == 1 and ClaimResult.TAKEN == 0
    assert [ClaimResult(v) for v in (-1, -2, -3)] == [
        ClaimResult.GONE,
        ClaimResult.PAUSED,
        ClaimResult.RESET,
    ]


@pytest.mark.asyncio
async def test_a_claim_answers_a_claim(tmp_path):
    store = SQLiteJobStore(tmp_path / "jobs.db")
    async with store:
        created, _, _ = await store.add("j", {"v": 1}, None, False)
        assert created
        now = time.time()
        won = await store.claim("j", now, "me", 60.0, now + 1)
        assert won == Claim(ClaimResult.WON, "", [])
        assert won.result is ClaimResult.WON
        taken = await store.claim("j", now, "other", 60.0, now + 1)
        assert (taken.result, taken.holder) == (ClaimResult.TAKEN, "me")
        await store.complete("j", now, now, 0.1, False)
        await store.remove("j")
        assert (await store.claim("j", now + 1, "me", 60.0, None)).result is ClaimResult.GONE
        assert store.stats()["won"] == 1
