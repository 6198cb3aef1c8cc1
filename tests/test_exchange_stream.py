"""Market streams against the simulated exchange: `async for` over combined streams,
reconnects after injected drops, bounded buffers that drop and count instead of stopping,
and ticker handlers (sync, async, raising)."""

from __future__ import annotations

import asyncio

import pytest

from ferrotick import ConfigError
from ferrotick.exchange import BinanceConfig, OptimizedBinanceClient
from ferrotick.sim import SimulatedExchange

pytestmark = pytest.mark.asyncio


def client(ex) -> OptimizedBinanceClient:
    return OptimizedBinanceClient(BinanceConfig(base_url=ex.base_url, ws_url=ex.ws_url))


async def take(sub, n, timeout=5.0):
    out = []

    async def go():
        async for m in sub:
            out.append(m)
            if len(out) >= n:
                return

    await asyncio.wait_for(go(), timeout)
    return out


async def test_async_for_over_combined_streams_and_reconnects():
    async with SimulatedExchange(["BTCUSDT", "ETHUSDT"], trade_rate=200) as ex:
        c = client(ex)
        sub = c.stream(["btcusdt@trade", "ethusdt@trade"])
        msgs = await take(sub, 50)
        assert {m["stream"] for m in msgs} == {"btcusdt@trade", "ethusdt@trade"}
        assert all(m["data"]["e"] == "trade" for m in msgs)
        ex.set_faults(ws_drop_rate=0.05)
        await take(sub, 300, timeout=10)
        assert sub.stats()["reconnects"] >= 1 and sub.stats()["connects"] >= 2
        ex.set_faults(ws_drop_rate=0.0)
        await take(sub, 20)
        await c.close()
        # closed: the iteration ends
        assert await asyncio.wait_for(take_rest(sub), 2) >= 0


async def take_rest(sub):
    n = 0
    async for _ in sub:
        n += 1
    return n


async def test_overflow_drops_and_counts_and_the_stream_goes_on():
    async with SimulatedExchange(["BTCUSDT"], trade_rate=2000) as ex:
        c = client(ex)
        sub = c.stream("btcusdt@trade", buffer=10, overflow="drop_oldest")
        await take(sub, 1)
        await asyncio.sleep(0.3)  # a consumer that falls behind
        st = sub.stats()
        assert st["dropped"] > 0 and st["buffered"] <= 10
        msgs = await take(sub, 30)
        ids = [m["data"]["t"] for m in msgs]
        assert ids == sorted(ids)
        await c.close()
        with pytest.raises(ConfigError, match="overflow"):
            c.stream("btcusdt@trade", overflow="explode")
        with pytest.raises(ConfigError, match="streams"):
            c.stream(["bad name"])


async def test_ticker_handlers_sync_async_and_raising():
    async with SimulatedExchange(["BTCUSDT"], time_scale=1.0) as ex:
        c = client(ex)
        got: list = []

        async def handler(d):
            got.append(d)

        calls = {"n": 0}

        def bad(d):
            calls["n"] += 1
            raise RuntimeError("handler bug")

        t1 = await c.subscribe_to_ticker("BTCUSDT", handler)
        t2 = await c.subscribe_to_ticker("BTCUSDT", bad)
        for _ in range(60):
            if len(got) >= 2 and t2.errors >= 2:
                break
            await asyncio.sleep(0.1)
        assert got and got[0]["e"] == "24hrTicker" and got[0]["s"] == "BTCUSDT"
        assert t2.errors >= 2 and calls["n"] == t2.errors  # went on after raising
        assert not t1.task.done()
        await c.close()
        with pytest.raises(ConfigError, match="handler"):
            await c.subscribe_to_ticker("BTCUSDT", None)


async def _trade_ids(ex, seconds: float, **stream_kw):
    client = OptimizedBinanceClient(BinanceConfig(base_url=ex.base_url, ws_url=ex.ws_url))
    sub = client.stream(["btcusdt@trade"], **stream_kw)
    ids: list[int] = []

    async def read():
        async for msg in sub:
            ids.append(int(msg["data"]["t"]))

    task = asyncio.ensure_future(read())
    await asyncio.sleep(seconds)
    stats = sub.stats()
    sub.close()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return ids, stats


async def test_rotation_replaces_connections_without_gaps_or_repeats():
    # the exchange ends connections after 6 s; the client replaces them every 2 s
    with SimulatedExchange(["BTCUSDT"], seed=2, trade_rate=200, ws_lifetime=6) as ex:
        ids, stats = await _trade_ids(ex, 7.5, rotate_after=2.0)
    assert stats["rotations"] >= 3, stats
    assert stats["reconnects"] == 0, stats
    assert len(ids) > 500
    steps = {b - a for a, b in zip(ids, ids[1:], strict=False)}
    assert steps == {1}, sorted(steps)[:10]  # every trade once, in order
