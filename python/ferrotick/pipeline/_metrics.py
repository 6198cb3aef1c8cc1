"""Seed 004's metric series for the pipeline, created once per registry."""

from __future__ import annotations

import threading
from typing import Any


class PipelineMetrics:
    """``async_operation_duration_seconds{operation_type}``, ``active_async_tasks``
    and ``async_errors_total{operation_type,error_type}`` in one registry. Every
    processor using that registry shares them, as prometheus_client users share
    module-level metrics; on the default registry they are the process-wide
    ``AsyncPerformanceMonitor``'s, so pipeline stages show in its metrics too."""

    _by_registry: dict[int, tuple[Any, PipelineMetrics]] = {}
    _lock = threading.Lock()

    def __init__(self, registry: Any) -> None:
        from ..monitor import Counter, Gauge, Histogram

        self.registry = registry
        self.durations = Histogram(
            "async_operation_duration_seconds",
            "Duration of async operations",
            ["operation_type"],
            registry=registry,
        )
        self.active = Gauge("active_async_tasks", "Number of active async tasks", registry=registry)
        self.errors = Counter(
            "async_errors_total",
            "Total async operation errors",
            ["operation_type", "error_type"],
            registry=registry,
        )
        self._dur: dict[str, Any] = {}

    @classmethod
    def _of_monitor(cls, monitor: Any) -> PipelineMetrics:
        """The process-wide monitor's series: on the default registry the monitor
        already owns these three names (same types, same labels), so the pipeline
        records into them instead of registering a clashing second set."""
        m = cls.__new__(cls)
        m.registry = monitor.registry
        m.durations, m.active, m.errors = monitor.duration, monitor.active, monitor.errors
        m._dur = {}
        return m

    @classmethod
    def for_registry(cls, registry: Any = None) -> PipelineMetrics:
        from ..monitor import REGISTRY

        if registry is None:
            registry = REGISTRY
        with cls._lock:
            hit = cls._by_registry.get(id(registry))
            if hit is not None and hit[0] is registry:
                return hit[1]
            if registry is REGISTRY:
                from ..monitor import get_async_monitor

                m = cls._of_monitor(get_async_monitor())
            else:
                m = cls(registry)
            cls._by_registry[id(registry)] = (registry, m)
            return m

    def duration(self, operation: str, seconds: float) -> None:
        child = self._dur.get(operation)
        if child is None:
            child = self._dur[operation] = self.durations.labels(operation_type=operation)
        child.observe(seconds)

    def error(self, operation: str, e: BaseException) -> None:
        self.errors.labels(operation_type=operation, error_type=type(e).__name__).inc()
