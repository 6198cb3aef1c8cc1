"""The HTTP client's settings: ``RetryConfig``, ``ClientTimeout``,
``ConnectionPoolConfig``, ``ResponseCacheConfig``, and ``Prepared``, the settings of
one request resolved against the client's."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Collection
from typing import Any, NamedTuple

from .. import _core
from .._core import ConfigError
from .._validate import boolean, integer, is_integer, seconds


class RetryStrategy(str, enum.Enum):
    EXPONENTIAL_BACKOFF = "exponential"
    LINEAR_BACKOFF = "linear"
    FIXED_DELAY = "fixed"
    # short aliases
    LINEAR = "linear"
    FIXED = "fixed"


_CONNECT_CLASSES = (ConnectionError, _core.ConnectError)
_TIMEOUT_CLASSES = (TimeoutError, _core.RequestTimeout)


@dataclasses.dataclass
class RetryConfig:
    max_retries: int = 3
    strategy: RetryStrategy = RetryStrategy.EXPONENTIAL_BACKOFF
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: bool = True
    retry_on_status: tuple[int, ...] = (429, 500, 502, 503, 504)
    retry_on_exceptions: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    retry_non_idempotent: bool = False

    def _policy(self) -> Any:
        exc = tuple(self.retry_on_exceptions)
        return _core.RetryPolicy(
            max_retries=self.max_retries,
            strategy=RetryStrategy(self.strategy).value,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            jitter=bool(self.jitter),
            retry_on_status=[int(s) for s in self.retry_on_status],
            retry_connect=any(issubclass(c, e) for c in _CONNECT_CLASSES for e in exc),
            retry_timeout=any(issubclass(c, e) for c in _TIMEOUT_CLASSES for e in exc),
            retry_non_idempotent=bool(self.retry_non_idempotent),
        )


@dataclasses.dataclass
class ClientTimeout:
    """Per-attempt time limits in seconds (aiohttp's ClientTimeout)."""

    total: float | None = None
    connect: float | None = None
    sock_read: float | None = None


@dataclasses.dataclass
class ConnectionPoolConfig:
    connector_limit: int = 100
    connector_limit_per_host: int = 30
    timeout_total: float | None = 30.0
    timeout_connect: float | None = 10.0
    keepalive_timeout: float | None = 30.0
    timeout_read: float | None = None
    pool_timeout: float | None = None
    deadline: float | None = None
    max_redirects: int = 10


_CACHEABLE_METHODS = frozenset({"GET", "HEAD"})


@dataclasses.dataclass
class ResponseCacheConfig:
    """An opt-in, in-memory cache of GET responses for one client::

        AsyncHTTPClient(cache=ResponseCacheConfig(ttl_seconds=30, maxsize=512))

    - ``ttl_seconds``: how long a response is served from the cache (0: nothing is
      stored, but concurrent identical GETs still share one request).
    - ``maxsize``: responses kept at most; the least recently used goes first.
    - ``cacheable_statuses``: the statuses stored (``None``: any 2xx). Errors raised by
      a request (timeouts, resets...) are never stored.
    - ``methods``: ``("GET",)``, or ``("GET", "HEAD")``.
    - ``respect_cache_control``: a response's ``Cache-Control: no-store``/``no-cache``,
      ``Vary: *`` (and ``Vary: Cookie`` with the client's cookie jar on), or a
      ``max-age``/``Expires`` shorter than the TTL are honoured;
      ``False`` stores every response with a cacheable status for ``ttl_seconds``
      (for APIs that send ``no-cache`` on everything). A request's own
      ``Cache-Control`` (``no-store``: bypass, ``no-cache``: refresh) always counts.
    """

    ttl_seconds: float = 60.0
    maxsize: int = 1024
    cacheable_statuses: Collection[int] | None = None
    methods: Collection[str] = ("GET",)
    respect_cache_control: bool = True

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        seconds("ttl_seconds", self.ttl_seconds)
        integer("maxsize", self.maxsize, min=1)
        st = self.cacheable_statuses
        if st is not None and (
            isinstance(st, (str, bytes))
            or not isinstance(st, Collection)
            or not all(is_integer(c, min=100, max=599) for c in st)
        ):
            raise ConfigError(f"cacheable_statuses: expected None or HTTP status codes, got {st!r}")
        ms = self.methods
        if (
            isinstance(ms, (str, bytes))
            or not isinstance(ms, Collection)
            or not ms
            or not all(isinstance(x, str) and x.upper() in _CACHEABLE_METHODS for x in ms)
        ):
            raise ConfigError(f"methods: expected a collection of 'GET' and 'HEAD', got {ms!r}")
        boolean("respect_cache_control", self.respect_cache_control)


class Prepared(NamedTuple):
    """One request resolved against its client's settings, as the Rust client takes
    it (the response cache keys on the first four)."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes | None
    total: float | None
    connect: float | None
    read: float | None
    policy: Any
