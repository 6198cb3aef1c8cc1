"""JSON snapshots and a standalone HTTP server for scrapes."""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from ._metrics import REGISTRY, CollectorRegistry, choose_encoder


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("+Inf" if v > 0 else "-Inf")
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def snapshot(registry: CollectorRegistry = REGISTRY) -> dict[str, Any]:
    """Every metric with its series and percentiles, ready for ``json.dumps``."""
    return _json_safe(registry.snapshot())


class MetricsHandler(BaseHTTPRequestHandler):
    """Serves ``/metrics`` (Prometheus or OpenMetrics by Accept header, or
    ``?format=openmetrics``) and ``/metrics.json``."""

    registry: CollectorRegistry = REGISTRY

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlparse(self.path)
        if url.path in ("/", "/metrics"):
            fmt = parse_qs(url.query).get("format", [""])[0]
            accept = (
                "application/openmetrics-text"
                if fmt == "openmetrics"
                else self.headers.get("Accept")
            )
            encoder, content_type = choose_encoder(accept)
            body = encoder(self.registry)
        elif url.path == "/metrics.json":
            body = json.dumps(snapshot(self.registry)).encode()
            content_type = "application/json"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return None


def start_http_server(
    port: int, addr: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Serves the registry on ``addr:port`` from a daemon thread (as
    prometheus_client's ``start_http_server``); returns the server and thread —
    ``server.shutdown()`` stops it. Port 0 picks a free port (``server.server_port``)."""

    handler = type("BoundMetricsHandler", (MetricsHandler,), {"registry": registry})
    server = ThreadingHTTPServer((addr, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, name="ferrotick-metrics-http", daemon=True
    )
    thread.start()
    return server, thread
