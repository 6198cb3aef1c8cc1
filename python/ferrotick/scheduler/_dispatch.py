"""From the run queue to started runs: what is due is started (the common case
straight away, anything else through the due policy of ``_policy``), and a large
batch is prepared ahead of its instant behind one gate. A part of AsyncScheduler
(``_Dispatcher`` is one of its bases); the runs themselves are in ``_invoke``."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from ._job import EVENT_JOB_SUBMITTED, Job, is_stale
from ._policy import NOT_PLAIN, plain_next, plan
from .triggers import jitter_offset


class _Dispatcher:
    """The run queue's side of AsyncScheduler (its attributes are set there)."""

    _queue: Any
    _jobs: dict[str, Job]
    _tasks: dict[asyncio.Future[Any], Job | None]
    _loop: asyncio.AbstractEventLoop | None
    _listen_mask: int
    _gc_held: bool
    _gate: asyncio.Future[float] | None
    _gate_at: float | None

    # -- the queue ------------------------------------------------------------------

    def _compute_next(self, job: Job, after: float) -> None:
        self._set_next(job, job.trigger._next_unix(after))

    def _set_next(self, job: Job, nominal: float | None) -> None:
        """Moves the job on to the nominal fire time ``nominal`` (None: no more),
        run at that time plus the job's jitter, and queues it unless paused."""
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

    # -- due runs -------------------------------------------------------------------

    def _dispatch(self, now: float) -> None:
        """Starts every job due at ``now``."""
        due = self._queue.pop_due(now)
        if not due:
            return
        loop = self._loop
        assert loop is not None
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
            self._start(due, now, None)
            if gc_was_on:
                self._gc_held = True
                loop.call_soon(self._gc_resume)
                started = True
        finally:
            if gc_was_on and not started:
                gc.enable()

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
        gate: asyncio.Future[float] = loop.create_future()
        if gc.isenabled() and not self._gc_held:
            # (see _dispatch) on again once the gate opened and the first steps ran
            gc.disable()
            self._gc_held = True
        if self._start(due, end, gate):
            self._gate, self._gate_at = gate, end
        else:
            self._gc_resume()

    def _start(self, due: list[Any], horizon: float, gate: asyncio.Future[float] | None) -> int:
        """Starts the live entries of ``due`` (``(version, job)`` pairs) whose run
        time is at most ``horizon`` and returns how many runs of the common case
        it started. Without ``gate`` (dispatch at ``horizon`` = now) every one
        starts; with it (a batch prepared for ``horizon``), only the common case
        does, waiting on the gate, and the others go back to the queue."""
        loop = self._loop
        assert loop is not None
        jobs = self._jobs
        tasks = self._tasks
        execute = self._execute
        set_next = self._set_next
        Task = asyncio.Task
        # the loop's default task factory: asyncio.Task directly, without
        # loop.create_task's Python-level frame; a listener of submissions gets
        # its event from _launch
        plain_ok = loop.get_task_factory() is None and not self._listen_mask & EVENT_JOB_SUBMITTED
        made = 0
        for version, job in due:
            if is_stale(job, version, jobs):
                continue
            first = job._next_nominal
            if (
                plain_ok
                and first is not None
                and job._is_coro
                and not job._store.persistent
                and (after := plain_next(job, first, horizon)) is not NOT_PLAIN
            ):
                set_next(job, after)
                slot: list[asyncio.Future[Any]] = []
                if gate is None:
                    job._running += 1
                    task = Task(
                        execute(job, [first], None, slot, horizon), loop=loop, name=job._task_name
                    )
                    tasks[task] = job
                else:
                    task = Task(
                        execute(job, [first], None, slot, horizon, gate, job._version),
                        loop=loop,
                        name=job._task_name,
                    )
                    # None: not counted as running until its gate opens (stop()
                    # must not uncount it)
                    tasks[task] = None
                slot.append(task)
                made += 1
            elif gate is None:
                self._process_due(job, horizon)
            elif job._next_run is not None:
                self._queue.push(job._next_run, version, job)
        return made

    def _release(self, now: float) -> None:
        """Opens the prepared batch's gate: its tasks take their first steps in
        the loop's next pass, then the collector is turned back on."""
        gate, self._gate, self._gate_at = self._gate, None, None
        if gate is not None and not gate.done():
            gate.set_result(now)
        assert self._loop is not None
        self._loop.call_soon(self._gc_resume)

    def _gc_resume(self) -> None:
        """Turns the cyclic collector back on after a large batch (see
        _dispatch); stop() calls it too, should the loop stop before the
        callback ran."""
        if self._gc_held:
            self._gc_held = False
            gc.enable()

    def _process_due(self, job: Job, now: float) -> None:
        """Applies the due policy's plan for a job due at ``now``."""
        decision = plan(job, now)
        if decision is None:
            return
        runs, nominals, missed, busy, coalesced, next_nominal = decision
        if coalesced:
            job._coalesced += 1
        self._set_next(job, next_nominal)
        for scheduled, lateness in missed:
            self._missed(job, scheduled, lateness)
        if not runs:
            return
        if busy:
            self._skip_busy(job, runs)
            return
        self._launch(job, runs, nominals)
