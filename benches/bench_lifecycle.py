"""TaskManager against the hand-written asyncio it replaces, on 10,000 tasks.

Every contender runs in a fresh stdlib event loop; the timed region is inside the
loop (loop creation excluded) and covers exactly the work named. The status and
cancel benchmarks set 10,000 tasks up first, then call ``gc.collect()`` in every
contender before the timed region, so that a full collection owed to the setup's
allocations does not land in one contender's measurement and not another's.

* ``taskmanager_create_await``: create 10,000 trivial coroutines as named tasks in
  one group and wait for all of them. Peers: ``asyncio.create_task`` + ``gather``;
  ``asyncio.TaskGroup`` with the tasks kept in a dict by name (the usual
  hand-written registry). Targets (issue 18): at most 1.3x the first (ratio >=
  0.77) and 1.1x the second (ratio >= 0.91).
* ``taskmanager_status``: ``get_task_status()`` with 10,000 live tasks, against a
  dict comprehension building the same dicts from a hand-kept registry of
  (task, name, group, started_at). Target: no slower (ratio >= 1.0).
* ``taskmanager_cancel_group``: cancel a group of 10,000 live tasks and wait until
  they ended, against cancelling them by hand and gathering them. Target: at most
  2x (ratio >= 0.5).
"""

from __future__ import annotations

import asyncio
import gc
import time

from run import Benchmark, Measurement

from ferrotick.tasks import TaskManager

N = 10_000


async def _noop() -> None:
    return None


def _in_loop(coro_fn, ops: int) -> Measurement:
    gc.collect()
    loop = asyncio.new_event_loop()
    try:
        wall, cpu = loop.run_until_complete(coro_fn(ops))
    finally:
        loop.close()
    return Measurement(wall, cpu, ops)


def _clock():
    return time.perf_counter(), time.process_time()


def _since(start) -> tuple[float, float]:
    w, c = start
    return time.perf_counter() - w, time.process_time() - c


# -- create and await ---------------------------------------------------------------


async def _create_ferrotick(n: int):
    tm = TaskManager()
    names = [f"t{i}" for i in range(n)]
    start = _clock()
    for name in names:
        tm.create_task(_noop(), name=name, group="bench")
    await tm.wait_group("bench")
    return _since(start)


async def _create_gather(n: int):
    names = [f"t{i}" for i in range(n)]
    start = _clock()
    tasks = [asyncio.create_task(_noop(), name=name) for name in names]
    await asyncio.gather(*tasks)
    return _since(start)


async def _create_taskgroup(n: int):
    names = [f"t{i}" for i in range(n)]
    start = _clock()
    registry = {}
    async with asyncio.TaskGroup() as tg:
        for name in names:
            registry[name] = tg.create_task(_noop(), name=name)
    return _since(start)


# -- status ---------------------------------------------------------------------------


async def _status_ferrotick(n: int):
    tm = TaskManager()
    gate = asyncio.Event()
    for i in range(n):
        tm.create_task(gate.wait(), name=f"t{i}", group="bench")
    await asyncio.sleep(0)
    gc.collect()  # the setup's garbage is not charged to the timed region
    start = _clock()
    status = tm.get_task_status()
    elapsed = _since(start)
    assert len(status) == n
    gate.set()
    await tm.wait_group("bench")
    return elapsed


def _exception_text(t: asyncio.Task) -> str | None:
    exc = t.exception()
    return None if exc is None else f"{type(exc).__name__}: {exc}"


async def _status_by_hand(n: int):
    gate = asyncio.Event()
    registry = {}
    for i in range(n):
        name = f"t{i}"
        registry[i + 1] = (asyncio.create_task(gate.wait(), name=name), name, "bench", time.time())
    await asyncio.sleep(0)
    gc.collect()  # the setup's garbage is not charged to the timed region
    start = _clock()
    now = time.time()
    status = {
        tid: {
            "name": name,
            "group": group,
            "done": t.done(),
            "cancelled": t.cancelled(),
            "exception": _exception_text(t) if t.done() and not t.cancelled() else None,
            "started_at": started,
            "duration": now - started,
        }
        for tid, (t, name, group, started) in registry.items()
    }
    elapsed = _since(start)
    assert len(status) == n
    gate.set()
    await asyncio.gather(*(t for t, *_ in registry.values()))
    return elapsed


# -- cancel_group ----------------------------------------------------------------------


async def _cancel_ferrotick(n: int):
    tm = TaskManager()
    gate = asyncio.Event()
    for i in range(n):
        tm.create_task(gate.wait(), name=f"t{i}", group="bench")
    await asyncio.sleep(0)
    gc.collect()  # the setup's garbage is not charged to the timed region
    start = _clock()
    report = await tm.cancel_group("bench", timeout=60)
    elapsed = _since(start)
    assert report.stopped == n
    return elapsed


async def _cancel_by_hand(n: int):
    gate = asyncio.Event()
    tasks = [asyncio.create_task(gate.wait(), name=f"t{i}") for i in range(n)]
    await asyncio.sleep(0)
    gc.collect()  # the setup's garbage is not charged to the timed region
    start = _clock()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = _since(start)
    assert all(t.cancelled() for t in tasks)
    return elapsed


def _c(fn):
    return lambda ops: _in_loop(fn, ops)


BENCHMARKS = [
    Benchmark(
        name="taskmanager_create_await",
        description=(
            "10,000 trivial coroutines created as named tasks in one group and awaited "
            "(`TaskManager.create_task` + `wait_group`), against `asyncio.create_task` + "
            "`gather` and against `asyncio.TaskGroup` with the tasks kept in a dict by name. "
            "Targets: at most 1.3x the first (ratio >= 0.77) and 1.1x the second (>= 0.91)."
        ),
        contenders={
            "ferrotick TaskManager": _c(_create_ferrotick),
            "asyncio.create_task + gather": _c(_create_gather),
            "asyncio.TaskGroup + names dict": _c(_create_taskgroup),
        },
        ops=N,
        quick_ops=1000,
        targets={"asyncio.create_task + gather": 0.77, "asyncio.TaskGroup + names dict": 0.91},
        unit="task",
    ),
    Benchmark(
        name="taskmanager_status",
        description=(
            "`get_task_status()` with 10,000 live tasks, against a dict comprehension "
            "building the same status dicts from a hand-kept registry. Target: no slower "
            "(ratio >= 1.0)."
        ),
        contenders={
            "ferrotick get_task_status": _c(_status_ferrotick),
            "dict comprehension by hand": _c(_status_by_hand),
        },
        ops=N,
        quick_ops=1000,
        targets={"dict comprehension by hand": 1.0},
        unit="task",
    ),
    Benchmark(
        name="taskmanager_cancel_group",
        description=(
            "`cancel_group` of 10,000 live tasks, waiting until they ended, against "
            "cancelling them by hand and gathering them. Target: at most 2x (ratio >= 0.5)."
        ),
        contenders={
            "ferrotick cancel_group": _c(_cancel_ferrotick),
            "cancel + gather by hand": _c(_cancel_by_hand),
        },
        ops=N,
        quick_ops=1000,
        targets={"cancel + gather by hand": 0.5},
        unit="task",
    ),
]
