"""ferrotick.scheduler: interval, cron, calendar and one-shot triggers for coroutine
jobs, with misfire handling, coalescing, overlap limits and time zones.

    from ferrotick.scheduler import AsyncScheduler, daily, weekly

    async with AsyncScheduler(timezone="Europe/London") as scheduler:
        scheduler.add_job(report, daily(at="00:30"), id="daily-report")
        scheduler.add_job(refresh, "interval", minutes=5)
        scheduler.add_job(rollup, "cron", crontab="0 1 * * MON")

Several processes share one schedule, each firing run once, through a persistent
job store: ``AsyncScheduler(jobstore=RedisJobStore("redis://127.0.0.1:6379/0"))``
or ``SQLiteJobStore("jobs.db")`` (see ``_stores``).
"""

from __future__ import annotations

from ._background import BackgroundScheduler
from ._clock import ManualClock, RealClock
from ._job import (
    EVENT_ALL,
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    Job,
    JobEvent,
    JobStatus,
)
from ._redis import RedisJobStore
from ._scheduler import AsyncScheduler
from ._sqlite import SQLiteJobStore
from ._stores import BaseJobStore, Claim, ClaimResult, JobStore, MemoryJobStore
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
    "BaseJobStore",
    "BaseTrigger",
    "Claim",
    "ClaimResult",
    "CronTrigger",
    "DateTrigger",
    "IntervalTrigger",
    "Job",
    "JobEvent",
    "JobStatus",
    "JobStore",
    "ManualClock",
    "MemoryJobStore",
    "RealClock",
    "RedisJobStore",
    "SQLiteJobStore",
    "daily",
    "get_zone",
    "hourly",
    "monthly",
    "weekly",
]
