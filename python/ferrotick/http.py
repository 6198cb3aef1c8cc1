"""AsyncHTTPClient: a pooled HTTP client on reqwest with an aiohttp-style API.

    async with AsyncHTTPClient(ConnectionPoolConfig(connector_limit=100)) as client:
        async with client.get(url, params={"symbol": "BTCUSDT"}) as resp:   # streamed
            data = await resp.json()
        resp = await client.get(url)                                        # eager
        resp.raise_for_status()

Connection slots are limited globally (``connector_limit``) and per host
(``connector_limit_per_host``); waiting for one is counted in ``client.stats()`` and
bounded by ``pool_timeout``. ``RetryConfig`` is applied in Rust (backoff, Retry-After,
never retrying a non-idempotent request that may have been sent unless
``retry_non_idempotent=True``). ``cache=ResponseCacheConfig(...)`` turns on a response
cache for GETs (see :class:`ResponseCacheConfig`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import enum
import functools
import hashlib
import json as _json
import os
import threading
import time
from collections.abc import Collection, Generator, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from . import _core
from ._cache import MISSING, TTLCache
from ._core import ConfigError, HTTPStatusError
from ._validate import boolean, integer, is_integer, seconds

__all__ = [
    "AsyncHTTPClient",
    "ClientResponse",
    "ClientTimeout",
    "ConnectionPoolConfig",
    "Headers",
    "ResponseCacheConfig",
    "RetryConfig",
    "RetryStrategy",
    "get_http_client",
]


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


class Headers(Mapping[str, str]):
    """Case-insensitive, multi-valued response headers."""

    __slots__ = ("_pairs", "_map")

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs
        m: dict[str, str] = {}
        for k, v in pairs:
            lk = k.lower()
            if lk not in m:
                m[lk] = v
        self._map = m

    def __getitem__(self, key: str) -> str:
        return self._map[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def getall(self, key: str) -> list[str]:
        lk = key.lower()
        return [v for k, v in self._pairs if k.lower() == lk]

    def items_all(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"


_safe_url = _core.redact_url


class ClientResponse:
    """A response: ``status``, ``headers``, ``url``, ``await read()/text()/json()``,
    ``async for chunk in resp``, ``raise_for_status()``, ``release()``."""

    __slots__ = ("_r", "_headers", "method")

    def __init__(self, r: Any, method: str) -> None:
        self._r = r
        self._headers: Headers | None = None
        self.method = method

    @property
    def status(self) -> int:
        return self._r.status

    @property
    def reason(self) -> str:
        return self._r.reason

    @property
    def url(self) -> str:
        return self._r.url

    @property
    def version(self) -> str:
        return self._r.version

    @property
    def attempts(self) -> int:
        return self._r.attempts

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(self._r.raw_headers)
        return self._headers

    @property
    def ok(self) -> bool:
        return self._r.status < 400

    @property
    def from_cache(self) -> bool:
        """True when this call sent no request of its own: the response came from the
        client's response cache, or from an identical GET already in flight."""
        return isinstance(self._r, _StoredBody) and self._r.from_cache

    def read(self) -> Any:
        return self._r.read()

    def json(self, *, loads: Any = None) -> Any:
        if loads is not None:
            return self._json_with(loads)
        return self._r.json()

    async def _json_with(self, loads: Any) -> Any:
        return loads(await self._r.read())

    async def text(self, encoding: str | None = None, errors: str = "strict") -> str:
        data = await self._r.read()
        if encoding is None:
            ctype = self.headers.get("content-type", "")
            encoding = "utf-8"
            for part in ctype.split(";")[1:]:
                k, _, v = part.strip().partition("=")
                if k.lower() == "charset" and v:
                    encoding = v.strip("\"'")
        return data.decode(encoding, errors)

    def __aiter__(self) -> ClientResponse:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._r.chunk()
        if not chunk:
            raise StopAsyncIteration
        return chunk

    async def iter_chunked(self, n: int = 65536) -> Any:
        async for chunk in self:
            for i in range(0, len(chunk), n):
                yield chunk[i : i + n]

    def raise_for_status(self) -> None:
        if self._r.status >= 400:
            err = HTTPStatusError(
                f"{self._r.status} {self._r.reason} for {self.method} {_safe_url(self._r.url)}"
            )
            err.status = self._r.status
            err.headers = self.headers
            err.body = None
            # Only an eagerly read body is attached. Reading a streamed body here
            # would start a background read that holds the connection slot until
            # the whole (possibly endless) stream has arrived.
            if not self._r.is_streaming:
                try:
                    err.body = self._r.read().result()
                except Exception:
                    err.body = None
            raise err

    def release(self) -> None:
        self._r.release()

    def close(self) -> None:
        self._r.release()

    def __repr__(self) -> str:
        return f"<ClientResponse [{self.status} {self.reason}] {_safe_url(self.url)}>"


