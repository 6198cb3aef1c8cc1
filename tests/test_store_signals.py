"""The signal store on a real SQLite file: the seed's API, group commit,
durability across kill -9, the JSON form and TTL cleanup."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ferrotick import ConfigError
from ferrotick.store import Signal, SignalManager, initialize_async_signal_manager

pytestmark = pytest.mark.asyncio


async def test_seed_api(tmp_path):
    m = initialize_async_signal_manager(persistence_file=str(tmp_path / "signals.json"))
    try:
        s = await m.create_signal_async(
            symbol="BTCUSDT", signal_type="BUY", value=1, confidence=0.8
        )
        assert isinstance(s, Signal) and s.id >= 1 and s.value == 1.0 and s.confidence == 0.8
        assert s.expires_at is not None and s.expires_at > s.created_at
        await m.create_signal_async("ETHUSDT", "SELL", 0, 0.4)
        got = await m.get_signals_for_multiple_symbols_async(["BTCUSDT", "ETHUSDT", "ADAUSDT"])
        assert [x.id for x in got["BTCUSDT"]] == [s.id]
        assert got["ETHUSDT"][0].signal_type == "SELL" and got["ADAUSDT"] == []
        ops = [
            {
                "type": "create",
                "symbol": "BTCUSDT",
                "signal_type": "BUY",
                "value": 1,
                "confidence": 0.7,
            },
            {
                "type": "update",
                "symbol": "ETHUSDT",
                "signal_type": "SELL",
                "value": 0,
                "confidence": 0.5,
            },
            {"type": "update", "symbol": "ADAUSDT", "signal_type": "SELL", "value": 0},
        ]
        res = await m.process_multiple_signals_async(ops)
        assert res[0].symbol == "BTCUSDT" and res[0].confidence == 0.7
        assert res[1].symbol == "ETHUSDT" and res[1].confidence == 0.5
        assert res[2] is None  # nothing to update
        # update by id wins over (symbol, type)
        u = await m.update_signal_async(id=s.id, value=-1.0, metadata={"why": "reversal"})
        assert u.id == s.id and u.value == -1.0 and u.metadata == {"why": "reversal"}
        assert (await m.get_signal_async(s.id)).metadata == {"why": "reversal"}
        # time-range and type reads
        buys = await m.get_signals_async("BTCUSDT", signal_type="BUY", since=s.created_at)
        assert len(buys) == 2
        assert await m.get_signals_async("BTCUSDT", until=s.created_at) == []
    finally:
        await m.close()


async def test_bad_input_names_the_argument(tmp_path):
    m = SignalManager(tmp_path / "s.sqlite3", signal_types=["SCALE_IN"])
    try:
        with pytest.raises(ConfigError, match="signal_type"):
            m.create_signal_async("BTCUSDT", "MOON", 1, 0.5)
        assert (
            await m.create_signal_async("BTCUSDT", "SCALE_IN", 1, 0.5)
        ).signal_type == "SCALE_IN"
        assert (await m.create_signal_async("BTCUSDT", "HOLD", 1, 0.5)).signal_type == "HOLD"
        with pytest.raises(ConfigError, match="value"):
            m.create_signal_async("BTCUSDT", "BUY", float("nan"), 0.5)
        with pytest.raises(ConfigError, match="confidence"):
            m.create_signal_async("BTCUSDT", "BUY", 1, 1.5)
        with pytest.raises(ConfigError, match=r"operations\[1\]\.signal_type"):
            await m.process_multiple_signals_async(
                [
                    {"symbol": "A", "signal_type": "BUY", "value": 1},
                    {"symbol": "A", "signal_type": "NOPE", "value": 1},
                ]
            )
        # nothing of the rejected batch was written
        assert await m.get_signals_async("A") == []
        with pytest.raises(ConfigError, match="synchronous"):
            SignalManager(tmp_path / "t.sqlite3", synchronous="SOMETIMES")
    finally:
        await m.close()


async def test_concurrent_writers_share_commits(tmp_path):
    m = SignalManager(tmp_path / "s.sqlite3", synchronous="FULL")
    try:
        for _ in range(5):
            got = await asyncio.gather(
                *(m.create_signal_async(f"S{i}", "BUY", i, 0.5) for i in range(64))
            )
        assert len({g.id for g in got}) == 64
        st = m.stats()
        assert st["writes"] == 320
        assert st["commits"] < 320 / 4, st  # grouped, not one fsync per write
        assert st["batch_max"] >= 32
    finally:
        await m.close()


async def test_loop_keeps_running_during_commits(tmp_path):
    m = SignalManager(tmp_path / "s.sqlite3", synchronous="FULL")
    gaps = []

    async def ticker():
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    t = asyncio.create_task(ticker())
    try:
        for _ in range(50):
            await m.create_signal_async("BTCUSDT", "BUY", 1, 0.5)
    finally:
        t.cancel()
        await m.close()
    assert max(gaps) < 0.05, max(gaps)


async def test_ttl_cleanup(tmp_path):
    m = SignalManager(tmp_path / "s.sqlite3", default_ttl=0.05, cleanup_interval=0.05)
    async with m:
        a = await m.create_signal_async("BTCUSDT", "BUY", 1, 0.5)
        b = await m.create_signal_async("BTCUSDT", "SELL", 1, 0.5, ttl=None)
        await asyncio.sleep(0.08)
        # expired signals are hidden before they are deleted
        assert [x.id for x in await m.get_signals_async("BTCUSDT")] == [b.id]
        deadline = time.monotonic() + 2
        while m.stats()["cleaned"] < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert m.stats()["cleaned"] == 1
        assert await m.get_signal_async(a.id) is None
        # the update targets the newest unexpired signal only
        assert await m.update_signal_async("BTCUSDT", "BUY", value=2) is None
        assert await m.health_check() is True


async def test_json_form_imports_once_and_exports(tmp_path):
    path = tmp_path / "signals.json"
    now = time.time()
    path.write_text(
        json.dumps(
            [
                {
                    "id": 7,
                    "symbol": "BTCUSDT",
                    "signal_type": "BUY",
                    "value": 1,
                    "confidence": 0.9,
                    "created_at": now,
                    "expires_at": None,
                },
            ]
        )
    )
    m = initialize_async_signal_manager(persistence_file=str(path), auto_cleanup=False)
    assert m.db_path == str(path) + ".sqlite3"
    assert (await m.get_signal_async(7)).confidence == 0.9
    s = await m.create_signal_async("ETHUSDT", "SELL", 0, 0.3)
    assert s.id == 8
    await m.close()
    doc = json.loads(path.read_text())
    assert [x["id"] for x in doc["signals"]] == [7, 8]
    # reopening does not import the file a second time
    m2 = SignalManager(persistence_file=str(path))
    try:
        assert len(await m2.get_signals_async(include_expired=True)) == 2
    finally:
        await m2.close()


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from ferrotick.store import SignalManager

    async def main():
        m = SignalManager(sys.argv[1], synchronous="NORMAL", default_ttl=None)
        async def one(i):
            while True:
                s = await m.create_signal_async(f"S{i}", "BUY", i, 0.5)
                sys.stdout.write(f"{s.id}\\n")
                sys.stdout.flush()
        await asyncio.gather(*(one(i) for i in range(16)))

    asyncio.run(main())
    """
)


