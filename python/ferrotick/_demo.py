"""``ferrotick demo``: a trading service's day in a minute, on this machine.

Starts ferrotick's simulated exchange in-process, runs the analysis pipeline over
many symbols (fetch → resample → indicators → regimes and multi-timeframe signals
→ a SQLite signal store), then streams live klines for a few seconds, updating
indicators and regimes incrementally, and prints a summary: symbols/s, latencies
from the performance monitor, regimes found, signals emitted and stored, weight
used against the exchange's limit, errors isolated.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sqlite3
import sys
import tempfile
import time
from typing import Any

from ._errors import FerrotickError

# Simulated minutes per wall second: live 1m bars close every second.
TIME_SCALE = 60.0
DEFAULT_TIMEFRAMES = "5m,15m,1h"


def _symbols(n: int) -> list[str]:
    known = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT"]
    extra = [f"SIM{i:03d}USDT" for i in range(max(n - len(known), 0))]
    return (known + extra)[:n]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ferrotick demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--symbols", type=int, default=200, help="symbols to process (200)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of live streaming (5)")
    p.add_argument("--bars", type=int, default=3000, help="1m bars fetched per symbol (3000)")
    p.add_argument(
        "--timeframes", default=DEFAULT_TIMEFRAMES, help=f"comma-separated ({DEFAULT_TIMEFRAMES})"
    )
    p.add_argument("--config", help="a config.yml (pipeline limits, influxdb, monitor)")
    p.add_argument("--dir", help="where signals.sqlite3 goes (default: a temporary folder)")
    p.add_argument("--seed", type=int, default=7, help="the simulated market's seed")
    p.add_argument("--json", action="store_true", help="print the summary as JSON only")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _check_args(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    if a.symbols < 1:
        p.error("--symbols must be >= 1")
    if a.duration < 0:
        p.error("--duration must be >= 0")
    if a.bars < 100:
        p.error("--bars must be >= 100")


def _quantiles(metrics: Any, op: str) -> dict[str, float | None]:
    child = metrics.durations.labels(operation_type=op)
    s = child.summary()
    if not s.get("count"):
        return {"p50_ms": None, "p99_ms": None}
    # the sketch answers in the unit observed: seconds
    return {"p50_ms": round(s["p50"] * 1000, 3), "p99_ms": round(s["p99"] * 1000, 3)}


class _Progress:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.bar: Any = None
        self.task: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.task = self.bar.add_task("pipeline", total=total)
            self.bar.start()

    def advance(self, _result: Any = None) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def phase(self, description: str, total: float | None = None) -> None:
        if self.bar is not None:
            self.bar.reset(self.task, total=total, description=description)

    def update(self, completed: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=completed)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


async def _run(a: argparse.Namespace, folder: str) -> dict[str, Any]:
    from .config import load_config
    from .exchange import BinanceConfig, OptimizedBinanceClient
    from .monitor import CollectorRegistry
    from .pipeline import AsyncConfig, AsyncDataProcessor
    from .sim import DEFAULT_API_KEY, DEFAULT_API_SECRET, SimulatedExchange
    from .store import SignalManager

    cfg = load_config(a.config) if a.config else None
    limits = cfg.pipeline if cfg is not None else AsyncConfig(max_concurrent_symbols=50)
    symbols = _symbols(a.symbols)
    timeframes = [t.strip() for t in a.timeframes.split(",") if t.strip()]
    db = os.path.join(folder, "signals.sqlite3")
    registry = CollectorRegistry()
    progress = _Progress(not a.no_progress and not a.json, len(symbols))
    t_start = time.perf_counter()
    try:
        # pings and the pong deadline are simulated seconds: at TIME_SCALE the
        # exchange's 20 s / 60 s would be a third of a second and one second of
        # wall time, too tight for a loaded laptop; one ping per wall second and
        # a ten-second deadline keep the stream honest without flapping
        async with SimulatedExchange(
            symbols,
            seed=a.seed,
            time_scale=TIME_SCALE,
            ws_ping_interval=TIME_SCALE,
            ws_pong_timeout=10 * TIME_SCALE,
            # the demo reads no order books: a shallow book keeps the market cheap
            book_levels=200,
        ) as ex:
            client = OptimizedBinanceClient(
                BinanceConfig(
                    api_key=DEFAULT_API_KEY,
                    api_secret=DEFAULT_API_SECRET,
                    base_url=ex.base_url,
                    ws_url=ex.ws_url,
                    max_concurrent_requests=limits.max_concurrent_requests,
                )
            )
            store = SignalManager(db, signal_types=["REGIME_CHANGE"])
            sinks: list[Any] = [store]
            influx = None
            if cfg is not None and cfg.influxdb is not None:
                influx = cfg.influxdb_writer()
                await influx.start()
                sinks.append(influx)
            async with client:
                proc = AsyncDataProcessor(
                    limits,
                    client=client,
                    bars=a.bars,
                    timeframes=timeframes,
                    sinks=sinks,
                    registry=registry,
                )
                t0 = time.perf_counter()
                res = await proc.process_symbols_parallel(symbols, on_result=progress.advance)
                batch_s = time.perf_counter() - t0
                stream: dict[str, Any] = {}
                if a.duration > 0 and res.succeeded:
                    progress.phase("live stream", total=a.duration)
                    await proc.start_real_time_stream([r.symbol for r in res.succeeded])
                    t1 = time.perf_counter()
                    while (left := a.duration - (time.perf_counter() - t1)) > 0:
                        await asyncio.sleep(min(0.2, left))
                        progress.update(time.perf_counter() - t1)
                    stream = proc.stream_stats()
                    await proc.stop()
                budget = client.budget()
                await proc.close()
            await store.close()
            if influx is not None:
                await influx.close()
    finally:
        progress.stop()
    return _summary(
        a, symbols, res, batch_s, stream, budget, proc, db, time.perf_counter() - t_start
    )


def _summary(
    a: argparse.Namespace,
    symbols: list[str],
    res: Any,
    batch_s: float,
    stream: dict[str, Any],
    budget: dict[str, Any],
    proc: Any,
    db: str,
    total_s: float,
) -> dict[str, Any]:
    regimes = collections.Counter(
        r.results["market_regime"].values["regime"]
        for r in res.succeeded
        if "market_regime" in r.results
    )
    kinds = collections.Counter(s["signal_type"] for s in res.signals)
    with sqlite3.connect(db) as con:
        stored = con.execute("SELECT COUNT(*) FROM signals").fetchone()[0]
    emitted = len(res.signals) + int(stream.get("signals", 0))
    return {
        "symbols_requested": len(symbols),
        "symbols_processed": len(res.succeeded),
        "errors_isolated": len(res.failed),
        "errors": {r.symbol: f"{r.stage}: {type(r.error).__name__}: {r.error}" for r in res.failed},
        "bars_per_symbol": a.bars,
        "timeframes": proc.timeframes,
        "batch_seconds": round(batch_s, 3),
        "symbols_per_second": round(len(res.succeeded) / batch_s, 1) if batch_s else None,
        "latency": {
            op: _quantiles(proc.metrics, op) for op in ("fetch", "resample", "indicators", "sinks")
        },
        "regimes": dict(regimes),
        "signals_emitted": emitted,
        "signals_by_type": dict(kinds),
        "signals_stored": stored,
        "signals_file": db,
        "stream": {
            "seconds": a.duration,
            "bars": int(stream.get("bars", 0)),
            "ticks": int(stream.get("ticks", 0)),
            "signals": int(stream.get("signals", 0)),
            "backfilled": int(stream.get("backfilled", 0)),
            "update_p50_ms": _ms(stream.get("latency_p50")),
            "update_p99_ms": _ms(stream.get("latency_p99")),
            "dropped": int((stream.get("subscription") or {}).get("dropped", 0)),
        },
        "weight": {"used": budget.get("weight_used"), "limit": budget.get("weight_limit")},
        "total_seconds": round(total_s, 3),
    }


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 3)


def _print(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="ferrotick demo", show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    lat = s["latency"]
    st = s["stream"]
    rows = [
        (
            "symbols",
            f"{s['symbols_processed']} of {s['symbols_requested']} processed, "
            f"{s['errors_isolated']} errors isolated",
        ),
        (
            "pipeline",
            f"{s['bars_per_symbol']} 1m bars/symbol → {', '.join(s['timeframes'])} "
            f"in {s['batch_seconds']} s = {s['symbols_per_second']} symbols/s",
        ),
        *(
            (f"  {op} p50/p99", f"{v['p50_ms']} / {v['p99_ms']} ms")
            for op, v in lat.items()
            if v["p50_ms"] is not None
        ),
        ("regimes", ", ".join(f"{k} {v}" for k, v in sorted(s["regimes"].items())) or "-"),
        (
            "signals",
            f"{s['signals_emitted']} emitted ("
            + ", ".join(f"{k} {v}" for k, v in sorted(s["signals_by_type"].items()))
            + f"), {s['signals_stored']} stored in {s['signals_file']}",
        ),
        (
            "live stream",
            f"{st['seconds']} s: {st['bars']} closed bars, {st['ticks']} updates, "
            f"{st['signals']} signals, update p50/p99 {st['update_p50_ms']} / "
            f"{st['update_p99_ms']} ms, {st['dropped']} dropped",
        ),
        ("exchange weight", f"{s['weight']['used']} of {s['weight']['limit']} per minute"),
        ("total", f"{s['total_seconds']} s"),
    ]
    for k, v in rows:
        t.add_row(k, v)
    Console().print(t)
    for sym, err in list(s["errors"].items())[:5]:
        print(f"  {sym}: {err}")


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    a = p.parse_args(argv)
    _check_args(p, a)
    try:
        if a.dir:
            os.makedirs(a.dir, exist_ok=True)
            summary = asyncio.run(_run(a, a.dir))
        else:
            with tempfile.TemporaryDirectory(prefix="ferrotick-demo-") as d:
                summary = asyncio.run(_run(a, d))
                if not a.json:
                    summary["signals_file"] += " (removed at exit; --dir keeps it)"
    except KeyboardInterrupt:
        print("ferrotick demo: interrupted", file=sys.stderr)
        return 130
    except (FerrotickError, OSError) as e:
        print(f"ferrotick demo: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if a.json:
        print(json.dumps(summary, indent=2))
    else:
        _print(summary)
    ok = (
        summary["symbols_processed"] > 0 and summary["signals_stored"] == summary["signals_emitted"]
    )
    return 0 if ok else 1
