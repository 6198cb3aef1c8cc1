"""``AsyncConfig``: the limits of one ``AsyncDataProcessor`` (seed 004's dataclass)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .. import _validate
from .._errors import ConfigError


@dataclass(frozen=True)
class AsyncConfig:
    """How much one processor does at once, and how it retries.

    - ``max_concurrent_symbols``: symbols in flight through fetch → analyse → sinks.
    - ``max_concurrent_requests``: exchange requests in flight for this processor
      (the exchange client's weight budget applies on top).
    - ``cpu_thread_pool_size``: compute jobs this processor runs at once on the shared
      compute pool (whose size ``ferrotick.configure(compute_threads=...)`` sets).
    - ``io_thread_pool_size``: accepted for seed 004's code and unused — I/O runs on
      the tokio runtime, not on threads.
    - ``request_timeout``: seconds for one symbol's fetch, pages included.
    - ``retry_attempts``/``backoff_factor``: a failed fetch is tried again up to
      ``retry_attempts`` more times, waiting ``backoff_factor ** attempt / 10`` s.
    """

    max_concurrent_symbols: int = 10
    max_concurrent_requests: int = 50
    cpu_thread_pool_size: int = 4
    io_thread_pool_size: int = 20
    request_timeout: float = 30.0
    retry_attempts: int = 3
    backoff_factor: float = 2.0

    def __post_init__(self) -> None:
        _validate.integer("max_concurrent_symbols", self.max_concurrent_symbols, min=1)
        _validate.integer("max_concurrent_requests", self.max_concurrent_requests, min=1)
        _validate.integer("cpu_thread_pool_size", self.cpu_thread_pool_size, min=1)
        _validate.integer("io_thread_pool_size", self.io_thread_pool_size, min=1)
        object.__setattr__(
            self,
            "request_timeout",
            _validate.seconds("request_timeout", self.request_timeout, positive=True),
        )
        _validate.integer("retry_attempts", self.retry_attempts, min=0)
        object.__setattr__(
            self, "backoff_factor", float(_validate.number("backoff_factor", self.backoff_factor))
        )
        if self.backoff_factor < 1.0:
            raise ConfigError(
                f"backoff_factor: expected a number >= 1, got {self.backoff_factor!r}"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AsyncConfig:
        """Builds from a mapping (a config file's ``pipeline:`` section); unknown keys
        raise ConfigError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(
                f"{unknown[0]}: not an AsyncConfig setting (known: {', '.join(sorted(known))})"
            )
        return cls(**d)
