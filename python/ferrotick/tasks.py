"""TaskManager: named background tasks in named groups, never lost.

```python
from ferrotick import get_task_manager

tasks = get_task_manager()
tasks.create_task(poll_prices(), name="prices", group="trading")
...
report = await tasks.cancel_group("trading", timeout=5)
```

* The manager holds a strong reference to every task until it ends, so a task is
  never garbage-collected while it runs.
* A task that raises is logged (logger ``ferrotick.tasks``, with its traceback) and
  counted per group; its exception is retrieved, so asyncio never reports
  "Task exception was never retrieved".
* ``get_task_status()`` returns ``{task_id: {name, group, done, cancelled,
  exception, started_at, duration}}`` for the live tasks and the last
  ``keep_finished`` finished ones. ``task_id`` is an int, unique per manager;
  ``started_at`` is a unix timestamp; ``duration`` is the seconds run so far (final
  once done); ``exception`` is ``"Type: message"`` or None.
* ``cancel_group`` of a group that has no live task (or never existed) returns an
  empty ``CancelReport`` (``requested == 0``).
* One manager per event loop: ``get_task_manager()`` inside a running loop returns
  that loop's manager, so pytest-asyncio's per-test loops each get their own.
  Called outside a running loop (at module level, as seed 003 does), it returns a
  handle that acts, on each call, on the manager of the loop running at that moment.

Metrics (default registry, published at scrape time):
``ferrotick_managed_tasks{group}`` (live tasks) and
``ferrotick_managed_task_errors_total{group}`` (tasks that raised). The monitor's
``active_async_tasks`` keeps its own meaning (tracked operations in flight).
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import dataclasses
import itertools
import logging
import time
import types
import weakref
from collections.abc import Coroutine
from typing import Any

logger = logging.getLogger("ferrotick.tasks")

__all__ = ["CancelReport", "TaskManager", "get_task_manager"]

DEFAULT_GROUP = "default"
_EMPTY_CONTEXT = contextvars.Context()
# module-level aliases: the create/done path runs once per task, and each
# attribute lookup saved there is measurable in benches/bench_lifecycle.py
_CORO = types.CoroutineType
_iscoroutine = asyncio.iscoroutine
_running_loop = asyncio.get_running_loop
_now = time.time


class _Gone:
    pass


_NO_LOOP = weakref.ref(_Gone())  # a dead reference: the manager is not bound yet


@dataclasses.dataclass(frozen=True)
class CancelReport:
    """What ``cancel_group`` / ``shutdown`` did.

    ``requested``: tasks asked to stop; ``stopped``: those that ended within the
    timeout; ``still_running``: names of those that did not (they stay managed)."""

    group: str | None
    requested: int = 0
    stopped: int = 0
    still_running: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.still_running


def _describe(obj: Any) -> str:
    if callable(obj) and hasattr(obj, "__name__"):
        return f"{type(obj).__name__} {obj.__name__!r} (call it to get a coroutine)"
    return type(obj).__name__


class _Watch:
    """A group somebody waits for: how many of its tasks are live, and the waiters.

    Only waited-for groups are counted, so that creating and finishing a task
    touches no per-group structure in the common case."""

    __slots__ = ("remaining", "waiters")

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining
        self.waiters: list[asyncio.Future[None]] = []


def _wake(waiters: list[asyncio.Future[None]]) -> None:
    for w in waiters:
        if not w.done():
            w.set_result(None)
    waiters.clear()


class TaskManager:
    """Named tasks in named groups on one event loop (see the module doc).

    The manager binds to the loop of its first ``create_task``; using it from
    another loop raises RuntimeError."""

    def __init__(self, *, keep_finished: int = 1000) -> None:
        if isinstance(keep_finished, bool) or not isinstance(keep_finished, int):
            raise TypeError(f"keep_finished: expected an int, got {keep_finished!r}")
        if keep_finished < 0:
            raise ValueError(f"keep_finished: must be >= 0, got {keep_finished}")
        self._loop_ref: weakref.ref[Any] = _NO_LOOP
        self._next_id = itertools.count(1).__next__
        # task -> (task id, name, group, started_at); insertion order is creation
        # order. Status dicts are built only when asked for, so that creating a
        # task costs little more than asyncio's own create_task.
        self._live: dict[asyncio.Task[Any], tuple[int, str, str, float]] = {}
        # ((task id, name, group, started_at), cancelled, exception text, ended_at)
        # of the last keep_finished finished tasks, oldest first
        self._finished: collections.deque[tuple[Any, ...]] = collections.deque(maxlen=keep_finished)
        self._watched: dict[str, _Watch] = {}
        self._all_waiters: list[asyncio.Future[None]] = []
        self._seen_groups: set[str] = set()
        self.errors: collections.Counter[str] = collections.Counter()
        self._publish()

    def _publish(self) -> None:
        from .monitor._publishers import publish_task_manager

        publish_task_manager(self)

    # -- creating ---------------------------------------------------------------------

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop_ref() is not None:
            raise RuntimeError(
                "this TaskManager belongs to another event loop; use get_task_manager() "
                "to get the manager of the running loop"
            )
        self._loop_ref = weakref.ref(loop)

    def create_task(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None, group: str = DEFAULT_GROUP
    ) -> asyncio.Task[Any]:
        """Schedules ``coro`` as a task named ``name`` in ``group`` and keeps it."""
        if type(coro) is not _CORO and not _iscoroutine(coro):
            raise TypeError(f"coro: expected a coroutine, got {_describe(coro)}")
        if type(group) is not str:
            raise TypeError(f"group: expected a string, got {type(group).__name__}")
        loop = _running_loop()
        if self._loop_ref() is not loop:
            self._bind(loop)
        task = loop.create_task(coro, name=name)
        self._live[task] = (self._next_id(), name or task.get_name(), group, _now())
        if self._watched:
            watch = self._watched.get(group)
            if watch is not None:
                watch.remaining += 1
        # an empty context saves the copy of the caller's context that
        # add_done_callback would take for each task; _on_done reads none of it
        task.add_done_callback(self._on_done, context=_EMPTY_CONTEXT)
        return task

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        info = self._live.pop(task)
        if task.cancelled():
            self._finished.append((info, True, None, _now()))
        else:
            exc = task.exception()  # retrieved here: never "never retrieved"
            if exc is None:
                self._finished.append((info, False, None, _now()))
            else:
                self._finished.append((info, False, self._failed(info, exc), _now()))
        if self._watched:
            watch = self._watched.get(info[2])
            if watch is not None:
                watch.remaining -= 1
                if not watch.remaining:
                    del self._watched[info[2]]
                    _wake(watch.waiters)
        if not self._live and self._all_waiters:
            _wake(self._all_waiters)

    def _failed(self, info: tuple[int, str, str, float], exc: BaseException) -> str:
        _, name, group, _ = info
        text = f"{type(exc).__name__}: {exc}"
        self.errors[group] += 1
        logger.error("task %r in group %r failed: %s", name, group, text, exc_info=exc)
        return text

    # -- reading ----------------------------------------------------------------------

    def get_task_status(self) -> dict[int, dict[str, Any]]:
        """``{task_id: {name, group, done, cancelled, exception, started_at,
        duration}}`` for recently finished tasks then live ones (fresh dicts)."""
        status = {
            tid: {
                "name": name,
                "group": group,
                "done": True,
                "cancelled": cancelled,
                "exception": error,
                "started_at": started,
                "duration": ended - started,
            }
            for (tid, name, group, started), cancelled, error, ended in self._finished
        }
        now = _now()
        status.update(
            {
                tid: {
                    "name": name,
                    "group": group,
                    "done": False,
                    "cancelled": False,
                    "exception": None,
                    "started_at": started,
                    "duration": now - started,
                }
                for tid, name, group, started in self._live.values()
            }
        )
        return status

    def tasks(self, group: str | None = None) -> list[asyncio.Task[Any]]:
        """The live tasks, of one group or all, oldest first."""
        if group is None:
            return list(self._live)
        return [t for t, info in list(self._live.items()) if info[2] == group]

    def live_counts(self) -> dict[str, int]:
        """``{group: live tasks}``, with 0 for groups seen live before."""
        counts = collections.Counter(info[2] for info in list(self._live.values()))
        self._seen_groups.update(counts)
        return {g: counts.get(g, 0) for g in self._seen_groups}

    def __len__(self) -> int:
        return len(self._live)

    # -- waiting and cancelling -------------------------------------------------------

    def _watch(self, group: str) -> _Watch | None:
        watch = self._watched.get(group)
        if watch is None:
            n = sum(1 for info in self._live.values() if info[2] == group)
            if n == 0:
                return None
            watch = self._watched[group] = _Watch(n)
        return watch

    async def wait_group(self, group: str, timeout: float | None = None) -> bool:
        """Waits until ``group`` has no live task; False if ``timeout`` ran out."""
        watch = self._watch(group)
        if watch is None:
            return True
        return await self._wait(watch.waiters, timeout)

    async def wait_all(self, timeout: float | None = None) -> bool:
        """Waits until no managed task is live; False if ``timeout`` ran out."""
        if not self._live:
            return True
        return await self._wait(self._all_waiters, timeout)

    async def _wait(self, waiters: list[asyncio.Future[None]], timeout: float | None) -> bool:
        fut = asyncio.get_running_loop().create_future()
        waiters.append(fut)
        try:
            if timeout is None:
                await fut
                return True
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            if fut in waiters:
                waiters.remove(fut)

    async def cancel_group(self, group: str, timeout: float | None = 5.0) -> CancelReport:
        """Cancels the live tasks of ``group``, waits up to ``timeout`` seconds for
        them to end and reports those that did not. A group with no live task (or
        an unknown one) gives an empty report."""
        tasks = self.tasks(group)
        if not tasks:
            return CancelReport(group)
        watch = self._watch(group)
        for t in tasks:
            t.cancel()
        if watch is not None:
            await self._wait(watch.waiters, timeout)
        return self._report(group, tasks)

    async def shutdown(self, timeout: float | None = 5.0) -> CancelReport:
        """Cancels every live task, newest first, and waits up to ``timeout``
        seconds for them to end."""
        tasks = list(self._live)
        if not tasks:
            return CancelReport(None)
        for t in reversed(tasks):
            t.cancel()
        await self._wait(self._all_waiters, timeout)
        report = self._report(None, tasks)
        if report.still_running:
            logger.warning(
                "task manager shutdown: %d task(s) did not stop within %ss: %s",
                len(report.still_running),
                timeout,
                ", ".join(report.still_running),
            )
        return report

    def _report(self, group: str | None, tasks: list[asyncio.Task[Any]]) -> CancelReport:
        live = self._live
        left = tuple(live[t][1] for t in tasks if t in live)
        return CancelReport(group, len(tasks), len(tasks) - len(left), left)

    def __repr__(self) -> str:
        return f"<TaskManager live={len(self._live)}>"


# -- one manager per loop --------------------------------------------------------------

_managers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TaskManager] = (
    weakref.WeakKeyDictionary()
)


class _CurrentLoopTaskManager:
    """What ``get_task_manager()`` returns outside a running loop: every call acts on
    the manager of the loop running at that moment."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_manager_of_running_loop(), name)

    def get_task_status(self) -> dict[int, dict[str, Any]]:
        try:
            return _manager_of_running_loop().get_task_status()
        except RuntimeError:  # no running loop: every loop's managers, merged
            status: dict[Any, dict[str, Any]] = {}
            for loop, manager in list(_managers.items()):
                for tid, rec in manager.get_task_status().items():
                    status[(id(loop), tid) if len(_managers) > 1 else tid] = rec
            return status

    def __repr__(self) -> str:
        return "<TaskManager handle for the running loop>"


_HANDLE = _CurrentLoopTaskManager()


def _manager_of_running_loop() -> TaskManager:
    loop = asyncio.get_running_loop()
    manager = _managers.get(loop)
    if manager is None:
        manager = _managers[loop] = TaskManager()
    return manager


def get_task_manager() -> TaskManager:
    """The running loop's TaskManager (created on first use); outside a running loop,
    a handle acting on the manager of whichever loop runs when it is used."""
    try:
        return _manager_of_running_loop()
    except RuntimeError:
        return _HANDLE  # type: ignore[return-value]


def managers() -> list[TaskManager]:
    """Every live per-loop manager."""
    return list(_managers.values())


async def shutdown_task_managers(timeout: float | None = 5.0) -> CancelReport | None:
    """Shuts down the running loop's manager (other loops' managers belong to them)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    manager = _managers.get(loop)
    if manager is None:
        return None
    return await manager.shutdown(timeout)
