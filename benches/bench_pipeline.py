"""The analysis pipeline: resampling, incremental resampling, the whole batch
pipeline against the simulated exchange, and the real-time stream.

``resample_matrix_5m``: 1,000 symbols x 10,000 one-minute bars (2-D float64
arrays, symbols x bars, and the shared int64 open times) to 5m bars: ferrotick's
``pipeline_resample_matrix`` (rows in parallel on the compute pool) against numpy
(bucket boundaries from integer division of the times, then ``reduceat`` along
axis 1 and first/last by index) and polars ``group_by_dynamic`` over the same
data in long format (one frame of symbol, time and OHLCV, built before the
clock starts). Every contender's output is checked against ferrotick's.

``resample_incremental_5tf`` / ``resample_incremental_5tf_chunks``: one symbol's
1m bars into 5m, 15m, 1h, 4h and 1d as they arrive: ferrotick's ``Resampler``
(``update`` per bar, or ``update_many`` on chunks of 1,000 bars), draining the
closed bars every 1,000 bars, against a pure-Python aggregator (below) fed the
same bars the same way. Outputs are checked equal.

``pipeline_end_to_end``: N symbols x 5,000 one-minute bars (5 pages each) from
ferrotick's simulated exchange in its own process pinned to CPU 0 with taskset
(``serve`` below: request limits off, no trades, the market driver frozen, as its
per-symbol tick would otherwise take most of that core at 1,000 symbols), resampled to 5m, 15m, 1h and 4h, 10 indicators per timeframe,
regime, multi-timeframe signals; the contender runs pinned to CPU 1 (every
thread of this process). ferrotick's ``AsyncDataProcessor`` against the usual
way: ``asyncio.gather`` under a ``Semaphore``, aiohttp + orjson fetching the same
pages, one pandas DataFrame per symbol, ``DataFrame.resample`` per timeframe,
TA-Lib for the indicators and ADX/+DI/-DI/ATR, and a regime/alignment rule in
pandas/numpy. The simulator's clock runs 60x wall time so that no kline page is
ever requested twice: every response is generated, for both contenders (its
response cache favours neither).

``pipeline_stream``: 500 symbols' 1m kline streams from the simulator (clock at
60x: every symbol closes a bar each second) through
``AsyncDataProcessor.start_real_time_stream``; report only (no peer): the time
column is the p99 update latency from ``stream_stats()``, the description gets
p50/p99 and the process RSS after 1 minute and at the end.

    python benches/run.py --only resample_     # the three resampling rows
    python benches/run.py --only pipeline_     # end to end and the stream
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import functools
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import Benchmark, Measurement, timed  # noqa: E402

from ferrotick import _core  # noqa: E402

MIN = 60_000
# Bars start 3 minutes into a 5m bucket, so the first bucket of every timeframe
# is a short one.
T0 = 1_704_067_200_000 + 3 * MIN
SERVER_CPU = 0
CLIENT_CPU = 1


def _runner_flags() -> tuple[bool, int]:
    """run.py's ``--quick`` and round count, read from the command line the same way."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rounds", type=int, default=None)
    a, _ = p.parse_known_args()
    return a.quick, max(5, a.rounds or (5 if a.quick else 7))


