"""Flask integration: a blueprint with the monitoring endpoints and request timing.

```python
from flask import Flask
from ferrotick.flask import init_app, metrics_blueprint

app = Flask(__name__)
init_app(app)                                   # registry=REGISTRY by default
app.register_blueprint(metrics_blueprint(health_checker=checker))
```

The blueprint serves the same endpoints as ``ferrotick.fastapi.metrics_router``:
``GET /metrics`` (Prometheus text, OpenMetrics by ``Accept`` header or
``?format=openmetrics``), ``GET /metrics.json``, ``GET /health`` (200 healthy, 503
unhealthy), ``GET /async-performance?operation=`` and
``POST /async-performance/report``. Views are synchronous; the health checks of an
``AsyncHealthChecker`` run on a fresh event loop for each request, so a check must
not depend on a loop of its own.

``init_app`` records ``http_request_duration_seconds{method,route,status}`` and
``http_requests_in_progress{method}``, with ``route`` the URL rule
(``/items/<int:item_id>``) and ``<unmatched>`` for requests no rule matched.

This module imports Flask; ``import ferrotick`` does not.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request

from .monitor._metrics import DEFAULT_BUCKETS, REGISTRY, CollectorRegistry
from .monitor._web import (
    UNMATCHED_ROUTE,
    health_payload_sync,
    http_metrics,
    normalize_method,
    performance_payload,
    render_json,
    render_metrics,
    report_payload,
)

__all__ = ["init_app", "metrics_blueprint"]

_EXTENSION = "ferrotick_metrics"


def _monitor(monitor: Any) -> Any:
    if monitor is not None:
        return monitor
    from .monitor import get_async_monitor

    return get_async_monitor()


def metrics_blueprint(
    registry: Any = None,
    *,
    monitor: Any = None,
    health_checker: Any = None,
    name: str = "ferrotick_metrics",
    url_prefix: str | None = None,
) -> Blueprint:
    """A ``Blueprint`` serving the monitoring endpoints (see the module doc).

    ``registry`` is a ``CollectorRegistry`` (``ferrotick.monitor.REGISTRY`` by
    default) or a ``MultiProcessCollector``; ``monitor`` defaults to the
    process-wide ``get_async_monitor()``. ``name`` must differ between two
    blueprints registered on one app."""
    reg = REGISTRY if registry is None else registry
    bp = Blueprint(name, __name__, url_prefix=url_prefix)

    @bp.get("/metrics")
    def metrics() -> Response:
        body, content_type = render_metrics(
            reg, request.headers.get("Accept"), request.args.get("format")
        )
        return Response(body, status=200, content_type=content_type)

    @bp.get("/metrics.json")
    def metrics_json() -> Response:
        return jsonify(render_json(reg))

    @bp.get("/health")
    def health() -> tuple[Response, int]:
        status, body = health_payload_sync(health_checker)
        return jsonify(body), status

    @bp.get("/async-performance")
    def async_performance() -> Response:
        return jsonify(performance_payload(_monitor(monitor), request.args.get("operation")))

    @bp.post("/async-performance/report")
    def async_performance_report() -> Response:
        return jsonify(report_payload(_monitor(monitor)))

    return bp


def init_app(
    app: Flask,
    registry: CollectorRegistry | None = REGISTRY,
    *,
    buckets: Sequence[float] = DEFAULT_BUCKETS,
    unmatched_route: str = UNMATCHED_ROUTE,
    exclude_routes: Iterable[str] = (),
    max_series: int = 1000,
) -> None:
    """Times every request of ``app`` (see the module doc). Calling it again on the
    same app does nothing; apps sharing a registry share the metrics."""
    if _EXTENSION in app.extensions:
        return
    duration, in_progress = http_metrics(registry, buckets, max_series)
    excluded = frozenset(exclude_routes)
    app.extensions[_EXTENSION] = {"duration": duration, "in_progress": in_progress}

    @app.before_request
    def _ferrotick_start() -> None:
        method = normalize_method(request.method)
        gauge = in_progress.labels(method)
        gauge.inc()
        g._ferrotick_timing = (time.perf_counter(), method, gauge)

    @app.after_request
    def _ferrotick_status(response: Response) -> Response:
        g._ferrotick_status = response.status_code
        return response

    @app.teardown_request
    def _ferrotick_record(exc: BaseException | None) -> None:
        timing = g.pop("_ferrotick_timing", None)
        if timing is None:  # an earlier before_request handler failed
            return
        start, method, gauge = timing
        elapsed = time.perf_counter() - start
        gauge.dec()
        rule = request.url_rule
        route = rule.rule if rule is not None else unmatched_route
        if route in excluded:
            return
        status = g.pop("_ferrotick_status", None)
        if status is None:
            status = 500
        duration.labels(method, route, str(status)).observe(elapsed)
