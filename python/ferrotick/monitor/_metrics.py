"""prometheus_client-compatible metric classes over ferrotick's Rust registry.

``Counter``, ``Gauge``, ``Histogram`` and ``Summary`` take prometheus_client's
arguments, so ``from prometheus_client import Histogram, Counter, Gauge`` becomes
``from ferrotick.monitor import Histogram, Counter, Gauge``. Their hot methods
(``inc``, ``set``, ``observe``) are bound straight to Rust objects.

Differences that users of prometheus_client gain:

* ``.time()`` on an ``async def`` times the awaited work (prometheus_client times
  only the creation of the coroutine) and the decorated function stays a coroutine
  function;
* histograms and summaries also keep an HDR-style sketch: ``quantile(q)`` and
  ``summary()`` answer percentiles (p50, p90, p99, p99.9, max) in microseconds,
  cumulative and over a sliding window; summaries expose quantiles;
* each metric caps its number of label sets (``max_series``, 1000 by default);
  label sets beyond it are not recorded and are counted in
  ``ferrotick_metric_series_dropped_total{metric=...}``.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from .. import _core
from .._core import ConfigError

F = TypeVar("F", bound=Callable[..., Any])

CONTENT_TYPE_LATEST: str = _core.CONTENT_TYPE_LATEST
CONTENT_TYPE_OPENMETRICS: str = _core.CONTENT_TYPE_OPENMETRICS
INF = float("inf")
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    INF,
)


class CollectorRegistry:
    """A set of metrics and collectors exposed together.

    A collector is a callable (or an object with ``collect()``) returning a list of
    families: ``{"name", "type", "help", "samples": [(suffix, labels, value)]}``.
    The HTTP client and the scheduler publish their statistics this way.
    """

    def __init__(self, auto_describe: bool = False, *, include_runtime: bool = False) -> None:
        self._core = _core.Registry()
        self._metrics: dict[str, _Metric] = {}
        self._collectors: list[Any] = []
        self._lock = threading.Lock()
        self.include_runtime = include_runtime

    def register(self, collector: Any) -> None:
        with self._lock:
            if isinstance(collector, _Metric):
                self._core.register(collector._core)
                self._metrics[collector._name] = collector
            elif callable(collector) or hasattr(collector, "collect"):
                if collector in self._collectors:
                    raise ConfigError("collector: already registered")
                self._collectors.append(collector)
            else:
                raise TypeError(
                    "collector: expected a metric, a callable or an object with collect()"
                )

    def unregister(self, collector: Any) -> None:
        with self._lock:
            if isinstance(collector, _Metric):
                self._core.unregister(collector._core.name)
                self._metrics.pop(collector._name, None)
            elif collector in self._collectors:
                self._collectors.remove(collector)
            else:
                raise KeyError("collector is not registered")

    def _extra_families(self) -> list[dict[str, Any]]:
        for m in list(self._metrics.values()):
            fn = getattr(m, "_function", None)
            if fn is not None:
                m._child.set(float(fn()))
        families: list[dict[str, Any]] = []
        for c in list(self._collectors):
            produced = c.collect() if hasattr(c, "collect") else c()
            families.extend(produced or ())
        return families

    def generate(self, openmetrics: bool = False) -> bytes:
        return self._core.render(openmetrics, self._extra_families(), self.include_runtime)

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready view of every metric, with percentiles."""
        for m in list(self._metrics.values()):
            fn = getattr(m, "_function", None)
            if fn is not None:
                m._child.set(float(fn()))
        return self._core.snapshot()

    def get_sample_value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """The value of one exposed sample (as prometheus_client's registry offers)."""
        from ._parse import sample_value

        return sample_value(self.generate().decode(), name, labels or {})


REGISTRY = CollectorRegistry(include_runtime=True)


def generate_latest(registry: CollectorRegistry = REGISTRY) -> bytes:
    """Prometheus text format (``CONTENT_TYPE_LATEST``), as prometheus_client returns it."""
    return registry.generate(openmetrics=False)


def generate_openmetrics(registry: CollectorRegistry = REGISTRY) -> bytes:
    """OpenMetrics 1.0 text (``CONTENT_TYPE_OPENMETRICS``)."""
    return registry.generate(openmetrics=True)


