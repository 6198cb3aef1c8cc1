"""Indicators: ferrotick.ta against TA-Lib 0.8 (and talipp for a stream).

Single functions run on the same 1,000,000-bar float64 random walk (OHLCV),
default parameters. The multi-symbol batch runs SMA(20), EMA(50), RSI(14),
MACD, BBANDS(20), ATR(14), ADX(14), STOCH, CCI(20) and OBV over 5,000
symbols x 1,000 bars: ferrotick's ``batch`` (compute pool of 2 threads here)
against TA-Lib driven by a 2-thread pool (it releases the GIL) and a plain
single-threaded loop of TA-Lib calls. Streams: one ``update`` of an EMA,
and a Bundle of 10 indicators against 10 TA-Lib stream objects.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from run import Benchmark, timed

import ferrotick.ta as ft

try:
    import talib
    import talib.stream
except ImportError:  # pragma: no cover
    talib = None

try:
    from talipp.indicators import EMA as TalippEMA
except ImportError:  # pragma: no cover
    TalippEMA = None

TAL = "TA-Lib 0.8"

try:
    import kand
except ImportError:  # pragma: no cover
    kand = None

# kand functions with TA-Lib's inputs followed by the period (same defaults).
KAND = {
    "SMA": ("sma", 30),
    "EMA": ("ema", 30),
    "WMA": ("wma", 30),
    "RSI": ("rsi", 14),
    "MOM": ("mom", 10),
    "MAX": ("max", 30),
    "MIN": ("min", 30),
    "SUM": ("sum", 30),
    "ATR": ("atr", 14),
    "WILLR": ("willr", 14),
    "CCI": ("cci", 14),
}


@functools.cache
def _data(n: int, seed: int = 42) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    spread = np.abs(rng.normal(0, 0.5, n))
    high = close + spread
    low = close - spread
    open_ = low + (high - low) * rng.random(n)
    volume = rng.integers(100, 10_000, n).astype(np.float64)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def _args(name: str, d: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [d["close" if i == "real" else i] for i in ft.SPECS[name]["inputs"]]


# Calls per round of a single-function row: one call of a million bars takes
# about a millisecond, where this machine's scheduling noise is tens of percent
# of a single sample; each round times this many consecutive calls.
REPS = 5


def _reps(f, a):
    def run():
        for _ in range(REPS):
            f(*a)

    return run


def _single(name: str) -> Benchmark:
    def ours(ops: int):
        a = _args(name, _data(ops))
        return timed(_reps(getattr(ft, name), a), ops * REPS)

    def theirs(ops: int):
        a = _args(name, _data(ops))
        return timed(_reps(getattr(talib, name), a), ops * REPS)

    contenders = {"ferrotick": ours, TAL: theirs}
    if kand is not None and name in KAND:
        fname, period = KAND[name]

        def kand_run(ops: int):
            a = [*_args(name, _data(ops)), period]
            return timed(_reps(getattr(kand, fname), a), ops * REPS)

        contenders["kand"] = kand_run
    return Benchmark(
        name=f"ta_{name.lower()}",
        description=(
            f"`{name}` with default parameters over one float64 series (ops = bars; "
            f"each round times {REPS} consecutive calls)."
        ),
        contenders=contenders,
        ops=1_000_000,
        quick_ops=20_000,
        targets={TAL: 1.0},
        unit="bar",
    )


BATCH_SPECS = [
    ("SMA", {"timeperiod": 20}),
    ("EMA", {"timeperiod": 50}),
    ("RSI", {"timeperiod": 14}),
    "MACD",
    ("BBANDS", {"timeperiod": 20}),
    ("ATR", {"timeperiod": 14}),
    ("ADX", {"timeperiod": 14}),
    "STOCH",
    ("CCI", {"timeperiod": 20}),
    "OBV",
]


@functools.cache
def _universe(nsym: int, bars: int) -> dict[str, np.ndarray]:
    d = _data(nsym * bars, seed=7)
    return {k: v.reshape(nsym, bars).copy() for k, v in d.items()}


def _talib_symbol(u: dict[str, np.ndarray], i: int) -> None:
    h, lo, c, v = u["high"][i], u["low"][i], u["close"][i], u["volume"][i]
    talib.SMA(c, 20)
    talib.EMA(c, 50)
    talib.RSI(c, 14)
    talib.MACD(c)
    talib.BBANDS(c, 20)
    talib.ATR(h, lo, c, 14)
    talib.ADX(h, lo, c, 14)
    talib.STOCH(h, lo, c)
    talib.CCI(h, lo, c, 20)
    talib.OBV(c, v)


def _batch_bench() -> Benchmark:
    bars = 1000

    def ours(ops: int):
        u = _universe(ops, bars)
        return timed(lambda: ft.batch(u, BATCH_SPECS), ops)

    def pool(ops: int):
        u = _universe(ops, bars)
        with ThreadPoolExecutor(2) as ex:
            return timed(lambda: list(ex.map(lambda i: _talib_symbol(u, i), range(ops))), ops)

    def loop(ops: int):
        u = _universe(ops, bars)
        return timed(lambda: [_talib_symbol(u, i) for i in range(ops)], ops)

    return Benchmark(
        name="ta_batch_10_indicators",
        description=(
            "SMA(20), EMA(50), RSI(14), MACD, BBANDS(20), ATR(14), ADX(14), STOCH, CCI(20), OBV "
            "over N symbols x 1,000 bars (ops = symbols): `ferrotick.ta.batch` on its compute "
            "pool, TA-Lib from a 2-thread pool, and a single-threaded loop of TA-Lib calls."
        ),
        contenders={"ferrotick": ours, f"{TAL}, 2 threads": pool, f"{TAL}, loop": loop},
        ops=5000,
        quick_ops=200,
        targets={f"{TAL}, 2 threads": 1.25, f"{TAL}, loop": 2.0},
        unit="symbol",
    )


def _stream_bench() -> Benchmark:
    def ours(ops: int):
        xs = _data(ops + 100)["close"].tolist()
        s = ft.stream.EMA(np.array(xs[:100]), timeperiod=30)
        up = s.update
        rest = xs[100:]

        def run():
            for x in rest:
                up(x)

        return timed(run, ops)

    def theirs(ops: int):
        xs = _data(ops + 100)["close"].tolist()
        s = talib.stream.EMA(np.array(xs[:100]), timeperiod=30)
        up = s.update
        rest = xs[100:]

        def run():
            for x in rest:
                up(x)

        return timed(run, ops)

    contenders = {"ferrotick": ours, TAL: theirs}
    if TalippEMA is not None:

        def talipp(ops: int):
            xs = _data(ops + 100)["close"].tolist()
            s = TalippEMA(30, input_values=xs[:100])
            add = s.add
            rest = xs[100:]

            def run():
                for x in rest:
                    add(x)

            return timed(run, ops)

        contenders["talipp"] = talipp
    return Benchmark(
        name="ta_stream_ema_update",
        description="One streaming EMA(30) `update(x)` per bar from Python (method hoisted).",
        contenders=contenders,
        ops=200_000,
        quick_ops=10_000,
        targets={TAL: 1.0},
        unit="update",
    )


BUNDLE = ["SMA", "EMA", "RSI", "MACD", "BBANDS", "ATR", "ADX", "STOCH", "CCI", "OBV"]


def _bundle_bench() -> Benchmark:
    def ours(ops: int):
        d = _data(ops + 200)
        b = ft.stream.Bundle(BUNDLE)
        up = b.update
        cols = list(
            zip(
                d["close"].tolist(),
                d["high"].tolist(),
                d["low"].tolist(),
                d["volume"].tolist(),
                strict=False,
            )
        )

        def run():
            for c, h, lo, v in cols:
                up(c, h, lo, None, v)

        return timed(run, ops)

    def theirs(ops: int):
        d = _data(ops + 200)
        hist = {k: v[:200] for k, v in d.items()}
        h, lo, c, v = hist["high"], hist["low"], hist["close"], hist["volume"]
        s = talib.stream
        one = [
            s.SMA(c).update,
            s.EMA(c).update,
            s.RSI(c).update,
            s.MACD(c).update,
            s.BBANDS(c).update,
        ]
        three = [
            s.ATR(h, lo, c).update,
            s.ADX(h, lo, c).update,
            s.STOCH(h, lo, c).update,
            s.CCI(h, lo, c).update,
        ]
        obv = s.OBV(c, v).update
        cols = list(
            zip(
                d["close"].tolist(),
                d["high"].tolist(),
                d["low"].tolist(),
                d["volume"].tolist(),
                strict=False,
            )
        )

        def run():
            for cc, hh, ll, vv in cols:
                for u in one:
                    u(cc)
                for u in three:
                    u(hh, ll, cc)
                obv(cc, vv)

        return timed(run, ops)

    return Benchmark(
        name="ta_stream_bundle_10",
        description=(
            "One bar into 10 indicators (SMA, EMA, RSI, MACD, BBANDS, ATR, ADX, STOCH, CCI, OBV): "
            "a ferrotick `Bundle.update` against updating 10 TA-Lib stream objects."
        ),
        contenders={"ferrotick": ours, TAL: theirs},
        ops=100_000,
        quick_ops=5_000,
        targets={TAL: 3.33},
        unit="bar",
    )


def _window_bench() -> Benchmark:
    """The whole-array functions on short arrays, where the call's own cost
    shows: each of the 10 batch indicators over the last 200 bars, as a
    service recomputing a window on every tick does."""

    def calls(mod, d):
        h, lo, c, v = d["high"], d["low"], d["close"], d["volume"]
        return [
            (mod.SMA, (c, 20)),
            (mod.EMA, (c, 50)),
            (mod.RSI, (c, 14)),
            (mod.MACD, (c,)),
            (mod.BBANDS, (c, 20)),
            (mod.ATR, (h, lo, c, 14)),
            (mod.ADX, (h, lo, c, 14)),
            (mod.STOCH, (h, lo, c)),
            (mod.CCI, (h, lo, c, 20)),
            (mod.OBV, (c, v)),
        ]

    def make(mod):
        def contender(ops: int):
            work = calls(mod, _data(200, seed=11))

            def run():
                for _ in range(ops // len(work)):
                    for f, a in work:
                        f(*a)

            return timed(run, ops)

        return contender

    return Benchmark(
        name="ta_window_200",
        description=(
            "The 10 batch indicators, one call each over a 200-bar window (ops = calls): "
            "the per-call cost of the function API."
        ),
        contenders={"ferrotick": make(ft), TAL: make(talib)},
        ops=200_000,
        quick_ops=10_000,
        targets={TAL: 1.0},
        unit="call",
    )


CORE = [n for n in ft.SPECS if talib is not None and hasattr(talib, n) and n != "VWAP"]

BENCHMARKS = (
    [_single(n) for n in CORE] + [_batch_bench(), _stream_bench(), _bundle_bench(), _window_bench()]
    if talib is not None
    else []
)
