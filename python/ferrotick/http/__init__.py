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

The package's modules: ``_config`` (the settings), ``_response`` (the response),
``_cache`` (the response cache), ``_client`` (the client).
"""

from __future__ import annotations

from ._client import (
    AsyncHTTPClient,
    _close_shared as _close_shared,  # for cleanup_async_utils
    get_http_client,
)
from ._config import (
    ClientTimeout,
    ConnectionPoolConfig,
    ResponseCacheConfig,
    RetryConfig,
    RetryStrategy,
)
from ._response import ClientResponse, Headers

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
