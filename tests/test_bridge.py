"""The asyncio bridge: future-like awaitables completed by tokio."""

from __future__ import annotations

import asyncio
import gc
import os
import threading

import pytest
import uvloop
from conftest import wait_for_tasks

import ferrotick
from ferrotick._core import _bench, _raise_after


def test_awaitables_are_future_like():
    async def main():
        fut = ferrotick.echo(1, 0.001)
        assert asyncio.isfuture(fut)
        for name in (
            "result",
            "exception",
            "done",
            "cancelled",
            "cancel",
            "add_done_callback",
            "get_loop",
        ):
            assert callable(getattr(fut, name))
        assert fut.get_loop() is asyncio.get_running_loop()
        assert await fut == 1
        assert fut.done() and fut.result() == 1 and fut.exception() is None

    asyncio.run(main())


def test_gather_takes_them_without_tasks():
    async def main():
        created = []
        loop = asyncio.get_running_loop()
        orig = loop.create_task

        def spy(coro, **kw):
            created.append(coro)
            return orig(coro, **kw)

        loop.create_task = spy  # gather would call it for coroutines
        try:
            out = await asyncio.gather(*(ferrotick.echo(i, 0.001) for i in range(500)))
        finally:
            loop.create_task = orig
        assert out == list(range(500))
        assert created == []

    asyncio.run(main())


def test_ready_result_is_done_at_creation_and_identity_kept():
    async def main():
        for value in (1, "x", (1, 2), (), ValueError("v"), None, [1], StopIteration(3)):
            fut = ferrotick.echo(value)
            assert fut.done()
            assert (await fut) is value
            assert (await ferrotick.echo(value, 0.001)) is value

    asyncio.run(main())


def test_result_before_done_raises_invalid_state():
    async def main():
        fut = ferrotick.sleep(0.05)
        with pytest.raises(asyncio.InvalidStateError):
            fut.result()
        with pytest.raises(asyncio.InvalidStateError):
            fut.exception()
        await fut
        assert fut.result() is None

    asyncio.run(main())


@pytest.mark.parametrize("sleeper", ["ferrotick", "asyncio"])
def test_sleep_zero_yields_exactly_once(sleeper):
    async def main():
        order = []

        async def other():
            order.append("other")

        async def me():
            order.append("me-1")
            await (ferrotick.sleep(0) if sleeper == "ferrotick" else asyncio.sleep(0))
            order.append("me-2")

        await asyncio.gather(me(), other())
        return order

    assert asyncio.run(main()) == ["me-1", "other", "me-2"]


def test_sleep_waits_on_a_rust_timer():
    async def main():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await ferrotick.sleep(0.05)
        return loop.time() - t0

    elapsed = asyncio.run(main())
    assert 0.049 <= elapsed < 0.5


@pytest.mark.parametrize("how", ["cancel", "wait_for", "timeout"])
def test_cancellation_drops_the_rust_future(how, baseline_tasks):
    async def main():
        if how == "cancel":
            tasks = [asyncio.ensure_future(ferrotick.sleep(60)) for _ in range(200)]
            await asyncio.sleep(0.01)
            assert ferrotick.runtime_stats()["alive_tasks"] >= baseline_tasks + 200
            for t in tasks:
                t.cancel()
            for t in tasks:
                with pytest.raises(asyncio.CancelledError):
                    await t
        elif how == "wait_for":
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ferrotick.sleep(60), 0.02)
        else:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.02):
                    await ferrotick.sleep(60)
        n = await wait_for_tasks(baseline_tasks)
        assert n <= baseline_tasks
        stats = ferrotick.runtime_stats()
        assert stats["pending_futures"] == 0

    asyncio.run(main())


def test_cancel_pending_future_runs_callbacks():
    async def main():
        fut = ferrotick.sleep(60)
        seen = []
        fut.add_done_callback(lambda f: seen.append(f.cancelled()))
        assert fut.cancel("stop") is True
        assert fut.cancelled() and fut.done()
        assert fut.cancel() is False
        await asyncio.sleep(0)
        assert seen == [True]
        with pytest.raises(asyncio.CancelledError):
            fut.result()

    asyncio.run(main())


def test_done_callbacks_and_remove():
    async def main():
        fut = ferrotick.echo("v", 0.005)
        seen = []

        def cb1(f):
            seen.append(("cb1", f.result()))

        def cb2(f):
            seen.append(("cb2", f.result()))

        fut.add_done_callback(cb1)
        fut.add_done_callback(cb2)
        assert fut.remove_done_callback(cb2) == 1
        await fut
        await asyncio.sleep(0)
        assert seen == [("cb1", "v")]

    asyncio.run(main())


