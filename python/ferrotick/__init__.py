"""ferrotick: a tokio runtime awaitable from asyncio, and what trading services build on it.

The native core is ``ferrotick._core``; this package re-exports its public API.
"""

from __future__ import annotations

import atexit as _atexit
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:  # for type checkers and IDEs; at run time these load on first use
    from .container import ServiceContainer as ServiceContainer
    from .exchange import (
        BinanceConfig as BinanceConfig,
        Klines as Klines,
        OptimizedBinanceClient as OptimizedBinanceClient,
        OrderBook as OrderBook,
        Secret as Secret,
        initialize_binance_client as initialize_binance_client,
    )
    from .monitor import (
        AsyncHealthChecker as AsyncHealthChecker,
        AsyncPerformanceMonitor as AsyncPerformanceMonitor,
        get_async_monitor as get_async_monitor,
        get_memory_monitor as get_memory_monitor,
        track_async_function as track_async_function,
        track_operation as track_operation,
    )
    from .scheduler import (
        AsyncScheduler as AsyncScheduler,
        CronTrigger as CronTrigger,
        DateTrigger as DateTrigger,
        IntervalTrigger as IntervalTrigger,
    )
    from .scheduler._factory import (
        ReportScheduler as ReportScheduler,
        ToolEffectivenessScheduler as ToolEffectivenessScheduler,
        cleanup_schedulers as cleanup_schedulers,
        initialize_schedulers as initialize_schedulers,
    )
    from .sim import SimulatedExchange as SimulatedExchange
    from .store import (
        InfluxDBConfig as InfluxDBConfig,
        InfluxDBWriter as InfluxDBWriter,
        Signal as Signal,
        SignalManager as SignalManager,
        get_influxdb_client as get_influxdb_client,
        get_signal_manager as get_signal_manager,
        initialize_async_signal_manager as initialize_async_signal_manager,
        initialize_influxdb as initialize_influxdb,
    )
    from .tasks import TaskManager as TaskManager, get_task_manager as get_task_manager

__version__: str = _core.__version__

# The seeds' names that live in heavier subpackages (their documented homes) are
# loaded on first access, so that `import ferrotick` does not import the monitor,
# the scheduler or the lifecycle modules (see "Importing" in the README).
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
