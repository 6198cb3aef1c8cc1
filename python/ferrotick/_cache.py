"""The cache under ``async_cache`` and AsyncHTTPClient's response cache.

Values are kept per key for a lifetime of their own, the least recently used
going first beyond ``maxsize``. A value that is missing is computed once for all
the callers that want it at the same time: on an event loop, as a task of that
loop which each caller awaits through ``asyncio.shield`` (a caller's cancellation
never reaches it); in blocking code, by the first thread, which the others wait
for. Stored values are visible to every loop and thread. A failed or cancelled
computation stores nothing.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Hashable
from typing import Any

__all__ = ["MISSING", "TTLCache"]

# what lookup() returns for a key with no fresh value (None may be a value)
MISSING: Any = object()

# seconds a value may be served, from the value: 0 or less stores nothing
Lifetime = Callable[[Any], float]


class _Entry:
    __slots__ = ("value", "expires")

    def __init__(self, value: Any, expires: float) -> None:
        self.value = value
        self.expires = expires


class TTLCache:
    """Stored values, the computations in flight and their figures, behind one lock.

    ``hits`` (served from the store), ``misses`` (computations started) and
    ``shared`` (callers that joined a computation in flight) are counted here.
    """

    def __init__(self, maxsize: int | None) -> None:
        self.maxsize = maxsize
        self.lock = threading.Lock()
        self.entries: collections.OrderedDict[Hashable, _Entry] = collections.OrderedDict()
        # per event loop: key -> the task computing it
        self.inflight: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[Hashable, asyncio.Task[Any]]
        ] = weakref.WeakKeyDictionary()
        # blocking callers: key -> the future of the thread computing it
        self.sync_inflight: dict[Hashable, concurrent.futures.Future[Any]] = {}
        # bumped by clear(): computations begun before it store nothing
        self.generation = 0
        self.hits = self.misses = self.shared = 0

    def lookup(self, key: Hashable) -> Any:
        """The fresh value stored for ``key``, else MISSING (an expired one is
        dropped). The caller holds the lock."""
        e = self.entries.get(key)
        if e is None:
            return MISSING
        if e.expires <= time.monotonic():
            del self.entries[key]
            return MISSING
        self.entries.move_to_end(key)
        self.hits += 1
        return e.value

    def join(
        self,
        key: Hashable,
        start: Callable[[], Coroutine[Any, Any, Any]],
        lifetime: Lifetime,
        refresh: bool = False,
    ) -> tuple[asyncio.Task[Any], bool]:
        """The running loop's task computing ``key``, and whether this call started
        it: when no task of this loop computes ``key`` (or with ``refresh``), one is
        made of ``start()`` and its value, on success, is stored for
        ``lifetime(value)`` seconds. The caller holds the lock and awaits the task
        through ``asyncio.shield``."""
        loop = asyncio.get_running_loop()
        pending = self.inflight.get(loop)
        if pending is None:
            pending = self.inflight[loop] = {}
        task = None if refresh else pending.get(key)
        if task is not None:
            self.shared += 1
            return task, False
        self.misses += 1
        task = loop.create_task(start())
        pending[key] = task
        task.add_done_callback(
            functools.partial(self._task_done, pending, key, lifetime, self.generation)
        )
        return task, True

    def _task_done(
        self,
        pending: dict[Hashable, asyncio.Task[Any]],
        key: Hashable,
        lifetime: Lifetime,
        generation: int,
        task: asyncio.Task[Any],
    ) -> None:
        with self.lock:
            if pending.get(key) is task:
                del pending[key]
        # exception() also marks a failure as seen when every waiter has gone
        if not task.cancelled() and task.exception() is None:
            value = task.result()
            self.put(key, value, lifetime(value), generation)

    def get_sync(
        self,
        key: Hashable,
        compute: Callable[[], Any],
        lifetime: Lifetime,
        refresh: bool = False,
    ) -> tuple[Any, bool]:
        """For blocking code: ``(value, reused)``. The stored value for ``key``, or
        the one another thread is computing, comes with ``reused`` True; otherwise
        ``compute()`` runs here and its value is stored for ``lifetime(value)``
        seconds. ``refresh`` skips the lookup and the sharing. An exception from
        ``compute()`` reaches the threads waiting for it too; an interruption
        (KeyboardInterrupt) lets them compute it themselves."""
        while True:
            with self.lock:
                value = MISSING if refresh else self.lookup(key)
                if value is not MISSING:
                    return value, True
                flight = None if refresh else self.sync_inflight.get(key)
                if flight is None:
                    self.misses += 1
                    flight = concurrent.futures.Future()
                    self.sync_inflight[key] = flight
                    generation = self.generation
                    break
                self.shared += 1
            try:
                return flight.result(), True
            except concurrent.futures.CancelledError:
                continue  # the thread computing it was interrupted: compute it here

        def done() -> None:
            with self.lock:
                if self.sync_inflight.get(key) is flight:
                    del self.sync_inflight[key]

        try:
            value = compute()
        except Exception as e:
            done()
            flight.set_exception(e)
            raise
        except BaseException:
            done()
            flight.cancel()
            raise
        done()
        self.put(key, value, lifetime(value), generation)
        flight.set_result(value)
        return value, False

    def put(self, key: Hashable, value: Any, lifetime: float, generation: int) -> None:
        """Stores ``value`` for ``lifetime`` seconds, unless the lifetime is 0 or
        less or clear() ran since ``generation`` was read."""
        with self.lock:
            if lifetime <= 0 or generation != self.generation:
                return
            self.entries[key] = _Entry(value, time.monotonic() + lifetime)
            self.entries.move_to_end(key)
            while self.maxsize is not None and len(self.entries) > self.maxsize:
                self.entries.popitem(last=False)

    def purge(self) -> None:
        """Drops the expired values. The caller holds the lock."""
        now = time.monotonic()
        for k in [k for k, e in self.entries.items() if e.expires <= now]:
            del self.entries[k]

    def in_flight(self) -> int:
        """Computations running, on every loop and thread. The caller holds the lock."""
        return len(self.sync_inflight) + sum(len(p) for p in self.inflight.values())

    def clear(self, stats: bool = True, keep_in_flight: bool = False) -> None:
        """Drops every stored value, and the figures with ``stats``. The computations
        in flight store nothing when they complete, unless ``keep_in_flight``."""
        with self.lock:
            self.entries.clear()
            if not keep_in_flight:
                self.generation += 1
            if stats:
                self.hits = self.misses = self.shared = 0
