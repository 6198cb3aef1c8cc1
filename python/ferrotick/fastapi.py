"""FastAPI / Starlette integration: a router with the monitoring endpoints and an
ASGI middleware timing every HTTP request.

```python
from fastapi import FastAPI
from ferrotick.fastapi import MetricsMiddleware, metrics_router

app = FastAPI()
app.add_middleware(MetricsMiddleware)          # registry=REGISTRY by default
app.include_router(metrics_router(health_checker=checker))
```

``metrics_router`` serves

* ``GET /metrics`` — Prometheus text, or OpenMetrics when the ``Accept`` header
  asks for it or with ``?format=openmetrics``;
* ``GET /metrics.json`` — the registry's JSON snapshot (with percentiles);
* ``GET /health`` — the ``AsyncHealthChecker``'s result: 200 when healthy, 503
  with the failing checks otherwise (200 with no checks when none is given);
* ``GET /async-performance?operation=`` — the ``AsyncPerformanceMonitor``'s
  ``get_metrics()``, optionally for one operation;
* ``POST /async-performance/report`` — logs the monitor's report and returns it.

``MetricsMiddleware`` records ``http_request_duration_seconds{method,route,status}``
(histogram) and ``http_requests_in_progress{method}`` (gauge). ``route`` is the
path template (``/items/{item_id}``), never the raw path; requests that match no
route share the label ``<unmatched>``, so scanners cannot create series. A request
whose client went away before a response started is recorded with status ``499``,
one that raised before responding with ``500``.

This module imports FastAPI; ``import ferrotick`` does not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from .monitor._metrics import DEFAULT_BUCKETS, REGISTRY, CollectorRegistry
from .monitor._web import (
    UNMATCHED_ROUTE,
    health_payload,
    http_metrics,
    normalize_method,
    performance_payload,
    render_json,
    render_metrics,
    report_payload,
)

__all__ = ["MetricsMiddleware", "metrics_router", "route_template"]


def _monitor(monitor: Any) -> Any:
    if monitor is not None:
        return monitor
    from .monitor import get_async_monitor

    return get_async_monitor()


def metrics_router(
    registry: Any = None,
    *,
    monitor: Any = None,
    health_checker: Any = None,
    prefix: str = "",
    tags: list[str] | None = None,
    include_in_schema: bool = True,
) -> APIRouter:
    """An ``APIRouter`` serving the monitoring endpoints (see the module doc).

    ``registry`` is a ``CollectorRegistry`` (``ferrotick.monitor.REGISTRY`` by
    default) or a ``MultiProcessCollector`` for the aggregated view of several
    workers. ``monitor`` defaults to the process-wide ``get_async_monitor()``."""
    reg = REGISTRY if registry is None else registry
    router = APIRouter(prefix=prefix, tags=list(tags) if tags else ["monitoring"])

    # Plain functions: FastAPI runs them in its thread pool, so rendering a large
    # registry (or reading the files of a multi-process view) never stalls the loop.
    def metrics(request: Request, format: str | None = Query(None)) -> Response:  # noqa: A002
        body, content_type = render_metrics(reg, request.headers.get("accept"), format)
        return Response(content=body, media_type=content_type)

    def metrics_json() -> JSONResponse:
        return JSONResponse(render_json(reg))

    async def health() -> JSONResponse:
        status, body = await health_payload(health_checker)
        return JSONResponse(body, status_code=status)

    async def async_performance(
        operation: str | None = Query(None, description="Filter by operation name"),
    ) -> JSONResponse:
        return JSONResponse(performance_payload(_monitor(monitor), operation))

    async def async_performance_report() -> JSONResponse:
        return JSONResponse(report_payload(_monitor(monitor)))

    router.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        response_class=Response,
        include_in_schema=include_in_schema,
        summary="Prometheus / OpenMetrics exposition",
    )
    router.add_api_route(
        "/metrics.json",
        metrics_json,
        methods=["GET"],
        include_in_schema=include_in_schema,
        summary="Metrics as JSON, with percentiles",
    )
    router.add_api_route(
        "/health",
        health,
        methods=["GET"],
        include_in_schema=include_in_schema,
        summary="Health checks (200 healthy, 503 unhealthy)",
    )
    router.add_api_route(
        "/async-performance",
        async_performance,
        methods=["GET"],
        include_in_schema=include_in_schema,
        summary="Async performance metrics",
    )
    router.add_api_route(
        "/async-performance/report",
        async_performance_report,
        methods=["POST"],
        include_in_schema=include_in_schema,
        summary="Trigger an async performance report",
    )
    return router


def route_template(scope: dict[str, Any], root_path: str = "") -> str | None:
    """The path template of the route that served ``scope`` (after routing), or
    None when no route matched.

    FastAPI >= 0.120 keeps included routers' routes unchanged and puts the full
    template (with the ``include_router`` prefixes) in its effective route context;
    older FastAPI and Starlette set ``scope["route"]`` to a route whose ``path`` is
    the full template. Routes inside a ``Mount`` get the mount's path in front."""
    route = scope.get("route")
    if route is None:
        return None
    template = None
    fastapi_scope = scope.get("fastapi")
    if isinstance(fastapi_scope, dict):
        ctx = fastapi_scope.get("effective_route_context")
        if ctx is not None and getattr(ctx, "original_route", route) is route:
            template = getattr(ctx, "path", None) or getattr(ctx, "path_format", None)
    if not template:
        template = getattr(route, "path", None) or getattr(route, "path_format", None)
    if not isinstance(template, str):
        return None
    mounted = scope.get("root_path", "")
    if isinstance(mounted, str) and mounted != root_path and mounted.startswith(root_path):
        template = mounted[len(root_path) :] + template
    return template


class MetricsMiddleware:
    """Pure ASGI middleware timing each HTTP request (see the module doc).

    ``app.add_middleware(MetricsMiddleware, registry=..., buckets=...)``. Several
    instances on one registry share the same two metrics. ``exclude_routes`` lists
    templates not to record (for example ``["/metrics"]``)."""

    def __init__(
        self,
        app: Any,
        registry: CollectorRegistry | None = REGISTRY,
        *,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        unmatched_route: str = UNMATCHED_ROUTE,
        exclude_routes: Iterable[str] = (),
        max_series: int = 1000,
    ) -> None:
        self.app = app
        self.duration, self.in_progress = http_metrics(registry, buckets, max_series)
        self.unmatched_route = unmatched_route
        self.exclude_routes = frozenset(exclude_routes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = normalize_method(scope.get("method", "GET"))
        root_path = scope.get("root_path", "")
        status: int | None = None

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        gauge = self.in_progress.labels(method)
        gauge.inc()
        start = time.perf_counter()
        outcome = 500
        try:
            await self.app(scope, receive, send_wrapper)
        except asyncio.CancelledError:
            outcome = 499  # the client went away (nginx's "client closed request")
            raise
        finally:
            elapsed = time.perf_counter() - start
            gauge.dec()
            route = route_template(scope, root_path) or self.unmatched_route
            if route not in self.exclude_routes:
                code = str(status if status is not None else outcome)
                self.duration.labels(method, route, code).observe(elapsed)
