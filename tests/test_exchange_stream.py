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