class _RequestContext:
    """What ``client.get(...)`` returns: await it for an eagerly read response, or
    ``async with`` it to stream the body and return the connection on exit (a GET the
    client's response cache handles is read whole in both forms)."""

    __slots__ = ("_client", "_prepared", "_resp", "_cache_plan")

    def __init__(
        self,
        client: AsyncHTTPClient,
        prepared: tuple[Any, ...],
        cache_plan: _CachePlan | None = None,
    ) -> None:
        self._client = client
        self._prepared = prepared
        self._resp: ClientResponse | None = None
        self._cache_plan = cache_plan

    def __await__(self) -> Any:
        if self._cache_plan is not None:
            return self._client._cache_send(self._prepared, self._cache_plan).__await__()
        return self._client._send(self._prepared, stream=False).__await__()

    async def __aenter__(self) -> ClientResponse:
        if self._cache_plan is not None:
            # a cacheable GET is read whole (and shared), in this form too
            self._resp = await self._client._cache_send(self._prepared, self._cache_plan)
        else:
            self._resp = await self._client._send(self._prepared, stream=True)
        return self._resp

    async def __aexit__(self, *exc: object) -> None:
        if self._resp is not None:
            self._resp.release()
            self._resp = None


# -- response cache (opt-in: AsyncHTTPClient(cache=ResponseCacheConfig(...))) ------------


_CACHEABLE_METHODS = frozenset({"GET", "HEAD"})
# directives to caches, not content negotiation: left out of the cache key, so that
# `Cache-Control: no-cache` refreshes the entry that plain requests use
_DIRECTIVE_HEADERS = frozenset({"cache-control", "pragma"})


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


class _Snapshot:
    """A response as stored: read whole, never mutated, shared by all its readers."""

    __slots__ = ("status", "reason", "url", "version", "attempts", "headers", "body")

    def __init__(self, r: Any, body: bytes) -> None:
        self.status: int = r.status
        self.reason: str = r.reason
        self.url: str = r.url
        self.version: str = r.version
        self.attempts: int = r.attempts
        self.headers: tuple[tuple[str, str], ...] = tuple(r.raw_headers)
        self.body = body

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]


class _Ready:
    """An already-complete result: awaitable, or ``.result()`` in blocking code (what
    ``_core.Response.read()`` returns for a body that has been read)."""

    __slots__ = ("_value", "_exc")

    def __init__(self, value: Any = None, exc: BaseException | None = None) -> None:
        self._value = value
        self._exc = exc

    def __await__(self) -> Generator[Any, None, Any]:
        yield from ()
        return self.result()

    def done(self) -> bool:
        return True

    def exception(self) -> BaseException | None:
        return self._exc

    def result(self) -> Any:
        if self._exc is not None:
            raise self._exc
        return self._value