QUICK, ROUNDS = _runner_flags()


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def _pinned(cpu: int) -> Iterator[None]:
    """Every thread of this process on ``cpu`` (threads started meanwhile inherit
    it); the previous affinity back on every thread afterwards."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) <= cpu:
        yield
        return
    before = os.sched_getaffinity(0)

    def set_all(cpus: set[int]) -> None:
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(tid), cpus)

    set_all({cpu})
    try:
        yield
    finally:
        set_all(before)


# -- data ------------------------------------------------------------------------------------


@functools.cache
def _matrix(m: int, n: int) -> tuple[np.ndarray, ...]:
    """open_time (n,) and open/high/low/close/volume (m, n), C-contiguous."""
    rng = np.random.default_rng(21)
    close = 100 + rng.normal(0, 0.1, (m, n)).cumsum(axis=1)
    spread = np.abs(rng.normal(0, 0.05, (m, n)))
    high = close + spread
    low = close - spread
    open_ = low + (high - low) * rng.random((m, n))
    volume = rng.integers(1, 1000, (m, n)).astype(np.float64)
    t = T0 + np.arange(n, dtype=np.int64) * MIN
    return t, open_, high, low, close, volume


# -- resample_matrix_5m ----------------------------------------------------------------------

MATRIX_BARS = 10_000
W5 = 5 * MIN


def _matrix_ferrotick(m: int) -> tuple[np.ndarray, ...]:
    t, *cols = _matrix(m, MATRIX_BARS)
    out = _core.pipeline_resample_matrix(t, *cols, width=W5, origin=0, interval=MIN)
    return out[:6]


def _matrix_numpy(m: int) -> tuple[np.ndarray, ...]:
    t, o, h, lo, c, v = _matrix(m, MATRIX_BARS)
    b = t // W5
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    ends = np.r_[starts[1:], len(t)] - 1
    return (
        b[starts] * W5,
        o[:, starts],
        np.maximum.reduceat(h, starts, axis=1),
        np.minimum.reduceat(lo, starts, axis=1),
        c[:, ends],
        np.add.reduceat(v, starts, axis=1),
    )


@functools.cache
def _long_frame(m: int) -> Any:
    import polars as pl

    t, o, h, lo, c, v = _matrix(m, MATRIX_BARS)
    n = len(t)
    return pl.DataFrame(
        {
            "symbol": np.repeat(np.arange(m, dtype=np.int32), n),
            "time": pl.Series(np.tile(t, m)).cast(pl.Datetime("ms")),
            "open": o.ravel(),
            "high": h.ravel(),
            "low": lo.ravel(),
            "close": c.ravel(),
            "volume": v.ravel(),
        }
    ).with_columns(pl.col("time").set_sorted())


def _matrix_polars(m: int) -> Any:
    import polars as pl

    return (
        _long_frame(m)
        .group_by_dynamic("time", every="5m", group_by="symbol")
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
    )


def _polars_as_matrix(df: Any, m: int) -> tuple[np.ndarray, ...]:
    df = df.sort("symbol", "time")
    k = len(df) // m
    t = df["time"].cast(int).to_numpy()[:k]
    cols = [df[c].to_numpy().reshape(m, k) for c in ("open", "high", "low", "close", "volume")]
    return (t, *cols)


_checked: set[tuple[str, int]] = set()


def _check_matrix(label: str, m: int, got: tuple[np.ndarray, ...]) -> None:
    """Prices equal to ferrotick's bit for bit, volumes to 1e-12 (summation order)."""
    if (label, m) in _checked:
        return
    want = _matrix_ferrotick(m)
    assert np.array_equal(got[0], want[0]), f"{label}: bucket open times differ"
    for name, g, w in zip(("open", "high", "low", "close"), got[1:5], want[1:5], strict=True):
        assert np.array_equal(g, w), f"{label}: {name} differs from ferrotick's"
    assert np.allclose(got[5], want[5], rtol=1e-12, atol=0), f"{label}: volume differs"
    _checked.add((label, m))


def _matrix_contender(label: str):
    def run(ops: int) -> Measurement:
        box: list[Any] = []
        if label == "polars":
            _long_frame(ops)
            meas = timed(lambda: box.append(_matrix_polars(ops)), ops)
            got = _polars_as_matrix(box[0], ops)
        else:
            f = _matrix_ferrotick if label == "ferrotick" else _matrix_numpy
            _matrix(ops, MATRIX_BARS)
            meas = timed(lambda: box.append(f(ops)), ops)
            got = box[0]
        if label != "ferrotick":
            _check_matrix(label, ops, got)
        return meas

    return run


def _matrix_bench() -> Benchmark:
    return Benchmark(
        name="resample_matrix_5m",
        description=(
            "N symbols x 10,000 one-minute bars to 5m bars (ops = symbols); every contender "
            "starts from the same 2-D float64 arrays (symbols x bars) and int64 open times: "
            "ferrotick `_core.pipeline_resample_matrix` (rows in parallel on the compute pool, "
            "2 threads here), numpy (buckets by integer division, `np.maximum/minimum/add."
            "reduceat` along axis 1, first/last by index; one thread) and polars "
            '`group_by_dynamic("time", every="5m", group_by="symbol")` with first/max/min/'
            "last/sum over the same data in long format (the frame is built before the clock "
            "starts; polars uses both cores). Outputs checked equal to ferrotick's (prices bit "
            "for bit, volume to 1e-12)."
        ),
        contenders={
            "ferrotick": _matrix_contender("ferrotick"),
            "numpy reduceat": _matrix_contender("numpy"),
            "polars": _matrix_contender("polars"),
        },
        ops=1000,
        quick_ops=100,
        targets={"numpy reduceat": 1.0, "polars": 3.0},
        unit="symbol",
    )


