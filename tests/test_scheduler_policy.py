"""The due policy (misfire, coalesce, backlog, jitter, max_instances) as a pure
function of a job's state and the time: no loop, no scheduler running."""

from __future__ import annotations

import datetime as _dt

import pytest

from ferrotick.scheduler import CronTrigger, DateTrigger, IntervalTrigger, Job
from ferrotick.scheduler._policy import BACKLOG_LIMIT, NOT_PLAIN, Plan, plain_next, plan
from ferrotick.scheduler.triggers import jitter_offset

T0 = 1_800_000_000.0  # 2027-01-15 08:00 UTC


async def work() -> None:
    pass


def job(trigger, *, first=T0, running=0, **opts) -> Job:
    """A job whose next nominal fire time is ``first``, as the scheduler leaves it."""
    j = Job(None, "j", work, trigger, **opts)
    j._next_nominal = first
    j._running = running
    return j


def every(seconds: float, **kw) -> IntervalTrigger:
    trig = IntervalTrigger(seconds=seconds, timezone="UTC", **kw)
    trig.start = T0
    return trig


def test_on_time_runs_once_and_moves_on():
    j = job(every(10))
    assert plan(j, T0) == Plan([T0], [T0], [], False, False, T0 + 10)
    # a little late, no backlog: the same
    assert plan(j, T0 + 9.5) == Plan([T0], [T0], [], False, False, T0 + 10)


def test_no_next_fire_time_no_plan():
    assert plan(job(every(10), first=None), T0) is None


def test_a_one_shot_job_has_no_next_time():
    at = _dt.datetime.fromtimestamp(T0, _dt.timezone.utc)
    assert plan(job(DateTrigger(at)), T0 + 3600) == Plan([T0], [T0], [], False, False, None)


def test_coalesce_collapses_a_backlog_into_its_latest_firing():
    j = job(every(10), coalesce=True)
    assert plan(j, T0 + 35) == Plan([T0 + 30], [T0 + 30], [], False, True, T0 + 40)
    # exactly on a fire time: that one is the latest
    assert plan(j, T0 + 30).runs == [T0 + 30]


def test_without_coalesce_a_backlog_runs_every_firing_in_order():
    j = job(every(10), coalesce=False)
    p = plan(j, T0 + 35)
    assert p.runs == p.nominals == [T0, T0 + 10, T0 + 20, T0 + 30]
    assert (p.missed, p.busy, p.coalesced, p.next_nominal) == ([], False, False, T0 + 40)


def test_a_backlog_is_bounded():
    j = job(every(1), coalesce=False)
    p = plan(j, T0 + 2 * BACKLOG_LIMIT)
    assert len(p.runs) == BACKLOG_LIMIT
    assert p.runs[-1] == T0 + BACKLOG_LIMIT - 1
    assert p.next_nominal == T0 + BACKLOG_LIMIT


def test_misfire_grace_time_misses_the_late_firings_only():
    j = job(every(10), coalesce=False, misfire_grace_time=12)
    p = plan(j, T0 + 25)
    # T0 is 25 s late, T0 + 10 15 s: missed; T0 + 20 5 s: runs
    assert p.missed == [(T0, 25.0), (T0 + 10, 15.0)]
    assert p.runs == p.nominals == [T0 + 20]
    assert p.next_nominal == T0 + 30


def test_every_firing_missed_leaves_nothing_to_run():
    j = job(every(10), misfire_grace_time=1)
    p = plan(j, T0 + 5)
    assert p == Plan([], [], [(T0, 5.0)], False, False, T0 + 10)


def test_a_grace_of_zero_runs_a_firing_exactly_on_time():
    j = job(every(10), misfire_grace_time=0)
    assert plan(j, T0).runs == [T0]
    [(missed_at, lateness)] = plan(j, T0 + 0.001).missed
    assert missed_at == T0
    assert lateness == pytest.approx(0.001, abs=1e-6)


def test_coalesce_then_misfire_judges_the_latest_firing():
    j = job(every(10), coalesce=True, misfire_grace_time=3)
    p = plan(j, T0 + 32)
    assert (p.runs, p.missed, p.coalesced) == ([T0 + 30], [], True)


def test_jitter_shifts_run_times_not_nominal_times():
    j = job(every(10, jitter=4), coalesce=False)
    p = plan(j, T0 + 25)
    assert p.nominals == [T0, T0 + 10, T0 + 20]
    assert p.runs == [n + jitter_offset("j", n, 4) for n in p.nominals]
    assert all(0 <= r - n <= 4 for r, n in zip(p.runs, p.nominals, strict=True))
    # the same job, nominal time and jitter give the same offset every time
    assert plan(j, T0 + 25).runs == p.runs


def test_misfire_counts_lateness_from_the_jittered_time():
    j = job(every(10, jitter=4), misfire_grace_time=0.5)
    run_at = T0 + jitter_offset("j", T0, 4)
    assert plan(j, run_at + 0.4).runs == [run_at]
    [(missed_at, lateness)] = plan(j, run_at + 0.6).missed
    assert missed_at == run_at
    assert lateness == pytest.approx(0.6, abs=1e-6)


def test_max_instances_reached_marks_the_runs_busy():
    j = job(every(10), running=1, max_instances=1)
    assert plan(j, T0) == Plan([T0], [T0], [], True, False, T0 + 10)
    j._running = 1
    j.max_instances = 2
    assert plan(j, T0).busy is False


def test_nothing_left_to_run_is_not_busy():
    j = job(every(10), running=1, misfire_grace_time=0)
    assert plan(j, T0 + 1).busy is False


def test_plan_leaves_the_job_as_it_was():
    j = job(every(10), coalesce=True, misfire_grace_time=12)
    before = j.status
    plan(j, T0 + 35)
    assert j.status == before
    assert j._next_nominal == T0


def test_cron_backlog():
    trig = CronTrigger.from_crontab("*/5 * * * *", timezone="UTC")
    first = trig._next_unix(T0 - 1)
    j = job(trig, first=first, coalesce=False)
    p = plan(j, first + 12 * 60)
    assert p.nominals == [first + k * 300 for k in range(3)]
    assert p.next_nominal == first + 900


def test_plain_next_is_the_plan_of_the_common_case():
    j = job(every(10))
    assert plain_next(j, T0, T0) == T0 + 10
    assert plan(j, T0) == Plan([T0], [T0], [], False, False, plain_next(j, T0, T0))
    # the last firing of a trigger: None is an answer too
    at = _dt.datetime.fromtimestamp(T0, _dt.timezone.utc)
    assert plain_next(job(DateTrigger(at)), T0, T0 + 1) is None


def test_plain_next_refuses_every_other_case():
    assert plain_next(job(every(10), misfire_grace_time=5), T0, T0) is NOT_PLAIN
    assert plain_next(job(every(10, jitter=1)), T0, T0) is NOT_PLAIN
    assert plain_next(job(every(10), running=1), T0, T0) is NOT_PLAIN
    # a backlog: the next fire time is due by the horizon too
    assert plain_next(job(every(10)), T0, T0 + 10) is NOT_PLAIN
    assert plain_next(job(every(10)), T0, T0 + 9.9) == T0 + 10
