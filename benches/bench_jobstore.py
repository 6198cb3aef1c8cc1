"""Job stores: the cost of the claim that makes a firing run once across processes,
beside the firing's own cost; and 1,000 jobs a second shared by 4 processes.

Redis is Debian's ``redis-server``, started by this module on a free loopback port
(no persistence) and stopped at exit; without ``redis-server`` or the ``redis``
package the module registers nothing.

``jobstore_firing_cost``: ``n`` one-shot jobs due at the same instant on one
scheduler; **time per firing** = (when the last job ran - the instant) / n, **CPU
per firing** = process CPU over the same window / n. The memory store (no claim)
is the baseline, first column: the ratio column says how many times the firing
costs with the claim (peer / memory store, so here *above 1 means slower*). Two
more rows time the claim alone, as the median of claims awaited one at a time
(``time per firing`` = median latency of one claim round trip; each claim is then
completed, untimed, as after a run).

``jobstore_4proc_1000_jobs``: 4 worker processes (separate interpreters) run the
same 1,000 interval jobs every second against Redis for 5 s (quick: 200 jobs, 2 s),
start times spread over the second, ``coalesce=False``; every process attempts
every firing. **Time per firing = p99 lateness** (the executed event's time minus
the nominal fire time, claim included) over the firings that ran; **CPU per
firing** = CPU of all 4 processes / firings. The run checks that every firing ran
exactly once (it raises otherwise) and prints p50 / p99 / max lateness: no
backlog means max lateness well under the 1 s interval.
"""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import gc
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
UTC = dt.timezone.utc


def bench_job() -> None:
    """The scheduled job: nothing, so that the measurement is the scheduler's."""


async def bench_job_async() -> None:
    pass


# -- redis-server --------------------------------------------------------------------------

_redis: dict[str, object] = {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_url() -> str:
    if "url" not in _redis:
        port = _free_port()
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def stop() -> None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()

        atexit.register(stop)
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        _redis["url"] = f"redis://127.0.0.1:{port}/0"
    return str(_redis["url"])


def _run_in_fresh_loop(coro_fn, *args):
    if "redis" in args:
        redis_url()  # start redis-server (a blocking wait) before any loop runs
    gc.collect()
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro_fn(*args))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


# -- firing cost -----------------------------------------------------------------------------


async def _firings(n: int, store_kind: str):
    from run import Measurement

    from ferrotick.scheduler import (
        EVENT_JOB_EXECUTED,
        AsyncScheduler,
        DateTrigger,
        RedisJobStore,
        SQLiteJobStore,
    )

    tmp = None
    if store_kind == "redis":
        store = RedisJobStore(redis_url(), prefix=f"bench{uuid.uuid4().hex[:8]}")
    elif store_kind == "sqlite":
        tmp = tempfile.mkdtemp()
        store = SQLiteJobStore(os.path.join(tmp, "jobs.db"))
    else:
        store = None
    s = AsyncScheduler(jobstore=store, timezone="UTC")
    done = 0
    last = 0.0
    finished = asyncio.get_running_loop().create_future()

    def on_run(ev) -> None:
        nonlocal done, last
        done += 1
        if done == n:
            last = time.time()
            finished.set_result(None)

    s.add_listener(on_run, EVENT_JOB_EXECUTED)
    await s.start()
    due = time.time() + 0.3 + n * 0.0005
    for j in range(n):
        s.add_job(
            "bench_jobstore:bench_job_async",
            DateTrigger(dt.datetime.fromtimestamp(due, UTC)),
            id=f"j{j}",
        )
    await asyncio.sleep(max(0.0, due - 0.02 - time.time()))
    c0 = time.process_time()
    await asyncio.wait_for(finished, 30)
    cpu = time.process_time() - c0
    await s.stop(wait=False)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    return Measurement(wall=last - due, cpu=cpu, ops=n)


async def _claims(n: int, store_kind: str):
    from run import Measurement

    from ferrotick.scheduler import RedisJobStore, SQLiteJobStore

    tmp = None
    if store_kind == "redis":
        store = RedisJobStore(redis_url(), prefix=f"bench{uuid.uuid4().hex[:8]}")
    else:
        tmp = tempfile.mkdtemp()
        store = SQLiteJobStore(os.path.join(tmp, "jobs.db"))
    await store.open()
    await store.add("c", {"v": 1}, None, False)
    base = time.time()
    lat = []
    cpu = 0.0
    for k in range(n):
        c0 = time.process_time()
        t0 = time.perf_counter()
        r = await store.claim("c", base + k, "bench", 60.0, base + k + 1)
        lat.append(time.perf_counter() - t0)
        cpu += time.process_time() - c0
        assert r[0] == 1, r
        # as after a run (not timed): a firing still in flight is checked at each claim
        await store.complete("c", base + k, base + k, 0.0, False)
    await store.close()
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    # Measurement.wall / ops is the median latency of one claim
    return Measurement(wall=statistics.median(lat) * n, cpu=cpu, ops=n)


# -- 4 processes, 1,000 jobs a second -----------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


