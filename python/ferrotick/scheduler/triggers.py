"""Triggers: when a job fires.

Every trigger has ``next_fire_time(after)``: the first nominal fire time strictly
after ``after`` (a timezone-aware datetime), or None when it will not fire again.
A naive datetime raises ConfigError. Cron arithmetic runs in Rust on the same time
zone data as Python's ``zoneinfo`` (see ``_tz``).

DST: a wall-clock time inside a skipped hour fires at the transition (the first
instant after the gap), once. In a repeated hour, a job whose hour field names
specific hours fires once (first fold); one whose hour field is ``*`` or a step
fires in both folds.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
from collections.abc import Iterable
from typing import Any

from .. import _core
from .._core import ConfigError
from .._validate import integer, is_integer, number
from ._tz import from_unix, get_zone, to_unix

__all__ = [
    "BaseTrigger",
    "CronTrigger",
    "DateTrigger",
    "IntervalTrigger",
    "daily",
    "hourly",
    "monthly",
    "weekly",
]

_WEEKDAYS = {
    "mon": 0,
    "monday": 0,
    "tue": 1,
    "tuesday": 1,
    "wed": 2,
    "wednesday": 2,
    "thu": 3,
    "thursday": 3,
    "fri": 4,
    "friday": 4,
    "sat": 5,
    "saturday": 5,
    "sun": 6,
    "sunday": 6,
}


def jitter_offset(job_id: str, nominal: float, jitter: float | None) -> float:
    """A deterministic offset in [0, jitter) from the job id and nominal time, so
    that every process computes the same fire time."""
    if not jitter:
        return 0.0
    h = hashlib.blake2b(f"{job_id}\x00{round(nominal * 1e6)}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64 * jitter


class BaseTrigger:
    """Base of all triggers."""

    timezone: _dt.tzinfo
    jitter: float | None = None

    def _bind_default_timezone(self, timezone: Any) -> None:
        """Gives a trigger created without a time zone the scheduler's."""

    def next_fire_time(self, after: _dt.datetime) -> _dt.datetime | None:
        t = self._next_unix(to_unix(after, "after"))
        return None if t is None else from_unix(t, self.timezone)

    def _next_unix(self, after: float) -> float | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _last_unix_at_or_before(self, t: float, since: float) -> float | None:
        """The last fire time in (since - 1 fire, t]; generic walk."""
        last = None
        cur: float | None = since
        steps = 0
        while cur is not None and cur <= t:
            last = cur
            cur = self._next_unix(cur)
            steps += 1
            if steps > 1_000_000:
                break
        return last


class IntervalTrigger(BaseTrigger):
    """Fires every fixed elapsed duration, anchored at ``start_date`` (default: when
    the job is added), until ``end_date``."""

    def __init__(
        self,
        weeks: float = 0,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
        start_date: _dt.datetime | None = None,
        end_date: _dt.datetime | None = None,
        timezone: Any = None,
        jitter: float | None = None,
    ) -> None:
        total = (
            number("weeks", weeks) * 604800
            + number("days", days) * 86400
            + number("hours", hours) * 3600
            + number("minutes", minutes) * 60
            + number("seconds", seconds)
        )
        if total <= 0:
            raise ConfigError(
                "interval: the interval must be positive (weeks/days/hours/minutes/seconds)"
            )
        self.interval = total
        tz = (
            timezone
            if timezone is not None
            else (start_date.tzinfo if isinstance(start_date, _dt.datetime) else None)
        )
        self._tz_explicit = tz is not None
        self.timezone, _ = get_zone(tz) if tz is not None else (_dt.timezone.utc, None)
        self.start = to_unix(start_date, "start_date") if start_date is not None else None
        self.end = to_unix(end_date, "end_date") if end_date is not None else None
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ConfigError("end_date: before start_date")
        self.jitter = None if jitter is None else number("jitter", jitter)
        if self.jitter is not None and self.jitter < 0:
            raise ConfigError("jitter: must be >= 0")

    def _bind_default_timezone(self, timezone: Any) -> None:
        if not self._tz_explicit and timezone is not None:
            self.timezone, _ = get_zone(timezone)
            self._tz_explicit = True

    def anchored(self, now: float) -> bool:
        """Fixes the start at ``now`` if none was given (the first firing is then
        one interval later, as APScheduler does); True when it did."""
        if self.start is None:
            self.start = now
            return True
        return False

    def _next_unix(self, after: float) -> float | None:
        start = self.start if self.start is not None else after
        if after < start:
            t = start
        else:
            k = math.floor((after - start) / self.interval) + 1
            t = start + k * self.interval
            # float rounding: step on the grid itself (start + k * interval), never
            # `t + interval`, whose rounding differs from the grid point's, so that
            # the same fire time is not produced twice a few ulps apart
            while t <= after:
                k += 1
                t = start + k * self.interval
        if self.end is not None and t > self.end:
            return None
        return t

    def _last_unix_at_or_before(self, t: float, since: float) -> float | None:
        start = self.start if self.start is not None else since
        if t < start:
            return None
        k = math.floor((t - start) / self.interval)
        last = start + k * self.interval
        if self.end is not None and last > self.end:
            k = math.floor((self.end - start) / self.interval)
            last = start + k * self.interval
        return max(last, since) if last >= since else since

    def __repr__(self) -> str:
        return f"IntervalTrigger(seconds={self.interval:g})"


