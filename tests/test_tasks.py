"""TaskManager: strong references, groups, status, cancellation, errors and metrics."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
from conftest import run_python

import ferrotick
from ferrotick.monitor import REGISTRY
from ferrotick.tasks import CancelReport, TaskManager, get_task_manager


async def _sleep(seconds: float = 10.0) -> None:
    await asyncio.sleep(seconds)


async def _boom() -> None:
    raise ValueError("boom")


@pytest.mark.asyncio
async def test_tasks_are_kept_and_reported():
    tm = TaskManager()
    done = asyncio.Event()

    async def work() -> int:
        await done.wait()
        return 1

    task = tm.create_task(work(), name="w", group="g")
    del task
    gc.collect()  # nothing but the manager holds the task
    assert len(tm) == 1
    [(tid, st)] = tm.get_task_status().items()
    assert st["name"] == "w" and st["group"] == "g"
    assert st["done"] is False and st["cancelled"] is False and st["exception"] is None
    assert st["duration"] >= 0 and st["started_at"] > 1e9
    done.set()
    assert await tm.wait_group("g", timeout=5)
    st = tm.get_task_status()[tid]
    assert st["done"] is True and st["cancelled"] is False
    assert len(tm) == 0


@pytest.mark.asyncio
async def test_exception_logged_counted_and_retrieved(caplog):
    tm = TaskManager()
    before = (
        REGISTRY.get_sample_value("ferrotick_managed_task_errors_total", {"group": "failing"})
        or 0.0
    )
    with caplog.at_level(logging.ERROR, logger="ferrotick.tasks"):
        tm.create_task(_boom(), name="b", group="failing")
        await tm.wait_group("failing", timeout=5)
    [st] = tm.get_task_status().values()
    assert st["exception"] == "ValueError: boom"
    assert tm.errors["failing"] == 1
    rec = [r for r in caplog.records if r.name == "ferrotick.tasks"]
    assert rec and rec[0].exc_info and "'b'" in rec[0].getMessage()
    after = REGISTRY.get_sample_value("ferrotick_managed_task_errors_total", {"group": "failing"})
    assert after == before + 1


@pytest.mark.asyncio
async def test_live_gauge_per_group():
    tm = TaskManager()
    for i in range(3):
        tm.create_task(_sleep(), name=f"s{i}", group="gauge-g")
    await asyncio.sleep(0)
    assert REGISTRY.get_sample_value("ferrotick_managed_tasks", {"group": "gauge-g"}) == 3
    report = await tm.cancel_group("gauge-g", timeout=5)
    assert report == CancelReport("gauge-g", 3, 3, ())
    assert REGISTRY.get_sample_value("ferrotick_managed_tasks", {"group": "gauge-g"}) == 0


@pytest.mark.asyncio
async def test_cancel_group_reports_what_did_not_stop():
    tm = TaskManager()
    release = asyncio.Event()

    async def stubborn() -> None:
        while True:
            try:
                await release.wait()
                return
            except asyncio.CancelledError:
                continue  # ignores cancellation until released

    tm.create_task(stubborn(), name="stubborn", group="g")
    tm.create_task(_sleep(), name="polite", group="g")
    tm.create_task(_sleep(), name="other", group="h")
    await asyncio.sleep(0)
    report = await tm.cancel_group("g", timeout=0.1)
    assert report.requested == 2 and report.stopped == 1
    assert report.still_running == ("stubborn",) and not report.clean
    assert [t.get_name() for t in tm.tasks("h")] == ["other"]
    release.set()
    assert await tm.wait_group("g", timeout=5)
    assert (await tm.shutdown(timeout=5)).clean


@pytest.mark.asyncio
async def test_unknown_group_gives_empty_report():
    tm = TaskManager()
    report = await tm.cancel_group("never-seen")
    assert report == CancelReport("never-seen") and report.requested == 0 and report.clean
    assert await tm.wait_group("never-seen") is True


@pytest.mark.asyncio
async def test_shutdown_cancels_newest_first():
    tm = TaskManager()
    order: list[str] = []

    async def record(name: str) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            order.append(name)
            raise

    for name in ("a", "b", "c"):
        tm.create_task(record(name), name=name, group=name)
    await asyncio.sleep(0)
    report = await tm.shutdown(timeout=5)
    assert report.requested == 3 and report.clean
    assert order == ["c", "b", "a"]
    assert all(st["cancelled"] for st in tm.get_task_status().values())


@pytest.mark.asyncio
async def test_bad_input():
    tm = TaskManager()
    with pytest.raises(TypeError, match="coro: expected a coroutine, got function '_sleep'"):
        tm.create_task(_sleep)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="coro: expected a coroutine"):
        tm.create_task(asyncio.sleep)  # type: ignore[arg-type]
    coro = _sleep()
    with pytest.raises(TypeError, match="group"):
        tm.create_task(coro, group=3)  # type: ignore[arg-type]
    coro.close()
    with pytest.raises(ValueError, match="keep_finished"):
        TaskManager(keep_finished=-1)


@pytest.mark.asyncio
async def test_keep_finished_bounds_history():
    tm = TaskManager(keep_finished=5)
    for i in range(20):
        tm.create_task(asyncio.sleep(0), name=f"t{i}")
    await tm.wait_all(timeout=5)
    names = [st["name"] for st in tm.get_task_status().values()]
    assert names == [f"t{i}" for i in range(15, 20)]


@pytest.mark.asyncio
async def test_one_manager_per_loop_and_handle():
    assert get_task_manager() is get_task_manager()
    other: list[TaskManager] = []

    def in_thread() -> None:
        async def main() -> None:
            other.append(get_task_manager())

        asyncio.run(main())

    await asyncio.to_thread(in_thread)
    assert other[0] is not get_task_manager()
    with pytest.raises(RuntimeError, match="another event loop"):
        # a manager bound to this loop refuses another loop's tasks
        mgr = get_task_manager()
        mgr.create_task(_sleep(0), name="x")

        def other_loop() -> None:
            async def main() -> None:
                c = _sleep(0)
                try:
                    mgr.create_task(c)
                finally:
                    c.close()

            asyncio.run(main())

        await asyncio.to_thread(other_loop)


def test_module_level_handle_follows_the_running_loop():
    # seed 003 calls get_task_manager() at import time, outside any loop; the handle
    # then serves each loop it is used in (pytest-asyncio's per-test loops)
    out = run_python(
        """
        import asyncio
        from ferrotick import get_task_manager
        tm = get_task_manager()

        async def job():
            await asyncio.sleep(0)

        async def main():
            t = tm.create_task(job(), name="j", group="g")
            await tm.wait_group("g")
            return [s["name"] for s in tm.get_task_status().values()]

        print(asyncio.run(main()), asyncio.run(main()))
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['j'] ['j']"
    assert "never retrieved" not in out.stderr


def test_cleanup_async_utils_shuts_the_manager_down():
    out = run_python(
        """
        import asyncio
        from ferrotick import cleanup_async_utils, get_task_manager

        async def main():
            tm = get_task_manager()
            tm.create_task(asyncio.sleep(60), name="sleeper")
            await asyncio.sleep(0)
            await cleanup_async_utils()
            print(len(tm), list(tm.get_task_status().values())[0]["cancelled"])

        asyncio.run(main())
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0 True"


def test_top_level_names():
    assert ferrotick.TaskManager is TaskManager
    assert ferrotick.get_task_manager is get_task_manager
