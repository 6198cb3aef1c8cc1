"""The seed's report schedule (hourly, daily at 00:30, weekly Monday 01:00, monthly
day 1 02:00) on ferrotick's scheduler, run for a simulated month in milliseconds.

    python examples/scheduler_reports.py
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt

from ferrotick.scheduler import AsyncScheduler, ManualClock, daily, hourly, monthly, weekly


async def main() -> None:
    clock = ManualClock(dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc))
    runs: collections.Counter[str] = collections.Counter()

    async def report(kind: str) -> None:
        runs[kind] += 1

    async with AsyncScheduler(timezone="Europe/London", clock=clock) as scheduler:
        scheduler.add_job(report, hourly(), args=["hourly"], id="hourly")
        scheduler.add_job(report, daily(at="00:30"), args=["daily"], id="daily")
        scheduler.add_job(report, weekly("monday", at="01:00"), args=["weekly"], id="weekly")
        scheduler.add_job(report, monthly(1, at="02:00"), args=["monthly"], id="monthly")
        await clock.advance(31 * 86400)  # March, with the spring-forward DST change
        for job in scheduler.get_jobs():
            print(f"{job.id:8s} runs={job.status.runs:4d} next={job.next_run_time}")
    print(dict(runs))


if __name__ == "__main__":
    asyncio.run(main())
