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


def test_blocking_twins_in_parallel_threads():
    # each caller waits on its own: 6 threads x 0.2 s take ~0.2 s, not 1.2 s
    out = []

    def worker(i):
        ferrotick.sleep_sync(0.2)
        out.append(ferrotick.echo_sync(i, 0.001))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.perf_counter() - t0
    assert sorted(out) == list(range(6))
    assert elapsed < 0.8


def test_echo_sync_keeps_identity_and_raises_bad_arguments():
    for value in (object(), (1, 2), ValueError("v"), None):
        assert ferrotick.echo_sync(value) is value
        assert ferrotick.echo_sync(value, 0.001) is value
    with pytest.raises(ferrotick.ConfigError) as ei:
        ferrotick.echo_sync(1, -1)
    assert "delay" in str(ei.value)
    with pytest.raises(TypeError):
        ferrotick.sleep_sync("x")


def test_blocking_twin_inside_a_running_uvloop_raises():
    import uvloop

    async def main():
        with pytest.raises(ferrotick.BlockingCallError):
            ferrotick.sleep_sync(0.01)
        with pytest.raises(ferrotick.BlockingCallError):
            ferrotick.echo_sync(1, 0.001)
        return await ferrotick.echo(2, 0.001)

    assert uvloop.run(main()) == 2


def test_blocking_twin_is_interrupted_by_ctrl_c():
    from conftest import run_python

    r = run_python(
        """
        import os, signal, threading, time, ferrotick
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        t0 = time.perf_counter()
        try:
            ferrotick.sleep_sync(10)
        except KeyboardInterrupt:
            print("interrupted", round(time.perf_counter() - t0, 1))
        # the runtime keeps working afterwards
        print(ferrotick.echo_sync("ok", 0.001))
        """,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0].startswith("interrupted")
    assert float(lines[0].split()[1]) < 2.0
    assert lines[1] == "ok"