# -- resample_incremental_5tf ----------------------------------------------------------------

WIDTHS = (5 * MIN, 15 * MIN, 60 * MIN, 240 * MIN, 1440 * MIN)
CHUNK = 1000


class PyAggregator:
    """Bars into several fixed-width timeframes (buckets from UTC 00:00), in plain
    Python: the current bar of each timeframe is a list ``[open_time, o, h, l, c, v]``
    updated in place until a bar at or past its bucket's end arrives, then appended
    to that timeframe's ``out``. Bars not after the previous one are skipped. (Of
    the variants tried, keeping each bucket's end beats a modulo per bar by ~20%.)"""

    __slots__ = ("widths", "cur", "ends", "out", "last")

    def __init__(self, widths: tuple[int, ...]) -> None:
        self.widths = widths
        self.cur: list[Any] = [None] * len(widths)
        self.ends = [-(2**62)] * len(widths)
        self.out: list[list[list[Any]]] = [[] for _ in widths]
        self.last = -(2**62)

    def update(self, t: int, o: float, h: float, lo: float, c: float, v: float) -> int:
        if t <= self.last:
            return 0
        self.last = t
        closed = 0
        cur = self.cur
        ends = self.ends
        for i in range(len(cur)):
            b = cur[i]
            if t < ends[i]:
                if h > b[2]:
                    b[2] = h
                if lo < b[3]:
                    b[3] = lo
                b[4] = c
                b[5] += v
            else:
                if b is not None:
                    self.out[i].append(b)
                    closed += 1
                w = self.widths[i]
                k = t - t % w
                ends[i] = k + w
                cur[i] = [k, o, h, lo, c, v]
        return closed

    def drain(self) -> list[list[list[Any]]]:
        out, self.out = self.out, [[] for _ in self.widths]
        return out


@functools.cache
def _series(n: int) -> tuple[np.ndarray, ...]:
    t, *cols = _matrix(1, n)
    return (t, *(np.ascontiguousarray(c[0]) for c in cols))


@functools.cache
def _rows(n: int) -> list[list[tuple[Any, ...]]]:
    """The bars as Python tuples, in chunks of CHUNK (what a feed hands over)."""
    t, o, h, lo, c, v = (x.tolist() for x in _series(n))
    rows = list(zip(t, o, h, lo, c, v, strict=True))
    return [rows[i : i + CHUNK] for i in range(0, n, CHUNK)]


def _ft_drained(r: Any) -> list[tuple[np.ndarray, ...]]:
    return [r.drain(k)[:6] for k in range(len(WIDTHS))]


def _incr_update(ops: int) -> tuple[Measurement, Any]:
    chunks = _rows(ops)
    got: list[Any] = []

    def run() -> None:
        r = _core.Resampler(MIN, [(w, 0) for w in WIDTHS])
        up = r.update
        for chunk in chunks:
            for t, o, h, lo, c, v in chunk:
                up(t, o, h, lo, c, v)
            got.append(_ft_drained(r))

    return timed(run, ops), got


def _incr_many(ops: int) -> tuple[Measurement, Any]:
    t, o, h, lo, c, v = _series(ops)
    got: list[Any] = []

    def run() -> None:
        r = _core.Resampler(MIN, [(w, 0) for w in WIDTHS])
        um = r.update_many
        for i in range(0, ops, CHUNK):
            s = slice(i, i + CHUNK)
            um(t[s], o[s], h[s], lo[s], c[s], v[s])
            got.append(_ft_drained(r))

    return timed(run, ops), got


def _incr_python(ops: int) -> tuple[Measurement, Any]:
    chunks = _rows(ops)
    got: list[Any] = []

    def run() -> None:
        agg = PyAggregator(WIDTHS)
        up = agg.update
        for chunk in chunks:
            for t, o, h, lo, c, v in chunk:
                up(t, o, h, lo, c, v)
            got.append(agg.drain())

    return timed(run, ops), got