async def test_acknowledged_writes_survive_kill_9(tmp_path):
    db = str(tmp_path / "k.sqlite3")
    env = dict(os.environ)
    p = subprocess.Popen(
        [sys.executable, "-c", WRITER, db], stdout=subprocess.PIPE, text=True, env=env
    )
    acked = []
    try:
        deadline = time.monotonic() + 20
        while len(acked) < 3000 and time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            acked.append(int(line))
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    assert len(acked) >= 3000, "writer produced too little"
    m = SignalManager(db, default_ttl=None)
    try:
        rows = await m.get_signals_async(include_expired=True)
        have = {r.id for r in rows}
        missing = [i for i in acked if i not in have]
        assert missing == []
    finally:
        await m.close()


async def test_sink_contract_and_export(tmp_path):
    m = SignalManager(tmp_path / "s.sqlite3")
    try:
        s = await m.write(
            {"symbol": "BTCUSDT", "signal_type": "SELL", "value": -1, "confidence": 0.9}
        )
        assert s.signal_type == "SELL"
        await m.flush()
        out = m.export_json(tmp_path / "out.json")
        doc = json.loads(open(out).read())
        assert doc["signals"][0]["id"] == s.id
        with pytest.raises(ConfigError, match="persistence_file"):
            m.export_json()
    finally:
        await m.close()
    with pytest.raises(Exception, match="closed"):
        m.create_signal_async("BTCUSDT", "BUY", 1, 0.5)
