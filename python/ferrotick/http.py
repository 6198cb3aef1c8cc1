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
``retry_non_idempotent=True``).
"""

from __future__ import annotations

import dataclasses
import enum
import json as _json
import math
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from . import _core
from ._core import ConfigError, HTTPStatusError

__all__ = [
    "AsyncHTTPClient",
    "ClientResponse",
    "ClientTimeout",
    "ConnectionPoolConfig",
    "Headers",
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


_REDACT_QUERY = True


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


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
    ``async with`` it to stream the body and return the connection on exit."""

    __slots__ = ("_client", "_prepared", "_resp")

    def __init__(self, client: AsyncHTTPClient, prepared: tuple[Any, ...]) -> None:
        self._client = client
        self._prepared = prepared
        self._resp: ClientResponse | None = None

    def __await__(self) -> Any:
        return self._client._send(self._prepared, stream=False).__await__()

    async def __aenter__(self) -> ClientResponse:
        self._resp = await self._client._send(self._prepared, stream=True)
        return self._resp

    async def __aexit__(self, *exc: object) -> None:
        if self._resp is not None:
            self._resp.release()
            self._resp = None


def _check_seconds(name: str, v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v >= 0 and math.isfinite(v)):
        raise ConfigError(f"{name}: expected seconds >= 0, got {v!r}")
    return float(v)


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
    ) -> None:
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
            timeout_total=_check_seconds("timeout_total", c.timeout_total),
            timeout_connect=_check_seconds("timeout_connect", c.timeout_connect),
            timeout_read=_check_seconds("timeout_read", c.timeout_read),
            pool_timeout=_check_seconds("pool_timeout", c.pool_timeout),
            keepalive=_check_seconds("keepalive_timeout", c.keepalive_timeout),
            deadline=_check_seconds("deadline", c.deadline),
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
        if isinstance(t, ClientTimeout):
            total = _check_seconds("timeout.total", t.total)
            connect = _check_seconds("timeout.connect", t.connect)
            read = _check_seconds("timeout.sock_read", t.sock_read)
        elif t is not None:
            total = _check_seconds("timeout", t)
        policy = retry_config._policy() if retry_config is not None else self._default_policy
        return (method, url, hdrs, body, total, connect, read, policy)

    async def _send(self, prepared: tuple[Any, ...], stream: bool) -> ClientResponse:
        m, url, hdrs, body, total, connect, read, policy = prepared
        r = await self._core.request(m, url, hdrs, body, total, connect, read, policy, stream)
        return ClientResponse(r, m)

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
    ) -> _RequestContext:
        # validated and encoded now: bad input raises here, before any I/O
        return _RequestContext(
            self,
            self._prepare(
                method.upper(), (url, params, headers, json, data, timeout, retry_config)
            ),
        )

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
        if kwargs:
            raise TypeError(f"unexpected arguments: {sorted(kwargs)}")
        m, u, hdrs, body, total, connect, read, policy = self._prepare(method.upper(), args)
        return ClientResponse(
            self._core.request_sync(m, u, hdrs, body, total, connect, read, policy), m
        )

    def get_sync(self, url: str, **kwargs: Any) -> ClientResponse:
        return self.request_sync("GET", url, **kwargs)

    def post_sync(self, url: str, **kwargs: Any) -> ClientResponse:
        return self.request_sync("POST", url, **kwargs)

    # -- lifecycle --------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return self._core.stats()

    @property
    def closed(self) -> bool:
        return self._core.closed

    async def close(self) -> None:
        self._core.close()

    def close_sync(self) -> None:
        self._core.close()

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
