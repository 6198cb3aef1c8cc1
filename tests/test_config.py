"""``ferrotick.load_config``: the shipped example loads, documents every key with its
default and builds every object; bad files fail in one line naming the file, the line
and the key; secrets stay out of reprs and messages; a client built from a file talks
to the simulated exchange."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import run_python

import ferrotick
from ferrotick import ConfigError, FerrotickConfig, load_config
from ferrotick.config import (
    EXAMPLE_PATH,
    AsyncFeaturesConfig,
    MonitorConfig,
    SchedulerConfig,
    _file_section,
)
from ferrotick.exchange import BinanceConfig, OptimizedBinanceClient, Secret
from ferrotick.http import AsyncHTTPClient, ConnectionPoolConfig, RetryConfig, RetryStrategy
from ferrotick.monitor import AsyncPerformanceMonitor, CollectorRegistry, generate_latest
from ferrotick.pipeline import AsyncConfig
from ferrotick.scheduler import AsyncScheduler, MemoryJobStore, RedisJobStore, SQLiteJobStore
from ferrotick.sim import DEFAULT_API_KEY, DEFAULT_API_SECRET, SimulatedExchange
from ferrotick.store import InfluxDBConfig, InfluxDBWriter

KEY = "example-key-0123456789"
SECRET = "example-secret-9876543210"
ENV = {"BINANCE_API_KEY": KEY, "BINANCE_API_SECRET": SECRET}


def write(tmp_path: Path, text: str, name: str = "config.yml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


def error_of(path: Path | str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as e:
        load_config(path, env=env if env is not None else {})
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# -- the example file ---------------------------------------------------------------


def test_the_example_ships_inside_the_package():
    assert EXAMPLE_PATH.parent == Path(ferrotick.__file__).parent
    assert EXAMPLE_PATH.is_file()


def test_the_example_holds_the_defaults(tmp_path):
    cfg = load_config(EXAMPLE_PATH, env=ENV)
    assert cfg.path == str(EXAMPLE_PATH)
    assert cfg.async_features == AsyncFeaturesConfig()
    assert vars(cfg.binance) == vars(BinanceConfig(api_key=KEY, api_secret=SECRET))
    assert cfg.influxdb == InfluxDBConfig(database="trading_data")
    assert cfg.pipeline == AsyncConfig()
    assert cfg.scheduler == SchedulerConfig()
    assert cfg.monitor == MonitorConfig()
    # and so does a file with no settings at all, except that it has no influxdb
    empty = load_config(write(tmp_path, "# nothing set\n"), env={})
    assert empty.influxdb is None and empty.monitor == MonitorConfig()
    assert vars(empty.binance) == vars(BinanceConfig())


def _keys(section, prefix="") -> set[str]:
    out = {prefix + k for k in section.fields}
    for k, sub in section.nested.items():
        out |= _keys(sub, f"{prefix}{k}.")
    return out


def _file_keys(d: dict, prefix="") -> set[str]:
    out = set()
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _file_keys(v, f"{prefix}{k}.")
        else:
            out.add(prefix + k)
    return out


def test_the_example_documents_every_key():
    known = _keys(_file_section(str(EXAMPLE_PATH)))
    in_file = _file_keys(yaml.safe_load(EXAMPLE_PATH.read_text()))
    assert in_file == known, (sorted(known - in_file), sorted(in_file - known))
    # every key has a comment: on its line, or above it (above a run of keys without
    # comments of their own, or above the section it opens)
    lines = EXAMPLE_PATH.read_text().splitlines()

    def kind(line: str) -> str:
        body = line.split("#")[0].strip()
        if line.strip().startswith("#"):
            return "comment"
        if not body:
            return "blank"
        return "header" if body.endswith(":") else "key"

    for i, line in enumerate(lines):
        if kind(line) != "key" or "#" in line:
            continue
        j = i - 1
        while j >= 0 and kind(lines[j]) == "key" and "#" not in lines[j]:
            j -= 1
        ok = j >= 0 and (
            kind(lines[j]) == "comment"
            or (kind(lines[j]) == "header" and j > 0 and kind(lines[j - 1]) == "comment")
        )
        assert ok, f"line {i + 1} has no comment: {line}"


@pytest.mark.parametrize(
    "cls, section, exclude",
    [
        (BinanceConfig, "binance", set()),
        (InfluxDBConfig, "influxdb", set()),
        (AsyncConfig, "pipeline", set()),
        (ConnectionPoolConfig, "async_features.connection_pool", {"connector_limit"}),
        (RetryConfig, "async_features.retry", {"retry_on_exceptions"}),
    ],
)
def test_every_setting_of_a_config_class_can_be_written(cls, section, exclude):
    sec = _file_section("config.yml")
    for part in section.split("."):
        sec = sec.nested[part]
    params = set(inspect.signature(cls).parameters) - exclude
    assert params <= set(sec.fields), sorted(params - set(sec.fields))


@pytest.mark.asyncio
async def test_the_example_builds_every_object():
    cfg = load_config(EXAMPLE_PATH, env=ENV)
    http = cfg.http_client()
    try:
        assert isinstance(http, AsyncHTTPClient)
        assert http.config.connector_limit == 100
        assert http.retry_config == RetryConfig()
    finally:
        await http.close()
    batcher = cfg.request_batcher()
    assert batcher is not None and batcher.config.batch_size == 10
    assert await batcher.add_request(lambda: 42) == 42
    await batcher.close()
    limiter = cfg.rate_limiter()
    assert limiter is not None and (limiter.max_requests, limiter.time_window) == (10, 1.0)
    breaker = cfg.circuit_breaker()
    assert breaker is not None and breaker.config.failure_threshold == 5
    client = cfg.binance_client()
    assert isinstance(client, OptimizedBinanceClient) and client.config is cfg.binance
    assert client.config.api_secret == Secret(SECRET)
    writer = cfg.influxdb_writer()
    assert isinstance(writer, InfluxDBWriter) and writer.config is cfg.influxdb
    await writer.close()
    scheduler = cfg.async_scheduler()
    assert isinstance(scheduler, AsyncScheduler)
    assert isinstance(scheduler._stores["default"], MemoryJobStore)
    monitor = cfg.performance_monitor()
    assert isinstance(monitor, AsyncPerformanceMonitor) and monitor.enabled
    assert cfg.start_metrics_server() is None  # no port in the example


def test_seed_003s_file_loads_once_influxdb_names_its_database(tmp_path):
    seed = """
        async_features:
          enable_connection_pooling: true
          enable_request_batching: true
          enable_rate_limiting: true
          batch_size: 10
          max_concurrent_requests: 50

        binance:
          rate_limit_requests_per_minute: 1200
          rate_limit_orders_per_second: 10
          enable_websockets: true

        influxdb:
          batch_size: 1000
          flush_interval: 2.0
          enable_batching: true
        """
    p = write(tmp_path, seed)
    assert error_of(p) == (
        f"{p}:13: influxdb.database: expected a database name (or bucket+org+token), got None"
    )
    p = write(tmp_path, seed.rstrip(" ") + "          database: trading_data\n")
    cfg = load_config(p, env={})
    assert cfg.async_features.max_concurrent_requests == 50
    assert cfg.async_features.batching.batch_size == 10
    assert cfg.binance.rate_limit_requests_per_minute == 1200
    assert cfg.binance.rate_limit_orders_per_second == 10
    assert cfg.binance.api_key is None
    assert cfg.influxdb is not None and cfg.influxdb.flush_interval == 2.0


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            """
            binance:
              timeout: 5
              rate_limit_request_per_minute: 1200
            """,
            "3: binance.rate_limit_request_per_minute: unknown key "
            "(did you mean rate_limit_requests_per_minute?)",
        ),
        (
            """
            binanse:
              timeout: 5
            """,
            "1: binanse: unknown key (did you mean binance?)",
        ),
        (
            """
            monitor:
              zzz: 1
            """,
            "2: monitor.zzz: unknown key (known: buckets, enabled, max_operations, "
            "metrics_addr, metrics_port, report_interval, window_minutes)",
        ),
        (
            """
            binance:

              rate_limit_requests_per_minute: abc
            """,
            "3: binance.rate_limit_requests_per_minute: expected an integer or null, got 'abc'",
        ),
        (
            """
            binance:
              enable_websockets: "false"
            """,
            "2: binance.enable_websockets: expected true or false, got 'false'",
        ),
        (
            """
            binance:
              batch_size: 0
            """,
            "2: binance.batch_size: an int of at least 1, got 0",
        ),
        (
            """
            pipeline:
              max_concurrent_symbols: 1.5
            """,
            "2: pipeline.max_concurrent_symbols: expected an integer, got 1.5",
        ),
        (
            """
            pipeline:
              backoff_factor: 0.5
            """,
            "2: pipeline.backoff_factor: expected a number >= 1, got 0.5",
        ),
        (
            """
            async_features:
              retry:
                strategy: quadratic
            """,
            "3: async_features.retry.strategy: expected one of 'exponential', 'linear', "
            "'fixed', got 'quadratic'",
        ),
        (
            """
            async_features:
              retry:
                retry_on_status: [429, oops]
            """,
            "3: async_features.retry.retry_on_status[1]: expected an integer, got 'oops'",
        ),
        (
            """
            async_features:
              circuit_breaker:
                recovery_timeout: -1
            """,
            "3: async_features.circuit_breaker.recovery_timeout: must be a finite number "
            "of seconds >= 0, got -1",
        ),
        (
            """
            async_features:
              connection_pool:
                connector_limit: 5
            """,
            "3: async_features.connection_pool.connector_limit: set "
            "async_features.max_concurrent_requests (the pool's connector_limit)",
        ),
        (
            """
            scheduler:
              timezone: Mars/Olympus
            """,
            "2: scheduler.timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            """
            scheduler:
              job_defaults:
                misfire_grace_time: -3
            """,
            "3: scheduler.job_defaults.misfire_grace_time: expected None or seconds >= 0, got -3",
        ),
        (
            """
            scheduler:
              jobstore: mongodb://db
            """,
            "2: scheduler.jobstore: expected 'memory', 'sqlite:PATH' or a redis:// URL, "
            "got 'mongodb://db'",
        ),
        (
            """
            monitor:
              buckets: [0.1, 0.05]
            """,
            "2: monitor.buckets: bounds must be in strictly increasing order",
        ),
        (
            """
            influxdb:
              database: trading
              database: again
            """,
            "3: influxdb.database: duplicate key (first on line 2)",
        ),
        (
            """
            binance: [1, 2]
            """,
            "1: binance: expected a mapping of settings, got a list",
        ),
        (
            """
            - binance
            """,
            "1: expected a mapping of settings, got a list",
        ),
        (
            """
            binance:
              base_url: ${BASE
            """,
            "2: binance.base_url: unclosed ${ in the value (write $${ for a literal ${)",
        ),
        (
            """
            binance:
              base_url: ${1BAD}
            """,
            "2: binance.base_url: bad environment reference ${1BAD}: "
            "expected ${NAME} or ${NAME:-default}",
        ),
    ],
)
def test_a_bad_setting_is_named_with_its_file_and_line(tmp_path, text, expected):
    p = write(tmp_path, text)
    assert error_of(p) == f"{p}:{expected}"


def test_an_unset_environment_variable_is_named_with_its_key(tmp_path):
    p = write(
        tmp_path,
        """
        binance:
          api_key: ${BINANCE_API_KEY}
          api_secret: ${BINANCE_API_SECRET}
        """,
    )
    assert error_of(p, {"BINANCE_API_KEY": KEY}) == (
        f"{p}:3: binance.api_secret: environment variable BINANCE_API_SECRET is not set "
        "(give a default with ${BINANCE_API_SECRET:-...})"
    )


def test_a_missing_or_unreadable_file_is_one_line(tmp_path):
    assert error_of(tmp_path / "nope.yml") == f"{tmp_path / 'nope.yml'}: no such config file"
    assert error_of(tmp_path) == f"{tmp_path}: is a directory, not a config file"
    bad = tmp_path / "latin1.yml"
    bad.write_bytes(b"binance:\n  base_url: caf\xe9\n")
    assert error_of(bad) == f"{bad}: not a UTF-8 text file"


def test_a_yaml_syntax_error_names_its_line(tmp_path):
    p = write(
        tmp_path,
        """
        binance:
          timeout: 5
            recv_window: 1000
        """,
    )
    assert error_of(p) == f"{p}:3: invalid YAML: mapping values are not allowed here"
    p = write(tmp_path, "binance:\n  batch_size: [1, 2\n  timeout: 3\n")
    assert error_of(p).startswith(f"{p}:3: invalid YAML: ")
    assert "started on line 2" in error_of(p)


def test_the_path_comes_from_the_argument_or_FERROTICK_CONFIG(tmp_path):
    p = write(tmp_path, "binance:\n  timeout: 7\n")
    assert load_config(str(p), env={}).binance.timeout == 7.0
    assert load_config(p, env={}).binance.timeout == 7.0
    assert load_config(env={"FERROTICK_CONFIG": str(p)}).binance.timeout == 7.0
    with pytest.raises(ConfigError, match="no config file given and FERROTICK_CONFIG is not set"):
        load_config(env={})
    with pytest.raises(ConfigError, match=r"path: expected a file path .*got 42"):
        load_config(42)  # type: ignore[arg-type]


# -- environment variables ------------------------------------------------------------


def test_environment_values_are_typed_like_the_text_they_hold(tmp_path):
    p = write(
        tmp_path,
        """
        binance:
          api_key: ${KEY}
          timeout: ${TIMEOUT:-2.5}
          base_url: http://${HOST:-127.0.0.1}:${PORT}
        influxdb:
          database: "${DB}"
          retention_policy: a$${b}
          username: ${USER_NAME:-}
          flush_interval: 1e-3
        monitor:
          metrics_port: ${PORT}
        """,
    )
    cfg = load_config(p, env={"KEY": "123456", "PORT": "9100", "DB": "42", "USER_NAME": ""})
    assert cfg.binance.api_key == Secret("123456")  # digits, still a string for a string key
    assert cfg.binance.timeout == 2.5
    assert cfg.binance.base_url == "http://127.0.0.1:9100"
    assert cfg.monitor.metrics_port == 9100
    assert cfg.influxdb is not None
    assert cfg.influxdb.database == "42"
    assert cfg.influxdb.retention_policy == "a${b}"
    assert cfg.influxdb.username is None
    assert cfg.influxdb.flush_interval == 0.001
    q = write(tmp_path, 'monitor:\n  metrics_port: "${PORT}"\n', "quoted.yml")
    assert error_of(q, {"PORT": "9100"}) == (
        f"{q}:2: monitor.metrics_port: expected an integer or null, got '9100'"
    )


# -- secrets --------------------------------------------------------------------------


def test_secrets_appear_in_no_repr_str_or_message(tmp_path):
    env = {
        **ENV,
        "INFLUX_TOKEN": "influx-token-abcdef",
        "REDIS_URL": "redis://app:redis-pass-xyz@127.0.0.1:6379/0",
    }
    p = write(
        tmp_path,
        """
        binance:
          api_key: ${BINANCE_API_KEY}
          api_secret: ${BINANCE_API_SECRET}
        influxdb:
          bucket: b
          org: o
          token: ${INFLUX_TOKEN}
        scheduler:
          jobstore: ${REDIS_URL}
        """,
    )
    cfg = load_config(p, env=env)
    assert cfg.influxdb is not None and cfg.influxdb.token == "influx-token-abcdef"
    assert cfg.binance.api_key is not None and cfg.binance.api_key.get_secret_value() == KEY
    shown = repr(cfg) + str(cfg) + repr(cfg.scheduler) + repr(cfg.influxdb)
    for s in (KEY, SECRET, "influx-token-abcdef", "redis-pass-xyz"):
        assert s not in shown
    assert isinstance(cfg.async_scheduler()._stores["default"], RedisJobStore)

    # a secret given to the wrong key, a secret of the wrong type, a bad URL
    bad = write(
        tmp_path,
        """
        binance:
          recv_window: ${BINANCE_API_SECRET}
          api_secret: ${BINANCE_API_SECRET}
        """,
        "bad.yml",
    )
    msg = error_of(bad, env)
    assert msg == f"{bad}:2: binance.recv_window: expected an integer, got '***'"
    bad = write(tmp_path, "binance:\n  base_url: ${BINANCE_API_SECRET}\n", "bad1.yml")
    msg = error_of(bad, env)
    assert msg == f"{bad}:2: binance.base_url: an http(s) URL, got '***'"
    bad = write(tmp_path, "influxdb:\n  token: [1, 2]\n", "bad2.yml")
    assert error_of(bad, env) == f"{bad}:2: influxdb.token: expected a string or null, got a list"
    bad = write(tmp_path, "scheduler:\n  jobstore: redis://app:redis-pass-xyz@/0\n", "bad3.yml")
    msg = error_of(bad, env)
    assert "redis-pass-xyz" not in msg and msg.startswith(f"{bad}:2: scheduler.jobstore: ")


# -- sections -------------------------------------------------------------------------


def test_influxdb_absent_or_disabled_is_none(tmp_path):
    p = write(tmp_path, "influxdb:\n  enabled: false\n  batch_size: 10\n")
    cfg = load_config(p, env={})
    assert cfg.influxdb is None
    with pytest.raises(ConfigError, match=r"influxdb: no influxdb section \(or enabled: false\)"):
        cfg.influxdb_writer()
    assert FerrotickConfig().influxdb is None


@pytest.mark.asyncio
async def test_async_features_switches(tmp_path):
    p = write(
        tmp_path,
        """
        async_features:
          enable_connection_pooling: false
          enable_request_batching: false
          enable_rate_limiting: false
          max_concurrent_requests: 7
          batch_timeout: 0.5
          connection_pool:
            timeout_total: null
          retry:
            max_retries: 0
            strategy: linear
          circuit_breaker:
            enabled: false
        """,
    )
    cfg = load_config(p, env={})
    f = cfg.async_features
    assert f.connection_pool == ConnectionPoolConfig(
        connector_limit=7, keepalive_timeout=0.0, timeout_total=None
    )
    assert f.max_concurrent_requests == 7
    assert f.batching.batch_timeout == 0.5
    assert f.retry == RetryConfig(max_retries=0, strategy=RetryStrategy.LINEAR_BACKOFF)
    assert f.circuit_breaker is None
    assert cfg.request_batcher() is None
    assert cfg.rate_limiter() is None
    assert cfg.circuit_breaker() is None
    http = cfg.http_client(base_url="http://127.0.0.1:1")
    assert http.config.connector_limit == 7 and http.base_url == "http://127.0.0.1:1"
    await http.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("pooling, connections", [("true", 1), ("false", 4)])
async def test_connection_pooling_reuses_or_closes_connections(tmp_path, pooling, connections):
    accepted = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    p = write(tmp_path, f"async_features:\n  enable_connection_pooling: {pooling}\n")
    http = load_config(p, env={}).http_client()
    try:
        for _ in range(4):
            r = await http.get(f"http://127.0.0.1:{port}/")
            assert await r.read() == b"ok"
            await asyncio.sleep(0.02)
        assert accepted == connections
    finally:
        await http.close()
        server.close()


def test_scheduler_section_builds_its_store(tmp_path):
    p = write(
        tmp_path,
        """
        scheduler:
          timezone: Europe/London
          executor_workers: 3
          jobstore: sqlite:jobs/sched.db
          on_store_error: run_local
          job_defaults:
            misfire_grace_time: 30
            max_instances: 2
        """,
    )
    cfg = load_config(p, env={})
    s = cfg.scheduler
    assert s.jobstore == f"sqlite:{tmp_path / 'jobs' / 'sched.db'}"
    assert s.job_defaults == {
        "misfire_grace_time": 30.0,
        "coalesce": True,
        "max_instances": 2,
        "lease_time": None,
    }
    sched = cfg.async_scheduler()
    store = sched._stores["default"]
    assert isinstance(store, SQLiteJobStore) and store.path == str(tmp_path / "jobs" / "sched.db")
    assert str(sched.timezone) == "Europe/London"
    assert sched.on_store_error == "run_local"
    assert sched._executor_workers == 3
    absolute = write(tmp_path, "scheduler:\n  jobstore: sqlite:///var/tmp/x.db\n", "abs.yml")
    assert load_config(absolute, env={}).scheduler.jobstore == "sqlite:/var/tmp/x.db"


def test_monitor_section_shapes_the_monitor(tmp_path):
    p = write(
        tmp_path,
        """
        monitor:
          enabled: false
          report_interval: 60
          buckets: [0.001, 0.01, 0.1, 1]
          window_minutes: 2
          max_operations: 50
          metrics_port: 0
          metrics_addr: 127.0.0.1
        """,
    )
    cfg = load_config(p, env={})
    registry = CollectorRegistry()
    m = cfg.performance_monitor(registry)
    assert m.registry is registry and m.enabled is False and m.report_interval == 60.0
    m.enabled = True
    with m.track_operation("op"):
        pass
    text = generate_latest(registry).decode()
    assert 'le="0.01"' in text and 'le="0.005"' not in text
    server, thread = cfg.start_metrics_server(registry)
    try:
        import urllib.request

        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            assert b"async_operation_duration_seconds" in r.read()
    finally:
        server.shutdown()
        thread.join(5)


def test_the_config_object_is_frozen_and_typed():
    cfg = FerrotickConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.binance = BinanceConfig()  # type: ignore[misc]
    with pytest.raises(ConfigError, match="binance: expected a BinanceConfig, got dict"):
        FerrotickConfig(binance={})  # type: ignore[arg-type]


# -- against the simulated exchange ---------------------------------------------------


@pytest.mark.asyncio
async def test_a_client_from_the_file_talks_to_the_simulated_exchange(tmp_path):
    p = write(
        tmp_path,
        """
        binance:
          api_key: ${BINANCE_API_KEY}
          api_secret: ${BINANCE_API_SECRET}
          base_url: ${BINANCE_BASE_URL}
          timeout: 5.0
          rate_limit_requests_per_minute: 600
        """,
    )
    async with SimulatedExchange(["BTCUSDT"]) as ex:
        env = {
            "BINANCE_API_KEY": DEFAULT_API_KEY,
            "BINANCE_API_SECRET": DEFAULT_API_SECRET,
            "BINANCE_BASE_URL": ex.base_url,
        }
        cfg = load_config(p, env=env)
        async with cfg.binance_client() as client:
            t = await client.get_server_time()
            assert abs(t - ex.server_time()) < 5_000
            account = await client.get_account_info()  # signed with the file's secret
            assert {b["asset"] for b in account["balances"]} >= {"BTC", "USDT"}


# -- python -m ferrotick.config -------------------------------------------------------


def test_the_command_checks_a_file_and_prints_the_example(tmp_path):
    good = write(tmp_path, "binance:\n  timeout: 3\n")
    bad = write(tmp_path, "binance:\n  timeout: x\n", "bad.yml")
    code = "import sys; from ferrotick.config import main; sys.exit(main(sys.argv[1:]))"
    ok = run_python(f"import sys; sys.argv[1:] = [{str(good)!r}]\n{code}")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"{good}: ok (binance https://api.binance.com, influxdb off)"
    no = run_python(f"import sys; sys.argv[1:] = [{str(bad)!r}]\n{code}")
    assert no.returncode == 1
    assert no.stderr.strip() == f"{bad}:2: binance.timeout: expected a number, got 'x'"
    ex = run_python(f"import sys; sys.argv[1:] = ['--example']\n{code}")
    assert ex.returncode == 0 and ex.stdout == EXAMPLE_PATH.read_text()
    m = subprocess.run(
        [sys.executable, "-m", "ferrotick.config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert m.returncode == 1 and m.stderr.strip() == no.stderr.strip()
