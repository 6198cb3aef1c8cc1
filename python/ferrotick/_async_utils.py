"""Async utilities: circuit breaker, request batching, caching and bounded
gathering. ``RateLimiter`` and the breaker's state machine are in Rust."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import inspect
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from . import _core
from ._cache import MISSING, TTLCache
from ._core import CircuitBreakerCore, ConfigError, RateLimiter
from ._validate import integer, seconds

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
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
]


# -- circuit breaker ---------------------------------------------------------------


class CircuitBreakerState(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclasses.dataclass
class CircuitBreakerConfig:
    failure_threshold: int = 5
    recovery_timeout: float = 60.0
    expected_exception: type[BaseException] | tuple[type[BaseException], ...] = Exception


class CircuitBreaker(CircuitBreakerCore):
    """Fails fast after ``failure_threshold`` consecutive failures, for
    ``recovery_timeout`` seconds, then lets one trial call through.

    ``async with breaker:`` (or ``with``), ``await breaker.call(fn, *args)``, or
    ``@breaker`` on a coroutine function. Only ``expected_exception`` counts as a
    failure; cancellation never does. An open breaker raises CircuitOpenError with
    ``retry_after``.
    """

    def __new__(cls, config: CircuitBreakerConfig | None = None, **kwargs: Any) -> CircuitBreaker:
        cfg = config or CircuitBreakerConfig(**kwargs)
        if config is not None and kwargs:
            raise ConfigError("config: pass a CircuitBreakerConfig or keyword arguments, not both")
        return super().__new__(
            cls, cfg.failure_threshold, cfg.recovery_timeout, cfg.expected_exception
        )

    def __init__(self, config: CircuitBreakerConfig | None = None, **kwargs: Any) -> None:
        self.config = config or CircuitBreakerConfig(**kwargs)

    @property
    def state(self) -> CircuitBreakerState:
        return CircuitBreakerState(self._state)

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        self.before_call()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as e:
            self.after_call(type(e), e)
            raise
        self.after_call(None, None)
        return result

    def __call__(self, fn: F) -> F:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError("CircuitBreaker decorates coroutine functions")

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await self.call(fn, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self._state}, failures={self.failure_count})"


# -- gather_with_concurrency -------------------------------------------------------


async def gather_with_concurrency(  # noqa: C901 (one pass over the awaitables with its fast paths inline: it is the per-call cost users measure)
    coros_or_tasks: Iterable[Awaitable[T]],
    max_concurrency: int = 10,
    return_exceptions: bool = False,
) -> list[T | BaseException]:
    """Awaits everything with at most ``max_concurrency`` running at once; results in
    input order. Without ``return_exceptions`` the first error cancels the rest and
    closes the coroutines never started (no "never awaited" warnings)."""
    integer("max_concurrency", max_concurrency, min=1)
    items = list(coros_or_tasks)
    results: list[Any] = [None] * len(items)
    if not items:
        return results
    loop = asyncio.get_running_loop()
    next_index = 0
    running: dict[asyncio.Future[Any], int] = {}

    def start_more() -> None:
        nonlocal next_index
        while next_index < len(items) and len(running) < max_concurrency:
            i = next_index
            next_index += 1
            fut = asyncio.ensure_future(items[i], loop=loop)
            running[fut] = i

    def close_unstarted() -> None:
        for aw in items[next_index:]:
            if inspect.iscoroutine(aw):
                aw.close()
            elif isinstance(aw, asyncio.Future) or asyncio.isfuture(aw):
                aw.cancel()

    start_more()
    try:
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                i = running.pop(fut)
                if fut.cancelled():
                    exc: BaseException | None = asyncio.CancelledError()
                else:
                    exc = fut.exception()
                if exc is None:
                    results[i] = fut.result()
                elif return_exceptions:
                    results[i] = exc
                else:
                    raise exc
            start_more()
    except BaseException:
        for fut in running:
            fut.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        close_unstarted()
        raise
    return results


# -- async_cache -------------------------------------------------------------------


def _make_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
    if kwargs:
        return (args, tuple(sorted(kwargs.items())))
    return args


def async_cache(ttl_seconds: float = 300.0, maxsize: int | None = 1024) -> Callable[[F], F]:
    """Caches a coroutine function's results for ``ttl_seconds`` (LRU beyond
    ``maxsize``). Concurrent callers with the same key share one in-flight call; a
    caller's cancellation does not cancel it for the others; exceptions are not
    cached; works across event loops and threads (an in-flight call is shared only
    within its own loop). ``fn.cache_info()`` and ``fn.cache_clear()``; a call in
    flight during ``cache_clear()`` is still stored when it completes."""
    seconds("ttl_seconds", ttl_seconds)
    integer("maxsize", maxsize, min=1, allow_none=True, expected="None or an integer >= 1")

    def lifetime(_value: Any) -> float:
        return ttl_seconds

    def deco(fn: F) -> F:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError("async_cache decorates coroutine functions")
        cache = TTLCache(maxsize)

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                key = _make_key(args, kwargs)
                hash(key)
            except TypeError:
                raise TypeError("async_cache: arguments must be hashable") from None
            with cache.lock:
                value = cache.lookup(key)
                if value is not MISSING:
                    return value
                task, _ = cache.join(key, lambda: fn(*args, **kwargs), lifetime)
            # shield: one caller's cancellation leaves the shared call running
            return await asyncio.shield(task)

        def cache_info() -> dict[str, Any]:
            with cache.lock:
                return {
                    "hits": cache.hits,
                    "misses": cache.misses,
                    "shared": cache.shared,
                    "size": len(cache.entries),
                    "maxsize": maxsize,
                    "ttl_seconds": ttl_seconds,
                }

        def cache_clear() -> None:
            cache.clear(keep_in_flight=True)

        wrapper.cache_info = cache_info  # type: ignore[attr-defined]
        wrapper.cache_clear = cache_clear  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return deco


# -- request batching --------------------------------------------------------------


@dataclasses.dataclass
class BatchConfig:
    batch_size: int = 10
    batch_timeout: float = 0.1
    max_concurrent_batches: int = 5

    def __post_init__(self) -> None:
        integer("batch_size", self.batch_size, min=1)
        if not (isinstance(self.batch_timeout, (int, float)) and self.batch_timeout >= 0):
            raise ConfigError(f"batch_timeout: expected seconds >= 0, got {self.batch_timeout!r}")
        integer("max_concurrent_batches", self.max_concurrent_batches, min=1)


class RequestBatcher:
    """Groups requests into batches that close at ``batch_size`` items or
    ``batch_timeout`` seconds after their first item, whichever comes first, and
    runs up to ``max_concurrent_batches`` batches at once.

    ``await batcher.add_request(fn)`` runs ``fn()`` (a coroutine function or a plain
    callable) as part of a batch and returns its result. With ``batch_fn`` —
    ``RequestBatcher(config, batch_fn=fetch_many)`` — ``await batcher.add(key)``
    sends one combined call ``await fetch_many([keys])`` per batch (returning a
    list in key order or a dict by key) and fans the results back out.
    """

    def __init__(
        self,
        config: BatchConfig | None = None,
        *,
        batch_fn: Callable[[list[Any]], Awaitable[Sequence[Any] | dict[Any, Any]]] | None = None,
    ) -> None:
        self.config = config or BatchConfig()
        self.batch_fn = batch_fn
        self._items: list[tuple[Any, asyncio.Future[Any]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches_run = 0

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._sem = asyncio.Semaphore(self.config.max_concurrent_batches)
            self._items = []
            self._timer = None
        return loop

    async def add_request(self, fn: Callable[[], Any]) -> Any:
        if not callable(fn):
            raise ConfigError("fn: expected a callable")
        return await self._submit(fn)

    async def add(self, key: Any) -> Any:
        if self.batch_fn is None:
            raise ConfigError("batch_fn: this batcher was created without a batch function")
        return await self._submit(key)

    def _submit(self, item: Any) -> asyncio.Future[Any]:
        loop = self._bind()
        fut: asyncio.Future[Any] = loop.create_future()
        self._items.append((item, fut))
        if len(self._items) >= self.config.batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.config.batch_timeout, self._flush)
        return fut

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._items = self._items, []
        if not batch:
            return
        assert self._loop is not None
        task = self._loop.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        assert self._sem is not None
        async with self._sem:
            self.batches_run += 1
            live = [(item, fut) for item, fut in batch if not fut.done()]
            if not live:
                return
            if self.batch_fn is not None:
                await self._run_combined(live)
                return

            async def one(item: Callable[[], Any], fut: asyncio.Future[Any]) -> None:
                try:
                    r = item()
                    if inspect.isawaitable(r):
                        r = await r
                except BaseException as e:  # delivered to the caller
                    if not fut.done():
                        fut.set_exception(e)
                else:
                    if not fut.done():
                        fut.set_result(r)

            await asyncio.gather(*(one(item, fut) for item, fut in live))

    async def _run_combined(self, live: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        assert self.batch_fn is not None
        keys = [k for k, _ in live]
        try:
            out = await self.batch_fn(keys)
            if isinstance(out, dict):
                for k, fut in live:
                    if fut.done():
                        continue
                    if k in out:
                        fut.set_result(out[k])
                    else:
                        fut.set_exception(KeyError(k))
            else:
                out = list(out)
                if len(out) != len(keys):
                    raise _core.FerrotickError(
                        f"batch_fn returned {len(out)} results for {len(keys)} keys"
                    )
                for (_, fut), v in zip(live, out, strict=True):
                    if not fut.done():
                        fut.set_result(v)
        except BaseException as e:
            for _, fut in live:
                if not fut.done():
                    fut.set_exception(e)

    async def flush(self) -> None:
        """Closes the open batch now and waits for every running batch."""
        self._flush()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.flush()


_shared_batcher: RequestBatcher | None = None


def get_request_batcher(config: BatchConfig | None = None) -> RequestBatcher:
    """The process-wide RequestBatcher (created with ``config`` on first use)."""
    global _shared_batcher
    if _shared_batcher is None:
        _shared_batcher = RequestBatcher(config)
    return _shared_batcher


async def cleanup_async_utils() -> None:
    """Shuts down the running loop's TaskManager (cancelling its tasks), then
    flushes and forgets the shared objects: the batcher and the HTTP client."""
    global _shared_batcher
    from .http import _close_shared
    from .tasks import shutdown_task_managers

    await shutdown_task_managers()

    await _close_shared()
    b, _shared_batcher = _shared_batcher, None
    if b is not None:
        try:
            await b.close()
        except RuntimeError:
            pass