def _ft_columns(got: list[Any], k: int) -> np.ndarray:
    parts = [np.column_stack(d[k]) for d in got if len(d[k][0])]
    return np.concatenate(parts) if parts else np.zeros((0, 6))


def _py_columns(got: list[Any], k: int) -> np.ndarray:
    rows = [b for d in got for b in d[k]]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 6)


def _check_incremental(ft: list[Any], py: list[Any]) -> None:
    for k in range(len(WIDTHS)):
        a, b = _ft_columns(ft, k), _py_columns(py, k)
        assert a.shape == b.shape and len(a), (k, a.shape, b.shape)
        assert np.array_equal(a, b), f"timeframe {k}: ferrotick and Python bars differ"


def _incr_contender(kind: str):
    fn = {"update": _incr_update, "many": _incr_many, "python": _incr_python}[kind]

    def run(ops: int) -> Measurement:
        meas, got = fn(ops)
        if ("incr", kind, ops) not in _checked and kind != "python":
            _check_incremental(got, _incr_python(ops)[1])
            _checked.add(("incr", kind, ops))
        return meas

    return run


def _incremental_benches() -> list[Benchmark]:
    py = "pure-Python aggregator"
    common = (
        "One symbol's 1m bars (ops = bars) into 5m, 15m, 1h, 4h and 1d as they arrive, the "
        "closed bars drained every 1,000 bars; the pure-Python aggregator (`PyAggregator` in "
        "this file: the current OHLCV per timeframe in a list updated in place, appended on a "
        "bucket change, methods hoisted) gets the same bars as Python tuples, one call per "
        "bar. Outputs checked equal."
    )
    return [
        Benchmark(
            name="resample_incremental_5tf",
            description=common + " ferrotick: `Resampler.update` called once per bar.",
            contenders={
                "ferrotick update": _incr_contender("update"),
                py: _incr_contender("python"),
            },
            ops=200_000,
            quick_ops=20_000,
            targets={py: 5.0},
            unit="bar",
        ),
        Benchmark(
            name="resample_incremental_5tf_chunks",
            description=common
            + " ferrotick: `Resampler.update_many` on chunks of 1,000 bars (numpy slices).",
            contenders={
                "ferrotick update_many": _incr_contender("many"),
                py: _incr_contender("python"),
            },
            ops=200_000,
            quick_ops=20_000,
            targets={py: 20.0},
            unit="bar",
        ),
    ]


