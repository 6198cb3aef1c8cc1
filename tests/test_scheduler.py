"""The scheduler: jobs, executors, status, listeners, misfires, coalescing, overlap
limits, stop/cancel, the background twin, and bad input.

Calendar behaviour runs on a ManualClock (a month of schedule in milliseconds); the
real clock is used only for short punctuality, blocking and thread checks.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import itertools
import logging
import os
import statistics
import sys
import threading
import time

import pytest

from ferrotick import ConfigError, SchedulerError
from ferrotick.scheduler import (
    EVENT_ALL,
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    AsyncScheduler,
    BackgroundScheduler,
    CronTrigger,
    DateTrigger,
    IntervalTrigger,
    JobEvent,
    ManualClock,
    daily,
    hourly,
    monthly,
    weekly,
)

UTC = dt.timezone.utc
START = dt.datetime(2024, 1, 1, tzinfo=UTC)
T0 = START.timestamp()


def utc(*args: float) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def at(seconds: float) -> dt.datetime:
    """START + seconds."""
    return START + dt.timedelta(seconds=seconds)


def manual(start: float = T0) -> tuple[ManualClock, AsyncScheduler]:
    clock = ManualClock(start)
    return clock, AsyncScheduler(clock=clock, timezone="UTC")


class Recorder:
    """A coroutine job recording the clock time of every run."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.times: list[float] = []
        self.args: list[tuple] = []

    async def __call__(self, *args, **kwargs) -> str:
        self.times.append(self.clock.now())
        self.args.append((args, kwargs))
        return f"run {len(self.times)}"

    def rel(self) -> list[float]:
        return [t - T0 for t in self.times]


# -- executors --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_coroutines_run_on_the_loop_and_functions_in_a_thread_pool():
    clock, s = manual()
    loop_thread = threading.current_thread()
    seen: dict[str, threading.Thread] = {}

    async def coro():
        seen["coro"] = threading.current_thread()

    def plain():
        seen["plain"] = threading.current_thread()

    class AsyncCallable:
        async def __call__(self):
            seen["async callable"] = threading.current_thread()

    class SyncCallable:
        def __call__(self):
            seen["sync callable"] = threading.current_thread()

    async with s:
        for f in (coro, plain, AsyncCallable(), SyncCallable()):
            s.add_job(f, "interval", seconds=10)
        await clock.advance(10)
    assert set(seen) == {"coro", "plain", "async callable", "sync callable"}
    assert seen["coro"] is loop_thread
    assert seen["async callable"] is loop_thread
    assert seen["plain"] is not loop_thread
    assert seen["sync callable"] is not loop_thread
    assert seen["plain"].name.startswith("ferrotick-job")


@pytest.mark.asyncio
async def test_add_job_options_args_kwargs_id_name():
    clock, s = manual()
    rec = Recorder(clock)
    async with s:
        job = s.add_job(
            rec, "interval", seconds=5, args=[1, "a"], kwargs={"k": 2}, id="opts", name="nice name"
        )
        assert (job.id, job.name) == ("opts", "nice name")
        assert (job.misfire_grace_time, job.coalesce, job.max_instances) == (None, True, 1)
        assert s.get_job("opts") is job
        await clock.advance(5)
    assert rec.args == [((1, "a"), {"k": 2})]


@pytest.mark.asyncio
async def test_a_job_without_trigger_runs_once_now():
    clock, s = manual()
    rec = Recorder(clock)
    async with s:
        job = s.add_job(rec)
        await clock.advance(0)
        await clock.advance(3600)
    assert rec.rel() == [0.0]
    assert job.next_run_time is None and job.status.runs == 1


# -- triggers in the scheduler ----------------------------------------------------------


@pytest.mark.asyncio
async def test_a_date_in_the_past_runs_at_once_unless_past_its_grace_time():
    clock, s = manual(T0 + 3600)
    late, strict = Recorder(clock), Recorder(clock)
    missed = []
    s.add_listener(missed.append, EVENT_JOB_MISSED)
    async with s:
        s.add_job(late, "date", run_date=at(0))
        s.add_job(strict, "date", run_date=at(0), misfire_grace_time=60, id="strict")
        await clock.advance(1)
    assert late.rel() == [3600.0]
    assert strict.times == [] and [e.job_id for e in missed] == ["strict"]


@pytest.mark.asyncio
async def test_interval_is_anchored_when_the_job_is_added():
    clock, s = manual(T0 + 3.25)
    rec = Recorder(clock)
    async with s:
        job = s.add_job(rec, "interval", seconds=10)
        assert job.next_run_time == at(13.25)
        await clock.advance(35)
    assert rec.rel() == [13.25, 23.25, 33.25]
    assert job.next_run_time == at(43.25)


@pytest.mark.asyncio
@pytest.mark.parametrize("coalesce", [True, False])
async def test_sub_second_interval_fires_each_nominal_time_once(coalesce):
    # float rounding (start + k * 0.1 at unix-epoch magnitudes) must neither run a
    # fire time twice nor count a phantom coalesced backlog
    clock, s = manual(T0 + 0.123)
    rec = Recorder(clock)
    async with s:
        job = s.add_job(rec, "interval", seconds=0.1, coalesce=coalesce)
        await clock.advance(10.0001)
    assert len(rec.times) == 100
    assert rec.times == sorted(set(rec.times))
    gaps = [b - a for a, b in itertools.pairwise(rec.times)]
    assert all(abs(g - 0.1) < 1e-6 for g in gaps)
    assert (job.status.runs, job.status.coalesced, job.status.skips) == (100, 0, 0)


@pytest.mark.asyncio
async def test_interval_start_date_in_the_past_keeps_its_grid():
    clock, s = manual(T0 + 100)
    rec = Recorder(clock)
    async with s:
        s.add_job(rec, IntervalTrigger(seconds=30, start_date=at(5)))
        await clock.advance(70)
    assert rec.rel() == [125.0, 155.0]


