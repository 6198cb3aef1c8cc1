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

Lifespan (seed 000's in one line): ``FastAPI(lifespan=lifespan(container))``
initializes the ``ServiceContainer`` (kept in ``app.state.service_container``),
starts the memory monitor, the async performance reports (every
``report_interval`` seconds) and the schedulers (``schedulers=True``, ``False`` or
a list of names; the report scheduler needs ``db_factory``); at shutdown it stops
them in reverse, then the loop's managed tasks and the shared HTTP client. The
shutdown is shielded from cancellation and bounded by ``shutdown_timeout``.
``wrap=app_lifespan`` runs the app's own lifespan inside (after start, before
stop). In an app's own lifespan: ``async with ferrotick_lifespan(app): yield``.

Dependencies: ``Depends(get_container)``, ``Depends(get_service("db"))``,
``Depends(get_http_client)`` (the shared ``AsyncHTTPClient``) and
``Depends(get_task_manager)`` (the loop's ``TaskManager``).

This module imports FastAPI; ``import ferrotick`` does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
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

__all__ = [
    "MetricsMiddleware",
    "ferrotick_lifespan",
    "get_container",
    "get_http_client",
    "get_service",
    "get_task_manager",
    "lifespan",
    "metrics_router",
    "route_template",
]


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


# -- lifespan and dependencies -----------------------------------------------------------


@contextlib.asynccontextmanager
async def ferrotick_lifespan(
    app: Any,
    container: Any = None,
    *,
    schedulers: Any = True,
    monitors: bool = True,
    report_interval: float = 300.0,
    db_factory: Callable[[], Any] | None = None,
    shutdown_timeout: float = 30.0,
) -> AsyncIterator[Any]:
    """Starts and stops seed 000's services around the ``async with`` body (see the
    module doc); yields the ``ServiceContainer``."""
    from ._lifecycle import Stack
    from .container import ServiceContainer

    if container is None:
        container = getattr(app.state, "service_container", None) or ServiceContainer()
    app.state.service_container = container
    stack = Stack(container, schedulers, monitors, report_interval, db_factory, shutdown_timeout)
    await stack.start()
    try:
        yield container
    finally:
        await stack.stop()


def lifespan(
    container: Any = None,
    *,
    schedulers: Any = True,
    monitors: bool = True,
    report_interval: float = 300.0,
    db_factory: Callable[[], Any] | None = None,
    shutdown_timeout: float = 30.0,
    wrap: Callable[[Any], Any] | None = None,
) -> Callable[[Any], Any]:
    """A lifespan for ``FastAPI(lifespan=...)`` (see the module doc)."""

    @contextlib.asynccontextmanager
    async def _lifespan(app: Any) -> AsyncIterator[Any]:
        async with ferrotick_lifespan(
            app,
            container,
            schedulers=schedulers,
            monitors=monitors,
            report_interval=report_interval,
            db_factory=db_factory,
            shutdown_timeout=shutdown_timeout,
        ):
            if wrap is None:
                yield None
            else:
                async with wrap(app) as state:
                    yield state

    return _lifespan


def get_container(request: Request) -> Any:
    """Dependency: the app's ``ServiceContainer``."""
    container = getattr(request.app.state, "service_container", None)
    if container is None:
        from ._errors import ServiceContainerError

        raise ServiceContainerError(
            "no service container on app.state: use ferrotick.fastapi.lifespan"
        )
    return container


def get_service(name: str) -> Callable[[Request], Any]:
    """Dependency factory: ``Depends(get_service("db"))`` gives that service."""

    def dependency(request: Request) -> Any:
        return get_container(request).get(name)

    dependency.__name__ = f"service_{name}"
    return dependency


def get_http_client() -> Any:
    """Dependency: the shared ``AsyncHTTPClient``."""
    from .http import get_http_client as shared

    return shared()


async def get_task_manager() -> Any:
    """Dependency: the running loop's ``TaskManager`` (async, so that FastAPI
    resolves it on the loop rather than in its thread pool)."""
    from .tasks import get_task_manager as manager

    return manager()