class _StoredBody:
    """Stands in for ``_core.Response`` over a snapshot. Every caller gets its own: a
    Rust Response's eager body can be read more than once, but iterating it hands the
    bytes over (``chunk()`` takes them), so one Response cannot serve many readers."""

    __slots__ = ("_s", "_iterated", "from_cache")

    is_streaming = False

    def __init__(self, snap: _Snapshot, from_cache: bool) -> None:
        self._s = snap
        self._iterated = False
        self.from_cache = from_cache

    @property
    def status(self) -> int:
        return self._s.status

    @property
    def reason(self) -> str:
        return self._s.reason

    @property
    def url(self) -> str:
        return self._s.url

    @property
    def version(self) -> str:
        return self._s.version

    @property
    def attempts(self) -> int:
        return self._s.attempts

    @property
    def raw_headers(self) -> list[tuple[str, str]]:
        return list(self._s.headers)

    def read(self) -> _Ready:
        return _Ready(self._s.body)

    def json(self) -> _Ready:
        # decoded per call: callers never share (and mutate) one parsed document
        try:
            return _Ready(_core.json_loads(self._s.body))
        except ValueError as e:
            return _Ready(exc=e)

    def chunk(self) -> _Ready:
        if self._iterated:
            return _Ready(b"")
        self._iterated = True
        return _Ready(self._s.body)

    def release(self) -> None:
        pass


def _directives(values: list[str]) -> dict[str, str]:
    d: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            name, _, arg = part.partition("=")
            name = name.strip().lower()
            if name:
                d.setdefault(name, arg.strip().strip('"'))
    return d


def _delta_seconds(v: str | None) -> int | None:
    if v is None or not v.strip().isdigit():
        return None
    return int(v.strip())


