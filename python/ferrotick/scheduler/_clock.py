"""Clocks the scheduler waits on.

``RealClock`` waits on a timerfd in the loop's own selector (Linux; the kernel
wakes the loop at the instant, and a wall-clock step wakes it too so that due
jobs fire instead of being slept through), else on ferrotick's precise Rust
timer (a dedicated thread parked to the deadline, re-reading the wall clock at
least every 250 ms). ``ManualClock`` is driven
by tests: ``await clock.advance(seconds)`` runs a month of schedule in
milliseconds, stopping at every due time so that jobs run in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import os
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from .. import _core


class _LoopTimer:
    """One loop's wall-clock timer: a timerfd its selector waits on (Linux).

    The kernel wakes the loop's ``epoll_wait`` at the instant itself: one thread
    wake-up per sleep, where the Rust timer thread costs two (itself for each new
    deadline, then the loop through the bridge). A wall-clock step wakes it too
    (the scheduler then re-evaluates what is due)."""

    __slots__ = ("loop", "timer", "fut", "callback")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.timer = _core.WallTimer()
        self.fut: asyncio.Future[None] | None = None
        # called at each expiry instead of resolving a future (the scheduler's
        # own wake-ups: no future, no task step, no second loop iteration)
        self.callback: Callable[[], None] | None = None
        try:
            loop.add_reader(self.timer.fileno(), self._ready)
        except BaseException:
            self.timer.close()
            raise

    def _ready(self) -> None:
        if self.timer.consume():
            callback = self.callback
            if callback is not None:
                callback()
                return
            fut, self.fut = self.fut, None
            if fut is not None and not fut.done():
                fut.set_result(None)

    def sleep_until(self, t: float) -> asyncio.Future[None]:
        fut = self.loop.create_future()
        self.fut = fut
        self.timer.arm(t)
        return fut

    def arm(self, t: float) -> None:
        """Calls ``callback`` at ``t`` (a time already past: at once)."""
        self.timer.arm(t)

    def disarm(self) -> None:
        self.timer.disarm()

    def close(self) -> None:
        if not self.timer.closed:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self.timer.fileno())
            self.timer.close()
        fut, self.fut = self.fut, None
        if fut is not None and not fut.done():
            fut.cancel()


class RealClock:
    """The wall clock. ``sleep_until`` waits on a timerfd in the running loop's
    selector where the loop has one (Linux, asyncio's selector loops, uvloop),
    else on ferrotick's Rust timer thread (``_core.sleep_until``)."""

    now: Callable[[], float] = staticmethod(time.time)

    def __init__(self) -> None:
        # loop -> its timer, or None where the loop cannot watch a descriptor
        self._timers: dict[asyncio.AbstractEventLoop, _LoopTimer | None] = {}
        self._pid = os.getpid()

    def sleep_until(self, t: float) -> Any:
        lt = self.loop_timer(asyncio.get_running_loop())
        if lt is None:
            return _core.sleep_until(t)
        return lt.sleep_until(t)

    def loop_timer(self, loop: asyncio.AbstractEventLoop) -> _LoopTimer | None:
        """The loop's timerfd timer, or None where it cannot have one."""
        lt = self._timers.get(loop, False)
        if lt is False:
            lt = self._timer_for(loop)
        return lt

    def _timer_for(self, loop: asyncio.AbstractEventLoop) -> _LoopTimer | None:
        if os.getpid() != self._pid:  # a forked child: the parent's descriptors stay
            self._timers = {}
            self._pid = os.getpid()
        for old in [lp for lp in self._timers if lp.is_closed()]:
            tm = self._timers.pop(old)
            if tm is not None:
                tm.timer.close()
        try:
            lt: _LoopTimer | None = _LoopTimer(loop)
        except (NotImplementedError, OSError, RuntimeError):
            lt = None  # no timerfd, or a loop without add_reader (Proactor)
        self._timers[loop] = lt
        return lt

    def close(self) -> None:
        """Releases the timers' descriptors (the scheduler's stop() calls it)."""
        timers, self._timers = self._timers, {}
        for lt in timers.values():
            if lt is not None:
                lt.close()


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float | Any = 1_700_000_000.0) -> None:
        if hasattr(start, "timestamp"):
            start = start.timestamp()
        self._now = float(start)
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._settlers: list[Callable[[], Awaitable[None]]] = []
        # task -> the clock future it sleeps on: a job sleeping on this clock is
        # "parked", so advance() moves time on instead of waiting for it forever
        self._parked: weakref.WeakKeyDictionary[asyncio.Task[Any], asyncio.Future[None]] = (
            weakref.WeakKeyDictionary()
        )
        self._park_signals: list[asyncio.Future[None]] = []

    def now(self) -> float:
        return self._now

    def sleep_until(self, t: float) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if t <= self._now:
            fut.set_result(None)
        else:
            heapq.heappush(self._waiters, (t, next(self._seq), fut))
            task = asyncio.current_task()
            if task is not None:
                self._parked[task] = fut
                signals, self._park_signals = self._park_signals, []
                for sig in signals:
                    if not sig.done():
                        sig.set_result(None)
        return fut

    def _is_parked(self, task: asyncio.Future[Any]) -> bool:
        fut = self._parked.get(task)  # type: ignore[call-overload]
        return fut is not None and not fut.done()

    def _park_signal(self) -> asyncio.Future[None]:
        """A future resolved when the next task parks on this clock."""
        sig: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._park_signals.append(sig)
        return sig

    def _add_settler(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._settlers.append(fn)

    def _remove_settler(self, fn: Callable[[], Awaitable[None]]) -> None:
        if fn in self._settlers:
            self._settlers.remove(fn)

    async def _settle(self) -> None:
        for _ in range(3):
            for _ in range(5):
                await asyncio.sleep(0)
            for fn in list(self._settlers):
                await fn()

    async def advance(self, seconds: float) -> None:
        """Moves time forward by ``seconds``, waking every sleeper in order and
        letting the jobs it starts finish before moving on."""
        await self.advance_to(self._now + float(seconds))

    async def advance_to(self, target: float) -> None:
        if hasattr(target, "timestamp"):
            target = target.timestamp()
        await self._settle()
        while True:
            while self._waiters and self._waiters[0][2].done():
                heapq.heappop(self._waiters)
            if not self._waiters or self._waiters[0][0] > target:
                break
            t = self._waiters[0][0]
            self._now = max(self._now, t)
            while self._waiters and self._waiters[0][0] <= self._now:
                _, _, fut = heapq.heappop(self._waiters)
                if not fut.done():
                    fut.set_result(None)
            await self._settle()
        self._now = max(self._now, float(target))
        await self._settle()
