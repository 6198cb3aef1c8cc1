"""The Binance client's REST core against the simulated exchange: signing and the clock
offset, klines pagination into columns, the weight budget, orders of unknown outcome and
bad input."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import numpy as np
import pytest

from ferrotick import ConfigError, ExchangeError
from ferrotick.exchange import BinanceConfig, Klines, OptimizedBinanceClient, Secret
from ferrotick.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET, DEFAULT_EPOCH_MS, SimulatedExchange

MIN = 60_000
pytestmark = pytest.mark.asyncio


def cfg(ex: SimulatedExchange, **kw):
    kw.setdefault("api_key", DEFAULT_API_KEY)
    kw.setdefault("api_secret", DEFAULT_API_SECRET)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("retry_delay", 0.01)
    return BinanceConfig(base_url=ex.base_url, **kw)


@pytest.fixture
def ex():
    with SimulatedExchange(["BTCUSDT", "ETHUSDT"], seed=3) as ex:
        yield ex


async def test_signed_account_with_a_3s_clock_offset_and_a_resync(ex):
    ex.set_faults(clock_offset_ms=3000)
    async with OptimizedBinanceClient(cfg(ex, recv_window=1000)) as c:
        acct = await c.get_account_info()
        assert {b["asset"] for b in acct["balances"]} >= {"BTC", "USDT"}
        off = c.budget()["offset_ms"]
        # the simulated clock starts at its epoch; the offset is measured, not assumed
        assert abs((off + _now_ms()) - ex.server_time()) < 500
        # the exchange's clock jumps: -1021, one re-sync, the request succeeds
        ex.set_faults(clock_offset_ms=-4000)
        await c.get_account_info()
        assert c.stats()["time_syncs"] == 2


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


async def test_klines_paginate_into_columns(ex):
    async with OptimizedBinanceClient(cfg(ex)) as c:
        k = await c.get_klines("BTCUSDT", "1m", start=DEFAULT_EPOCH_MS - 2500 * MIN, limit=2500)
        assert isinstance(k, Klines) and len(k) == 2500
        assert k.open_time.dtype == np.int64 and k.close.dtype == np.float64
        assert (np.diff(k.open_time) == MIN).all()
        assert k.open_time[0] == DEFAULT_EPOCH_MS - 2500 * MIN
        assert ((k.high >= k.low) & (k.high >= k.close)).all()
        assert list(k.to_dict()) == list(Klines.columns)
        # the same bars as the exchange's own JSON
        async with aiohttp.ClientSession() as s:
            url = f"{ex.base_url}/api/v3/klines"
            p = {"symbol": "BTCUSDT", "interval": "1m", "startTime": int(k.open_time[1000])}
            async with s.get(url, params={**p, "limit": 3}) as r:
                raw = await r.json()
        assert [int(x[0]) for x in raw] == k.open_time[1000:1003].tolist()
        assert [float(x[4]) for x in raw] == k.close[1000:1003].tolist()
        assert [int(x[8]) for x in raw] == k.trades[1000:1003].tolist()
        # the latest bars without a start, past one page
        latest = await c.get_klines("ETHUSDT", "1m", limit=1500)
        assert len(latest) == 1500 and (np.diff(latest.open_time) == MIN).all()
        assert latest.open_time[-1] >= ex.server_time() - 2 * MIN
        many = await c.get_multiple_klines(["BTCUSDT", "ETHUSDT"], "1h", limit=10)
        assert [len(v) for v in many.values()] == [10, 10]
        pd = pytest.importorskip("pandas")
        df = k.to_pandas()
        assert isinstance(df, pd.DataFrame) and len(df) == 2500


async def test_data_helpers_and_exchange_info_cache(ex):
    async with OptimizedBinanceClient(cfg(ex)) as c:
        p = await c.get_ticker_price("BTCUSDT")
        assert p["symbol"] == "BTCUSDT" and float(p["price"]) > 0
        data = await c.get_multiple_symbols_data(["BTCUSDT", "ETHUSDT"])
        assert set(data) == {"BTCUSDT", "ETHUSDT"}
        n = c.stats()["requests"]
        info = await c.get_exchange_info()
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
        assert c.stats()["requests"] == n  # cached since connect()
        assert c.budget()["weight_limit"] == 6000


async def test_bad_input(ex):
    async with OptimizedBinanceClient(cfg(ex)) as c:
        with pytest.raises(ExchangeError) as e:
            await c.get_klines("NOPE", "1m")
        assert e.value.code == -1121
        with pytest.raises(ConfigError, match="interval"):
            await c.get_klines("BTCUSDT", "7m")
        with pytest.raises(ConfigError, match="limit"):
            await c.get_klines("BTCUSDT", "1m", limit=0)
        with pytest.raises(ConfigError, match="start"):
            await c.get_klines("BTCUSDT", "1m", start="yesterday")
        with pytest.raises(ConfigError, match="quantity"):
            await c.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=object())
    with pytest.raises(ConfigError, match="base_url"):
        BinanceConfig(base_url="ftp://x")
    with pytest.raises(ConfigError, match="batch_size"):
        BinanceConfig(batch_size=0)
    with pytest.raises(ConfigError, match="weight_share"):
        BinanceConfig(weight_share=True)
    with pytest.raises(ConfigError, match="rate_limit_requests_per_minute"):
        BinanceConfig(rate_limit_requests_per_minute=-1)
    bad = OptimizedBinanceClient(cfg(ex, api_key="WrongKey123"))
    with pytest.raises(ExchangeError) as e:
        await bad.connect()
        await bad.get_account_info()
    assert e.value.code in (-2014, -2015)
    await bad.close()
    nosecret = OptimizedBinanceClient(cfg(ex, api_secret=None))
    with pytest.raises(ConfigError, match="api_secret"):
        await nosecret.get_account_info()


async def test_malformed_and_truncated_bodies_are_retried_or_fail_clearly(ex):
    async with OptimizedBinanceClient(cfg(ex, max_retries=8)) as c:
        ex.set_faults(truncate_rate=0.3, malformed_rate=0.2, reset_rate=0.1, error_rate=0.1)
        for _ in range(5):
            k = await c.get_klines("BTCUSDT", "1m", limit=50)
            assert len(k) == 50
            await c.get_ticker_price("ETHUSDT")
        assert c.stats()["retries"] > 0
    ex.set_faults(truncate_rate=0, malformed_rate=0, reset_rate=0, error_rate=0)
    async with OptimizedBinanceClient(cfg(ex, max_retries=0)) as c:
        ex.set_faults(truncate_rate=1.0)
        with pytest.raises(ExchangeError, match="malformed"):
            await c.get_klines("BTCUSDT", "1m", limit=50)


async def test_unknown_outcome_orders_are_looked_up_not_resent(ex):
    async with OptimizedBinanceClient(cfg(ex, batch_size=4)) as c:
        ex.set_faults(unknown_status_rate=1.0)
        before = ex.stats()["orders_placed"]
        orders = [
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": 0.001}
            for _ in range(12)
        ]
        out = await c.create_batch_orders(orders)
        placed = [o for o in out if isinstance(o, dict)]
        failed = [o for o in out if isinstance(o, ExchangeError)]
        assert len(placed) + len(failed) == 12
        # each order reached the engine at most once, and every one that did is reported
        assert ex.stats()["orders_placed"] - before == len(placed)
        assert len({o["clientOrderId"] for o in placed}) == len(placed)
        assert all(e.code == -1007 and "not placed" in str(e) for e in failed)
        assert c.stats()["order_lookups"] == 12
        ex.set_faults(unknown_status_rate=0.0)
        o = await c.create_order(
            symbol="ETHUSDT", side="BUY", type="MARKET", quantity=0.01, newClientOrderId="mine1"
        )
        assert o["clientOrderId"] == "mine1"
        got = await c.get_order("ETHUSDT", client_order_id="mine1")
        assert got["orderId"] == o["orderId"]


async def test_budget_waits_instead_of_sending_and_cancellation_returns_weight(ex):
    # configured 30 weight a minute: 15 klines requests fit, the 16th waits
    async with OptimizedBinanceClient(cfg(ex, rate_limit_requests_per_minute=60)) as c:
        used = c.budget()["weight_used"]  # exchangeInfo and the time samples
        assert c.budget()["weight_limit"] == 60
        fits = (60 - used) // 2
        tasks = [
            asyncio.ensure_future(c.get_klines("BTCUSDT", "1m", limit=5)) for _ in range(fits + 3)
        ]
        done, pending = await asyncio.wait(tasks, timeout=1.0)
        assert len(done) == fits and len(pending) == 3
        # the waiting calls hold no reservation; nothing past the budget went out
        assert c.budget()["weight_pending"] == 0 and c.budget()["waits"] >= 1
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.sleep(0.05)
        b = c.budget()
        assert b["weight_pending"] == 0 and b["weight_used"] <= 60
        assert ex.stats()["http_429"] == 0


async def test_other_traffic_on_the_ip_is_seen_in_the_headers():
    async with SimulatedExchange(["BTCUSDT"], weight_limit=100) as ex:
        async with aiohttp.ClientSession() as s:
            for _ in range(30):  # another process: 60 of the 100
                async with s.get(f"{ex.base_url}/api/v3/avgPrice", params={"symbol": "BTCUSDT"}):
                    pass
        c = OptimizedBinanceClient(cfg(ex, api_secret=None))
        await c.connect()  # exchangeInfo: 20, and the header says 80
        assert c.budget()["weight_limit"] == 100
        assert c.budget()["weight_used"] >= 80
        tasks = [asyncio.ensure_future(c.get_ticker_price("BTCUSDT")) for _ in range(20)]
        done, pending = await asyncio.wait(tasks, timeout=0.8)
        assert len(done) <= 10 and pending
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        assert ex.stats()["http_429"] == 0 and ex.stats()["http_418"] == 0
        await c.close()


async def test_429_stops_all_sending_for_retry_after_even_unthrottled():
    # 60 simulated seconds a wall second: the window (and Retry-After) is about a second
    async with SimulatedExchange(["BTCUSDT"], weight_limit=10, time_scale=60.0) as ex:
        c = OptimizedBinanceClient(
            cfg(ex, api_secret=None, enable_rate_limiting=False, max_retries=0)
        )
        async with aiohttp.ClientSession() as s:
            for _ in range(5):
                async with s.get(f"{ex.base_url}/api/v3/avgPrice", params={"symbol": "BTCUSDT"}):
                    pass
        with pytest.raises(ExchangeError) as e:
            await c.get_ticker_price("BTCUSDT")
        assert e.value.code == -1003
        blocked = c.budget()["blocked_for"]
        assert 0 < blocked <= 2.0
        n = ex.stats()["http_429"]
        await asyncio.wait_for(c.get_ticker_price("BTCUSDT"), 5)
        # nothing went out while blocked: the one 429 only
        assert ex.stats()["http_429"] == n and ex.stats()["http_418"] == 0
        await c.close()


async def test_secrets_stay_out_of_reprs_errors_and_logs(ex, caplog):
    caplog.set_level(logging.DEBUG)
    conf = cfg(ex)
    assert repr(conf.api_secret) == "'***'" and str(conf.api_key) == "***"
    assert conf.api_secret.get_secret_value() == DEFAULT_API_SECRET
    assert isinstance(conf.api_secret, Secret)
    texts = [repr(conf), str(vars(conf))]
    async with OptimizedBinanceClient(conf) as c:
        texts.append(repr(c))
        texts.append(repr(c.core))
        ex.set_faults(reset_rate=1.0)
        try:
            await c.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity=0.001)
        except ExchangeError as e:
            texts.append(repr(e) + str(e))
        ex.set_faults(reset_rate=0.0)
    texts.append(caplog.text)
    blob = "\n".join(texts)
    assert DEFAULT_API_SECRET not in blob and DEFAULT_API_KEY not in blob


async def test_requests_are_reported_to_the_performance_monitor():
    from ferrotick.monitor import AsyncPerformanceMonitor, generate_latest

    monitor = AsyncPerformanceMonitor()
    async with SimulatedExchange(["BTCUSDT"], seed=4) as ex:
        async with OptimizedBinanceClient(cfg(ex), monitor=monitor) as c:
            await c.get_klines("BTCUSDT", "1m", limit=10)
            await c.get_server_time()
            with pytest.raises(ExchangeError):
                await c.get_klines("NOSUCH", "1m", limit=10)
        async with OptimizedBinanceClient(cfg(ex), monitor=False) as quiet:
            await quiet.get_server_time()
    text = generate_latest(monitor.registry).decode()
    assert (
        'async_operation_duration_seconds_count{operation_type="exchange GET /api/v3/klines"} 2'
        in text
    )
    assert (
        'async_errors_total{operation_type="exchange GET /api/v3/klines",'
        'error_type="ExchangeError"} 1' in text
    )
    assert (
        'async_operation_duration_seconds_count{operation_type="exchange GET /api/v3/time"} 1'
        in text
    )


async def test_raw_requests_limit_holds_requests_back():
    async with SimulatedExchange(["BTCUSDT"], seed=5, raw_limit=20) as ex:
        async with OptimizedBinanceClient(cfg(ex)) as c:
            b = c.budget()
            assert b["raw_requests_limit_5m"] == 20 and b["orders_limit_1d"] == 200_000
            used = b["raw_requests_used"]  # exchangeInfo and the clock samples
            tasks = [asyncio.ensure_future(c.get_server_time()) for _ in range(30)]
            await asyncio.sleep(1.5)
            finished = sum(t.done() for t in tasks)
            assert finished == 20 - used  # the rest wait for the next five minutes
            assert c.budget()["raw_requests_used"] == 20
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert ex.stats()["http_429"] == 0  # never sent past the limit
