"""Analyzers: ``BaseAnalyzer``, ``AnalysisResult``, ``MarketRegimeAnalyzer`` and
``MultiTimeframeAnalyzer`` (seeds 000 and 002).

Indicators run through ``ferrotick.ta`` on the compute pool (``batch_async``), so
``await analyzer.analyze(data)`` never holds the event loop for the arithmetic.
``update_incremental`` continues from the previous result with ``ferrotick.ta``
streams and the Rust regime state: O(1) per new bar, and equal bit for bit to
``analyze`` over the whole series (the streams and the batch kernels are the same
state machines).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _core, _validate
from .._errors import ConfigError, MarketDataError
from ..ta._common import SPECS, normalize_spec
from . import _timeframe as tfm
from ._data import MarketData

REGIMES: tuple[str, ...] = tuple(_core.RegimeClassifier.names)


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "f":
            return [None if not math.isfinite(x) else x for x in v.tolist()]
        return v.tolist()
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


@dataclass
class AnalysisResult:
    """What an analyzer found for one symbol.

    ``values`` holds the latest figures (JSON-ready scalars and small dicts);
    ``series`` the per-bar arrays they come from, aligned with ``timestamps``
    (open times, UTC ms); ``signals`` the signals emitted, as dicts with
    ``symbol``, ``signal_type``, ``value``, ``confidence`` and ``metadata``.
    ``state`` carries what ``update_incremental`` continues from.
    """

    analyzer_name: str
    symbol: str
    timeframe: str
    values: dict[str, Any] = field(default_factory=dict)
    signals: list[dict[str, Any]] = field(default_factory=list)
    timestamps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    series: dict[str, Any] = field(default_factory=dict, repr=False)
    state: Any = field(default=None, repr=False, compare=False)

    def to_dict(self, *, series: bool = False) -> dict[str, Any]:
        """A JSON-serialisable dict (NaN becomes None); per-bar arrays with
        ``series=True``."""
        d: dict[str, Any] = {
            "analyzer_name": self.analyzer_name,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "values": _jsonable(self.values),
            "signals": _jsonable(self.signals),
            "timestamp": int(self.timestamps[-1]) if len(self.timestamps) else None,
        }
        if series:
            d["timestamps"] = self.timestamps.tolist()
            d["series"] = _jsonable(self.series)
        return d


class BaseAnalyzer(ABC):
    """An analysis step: ``await analyze(data)`` → AnalysisResult.
    ``update_incremental(data, previous_result)`` defaults to ``analyze(data)``."""

    name: str = "analyzer"

    @abstractmethod
    async def analyze(self, data: Any) -> AnalysisResult: ...

    async def update_incremental(
        self, data: Any, previous_result: AnalysisResult
    ) -> AnalysisResult:
        return await self.analyze(data)


class _IndicatorSet:
    """Indicator specs read once: labels, names, parameters and input columns."""

    def __init__(self, specs: Sequence[Any]) -> None:
        self.specs = [normalize_spec(s) for s in specs]
        self.labels = [lab for lab, _, _ in self.specs]
        if len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"indicators: repeated labels {self.labels}")
        self._kernel_specs = [(name, params) for _, name, params in self.specs]

    async def batch(self, md: MarketData) -> dict[str, Any]:
        """Every indicator over ``md``'s bars in one call on the compute pool (the
        specs were read once, at construction)."""
        inputs = [(c, [getattr(md, c)]) for c in ("open", "high", "low", "close", "volume")]
        result = await _core.ta_batch_async(self._kernel_specs, inputs)
        out: dict[str, Any] = {}
        for label, outs in zip(self.labels, result, strict=True):
            out[label] = outs[0][0] if len(outs) == 1 else tuple(o[0] for o in outs)
        return out

    def streams(self, md: MarketData) -> list[Any]:
        """Streams opened over ``md``'s bars, continuing where the batch ended."""
        out = []
        for _label, name, params in self.specs:
            s = _core.Stream(name, params)
            s.update_many([_column(md, i) for i in SPECS[name]["inputs"]])
            out.append(s)
        return out

    def step(self, streams: list[Any], bar: Mapping[str, float]) -> dict[str, Any]:
        vals = {}
        for (label, name, _), s in zip(self.specs, streams, strict=True):
            vals[label] = s.update(*(bar[_input(i)] for i in SPECS[name]["inputs"]))
        return vals


def _input(i: str) -> str:
    return "close" if i in ("real", "real0", "real1") else i


def _column(md: MarketData, i: str) -> np.ndarray:
    return getattr(md, _input(i))


def _bars(md: MarketData) -> list[dict[str, float]]:
    cols = {c: getattr(md, c).tolist() for c in ("open", "high", "low", "close", "volume")}
    return [{c: cols[c][k] for c in cols} for k in range(len(md))]


