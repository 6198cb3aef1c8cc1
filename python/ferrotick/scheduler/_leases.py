"""Leases and store adoption: a job of a persistent store is written to it (or
takes over the stored job of its id and that job's run state), kept in step with
changes made here, and claims each firing before it runs, so that one process runs
it; a finished run is recorded in the store. A part of AsyncScheduler (``_Leases``
is one of its bases)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .._core import SchedulerError
from ._job import EVENT_JOB_MISSED, Job, JobEvent
from ._serialize import (
    callable_ref,
    dump_value,
    load_value,
    resolve_ref,
    same_definition,
    trigger_desc,
    trigger_from_desc,
)
from ._stores import BaseJobStore, ClaimResult
from ._tz import from_unix
from .triggers import IntervalTrigger, jitter_offset

logger = logging.getLogger("ferrotick.scheduler")


class _Leases:
    """The job-store side of AsyncScheduler (its attributes are set there)."""

    _jobs: dict[str, Job]
    _stores: dict[str, BaseJobStore]
    _store_chain: dict[int, asyncio.Future[Any]]
    _loop: asyncio.AbstractEventLoop | None
    _owner: str
    on_store_error: str
    running: bool
    _clock: Any

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
                job._store.replace(job.id, job._definition, job._next_nominal, job.paused),
            )

    async def _persist(self, job: Job, stored: Any = None) -> None:
        """Puts a job added in this process into its store, or adopts the stored
        job of the same id: the same definition keeps the stored run state (and an
        implicit interval anchor), a different one needs replace_existing."""
        store = job._store
        assert job._definition is not None
        if stored is None:
            created, definition, state = await store.add(
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
            await store.replace(job.id, job._definition, job._next_nominal, job.paused)
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

    def _report(self, job: Job, nominal: float, duration: float, error: bool) -> None:
        """Records a finished run in the store (not awaited by the job)."""
        if job._persisted and job._last_run is not None:
            fut = asyncio.ensure_future(
                job._store.complete(job.id, nominal, job._last_run, duration, error)
            )
            fut.add_done_callback(_consume)

    async def _claim(  # noqa: C901 (each claim outcome (won, lost, store down, lease expired) handled where the claim returns)
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
        if any(not isinstance(r, BaseException) and r[0] == ClaimResult.RESET for r in results):
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
            if code == ClaimResult.WON:
                won.append((nominal, scheduled))
            elif code == ClaimResult.TAKEN:
                job._claimed_elsewhere += 1
                logger.debug(
                    "job %r: firing at %s claimed by another process %s",
                    job.name,
                    from_unix(scheduled, trigger.timezone).isoformat(),
                    holder,
                )
            elif code == ClaimResult.PAUSED:
                logger.debug("job %r is paused in its job store", job.name)
            elif code == ClaimResult.GONE:
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
                job._store.claim(job.id, n, self._owner, lease, trigger._next_unix(n))
                for n in nominals
            ),
            return_exceptions=True,
        )


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # counted and logged by the store