def _http_date(v: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(v).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


# (key, ttl override for this request, refresh: skip the lookup and in-flight sharing)
_CachePlan = tuple[bytes, float | None, bool]


class _ResponseStore(TTLCache):
    """A client's cached responses (``_Snapshot``) and the GETs in flight for them,
    shared per event loop and, for the blocking twins, across threads (see
    ``TTLCache``). Keys are SHA-256 digests: no URL, header or token is kept in clear.
    Requests in flight during ``clear()`` store nothing."""

    def __init__(self, config: ResponseCacheConfig, jar: bool) -> None:
        config._check()  # the dataclass may have been edited since it was built
        super().__init__(config.maxsize)
        # the client's cookie jar adds cookies that the key cannot see
        self.jar = jar
        self.ttl = float(config.ttl_seconds)
        st = config.cacheable_statuses
        self.statuses = None if st is None else frozenset(st)
        self.methods = frozenset(m.upper() for m in config.methods)
        self.respect = config.respect_cache_control

    def plan(self, prepared: tuple[Any, ...], ttl: float | None) -> _CachePlan | None:
        method, url, hdrs, body = prepared[:4]
        if method not in self.methods:
            if ttl is not None:
                raise ConfigError(f"cache_ttl: {method} responses are not cached")
            return None
        pairs = []
        cc: list[str] = []
        for k, v in hdrs:
            lk = k.lower()
            if lk in _DIRECTIVE_HEADERS:
                cc.append(v)  # Pragma's one directive is no-cache
            else:
                pairs.append((lk, v))
        req = _directives(cc)
        if "no-store" in req:
            return None
        refresh = "no-cache" in req or req.get("max-age") == "0"
        pairs.sort(key=lambda kv: kv[0])  # stable: repeated headers keep their order
        h = hashlib.sha256(_json.dumps([method, url, pairs]).encode())
        if body:
            h.update(b"\0" + body)
        return (h.digest(), ttl, refresh)

    def lifetime(self, snap: _Snapshot, ttl: float | None) -> float:
        """Seconds ``snap`` may be served from the cache (0: not stored)."""
        life = self.ttl if ttl is None else ttl
        if life <= 0:
            return 0.0
        if self.statuses is None:
            if not 200 <= snap.status < 300:
                return 0.0
        elif snap.status not in self.statuses:
            return 0.0
        if not self.respect:
            return life
        cc = _directives(snap.values("cache-control"))
        if "no-store" in cc or "no-cache" in cc:
            return 0.0
        vary = {v.strip().lower() for value in snap.values("vary") for v in value.split(",")}
        if "*" in vary or (self.jar and "cookie" in vary):
            return 0.0
        age = _delta_seconds(next(iter(snap.values("age")), None)) or 0
        if "max-age" in cc:
            max_age = _delta_seconds(cc["max-age"])
            if max_age is None:  # invalid: stale at once
                return 0.0
            return max(0.0, min(life, max_age - age))
        expires = snap.values("expires")
        if expires:
            when = _http_date(expires[0])
            if when is None:  # invalid: already expired
                return 0.0
            dates = snap.values("date")
            date = _http_date(dates[0]) if dates else None
            return max(0.0, min(life, when - (time.time() if date is None else date) - age))
        return life

    def info(self) -> dict[str, Any]:
        with self.lock:
            self.purge()
            return {
                "hits": self.hits,
                "misses": self.misses,
                "shared": self.shared,
                "size": len(self.entries),
                "maxsize": self.maxsize,
                "ttl_seconds": self.ttl,
                "in_flight": self.in_flight(),
            }


def _stored_response(snap: _Snapshot, method: str, from_cache: bool) -> ClientResponse:
    return ClientResponse(_StoredBody(snap, from_cache), method)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _read_ca(ca: Any) -> bytes | None:
    if ca is None:
        return None
    if isinstance(ca, bytes):
        return ca
    if isinstance(ca, (str, os.PathLike)):
        try:
            with open(ca, "rb") as f:
                return f.read()
        except OSError as e:
            raise ConfigError(f"ca: cannot read {ca!r}: {e.strerror}") from None
    raise TypeError("ca: expected a path or PEM bytes")


class AsyncHTTPClient:
    """A pooled HTTP client usable from any event loop and thread."""

    def __init__(
        self,
        config: ConnectionPoolConfig | None = None,
        *,
        base_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        cookies: bool = True,
        timeout: float | ClientTimeout | None = None,
        retry_config: RetryConfig | None = None,
        verify: bool = True,
        ca: Any = None,
        proxy: str | None = None,
        trust_env: bool = True,
        user_agent: str | None = None,
        circuit_breaker: Any = None,
        cache: ResponseCacheConfig | bool | None = None,
        monitor: Any = True,
    ) -> None:
        if cache is True:
            cache = ResponseCacheConfig()
        elif cache is False:
            cache = None
        elif cache is not None and not isinstance(cache, ResponseCacheConfig):
            raise ConfigError(
                f"cache: expected a ResponseCacheConfig, True or None, got {type(cache).__name__}"
            )
        self._cache = _ResponseStore(cache, jar=bool(cookies)) if cache is not None else None
        self.config = config or ConnectionPoolConfig()
        c = self.config
        self.base_url = base_url
        self.retry_config = retry_config
        self._timeout = timeout
        breaker_threshold = None
        breaker_recovery = 30.0
        if circuit_breaker is not None:
            # a CircuitBreakerConfig, or a CircuitBreaker (whose settings are in .config)
            cb = getattr(circuit_breaker, "config", circuit_breaker)
            if not (hasattr(cb, "failure_threshold") and hasattr(cb, "recovery_timeout")):
                raise TypeError(
                    "circuit_breaker: expected a CircuitBreakerConfig or a CircuitBreaker, "
                    f"got {type(circuit_breaker).__name__}"
                )
            breaker_threshold = int(cb.failure_threshold)
            breaker_recovery = float(cb.recovery_timeout)
        self._core = _core.HttpClient(
            limit=int(c.connector_limit),
            limit_per_host=int(c.connector_limit_per_host),
            timeout_total=seconds("timeout_total", c.timeout_total, allow_none=True),
            timeout_connect=seconds("timeout_connect", c.timeout_connect, allow_none=True),
            timeout_read=seconds("timeout_read", c.timeout_read, allow_none=True),
            pool_timeout=seconds("pool_timeout", c.pool_timeout, allow_none=True),
            keepalive=seconds("keepalive_timeout", c.keepalive_timeout, allow_none=True),
            deadline=seconds("deadline", c.deadline, allow_none=True),
            verify=bool(verify),
            ca_pem=_read_ca(ca),
            proxy=proxy,
            trust_env=bool(trust_env),
            cookies=bool(cookies),
            max_redirects=int(c.max_redirects),
            headers=[(str(k), str(v)) for k, v in (headers or {}).items()],
            user_agent=user_agent,
            breaker_threshold=breaker_threshold,
            breaker_recovery=breaker_recovery,
        )
        self._default_policy = retry_config._policy() if retry_config is not None else None
        self._set_monitor(monitor)
        from .monitor._publishers import publish_client

        # the default metrics registry exposes this client's stats while it lives
        self.metrics_name = publish_client(self)

    # -- requests ---------------------------------------------------------------------

    def _prepare(self, method: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
        url, params, headers, json, data, timeout, retry_config = args
        if not isinstance(url, str):
            url = str(url)
        if self.base_url and not urlsplit(url).scheme:
            url = urljoin(self.base_url.rstrip("/") + "/", url.lstrip("/"))
        if params:
            items = params.items() if isinstance(params, Mapping) else params
            query = urlencode(
                [(k, "true" if v is True else "false" if v is False else v) for k, v in items]
            )
            url = url + ("&" if urlsplit(url).query else "?") + query
        hdrs: list[tuple[str, str]] = []
        if headers:
            for k, v in headers.items() if isinstance(headers, Mapping) else headers:
                if not isinstance(k, str) or not isinstance(v, (str, int, float)):
                    raise ConfigError(f"headers: invalid header {k!r}")
                hdrs.append((k, str(v)))
        body: bytes | None = None
        if json is not None and data is not None:
            raise ConfigError("json: pass either json= or data=, not both")
        if json is not None:
            try:
                body = _json.dumps(json, separators=(",", ":"), allow_nan=False).encode()
            except (TypeError, ValueError) as e:
                raise TypeError(f"json: cannot serialise the body: {e}") from None
            if not any(k.lower() == "content-type" for k, _ in hdrs):
                hdrs.append(("content-type", "application/json"))
        elif data is not None:
            if isinstance(data, str):
                body = data.encode()
            elif isinstance(data, (bytes, bytearray, memoryview)):
                body = bytes(data)
            elif isinstance(data, Mapping):
                body = urlencode(list(data.items())).encode()
                if not any(k.lower() == "content-type" for k, _ in hdrs):
                    hdrs.append(("content-type", "application/x-www-form-urlencoded"))
            else:
                raise TypeError("data: expected str, bytes or a mapping")
        total = connect = read = None
        t = timeout if timeout is not None else self._timeout
        # per request: a call only for a limit that is set
        if isinstance(t, ClientTimeout):
            if t.total is not None:
                total = seconds("timeout.total", t.total)
            if t.connect is not None:
                connect = seconds("timeout.connect", t.connect)
            if t.sock_read is not None:
                read = seconds("timeout.sock_read", t.sock_read)
        elif t is not None:
            total = seconds("timeout", t)
        policy = retry_config._policy() if retry_config is not None else self._default_policy
        return (method, url, hdrs, body, total, connect, read, policy)

    async def _send(self, prepared: tuple[Any, ...], stream: bool) -> ClientResponse:
        m, url, hdrs, body, total, connect, read, policy = prepared
        r = await self._core.request(m, url, hdrs, body, total, connect, read, policy, stream)
        return ClientResponse(r, m)

    def _send_sync(self, prepared: tuple[Any, ...]) -> ClientResponse:
        m, url, hdrs, body, total, connect, read, policy = prepared
        return ClientResponse(
            self._core.request_sync(m, url, hdrs, body, total, connect, read, policy), m
        )

    # -- the response cache -----------------------------------------------------------

    def _cache_plan(
        self, prepared: tuple[Any, ...], cache: Any, cache_ttl: Any
    ) -> _CachePlan | None:
        boolean("cache", cache)
        ttl = None if cache_ttl is None else seconds("cache_ttl", cache_ttl)
        if self._cache is None:
            if ttl is not None:
                raise ConfigError("cache_ttl: this client has no response cache (cache=...)")
            return None
        if not cache:
            return None
        return self._cache.plan(prepared, ttl)

    async def _cache_send(self, prepared: tuple[Any, ...], plan: _CachePlan) -> ClientResponse:
        store = self._cache
        if store is None or self._core.closed:
            return await self._send(prepared, stream=False)  # a closed client raises
        key, ttl, refresh = plan
        with store.lock:
            snap = MISSING if refresh else store.lookup(key)
            if snap is not MISSING:
                return _stored_response(snap, prepared[0], True)
            # a task of its own: a waiter's cancellation never reaches the request
            task, started = store.join(
                key,
                functools.partial(self._cache_fetch, prepared),
                functools.partial(store.lifetime, ttl=ttl),
                refresh,
            )
        snap = await asyncio.shield(task)
        return _stored_response(snap, prepared[0], not started)

    async def _cache_fetch(self, prepared: tuple[Any, ...]) -> _Snapshot:
        resp = await self._send(prepared, stream=False)
        return _Snapshot(resp._r, await resp.read())

    def _cache_send_sync(self, prepared: tuple[Any, ...], plan: _CachePlan) -> ClientResponse:
        store = self._cache
        if store is None or self._core.closed or _loop_running():
            # request_sync() raises for a closed client or inside an event loop
            return self._send_sync(prepared)
        key, ttl, refresh = plan
        snap, reused = store.get_sync(
            key,
            functools.partial(self._cache_fetch_sync, prepared),
            functools.partial(store.lifetime, ttl=ttl),
            refresh,
        )
        return _stored_response(snap, prepared[0], reused)

    def _cache_fetch_sync(self, prepared: tuple[Any, ...]) -> _Snapshot:
        resp = self._send_sync(prepared)
        return _Snapshot(resp._r, resp.read().result())

    def cache_info(self) -> dict[str, Any] | None:
        """The response cache's figures: ``hits`` (served from the cache), ``misses``
        (requests sent), ``shared`` (joined an identical request in flight), ``size``,
        ``maxsize``, ``ttl_seconds``, ``in_flight``; None without a cache."""
        return self._cache.info() if self._cache is not None else None

    def cache_clear(self) -> None:
        """Drops every stored response and resets the figures; the requests in
        flight at the time are not stored when they complete."""
        if self._cache is not None:
            self._cache.clear()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Any = None,
        headers: Any = None,
        json: Any = None,
        data: Any = None,
        timeout: Any = None,
        retry_config: RetryConfig | None = None,
        cache: bool = True,
        cache_ttl: float | None = None,
    ) -> _RequestContext:
        # validated and encoded now: bad input raises here, before any I/O
        prepared = self._prepare(
            method.upper(), (url, params, headers, json, data, timeout, retry_config)
        )
        return _RequestContext(self, prepared, self._cache_plan(prepared, cache, cache_ttl))

    def get(self, url: str, **kwargs: Any) -> _RequestContext:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> _RequestContext:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> _RequestContext:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> _RequestContext:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> _RequestContext:
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> _RequestContext:
        return self.request("HEAD", url, **kwargs)

    # -- blocking twins (Flask views, scripts) ----------------------------------------

    def request_sync(self, method: str, url: str, **kwargs: Any) -> ClientResponse:
        args = (
            url,
            kwargs.pop("params", None),
            kwargs.pop("headers", None),
            kwargs.pop("json", None),
            kwargs.pop("data", None),
            kwargs.pop("timeout", None),
            kwargs.pop("retry_config", None),
        )
        cache = kwargs.pop("cache", True)
        cache_ttl = kwargs.pop("cache_ttl", None)
        if kwargs:
            raise TypeError(f"unexpected arguments: {sorted(kwargs)}")
        prepared = self._prepare(method.upper(), args)
        plan = self._cache_plan(prepared, cache, cache_ttl)
        if plan is not None:
            return self._cache_send_sync(prepared, plan)
        return self._send_sync(prepared)

    def get_sync(self, url: str, **kwargs: Any) -> ClientResponse:
        return self.request_sync("GET", url, **kwargs)

    def post_sync(self, url: str, **kwargs: Any) -> ClientResponse:
        return self.request_sync("POST", url, **kwargs)

    # -- rate limits and reporting ----------------------------------------------------

    def add_rate_limit(
        self,
        limiter: Any,
        *,
        host: str | None = None,
        route: str | None = None,
        methods: Any = None,
        weight: int = 1,
    ) -> None:
        """Makes every request matching ``host`` ("api.example.com" or with ":port"),
        ``route`` (a path prefix, on segment boundaries) and ``methods`` take ``weight``
        from ``limiter`` (a :class:`ferrotick.RateLimiter`, which may be shared with
        other clients and code) before it is sent. Each attempt counts, retries included:
        each one reaches the server. The wait happens before a connection slot is taken;
        it is counted in ``stats()`` (``limiter_waits``, ``limiter_wait_seconds``) and
        bounded by the ``deadline`` across retries."""
        from ._core import RateLimiter

        if not isinstance(limiter, RateLimiter):
            raise TypeError(
                f"limiter: expected a ferrotick.RateLimiter, got {type(limiter).__name__}"
            )
        # the bound is checked in Rust, as for RateLimiter.acquire(weight)
        integer("weight", weight, expected="an integer >= 1")
        if isinstance(methods, str):
            methods = [methods]
        if methods is not None:
            methods = [str(m) for m in methods]
        self._core.add_limit(limiter, host=host, route=route, methods=methods, weight=weight)

    def remove_rate_limit(self, limiter: Any) -> int:
        """Detaches ``limiter`` from this client; returns how many rules used it."""
        return int(self._core.remove_limit(limiter))

    def _set_monitor(self, monitor: Any) -> None:
        """``True``: every logical request (retries included in its time) is reported to
        the process-wide performance monitor as operation ``"http METHOD scheme://host:port"``;
        an ``AsyncPerformanceMonitor``: to that one; ``False``/``None``: not reported."""
        if monitor is None or monitor is False:
            self._core.set_monitor(None, None)
            return
        from .monitor._perf import AsyncPerformanceMonitor

        if monitor is True:
            monitor = AsyncPerformanceMonitor.get_instance()
        if not isinstance(monitor, AsyncPerformanceMonitor):
            raise ConfigError(
                "monitor: expected True, False or an AsyncPerformanceMonitor, "
                f"got {type(monitor).__name__}"
            )
        self._core.set_monitor(monitor.duration._core, monitor.errors._core)

    # -- lifecycle --------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return self._core.stats()

    @property
    def closed(self) -> bool:
        return self._core.closed

    async def close(self) -> None:
        self._core.close()
        if self._cache is not None:
            self._cache.clear(stats=False)

    def close_sync(self) -> None:
        self._core.close()
        if self._cache is not None:
            self._cache.clear(stats=False)

    async def __aenter__(self) -> AsyncHTTPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


_shared: tuple[int, AsyncHTTPClient] | None = None
_shared_lock = threading.Lock()


def get_http_client(config: ConnectionPoolConfig | None = None) -> AsyncHTTPClient:
    """The process-wide client (recreated in a forked child: it never shares the
    parent's sockets)."""
    global _shared
    pid = os.getpid()
    with _shared_lock:
        if _shared is None or _shared[0] != pid or _shared[1].closed:
            _shared = (pid, AsyncHTTPClient(config))
        return _shared[1]


async def _close_shared() -> None:
    global _shared
    with _shared_lock:
        s, _shared = _shared, None
    if s is not None and s[0] == os.getpid():
        await s[1].close()
