"""``AsyncHTTPClient``: requests prepared in Python, sent by the Rust client, and
answered from the response cache when one is on; ``get_http_client``, the
process-wide client."""

from __future__ import annotations

import asyncio
import functools
import json as _json
import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from .. import _core
from .._cache import MISSING
from .._core import ConfigError
from .._validate import boolean, integer, seconds
from ._cache import _CachePlan, _ResponseStore, _Snapshot, _stored_response
from ._config import ClientTimeout, ConnectionPoolConfig, Prepared, ResponseCacheConfig, RetryConfig
from ._response import ClientResponse

_new_tuple = tuple.__new__


class _RequestContext:
    """What ``client.get(...)`` returns: await it for an eagerly read response, or
    ``async with`` it to stream the body and return the connection on exit (a GET the
    client's response cache handles is read whole in both forms)."""

    __slots__ = ("_client", "_prepared", "_resp", "_cache_plan")

    def __init__(
        self,
        client: AsyncHTTPClient,
        prepared: Prepared,
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
        from ..monitor._publishers import publish_client

        # the default metrics registry exposes this client's stats while it lives
        self.metrics_name = publish_client(self)

    # -- requests ---------------------------------------------------------------------

    def _prepare(self, method: str, args: tuple[Any, ...]) -> Prepared:  # noqa: C901 (the per-request hot path (net_http_get_json); each split-out helper is a call per request)
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
        # tuple.__new__ builds it without the NamedTuple's Python-level __new__
        return _new_tuple(Prepared, (method, url, hdrs, body, total, connect, read, policy))

    async def _send(self, prepared: Prepared, stream: bool) -> ClientResponse:
        m, url, hdrs, body, total, connect, read, policy = prepared
        r = await self._core.request(m, url, hdrs, body, total, connect, read, policy, stream)
        return ClientResponse(r, m)

    def _send_sync(self, prepared: Prepared) -> ClientResponse:
        m, url, hdrs, body, total, connect, read, policy = prepared
        return ClientResponse(
            self._core.request_sync(m, url, hdrs, body, total, connect, read, policy), m
        )

    # -- the response cache -----------------------------------------------------------

    def _cache_plan(self, prepared: Prepared, cache: Any, cache_ttl: Any) -> _CachePlan | None:
        boolean("cache", cache)
        ttl = None if cache_ttl is None else seconds("cache_ttl", cache_ttl)
        if self._cache is None:
            if ttl is not None:
                raise ConfigError("cache_ttl: this client has no response cache (cache=...)")
            return None
        if not cache:
            return None
        return self._cache.plan(prepared, ttl)

    async def _cache_send(self, prepared: Prepared, plan: _CachePlan) -> ClientResponse:
        store = self._cache
        if store is None or self._core.closed:
            return await self._send(prepared, stream=False)  # a closed client raises
        key, ttl, refresh = plan
        with store.lock:
            snap = MISSING if refresh else store.lookup(key)
            if snap is not MISSING:
                return _stored_response(snap, prepared.method, True)
            # a task of its own: a waiter's cancellation never reaches the request
            task, started = store.join(
                key,
                functools.partial(self._cache_fetch, prepared),
                functools.partial(store.lifetime, ttl=ttl),
                refresh,
            )
        snap = await asyncio.shield(task)
        return _stored_response(snap, prepared.method, not started)

    async def _cache_fetch(self, prepared: Prepared) -> _Snapshot:
        resp = await self._send(prepared, stream=False)
        return _Snapshot(resp._r, await resp.read())

    def _cache_send_sync(self, prepared: Prepared, plan: _CachePlan) -> ClientResponse:
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
        return _stored_response(snap, prepared.method, reused)

    def _cache_fetch_sync(self, prepared: Prepared) -> _Snapshot:
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
        from .._core import RateLimiter

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
        from ..monitor._perf import AsyncPerformanceMonitor

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
