"""ferrotick.monitor metrics: exposition round trips through prometheus_client's
parsers, exact counts and sums, percentiles, .time() on coroutines, validation and
the cardinality cap."""

from __future__ import annotations

import asyncio
import inspect
import math
import random

import prometheus_client
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

from ferrotick import ConfigError
from ferrotick.monitor import (
    CONTENT_TYPE_LATEST,
    CONTENT_TYPE_OPENMETRICS,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    choose_encoder,
    generate_latest,
    generate_openmetrics,
)

BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0)
# bounds themselves (le is inclusive), values between them, and one above the last
VALUES = [0.001, 0.01, 0.02, 0.1, 0.1, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 12.0]
LABELLED = {
    ("GET", "/a"): [0.005, 0.2, 0.2, 3.0],
    ("POST", "/b"): [0.01, 0.6, 9.0],
}


def naive_sum(values) -> float:
    """Left-to-right float additions, as a metric accumulates them (Python 3.12+'s
    ``sum()`` compensates rounding and can differ in the last bit)."""
    total = 0.0
    for v in values:
        total += v
    return total


def samples(text: str, parser=parse_prometheus) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of everything exposed."""
    out = {}
    for family in parser(text):
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out, f"duplicate sample {key}"
            out[key] = s.value
    return out


def families(text: str, parser=parse_prometheus) -> dict[str, object]:
    return {f.name: f for f in parser(text)}


def expected_buckets(values, bounds=BUCKETS):
    return {b: sum(1 for v in values if v <= b) for b in (*bounds, math.inf)}


def le_label(b: float) -> str:
    return "+Inf" if b == math.inf else repr(float(b))


def record(mod, registry, max_series=None):
    """Records the same data into ferrotick's or prometheus_client's metrics."""
    kw = {"registry": registry}
    c = mod.Counter("jobs_total", "Jobs done", **kw)
    cl = mod.Counter("requests", "Requests", ["method", "path"], **kw)
    g = mod.Gauge("queue_depth", "Queue depth", **kw)
    gl = mod.Gauge("pool_size", "Pool size", ["pool"], **kw)
    h = mod.Histogram("latency_seconds", "Latency", buckets=BUCKETS, **kw)
    hl = mod.Histogram("handler_seconds", "Handler", ["method", "path"], buckets=BUCKETS, **kw)
    s = mod.Summary("payload_bytes", "Payload", **kw)
    sl = mod.Summary("job_seconds", "Job time", ["kind"], **kw)

    c.inc()
    c.inc(2.5)
    c.inc(0)
    cl.labels("GET", "/a").inc(3)
    cl.labels(method="POST", path="/b").inc()
    cl.labels("GET", "/a").inc(0.25)
    g.set(10)
    g.inc(5)
    g.dec(2.5)
    gl.labels("db").set(-4.25)
    gl.labels("cache").inc()
    for v in VALUES:
        h.observe(v)
        s.observe(v * 1000)
    for (method, path), vs in LABELLED.items():
        for v in vs:
            hl.labels(method, path).observe(v)
            sl.labels(method.lower()).observe(v)


def without_extras(parsed: dict) -> dict:
    """Leaves out what the two libraries legitimately expose differently: _created
    samples, summary quantiles (prometheus_client has none), process/runtime families."""
    return {
        k: v
        for k, v in parsed.items()
        if not k[0].endswith("_created") and not any(name == "quantile" for name, _ in k[1])
    }


def test_round_trip_exact_counts_sums_and_buckets():
    registry = CollectorRegistry()
    record(__import__("ferrotick.monitor", fromlist=["Counter"]), registry)
    text = generate_latest(registry).decode()
    got = samples(text)
    fams = families(text)

    assert fams["jobs"].type == "counter"
    assert got[("jobs_total", ())] == 3.5
    assert got[("requests_total", (("method", "GET"), ("path", "/a")))] == 3.25
    assert got[("requests_total", (("method", "POST"), ("path", "/b")))] == 1.0
    assert fams["queue_depth"].type == "gauge"
    assert got[("queue_depth", ())] == 12.5
    assert got[("pool_size", (("pool", "db"),))] == -4.25
    assert got[("pool_size", (("pool", "cache"),))] == 1.0

    assert fams["latency_seconds"].type == "histogram"
    for b, n in expected_buckets(VALUES).items():
        assert got[("latency_seconds_bucket", (("le", le_label(b)),))] == n, b
    assert got[("latency_seconds_count", ())] == len(VALUES)
    assert got[("latency_seconds_sum", ())] == naive_sum(VALUES)  # same additions, same order
    for (method, path), vs in LABELLED.items():
        base = (("method", method), ("path", path))
        for b, n in expected_buckets(vs).items():
            key = tuple(sorted((*base, ("le", le_label(b)))))
            assert got[("handler_seconds_bucket", key)] == n
        assert got[("handler_seconds_count", base)] == len(vs)
        assert got[("handler_seconds_sum", base)] == naive_sum(vs)

    assert fams["payload_bytes"].type == "summary"
    assert got[("payload_bytes_count", ())] == len(VALUES)
    assert got[("payload_bytes_sum", ())] == naive_sum(v * 1000 for v in VALUES)
    assert got[("payload_bytes", (("quantile", "0.5"),))] == pytest.approx(500.0, rel=1e-3)
    for kind, vs in (("get", LABELLED[("GET", "/a")]), ("post", LABELLED[("POST", "/b")])):
        assert got[("job_seconds_count", (("kind", kind),))] == len(vs)
        assert got[("job_seconds_sum", (("kind", kind),))] == naive_sum(vs)
        assert got[("job_seconds", (("kind", kind), ("quantile", "0.999")))] == pytest.approx(
            max(vs), rel=1e-3
        )

    # the registry's own reader agrees with the parser
    assert registry.get_sample_value("latency_seconds_bucket", {"le": "0.1"}) == 5.0
    assert registry.get_sample_value("requests_total", {"method": "POST", "path": "/b"}) == 1.0


def test_same_samples_as_prometheus_client():
    ours = CollectorRegistry()
    record(__import__("ferrotick.monitor", fromlist=["Counter"]), ours)
    theirs = prometheus_client.CollectorRegistry()
    record(prometheus_client, theirs)
    got = without_extras(samples(generate_latest(ours).decode()))
    want = without_extras(samples(prometheus_client.generate_latest(theirs).decode()))
    assert got == want


def test_openmetrics_parses_with_prometheus_client():
    registry = CollectorRegistry()
    record(__import__("ferrotick.monitor", fromlist=["Counter"]), registry)
    text = generate_openmetrics(registry).decode()
    assert text.endswith("# EOF\n")
    fams = families(text, parse_openmetrics)
    assert fams["jobs"].type == "counter"
    assert fams["latency_seconds"].type == "histogram"
    assert fams["payload_bytes"].type == "summary"
    got = samples(text, parse_openmetrics)
    assert got[("jobs_total", ())] == 3.5
    assert got[("latency_seconds_count", ())] == len(VALUES)
    assert got[("latency_seconds_sum", ())] == naive_sum(VALUES)
    assert got[("latency_seconds_bucket", (("le", "0.5"),))] == 7
    assert got[("jobs_created", ())] > 1.5e9
    # the same data as prometheus_client's OpenMetrics output
    theirs = prometheus_client.CollectorRegistry()
    record(prometheus_client, theirs)
    from prometheus_client.openmetrics.exposition import generate_latest as om_latest

    want = without_extras(samples(om_latest(theirs).decode(), parse_openmetrics))
    assert without_extras(got) == want


def test_choose_encoder_follows_accept_header():
    registry = CollectorRegistry()
    Counter("x", "x", registry=registry).inc()
    enc, ctype = choose_encoder("application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert ctype == CONTENT_TYPE_OPENMETRICS
    assert enc(registry).endswith(b"# EOF\n")
    enc, ctype = choose_encoder("text/plain")
    assert ctype == CONTENT_TYPE_LATEST
    assert b"# EOF" not in enc(registry)
    assert choose_encoder(None)[1] == CONTENT_TYPE_LATEST


def test_label_values_are_escaped_and_round_trip():
    registry = CollectorRegistry()
    c = Counter("odd", "help with \\ and\nnewline", ["v"], registry=registry)
    weird = 'quote " backslash \\ newline \n unicode é'
    c.labels(weird).inc(7)
    got = samples(generate_latest(registry).decode())
    assert got[("odd_total", (("v", weird),))] == 7
    fams = families(generate_latest(registry).decode())
    assert fams["odd"].documentation == "help with \\ and\nnewline"


def test_time_on_coroutine_function_times_the_awaited_work():
    registry = CollectorRegistry()
    h = Histogram("op_seconds", "op", registry=registry)
    s = Summary("op2_seconds", "op", ["k"], registry=registry)

    @h.time()
    async def work(x):
        await asyncio.sleep(0.05)
        return x * 2

    @s.labels("a").time()
    async def work2():
        await asyncio.sleep(0.05)

    assert inspect.iscoroutinefunction(work)
    assert inspect.iscoroutinefunction(work2)
    assert work.__name__ == "work"

    async def main():
        assert await work(21) == 42
        await work2()

    asyncio.run(main())
    assert h.summary()["count"] == 1
    assert 0.05 <= h.summary()["sum"] < 0.2
    child = s.labels("a")
    assert child.summary()["count"] == 1
    assert 0.05 <= child.summary()["sum"] < 0.2

    # and as a context manager, sync and async
    async def ctx():
        async with h.time():
            await asyncio.sleep(0.02)

    asyncio.run(ctx())
    with h.time():
        pass
    assert h.summary()["count"] == 3
    assert 0.07 <= h.summary()["sum"] < 0.4


def test_time_on_plain_function_and_exceptions():
    registry = CollectorRegistry()
    h = Histogram("f_seconds", "f", registry=registry)
    errors = Counter("f_errors", "f", registry=registry)

    @errors.count_exceptions(KeyError)
    @h.time()
    def f(fail):
        if fail:
            raise KeyError("x")
        return 1

    assert not inspect.iscoroutinefunction(f)
    assert f(False) == 1
    with pytest.raises(KeyError):
        f(True)
    assert h.summary()["count"] == 2  # timed even when it raised
    assert errors.get() == 1


def test_percentiles_of_a_known_distribution():
    registry = CollectorRegistry()
    h = Histogram("dist_seconds", "dist", registry=registry)
    s = Summary("dist2_seconds", "dist", registry=registry)
    values = [i / 10_000 for i in range(1, 100_001)]  # 0.0001 .. 10.0 s
    random.Random(7).shuffle(values)
    for v in values:
        h.observe(v)
        s.observe(v)
    ordered = sorted(values)

    def exact(q):
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    for q in (0.01, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999):
        assert h.quantile(q) == pytest.approx(exact(q), rel=1e-3), q
        assert s.quantile(q) == pytest.approx(exact(q), rel=1e-3), q
    summary = h.summary()
    assert summary["count"] == len(values)
    assert summary["min"] == pytest.approx(0.0001, rel=1e-3)
    assert summary["max"] == pytest.approx(10.0, rel=1e-3)
    for key, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)):
        assert summary[key] == pytest.approx(exact(q), rel=1e-3), key
        assert summary["window"][key] == pytest.approx(exact(q), rel=1e-2), key
    got = samples(generate_latest(registry).decode())
    for q in ("0.5", "0.9", "0.99", "0.999"):
        assert got[("dist2_seconds", (("quantile", q),))] == pytest.approx(
            exact(float(q)), rel=1e-3
        )
    with pytest.raises(ConfigError):
        h.quantile(1.5)


@pytest.mark.parametrize(
    "make",
    [
        lambda r: Counter("1starts_with_digit", "x", registry=r),
        lambda r: Gauge("has-dash", "x", registry=r),
        lambda r: Histogram("", "x", registry=r),
        lambda r: Summary("spaces in name", "x", registry=r),
        lambda r: Counter("ok_name", "x", ["bad-label"], registry=r),
        lambda r: Gauge("ok_name", "x", ["__reserved"], registry=r),
        lambda r: Gauge("ok_name", "x", ["1digit"], registry=r),
        lambda r: Histogram("ok_name", "x", ["le"], registry=r),
        lambda r: Summary("ok_name", "x", ["quantile"], registry=r),
        lambda r: Counter("ok_name", "x", ["a", "a"], registry=r),
        lambda r: Histogram("ok_name", "x", buckets=[1.0, 0.5], registry=r),
        lambda r: Gauge("ok_name", "x", multiprocess_mode="bogus", registry=r),
    ],
)
def test_invalid_names_raise_config_error(make):
    registry = CollectorRegistry()
    with pytest.raises(ConfigError) as info:
        make(registry)
    assert isinstance(info.value, ValueError)
    assert generate_latest(registry) == b""  # nothing half-registered


def test_duplicate_registration_raises_config_error():
    registry = CollectorRegistry()
    Counter("events", "x", registry=registry)
    with pytest.raises(ConfigError):
        Counter("events", "x", registry=registry)
    with pytest.raises(ConfigError):
        Counter("events_total", "x", registry=registry)  # the same exposed name
    with pytest.raises(ConfigError):
        Gauge("events_total", "x", registry=registry)
    Histogram("lat", "x", registry=registry)
    with pytest.raises(ConfigError):
        Gauge("lat_count", "x", registry=registry)
    with pytest.raises(ValueError):
        Summary("lat", "x", registry=registry)
    # another registry is another namespace
    Counter("events", "x", registry=CollectorRegistry())
    # unregister frees the name
    g = Gauge("temp", "x", registry=registry)
    registry.unregister(g)
    Gauge("temp", "x", registry=registry)


def test_cardinality_cap_counts_dropped_series():
    registry = CollectorRegistry()
    c = Counter("per_user", "x", ["user"], registry=registry, max_series=5)
    h = Histogram("per_path_seconds", "x", ["path"], registry=registry, max_series=3)
    for i in range(20):
        c.labels(f"u{i}").inc()
        h.labels(f"/p{i}").observe(0.1)
    text = generate_latest(registry).decode()
    fams = families(text)
    users = [s for s in fams["per_user"].samples if s.name == "per_user_total"]
    assert sorted(s.labels["user"] for s in users) == [f"u{i}" for i in range(5)]
    assert all(s.value == 1 for s in users)
    paths = {s.labels["path"] for s in fams["per_path_seconds"].samples}
    assert paths == {"/p0", "/p1", "/p2"}
    dropped = fams["ferrotick_metric_series_dropped"]
    assert dropped.type == "counter"
    got = {s.labels["metric"]: s.value for s in dropped.samples}
    assert got == {"per_user": 15, "per_path_seconds": 17}
    # OpenMetrics too
    om = samples(generate_openmetrics(registry).decode(), parse_openmetrics)
    assert om[("ferrotick_metric_series_dropped_total", (("metric", "per_user"),))] == 15


def test_invalid_values_raise_config_error():
    registry = CollectorRegistry()
    c = Counter("c", "x", registry=registry)
    c.inc(2)
    with pytest.raises(ConfigError):
        c.inc(-1)
    with pytest.raises(ConfigError):
        c.inc(float("nan"))
    assert c.get() == 2
    h = Histogram("h", "x", registry=registry)
    s = Summary("s", "x", ["k"], registry=registry)
    with pytest.raises(ConfigError):
        h.observe(float("nan"))
    with pytest.raises(ConfigError):
        s.labels("a").observe(math.nan)
    assert h.summary()["count"] == 0
    assert s.labels("a").summary()["count"] == 0
    g = Gauge("g", "x", registry=registry)
    with pytest.raises(ConfigError):
        g.inc(float("nan"))


def test_label_misuse_raises():
    registry = CollectorRegistry()
    c = Counter("c", "x", ["a", "b"], registry=registry)
    with pytest.raises(ConfigError):
        c.labels("only-one")
    with pytest.raises(ConfigError):
        c.labels(a="1", c="2")
    with pytest.raises(ConfigError):
        c.inc()  # labelled metric used without labels
    plain = Counter("p", "x", registry=registry)
    with pytest.raises(ConfigError):
        plain.labels("x")
    c.labels(1, 2.5).inc()  # non-str values are str()-ed
    assert registry.get_sample_value("c_total", {"a": "1", "b": "2.5"}) == 1


def test_remove_clear_and_set_function():
    registry = CollectorRegistry()
    c = Counter("c", "x", ["k"], registry=registry)
    c.labels("a").inc()
    c.labels("b").inc()
    c.remove("a")
    assert registry.get_sample_value("c_total", {"k": "a"}) is None
    assert registry.get_sample_value("c_total", {"k": "b"}) == 1
    c.clear()
    assert registry.get_sample_value("c_total", {"k": "b"}) is None
    g = Gauge("fn", "x", registry=registry)
    box = [3.0]
    g.set_function(lambda: box[0])
    assert registry.get_sample_value("fn") == 3.0
    box[0] = 4.5
    assert registry.get_sample_value("fn") == 4.5


def test_reset_forgets_percentiles_too():
    registry = CollectorRegistry()
    s = Summary("s", "x", ["k"], registry=registry)
    child = s.labels("a")
    for v in (1.0, 2.0, 3.0):
        child.observe(v)
    child.reset()
    after = child.summary()
    assert after["count"] == 0 and after["sum"] == 0
    assert math.isnan(after["p50"]) and math.isnan(after["max"])
    assert after["window"]["count"] == 0
    got = samples(generate_latest(registry).decode())
    assert not any(name == "s" for name, _ in got)  # no quantiles of forgotten data


# -- behaving as prometheus_client does ----------------------------------------------
# Each test runs against prometheus_client too, so that the expectation is the peer's.

MODULES = [
    pytest.param(__import__("ferrotick.monitor", fromlist=["Counter"]), id="ferrotick"),
    pytest.param(prometheus_client, id="prometheus_client"),
]


@pytest.mark.parametrize("mod", MODULES)
def test_clear_on_an_unlabelled_metric_keeps_recording(mod):
    registry = mod.CollectorRegistry()
    c = mod.Counter("c", "x", registry=registry)
    g = mod.Gauge("g", "x", registry=registry)
    h = mod.Histogram("h", "x", buckets=(1.0,), registry=registry)
    s = mod.Summary("s", "x", registry=registry)
    c.inc(2)
    g.set(5)
    h.observe(0.5)
    s.observe(3)
    for m in (c, g, h, s):
        m.clear()  # no label sets to remove: nothing changes
    c.inc()
    g.inc()
    h.observe(2)
    s.observe(4)
    assert registry.get_sample_value("c_total") == 3
    assert registry.get_sample_value("g") == 6
    assert registry.get_sample_value("h_count") == 2
    assert registry.get_sample_value("h_bucket", {"le": "1.0"}) == 1
    assert registry.get_sample_value("s_sum") == 7


@pytest.mark.parametrize("mod", MODULES)
def test_remove_with_a_wrong_label_count_raises(mod):
    registry = mod.CollectorRegistry()
    c = mod.Counter("c", "x", ["a", "b"], registry=registry)
    c.labels("1", "2").inc()
    for values in [("1",), ("1", "2", "3"), ()]:
        with pytest.raises(ValueError, match="Incorrect label count"):
            c.remove(*values)
    assert registry.get_sample_value("c_total", {"a": "1", "b": "2"}) == 1
    plain = mod.Counter("p", "x", registry=registry)
    with pytest.raises(ValueError, match="No label names were set"):
        plain.remove()
    plain.inc()
    assert registry.get_sample_value("p_total") == 1


@pytest.mark.parametrize("mod", MODULES)
def test_labels_on_a_child_raises_value_error(mod):
    registry = mod.CollectorRegistry()
    c = mod.Counter("c", "x", ["a"], registry=registry)
    child = c.labels("1")
    with pytest.raises(ValueError, match=r"already has labels set.*can not chain calls"):
        child.labels("2")
    with pytest.raises(ValueError, match="already has labels set"):
        child.labels(a="2")
    child.inc()
    assert registry.get_sample_value("c_total", {"a": "1"}) == 1


def openmetrics_of(mod, registry) -> str:
    if mod is prometheus_client:
        from prometheus_client.openmetrics.exposition import generate_latest as om_latest

        return om_latest(registry).decode()
    return generate_openmetrics(registry).decode()


# (metric kind, name) pairs: the second clashes with a series the first exposes
CLASHES = [
    ("Counter", "c", "Gauge", "c_created"),
    ("Counter", "c", "Gauge", "c_total"),
    ("Counter", "c", "Gauge", "c"),
    ("Counter", "c_total", "Histogram", "c"),
    ("Histogram", "h", "Gauge", "h_created"),
    ("Histogram", "h", "Gauge", "h_bucket"),
    ("Histogram", "h", "Counter", "h_count"),
    ("Histogram", "h", "Summary", "h_sum"),
    ("Summary", "s", "Gauge", "s_created"),
    ("Summary", "s", "Gauge", "s_count"),
    ("Summary", "s", "Counter", "s_sum"),
    ("Gauge", "c_created", "Counter", "c"),  # either order
    ("Gauge", "h_bucket", "Histogram", "h"),
    ("Gauge", "s_count", "Summary", "s"),
]


@pytest.mark.parametrize("first, first_name, second, second_name", CLASHES)
@pytest.mark.parametrize("mod", MODULES)
def test_a_name_clashing_with_generated_series_is_refused(
    mod, first, first_name, second, second_name
):
    registry = mod.CollectorRegistry()
    getattr(mod, first)(first_name, "x", registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries in CollectorRegistry"):
        getattr(mod, second)(second_name, "x", registry=registry)
    # what stays registered is exposed in a form OpenMetrics parsers accept
    assert list(parse_openmetrics(openmetrics_of(mod, registry)))


def register_many(mod, registry) -> list[str]:
    """Registers metrics of every kind, some of them clashing with another's
    series; returns the names refused."""
    refused = []
    specs = [
        ("Counter", "requests", {"labelnames": ["method"]}),
        ("Gauge", "requests_created", {}),
        ("Gauge", "requests_total", {}),
        ("Histogram", "latency_seconds", {"labelnames": ["path"], "buckets": (0.1, 1.0)}),
        ("Gauge", "latency_seconds_created", {}),
        ("Counter", "latency_seconds_bucket", {}),
        ("Summary", "payload_bytes", {}),
        ("Gauge", "payload_bytes_created", {}),
        ("Gauge", "payload_bytes_count", {}),
        ("Gauge", "depth", {"labelnames": ["queue"]}),
        ("Counter", "depth_created", {}),  # exposes depth_created_total: no clash
        ("Counter", "jobs_total", {}),
        ("Gauge", "jobs_created", {}),
        ("Summary", "job_seconds", {"labelnames": ["kind"]}),
        ("Histogram", "job_seconds_created", {}),
        ("Histogram", "job_seconds_total", {}),  # summaries have no _total: no clash
    ]
    metrics = {}
    for kind, name, kw in specs:
        try:
            metrics[name] = (kind, getattr(mod, kind)(name, "help", registry=registry, **kw))
        except ValueError:
            refused.append(name)
    for kind, m in metrics.values():
        if m._labelnames:
            m = m.labels("x")
        if kind in ("Histogram", "Summary"):
            m.observe(0.5)
        else:
            m.inc(2)
    return refused


def test_exposition_with_near_clashing_names_parses_as_openmetrics():
    registry = CollectorRegistry(include_runtime=True)
    refused = register_many(__import__("ferrotick.monitor", fromlist=["Counter"]), registry)
    om = generate_openmetrics(registry).decode()
    got = samples(om, parse_openmetrics)
    text = generate_latest(registry).decode()
    assert samples(text)[("latency_seconds_count", (("path", "x"),))] == 1
    assert got[("requests_total", (("method", "x"),))] == 2
    assert got[("depth_created_total", ())] == 2
    assert got[("job_seconds_total_count", ())] == 1
    assert got[("job_seconds_count", (("kind", "x"),))] == 1
    # prometheus_client refuses the same names and exposes the same samples
    # (apart from the legitimate extras)
    theirs = prometheus_client.CollectorRegistry()
    assert refused == register_many(prometheus_client, theirs)
    assert refused == [
        "requests_created",
        "requests_total",
        "latency_seconds_created",
        "latency_seconds_bucket",
        "payload_bytes_created",
        "payload_bytes_count",
        "jobs_created",
        "job_seconds_created",
    ]
    want = without_extras(samples(openmetrics_of(prometheus_client, theirs), parse_openmetrics))
    ours = {k: v for k, v in without_extras(got).items() if not k[0].startswith("ferrotick_")}
    assert ours == want