@pytest.mark.asyncio
async def test_scheduler_time_zone_applies_to_triggers_without_one():
    clock = ManualClock(utc(2024, 7, 1))
    s = AsyncScheduler(clock=clock, timezone="America/New_York")
    async with s:
        a = s.add_job(Recorder(clock), daily("09:00"))
        b = s.add_job(Recorder(clock), "cron", crontab="0 9 * * *")
        c = s.add_job(Recorder(clock), "cron", hour=9)
        d = s.add_job(Recorder(clock), IntervalTrigger(hours=1))
        e = s.add_job(Recorder(clock), daily("09:00", timezone="Asia/Tokyo"))
    assert a.next_run_time == b.next_run_time == c.next_run_time == utc(2024, 7, 1, 13)
    assert a.next_run_time.utcoffset() == dt.timedelta(hours=-4)
    assert d.next_run_time == utc(2024, 7, 1, 1)
    assert d.next_run_time.utcoffset() == dt.timedelta(hours=-4)
    assert e.next_run_time == utc(2024, 7, 1, 0)  # 09:00 JST is exactly now: due now


@pytest.mark.asyncio
async def test_a_month_of_schedule_in_milliseconds():
    clock = ManualClock(T0 + 0.5)
    s = AsyncScheduler(clock=clock, timezone="Europe/London")  # GMT all January
    jobs = {
        "hourly": hourly(),
        "daily": daily("00:30"),
        "weekly": weekly("monday", "01:00"),
        "monthly": monthly(1, "02:00"),
        "monthly31": monthly(31),
        "every6h": IntervalTrigger(hours=6),
        "cron30": CronTrigger.from_crontab("*/30 * * * *"),
    }
    recs = {name: Recorder(clock) for name in jobs}
    t0 = time.perf_counter()
    async with s:
        for name, trig in jobs.items():
            s.add_job(recs[name], trig, id=name)
        await clock.advance_to(at(31 * 86400 + 0.5))
        elapsed = time.perf_counter() - t0
        status = {name: s.get_job(name).status for name in jobs}
    h = 3600
    d = 86400
    expected = {
        "hourly": [k * h for k in range(1, 31 * 24 + 1)],
        "daily": [k * d + 1800 for k in range(31)],
        "weekly": [k * 7 * d + h for k in range(5)],  # 2024-01-01 is a Monday
        "monthly": [2 * h],
        "monthly31": [30 * d],
        "every6h": [k * 6 * h + 0.5 for k in range(1, 31 * 4 + 1)],
        "cron30": [k * 1800 for k in range(1, 31 * 48 + 1)],
    }
    for name, want in expected.items():
        assert recs[name].rel() == want, name
        assert status[name].runs == len(want)
        assert status[name].last_run_time == at(want[-1])
    assert status["monthly"].next_run_time == utc(2024, 2, 1, 2)
    assert status["monthly31"].next_run_time == utc(2024, 3, 31)
    assert elapsed < 10, f"a simulated month took {elapsed:.2f}s"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "zone, at_time, days, expected",
    [
        # New York spring forward 2024-03-10: 02:30 does not exist -> 03:00 EDT (07:00Z)
        (
            "America/New_York",
            "02:30",
            (9, 10, 11),
            [utc(2024, 3, 9, 7, 30), utc(2024, 3, 10, 7), utc(2024, 3, 11, 6, 30)],
        ),
        # London spring forward 2024-03-31: 01:30 does not exist -> 02:00 BST (01:00Z)
        (
            "Europe/London",
            "01:30",
            (30, 31, 32),
            [utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1), utc(2024, 4, 1, 0, 30)],
        ),
    ],
)
async def test_dst_gap_with_the_manual_clock(zone, at_time, days, expected):
    clock = ManualClock(utc(2024, 3, days[0]) - dt.timedelta(hours=12))
    s = AsyncScheduler(clock=clock, timezone=zone)
    rec = Recorder(clock)
    async with s:
        s.add_job(rec, daily(at_time))
        await clock.advance(3 * 86400)
    assert [dt.datetime.fromtimestamp(t, UTC) for t in rec.times] == expected


@pytest.mark.asyncio
async def test_dst_fold_with_the_manual_clock():
    # New York falls back 2024-11-03 02:00 EDT -> 01:00 EST: 01:30 happens twice
    clock = ManualClock(utc(2024, 11, 3, 3))  # 23:00 EDT on the 2nd
    s = AsyncScheduler(clock=clock, timezone="America/New_York")
    once, twice = Recorder(clock), Recorder(clock)
    async with s:
        s.add_job(once, daily("01:30"))
        s.add_job(twice, hourly(30))
        await clock.advance(6 * 3600)
    assert [dt.datetime.fromtimestamp(t, UTC) for t in once.times] == [utc(2024, 11, 3, 5, 30)]
    assert [dt.datetime.fromtimestamp(t, UTC) for t in twice.times] == [
        utc(2024, 11, 3, 3, 30),  # 23:30 EDT
        utc(2024, 11, 3, 4, 30),  # 00:30 EDT
        utc(2024, 11, 3, 5, 30),  # 01:30 EDT
        utc(2024, 11, 3, 6, 30),  # 01:30 EST
        utc(2024, 11, 3, 7, 30),  # 02:30 EST
        utc(2024, 11, 3, 8, 30),
    ]


@pytest.mark.asyncio
async def test_jitter_is_deterministic_per_job_id_and_nominal_time():
    def trig():
        return IntervalTrigger(seconds=60, jitter=10, start_date=START)

    async def run(job_id: str) -> tuple[list[float], float]:
        clock, s = manual(T0 - 1)
        rec = Recorder(clock)
        async with s:
            job = s.add_job(rec, trig(), id=job_id)
            first_planned = job.next_run_time.timestamp()
            await clock.advance(600)
        return rec.times, first_planned

    a1, planned = await run("alpha")
    a2, _ = await run("alpha")
    b, _ = await run("beta")
    assert a1 == a2, "same job id and nominal times: same fire times"
    assert planned == pytest.approx(a1[0], abs=1e-6)
    nominal = [T0 + 60 * k for k in range(10)]
    assert len(a1) == len(b) == 10
    offsets_a = [t - n for t, n in zip(a1, nominal, strict=True)]
    offsets_b = [t - n for t, n in zip(b, nominal, strict=True)]
    assert all(0 <= o < 10 for o in offsets_a + offsets_b)
    assert len(set(offsets_a)) > 5, "the offset varies with the nominal time"
    assert offsets_a != offsets_b, "the offset depends on the job id"
    # the trigger itself reports nominal times
    assert trig().next_fire_time(START) == at(60)


# -- status, errors, listeners ----------------------------------------------------------


