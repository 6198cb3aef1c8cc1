"""Seed 004's metric series for the pipeline, on an AsyncPerformanceMonitor.

``async_operation_duration_seconds{operation_type}``, ``active_async_tasks`` and
``async_errors_total{operation_type,error_type}`` are the performance monitor's own
series, so the pipeline's stages (``fetch``, ``resample``, ``indicators``,
``sinks``, ``stream_update``) show up in its reports and ``/async-performance``
beside the service's other operations.
"""

from __future__ import annotations

import threading
from typing import Any


class PipelineMetrics:
    """The stage timings and errors of one or more processors."""

    _by_registry: dict[int, tuple[Any, PipelineMetrics]] = {}
    _lock = threading.Lock()

    def __init__(self, monitor: Any) -> None:
        self.monitor = monitor
        self.durations = monitor.duration
        self.active = monitor.active
        self.errors = monitor.errors
        self._dur: dict[str, Any] = {}

    @classmethod
    def for_registry(cls, registry: Any = None, monitor: Any = None) -> PipelineMetrics:
        """On ``monitor`` when given; else the process-wide monitor (default
        registry), or one monitor per ``registry`` shared by the processors using it."""
        from ..monitor import AsyncPerformanceMonitor, get_async_monitor

        if monitor is not None:
            return cls(monitor)
        if registry is None:
            return cls(get_async_monitor())
        with cls._lock:
            hit = cls._by_registry.get(id(registry))
            if hit is not None and hit[0] is registry:
                return hit[1]
            m = cls(AsyncPerformanceMonitor(registry=registry))
            cls._by_registry[id(registry)] = (registry, m)
            return m

    def duration(self, operation: str, seconds: float) -> None:
        child = self._dur.get(operation)
        if child is None:
            child = self._dur[operation] = self.durations.labels(operation_type=operation)
        child.observe(seconds)

    def error(self, operation: str, e: BaseException) -> None:
        self.errors.labels(operation_type=operation, error_type=type(e).__name__).inc()
