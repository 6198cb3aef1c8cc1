"""ferrotick: a tokio runtime awaitable from asyncio, and what trading services build on it.

The native core is ``ferrotick._core``; this package re-exports its public API.
"""

from __future__ import annotations

import atexit as _atexit

from . import _core, _errors, _logging
from ._async_utils import (
    BatchConfig,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerState,
    RequestBatcher,
    async_cache,
    cleanup_async_utils,
    gather_with_concurrency,
    get_request_batcher,
)
from ._core import (
    FerrotickFuture,
    RateLimiter,
    configure,
    echo,
    echo_sync,
    runtime_stats,
    sleep,
    sleep_sync,
)
from ._errors import *  # noqa: F403  (the exception tree: every name in _errors.__all__)
from .http import (
    AsyncHTTPClient,
    ClientResponse,
    ClientTimeout,
    ConnectionPoolConfig,
    ResponseCacheConfig,
    RetryConfig,
    RetryStrategy,
    get_http_client,
)
from .sim import SimulatedExchange

__version__: str = _core.__version__

__all__ = [
    "AsyncHTTPClient",
    "ClientResponse",
    "ClientTimeout",
    "ConnectionPoolConfig",
    "ResponseCacheConfig",
    "RetryConfig",
    "RetryStrategy",
    "get_http_client",
    "SimulatedExchange",
    "BatchConfig",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerState",
    "RateLimiter",
    "RequestBatcher",
    "async_cache",
    "cleanup_async_utils",
    "gather_with_concurrency",
    "get_request_batcher",
    "FerrotickFuture",
    "__version__",
    "configure",
    "echo",
    "echo_sync",
    "runtime_stats",
    "sleep",
    "sleep_sync",
]
__all__ += _errors.__all__

_logging.install()
# Registered at import, so it runs after the exit handlers of code that
# imported ferrotick later (atexit is last-in, first-out): in-flight Rust work
# is dropped and runtime threads stop touching Python before finalization.
_atexit.register(_core._shutdown)
