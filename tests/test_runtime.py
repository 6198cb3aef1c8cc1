"""The process-wide runtime: configuration, fork, exit."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

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
    r = run_python(
        "import ferrotick; ferrotick.echo_sync(1); print(ferrotick.runtime_stats()['worker_threads'])",
        env={"FERROTICK_WORKER_THREADS": "3"},
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "3"
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


def _fork_with_pending(q):
    # the parent had pending Rust work when it forked: the child must not hang
    q.put(ferrotick.echo_sync("child-ok", 0.01))


def test_fork_while_futures_are_pending():
    loop = asyncio.new_event_loop()

    async def start():
        return [asyncio.ensure_future(ferrotick.sleep(0.5)) for _ in range(200)]

    tasks = loop.run_until_complete(start())
    try:
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_fork_with_pending, args=(q,))
        p.start()
        assert q.get(timeout=30) == "child-ok"
        p.join(30)
        assert p.exitcode == 0
        loop.run_until_complete(asyncio.gather(*tasks))
    finally:
        loop.close()


EXIT_SCRIPTS = {
    "return": """
        import asyncio, ferrotick
        loop = asyncio.new_event_loop()
        async def start():
            tasks = [asyncio.ensure_future(ferrotick.sleep(30)) for _ in range(300)]
            tasks += [asyncio.ensure_future(ferrotick.echo(i, 5)) for i in range(100)]
            await ferrotick.sleep(0.01)
            return tasks
        tasks = loop.run_until_complete(start())
        print("exiting", flush=True)
    """,
    "sys_exit": """
        import asyncio, sys, ferrotick
        async def main():
            tasks = [asyncio.ensure_future(ferrotick.sleep(30)) for _ in range(300)]
            await ferrotick.sleep(0.01)
            print("exiting", flush=True)
            sys.exit(0)
        asyncio.run(main())
    """,
    "thread": """
        import asyncio, threading, ferrotick, logging
        logging.basicConfig(level=logging.DEBUG)
        t = threading.Thread(target=ferrotick.sleep_sync, args=(30,), daemon=True)
        t.start()
        loop = asyncio.new_event_loop()
        async def start():
            return [asyncio.ensure_future(ferrotick.sleep(30)) for _ in range(300)]
        tasks = loop.run_until_complete(start())
        ferrotick._core._log("warning", "about to exit")
        print("exiting", flush=True)
    """,
}


def test_exit_with_pending_futures_50_processes():
    def run(kind):
        p = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(EXIT_SCRIPTS[kind])],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return kind, p.returncode, p.stdout, p.stderr

    kinds = [k for _ in range(17) for k in EXIT_SCRIPTS][:50]
    with ThreadPoolExecutor(max_workers=6) as ex:
        results = list(ex.map(run, kinds))
    assert len(results) == 50
    for kind, code, out, err in results:
        assert code == 0, (kind, code, err)
        assert "exiting" in out
        for bad in ("Fatal Python error", "panicked", "Traceback", "PanicException"):
            assert bad not in err, (kind, err)


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