@pytest.mark.asyncio
async def test_job_status():
    clock, s = manual()
    fail = {"on": False}

    async def job():
        await asyncio.sleep(0.01)
        if fail["on"]:
            raise RuntimeError("bad luck")
        return 1

    async with s:
        j = s.add_job(job, "interval", seconds=10, id="st")
        st = j.status
        assert (st.runs, st.errors, st.misses, st.skips, st.coalesced) == (0, 0, 0, 0, 0)
        assert st.last_run_time is None and st.last_duration is None and st.last_error is None
        assert st.next_run_time == at(10)
        await clock.advance(20)
        st = j.status
        assert (st.runs, st.errors) == (2, 0)
        assert st.last_run_time == at(20)
        assert 0.005 <= st.last_duration < 5
        assert st.next_run_time == at(30)
        fail["on"] = True
        await clock.advance(10)
        st = j.status
        assert (st.runs, st.errors, st.last_error) == (3, 1, "RuntimeError: bad luck")
        fail["on"] = False
        await clock.advance(10)
        st = j.status
        assert (st.runs, st.errors, st.last_error) == (4, 1, None)


@pytest.mark.asyncio
async def test_a_raising_job_is_logged_counted_and_the_scheduler_keeps_running(caplog):
    caplog.set_level(logging.ERROR, logger="ferrotick.scheduler")
    clock, s = manual()
    good = Recorder(clock)
    errors = []

    async def exploding_coroutine():
        raise ValueError("boom 42")

    def exploding_function():
        raise KeyError("thread boom")

    s.add_listener(errors.append, EVENT_JOB_ERROR)
    async with s:
        a = s.add_job(exploding_coroutine, "interval", seconds=10, id="a")
        b = s.add_job(exploding_function, "interval", seconds=10, id="b")
        s.add_job(good, "interval", seconds=10, id="good")
        await clock.advance(30)
        assert s.running
        await clock.advance(20)
        assert s.running
    assert good.rel() == [10, 20, 30, 40, 50]
    assert (a.status.runs, a.status.errors) == (5, 5)
    assert (b.status.runs, b.status.errors) == (5, 5)
    assert a.status.last_error == "ValueError: boom 42"
    assert "Traceback (most recent call last)" in caplog.text
    assert "in exploding_coroutine" in caplog.text and "ValueError: boom 42" in caplog.text
    assert "in exploding_function" in caplog.text and "KeyError: 'thread boom'" in caplog.text
    assert len(errors) == 10
    ev = next(e for e in errors if e.job_id == "a")
    assert isinstance(ev.exception, ValueError) and "boom 42" in ev.traceback
    assert ev.scheduled_run_time == at(10)


@pytest.mark.asyncio
async def test_listeners_masks_and_removal():
    clock, s = manual()
    everything, executed, failed, async_seen = [], [], [], []

    async def async_listener(event):
        async_seen.append(event.code)

    s.add_listener(everything.append)
    s.add_listener(executed.append, EVENT_JOB_EXECUTED)
    s.add_listener(failed.append, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    s.add_listener(async_listener, EVENT_ALL)

    async def ok():
        return 42

    async def bad():
        raise OSError("nope")

    async with s:
        s.add_job(ok, "interval", seconds=10, id="ok")
        s.add_job(bad, "interval", seconds=10, id="bad")
        await clock.advance(10)
        assert [(e.code, e.job_id, e.retval) for e in executed] == [(EVENT_JOB_EXECUTED, "ok", 42)]
        assert executed[0].scheduled_run_time == at(10)
        assert executed[0].duration is not None and executed[0].duration >= 0
        assert [(e.code, e.job_id) for e in failed] == [(EVENT_JOB_ERROR, "bad")]
        # EVENT_ALL (the default mask) includes EVENT_JOB_SUBMITTED, one per run
        seen = [EVENT_JOB_EXECUTED, EVENT_JOB_ERROR, EVENT_JOB_SUBMITTED, EVENT_JOB_SUBMITTED]
        assert sorted(e.code for e in everything) == sorted(seen)
        assert sorted(async_seen) == sorted(seen)
        s.remove_listener(executed.append)
        await clock.advance(10)
    assert len(executed) == 1
    assert len(everything) == 8 and len(failed) == 2


@pytest.mark.asyncio
async def test_submitted_event_when_a_run_is_handed_to_execution():
    """APScheduler's EVENT_JOB_SUBMITTED: emitted when a run is handed to execution,
    before the job body runs, with its scheduled run times (a backlog run with
    coalesce=False carries all of them); not for a run skipped by max_instances;
    never built when no listener asks for it."""
    clock, s = manual()
    log: list[tuple[str, str]] = []
    submitted: list[JobEvent] = []
    runs = itertools.count()

    def on_submitted(event: JobEvent) -> None:
        assert event.code == EVENT_JOB_SUBMITTED
        submitted.append(event)
        log.append(("submitted", event.job_id))

    async def job() -> None:
        log.append(("body", "j"))
        if next(runs) == 0:
            await clock.sleep_until(clock.now() + 15)  # still running at 20

    def plain() -> None:
        log.append(("body", "p"))

    s.add_listener(on_submitted, EVENT_JOB_SUBMITTED)
    async with s:
        s.add_job(job, "interval", seconds=10, id="j")
        s.add_job(plain, "date", run_date=at(5), id="p")
        await clock.advance(10)
        assert log == [("submitted", "p"), ("body", "p"), ("submitted", "j"), ("body", "j")]
        ev = submitted[-1]
        assert ev.scheduled_run_time == at(10) and ev.scheduled_run_times == [at(10)]
        assert ev.retval is None and ev.exception is None and ev.duration is None
        # the run at 20 is skipped by max_instances=1 (the first one sleeps until 25)
        await clock.advance(10)
        assert [e.job_id for e in submitted] == ["p", "j"]
        assert s.get_job("j").status.skips == 1
        await clock.advance(10)
        assert [e.scheduled_run_time for e in submitted] == [at(5), at(10), at(30)]
        s.remove_job("j")
        # a backlog run in one instance (coalesce=False): one event, every run time
        s.add_job(
            plain,
            IntervalTrigger(seconds=1, start_date=at(27)),
            next_run_time=at(27),
            coalesce=False,
            id="b",
        )
        await clock.advance(0)
        assert submitted[-1].job_id == "b"
        assert submitted[-1].scheduled_run_time == at(27)
        assert submitted[-1].scheduled_run_times == [at(27), at(28), at(29), at(30)]
        assert s.get_job("b").status.runs == 4

    # without a listener for it, the event object is never made
    made: list[int] = []

    class Spy(JobEvent):
        def __init__(self, *args, **kwargs) -> None:
            made.append(args[0])
            super().__init__(*args, **kwargs)

    clock, s = manual()
    s.add_listener(lambda e: None, EVENT_ALL & ~EVENT_JOB_SUBMITTED)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ferrotick.scheduler._invoke.JobEvent", Spy)
        async with s:
            s.add_job(plain, "interval", seconds=1)
            await clock.advance(3)
    assert made == [EVENT_JOB_EXECUTED] * 3


@pytest.mark.asyncio
async def test_a_raising_listener_does_not_stop_the_scheduler(caplog):
    caplog.set_level(logging.ERROR, logger="ferrotick.scheduler")
    clock, s = manual()
    rec = Recorder(clock)

    def broken(event):
        raise RuntimeError("listener broke")

    s.add_listener(broken)
    async with s:
        s.add_job(rec, "interval", seconds=1)
        await clock.advance(3)
    assert len(rec.times) == 3
    assert "listener broke" in caplog.text


# -- misfires, coalescing, overlap -------------------------------------------------------


@pytest.mark.asyncio
async def test_misfire_grace_time_counts_missed_runs_with_a_listener(caplog):
    caplog.set_level(logging.WARNING, logger="ferrotick.scheduler")
    clock, s = manual()
    rec = Recorder(clock)
    missed = []
    s.add_listener(missed.append, EVENT_JOB_MISSED)
    job = s.add_job(rec, "interval", seconds=10, misfire_grace_time=7, coalesce=False, id="m")
    await clock.advance(35)  # not started: 10, 20 and 30 become overdue (by 25, 15, 5 s)
    await s.start()
    try:
        await clock.advance(0)
        assert [e.scheduled_run_time for e in missed] == [at(10), at(20)]
        assert all(e.job_id == "m" for e in missed)
        assert rec.rel() == [35.0]  # the 30 s run, within its grace, runs late
        assert (job.status.misses, job.status.runs) == (2, 1)
        assert "missed" in caplog.text
        await clock.advance(10)
        assert rec.rel() == [35.0, 40.0]
    finally:
        await s.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "coalesce, runs, scheduled", [(True, 1, [50]), (False, 5, [10, 20, 30, 40, 50])]
)
async def test_coalesce_after_a_backlog(coalesce, runs, scheduled):
    clock, s = manual()
    rec = Recorder(clock)
    executed = []
    s.add_listener(executed.append, EVENT_JOB_EXECUTED)
    job = s.add_job(rec, "interval", seconds=10, coalesce=coalesce, id="c")
    await clock.advance(55)  # the scheduler is stopped: five fire times pile up
    await s.start()
    try:
        await clock.advance(0)
        assert len(rec.times) == runs
        assert [e.scheduled_run_time for e in executed] == [at(t) for t in scheduled]
        st = job.status
        assert (st.runs, st.skips, st.misses) == (runs, 0, 0)
        assert (st.coalesced > 0) is coalesce
        assert st.next_run_time == at(60)
        await clock.advance(5)
        assert len(rec.times) == runs + 1
    finally:
        await s.stop()


