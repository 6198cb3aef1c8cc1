"""Job stores: where jobs live, and the leases that make each firing run once.

This module holds the contract of a store (``JobStore``, ``Claim``,
``ClaimResult``), their common base ``BaseJobStore`` and ``MemoryJobStore``;
the persistent stores are in ``_sqlite`` and ``_redis``, the definitions they keep
in ``_serialize``.

``MemoryJobStore`` (the default) keeps jobs in the process's memory.
``SQLiteJobStore`` (a file, for one host) and ``RedisJobStore`` persist job
definitions and run state, so that a restarted process resumes its schedule and
several processes (workers, replicas) share one schedule: every process computes
the same nominal fire times from the trigger, claims ``(job id, nominal time)``
before running it, and only the process that wins the claim runs it.

A claim succeeds only if no firing of the job at that nominal time *or later* has
been claimed (a per-job high-water mark, updated atomically with the claim), so a
firing is never run twice, even by a process whose clock lags or which comes back
after the lease expired. The lease (Redis ``SET NX PX``; a unique row in SQLite)
says who holds the firing and until when: a holder that dies mid-run leaves its
lease to expire, the firing is not retried (at most once), and the next claim of
the job counts it as lost.

Stored definitions: the callable by reference (``"module:qualname"``), ``args`` and
``kwargs`` pickled (protocol 4, base64), the trigger and the job options as JSON.
A store is therefore as trusted as the code that runs the jobs.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

from .._core import SchedulerError

__all__ = ["BaseJobStore", "Claim", "ClaimResult", "JobStore", "MemoryJobStore"]

logger = logging.getLogger("ferrotick.scheduler")


class ClaimResult(enum.IntEnum):
    """The answer of a job store to a claim of one firing."""

    WON = 1  # this process runs the firing
    TAKEN = 0  # claimed by another process (or a later firing was)
    GONE = -1  # the job is no longer in the store
    PAUSED = -2  # the job is paused in the store
    RESET = -3  # the store lost its data (a Redis restarted without persistence)


class Claim(NamedTuple):
    """A claim's outcome: its result, the holder of the firing when TAKEN (``""``
    when unknown), and the firings of the job found lost on the way: ``(nominal
    time, owner)`` of claims whose lease ran out before they completed."""

    result: ClaimResult
    holder: str
    lost: list[tuple[float, str]]


# a stored job: (definition, state) -- see JobStore.load_jobs
StoredJob = tuple[dict[str, Any], dict[str, Any]]


class JobStore(Protocol):
    """The contract of a job store, for custom stores.

    A store subclasses BaseJobStore (which keeps its statistics and outage state:
    wrap each call of the backend in ``_guard`` and count each claim with
    ``_count_claim``), sets ``persistent = True`` and implements the coroutines
    below. A definition is a JSON-able dict (see ``_serialize``); a state is a dict
    with next_fire, claimed (the last claimed nominal time), claimed_by, last_run,
    last_duration, runs, errors, lost and paused. Times are Unix seconds; a firing
    is keyed by its nominal time in integer microseconds (``fire_key``). Every
    process computes the same nominal times, and ``claim`` is where they agree:
    it must be atomic, and win only when no firing of the job at that nominal time
    or later has been claimed (a per-job high-water mark moved with the claim).
    """

    persistent: bool

    @property
    def label(self) -> str:
        """How logs and errors name the store (no secrets)."""
        ...

    def stats(self) -> dict[str, Any]: ...

    async def open(self) -> None:
        """Connects; reference-counted, one ``close`` per ``open``."""
        ...

    async def close(self) -> None: ...

    async def load_jobs(self) -> dict[str, StoredJob]:
        """``{job id: (definition, state)}`` of every stored job."""
        ...

    async def add(
        self, job_id: str, definition: dict[str, Any], next_fire: float | None, paused: bool
    ) -> tuple[bool, dict[str, Any], dict[str, Any]]:
        """Stores the job unless one of its id is stored: (created, the stored
        definition, the stored state)."""
        ...

    async def replace(
        self, job_id: str, definition: dict[str, Any], next_fire: float | None, paused: bool
    ) -> None:
        """Stores the job's definition, next fire time and paused flag over the
        stored ones, keeping its run state."""
        ...

    async def update(self, job_id: str, **fields: Any) -> None:
        """Sets ``paused`` (bool) and/or ``next_fire`` (float or None)."""
        ...

    async def remove(self, job_id: str) -> None: ...

    async def claim(
        self, job_id: str, fire: float, owner: str, lease: float, next_fire: float | None
    ) -> Claim:
        """Claims the firing at nominal time ``fire`` for ``owner`` for ``lease``
        seconds, and moves the job's next fire time to ``next_fire``; claims whose
        lease ran out before they completed are marked lost and returned."""
        ...

    async def complete(
        self, job_id: str, fire: float, last_run: float, duration: float, error: bool
    ) -> None:
        """Records the end of a claimed run (releasing its lease) in the job's state."""
        ...


def fire_key(nominal: float) -> int:
    """The claim key of a nominal fire time: integer microseconds."""
    return round(nominal * 1e6)


