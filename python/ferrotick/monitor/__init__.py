"""ferrotick.monitor: metrics in Rust with a prometheus_client-compatible API, the
AsyncPerformanceMonitor of operations, loop-lag and memory monitors, a health checker
and exposition (Prometheus text, OpenMetrics, JSON, an HTTP server)."""

from __future__ import annotations

from . import _publishers as _publishers
from ._exposition import MetricsHandler, snapshot, start_http_server
from ._metrics import (
    CONTENT_TYPE_LATEST,
    CONTENT_TYPE_OPENMETRICS,
    DEFAULT_BUCKETS,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    choose_encoder,
    generate_latest,
    generate_openmetrics,
)
from ._perf import (
    AsyncPerformanceMonitor,
    get_async_monitor,
    track_async_function,
    track_operation,
)
from ._runtime import (
    AsyncHealthChecker,
    LoopLagMonitor,
    MemoryMonitor,
    get_memory_monitor,
    get_memory_usage,
)

# the HTTP client and the scheduler publish their figures at scrape time
REGISTRY.register(_publishers.collect)

__all__ = [
    "CONTENT_TYPE_LATEST",
    "CONTENT_TYPE_OPENMETRICS",
    "DEFAULT_BUCKETS",
    "REGISTRY",
    "AsyncHealthChecker",
    "AsyncPerformanceMonitor",
    "CollectorRegistry",
    "Counter",
    "Gauge",
    "Histogram",
    "LoopLagMonitor",
    "MemoryMonitor",
    "MetricsHandler",
    "Summary",
    "choose_encoder",
    "generate_latest",
    "generate_openmetrics",
    "get_async_monitor",
    "get_memory_monitor",
    "get_memory_usage",
    "snapshot",
    "start_http_server",
    "track_async_function",
    "track_operation",
]