@pytest.mark.asyncio
async def test_misfire_grace_time_none_runs_late_jobs_however_late():
    clock, s = manual()
    daily_rec, backlog = Recorder(clock), Recorder(clock)
    s.add_job(daily_rec, daily("06:00"), id="daily")
    s.add_job(backlog, daily("07:00"), id="backlog", coalesce=False)
    await clock.advance(3 * 86400)  # three days with the scheduler stopped
    await s.start()
    try:
        await clock.advance(0)
    finally:
        await s.stop()
    assert daily_rec.rel() == [3 * 86400.0]  # coalesced into one late run
    assert backlog.rel() == [3 * 86400.0] * 3
    assert s.get_job("daily").status.misses == 0


@pytest.mark.asyncio
async def test_max_instances_skips_while_a_slow_job_runs():
    clock, s = manual()
    running, peak, skipped = [0], [0], []

    async def slow():
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        try:
            await clock.sleep_until(clock.now() + 25)  # 25 simulated seconds of work
        finally:
            running[0] -= 1

    s.add_listener(skipped.append, EVENT_JOB_MAX_INSTANCES)
    async with s:
        job = s.add_job(slow, "interval", seconds=10, id="slow")
        await clock.advance(60)
        # runs at 10 (until 35) and 40 (until 65); 20, 30, 50, 60 are skipped
        st = job.status
        assert (st.runs, st.skips, st.running) == (1, 4, 1)
        assert [e.scheduled_run_time for e in skipped] == [at(20), at(30), at(50), at(60)]
        assert peak[0] == 1
        await clock.advance(10)
        assert job.status.runs == 2
        # the run started at 70 sleeps on the manual clock: stop without waiting
        await s.stop(wait=False)


@pytest.mark.asyncio
async def test_max_instances_two_allows_two_overlapping_runs():
    clock, s = manual()
    running, peak = [0], [0]

    async def slow():
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        try:
            await clock.sleep_until(clock.now() + 25)
        finally:
            running[0] -= 1

    async with s:
        job = s.add_job(slow, "interval", seconds=10, max_instances=2)
        await clock.advance(60)
        # 10 (->35), 20 (->45) run; 30 skipped; 40 (->65), 50 (->75) run; 60 skipped
        assert (job.status.runs, job.status.skips, job.status.running) == (2, 2, 2)
        assert peak[0] == 2
        await s.stop(wait=False)


@pytest.mark.asyncio
async def test_max_instances_with_the_real_clock():
    s = AsyncScheduler(timezone="UTC")
    skipped = []
    s.add_listener(skipped.append, EVENT_JOB_MAX_INSTANCES)

    async def slow_coroutine():
        await asyncio.sleep(0.17)

    def slow_function():
        time.sleep(0.17)

    async with s:
        a = s.add_job(slow_coroutine, "interval", seconds=0.05, id="a")
        b = s.add_job(slow_function, "interval", seconds=0.05, id="b")
        await asyncio.sleep(0.6)
    for job in (a, b):
        st = job.status
        assert st.runs >= 2, st
        assert st.skips >= 3, st
        # every fire time either ran or was skipped; never two at once
        assert st.runs + st.skips >= 9, st
    assert len(skipped) == a.status.skips + b.status.skips


