"""ferrotick.fastapi and ferrotick.flask under real servers on loopback, the
standalone metrics server, and the multi-process aggregated view with real worker
processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import httpx
import pytest
import uvicorn
from conftest import free_port
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

from ferrotick.monitor import (
    AsyncHealthChecker,
    AsyncPerformanceMonitor,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

# -- helpers -------------------------------------------------------------------------


def samples(text: str, parser=parse_prometheus) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in parser(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def request_counts(text: str) -> dict[tuple[str, str, str], float]:
    """{(method, route, status): count} of http_request_duration_seconds."""
    return {
        (dict(labels)["method"], dict(labels)["route"], dict(labels)["status"]): v
        for (name, labels), v in samples(text).items()
        if name == "http_request_duration_seconds_count"
    }


class Toggle:
    """A health check whose outcome the test flips."""

    def __init__(self) -> None:
        self.ok = True

    async def __call__(self) -> bool:
        await asyncio.sleep(0)
        if not self.ok:
            raise ConnectionError("market data feed down")
        return True


class UvicornServer:
    def __init__(self, app):
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


class WerkzeugServer:
    def __init__(self, app):
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_port}"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(10)
        self.server.server_close()


def check_monitoring_endpoints(client: httpx.Client, toggle: Toggle, op: str) -> None:
    """What the FastAPI router and the Flask blueprint both serve."""
    # /metrics: Prometheus text by default, OpenMetrics on request
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert list(parse_prometheus(r.text))
    for resp in (
        client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}),
        client.get("/metrics", params={"format": "openmetrics"}),
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/openmetrics-text")
        assert resp.text.endswith("# EOF\n")
        names = {f.name for f in parse_openmetrics(resp.text)}
        assert "http_request_duration_seconds" in names

    # /metrics.json
    r = client.get("/metrics.json")
    assert r.status_code == 200
    snap = r.json()
    assert snap["http_request_duration_seconds"]["type"] == "histogram"

    # /health: 200 healthy, 503 with the failing check
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "healthy"
    assert r.json()["checks"] == {"feed": True, "disk": True}
    toggle.ok = False
    r = client.get("/health")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "unhealthy"
    assert body["checks"] == {"feed": False, "disk": True}
    assert "market data feed down" in body["details"]["feed"]["error"]
    toggle.ok = True

    # the seed's endpoints
    r = client.get("/async-performance")
    assert r.status_code == 200
    assert r.json()[op]["count"] == 3  # items 1, 2 and 404
    r = client.get("/async-performance", params={"operation": op})
    assert r.status_code == 200
    one = r.json()
    assert one["count"] == 3 and one["error_count"] == 0
    assert one["total_time"] > 0
    assert client.get("/async-performance", params={"operation": "nope"}).json() == {}
    r = client.post("/async-performance/report")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "success"
    assert "report" in body["message"]
    assert body["metrics"]["operations"][op]["count"] == 3


def make_checker(toggle: Toggle) -> AsyncHealthChecker:
    checker = AsyncHealthChecker(timeout=2.0)
    checker.add_check("feed", toggle)
    checker.add_check("disk", lambda: True)
    return checker


# -- FastAPI -------------------------------------------------------------------------------


def make_fastapi_app(registry, monitor, checker):
    from fastapi import APIRouter, FastAPI, HTTPException

    from ferrotick.fastapi import MetricsMiddleware, metrics_router

    app = FastAPI()
    app.add_middleware(MetricsMiddleware, registry=registry, exclude_routes=["/metrics.json"])

    @app.get("/items/{item_id}")
    async def item(item_id: int):
        async with monitor.track_operation("load_item"):
            await asyncio.sleep(0.001)
        if item_id == 404:
            raise HTTPException(status_code=404, detail="no such item")
        return {"id": item_id}

    @app.get("/boom")
    async def boom():
        raise RuntimeError("handler failed")

    orders = APIRouter(prefix="/v1")

    @orders.get("/orders/{order_id}")
    async def order(order_id: str):
        return {"order": order_id}

    app.include_router(orders, prefix="/api")
    app.include_router(metrics_router(registry=registry, monitor=monitor, health_checker=checker))
    return app


def test_fastapi_router_and_middleware_under_uvicorn():
    registry = CollectorRegistry()
    monitor = AsyncPerformanceMonitor(registry=CollectorRegistry())
    toggle = Toggle()
    app = make_fastapi_app(registry, monitor, make_checker(toggle))
    with UvicornServer(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        for i in (1, 2):
            assert client.get(f"/items/{i}").json() == {"id": i}
        assert client.get("/items/404").status_code == 404
        assert client.get("/items/abc").status_code == 422
        assert client.get("/no/such/path").status_code == 404
        assert client.get("/another-scan.php").status_code == 404
        assert client.post("/items/1").status_code == 405
        # uvicorn drops the connection after an unhandled error: a connection of its own
        assert httpx.get(f"{base}/boom", timeout=10).status_code == 500
        assert client.get("/api/v1/orders/A-17").json() == {"order": "A-17"}
        assert client.request("PROPFIND", "/items/1").status_code == 405

        check_monitoring_endpoints(client, toggle, "load_item")

        text = client.get("/metrics").text
        counts = request_counts(text)
        assert counts[("GET", "/items/{item_id}", "200")] == 2
        assert counts[("GET", "/items/{item_id}", "404")] == 1
        assert counts[("GET", "/items/{item_id}", "422")] == 1
        assert counts[("POST", "/items/{item_id}", "405")] == 1
        assert counts[("OTHER", "/items/{item_id}", "405")] == 1
        assert counts[("GET", "<unmatched>", "404")] == 2
        assert counts[("GET", "/boom", "500")] == 1
        # the included router's prefixes are part of the template
        assert counts[("GET", "/api/v1/orders/{order_id}", "200")] == 1
        assert counts[("GET", "/health", "200")] == 1
        assert counts[("GET", "/health", "503")] == 1
        assert counts[("GET", "/async-performance", "200")] == 3
        assert counts[("POST", "/async-performance/report", "200")] == 1
        assert counts[("GET", "/metrics", "200")] == 3  # this scrape is not finished yet
        # never a raw path, and the excluded route is not recorded
        routes = {route for _, route, _ in counts}
        assert not any(r.startswith("/items/") and "{" not in r for r in routes)
        assert "/no/such/path" not in routes and "/metrics.json" not in routes
        got = samples(text)
        # the scrape that rendered this text was itself in progress
        assert got[("http_requests_in_progress", (("method", "GET"),))] == 1
        assert got[("http_requests_in_progress", (("method", "POST"),))] == 0
        # durations: the bucket counts add up
        key = (("method", "GET"), ("route", "/items/{item_id}"), ("status", "200"))
        inf_bucket = tuple(sorted((*key, ("le", "+Inf"))))
        assert got[("http_request_duration_seconds_bucket", inf_bucket)] == 2
        assert 0.002 <= got[("http_request_duration_seconds_sum", key)] < 5


def test_metrics_middleware_twice_on_one_registry_shares_metrics():
    from ferrotick import ConfigError
    from ferrotick.fastapi import MetricsMiddleware

    registry = CollectorRegistry()

    async def app(scope, receive, send):
        pass

    a = MetricsMiddleware(app, registry=registry)
    b = MetricsMiddleware(app, registry=registry)
    assert a.duration is b.duration and a.in_progress is b.in_progress
    # a clashing metric of another type is an error, not a silent mix-up
    other = CollectorRegistry()
    Counter("http_request_duration_seconds", "x", registry=other)
    with pytest.raises(ConfigError):
        MetricsMiddleware(app, registry=other)


def test_metrics_middleware_times_streaming_and_passes_lifespan():
    """Pure ASGI: the duration covers the whole streamed body, and non-HTTP scopes
    pass through untouched."""
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    from ferrotick.fastapi import MetricsMiddleware

    registry = CollectorRegistry()
    app = FastAPI()
    app.add_middleware(MetricsMiddleware, registry=registry)

    @app.get("/stream")
    async def stream():
        async def body():
            for i in range(3):
                await asyncio.sleep(0.05)
                yield f"{i}\n".encode()

        return StreamingResponse(body())

    with UvicornServer(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/stream").text == "0\n1\n2\n"
    key = (("method", "GET"), ("route", "/stream"), ("status", "200"))
    got = samples(registry.generate().decode())
    assert got[("http_request_duration_seconds_count", key)] == 1
    assert 0.15 <= got[("http_request_duration_seconds_sum", key)] < 2


# -- Flask ---------------------------------------------------------------------------------


def make_flask_app(registry, monitor, checker):
    from flask import Flask, abort

    from ferrotick.flask import init_app, metrics_blueprint

    app = Flask(__name__)
    init_app(app, registry=registry)
    init_app(app, registry=registry)  # a second call changes nothing

    @app.get("/items/<int:item_id>")
    def item(item_id):
        with monitor.track_operation("load_item"):
            time.sleep(0.001)
        if item_id == 404:
            abort(404)
        return {"id": item_id}

    @app.get("/boom")
    def boom():
        raise RuntimeError("handler failed")

    app.register_blueprint(
        metrics_blueprint(registry=registry, monitor=monitor, health_checker=checker)
    )
    return app


def test_flask_blueprint_and_timing_under_werkzeug():
    registry = CollectorRegistry()
    monitor = AsyncPerformanceMonitor(registry=CollectorRegistry())
    toggle = Toggle()
    app = make_flask_app(registry, monitor, make_checker(toggle))
    with WerkzeugServer(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        for i in (1, 2):
            assert client.get(f"/items/{i}").json() == {"id": i}
        assert client.get("/items/404").status_code == 404
        assert client.get("/items/abc").status_code == 404  # the int converter rejects it
        assert client.get("/no/such/path").status_code == 404
        assert client.post("/items/1").status_code == 405
        assert client.get("/boom").status_code == 500

        check_monitoring_endpoints(client, toggle, "load_item")

        text = client.get("/metrics").text
        counts = request_counts(text)
        assert counts[("GET", "/items/<int:item_id>", "200")] == 2
        assert counts[("GET", "/items/<int:item_id>", "404")] == 1
        assert counts[("GET", "<unmatched>", "404")] == 2
        assert counts[("POST", "<unmatched>", "405")] == 1
        assert counts[("GET", "/boom", "500")] == 1
        assert counts[("GET", "/health", "200")] == 1
        assert counts[("GET", "/health", "503")] == 1
        assert counts[("GET", "/metrics", "200")] == 3  # this scrape is not finished yet
        assert counts[("GET", "/metrics.json", "200")] == 1
        assert counts[("POST", "/async-performance/report", "200")] == 1
        routes = {route for _, route, _ in counts}
        assert "/items/1" not in routes and "/no/such/path" not in routes
        got = samples(text)
        assert got[("http_requests_in_progress", (("method", "GET"),))] == 1
        assert got[("http_requests_in_progress", (("method", "POST"),))] == 0


def test_frameworks_are_not_imported_by_the_core_package():
    code = textwrap.dedent(
        """
        import sys
        import ferrotick, ferrotick.monitor, ferrotick.monitor.multiprocess
        assert "fastapi" not in sys.modules and "flask" not in sys.modules, sorted(sys.modules)
        assert "starlette" not in sys.modules
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# -- standalone server -----------------------------------------------------------------------


