"""Each fault knob of the simulated exchange, observed by a client, set at start and live."""

from __future__ import annotations

import asyncio
import json
import time
from itertools import pairwise

import aiohttp
import pytest
from sim_helpers import call

from ferrotick import AsyncHTTPClient, ClientTimeout, HTTPError, RetryConfig
from ferrotick.sim import FAULTS, SimulatedExchange

NO_RETRY = RetryConfig(max_retries=0)


@pytest.mark.asyncio
async def test_latency_and_jitter_live():
    async with SimulatedExchange(["BTCUSDT"], latency_ms=150) as ex, aiohttp.ClientSession() as s:
        t0 = time.perf_counter()
        await call(s, ex, "GET", "/api/v3/ping")
        assert time.perf_counter() - t0 >= 0.15
        assert ex.set_faults(latency_ms=0, jitter_ms=0)["latency_ms"] == 0
        t0 = time.perf_counter()
        await call(s, ex, "GET", "/api/v3/ping")
        assert time.perf_counter() - t0 < 0.1
        async with AsyncHTTPClient(retry_config=NO_RETRY, timeout=ClientTimeout(total=0.2)) as c:
            ex.set_faults(latency_ms=500)
            with pytest.raises(HTTPError):
                await c.get(f"{ex.base_url}/api/v3/ping")
        assert ex.stats()["injected_latency"] >= 2


@pytest.mark.asyncio
async def test_5xx_fraction_and_ferrotick_retries():
    async with SimulatedExchange(["BTCUSDT"], error_rate=1.0) as ex, aiohttp.ClientSession() as s:
        statuses = set()
        for _ in range(20):
            async with s.get(f"{ex.base_url}/api/v3/ping") as r:
                statuses.add(r.status)
        assert statuses <= {500, 502, 503} and len(statuses) >= 2
        ex.set_faults(error_rate=0.5)
        retry = RetryConfig(max_retries=20, base_delay=0.001, max_delay=0.002)
        async with AsyncHTTPClient(retry_config=retry) as c:
            for _ in range(5):
                r = await c.get(f"{ex.base_url}/api/v3/ping")
                assert r.status == 200
        assert ex.stats()["injected_5xx"] >= 20


@pytest.mark.asyncio
async def test_maintenance_on_rest_and_websocket():
    async with SimulatedExchange(["BTCUSDT"]) as ex, aiohttp.ClientSession() as s:
        ex.set_faults(maintenance=True)
        st, b, _ = await call(s, ex, "GET", "/api/v3/time")
        assert st == 503 and b["code"] == -1016
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await s.ws_connect(f"{ex.ws_url}/ws/btcusdt@trade")
        assert e.value.status == 503
        ex.set_faults(maintenance=False)
        assert (await call(s, ex, "GET", "/api/v3/time"))[0] == 200


@pytest.mark.asyncio
async def test_resets_truncated_and_malformed_bodies():
    async with SimulatedExchange(["BTCUSDT"], reset_rate=1.0) as ex, aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ClientError):
            async with s.get(f"{ex.base_url}/api/v3/exchangeInfo") as r:
                await r.read()
        async with AsyncHTTPClient(retry_config=NO_RETRY) as c:
            with pytest.raises(HTTPError):
                r = await c.get(f"{ex.base_url}/api/v3/exchangeInfo")
                await r.read()
        ex.set_faults(reset_rate=0, truncate_rate=1.0)
        async with s.get(f"{ex.base_url}/api/v3/exchangeInfo") as r:
            text = await r.text()
            assert r.status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        ex.set_faults(truncate_rate=0, malformed_rate=1.0)
        async with s.get(f"{ex.base_url}/api/v3/ticker/price") as r:
            with pytest.raises(json.JSONDecodeError):
                json.loads(await r.text())
        ex.set_faults(**FAULTS)
        assert (await call(s, ex, "GET", "/api/v3/ticker/price"))[0] == 200
        st = ex.stats()
        assert st["injected_resets"] >= 2 and st["injected_truncated"] == 1
        assert st["injected_malformed"] == 1


