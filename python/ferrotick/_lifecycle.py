"""Seed 000's service start and stop, shared by the FastAPI lifespan and the Flask
extension.

Start: the container's ``initialize()``, the memory monitor, the async performance
monitor's reports, then the schedulers. Stop, in reverse: schedulers, container
cleanup, memory monitor, performance reports, the loop's managed tasks, the shared
HTTP client and batcher. Every stop step runs even when an earlier one failed, and
each is logged on ``ferrotick.lifecycle`` so that the order can be checked from the
logs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("ferrotick.lifecycle")


@dataclasses.dataclass
class Stack:
    """What one application started."""

    container: Any
    schedulers: Any = True
    monitors: bool = True
    report_interval: float = 300.0
    db_factory: Callable[[], Any] | None = None
    shutdown_timeout: float = 30.0
    started: list[str] = dataclasses.field(default_factory=list)

    async def start(self) -> None:
        try:
            await self._start_steps()
        except BaseException:
            logger.error("startup failed; stopping what started")
            await self.stop()
            raise
        logger.info("service initialization complete")

    async def _start_steps(self) -> None:
        await self.container.initialize()
        self.started.append("container")
        logger.info("service container initialized")
        if self.monitors:
            from .monitor import get_async_monitor, get_memory_monitor

            await get_memory_monitor().start_monitoring()
            self.started.append("memory")
            logger.info("memory monitoring started")
            await get_async_monitor().start_reporting(interval=self.report_interval)
            self.started.append("performance")
            logger.info("async performance monitoring started")
        if self.schedulers is not False:
            from .scheduler._factory import initialize_schedulers

            await initialize_schedulers(
                self.container, db_factory=self.db_factory, names=self.schedulers
            )
            self.started.append("schedulers")

    async def stop(self) -> None:
        """Runs every stop step, shielded from cancellation, within shutdown_timeout."""
        task = asyncio.ensure_future(self._stop_steps())
        try:
            await _shielded(task, self.shutdown_timeout)
        except TimeoutError:
            logger.error("shutdown did not finish within %ss", self.shutdown_timeout)

    async def _stop_steps(self) -> None:
        started = set(self.started)
        self.started.clear()
        for step, label, run in self._steps():
            if step is None or step in started:
                await _step(label, run)
        logger.info("service shutdown complete")

    def _steps(self) -> list[tuple[str | None, str, Callable[[], Any]]]:
        from ._async_utils import cleanup_async_utils
        from .tasks import shutdown_task_managers

        return [
            ("schedulers", "schedulers stopped", self._stop_schedulers),
            ("container", "service container cleaned up", lambda: self.container.cleanup()),
            ("memory", "memory monitoring stopped", _stop_memory),
            ("performance", "async performance monitoring stopped", _stop_reports),
            (None, "managed tasks stopped", shutdown_task_managers),
            (None, "shared clients closed", cleanup_async_utils),
        ]

    async def stop_shared(self) -> None:
        """Only the steps that need no container: managed tasks, shared clients."""
        for step, label, run in self._steps():
            if step is None:
                await _step(label, run)

    async def _stop_schedulers(self) -> None:
        from .scheduler._factory import cleanup_schedulers

        await cleanup_schedulers(self.container)


async def _stop_memory() -> None:
    from .monitor import get_memory_monitor

    await get_memory_monitor().stop_monitoring()


async def _stop_reports() -> None:
    from .monitor import get_async_monitor

    await get_async_monitor().stop_reporting()


async def _step(label: str, run: Callable[[], Any]) -> None:
    try:
        await run()
    except Exception:  # logged; the next step still runs
        logger.exception("shutdown step failed before: %s", label)
        return
    logger.info(label)


async def _shielded(task: asyncio.Future[Any], timeout: float) -> None:
    """Waits for ``task`` up to ``timeout`` seconds even if the waiter is cancelled
    (a second Ctrl-C during shutdown), then re-raises that cancellation."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    cancelled = False
    while not task.done():
        left = deadline - loop.time()
        if left <= 0:
            task.cancel()
            raise TimeoutError
        try:
            await asyncio.wait_for(asyncio.shield(task), left)
        except asyncio.CancelledError:
            cancelled = True
        except TimeoutError:
            task.cancel()
            raise
    task.result()
    if cancelled:
        raise asyncio.CancelledError
