"""The process-wide runtime: configuration, fork, exit."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import run_python

import ferrotick


def test_configure_after_start_raises():
    ferrotick.echo_sync(1)  # the runtime runs now
    assert ferrotick.runtime_stats()["started"] is True
    with pytest.raises(ferrotick.ConfigError) as ei:
        ferrotick.configure(worker_threads=2)
    assert isinstance(ei.value, ValueError)
    assert "before the runtime starts" in str(ei.value)


@pytest.mark.parametrize(
    "call, exc, name",
    [
        (lambda: ferrotick.sleep(-1), ferrotick.ConfigError, "seconds"),
        (lambda: ferrotick.sleep(float("nan")), ferrotick.ConfigError, "seconds"),
        (lambda: ferrotick.sleep(float("inf")), ferrotick.ConfigError, "seconds"),
        (lambda: ferrotick.sleep("x"), TypeError, "seconds"),
        (lambda: ferrotick.sleep(None), TypeError, "seconds"),
        (lambda: ferrotick.sleep(True), TypeError, "seconds"),
        (lambda: ferrotick.echo(1, delay=float("nan")), ferrotick.ConfigError, "delay"),
        (lambda: ferrotick.echo(1, delay=-1), ferrotick.ConfigError, "delay"),
        (lambda: ferrotick.echo(1, delay="soon"), TypeError, "delay"),
        (lambda: ferrotick.sleep_sync(-0.5), ferrotick.ConfigError, "seconds"),
    ],
)
def test_bad_arguments_name_the_argument(call, exc, name):
    async def main():
        call()

    with pytest.raises(exc) as ei:
        asyncio.run(main())
    assert name in str(ei.value)


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        ({"worker_threads": 0}, ferrotick.ConfigError, "worker_threads"),
        ({"worker_threads": -3}, ferrotick.ConfigError, "worker_threads"),
        ({"worker_threads": "x"}, TypeError, "worker_threads"),
        ({"worker_threads": 2.5}, TypeError, "worker_threads"),
        ({"worker_threads": True}, TypeError, "worker_threads"),
        ({"max_blocking_threads": 0}, ferrotick.ConfigError, "max_blocking_threads"),
        ({"compute_threads": "many"}, TypeError, "compute_threads"),
        ({"shutdown_timeout": "x"}, TypeError, "shutdown_timeout"),
    ],
)
def test_configure_bad_arguments_name_the_argument(kwargs, exc, name):
    with pytest.raises(exc) as ei:
        ferrotick.configure(**kwargs)
    assert name in str(ei.value)


def test_configure_rejects_positional_and_unknown_arguments():
    with pytest.raises(TypeError):
        ferrotick.configure(2)  # type: ignore[misc]
    with pytest.raises(TypeError):
        ferrotick.configure(workers=2)  # type: ignore[call-arg]


def _worker_thread_count_code(setup: str) -> str:
    # A new thread sets its own name once it runs: poll for a short while.
    return f"""
        import os, time, ferrotick
        {setup}
        assert ferrotick.runtime_stats()["started"] is False
        assert ferrotick.echo_sync(7) == 7
        want = ferrotick.runtime_stats()["worker_threads"]
        deadline = time.monotonic() + 3
        while True:
            names = []
            for t in os.listdir("/proc/self/task"):
                try:
                    names.append(open(f"/proc/self/task/{{t}}/comm").read().strip())
                except OSError:
                    pass
            n = sum(name.startswith("ferrotick-work") for name in names)
            if n == want or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        print(want, n)
        """


def test_configure_before_first_use_in_fresh_process():
    r = run_python(
        _worker_thread_count_code(
            'cfg = ferrotick.configure(worker_threads=2); assert cfg["worker_threads"] == 2'
        )
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["2", "2"]


def test_configure_bad_values_in_fresh_process():
    r = run_python(
        """
        import ferrotick
        for kw in ({"worker_threads": 0}, {"worker_threads": 5000}, {"shutdown_timeout": -1}):
            try:
                ferrotick.configure(**kw)
            except ferrotick.ConfigError as e:
                assert list(kw)[0] in str(e), str(e)
            else:
                raise SystemExit("no error for %r" % (kw,))
        try:
            ferrotick.configure(worker_threads="x")
        except TypeError as e:
            assert "worker_threads" in str(e)
        cfg = ferrotick.configure(worker_threads=3)
        assert cfg["worker_threads"] == 3
        assert ferrotick.echo_sync(7) == 7
        assert ferrotick.runtime_stats()["worker_threads"] == 3
        print("ok")
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_env_var_sets_worker_threads():
    r = run_python(_worker_thread_count_code(""), env={"FERROTICK_WORKER_THREADS": "3"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["3", "3"]
    # configure() wins over the environment
    r = run_python(
        _worker_thread_count_code("ferrotick.configure(worker_threads=1)"),
        env={"FERROTICK_WORKER_THREADS": "3"},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "1"]
    r = run_python(
        """
        import ferrotick
        try:
            ferrotick.echo_sync(1)
        except ferrotick.ConfigError as e:
            print("ConfigError", "FERROTICK_WORKER_THREADS" in str(e))
        """,
        env={"FERROTICK_WORKER_THREADS": "abc"},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ConfigError True"


def _child_work(q):
    async def main():
        vals = await asyncio.gather(*(ferrotick.echo(i, 0.001) for i in range(100)))
        await ferrotick.sleep(0.01)
        return sum(vals)

    q.put((asyncio.run(main()), ferrotick.runtime_stats()["pid"]))


def test_fork_child_builds_a_fresh_runtime():
    import os

    async def parent():
        return await asyncio.gather(*(ferrotick.echo(i, 0.001) for i in range(10)))

    assert asyncio.run(parent()) == list(range(10))
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_child_work, args=(q,)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [q.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert all(total == sum(range(100)) for total, _ in results)
    assert all(pid != os.getpid() for _, pid in results)


def _pool_task(i):
    import os

    async def main():
        await ferrotick.sleep(0.005)
        return await asyncio.gather(*(ferrotick.echo(i * 10 + k, 0.001) for k in range(10)))

    return asyncio.run(main()), ferrotick.runtime_stats()["pid"], os.getpid()


def test_fork_pool_after_parent_used_the_runtime():
    import os

    assert ferrotick.echo_sync("parent", 0.001) == "parent"
    ctx = mp.get_context("fork")
    with ctx.Pool(2) as pool:
        out = pool.map_async(_pool_task, range(6)).get(timeout=30)
    for i, (vals, stats_pid, real_pid) in enumerate(out):
        assert vals == [i * 10 + k for k in range(10)]
        assert stats_pid == real_pid != os.getpid()
    # the parent's runtime is untouched by its children
    assert ferrotick.runtime_stats()["pid"] == os.getpid()
    assert ferrotick.echo_sync("still", 0.001) == "still"


def _fork_with_pending(q):
    # the parent had pending Rust work when it forked: the child must not hang
    async def main():
        await ferrotick.sleep(0.01)
        vals = await asyncio.gather(*(ferrotick.echo(i, 0.001) for i in range(50)))
        return sum(vals)

    total = asyncio.run(main())
    q.put((total, ferrotick.echo_sync("child-ok", 0.01), ferrotick.runtime_stats()["pid"]))


def test_fork_while_futures_are_pending():
    import os

    loop = asyncio.new_event_loop()

    async def start():
        tasks = [asyncio.ensure_future(ferrotick.sleep(0.5)) for _ in range(200)]
        tasks += [asyncio.ensure_future(ferrotick.echo(i, 0.3)) for i in range(100)]
        await asyncio.sleep(0)
        return tasks

    tasks = loop.run_until_complete(start())
    try:
        assert ferrotick.runtime_stats()["pending_futures"] >= 300
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_fork_with_pending, args=(q,))
        p.start()
        total, ok, child_pid = q.get(timeout=30)
        p.join(30)
        assert p.exitcode == 0
        assert (total, ok) == (sum(range(50)), "child-ok")
        assert child_pid == p.pid != os.getpid()
        # the parent's pending futures still complete
        out = loop.run_until_complete(asyncio.gather(*tasks))
        assert out[200:] == list(range(100))
    finally:
        loop.close()


def _busy_child(q):
    async def main():
        return await asyncio.gather(*(ferrotick.echo(i, 0.001) for i in range(20)))

    q.put((sum(asyncio.run(main())), ferrotick.echo_sync(5, 0.001)))


def test_fork_while_another_thread_completes_futures():
    # tokio workers push completions (and hold the queue locks) while we fork
    stop = threading.Event()
    errors = []

    def busy():
        async def main():
            while not stop.is_set():
                await asyncio.gather(*(ferrotick.echo(k, 0.0002 * (k % 5)) for k in range(200)))

        try:
            asyncio.run(main())
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=busy)
    t.start()
    ctx = mp.get_context("fork")
    try:
        for _ in range(10):
            q = ctx.Queue()
            p = ctx.Process(target=_busy_child, args=(q,))
            p.start()
            assert q.get(timeout=10) == (190, 5)
            p.join(10)
            assert p.exitcode == 0
    finally:
        stop.set()
        t.join(10)
    assert not errors


EXIT_SCRIPTS = {
    # the loop is left with hundreds of pending futures; the script just ends
    "return": """
        import asyncio, ferrotick
        loop = asyncio.new_event_loop()
        async def start():
            tasks = [asyncio.ensure_future(ferrotick.sleep(30)) for _ in range(300)]
            tasks += [asyncio.ensure_future(ferrotick.echo(i, 0.005 * (i % 40))) for i in range(200)]
            await ferrotick.sleep(0.01)
            return tasks
        tasks = loop.run_until_complete(start())
        print("exiting", flush=True)
    """,
    # sys.exit() inside asyncio.run with pending futures and Tasks
    "sys_exit": """
        import asyncio, sys, ferrotick
        async def waiter(i):
            await ferrotick.echo(i, 30)
        async def main():
            tasks = [asyncio.ensure_future(ferrotick.sleep(30)) for _ in range(300)]
            tasks += [asyncio.ensure_future(waiter(i)) for i in range(100)]
            tasks += [asyncio.ensure_future(ferrotick.echo(i, 0.002 * i)) for i in range(100)]
            await ferrotick.sleep(0.01)
            print("exiting", flush=True)
            sys.exit(0)
        asyncio.run(main())
    """,
    # a daemon thread blocked in sleep_sync, logging on, pending futures
    "thread": """
        import asyncio, threading, ferrotick, logging
        logging.basicConfig(level=logging.DEBUG)
        t = threading.Thread(target=ferrotick.sleep_sync, args=(30,), daemon=True)
        t.start()
        loop = asyncio.new_event_loop()
        async def start():
            tasks = [asyncio.ensure_future(ferrotick.sleep(30)) for _ in range(300)]
            tasks += [asyncio.ensure_future(ferrotick.echo(i, 0.01)) for i in range(100)]
            await asyncio.sleep(0)
            return tasks
        tasks = loop.run_until_complete(start())
        ferrotick._core._log("warning", "about to exit")
        print("exiting", flush=True)
    """,
    # completions keep arriving from tokio while the interpreter finalizes,
    # on uvloop and on a loop woken with call_soon_threadsafe (takes the GIL)
    "completing": """
        import asyncio, ferrotick, uvloop
        class NoReaderLoop(asyncio.SelectorEventLoop):
            def add_reader(self, fd, callback, *args):
                raise NotImplementedError
        loops = [uvloop.new_event_loop(), NoReaderLoop()]
        async def start():
            tasks = [asyncio.ensure_future(ferrotick.sleep(30)) for _ in range(150)]
            tasks += [asyncio.ensure_future(ferrotick.echo(i, 0.0005 * i)) for i in range(150)]
            await ferrotick.sleep(0.001)
            return tasks
        tasks = [loop.run_until_complete(start()) for loop in loops]
        print("exiting", flush=True)
    """,
}


def test_exit_with_pending_futures_50_processes():
    kinds = [k for _ in range(13) for k in EXIT_SCRIPTS][:50]
    todo = list(enumerate(kinds))
    running: dict[int, tuple[str, subprocess.Popen, float]] = {}
    results = []
    deadline = time.monotonic() + 120
    try:
        while todo or running:
            while todo and len(running) < 8:
                i, kind = todo.pop(0)
                p = subprocess.Popen(
                    [sys.executable, "-c", textwrap.dedent(EXIT_SCRIPTS[kind])],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                running[i] = (kind, p, time.monotonic())
            for i, (kind, p, t0) in list(running.items()):
                if p.poll() is None:
                    # no process may hang at exit (30 s timers are pending)
                    assert time.monotonic() - t0 < 20, f"process {i} ({kind}) hangs"
                    continue
                out, err = p.communicate()
                results.append((kind, p.returncode, out, err))
                del running[i]
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        for _, p, _ in running.values():
            p.kill()
            p.communicate()
    assert len(results) == 50
    for kind, code, out, err in results:
        assert code == 0, (kind, code, err)
        assert "exiting" in out
        for bad in (
            "Fatal Python error",
            "panicked",
            "Traceback",
            "PanicException",
            "Segmentation",
        ):
            assert bad not in err, (kind, err)


def _run_many(code: str, n: int, parallel: int = 4, timeout: float = 20):
    """Runs `code` in n fresh interpreters, `parallel` at a time."""
    todo = list(range(n))
    running: dict[int, tuple[subprocess.Popen, float]] = {}
    results = []
    try:
        while todo or running:
            while todo and len(running) < parallel:
                i = todo.pop()
                p = subprocess.Popen(
                    [sys.executable, "-c", textwrap.dedent(code)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                running[i] = (p, time.monotonic())
            for i, (p, t0) in list(running.items()):
                if p.poll() is None:
                    assert time.monotonic() - t0 < timeout, "a process hangs at exit"
                    continue
                out, err = p.communicate()
                results.append((p.returncode, out, err))
                del running[i]
            time.sleep(0.01)
    finally:
        for p, _ in running.values():
            p.kill()
            p.communicate()
    return results


DAEMON_LOOP_SCRIPT = """
    import asyncio, threading, time, ferrotick
    def bg():
        async def main():
            tasks = [asyncio.ensure_future(ferrotick.sleep(30)) for _ in range(200)]
            while True:
                await asyncio.gather(*(ferrotick.echo(k, 0.001) for k in range(50)))
        asyncio.run(main())
    threading.Thread(target=bg, daemon=True).start()
    time.sleep(0.05)
    print("exiting", flush=True)
"""


def test_exit_while_a_daemon_thread_runs_a_loop_on_ferrotick():
    # a background loop thread keeps creating futures while the interpreter exits
    results = _run_many(DAEMON_LOOP_SCRIPT, 12)
    for code, out, err in results:
        assert code == 0, err
        assert "exiting" in out
        for bad in ("Fatal Python error", "panicked", "Traceback", "Segmentation"):
            assert bad not in err, err


def test_future_created_by_a_daemon_thread_after_the_exit_hook():
    # Deterministic form of the test above: atexit runs last-in first-out,
    # so `late` runs after ferrotick's exit hook and lets the daemon loop
    # create a future at that moment. Like sleep_sync() in a daemon thread
    # (which parks), it must not raise into the thread: an exception there
    # ends the loop and prints a traceback while the interpreter exits.
    r = run_python(
        """
        import asyncio, atexit, os, threading
        ready, go, done = threading.Event(), threading.Event(), threading.Event()
        def late():
            go.set()
            done.wait(5)
        atexit.register(late)
        import ferrotick
        def bg():
            async def main():
                await ferrotick.echo(0, 0.001)
                ready.set()
                while not go.is_set():
                    await asyncio.sleep(0.001)
                try:
                    fut = ferrotick.echo(1, 0.01)
                    os.write(1, b"created\\n")
                except BaseException as e:
                    os.write(1, f"raised {type(e).__name__}: {e}\\n".encode())
                    raise
                finally:
                    done.set()
                await fut
            asyncio.run(main())
        threading.Thread(target=bg, daemon=True).start()
        assert ready.wait(10)
        print("exiting", flush=True)
        """,
        timeout=30,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "exiting"
    assert lines[1:] == ["created"], r.stdout


def test_runtime_stats_shape():
    async def main():
        futs = [ferrotick.sleep(0.2) for _ in range(10)]
        for f in futs:
            f.add_done_callback(lambda f: None)
        stats = ferrotick.runtime_stats()
        for f in futs:
            f.cancel()
        return stats

    stats = asyncio.run(main())
    for key in (
        "started",
        "worker_threads",
        "alive_tasks",
        "loops",
        "pending_futures",
        "queue_depth",
        "pid",
    ):
        assert key in stats
    assert stats["pending_futures"] >= 10
    assert any(loop["pending"] >= 10 for loop in stats["loops"])
