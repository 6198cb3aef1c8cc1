"""AsyncScheduler: the API (jobs, listeners, start and stop) and the timer loop.

The rest of the class lives beside it, one concern per module, as its bases:
``_dispatch`` (from the run queue to started runs, with the due policy of
``_policy``), ``_invoke`` (the runs and their outcomes) and ``_leases`` (persistent
job stores: adoption, claims). Jobs and events are in ``_job``; the thread-hosted
BackgroundScheduler in ``_background``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import operator
import os
import socket
import uuid
from collections.abc import Callable
from typing import Any

from .. import _core
from .._core import ConfigError, SchedulerError
from .._validate import integer, seconds
from ._clock import ManualClock, RealClock, _LoopTimer
from ._dispatch import _Dispatcher
from ._invoke import _Invoker
from ._job import (
    _JOB_OPTIONS,
    EVENT_ALL,
    Job,
    JobEvent,
    _first_after,
    _is_coroutine_callable,
    _job_option,
    is_stale,
)
from ._leases import _Leases
from ._serialize import resolve_ref
from ._stores import BaseJobStore, MemoryJobStore
from ._tz import from_unix, get_zone, to_unix
from .triggers import BaseTrigger, CronTrigger, DateTrigger, IntervalTrigger

logger = logging.getLogger("ferrotick.scheduler")

_UNDEFINED: Any = object()


_STORE_POLICIES = ("skip", "run_local")


class AsyncScheduler(_Dispatcher, _Invoker, _Leases):
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
    # runs is prepared ahead of it (see _Dispatcher._prepare): the timer expires
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
        # removes itself when it ends (see _Invoker._execute)
        self._tasks: dict[asyncio.Future[Any], Job | None] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._sleep: Any = None
        # re-arms the timerfd for the earliest run time (see _run_on_timer)
        self._rearm: Callable[[], None] | None = None
        # the cyclic collector is off until a large batch's jobs started
        self._gc_held = False
        self._rescheduled = False
        # a prepared batch (see _Dispatcher._prepare): its gate, the instant it
        # opens, and the batch end the next expiry prepares for
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

    def scheduled_job(
        self, trigger: Any = None, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of ``add_job``."""

        def deco(func: Callable[..., Any]) -> Callable[..., Any]:
            self.add_job(func, trigger, **kwargs)
            return func

        return deco

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
        self._store_write(job, "remove", job.id)

    def remove_all_jobs(self) -> None:
        for job in self._jobs.values():
            job._version += 1
            self._store_write(job, "remove", job.id)
        self._jobs.clear()
        self._queue.clear()

    def pause_job(self, job_id: str) -> Job:
        job = self._job(job_id)
        job.paused = True
        job._version += 1
        self._store_write(job, "update", job.id, paused=True)
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
            self._store_write(job, "update", job.id, paused=False, next_fire=job._next_nominal)
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

    async def stop(self, wait: bool = True, timeout: float | None = None) -> None:  # noqa: C901 (the shutdown sequence in its order: timer, prepared batches, running jobs, stores, executors)
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
            if is_stale(job, version, jobs):
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
