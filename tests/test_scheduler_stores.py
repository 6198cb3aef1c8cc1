"""Job stores and leases: each firing runs exactly once across processes, a restarted
process resumes missed firings, store outages follow the policy, bad input fails fast.

Redis is Debian's redis-server started by these tests on a free loopback port (no
persistence); the multi-process tests run ``sched_worker.py`` in separate
interpreters that all attempt every firing; faults are real (SIGKILL of a worker,
of redis-server).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import sched_worker

from ferrotick import ConfigError, SchedulerError
from ferrotick.scheduler import (
    EVENT_JOB_MISSED,
    AsyncScheduler,
    BackgroundScheduler,
    IntervalTrigger,
    MemoryJobStore,
    RedisJobStore,
    SQLiteJobStore,
    daily,
)

HERE = Path(__file__).resolve().parent
WORKER = HERE / "sched_worker.py"
UTC = dt.timezone.utc
pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """redis-server on a loopback port, in the foreground of a subprocess."""

    def __init__(self, port: int | None = None, password: str | None = None) -> None:
        self.port = port or free_port()
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def own_redis():
    """A redis-server of the test's own, that the test may kill and restart."""
    server = RedisServer()
    server.start()
    yield server
    server.kill()


def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, UTC)


# -- several processes, one schedule ------------------------------------------------------


