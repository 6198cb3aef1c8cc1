"""Blocking twins for Flask views and scripts."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import ferrotick


def test_blocking_twins_from_a_plain_thread():
    out = {}

    def worker():
        t0 = time.perf_counter()
        ferrotick.sleep_sync(0.05)
        out["slept"] = time.perf_counter() - t0
        out["echo"] = ferrotick.echo_sync(("a", 1), 0.01)

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert 0.049 <= out["slept"] < 1.0
    assert out["echo"] == ("a", 1)


def test_blocking_twin_releases_the_gil():
    counter = {"n": 0}
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            counter["n"] += 1

    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.02)
        before = counter["n"]
        ferrotick.sleep_sync(0.3)
        progressed = counter["n"] - before
    finally:
        stop.set()
        t.join()
    # a thread holding the GIL for 0.3 s would leave the counter almost still
    assert progressed > 100_000


def test_blocking_twin_inside_a_running_loop_raises():
    async def main():
        with pytest.raises(ferrotick.BlockingCallError) as ei:
            ferrotick.sleep_sync(0.01)
        assert isinstance(ei.value, RuntimeError)
        assert "sleep_sync" in str(ei.value)
        with pytest.raises(ferrotick.BlockingCallError):
            ferrotick.echo_sync(1)
        # from a worker thread it is fine
        return await asyncio.to_thread(ferrotick.echo_sync, 3, 0.001)

    assert asyncio.run(main()) == 3