@pytest.mark.asyncio
async def test_blocked_loop_misfire_with_the_real_clock():
    s = AsyncScheduler(timezone="UTC")
    ran: dict[str, float] = {}
    missed = []
    s.add_listener(missed.append, EVENT_JOB_MISSED)

    async def job(tag):
        ran[tag] = time.time()

    async with s:
        due = time.time() + 0.05
        s.add_job(
            job,
            "date",
            run_date=dt.datetime.fromtimestamp(due, UTC),
            args=["strict"],
            misfire_grace_time=0.1,
            id="strict",
        )
        s.add_job(
            job,
            "date",
            run_date=dt.datetime.fromtimestamp(due, UTC),
            args=["lenient"],
            id="lenient",
        )
        time.sleep(0.4)  # the loop is blocked well past the due time
        await asyncio.sleep(0.1)
    assert [e.job_id for e in missed] == ["strict"]
    assert "strict" not in ran
    assert ran["lenient"] - due >= 0.3  # ran, late
    assert s.get_job("strict").status.misses == 1


# -- stopping ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_stop_waits_for_running_jobs():
    s = AsyncScheduler(timezone="UTC")
    finished = []

    async def short():
        await asyncio.sleep(0.15)
        finished.append(True)

    await s.start()
    s.add_job(short)
    await asyncio.sleep(0.03)
    t0 = time.perf_counter()
    await s.stop(wait=True)
    assert finished == [True]
    assert time.perf_counter() - t0 >= 0.08
    assert not s.running


@pytest.mark.asyncio
async def test_stop_with_timeout_cancels_a_long_job():
    s = AsyncScheduler(timezone="UTC")
    started, cancelled = asyncio.Event(), []

    async def long():
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    await s.start()
    job = s.add_job(long, id="long")
    await asyncio.wait_for(started.wait(), 5)
    t0 = time.perf_counter()
    await s.stop(wait=True, timeout=0.2)
    elapsed = time.perf_counter() - t0
    assert 0.18 <= elapsed < 3
    assert cancelled == [True]
    assert job.status.running == 0 and job.status.errors == 0
    assert not s.running


@pytest.mark.asyncio
async def test_stop_without_wait_cancels_at_once():
    s = AsyncScheduler(timezone="UTC")
    started, cancelled = asyncio.Event(), []

    async def long():
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    await s.start()
    s.add_job(long)
    await asyncio.wait_for(started.wait(), 5)
    t0 = time.perf_counter()
    await s.stop(wait=False)
    assert time.perf_counter() - t0 < 0.5
    assert cancelled == [True]


@pytest.mark.asyncio
async def test_async_with_starts_and_stops():
    clock, s = manual()
    rec = Recorder(clock)
    async with s as entered:
        assert entered is s and s.running
        with pytest.raises(SchedulerError):
            await s.start()
        s.add_job(rec, "interval", seconds=1)
        await clock.advance(2)
    assert not s.running
    await clock.advance(10)
    assert len(rec.times) == 2


@pytest.mark.asyncio
async def test_jobs_added_before_start_wait_for_start_and_restart_works():
    clock, s = manual()
    rec = Recorder(clock)
    job = s.add_job(rec, "interval", seconds=10)
    assert job.pending and job.next_run_time == at(10)
    await s.start()
    await clock.advance(10)
    await s.stop()
    await s.start()
    await clock.advance(10)
    await s.stop()
    assert rec.rel() == [10, 20]


# -- managing jobs ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_pause_and_resume():
    clock, s = manual()
    rec = Recorder(clock)
    async with s:
        job = s.add_job(rec, "interval", seconds=10, id="p")
        await clock.advance(10)
        paused = s.pause_job("p")
        assert paused is job and job.next_run_time is None and job.status.next_run_time is None
        await clock.advance(30)
        assert rec.rel() == [10]
        s.resume_job("p")
        assert job.next_run_time == at(50)  # fire times missed while paused are not run
        await clock.advance(10)
        job.pause()
        await clock.advance(20)
        job.resume()
        await clock.advance(10)
    assert rec.rel() == [10, 50, 80]


@pytest.mark.asyncio
async def test_modify_job():
    clock, s = manual()
    rec = Recorder(clock)
    async with s:
        job = s.add_job(rec, "interval", seconds=10, args=[1], id="m")
        await clock.advance(10)
        s.modify_job(
            "m",
            args=(2,),
            kwargs={"x": 3},
            name="renamed",
            max_instances=3,
            coalesce=False,
            misfire_grace_time=5,
        )
        assert (job.name, job.max_instances, job.coalesce, job.misfire_grace_time) == (
            "renamed",
            3,
            False,
            5.0,
        )
        await clock.advance(10)
        job.modify(next_run_time=at(25))
        assert job.next_run_time == at(25)
        await clock.advance(5)
        other = Recorder(clock)
        job.modify(func=other)
        await clock.advance(10)
    assert rec.rel() == [10, 20, 25]
    assert rec.args == [((1,), {}), ((2,), {"x": 3}), ((2,), {"x": 3})]
    assert other.rel() == [30]


@pytest.mark.asyncio
async def test_reschedule_job():
    clock, s = manual()
    rec = Recorder(clock)
    async with s:
        job = s.add_job(rec, "interval", seconds=100, id="r")
        await clock.advance(12)
        s.reschedule_job("r", "interval", seconds=5)
        assert job.next_run_time == at(17)
        await clock.advance(10)
        job.reschedule(CronTrigger.from_crontab("0 * * * *"))
        assert job.next_run_time == at(3600)
        s.reschedule_job("r", "cron", crontab="*/30 * * * *")
        assert job.next_run_time == at(1800)
        s.reschedule_job("r", "date", run_date=at(100))
        await clock.advance(3600)
    assert rec.rel() == [17, 22, 100]
    assert job.next_run_time is None


@pytest.mark.asyncio
async def test_remove_jobs_and_get_jobs():
    clock, s = manual()
    recs = [Recorder(clock) for _ in range(4)]
    async with s:
        s.add_job(recs[0], "interval", seconds=30, id="a")
        s.add_job(recs[1], "interval", seconds=10, id="b")
        s.add_job(recs[2], "interval", seconds=20, id="c", next_run_time=None)  # added paused
        d = s.add_job(recs[3], "interval", seconds=5, id="d")
        assert [j.id for j in s.get_jobs()] == ["d", "b", "a", "c"]
        s.remove_job("b")
        d.remove()
        assert s.get_job("b") is None and s.get_job("d") is None
        assert [j.id for j in s.get_jobs()] == ["a", "c"]
        with pytest.raises(SchedulerError, match="'b'"):
            s.remove_job("b")
        with pytest.raises(SchedulerError):
            s.pause_job("nope")
        await clock.advance(30)
        assert [len(r.times) for r in recs] == [1, 0, 0, 0]
        s.remove_all_jobs()
        assert s.get_jobs() == []
        await clock.advance(60)
    assert [len(r.times) for r in recs] == [1, 0, 0, 0]


