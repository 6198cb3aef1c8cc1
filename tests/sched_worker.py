"""A scheduler process for the job store tests (run as ``python sched_worker.py CONFIG``)
and the importable job functions those tests schedule (``sched_worker:...``).

CONFIG is JSON: {"store": "redis" | "sqlite", "url" | "path", "prefix", "jobs": [{"id",
"interval", "start", "end", "sleep", "sync"}], "log", "lease_time", "until", "status",
"policy", "extra_sleep"}. The process adds the jobs, starts, prints "ready", runs until ``until``
(unix time), stops and writes its job status and store stats to ``status``.

Every run appends ``S <job> <pid>`` when the job starts (from the job itself) and
``E <job> <nominal µs> <pid>`` when it has finished (from the executed listener);
a firing this process found lost appends ``M <job> <nominal µs> <pid>``. Lines are
written with O_APPEND, one write each.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import time
from typing import Any

CALLS: dict[str, list[float]] = {}
# this process's runs last this much longer than the stored jobs say (config
# "extra_sleep"): a wider window for a test to kill it in the middle of one
EXTRA_SLEEP = 0.0


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


async def record_async(log: str, job_id: str, sleep: float) -> None:
    _append(log, f"S {job_id} {os.getpid()}\n")
    if sleep:
        await asyncio.sleep(sleep + EXTRA_SLEEP)


def record_sync(log: str, job_id: str, sleep: float) -> None:
    _append(log, f"S {job_id} {os.getpid()}\n")
    if sleep:
        time.sleep(sleep + EXTRA_SLEEP)


async def tick(key: str) -> None:
    """In-process tests: records the time of every run under ``key``."""
    CALLS.setdefault(key, []).append(time.time())


def tick_sync(key: str) -> None:
    CALLS.setdefault(key, []).append(time.time())


class Holder:
    @staticmethod
    async def static_job(key: str) -> None:
        CALLS.setdefault(key, []).append(time.time())

    async def method(self) -> None:  # bound to an instance: not storable
        pass


async def main(cfg: dict[str, Any]) -> None:
    global EXTRA_SLEEP
    EXTRA_SLEEP = float(cfg.get("extra_sleep", 0.0))
    import datetime as dt

    from ferrotick.scheduler import (
        EVENT_JOB_EXECUTED,
        EVENT_JOB_MISSED,
        AsyncScheduler,
        IntervalTrigger,
        RedisJobStore,
        SQLiteJobStore,
    )

    utc = dt.timezone.utc
    if cfg["store"] == "redis":
        store: Any = RedisJobStore(cfg["url"], prefix=cfg["prefix"])
    else:
        store = SQLiteJobStore(cfg["path"])
    sched = AsyncScheduler(jobstore=store, timezone="UTC", on_store_error=cfg.get("policy", "skip"))
    log = cfg["log"]
    pid = os.getpid()

    def listener(ev: Any) -> None:
        tag = "E" if ev.code == EVENT_JOB_EXECUTED else "M"
        us = round(ev.scheduled_run_time.timestamp() * 1e6)
        _append(log, f"{tag} {ev.job_id} {us} {pid}\n")

    sched.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
    for j in cfg["jobs"]:
        sched.add_job(
            "sched_worker:record_sync" if j.get("sync") else "sched_worker:record_async",
            IntervalTrigger(
                seconds=j["interval"],
                start_date=dt.datetime.fromtimestamp(j["start"], utc),
                end_date=dt.datetime.fromtimestamp(j["end"], utc),
            ),
            id=j["id"],
            args=[log, j["id"], j.get("sleep", 0.0)],
            coalesce=False,
            misfire_grace_time=None,
            max_instances=20,
            lease_time=cfg.get("lease_time"),
        )
    await sched.start()
    print("ready", flush=True)
    await asyncio.sleep(max(0.0, cfg["until"] - time.time()))
    await sched.stop()
    out = {
        "pid": pid,
        "jobs": {j.id: dataclasses.asdict(j.status) for j in sched.get_jobs()},
        "stores": sched.store_stats(),
    }
    with open(cfg["status"], "w") as f:
        json.dump(out, f, default=str)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    asyncio.run(main(json.loads(sys.argv[1])))
