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

The extension ``Ferrotick(app)`` (or ``Ferrotick().init_app(app)``) adds request
timing (``metrics=True``, as ``init_app``) and hosts ferrotick's async parts on one
background event-loop thread per process, started on first use (first request or
first ``run``), never at import: with gunicorn ``--preload`` each worker starts its
own loop and runtime after the fork. Plain views call ``ext.run(coro)`` (blocking
until the result) and the blocking twins (``client.get_sync``, ...); ``async def``
views run on that same loop, so shared clients and managed tasks persist across
requests. Given ``container=``, the loop's start initializes it (with
``monitors=``/``schedulers=`` as ``ferrotick.fastapi.lifespan``), and teardown
cleans it up.

Teardown runs at interpreter exit (``atexit``) and from gunicorn's ``worker_exit``
hook, which gunicorn calls in the worker on a graceful stop::

    # gunicorn.conf.py
    from ferrotick.flask import worker_exit  # noqa: F401  (gunicorn finds it by name)

No signal handler is installed: the server keeps its own.
"""

from __future__ import annotations

import atexit
import functools
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

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

__all__ = ["Ferrotick", "init_app", "metrics_blueprint", "shutdown_all", "worker_exit"]

T = TypeVar("T")

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


# -- the extension --------------------------------------------------------------------

_instances: weakref.WeakSet[Ferrotick] = weakref.WeakSet()
_atexit_lock = threading.Lock()
_atexit_registered = False


class Ferrotick:
    """Flask extension: request metrics and a per-process background loop (see the
    module doc)."""

    def __init__(
        self,
        app: Flask | None = None,
        *,
        metrics: bool = True,
        container: Any = None,
        monitors: bool = False,
        schedulers: Any = False,
        report_interval: float = 300.0,
        db_factory: Callable[[], Any] | None = None,
        shutdown_timeout: float = 30.0,
    ) -> None:
        from ._lifecycle import Stack
        from ._loop_thread import LoopThread

        self.metrics = metrics
        self.container = container
        self._stack = (
            Stack(container, schedulers, monitors, report_interval, db_factory, shutdown_timeout)
            if container is not None
            else None
        )
        self.shutdown_timeout = shutdown_timeout
        self._thread = LoopThread("ferrotick-flask-loop", self._on_start, self._on_stop)
        _instances.add(self)
        _register_atexit()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        app.extensions["ferrotick"] = self
        if self.metrics:
            init_app(app)
        # async def views run on the extension's loop (instead of a new loop per request)
        app.async_to_sync = self._async_to_sync  # type: ignore[method-assign]
        if self.container is not None:
            app.before_request(self._ensure_started)

    def _ensure_started(self) -> None:
        self._thread.loop()

    async def _on_start(self) -> None:
        if self._stack is not None:
            await self._stack.start()

    async def _on_stop(self) -> None:
        if self._stack is not None:
            await self._stack.stop()
        else:
            from ._lifecycle import Stack

            await Stack(None, False, False).stop_shared()

    @property
    def loop(self) -> Any:
        """This process's background loop (started on first use)."""
        return self._thread.loop()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Runs ``coro`` on the background loop; blocks this thread for its result."""
        return self._thread.run(coro, timeout)

    def _async_to_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def run_view(*args: Any, **kwargs: Any) -> Any:
            return self.run(func(*args, **kwargs))

        return run_view

    def shutdown(self) -> None:
        """Stops this process's loop after the teardown (container cleanup, managed
        tasks, shared clients). Safe to call more than once."""
        self._thread.stop(self.shutdown_timeout + 5.0)


def shutdown_all() -> None:
    """Shuts down every ``Ferrotick`` extension of this process."""
    for ext in list(_instances):
        ext.shutdown()


def worker_exit(server: Any, worker: Any) -> None:
    """gunicorn's ``worker_exit`` hook: import it into ``gunicorn.conf.py``."""
    shutdown_all()


def _register_atexit() -> None:
    global _atexit_registered
    with _atexit_lock:
        if not _atexit_registered:
            # registered after `import ferrotick`, so it runs before the runtime's
            # own exit handler (atexit runs last-in, first-out)
            atexit.register(shutdown_all)
            _atexit_registered = True