@pytest.mark.asyncio
async def test_replace_existing():
    clock, s = manual()
    old, new = Recorder(clock), Recorder(clock)
    async with s:
        s.add_job(old, "interval", seconds=10, id="x")
        with pytest.raises(ConfigError, match="id"):
            s.add_job(new, "interval", seconds=10, id="x")
        s.add_job(new, "interval", seconds=10, id="x", replace_existing=True)
        assert len(s.get_jobs()) == 1
        await clock.advance(20)
    assert old.times == [] and new.rel() == [10, 20]


@pytest.mark.asyncio
async def test_a_replaced_or_re_added_job_keeps_only_its_own_schedule():
    clock, s = manual()
    old, new, again = Recorder(clock), Recorder(clock), Recorder(clock)
    async with s:
        s.add_job(old, "interval", seconds=10, id="x")
        s.add_job(old, "interval", seconds=10, id="y")
        await clock.advance(5)
        # new jobs under the same ids, anchored at 5: the old fire time 10 is stale
        s.add_job(new, "interval", seconds=10, id="x", replace_existing=True)
        s.remove_job("y")
        s.add_job(again, "interval", seconds=10, id="y")
        await clock.advance(30)
    assert old.times == []
    assert new.rel() == [15, 25, 35]
    assert again.rel() == [15, 25, 35]


@pytest.mark.asyncio
async def test_replacing_a_running_job_does_not_block_its_successor():
    clock, s = manual()
    rec = Recorder(clock)

    async def slow():
        await clock.sleep_until(clock.now() + 1000)

    async with s:
        s.add_job(slow, "interval", seconds=10, id="x")
        await clock.advance(10)  # slow is running
        job = s.add_job(rec, "interval", seconds=10, id="x", replace_existing=True)
        await clock.advance(30)
        assert rec.rel() == [20, 30, 40]
        assert job.status.skips == 0
        await s.stop(timeout=0.1)


@pytest.mark.asyncio
async def test_scheduled_job_decorator():
    clock, s = manual()
    calls = []

    @s.scheduled_job("interval", seconds=10, id="deco")
    async def tick():
        calls.append(clock.now())

    async with s:
        await clock.advance(20)
    assert len(calls) == 2 and s.get_job("deco").func is tick


# -- the real clock ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_real_clock_punctuality_and_wake_up_on_add():
    s = AsyncScheduler(timezone="UTC")
    lateness: list[float] = []

    async def job(due):
        lateness.append(time.time() - due)

    async with s:
        await asyncio.sleep(0.02)  # idle: nothing scheduled
        base = time.time()
        for k in range(1, 9):
            due = base + 0.03 * k
            s.add_job(job, DateTrigger(dt.datetime.fromtimestamp(due, UTC)), args=[due])
        await asyncio.sleep(0.35)
    assert len(lateness) == 8
    assert min(lateness) >= 0, "never early"
    assert statistics.median(lateness) < 0.01, lateness
    assert max(lateness) < 0.1, lateness


def test_run_queue_orders_by_time_then_queueing_and_batches_wake_ups():
    """The Rust run queue: earliest first, ties in queueing order; pop_due takes
    exactly the entries at or before the instant; batch_end wakes at the latest
    run time within the slack after the earliest (never before the earliest)."""
    from ferrotick import _core

    q = _core.RunQueue()
    assert q.peek() is None and q.batch_end(0.001) is None and not q
    jobs = [object() for _ in range(6)]
    for t, v, j in [(5.0, 1, jobs[0]), (2.0, 2, jobs[1]), (2.0, 3, jobs[2]), (9.0, 4, jobs[3])]:
        q.push(t, v, j)
    q.push(2.0004, 5, jobs[4])
    q.push(2.0011, 6, jobs[5])
    assert len(q) == 6
    assert q.peek() == (2.0, 2, jobs[1])
    assert q.batch_end(0) == 2.0
    assert q.batch_end(0.0005) == 2.0004  # 2.0011 is outside the window
    assert q.batch_end(0.002) == 2.0011
    assert q.count_until(1.999, 100) == 0
    assert q.count_until(2.0, 100) == 2
    assert q.count_until(2.0011, 100) == 4
    assert q.count_until(2.0011, 3) == 3  # counts up to the cap
    assert q.count_until(100.0, 100) == 6
    assert q.pop_due(1.999) == []
    assert q.pop_due(2.0) == [(2, jobs[1]), (3, jobs[2])]
    assert q.batch_end(0.0001) == 2.0004  # alone in its window: exactly
    assert q.pop_due(6.0) == [(5, jobs[4]), (6, jobs[5]), (1, jobs[0])]
    q.pop()
    assert q.peek() is None and len(q) == 0
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="^t: "):
            q.push(bad, 0, None)
    q.push(1.0, 0, None)
    q.clear()
    assert len(q) == 0


@pytest.mark.asyncio
async def test_simultaneous_batch_runs_all_and_leaves_the_collector_on():
    """200 one-shot jobs due at one instant start in one wake-up; the cyclic
    collector, held off while the batch starts, is on again once they ran."""
    import gc

    assert gc.isenabled()
    started: list[float] = []
    due = time.time() + 0.15

    async def job() -> None:
        started.append(time.time())

    async with AsyncScheduler(timezone="UTC") as s:
        run_date = dt.datetime.fromtimestamp(due, UTC)
        for _ in range(200):
            s.add_job(job, DateTrigger(run_date))
        await asyncio.sleep(0.3)
        assert gc.isenabled()
    assert len(started) == 200 and min(started) >= due
    assert gc.isenabled()


class _WidePrepare(AsyncScheduler):
    # a prepared batch's tasks are created 0.2 s ahead (a few ms by default),
    # so that a test can act between preparation and the due instant
    @staticmethod
    def _prepare_lead(count: int) -> float:
        return 0.2


