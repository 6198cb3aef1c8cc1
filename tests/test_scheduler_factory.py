"""The seed's schedulers and the factory: jobs, start/stop results, reports."""

from __future__ import annotations

import datetime as dt

import pytest

from ferrotick import (
    ConfigError,
    ReportScheduler,
    ServiceContainer,
    ToolEffectivenessScheduler,
    cleanup_schedulers,
    initialize_schedulers,
)

UTC = dt.timezone.utc


@pytest.mark.asyncio
async def test_effectiveness_jobs_and_start_stop():
    s = ToolEffectivenessScheduler()
    assert await s.start() is True
    assert await s.start() is False  # already running, as the seed's start()
    jobs = s.scheduled_tasks
    assert set(jobs) == {"hourly", "daily", "weekly", "monthly"}
    now = dt.datetime.now(UTC)
    assert jobs["hourly"].minute == 0 and jobs["hourly"] - now <= dt.timedelta(hours=1)
    assert (jobs["daily"].hour, jobs["daily"].minute) == (0, 30)
    assert jobs["weekly"].weekday() == 0 and jobs["weekly"].hour == 1
    assert jobs["monthly"].day == 1 and jobs["monthly"].hour == 2
    assert all(t.utcoffset() == dt.timedelta(0) for t in jobs.values())
    assert await s.stop() is True
    assert await s.stop() is False


@pytest.mark.asyncio
async def test_timezone():
    s = ToolEffectivenessScheduler(timezone="Asia/Tokyo")
    await s.start()
    daily = s.scheduled_tasks["daily"]
    await s.stop()
    assert daily.utcoffset() == dt.timedelta(hours=9) and daily.hour == 0


@pytest.mark.asyncio
async def test_report_scheduler_delivers_and_closes_sessions():
    closed: list[int] = []

    class Session:
        def close(self):
            closed.append(1)

    got: list[object] = []

    async def async_sub(report):
        got.append(("async", report["report_type"]))

    def failing_sub(report):
        raise RuntimeError("mail server down")

    r = ReportScheduler(Session)
    r.subscribe("daily", failing_sub)
    r.subscribe("daily", async_sub)
    with pytest.raises(ConfigError, match="unknown report type 'hourly'"):
        r.subscribe("hourly", async_sub)
    await r.start()
    assert set(r.scheduled_tasks) == {"report-daily"}  # types without subscribers idle
    report = await r.run_report("daily")
    assert report["report_type"] == "daily"
    assert got == [("async", "daily")] and closed == [1]
    await r.stop()


@pytest.mark.asyncio
async def test_factory_registers_starts_and_stops():
    c = ServiceContainer()
    await c.initialize()
    made = await initialize_schedulers(c)
    assert list(made) == ["effectiveness_scheduler"]  # no db_factory: no report scheduler
    assert c.get("effectiveness_scheduler").running
    await cleanup_schedulers(c)
    assert not c.get("effectiveness_scheduler").running
    await c.cleanup()

    c = ServiceContainer()
    made = await initialize_schedulers(c, db_factory=dict, names=["report_scheduler"])
    assert list(made) == ["report_scheduler"] and made["report_scheduler"].running
    await cleanup_schedulers(c)
    with pytest.raises(ConfigError, match="unknown scheduler"):
        await initialize_schedulers(c, names=["nope"])
