"""Jobs and their events: ``Job``, ``JobStatus``, ``JobEvent`` and the ``EVENT_*``
codes, the job options with their checks, and the rule that tells a live run-queue
entry from a stale one."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as _dt
import inspect
from collections.abc import Callable
from typing import Any

from .._validate import integer, seconds
from ._stores import BaseJobStore, MemoryJobStore
from ._tz import from_unix
from .triggers import BaseTrigger, DateTrigger

EVENT_JOB_EXECUTED = 1 << 0
EVENT_JOB_ERROR = 1 << 1
EVENT_JOB_MISSED = 1 << 2
EVENT_JOB_MAX_INSTANCES = 1 << 3
EVENT_JOB_SUBMITTED = 1 << 4
EVENT_ALL = (1 << 5) - 1


@dataclasses.dataclass
class JobEvent:
    code: int
    job_id: str
    scheduled_run_time: _dt.datetime | None
    retval: Any = None
    exception: BaseException | None = None
    traceback: str | None = None
    duration: float | None = None
    # EVENT_JOB_SUBMITTED: every fire time handed to execution in one run (more than
    # one when a backlog runs with coalesce=False); scheduled_run_time is the first
    scheduled_run_times: list[_dt.datetime] | None = None


@dataclasses.dataclass
class JobStatus:
    next_run_time: _dt.datetime | None
    last_run_time: _dt.datetime | None
    last_duration: float | None
    last_error: str | None
    runs: int
    errors: int
    misses: int
    skips: int
    coalesced: int
    running: int
    # persistent job stores: firings another process claimed first, firings whose
    # claim failed because the store was unreachable, and firings this process
    # found claimed but never completed (their holder died or outlived its lease)
    claimed_elsewhere: int = 0
    store_errors: int = 0
    lost: int = 0


class Job:
    """A scheduled job (APScheduler's Job, on ferrotick's scheduler)."""

    # fixed attributes, as APScheduler's Job: the scheduler reads a dozen of them
    # per run, and a slot is read without a dictionary lookup
    __slots__ = (
        "_scheduler",
        "id",
        "func",
        "trigger",
        "name",
        "args",
        "kwargs",
        "misfire_grace_time",
        "coalesce",
        "max_instances",
        "jobstore",
        "lease_time",
        "paused",
        "_store",
        "_definition",
        "_implicit_start",
        "_persisted",
        "_replace",
        "_ready",
        "_claimed_elsewhere",
        "_store_errors",
        "_lost",
        "_outage_warned",
        "_next_nominal",
        "_next_run",
        "_version",
        "_running",
        "_runs",
        "_errors",
        "_misses",
        "_skips",
        "_coalesced",
        "_last_run",
        "_last_duration",
        "_last_error",
        "_is_coro",
        "_task_name",
        "__weakref__",
    )

    def __init__(
        self,
        scheduler: Any,  # the AsyncScheduler that runs it
        id: str,
        func: Callable[..., Any],
        trigger: BaseTrigger,
        **opts: Any,
    ):
        self._scheduler = scheduler
        self.id = id
        self.func = func
        self.trigger = trigger
        self.name: str = opts.get("name") or getattr(func, "__qualname__", repr(func))
        self.args: tuple[Any, ...] = tuple(opts.get("args") or ())
        self.kwargs: dict[str, Any] = dict(opts.get("kwargs") or {})
        self.misfire_grace_time: float | None = opts.get("misfire_grace_time")
        self.coalesce: bool = opts.get("coalesce", True)
        self.max_instances: int = opts.get("max_instances", 1)
        self.jobstore: str = opts.get("jobstore", "default")
        self.lease_time: float | None = opts.get("lease_time")
        self.paused = False
        self._store: BaseJobStore = opts.get("store") or _MEMORY
        self._definition: dict[str, Any] | None = None
        self._implicit_start = False
        self._persisted = False
        self._replace = False
        self._ready: asyncio.Future[bool] | None = None
        self._claimed_elsewhere = 0
        self._store_errors = 0
        self._lost = 0
        self._outage_warned = False
        # nominal (trigger) time of the next firing and its jittered run time
        self._next_nominal: float | None = None
        self._next_run: float | None = None
        self._version = 0
        self._running = 0
        self._runs = 0
        self._errors = 0
        self._misses = 0
        self._skips = 0
        self._coalesced = 0
        self._last_run: float | None = None
        self._last_duration: float | None = None
        self._last_error: str | None = None
        self._is_coro = _is_coroutine_callable(func)
        self._task_name = f"ferrotick-job-{id}"

    @property
    def next_run_time(self) -> _dt.datetime | None:
        if self.paused or self._next_run is None:
            return None
        return from_unix(self._next_run, self.trigger.timezone)

    @property
    def pending(self) -> bool:
        return not self._scheduler.running

    @property
    def status(self) -> JobStatus:
        tz = self.trigger.timezone
        return JobStatus(
            next_run_time=self.next_run_time,
            last_run_time=None if self._last_run is None else from_unix(self._last_run, tz),
            last_duration=self._last_duration,
            last_error=self._last_error,
            runs=self._runs,
            errors=self._errors,
            misses=self._misses,
            skips=self._skips,
            coalesced=self._coalesced,
            running=self._running,
            claimed_elsewhere=self._claimed_elsewhere,
            store_errors=self._store_errors,
            lost=self._lost,
        )

    def modify(self, **changes: Any) -> Job:
        self._scheduler.modify_job(self.id, **changes)
        return self

    def reschedule(self, trigger: Any, **trigger_args: Any) -> Job:
        self._scheduler.reschedule_job(self.id, trigger, **trigger_args)
        return self

    def pause(self) -> Job:
        self._scheduler.pause_job(self.id)
        return self

    def resume(self) -> Job:
        self._scheduler.resume_job(self.id)
        return self

    def remove(self) -> None:
        self._scheduler.remove_job(self.id)

    def __repr__(self) -> str:
        return f"<Job id={self.id!r} name={self.name!r} trigger={self.trigger!r} next_run_time={self.next_run_time}>"


def _is_coroutine_callable(func: Any) -> bool:
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 (callable objects with async __call__)
    )


def _first_after(trigger: BaseTrigger, now: float, anchored_now: bool) -> float:
    """The instant a new trigger's first fire time is searched after: a time due
    exactly now fires now (an interval anchored now fires one interval later), and
    a DateTrigger fires once even when its date has passed (a job added with no
    trigger, or a date a few microseconds old by the time it is added), as in
    APScheduler; misfire_grace_time decides whether a late one still runs."""
    if anchored_now:
        return now
    if isinstance(trigger, DateTrigger):
        return min(now, trigger.run_at) - 1e-6
    return now - 1e-6


# the options every job has, with their defaults when job_defaults leaves them out
_JOB_OPTIONS: dict[str, Any] = {
    "misfire_grace_time": None,
    "coalesce": True,
    "max_instances": 1,
    "lease_time": None,
}


def _job_option(key: str, value: Any) -> Any:
    """A job option of _JOB_OPTIONS, checked and converted."""
    if key == "misfire_grace_time":
        return seconds(key, value, allow_none=True, expected="None or seconds >= 0")
    if key == "lease_time":
        return seconds(key, value, positive=True, allow_none=True, expected="None or seconds > 0")
    if key == "max_instances":
        return integer(key, value, min=1)
    return bool(value)  # coalesce


_MEMORY = MemoryJobStore()


def is_stale(job: Job, version: int, jobs: dict[str, Job]) -> bool:
    """Whether a run-queue entry (``version``, ``job``) no longer stands for a firing:
    the job was rescheduled (its version moved on), paused, or removed (``jobs`` holds
    another Job object under its id, or none; a new job reusing the id and reaching
    the same version number is another object, so its entries stay apart)."""
    return job._version != version or job.paused or jobs.get(job.id) is not job
