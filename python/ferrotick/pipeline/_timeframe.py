"""Timeframes ("1m", "4h", "1w", "1M") and the bucket rules the resampler uses.

Fixed timeframes (seconds to weeks) are buckets of a constant width from an
origin: the Unix epoch, or the first Monday after it for weeks, so weeks start on
Monday 00:00 UTC. Calendar months, and days or weeks in a time zone (23- or
25-hour days around DST changes), are explicit bucket edges computed here with
``zoneinfo`` and handed to the Rust kernels.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from .._errors import ConfigError

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
MONDAY_ORIGIN_MS = 4 * 86_400_000
_RE = re.compile(r"^([1-9][0-9]*)([smhdwM])$")
_UTC = _dt.timezone.utc


class Timeframe(NamedTuple):
    """``count`` units of ``unit`` (s, m, h, d, w or M)."""

    count: int
    unit: str

    @property
    def name(self) -> str:
        return f"{self.count}{self.unit}"

    @property
    def width(self) -> int | None:
        """Milliseconds per bar; None for months, whose lengths vary."""
        ms = _UNIT_MS.get(self.unit)
        return None if ms is None else ms * self.count

    @property
    def origin(self) -> int:
        return MONDAY_ORIGIN_MS if self.unit == "w" else 0

    def calendar(self, tz: str | None) -> bool:
        """Whether buckets need explicit edges: months, or days/weeks in a zone."""
        return self.unit == "M" or (tz is not None and self.unit in ("d", "w"))


_PARSED: dict[str, Timeframe] = {}


def parse(tf: str, name: str = "timeframe") -> Timeframe:
    """``"5m"`` → Timeframe(5, "m"); a bad string raises ConfigError naming ``name``."""
    hit = _PARSED.get(tf) if isinstance(tf, str) else None
    if hit is not None:
        return hit
    m = _RE.match(tf) if isinstance(tf, str) else None
    if m is None:
        raise ConfigError(
            f"{name}: expected a count and a unit s, m, h, d, w or M (such as '5m', '4h', "
            f"'1M'), got {tf!r}"
        )
    t = _PARSED[tf] = Timeframe(int(m.group(1)), m.group(2))
    return t


def zone(tz: str | None) -> ZoneInfo | None:
    if tz is None:
        return None
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ConfigError(f"tz: unknown time zone {tz!r}") from e


def _ms(d: _dt.datetime) -> int:
    return int(d.timestamp() * 1000)


def edges(tf: Timeframe, start_ms: int, end_ms: int, tz: str | None = None) -> np.ndarray:
    """Bucket edges covering ``[start_ms, end_ms]`` (each edge a bucket's open time,
    the last one the end of the last bucket)."""
    z = zone(tz) or _UTC
    first = _dt.datetime.fromtimestamp(start_ms / 1000, z)
    out: list[int] = []
    if tf.unit == "M":
        # multi-month buckets count from January 1970
        epoch = 1970 * 12
        months = (first.year * 12 + first.month - 1 - epoch) // tf.count * tf.count + epoch
        while True:
            y, m = divmod(months, 12)
            e = _ms(_dt.datetime(y, m + 1, 1, tzinfo=z))
            out.append(e)
            if e > end_ms:
                break
            months += tf.count
    else:
        step = tf.count * (7 if tf.unit == "w" else 1)
        day = first.date()
        if tf.unit == "w":
            day -= _dt.timedelta(days=day.weekday())
        # multi-day buckets count from the epoch (or the first Monday), as fixed ones do
        base = _dt.date(1970, 1, 5) if tf.unit == "w" else _dt.date(1970, 1, 1)
        day -= _dt.timedelta(days=(day - base).days % step)
        while True:
            e = _ms(_dt.datetime(day.year, day.month, day.day, tzinfo=z))
            out.append(e)
            if e > end_ms:
                break
            day += _dt.timedelta(days=step)
    return np.asarray(out, dtype=np.int64)


def close_times(tf: Timeframe, open_time: np.ndarray, tz: str | None = None) -> np.ndarray:
    """Each bar's close time (the next bucket's open time)."""
    w = tf.width
    if not tf.calendar(tz) and w is not None:
        return open_time + w
    if len(open_time) == 0:
        return open_time.copy()
    e = edges(tf, int(open_time[0]), int(open_time[-1]), tz)
    i = np.searchsorted(e, open_time, side="right")
    return e[np.minimum(i, len(e) - 1)]
