"""ferrotick.scheduler: interval, cron, calendar and one-shot triggers for coroutine
jobs, with misfire handling, coalescing, overlap limits and time zones.

    from ferrotick.scheduler import AsyncScheduler, daily, weekly

    async with AsyncScheduler(timezone="Europe/London") as scheduler:
        scheduler.add_job(report, daily(at="00:30"), id="daily-report")
        scheduler.add_job(refresh, "interval", minutes=5)
        scheduler.add_job(rollup, "cron", crontab="0 1 * * MON")
"""

from __future__ import annotations

from ._clock import ManualClock, RealClock
from ._scheduler import (
    EVENT_ALL,
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    AsyncScheduler,
    BackgroundScheduler,
    Job,
    JobEvent,
    JobStatus,
)
from ._tz import get_zone
from .triggers import (
    BaseTrigger,
    CronTrigger,
    DateTrigger,
    IntervalTrigger,
    daily,
    hourly,
    monthly,
    weekly,
)

__all__ = [
    "EVENT_ALL",
    "EVENT_JOB_ERROR",
    "EVENT_JOB_EXECUTED",
    "EVENT_JOB_MAX_INSTANCES",
    "EVENT_JOB_MISSED",
    "EVENT_JOB_SUBMITTED",
    "AsyncScheduler",
    "BackgroundScheduler",
    "BaseTrigger",
    "CronTrigger",
    "DateTrigger",
    "IntervalTrigger",
    "Job",
    "JobEvent",
    "JobStatus",
    "ManualClock",
    "RealClock",
    "daily",
    "get_zone",
    "hourly",
    "monthly",
    "weekly",
]