# -- the simulated exchange in its own process -----------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SimProcess:
    """The simulated exchange (``serve`` below) in its own process pinned to
    SERVER_CPU with taskset, stopped at exit."""

    def __init__(self, n: int, time_scale: float, frozen: bool) -> None:
        import ferrotick

        self.port = _free_port()
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            str(self.port),
            str(n),
            str(time_scale),
            "frozen" if frozen else "live",
        ]
        if shutil.which("taskset") and (os.cpu_count() or 1) > CLIENT_CPU:
            cmd = ["taskset", "-c", str(SERVER_CPU), *cmd]
        env = dict(os.environ)
        pkg_root = str(Path(ferrotick.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pkg_root, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        atexit.register(self.stop)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("http"):
            err = self.proc.stderr.read() if self.proc.stderr else ""
            self.stop()
            raise RuntimeError(f"the simulator did not start: {line}{err}")
        self.base_url, self.ws_url = line.split()

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve(port: int, n: int, time_scale: float, frozen: bool) -> None:
    """The simulator for these rows: ``n`` symbols, request limits off, no trades,
    20 book levels, the clock at ``time_scale``. ``frozen`` stops the market driver
    (klines are a function of the clock and still served, the clock runs): its
    per-symbol tick would otherwise take most of the server's core at 1,000
    symbols."""
    import ferrotick
    from ferrotick.sim import SimulatedExchange

    ferrotick.configure(worker_threads=1)
    with SimulatedExchange(
        _symbols(n),
        seed=7,
        port=port,
        limits=False,
        trade_rate=0,
        book_levels=20,
        epoch=None,
        time_scale=time_scale,
    ) as ex:
        if frozen:
            ex.freeze(True)
        print(ex.base_url, ex.ws_url, flush=True)
        while True:
            time.sleep(3600)


def _symbols(n: int) -> list[str]:
    return [f"SIM{i:04d}USDT" for i in range(n)]


_sims: dict[str, SimProcess] = {}


def _sim(kind: str, n: int, time_scale: float, frozen: bool) -> SimProcess:
    if kind not in _sims:
        _sims[kind] = SimProcess(n, time_scale, frozen)
    return _sims[kind]


def _stop_sim(kind: str) -> None:
    s = _sims.pop(kind, None)
    if s is not None:
        s.stop()


# -- pipeline_end_to_end ---------------------------------------------------------------------

E2E_SYMBOLS = 1000
E2E_QUICK_SYMBOLS = 50
E2E_BARS = 2000 if QUICK else 5000
CONCURRENCY = 50
TIMEFRAMES = ["5m", "15m", "1h", "4h"]
PANDAS_RULES = {"5m": "5min", "15m": "15min", "1h": "1h", "4h": "4h"}
# the MultiTimeframeAnalyzer computes EMA(20), EMA(50) and RSI(14) itself: with
# these, 10 indicators per timeframe
EXTRA_INDICATORS = [
    "MACD",
    ("BBANDS", {"timeperiod": 20}),
    ("ATR", {"timeperiod": 14}),
    ("ADX", {"timeperiod": 14}),
    "STOCH",
    ("CCI", {"timeperiod": 20}),
    "OBV",
]
SIM_TIME_SCALE = 60.0


def _e2e_sim() -> SimProcess:
    return _sim("e2e", E2E_QUICK_SYMBOLS if QUICK else E2E_SYMBOLS, SIM_TIME_SCALE, True)


async def _ferrotick_pipeline(symbols: list[str], sim: SimProcess) -> list[Any]:
    from ferrotick.exchange import BinanceConfig, OptimizedBinanceClient
    from ferrotick.pipeline import (
        AsyncConfig,
        AsyncDataProcessor,
        MarketRegimeAnalyzer,
        MultiTimeframeAnalyzer,
    )

    client = OptimizedBinanceClient(
        BinanceConfig(base_url=sim.base_url, ws_url=sim.ws_url, max_concurrent_requests=CONCURRENCY)
    )
    proc = AsyncDataProcessor(
        AsyncConfig(max_concurrent_symbols=CONCURRENCY, max_concurrent_requests=CONCURRENCY),
        client=client,
        bars=E2E_BARS,
        timeframes=TIMEFRAMES,
        analyzers=[
            MarketRegimeAnalyzer(),
            MultiTimeframeAnalyzer(
                TIMEFRAMES, indicators={tf: EXTRA_INDICATORS for tf in TIMEFRAMES}
            ),
        ],
    )
    try:
        res = await proc.process_symbols_parallel(symbols)
    finally:
        await proc.close()
        await client.close()
    bad = res.failed
    assert not bad, f"{len(bad)} symbols failed, e.g. {bad[0].symbol}: {bad[0].error!r}"
    assert all(r.bars == E2E_BARS for r in res), {r.bars for r in res}
    return list(res)


KLINE_COLUMNS = [
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_base",
    "taker_quote",
    "ignore",
]
PANDAS_AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def _usual_regime(f: Any) -> dict[str, Any]:
    """ADX/+DI/-DI/ATR from TA-Lib and the regime per bar in pandas/numpy: volatile
    when NATR ranks in the top 10% of its last 100 bars, trending (by the DI sign)
    at ADX >= 25, ranging at ADX <= 20, else the efficiency ratio decides."""
    import pandas as pd
    import talib

    h, lo, c = (f[x].to_numpy() for x in ("high", "low", "close"))
    adx = talib.ADX(h, lo, c, 14)
    pdi = talib.PLUS_DI(h, lo, c, 14)
    mdi = talib.MINUS_DI(h, lo, c, 14)
    atr = talib.ATR(h, lo, c, 14)
    close = f["close"]
    natr_rank = pd.Series(atr / c * 100, index=f.index).rolling(100).rank(pct=True).to_numpy()
    er = (close.diff(10).abs() / close.diff().abs().rolling(10).sum()).to_numpy()
    trend = np.where(pdi > mdi, 1, 2)
    codes = np.select(
        [np.isnan(adx), natr_rank >= 0.9, adx >= 25, adx <= 20, er >= 0.3, ~np.isnan(er)],
        [0, 4, trend, 3, trend, 3],
        0,
    )
    out: dict[str, Any] = {"regime": int(codes[-1]), "adx": float(adx[-1]), "atr": float(atr[-1])}
    if len(codes) > 1 and codes[-1] != codes[-2] and codes[-1] != 0:
        out["signal"] = {"signal_type": "REGIME_CHANGE", "value": float(c[-1])}
    return out


def _usual_analyze(symbol: str, rows: list[list[Any]]) -> dict[str, Any]:
    import pandas as pd
    import talib

    df = pd.DataFrame(rows, columns=KLINE_COLUMNS)
    df.index = pd.to_datetime(df["open_time"], unit="ms", utc=True)
    df = df[["open", "high", "low", "close", "volume"]].astype("float64")
    frames = {
        tf: df.resample(rule, label="left", closed="left").agg(PANDAS_AGG).dropna()
        for tf, rule in PANDAS_RULES.items()
    }
    per_tf = {}
    for tf, f in frames.items():
        h, lo, c, v = (f[x].to_numpy() for x in ("high", "low", "close", "volume"))
        ind = {
            "ema_fast": talib.EMA(c, 20),
            "ema_slow": talib.EMA(c, 50),
            "rsi": talib.RSI(c, 14),
            "macd": talib.MACD(c),
            "bbands": talib.BBANDS(c, 20),
            "atr": talib.ATR(h, lo, c, 14),
            "adx": talib.ADX(h, lo, c, 14),
            "stoch": talib.STOCH(h, lo, c),
            "cci": talib.CCI(h, lo, c, 20),
            "obv": talib.OBV(c, v),
        }
        close, fast, slow = c[-1], ind["ema_fast"][-1], ind["ema_slow"][-1]
        d = 1 if close > slow and fast > slow else -1 if close < slow and fast < slow else 0
        per_tf[tf] = {"direction": d, "rsi": float(ind["rsi"][-1]), "close": float(close)}
    regime = _usual_regime(frames[TIMEFRAMES[0]])
    alignment = sum(p["direction"] for p in per_tf.values()) / len(per_tf)
    base = per_tf[TIMEFRAMES[0]]
    signal = None
    if alignment >= 0.5 and base["direction"] == 1 and not base["rsi"] > 70:
        signal = "BUY"
    elif alignment <= -0.5 and base["direction"] == -1 and not base["rsi"] < 30:
        signal = "SELL"
    return {
        "symbol": symbol,
        "bars": len(df),
        "regime": regime,
        "alignment": alignment,
        "signal": signal,
    }


async def _usual_pipeline(symbols: list[str], sim: SimProcess) -> list[Any]:
    import aiohttp
    import orjson

    url = f"{sim.base_url}/api/v3/klines"
    conn = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=conn) as s:
        async with s.get(f"{sim.base_url}/api/v3/time") as r:
            offset = orjson.loads(await r.read())["serverTime"] - time.time() * 1000
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(symbol: str) -> dict[str, Any]:
            async with sem:
                # the latest E2E_BARS bars: from that far back, page by page
                start = int(time.time() * 1000 + offset) - E2E_BARS * MIN
                rows: list[list[Any]] = []
                while len(rows) < E2E_BARS:
                    page = min(1000, E2E_BARS - len(rows))
                    p = {"symbol": symbol, "interval": "1m", "startTime": start, "limit": page}
                    async with s.get(url, params=p) as r:
                        r.raise_for_status()
                        data = orjson.loads(await r.read())
                    rows.extend(data)
                    if len(data) < page:
                        break
                    start = data[-1][0] + 1
                return _usual_analyze(symbol, rows)

        out = await asyncio.gather(*(one(x) for x in symbols))
    assert all(r["bars"] == E2E_BARS for r in out), {r["bars"] for r in out}
    return out


E2E_TEXT = (
    "N symbols x {bars:,} one-minute bars (ops = symbols; {pages} pages of 1,000 each) "
    "fetched from ferrotick's simulated exchange in its own process pinned to CPU 0 with "
    "taskset (`serve` in this file: `SimulatedExchange` with request limits off, no trades, "
    "the market driver frozen (klines are a function of the clock and are still served): "
    "its per-symbol tick otherwise takes most of the server's core at 1,000 symbols; the "
    "clock at 60x so that no page URL repeats and every response is generated, for both), "
    "resampled to {tfs}, 10 indicators per timeframe (EMA20, EMA50, RSI14, MACD, BBANDS20, "
    "ATR14, ADX14, STOCH, CCI20, OBV), the regime from ADX/+DI/-DI/ATR on 5m, the "
    "multi-timeframe alignment and signals; at most {c} symbols in flight for both; every "
    "thread of this process pinned to CPU 1. ferrotick: `AsyncDataProcessor` with "
    "`MarketRegimeAnalyzer` and `MultiTimeframeAnalyzer(indicators=...)`. The usual way: "
    "`asyncio.gather` under a `Semaphore`, aiohttp + orjson for the same pages, one pandas "
    "DataFrame per symbol, `DataFrame.resample(...).agg(...)` per timeframe, TA-Lib for the "
    "indicators and the regime inputs, the regime and alignment rules in pandas/numpy."
)

# server CPU seconds per symbol, per contender, over the rounds
_server_cpu: dict[str, list[float]] = {}


def _e2e_description() -> str:
    import statistics

    text = E2E_TEXT.format(
        bars=E2E_BARS, pages=-(-E2E_BARS // 1000), tfs=", ".join(TIMEFRAMES), c=CONCURRENCY
    )
    if _server_cpu:
        per = "; ".join(
            f"{k} rounds {statistics.median(v) * 1000:.2f} ms" for k, v in _server_cpu.items()
        )
        text += (
            f" The simulator's CPU per symbol (median; it bounds the wall time from below): {per}."
        )
    return text


def _e2e_contender(kind: str, bench: list[Benchmark]):
    fn = _ferrotick_pipeline if kind == "ferrotick" else _usual_pipeline

    def run(ops: int) -> Measurement:
        sim = _e2e_sim()
        symbols = _symbols(E2E_SYMBOLS)[:ops]
        c0 = sim.cpu_seconds()
        with _pinned(CLIENT_CPU):
            meas = timed(lambda: asyncio.run(fn(symbols, sim)), ops)
        _server_cpu.setdefault(kind, []).append((sim.cpu_seconds() - c0) / ops)
        bench[0].description = _e2e_description()
        return meas

    return run


def _e2e_bench() -> Benchmark:
    usual = "asyncio+aiohttp+orjson+pandas+TA-Lib"
    holder: list[Benchmark] = []
    b = Benchmark(
        name="pipeline_end_to_end",
        description=_e2e_description(),
        contenders={
            "ferrotick": _e2e_contender("ferrotick", holder),
            usual: _e2e_contender("the usual way's", holder),
        },
        ops=E2E_SYMBOLS,
        quick_ops=E2E_QUICK_SYMBOLS,
        targets={usual: 5.0},
        unit="symbol",
    )
    holder.append(b)
    return b


# -- pipeline_stream -------------------------------------------------------------------------

STREAM_SYMBOLS = 100 if QUICK else 500
STREAM_BARS = 1000


class _StreamSession:
    """One processor streaming for the whole row: its event loop runs while a round
    waits, and pauses between rounds (the runner's bookkeeping, microseconds)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.proc: Any = None
        self.client: Any = None
        self.calls = 0
        self.t_start = 0.0
        self.at_1min: dict[str, Any] | None = None
        self.samples: list[dict[str, Any]] = []
        self.start_seconds = 0.0
        self.rss_before = 0.0
        self.rss_started = 0.0

    async def _start(self) -> None:
        from ferrotick.exchange import BinanceConfig, OptimizedBinanceClient
        from ferrotick.pipeline import AsyncConfig, AsyncDataProcessor

        sim = _sim("stream", STREAM_SYMBOLS, SIM_TIME_SCALE, False)
        self.client = OptimizedBinanceClient(
            BinanceConfig(
                base_url=sim.base_url, ws_url=sim.ws_url, max_concurrent_requests=CONCURRENCY
            )
        )
        self.proc = AsyncDataProcessor(
            AsyncConfig(max_concurrent_symbols=CONCURRENCY),
            client=self.client,
            bars=STREAM_BARS,
            timeframes=TIMEFRAMES,
        )
        t0 = time.perf_counter()
        await self.proc.start_real_time_stream(_symbols(STREAM_SYMBOLS))
        self.start_seconds = time.perf_counter() - t0

    async def _stop(self) -> None:
        await self.proc.close()
        await self.client.close()

    def window(self, seconds: float) -> dict[str, Any]:
        if self.proc is None:
            self.rss_before = _rss_mb()
            self.loop.run_until_complete(self._start())
            self.rss_started = _rss_mb()
            self.t_start = time.perf_counter()
        self.loop.run_until_complete(asyncio.sleep(seconds))
        s = self.proc.stream_stats()
        s["rss_mb"] = _rss_mb()
        s["elapsed"] = time.perf_counter() - self.t_start
        if self.at_1min is None and s["elapsed"] >= 60:
            self.at_1min = s
        self.samples.append(s)
        return s

    def close(self) -> None:
        if self.proc is not None:
            self.loop.run_until_complete(self._stop())
            self.proc = None
        self.loop.close()
        _stop_sim("stream")


_session: _StreamSession | None = None


def _stream_round(bench: Benchmark):
    def run(ops: int) -> Measurement:
        global _session
        if _session is None:
            _session = _StreamSession()
            atexit.register(_session.close)
        sess = _session
        before = int(sess.samples[-1].get("bars", 0)) if sess.samples else 0
        c0 = time.process_time()
        with _pinned(CLIENT_CPU):
            s = sess.window(ops)
        cpu = time.process_time() - c0
        sess.calls += 1
        # the bars closed in this window: the CPU column is this process's CPU per bar
        new = max(int(s.get("bars", 0)) - before, 1)
        p99 = s["latency_p99"] if s["latency_p99"] is not None else float("nan")
        if sess.calls == ROUNDS + 1:  # the warm-up call, then the rounds
            bench.description = _stream_description(sess, s)
            sess.close()
            _session = None
        return Measurement(p99 * new, cpu, new)

    return run


def _stream_description(sess: _StreamSession, last: dict[str, Any]) -> str:
    def ms(x: float | None) -> str:
        return "n/a" if x is None else f"{x * 1000:.2f} ms"

    def at(s: dict[str, Any]) -> str:
        return (
            f"{s['elapsed']:.0f} s: {int(s.get('bars', 0)):,} closed bars, "
            f"p50 {ms(s['latency_p50'])}, p99 {ms(s['latency_p99'])}, RSS {s['rss_mb']:.0f} MB"
        )

    one = "(the run is shorter than 1 minute)" if sess.at_1min is None else at(sess.at_1min)
    sub = last.get("subscription", {}) or {}
    return (
        f"{STREAM_SYMBOLS} symbols' `@kline_1m` streams from the simulated exchange (its own "
        "process pinned to CPU 0, clock at 60x: each symbol closes a 1m bar every second, "
        "all in the same second) through `AsyncDataProcessor.start_real_time_stream` with "
        f"the default analyzers over {', '.join(TIMEFRAMES)}, started over {STREAM_BARS:,} "
        f"bars ({sess.start_seconds:.1f} s to start); this process pinned to CPU 1. No peer. "
        "Each round is a window of the one stream (the 'per round' figure below is its "
        "length in seconds). The time column is the p99 update latency from "
        "`stream_stats()` as each round ends: a closed bar's batch received to the "
        "analyzers done with it, so it includes waiting behind the batch's earlier bars; "
        "cumulative since the start, so the first higher-timeframe closes (each symbol's "
        "analyzer streams built over its history) weigh in. The CPU column is this "
        "process's CPU per closed bar in the round (kline ticks included). "
        f"`stream_stats()` at {one}; at the end, {at(last)}, "
        f"{int(last.get('messages', 0)):,} messages, errors {int(last.get('errors', 0))}, "
        f"dropped {sub.get('dropped', 0)}. RSS {sess.rss_before:.0f} MB before the start "
        "(this process has run the rows before it), "
        f"{sess.rss_started:.0f} MB once streaming."
    )


def _stream_bench() -> Benchmark:
    b = Benchmark(
        name="pipeline_stream",
        description="(filled in by the run)",
        contenders={},
        ops=20,
        quick_ops=2,
        unit="update",
    )
    b.contenders["ferrotick"] = _stream_round(b)
    return b


def _benchmarks() -> list[Benchmark]:
    out = [_matrix_bench(), *_incremental_benches()]
    if sys.platform.startswith("linux"):
        out += [_e2e_bench(), _stream_bench()]
    return out


BENCHMARKS = _benchmarks()

if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "--serve":
    serve(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "frozen")
