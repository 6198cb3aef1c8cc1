"""RateLimiter, CircuitBreaker, gather_with_concurrency, async_cache and RequestBatcher."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import warnings

import pytest
from http_server import free_port

from ferrotick import (
    BatchConfig,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerState,
    CircuitOpenError,
    ConfigError,
    FerrotickError,
    RateLimiter,
    RequestBatcher,
    async_cache,
    gather_with_concurrency,
)

# -- RateLimiter ---------------------------------------------------------------------

# Waking up is never early, but may be late by a timer tick and a loop turn; a
# waiter that is late shortens the span measured from it to the next one.
WAKE_SLACK = 0.012


@pytest.mark.asyncio
async def test_rate_limiter_sliding_window():
    limiter = RateLimiter(max_requests=5, time_window=0.2)
    times: list[float] = []
    t0 = time.monotonic()

    async def one() -> None:
        await limiter.acquire()
        times.append(time.monotonic() - t0)

    await asyncio.gather(*[one() for _ in range(15)])
    times.sort()
    assert all(t < 0.03 for t in times[:5]), times  # the first 5 at once
    assert times[5] >= 0.2 - WAKE_SLACK, times  # the sixth a full window later
    # never more than 5 in any 0.2 s span
    for a, b in zip(times, times[5:], strict=False):
        assert b - a >= 0.2 - WAKE_SLACK, times
    assert times[-1] >= 0.4 - WAKE_SLACK
    assert times[-1] < 0.6, times  # and not much slower than the rate allows
    s = limiter.stats()
    assert s["granted"] == 15 and s["waited"] == 10 and s["cancelled"] == 0


@pytest.mark.asyncio
async def test_rate_limiter_sequential_and_weights():
    limiter = RateLimiter(max_requests=5, time_window=0.2)
    t0 = time.monotonic()
    await limiter.acquire(3)
    await limiter.acquire(2)
    assert time.monotonic() - t0 < 0.03
    await limiter.acquire(2)  # must wait for the first grant (3) to leave the window ...
    assert 0.2 - WAKE_SLACK <= time.monotonic() - t0 < 0.3  # ... and no longer
    with pytest.raises(ConfigError):
        await limiter.acquire(-1)


def test_rate_limiter_weight_above_max_fails_at_once():
    limiter = RateLimiter(max_requests=5, time_window=10)
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="weight"):
        limiter.acquire(6)  # raised by the call itself, no await needed
    with pytest.raises(ConfigError, match="weight"):
        limiter.try_acquire(6)
    with pytest.raises(ConfigError, match="weight"):
        limiter.acquire(0)
    assert time.monotonic() - t0 < 0.05
    with pytest.raises(ConfigError, match="max_requests"):
        RateLimiter(max_requests=0)
    with pytest.raises(ConfigError, match="time_window"):
        RateLimiter(max_requests=1, time_window=-1)


def test_rate_limiter_try_acquire():
    limiter = RateLimiter(max_requests=3, time_window=0.2)
    assert [limiter.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert not limiter.try_acquire()
    assert limiter.stats()["rejected"] == 2
    time.sleep(0.21)
    assert limiter.try_acquire()


@pytest.mark.asyncio
async def test_rate_limiter_cancellation_gives_the_reservation_back():
    limiter = RateLimiter(max_requests=1, time_window=0.3)
    await limiter.acquire()
    t0 = time.monotonic()
    waiter = asyncio.ensure_future(limiter.acquire())  # reserved at t0 + 0.3
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0.01)
    assert limiter.stats()["cancelled"] == 1
    # the freed slot goes to the next caller: at t0 + 0.3, not t0 + 0.6
    await limiter.acquire()
    assert 0.3 - WAKE_SLACK <= time.monotonic() - t0 < 0.5


@pytest.mark.asyncio
async def test_rate_limiter_async_with():
    limiter = RateLimiter(max_requests=2, time_window=0.2)
    t0 = time.monotonic()
    for _ in range(3):
        async with limiter:
            pass
    assert time.monotonic() - t0 >= 0.2 - WAKE_SLACK
    assert limiter.stats()["granted"] == 3


def test_rate_limiter_acquire_sync_from_a_thread():
    limiter = RateLimiter(max_requests=2, time_window=0.2)
    out: list[float] = []
    t0 = time.monotonic()

    def worker() -> None:
        for _ in range(2):
            limiter.acquire_sync()
            out.append(time.monotonic() - t0)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    out.sort()
    assert len(out) == 4 and out[1] < 0.05 and out[2] >= 0.2 - WAKE_SLACK


# -- CircuitBreaker ------------------------------------------------------------------


async def connect_to_closed_port(port: int) -> None:
    """A real failure: ConnectionRefusedError from the kernel."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()


