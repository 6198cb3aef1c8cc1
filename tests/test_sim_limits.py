"""Request weights, the 429 → 418 escalation and order-count limits of the simulated
exchange, observed over real sockets."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from sim_helpers import call

from ferrotick import AsyncHTTPClient, RetryConfig
from ferrotick.sim import SimulatedExchange


@pytest.mark.asyncio
async def test_weights_add_up_in_the_header():
    async with SimulatedExchange(["BTCUSDT", "ETHUSDT"]) as ex, aiohttp.ClientSession() as s:
        steps = [
            ("/api/v3/ping", {}, 1),
            ("/api/v3/exchangeInfo", {}, 20),
            ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m"}, 2),
            ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 100}, 5),
            ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 500}, 25),
            ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 1000}, 50),
            ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 5000}, 250),
            ("/api/v3/ticker/price", {"symbol": "BTCUSDT"}, 2),
            ("/api/v3/ticker/price", {}, 4),
            ("/api/v3/ticker/24hr", {"symbol": "BTCUSDT"}, 2),
            ("/api/v3/ticker/24hr", {}, 80),
            ("/api/v3/ticker/24hr", {"symbols": '["BTCUSDT","ETHUSDT"]'}, 2),
        ]
        total = 0
        for path, params, w in steps:
            st, _, h = await call(s, ex, "GET", path, params)
            total += w
            assert st == 200 and int(h["X-MBX-USED-WEIGHT-1M"]) == total, (path, h)
        for path, params, w in [
            ("/api/v3/account", {}, 20),
            ("/api/v3/openOrders", {"symbol": "BTCUSDT"}, 6),
            ("/api/v3/openOrders", {}, 80),
        ]:
            st, _, h = await call(s, ex, "GET", path, params, signed=True)
            total += w
            assert st == 200 and int(h["X-MBX-USED-WEIGHT-1M"]) == total, path
    # the same with ferrotick's own client
    async with SimulatedExchange(["BTCUSDT"]) as ex:
        async with AsyncHTTPClient(retry_config=RetryConfig(max_retries=0)) as c:
            r = await c.get(
                f"{ex.base_url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 5000}
            )
            assert r.headers["x-mbx-used-weight-1m"] == "250"


@pytest.mark.asyncio
async def test_429_then_418_with_retry_after_and_doubling_bans():
    # time_scale 60: the minute window is one wall second, a 2-minute ban two seconds;
    # a small book keeps the heavy requests (limit=5000: weight 250) cheap to serve
    async with SimulatedExchange(["BTCUSDT"], time_scale=60.0, book_levels=50) as ex:
        async with aiohttp.ClientSession() as s:
            depth = {"symbol": "BTCUSDT", "limit": 5000}

            async def burn():
                # start on a fresh window, then spend weight until refused
                await asyncio.sleep(1.0 - (ex.server_time() % 60_000) / 60_000 + 0.02)
                used = []
                while True:
                    st, b, h = await call(s, ex, "GET", "/api/v3/depth", depth)
                    if st != 200:
                        return st, b, h, used
                    used.append(int(h["X-MBX-USED-WEIGHT-1M"]))

            st, b, h, used = await burn()
            assert used[:3] == [250, 500, 750] and used[-1] == 6000
            assert st == 429 and b["code"] == -1003 and "6000" in b["msg"]
            assert int(h["Retry-After"]) == 1
            st, b, h = await call(s, ex, "GET", "/api/v3/ping")  # ignoring Retry-After
            assert st == 429
            st, b, h = await call(s, ex, "GET", "/api/v3/ping")  # third violation: banned
            assert st == 418 and b["code"] == -1003 and "banned until" in b["msg"]
            assert int(h["Retry-After"]) == 2
            await asyncio.sleep(1.2)
            st, _, _ = await call(s, ex, "GET", "/api/v3/ping")
            assert st == 418  # still banned
            await asyncio.sleep(1.0)
            st, _, _ = await call(s, ex, "GET", "/api/v3/ping")
            assert st == 200
            # a second offence is banned twice as long
            st, _, _, _ = await burn()
            assert st == 429
            await call(s, ex, "GET", "/api/v3/ping")
            st, _, h = await call(s, ex, "GET", "/api/v3/ping")
            assert st == 418 and int(h["Retry-After"]) == 4
        stats = ex.stats()
        assert stats["http_429"] >= 3 and stats["http_418"] >= 3


@pytest.mark.asyncio
async def test_429_retry_after_at_real_time_and_limits_off():
    async with SimulatedExchange(["BTCUSDT"], weight_limit=10) as ex, aiohttp.ClientSession() as s:
        for _ in range(5):
            await call(s, ex, "GET", "/api/v3/klines", {"symbol": "BTCUSDT", "interval": "1m"})
        st, b, h = await call(s, ex, "GET", "/api/v3/ping")
        assert st == 429 and "10 request weight per 1 MINUTE" in b["msg"]
        assert 1 <= int(h["Retry-After"]) <= 60
    async with SimulatedExchange(["BTCUSDT"], weight_limit=10, limits=False) as ex:
        async with aiohttp.ClientSession() as s:
            for _ in range(10):
                st, _, h = await call(s, ex, "GET", "/api/v3/exchangeInfo")
                assert st == 200
            assert h["X-MBX-USED-WEIGHT-1M"] == "200"


@pytest.mark.asyncio
async def test_order_count_limit():
    async with SimulatedExchange(["BTCUSDT"], orders_10s=5) as ex, aiohttp.ClientSession() as s:
        order = {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": "20000",
        }
        for i in range(1, 6):
            st, b, h = await call(s, ex, "POST", "/api/v3/order", order, signed=True)
            assert st == 200, b
            assert h["X-MBX-ORDER-COUNT-10S"] == str(i) and h["X-MBX-ORDER-COUNT-1D"] == str(i)
        st, b, h = await call(s, ex, "POST", "/api/v3/order", order, signed=True)
        assert st == 429 and b["code"] == -1015
        assert b["msg"] == "Too many new orders; current limit is 5 orders per 10 SECOND."
        assert "Retry-After" not in h
