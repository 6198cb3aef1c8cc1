"""AsyncPerformanceMonitor: the duration, errors and cancellations of named
operations, on the Rust registry.

Operations are recorded into four metrics:

* ``async_operation_duration_seconds{operation_type}`` — histogram with percentiles;
* ``async_errors_total{operation_type,error_type}`` — errors per exception type;
* ``async_operations_cancelled_total{operation_type}`` — cancellations, which are
  not errors;
* ``active_async_tasks`` — operations in flight.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar, overload

from .. import _core
from ._metrics import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

logger = logging.getLogger("ferrotick.monitor")

F = TypeVar("F", bound=Callable[..., Any])


class _NullTracker:
    __slots__ = ()

    def __enter__(self) -> _NullTracker:
        return self

    def __exit__(self, *exc: object) -> bool:
        return False

    async def __aenter__(self) -> _NullTracker:
        return self

    async def __aexit__(self, *exc: object) -> bool:
        return False

    def start(self) -> None:
        return None

    def ok(self) -> bool:
        return False

    def fail(self, exc: BaseException) -> bool:
        return False


_NULL = _NullTracker()


def _clean(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


class AsyncPerformanceMonitor:
    """Tracks the duration, errors and cancellations of named async operations.

    ``AsyncPerformanceMonitor.get_instance()`` (or ``get_async_monitor()``) returns the
    process-wide monitor, whose metrics are in the default registry. A monitor
    created directly gets a registry of its own (``monitor.registry``).
    """

    _instance: AsyncPerformanceMonitor | None = None
    _instance_lock = threading.Lock()

    @classmethod
    def get_instance(cls) -> AsyncPerformanceMonitor:
        if cls._instance is None:
            with cls._instance_lock:
                if cls._instance is None:
                    cls._instance = cls(registry=REGISTRY)
        return cls._instance

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        buckets: Any = None,
        window_minutes: int = 5,
        max_operations: int = 1000,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.enabled = True
        self.report_interval = 3600.0
        self._reporting_task: asyncio.Task[None] | None = None
        opts: dict[str, Any] = {"window_minutes": window_minutes, "max_series": max_operations}
        if buckets is not None:
            opts["buckets"] = buckets
        self.duration = Histogram(
            "async_operation_duration_seconds",
            "Duration of async operations",
            ["operation_type"],
            registry=self.registry,
            **opts,
        )
        self.errors = Counter(
            "async_errors_total",
            "Total async operation errors",
            ["operation_type", "error_type"],
            registry=self.registry,
            max_series=max_operations * 10,
        )
        self.cancelled = Counter(
            "async_operations_cancelled_total",
            "Async operations cancelled (not counted as errors)",
            ["operation_type"],
            registry=self.registry,
            max_series=max_operations,
        )
        self.active = Gauge(
            "active_async_tasks", "Number of active async tasks", registry=self.registry
        )
        self._ops = _core.OperationMetrics(
            self.duration._core, self.errors._core, self.cancelled._core, self.active._core
        )

    # -- tracking ---------------------------------------------------------------------

    def track_operation(self, operation_name: str) -> Any:
        """``async with monitor.track_operation("name"):`` (``with`` works too)."""
        if not self.enabled:
            return _NULL
        return self._ops.track(operation_name)

    @overload
    def track_async_function(self, func: F) -> F: ...

    @overload
    def track_async_function(
        self, func: None = None, *, name: str | None = None
    ) -> Callable[[F], F]: ...

    def track_async_function(self, func: Any = None, *, name: str | None = None) -> Any:
        """Decorator timing each call's awaited work; the function stays a coroutine
        function. Usable bare (``@monitor.track_async_function``) or with ``name=``.
        Plain functions get a synchronous wrapper."""

        def decorate(f: F) -> F:
            op = name or f"{f.__module__}.{f.__qualname__}"
            track = self._ops.track
            monitor = self
            if inspect.iscoroutinefunction(f):

                @functools.wraps(f)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    if not monitor.enabled:
                        return await f(*args, **kwargs)
                    t = track(op)
                    t.start()
                    try:
                        result = await f(*args, **kwargs)
                    except BaseException as e:
                        t.fail(e)
                        raise
                    t.ok()
                    return result

                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(f)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if not monitor.enabled:
                    return f(*args, **kwargs)
                t = track(op)
                t.start()
                try:
                    result = f(*args, **kwargs)
                except BaseException as e:
                    t.fail(e)
                    raise
                t.ok()
                return result

            return wrapper  # type: ignore[return-value]

        if func is not None:
            return decorate(func)
        return decorate

    track_function = track_async_function

    # -- reading ----------------------------------------------------------------------

    def _operations(self) -> dict[str, dict[str, Any]]:
        ops: dict[str, dict[str, Any]] = {}
        for (op,), child in self.duration._core.children():
            s = child.summary()
            window = s.get("window", {})
            ops[op] = {
                "count": s["count"],
                "success_count": s["count"],
                "error_count": 0,
                "cancelled_count": 0,
                "error_types": {},
                "total_time": s["sum"],
                "avg_time": _clean(s.get("mean", math.nan)),
                "min_time": _clean(s.get("min", math.nan)),
                "max_time": _clean(s.get("max", math.nan)),
                "p50": _clean(s.get("p50", math.nan)),
                "p90": _clean(s.get("p90", math.nan)),
                "p99": _clean(s.get("p99", math.nan)),
                "p999": _clean(s.get("p999", math.nan)),
                "window": {k: _clean(v) if isinstance(v, float) else v for k, v in window.items()},
            }
        for (op, etype), child in self.errors._core.children():
            d = ops.setdefault(
                op,
                {
                    "count": 0,
                    "success_count": 0,
                    "error_count": 0,
                    "cancelled_count": 0,
                    "error_types": {},
                },
            )
            n = int(child.get())
            d["error_count"] += n
            d["error_types"][etype] = d["error_types"].get(etype, 0) + n
        for (op,), child in self.cancelled._core.children():
            d = ops.setdefault(
                op,
                {
                    "count": 0,
                    "success_count": 0,
                    "error_count": 0,
                    "cancelled_count": 0,
                    "error_types": {},
                },
            )
            d["cancelled_count"] += int(child.get())
        for d in ops.values():
            d["success_count"] = max(d["count"] - d["error_count"] - d["cancelled_count"], 0)
            d["error_rate"] = d["error_count"] / d["count"] if d["count"] else 0.0
        return ops

    def get_metrics(self, operation: str | None = None) -> dict[str, Any]:
        """Per-operation metrics: counts, error types, durations and percentiles
        (cumulative and over the sliding window). With ``operation``, that one only
        (an empty dict when it was never tracked)."""
        ops = self._operations()
        if operation is not None:
            return ops.get(operation, {})
        return ops

    @property
    def in_flight(self) -> int:
        return int(self._ops.in_flight)

    def report(self) -> dict[str, Any]:
        """Logs a summary of every operation (INFO) and returns the metrics."""
        ops = self._operations()
        for name, m in sorted(ops.items()):
            logger.info(
                "operation %s: count=%d errors=%d cancelled=%d avg=%s p50=%s p99=%s max=%s",
                name,
                m["count"],
                m["error_count"],
                m["cancelled_count"],
                _fmt(m.get("avg_time")),
                _fmt(m.get("p50")),
                _fmt(m.get("p99")),
                _fmt(m.get("max_time")),
            )
        return {"operations": ops, "in_flight": self.in_flight}

    async def start_reporting(self, interval: float = 3600.0) -> None:
        """Logs a report every ``interval`` seconds on the running loop."""
        if not (isinstance(interval, (int, float)) and interval > 0 and math.isfinite(interval)):
            raise _core.ConfigError(
                f"interval: must be a positive number of seconds, got {interval!r}"
            )
        await self.stop_reporting()
        self.report_interval = float(interval)

        async def run() -> None:
            while True:
                await asyncio.sleep(self.report_interval)
                try:
                    self.report()
                except Exception:  # a report must never kill the reporter
                    logger.exception("performance report failed")

        self._reporting_task = asyncio.get_running_loop().create_task(
            run(), name="ferrotick-perf-report"
        )

    async def stop_reporting(self) -> None:
        task, self._reporting_task = self._reporting_task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    def reset(self) -> None:
        """Forgets every recorded operation."""
        self.duration.clear()
        self.errors.clear()
        self.cancelled.clear()


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v * 1e3:.3f}ms"


def get_async_monitor() -> AsyncPerformanceMonitor:
    """The process-wide AsyncPerformanceMonitor."""
    return AsyncPerformanceMonitor.get_instance()


def track_operation(operation_name: str) -> Any:
    """``async with track_operation("name"):`` on the process-wide monitor."""
    return get_async_monitor().track_operation(operation_name)


def track_async_function(func: Any = None, *, name: str | None = None) -> Any:
    """``@track_async_function`` / ``@track_async_function(name="op")`` on the
    process-wide monitor."""
    return get_async_monitor().track_async_function(func, name=name)