def _check_new(previous: AnalysisResult, md: MarketData) -> None:
    if previous.symbol != md.symbol:
        raise MarketDataError(
            f"data: symbol {md.symbol!r} does not continue a result for {previous.symbol!r}"
        )
    if len(md) and len(previous.timestamps) and md.open_time[0] <= previous.timestamps[-1]:
        raise MarketDataError(
            f"data: bars must start after the previous result's last bar "
            f"({int(previous.timestamps[-1])}), got {int(md.open_time[0])}"
        )


class MarketRegimeAnalyzer(BaseAnalyzer):
    """A regime per bar — trending up, trending down, ranging or volatile, with a
    confidence — from ADX with ±DI, an ATR percentile and the efficiency ratio.

    The rules and their thresholds are documented in ``ferrotick.pipeline`` (and in
    ``src/pipeline/regime.rs``): ``adx_trend`` (25), ``adx_range`` (20),
    ``vol_window`` (100 bars) and ``vol_high`` (0.9 percentile), ``er_period`` (10)
    and ``er_trend`` (0.3). ``period`` is the ADX/DI/ATR period (14).
    A change of regime on the last bar emits a signal (``REGIME_CHANGE``).
    """

    name = "market_regime"

    def __init__(
        self,
        *,
        period: int = 14,
        adx_trend: float = 25.0,
        adx_range: float = 20.0,
        vol_window: int = 100,
        vol_high: float = 0.9,
        er_period: int = 10,
        er_trend: float = 0.3,
    ) -> None:
        self.period = _validate.integer("period", period, min=2)
        self.params = {
            "adx_trend": float(_validate.number("adx_trend", adx_trend)),
            "adx_range": float(_validate.number("adx_range", adx_range)),
            "vol_window": _validate.integer("vol_window", vol_window, min=2),
            "vol_high": float(_validate.number("vol_high", vol_high)),
            "er_period": _validate.integer("er_period", er_period, min=1),
            "er_trend": float(_validate.number("er_trend", er_trend)),
        }
        _core.RegimeClassifier(**self.params)  # checks the thresholds together
        p = self.period
        self._ind = _IndicatorSet(
            [
                {"name": "ADX", "timeperiod": p, "label": "adx"},
                {"name": "PLUS_DI", "timeperiod": p, "label": "plus_di"},
                {"name": "MINUS_DI", "timeperiod": p, "label": "minus_di"},
                {"name": "ATR", "timeperiod": p, "label": "atr"},
            ]
        )

    async def calculate(self, market_data: MarketData) -> dict[str, np.ndarray]:
        """Per-bar arrays: ``regime`` (codes into ``REGIMES``), ``confidence`` and
        the inputs (``adx``, ``plus_di``, ``minus_di``, ``atr``)."""
        ind = await self._ind.batch(market_data)
        codes, conf, state = _core.pipeline_regime(
            ind["adx"],
            ind["plus_di"],
            ind["minus_di"],
            ind["atr"],
            market_data.close,
            **self.params,
        )
        return {"regime": codes, "confidence": conf, **ind, "_state": state}

    async def analyze(self, market_data: MarketData) -> AnalysisResult:
        if not isinstance(market_data, MarketData):
            raise ConfigError(
                f"market_data: expected a MarketData, got {type(market_data).__name__}"
            )
        s = await self.calculate(market_data)
        state = s.pop("_state")
        result = self._result(market_data, s, None)
        result.state = {"data": market_data, "regime": state, "streams": None}
        return result

    def _result(self, md: MarketData, s: dict[str, Any], before: int | None) -> AnalysisResult:
        """The result over ``md``'s bars; ``before`` is the regime code of the bar
        preceding them (for the change signal), None at the start of the data."""
        codes = s["regime"]
        times = md.open_time
        values: dict[str, Any] = {"regime": REGIMES[0], "confidence": math.nan}
        signals: list[dict[str, Any]] = []
        if len(codes):
            cur = int(codes[-1])
            values = {
                "regime": REGIMES[cur],
                "confidence": float(s["confidence"][-1]),
                "adx": float(s["adx"][-1]),
                "plus_di": float(s["plus_di"][-1]),
                "minus_di": float(s["minus_di"][-1]),
                "atr": float(s["atr"][-1]),
            }
            prev = int(codes[-2]) if len(codes) > 1 else before
            if prev is not None and cur != prev and cur != 0:
                signals.append(
                    {
                        "symbol": md.symbol,
                        "signal_type": "REGIME_CHANGE",
                        "value": float(md.close[-1]),
                        "confidence": values["confidence"],
                        "metadata": {
                            "regime": REGIMES[cur],
                            "previous": REGIMES[prev],
                            "timeframe": md.timeframe,
                            "open_time": int(times[-1]),
                        },
                    }
                )
        return AnalysisResult(self.name, md.symbol, md.timeframe, values, signals, times, s)

    async def update_incremental(
        self, data: MarketData, previous_result: AnalysisResult
    ) -> AnalysisResult:
        """Continues ``previous_result`` with the bars of ``data`` that follow it; the
        new result's series cover only those bars."""
        st = previous_result.state
        if not st:
            return await self.analyze(data)
        _check_new(previous_result, data)
        streams = st["streams"]
        if streams is None:
            streams = self._ind.streams(st["data"])
        streams = [s.copy() for s in streams]
        regime = st["regime"].copy()
        cols: dict[str, list[float]] = {
            k: [] for k in ("regime", "confidence", "adx", "plus_di", "minus_di", "atr")
        }
        prev = previous_result.series.get("regime", ())
        prev_code = int(prev[-1]) if len(prev) else None
        for bar in _bars(data):
            v = self._ind.step(streams, bar)
            code, conf = regime.update(
                v["adx"], v["plus_di"], v["minus_di"], v["atr"], bar["close"]
            )
            cols["regime"].append(code)
            cols["confidence"].append(conf)
            for k in ("adx", "plus_di", "minus_di", "atr"):
                cols[k].append(v[k])
        s: dict[str, Any] = {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}
        s["regime"] = np.asarray(cols["regime"], dtype=np.uint8)
        result = self._result(data, s, prev_code)
        result.state = {"data": None, "regime": regime, "streams": streams}
        return result


