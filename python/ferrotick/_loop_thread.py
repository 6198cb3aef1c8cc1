"""An asyncio loop on a background thread, for frameworks whose views are threads.

The thread starts on first use in each process: a process forked after that (a
gunicorn ``--preload`` worker, multiprocessing) sees another pid and starts its
own loop instead of using the parent's, whose thread did not survive the fork.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ._errors import BlockingCallError

T = TypeVar("T")


class LoopThread:
    """One event loop on a daemon thread; ``on_start``/``on_stop`` coroutines run on
    it when it starts and before it stops."""

    def __init__(
        self,
        name: str,
        on_start: Callable[[], Awaitable[Any]] | None = None,
        on_stop: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.name = name
        self._on_start = on_start
        self._on_stop = on_stop
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._pid == os.getpid() and self._loop is not None

    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop of this process, started (with ``on_start``) on first use."""
        if self._pid == os.getpid() and self._loop is not None:
            return self._loop
        with self._lock:
            if self._pid != os.getpid() or self._loop is None:
                self._start()
        assert self._loop is not None
        return self._loop

    def _start(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        thread = threading.Thread(target=run, name=self.name, daemon=True)
        thread.start()
        ready.wait()
        self._loop, self._thread, self._pid = loop, thread, os.getpid()
        if self._on_start is not None:
            try:
                self._submit(self._on_start()).result()
            except BaseException:
                self._halt(5.0)
                raise

    def _submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Runs ``coro`` on the loop and blocks this thread for its result."""
        loop = self.loop()
        if threading.current_thread() is self._thread:
            coro.close()
            raise BlockingCallError(
                f"{self.name}: run() called on its own loop thread; await the coroutine"
            )
        fut = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError(f"{self.name}: no result within {timeout}s") from None

    def stop(self, timeout: float = 30.0) -> None:
        """Runs ``on_stop`` on the loop, then stops and closes it. Does nothing when
        this process never started the loop."""
        with self._lock:
            if not self.started:
                return
            try:
                if self._on_stop is not None:
                    self._submit(self._on_stop()).result(timeout)
            finally:
                self._halt(timeout)

    def _halt(self, timeout: float) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = self._pid = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