@pytest.mark.asyncio
async def test_prepared_batch_honours_changes_made_before_its_instant():
    """A window of many coroutine runs has its tasks made ahead of time, waiting
    on one gate (AsyncScheduler._prepare): none runs before its instant, and a
    job removed, paused or rescheduled after the preparation runs as its new
    schedule says, once; plain functions in the same window run too."""
    started: dict[str, list[float]] = collections.defaultdict(list)
    threads: list[int] = []
    loop_thread = threading.get_ident()

    async def job(name: str) -> None:
        started[name].append(time.time())

    def plain(name: str) -> None:
        threads.append(threading.get_ident())
        started[name].append(time.time())

    s = _WidePrepare(timezone="UTC")
    async with s:
        await asyncio.sleep(0.01)
        due = time.time() + 0.5
        at = dt.datetime.fromtimestamp(due, UTC)
        for k in range(100):
            s.add_job(job, DateTrigger(at), id=f"j{k}", args=(f"j{k}",))
        s.add_job(plain, DateTrigger(at), id="plain", args=("plain",))
        s.add_job(job, IntervalTrigger(seconds=0.1, start_date=at), id="every", args=("every",))
        await asyncio.sleep(max(0.0, due - 0.1 - time.time()))
        assert s._gate is not None and not s._gate.done(), "the batch was not prepared"
        assert not started
        s.remove_job("j0")
        s.pause_job("j1")
        s.reschedule_job("j2", DateTrigger(dt.datetime.fromtimestamp(due + 0.1, UTC)))
        s.modify_job("j3", next_run_time=dt.datetime.fromtimestamp(due + 0.05, UTC))
        s.pause_job("j4")
        s.resume_job("j4")  # its run time has not passed: it keeps it
        await asyncio.sleep(max(0.0, due + 0.3 - time.time()))
        assert s._gate is None
    assert "j0" not in started and "j1" not in started
    assert len(started["j2"]) == 1 and started["j2"][0] >= due + 0.1
    assert len(started["j3"]) == 1 and started["j3"][0] >= due + 0.05
    assert len(started["j4"]) == 1 and started["j4"][0] >= due
    for k in range(5, 100):
        assert len(started[f"j{k}"]) == 1 and started[f"j{k}"][0] >= due, k
    assert len(started["plain"]) == 1 and started["plain"][0] >= due
    assert threads and loop_thread not in threads
    # the interval job: its first run in the batch, then every 0.1 s
    assert started["every"][0] >= due and 2 <= len(started["every"]) <= 5
    for j in s.get_jobs():
        assert j._running == 0


@pytest.mark.asyncio
async def test_stop_with_a_prepared_batch_returns_and_runs_none_of_it():
    started: list[float] = []

    async def job() -> None:
        started.append(time.time())

    s = _WidePrepare(timezone="UTC")
    await s.start()
    await asyncio.sleep(0.01)
    due = time.time() + 0.4
    at = dt.datetime.fromtimestamp(due, UTC)
    jobs = [s.add_job(job, DateTrigger(at)) for _ in range(100)]
    await asyncio.sleep(max(0.0, due - 0.1 - time.time()))
    assert s._gate is not None
    t0 = time.perf_counter()
    await s.stop()  # waits for running jobs: prepared ones are not running
    assert time.perf_counter() - t0 < 0.3  # well before their instant
    await asyncio.sleep(max(0.0, due + 0.1 - time.time()))
    assert not started
    assert all(j._running == 0 for j in jobs)
    assert all(t.done() for t in asyncio.all_tasks() if t.get_name().startswith("ferrotick"))


@pytest.mark.asyncio
async def test_real_clock_dense_run_times_all_run_never_early():
    """Run times 100 µs apart share wake-ups (AsyncScheduler._timer_slack): every one
    runs, none before it is due, in order; an earlier run time added while the
    scheduler sleeps and a removed one are honoured."""
    s = AsyncScheduler(timezone="UTC")
    late: dict[int, float] = {}
    order: list[int] = []

    async def job(k: int, due: float) -> None:
        late[k] = time.time() - due
        order.append(k)

    async with s:
        await asyncio.sleep(0.01)
        base = time.time() + 0.06
        for k in range(300):
            run_date = dt.datetime.fromtimestamp(base + k * 0.0001, UTC)
            s.add_job(job, DateTrigger(run_date), args=[k, run_date.timestamp()], id=f"d{k}")
        await asyncio.sleep(0.01)  # the scheduler sleeps until the first one
        early = dt.datetime.fromtimestamp(base - 0.02, UTC)
        s.add_job(job, DateTrigger(early), args=[-1, early.timestamp()])
        s.remove_job("d150")
        await asyncio.sleep(0.3)
    assert sorted(late) == [-1, *(k for k in range(300) if k != 150)]
    assert order == sorted(order)
    assert min(late.values()) >= 0, "never early"
    assert statistics.median(late.values()) < 0.01, sorted(late.values())[-10:]


@pytest.mark.asyncio
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux's")
async def test_real_clock_waits_on_a_timerfd_in_the_loop_and_releases_it():
    """On Linux the scheduler's loop waits on a timerfd (one wake-up per sleep, no
    timer thread); stop() releases the descriptor. timer_slack=0 wakes for each run
    time exactly."""
    fds_before = len(os.listdir("/proc/self/fd"))
    s = AsyncScheduler(timezone="UTC", timer_slack=0)
    late: list[float] = []

    async def job(due: float) -> None:
        late.append(time.time() - due)

    async with s:
        base = time.time() + 0.05
        for k in range(20):
            due = base + k * 0.005
            s.add_job(job, DateTrigger(dt.datetime.fromtimestamp(due, UTC)), args=[due])
        await asyncio.sleep(0.25)
        timers = [t for t in s._clock._timers.values() if t is not None]
        assert len(timers) == 1 and not timers[0].timer.closed
        fd = timers[0].timer.fileno()
        assert os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[timerfd]"
    assert len(late) == 20 and min(late) >= 0
    assert statistics.median(late) < 0.01
    assert timers[0].timer.closed
    assert len(os.listdir("/proc/self/fd")) <= fds_before


