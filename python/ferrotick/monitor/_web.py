"""What the FastAPI and Flask integrations share: the HTTP request metrics and the
payloads of the monitoring endpoints. No web framework is imported here."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from ._exposition import _json_safe
from ._metrics import (
    DEFAULT_BUCKETS,
    REGISTRY,
    CollectorRegistry,
    Gauge,
    Histogram,
    _get_or_create,
    choose_encoder,
)

UNMATCHED_ROUTE = "<unmatched>"

# Methods outside this set are exposed as "OTHER": clients choose the method
# string, and every distinct label value is a new series.
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}
)


def normalize_method(method: str) -> str:
    m = method.upper()
    return m if m in _METHODS else "OTHER"


def http_metrics(
    registry: CollectorRegistry | None = REGISTRY,
    buckets: Sequence[float] = DEFAULT_BUCKETS,
    max_series: int = 1000,
) -> tuple[Histogram, Gauge]:
    """``http_request_duration_seconds{method,route,status}`` and
    ``http_requests_in_progress{method}`` on ``registry`` (reused when present)."""
    duration = _get_or_create(
        registry,
        Histogram,
        "http_request_duration_seconds",
        "Duration of HTTP requests by method, route template and status",
        ("method", "route", "status"),
        buckets=buckets,
        max_series=max_series,
    )
    in_progress = _get_or_create(
        registry,
        Gauge,
        "http_requests_in_progress",
        "HTTP requests being served, by method",
        ("method",),
    )
    return duration, in_progress


def render_metrics(registry: Any, accept: str | None, fmt: str | None = None) -> tuple[bytes, str]:
    """The body and content type of a scrape: OpenMetrics when the Accept header
    asks for it or ``fmt == "openmetrics"``, else the Prometheus text format.
    ``registry`` is anything with ``generate(openmetrics=...)`` (a CollectorRegistry
    or a MultiProcessCollector)."""
    if fmt == "openmetrics":
        accept = "application/openmetrics-text"
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


def render_json(registry: Any) -> dict[str, Any]:
    return _json_safe(registry.snapshot())


def performance_payload(monitor: Any, operation: str | None) -> dict[str, Any]:
    """The body of ``GET /async-performance``: the monitor's metrics, all of them or
    those of ``operation``."""
    return _json_safe(monitor.get_metrics(operation=operation))


def report_payload(monitor: Any) -> dict[str, Any]:
    """The body of ``POST /async-performance/report``: logs the report and returns it."""
    return {
        "status": "success",
        "message": "Async performance report generated",
        "metrics": _json_safe(monitor.report()),
    }


async def health_payload(checker: Any) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of ``GET /health``: 200 when every check passes, else 503."""
    if checker is None:
        return 200, {"status": "healthy", "checks": {}}
    result = _json_safe(await checker.check_health())
    return (200 if result.get("status") == "healthy" else 503), result


def health_payload_sync(checker: Any) -> tuple[int, dict[str, Any]]:
    """``health_payload`` from synchronous code (a Flask view): the checks run on a
    fresh event loop, in a helper thread when this thread already runs one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(health_payload(checker))
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(asyncio.run(health_payload(checker)))
        except BaseException as e:  # re-raised in the caller's thread
            out.append(e)

    t = threading.Thread(target=run, name="ferrotick-health")
    t.start()
    t.join()
    if isinstance(out[0], BaseException):
        raise out[0]
    return out[0]
