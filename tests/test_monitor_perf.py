"""AsyncPerformanceMonitor, the loop-lag and memory monitors and the health checker,
on stdlib asyncio and uvloop."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time

import pytest
import uvloop

from ferrotick import ConfigError
from ferrotick.monitor import (
    AsyncHealthChecker,
    AsyncPerformanceMonitor,
    CollectorRegistry,
    LoopLagMonitor,
    MemoryMonitor,
    generate_latest,
    get_memory_usage,
)

LOOPS = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def run(coro, loop="asyncio"):
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        return runner.run(coro)


@pytest.fixture
def monitor():
    return AsyncPerformanceMonitor(registry=CollectorRegistry())


@pytest.mark.parametrize("loop", LOOPS)
def test_track_operation_async_and_sync(monitor, loop):
    async def main():
        async with monitor.track_operation("fetch"):
            assert monitor.in_flight == 1
            await asyncio.sleep(0.03)
        assert monitor.in_flight == 0

    run(main(), loop)
    with monitor.track_operation("parse"):
        time.sleep(0.02)
    fetch = monitor.get_metrics("fetch")
    assert fetch["count"] == 1 and fetch["success_count"] == 1
    assert 0.03 <= fetch["total_time"] < 0.2
    parse = monitor.get_metrics("parse")
    assert parse["count"] == 1
    assert 0.02 <= parse["total_time"] < 0.2
    assert monitor.in_flight == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_track_async_function_forms_keep_coroutine_functions(monitor, loop):
    @monitor.track_async_function
    async def bare(x):
        await asyncio.sleep(0.05)
        return x + 1

    @monitor.track_async_function(name="named_op")
    async def named():
        await asyncio.sleep(0.05)
        return "ok"

    @monitor.track_async_function()
    async def empty_parens():
        return None

    for f in (bare, named, empty_parens):
        assert inspect.iscoroutinefunction(f), f
    assert bare.__name__ == "bare"

    async def main():
        assert await bare(1) == 2
        assert await named() == "ok"
        await empty_parens()

    run(main(), loop)
    ops = monitor.get_metrics()
    bare_name = f"{bare.__module__}.{bare.__qualname__}"
    assert set(ops) == {bare_name, "named_op", f"{__name__}.{empty_parens.__qualname__}"}
    for name in (bare_name, "named_op"):
        m = ops[name]
        assert m["count"] == 1
        # uvloop's timers have millisecond resolution: a 50 ms sleep can end up
        # to a millisecond early on the monotonic clock
        assert 0.049 <= m["total_time"] < 0.2, (name, m["total_time"])
        assert 0.049 <= m["p50"] < 0.2


def test_module_level_decorators_on_the_global_monitor():
    from ferrotick.monitor import (
        get_async_monitor,
        track_async_function,
        track_operation,
    )

    mon = get_async_monitor()
    assert mon is AsyncPerformanceMonitor.get_instance()

    @track_async_function(name="test_perf_global_op")
    async def f():
        await asyncio.sleep(0.01)

    async def main():
        await f()
        async with track_operation("test_perf_global_ctx"):
            await asyncio.sleep(0.01)

    assert inspect.iscoroutinefunction(f)
    before = mon.get_metrics("test_perf_global_op").get("count", 0)
    run(main())
    assert mon.get_metrics("test_perf_global_op")["count"] == before + 1
    assert mon.get_metrics("test_perf_global_ctx")["count"] >= 1


@pytest.mark.parametrize("loop", LOOPS)
def test_cancellation_is_not_an_error(monitor, loop):
    @monitor.track_async_function(name="slow")
    async def slow():
        await asyncio.sleep(10)

    async def ctx():
        async with monitor.track_operation("slow_ctx"):
            await asyncio.sleep(10)

    async def main():
        tasks = [asyncio.create_task(slow()), asyncio.create_task(ctx())]
        await asyncio.sleep(0.02)
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        # asyncio.timeout cancels too
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                await slow()

    run(main(), loop)
    slow_m = monitor.get_metrics("slow")
    assert slow_m["count"] == 2
    assert slow_m["cancelled_count"] == 2
    assert slow_m["error_count"] == 0 and slow_m["error_types"] == {}
    assert slow_m["success_count"] == 0
    assert monitor.get_metrics("slow_ctx")["cancelled_count"] == 1
    assert monitor.in_flight == 0
    text = generate_latest(monitor.registry).decode()
    assert 'async_operations_cancelled_total{operation_type="slow"} 2.0' in text
    assert "async_errors_total{" not in text


def test_errors_counted_per_exception_type(monitor):
    @monitor.track_async_function(name="flaky")
    async def flaky(exc):
        await asyncio.sleep(0)
        if exc is not None:
            raise exc
        return 1

    @monitor.track_async_function(name="sync_flaky")
    def sync_flaky():
        raise ZeroDivisionError

    async def main():
        for exc in (None, KeyError("k"), KeyError("j"), ValueError("v"), None):
            try:
                await flaky(exc)
            except (KeyError, ValueError):
                pass
        with pytest.raises(RuntimeError):
            async with monitor.track_operation("ctx_err"):
                raise RuntimeError("boom")

    run(main())
    with pytest.raises(ZeroDivisionError):
        sync_flaky()
    m = monitor.get_metrics("flaky")
    assert m["count"] == 5
    assert m["error_count"] == 3
    assert m["error_types"] == {"KeyError": 2, "ValueError": 1}
    assert m["success_count"] == 2
    assert m["error_rate"] == pytest.approx(0.6)
    assert monitor.get_metrics("ctx_err")["error_types"] == {"RuntimeError": 1}
    assert monitor.get_metrics("sync_flaky")["error_types"] == {"ZeroDivisionError": 1}
    reg = monitor.registry
    assert (
        reg.get_sample_value(
            "async_errors_total", {"operation_type": "flaky", "error_type": "KeyError"}
        )
        == 2
    )


def test_get_metrics_shape(monitor):
    async def main():
        for _ in range(3):
            async with monitor.track_operation("op"):
                await asyncio.sleep(0.001)

    run(main())
    all_ops = monitor.get_metrics()
    assert list(all_ops) == ["op"]
    op = monitor.get_metrics(operation="op")
    assert op == all_ops["op"]
    for key in (
        "count",
        "success_count",
        "error_count",
        "cancelled_count",
        "error_types",
        "error_rate",
        "total_time",
        "avg_time",
        "min_time",
        "max_time",
        "p50",
        "p90",
        "p99",
        "p999",
        "window",
    ):
        assert key in op, key
    assert op["count"] == 3
    assert op["min_time"] <= op["avg_time"] <= op["max_time"]
    assert op["avg_time"] == pytest.approx(op["total_time"] / 3)
    assert op["window"]["count"] == 3
    assert monitor.get_metrics(operation="never") == {}


def test_start_and_stop_reporting_log_a_summary(monitor, caplog):
    caplog.set_level(logging.INFO, logger="ferrotick.monitor")

    async def main():
        async with monitor.track_operation("reported_op"):
            await asyncio.sleep(0.001)
        await monitor.start_reporting(interval=0.05)
        await asyncio.sleep(0.18)
        await monitor.stop_reporting()
        n = len(caplog.records)
        await asyncio.sleep(0.12)
        assert len(caplog.records) == n  # stopped
        with pytest.raises(ConfigError):
            await monitor.start_reporting(interval=0)

    run(main())
    lines = [r.getMessage() for r in caplog.records if r.name == "ferrotick.monitor"]
    reported = [line for line in lines if "reported_op" in line]
    assert len(reported) >= 2, lines
    assert "count=1" in reported[0] and "errors=0" in reported[0]
    report = monitor.report()
    assert report["operations"]["reported_op"]["count"] == 1
    assert report["in_flight"] == 0


def test_reset_and_disable(monitor):
    with monitor.track_operation("a"):
        pass
    assert monitor.get_metrics("a")["count"] == 1
    monitor.reset()
    assert monitor.get_metrics() == {}
    monitor.enabled = False
    with monitor.track_operation("b"):
        pass

    @monitor.track_async_function(name="c")
    async def c():
        return 3

    assert run(c()) == 3
    assert monitor.get_metrics() == {}
    monitor.enabled = True
    with monitor.track_operation("b"):
        pass
    assert monitor.get_metrics("b")["count"] == 1


@pytest.mark.parametrize("loop", LOOPS)
def test_loop_lag_monitor_sees_a_blocked_loop(loop):
    registry = CollectorRegistry()
    lag = LoopLagMonitor(interval=0.02, name=loop, registry=registry)

    async def main():
        await lag.start()
        assert lag.running
        await asyncio.sleep(0.1)
        time.sleep(0.1)  # blocks the loop once
        await asyncio.sleep(0.1)
        await lag.stop()
        assert not lag.running

    run(main(), loop)
    s = lag.lag.summary()
    assert s["count"] >= 4
    assert s["max"] >= 0.08
    assert s["max"] < 1.0
    assert s["p50"] < 0.05  # the other ticks were on time
    text = generate_latest(registry).decode()
    assert f'ferrotick_event_loop_lag_seconds_count{{loop="{loop}"}}' in text
    assert registry.get_sample_value("ferrotick_event_loop_tasks", {"loop": loop}) >= 1
    # a second monitor on the same registry shares the metrics
    LoopLagMonitor(interval=0.02, name="other", registry=registry)


def test_memory_monitor_samples_rss():
    registry = CollectorRegistry()
    mem = MemoryMonitor(interval=0.02, registry=registry)

    async def main():
        await mem.start_monitoring()
        assert mem.running
        await asyncio.sleep(0.1)
        await mem.stop_monitoring()
        assert not mem.running

    run(main())
    assert mem.samples >= 3
    rss = registry.get_sample_value("process_resident_memory_bytes")
    peak = registry.get_sample_value("process_resident_memory_peak_bytes")
    assert rss > 1_000_000
    assert peak >= rss
    usage = get_memory_usage()
    assert usage["rss_bytes"] > 0 and usage["peak_rss_bytes"] >= usage["rss_bytes"]
    with pytest.raises(ConfigError):
        MemoryMonitor(interval=-1, registry=registry)


def test_memory_monitor_warns_above_threshold(caplog):
    caplog.set_level(logging.WARNING, logger="ferrotick.monitor")
    mem = MemoryMonitor(warn_bytes=1, registry=CollectorRegistry())
    mem.sample()
    assert any("resident memory" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("loop", LOOPS)
def test_health_checker(loop):
    checker = AsyncHealthChecker(timeout=5.0)

    async def passing():
        await asyncio.sleep(0)
        return True

    async def failing():
        raise ConnectionError("feed down")

    async def hanging():
        await asyncio.sleep(30)
        return True

    def sync_ok():
        return True

    checker.add_check("passing", passing)
    checker.add_check("failing", failing)
    checker.add_check("hanging", hanging, timeout=0.1)

    @checker.check("sync_ok")
    def _sync():
        return sync_ok()

    async def main():
        t0 = time.perf_counter()
        checks = await checker.check_async_operations()
        elapsed = time.perf_counter() - t0
        assert checks == {"passing": True, "failing": False, "hanging": False, "sync_ok": True}
        assert elapsed < 2.0  # the hanging check was cut at its timeout, concurrently
        assert "ConnectionError" in checker.last_details["failing"]["error"]
        assert "timed out" in checker.last_details["hanging"]["error"]
        health = await checker.check_health()
        assert health["status"] == "unhealthy"
        assert health["checks"]["failing"] is False
        checker.remove_check("failing")
        checker.remove_check("hanging")
        health = await checker.check_health()
        assert health == {
            "status": "healthy",
            "checks": {"passing": True, "sync_ok": True},
            "details": checker.last_details,
        }

    run(main(), loop)
    with pytest.raises(ConfigError):
        AsyncHealthChecker(timeout=0)
