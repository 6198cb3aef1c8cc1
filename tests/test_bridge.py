"""The asyncio bridge: future-like awaitables completed by tokio."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import uvloop
from conftest import wait_for_tasks

import ferrotick
from ferrotick._core import _bench
from ferrotick._testing import _raise_after


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


def test_gather_creates_no_tasks_for_them():
    async def main():
        before = len(asyncio.all_tasks())
        g = asyncio.gather(*(ferrotick.echo(i, 0.001) for i in range(1000)))
        during = len(asyncio.all_tasks())
        out = await g
        # the same check sees the Tasks that gather makes for coroutines
        g2 = asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))
        with_coros = len(asyncio.all_tasks())
        await g2
        return before, during, with_coros, out

    before, during, with_coros, out = asyncio.run(main())
    assert out == list(range(1000))
    assert during == before == 1
    assert with_coros == before + 2


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


def _interleaving(sleep0):
    async def main():
        order = []

        async def me():
            for k in range(3):
                order.append(f"me{k}")
                if k < 2:
                    await sleep0()

        async def other():
            for k in range(5):
                order.append(f"other{k}")
                await asyncio.sleep(0)

        await asyncio.gather(me(), other())
        return order

    return asyncio.run(main())


def test_sleep_zero_yields_exactly_once():
    expected = _interleaving(lambda: asyncio.sleep(0))
    assert expected[:5] == ["me0", "other0", "me1", "other1", "me2"]
    assert _interleaving(lambda: ferrotick.sleep(0)) == expected


def test_sleep_zero_protocol_is_one_bare_yield():
    async def main():
        fut = ferrotick.sleep(0)
        assert asyncio.isfuture(fut) and not fut.done()
        it = fut.__await__()
        assert next(it) is None  # a bare yield: the Task just runs again
        with pytest.raises(StopIteration) as ei:
            next(it)
        assert ei.value.value is None
        assert fut.done() and fut.result() is None
        assert await asyncio.gather(ferrotick.sleep(0), ferrotick.sleep(0.0)) == [None, None]

    asyncio.run(main())


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
    async def waiter():
        await ferrotick.sleep(60)

    async def main():
        # half awaited by Tasks, half handed to gather/wait_for bare
        tasks = [asyncio.ensure_future(waiter()) for _ in range(100)]
        bare = [ferrotick.sleep(60) for _ in range(100)]
        await asyncio.sleep(0.01)
        assert ferrotick.runtime_stats()["alive_tasks"] >= baseline_tasks + 200
        if how == "cancel":
            for t in tasks + bare:
                t.cancel()
            for t in tasks + bare:
                with pytest.raises(asyncio.CancelledError):
                    await t
        elif how == "wait_for":
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*tasks, *bare), 0.02)
        else:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.02):
                    await asyncio.gather(*tasks, *bare)
        assert all(t.cancelled() for t in tasks + bare)
        n = await wait_for_tasks(baseline_tasks, timeout=1.5)
        assert n <= baseline_tasks
        assert ferrotick.runtime_stats()["pending_futures"] == 0

    asyncio.run(main())


# asyncio's combinators with cancelled children; each scenario runs on its own
# loop in its own thread of a child process, so that a hang cannot stall the
# suite: what does not finish within the deadline is reported as "hang".
COMBINATOR_SCRIPT = r"""
import asyncio, json, os, sys, threading, time
import ferrotick

kind = sys.argv[1]

def mk(delay, value=None):
    if kind == "ferrotick":
        return ferrotick.echo(value, delay)
    loop = asyncio.get_running_loop()
    f = loop.create_future()
    loop.call_later(delay, lambda: f.done() or f.set_result(value))
    return f

async def gather_cancelled_child():
    a, b = mk(60), mk(0.01, 2)
    a.cancel("stop")
    try:
        await asyncio.gather(a, b)
    except asyncio.CancelledError:
        return "CancelledError"

async def gather_cancelled_child_return_exceptions():
    a, b = mk(60), mk(0.01, 2)
    a.cancel()
    r = await asyncio.gather(a, b, return_exceptions=True)
    return [type(x).__name__ if isinstance(x, BaseException) else x for x in r]

async def timeout_around_gather():
    try:
        async with asyncio.timeout(0.05):
            await asyncio.gather(*(mk(60) for _ in range(10)))
    except TimeoutError:
        return "TimeoutError"

async def wait_for_around_gather():
    try:
        await asyncio.wait_for(asyncio.gather(*(mk(60) for _ in range(10))), 0.05)
    except TimeoutError:
        return "TimeoutError"

async def cancel_gather():
    g = asyncio.gather(*(mk(60) for _ in range(10)))
    await asyncio.sleep(0.01)
    g.cancel()
    try:
        await g
    except asyncio.CancelledError:
        return "CancelledError"