def _spawn(cfg: dict) -> subprocess.Popen[str]:
    env = dict(os.environ)
    return subprocess.Popen(
        [sys.executable, str(WORKER), json.dumps(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _read_log(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [ln.split() for ln in path.read_text().splitlines() if ln.strip()]


def _run_cluster(tmp_path: Path, store: dict, nproc: int, firings: int, kill_at: int | None):
    """``nproc`` workers run two interval jobs (a coroutine and a thread job) of
    ``firings`` fire times every 0.05 s; with ``kill_at``, one worker is SIGKILLed
    while it runs a firing after that many firings. Returns (expected fire times
    per job, log lines, statuses of the survivors, killed pid)."""
    interval = 0.05
    start = time.time() + 3.0 + 0.3 * nproc
    end = start + (firings - 1) * interval + interval / 2
    log = tmp_path / "runs.log"
    jobs = [
        {"id": "acoro", "interval": interval, "start": start, "end": end, "sleep": 0.03},
        {"id": "bsync", "interval": interval, "start": start, "end": end, "sleep": 0.03, "sync": 1},
    ]
    base = {**store, "jobs": jobs, "log": str(log), "lease_time": 0.5, "until": end + 1.5}
    procs = []
    for i in range(nproc):
        cfg = {**base, "status": str(tmp_path / f"status{i}.json")}
        if kill_at is not None and i == nproc - 1:
            # the victim's runs last longer (the same stored jobs, the worker
            # sleeps 12 ms more): a wider window for the kill to land in the
            # middle of one on a busy machine
            cfg["extra_sleep"] = 0.012
        procs.append(_spawn(cfg))
    for p in procs:
        line = p.stdout.readline()  # "ready" once started
        if line.strip() != "ready":
            for q in procs:
                q.kill()
            p.wait()
            pytest.fail(f"a worker did not start: {p.stderr.read()}")
    assert time.time() < start, "workers took too long to start"
    killed = None
    if kill_at is not None:
        victim = procs[-1]
        t_kill = start + kill_at * interval
        while time.time() < t_kill:
            time.sleep(0.01)
        # wait until the victim starts a run, then kill it in the middle of it
        seen = len(_read_log(log))
        deadline = time.time() + 5
        while time.time() < deadline:
            lines = _read_log(log)
            if any(ln[0] == "S" and ln[2] == str(victim.pid) for ln in lines[seen:]):
                break
            seen = len(lines)
            time.sleep(0.002)
        victim.send_signal(signal.SIGKILL)
        killed = victim.pid
    statuses = []
    for i, p in enumerate(procs):
        out, err = p.communicate(timeout=end - time.time() + 30)
        if p.pid == killed:
            assert p.returncode == -signal.SIGKILL
            continue
        assert p.returncode == 0, err
        statuses.append(json.loads((tmp_path / f"status{i}.json").read_text()))
    # log lines name firings by their nominal time (µs): turn it into the firing's index
    lines = _read_log(log)
    for ln in lines:
        if ln[0] in ("E", "M"):
            k = (int(ln[2]) / 1e6 - start) / interval
            assert abs(k - round(k)) < 1e-3, ln
            ln[2] = str(round(k))
    return list(range(firings)), lines, statuses, killed


def _check_exactly_once(expected, lines, statuses, killed, nproc_alive, firings):
    for job in ("acoro", "bsync"):
        done = [int(ln[2]) for ln in lines if ln[0] == "E" and ln[1] == job]
        dupes = [t for t, n in collections.Counter(done).items() if n > 1]
        assert not dupes, f"{job}: firings run twice: {dupes[:5]}"
        assert set(done) <= set(expected)
        lost = {int(ln[2]) for ln in lines if ln[0] == "M" and ln[1] == job}
        missing = set(expected) - set(done)
        if killed is None:
            assert not missing, f"{job}: {len(missing)} firings never ran"
            assert not lost
        else:
            # only the firing the killed worker was running is missing, it is never
            # run again, and a survivor recorded it as lost
            assert missing == lost, (job, sorted(missing), sorted(lost))
            assert len(missing) <= 2
        for st in statuses:
            s = st["jobs"][job]
            # every surviving process attempted every firing: it ran it, or found it
            # claimed by another process (or, once, claimed by the killed worker)
            attempted = s["runs"] + s["claimed_elsewhere"]
            assert attempted == firings, (job, s)
            assert s["store_errors"] == 0
    if killed is not None:
        victims = [ln for ln in lines if ln[0] == "S" and ln[2] == str(killed)]
        assert victims, "the killed worker ran nothing"
        ends = [ln for ln in lines if ln[0] == "E" and ln[3] == str(killed)]
        # the killed worker started more runs than it finished: it died mid-run
        assert len(victims) > len(ends)
        lost_total = sum(st["jobs"][j]["lost"] for st in statuses for j in st["jobs"])
        assert lost_total >= 1
    assert len(statuses) == nproc_alive


def test_four_processes_on_redis_run_each_firing_once_then_one_is_killed(tmp_path, redis_server):
    store = {"store": "redis", "url": redis_server.url, "prefix": prefix()}
    firings = 260
    expected, lines, statuses, killed = _run_cluster(tmp_path, store, 4, firings, kill_at=200)
    _check_exactly_once(expected, lines, statuses, killed, 3, firings)
    # the first 200 firings ran before the kill: all of them exactly once
    for job in ("acoro", "bsync"):
        done = [int(ln[2]) for ln in lines if ln[0] == "E" and ln[1] == job]
        assert set(expected[:200]) <= set(done)
    # every process won some firings
    pids = {ln[3] for ln in lines if ln[0] == "E"}
    assert len(pids) == 4


def test_two_processes_on_sqlite_run_each_firing_once_then_one_is_killed(tmp_path):
    store = {"store": "sqlite", "path": str(tmp_path / "jobs.db")}
    firings = 200
    expected, lines, statuses, killed = _run_cluster(tmp_path, store, 2, firings, kill_at=140)
    _check_exactly_once(expected, lines, statuses, killed, 1, firings)
    pids = {ln[3] for ln in lines if ln[0] == "E"}
    assert len(pids) == 2


# -- restart ---------------------------------------------------------------------------------


def _store_factories(redis_server):
    p = prefix()
    return {
        "sqlite": lambda tmp: SQLiteJobStore(tmp / "jobs.db"),
        "redis": lambda tmp: RedisJobStore(redis_server.url, prefix=p),
    }


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
@pytest.mark.parametrize(
    "coalesce, grace, runs, misses",
    [(True, None, 1, 0), (False, None, 4, 0), (False, 0.05, 0, 4), (True, 0.05, 0, 1)],
)
@pytest.mark.asyncio
async def test_restart_runs_missed_firings_as_the_policy_says(
    tmp_path, redis_server, kind, coalesce, grace, runs, misses
):
    make = _store_factories(redis_server)[kind]
    key = f"restart-{uuid.uuid4().hex}"
    s1 = AsyncScheduler(jobstore=make(tmp_path), timezone="UTC")
    # the first run time counts from here, after the store and scheduler exist,
    # with room for add_job, start() and stop() (store I/O) on a busy machine
    first = time.time() + 0.6
    s1.add_job(
        "sched_worker:tick",
        "interval",
        seconds=0.25,
        start_date=utc(first),
        id="report",
        args=[key],
        coalesce=coalesce,
        misfire_grace_time=grace,
    )
    await s1.start()
    await asyncio.sleep(0.1)
    await s1.stop()  # before the first firing
    assert time.time() < first, "setup took longer than the margin"
    assert sched_worker.CALLS.get(key) is None
    # down while 4 firings (first + 0, 0.25, 0.5, 0.75) pass; the next is at first + 1
    await asyncio.sleep(first + 0.8 - time.time())
    s2 = AsyncScheduler(jobstore=make(tmp_path), timezone="UTC")  # a new process's view
    missed = []
    s2.add_listener(missed.append, EVENT_JOB_MISSED)
    await s2.start()
    job = s2.get_job("report")
    assert job is not None and job.coalesce is coalesce and job.misfire_grace_time == grace
    await asyncio.sleep(first + 0.95 - time.time())
    st = job.status
    calls = len(sched_worker.CALLS.get(key, []))  # as of the status (first + 1 is next)
    await s2.stop()
    assert calls == runs
    assert st.runs == runs and st.misses == misses and len(missed) == misses
    assert st.coalesced == (1 if coalesce else 0)


@pytest.mark.asyncio
async def test_restart_in_a_new_process_resumes_from_redis(tmp_path, redis_server):
    """A process adds a daily job and exits; a new process that only opens the
    store runs the stored job when it is due (here: overdue, so at once)."""
    p = prefix()
    key = "fresh-process"
    code = f"""
import asyncio, datetime as dt, sys, time
sys.path.insert(0, {str(HERE)!r})
from ferrotick.scheduler import AsyncScheduler, RedisJobStore, IntervalTrigger
async def main():
    s = AsyncScheduler(jobstore=RedisJobStore({redis_server.url!r}, prefix={p!r}))
    first = time.time() + 0.3
    start = dt.datetime.fromtimestamp(first, dt.timezone.utc)
    s.add_job("sched_worker:tick", IntervalTrigger(seconds=3600, start_date=start),
              id="hourly", args=[{key!r}], kwargs={{}})
    await s.start()
    await s.stop()
    print(repr(first))
asyncio.run(main())
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    first = float(r.stdout.strip())
    assert time.time() < first  # the process ended before its first firing
    await asyncio.sleep(first + 0.1 - time.time())
    s = AsyncScheduler(jobstore=RedisJobStore(redis_server.url, prefix=p))
    await s.start()
    job = s.get_job("hourly")
    assert job is not None and job.name == "tick"
    await asyncio.sleep(0.1)
    await s.stop()
    assert len(sched_worker.CALLS.get(key, [])) == 1
    assert job.status.runs == 1
    async with RedisJobStore(redis_server.url, prefix=p) as store:
        state = (await store.job_states())["hourly"]
    assert state["runs"] == 1 and state["claimed_by"].split(":")[1] == str(os.getpid())
    assert abs(state["next_fire"] - (job.trigger.start + 3600)) < 1e-6


@pytest.mark.asyncio
async def test_implicit_interval_anchor_is_shared_through_the_store(tmp_path):
    """Two schedulers add an interval job without a start date at different times:
    the second adopts the stored anchor, so both compute the same fire times."""
    path = tmp_path / "jobs.db"
    a = AsyncScheduler(jobstore=SQLiteJobStore(path))
    b = AsyncScheduler(jobstore=SQLiteJobStore(path))
    a.add_job("sched_worker:tick", "interval", seconds=0.1, id="shared", args=["anchor"])
    await a.start()
    await asyncio.sleep(0.037)
    b.add_job("sched_worker:tick", "interval", seconds=0.1, id="shared", args=["anchor"])
    await b.start()
    ja, jb = a.get_job("shared"), b.get_job("shared")
    assert ja.trigger.start == jb.trigger.start
    await asyncio.sleep(0.45)
    await a.stop()
    await b.stop()
    runs = ja.status.runs + jb.status.runs
    assert runs == len(sched_worker.CALLS["anchor"]) >= 4
    assert ja.status.claimed_elsewhere + jb.status.claimed_elsewhere >= runs - 1


@pytest.mark.asyncio
async def test_remove_and_pause_reach_other_processes(tmp_path, redis_server):
    url, p = redis_server.url, prefix()
    a = AsyncScheduler(jobstore=RedisJobStore(url, prefix=p))
    b = AsyncScheduler(jobstore=RedisJobStore(url, prefix=p))
    a.add_job("sched_worker:tick", "interval", seconds=0.05, id="x", args=["rm"])
    await a.start()
    await b.start()  # loads "x" from the store
    assert b.get_job("x") is not None
    await asyncio.sleep(0.2)
    a.pause_job("x")
    await asyncio.sleep(0.05)
    n = len(sched_worker.CALLS.get("rm", []))
    await asyncio.sleep(0.2)
    assert len(sched_worker.CALLS.get("rm", [])) == n  # b does not run it either
    a.remove_job("x")
    await asyncio.sleep(0.2)
    assert b.get_job("x") is None  # its next claim found it gone
    await a.stop()
    await b.stop()


# -- store outages ---------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["skip", "run_local"])
@pytest.mark.asyncio
async def test_redis_outage_follows_the_policy_and_recovers(own_redis, policy, caplog):
    key = f"outage-{policy}"
    s = AsyncScheduler(
        jobstore=RedisJobStore(own_redis.url, prefix=prefix(), socket_timeout=0.5),
        on_store_error=policy,
    )
    s.add_job("sched_worker:tick", "interval", seconds=0.05, id="beat", args=[key])
    await s.start()
    job = s.get_job("beat")
    await asyncio.sleep(0.3)
    before = job.status.runs
    assert before >= 4 and job.status.store_errors == 0
    with caplog.at_level(logging.WARNING, logger="ferrotick.scheduler"):
        own_redis.kill()
        t0 = time.monotonic()
        await asyncio.sleep(0.5)
        during = job.status
        stats = s.store_stats()["default"]
        assert stats["available"] is False and stats["outages"] == 1
        assert during.store_errors >= 5
        if policy == "skip":
            # nothing ran without a lease (one run may have been claimed just before)
            assert during.runs <= before + 1
        else:
            assert during.runs >= before + 5
        own_redis.start()  # same port, empty (no persistence)
        await asyncio.sleep(0.4)
    assert time.monotonic() - t0 < 3  # nothing hung
    after = job.status
    await s.stop()
    stats = s.store_stats()["default"]
    assert stats["available"] is True and stats["outages"] == 1
    assert after.runs >= during.runs + 4  # recovered: the job was written again and runs
    assert s.get_job("beat") is not None
    text = caplog.text
    assert "unreachable" in text and "reachable again" in text
    if policy == "run_local":
        assert "runs without a lease" in text


@pytest.mark.asyncio
async def test_sqlite_calls_do_not_block_the_loop(tmp_path):
    """A writer holding the database lock makes claims wait (busy timeout) in the
    store's thread; the event loop keeps running meanwhile."""
    import sqlite3

    path = tmp_path / "jobs.db"
    s = AsyncScheduler(jobstore=SQLiteJobStore(path, busy_timeout=0.5))
    s.add_job("sched_worker:tick", "interval", seconds=0.05, id="j", args=["locked"])
    await s.start()
    await asyncio.sleep(0.15)
    lock = sqlite3.connect(path, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    gaps = []
    t = time.monotonic()
    for _ in range(60):
        await asyncio.sleep(0.01)
        now = time.monotonic()
        gaps.append(now - t)
        t = now
    lock.execute("ROLLBACK")
    lock.close()
    await asyncio.sleep(0.2)
    st = s.get_job("j").status
    await s.stop()
    assert max(gaps) < 0.1
    assert st.store_errors >= 1  # claims timed out on the lock: skipped, counted
    assert s.store_stats()["default"]["available"] is True  # and recovered


# -- bad input -------------------------------------------------------------------------------


def _closure():
    async def inner() -> None:
        pass

    return inner


@pytest.mark.parametrize(
    "func, words",
    [
        (lambda: None, "importable"),
        (_closure(), "importable"),
        (sched_worker.Holder().method, "bound to an instance"),
        ("sched_worker:nope", "cannot import"),
        ("no_such_module_xyz:f", "cannot import"),
        ("not a reference", "module:qualname"),
    ],
)
def test_unimportable_callables_are_refused_naming_the_job(tmp_path, func, words):
    s = AsyncScheduler(jobstore=SQLiteJobStore(tmp_path / "j.db"))
    with pytest.raises(ConfigError) as ei:
        s.add_job(func, "interval", seconds=1, id="the-job")
    assert "the-job" in str(ei.value) and words in str(ei.value)
    assert s.get_jobs() == []


def test_storable_callables_and_arguments(tmp_path):
    s = AsyncScheduler(jobstore=SQLiteJobStore(tmp_path / "j.db"))
    s.add_job(sched_worker.Holder.static_job, daily(at="01:00"), id="static", args=["k"])
    s.add_job("sched_worker:tick", "cron", crontab="*/5 * * * *", id="text", args=["k"])
    with pytest.raises(ConfigError, match="'lock'.*args|args.*pickle"):
        s.add_job(sched_worker.tick, "interval", seconds=1, id="lock", args=[threading.Lock()])
    with pytest.raises(ConfigError, match="explicit id"):
        s.add_job(sched_worker.tick, "interval", seconds=1, args=["k"])
    # the memory store keeps today's behaviour: anything callable, no id needed
    m = AsyncScheduler()
    m.add_job(lambda: None, "interval", seconds=1)
    with pytest.raises(ConfigError, match="no job store named 'nope'"):
        m.add_job(sched_worker.tick, "interval", seconds=1, jobstore="nope")
    with pytest.raises(ConfigError, match="lease_time"):
        s.add_job(sched_worker.tick, "interval", seconds=1, id="l", lease_time=0)
    with pytest.raises(ConfigError, match="on_store_error"):
        AsyncScheduler(on_store_error="retry")
    with pytest.raises(ConfigError, match="jobstores"):
        AsyncScheduler(jobstores={"default": "redis://x"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="either"):
        AsyncScheduler(jobstore=MemoryJobStore(), jobstores={})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/0",
        "redis://127.0.0.1:notaport/0",
        "redis://:s3cret@127.0.0.1:99999/0",
        "redis://:s3cret@127.0.0.1:6379/zero",
        "redis://:s3cret@/0",
        "127.0.0.1:6379",
    ],
)
def test_store_urls_that_do_not_parse(url):
    t = time.monotonic()
    with pytest.raises(ConfigError) as ei:
        RedisJobStore(url)
    assert "RedisJobStore" in str(ei.value) and "s3cret" not in str(ei.value)
    assert time.monotonic() - t < 0.5


@pytest.mark.asyncio
async def test_a_redis_that_refuses_fails_start_promptly_without_secrets():
    port = free_port()  # nothing listens there
    store = RedisJobStore(f"redis://user:s3cret@127.0.0.1:{port}/0")
    assert "s3cret" not in repr(store) and "s3cret" not in store.url
    s = AsyncScheduler(jobstore=store)
    s.add_job("sched_worker:tick", "interval", seconds=1, id="j", args=["x"])
    t = time.monotonic()
    with pytest.raises(SchedulerError) as ei:
        await s.start()
    assert time.monotonic() - t < 2
    msg = str(ei.value)
    assert "RedisJobStore" in msg and f"127.0.0.1:{port}" in msg and "s3cret" not in msg
    assert not s.running


@pytest.mark.asyncio
async def test_a_wrong_redis_password_is_a_scheduler_error_without_the_password():
    server = RedisServer(password="right-horse")
    server.start()
    try:
        s = AsyncScheduler(
            jobstore=RedisJobStore(f"redis://:wrong-battery@127.0.0.1:{server.port}/0")
        )
        with pytest.raises(SchedulerError) as ei:
            await s.start()
        assert "wrong-battery" not in str(ei.value) and "RedisJobStore" in str(ei.value)
        ok = AsyncScheduler(jobstore=RedisJobStore(server.url, prefix=prefix()))
        await ok.start()
        await ok.stop()
    finally:
        server.kill()


@pytest.mark.asyncio
async def test_an_unusable_sqlite_path_names_the_store(tmp_path):
    bad = tmp_path / "no" / "such" / "dir" / "jobs.db"
    s = AsyncScheduler(jobstore=SQLiteJobStore(bad))
    with pytest.raises(SchedulerError, match="SQLiteJobStore.*jobs.db"):
        await s.start()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    s = AsyncScheduler(jobstore=SQLiteJobStore(junk))
    with pytest.raises(SchedulerError, match="junk.db"):
        await s.start()


@pytest.mark.asyncio
async def test_a_different_job_under_a_stored_id_needs_replace_existing(tmp_path):
    path = tmp_path / "jobs.db"
    a = AsyncScheduler(jobstore=SQLiteJobStore(path))
    a.add_job("sched_worker:tick", "interval", seconds=60, id="dup", args=["a"])
    await a.start()
    await a.stop()
    b = AsyncScheduler(jobstore=SQLiteJobStore(path))
    b.add_job("sched_worker:tick", "interval", seconds=30, id="dup", args=["a"])
    with pytest.raises(SchedulerError, match="'dup'.*replace_existing"):
        await b.start()
    c = AsyncScheduler(jobstore=SQLiteJobStore(path))
    c.add_job(
        "sched_worker:tick", "interval", seconds=30, id="dup", args=["a"], replace_existing=True
    )
    await c.start()
    await c.stop()
    d = AsyncScheduler(jobstore=SQLiteJobStore(path))
    await d.start()
    assert d.get_job("dup").trigger.interval == 30
    await d.stop()


def test_background_scheduler_with_a_store(tmp_path):
    bad = BackgroundScheduler(jobstore=SQLiteJobStore(tmp_path / "no" / "dir" / "x.db"))
    with pytest.raises(SchedulerError, match="SQLiteJobStore"):
        bad.start()  # raised in the caller's thread, nothing left running
    assert not bad.running
    path = tmp_path / "jobs.db"
    with BackgroundScheduler(jobstores={"default": SQLiteJobStore(path)}) as s:
        s.add_job("sched_worker:tick_sync", "interval", seconds=0.05, id="bg", args=["bg"])
        time.sleep(0.3)
        assert s.get_job("bg").status.runs >= 3
        assert s.store_stats()["default"]["won"] >= 3
    assert len(sched_worker.CALLS["bg"]) >= 3


@pytest.mark.asyncio
async def test_memory_store_is_the_default_and_needs_no_claims():
    s = AsyncScheduler()
    s.add_job(sched_worker.tick, IntervalTrigger(seconds=0.05), args=["mem"])
    await s.start()
    await asyncio.sleep(0.2)
    await s.stop()
    assert s.store_stats() == {
        "default": {
            "claims": 0,
            "won": 0,
            "claimed_elsewhere": 0,
            "lost": 0,
            "errors": 0,
            "outages": 0,
            "available": True,
        }
    }
    assert len(sched_worker.CALLS["mem"]) >= 3


def test_processes_opening_a_new_sqlite_file_at_once(tmp_path):
    """Switching a new file to WAL fails with 'database is locked' while another
    connection does the same; the store retries within its busy timeout."""

    def open_close(path: Path, errors: list[BaseException]) -> None:
        async def run() -> None:
            store = SQLiteJobStore(path)
            await store.open()
            await store.close()

        try:
            asyncio.run(run())
        except BaseException as e:
            errors.append(e)

    for i in range(5):
        errors: list[BaseException] = []
        path = tmp_path / f"fresh{i}.db"
        threads = [threading.Thread(target=open_close, args=(path, errors)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
