"""ferrotick: a tokio runtime awaitable from asyncio, and what trading services build on it.

The native core is ``ferrotick._core``; this package re-exports its public API.
"""

from __future__ import annotations

import atexit as _atexit
from typing import Any

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

__version__: str = _core.__version__

# The seeds' names that live in heavier subpackages (their documented homes) are
# loaded on first access, so that `import ferrotick` does not import the monitor,
# the scheduler or the lifecycle modules (see "Importing" in the README);
# ``__init__.pyi`` declares them for type checkers.
_LAZY = {
    "TaskManager": "tasks",
    "get_task_manager": "tasks",
    "ServiceContainer": "container",
    "initialize_schedulers": "scheduler._factory",
    "cleanup_schedulers": "scheduler._factory",
    "ToolEffectivenessScheduler": "scheduler._factory",
    "ReportScheduler": "scheduler._factory",
    "AsyncScheduler": "scheduler",
    "CronTrigger": "scheduler",
    "IntervalTrigger": "scheduler",
    "DateTrigger": "scheduler",
    "AsyncPerformanceMonitor": "monitor",
    "get_async_monitor": "monitor",
    "track_async_function": "monitor",
    "track_operation": "monitor",
    "get_memory_monitor": "monitor",
    "AsyncHealthChecker": "monitor",
    "InfluxDBConfig": "store",
    "InfluxDBWriter": "store",
    "get_influxdb_client": "store",
    "initialize_influxdb": "store",
    "Signal": "store",
    "SignalManager": "store",
    "get_signal_manager": "store",
    "initialize_async_signal_manager": "store",
    "SimulatedExchange": "sim",
    "BinanceConfig": "exchange",
    "OptimizedBinanceClient": "exchange",
    "initialize_binance_client": "exchange",
    "Klines": "exchange",
    "OrderBook": "exchange",
    "Secret": "exchange",
    "MarketData": "pipeline",
    "AnalysisResult": "pipeline",
    "BaseAnalyzer": "pipeline",
    "MarketRegimeAnalyzer": "pipeline",
    "MultiTimeframeAnalyzer": "pipeline",
    "AsyncDataProcessor": "pipeline",
    "AsyncConfig": "pipeline",
    "FerrotickConfig": "config",
    "load_config": "config",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ferrotick' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AsyncHTTPClient",
    "ClientResponse",
    "ClientTimeout",
    "ConnectionPoolConfig",
    "ResponseCacheConfig",
    "RetryConfig",
    "RetryStrategy",
    "get_http_client",
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
__all__ += list(_LAZY)

_logging.install()
# Registered at import, so it runs after the exit handlers of code that
# imported ferrotick later (atexit is last-in, first-out): in-flight Rust work
# is dropped and runtime threads stop touching Python before finalization.
_atexit.register(_core._shutdown)
