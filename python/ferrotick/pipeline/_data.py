"""``MarketData``: one symbol's OHLCV bars as numpy columns, with resampling."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from .._errors import ConfigError, MarketDataError
from . import _timeframe as tfm

COLUMNS = ("open", "high", "low", "close", "volume")


def _f64(name: str, v: Any) -> np.ndarray:
    try:
        a = np.ascontiguousarray(v, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise MarketDataError(f"{name}: not convertible to float64 ({e})") from None
    if a.ndim != 1:
        raise MarketDataError(f"{name}: expected a 1-D array, got {a.ndim} dimensions")
    return a


def _times(v: Any) -> np.ndarray:
    a = np.asarray(v)
    if np.issubdtype(a.dtype, np.datetime64):
        a = a.astype("datetime64[ms]").astype(np.int64)
    try:
        a = np.ascontiguousarray(a, dtype=np.int64)
    except (TypeError, ValueError) as e:
        raise MarketDataError(f"open_time: not convertible to int64 ms ({e})") from None
    if a.ndim != 1:
        raise MarketDataError(f"open_time: expected a 1-D array, got {a.ndim} dimensions")
    return a


class MarketData:
    """OHLCV bars of one symbol in one timeframe.

    Columns are numpy arrays (``open_time`` int64 UTC milliseconds, the prices and
    volume float64); arrays already of those types are used as they are, not
    copied. Open times strictly increase (MarketDataError names the first that
    does not). ``partial_last`` says the last bar's period had not ended when the
    data was taken. ``data`` is the pandas DataFrame form, built on first use.
    """

    __slots__ = (
        "symbol",
        "timeframe",
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "partial_last",
        "_frame",
    )

    def __init__(
        self,
        symbol: str,
        timeframe: str,
        open_time: Any,
        open: Any,
        high: Any,
        low: Any,
        close: Any,
        volume: Any = None,
        *,
        partial_last: bool = False,
    ) -> None:
        if not isinstance(symbol, str) or not symbol:
            raise ConfigError(f"symbol: expected a non-empty str, got {symbol!r}")
        tfm.parse(timeframe)
        self.symbol = symbol
        self.timeframe = timeframe
        self.open_time = _times(open_time)
        n = len(self.open_time)
        self.open = _f64("open", open)
        self.high = _f64("high", high)
        self.low = _f64("low", low)
        self.close = _f64("close", close)
        self.volume = _f64("volume", np.zeros(n) if volume is None else volume)
        for c in COLUMNS:
            if len(getattr(self, c)) != n:
                raise MarketDataError(
                    f"{c}: {len(getattr(self, c))} values, open_time has {n} ({symbol})"
                )
        if n > 1:
            bad = np.flatnonzero(np.diff(self.open_time) <= 0)
            if len(bad):
                i = int(bad[0]) + 1
                raise MarketDataError(
                    f"open_time: must strictly increase; element {i} ({self.open_time[i]}) "
                    f"is not after the one before ({symbol})"
                )
        self.partial_last = bool(partial_last)
        self._frame: Any = None

    # -- constructors ---------------------------------------------------------------

    @classmethod
    def from_arrays(cls, symbol: str, timeframe: str, **columns: Any) -> MarketData:
        """From keyword arrays: ``open_time``, ``open``, ``high``, ``low``, ``close``,
        ``volume`` (volume optional)."""
        missing = [c for c in ("open_time", "open", "high", "low", "close") if c not in columns]
        if missing:
            raise ConfigError(f"{missing[0]}: a column MarketData needs")
        extra = sorted(set(columns) - {"open_time", *COLUMNS})
        if extra:
            raise ConfigError(f"{extra[0]}: not a MarketData column")
        return cls(symbol, timeframe, **columns)

    @classmethod
    def from_klines(cls, klines: Any, *, partial_last: bool | None = None) -> MarketData:
        """From the exchange client's ``Klines`` without copying its arrays. The last
        bar is partial when its close time is still ahead of the clock (give
        ``partial_last`` to decide it yourself)."""
        if partial_last is None:
            n = len(klines)
            partial_last = bool(n) and int(klines.close_time[n - 1]) >= _core_now_ms()
        return cls(
            klines.symbol,
            klines.interval,
            klines.open_time,
            klines.open,
            klines.high,
            klines.low,
            klines.close,
            klines.volume,
            partial_last=partial_last,
        )

    @classmethod
    def from_pandas(cls, df: Any, symbol: str, timeframe: str) -> MarketData:
        """From a DataFrame with open/high/low/close[/volume] columns (any case) and the
        open times in a DatetimeIndex or an ``open_time``/``timestamp`` column
        (datetimes, or integers in ms)."""
        cols = {str(c).lower(): c for c in df.columns}
        for key in ("open_time", "timestamp", "time", "date"):
            if key in cols:
                t = df[cols[key]].to_numpy()
                break
        else:
            idx = df.index
            if getattr(idx, "tz", None) is not None:
                idx = idx.tz_convert("UTC").tz_localize(None)
            t = idx.to_numpy()
        get = {c: df[cols[c]].to_numpy() for c in COLUMNS if c in cols}
        missing = [c for c in COLUMNS[:4] if c not in get]
        if missing:
            raise ConfigError(f"{missing[0]}: the DataFrame has no such column")
        return cls(symbol, timeframe, t, **get)

    @classmethod
    def from_polars(cls, df: Any, symbol: str, timeframe: str) -> MarketData:
        """From a polars DataFrame with the same columns as :meth:`from_pandas`."""
        cols = {c.lower(): c for c in df.columns}
        tkey = next((k for k in ("open_time", "timestamp", "time", "date") if k in cols), None)
        if tkey is None:
            raise ConfigError("open_time: the DataFrame has no open_time/timestamp column")
        t = df[cols[tkey]].to_numpy()
        get = {c: df[cols[c]].to_numpy() for c in COLUMNS if c in cols}
        missing = [c for c in COLUMNS[:4] if c not in get]
        if missing:
            raise ConfigError(f"{missing[0]}: the DataFrame has no such column")
        return cls(symbol, timeframe, t, **get)

    # -- views ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.open_time)

    def __repr__(self) -> str:
        return (
            f"MarketData(symbol={self.symbol!r}, timeframe={self.timeframe!r}, bars={len(self)}"
            f"{', partial_last=True' if self.partial_last else ''})"
        )

    @property
    def close_time(self) -> np.ndarray:
        """Each bar's close time: the next period's open time (UTC ms)."""
        return tfm.close_times(tfm.parse(self.timeframe), self.open_time)

    def to_dict(self) -> dict[str, np.ndarray]:
        return {"open_time": self.open_time, **{c: getattr(self, c) for c in COLUMNS}}

    def to_pandas(self) -> Any:
        """A DataFrame indexed by open time (UTC), one column per price and volume."""
        import pandas as pd

        idx = pd.DatetimeIndex(self.open_time.astype("datetime64[ms]"), name="open_time")
        return pd.DataFrame({c: getattr(self, c) for c in COLUMNS}, index=idx.tz_localize("UTC"))

    @property
    def data(self) -> Any:
        """The pandas form (seed 000's ``MarketData.data``), built once."""
        if self._frame is None:
            self._frame = self.to_pandas()
        return self._frame

    def to_polars(self) -> Any:
        import polars as pl

        return pl.DataFrame(
            {
                "open_time": pl.Series(self.open_time).cast(pl.Datetime("ms", "UTC")),
                **{c: getattr(self, c) for c in COLUMNS},
            }
        )

    def tail(self, n: int) -> MarketData:
        """The last ``n`` bars (views, not copies)."""
        s = slice(max(len(self) - n, 0), None)
        return self._slice(s, self.partial_last)

    def _slice(self, s: slice, partial_last: bool) -> MarketData:
        md = MarketData.__new__(MarketData)
        md.symbol, md.timeframe, md.partial_last, md._frame = (
            self.symbol,
            self.timeframe,
            partial_last,
            None,
        )
        md.open_time = self.open_time[s]
        for c in COLUMNS:
            setattr(md, c, getattr(self, c)[s])
        return md

    # -- resampling -----------------------------------------------------------------

    def resample(
        self, timeframe: str, *, tz: str | None = None, fill_empty: bool = False
    ) -> MarketData:
        """Bars of a wider timeframe, aggregated in Rust (see ``ferrotick.pipeline``
        for the rules: buckets labelled by open time, weeks from Monday, days and
        weeks in ``tz`` when given, gaps left out unless ``fill_empty``, the last bar
        flagged ``partial_last`` when its period is not over)."""
        target = tfm.parse(timeframe)
        source = tfm.parse(self.timeframe)
        rule = rule_kwargs(target, source, self.open_time, tz)
        t, o, h, lo, c, v, _count, partial = _core.pipeline_resample(
            self.open_time,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            fill_empty=fill_empty,
            interval=source.width,
            **rule,
        )
        return MarketData(
            self.symbol,
            timeframe,
            t,
            o,
            h,
            lo,
            c,
            v,
            partial_last=bool(partial) or (self.partial_last and len(t) > 0),
        )


def rule_kwargs(
    target: tfm.Timeframe, source: tfm.Timeframe | None, open_time: np.ndarray, tz: str | None
) -> dict[str, Any]:
    """The Rust kernel's bucket arguments for ``target``: ``width``/``origin`` or
    ``edges`` covering ``open_time``. Checks the target is a whole multiple of the
    source timeframe."""
    tfm.zone(tz)
    if source is not None and source.width is not None:
        tw = target.width
        if tw is not None and (tw < source.width or tw % source.width):
            raise ConfigError(
                f"timeframe: {target.name} is not a whole multiple of the data's {source.name}"
            )
    if target.calendar(tz) or target.width is None:
        if len(open_time) == 0:
            return {"edges": np.asarray([0, 1], dtype=np.int64)}
        return {"edges": tfm.edges(target, int(open_time[0]), int(open_time[-1]), tz)}
    return {"width": target.width, "origin": target.origin}


def join_higher(lower: MarketData, higher: MarketData, values: Any) -> np.ndarray:
    """``values`` (one per bar of ``higher``) aligned to ``lower``'s bars without
    look-ahead: each lower bar sees the last higher bar that had closed by the
    lower bar's own close (NaN before the first). A 1h value becomes visible on the
    5m bar that closes at the hour, never earlier."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) != len(higher):
        raise MarketDataError(f"values: {len(v)} values, the higher timeframe has {len(higher)}")
    hc = higher.close_time
    lc = lower.close_time
    i = np.searchsorted(hc, lc, side="right") - 1
    out = np.full(len(lower), np.nan)
    ok = i >= 0
    out[ok] = v[i[ok]]
    return out


def _core_now_ms() -> int:
    import time

    return int(time.time() * 1000)


__all__ = ["MarketData", "join_higher"]