def choose_encoder(accept_header: str | None) -> tuple[Callable[[CollectorRegistry], bytes], str]:
    """Picks OpenMetrics when the scraper asks for it, like prometheus_client."""
    for part in (accept_header or "").split(","):
        if part.split(";")[0].strip() == "application/openmetrics-text":
            return generate_openmetrics, CONTENT_TYPE_OPENMETRICS
    return generate_latest, CONTENT_TYPE_LATEST


class _Timer:
    """Times a block, a function or a coroutine function into a callback."""

    __slots__ = ("_record", "_start")

    def __init__(self, record: Callable[[float], None]) -> None:
        self._record = record
        self._start: float | None = None

    def __enter__(self) -> _Timer:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._start is not None:
            self._record(max(time.perf_counter() - self._start, 0.0))
            self._start = None

    async def __aenter__(self) -> _Timer:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)

    def __call__(self, func: F) -> F:
        record = self._record
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return await func(*args, **kwargs)
                finally:
                    record(max(time.perf_counter() - start, 0.0))

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                record(max(time.perf_counter() - start, 0.0))

        return wrapper  # type: ignore[return-value]


class _InProgress:
    __slots__ = ("_child",)

    def __init__(self, child: Any) -> None:
        self._child = child

    def __enter__(self) -> None:
        self._child.inc(1.0)

    def __exit__(self, *exc: object) -> None:
        self._child.dec(1.0)

    async def __aenter__(self) -> None:
        self._child.inc(1.0)

    async def __aexit__(self, *exc: object) -> None:
        self._child.dec(1.0)

    def __call__(self, func: F) -> F:
        child = self._child
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                child.inc(1.0)
                try:
                    return await func(*args, **kwargs)
                finally:
                    child.dec(1.0)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            child.inc(1.0)
            try:
                return func(*args, **kwargs)
            finally:
                child.dec(1.0)

        return wrapper  # type: ignore[return-value]


class _ExceptionCounter:
    __slots__ = ("_child", "_exc")

    def __init__(
        self, child: Any, exc: type[BaseException] | tuple[type[BaseException], ...]
    ) -> None:
        self._child = child
        self._exc = exc

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Any, value: Any, tb: Any) -> bool:
        if typ is not None and issubclass(typ, self._exc):
            self._child.inc(1.0)
        return False

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, typ: Any, value: Any, tb: Any) -> bool:
        return self.__exit__(typ, value, tb)

    def __call__(self, func: F) -> F:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await func(*args, **kwargs)
                except self._exc:
                    self._child.inc(1.0)
                    raise

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except self._exc:
                self._child.inc(1.0)
                raise

        return wrapper  # type: ignore[return-value]


def _full_name(name: str, namespace: str, subsystem: str, unit: str) -> str:
    full = "_".join(p for p in (namespace, subsystem, name) if p)
    if unit and not full.endswith("_" + unit):
        full += "_" + unit
    return full


class _Child:
    """One label set of a metric (what ``labels(...)`` returns)."""

    __slots__ = ("_rc", "_parent", "inc", "dec", "set", "observe", "__weakref__")

    def __init__(self, rc: Any, parent: _Metric) -> None:
        self._rc = rc
        self._parent = parent
        self.inc = rc.inc
        self.dec = rc.dec
        self.set = rc.set
        self.observe = rc.observe

    def labels(self, *labelvalues: Any, **labelkwargs: Any) -> _Child:
        """Refused: a child already has its label values (as in prometheus_client)."""
        p = self._parent
        given = dict(zip(p._labelnames, self._rc.labels, strict=True))
        raise ConfigError(
            f"labels: {p} already has labels set ({given}); can not chain calls to .labels()"
        )

    def get(self) -> float:
        return self._rc.get()

    def time(self) -> _Timer:
        """Times a block, function or coroutine function into this histogram/summary."""
        return _Timer(self._rc.observe)

    def track_inprogress(self) -> _InProgress:
        return _InProgress(self._rc)

    def count_exceptions(
        self, exception: type[BaseException] | tuple[type[BaseException], ...] = Exception
    ) -> _ExceptionCounter:
        return _ExceptionCounter(self._rc, exception)

    def set_to_current_time(self) -> None:
        self._rc.set(time.time())

    def quantile(self, q: float) -> float:
        return self._rc.quantile(q)

    def summary(self) -> dict[str, Any]:
        return self._rc.summary()

    def reset(self) -> None:
        self._rc.reset()


