"""The simulated exchange's WebSocket streams over real sockets: raw and combined
endpoints, subscriptions, ordering and ids, order-book sync, pings, lifetime, limits,
bad input and replay."""

from __future__ import annotations

import asyncio
import json
from itertools import pairwise

import aiohttp
import pytest

from ferrotick.sim import SimulatedExchange


async def recv_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0):
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


@pytest.mark.asyncio
async def test_raw_trade_stream_in_order():
    async with SimulatedExchange(["BTCUSDT"], trade_rate=500) as ex, aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{ex.ws_url}/ws/btcusdt@trade") as ws:
            events = [await recv_json(ws) for _ in range(50)]
    assert {e["e"] for e in events} == {"trade"}
    ids = [e["t"] for e in events]
    assert ids == list(range(ids[0], ids[0] + 50))
    assert all(a["T"] <= b["T"] for a, b in pairwise(events))
    e = events[0]
    assert set(e) == {"e", "E", "s", "t", "p", "q", "T", "m", "M"} and e["s"] == "BTCUSDT"
    assert len(json.dumps(e, separators=(",", ":"))) < 160


@pytest.mark.asyncio
async def test_combined_streams_and_subscriptions():
    async with SimulatedExchange(["BTCUSDT", "ETHUSDT"], trade_rate=200, time_scale=10) as ex:
        async with aiohttp.ClientSession() as s:
            url = f"{ex.ws_url}/stream?streams=btcusdt@trade/ethusdt@aggTrade"
            async with s.ws_connect(url) as ws:
                seen = set()
                while seen != {"btcusdt@trade", "ethusdt@aggTrade"}:
                    m = await recv_json(ws)
                    assert set(m) == {"stream", "data"}
                    seen.add(m["stream"])
                    if m["stream"] == "ethusdt@aggTrade":
                        assert m["data"]["e"] == "aggTrade" and m["data"]["f"] == m["data"]["l"]
            async with s.ws_connect(f"{ex.ws_url}/ws") as ws:
                await ws.send_json(
                    {
                        "method": "SUBSCRIBE",
                        "id": 1,
                        "params": ["ethusdt@kline_1m", "btcusdt@bookTicker", "btcusdt@ticker"],
                    }
                )
                kinds = {}
                while not {"kline", "24hrTicker", "bookTicker", "result"} <= set(kinds):
                    m = await recv_json(ws)
                    if "id" in m:
                        assert m == {"result": None, "id": 1}
                        kinds["result"] = m
                    elif "e" in m:
                        kinds[m["e"]] = m
                    else:
                        kinds["bookTicker"] = m
                k = kinds["kline"]["k"]
                assert k["i"] == "1m" and k["s"] == "ETHUSDT" and k["T"] - k["t"] == 59_999
                assert float(kinds["bookTicker"]["b"]) < float(kinds["bookTicker"]["a"])
                await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": "x"})
                while (m := await recv_json(ws)).get("id") != "x":
                    pass
                assert m["result"] == ["btcusdt@bookTicker", "btcusdt@ticker", "ethusdt@kline_1m"]
                await ws.send_json(
                    {
                        "method": "UNSUBSCRIBE",
                        "id": 3,
                        "params": ["btcusdt@bookTicker", "btcusdt@ticker"],
                    }
                )
                await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 4})
                while (m := await recv_json(ws)).get("id") != 4:
                    pass
                assert m["result"] == ["ethusdt@kline_1m"]


@pytest.mark.asyncio
async def test_depth_snapshot_plus_diffs_reproduces_the_book():
    async with SimulatedExchange(["ETHUSDT"], book_levels=1000, trade_rate=100) as ex:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"{ex.ws_url}/ws/ethusdt@depth@100ms") as ws:
                buffered = [await recv_json(ws)]
                async with s.get(
                    f"{ex.base_url}/api/v3/depth", params={"symbol": "ETHUSDT", "limit": 5000}
                ) as r:
                    snap = await r.json()
                book = {"b": {p: q for p, q in snap["bids"]}, "a": {p: q for p, q in snap["asks"]}}
                last = snap["lastUpdateId"]
                await asyncio.sleep(0.6)
                ex.freeze(True)
                await asyncio.sleep(0.1)
                while True:
                    try:
                        buffered.append(await recv_json(ws, timeout=0.3))
                    except asyncio.TimeoutError:
                        break
                applied, prev_u = 0, None
                for ev in buffered:
                    if ev["u"] <= last:
                        continue
                    if prev_u is None:
                        assert ev["U"] <= last + 1 <= ev["u"]
                    else:
                        assert ev["U"] == prev_u + 1
                    prev_u = ev["u"]
                    for side in ("b", "a"):
                        for p, q in ev[side]:
                            if float(q) == 0:
                                book[side].pop(p, None)
                            else:
                                book[side][p] = q
                    applied += 1
                assert applied >= 3
                async with s.get(
                    f"{ex.base_url}/api/v3/depth", params={"symbol": "ETHUSDT", "limit": 5000}
                ) as r:
                    final = await r.json()
                ex.freeze(False)
    assert final["lastUpdateId"] == prev_u
    assert book["b"] == dict(final["bids"]) and book["a"] == dict(final["asks"])