@pytest.mark.asyncio
async def test_circuit_breaker_full_cycle():
    port = free_port()  # nothing listens there
    breaker = CircuitBreaker(
        CircuitBreakerConfig(
            failure_threshold=3, recovery_timeout=0.2, expected_exception=ConnectionError
        )
    )
    assert breaker.state is CircuitBreakerState.CLOSED
    for i in range(3):
        with pytest.raises(ConnectionRefusedError):
            await breaker.call(connect_to_closed_port, port)
        assert breaker.failure_count == i + 1
    assert breaker.state is CircuitBreakerState.OPEN

    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "up"

    with pytest.raises(CircuitOpenError) as ei:
        await breaker.call(counted)
    assert 0 < ei.value.retry_after <= 0.2
    assert calls == 0  # failed fast, the function never ran

    await asyncio.sleep(0.22)
    assert breaker.state is CircuitBreakerState.HALF_OPEN
    # a failed trial opens it again at once
    with pytest.raises(ConnectionRefusedError):
        await breaker.call(connect_to_closed_port, port)
    assert breaker.state is CircuitBreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        await breaker.call(counted)

    await asyncio.sleep(0.22)
    assert await breaker.call(counted) == "up"  # the trial succeeds
    assert breaker.state is CircuitBreakerState.CLOSED
    assert breaker.failure_count == 0 and calls == 1
    assert breaker.stats()["opens"] == 2


@pytest.mark.asyncio
async def test_circuit_breaker_counts_only_expected_exceptions():
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=10, expected_exception=OSError)

    async def bad_key() -> None:
        raise KeyError("not a transport failure")

    for _ in range(5):
        with pytest.raises(KeyError):
            await breaker.call(bad_key)
    assert breaker.state is CircuitBreakerState.CLOSED and breaker.failure_count == 0

    async def refused() -> None:
        raise ConnectionRefusedError  # an OSError

    for _ in range(2):
        with pytest.raises(ConnectionRefusedError):
            await breaker.call(refused)
    assert breaker.state is CircuitBreakerState.OPEN


@pytest.mark.asyncio
async def test_circuit_breaker_success_resets_the_count():
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=10)

    async def fail() -> None:
        raise ValueError

    async def ok() -> int:
        return 1

    for _ in range(2):
        with pytest.raises(ValueError):
            await breaker.call(fail)
    await breaker.call(ok)
    for _ in range(2):
        with pytest.raises(ValueError):
            await breaker.call(fail)
    assert breaker.state is CircuitBreakerState.CLOSED  # 2, not 4, in a row


@pytest.mark.asyncio
async def test_circuit_breaker_cancellation_does_not_count():
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=0.1)
    tasks = [asyncio.ensure_future(breaker.call(asyncio.sleep, 5)) for _ in range(5)]
    await asyncio.sleep(0.02)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert breaker.state is CircuitBreakerState.CLOSED and breaker.failure_count == 0

    # a cancelled half-open trial frees the trial slot for the next caller
    async def fail() -> None:
        raise RuntimeError

    with pytest.raises(RuntimeError):
        await breaker.call(fail)
    await asyncio.sleep(0.12)
    trial = asyncio.ensure_future(breaker.call(asyncio.sleep, 5))
    await asyncio.sleep(0.02)
    with pytest.raises(CircuitOpenError):  # one trial at a time
        await breaker.call(asyncio.sleep, 0)
    trial.cancel()
    await asyncio.gather(trial, return_exceptions=True)
    assert await breaker.call(asyncio.sleep, 0, "next") == "next"
    assert breaker.state is CircuitBreakerState.CLOSED