class _Metric:
    _kind = ""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        namespace: str = "",
        subsystem: str = "",
        unit: str = "",
        registry: CollectorRegistry | None = REGISTRY,
        _labelvalues: Sequence[str] | None = None,
        *,
        max_series: int = 1000,
        **options: Any,
    ) -> None:
        if isinstance(labelnames, str):
            labelnames = (labelnames,)
        self._labelnames: tuple[str, ...] = tuple(labelnames)
        if not isinstance(documentation, str):
            raise TypeError("documentation: expected str")
        self._core = _core.Metric(
            self._kind,
            _full_name(name, namespace, subsystem, unit),
            documentation,
            list(self._labelnames),
            max_series=max_series,
            **options,
        )
        self._name: str = self._core.name
        self._max_series = max_series
        self._children: dict[tuple[Any, ...], _Child] = {}
        self._children_lock = threading.Lock()
        self._child: Any = None
        if not self._labelnames:
            self._child = self._core.child(())
            self._bind(self._child)
        if registry is not None:
            registry.register(self)

    def _bind(self, rc: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__module__}.{type(self).__name__}({self._name})"

    def __str__(self) -> str:
        return f"{self._kind}:{self._name}"

    def labels(self, *labelvalues: Any, **labelkwargs: Any) -> _Child:
        """The child for one label set (created on first use)."""
        if not self._labelnames:
            raise ConfigError(f"labels: metric {self._name!r} was created without label names")
        if labelkwargs:
            if labelvalues:
                raise ConfigError(
                    "labels: pass either positional or keyword label values, not both"
                )
            if set(labelkwargs) != set(self._labelnames):
                raise ConfigError(f"labels: expected {self._labelnames}, got {tuple(labelkwargs)}")
            labelvalues = tuple(labelkwargs[n] for n in self._labelnames)
        child = self._children.get(labelvalues)
        if child is not None:
            return child
        if len(labelvalues) != len(self._labelnames):
            raise ConfigError(
                f"labels: metric {self._name!r} has label names {self._labelnames}, got {len(labelvalues)} values"
            )
        key = tuple(str(v) for v in labelvalues)
        child = _Child(self._core.child(key), self)
        with self._children_lock:
            if len(self._children) < self._max_series:
                self._children[labelvalues] = child
        return child

    def remove(self, *labelvalues: Any) -> None:
        """Removes one label set (its values one per label name)."""
        if not self._labelnames:
            raise ConfigError(f"labelvalues: No label names were set when constructing {self}")
        if len(labelvalues) != len(self._labelnames):
            raise ConfigError(
                f"labelvalues: Incorrect label count (expected {len(self._labelnames)}, "
                f"got {labelvalues})"
            )
        key = tuple(str(v) for v in labelvalues)
        self._core.remove(key)
        with self._children_lock:
            for k in [k for k in self._children if tuple(str(v) for v in k) == key]:
                del self._children[k]

    def clear(self) -> None:
        """Removes every label set; a metric without label names keeps its value."""
        if not self._labelnames:
            return
        self._core.clear()
        with self._children_lock:
            self._children.clear()

    def _no_labels(self, *_args: Any, **_kwargs: Any) -> None:
        raise ConfigError(
            f"{self._kind} metric {self._name!r} has label names: call labels(...) first"
        )

    def _unlabelled(self) -> Any:
        if self._child is None:
            self._no_labels()
        return self._child


class Counter(_Metric):
    """A monotonically increasing counter (exposed as ``<name>_total``)."""

    _kind = "counter"

    def _bind(self, rc: Any) -> None:
        self.inc = rc.inc

    def inc(self, amount: float = 1.0) -> None:  # replaced per instance when unlabelled
        self._no_labels()

    def count_exceptions(
        self, exception: type[BaseException] | tuple[type[BaseException], ...] = Exception
    ) -> _ExceptionCounter:
        return _ExceptionCounter(self._unlabelled(), exception)

    def reset(self) -> None:
        self._unlabelled().reset()

    def get(self) -> float:
        return self._unlabelled().get()


