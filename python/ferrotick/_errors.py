"""ferrotick's exception tree: the one table of its exception classes.

Every error ferrotick raises, from Rust or from Python, is an instance of a class
defined here. Each class also subclasses the standard exception a caller already
catches (``ValueError`` for bad arguments, ``ConnectionError``, ``TimeoutError``,
``RuntimeError``), so code written against the standard library keeps working.

The Rust core looks these classes up by name once per interpreter (its
``ErrorKind`` table lists the names it raises). To add an exception: define the
class here, add it to ``__all__``, and — if Rust raises it — add one line to the
table in ``src/errors/mod.rs``. ``ferrotick`` re-exports everything in ``__all__``.
"""

from __future__ import annotations

__all__ = [
    "FerrotickError",
    "ConfigError",
    "IndicatorInputError",
    "MarketDataError",
    "HTTPError",
    "ConnectError",
    "RequestTimeout",
    "HTTPStatusError",
    "CircuitOpenError",
    "RateLimitExceeded",
    "SchedulerError",
    "ServiceContainerError",
    "ExchangeError",
    "BlockingCallError",
]


class FerrotickError(Exception):
    """Base of every ferrotick error."""

    __module__ = "ferrotick"


class ConfigError(FerrotickError, ValueError):
    """Bad arguments or bad configuration."""

    __module__ = "ferrotick"


class IndicatorInputError(FerrotickError, ValueError):
    """Bad indicator input: dtype, shape, period."""

    __module__ = "ferrotick"


class MarketDataError(FerrotickError, ValueError):
    """Bad market data: open times out of order or repeated, columns of different
    lengths, bars outside the buckets asked for."""

    __module__ = "ferrotick"


class HTTPError(FerrotickError):
    """An HTTP request failed."""

    __module__ = "ferrotick"


class ConnectError(HTTPError, ConnectionError):
    """The connection could not be made or was lost before a response."""

    __module__ = "ferrotick"


class RequestTimeout(HTTPError, TimeoutError):
    """A request ran out of time."""

    __module__ = "ferrotick"


class HTTPStatusError(HTTPError):
    """The server answered with an error status (.status, .headers, .body)."""

    __module__ = "ferrotick"
    status: int | None = None
    headers: object = None
    body: object = None


class CircuitOpenError(FerrotickError):
    """A circuit breaker is open (.retry_after seconds until it half-opens)."""

    __module__ = "ferrotick"
    retry_after: float | None = None


class RateLimitExceeded(FerrotickError):
    """A rate limit was exceeded (.retry_after seconds)."""

    __module__ = "ferrotick"
    retry_after: float | None = None


class SchedulerError(FerrotickError):
    """A scheduler error."""

    __module__ = "ferrotick"


class ServiceContainerError(FerrotickError):
    """A service container error."""

    __module__ = "ferrotick"


class ExchangeError(FerrotickError):
    """An exchange rejected a request (.code and .msg as the exchange sent them)."""

    __module__ = "ferrotick"
    code: int | None = None

    @property
    def msg(self) -> str:
        """The exchange's message (redacted)."""
        return str(self.args[0]) if self.args else ""


class BlockingCallError(FerrotickError, RuntimeError):
    """A blocking call was made on a thread whose event loop is running."""

    __module__ = "ferrotick"