@pytest.mark.asyncio
async def test_unknown_execution_status_on_orders():
    async with SimulatedExchange(["BTCUSDT"], unknown_status_rate=1.0, seed=3) as ex:
        async with aiohttp.ClientSession() as s:
            order = {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": "20000",
            }
            executed = 0
            for i in range(12):
                st, b, _ = await call(
                    s,
                    ex,
                    "POST",
                    "/api/v3/order",
                    {**order, "newClientOrderId": f"o{i}"},
                    signed=True,
                )
                assert (st, b["code"]) == (503, -1007) and "unknown" in b["msg"]
                # the client must query to learn whether the order exists
                st, q, _ = await call(
                    s,
                    ex,
                    "GET",
                    "/api/v3/order",
                    {"symbol": "BTCUSDT", "origClientOrderId": f"o{i}"},
                    signed=True,
                )
                if st == 200:
                    executed += 1
                else:
                    assert q["code"] == -2013
            assert 0 < executed < 12
            assert ex.stats()["injected_unknown_status"] == 12


@pytest.mark.asyncio
async def test_websocket_drops_and_skipped_depth_updates():
    async with SimulatedExchange(["BTCUSDT"], trade_rate=300, ws_drop_rate=0.2) as ex:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"{ex.ws_url}/ws/btcusdt@trade") as ws:
                n = 0
                while True:
                    m = await asyncio.wait_for(ws.receive(), 5)
                    if m.type != aiohttp.WSMsgType.TEXT:
                        break
                    n += 1
                assert m.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                )
                assert n >= 1
            assert ex.stats()["injected_ws_drops"] == 1
            ex.set_faults(ws_drop_rate=0, depth_skip_rate=0.5)
            async with s.ws_connect(f"{ex.ws_url}/ws/btcusdt@depth@100ms") as ws:
                events = [
                    json.loads((await asyncio.wait_for(ws.receive(), 5)).data) for _ in range(8)
                ]
            gaps = sum(1 for a, b in pairwise(events) if b["U"] != a["u"] + 1)
            assert gaps >= 1
            assert ex.stats()["injected_depth_skips"] >= 1


@pytest.mark.asyncio
async def test_clock_offset_breaks_unsynced_signatures():
    async with SimulatedExchange(["BTCUSDT"]) as ex, aiohttp.ClientSession() as s:
        st, t0, _ = await call(s, ex, "GET", "/api/v3/time")
        synced = t0["serverTime"]
        ex.set_faults(clock_offset_ms=-10_000)
        st, t1, _ = await call(s, ex, "GET", "/api/v3/time")
        assert t1["serverTime"] < synced - 9_000
        # a client that fixed its offset before the jump is now ahead of the server
        st, b, _ = await call(s, ex, "GET", "/api/v3/account", signed=True, ts=synced)
        assert b["code"] == -1021
        st, b, _ = await call(s, ex, "GET", "/api/v3/account", signed=True)  # re-synced
        assert st == 200


@pytest.mark.asyncio
async def test_bad_fault_values_are_config_errors():
    from ferrotick import ConfigError

    with pytest.raises(ConfigError):
        SimulatedExchange(["BTCUSDT"], no_such_fault=1)
    async with SimulatedExchange(["BTCUSDT"]) as ex:
        for bad in ({"error_rate": 1.5}, {"latency_ms": -1}, {"bogus": 1}, {"reset_rate": "x"}):
            with pytest.raises((ConfigError, TypeError)):
                ex.set_faults(**bad)
        assert ex.faults() == dict(FAULTS)
    with pytest.raises(ConfigError):
        SimulatedExchange(["btc"]).start()
    with pytest.raises(ConfigError):
        SimulatedExchange(["BTCUSDT"], time_scale=0).start()
