"""The data pipeline service of seed 001's plan: many symbols through ferrotick's
``AsyncDataProcessor`` into a durable signal store, then the same analysis kept up to
date from the exchange's live kline streams.

    python examples/data_pipeline.py [--symbols 100] [--stream-seconds 3] [--dir DIR]

Everything runs in this process against ferrotick's simulated exchange (no network).
What it shows:

- a batch over ``--symbols`` symbols plus one unknown symbol, whose failure stays with
  that symbol (reported with its stage and the exchange's error code) while the others
  complete; throughput in symbols per second and the market regime of each symbol;
- the signals (regime changes, multi-timeframe BUY/SELL) stored in SQLite by
  ``SignalManager``, one transaction per batch, and read back from the file;
- a few seconds of the real-time mode: closed 1m klines from the WebSocket update the
  resampler and the analyzers incrementally (O(1) per bar) and emit new signals into
  the same store;
- the pipeline's health checks.

How ferrotick changes the usual code: the usual service fetches with aiohttp, builds a
pandas DataFrame per symbol, resamples it with ``DataFrame.resample`` and runs TA-Lib
in a thread pool, then re-runs everything on each new bar. Here the klines arrive as
numpy columns decoded in Rust, resampling and the indicators run in Rust with the GIL
released, a failed symbol is a result rather than an exception that cancels the
gather, and a new bar costs one incremental update instead of a full recomputation.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import sys
import tempfile
import time
from pathlib import Path

from ferrotick.exchange import BinanceConfig, OptimizedBinanceClient
from ferrotick.pipeline import AsyncConfig, AsyncDataProcessor, ProcessingResults
from ferrotick.sim import SimulatedExchange
from ferrotick.store import SignalManager

UNKNOWN = "NOSUCHUSDT"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--symbols", type=int, default=100, help="symbols in the batch")
    p.add_argument("--bars", type=int, default=1500, help="1m klines fetched per symbol")
    p.add_argument("--stream-seconds", type=float, default=3.0, help="real-time phase length")
    p.add_argument(
        "--time-scale",
        type=float,
        default=120.0,
        help="simulated seconds per wall second (120: a 1m bar closes every 0.5 s)",
    )
    p.add_argument("--dir", type=Path, default=None, help="where signals.sqlite3 goes")
    p.add_argument("--seed", type=int, default=1)
    return p.parse_args(argv)


def report_batch(results: ProcessingResults) -> None:
    ok = results.succeeded
    print(
        f"batch: {len(ok)} symbols ok, {len(results.failed)} failed in {results.seconds:.2f} s "
        f"({len(ok) / results.seconds:.0f} symbols/s, {sum(r.bars for r in ok)} bars)"
    )
    for r in results.failed:
        code = getattr(r.error, "code", None)
        print(f"  failed: {r.symbol} at stage {r.stage}: code {code}: {r.error}")
    regimes = collections.Counter(r.results["market_regime"].values["regime"] for r in ok)
    print("regimes: " + ", ".join(f"{k}={v}" for k, v in sorted(regimes.items())))
    kinds = collections.Counter(s["signal_type"] for s in results.signals)
    print(
        f"batch signals: {len(results.signals)} ("
        + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items()))
        + ")"
    )


async def run(args: argparse.Namespace, db: Path) -> int:
    began = time.time()
    symbols = [f"S{i:03d}USDT" for i in range(args.symbols)]
    # book_levels: a shallow simulated book keeps the simulator's own CPU use low
    # with many symbols listed (it moves every level of every book as time passes)
    async with SimulatedExchange(
        symbols, seed=args.seed, time_scale=args.time_scale, book_levels=200
    ) as ex:
        config = BinanceConfig(base_url=ex.base_url, ws_url=ex.ws_url)
        store = SignalManager(db, signal_types=["REGIME_CHANGE"], synchronous="NORMAL")
        async with OptimizedBinanceClient(config) as client:
            processor = AsyncDataProcessor(
                AsyncConfig(max_concurrent_symbols=20, retry_attempts=1),
                client=client,
                bars=args.bars,
                timeframes=["5m", "15m", "1h"],
                sinks=[store],
            )
            try:
                results = await processor.process_symbols_parallel([*symbols, UNKNOWN])
                report_batch(results)
                ok_symbols = [r.symbol for r in results.succeeded]
                if not ok_symbols:
                    print("FAILED: no symbol completed the batch")
                    return 1

                t0 = time.perf_counter()
                await processor.start_real_time_stream(ok_symbols)
                started = time.perf_counter() - t0
                await asyncio.sleep(args.stream_seconds)
                stats = processor.stream_stats()
                health = processor.health_checker()
                store.register_health_check(health)
                checks = await health.check_async_operations()
                await processor.stop()
                p99 = stats.get("latency_p99")
                print(
                    f"stream: {len(ok_symbols)} symbols subscribed in {started:.2f} s, then "
                    f"{args.stream_seconds:g} s: "
                    f"{stats.get('bars', 0)} closed bars, {stats.get('signals', 0)} signals, "
                    f"p99 update "
                    + (f"{p99 * 1000:.2f} ms" if p99 is not None else "n/a")
                    + f", {stats['subscription'].get('dropped', 0)} dropped"
                )
                print(
                    "health: "
                    + ", ".join(f"{k}={'ok' if v else 'FAIL'}" for k, v in checks.items())
                )
            finally:
                await processor.close()  # stops the stream, flushes and closes the store

    # read back from the file, as another process would (an earlier run's rows in
    # the same --dir are counted apart)
    reader = SignalManager(db, signal_types=["REGIME_CHANGE"])
    try:
        rows = await reader.get_signals_async(since=began, include_expired=True)
        in_file = len(await reader.get_signals_async(include_expired=True))
    finally:
        await reader.close()
    kinds = collections.Counter(r.signal_type for r in rows)
    print(
        f"stored: {len(rows)} signals in {db} ("
        + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items()))
        + f"; {in_file} in the file)"
    )
    expected = len(results.signals) + stats.get("signals", 0)
    if len(rows) != expected:
        print(f"FAILED: {expected} signals emitted, {len(rows)} stored")
        return 1
    if not stats.get("bars") or not all(checks.values()):
        print("FAILED: the stream saw no closed bar or a health check failed")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        return asyncio.run(run(args, args.dir / "signals.sqlite3"))
    with tempfile.TemporaryDirectory() as d:
        return asyncio.run(run(args, Path(d) / "signals.sqlite3"))


if __name__ == "__main__":
    sys.exit(main())
