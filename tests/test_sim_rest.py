"""The simulated exchange's REST API over real sockets: shapes, klines, depth, signed
requests, orders and bad input (aiohttp and ferrotick's own client as clients)."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from urllib.parse import urlencode

import aiohttp
import pytest
from sim_helpers import call, sign, signed_query

from ferrotick import AsyncHTTPClient, RetryConfig
from ferrotick.sim import DEFAULT_API_KEY, DEFAULT_EPOCH_MS, SimulatedExchange

DAY = 86_400_000


@pytest.fixture
def ex():
    # a sync fixture: the server runs on tokio, whichever loop a test uses
    with SimulatedExchange(["BTCUSDT", "ETHUSDT", "ETHBTC"], seed=7) as ex:
        yield ex


@pytest.mark.asyncio
async def test_ping_time_and_exchange_info(ex):
    async with aiohttp.ClientSession() as s:
        assert (await call(s, ex, "GET", "/api/v3/ping"))[1] == {}
        st, body, h = await call(s, ex, "GET", "/api/v3/time")
        assert abs(body["serverTime"] - ex.server_time()) < 2000
        assert body["serverTime"] >= DEFAULT_EPOCH_MS
        st, info, h = await call(s, ex, "GET", "/api/v3/exchangeInfo")
        assert st == 200 and h["Content-Type"].startswith("application/json")
        assert [x["symbol"] for x in info["symbols"]] == ["BTCUSDT", "ETHUSDT", "ETHBTC"]
        limits = {(r["rateLimitType"], r["interval"]): r["limit"] for r in info["rateLimits"]}
        assert limits[("REQUEST_WEIGHT", "MINUTE")] == 6000
        assert limits[("ORDERS", "SECOND")] == 100 and limits[("ORDERS", "DAY")] == 200_000
        btc = info["symbols"][0]
        assert (btc["baseAsset"], btc["quoteAsset"], btc["status"]) == ("BTC", "USDT", "TRADING")
        filters = {f["filterType"]: f for f in btc["filters"]}
        assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
        assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
        assert float(filters["NOTIONAL"]["minNotional"]) == 5.0
        st, one, _ = await call(s, ex, "GET", "/api/v3/exchangeInfo", {"symbol": "ETHBTC"})
        assert [x["symbol"] for x in one["symbols"]] == ["ETHBTC"]
        st, two, _ = await call(
            s, ex, "GET", "/api/v3/exchangeInfo", {"symbols": '["ETHBTC","BTCUSDT"]'}
        )
        assert [x["symbol"] for x in two["symbols"]] == ["ETHBTC", "BTCUSDT"]


async def _klines(base: str, **params) -> bytes:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{base}/api/v3/klines", params=params) as r:
            assert r.status == 200, await r.text()
            return await r.read()


@pytest.mark.asyncio
async def test_same_seed_gives_byte_identical_klines():
    start = DEFAULT_EPOCH_MS - 3 * DAY
    params = dict(symbol="BTCUSDT", interval="1m", startTime=start, limit=1000)
    bodies = []
    for seed in (7, 7, 8):
        async with SimulatedExchange(["BTCUSDT"], seed=seed) as ex:
            bodies.append(await _klines(ex.base_url, **params))
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


@pytest.mark.asyncio
async def test_klines_shape_ranges_and_aggregation(ex):
    start = DEFAULT_EPOCH_MS - 2 * DAY
    import json

    rows = json.loads(await _klines(ex.base_url, symbol="BTCUSDT", interval="1h", startTime=start))
    assert len(rows) == 48 + 1  # up to the current (open) hour of the simulated clock
    r = rows[0]
    assert r[0] == start and r[6] == start + 3_600_000 - 1 and len(r) == 12
    o, h, lo, c = (float(x) for x in r[1:5])
    assert lo <= min(o, c) <= max(o, c) <= h
    assert all(b[0] - a[0] == 3_600_000 for a, b in pairwise(rows))
    assert all(a[4] == b[1] for a, b in pairwise(rows))  # close = next open
    minutes = json.loads(
        await _klines(ex.base_url, symbol="BTCUSDT", interval="1m", startTime=start, limit=60)
    )
    assert max(float(m[2]) for m in minutes) == float(r[2])
    assert min(float(m[3]) for m in minutes) == float(r[3])
    assert minutes[0][1] == r[1] and minutes[-1][4] == r[4]
    # default limit 500, endTime alone counts back; 1M bars start on the 1st
    assert len(json.loads(await _klines(ex.base_url, symbol="ETHUSDT", interval="1m"))) == 500
    back = json.loads(
        await _klines(ex.base_url, symbol="ETHUSDT", interval="1d", endTime=start, limit=3)
    )
    assert [b[0] for b in back] == [start - 2 * DAY, start - DAY, start]
    months = json.loads(
        await _klines(ex.base_url, symbol="ETHBTC", interval="1M", startTime=0, limit=2)
    )
    assert [m[0] for m in months] == [0, 31 * DAY]
    secs = json.loads(await _klines(ex.base_url, symbol="BTCUSDT", interval="1s", limit=5))
    assert [b[0] - a[0] for a, b in pairwise(secs)] == [1000] * 4


@pytest.mark.asyncio
async def test_klines_errors(ex):
    async with aiohttp.ClientSession() as s:
        cases = [
            ({"interval": "1m"}, -1102),
            ({"symbol": "NOPEUSDT", "interval": "1m"}, -1121),
            ({"symbol": "BTCUSDT", "interval": "2m"}, -1120),
            ({"symbol": "BTCUSDT"}, -1102),
            ({"symbol": "BTCUSDT", "interval": "1m", "limit": 1001}, -1130),
            ({"symbol": "BTCUSDT", "interval": "1m", "limit": 0}, -1130),
            ({"symbol": "BTCUSDT", "interval": "1m", "limit": "ten"}, -1100),
            ({"symbol": "BTCUSDT", "interval": "1m", "startTime": "-5"}, -1100),
            ({"symbol": "BTCUSDT", "interval": "1m", "startTime": 10, "endTime": 5}, -1130),
            ({"symbol": "BTCUSDT", "interval": "1m", "limit": ""}, -1105),
        ]
        for params, code in cases:
            st, body, _ = await call(s, ex, "GET", "/api/v3/klines", params)
            assert st == 400 and body["code"] == code, (params, body)
            assert isinstance(body["msg"], str) and body["msg"]


@pytest.mark.asyncio
async def test_klines_with_ferrotick_client_and_the_cache(ex):
    async with AsyncHTTPClient(retry_config=RetryConfig(max_retries=0)) as client:
        url = f"{ex.base_url}/api/v3/klines"
        params = {
            "symbol": "BTCUSDT",
            "interval": "5m",
            "startTime": DEFAULT_EPOCH_MS - DAY,
            "endTime": DEFAULT_EPOCH_MS - 1,
        }
        first = await (await client.get(url, params=params)).json()
        again = await (await client.get(url, params=params)).json()
        assert first == again and len(first) == 288
    assert ex.stats()["klines_cache_hits"] >= 1


@pytest.mark.asyncio
async def test_depth_book_and_weights(ex):
    async with aiohttp.ClientSession() as s:
        st, d, h = await call(s, ex, "GET", "/api/v3/depth", {"symbol": "BTCUSDT"})
        assert len(d["bids"]) == 100 and len(d["asks"]) == 100 and d["lastUpdateId"] > 0
        assert float(d["bids"][0][0]) < float(d["asks"][0][0])
        assert [float(b[0]) for b in d["bids"]] == sorted(
            (float(b[0]) for b in d["bids"]), reverse=True
        )
        w0 = int(h["X-MBX-USED-WEIGHT-1M"])
        st, full, h = await call(
            s, ex, "GET", "/api/v3/depth", {"symbol": "BTCUSDT", "limit": 5000}
        )
        assert len(full["bids"]) == 5000 and len(full["asks"]) == 5000
        assert int(h["X-MBX-USED-WEIGHT-1M"]) == w0 + 250
        st, big, _ = await call(s, ex, "GET", "/api/v3/depth", {"symbol": "BTCUSDT", "limit": 9000})
        assert len(big["bids"]) == 5000


@pytest.mark.asyncio
async def test_tickers(ex):
    async with aiohttp.ClientSession() as s:
        st, one, _ = await call(s, ex, "GET", "/api/v3/ticker/price", {"symbol": "BTCUSDT"})
        assert one["symbol"] == "BTCUSDT" and float(one["price"]) > 1000
        st, all_, _ = await call(s, ex, "GET", "/api/v3/ticker/price")
        assert [t["symbol"] for t in all_] == ["BTCUSDT", "ETHUSDT", "ETHBTC"]
        st, t, _ = await call(s, ex, "GET", "/api/v3/ticker/24hr", {"symbol": "ETHUSDT"})
        for k in (
            "priceChange",
            "lastPrice",
            "highPrice",
            "lowPrice",
            "volume",
            "count",
            "openTime",
        ):
            assert k in t
        assert float(t["lowPrice"]) <= float(t["lastPrice"]) <= float(t["highPrice"])
        st, bt, _ = await call(s, ex, "GET", "/api/v3/ticker/bookTicker", {"symbol": "ETHBTC"})
        assert float(bt["bidPrice"]) < float(bt["askPrice"])
        st, avg, _ = await call(s, ex, "GET", "/api/v3/avgPrice", {"symbol": "BTCUSDT"})
        assert avg["mins"] == 5


@pytest.mark.asyncio
async def test_signed_request_built_by_hand(ex):
    """The documented recipe: HMAC-SHA256 hex of the query string, signature last."""
    async with aiohttp.ClientSession() as s:
        ts = ex.server_time()
        query = urlencode(
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.01",
                "price": "1000.00",
                "recvWindow": 5000,
                "timestamp": ts,
            }
        )
        sig = sign(query)
        url = f"{ex.base_url}/api/v3/order"
        hdr = {"X-MBX-APIKEY": DEFAULT_API_KEY}
        async with s.post(f"{url}?{query}&signature={sig}", headers=hdr) as r:
            body = await r.json()
            assert r.status == 200, body
            assert body["status"] == "NEW" and body["symbol"] == "BTCUSDT"
            assert r.headers["X-MBX-ORDER-COUNT-10S"] == "1"
        # the same parameters in the body
        async with s.post(
            url,
            data=f"{query}&signature={sig}".encode(),
            headers={**hdr, "Content-Type": "application/x-www-form-urlencoded"},
        ) as r:
            assert r.status == 200, await r.text()
        # one byte of the signature changed
        bad = ("0" if sig[0] != "0" else "1") + sig[1:]
        async with s.post(f"{url}?{query}&signature={bad}", headers=hdr) as r:
            assert r.status == 400 and (await r.json())["code"] == -1022
        # one byte of the payload changed
        async with s.post(
            f"{url}?{query.replace('0.01', '0.02')}&signature={sig}", headers=hdr
        ) as r:
            assert (await r.json())["code"] == -1022


@pytest.mark.asyncio
async def test_signed_request_errors(ex):
    async with aiohttp.ClientSession() as s:
        acct = "/api/v3/account"
        st, b, _ = await call(s, ex, "GET", acct, signed=True, key=None)
        assert (st, b["code"]) == (401, -2014)
        st, b, _ = await call(s, ex, "GET", acct, signed=True, key="nosuchkey")
        assert (st, b["code"]) == (401, -2015)
        now = ex.server_time()
        st, b, _ = await call(s, ex, "GET", acct, signed=True, ts=now + 1500)
        assert (st, b["code"]) == (400, -1021) and "ahead" in b["msg"]
        st, b, _ = await call(s, ex, "GET", acct, signed=True, ts=now - 6000)
        assert b["code"] == -1021 and "recvWindow" in b["msg"]
        st, b, _ = await call(
            s, ex, "GET", acct, {"recvWindow": 10_000}, signed=True, ts=now - 6000
        )
        assert st == 200, b
        st, b, _ = await call(s, ex, "GET", acct, {"recvWindow": 70_000}, signed=True)
        assert b["code"] == -1131
        st, b, _ = await call(s, ex, "GET", acct, {"timestamp": now})
        assert b["code"] == -1102 and "signature" in b["msg"]
        q = urlencode({"recvWindow": 5000})
        st, b, _ = await call(s, ex, "GET", acct + f"?{q}&signature={sign(q)}")
        assert b["code"] == -1102 and "timestamp" in b["msg"]


@pytest.mark.asyncio
async def test_orders_balances_and_trades(ex):
    async with aiohttp.ClientSession() as s:
        st, acct, _ = await call(s, ex, "GET", "/api/v3/account", signed=True)
        bal = {b["asset"]: b for b in acct["balances"]}
        assert bal["USDT"]["free"] == "100000.00000000"
        st, o, _ = await call(
            s,
            ex,
            "POST",
            "/api/v3/order",
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"},
            signed=True,
        )
        assert st == 200 and o["status"] == "FILLED" and o["executedQty"] == "0.01000000", o
        assert o["fills"] and sum(float(f["qty"]) for f in o["fills"]) == pytest.approx(0.01)
        st, acct, _ = await call(s, ex, "GET", "/api/v3/account", signed=True)
        bal = {b["asset"]: b for b in acct["balances"]}
        assert float(bal["BTC"]["free"]) == pytest.approx(2.01)
        assert float(bal["USDT"]["free"]) == pytest.approx(100000 - float(o["cummulativeQuoteQty"]))
        st, trades, _ = await call(
            s, ex, "GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}, signed=True
        )
        assert [t["orderId"] for t in trades] == [o["orderId"]] * len(o["fills"])
        # quote-quantity market buy
        st, q, _ = await call(
            s,
            ex,
            "POST",
            "/api/v3/order",
            {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quoteOrderQty": "100"},
            signed=True,
        )
        assert q["status"] == "FILLED" and float(q["cummulativeQuoteQty"]) <= 100
        # a resting limit order: open, queried, cancelled
        st, lim, _ = await call(
            s,
            ex,
            "POST",
            "/api/v3/order",
            {
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "timeInForce": "GTC",
                "quantity": "0.001",
                "price": "20000.00",
                "newClientOrderId": "mine-1",
            },
            signed=True,
        )
        assert lim["status"] == "NEW" and lim["clientOrderId"] == "mine-1"
        st, open_, _ = await call(
            s, ex, "GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}, signed=True
        )
        assert [x["orderId"] for x in open_] == [lim["orderId"]]
        st, acct, _ = await call(s, ex, "GET", "/api/v3/account", signed=True)
        assert {b["asset"]: b for b in acct["balances"]}["USDT"]["locked"] == "20.00000000"
        st, got, _ = await call(
            s,
            ex,
            "GET",
            "/api/v3/order",
            {"symbol": "BTCUSDT", "origClientOrderId": "mine-1"},
            signed=True,
        )
        assert got["orderId"] == lim["orderId"] and got["status"] == "NEW"
        st, c, _ = await call(
            s,
            ex,
            "DELETE",
            "/api/v3/order",
            {"symbol": "BTCUSDT", "orderId": lim["orderId"]},
            signed=True,
        )
        assert c["status"] == "CANCELED" and c["origClientOrderId"] == "mine-1"
        st, c, _ = await call(
            s,
            ex,
            "DELETE",
            "/api/v3/order",
            {"symbol": "BTCUSDT", "orderId": lim["orderId"]},
            signed=True,
        )
        assert (st, c["code"]) == (400, -2011)
        st, c, _ = await call(
            s, ex, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": 999999}, signed=True
        )
        assert c["code"] == -2013
        st, allo, _ = await call(
            s, ex, "GET", "/api/v3/allOrders", {"symbol": "BTCUSDT"}, signed=True
        )
        assert [x["status"] for x in allo] == ["FILLED", "CANCELED"]


@pytest.mark.asyncio
async def test_order_rejections(ex):
    async with aiohttp.ClientSession() as s:
        base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
        cases = [
            ({**base, "quantity": "0.000015", "price": "20000"}, -1013, "LOT_SIZE"),
            ({**base, "quantity": "0.001", "price": "20000.005"}, -1013, "PRICE_FILTER"),
            ({**base, "quantity": "0.00001", "price": "20000"}, -1013, "NOTIONAL"),
            ({**base, "quantity": "100", "price": "20000"}, -2010, "insufficient"),
            ({**base, "side": "SELL", "quantity": "5", "price": "90000"}, -2010, "insufficient"),
            ({**base, "side": "HOLD", "quantity": "1", "price": "1"}, -1117, "side"),
            ({**base, "type": "STOP", "quantity": "1", "price": "1"}, -1116, "orderType"),
            ({**base, "timeInForce": "GTX", "quantity": "1", "price": "1"}, -1115, "timeInForce"),
            ({**base, "price": "20000"}, -1102, "quantity"),
            ({**base, "quantity": "1e3", "price": "1"}, -1100, "quantity"),
            ({**base, "quantity": "0.0000000001", "price": "1"}, -1111, "precision"),
            ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"}, -1102, "quoteOrderQty"),
            (
                {
                    "symbol": "BTCUSDT",
                    "side": "BUY",
                    "type": "MARKET",
                    "quantity": "1",
                    "price": "1",
                },
                -1106,
                "price",
            ),
            ({**base, "symbol": "XYZUSDT", "quantity": "1", "price": "1"}, -1121, "symbol"),
        ]
        for params, code, word in cases:
            st, b, _ = await call(s, ex, "POST", "/api/v3/order", params, signed=True)
            assert st == 400 and b["code"] == code, (params, b)
            assert word.lower() in b["msg"].lower(), (params, b)


@pytest.mark.asyncio
async def test_bad_input_is_answered_and_the_server_keeps_serving(ex):
    raw = [
        "/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=%ZZ",
        "/api/v3/klines?symbol=BTCUSDT&symbol=ETHUSDT&interval=1m",
        "/api/v3/klines?" + "x=" + "a" * 50_000,
        "/api/v3/depth?symbol=BTCUSDT&limit=99999999999999999999999",
        "/api/v3/ticker/price?symbols=BTCUSDT",
        '/api/v3/ticker/price?symbols=["NOPE"]',
        '/api/v3/exchangeInfo?symbol=BTCUSDT&symbols=["BTCUSDT"]',
        "/api/v3/depth?symbol=%00%ff",
    ]
    async with aiohttp.ClientSession() as s:
        for path in raw:
            async with s.get(ex.base_url + path) as r:
                body = await r.json(content_type=None)
                assert 400 <= r.status < 500 and "code" in body and "msg" in body, (path, body)
        async with s.get(ex.base_url + "/api/v3/nothing") as r:
            assert r.status == 404 and (await r.json())["code"] == -1099
        async with s.post(ex.base_url + "/api/v3/ping") as r:
            assert r.status == 405
        try:  # an oversized body: refused, or the connection closed while sending it
            async with s.post(ex.base_url + "/api/v3/order", data=b"x" * (2 << 20)) as r:
                assert r.status in (400, 413)
        except aiohttp.ClientError:
            pass
        # many clients at once, then the server still answers
        results = await asyncio.gather(
            *(call(s, ex, "GET", "/api/v3/ticker/price", {"symbol": "BTCUSDT"}) for _ in range(50))
        )
        assert all(st == 200 for st, _, _ in results)


def test_blocking_twin_with_urllib():
    import json
    import urllib.request

    with SimulatedExchange(["BNBUSDT"]) as ex:
        with urllib.request.urlopen(f"{ex.base_url}/api/v3/ticker/price?symbol=BNBUSDT") as r:
            assert json.loads(r.read())["symbol"] == "BNBUSDT"
        url = ex.base_url
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/api/v3/ping", timeout=2)


@pytest.mark.asyncio
async def test_blocking_twin_inside_a_loop_stops_without_waiting():
    with SimulatedExchange(["BTCUSDT"]) as ex:
        async with aiohttp.ClientSession() as s:
            assert (await call(s, ex, "GET", "/api/v3/ping"))[0] == 200
    assert ex._server is None


def test_signed_query_helper_matches_the_exchange_sign():
    ex = SimulatedExchange(["BTCUSDT"])
    q = signed_query({"a": 1}, 5)
    assert q.endswith(ex.sign("a=1&timestamp=5"))
