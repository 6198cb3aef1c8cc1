"""The local order book (Rust) fed from the simulated exchange's /depth snapshot and
@depth diff frames: U/u rules, a resync after skipped diffs, equality with the exchange's
book, bounded depth."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import numpy as np
import pytest

from ferrotick import ConfigError, ExchangeError
from ferrotick.exchange import OrderBook
from ferrotick.sim import SimulatedExchange


async def _depth(s, ex, limit=5000) -> bytes:
    async with s.get(
        f"{ex.base_url}/api/v3/depth", params={"symbol": "ETHUSDT", "limit": limit}
    ) as r:
        return await r.read()


async def _frames(ws, seconds):
    """The frames that arrive within `seconds`."""
    out = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            m = await asyncio.wait_for(ws.receive(), left)
        except asyncio.TimeoutError:
            break
        if m.type != aiohttp.WSMsgType.TEXT:
            break
        out.append(m.data.encode())
    return out


@pytest.mark.asyncio
async def test_book_resyncs_after_skipped_diffs_and_equals_the_exchange():
    async with SimulatedExchange(["ETHUSDT"], book_levels=1000, trade_rate=200) as ex:
        ex.set_faults(depth_skip_rate=0.2)
        book = OrderBook(max_depth=5000)
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"{ex.ws_url}/ws/ethusdt@depth@100ms") as ws:
                first = await _frames(ws, 0.25)
                assert book.apply_diffs(first)[0] == 0 and book.buffered == len(first)
                assert book.apply_snapshot(await _depth(s, ex)) in ("applied", "gap")
                deadline = time.monotonic() + 2
                while time.monotonic() < deadline:
                    n, gap = book.apply_diffs(await _frames(ws, 0.15))
                    if gap or not book.synced:
                        book.apply_snapshot(await _depth(s, ex))
                assert book.gaps >= 1  # skipped diffs were noticed
                ex.set_faults(depth_skip_rate=0.0)
                for _ in range(20):
                    _, gap = book.apply_diffs(await _frames(ws, 0.2))
                    if not gap and book.synced:
                        break
                    book.apply_snapshot(await _depth(s, ex))
                ex.freeze(True)
                await asyncio.sleep(0.1)
                book.apply_diffs(await _frames(ws, 0.3))
                final = await _depth(s, ex)
                ex.freeze(False)
    import json

    f = json.loads(final)
    assert book.synced and book.last_update_id == f["lastUpdateId"]
    bids, asks = book.depth(10_000)
    assert bids[:, 0].tolist() == [float(p) for p, _ in f["bids"]]
    assert bids[:, 1].tolist() == [float(q) for _, q in f["bids"]]
    assert asks[:, 0].tolist() == [float(p) for p, _ in f["asks"]]
    assert book.best_bid() == (bids[0, 0], bids[0, 1])
    assert book.mid() == pytest.approx((bids[0, 0] + asks[0, 0]) / 2)


def test_depth_is_bounded_and_bad_frames_fail_clearly():
    book = OrderBook(max_depth=3)
    snap = (
        b'{"lastUpdateId":10,"bids":'
        + str([[f"{p}.0", "1"] for p in range(1, 11)]).replace("'", '"').encode()
        + b',"asks":[["20.5","2"],["21","1"],["22","1"],["23","1"]]}'
    )
    assert book.apply_snapshot(snap) == "applied"
    assert len(book) == 6
    assert book.best_bid() == (10.0, 1.0) and book.best_ask() == (20.5, 2.0)
    b, a = book.depth(2)
    assert b.shape == (2, 2) and a[:, 0].tolist() == [20.5, 21.0]
    assert book.apply_diff(b'{"U":5,"u":10,"b":[],"a":[]}') == "stale"
    assert book.apply_diff(b'{"U":11,"u":11,"b":[["10.0","0"]],"a":[]}') == "applied"
    assert book.best_bid() == (9.0, 1.0)
    assert book.apply_diff(b'{"U":13,"u":14,"b":[],"a":[]}') == "gap"
    assert not book.synced and book.best_bid() is None
    assert np.asarray(book.depth(5)[0]).shape == (0, 2)
    for bad in (
        b"{",
        b'{"U":1}',
        b'{"U":3,"u":2,"b":[],"a":[]}',
        b'{"U":1,"u":2,"b":[["x","1"]],"a":[]}',
    ):
        with pytest.raises(ExchangeError, match="malformed"):
            book.apply_diff(bad)
    with pytest.raises(ConfigError, match="max_depth"):
        OrderBook(max_depth=0)


def test_book_applies_a_million_levels_a_second():
    book = OrderBook(max_depth=1000)
    book.apply_snapshot(b'{"lastUpdateId":0,"bids":[],"asks":[]}')
    frames = []
    for i in range(2000):
        lv = ",".join(f'["{100 + (i * 7 + j) % 500}.25","{(i + j) % 5}"]' for j in range(50))
        frames.append(f'{{"U":{i + 1},"u":{i + 1},"b":[{lv}],"a":[]}}'.encode())
    t = time.perf_counter()
    n, gap = book.apply_diffs(frames)
    dt = time.perf_counter() - t
    assert n == 2000 and not gap
    rate = book.levels_applied / dt
    print(f"book: {rate / 1e6:.2f}M levels/s")
    assert rate > 300_000  # a loose floor for a loaded CI machine