def test_many_loops_in_many_threads():
    results = {}

    def worker(k):
        async def main():
            vals = await asyncio.gather(*(ferrotick.echo(i, 0.001) for i in range(2000)))
            return sum(vals)

        results[k] = asyncio.run(main())

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {k: sum(range(2000)) for k in range(4)}


def test_several_loops_one_thread():
    async def main():
        return await asyncio.gather(*(ferrotick.echo(i, 0.001) for i in range(50)))

    loops = [asyncio.new_event_loop() for _ in range(3)]
    try:
        for _ in range(3):
            for loop in loops:
                assert loop.run_until_complete(main()) == list(range(50))
    finally:
        for loop in loops:
            loop.close()


def test_uvloop_gather_10k():
    async def main():
        return await asyncio.gather(*(ferrotick.echo(i, 0.001) for i in range(10_000)))

    assert uvloop.run(main()) == list(range(10_000))


def test_really_pending_noop_10k():
    async def main():
        out = await asyncio.gather(*(_bench.pending_noop() for _ in range(10_000)))
        return len(out), ferrotick.runtime_stats()

    n, stats = asyncio.run(main())
    assert n == 10_000
    assert stats["pending_futures"] == 0


def test_loop_closed_with_pending_futures(capfd):
    loop = asyncio.new_event_loop()

    async def start():
        return [asyncio.ensure_future(ferrotick.sleep(0.05)) for _ in range(100)]

    tasks = loop.run_until_complete(start())
    loop.close()
    ferrotick.sleep_sync(0.2)  # the timers fire after the loop closed
    del tasks
    gc.collect()
    _, err = capfd.readouterr()
    assert "Event loop is closed" not in err
    assert "Traceback" not in err


def _nfds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize(
    "factory", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"]
)
def test_fd_count_flat_over_2000_loops(factory):
    # warm up: the first loops open lazily created descriptors
    for _ in range(3):
        loop = factory()
        loop.run_until_complete(asyncio.ensure_future(asyncio.sleep(0), loop=loop))
        loop.close()
    gc.collect()
    before = _nfds()

    async def one():
        return await ferrotick.echo(1, 0.001)

    for _ in range(2000):
        loop = factory()
        assert loop.run_until_complete(one()) == 1
        loop.close()
        del loop
    gc.collect()
    assert _nfds() <= before + 2


def test_errors_arrive_as_the_tree_redacted():
    async def main():
        msg = "GET https://x.test/api?symbol=BTC&signature=abc failed, api_key=SECRET1"
        with pytest.raises(ferrotick.ConnectError) as ei:
            await _raise_after("ConnectError", msg, 0.001)
        e = ei.value
        assert isinstance(e, ConnectionError) and isinstance(e, ferrotick.HTTPError)
        assert isinstance(e, ferrotick.FerrotickError)
        s = str(e)
        assert "signature=abc" not in s and "symbol=BTC" not in s and "SECRET1" not in s
        assert "https://x.test/api" in s and "failed" in s
        with pytest.raises(ferrotick.RequestTimeout) as ei:
            await _raise_after("RequestTimeout", "slow", 0)
        assert isinstance(ei.value, TimeoutError)
        with pytest.raises(ferrotick.RateLimitExceeded) as ei:
            await _raise_after("RateLimitExceeded", "429", 0.001)
        assert ei.value.retry_after == 1.5
        with pytest.raises(ferrotick.ExchangeError) as ei:
            await _raise_after("ExchangeError", "Timestamp outside recvWindow", 0)
        assert ei.value.code == -1021
        with pytest.raises(ferrotick.ConfigError):
            _raise_after("NoSuchError", "x")

    asyncio.run(main())


def test_exception_tree_shape():
    f = ferrotick
    assert issubclass(f.ConfigError, f.FerrotickError) and issubclass(f.ConfigError, ValueError)
    assert issubclass(f.IndicatorInputError, ValueError)
    assert issubclass(f.ConnectError, f.HTTPError) and issubclass(f.ConnectError, ConnectionError)
    assert issubclass(f.RequestTimeout, TimeoutError)
    assert issubclass(f.HTTPStatusError, f.HTTPError)
    for cls in (
        f.CircuitOpenError,
        f.RateLimitExceeded,
        f.SchedulerError,
        f.ServiceContainerError,
        f.ExchangeError,
    ):
        assert issubclass(cls, f.FerrotickError)
    assert issubclass(f.BlockingCallError, RuntimeError)
    assert f.FerrotickError.__module__ == "ferrotick"


def test_future_of_another_loop_is_refused():
    holder = {}

    async def make():
        holder["fut"] = ferrotick.echo(5, 0.5)

    asyncio.run(make())

    async def use():
        # a Task refuses a future attached to a different loop
        return await holder["fut"]

    with pytest.raises(RuntimeError):
        asyncio.run(use())