@pytest.mark.asyncio
async def test_real_clock_interval_job_and_thread_pool():
    s = AsyncScheduler(timezone="UTC")
    loop_thread = threading.current_thread()
    threads, times = set(), []

    def plain():
        threads.add(threading.current_thread())
        times.append(time.time())

    async with s:
        s.add_job(plain, "interval", seconds=0.05)
        await asyncio.sleep(0.42)
    assert 6 <= len(times) <= 9, len(times)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.025 < g < 0.1 for g in gaps), gaps
    assert loop_thread not in threads


def test_background_scheduler_from_plain_threads():
    bs = BackgroundScheduler(timezone="UTC")
    bs.start()
    lock = threading.Lock()
    hits: collections.Counter[str] = collections.Counter()
    threads_of: dict[str, set[str]] = collections.defaultdict(set)
    main = threading.current_thread()
    try:
        assert bs.running

        def plain(tag):
            with lock:
                hits[tag] += 1
                threads_of[tag].add(threading.current_thread().name)

        async def coro():
            with lock:
                hits["coro"] += 1
                threads_of["coro"].add(threading.current_thread().name)

        def adder(i):
            bs.add_job(plain, "interval", seconds=0.04, args=[f"t{i}"], id=f"t{i}")

        workers = [threading.Thread(target=adder, args=(i,)) for i in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(5)
        bs.add_job(coro, "interval", seconds=0.04, id="coro")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with lock:
                if len(hits) == 5 and min(hits.values()) >= 3:
                    break
            time.sleep(0.01)
        assert len(hits) == 5 and min(hits.values()) >= 3, hits
        assert sorted(j.id for j in bs.get_jobs()) == ["coro", "t0", "t1", "t2", "t3"]

        # manage jobs from another plain thread
        def manage():
            bs.pause_job("t0")
            bs.remove_job("t1")

        m = threading.Thread(target=manage)
        m.start()
        m.join(5)
        assert bs.get_job("t0").next_run_time is None and bs.get_job("t1") is None
        with lock:
            frozen = hits["t0"], hits["t1"]
        time.sleep(0.2)
        with lock:
            assert (hits["t0"], hits["t1"]) == frozen
            assert hits["t2"] > frozen[0]
    finally:
        bs.shutdown()
    assert not bs.running
    assert threads_of["coro"] == {"ferrotick-scheduler"}
    for tag in ("t0", "t1", "t2", "t3"):
        assert all(n.startswith("ferrotick-job") for n in threads_of[tag]), threads_of[tag]
        assert main.name not in threads_of[tag]


def test_background_scheduler_context_manager_and_errors(caplog):
    caplog.set_level(logging.ERROR, logger="ferrotick.scheduler")
    ran = threading.Event()

    def boom():
        raise ValueError("background boom")

    def ok():
        ran.set()

    with BackgroundScheduler(timezone="UTC") as bs:
        job = bs.add_job(boom, "interval", seconds=0.03)
        bs.add_job(ok, "interval", seconds=0.05)
        assert ran.wait(5)
        time.sleep(0.1)
        assert job.status.errors >= 2
        assert bs.running
    assert not bs.running
    assert "ValueError: background boom" in caplog.text


# -- bad input --------------------------------------------------------------------------


def _f():
    return None


NAIVE = dt.datetime(2024, 1, 1, 12)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "call, field",
    [
        (lambda s: s.add_job(42), "func"),
        (lambda s: s.add_job("not a function", "interval", seconds=1), "func"),
        (lambda s: s.add_job(_f, "date", run_date=NAIVE), "run_date"),
        (lambda s: s.add_job(_f, "interval", seconds=1, start_date=NAIVE), "start_date"),
        (lambda s: s.add_job(_f, "cron", hour=1, end_date=NAIVE), "end_date"),
        (lambda s: s.add_job(_f, "interval", seconds=1, next_run_time=NAIVE), "next_run_time"),
        (lambda s: s.add_job(_f, "fortnightly"), "trigger"),
        (lambda s: s.add_job(_f, daily("01:00"), hour=2), "trigger"),
        (lambda s: s.add_job(_f, "interval"), "interval"),
        (lambda s: s.add_job(_f, "cron", crontab="0 0 30 2 *"), "never"),
        (lambda s: s.add_job(_f, "cron", crontab="* * *"), "expr"),
        (lambda s: s.add_job(_f, "cron", hour=24), "hour"),
        (lambda s: s.add_job(_f, "cron", hour=1, timezone="Nowhere/City"), "timezone"),
        (
            lambda s: s.add_job(_f, "interval", seconds=1, misfire_grace_time=-1),
            "misfire_grace_time",
        ),
        (lambda s: s.add_job(_f, "interval", seconds=1, max_instances=0), "max_instances"),
        (lambda s: s.add_job(_f, "interval", seconds=1, args="abc"), "args"),
        (lambda s: s.add_job(_f, "interval", seconds=1, kwargs=[1]), "kwargs"),
        (lambda s: s.add_job(_f, "interval", seconds=1, id=5), "id"),
        (lambda s: AsyncScheduler(timezone="Nowhere/City"), "timezone"),
        (lambda s: AsyncScheduler(executor_workers=0), "executor_workers"),
        (lambda s: AsyncScheduler(timer_slack=-0.001), "timer_slack"),
        (lambda s: AsyncScheduler(timer_slack=float("nan")), "timer_slack"),
        (lambda s: AsyncScheduler(timer_slack="1ms"), "timer_slack"),
        (lambda s: AsyncScheduler(job_defaults={"max_instances": 0}), "max_instances"),
        (lambda s: s.add_listener("not callable"), "callback"),
        (lambda s: s.add_listener(print, "all"), "mask"),
    ],
)
async def test_bad_input_is_a_config_error_naming_the_field(call, field):
    clock, s = manual()
    async with s:
        with pytest.raises(ConfigError) as e:
            call(s)
        assert isinstance(e.value, ValueError)
        assert field in str(e.value), str(e.value)
        assert s.get_jobs() == []


@pytest.mark.asyncio
async def test_bad_modifications_are_config_errors():
    clock, s = manual()
    async with s:
        s.add_job(_f, "interval", seconds=1, id="j")
        for changes, field in [
            ({"colour": "red"}, "colour"),
            ({"func": 3}, "func"),
            ({"next_run_time": NAIVE}, "next_run_time"),
            ({"max_instances": -1}, "max_instances"),
        ]:
            with pytest.raises(ConfigError, match=field):
                s.modify_job("j", **changes)
        with pytest.raises(ConfigError, match="interval"):
            s.reschedule_job("j", "interval")
        assert s.get_job("j").func is _f
