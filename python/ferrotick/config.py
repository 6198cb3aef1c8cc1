"""One YAML file for a service: ``ferrotick.load_config(path)``.

::

    import ferrotick

    cfg = ferrotick.load_config("config.yml")        # or $FERROTICK_CONFIG
    async with cfg.binance_client() as client:       # OptimizedBinanceClient
        print(await client.get_server_time())
    http = cfg.http_client()                         # AsyncHTTPClient: pool, retry, breaker
    scheduler = cfg.async_scheduler()                # AsyncScheduler with its job store
    async with cfg.influxdb_writer() as writer:      # InfluxDBWriter
        ...

The sections are seed 003's ``async_features``, ``binance`` and ``influxdb``, plus
``pipeline``, ``scheduler`` and ``monitor``; every section and every key is optional.
The shipped example (``EXAMPLE_PATH``, ``python -m ferrotick.config --example``) lists
every key with its default and meaning.

- ``async_features``: the HTTP layer (``AsyncHTTPClient``, ``RequestBatcher``,
  ``RateLimiter``, ``CircuitBreaker``); see :class:`AsyncFeaturesConfig`.
- ``binance``: the keyword arguments of :class:`ferrotick.exchange.BinanceConfig`.
- ``influxdb``: those of :class:`ferrotick.store.InfluxDBConfig`, plus ``enabled``;
  absent or ``enabled: false`` leaves ``cfg.influxdb`` None.
- ``pipeline``: those of :class:`ferrotick.pipeline.AsyncConfig`.
- ``scheduler``: :class:`SchedulerConfig`; ``monitor``: :class:`MonitorConfig`.

Rules: an unknown key, a value of the wrong type or out of range, a missing file or a
YAML syntax error raise ConfigError in one line naming the file, the line and the
dotted key (``config.yml:12: binance.rate_limit_requests_per_minute: expected an
integer or null, got 'abc'``), with a did-you-mean for a misspelt key. String values
may use ``${VAR}`` or ``${VAR:-default}`` (``$${`` for a literal ``${``); an unset
variable without a default is an error naming the key and the variable. A plain
(unquoted) ``key: ${VAR}`` is typed as if the variable's text were written there, so
``port: ${PORT}`` gives an integer. Secret values (API keys and secrets, tokens,
passwords, the password of a job store URL) appear in no repr, str or message.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import _core
from ._async_utils import (
    BatchConfig,
    CircuitBreaker,
    CircuitBreakerConfig,
    RateLimiter,
    RequestBatcher,
)
from ._configfile import Field, Section, fields_of, path_arg, read
from ._errors import ConfigError
from ._validate import boolean, integer, is_integer, seconds
from .exchange import BinanceConfig, OptimizedBinanceClient
from .http import AsyncHTTPClient, ConnectionPoolConfig, RetryConfig, RetryStrategy
from .monitor import (
    REGISTRY,
    AsyncPerformanceMonitor,
    CollectorRegistry,
    Histogram,
    start_http_server,
)
from .pipeline import AsyncConfig
from .scheduler import (
    AsyncScheduler,
    BaseJobStore,
    MemoryJobStore,
    RedisJobStore,
    SQLiteJobStore,
)
from .scheduler._job import _JOB_OPTIONS, _job_option
from .store import InfluxDBConfig, InfluxDBWriter

__all__ = [
    "EXAMPLE_PATH",
    "AsyncFeaturesConfig",
    "FerrotickConfig",
    "MonitorConfig",
    "RateLimitConfig",
    "SchedulerConfig",
    "load_config",
]

EXAMPLE_PATH: Path = Path(__file__).with_name("config.example.yml")
"""The commented example config file shipped with the package."""


def _default(fn: Callable[..., Any], name: str) -> Any:
    """The default of parameter ``name`` of ``fn``: the one place that default lives."""
    return inspect.signature(fn).parameters[name].default


# -- async_features ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RateLimitConfig:
    """The seed's ``RateLimiter(max_requests, time_window)``: at most ``max_requests``
    acquisitions per ``time_window`` seconds."""

    max_requests: int = 10
    time_window: float = 1.0

    def __post_init__(self) -> None:
        integer("max_requests", self.max_requests, min=1)
        object.__setattr__(
            self, "time_window", seconds("time_window", self.time_window, positive=True)
        )


@dataclasses.dataclass(frozen=True)
class AsyncFeaturesConfig:
    """The ``async_features`` section: settings of the HTTP layer.

    - ``enable_connection_pooling``: keep idle connections for reuse
      (``connection_pool.keepalive_timeout`` seconds); false closes each connection
      after its request.
    - ``enable_request_batching``: ``request_batcher()`` returns a
      :class:`RequestBatcher` with ``batching`` (false: None).
    - ``enable_rate_limiting``: ``rate_limiter()`` returns a :class:`RateLimiter` with
      ``rate_limit`` (false: None).
    - ``connection_pool``: the client's :class:`ConnectionPoolConfig`; the file's
      ``max_concurrent_requests`` is its ``connector_limit`` (requests in flight at
      once; more wait for a slot).
    - ``batching``: the :class:`BatchConfig` of the file's ``batch_size``,
      ``batch_timeout`` and ``max_concurrent_batches``.
    - ``retry``: the client's :class:`RetryConfig` (``max_retries: 0`` disables).
    - ``circuit_breaker``: the client's :class:`CircuitBreakerConfig`, None when the
      file says ``enabled: false``.
    """

    enable_connection_pooling: bool = True
    enable_request_batching: bool = True
    enable_rate_limiting: bool = True
    connection_pool: ConnectionPoolConfig = dataclasses.field(default_factory=ConnectionPoolConfig)
    batching: BatchConfig = dataclasses.field(default_factory=BatchConfig)
    retry: RetryConfig = dataclasses.field(default_factory=RetryConfig)
    circuit_breaker: CircuitBreakerConfig | None = dataclasses.field(
        default_factory=CircuitBreakerConfig
    )
    rate_limit: RateLimitConfig = dataclasses.field(default_factory=RateLimitConfig)

    def __post_init__(self) -> None:
        for name in ("enable_connection_pooling", "enable_request_batching"):
            boolean(name, getattr(self, name))
        boolean("enable_rate_limiting", self.enable_rate_limiting)
        for name, cls in (
            ("connection_pool", ConnectionPoolConfig),
            ("batching", BatchConfig),
            ("retry", RetryConfig),
            ("rate_limit", RateLimitConfig),
        ):
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(f"{name}: expected a {cls.__name__}")
        if self.circuit_breaker is not None and not isinstance(
            self.circuit_breaker, CircuitBreakerConfig
        ):
            raise ConfigError("circuit_breaker: expected a CircuitBreakerConfig or None")

    @property
    def max_concurrent_requests(self) -> int:
        return int(self.connection_pool.connector_limit)

    def http_client(self, **kwargs: Any) -> AsyncHTTPClient:
        """A new :class:`AsyncHTTPClient` with these settings; ``kwargs`` go to its
        constructor (``base_url=``, ``headers=``, ``cache=``...)."""
        kwargs.setdefault("retry_config", self.retry)
        kwargs.setdefault("circuit_breaker", self.circuit_breaker)
        return AsyncHTTPClient(self.connection_pool, **kwargs)

    def request_batcher(
        self,
        batch_fn: Callable[[list[Any]], Awaitable[Sequence[Any] | dict[Any, Any]]] | None = None,
    ) -> RequestBatcher | None:
        if not self.enable_request_batching:
            return None
        return RequestBatcher(self.batching, batch_fn=batch_fn)

    def rate_limiter(self) -> RateLimiter | None:
        if not self.enable_rate_limiting:
            return None
        return RateLimiter(self.rate_limit.max_requests, self.rate_limit.time_window)

    def make_circuit_breaker(self) -> CircuitBreaker | None:
        if self.circuit_breaker is None:
            return None
        return CircuitBreaker(self.circuit_breaker)


def _pool_settings(v: dict[str, Any]) -> dict[str, Any]:
    for name in (
        "timeout_total",
        "timeout_connect",
        "keepalive_timeout",
        "timeout_read",
        "pool_timeout",
        "deadline",
    ):
        if name in v:
            seconds(name, v[name], allow_none=True, expected="None or seconds >= 0")
    for name in ("connector_limit_per_host", "max_redirects"):
        if name in v:
            integer(name, v[name], min=0)
    return v


def _retry(v: dict[str, Any]) -> RetryConfig:
    statuses = v.get("retry_on_status", ())
    for s in statuses:
        if not is_integer(s, min=100, max=599):
            raise ConfigError(f"retry_on_status: expected HTTP status codes 100-599, got {s!r}")
    r = RetryConfig(**v)
    r._policy()  # the Rust policy checks the bounds
    return r


def _breaker(v: dict[str, Any]) -> CircuitBreakerConfig | None:
    enabled = v.pop("enabled", True)
    c = CircuitBreakerConfig(**v)
    CircuitBreaker(c)  # checks the bounds
    return c if enabled else None


def _features(v: dict[str, Any]) -> AsyncFeaturesConfig:
    pool = dict(v.pop("connection_pool", {}))
    if "max_concurrent_requests" in v:
        pool["connector_limit"] = integer(
            "max_concurrent_requests", v.pop("max_concurrent_requests"), min=1
        )
    if v.get("enable_connection_pooling") is False:
        pool["keepalive_timeout"] = 0.0
    batch = {
        k: v.pop(k) for k in ("batch_size", "batch_timeout", "max_concurrent_batches") if k in v
    }
    return AsyncFeaturesConfig(
        connection_pool=ConnectionPoolConfig(**pool), batching=BatchConfig(**batch), **v
    )


def _features_section() -> Section:
    flags = {
        name: Field(frozenset({"bool"}))
        for name in ("enable_connection_pooling", "enable_request_batching", "enable_rate_limiting")
    }
    return Section(
        fields={
            **flags,
            "max_concurrent_requests": Field(frozenset({"int"})),
            **fields_of(BatchConfig),
        },
        build=_features,
        nested={
            "connection_pool": Section(
                fields_of(ConnectionPoolConfig, exclude=["connector_limit"]),
                _pool_settings,
                hints={
                    "connector_limit": (
                        "set async_features.max_concurrent_requests (the pool's connector_limit)"
                    )
                },
            ),
            "retry": Section(
                fields_of(
                    RetryConfig,
                    exclude=["retry_on_exceptions"],
                    enums={"RetryStrategy": RetryStrategy},
                ),
                _retry,
            ),
            "circuit_breaker": Section(
                {
                    "enabled": Field(frozenset({"bool"})),
                    **fields_of(CircuitBreakerConfig, exclude=["expected_exception"]),
                },
                _breaker,
            ),
            "rate_limit": Section(fields_of(RateLimitConfig), lambda v: RateLimitConfig(**v)),
        },
    )


# -- scheduler -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class SchedulerConfig:
    """The ``scheduler`` section: the settings of :class:`AsyncScheduler`.

    - ``timezone``: the zone of cron and calendar triggers (an IANA name; None: the
      system's zone).
    - ``executor_workers``: threads running plain (non-async) job functions.
    - ``jobstore``: ``memory`` (this process only), ``sqlite:PATH`` (a file; a relative
      PATH is taken from the config file's folder) or a ``redis://`` / ``rediss://`` /
      ``unix://`` URL (processes share the schedule; each run happens once).
    - ``on_store_error``: ``skip`` or ``run_local`` when the job store cannot be reached.
    - ``job_defaults``: ``misfire_grace_time``, ``coalesce``, ``max_instances``,
      ``lease_time`` for jobs that do not set them.
    """

    timezone: str | None = "UTC"
    executor_workers: int = _default(AsyncScheduler, "executor_workers")
    jobstore: str = "memory"
    on_store_error: str = _default(AsyncScheduler, "on_store_error")
    job_defaults: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(_JOB_OPTIONS))

    def __post_init__(self) -> None:
        from .scheduler import get_zone

        if self.timezone is not None:
            if not isinstance(self.timezone, str):
                raise ConfigError(f"timezone: expected a zone name, got {self.timezone!r}")
            get_zone(self.timezone)
        integer("executor_workers", self.executor_workers, min=1)
        if self.on_store_error not in ("skip", "run_local"):
            raise ConfigError(
                f"on_store_error: expected 'skip' or 'run_local', got {self.on_store_error!r}"
            )
        defaults = dict(_JOB_OPTIONS)
        if not isinstance(self.job_defaults, Mapping):
            raise ConfigError("job_defaults: expected a mapping")
        for key, value in self.job_defaults.items():
            if key not in _JOB_OPTIONS:
                raise ConfigError(f"job_defaults: unknown option {key!r}")
            defaults[key] = _job_option(key, value)
        object.__setattr__(self, "job_defaults", defaults)
        self.make_jobstore()  # checks the URL or path

    def make_jobstore(self) -> BaseJobStore:
        """A new job store for ``jobstore``."""
        s = self.jobstore
        if not isinstance(s, str):
            raise ConfigError(f"jobstore: expected a string, got {type(s).__name__}")
        try:
            if s == "memory":
                return MemoryJobStore()
            if s.startswith("sqlite:"):
                path = s[len("sqlite:") :]
                path = path[2:] if path.startswith("//") else path
                return SQLiteJobStore(path)
            if s.startswith(("redis://", "rediss://", "unix://")):
                return RedisJobStore(s)
        except ConfigError as e:
            raise ConfigError(f"jobstore: {e}") from None
        raise ConfigError(
            "jobstore: expected 'memory', 'sqlite:PATH' or a redis:// URL, "
            f"got {_core.redact_url(s)!r}"
        )

    def __repr__(self) -> str:
        return (
            f"SchedulerConfig(timezone={self.timezone!r}, "
            f"executor_workers={self.executor_workers!r}, "
            f"jobstore={_core.redact_url(self.jobstore)!r}, "
            f"on_store_error={self.on_store_error!r}, job_defaults={self.job_defaults!r})"
        )

    def async_scheduler(self, **kwargs: Any) -> AsyncScheduler:
        """A new :class:`AsyncScheduler` (not started) with these settings; ``kwargs``
        go to its constructor (``clock=``...)."""
        kwargs.setdefault("timezone", self.timezone)
        kwargs.setdefault("executor_workers", self.executor_workers)
        kwargs.setdefault("job_defaults", dict(self.job_defaults))
        kwargs.setdefault("on_store_error", self.on_store_error)
        if "jobstores" not in kwargs:
            kwargs.setdefault("jobstore", self.make_jobstore())
        return AsyncScheduler(**kwargs)


def _scheduler_section(base: Path) -> Section:
    def build(v: dict[str, Any]) -> SchedulerConfig:
        store = v.get("jobstore")
        if isinstance(store, str) and store.startswith("sqlite:"):
            path = store[len("sqlite:") :]
            path = path[2:] if path.startswith("//") else path
            if path and not os.path.isabs(path):
                path = str(base / path)
            v["jobstore"] = "sqlite:" + path
        return SchedulerConfig(**v)

    job_fields = {
        "misfire_grace_time": Field(frozenset({"float", "null"})),
        "coalesce": Field(frozenset({"bool"})),
        "max_instances": Field(frozenset({"int"})),
        "lease_time": Field(frozenset({"float", "null"})),
    }
    fields = fields_of(SchedulerConfig, exclude=["job_defaults"])
    return Section(
        fields,
        build,
        nested={
            "job_defaults": Section(
                job_fields, lambda v: {k: _job_option(k, x) for k, x in v.items()}
            )
        },
    )


# -- monitor -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    """The ``monitor`` section: the :class:`AsyncPerformanceMonitor` and the metrics
    endpoint.

    - ``enabled``: false makes tracking a no-op (``monitor.enabled``).
    - ``report_interval``: seconds between the logged reports of
      ``await monitor.start_reporting(cfg.monitor.report_interval)``.
    - ``buckets``: the latency histogram's bucket bounds in seconds (None: the
      monitor's default buckets).
    - ``window_minutes``: the sliding window of the recent percentiles.
    - ``max_operations``: distinct operation names tracked at most.
    - ``metrics_port``/``metrics_addr``: where ``start_metrics_server()`` serves
      Prometheus metrics (port None: no server; 0: any free port).
    """

    enabled: bool = True
    report_interval: float = _default(AsyncPerformanceMonitor.start_reporting, "interval")
    buckets: tuple[float, ...] | None = None
    window_minutes: int = _default(AsyncPerformanceMonitor, "window_minutes")
    max_operations: int = _default(AsyncPerformanceMonitor, "max_operations")
    metrics_port: int | None = None
    metrics_addr: str = _default(start_http_server, "addr")

    def __post_init__(self) -> None:
        boolean("enabled", self.enabled)
        object.__setattr__(
            self,
            "report_interval",
            seconds("report_interval", self.report_interval, positive=True),
        )
        if self.buckets is not None:
            b = tuple(self.buckets)
            Histogram("buckets_check", "", buckets=b, registry=None)  # the monitor's rules
            object.__setattr__(self, "buckets", tuple(float(x) for x in b))
        integer("window_minutes", self.window_minutes, min=1)
        integer("max_operations", self.max_operations, min=1)
        integer("metrics_port", self.metrics_port, min=0, max=65535, allow_none=True)
        if not isinstance(self.metrics_addr, str) or not self.metrics_addr:
            raise ConfigError(f"metrics_addr: expected an address, got {self.metrics_addr!r}")

    def performance_monitor(
        self, registry: CollectorRegistry | None = None
    ) -> AsyncPerformanceMonitor:
        """A new :class:`AsyncPerformanceMonitor` with these settings, its metrics in
        ``registry`` (None: a registry of its own, ``monitor.registry``)."""
        m = AsyncPerformanceMonitor(
            registry,
            buckets=self.buckets,
            window_minutes=self.window_minutes,
            max_operations=self.max_operations,
        )
        m.enabled = self.enabled
        m.report_interval = self.report_interval
        return m

    def start_metrics_server(self, registry: CollectorRegistry | None = None) -> Any:
        """Serves ``registry`` (None: the default one) on ``metrics_addr:metrics_port``
        from a daemon thread, returning ``(server, thread)``; None without a port."""
        if self.metrics_port is None:
            return None
        return start_http_server(
            self.metrics_port, self.metrics_addr, registry if registry is not None else REGISTRY
        )


# -- the file ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FerrotickConfig:
    """A loaded config file: one attribute per section, holding the config objects the
    section built, and builders of the live objects. ``path`` is the file it came from.
    """

    async_features: AsyncFeaturesConfig = dataclasses.field(default_factory=AsyncFeaturesConfig)
    binance: BinanceConfig = dataclasses.field(default_factory=BinanceConfig)
    influxdb: InfluxDBConfig | None = None
    pipeline: AsyncConfig = dataclasses.field(default_factory=AsyncConfig)
    scheduler: SchedulerConfig = dataclasses.field(default_factory=SchedulerConfig)
    monitor: MonitorConfig = dataclasses.field(default_factory=MonitorConfig)
    path: str | None = None

    def __post_init__(self) -> None:
        for name, cls in (
            ("async_features", AsyncFeaturesConfig),
            ("binance", BinanceConfig),
            ("pipeline", AsyncConfig),
            ("scheduler", SchedulerConfig),
            ("monitor", MonitorConfig),
        ):
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(
                    f"{name}: expected a {cls.__name__}, got {type(getattr(self, name)).__name__}"
                )
        if self.influxdb is not None and not isinstance(self.influxdb, InfluxDBConfig):
            raise ConfigError(
                f"influxdb: expected an InfluxDBConfig or None, got {type(self.influxdb).__name__}"
            )

    # -- builders ------------------------------------------------------------------

    def binance_client(self) -> OptimizedBinanceClient:
        """A new :class:`OptimizedBinanceClient` (``async with`` connects it)."""
        return OptimizedBinanceClient(self.binance)

    def processor(self, client: Any = None, **kwargs: Any) -> Any:
        """A new :class:`~ferrotick.pipeline.AsyncDataProcessor` with the ``pipeline``
        limits, fetching through ``client`` (default: a new ``binance_client()``);
        ``kwargs`` go to the processor (``timeframes``, ``sinks``, ...)."""
        from .pipeline import AsyncDataProcessor

        return AsyncDataProcessor(
            self.pipeline, client=client if client is not None else self.binance_client(), **kwargs
        )

    def influxdb_writer(self) -> InfluxDBWriter:
        """A new :class:`InfluxDBWriter` (``async with`` or ``await writer.start()``
        starts its flusher on the running loop); ConfigError without an ``influxdb``
        section."""
        if self.influxdb is None:
            where = self.path or "the config"
            raise ConfigError(f"{where}: influxdb: no influxdb section (or enabled: false)")
        return InfluxDBWriter(self.influxdb)

    def http_client(self, **kwargs: Any) -> AsyncHTTPClient:
        """A new :class:`AsyncHTTPClient` with ``async_features``' pool, retry and
        circuit breaker; ``kwargs`` go to its constructor."""
        return self.async_features.http_client(**kwargs)

    def request_batcher(
        self,
        batch_fn: Callable[[list[Any]], Awaitable[Sequence[Any] | dict[Any, Any]]] | None = None,
    ) -> RequestBatcher | None:
        """A new :class:`RequestBatcher`, or None with request batching disabled."""
        return self.async_features.request_batcher(batch_fn)

    def rate_limiter(self) -> RateLimiter | None:
        """A new :class:`RateLimiter`, or None with rate limiting disabled."""
        return self.async_features.rate_limiter()

    def circuit_breaker(self) -> CircuitBreaker | None:
        """A new :class:`CircuitBreaker`, or None with the breaker disabled."""
        return self.async_features.make_circuit_breaker()

    def async_scheduler(self, **kwargs: Any) -> AsyncScheduler:
        """A new :class:`AsyncScheduler` (not started) with its job store."""
        return self.scheduler.async_scheduler(**kwargs)

    def performance_monitor(
        self, registry: CollectorRegistry | None = None
    ) -> AsyncPerformanceMonitor:
        """A new :class:`AsyncPerformanceMonitor` (see :meth:`MonitorConfig.performance_monitor`)."""
        return self.monitor.performance_monitor(registry)

    def start_metrics_server(self, registry: CollectorRegistry | None = None) -> Any:
        """See :meth:`MonitorConfig.start_metrics_server`."""
        return self.monitor.start_metrics_server(registry)


def _influxdb(v: dict[str, Any]) -> InfluxDBConfig | None:
    # a disabled section is type-checked but not built: it may lack its database
    if not v.pop("enabled", True):
        return None
    return InfluxDBConfig(**v)


def _file_section(path: str) -> Section:
    base = Path(path).resolve().parent
    monitor_fields = fields_of(MonitorConfig)
    return Section(
        fields={},
        build=lambda v: FerrotickConfig(path=path, **v),
        nested={
            "async_features": _features_section(),
            "binance": Section(fields_of(BinanceConfig), lambda v: BinanceConfig(**v)),
            "influxdb": Section(
                {"enabled": Field(frozenset({"bool"})), **fields_of(InfluxDBConfig)}, _influxdb
            ),
            "pipeline": Section(fields_of(AsyncConfig), lambda v: AsyncConfig(**v)),
            "scheduler": _scheduler_section(base),
            "monitor": Section(monitor_fields, lambda v: MonitorConfig(**v)),
        },
    )


def load_config(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> FerrotickConfig:
    """Reads and checks a config file (``path``, else ``$FERROTICK_CONFIG``) and builds
    its config objects. ``env`` is the environment for ``${VAR}`` (default
    ``os.environ``). Raises ConfigError (one line: file, line, key, what is wrong)."""
    environ: Mapping[str, str] = os.environ if env is None else env
    name = path_arg(path, environ)
    root, src = read(name, environ)
    return _file_section(name).load(root, "", src)


# -- python -m ferrotick.config ------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ferrotick.config",
        description="Check a ferrotick config file, or print the commented example.",
    )
    parser.add_argument("path", nargs="?", help="the file (default: $FERROTICK_CONFIG)")
    parser.add_argument("--example", action="store_true", help="print the example file")
    args = parser.parse_args(argv)
    if args.example:
        sys.stdout.write(EXAMPLE_PATH.read_text(encoding="utf-8"))
        return 0
    try:
        cfg = load_config(args.path)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 1
    influx = "off" if cfg.influxdb is None else "on"
    print(f"{cfg.path}: ok (binance {cfg.binance.base_url}, influxdb {influx})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