class MultiTimeframeAnalyzer(BaseAnalyzer):
    """Trend per timeframe, how far the timeframes agree, and signals confirmed
    across them.

    Per timeframe: EMA ``fast`` and ``slow`` of the close and RSI ``rsi_period``,
    plus any ``indicators`` configured for it (``{"1h": [("BBANDS", 20)], ...}``,
    specs as ``ferrotick.ta.batch`` reads them). The direction is +1 when close >
    slow EMA and fast EMA > slow EMA, −1 when both are below, else 0. The alignment
    score is the mean direction over the timeframes (−1 … +1). A BUY is emitted
    when the alignment is at least ``confirm`` and the lowest timeframe points up
    with its RSI under ``rsi_overbought``; a SELL symmetrically; the confidence is
    the absolute alignment. ``analyze`` emits the signal the latest bars give;
    ``update_incremental`` emits one only when it differs from the previous one
    (a BUY is not repeated on every bar while the timeframes stay aligned).

    ``analyze`` takes ``{timeframe: MarketData}`` (seed 000) or one MarketData,
    which it resamples to each of ``timeframes``.
    """

    name = "multi_timeframe"

    def __init__(
        self,
        timeframes: Sequence[str] = ("5m", "15m", "1h", "4h"),
        *,
        fast: int = 20,
        slow: int = 50,
        rsi_period: int = 14,
        confirm: float = 0.5,
        rsi_overbought: float = 70.0,
        rsi_oversold: float = 30.0,
        indicators: Mapping[str, Sequence[Any]] | None = None,
    ) -> None:
        if isinstance(timeframes, str) or not timeframes:
            raise ConfigError("timeframes: expected a non-empty list such as ['5m', '1h']")
        for t in timeframes:
            tfm.parse(t, "timeframes")
        self.timeframes = sorted(timeframes, key=lambda t: _tf_ms(t))
        self.fast = _validate.integer("fast", fast, min=2)
        self.slow = _validate.integer("slow", slow, min=2)
        if self.fast >= self.slow:
            raise ConfigError(f"fast: expected less than slow ({slow}), got {fast}")
        self.rsi_period = _validate.integer("rsi_period", rsi_period, min=2)
        self.confirm = float(_validate.number("confirm", confirm))
        self.rsi_overbought = float(_validate.number("rsi_overbought", rsi_overbought))
        self.rsi_oversold = float(_validate.number("rsi_oversold", rsi_oversold))
        extra = dict(indicators or {})
        for k in extra:
            if k not in self.timeframes:
                raise ConfigError(f"indicators: {k!r} is not one of the timeframes")
        base = [
            {"name": "EMA", "timeperiod": self.fast, "label": "ema_fast"},
            {"name": "EMA", "timeperiod": self.slow, "label": "ema_slow"},
            {"name": "RSI", "timeperiod": self.rsi_period, "label": "rsi"},
        ]
        self._ind = {tf: _IndicatorSet(base + list(extra.get(tf, ()))) for tf in self.timeframes}

    def _frames(self, data: Any) -> dict[str, MarketData]:
        if isinstance(data, MarketData):
            return {
                tf: data if tf == data.timeframe else data.resample(tf) for tf in self.timeframes
            }
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"data: expected {{timeframe: MarketData}} or a MarketData, got {type(data).__name__}"
            )
        missing = [tf for tf in self.timeframes if tf not in data]
        if missing:
            raise ConfigError(f"data: no MarketData for timeframe {missing[0]!r}")
        return {tf: data[tf] for tf in self.timeframes}

    @staticmethod
    def _direction(close: float, fast: float, slow: float) -> int:
        if close > slow and fast > slow:
            return 1
        if close < slow and fast < slow:
            return -1
        return 0

    async def analyze(self, data: Any) -> AnalysisResult:
        frames = self._frames(data)
        series = {tf: await self._ind[tf].batch(md) for tf, md in frames.items()}
        last = {}
        for tf, md in frames.items():
            last[tf] = {
                k: (tuple(float(x[-1]) for x in v) if isinstance(v, tuple) else float(v[-1]))
                if len(md)
                else math.nan
                for k, v in series[tf].items()
            }
            last[tf]["close"] = float(md.close[-1]) if len(md) else math.nan
        result = self._result(frames, last, None)
        result.series = series
        result.state = {
            "frames": frames,
            "streams": None,
            "last": last,
            "kind": result.values["signal"],
        }
        return result

    def _result(
        self, frames: Mapping[str, MarketData], last: dict[str, dict[str, Any]], before: str | None
    ) -> AnalysisResult:
        """``before``: the signal kind of the previous result (no new signal when
        the kind is unchanged)."""
        base_tf = self.timeframes[0]
        base = frames[base_tf]
        per_tf: dict[str, Any] = {}
        dirs = []
        for tf in self.timeframes:
            v = last[tf]
            d = self._direction(v["close"], v["ema_fast"], v["ema_slow"])
            dirs.append(d)
            per_tf[tf] = {"direction": d, **v}
        alignment = sum(dirs) / len(dirs)
        signals = []
        rsi = last[base_tf]["rsi"]
        kind = None
        if alignment >= self.confirm and dirs[0] == 1 and not rsi > self.rsi_overbought:
            kind = "BUY"
        elif alignment <= -self.confirm and dirs[0] == -1 and not rsi < self.rsi_oversold:
            kind = "SELL"
        values = {"alignment": alignment, "signal": kind, "timeframes": per_tf}
        if kind is not None and kind != before:
            signals.append(
                {
                    "symbol": base.symbol,
                    "signal_type": kind,
                    "value": last[base_tf]["close"],
                    "confidence": abs(alignment),
                    "metadata": {
                        "timeframes": {tf: per_tf[tf]["direction"] for tf in self.timeframes},
                        "open_time": int(base.open_time[-1]) if len(base) else None,
                    },
                }
            )
        return AnalysisResult(
            self.name, base.symbol, base_tf, values, signals, base.open_time[-1:].copy()
        )

    async def update_incremental(
        self, data: Any, previous_result: AnalysisResult
    ) -> AnalysisResult:
        """``data``: ``{timeframe: MarketData}`` of the *closed* bars that follow the
        previous result in each timeframe (a timeframe may be missing or empty)."""
        st = previous_result.state
        if not st:
            return await self.analyze(data)
        if not isinstance(data, Mapping):
            raise ConfigError("data: expected {timeframe: MarketData} of new bars")
        streams = st["streams"]
        if streams is None:
            streams = {tf: self._ind[tf].streams(md) for tf, md in st["frames"].items()}
        streams = {tf: [s.copy() for s in ss] for tf, ss in streams.items()}
        last = {tf: dict(v) for tf, v in st["last"].items()}
        frames = dict(st["frames"])
        for tf, md in data.items():
            if tf not in self._ind:
                raise ConfigError(f"data: {tf!r} is not one of the timeframes")
            for bar in _bars(md):
                v = self._ind[tf].step(streams[tf], bar)
                last[tf] = {
                    k: (tuple(float(x) for x in x_) if isinstance(x_, tuple) else float(x_))
                    for k, x_ in v.items()
                }
                last[tf]["close"] = bar["close"]
            if len(md):
                frames[tf] = md
        result = self._result(frames, last, st["kind"])
        result.state = {
            "frames": frames,
            "streams": streams,
            "last": last,
            "kind": result.values["signal"],
        }
        return result


def _tf_ms(tf: str) -> int:
    t = tfm.parse(tf)
    return t.width if t.width is not None else t.count * 31 * 86_400_000


__all__ = [
    "REGIMES",
    "AnalysisResult",
    "BaseAnalyzer",
    "MarketRegimeAnalyzer",
    "MultiTimeframeAnalyzer",
]