class CronTrigger(BaseTrigger):
    """Cron schedule in a time zone.

    ``CronTrigger.from_crontab("30 0 * * *", timezone="Europe/London")`` takes the
    standard five fields (day-of-week 0-7, Sunday 0 or 7), names, ranges, steps,
    lists, ``@hourly``-style macros, ``L``, ``FRI#3``, ``5L`` and an optional leading
    seconds field. ``CronTrigger(hour=1, day_of_week="mon")`` is APScheduler's keyword
    form (day_of_week 0 = Monday; all given fields must match), with its ``day``
    expressions ``last``, ``last fri`` and ``1st``-``5th fri`` and ISO ``week`` numbers.
    """

    def __init__(
        self,
        year: Any = None,
        month: Any = None,
        day: Any = None,
        week: Any = None,
        day_of_week: Any = None,
        hour: Any = None,
        minute: Any = None,
        second: Any = None,
        start_date: _dt.datetime | None = None,
        end_date: _dt.datetime | None = None,
        timezone: Any = None,
        jitter: float | None = None,
        *,
        _recipe: Any = None,
        _spec: Any = None,
    ) -> None:
        if _recipe is None:
            fields = {
                "year": year,
                "month": month,
                "day": day,
                "week": week,
                "day_of_week": day_of_week,
                "hour": hour,
                "minute": minute,
                "second": second,
            }
            strs = {k: (None if v is None else str(v)) for k, v in fields.items()}

            def _recipe(zone: Any) -> Any:
                return _core.CronSchedule.fields(zone, **strs)

            _spec = ["fields", strs]

        self._recipe = _recipe
        # how to rebuild this trigger in another process (persistent job stores)
        self._spec = _spec
        self._tz_explicit = timezone is not None
        self.timezone, zone = get_zone(timezone)
        self._schedule = _recipe(zone)
        self.start = to_unix(start_date, "start_date") if start_date is not None else None
        self.end = to_unix(end_date, "end_date") if end_date is not None else None
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ConfigError("end_date: before start_date")
        self.jitter = None if jitter is None else number("jitter", jitter)
        if self.jitter is not None and self.jitter < 0:
            raise ConfigError("jitter: must be >= 0")

    @classmethod
    def from_crontab(
        cls,
        expr: str,
        timezone: Any = None,
        *,
        start_date: Any = None,
        end_date: Any = None,
        jitter: Any = None,
    ) -> CronTrigger:
        if not isinstance(expr, str):
            raise TypeError("expr: expected a crontab string")
        return cls(
            timezone=timezone,
            start_date=start_date,
            end_date=end_date,
            jitter=jitter,
            _recipe=lambda zone: _core.CronSchedule.parse(expr, zone),
            _spec=["crontab", expr],
        )

    def _bind_default_timezone(self, timezone: Any) -> None:
        if not self._tz_explicit and timezone is not None:
            self.timezone, zone = get_zone(timezone)
            self._schedule = self._recipe(zone)
            self._tz_explicit = True

    def _next_unix(self, after: float) -> float | None:
        if self.start is not None and after < self.start:
            after = self.start - 1e-6
        t = self._schedule.next_after(math.floor(after))
        if t is not None and t <= after:
            t = self._schedule.next_after(t)
        if t is None or (self.end is not None and t > self.end):
            return None
        return float(t)

    @property
    def expression(self) -> str:
        return self._schedule.expression

    def __repr__(self) -> str:
        return f"CronTrigger({self.expression!r}, timezone={self.timezone})"