def test_start_http_server_serves_metrics_and_json():
    registry = CollectorRegistry()
    c = Counter("served", "x", ["k"], registry=registry)
    c.labels("a").inc(3)
    h = Histogram("took_seconds", "x", registry=registry, buckets=[0.1, 1])
    h.observe(0.5)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            r = client.get("/metrics")
            assert r.status_code == 200
            got = samples(r.text)
            assert got[("served_total", (("k", "a"),))] == 3
            assert got[("took_seconds_bucket", (("le", "1.0"),))] == 1
            r = client.get("/metrics", params={"format": "openmetrics"})
            assert r.text.endswith("# EOF\n")
            assert samples(r.text, parse_openmetrics)[("served_total", (("k", "a"),))] == 3
            r = client.get("/metrics.json")
            assert r.status_code == 200
            snap = r.json()
            assert snap["served_total"]["series"][0]["value"] == 3
            assert snap["took_seconds"]["series"][0]["count"] == 1
            assert client.get("/elsewhere").status_code == 404
    finally:
        server.shutdown()
        server.server_close()
    thread.join(5)
    assert not thread.is_alive()


# -- multi-process ------------------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import sys
    from ferrotick.monitor import CollectorRegistry, Counter, Gauge, Histogram, Summary
    from ferrotick.monitor.multiprocess import MultiProcessWriter

    n = int(sys.argv[1])
    directory = sys.argv[2]
    r = CollectorRegistry()
    jobs = Counter("jobs", "Jobs", ["kind"], registry=r)
    lat = Histogram("job_seconds", "Job time", registry=r, buckets=[0.1, 1.0, 10.0])
    size = Summary("payload_bytes", "Payload", registry=r)
    temp = Gauge("worker_index", "Index of the worker", registry=r)
    conns = Gauge("open_connections", "Connections", registry=r, multiprocess_mode="sum")
    jobs.labels("fetch").inc(n + 1)
    jobs.labels("store").inc(10)
    for v in [0.05, 0.5 * n, 5.0 + n]:
        lat.observe(v)
    size.observe(100 * (n + 1))
    temp.set(n)
    conns.set(n + 1)
    w = MultiProcessWriter(directory, interval=0.05, registry=r)
    print("ready", flush=True)
    sys.stdin.readline()          # until the test lets it go
    jobs.labels("fetch").inc(100)  # written at exit
    """
)


def spawn_workers(directory, n):
    procs = []
    for i in range(n):
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(i), str(directory)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        line = p.stdout.readline()
        assert line.strip() == "ready", p.stderr.read()
    return procs


def stop(proc):
    proc.stdin.close()
    assert proc.wait(30) == 0, proc.stderr.read()


def test_multiprocess_aggregation_with_real_workers(tmp_path):
    from ferrotick.monitor.multiprocess import MultiProcessCollector, generate_aggregated

    procs = spawn_workers(tmp_path, 3)
    try:
        pids = {p.pid for p in procs}
        files = sorted(os.listdir(tmp_path))
        assert files == sorted(f"ferrotick-{pid}.json" for pid in pids)

        text = generate_aggregated(tmp_path).decode()
        got = samples(text)
        fams = {f.name: f for f in parse_prometheus(text)}
        assert fams["jobs"].type == "counter"
        assert got[("jobs_total", (("kind", "fetch"),))] == 1 + 2 + 3
        assert got[("jobs_total", (("kind", "store"),))] == 30
        values = [v for n in range(3) for v in (0.05, 0.5 * n, 5.0 + n)]
        assert got[("job_seconds_count", ())] == 9
        assert got[("job_seconds_sum", ())] == pytest.approx(sum(values), rel=1e-12)
        for le, bound in (("0.1", 0.1), ("1.0", 1.0), ("10.0", 10.0), ("+Inf", float("inf"))):
            want = sum(1 for v in values if v <= bound)
            assert got[("job_seconds_bucket", (("le", le),))] == want, le
        assert fams["payload_bytes"].type == "summary"
        assert got[("payload_bytes_count", ())] == 3
        assert got[("payload_bytes_sum", ())] == 600
        # gauges: one sample per process with a pid label, or combined by mode
        by_pid = {
            dict(labels)["pid"]: v for (name, labels), v in got.items() if name == "worker_index"
        }
        assert by_pid == {str(p.pid): float(i) for i, p in enumerate(procs)}
        assert got[("open_connections", ())] == 6
        # OpenMetrics parses too
        om = samples(generate_aggregated(tmp_path, openmetrics=True).decode(), parse_openmetrics)
        assert om[("jobs_total", (("kind", "fetch"),))] == 6

        # a worker exits: its last write (+100) is folded into the archive, its file
        # is removed, its gauges leave, and the counters do not go backwards
        stop(procs[0])
        collector = MultiProcessCollector(tmp_path)
        got = samples(collector.generate().decode())
        assert f"ferrotick-{procs[0].pid}.json" not in os.listdir(tmp_path)
        assert "ferrotick-archive.json" in os.listdir(tmp_path)
        assert got[("jobs_total", (("kind", "fetch"),))] == 106
        assert got[("job_seconds_count", ())] == 9
        assert ("worker_index", (("pid", str(procs[0].pid)),)) not in got
        assert got[("open_connections", ())] == 5
        assert collector.get_sample_value("payload_bytes_sum") == 600

        # a second collection does not fold it twice
        assert (
            samples(generate_aggregated(tmp_path).decode())[("jobs_total", (("kind", "fetch"),))]
            == 106
        )
        snap = collector.snapshot()
        assert snap["jobs_total"]["type"] == "counter"
    finally:
        for p in procs:
            if p.poll() is None:
                stop(p)
    # everyone gone: only the archive is left, and it holds every count
    got = samples(generate_aggregated(tmp_path).decode())
    assert sorted(f for f in os.listdir(tmp_path) if not f.startswith(".")) == [
        "ferrotick-archive.json"
    ]
    assert got[("jobs_total", (("kind", "fetch"),))] == 306
    assert not any(name == "worker_index" for name, _ in got)


def test_dead_pid_file_is_removed_and_files_do_not_grow(tmp_path):
    from ferrotick.monitor.multiprocess import (
        MultiProcessCollector,
        MultiProcessWriter,
        mark_process_dead,
    )

    registry = CollectorRegistry()
    c = Counter("ticks", "x", registry=registry)
    c.inc(5)
    writer = MultiProcessWriter(tmp_path, interval=0.02, registry=registry)
    try:
        own = writer.path
        assert os.path.basename(own) == f"ferrotick-{os.getpid()}.json"
        # the file is overwritten, not appended: its size stays put over many writes
        size = os.path.getsize(own)
        before = writer.writes
        deadline = time.monotonic() + 5
        while writer.writes < before + 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert writer.writes >= before + 5
        assert abs(os.path.getsize(own) - size) < 16
        assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []

        # a pid that is certainly dead: a process that ran and was reaped
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        data = json.loads(open(own).read())
        data["pid"] = dead.pid
        data["start_time"] = None
        dead_file = tmp_path / f"ferrotick-{dead.pid}.json"
        dead_file.write_text(json.dumps(data))
        (tmp_path / f".ferrotick-{dead.pid}.json.tmp").write_text("partial")

        dropper = MultiProcessCollector(tmp_path, archive_dead=False)
        assert dropper.get_sample_value("ticks_total") == 5  # the dead file is not counted
        assert not dead_file.exists()
        assert not (tmp_path / f".ferrotick-{dead.pid}.json.tmp").exists()
        assert not (tmp_path / "ferrotick-archive.json").exists()

        # the same with folding, through mark_process_dead (gunicorn's child_exit)
        dead_file.write_text(json.dumps(data))
        assert mark_process_dead(dead.pid, tmp_path) is True
        assert not dead_file.exists()
        assert mark_process_dead(dead.pid, tmp_path) is False
        # collector flushes this process's writer first: a fresh increment shows
        c.inc(1)
        assert MultiProcessCollector(tmp_path).get_sample_value("ticks_total") == 6 + 5
    finally:
        writer.close(remove=True)
    assert not os.path.exists(own)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_does_not_count_inherited_values_twice(tmp_path):
    from ferrotick.monitor.multiprocess import MultiProcessWriter, generate_aggregated

    registry = CollectorRegistry()
    c = Counter("forked", "x", registry=registry)
    h = Histogram("forked_seconds", "x", registry=registry, buckets=[1.0])
    g = Gauge("forked_gauge", "x", registry=registry)
    c.inc(5)
    h.observe(0.5)
    g.set(1)
    writer = MultiProcessWriter(tmp_path, interval=0.05, registry=registry)
    try:
        pid = os.fork()
        if pid == 0:  # the child: the writer restarted here, with a baseline
            code = 1
            try:
                c.inc(2)
                h.observe(2.0)
                g.set(2)
                if writer.running and writer.path.endswith(f"-{os.getpid()}.json"):
                    writer.write()
                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        got = samples(generate_aggregated(tmp_path).decode())
        assert got[("forked_total", ())] == 7  # 5 in the parent + 2 in the child
        assert got[("forked_seconds_count", ())] == 2
        assert got[("forked_seconds_bucket", (("le", "1.0"),))] == 1
        assert got[("forked_seconds_sum", ())] == 2.5
        assert got[("forked_gauge", (("pid", str(os.getpid())),))] == 1  # the child is gone
    finally:
        writer.close(remove=True)


def test_multiprocess_collector_behind_fastapi_router(tmp_path):
    from fastapi import FastAPI

    from ferrotick.fastapi import metrics_router
    from ferrotick.monitor.multiprocess import MultiProcessCollector, MultiProcessWriter

    registry = CollectorRegistry()
    Counter("served", "x", registry=registry).inc(4)
    writer = MultiProcessWriter(tmp_path, interval=1.0, registry=registry)
    procs = spawn_workers(tmp_path, 2)
    try:
        app = FastAPI()
        app.include_router(metrics_router(registry=MultiProcessCollector(tmp_path)))
        with UvicornServer(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            got = samples(client.get("/metrics").text)
            assert got[("served_total", ())] == 4
            assert got[("jobs_total", (("kind", "store"),))] == 20
            r = client.get("/metrics.json")
            assert r.json()["jobs_total"]["series"]
    finally:
        for p in procs:
            stop(p)
        writer.close(remove=True)
