"""AsyncScheduler and BackgroundScheduler."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime as _dt
import functools
import gc
import inspect
import logging
import operator
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from .. import _core
from .._core import ConfigError, SchedulerError
from .._validate import integer, seconds
from ._clock import ManualClock, RealClock, _LoopTimer
from ._stores import (
    CLAIM_GONE,
    CLAIM_PAUSED,
    CLAIM_RESET,
    CLAIM_TAKEN,
    CLAIM_WON,
    BaseJobStore,
    MemoryJobStore,
    callable_ref,
    dump_value,
    resolve_ref,
    same_definition,
    trigger_desc,
    trigger_from_desc,
)
from ._tz import from_unix, get_zone, to_unix
from .triggers import BaseTrigger, CronTrigger, DateTrigger, IntervalTrigger, jitter_offset

logger = logging.getLogger("ferrotick.scheduler")

EVENT_JOB_EXECUTED = 1 << 0
EVENT_JOB_ERROR = 1 << 1
EVENT_JOB_MISSED = 1 << 2
EVENT_JOB_MAX_INSTANCES = 1 << 3
EVENT_JOB_SUBMITTED = 1 << 4
EVENT_ALL = (1 << 5) - 1

_UNDEFINED: Any = object()


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
        scheduler: AsyncScheduler,
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
_STORE_POLICIES = ("skip", "run_local")


class AsyncScheduler:
    """Runs jobs on an asyncio loop at times given by triggers.

    Coroutine functions run on the scheduler's loop; plain functions run in a
    thread pool, never on the loop. ``misfire_grace_time=None`` (the default) runs
    late jobs however late; ``coalesce=True`` collapses a backlog into one run;
    ``max_instances`` bounds concurrent runs of one job (skips are counted and
    logged). A job that raises is logged with its traceback and counted; it never
    stops the scheduler.
    """

    # On the real clock, a wake-up for the earliest run time waits for the run
    # times up to `timer_slack` seconds after it and serves them all (see
    # RunQueue.batch_end): none starts early, none more than the slack late. A
    # wake-up of an idle loop costs far more CPU than a run, so dense schedules
    # (thousands of runs a second) spend far less; a run time with no other that
    # close is woken for exactly. 0 wakes up for each run time.
    _timer_slack = 0.0004
    # On the timerfd, a wake-up window holding at least `_prepare_min` coroutine
    # runs is prepared ahead of it (see _prepare): the timer expires
    # `_prepare_lead(count)` seconds early, the runs' tasks are created then and
    # wait on one gate, which opens at the window's end. At the due instant only
    # the tasks' first steps are left to do, so the last of a thousand
    # simultaneous runs starts about as soon as a thousand sleeping tasks would.
    _prepare_min = 64

    @staticmethod
    def _prepare_lead(count: int) -> float:
        # a few microseconds per task here, with room for a slow machine
        return min(0.05, 0.002 + 6e-6 * count)

    def __init__(
        self,
        *,
        timezone: Any = None,
        clock: Any = None,
        executor_workers: int = 10,
        job_defaults: dict[str, Any] | None = None,
        jobstore: BaseJobStore | None = None,
        jobstores: dict[str, BaseJobStore] | None = None,
        on_store_error: str = "skip",
        timer_slack: float = 0.0004,
    ) -> None:
        self._timer_slack = seconds("timer_slack", timer_slack, max=1)
        if jobstore is not None and jobstores is not None:
            raise ConfigError("jobstore: pass either jobstore or jobstores, not both")
        stores: dict[str, BaseJobStore] = dict(
            jobstores if jobstores is not None else {"default": jobstore or MemoryJobStore()}
        )
        if jobstores is not None and not isinstance(jobstores, dict):
            raise ConfigError("jobstores: expected a dict of alias -> job store")
        for alias, store in stores.items():
            if not isinstance(alias, str) or not isinstance(store, BaseJobStore):
                raise ConfigError(
                    f"jobstores: {alias!r}: expected a job store (MemoryJobStore, "
                    f"SQLiteJobStore, RedisJobStore), got {store!r}"
                )
        stores.setdefault("default", MemoryJobStore())
        if on_store_error not in _STORE_POLICIES:
            raise ConfigError(
                f"on_store_error: expected 'skip' or 'run_local', got {on_store_error!r}"
            )
        self._stores = stores
        self.on_store_error = on_store_error
        self._owner = ""
        self._store_chain: dict[int, asyncio.Future[Any]] = {}
        self.timezone, _ = get_zone(timezone)
        self._tz_arg = timezone
        self._clock = clock or RealClock()
        self._executor_workers = integer("executor_workers", executor_workers, min=1)
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        defaults = dict(job_defaults or {})
        self._defaults = {
            key: _job_option(key, defaults.get(key, default))
            for key, default in _JOB_OPTIONS.items()
        }
        self._jobs: dict[str, Job] = {}
        # jobs by next run time, each entry with the job's version when queued:
        # entries of a removed or replaced Job object are stale even when a new
        # job reuses its id and version number
        self._queue = _core.RunQueue()
        self._listeners: list[tuple[Callable[[JobEvent], Any], int]] = []
        # the union of the listeners' masks: an event nobody listens to is never built
        self._listen_mask = 0
        # running job tasks (-> their Job) and listener tasks (-> None); a job task
        # removes itself when it ends (see _invoke_*)
        self._tasks: dict[asyncio.Future[Any], Job | None] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._sleep: Any = None
        # re-arms the timerfd for the earliest run time (see _run_on_timer)
        self._rearm: Callable[[], None] | None = None
        # the cyclic collector is off until a large batch's jobs started
        self._gc_held = False
        self._rescheduled = False
        # a prepared batch (see _prepare): its gate, the instant it opens, and
        # the batch end the next expiry prepares for
        self._gate: asyncio.Future[float] | None = None
        self._gate_at: float | None = None
        self._prepare_for: float | None = None
        self.running = False
        from ..monitor._publishers import publish_scheduler

        # the default metrics registry exposes this scheduler's job figures
        self.metrics_name = publish_scheduler(self)

    # -- jobs -------------------------------------------------------------------------

    def _make_trigger(self, trigger: Any, trigger_args: dict[str, Any]) -> BaseTrigger:
        if isinstance(trigger, BaseTrigger):
            if trigger_args:
                raise ConfigError(
                    f"trigger: unexpected arguments {sorted(trigger_args)} with a trigger object"
                )
            return trigger
        if trigger is None or trigger == "date":
            run_date = trigger_args.pop("run_date", None)
            tz = trigger_args.pop("timezone", None)
            if trigger_args:
                raise ConfigError(
                    f"trigger: unexpected arguments {sorted(trigger_args)} for a date trigger"
                )
            if run_date is None:
                run_date = from_unix(self._clock.now(), self.timezone)
            return DateTrigger(run_date, timezone=tz)
        trigger_args.setdefault("timezone", self._tz_arg)
        if trigger == "interval":
            return IntervalTrigger(**trigger_args)
        if trigger == "cron":
            expr = trigger_args.pop("crontab", None)
            if expr is not None:
                return CronTrigger.from_crontab(expr, **trigger_args)
            return CronTrigger(**trigger_args)
        raise ConfigError(
            f"trigger: unknown trigger {trigger!r} (use 'date', 'interval', 'cron' or a trigger object)"
        )

    def add_job(
        self,
        func: Callable[..., Any],
        trigger: Any = None,
        args: Any = None,
        kwargs: Any = None,
        id: str | None = None,  # noqa: A002
        name: str | None = None,
        misfire_grace_time: Any = _UNDEFINED,
        coalesce: Any = _UNDEFINED,
        max_instances: Any = _UNDEFINED,
        next_run_time: Any = _UNDEFINED,
        replace_existing: bool = False,
        jobstore: str = "default",
        lease_time: Any = _UNDEFINED,
        **trigger_args: Any,
    ) -> Job:
        if id is not None and not isinstance(id, str):
            raise ConfigError("id: expected a string")
        store = self._stores.get(jobstore) if isinstance(jobstore, str) else None
        if store is None:
            raise ConfigError(
                f"jobstore: no job store named {jobstore!r} (have {sorted(self._stores)})"
            )
        if store.persistent and id is None:
            raise ConfigError(
                f"id: a job in the persistent job store {jobstore!r} ({store.label}) needs an "
                "explicit id, the same in every process that runs the schedule"
            )
        func_ref: str | None = None
        if isinstance(func, str):
            func_ref = func
            func = resolve_ref(func, id or func)
        if not callable(func):
            raise ConfigError(f"func: expected a callable, got {func!r}")
        job_id = id or uuid.uuid4().hex
        if job_id in self._jobs and not replace_existing:
            raise ConfigError(
                f"id: a job with id {job_id!r} already exists (pass replace_existing=True)"
            )
        trig = self._make_trigger(trigger, dict(trigger_args))
        if args is not None and not isinstance(args, (list, tuple)):
            raise ConfigError("args: expected a list or tuple")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise ConfigError("kwargs: expected a dict")
        d = self._defaults
        job = Job(
            self,
            job_id,
            func,
            trig,
            name=name,
            args=args,
            kwargs=kwargs,
            misfire_grace_time=d["misfire_grace_time"]
            if misfire_grace_time is _UNDEFINED
            else _job_option("misfire_grace_time", misfire_grace_time),
            coalesce=d["coalesce"] if coalesce is _UNDEFINED else bool(coalesce),
            max_instances=d["max_instances"]
            if max_instances is _UNDEFINED
            else _job_option("max_instances", max_instances),
            jobstore=jobstore,
            store=store,
            lease_time=d["lease_time"]
            if lease_time is _UNDEFINED
            else _job_option("lease_time", lease_time),
        )
        # validated before anything changes: a failed add_job leaves no job behind
        first_run = (
            None
            if next_run_time is _UNDEFINED or next_run_time is None
            else to_unix(next_run_time, "next_run_time")
        )
        trig._bind_default_timezone(self._tz_arg)
        if store.persistent:
            definition = self._definition_of(job, func_ref)  # ConfigError naming the job
        now = self._clock.now()
        implicit = isinstance(trig, IntervalTrigger) and trig.anchored(now)
        # a replaced job starts with no running instances: the old job's running
        # instances finish on (and decrement) the old Job object
        self._jobs[job_id] = job
        if next_run_time is not _UNDEFINED:
            if first_run is None:
                job.paused = True
                self._compute_next(job, now)
            else:
                job._next_nominal = job._next_run = first_run
                self._push(job)
        else:
            self._compute_next(job, _first_after(trig, now, implicit))
        if store.persistent:
            job._implicit_start = implicit
            if implicit:
                definition["trigger"]["start"] = trig.start
            job._definition = definition
            job._replace = bool(replace_existing)
            if self.running:
                job._ready = self._loop.create_future() if self._loop else None
                self._store_op(store, self._persist_running(job))
        self._wake()
        return job

    def _definition_of(self, job: Job, func_ref: str | None) -> dict[str, Any]:
        ref = func_ref or callable_ref(job.func, job.id)
        return {
            "v": 1,
            "func": ref,
            "args": dump_value(job.args, "args", job.id),
            "kwargs": dump_value(job.kwargs, "kwargs", job.id),
            "trigger": trigger_desc(job.trigger, job.id),
            "name": job.name,
            "misfire_grace_time": job.misfire_grace_time,
            "coalesce": job.coalesce,
            "max_instances": job.max_instances,
            "lease_time": job.lease_time,
        }

    def scheduled_job(
        self, trigger: Any = None, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of ``add_job``."""

        def deco(func: Callable[..., Any]) -> Callable[..., Any]:
            self.add_job(func, trigger, **kwargs)
            return func

        return deco

    def _compute_next(self, job: Job, after: float) -> None:
        self._set_next(job, job.trigger._next_unix(after))

    def _set_next(self, job: Job, nominal: float | None) -> None:
        job._next_nominal = nominal
        jitter = job.trigger.jitter
        job._next_run = (
            nominal + jitter_offset(job.id, nominal, jitter)
            if jitter and nominal is not None
            else nominal
        )
        job._version += 1
        if nominal is not None and not job.paused:
            self._queue.push(job._next_run, job._version, job)

    def _push(self, job: Job) -> None:
        if job._next_run is not None and not job.paused:
            self._queue.push(job._next_run, job._version, job)

    def get_job(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def get_jobs(self) -> list[Job]:
        # by next run time; paused and finished jobs (next_run_time None) last
        def key(j: Job) -> tuple[bool, float]:
            t = None if j.paused else j._next_run
            return (t is None, t or 0.0)

        return sorted(self._jobs.values(), key=key)

    def _job(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise SchedulerError(f"job_id: no job with id {job_id!r}")
        return job

    def remove_job(self, job_id: str) -> None:
        """Removes the job, from its persistent store too (every process stops
        running it at its next firing)."""
        job = self._job(job_id)
        del self._jobs[job_id]
        job._version += 1
        self._store_write(job, "_remove", job.id)

    def remove_all_jobs(self) -> None:
        for job in self._jobs.values():
            job._version += 1
            self._store_write(job, "_remove", job.id)
        self._jobs.clear()
        self._queue.clear()

    def pause_job(self, job_id: str) -> Job:
        job = self._job(job_id)
        job.paused = True
        job._version += 1
        self._store_write(job, "_update", job.id, paused=True)
        return job

    def resume_job(self, job_id: str) -> Job:
        job = self._job(job_id)
        if job.paused:
            job.paused = False
            now = self._clock.now()
            if job._next_nominal is None or job._next_nominal < now:
                self._compute_next(job, now)
            else:
                job._version += 1
                self._push(job)
            self._store_write(job, "_update", job.id, paused=False, next_fire=job._next_nominal)
            self._wake()
        return job

    def modify_job(self, job_id: str, **changes: Any) -> Job:
        job = self._job(job_id)
        for key, value in changes.items():
            if key in ("misfire_grace_time", "max_instances", "coalesce"):
                setattr(job, key, _job_option(key, value))
            elif key in ("name", "args", "kwargs"):
                setattr(
                    job,
                    key,
                    tuple(value) if key == "args" else (dict(value) if key == "kwargs" else value),
                )
            elif key == "func":
                if not callable(value):
                    raise ConfigError(f"func: expected a callable, got {value!r}")
                job.func = value
                job._is_coro = _is_coroutine_callable(value)
            elif key == "next_run_time":
                t = to_unix(value, "next_run_time")
                job._next_nominal = job._next_run = t
                job._version += 1
                self._push(job)
                self._wake()
            elif key == "trigger":
                self.reschedule_job(job_id, value)
            else:
                raise ConfigError(f"{key}: not a job attribute that can be modified")
        self._store_redefine(job)
        return job

    def reschedule_job(self, job_id: str, trigger: Any = "date", **trigger_args: Any) -> Job:
        job = self._job(job_id)
        job.trigger = self._make_trigger(trigger, dict(trigger_args))
        job.trigger._bind_default_timezone(self._tz_arg)
        now = self._clock.now()
        implicit = isinstance(job.trigger, IntervalTrigger) and job.trigger.anchored(now)
        self._compute_next(job, _first_after(job.trigger, now, implicit))
        job._implicit_start = implicit
        self._store_redefine(job)
        self._wake()
        return job

    # -- job stores -------------------------------------------------------------------

    def store_stats(self) -> dict[str, dict[str, Any]]:
        """Per job store alias: claims, won, claimed_elsewhere, lost, errors,
        outages and available (see ``BaseJobStore.stats``)."""
        return {alias: store.stats() for alias, store in self._stores.items()}

    def _store_op(self, store: BaseJobStore, coro: Any) -> None:
        """Runs a store write after the previous ones of the same store (in order),
        off the caller: errors are logged and counted by the store."""
        loop = self._loop
        assert loop is not None
        prev = self._store_chain.get(id(store))

        async def run() -> None:
            if prev is not None and not prev.done():
                await asyncio.gather(prev, return_exceptions=True)
            try:
                await coro
            except Exception as e:
                logger.error("%s", e)

        task = loop.create_task(run(), name="ferrotick-jobstore-write")
        self._store_chain[id(store)] = task
        self._track(task)

    def _store_write(self, job: Job, method: str, *args: Any, **kwargs: Any) -> None:
        store = job._store
        if store.persistent and self.running and job._persisted:
            self._store_op(store, getattr(store, method)(*args, **kwargs))

    def _store_redefine(self, job: Job) -> None:
        """A modified or rescheduled job: its new definition replaces the stored one."""
        if not job._store.persistent:
            return
        func_ref = job._definition["func"] if job._definition else None
        if func_ref is not None and resolve_ref(func_ref, job.id) is not job.func:
            func_ref = None
        job._definition = self._definition_of(job, func_ref)
        if self.running and job._persisted:
            self._store_op(
                job._store,
                job._store._replace(job.id, job._definition, job._next_nominal, job.paused),
            )

    async def _persist(self, job: Job, stored: Any = None) -> None:
        """Puts a job added in this process into its store, or adopts the stored
        job of the same id: the same definition keeps the stored run state (and an
        implicit interval anchor), a different one needs replace_existing."""
        store = job._store
        assert job._definition is not None
        if stored is None:
            created, definition, state = await store._add(
                job.id, job._definition, job._next_nominal, job.paused
            )
            if created:
                job._persisted = True
                return
        else:
            definition, state = stored
        if same_definition(job._definition, definition, job._implicit_start):
            if job._implicit_start and isinstance(job.trigger, IntervalTrigger):
                start = definition["trigger"].get("start")
                if start is not None:
                    job.trigger.start = start
                    job._definition["trigger"]["start"] = start
            self._adopt_state(job, state)
        elif job._replace:
            await store._replace(job.id, job._definition, job._next_nominal, job.paused)
        else:
            raise SchedulerError(
                f"job {job.id!r}: the job store {store.label} already holds a different "
                "job with this id; pass replace_existing=True to replace it"
            )
        job._persisted = True

    def _adopt_state(self, job: Job, state: dict[str, Any]) -> None:
        job.paused = bool(state.get("paused"))
        if state.get("last_duration") is not None and job._last_duration is None:
            job._last_duration = state["last_duration"]
        nxt = state.get("next_fire")
        claimed = state.get("claimed")
        if nxt is None and claimed is not None:
            nxt = job.trigger._next_unix(claimed)
        if nxt is None and claimed is None:
            return  # nothing stored: keep what this process computed
        self._set_next(job, nxt)

    async def _persist_running(self, job: Job) -> None:
        ready = job._ready
        try:
            await self._persist(job)
        except SchedulerError as e:
            if self._jobs.get(job.id) is job and "already holds" in str(e):
                del self._jobs[job.id]
                job._version += 1
            raise
        finally:
            if ready is not None and not ready.done():
                ready.set_result(job._persisted)
            self._wake()

    async def _open_stores(self) -> None:
        opened: list[BaseJobStore] = []
        try:
            for store in self._stores.values():
                if store.persistent:
                    await store.open()
                    opened.append(store)
            for alias, store in self._stores.items():
                if store.persistent:
                    await self._load_store(alias, store)
        except BaseException:
            for store in opened:
                await store.close()
            raise

    async def _load_store(self, alias: str, store: BaseJobStore) -> None:
        records = await store.load_jobs()
        for job in list(self._jobs.values()):
            if job._store is store and not job._persisted:
                await self._persist(job, records.pop(job.id, None))
        for job_id, (definition, state) in records.items():
            if job_id in self._jobs:
                if self._jobs[job_id]._store is not store:
                    logger.error(
                        "job %r in job store %s is ignored: a job of another store has its id",
                        job_id,
                        store.label,
                    )
                continue
            try:
                func = resolve_ref(definition["func"], job_id)
                trig = trigger_from_desc(definition["trigger"])
                from ._stores import load_value

                job = Job(
                    self,
                    job_id,
                    func,
                    trig,
                    name=definition.get("name"),
                    args=load_value(definition["args"]),
                    kwargs=load_value(definition["kwargs"]),
                    misfire_grace_time=definition.get("misfire_grace_time"),
                    coalesce=definition.get("coalesce", True),
                    max_instances=definition.get("max_instances", 1),
                    jobstore=alias,
                    store=store,
                    lease_time=definition.get("lease_time"),
                )
            except Exception as e:
                logger.error("job %r in job store %s cannot be loaded: %s", job_id, store.label, e)
                continue
            job._definition = definition
            job._persisted = True
            self._jobs[job_id] = job
            job.paused = bool(state.get("paused"))
            if state.get("next_fire") is None and state.get("claimed") is None:
                self._compute_next(job, self._clock.now())
            else:
                self._adopt_state(job, state)

    # -- listeners --------------------------------------------------------------------

    def add_listener(self, callback: Callable[[JobEvent], Any], mask: int = EVENT_ALL) -> None:
        if not callable(callback):
            raise ConfigError("callback: expected a callable")
        integer("mask", mask, expected="an int of EVENT_* bits")
        self._listeners.append((callback, mask))
        self._listen_mask |= mask

    def remove_listener(self, callback: Callable[[JobEvent], Any]) -> None:
        # == (not `is`): bound methods such as `events.append` are new objects each time
        self._listeners = [(cb, m) for cb, m in self._listeners if cb != callback]
        self._listen_mask = functools.reduce(operator.or_, (m for _, m in self._listeners), 0)

    def _emit(self, event: JobEvent) -> None:
        for cb, mask in list(self._listeners):
            if mask & event.code:
                try:
                    r = cb(event)
                    if inspect.isawaitable(r) and self._loop is not None:
                        self._track(asyncio.ensure_future(r, loop=self._loop))
                except Exception:
                    logger.exception("scheduler listener %r failed", cb)

    # -- running ----------------------------------------------------------------------

    async def start(self, paused: bool = False) -> None:
        if self.running:
            raise SchedulerError("the scheduler is already running")
        self._loop = asyncio.get_running_loop()
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # persistent stores: connect, load their jobs, merge the ones added here
        # (SchedulerError naming the store or the job; nothing has started then)
        await self._open_stores()
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._executor_workers, thread_name_prefix="ferrotick-job"
            )
        self.running = True
        if isinstance(self._clock, ManualClock):
            self._clock._add_settler(self._settle)
        self._main = self._loop.create_task(self._run(), name="ferrotick-scheduler")

    async def stop(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stops firing; with ``wait``, waits for running jobs (up to ``timeout``
        seconds), then cancels whatever still runs."""
        if not self.running:
            return
        self.running = False
        main, self._main = self._main, None
        if main is not None:
            main.cancel()
            try:
                await main
            except asyncio.CancelledError:
                pass
        gate, self._gate, self._gate_at, self._prepare_for = self._gate, None, None, None
        if gate is not None and not gate.done():
            # prepared runs whose instant has not come: they end without running
            gate.cancel()
        self._gc_resume()
        pending = {t for t in self._tasks if not t.done()}
        if pending and wait:
            await asyncio.wait(pending, timeout=timeout)
        for t in pending:
            if not t.done():
                t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        for t, job in list(self._tasks.items()):
            if t.done():
                # a job task cancelled before its first step never ran its `finally`
                del self._tasks[t]
                if job is not None:
                    job._running -= 1
        if isinstance(self._clock, ManualClock):
            self._clock._remove_settler(self._settle)
        elif isinstance(self._clock, RealClock):
            self._clock.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        chains = [t for t in self._store_chain.values() if not t.done()]
        if chains:
            await asyncio.wait(chains, timeout=5.0)
        self._store_chain.clear()
        for store in self._stores.values():
            if store.persistent:
                try:
                    await store.close()
                except Exception as e:  # pragma: no cover - closing a dead connection
                    logger.warning("closing job store %s failed: %s", store.label, e)
        for job in self._jobs.values():
            if job._store.persistent:
                # the next start loads the stored state again
                job._persisted = False

    shutdown = stop

    async def __aenter__(self) -> AsyncScheduler:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _wake(self) -> None:
        rearm = self._rearm
        if rearm is not None:
            # on the timerfd: arm it for the new earliest run time (one already
            # due makes it expire at once)
            rearm()
            return
        sleep = self._sleep
        if sleep is not None and not sleep.done():
            self._rescheduled = True
            sleep.cancel()

    def _track(self, fut: asyncio.Future[Any]) -> None:
        self._tasks[fut] = None
        fut.add_done_callback(self._untrack)

    def _untrack(self, fut: asyncio.Future[Any]) -> None:
        self._tasks.pop(fut, None)

    async def _settle(self) -> None:
        """(ManualClock) Waits until every running job has finished or sleeps on
        the manual clock itself (a job simulating its duration), which only
        advancing the clock can wake."""
        clock = self._clock
        while True:
            waiting = [t for t in self._tasks if not t.done() and not clock._is_parked(t)]
            if not waiting:
                return
            signal = clock._park_signal()
            try:
                await asyncio.wait([*waiting, signal], return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not signal.done():
                    signal.cancel()

    async def _run(self) -> None:
        clock = self._clock
        queue = self._queue
        loop = self._loop
        assert loop is not None
        now_fn: Callable[[], float] = clock.now
        sleep_until: Callable[[float], Any] = clock.sleep_until
        # run times close together share one wake-up on the real clock (see _timer_slack)
        slack = self._timer_slack if type(clock) is RealClock else 0.0
        dispatch = self._dispatch
        if type(clock) is RealClock:
            lt = clock.loop_timer(loop)
            if lt is not None:
                await self._run_on_timer(lt, slack)
                return
        live_head = self._live_head
        while self.running:
            dispatch(now_fn())
            head = live_head()
            self._rescheduled = False
            if head is None:
                self._sleep = loop.create_future()
            else:
                self._sleep = sleep_until(queue.batch_end(slack) if slack else head[0])
            try:
                await self._sleep
            except asyncio.CancelledError:
                if self._rescheduled and self.running:
                    continue
                raise
            finally:
                self._sleep = None

    def _live_head(self) -> tuple[float, int, Job] | None:
        """The run queue's earliest entry of a live job (stale ones, of removed,
        paused or rescheduled jobs, are dropped on the way), or None."""
        queue = self._queue
        jobs = self._jobs
        while True:
            head = queue.peek()
            if head is None:
                return None
            _, version, job = head
            if job._version != version or job.paused or jobs.get(job.id) is not job:
                queue.pop()
                continue
            return head

    async def _run_on_timer(self, lt: _LoopTimer, slack: float) -> None:
        """The real clock's loop on a timerfd: each expiry calls ``tick`` from the
        loop's selector, which starts what is due and arms the timer for the next
        wake-up. Returns when cancelled (stop()); an error in ``tick`` ends it."""
        assert self._loop is not None
        queue = self._queue
        dispatch = self._dispatch
        now_fn = self._clock.now
        ended: asyncio.Future[None] = self._loop.create_future()

        live_head = self._live_head

        prepare = self._prepare
        prepare_min = self._prepare_min
        prepare_lead = self._prepare_lead

        def arm() -> None:
            head = live_head()
            gate_at = self._gate_at
            self._prepare_for = None
            if head is None:
                if gate_at is None:
                    lt.disarm()
                else:
                    lt.arm(gate_at)
                return
            when = queue.batch_end(slack) if slack else head[0]
            if gate_at is None and (count := queue.count_until(when, 10_000)) >= prepare_min:
                early = when - prepare_lead(count)
                if now_fn() < early:
                    self._prepare_for = when
                    when = early
            if gate_at is not None and gate_at < when:
                when = gate_at
            lt.arm(when)

        def tick() -> None:
            if not self.running or ended.done():
                return
            try:
                now = now_fn()
                gate_at = self._gate_at
                if gate_at is not None and now >= gate_at:
                    self._release(now)
                end = self._prepare_for
                if end is not None and now < end:
                    prepare(end)
                else:
                    dispatch(now)
                arm()
            except BaseException as e:  # pragma: no cover - a bug: end _run with it
                if not ended.done():
                    ended.set_exception(e)

        lt.callback = tick
        self._rearm = arm
        try:
            arm()
            await ended
        finally:
            self._rearm = None
            if lt.callback is tick:
                lt.callback = None
            lt.disarm()

    def _dispatch(self, now: float) -> None:
        """Starts every job due at ``now``."""
        due = self._queue.pop_due(now)
        if not due:
            return
        jobs = self._jobs
        loop = self._loop
        assert loop is not None
        advance = self._advance_common
        tasks = self._tasks
        fire = self._fire
        Task = asyncio.Task
        # the loop's default task factory: asyncio.Task directly, without
        # loop.create_task's Python-level frame
        plain = loop.get_task_factory() is None
        common = plain and not self._listen_mask & EVENT_JOB_SUBMITTED
        # A batch of thousands of run times allocates thousands of objects: the
        # cyclic collector waits until the jobs it started have taken their
        # first step (the callback below is queued behind them), so that a
        # collection, which may walk the whole heap, runs once after they
        # started instead of during the batch. Batches of 64 run times or fewer
        # leave it on: holding it off around every pop delays the small
        # batches of dense schedules.
        gc_was_on = len(due) > 64 and gc.isenabled()
        if gc_was_on:
            gc.disable()
        started = False
        try:
            for version, job in due:
                if job._version != version or job.paused or jobs.get(job.id) is not job:
                    continue
                first = job._next_nominal
                if common and first is not None and advance(job, first, now) is not None:
                    # the common case, inlined: one fire time, nothing to
                    # shift, miss or skip, the next one known (see _process_due)
                    job._running += 1
                    slot: list[asyncio.Future[Any]] = []
                    task = Task(fire(job, first, now, slot), loop=loop, name=job._task_name)
                    slot.append(task)
                    tasks[task] = job
                    continue
                self._process_due(job, now)
            if gc_was_on:
                self._gc_held = True
                loop.call_soon(self._gc_resume)
                started = True
        finally:
            if gc_was_on and not started:
                gc.enable()

    def _gc_resume(self) -> None:
        """Turns the cyclic collector back on after a large batch (see
        _dispatch); stop() calls it too, should the loop stop before the
        callback ran."""
        if self._gc_held:
            self._gc_held = False
            gc.enable()

    def _advance_common(self, job: Job, first: float, horizon: float) -> int | None:
        """For a run at ``first`` of the common case (a coroutine job run as
        soon as it is due: no misfire grace, no jitter, a free instance slot,
        the memory store, and its next run time after ``horizon``), moves the
        job on to that next run time and returns its new version; None,
        leaving the job as it is, for anything else (see _process_due)."""
        trigger = job.trigger
        if (
            not job._is_coro
            or job.misfire_grace_time is not None
            or job._running >= job.max_instances
            or trigger.jitter
            or job._store.persistent
        ):
            return None
        after = trigger._next_unix(first)
        if after is not None and after <= horizon:
            return None
        job._next_nominal = job._next_run = after
        version = job._version + 1
        job._version = version
        if after is not None:
            self._queue.push(after, version, job)
        return version

    def _prepare(self, end: float) -> None:
        """Creates ahead of ``end`` the tasks of the common-case runs due by
        then (as _dispatch starts them), each waiting on one gate that
        _release opens at ``end`` or later: none runs early. Runs of any other
        kind go back to the queue for their time. A job removed, paused or
        rescheduled before the gate opens changes its version, and its
        prepared run ends without running (its new schedule governs)."""
        loop = self._loop
        assert loop is not None
        due = self._queue.pop_due(end)
        jobs = self._jobs
        push = self._queue.push
        tasks = self._tasks
        fire = self._fire
        Task = asyncio.Task
        common = loop.get_task_factory() is None and not self._listen_mask & EVENT_JOB_SUBMITTED
        gate: asyncio.Future[float] = loop.create_future()
        if gc.isenabled() and not self._gc_held:
            # (see _dispatch) on again once the gate opened and the first steps ran
            gc.disable()
            self._gc_held = True
        advance = self._advance_common
        made = 0
        for version, job in due:
            if job._version != version or job.paused or jobs.get(job.id) is not job:
                continue
            first = job._next_nominal
            if common and first is not None:
                moved = advance(job, first, end)
                if moved is not None:
                    slot: list[asyncio.Future[Any]] = []
                    task = Task(
                        fire(job, first, end, slot, gate, moved), loop=loop, name=job._task_name
                    )
                    slot.append(task)
                    # None: not counted as running until its gate opens (stop()
                    # must not uncount it)
                    tasks[task] = None
                    made += 1
                    continue
            if job._next_run is not None:
                push(job._next_run, version, job)
        if made:
            self._gate, self._gate_at = gate, end
        else:
            self._gc_resume()

    def _release(self, now: float) -> None:
        """Opens the prepared batch's gate: its tasks take their first steps in
        the loop's next pass, then the collector is turned back on."""
        gate, self._gate, self._gate_at = self._gate, None, None
        if gate is not None and not gate.done():
            gate.set_result(now)
        assert self._loop is not None
        self._loop.call_soon(self._gc_resume)

    def _process_due(self, job: Job, now: float) -> None:
        first = job._next_nominal
        if first is None:
            return
        trigger = job.trigger
        run_times: list[float]
        after_first = trigger._next_unix(first)
        if after_first is None or after_first > now:
            # the common case, no backlog: one fire time, and the next one is known
            run_times = [first]
            self._set_next(job, after_first)
            if (
                not trigger.jitter
                and job.misfire_grace_time is None
                and job._running < job.max_instances
            ):
                # nothing to shift, nothing to miss, nothing to skip
                self._launch(job, run_times, run_times)
                return
        else:
            if job.coalesce:
                last = trigger._last_unix_at_or_before(now, first)
                last = first if last is None or last < first else last
                if last > first:
                    job._coalesced += 1
                run_times = [last]
            else:
                run_times = []
                t: float | None = first
                while t is not None and t <= now and len(run_times) < 10_000:
                    run_times.append(t)
                    t = trigger._next_unix(t)
            self._compute_next(job, run_times[-1])
        # the fire times that run: a backlog (coalesce=False) runs one after the
        # other in a single instance, as APScheduler does, instead of counting all
        # but the first as skipped by max_instances
        jitter = trigger.jitter
        runs = [n + jitter_offset(job.id, n, jitter) for n in run_times] if jitter else run_times
        nominals = run_times
        grace = job.misfire_grace_time
        if grace is not None:
            kept: list[float] = []
            kept_nominals: list[float] = []
            for nominal, scheduled in zip(run_times, runs, strict=True):
                lateness = now - scheduled
                if lateness > grace:
                    job._misses += 1
                    logger.warning(
                        "job %r missed its run at %s by %.3fs (misfire_grace_time=%s)",
                        job.name,
                        from_unix(scheduled, trigger.timezone).isoformat(),
                        lateness,
                        grace,
                    )
                    self._emit(
                        JobEvent(EVENT_JOB_MISSED, job.id, from_unix(scheduled, trigger.timezone))
                    )
                    continue
                kept.append(scheduled)
                kept_nominals.append(nominal)
            runs, nominals = kept, kept_nominals
            if not runs:
                return
        if job._running >= job.max_instances:
            self._skip_busy(job, runs)
            return
        self._launch(job, runs, nominals)

    def _skip_busy(self, job: Job, runs: list[float]) -> None:
        """Counts, logs and reports runs skipped for max_instances."""
        for scheduled in runs:
            job._skips += 1
            logger.warning(
                "job %r skipped: maximum number of running instances reached (%d)",
                job.name,
                job.max_instances,
            )
            self._emit(
                JobEvent(
                    EVENT_JOB_MAX_INSTANCES, job.id, from_unix(scheduled, job.trigger.timezone)
                )
            )

    def _launch(self, job: Job, runs: list[float], nominals: list[float]) -> None:
        loop = self._loop
        assert loop is not None
        job._running += 1
        # the job's task, for the job to remove itself from _tasks when it ends
        # (cheaper than a done-callback, one more loop callback per run, or
        # asyncio.current_task())
        slot: list[asyncio.Future[Any]] = []
        coro: Any
        if job._store.persistent:
            # submitted once its firings are claimed (see _invoke_leased)
            coro = self._invoke_leased(job, runs, nominals, slot)
        else:
            if self._listen_mask & EVENT_JOB_SUBMITTED:
                self._submitted(job, runs)
            if job._is_coro:
                coro = self._invoke_async(job, runs, slot)
            else:
                coro = self._invoke_sync(job, runs, slot)
        if loop.get_task_factory() is None:
            # what loop.create_task does then, without its Python-level frame
            task: asyncio.Future[Any] = asyncio.Task(coro, loop=loop, name=job._task_name)
        else:
            task = loop.create_task(coro, name=job._task_name)
        if not task.done():  # an eager task factory (3.12+) may have run it to the end
            slot.append(task)
            self._tasks[task] = job

    def _submitted(self, job: Job, runs: list[float]) -> None:
        tz = job.trigger.timezone
        times = [from_unix(t, tz) for t in runs]
        self._emit(JobEvent(EVENT_JOB_SUBMITTED, job.id, times[0], scheduled_run_times=times))

    async def _fire(
        self,
        job: Job,
        scheduled: float,
        now: float,
        slot: list[asyncio.Future[Any]],
        gate: asyncio.Future[float] | None = None,
        version: int = 0,
    ) -> None:
        """One run of a coroutine job (the common case of _invoke_async); a
        prepared one (see _prepare) first waits for its gate and runs only if
        its job's schedule did not change meanwhile (the new schedule then
        governs) and max_instances allows it then."""
        # _dispatch counted a run it started as running; a prepared one counts
        # itself once its gate opened
        held = gate is None
        try:
            if gate is not None:
                now = await gate
                if job._version != version or job.paused or self._jobs.get(job.id) is not job:
                    return
                if job._running >= job.max_instances:
                    self._skip_busy(job, [scheduled])
                    return
                job._running += 1
                held = True
            job._last_run = now
            start = time.perf_counter()
            try:
                result = await job.func(*job.args, **job.kwargs)
            except Exception as e:
                self._failed(job, scheduled, e, time.perf_counter() - start)
            else:
                if self._listen_mask & EVENT_JOB_EXECUTED:
                    self._succeeded(job, scheduled, result, time.perf_counter() - start)
                else:
                    job._runs += 1
                    job._last_duration = time.perf_counter() - start
                    job._last_error = None
        finally:
            if held:
                job._running -= 1
            self._tasks.pop(slot[0], None)

    async def _invoke_async(
        self, job: Job, runs: list[float], slot: list[asyncio.Future[Any]]
    ) -> None:
        now = self._clock.now
        perf_counter = time.perf_counter
        try:
            for scheduled in runs:
                start = perf_counter()
                job._last_run = now()
                try:
                    result = await job.func(*job.args, **job.kwargs)
                except Exception as e:
                    self._failed(job, scheduled, e, perf_counter() - start)
                else:
                    self._succeeded(job, scheduled, result, perf_counter() - start)
        finally:
            job._running -= 1
            if slot:
                self._tasks.pop(slot[0], None)

    async def _invoke_sync(
        self, job: Job, runs: list[float], slot: list[asyncio.Future[Any]]
    ) -> None:
        try:
            for scheduled in runs:
                start = time.perf_counter()
                job._last_run = self._clock.now()
                call = functools.partial(job.func, *job.args, **job.kwargs)
                try:
                    assert self._loop is not None and self._executor is not None
                    result = await self._loop.run_in_executor(self._executor, call)
                except Exception as e:
                    self._failed(job, scheduled, e, time.perf_counter() - start)
                else:
                    self._succeeded(job, scheduled, result, time.perf_counter() - start)
        finally:
            job._running -= 1
            if slot:
                self._tasks.pop(slot[0], None)

    async def _invoke_leased(
        self,
        job: Job,
        runs: list[float],
        nominals: list[float],
        slot: list[asyncio.Future[Any]],
    ) -> None:
        """A job of a persistent store: claims its firings, runs the ones won."""
        try:
            won = await self._claim(job, nominals, runs)
            if won and self._listen_mask & EVENT_JOB_SUBMITTED:
                self._submitted(job, [scheduled for _, scheduled in won])
            for nominal, scheduled in won:
                start = time.perf_counter()
                job._last_run = self._clock.now()
                try:
                    if job._is_coro:
                        result = await job.func(*job.args, **job.kwargs)
                    else:
                        call = functools.partial(job.func, *job.args, **job.kwargs)
                        assert self._loop is not None and self._executor is not None
                        result = await self._loop.run_in_executor(self._executor, call)
                except Exception as e:
                    duration = time.perf_counter() - start
                    self._failed(job, scheduled, e, duration)
                    self._report(job, nominal, duration, True)
                else:
                    duration = time.perf_counter() - start
                    self._succeeded(job, scheduled, result, duration)
                    self._report(job, nominal, duration, False)
        finally:
            job._running -= 1
            if slot:
                self._tasks.pop(slot[0], None)

    def _report(self, job: Job, nominal: float, duration: float, error: bool) -> None:
        """Records a finished run in the store (not awaited by the job)."""
        if job._persisted and job._last_run is not None:
            fut = asyncio.ensure_future(
                job._store._complete(job.id, nominal, job._last_run, duration, error)
            )
            fut.add_done_callback(_consume)

    async def _claim(
        self, job: Job, nominals: list[float], runs: list[float]
    ) -> list[tuple[float, float]]:
        """The firings this process won, in order; the others are counted."""
        store = job._store
        if job._ready is not None and not job._ready.done():
            await asyncio.shield(job._ready)
        if self._jobs.get(job.id) is not job:
            return []  # removed, or refused by its store (another job holds the id)
        lease = job.lease_time
        if lease is None:
            lease = max(60.0, 2.0 * (job._last_duration or 0.0))
        trigger = job.trigger
        results: list[Any] = await self._claim_all(job, nominals, lease)
        if any(not isinstance(r, BaseException) and r[0] == CLAIM_RESET for r in results):
            # the store lost its data (a Redis restarted empty): write the job again
            # (every process does; the first write wins) and claim once more
            logger.warning(
                "job store %s lost its data: job %r is written to it again", store.label, job.name
            )
            try:
                job._persisted = False
                await self._persist(job, None)
                results = await self._claim_all(job, nominals, lease)
            except Exception as e:
                results = [e] * len(nominals)
        won: list[tuple[float, float]] = []
        for nominal, scheduled, r in zip(nominals, runs, results, strict=True):
            if isinstance(r, BaseException):
                if isinstance(r, asyncio.CancelledError):
                    raise r
                job._store_errors += 1
                if self.on_store_error == "run_local":
                    if not job._outage_warned:
                        job._outage_warned = True
                        logger.warning(
                            "job %r runs without a lease (on_store_error='run_local'): %s",
                            job.name,
                            r,
                        )
                    won.append((nominal, scheduled))
                elif not job._outage_warned:
                    job._outage_warned = True
                    logger.warning(
                        "job %r skips its firings while the job store is unreachable "
                        "(on_store_error='skip'): %s",
                        job.name,
                        r,
                    )
                continue
            job._outage_warned = False
            code, holder, lost = r
            for lost_fire, owner in lost:
                job._lost += 1
                lost_at = lost_fire + jitter_offset(job.id, lost_fire, trigger.jitter)
                logger.warning(
                    "job %r: the firing at %s claimed by %s never completed (its process "
                    "died, or the run outlived its lease); it is not run again",
                    job.name,
                    from_unix(lost_at, trigger.timezone).isoformat(),
                    owner,
                )
                self._emit(JobEvent(EVENT_JOB_MISSED, job.id, from_unix(lost_at, trigger.timezone)))
            if code == CLAIM_WON:
                won.append((nominal, scheduled))
            elif code == CLAIM_TAKEN:
                job._claimed_elsewhere += 1
                logger.debug(
                    "job %r: firing at %s claimed by another process %s",
                    job.name,
                    from_unix(scheduled, trigger.timezone).isoformat(),
                    holder,
                )
            elif code == CLAIM_PAUSED:
                logger.debug("job %r is paused in its job store", job.name)
            elif code == CLAIM_GONE:
                if not job._persisted:
                    # its first write failed (the store was unreachable): write it now
                    if job._ready is None or job._ready.done():
                        assert self._loop is not None
                        job._ready = self._loop.create_future()
                        self._store_op(store, self._persist_running(job))
                elif self._jobs.get(job.id) is job:
                    logger.info(
                        "job %r was removed from job store %s: removed here too",
                        job.name,
                        store.label,
                    )
                    del self._jobs[job.id]
                    job._version += 1
                break
        return won

    def _claim_all(self, job: Job, nominals: list[float], lease: float) -> Any:
        trigger = job.trigger
        return asyncio.gather(
            *(
                job._store._claim(job.id, n, self._owner, lease, trigger._next_unix(n))
                for n in nominals
            ),
            return_exceptions=True,
        )

    def _succeeded(self, job: Job, scheduled: float, result: Any, duration: float) -> None:
        job._runs += 1
        job._last_duration = duration
        job._last_error = None
        if self._listen_mask & EVENT_JOB_EXECUTED:
            self._emit(
                JobEvent(
                    EVENT_JOB_EXECUTED,
                    job.id,
                    from_unix(scheduled, job.trigger.timezone),
                    retval=result,
                    duration=duration,
                )
            )

    def _failed(self, job: Job, scheduled: float, exc: Exception, duration: float) -> None:
        job._runs += 1
        job._errors += 1
        job._last_duration = duration
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        job._last_error = f"{type(exc).__name__}: {exc}"
        logger.error("job %r raised an exception:\n%s", job.name, tb)
        self._emit(
            JobEvent(
                EVENT_JOB_ERROR,
                job.id,
                from_unix(scheduled, job.trigger.timezone),
                exception=exc,
                traceback=tb,
                duration=duration,
            )
        )


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # counted and logged by the store


class BackgroundScheduler:
    """The same scheduler on its own event-loop thread, for Flask and scripts.

    ``start()`` and ``shutdown()`` are plain calls; jobs, listeners and queries go
    through the scheduler thread safely.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._scheduler = AsyncScheduler(**kwargs)

    @property
    def running(self) -> bool:
        return self._scheduler.running

    def start(self) -> None:
        if self._thread is not None:
            raise SchedulerError("the scheduler is already running")
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop
        failed: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._scheduler.start())
            except BaseException as e:  # a job store that cannot be opened
                failed.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        thread = threading.Thread(target=run, name="ferrotick-scheduler", daemon=True)
        self._thread = thread
        thread.start()
        ready.wait()
        if failed:
            thread.join()
            self._thread = None
            self._loop = None
            raise failed[0]

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = self._loop
        if loop is None or threading.current_thread() is self._thread:
            return fn(*args, **kwargs)
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def call() -> None:
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as e:  # delivered to the caller's thread
                fut.set_exception(e)

        loop.call_soon_threadsafe(call)
        return fut.result()

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(
            self._scheduler.stop(wait=wait, timeout=timeout), loop
        ).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._loop = None
        self._thread = None

    def __enter__(self) -> BackgroundScheduler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def add_job(self, func: Callable[..., Any], trigger: Any = None, **kwargs: Any) -> Job:
        return self._call(self._scheduler.add_job, func, trigger, **kwargs)

    def scheduled_job(
        self, trigger: Any = None, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def deco(func: Callable[..., Any]) -> Callable[..., Any]:
            self.add_job(func, trigger, **kwargs)
            return func

        return deco

    def get_job(self, job_id: str) -> Job | None:
        return self._call(self._scheduler.get_job, job_id)

    def get_jobs(self) -> list[Job]:
        return self._call(self._scheduler.get_jobs)

    def remove_job(self, job_id: str) -> None:
        self._call(self._scheduler.remove_job, job_id)

    def remove_all_jobs(self) -> None:
        self._call(self._scheduler.remove_all_jobs)

    def pause_job(self, job_id: str) -> Job:
        return self._call(self._scheduler.pause_job, job_id)

    def resume_job(self, job_id: str) -> Job:
        return self._call(self._scheduler.resume_job, job_id)

    def modify_job(self, job_id: str, **changes: Any) -> Job:
        return self._call(self._scheduler.modify_job, job_id, **changes)

    def reschedule_job(self, job_id: str, trigger: Any = "date", **trigger_args: Any) -> Job:
        return self._call(self._scheduler.reschedule_job, job_id, trigger, **trigger_args)

    def add_listener(self, callback: Callable[[JobEvent], Any], mask: int = EVENT_ALL) -> None:
        self._call(self._scheduler.add_listener, callback, mask)

    def remove_listener(self, callback: Callable[[JobEvent], Any]) -> None:
        self._call(self._scheduler.remove_listener, callback)

    def store_stats(self) -> dict[str, dict[str, Any]]:
        return self._call(self._scheduler.store_stats)