@pytest.mark.asyncio
async def test_server_pings_and_pong_deadline():
    # time_scale 100: ping every 0.2 s, pong deadline 0.6 s of wall time
    async with SimulatedExchange(["BTCUSDT"], time_scale=100.0, trade_rate=0) as ex:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"{ex.ws_url}/ws/btcusdt@trade", autoping=False) as ws:
                m = await asyncio.wait_for(ws.receive(), 2)
                assert m.type == aiohttp.WSMsgType.PING
                t0 = asyncio.get_running_loop().time()
                while True:  # never answer: the server closes within the deadline
                    m = await asyncio.wait_for(ws.receive(), 3)
                    if m.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        break
                assert asyncio.get_running_loop().time() - t0 < 2.0
                assert ws.close_code == 1008
            async with s.ws_connect(f"{ex.ws_url}/ws/btcusdt@trade") as ws:  # autopong
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(ws.receive(), 1.5)
                assert not ws.closed
        stats = ex.stats()
        assert stats["ws_pong_timeouts"] == 1 and stats["ws_pings"] >= 5


@pytest.mark.asyncio
async def test_lifetime_ends_with_server_shutdown():
    async with SimulatedExchange(["BTCUSDT"], ws_lifetime=30, time_scale=60, trade_rate=0) as ex:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"{ex.ws_url}/ws/btcusdt@trade") as ws:
                m = await recv_json(ws, timeout=3)
                assert m["e"] == "serverShutdown" and isinstance(m["E"], int)
                m = await asyncio.wait_for(ws.receive(), 2)
                assert m.type == aiohttp.WSMsgType.CLOSE and m.data == 1001


@pytest.mark.asyncio
async def test_limits_and_bad_input():
    async with SimulatedExchange(["BTCUSDT"], ws_max_streams=3, trade_rate=0) as ex:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"{ex.ws_url}/ws") as ws:
                await ws.send_str("{not json")
                assert (await recv_json(ws))["error"]["code"] == 3
                await ws.send_json({"method": "SUBSCRIBE", "params": ["nope@trade"], "id": 1})
                assert (await recv_json(ws)) == {
                    "error": {"code": 2, "msg": "Invalid request: unknown stream 'nope@trade'"},
                    "id": 1,
                }
                await ws.send_json(
                    {
                        "method": "SUBSCRIBE",
                        "id": 2,
                        "params": [
                            "btcusdt@trade",
                            "btcusdt@aggTrade",
                            "btcusdt@ticker",
                            "btcusdt@depth",
                        ],
                    }
                )
                m = await recv_json(ws)
                assert m["error"]["code"] == 2 and "too many streams" in m["error"]["msg"]
                await ws.send_json({"method": 5, "id": 3})
                assert (await recv_json(ws))["error"]["code"] == 1
            # more than 5 messages a second: disconnected
            async with s.ws_connect(f"{ex.ws_url}/ws") as ws:
                for i in range(7):
                    await ws.send_json({"method": "LIST_SUBSCRIPTIONS", "id": i})
                while True:
                    m = await asyncio.wait_for(ws.receive(), 3)
                    if m.type != aiohttp.WSMsgType.TEXT:
                        break
                assert m.type == aiohttp.WSMsgType.CLOSE and m.data == 1008
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                await s.ws_connect(f"{ex.ws_url}/ws/nope@trade")
            assert e.value.status == 400
            async with s.ws_connect(f"{ex.ws_url}/stream?streams=btcusdt@trade") as ws:
                assert not ws.closed  # still serving
        assert ex.stats()["ws_rate_closes"] == 1


@pytest.mark.asyncio
async def test_replay_sends_pre_serialised_frames():
    async with SimulatedExchange(["BTCUSDT"]) as ex, aiohttp.ClientSession() as s:
        async with s.ws_connect(f"{ex.ws_url}/replay?count=10000", max_msg_size=0) as ws:
            n, ids = 0, []
            async for m in ws:
                if m.type != aiohttp.WSMsgType.TEXT:
                    break
                if n < 5:
                    ids.append(json.loads(m.data)["t"])
                n += 1
        assert n == 10000 and ids == list(range(ids[0], ids[0] + 5))
        ex.set_replay([b'{"a":1}', '{"a":2}'])
        async with s.ws_connect(f"{ex.ws_url}/replay?count=5") as ws:
            got = [m.data async for m in ws if m.type == aiohttp.WSMsgType.TEXT]
        assert got == ['{"a":1}', '{"a":2}', '{"a":1}', '{"a":2}', '{"a":1}']
        assert ex.stats()["replay_frames"] == 10005
