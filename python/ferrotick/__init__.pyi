"""Type stubs for the ferrotick package."""

from ._core import (
    BlockingCallError as BlockingCallError,
    CircuitOpenError as CircuitOpenError,
    ConfigError as ConfigError,
    ConnectError as ConnectError,
    ExchangeError as ExchangeError,
    FerrotickError as FerrotickError,
    FerrotickFuture as FerrotickFuture,
    HTTPError as HTTPError,
    HTTPStatusError as HTTPStatusError,
    IndicatorInputError as IndicatorInputError,
    RateLimitExceeded as RateLimitExceeded,
    RequestTimeout as RequestTimeout,
    SchedulerError as SchedulerError,
    ServiceContainerError as ServiceContainerError,
    configure as configure,
    echo as echo,
    echo_sync as echo_sync,
    runtime_stats as runtime_stats,
    sleep as sleep,
    sleep_sync as sleep_sync,
)

__version__: str
__all__: list[str]
