"""Crontab fire times against a brute-force reference of Vixie cron's rules.

The reference reads each field as Vixie cron's ``entry.c`` does: a comma list of
single values, ranges ``a-b`` and ``*``; a range or ``*`` may take a ``/step``
(any step >= 1); months and weekdays may be named (three letters, any case);
day-of-week runs 0-7 where 0 and 7 are both Sunday, and ``*`` spans the whole
field (0-7 for day-of-week). A minute fires when its minute, hour and month
match and its day matches: both day fields must match when either of them
starts with ``*``, otherwise either one is enough (Vixie's OR rule).

The reference then walks the calendar day by day and, on a matching day, each
minute, so it shares nothing with ferrotick's bit masks and search.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from ferrotick import ConfigError
from ferrotick.scheduler import CronTrigger

UTC = dt.timezone.utc
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (low, high, names) per field; a name's value is its index plus low
FIELDS = [(0, 59, None), (0, 23, None), (1, 31, None), (1, 12, MONTHS), (0, 7, DAYS)]
# the search horizon of one next-fire-time call, in years
HORIZON_YEARS = 30


class Invalid(Exception):
    """The expression is not a valid crontab line for Vixie cron."""


def _number(text: str, low: int, high: int, names: list[str] | None) -> int:
    if text.isdigit():
        value = int(text)
    elif names is not None and text.lower() in names:
        value = names.index(text.lower()) + low
    else:
        raise Invalid(text)
    if not low <= value <= high:
        raise Invalid(text)
    return value


def vixie_field(text: str, low: int, high: int, names: list[str] | None) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        span, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise Invalid(item)
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, b = span.split("-", 1)
            first, last = _number(a, low, high, names), _number(b, low, high, names)
            if first > last:
                raise Invalid(item)
        elif slash:
            raise Invalid(item)  # a single value takes no step
        else:
            first = last = _number(span, low, high, names)
        values.update(range(first, last + 1, step))
    return values


class Vixie:
    def __init__(self, expr: str) -> None:
        fields = expr.split()
        if len(fields) != 5:
            raise Invalid(expr)
        sets = [vixie_field(f, *spec) for f, spec in zip(fields, FIELDS, strict=True)]
        self.minutes, self.hours, self.doms, self.months, self.dows = sets
        if self.dows & {0, 7}:  # both spellings of Sunday
            self.dows |= {0, 7}
        self.either_day = not fields[2].startswith("*") and not fields[4].startswith("*")

    def day_matches(self, d: dt.date) -> bool:
        if d.month not in self.months:
            return False
        dom = d.day in self.doms
        dow = (d.weekday() + 1) % 7 in self.dows  # Python: Monday 0; cron: Sunday 0
        return dom or dow if self.either_day else dom and dow

    def next_after(self, after: dt.datetime) -> dt.datetime | None:
        day = after.date()
        while day.year <= after.year + HORIZON_YEARS:
            if self.day_matches(day):
                for hour in range(24):
                    if hour not in self.hours:
                        continue
                    for minute in range(60):
                        if minute not in self.minutes:
                            continue
                        t = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if t > after:
                            return t
            day += dt.timedelta(days=1)
        return None


def reference_fires(ref: Vixie, after: dt.datetime, n: int) -> list[dt.datetime]:
    out: list[dt.datetime] = []
    t: dt.datetime | None = after
    while len(out) < n:
        t = ref.next_after(t)
        if t is None:
            break
        out.append(t)
    return out


def ferrotick_fires(trig: CronTrigger, after: dt.datetime, n: int) -> list[dt.datetime]:
    out: list[dt.datetime] = []
    t: dt.datetime | None = after
    while len(out) < n:
        t = trig.next_fire_time(t)
        if t is None:
            break
        out.append(t)
    return out


# -- random expressions ---------------------------------------------------------------


def _render(rng: random.Random, value: int, low: int, names: list[str] | None) -> str:
    if names is not None and value - low < len(names) and rng.random() < 0.4:
        name = names[value - low]
        return rng.choice([name, name.upper(), name.capitalize()])
    return str(value)


def _step(rng: random.Random, low: int, high: int, dow: bool) -> int:
    # day-of-week takes any step; the other fields steps up to their width
    return rng.randint(1, 10) if dow else rng.randint(1, high - low + 1)


def _item(rng: random.Random, low: int, high: int, names: list[str] | None, dow: bool) -> str:
    kind = rng.random()
    if kind < 0.45:
        return _render(rng, rng.randint(low, high), low, names)
    a, b = sorted(rng.randint(low, high) for _ in range(2))
    span = f"{_render(rng, a, low, names)}-{_render(rng, b, low, names)}"
    if kind < 0.75:
        return span
    return f"{span}/{_step(rng, low, high, dow)}"


def random_field(rng: random.Random, index: int) -> str:
    low, high, names = FIELDS[index]
    dow = index == 4
    roll = rng.random()
    # minutes and hours are kept sparse so that fire times spread over many days
    star = {0: 0.05, 1: 0.15}.get(index, 0.35)
    if roll < star:
        return "*"
    if roll < star + 0.15:
        return f"*/{_step(rng, low, high, dow)}"
    count = 1 if rng.random() < 0.6 else rng.randint(2, 4)
    return ",".join(_item(rng, low, high, names, dow) for _ in range(count))


def random_invalid(rng: random.Random) -> str:
    fields = [random_field(rng, i) for i in range(5)]
    i = rng.randrange(5)
    low, high, _ = FIELDS[i]
    fields[i] = rng.choice(
        [
            f"{high}-{low}",  # backwards
            f"{low}-{high}/0",  # step 0
            "*/0",
            str(high + 1),  # out of range
            f"{low}-{high + 1}",
            "x" if i < 3 else "xyz",  # not a number or a name
        ]
    )
    return " ".join(fields)


def random_start(rng: random.Random) -> dt.datetime:
    base = dt.datetime(2000, 1, 1, tzinfo=UTC)
    return base + dt.timedelta(seconds=rng.randrange(40 * 365 * 86_400) + rng.random())


EXPRESSIONS = 4000
FIRES = 8


def test_random_expressions_match_the_vixie_reference():
    rng = random.Random(20261103)
    compared = refused = 0
    for _ in range(EXPRESSIONS):
        expr = " ".join(random_field(rng, i) for i in range(5))
        ref = Vixie(expr)
        after = random_start(rng)
        try:
            trig = CronTrigger.from_crontab(expr, timezone="UTC")
        except ConfigError as e:
            # ferrotick refuses only what can never fire
            assert "never fire" in str(e), (expr, str(e))
            assert ref.next_after(dt.datetime(2001, 1, 1, tzinfo=UTC)) is None, expr
            refused += 1
            continue
        want = reference_fires(ref, after, FIRES)
        got = ferrotick_fires(trig, after, FIRES)
        assert got == want, (expr, after)
        compared += 1
    assert compared > EXPRESSIONS * 0.95 and refused < EXPRESSIONS * 0.05


def test_invalid_random_expressions_are_refused_by_both():
    rng = random.Random(7)
    for _ in range(500):
        expr = random_invalid(rng)
        with pytest.raises(Invalid):
            Vixie(expr)
        with pytest.raises(ConfigError):
            CronTrigger.from_crontab(expr, timezone="UTC")


def test_reference_reads_fields_as_vixie_does():
    assert vixie_field("*/8", 0, 7, DAYS) == {0}
    assert vixie_field("7-7", 0, 7, DAYS) == {7}
    assert vixie_field("Mon-FRI/2", 0, 7, DAYS) == {1, 3, 5}
    assert vixie_field("1-7/3", 0, 7, DAYS) == {1, 4, 7}
    assert Vixie("0 0 * * 7").dows == {0, 7}
    assert Vixie("0 0 13 * 5").either_day and not Vixie("0 0 */1 * 5").either_day
    for bad in ("5/2", "3-1", "*/0", "8", "sunday"):
        with pytest.raises(Invalid):
            vixie_field(bad, 0, 7, DAYS)


# -- day-of-week spellings of Sunday and steps ----------------------------------------


def weekdays_fired(expr: str) -> set[int]:
    """Python weekdays (Monday 0) on which ``expr`` fires in two weeks of 2024."""
    trig = CronTrigger.from_crontab(expr, timezone="UTC")
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
    return {t.weekday() for t in ferrotick_fires(trig, start, 14) if t < start + dt.timedelta(14)}


@pytest.mark.parametrize(
    "dow, weekdays",
    [
        ("7-7", {6}),
        ("0-0", {6}),
        ("Sun-Sun", {6}),
        ("7", {6}),
        ("0-7", set(range(7))),
        ("sun-7", set(range(7))),
        ("*/8", {6}),
        ("0-7/8", {6}),
        ("*/100", {6}),
        ("*/7", {6}),
        ("1-7/3", {0, 3, 6}),  # Monday, Thursday, Sunday
        ("5-7/2", {4, 6}),  # Friday, Sunday
        ("6-7", {5, 6}),
    ],
)
def test_day_of_week_sevens_and_steps(dow, weekdays):
    assert weekdays_fired(f"0 0 * * {dow}") == weekdays