async def _worker(cfg: dict) -> None:
    from ferrotick.scheduler import EVENT_JOB_EXECUTED, AsyncScheduler, RedisJobStore

    s = AsyncScheduler(jobstore=RedisJobStore(cfg["url"], prefix=cfg["prefix"]), timezone="UTC")
    lateness: list[float] = []
    s.add_listener(
        lambda ev: lateness.append(time.time() - ev.scheduled_run_time.timestamp()),
        EVENT_JOB_EXECUTED,
    )
    n, first, end = cfg["jobs"], cfg["first"], cfg["end"]
    for j in range(n):
        s.add_job(
            "bench_jobstore:bench_job_async",
            "interval",
            seconds=1.0,
            start_date=dt.datetime.fromtimestamp(first + j / n, UTC),
            end_date=dt.datetime.fromtimestamp(end, UTC),
            id=f"job{j}",
            coalesce=False,
            misfire_grace_time=None,
        )
    await s.start()
    print("ready", flush=True)
    await asyncio.sleep(max(0.0, first - 0.02 - time.time()))
    c0 = time.process_time()
    await asyncio.sleep(max(0.0, end + 0.5 - time.time()))
    cpu = time.process_time() - c0
    jobs = s.get_jobs()
    out = {
        "lateness": lateness,
        "runs": sum(j.status.runs for j in jobs),
        "elsewhere": sum(j.status.claimed_elsewhere for j in jobs),
        "errors": sum(j.status.store_errors for j in jobs),
        "cpu": cpu,
    }
    await s.stop(wait=False)
    with open(cfg["out"], "w") as f:
        json.dump(out, f)


def _cluster(n_jobs: int):
    from run import Measurement

    nproc = 4
    seconds = 5 if n_jobs >= 1000 else 2
    first = time.time() + 2.5 + n_jobs * 0.0015
    end = first + seconds - 1e-3
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    tmp = tempfile.mkdtemp()
    procs = []
    for i in range(nproc):
        cfg = {
            "url": redis_url(),
            "prefix": prefix,
            "jobs": n_jobs,
            "first": first,
            "end": end,
            "out": os.path.join(tmp, f"w{i}.json"),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(Path(__file__)), "--worker", json.dumps(cfg)],
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("a worker failed to start")
    if time.time() >= first:
        raise RuntimeError("workers took longer to start than the lead time")
    for p in procs:
        p.wait(timeout=seconds + 60)
    results = [json.loads(Path(tmp, f"w{i}.json").read_text()) for i in range(nproc)]
    shutil.rmtree(tmp, ignore_errors=True)
    expected = n_jobs * seconds
    runs = sum(r["runs"] for r in results)
    lat = [x for r in results for x in r["lateness"]]
    if runs != expected or any(r["runs"] + r["elsewhere"] != expected for r in results):
        raise RuntimeError(
            f"firings: expected {expected}, ran {runs}; per process "
            f"{[(r['runs'], r['elsewhere'], r['errors']) for r in results]}"
        )
    print(
        f"    [4 processes] {runs} firings, each once; lateness p50 "
        f"{statistics.median(lat) * 1e3:.2f} ms, p99 {_percentile(lat, 0.99) * 1e3:.2f} ms, "
        f"max {max(lat) * 1e3:.2f} ms; runs per process {[r['runs'] for r in results]}",
        file=sys.stderr,
    )
    cpu = sum(r["cpu"] for r in results)
    return Measurement(wall=_percentile(lat, 0.99), cpu=cpu / runs, ops=1)


BENCHMARKS = []
try:
    import redis  # noqa: F401

    _HAVE_REDIS = shutil.which("redis-server") is not None
except ImportError:  # pragma: no cover
    _HAVE_REDIS = False

if _HAVE_REDIS and __name__ != "__main__":
    from run import Benchmark

    BENCHMARKS.append(
        Benchmark(
            name="jobstore_firing_cost",
            description=(
                "n one-shot jobs due at one instant on one scheduler (n = 1,000; quick 100). "
                "**Time per firing** = (last job ran - due instant) / n; **CPU per firing** = "
                "process CPU / n. The memory store (no claim) is the baseline; *the ratio is "
                "how many times longer a firing takes with its claim* (above 1 = slower). The "
                "two `claim alone` rows are the median round trip of one claim awaited at a "
                "time (n claims, loopback Redis / a WAL SQLite file)."
            ),
            contenders={
                "memory store (no claim)": lambda n: _run_in_fresh_loop(_firings, n, "memory"),
                "RedisJobStore": lambda n: _run_in_fresh_loop(_firings, n, "redis"),
                "SQLiteJobStore": lambda n: _run_in_fresh_loop(_firings, n, "sqlite"),
                "claim alone, Redis (median)": lambda n: _run_in_fresh_loop(_claims, n, "redis"),
                "claim alone, SQLite (median)": lambda n: _run_in_fresh_loop(_claims, n, "sqlite"),
            },
            ops=1000,
            quick_ops=100,
            unit="firing",
        )
    )
    BENCHMARKS.append(
        Benchmark(
            name="jobstore_4proc_1000_jobs",
            description=(
                "4 processes run the same 1,000 interval jobs every second against one Redis "
                "for 5 s (quick: 200 jobs, 2 s); every process attempts every firing and the run "
                "fails unless each firing ran exactly once. **Time per firing = p99 lateness** "
                "(claim included); **CPU per firing** = CPU of the 4 processes / firings."
            ),
            contenders={"ferrotick, RedisJobStore, 4 processes": _cluster},
            ops=1000,
            quick_ops=200,
            unit="firing",
        )
    )


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--worker":
    sys.path.insert(0, str(HERE))
    asyncio.run(_worker(json.loads(sys.argv[2])))
