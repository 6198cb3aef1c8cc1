"""The runs of jobs: the task of one launch (claims first for a job of a persistent
store, then each run: timed, called, counted as a success or a failure, and its
instance slot given back), and the outcomes that are counted, logged and reported to
listeners (executed, error, missed, skipped, submitted). A part of AsyncScheduler
(``_Invoker`` is one of its bases)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import time
import traceback
from typing import Any

from ._job import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    Job,
    JobEvent,
    is_stale,
)
from ._tz import from_unix

logger = logging.getLogger("ferrotick.scheduler")


class _Invoker:
    """The running side of AsyncScheduler (its attributes are set there)."""

    _jobs: dict[str, Job]
    _tasks: dict[asyncio.Future[Any], Job | None]
    _loop: asyncio.AbstractEventLoop | None
    _executor: concurrent.futures.ThreadPoolExecutor | None
    _listen_mask: int
    _clock: Any

    def _launch(self, job: Job, runs: list[float], nominals: list[float]) -> None:
        """Starts one instance of ``job`` running the fire times ``runs`` (their
        nominal times ``nominals``) one after the other."""
        loop = self._loop
        assert loop is not None
        job._running += 1
        # the job's task, for the job to remove itself from _tasks when it ends
        # (cheaper than a done-callback, one more loop callback per run, or
        # asyncio.current_task())
        slot: list[asyncio.Future[Any]] = []
        if job._store.persistent:
            # submitted once its firings are claimed (see _execute)
            coro = self._execute(job, runs, nominals, slot)
        else:
            if self._listen_mask & EVENT_JOB_SUBMITTED:
                self._submitted(job, runs)
            coro = self._execute(job, runs, None, slot)
        if loop.get_task_factory() is None:
            # what loop.create_task does then, without its Python-level frame
            task: asyncio.Future[Any] = asyncio.Task(coro, loop=loop, name=job._task_name)
        else:
            task = loop.create_task(coro, name=job._task_name)
        if not task.done():  # an eager task factory (3.12+) may have run it to the end
            slot.append(task)
            self._tasks[task] = job

    async def _execute(
        self,
        job: Job,
        runs: list[float],
        nominals: list[float] | None,
        slot: list[asyncio.Future[Any]],
        started: float | None = None,
        gate: asyncio.Future[float] | None = None,
        version: int = 0,
    ) -> None:
        """The task of one instance of ``job``: runs the fire times ``runs`` one
        after the other. With ``nominals`` (a job of a persistent store) it
        claims them first and runs the ones it won, recording each in the store.
        ``started`` is the instant the first run counts as started at (by
        default the clock's time when it starts). A prepared run (``gate``, see
        _Dispatcher._prepare) waits for the gate, which gives that instant, and
        runs only if its job's queue entry (``version``) is still live and
        max_instances allows it then; it counts itself as running only from
        then on. The instance's slot is given back and its task forgotten
        however it ends."""
        held = gate is None
        try:
            if gate is not None:
                started = await gate
                if is_stale(job, version, self._jobs):
                    return
                if job._running >= job.max_instances:
                    self._skip_busy(job, runs)
                    return
                job._running += 1
                held = True
            if nominals is not None:
                won = await self._claim(job, nominals, runs)
                if won and self._listen_mask & EVENT_JOB_SUBMITTED:
                    self._submitted(job, [scheduled for _, scheduled in won])
                nominals = [nominal for nominal, _ in won]
                runs = [scheduled for _, scheduled in won]
            perf_counter = time.perf_counter
            for i, scheduled in enumerate(runs):
                job._last_run = self._clock.now() if started is None else started
                started = None
                start = perf_counter()
                try:
                    if job._is_coro:
                        result = await job.func(*job.args, **job.kwargs)
                    else:
                        call = functools.partial(job.func, *job.args, **job.kwargs)
                        assert self._loop is not None and self._executor is not None
                        result = await self._loop.run_in_executor(self._executor, call)
                except Exception as e:
                    duration = perf_counter() - start
                    self._failed(job, scheduled, e, duration)
                    error = True
                else:
                    duration = perf_counter() - start
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
                    error = False
                if nominals is not None:
                    self._report(job, nominals[i], duration, error)
        finally:
            if held:
                job._running -= 1
            if slot:
                self._tasks.pop(slot[0], None)

    # -- outcomes -------------------------------------------------------------------

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

    def _missed(self, job: Job, scheduled: float, lateness: float) -> None:
        """Counts, logs and reports a run later than misfire_grace_time."""
        job._misses += 1
        tz = job.trigger.timezone
        logger.warning(
            "job %r missed its run at %s by %.3fs (misfire_grace_time=%s)",
            job.name,
            from_unix(scheduled, tz).isoformat(),
            lateness,
            job.misfire_grace_time,
        )
        self._emit(JobEvent(EVENT_JOB_MISSED, job.id, from_unix(scheduled, tz)))

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

    def _submitted(self, job: Job, runs: list[float]) -> None:
        tz = job.trigger.timezone
        times = [from_unix(t, tz) for t in runs]
        self._emit(JobEvent(EVENT_JOB_SUBMITTED, job.id, times[0], scheduled_run_times=times))