async def shield_cancelled_inner():
    inner = mk(60)
    outer = asyncio.shield(inner)
    inner.cancel()
    try:
        await outer
    except asyncio.CancelledError:
        return "CancelledError"

async def wait_first_completed_then_cancel():
    a, b = mk(60), mk(0.01, "b")
    done, pending = await asyncio.wait({a, b}, return_when=asyncio.FIRST_COMPLETED)
    for f in pending:
        f.cancel()
    await asyncio.sleep(0)
    return [f.result() for f in done] + [f.cancelled() for f in pending]

scenarios = [
    gather_cancelled_child,
    gather_cancelled_child_return_exceptions,
    timeout_around_gather,
    wait_for_around_gather,
    cancel_gather,
    shield_cancelled_inner,
    wait_first_completed_then_cancel,
]
results = {}

def run(fn):
    try:
        results[fn.__name__] = asyncio.run(fn())
    except BaseException as e:
        results[fn.__name__] = "raised " + type(e).__name__

threads = [threading.Thread(target=run, args=(fn,), daemon=True) for fn in scenarios]
for t in threads:
    t.start()
deadline = time.monotonic() + 3
for t in threads:
    t.join(max(0.0, deadline - time.monotonic()))
for fn in scenarios:
    results.setdefault(fn.__name__, "hang")
print(json.dumps(results), flush=True)
os._exit(0)
"""


@pytest.fixture(scope="module")
def combinator_results():
    out = {}
    for kind in ("asyncio", "ferrotick"):
        p = subprocess.run(
            [sys.executable, "-c", COMBINATOR_SCRIPT, kind],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert p.returncode == 0, p.stderr
        out[kind] = json.loads(p.stdout)
    return out


@pytest.mark.parametrize(
    "scenario",
    [
        "gather_cancelled_child",
        "gather_cancelled_child_return_exceptions",
        "timeout_around_gather",
        "wait_for_around_gather",
        "cancel_gather",
        "shield_cancelled_inner",
        "wait_first_completed_then_cancel",
    ],
)
def test_asyncio_combinators_with_cancelled_children(combinator_results, scenario):
    expected = combinator_results["asyncio"][scenario]
    assert expected not in ("hang", None) and not str(expected).startswith("raised")
    assert combinator_results["ferrotick"][scenario] == expected


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
    errors = []

    def worker(k):
        async def main():
            me = threading.get_ident()
            wrong_thread = []
            futs = [ferrotick.echo(i, 0.001) for i in range(2000)]
            for f in futs[:50]:
                f.add_done_callback(
                    lambda f: threading.get_ident() != me and wrong_thread.append(1)
                )
            vals = await asyncio.gather(*futs)
            await asyncio.sleep(0)
            assert not wrong_thread, "a done callback ran off the loop's thread"
            return sum(vals)

        try:
            results[k] = uvloop.run(main()) if k % 2 else asyncio.run(main())
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
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


def test_loops_of_one_thread_take_turns_with_work_in_flight():
    a, b = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:

        async def start(tag):
            return [asyncio.ensure_future(ferrotick.echo((tag, i), 0.02)) for i in range(100)]

        fa = a.run_until_complete(start("a"))
        fb = b.run_until_complete(start("b"))
        # both loops are stopped while tokio completes their futures
        time.sleep(0.06)
        assert b.run_until_complete(asyncio.gather(*fb)) == [("b", i) for i in range(100)]
        assert a.run_until_complete(asyncio.gather(*fa)) == [("a", i) for i in range(100)]
        assert all(f.get_loop() is a for f in fa) and all(f.get_loop() is b for f in fb)
    finally:
        a.close()
        b.close()


def test_finished_futures_are_released():
    import weakref

    async def main():
        refs = []
        for i in range(200):
            f = ferrotick.echo(i, 0.001)
            refs.append(weakref.ref(f))
            assert await f == i
        futs = [ferrotick.sleep(30) for _ in range(200)]
        for f in futs:
            f.add_done_callback(lambda f: None)
            refs.append(weakref.ref(f))
        for f in futs:
            f.cancel()
        await asyncio.sleep(0)
        del futs, f
        return refs

    refs = asyncio.run(main())
    gc.collect()
    assert sum(r() is not None for r in refs) == 0


@pytest.mark.parametrize("entry", ["run", "new_event_loop"])
def test_uvloop_gather_10k(entry):
    async def main():
        assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
        return await asyncio.gather(*(ferrotick.echo(i, 0.001) for i in range(10_000)))

    if entry == "run":
        out = uvloop.run(main())
    else:
        loop = uvloop.new_event_loop()
        try:
            out = loop.run_until_complete(main())
        finally:
            loop.close()
    assert out == list(range(10_000))


def test_really_pending_noop_10k():
    async def main():
        out = await asyncio.gather(*(_bench.pending_noop() for _ in range(10_000)))
        return len(out), ferrotick.runtime_stats()

    n, stats = asyncio.run(main())
    assert n == 10_000
    assert stats["pending_futures"] == 0


def test_loop_closed_with_pending_futures(capfd):
    loop = asyncio.new_event_loop()

    async def waiter():
        await ferrotick.sleep(0.05)

    async def start():
        tasks = [asyncio.ensure_future(ferrotick.sleep(0.05)) for _ in range(100)]
        tasks += [asyncio.ensure_future(waiter()) for _ in range(100)]
        await asyncio.sleep(0)  # the Tasks now wait on their Rust futures
        return tasks

    tasks = loop.run_until_complete(start())
    loop.close()
    time.sleep(0.2)  # the Rust timers fire after the loop closed
    assert ferrotick.echo_sync("alive") == "alive"
    del tasks
    gc.collect()
    _, err = capfd.readouterr()
    assert "Event loop is closed" not in err
    assert "Traceback" not in err


CLOSED_LOOP_SCRIPT = """
import asyncio, gc, sys, time, ferrotick
import uvloop
loop = uvloop.new_event_loop() if sys.argv[1] == "uvloop" else asyncio.new_event_loop()
async def waiter():
    await ferrotick.sleep(0.05)