# How ``ferrotick.monitor.multiprocess`` combines a gauge across processes (the
# "live" variants are the same thing there: only live processes' files are read).
MULTIPROCESS_MODES = frozenset(
    {
        "all",
        "liveall",
        "sum",
        "livesum",
        "max",
        "livemax",
        "min",
        "livemin",
        "mostrecent",
        "livemostrecent",
    }
)


class Gauge(_Metric):
    """A value that goes up and down."""

    _kind = "gauge"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *args: Any,
        multiprocess_mode: str = "all",
        **kwargs: Any,
    ) -> None:
        self._function: Callable[[], float] | None = None
        if multiprocess_mode not in MULTIPROCESS_MODES:
            raise ConfigError(
                f"multiprocess_mode: expected one of {sorted(MULTIPROCESS_MODES)}, "
                f"got {multiprocess_mode!r}"
            )
        self.multiprocess_mode = multiprocess_mode
        super().__init__(name, documentation, labelnames, *args, **kwargs)

    def _bind(self, rc: Any) -> None:
        self.inc = rc.inc
        self.dec = rc.dec
        self.set = rc.set

    def inc(self, amount: float = 1.0) -> None:
        self._no_labels()

    def dec(self, amount: float = 1.0) -> None:
        self._no_labels()

    def set(self, value: float) -> None:
        self._no_labels()

    def get(self) -> float:
        return self._unlabelled().get()

    def set_to_current_time(self) -> None:
        self._unlabelled().set(time.time())

    def track_inprogress(self) -> _InProgress:
        return _InProgress(self._unlabelled())

    def time(self) -> _Timer:
        return _Timer(self._unlabelled().set)

    def set_function(self, f: Callable[[], float]) -> None:
        """Reads the value from ``f()`` whenever the registry is collected."""
        self._unlabelled()
        self._function = f


class Histogram(_Metric):
    """Observations counted in cumulative ``le`` buckets, with percentiles."""

    _kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        namespace: str = "",
        subsystem: str = "",
        unit: str = "",
        registry: CollectorRegistry | None = REGISTRY,
        _labelvalues: Sequence[str] | None = None,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        **kwargs: Any,
    ) -> None:
        bounds = [float(b) for b in buckets]
        super().__init__(
            name,
            documentation,
            labelnames,
            namespace,
            subsystem,
            unit,
            registry,
            _labelvalues,
            buckets=bounds,
            **kwargs,
        )

    def _bind(self, rc: Any) -> None:
        self.observe = rc.observe

    def observe(self, amount: float, exemplar: Any = None) -> None:
        self._no_labels()

    def time(self) -> _Timer:
        """Times a block, a function or a coroutine function (the awaited work)."""
        return _Timer(self._unlabelled().observe)

    def quantile(self, q: float) -> float:
        return self._unlabelled().quantile(q)

    def summary(self) -> dict[str, Any]:
        return self._unlabelled().summary()


class Summary(Histogram):
    """Observations with count and sum; ferrotick adds quantiles from its sketch."""

    _kind = "summary"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Iterable[str] = (),
        *args: Any,
        **kwargs: Any,
    ) -> None:
        _Metric.__init__(self, name, documentation, labelnames, *args, **kwargs)


_create_lock = threading.Lock()


def _get_or_create(
    registry: CollectorRegistry | None,
    cls: type[_Metric],
    name: str,
    documentation: str,
    labelnames: Sequence[str],
    **kwargs: Any,
) -> Any:
    """The metric ``name`` of ``registry`` when it exists with the same type and
    label names (monitors and middlewares created twice on one registry share their
    metrics instead of failing as duplicates), else a new one registered there."""
    if registry is None:
        return cls(name, documentation, labelnames, registry=None, **kwargs)
    with _create_lock:
        existing = registry._metrics.get(name)
        if existing is not None:
            if type(existing) is not cls or existing._labelnames != tuple(labelnames):
                raise ConfigError(
                    f"name: {name!r} is already registered as a {type(existing).__name__} "
                    f"with labels {existing._labelnames}; expected a {cls.__name__} "
                    f"with labels {tuple(labelnames)}"
                )
            return existing
        return cls(name, documentation, labelnames, registry=registry, **kwargs)