class DateTrigger(BaseTrigger):
    """Fires once, at ``run_date``."""

    def __init__(self, run_date: _dt.datetime, timezone: Any = None) -> None:
        self.run_at = to_unix(run_date, "run_date")
        self.timezone = run_date.tzinfo if timezone is None else get_zone(timezone)[0]

    def _next_unix(self, after: float) -> float | None:
        return self.run_at if self.run_at > after else None

    def __repr__(self) -> str:
        return f"DateTrigger({from_unix(self.run_at, self.timezone).isoformat()})"


def _parse_at(at: Any) -> tuple[int, int, int]:
    if isinstance(at, _dt.time):
        return at.hour, at.minute, at.second
    if not isinstance(at, str):
        raise ConfigError(f"at: expected 'HH:MM' or 'HH:MM:SS', got {at!r}")
    parts = at.strip().split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        h, m = int(parts[0]), int(parts[1])
        s = int(parts[2]) if len(parts) == 3 else 0
    except ValueError:
        raise ConfigError(f"at: expected 'HH:MM' or 'HH:MM:SS', got {at!r}") from None
    if not (0 <= h < 24 and 0 <= m < 60 and 0 <= s < 60):
        raise ConfigError(f"at: {at!r} is not a time of day")
    return h, m, s


def _weekdays(day: Any) -> list[int]:
    items: Iterable[Any] = day if isinstance(day, (list, tuple, set)) else [day]
    out = []
    for d in items:
        if isinstance(d, str) and d.strip().lower() in _WEEKDAYS:
            out.append(_WEEKDAYS[d.strip().lower()])
        elif is_integer(d, min=0, max=6):
            out.append(d)
        else:
            raise ConfigError(f"day: {d!r} is not a weekday (a name, or 0 = Monday .. 6 = Sunday)")
    return out


def hourly(minute: int = 0, second: int = 0, *, timezone: Any = None) -> CronTrigger:
    """Every hour at ``minute:second``."""
    for name, v in (("minute", minute), ("second", second)):
        integer(name, v, min=0, max=59)
    return CronTrigger(
        timezone=timezone,
        _recipe=lambda zone: _core.CronSchedule.calendar(zone, 0, minute, second, every_hour=True),
        _spec=["calendar", {"hour": 0, "minute": minute, "second": second, "every_hour": True}],
    )


def daily(at: Any = "00:00", *, timezone: Any = None) -> CronTrigger:
    """Every day at ``at`` ('HH:MM[:SS]' or a datetime.time)."""
    h, m, s = _parse_at(at)
    return CronTrigger(
        timezone=timezone,
        _recipe=lambda zone: _core.CronSchedule.calendar(zone, h, m, s),
        _spec=["calendar", {"hour": h, "minute": m, "second": s}],
    )


def weekly(day: Any = "monday", at: Any = "00:00", *, timezone: Any = None) -> CronTrigger:
    """Every week on ``day`` (name or Python weekday number, 0 = Monday; or a list) at ``at``."""
    h, m, s = _parse_at(at)
    days = _weekdays(day)
    return CronTrigger(
        timezone=timezone,
        _recipe=lambda zone: _core.CronSchedule.calendar(zone, h, m, s, weekdays=days),
        _spec=["calendar", {"hour": h, "minute": m, "second": s, "weekdays": days}],
    )


def monthly(
    day: int = 1, at: Any = "00:00", *, clamp: bool = False, timezone: Any = None
) -> CronTrigger:
    """Every month on ``day`` at ``at``. Months without that day are skipped,
    unless ``clamp=True`` picks their last day."""
    if not is_integer(day, min=1, max=31):
        raise ConfigError(f"day: {day!r} is not a day of the month (1-31)")
    h, m, s = _parse_at(at)
    return CronTrigger(
        timezone=timezone,
        _recipe=lambda zone: _core.CronSchedule.calendar(zone, h, m, s, day=day, clamp=clamp),
        _spec=["calendar", {"hour": h, "minute": m, "second": s, "day": day, "clamp": clamp}],
    )
