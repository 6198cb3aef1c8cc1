"""Scheduler triggers: next fire times, cron syntax, calendar helpers, DST, bad input.

Expected instants are computed independently of ferrotick: by hand (checked against
the calendar), by predicates over a whole year, or from ``zoneinfo`` for the DST cases.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import zoneinfo

import pytest

from ferrotick import ConfigError
from ferrotick.scheduler import (
    CronTrigger,
    DateTrigger,
    IntervalTrigger,
    daily,
    hourly,
    monthly,
    weekly,
)

UTC = dt.timezone.utc


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def fires(trigger, after: dt.datetime, n: int) -> list[dt.datetime]:
    """The next ``n`` fire times after ``after`` (fewer if the trigger ends)."""
    out = []
    t = after
    for _ in range(n):
        t = trigger.next_fire_time(t)
        if t is None:
            break
        out.append(t)
    return out


def fires_until(trigger, after: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    out = []
    t = trigger.next_fire_time(after)
    while t is not None and t <= end:
        out.append(t)
        t = trigger.next_fire_time(t)
    return out


def days_of_2024(pred) -> list[dt.datetime]:
    """Midnight UTC of every day of 2024 matching ``pred(date)``."""
    d = dt.date(2024, 1, 1)
    out = []
    while d.year == 2024:
        if pred(d):
            out.append(utc(d.year, d.month, d.day))
        d += dt.timedelta(days=1)
    return out


def cron_2024(expr: str) -> list[dt.datetime]:
    trig = CronTrigger.from_crontab(expr, timezone="UTC")
    return fires_until(trig, utc(2023, 12, 31, 23, 59, 59), utc(2024, 12, 31, 23, 59, 59))


def last_day(d: dt.date) -> int:
    return calendar.monthrange(d.year, d.month)[1]


# -- the contract of next_fire_time -------------------------------------------------


def all_kinds():
    return [
        IntervalTrigger(minutes=5, start_date=utc(2024, 1, 1)),
        CronTrigger.from_crontab("*/5 * * * *", timezone="UTC"),
        CronTrigger(minute="*/5", timezone="Europe/London"),
        daily("09:30", timezone="America/New_York"),
        DateTrigger(utc(2024, 6, 1, 12)),
    ]


@pytest.mark.parametrize("trigger", all_kinds(), ids=lambda t: type(t).__name__)
def test_next_fire_time_is_strictly_after_and_timezone_aware(trigger):
    after = utc(2024, 3, 1, 10, 0)
    first = trigger.next_fire_time(after)
    assert first is not None and first.tzinfo is not None
    assert first > after
    # the fire time itself is not "after" itself: asking again moves on (or ends)
    second = trigger.next_fire_time(first)
    assert second is None or second > first
    # a fraction of a second before a fire time gives that fire time
    assert trigger.next_fire_time(first - dt.timedelta(microseconds=1)) == first


@pytest.mark.parametrize("trigger", all_kinds(), ids=lambda t: type(t).__name__)
def test_naive_datetime_is_a_config_error_naming_after(trigger):
    with pytest.raises(ConfigError, match="after") as e:
        trigger.next_fire_time(dt.datetime(2024, 3, 1, 10, 0))
    assert isinstance(e.value, ValueError)


def test_fire_times_carry_the_trigger_time_zone():
    t = daily("09:30", timezone="America/New_York").next_fire_time(utc(2024, 7, 1))
    assert t.utcoffset() == dt.timedelta(hours=-4)
    assert (t.hour, t.minute) == (9, 30)
    assert t == utc(2024, 7, 1, 13, 30)


# -- IntervalTrigger ------------------------------------------------------------------


def test_interval_is_anchored_at_start_date():
    start = utc(2024, 1, 1, 0, 0, 7)
    trig = IntervalTrigger(minutes=10, start_date=start)
    assert trig.next_fire_time(utc(2023, 12, 1)) == start
    assert trig.next_fire_time(start) == start + dt.timedelta(minutes=10)
    # from any instant, the next point of the grid start + k * 10 min
    assert trig.next_fire_time(utc(2024, 1, 1, 3, 4, 5)) == utc(2024, 1, 1, 3, 10, 7)
    assert fires(trig, utc(2024, 1, 1, 0, 0, 8), 3) == [
        utc(2024, 1, 1, 0, 10, 7),
        utc(2024, 1, 1, 0, 20, 7),
        utc(2024, 1, 1, 0, 30, 7),
    ]


def test_interval_adds_all_units_and_stops_at_end_date():
    start = utc(2024, 1, 1)
    step = dt.timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5.5)
    end = start + 3 * step
    trig = IntervalTrigger(
        weeks=1, days=2, hours=3, minutes=4, seconds=5.5, start_date=start, end_date=end
    )
    assert fires(trig, start - dt.timedelta(seconds=1), 10) == [start + k * step for k in range(4)]
    assert trig.next_fire_time(end) is None


def test_interval_counts_elapsed_time_across_dst():
    # 24 hours after noon on the eve of London's spring-forward is 13:00 local
    london = zoneinfo.ZoneInfo("Europe/London")
    start = dt.datetime(2024, 3, 30, 12, 0, tzinfo=london)
    trig = IntervalTrigger(hours=24, start_date=start)
    nxt = trig.next_fire_time(start)
    assert nxt.timestamp() - start.timestamp() == 24 * 3600
    local = nxt.astimezone(london)
    assert (local.day, local.hour) == (31, 13)


def test_interval_without_start_date_counts_from_after():
    trig = IntervalTrigger(seconds=30)
    assert trig.next_fire_time(utc(2024, 1, 1, 0, 0, 10)) == utc(2024, 1, 1, 0, 0, 40)


# -- crontab syntax -------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, after, expected",
    [
        ("30 9 * * *", utc(2024, 1, 1, 9, 30), [utc(2024, 1, 2, 9, 30), utc(2024, 1, 3, 9, 30)]),
        (
            "*/15 * * * *",
            utc(2024, 1, 1, 0, 0),
            [utc(2024, 1, 1, 0, 15), utc(2024, 1, 1, 0, 30), utc(2024, 1, 1, 0, 45)],
        ),
        (
            "5/20 * * * *",  # a/step: from a to the end of the range
            utc(2024, 1, 1, 0, 0),
            [utc(2024, 1, 1, 0, 5), utc(2024, 1, 1, 0, 25), utc(2024, 1, 1, 0, 45)],
        ),
        (
            "0 0-23/6 * * *",
            utc(2024, 1, 1, 0, 0),
            [utc(2024, 1, 1, 6), utc(2024, 1, 1, 12), utc(2024, 1, 1, 18), utc(2024, 1, 2, 0)],
        ),
        (
            "0,30 8,20 * * *",
            utc(2024, 1, 1, 0, 0),
            [
                utc(2024, 1, 1, 8),
                utc(2024, 1, 1, 8, 30),
                utc(2024, 1, 1, 20),
                utc(2024, 1, 1, 20, 30),
            ],
        ),
        (
            "10-12 3 * * *",
            utc(2024, 1, 1, 0, 0),
            [utc(2024, 1, 1, 3, 10), utc(2024, 1, 1, 3, 11), utc(2024, 1, 1, 3, 12)],
        ),
        # month names (any case) and a month step
        ("0 0 1 jan,JUL *", utc(2024, 1, 1), [utc(2024, 7, 1), utc(2025, 1, 1)]),
        ("0 0 1 */4 *", utc(2024, 1, 1), [utc(2024, 5, 1), utc(2024, 9, 1), utc(2025, 1, 1)]),
        # day names; 2024-01-01 is a Monday
        (
            "0 12 * * sat,SUN",
            utc(2024, 1, 1),
            [utc(2024, 1, 6, 12), utc(2024, 1, 7, 12), utc(2024, 1, 13, 12)],
        ),
        (
            "0 9 * * MON-FRI",
            utc(2024, 1, 5, 9),  # a Friday, after its run
            [utc(2024, 1, 8, 9), utc(2024, 1, 9, 9)],
        ),
        # day-of-week 0 and 7 are both Sunday; 5-7 = Friday..Sunday
        ("0 0 * * 0", utc(2024, 1, 1), [utc(2024, 1, 7), utc(2024, 1, 14)]),
        ("0 0 * * 7", utc(2024, 1, 1), [utc(2024, 1, 7), utc(2024, 1, 14)]),
        ("0 0 * * 5-7", utc(2024, 1, 1), [utc(2024, 1, 5), utc(2024, 1, 6), utc(2024, 1, 7)]),
        # optional leading seconds field
        (
            "*/20 * * * * *",
            utc(2024, 1, 1),
            [utc(2024, 1, 1, 0, 0, 20), utc(2024, 1, 1, 0, 0, 40), utc(2024, 1, 1, 0, 1, 0)],
        ),
        (
            "15 10 * * * *",
            utc(2024, 1, 1),
            [utc(2024, 1, 1, 0, 10, 15), utc(2024, 1, 1, 1, 10, 15)],
        ),
        # day of month
        ("0 6 31 * *", utc(2024, 1, 31, 6), [utc(2024, 3, 31, 6), utc(2024, 5, 31, 6)]),
        ("0 0 29 2 *", utc(2024, 3, 1), [utc(2028, 2, 29)]),
    ],
)
def test_crontab_fields(expr, after, expected):
    trig = CronTrigger.from_crontab(expr, timezone="UTC")
    assert fires(trig, after, len(expected)) == expected


@pytest.mark.parametrize(
    "macro, equivalent",
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
    ],
)
def test_crontab_macros(macro, equivalent):
    after = utc(2024, 2, 10, 10, 30)
    got = fires(CronTrigger.from_crontab(macro, timezone="UTC"), after, 3)
    want = fires(CronTrigger.from_crontab(equivalent, timezone="UTC"), after, 3)
    assert got == want and len(got) == 3


def test_macro_instants():
    after = utc(2024, 2, 10, 10, 30)  # a Saturday
    tz = "UTC"
    assert CronTrigger.from_crontab("@hourly", tz).next_fire_time(after) == utc(2024, 2, 10, 11)
    assert CronTrigger.from_crontab("@daily", tz).next_fire_time(after) == utc(2024, 2, 11)
    assert CronTrigger.from_crontab("@weekly", tz).next_fire_time(after) == utc(2024, 2, 11)
    assert CronTrigger.from_crontab("@monthly", tz).next_fire_time(after) == utc(2024, 3, 1)
    assert CronTrigger.from_crontab("@yearly", tz).next_fire_time(after) == utc(2025, 1, 1)


def test_last_day_of_month():
    assert cron_2024("0 0 L * *") == days_of_2024(lambda d: d.day == last_day(d))
    assert len(cron_2024("0 0 L * *")) == 12
    assert utc(2024, 2, 29) in cron_2024("0 0 L * *")


def test_last_day_in_a_list_with_other_days():
    assert cron_2024("0 0 1,L * *") == days_of_2024(lambda d: d.day in (1, last_day(d)))


@pytest.mark.parametrize("expr", ["0 0 * * FRI#3", "0 0 * * 5#3", "0 0 * * fri#3"])
def test_nth_weekday_of_month(expr):
    want = days_of_2024(lambda d: d.weekday() == 4 and 15 <= d.day <= 21)
    assert len(want) == 12
    assert cron_2024(expr) == want


def test_last_weekday_of_month():
    want = days_of_2024(lambda d: d.weekday() == 4 and d.day + 7 > last_day(d))
    assert cron_2024("0 0 * * 5L") == want
    assert utc(2024, 5, 31) in want and len(want) == 12


def test_vixie_or_when_both_day_fields_are_restricted():
    # the 13th of each month, or any Friday
    assert cron_2024("0 0 13 * 5") == days_of_2024(lambda d: d.day == 13 or d.weekday() == 4)
    assert cron_2024("0 0 1-7 * MON") == days_of_2024(lambda d: d.day <= 7 or d.weekday() == 0)


def test_a_star_day_field_is_unrestricted():
    assert cron_2024("0 0 * * 5") == days_of_2024(lambda d: d.weekday() == 4)
    assert cron_2024("0 0 13 * *") == days_of_2024(lambda d: d.day == 13)
    assert cron_2024("0 0 13 * *") == cron_2024("0 0 13 * ?")


# '*/2' starts with '*': unrestricted for the OR rule, but its step still filters
# (fixed in src/sched/cron.rs by 4c87cf7; extensions built before it fire every day)


def test_star_step_in_day_of_month_keeps_its_step():
    assert cron_2024("0 0 */2 * *") == days_of_2024(lambda d: d.day % 2 == 1)
    keyword = CronTrigger(day="*/2", timezone="UTC")
    assert fires(keyword, utc(2024, 1, 1), 3) == [utc(2024, 1, 3), utc(2024, 1, 5), utc(2024, 1, 7)]


def test_star_step_in_day_of_week_keeps_its_step():
    # crontab numbering: 0 = Sunday; Python's weekday(): 6 = Sunday
    assert cron_2024("0 0 * * */2") == days_of_2024(lambda d: d.weekday() in (6, 1, 3, 5))


def test_star_step_day_of_month_with_weekday_is_an_and():
    # Vixie cron: a day field starting with '*' means AND, so odd days that are Fridays
    assert cron_2024("0 0 */2 * 5") == days_of_2024(lambda d: d.day % 2 == 1 and d.weekday() == 4)


def test_cron_start_and_end_date():
    trig = CronTrigger.from_crontab(
        "0 12 * * *", timezone="UTC", start_date=utc(2024, 1, 10), end_date=utc(2024, 1, 12, 12)
    )
    assert fires(trig, utc(2024, 1, 1), 10) == [
        utc(2024, 1, 10, 12),
        utc(2024, 1, 11, 12),
        utc(2024, 1, 12, 12),
    ]


def test_cron_expression_in_a_time_zone():
    trig = CronTrigger.from_crontab("0 9 * * *", timezone="Asia/Tokyo")
    assert trig.next_fire_time(utc(2024, 1, 1)) == utc(2024, 1, 2, 0)  # 09:00 JST = 00:00Z


# -- APScheduler's keyword form --------------------------------------------------------


def test_keyword_form_monday_is_zero():
    # APScheduler numbering: 0 = Monday (crontab's 0 is Sunday)
    mon = CronTrigger(day_of_week=0, hour=1, timezone="UTC")
    assert fires(mon, utc(2024, 1, 2), 2) == [utc(2024, 1, 8, 1), utc(2024, 1, 15, 1)]
    by_name = CronTrigger(day_of_week="mon", hour=1, timezone="UTC")
    assert fires(by_name, utc(2024, 1, 2), 2) == fires(mon, utc(2024, 1, 2), 2)
    sun = CronTrigger(day_of_week=6, hour=1, timezone="UTC")
    assert sun.next_fire_time(utc(2024, 1, 2)).weekday() == 6


def test_keyword_form_finer_fields_default_to_their_minimum():
    # only hour given: minute and second 0, every day
    assert fires(CronTrigger(hour=3, timezone="UTC"), utc(2024, 1, 1), 2) == [
        utc(2024, 1, 1, 3),
        utc(2024, 1, 2, 3),
    ]
    # only minute given: every hour at :05:00
    assert fires(CronTrigger(minute=5, timezone="UTC"), utc(2024, 1, 1), 2) == [
        utc(2024, 1, 1, 0, 5),
        utc(2024, 1, 1, 1, 5),
    ]
    # only second given: every minute at that second
    assert fires(CronTrigger(second="*/20", timezone="UTC"), utc(2024, 1, 1), 3) == [
        utc(2024, 1, 1, 0, 0, 20),
        utc(2024, 1, 1, 0, 0, 40),
        utc(2024, 1, 1, 0, 1, 0),
    ]
    # only the year: once, on its first second
    once = CronTrigger(year=2025, timezone="UTC")
    assert fires(once, utc(2024, 6, 1), 3) == [utc(2025, 1, 1)]


def test_keyword_form_day_and_day_of_week_must_both_match():
    # APScheduler's AND: Friday the 13th only
    trig = CronTrigger(day=13, day_of_week="fri", timezone="UTC")
    assert fires(trig, utc(2024, 1, 1), 3) == [
        utc(2024, 9, 13),
        utc(2024, 12, 13),
        utc(2025, 6, 13),
    ]


def test_keyword_form_ranges_steps_and_months():
    trig = CronTrigger(day_of_week="mon-fri", hour="9-10", minute="*/30", timezone="UTC")
    assert fires(trig, utc(2024, 1, 5, 10, 30), 3) == [  # Friday after its last run
        utc(2024, 1, 8, 9),
        utc(2024, 1, 8, 9, 30),
        utc(2024, 1, 8, 10),
    ]
    q = CronTrigger(month="1,4,7,10", day=1, hour=6, timezone="UTC")
    assert fires(q, utc(2024, 1, 2), 2) == [utc(2024, 4, 1, 6), utc(2024, 7, 1, 6)]


def keyword_2024(**fields):
    trig = CronTrigger(hour=0, timezone="UTC", **fields)
    out, t = [], utc(2023, 12, 31, 12)
    while True:
        t = trig.next_fire_time(t)
        if t is None or t.year > 2024:
            return out
        out.append(t)


def test_keyword_form_day_last_and_nth_weekday_expressions():
    # APScheduler's day field: "last", "last fri", "3rd fri", and lists mixing them
    assert keyword_2024(day="last") == days_of_2024(lambda d: d.day == last_day(d))
    assert keyword_2024(day="last fri") == days_of_2024(
        lambda d: d.weekday() == 4 and d.day + 7 > last_day(d)
    )
    assert keyword_2024(day="3rd fri") == days_of_2024(
        lambda d: d.weekday() == 4 and 15 <= d.day <= 21
    )
    assert keyword_2024(day="1st mon,15") == days_of_2024(
        lambda d: d.day == 15 or (d.weekday() == 0 and d.day <= 7)
    )
    # with other fields, all must match (AND): the 2nd Tuesday of March
    assert keyword_2024(day="2nd tue", month="3") == [utc(2024, 3, 12)]


def test_keyword_form_iso_week_numbers():
    # ISO weeks: week 1 of 2025 starts on Monday 2024-12-30
    assert keyword_2024(week="1", day_of_week="mon") == [utc(2024, 1, 1), utc(2024, 12, 30)]
    assert keyword_2024(week="*/26", day_of_week="sun") == days_of_2024(
        lambda d: d.weekday() == 6 and (d.isocalendar()[1] - 1) % 26 == 0
    )
    assert len(keyword_2024(week="10")) == 7  # every day of ISO week 10


# -- calendar helpers ------------------------------------------------------------------


def test_hourly():
    assert fires(hourly(timezone="UTC"), utc(2024, 1, 1, 0, 0), 2) == [
        utc(2024, 1, 1, 1),
        utc(2024, 1, 1, 2),
    ]
    assert fires(hourly(5, 7, timezone="UTC"), utc(2024, 1, 1), 2) == [
        utc(2024, 1, 1, 0, 5, 7),
        utc(2024, 1, 1, 1, 5, 7),
    ]


def test_daily():
    assert fires(daily("23:59:59", timezone="UTC"), utc(2024, 1, 1), 2) == [
        utc(2024, 1, 1, 23, 59, 59),
        utc(2024, 1, 2, 23, 59, 59),
    ]
    assert daily(dt.time(6, 45), timezone="UTC").next_fire_time(utc(2024, 1, 1, 7)) == utc(
        2024, 1, 2, 6, 45
    )
    assert daily(timezone="UTC").next_fire_time(utc(2024, 1, 1, 7)) == utc(2024, 1, 2)


@pytest.mark.parametrize("day", range(7))
def test_weekly_uses_python_weekday_numbers(day):
    got = fires(weekly(day, "09:30", timezone="UTC"), utc(2024, 1, 1), 4)
    assert [t.weekday() for t in got] == [day] * 4
    assert all((t.hour, t.minute) == (9, 30) for t in got)
    assert [(b - a).days for a, b in itertools.pairwise(got)] == [7, 7, 7]
    assert got[0] - utc(2024, 1, 1) < dt.timedelta(days=7)


def test_weekly_by_name_and_several_days():
    assert weekly("friday", timezone="UTC").next_fire_time(utc(2024, 1, 1)) == utc(2024, 1, 5)
    assert fires(weekly(["sat", 6], "10:00", timezone="UTC"), utc(2024, 1, 1), 4) == [
        utc(2024, 1, 6, 10),
        utc(2024, 1, 7, 10),
        utc(2024, 1, 13, 10),
        utc(2024, 1, 14, 10),
    ]


def test_monthly_31_skips_months_without_a_31st():
    got = fires(monthly(31, "08:00", timezone="UTC"), utc(2024, 1, 1), 7)
    assert got == [utc(2024, m, 31, 8) for m in (1, 3, 5, 7, 8, 10, 12)]


def test_monthly_31_with_clamp_takes_the_last_day():
    got = fires(monthly(31, "08:00", clamp=True, timezone="UTC"), utc(2024, 1, 1), 12)
    assert got == [utc(2024, m, calendar.monthrange(2024, m)[1], 8) for m in range(1, 13)]
    assert utc(2024, 2, 29, 8) in got and utc(2024, 4, 30, 8) in got


def test_monthly_29_in_a_common_year():
    skip = fires(monthly(29, timezone="UTC"), utc(2025, 1, 30), 1)
    clamp = fires(monthly(29, clamp=True, timezone="UTC"), utc(2025, 1, 30), 1)
    assert skip == [utc(2025, 3, 29)]
    assert clamp == [utc(2025, 2, 28)]


def test_monthly_ordinary_day():
    assert fires(monthly(15, "12:30", timezone="UTC"), utc(2024, 1, 20), 2) == [
        utc(2024, 2, 15, 12, 30),
        utc(2024, 3, 15, 12, 30),
    ]


# -- DateTrigger -----------------------------------------------------------------------


def test_date_trigger_fires_once():
    run = utc(2024, 6, 1, 12)
    trig = DateTrigger(run)
    assert trig.next_fire_time(utc(2024, 1, 1)) == run
    assert trig.next_fire_time(run) is None
    assert trig.next_fire_time(utc(2025, 1, 1)) is None


def test_date_trigger_keeps_the_time_zone():
    ny = zoneinfo.ZoneInfo("America/New_York")
    run = dt.datetime(2024, 6, 1, 8, 0, tzinfo=ny)
    t = DateTrigger(run).next_fire_time(utc(2024, 1, 1))
    assert t == run and t.utcoffset() == dt.timedelta(hours=-4)


# -- DST -------------------------------------------------------------------------------
#
# Independent reference, from zoneinfo only: a wall time is in a gap when it does not
# survive a round trip through UTC; the fire instant is then the first instant whose
# local time is after it. A wall time in a fold has two instants (fold=0, fold=1).

ZONES = {
    # zone: (gap date, wall time in the gap, fold date, wall time in the fold)
    "Europe/London": (dt.date(2024, 3, 31), (1, 30), dt.date(2024, 10, 27), (1, 30)),
    "America/New_York": (dt.date(2024, 3, 10), (2, 30), dt.date(2024, 11, 3), (1, 30)),
    # Lord Howe moves by 30 minutes: 02:00 -> 02:30 in October, 02:00 -> 01:30 in April
    "Australia/Lord_Howe": (dt.date(2024, 10, 6), (2, 15), dt.date(2024, 4, 7), (1, 45)),
}


def resolve(zone: zoneinfo.ZoneInfo, wall: dt.datetime) -> tuple[str, list[int]]:
    a = wall.replace(tzinfo=zone, fold=0)
    b = wall.replace(tzinfo=zone, fold=1)
    ta, tb = int(a.timestamp()), int(b.timestamp())
    if dt.datetime.fromtimestamp(ta, zone).replace(tzinfo=None) != wall:
        t = int(wall.replace(tzinfo=UTC).timestamp()) - 15 * 3600
        while dt.datetime.fromtimestamp(t, zone).replace(tzinfo=None) <= wall:
            t += 60
        return "gap", [t]
    if ta != tb:
        return "fold", sorted({ta, tb})
    return "single", [ta]


def reference(zone, minutes, hours, specific, first_day, ndays) -> list[int]:
    out: set[int] = set()
    for k in range(ndays):
        d = first_day + dt.timedelta(days=k)
        for h in hours:
            for m in minutes:
                kind, ts = resolve(zone, dt.datetime(d.year, d.month, d.day, h, m))
                out.update(ts[:1] if kind == "fold" and specific else ts)
    return sorted(out)


def instants(trigger, after: int, end: int) -> list[int]:
    got = fires_until(
        trigger, dt.datetime.fromtimestamp(after, UTC), dt.datetime.fromtimestamp(end, UTC)
    )
    return [int(t.timestamp()) for t in got]


def window(zone: zoneinfo.ZoneInfo, day: dt.date) -> tuple[int, int]:
    """From the evening before ``day`` to the morning after (local)."""
    before = dt.datetime(day.year, day.month, day.day, tzinfo=zone) - dt.timedelta(hours=6)
    return int(before.timestamp()), int(before.timestamp()) + 36 * 3600


@pytest.mark.parametrize("zone_name", list(ZONES))
def test_reference_sees_the_transitions(zone_name):
    # guards the reference itself: the chosen wall times are in a gap and a fold
    zone = zoneinfo.ZoneInfo(zone_name)
    gap_day, (gh, gm), fold_day, (fh, fm) = ZONES[zone_name]
    kind, (t,) = resolve(zone, dt.datetime.combine(gap_day, dt.time(gh, gm)))
    assert kind == "gap"
    assert dt.datetime.fromtimestamp(t - 1, zone).replace(tzinfo=None) < dt.datetime.combine(
        gap_day, dt.time(gh, gm)
    )
    kind, ts = resolve(zone, dt.datetime.combine(fold_day, dt.time(fh, fm)))
    assert kind == "fold" and len(ts) == 2


@pytest.mark.parametrize("zone_name", list(ZONES))
@pytest.mark.parametrize("form", ["crontab", "keyword", "daily"])
def test_gap_fires_once_at_the_transition(zone_name, form):
    zone = zoneinfo.ZoneInfo(zone_name)
    day, (h, m), _, _ = ZONES[zone_name]
    trig = {
        "crontab": lambda: CronTrigger.from_crontab(f"{m} {h} * * *", timezone=zone_name),
        "keyword": lambda: CronTrigger(hour=h, minute=m, timezone=zone_name),
        "daily": lambda: daily(f"{h:02d}:{m:02d}", timezone=zone_name),
    }[form]()
    eve = dt.datetime(day.year, day.month, day.day, tzinfo=zone) - dt.timedelta(days=1)
    got = [int(t.timestamp()) for t in fires(trig, eve, 3)]
    kind, (transition,) = resolve(zone, dt.datetime(day.year, day.month, day.day, h, m))
    assert kind == "gap"
    yesterday = resolve(zone, dt.datetime.combine(day - dt.timedelta(days=1), dt.time(h, m)))[1][0]
    tomorrow = resolve(zone, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(h, m)))[1][0]
    assert got == [yesterday, transition, tomorrow]
    # the transition instant: the first whose wall clock is past the skipped time
    local = dt.datetime.fromtimestamp(transition, zone)
    assert local.replace(tzinfo=None) > dt.datetime(day.year, day.month, day.day, h, m)


@pytest.mark.parametrize("zone_name", list(ZONES))
def test_gap_every_15_minutes_fires_once_at_the_transition(zone_name):
    zone = zoneinfo.ZoneInfo(zone_name)
    day = ZONES[zone_name][0]
    a, b = window(zone, day)
    got = instants(CronTrigger.from_crontab("*/15 * * * *", timezone=zone_name), a, b)
    want = [
        t
        for t in reference(zone, range(0, 60, 15), range(24), False, day - dt.timedelta(days=1), 3)
        if a < t <= b
    ]
    assert got == want
    assert len(got) == len(set(got))
    # the skipped wall times collapse onto the transition: in elapsed time the
    # firings stay 15 minutes apart, none twice
    assert len(got) == 36 * 4
    assert {b - a for a, b in itertools.pairwise(got)} == {900}


@pytest.mark.parametrize("zone_name", list(ZONES))
@pytest.mark.parametrize("form", ["crontab", "range", "keyword", "daily"])
def test_fold_specific_hour_fires_once_in_the_first_fold(zone_name, form):
    zone = zoneinfo.ZoneInfo(zone_name)
    _, _, day, (h, m) = ZONES[zone_name]
    trig = {
        "crontab": lambda: CronTrigger.from_crontab(f"{m} {h} * * *", timezone=zone_name),
        "range": lambda: CronTrigger.from_crontab(f"{m} {h}-{h} * * *", timezone=zone_name),
        "keyword": lambda: CronTrigger(hour=h, minute=m, timezone=zone_name),
        "daily": lambda: daily(f"{h:02d}:{m:02d}", timezone=zone_name),
    }[form]()
    a, b = window(zone, day)
    kind, (first_fold, second_fold) = resolve(zone, dt.datetime.combine(day, dt.time(h, m)))
    assert kind == "fold"
    got = instants(trig, a, b)
    want = [t for t in reference(zone, [m], [h], True, day - dt.timedelta(days=1), 3) if a < t <= b]
    assert got == want
    assert first_fold in got and second_fold not in got
    assert dt.datetime.fromtimestamp(first_fold, zone).fold == 0


@pytest.mark.parametrize("zone_name", list(ZONES))
@pytest.mark.parametrize("form", ["star", "step", "hourly"])
def test_fold_star_or_step_hour_fires_in_both_folds(zone_name, form):
    zone = zoneinfo.ZoneInfo(zone_name)
    _, _, day, (h, m) = ZONES[zone_name]
    trig = {
        "star": lambda: CronTrigger.from_crontab(f"{m} * * * *", timezone=zone_name),
        "step": lambda: CronTrigger.from_crontab(f"{m} */1 * * *", timezone=zone_name),
        "hourly": lambda: hourly(m, timezone=zone_name),
    }[form]()
    a, b = window(zone, day)
    got = instants(trig, a, b)
    want = [
        t
        for t in reference(zone, [m], range(24), False, day - dt.timedelta(days=1), 3)
        if a < t <= b
    ]
    assert got == want
    kind, (first_fold, second_fold) = resolve(zone, dt.datetime.combine(day, dt.time(h, m)))
    assert first_fold in got and second_fold in got
    shift = 1800 if zone_name == "Australia/Lord_Howe" else 3600
    assert second_fold - first_fold == shift


@pytest.mark.parametrize("zone_name", list(ZONES))
@pytest.mark.parametrize(
    "expr, minutes, hours, specific",
    [
        ("30 1 * * *", [30], [1], True),
        ("15 2 * * *", [15], [2], True),
        ("45 1 * * *", [45], [1], True),
        ("0,30 1-2 * * *", [0, 30], [1, 2], True),
        ("45 * * * *", [45], range(24), False),
        ("*/15 * * * *", [0, 15, 30, 45], range(24), False),
        ("0 0-23/1 * * *", [0], range(24), False),
    ],
)
def test_next_fire_time_from_every_instant_around_both_transitions(
    zone_name, expr, minutes, hours, specific
):
    """From every 5 minutes (and half a second past) across both transitions, the next
    fire time is the first reference instant strictly after it."""
    zone = zoneinfo.ZoneInfo(zone_name)
    trig = CronTrigger.from_crontab(expr, timezone=zone_name)
    gap_day, _, fold_day, _ = ZONES[zone_name]
    for day in (gap_day, fold_day):
        ref = reference(zone, minutes, hours, specific, day - dt.timedelta(days=2), 5)
        a, b = window(zone, day)
        for t in range(a, b, 300):
            for after in (t, t + 0.5):
                want = next(x for x in ref if x > after)
                got = trig.next_fire_time(dt.datetime.fromtimestamp(after, UTC))
                assert got.timestamp() == want, (expr, dt.datetime.fromtimestamp(after, zone))


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: CronTrigger.from_crontab("* * * *", timezone="UTC"), "expr"),
        (lambda: CronTrigger.from_crontab("0 0 * * * * *", timezone="UTC"), "expr"),
        (lambda: CronTrigger.from_crontab("", timezone="UTC"), "expr"),
        (lambda: CronTrigger.from_crontab("61 * * * *", timezone="UTC"), "minute"),
        (lambda: CronTrigger.from_crontab("0 24 * * *", timezone="UTC"), "hour"),
        (lambda: CronTrigger.from_crontab("0 0 32 * *", timezone="UTC"), "day"),
        (lambda: CronTrigger.from_crontab("0 0 0 * *", timezone="UTC"), "day"),
        (lambda: CronTrigger.from_crontab("0 0 * 13 *", timezone="UTC"), "month"),
        (lambda: CronTrigger.from_crontab("0 0 * JANX *", timezone="UTC"), "month"),
        (lambda: CronTrigger.from_crontab("0 0 * * 8", timezone="UTC"), "day_of_week"),
        (lambda: CronTrigger.from_crontab("0 0 * * FRI#6", timezone="UTC"), "day_of_week"),
        (lambda: CronTrigger.from_crontab("0 0 * * L", timezone="UTC"), "day_of_week"),
        (lambda: CronTrigger.from_crontab("*/0 * * * *", timezone="UTC"), "minute"),
        (lambda: CronTrigger.from_crontab("5-1 * * * *", timezone="UTC"), "minute"),
        (lambda: CronTrigger.from_crontab("60 * * * * *", timezone="UTC"), "second"),
        (lambda: CronTrigger.from_crontab("@fortnightly", timezone="UTC"), "expr"),
        # never fires
        (lambda: CronTrigger.from_crontab("0 0 30 2 *", timezone="UTC"), "never"),
        (lambda: CronTrigger.from_crontab("0 0 31 4,6,9,11 *", timezone="UTC"), "never"),
        (lambda: CronTrigger(month=2, day=30, timezone="UTC"), "never"),
        # keyword form
        (lambda: CronTrigger(hour=25, timezone="UTC"), "hour"),
        (lambda: CronTrigger(minute="x", timezone="UTC"), "minute"),
        (lambda: CronTrigger(day_of_week=7, timezone="UTC"), "day_of_week"),
        (lambda: CronTrigger(year="1800", timezone="UTC"), "year"),
        (lambda: CronTrigger(week=54, timezone="UTC"), "week"),
        (lambda: CronTrigger(day="6th fri", timezone="UTC"), "day"),
        (lambda: CronTrigger(day="last someday", timezone="UTC"), "day"),
        # time zones
        (lambda: CronTrigger.from_crontab("0 0 * * *", timezone="Mars/Olympus_Mons"), "timezone"),
        (lambda: CronTrigger(hour=1, timezone="Europe/Nowhere"), "timezone"),
        (lambda: daily("01:00", timezone="Not/AZone"), "timezone"),
        (lambda: IntervalTrigger(seconds=1, timezone="Not/AZone"), "timezone"),
        (lambda: CronTrigger(hour=1, timezone="../../etc/passwd"), "timezone"),
        (lambda: CronTrigger(hour=1, timezone=42), "timezone"),
        # naive datetimes
        (lambda: IntervalTrigger(seconds=1, start_date=dt.datetime(2024, 1, 1)), "start_date"),
        (
            lambda: IntervalTrigger(
                seconds=1, start_date=utc(2024, 1, 1), end_date=dt.datetime(2025, 1, 1)
            ),
            "end_date",
        ),
        (
            lambda: CronTrigger(hour=1, start_date=dt.datetime(2024, 1, 1), timezone="UTC"),
            "start_date",
        ),
        (lambda: DateTrigger(dt.datetime(2024, 1, 1)), "run_date"),
        # intervals, jitter, calendar helpers
        (lambda: IntervalTrigger(), "interval"),
        (lambda: IntervalTrigger(seconds=-5), "interval"),
        (lambda: IntervalTrigger(seconds=float("nan")), "seconds"),
        (lambda: IntervalTrigger(minutes="5"), "minutes"),
        (lambda: IntervalTrigger(seconds=1, jitter=-1), "jitter"),
        (lambda: CronTrigger(hour=1, jitter=-1, timezone="UTC"), "jitter"),
        (
            lambda: CronTrigger(hour=1, start_date=utc(2024, 2, 1), end_date=utc(2024, 1, 1)),
            "end_date",
        ),
        (
            lambda: IntervalTrigger(
                seconds=1, start_date=utc(2024, 2, 1), end_date=utc(2024, 1, 1)
            ),
            "end_date",
        ),
        (lambda: daily("25:00", timezone="UTC"), "at"),
        (lambda: daily("noon", timezone="UTC"), "at"),
        (lambda: hourly(60, timezone="UTC"), "minute"),
        (lambda: hourly(0, 60, timezone="UTC"), "second"),
        (lambda: weekly(7, timezone="UTC"), "day"),
        (lambda: weekly("someday", timezone="UTC"), "day"),
        (lambda: monthly(0, timezone="UTC"), "day"),
        (lambda: monthly(32, timezone="UTC"), "day"),
    ],
)
def test_bad_input_is_a_config_error_naming_the_field(make, field):
    with pytest.raises(ConfigError) as e:
        make()
    assert isinstance(e.value, ValueError)
    assert field in str(e.value), str(e.value)
