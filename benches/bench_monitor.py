"""Metrics: ferrotick.monitor against prometheus_client and the OpenTelemetry SDK.

Every contender records the same precomputed values (latencies in seconds drawn from
a log-normal distribution with a median of about 1 ms) into a registry of its own,
created for the benchmark: ``ferrotick.monitor.CollectorRegistry()`` (which leaves the
runtime statistics out by default), ``prometheus_client.CollectorRegistry()``, and an
OpenTelemetry ``MeterProvider`` with an ``InMemoryMetricReader``. Loops hoist the bound
method (``obs = h.observe; for v in values: obs(v)``), as a hot path would.

The 1,000,000-sample percentile benchmark compares with the ``hdrhistogram`` package
(``pip install hdrhistogram``; numpy's percentile on the raw samples stands in when it
is missing). Expensive set-ups are built on first use (the runner's warm-up call), so
importing this module costs nothing.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import gc
import random
import re
import time

import prometheus_client
import prometheus_client.metrics
from run import Benchmark, Measurement, timed

from ferrotick import monitor as ft

try:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
except ImportError:  # pragma: no cover
    MeterProvider = None

try:
    from hdrh.histogram import HdrHistogram
except ImportError:  # pragma: no cover
    HdrHistogram = None

try:
    import numpy
except ImportError:  # pragma: no cover
    numpy = None

PROM = "prometheus_client"
OTEL = "OpenTelemetry SDK"


@functools.cache
def _values(n: int) -> list[float]:
    """n latencies in seconds (log-normal, median ~1 ms), the same for every contender."""
    rng = random.Random(20240601)
    lognorm = rng.lognormvariate
    return [lognorm(-6.9, 1.0) for _ in range(n)]


def _take(n: int) -> list[float]:
    # sliced from one large list so that every call sees the same first n values
    pool = _values(max(n, 200_000))
    return pool if n == len(pool) else pool[:n]


def _otel_meter(name: str):
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return provider.get_meter(name)


# -- 1. histogram_observe -------------------------------------------------------------


def _observe_loop(obs):
    def run(n: int) -> Measurement:
        values = _take(n)

        def body() -> None:
            for v in values:
                obs(v)

        return timed(body, n)

    return run


def _observe_contenders() -> dict:
    fh = ft.Histogram(
        "request_duration_seconds", "Request duration", registry=ft.CollectorRegistry()
    )
    ph = prometheus_client.Histogram(
        "request_duration_seconds",
        "Request duration",
        registry=prometheus_client.CollectorRegistry(),
    )
    out = {"ferrotick": _observe_loop(fh.observe), PROM: _observe_loop(ph.observe)}
    if MeterProvider is not None:
        oh = _otel_meter("bench.observe").create_histogram("request_duration_seconds", unit="s")
        out[OTEL] = _observe_loop(oh.record)
    return out


# -- 2. histogram_labels_observe ------------------------------------------------------


def _labels_loop(h):
    def run(n: int) -> Measurement:
        values = _take(n)
        labels = h.labels

        def body() -> None:
            for v in values:
                labels("GET", "/api/x").observe(v)

        return timed(body, n)

    return run


def _otel_attrs_loop(oh):
    def run(n: int) -> Measurement:
        values = _take(n)
        record = oh.record

        def body() -> None:
            for v in values:
                record(v, {"method": "GET", "route": "/api/x"})

        return timed(body, n)

    return run


def _labels_contenders() -> dict:
    fh = ft.Histogram(
        "http_request_duration_seconds",
        "HTTP request duration",
        ["method", "route"],
        registry=ft.CollectorRegistry(),
    )
    ph = prometheus_client.Histogram(
        "http_request_duration_seconds",
        "HTTP request duration",
        ["method", "route"],
        registry=prometheus_client.CollectorRegistry(),
    )
    out = {"ferrotick": _labels_loop(fh), PROM: _labels_loop(ph)}
    if MeterProvider is not None:
        oh = _otel_meter("bench.labels").create_histogram("http_request_duration_seconds", unit="s")
        out[OTEL] = _otel_attrs_loop(oh)
    return out


# -- 3. track_operation_noop ----------------------------------------------------------


class _PromMonitor:
    """What users write on prometheus_client: the seed's metrics and an async
    context manager class timing the block, counting errors and the in-flight gauge."""

    def __init__(self, registry: prometheus_client.CollectorRegistry) -> None:
        self.duration = prometheus_client.Histogram(
            "async_operation_duration_seconds",
            "Duration of async operations",
            ["operation_type"],
            registry=registry,
        )
        self.errors = prometheus_client.Counter(
            "async_errors_total",
            "Total async operation errors",
            ["operation_type", "error_type"],
            registry=registry,
        )
        self.active = prometheus_client.Gauge(
            "active_async_tasks", "Number of active async tasks", registry=registry
        )

    def track_operation(self, operation_name: str) -> _PromTracker:
        return _PromTracker(self, operation_name)


class _PromTracker:
    __slots__ = ("_monitor", "_op", "_start")

    def __init__(self, monitor: _PromMonitor, op: str) -> None:
        self._monitor = monitor
        self._op = op

    async def __aenter__(self) -> _PromTracker:
        self._monitor.active.inc()
        self._start = time.perf_counter()
        return self

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        m = self._monitor
        try:
            if exc_type is not None:
                m.errors.labels(self._op, exc_type.__name__).inc()
        finally:
            m.duration.labels(self._op).observe(time.perf_counter() - self._start)
            m.active.dec()
        return False


_loop_cache: list[asyncio.AbstractEventLoop] = []


def _loop() -> asyncio.AbstractEventLoop:
    if not _loop_cache:
        _loop_cache.append(asyncio.new_event_loop())
    return _loop_cache[0]


def _track_loop(monitor):
    async def body(n: int) -> Measurement:
        track = monitor.track_operation
        gc.collect()
        c0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(n):
            async with track("op"):
                pass
        t1 = time.perf_counter()
        return Measurement(t1 - t0, time.process_time() - c0, n)

    return lambda n: _loop().run_until_complete(body(n))


def _track_contenders() -> dict:
    return {
        "ferrotick": _track_loop(ft.AsyncPerformanceMonitor(registry=ft.CollectorRegistry())),
        "prometheus_client async CM class": _track_loop(
            _PromMonitor(prometheus_client.CollectorRegistry())
        ),
    }


# -- 4. p99_query_1m ------------------------------------------------------------------

P99_SAMPLES = 1_000_000


@functools.cache
def _p99_setup() -> dict:
    samples = _values(P99_SAMPLES)
    fh = ft.Histogram("latency_seconds", "Latency", ["route"], registry=ft.CollectorRegistry())
    child = fh.labels("/api/x")
    obs = child.observe
    for v in samples:
        obs(v)
    out: dict = {"child": child}
    if HdrHistogram is not None:
        # microseconds, 1 µs .. 1 h, three significant digits: ferrotick's default sketch
        h = HdrHistogram(1, 3_600_000_000, 3)
        for us, count in collections.Counter(max(1, round(v * 1e6)) for v in samples).items():
            h.record_value(us, count)
        out["hdr"] = h
        peer = h.get_value_at_percentile(99) / 1e6
    elif numpy is not None:
        arr = numpy.asarray(samples)
        out["array"] = arr
        peer = float(numpy.percentile(arr, 99))
    else:
        peer = None
    ours = child.quantile(0.99)
    if peer is not None and abs(ours - peer) > 0.01 * peer:
        raise AssertionError(f"p99 disagree: ferrotick {ours} vs peer {peer}")
    return out


def _p99_ferrotick(n: int) -> Measurement:
    q = _p99_setup()["child"].quantile

    def body() -> None:
        for _ in range(n):
            q(0.99)

    return timed(body, n)


def _p99_hdr(n: int) -> Measurement:
    q = _p99_setup()["hdr"].get_value_at_percentile

    def body() -> None:
        for _ in range(n):
            q(99)

    return timed(body, n)


def _p99_numpy(n: int) -> Measurement:
    arr = _p99_setup()["array"]
    percentile = numpy.percentile

    def body() -> None:
        for _ in range(n):
            percentile(arr, 99)

    return timed(body, n)


def _p99_contenders() -> tuple[dict, str]:
    if HdrHistogram is not None:
        return (
            {"ferrotick": _p99_ferrotick, "hdrhistogram get_value_at_percentile": _p99_hdr},
            "the `hdrhistogram` package (pure Python; 1 µs .. 1 h, 3 significant digits, "
            "values recorded in µs) answering `get_value_at_percentile(99)`",
        )
    if numpy is not None:
        return (
            {"ferrotick": _p99_ferrotick, "numpy.percentile on the raw samples": _p99_numpy},
            "`numpy.percentile(samples, 99)` on the raw array of samples (hdrhistogram is "
            "not installed, so numpy stands in)",
        )
    return {"ferrotick": _p99_ferrotick}, "no peer (neither hdrhistogram nor numpy is installed)"


# -- 5. exposition_1000 ---------------------------------------------------------------


def _populate(lib, registry) -> None:
    rng = random.Random(7)
    for i in range(100):
        h = lib.Histogram(
            f"app_request_{i}_duration_seconds",
            f"Duration of requests to handler {i}.",
            ["method", "route"],
            registry=registry,
        )
        for method, route in (("GET", "/api/x"), ("POST", "/api/y")):
            child = h.labels(method, route)
            for _ in range(20):
                child.observe(rng.lognormvariate(-4.0, 1.0))
    for i in range(450):
        c = lib.Counter(f"app_events_{i}", f"Events of kind {i}.", ["kind"], registry=registry)
        c.labels("a").inc(rng.randint(1, 1000))
    for i in range(450):
        g = lib.Gauge(f"app_level_{i}", f"Level of pool {i}.", ["pool"], registry=registry)
        g.labels("main").set(rng.random() * 100)


_SAMPLE = re.compile(r"^([^{ ]+)(?:\{(.*)\})? (.*)$")


def _normalized(text: bytes) -> set[str]:
    """Sample lines with their labels sorted (the libraries order `le` differently)."""
    out = set()
    for line in text.decode().splitlines():
        m = _SAMPLE.match(line)
        if line.startswith("#") or not m:
            out.add(line)
            continue
        labels = ",".join(sorted(m.group(2).split(","))) if m.group(2) else ""
        out.add(f"{m.group(1)}{{{labels}}} {m.group(3)}")
    return out


class _NoCreated:
    """prometheus_client adds a `_created` series per child; ferrotick exposes none, so
    they are switched off while prometheus_client renders (same samples both sides)."""

    def __enter__(self) -> None:
        self._prev = getattr(prometheus_client.metrics, "_use_created", True)
        prometheus_client.disable_created_metrics()

    def __exit__(self, *exc: object) -> None:
        if self._prev:
            prometheus_client.enable_created_metrics()


@functools.cache
def _expo_setup() -> tuple[ft.CollectorRegistry, prometheus_client.CollectorRegistry]:
    fr = ft.CollectorRegistry()  # include_runtime=False: no runtime families
    pr = prometheus_client.CollectorRegistry()
    _populate(ft, fr)
    _populate(prometheus_client, pr)
    ours = ft.generate_latest(fr)
    with _NoCreated():
        theirs = prometheus_client.generate_latest(pr)
    if _normalized(ours) != _normalized(theirs):
        raise AssertionError("exposition_1000: the two registries do not expose the same samples")
    return fr, pr


def _expo_ferrotick(n: int) -> Measurement:
    fr, _ = _expo_setup()
    gen = ft.generate_latest

    def body() -> None:
        for _ in range(n):
            gen(fr)

    return timed(body, n)


def _expo_prom(n: int) -> Measurement:
    _, pr = _expo_setup()
    gen = prometheus_client.generate_latest

    def body() -> None:
        for _ in range(n):
            gen(pr)

    with _NoCreated():
        return timed(body, n)


# -- the list -------------------------------------------------------------------------

_otel_note = (
    " and the OpenTelemetry SDK (a `MeterProvider` with an `InMemoryMetricReader`, default "
    "explicit-bucket aggregation)"
    if MeterProvider is not None
    else ""
)
_p99_peers, _p99_peer_text = _p99_contenders()

BENCHMARKS = [
    Benchmark(
        name="histogram_observe",
        description=(
            "`observe(v)` on an unlabelled histogram (default buckets), bound method hoisted, "
            f"against prometheus_client's `Histogram.observe`{_otel_note} `histogram.record(v)`. "
            "ferrotick also feeds its percentile sketch and sliding window on each call."
        ),
        contenders=_observe_contenders(),
        ops=200_000,
        quick_ops=10_000,
        targets={PROM: 2.0},
        unit="observe",
    ),
    Benchmark(
        name="histogram_labels_observe",
        description=(
            '`h.labels("GET", "/api/x").observe(v)` on every call (label lookup included) against '
            f"the same on prometheus_client{_otel_note} "
            '`record(v, {"method": "GET", "route": "/api/x"})`.'
        ),
        contenders=_labels_contenders(),
        ops=100_000,
        quick_ops=5_000,
        targets={PROM: 2.0},
        unit="observe",
    ),
    Benchmark(
        name="track_operation_noop",
        description=(
            '`async with monitor.track_operation("op"): pass` in one coroutine on stdlib asyncio, '
            "ferrotick's `AsyncPerformanceMonitor` (own registry) against the prometheus_client "
            "equivalent users write: an async context manager class that increments an in-flight "
            "gauge, takes `time.perf_counter()` on enter and on exit counts errors, observes "
            "`duration.labels(op)` and decrements the gauge. No ratio target; the issue's absolute "
            "target is **at most 1.5 µs per `async with`** (the ferrotick row's time)."
        ),
        contenders=_track_contenders(),
        ops=100_000,
        quick_ops=10_000,
        unit="async with",
    ),
    Benchmark(
        name="p99_query_1m",
        description=(
            f"The p99 of a histogram holding {P99_SAMPLES:,} samples: ferrotick's "
            "`child.quantile(0.99)` (the child of a labelled histogram) against "
            f"{_p99_peer_text}. Both answers agree within 1 %. No ratio target; the issue's "
            "absolute target is **at most 10 µs per query** (the ferrotick row's time)."
        ),
        contenders=_p99_peers,
        ops=1_000,
        quick_ops=50,
        unit="query",
    ),
    Benchmark(
        name="exposition_1000",
        description=(
            "`generate_latest(registry)` (Prometheus text) of a registry with 1,000 metrics: 100 "
            "histograms (default buckets) with 2 label sets each, 450 counters and 450 gauges with "
            "one label set each, the same contents in both libraries (about 6,300 lines, 387 kB). "
            "ferrotick's registry has no runtime families (`CollectorRegistry()` default); "
            "prometheus_client's `_created` series are switched off "
            "(`disable_created_metrics()`) so both expose the same samples, which the set-up "
            "checks."
        ),
        contenders={"ferrotick": _expo_ferrotick, PROM: _expo_prom},
        ops=20,
        quick_ops=3,
        targets={PROM: 2.0},
        unit="scrape",
    ),
]