@pytest.mark.asyncio
async def test_circuit_breaker_stale_call_does_not_free_the_trial_slot():
    breaker = CircuitBreaker(
        failure_threshold=1, recovery_timeout=0.1, expected_exception=ValueError
    )

    async def stale() -> None:
        await asyncio.sleep(0.3)
        raise KeyError("not counted")

    async def fail() -> None:
        raise ValueError

    early = asyncio.ensure_future(breaker.call(stale))  # admitted while closed
    await asyncio.sleep(0.01)
    with pytest.raises(ValueError):
        await breaker.call(fail)  # opens
    await asyncio.sleep(0.12)
    trial = asyncio.ensure_future(breaker.call(asyncio.sleep, 1))  # the half-open trial
    await asyncio.sleep(0.01)
    await asyncio.gather(early, return_exceptions=True)  # ends with an uncounted error
    try:
        with pytest.raises(CircuitOpenError):  # the trial still runs: one at a time
            await breaker.call(asyncio.sleep, 0)
    finally:
        trial.cancel()
        await asyncio.gather(trial, return_exceptions=True)


@pytest.mark.asyncio
async def test_circuit_breaker_decorator_and_context_managers():
    breaker = CircuitBreaker(
        failure_threshold=2, recovery_timeout=10, expected_exception=ValueError
    )

    @breaker
    async def fetch(x: int) -> int:
        if x < 0:
            raise ValueError(x)
        return x * 2

    assert fetch.__name__ == "fetch"
    assert await fetch(4) == 8
    with pytest.raises(ValueError):
        await fetch(-1)
    async with breaker:
        pass  # a success resets the count
    assert breaker.failure_count == 0
    with pytest.raises(ValueError):
        async with breaker:
            raise ValueError
    with pytest.raises(ValueError), breaker:
        raise ValueError
    assert breaker.state is CircuitBreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        await fetch(1)
    with pytest.raises(CircuitOpenError):
        async with breaker:
            pass
    with pytest.raises(TypeError):
        breaker(lambda: None)  # not a coroutine function
    with pytest.raises(ConfigError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)


# -- gather_with_concurrency ---------------------------------------------------------


@pytest.mark.asyncio
async def test_gather_with_concurrency_limits_and_keeps_order():
    running = peak = 0

    async def work(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.002 * ((i * 7) % 5))  # finish out of order
            return i
        finally:
            running -= 1

    results = await gather_with_concurrency([work(i) for i in range(40)], max_concurrency=4)
    assert results == list(range(40))
    assert peak == 4
    assert await gather_with_concurrency([], max_concurrency=3) == []


@pytest.mark.asyncio
async def test_gather_with_concurrency_first_error_cancels_the_rest():
    started: list[int] = []
    cancelled: list[int] = []

    async def work(i: int) -> int:
        started.append(i)
        try:
            await asyncio.sleep(0.02 if i == 1 else 5)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise
        if i == 1:
            raise ValueError("boom")
        return i

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        coros = [work(i) for i in range(20)]
        t0 = time.monotonic()
        with pytest.raises(ValueError, match="boom"):
            await gather_with_concurrency(coros, max_concurrency=3)
        assert time.monotonic() - t0 < 1.0
        del coros
        gc.collect()
    assert started == [0, 1, 2]
    assert sorted(cancelled) == [0, 2]
    never_awaited = [w for w in caught if "never awaited" in str(w.message)]
    assert never_awaited == [], [str(w.message) for w in never_awaited]


@pytest.mark.asyncio
async def test_never_awaited_warnings_are_observable_here():
    """The check above would see a leaked coroutine (control experiment)."""

    async def work() -> None:
        pass

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        leaked = work()
        del leaked
        gc.collect()
    assert any("never awaited" in str(w.message) for w in caught)


@pytest.mark.asyncio
async def test_gather_with_concurrency_return_exceptions():
    async def work(i: int) -> int:
        await asyncio.sleep(0.001)
        if i % 3 == 0:
            raise KeyError(i)
        return i

    results = await gather_with_concurrency(
        [work(i) for i in range(9)], max_concurrency=2, return_exceptions=True
    )
    assert [type(r) for r in results[::3]] == [KeyError] * 3
    assert [r for i, r in enumerate(results) if i % 3] == [1, 2, 4, 5, 7, 8]
    with pytest.raises(ConfigError, match="max_concurrency"):
        await gather_with_concurrency([], max_concurrency=0)


@pytest.mark.asyncio
async def test_gather_with_concurrency_outer_cancellation_closes_everything():
    async def work() -> None:
        await asyncio.sleep(5)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = asyncio.ensure_future(gather_with_concurrency([work() for _ in range(10)], 2))
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        del task
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]


