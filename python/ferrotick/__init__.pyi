"""Type stubs for the ferrotick package."""

from ._async_utils import (
    BatchConfig as BatchConfig,
    CircuitBreaker as CircuitBreaker,
    CircuitBreakerConfig as CircuitBreakerConfig,
    CircuitBreakerState as CircuitBreakerState,
    RequestBatcher as RequestBatcher,
    async_cache as async_cache,
    cleanup_async_utils as cleanup_async_utils,
    gather_with_concurrency as gather_with_concurrency,
    get_request_batcher as get_request_batcher,
)
from ._core import (
    FerrotickFuture as FerrotickFuture,
    RateLimiter as RateLimiter,
    configure as configure,
    echo as echo,
    echo_sync as echo_sync,
    runtime_stats as runtime_stats,
    sleep as sleep,
    sleep_sync as sleep_sync,
)
from ._errors import *  # noqa: F403  (the exception tree: every name in _errors.__all__)
from .http import (
    AsyncHTTPClient as AsyncHTTPClient,
    ClientResponse as ClientResponse,
    ClientTimeout as ClientTimeout,
    ConnectionPoolConfig as ConnectionPoolConfig,
    ResponseCacheConfig as ResponseCacheConfig,
    RetryConfig as RetryConfig,
    RetryStrategy as RetryStrategy,
    get_http_client as get_http_client,
)
from .sim import SimulatedExchange as SimulatedExchange

__version__: str
__all__: list[str]
