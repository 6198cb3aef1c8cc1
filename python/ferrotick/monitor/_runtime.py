"""Loop-lag, task and memory monitors, and the health checker."""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from .. import _core
from ._metrics import REGISTRY, CollectorRegistry, Gauge, Histogram, _get_or_create

logger = logging.getLogger("ferrotick.monitor")

_LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _positive(name: str, v: float) -> float:
    if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
        raise _core.ConfigError(f"{name}: must be a positive number of seconds, got {v!r}")
    return float(v)


class LoopLagMonitor:
    """Measures how late the event loop runs a callback scheduled ``interval``
    seconds ahead (works on any loop, uvloop included), and samples the number of
    tasks alive on the loop.

    Metrics: ``ferrotick_event_loop_lag_seconds`` (histogram with percentiles),
    ``ferrotick_event_loop_lag_last_seconds`` and ``ferrotick_event_loop_tasks``
    (gauges), labelled by ``loop`` name.
    """

    def __init__(
        self,
        interval: float = 0.25,
        *,
        name: str = "main",
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.interval = _positive("interval", interval)
        self.name = name
        self._task: asyncio.Task[None] | None = None
        self._metrics = _lag_metrics(registry)
        self.lag = self._metrics[0].labels(name)
        self.last = self._metrics[1].labels(name)
        self.tasks = self._metrics[2].labels(name)

    async def start(self) -> None:
        await self.stop()
        loop = asyncio.get_running_loop()

        async def run() -> None:
            while True:
                t0 = loop.time()
                await asyncio.sleep(self.interval)
                lag = max(loop.time() - t0 - self.interval, 0.0)
                self.lag.observe(lag)
                self.last.set(lag)
                self.tasks.set(len(asyncio.all_tasks(loop)))

        self._task = loop.create_task(run(), name=f"ferrotick-loop-lag-{self.name}")

    start_monitoring = start

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    stop_monitoring = stop

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()


def _lag_metrics(registry: CollectorRegistry | None) -> tuple[Any, Any, Any]:
    # Looked up by name in the registry: several monitors share the metrics (one
    # series per loop name). A cache keyed by id(registry) would hand a new registry
    # that reuses a collected one's address metrics registered elsewhere.
    return (
        _get_or_create(
            registry,
            Histogram,
            "ferrotick_event_loop_lag_seconds",
            "How late the event loop ran a timer callback",
            ("loop",),
            buckets=_LAG_BUCKETS,
        ),
        _get_or_create(
            registry,
            Gauge,
            "ferrotick_event_loop_lag_last_seconds",
            "Last measured event loop lag",
            ("loop",),
        ),
        _get_or_create(
            registry,
            Gauge,
            "ferrotick_event_loop_tasks",
            "Tasks alive on the event loop",
            ("loop",),
        ),
    )


def get_memory_usage() -> dict[str, int]:
    """Resident set size and its peak, in bytes."""
    rss, peak = _core.process_memory()
    return {"rss_bytes": rss, "peak_rss_bytes": peak}


class MemoryMonitor:
    """Samples the process's resident memory (RSS) and its peak every ``interval``
    seconds into ``process_resident_memory_bytes`` and
    ``process_resident_memory_peak_bytes``; logs a warning above ``warn_bytes``."""

    def __init__(
        self,
        interval: float = 60.0,
        *,
        warn_bytes: int | None = None,
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.interval = _positive("interval", interval)
        self.warn_bytes = warn_bytes
        self._task: asyncio.Task[None] | None = None
        self.rss, self.peak = _memory_metrics(registry)
        self.samples = 0
        self.last: dict[str, int] = {}

    def sample(self) -> dict[str, int]:
        usage = get_memory_usage()
        self.rss.set(usage["rss_bytes"])
        self.peak.set(usage["peak_rss_bytes"])
        self.samples += 1
        self.last = usage
        if self.warn_bytes is not None and usage["rss_bytes"] > self.warn_bytes:
            logger.warning(
                "resident memory %d bytes is above %d", usage["rss_bytes"], self.warn_bytes
            )
        return usage

    async def start_monitoring(self) -> None:
        await self.stop_monitoring()
        self.sample()

        async def run() -> None:
            while True:
                await asyncio.sleep(self.interval)
                self.sample()

        self._task = asyncio.get_running_loop().create_task(run(), name="ferrotick-memory-monitor")

    async def stop_monitoring(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()


def _memory_metrics(registry: CollectorRegistry | None) -> tuple[Any, Any]:
    return (
        _get_or_create(
            registry,
            Gauge,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            (),
        ),
        _get_or_create(
            registry,
            Gauge,
            "process_resident_memory_peak_bytes",
            "Peak resident memory size in bytes",
            (),
        ),
    )


_memory_monitor: MemoryMonitor | None = None


def get_memory_monitor() -> MemoryMonitor:
    """The process-wide memory monitor."""
    global _memory_monitor
    if _memory_monitor is None:
        _memory_monitor = MemoryMonitor()
    return _memory_monitor


Check = Callable[[], Any]


class AsyncHealthChecker:
    """Named health checks run concurrently, each with a timeout.

    A check is an async or plain callable returning a truthy value when healthy; an
    exception or a timeout counts as unhealthy. ``await check_async_operations()``
    returns ``{name: bool}``; details of the last run are in ``last_details``.
    """

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = _positive("timeout", timeout)
        self._checks: dict[str, tuple[Check, float]] = {}
        self.last_details: dict[str, dict[str, Any]] = {}

    def add_check(self, name: str, check: Check, *, timeout: float | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise _core.ConfigError("name: a non-empty string is required")
        if not callable(check):
            raise TypeError("check: expected a callable")
        self._checks[name] = (
            check,
            _positive("timeout", timeout) if timeout is not None else self.timeout,
        )

    def check(
        self, name: str | None = None, *, timeout: float | None = None
    ) -> Callable[[Check], Check]:
        """Decorator form of ``add_check``."""

        def deco(fn: Check) -> Check:
            self.add_check(name or fn.__name__, fn, timeout=timeout)
            return fn

        return deco

    def remove_check(self, name: str) -> None:
        self._checks.pop(name, None)

    async def _run(
        self, name: str, check: Check, timeout: float
    ) -> tuple[str, bool, dict[str, Any]]:
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                if inspect.iscoroutinefunction(check):
                    result = await check()
                else:
                    result = await asyncio.to_thread(check)
                    if inspect.isawaitable(result):
                        result = await result
            ok = bool(result)
            detail: dict[str, Any] = {"ok": ok}
        except TimeoutError:
            ok, detail = False, {"ok": False, "error": f"timed out after {timeout}s"}
        except Exception as e:  # a failing check is a result, not an error of the checker
            ok, detail = False, {"ok": False, "error": f"{type(e).__name__}: {e}"}
        detail["seconds"] = time.perf_counter() - t0
        return name, ok, detail

    async def check_async_operations(self) -> dict[str, bool]:
        runs = await asyncio.gather(*(self._run(n, c, t) for n, (c, t) in self._checks.items()))
        self.last_details = {n: d for n, _, d in runs}
        return {n: ok for n, ok, _ in runs}

    async def check_health(self) -> dict[str, Any]:
        """``{"status": "healthy"|"unhealthy", "checks": {...}, "details": {...}}``."""
        checks = await self.check_async_operations()
        return {
            "status": "healthy" if all(checks.values()) else "unhealthy",
            "checks": checks,
            "details": self.last_details,
        }