# -- async_cache ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_cache_shares_one_call_between_concurrent_callers():
    calls = 0

    @async_cache(ttl_seconds=10)
    async def price(symbol: str) -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return symbol.lower()

    results = await asyncio.gather(*[price("BTC") for _ in range(10)], price("ETH"))
    assert results == ["btc"] * 10 + ["eth"]
    assert calls == 2
    assert await price("BTC") == "btc" and calls == 2  # from the cache
    info = price.cache_info()
    assert info["misses"] == 2 and info["shared"] == 9 and info["hits"] == 1
    assert info["size"] == 2
    price.cache_clear()
    assert price.cache_info()["size"] == 0
    await price("BTC")
    assert calls == 3


@pytest.mark.asyncio
async def test_async_cache_one_cancellation_does_not_cancel_the_others():
    calls = 0

    @async_cache(ttl_seconds=10)
    async def slow(x: int) -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.1)
        return x + 1

    a = asyncio.ensure_future(slow(1))
    b = asyncio.ensure_future(slow(1))
    await asyncio.sleep(0.02)
    a.cancel()
    assert await b == 2
    assert a.cancelled()
    assert calls == 1
    # every caller cancelled: the call still completes and is cached
    c = asyncio.ensure_future(slow(5))
    await asyncio.sleep(0.02)
    c.cancel()
    await asyncio.sleep(0.15)
    assert await slow(5) == 6 and calls == 2