async def start():
    tasks = [asyncio.ensure_future(waiter()) for _ in range(300)]
    tasks += [asyncio.ensure_future(ferrotick.echo(i, 0.05)) for i in range(300)]
    await asyncio.sleep(0)
    return tasks
tasks = loop.run_until_complete(start())
loop.close()
time.sleep(0.2)
del tasks
gc.collect()
# the runtime still serves a new loop afterwards
async def after():
    return await ferrotick.echo("ok", 0.001)
print(asyncio.run(after()), flush=True)
"""


@pytest.mark.parametrize("kind", ["asyncio", "uvloop"])
def test_loop_closed_with_pending_futures_in_a_fresh_process(kind):
    p = subprocess.run(
        [sys.executable, "-c", CLOSED_LOOP_SCRIPT, kind],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ok"
    for bad in ("Event loop is closed", "Traceback", "Fatal Python error", "panicked"):
        assert bad not in p.stderr, p.stderr


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
    loops_before = len(ferrotick.runtime_stats()["loops"])

    async def one():
        return await ferrotick.echo(1, 0.001)

    for _ in range(2000):
        loop = factory()
        assert loop.run_until_complete(one()) == 1
        loop.close()
        del loop
    gc.collect()
    assert _nfds() <= before + 2
    assert len(ferrotick.runtime_stats()["loops"]) <= loops_before


@pytest.mark.parametrize("delay", [0, 0.001], ids=["ready", "pending"])
def test_errors_arrive_as_the_tree_redacted(delay):
    async def main():
        msg = "GET https://x.test/api?symbol=BTC&signature=abc failed, api_key=SECRET1"
        fut = _raise_after("ConnectError", msg, delay)
        assert asyncio.isfuture(fut)
        with pytest.raises(ferrotick.ConnectError) as ei:
            await fut
        e = ei.value
        assert type(e) is ferrotick.ConnectError
        assert isinstance(e, ConnectionError) and isinstance(e, OSError)
        assert isinstance(e, ferrotick.HTTPError) and isinstance(e, ferrotick.FerrotickError)
        s = str(e)
        assert "signature=abc" not in s and "symbol=BTC" not in s and "SECRET1" not in s
        assert "https://x.test/api" in s and "failed" in s  # the cause stays readable
        # the future holds the same exception afterwards
        assert fut.done() and fut.exception() is e

        with pytest.raises(ferrotick.RequestTimeout) as ei:
            await _raise_after("RequestTimeout", "slow", delay)
        assert isinstance(ei.value, TimeoutError) and isinstance(ei.value, ferrotick.HTTPError)
        with pytest.raises(ferrotick.HTTPStatusError) as ei:
            await _raise_after("HTTPStatusError", "server said 503", delay)
        assert ei.value.status == 503
        with pytest.raises(ferrotick.RateLimitExceeded) as ei:
            await _raise_after("RateLimitExceeded", "429", delay)
        assert ei.value.retry_after == 1.5
        with pytest.raises(ferrotick.CircuitOpenError) as ei:
            await _raise_after("CircuitOpenError", "open", delay)
        assert ei.value.retry_after == 1.5
        with pytest.raises(ferrotick.ExchangeError) as ei:
            await _raise_after("ExchangeError", "Timestamp outside recvWindow", delay)
        assert ei.value.code == -1021 and ei.value.msg == "Timestamp outside recvWindow"
        with pytest.raises(ferrotick.ConfigError) as ei:
            await _raise_after("ConfigError", "bad", delay)
        assert isinstance(ei.value, ValueError)
        with pytest.raises(ferrotick.ConfigError):
            _raise_after("NoSuchError", "x")

    asyncio.run(main())


def test_error_in_gather_with_return_exceptions():
    async def main():
        return await asyncio.gather(
            ferrotick.echo(1, 0.001),
            _raise_after("RequestTimeout", "slow https://h/x?key=K", 0.002),
            ferrotick.echo(3),
            return_exceptions=True,
        )

    a, b, c = asyncio.run(main())
    assert a == 1 and c == 3
    assert isinstance(b, ferrotick.RequestTimeout) and "key=K" not in str(b)


# (message, secrets that must not survive, text that must survive)
REDACTION_CASES = {
    "url_query": (
        "GET https://x.test/api?symbol=BTC&signature=abc failed",
        ["symbol=BTC", "signature=abc"],
        ["https://x.test/api", "failed"],
    ),
    "url_userinfo": ("connect to https://user:pw@x.test/ws failed", ["user:pw"], ["x.test/ws"]),
    "signature_pair": ("body symbol=BTC&signature=abc rejected", ["abc"], ["rejected"]),
    "api_key_pair": ("bad api_key=SECRET1, retry", ["SECRET1"], ["retry"]),
    "auth_header_line": ("failed\nAuthorization: Bearer tok123\nretry", ["tok123"], ["failed"]),
    "mbx_header_line": ("failed\nX-MBX-APIKEY: k123", ["k123"], ["failed"]),
    "bearer_word": ("sent Bearer tok123 to host", ["tok123"], ["to host"]),
    "relative_path_query": (
        "POST /api/v3/order?symbol=BTC&signature=abc failed",
        ["symbol=BTC", "signature=abc"],
        ["/api/v3/order", "failed"],
    ),
    "mbx_header_mid_line": ("request failed; X-MBX-APIKEY: k123", ["k123"], ["request failed"]),
    "auth_header_mid_line": (
        "request failed, sent Authorization: token tok123",
        ["tok123"],
        ["request failed"],
    ),
    "headers_dict_repr": (
        "403 Forbidden, headers={'X-MBX-APIKEY': 'k123', 'Accept': '*/*'}",
        ["k123"],
        ["403 Forbidden"],
    ),
    "bearer_in_json": (
        'request headers: {"Authorization": "Bearer tok123"}',
        ["tok123"],
        ["request headers"],
    ),
}


@pytest.mark.parametrize("case", list(REDACTION_CASES))
def test_error_messages_are_redacted(case):
    message, secrets, kept = REDACTION_CASES[case]

    async def main():
        with pytest.raises(ferrotick.HTTPError) as ei:
            await _raise_after("HTTPError", message, 0.001)
        return str(ei.value)

    text = asyncio.run(main())
    for secret in secrets:
        assert secret not in text, text
    for k in kept:
        assert k in text, text


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

    with pytest.raises(RuntimeError, match="different loop"):
        asyncio.run(use())

    async def mixed():
        # gather refuses futures of two different loops
        return await asyncio.gather(holder["fut"], ferrotick.echo(1, 0.001))

    with pytest.raises(ValueError, match="different loop"):
        asyncio.run(mixed())


def test_future_of_a_loop_running_in_another_thread():
    other = asyncio.new_event_loop()
    t = threading.Thread(target=other.run_forever, daemon=True)
    t.start()
    try:

        async def make():
            return ferrotick.echo(7, 0.05)

        fut = asyncio.run_coroutine_threadsafe(make(), other).result(10)
        assert fut.get_loop() is other

        async def use():
            return await fut

        with pytest.raises(RuntimeError, match="different loop"):
            asyncio.run(use())

        # the loop that owns it still gets the result
        async def own():
            return await fut

        assert asyncio.run_coroutine_threadsafe(own(), other).result(10) == 7
    finally:
        other.call_soon_threadsafe(other.stop)
        t.join(10)
        other.close()


def test_future_made_outside_a_loop_binds_to_the_first_awaiting_loop():
    fut = ferrotick.echo("late", 0.01)

    async def main():
        value = await fut
        return value, fut.get_loop() is asyncio.get_running_loop()

    assert asyncio.run(main()) == ("late", True)


def test_closed_loop_releases_waiting_tasks():
    import time
    import weakref

    loop = asyncio.new_event_loop()

    async def wait():
        await ferrotick.sleep(30)

    async def start():
        tasks = [asyncio.ensure_future(wait()) for _ in range(20)]
        await asyncio.sleep(0.01)  # every task now waits on its Rust future
        return tasks

    tasks = loop.run_until_complete(start())
    refs = [weakref.ref(t) for t in tasks]
    del tasks
    loop.close()
    time.sleep(0.1)  # the tokio tasks see the closed loop and end
    ferrotick.runtime_stats()  # entering ferrotick applies deferred releases
    gc.collect()
    assert all(r() is None for r in refs)
