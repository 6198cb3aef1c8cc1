"""BackgroundScheduler: an AsyncScheduler on its own event-loop thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

from .._core import SchedulerError
from ._job import EVENT_ALL, Job, JobEvent
from ._scheduler import AsyncScheduler


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