class _Batcher:
    """Collects the operations submitted during one loop iteration (and while a
    batch is in flight) and sends them as one batch: one round trip to Redis, one
    transaction in SQLite. Order is kept."""

    def __init__(self, run: Callable[[list[Any]], Awaitable[list[Any]]]) -> None:
        self._run = run
        self._queue: list[tuple[Any, asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None

    def submit(self, op: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.append((op, fut))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain(), name="ferrotick-jobstore")
        return fut

    async def _drain(self) -> None:
        await asyncio.sleep(0)
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                results = await self._run([op for op, _ in batch])
            except asyncio.CancelledError:
                for _, f in batch:
                    f.cancel()
                raise
            except Exception as e:
                for _, f in batch:
                    if not f.done():
                        f.set_exception(e)
                continue
            for (_, f), r in zip(batch, results, strict=True):
                if f.done():
                    continue
                if isinstance(r, BaseException):
                    f.set_exception(r)
                else:
                    f.set_result(r)

    async def flush(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        for _, f in self._queue:
            f.cancel()
        self._queue = []


class BaseJobStore:
    """Base of job stores: statistics, outage bookkeeping and reference-counted
    open/close. ``persistent`` stores share jobs between processes and across
    restarts, and implement the operations of ``JobStore``; the memory store does
    neither."""

    persistent = False

    def __init__(self) -> None:
        self._stats = {
            "claims": 0,
            "won": 0,
            "claimed_elsewhere": 0,
            "lost": 0,
            "errors": 0,
            "outages": 0,
        }
        self._available = True
        self._opened = 0

    @property
    def label(self) -> str:
        return type(self).__name__

    def stats(self) -> dict[str, Any]:
        """Claims made and won, claims lost to other processes, lost firings
        observed, failed store calls, outages (transitions to unreachable) and
        whether the store is reachable now."""
        return {**self._stats, "available": self._available}

    async def open(self) -> None:
        """Connects (reference-counted: one ``close()`` per ``open()``)."""
        self._opened += 1

    async def close(self) -> None:
        self._opened = max(0, self._opened - 1)

    async def __aenter__(self) -> BaseJobStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{self.label}()"

    # -- bookkeeping of the outage state -------------------------------------------------

    def _failed(self, e: BaseException) -> SchedulerError:
        self._stats["errors"] += 1
        err = SchedulerError(f"job store {self.label}: {self._describe_error(e)}")
        if self._available:
            self._available = False
            self._stats["outages"] += 1
            logger.warning("job store %s is unreachable: %s", self.label, err)
        return err

    def _succeeded(self) -> None:
        if not self._available:
            self._available = True
            logger.warning("job store %s is reachable again", self.label)

    def _describe_error(self, e: BaseException) -> str:
        return f"{type(e).__name__}: {e}"

    async def _guard(self, aw: Awaitable[Any]) -> Any:
        try:
            r = await aw
        except asyncio.CancelledError:
            raise
        except Exception as e:
            raise self._failed(e) from None
        self._succeeded()
        return r

    # -- the operations of a persistent store (see JobStore) ---------------------------

    async def load_jobs(self) -> dict[str, StoredJob]:
        """``{job id: (definition, state)}``."""
        return {}

    async def job_states(self) -> dict[str, dict[str, Any]]:
        """The shared run state of every stored job: next_fire, claimed (the last
        claimed nominal time), claimed_by, last_run, last_duration, runs, errors,
        lost, paused."""
        return {jid: state for jid, (_, state) in (await self.load_jobs()).items()}

    async def add(
        self, job_id: str, definition: dict[str, Any], next_fire: float | None, paused: bool
    ) -> tuple[bool, dict[str, Any], dict[str, Any]]:
        raise NotImplementedError

    async def replace(
        self, job_id: str, definition: dict[str, Any], next_fire: float | None, paused: bool
    ) -> None:
        raise NotImplementedError

    async def update(self, job_id: str, **fields: Any) -> None:
        raise NotImplementedError

    async def remove(self, job_id: str) -> None:
        raise NotImplementedError

    async def claim(
        self, job_id: str, fire: float, owner: str, lease: float, next_fire: float | None
    ) -> Claim:
        raise NotImplementedError

    async def complete(
        self, job_id: str, fire: float, last_run: float, duration: float, error: bool
    ) -> None:
        raise NotImplementedError

    def _count_claim(self, result: Claim) -> None:
        s = self._stats
        s["claims"] += 1
        if result[0] == ClaimResult.WON:
            s["won"] += 1
        elif result[0] == ClaimResult.TAKEN:
            s["claimed_elsewhere"] += 1
        s["lost"] += len(result[2])


class _BatchedJobStore(BaseJobStore):
    """A store whose claims and completions go through a `_Batcher` (one round
    trip to Redis, one SQLite transaction per loop iteration)."""

    _batcher: _Batcher | None = None

    async def claim(
        self, job_id: str, fire: float, owner: str, lease: float, next_fire: float | None
    ) -> Claim:
        if self._batcher is None:
            raise SchedulerError(f"job store {self.label}: not open")
        r = await self._guard(
            self._batcher.submit(("claim", job_id, fire_key(fire), owner, lease, next_fire))
        )
        self._count_claim(r)
        return r  # type: ignore[no-any-return]

    async def complete(
        self, job_id: str, fire: float, last_run: float, duration: float, error: bool
    ) -> None:
        if self._batcher is None:
            return
        await self._guard(
            self._batcher.submit(("complete", job_id, fire_key(fire), last_run, duration, error))
        )


class MemoryJobStore(BaseJobStore):
    """Jobs in this process only (the default): nothing is shared or kept."""


def _state_from(row: dict[str, Any]) -> dict[str, Any]:
    def num(v: Any) -> float | None:
        return None if v is None or v == "" else float(v)

    claimed = row.get("claimed")
    return {
        "next_fire": num(row.get("next_fire")),
        "claimed": None if claimed in (None, "") else int(claimed) / 1e6,
        "claimed_by": row.get("claimed_by") or None,
        "last_run": num(row.get("last_run")),
        "last_duration": num(row.get("last_duration")),
        "runs": int(row.get("runs") or 0),
        "errors": int(row.get("errors") or 0),
        "lost": int(row.get("lost") or 0),
        "paused": str(row.get("paused") or "0") in ("1", "True"),
    }
