"""Where the pipeline's signals go: the sink contract and two plain sinks.

A sink has ``async write(batch)`` (a list of signal dicts), ``async flush()`` and
``async close()``. A signal counts as acknowledged once a sink's ``write``
returned: the processor retries a failing ``write`` (its ``retry_attempts``) and,
if it still fails, reports the symbol as failed with the error rather than
dropping its signals silently. ``ferrotick.store.SignalManager`` and
``InfluxDBWriter`` implement the contract.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from .._errors import ConfigError


@runtime_checkable
class Sink(Protocol):
    async def write(self, batch: Sequence[dict[str, Any]]) -> Any: ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


class ListSink:
    """Keeps every signal in ``items`` (tests, notebooks, small jobs)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.closed = False

    async def write(self, batch: Sequence[dict[str, Any]]) -> int:
        if self.closed:
            raise ConfigError("sink: write after close")
        self.items.extend(batch)
        return len(batch)

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        self.closed = True


class CallbackSink:
    """Calls ``fn(batch)`` (plain or async) for each batch."""

    def __init__(self, fn: Callable[[list[dict[str, Any]]], Any]) -> None:
        if not callable(fn):
            raise ConfigError("fn: expected a callable")
        self.fn = fn

    async def write(self, batch: Sequence[dict[str, Any]]) -> Any:
        r = self.fn(list(batch))
        if inspect.isawaitable(r):
            r = await r
        return r

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


def as_sink(s: Any) -> Any:
    """``s`` when it follows the contract; a list becomes a ListSink-like wrapper
    appending to it; a callable a CallbackSink."""
    if isinstance(s, list):
        target = s

        async def _extend(batch: list[dict[str, Any]]) -> None:
            target.extend(batch)

        return CallbackSink(_extend)
    if all(callable(getattr(s, m, None)) for m in ("write", "flush", "close")):
        return s
    if callable(s):
        return CallbackSink(s)
    raise ConfigError(
        f"sinks: {type(s).__name__} has no write/flush/close and is not a list or callable"
    )


__all__ = ["CallbackSink", "ListSink", "Sink", "as_sink"]