@pytest.mark.asyncio
async def test_async_cache_does_not_cache_exceptions():
    calls = 0

    @async_cache(ttl_seconds=10)
    async def flaky(x: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("first call fails")
        return x

    with pytest.raises(ConnectionError):
        await flaky(1)
    assert await flaky(1) == 1
    assert await flaky(1) == 1
    assert calls == 2


@pytest.mark.asyncio
async def test_async_cache_ttl_and_maxsize():
    calls = 0

    @async_cache(ttl_seconds=0.1, maxsize=2)
    async def f(x: int) -> int:
        nonlocal calls
        calls += 1
        return x

    await f(1)
    await f(1)
    assert calls == 1
    await asyncio.sleep(0.12)
    await f(1)
    assert calls == 2  # expired
    await f(2)
    await f(3)  # evicts 1 (least recently used)
    assert f.cache_info()["size"] == 2
    await f(3)
    await f(2)
    assert calls == 4
    await f(1)
    assert calls == 5
    with pytest.raises(TypeError):
        await f([1])  # unhashable
    with pytest.raises(ConfigError, match="ttl_seconds"):
        async_cache(ttl_seconds=-1)


@pytest.mark.asyncio
async def test_async_cache_clear_keeps_a_call_in_flight():
    calls = 0

    @async_cache(ttl_seconds=10)
    async def slow(x: int) -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return x

    task = asyncio.ensure_future(slow(1))
    await asyncio.sleep(0.01)
    slow.cache_clear()
    assert await task == 1
    assert await slow(1) == 1 and calls == 1  # stored when it completed
    assert slow.cache_info()["hits"] == 1


def test_async_cache_from_two_loops_in_two_threads():
    calls = 0
    lock = threading.Lock()

    @async_cache(ttl_seconds=10)
    async def f(x: int) -> tuple[int, int]:
        nonlocal calls
        with lock:
            calls += 1
        await asyncio.sleep(0.05)
        return x, threading.get_ident()

    out: list = []
    errors: list = []

    def worker() -> None:
        try:
            out.append(asyncio.run(f(1)))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert not errors and len(out) == 2
    assert all(v[0] == 1 for v in out)
    assert calls in (1, 2)  # in-flight calls are shared within a loop only
    # a third loop gets the cached value, computed on one of the threads
    value = asyncio.run(f(1))
    assert value in out and calls <= 2


# -- RequestBatcher ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_batcher_closes_at_batch_size_and_at_timeout():
    batches: list[tuple[float, list[int]]] = []
    t0 = time.monotonic()

    async def fetch_many(keys: list[int]) -> list[int]:
        batches.append((time.monotonic() - t0, list(keys)))
        return [k * 10 for k in keys]

    batcher = RequestBatcher(
        BatchConfig(batch_size=3, batch_timeout=0.15, max_concurrent_batches=5),
        batch_fn=fetch_many,
    )
    results = await asyncio.gather(*[batcher.add(i) for i in range(7)])
    assert results == [i * 10 for i in range(7)]
    assert [b for _, b in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    assert batches[0][0] < 0.05 and batches[1][0] < 0.05  # full: sent at once
    assert 0.15 - 0.01 <= batches[2][0] < 0.4  # partial: batch_timeout after its first item
    assert batcher.batches_run == 3


@pytest.mark.asyncio
async def test_batcher_timeout_counts_from_the_first_item():
    seen: list[tuple[float, list[str]]] = []
    t0 = time.monotonic()

    async def fetch_many(keys: list[str]) -> dict[str, str]:
        seen.append((time.monotonic() - t0, list(keys)))
        return {k: k.upper() for k in keys}

    batcher = RequestBatcher(BatchConfig(batch_size=100, batch_timeout=0.2), batch_fn=fetch_many)
    first = asyncio.ensure_future(batcher.add("a"))
    await asyncio.sleep(0.1)
    second = asyncio.ensure_future(batcher.add("b"))  # joins the open batch
    assert await first == "A" and await second == "B"
    assert len(seen) == 1 and seen[0][1] == ["a", "b"]
    assert 0.19 <= seen[0][0] < 0.29  # 0.2 s after "a", not after "b"


@pytest.mark.asyncio
async def test_batcher_max_concurrent_batches():
    running = peak = 0

    async def fetch_many(keys: list[int]) -> list[int]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1
        return keys

    batcher = RequestBatcher(
        BatchConfig(batch_size=2, batch_timeout=0.01, max_concurrent_batches=2),
        batch_fn=fetch_many,
    )
    t0 = time.monotonic()
    results = await asyncio.gather(*[batcher.add(i) for i in range(12)])
    assert results == list(range(12))
    assert peak == 2
    assert time.monotonic() - t0 >= 3 * 0.05 - 0.01  # 6 batches, 2 at a time


@pytest.mark.asyncio
async def test_batcher_fans_out_results_and_errors():
    async def as_dict(keys: list[str]) -> dict[str, int]:
        return {k: len(k) for k in keys if k != "missing"}

    batcher = RequestBatcher(BatchConfig(batch_size=3, batch_timeout=0.01), batch_fn=as_dict)
    out = await asyncio.gather(
        batcher.add("a"), batcher.add("missing"), batcher.add("ccc"), return_exceptions=True
    )
    assert out[0] == 1 and out[2] == 3 and isinstance(out[1], KeyError)

    async def wrong_length(keys: list[int]) -> list[int]:
        return keys[:-1]

    batcher = RequestBatcher(BatchConfig(batch_size=2, batch_timeout=0.01), batch_fn=wrong_length)
    out = await asyncio.gather(batcher.add(1), batcher.add(2), return_exceptions=True)
    assert all(isinstance(e, FerrotickError) for e in out)

    async def boom(keys: list[int]) -> list[int]:
        raise ConnectionError("upstream down")

    batcher = RequestBatcher(BatchConfig(batch_size=2, batch_timeout=0.01), batch_fn=boom)
    out = await asyncio.gather(batcher.add(1), batcher.add(2), return_exceptions=True)
    assert all(isinstance(e, ConnectionError) for e in out)
    with pytest.raises(ConfigError, match="batch_fn"):
        await RequestBatcher().add(1)


@pytest.mark.asyncio
async def test_batcher_add_request_form():
    batcher = RequestBatcher(BatchConfig(batch_size=4, batch_timeout=0.02))
    ran: list[int] = []

    async def call(i: int) -> int:
        ran.append(i)
        if i == 2:
            raise ValueError(i)
        return -i

    out = await asyncio.gather(
        *[batcher.add_request(lambda i=i: call(i)) for i in range(5)],
        batcher.add_request(lambda: "plain callable"),
        return_exceptions=True,
    )
    assert (
        out[:2] == [0, -1]
        and isinstance(out[2], ValueError)
        and out[3:] == [-3, -4, "plain callable"]
    )
    assert sorted(ran) == [0, 1, 2, 3, 4]
    assert batcher.batches_run == 2
    with pytest.raises(ConfigError):
        BatchConfig(batch_size=0)
