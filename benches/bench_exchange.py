"""The exchange client against the simulated exchange (its own process, pinned to one core,
started by bench_sim's helpers; limits off).

``exchange_klines_1000x``: klines of 1,000 bars for ``ops`` distinct ranges at 32 requests
in flight, converted to float64/int64 arrays: ferrotick's ``get_klines`` (parsed into
columns in Rust) against aiohttp + json + numpy doing the same conversion. python-binance
and ccxt are not test requirements yet; aiohttp stands in for their transport here.

``exchange_book_levels``: diff levels applied to the local order book (2,000 frames of
50 levels), ops are levels.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_sim  # noqa: E402
from run import Benchmark, Measurement, timed  # noqa: E402

CONCURRENCY = 32
MIN = 60_000


def _starts(n: int) -> list[int]:
    return [bench_sim.EPOCH - (i + 1) * 1000 * MIN for i in range(n)]


def _ferrotick_klines(ops: int) -> Measurement:
    from ferrotick.exchange import BinanceConfig, OptimizedBinanceClient

    url = f"http://127.0.0.1:{bench_sim._server('sim').port}"

    async def go() -> None:
        c = OptimizedBinanceClient(BinanceConfig(base_url=url, max_concurrent_requests=CONCURRENCY))
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(s: int) -> None:
            async with sem:
                k = await c.get_klines("BTCUSDT", "1m", start=s, limit=1000)
                assert len(k) == 1000

        await asyncio.gather(*(one(s) for s in _starts(ops)))
        await c.close()

    return timed(lambda: asyncio.run(go()), ops)


def _aiohttp_klines(ops: int) -> Measurement:
    import aiohttp
    import numpy as np

    url = f"http://127.0.0.1:{bench_sim._server('sim').port}/api/v3/klines"

    async def go() -> None:
        conn = aiohttp.TCPConnector(limit=CONCURRENCY)
        async with aiohttp.ClientSession(connector=conn) as s:
            sem = asyncio.Semaphore(CONCURRENCY)

            async def one(start: int) -> None:
                p = {"symbol": "BTCUSDT", "interval": "1m", "startTime": start, "limit": 1000}
                async with sem, s.get(url, params=p) as r:
                    rows = json.loads(await r.read())
                t = np.array([x[0] for x in rows], dtype=np.int64)
                ohlcv = np.array([[float(v) for v in x[1:6]] for x in rows])
                assert len(t) == 1000 and ohlcv.shape == (1000, 5)

            await asyncio.gather(*(one(x) for x in _starts(ops)))

    return timed(lambda: asyncio.run(go()), ops)


def _frames() -> list[bytes]:
    out = []
    for i in range(2000):
        lv = ",".join(f'["{100 + (i * 7 + j) % 500}.25","{(i + j) % 5}"]' for j in range(50))
        out.append(f'{{"U":{i + 1},"u":{i + 1},"b":[{lv}],"a":[]}}'.encode())
    return out


def _book(ops: int) -> Measurement:
    from ferrotick.exchange import OrderBook

    frames = _frames()
    rounds = max(1, ops // 100_000)

    def go() -> None:
        for _ in range(rounds):
            b = OrderBook(max_depth=1000)
            b.apply_snapshot(b'{"lastUpdateId":0,"bids":[],"asks":[]}')
            b.apply_diffs(frames)

    return timed(go, rounds * 100_000)


BENCHMARKS = [
    Benchmark(
        name="exchange_klines_1000x",
        description=(
            "klines of 1,000 bars for distinct ranges, 32 in flight, to float64 arrays; "
            "ferrotick get_klines vs aiohttp + json + numpy; the simulator in its own "
            "process pinned to one core. Ops are requests."
        ),
        contenders={"ferrotick": _ferrotick_klines, "aiohttp+json": _aiohttp_klines},
        ops=1000,
        quick_ops=100,
        targets={"aiohttp+json": 2.0},
        unit="request",
    ),
    Benchmark(
        name="exchange_book_levels",
        description="diff levels applied to the local order book (frames parsed in Rust)",
        contenders={"ferrotick": _book},
        ops=1_000_000,
        quick_ops=100_000,
        unit="level",
    ),
]
