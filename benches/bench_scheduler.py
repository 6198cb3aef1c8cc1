"""The scheduler: punctuality and cost per firing, against APScheduler 3.x and a raw
asyncio loop.

These benchmarks measure lateness, not throughput, so each contender returns
``Measurement(wall=<lateness statistic in seconds>, cpu=<process CPU seconds per
firing>, ops=1)``: the runner's "time per <unit>" column is then the lateness
statistic (its "rate" column, 1 / lateness, has no meaning here), its "CPU per
<unit>" column is the CPU cost of one firing, and the ratio (peer / ferrotick) is
how many times later the peer fires.

Lateness is measured inside the job body: ``time.time()`` at its first line minus the
job's nominal fire time. Every contender runs in a fresh event loop (stdlib
asyncio) and the runner alternates them from round to round.

Contenders
  - ferrotick: ``AsyncScheduler`` on the real clock (Rust timer thread).
  - APScheduler 3.x ``AsyncIOScheduler`` (its default AsyncIOExecutor), with
    ``misfire_grace_time=None`` so that it drops nothing.
  - raw asyncio: one task per job, ``await asyncio.sleep(next - time.time())``.

Both schedulers get the same job options: ``coalesce=False`` (every fire time runs,
so the k-th run of a job is its k-th nominal time) and a high ``max_instances``.
Fire times that have not run when the measurement stops count with the lateness
they had reached by then (a lower bound), so a contender cannot gain by falling
behind.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import math
import sys
import time

from run import Benchmark, Measurement

from ferrotick.scheduler import AsyncScheduler, DateTrigger, IntervalTrigger

try:  # APScheduler 3.x (pip install "apscheduler<4")
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.date import DateTrigger as APDateTrigger
    from apscheduler.triggers.interval import IntervalTrigger as APIntervalTrigger
except ImportError:  # pragma: no cover
    AsyncIOScheduler = None

UTC = dt.timezone.utc
INTERVAL = 0.1
MAX_INSTANCES = 1000


def _utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, UTC)


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def _run_in_fresh_loop(coro_fn, *args) -> Measurement:
    gc.collect()
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro_fn(*args))
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


# -- (a) many interval jobs --------------------------------------------------------------


class IntervalPlan:
    """n jobs every INTERVAL from spread start times for `duration` seconds."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.duration = 5.0 if n >= 1000 else 1.0
        lead = 0.3 + n * 0.0005  # time to set every contender up before the first firing
        self.first = time.time() + lead
        self.starts = [self.first + INTERVAL * j / n for j in range(n)]
        # halfway between two nominal times, so that float rounding cannot move one across
        self.end = self.first + self.duration - INTERVAL / (2 * n)
        self.expected = [math.floor((self.end - s) / INTERVAL) + 1 for s in self.starts]
        self.total = sum(self.expected)
        self.lateness: list[float] = []
        self.counts = [0] * n

    def body(self, j: int):
        start = self.starts[j]
        lat = self.lateness
        counts = self.counts

        async def job() -> None:
            now = time.time()
            k = counts[j]
            counts[j] = k + 1
            lat.append(now - (start + k * INTERVAL))

        return job

    async def until_first(self) -> None:
        """Idles until just before the first firing: the CPU window starts there."""
        await asyncio.sleep(max(0.0, self.first - 0.02 - time.time()))

    async def wait_done(self) -> float:
        """Waits until every nominal fire time ran (or a cap); returns when it stopped."""
        cap = self.end + max(2.0, self.duration)
        while len(self.lateness) < self.total and time.time() < cap:
            await asyncio.sleep(0.01)
        return time.time()

    def result(self, label: str, cpu: float, stopped: float) -> Measurement:
        lat = list(self.lateness)
        missing = 0
        for j, (done, exp) in enumerate(zip(self.counts, self.expected, strict=True)):
            for k in range(done, exp):
                lat.append(stopped - (self.starts[j] + k * INTERVAL))
                missing += 1
        if missing:
            print(f"    [{label}] {missing} of {self.total} firings had not run", file=sys.stderr)
        return Measurement(wall=_percentile(lat, 0.99), cpu=cpu / max(1, len(self.lateness)), ops=1)

    def check_lead(self, label: str) -> None:
        if time.time() >= self.first:
            raise RuntimeError(f"{label}: setup took longer than the lead time")


async def _interval_ferrotick(n: int) -> Measurement:
    plan = IntervalPlan(n)
    s = AsyncScheduler(timezone="UTC")
    await s.start()
    end = _utc(plan.end)
    for j in range(n):
        s.add_job(
            plan.body(j),
            IntervalTrigger(seconds=INTERVAL, start_date=_utc(plan.starts[j]), end_date=end),
            coalesce=False,
            max_instances=MAX_INSTANCES,
            misfire_grace_time=None,
        )
    plan.check_lead("ferrotick")
    await plan.until_first()
    c0 = time.process_time()
    stopped = await plan.wait_done()
    cpu = time.process_time() - c0
    await s.stop(wait=False)
    return plan.result("ferrotick", cpu, stopped)


async def _interval_apscheduler(n: int) -> Measurement:
    plan = IntervalPlan(n)
    s = AsyncIOScheduler(timezone=UTC)
    s.start()
    end = _utc(plan.end)
    for j in range(n):
        s.add_job(
            plan.body(j),
            APIntervalTrigger(seconds=INTERVAL, start_date=_utc(plan.starts[j]), end_date=end),
            coalesce=False,
            max_instances=MAX_INSTANCES,
            misfire_grace_time=None,
        )
    plan.check_lead("APScheduler")
    await plan.until_first()
    c0 = time.process_time()
    stopped = await plan.wait_done()
    cpu = time.process_time() - c0
    s.shutdown(wait=False)
    await asyncio.sleep(0.01)
    return plan.result("APScheduler", cpu, stopped)


async def _interval_raw(n: int) -> Measurement:
    plan = IntervalPlan(n)

    async def loop_job(j: int) -> None:
        body = plan.body(j)
        start = plan.starts[j]
        k = 0
        while True:
            nxt = start + k * INTERVAL
            if nxt > plan.end:
                return
            delay = nxt - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await body()
            k += 1

    tasks = [asyncio.ensure_future(loop_job(j)) for j in range(n)]
    plan.check_lead("raw asyncio")
    await plan.until_first()
    c0 = time.process_time()
    stopped = await plan.wait_done()
    cpu = time.process_time() - c0
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return plan.result("raw asyncio", cpu, stopped)


# -- (b) many jobs due at the same instant -----------------------------------------------


class SamePlan:
    def __init__(self, n: int) -> None:
        self.n = n
        self.due = time.time() + 0.3 + n * 0.0005
        self.lateness: list[float] = []

    async def job(self) -> None:
        self.lateness.append(time.time() - self.due)

    async def until_due(self) -> None:
        """Idles until just before the due instant: the CPU window starts there."""
        await asyncio.sleep(max(0.0, self.due - 0.02 - time.time()))

    async def wait_done(self) -> None:
        cap = self.due + 10.0
        while len(self.lateness) < self.n and time.time() < cap:
            await asyncio.sleep(0.005)
        if len(self.lateness) < self.n:
            raise RuntimeError(f"only {len(self.lateness)} of {self.n} jobs ran")

    def result(self, cpu: float) -> Measurement:
        # how late the last job started; CPU per job
        return Measurement(wall=max(self.lateness), cpu=cpu / self.n, ops=1)


async def _same_ferrotick(n: int) -> Measurement:
    plan = SamePlan(n)
    s = AsyncScheduler(timezone="UTC")
    await s.start()
    run_date = _utc(plan.due)
    for _ in range(n):
        s.add_job(plan.job, DateTrigger(run_date), max_instances=MAX_INSTANCES)
    await plan.until_due()
    c0 = time.process_time()
    await plan.wait_done()
    cpu = time.process_time() - c0
    await s.stop(wait=False)
    return plan.result(cpu)


async def _same_apscheduler(n: int) -> Measurement:
    plan = SamePlan(n)
    s = AsyncIOScheduler(timezone=UTC)
    s.start()
    run_date = _utc(plan.due)
    for _ in range(n):
        s.add_job(
            plan.job,
            APDateTrigger(run_date=run_date),
            misfire_grace_time=None,
            max_instances=MAX_INSTANCES,
        )
    await plan.until_due()
    c0 = time.process_time()
    await plan.wait_done()
    cpu = time.process_time() - c0
    s.shutdown(wait=False)
    await asyncio.sleep(0.01)
    return plan.result(cpu)


async def _same_raw(n: int) -> Measurement:
    plan = SamePlan(n)

    async def one() -> None:
        delay = plan.due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await plan.job()

    tasks = [asyncio.ensure_future(one()) for _ in range(n)]
    await plan.until_due()
    c0 = time.process_time()
    await plan.wait_done()
    cpu = time.process_time() - c0
    await asyncio.gather(*tasks)
    return plan.result(cpu)


def _contender(fn):
    return lambda n: _run_in_fresh_loop(fn, n)


BENCHMARKS = []
if AsyncIOScheduler is not None:
    BENCHMARKS.append(
        Benchmark(
            name="scheduler_interval_lateness",
            description=(
                "1,000 interval jobs every 100 ms for 5 s (quick: 100 jobs for 1 s), start times "
                "spread evenly over the 100 ms, `coalesce=False`, `misfire_grace_time=None`. "
                "**Time per firing = p99 lateness** of the job body against its nominal fire time "
                "(the rate column is 1 / that and means nothing); **CPU per firing** = process "
                "CPU time (all threads, Rust timer included) from 20 ms before the first firing until "
                "the last one ran / firings. Targets: "
                "p99 lateness at most 0.5x APScheduler's (ratio >= 2) and no worse than the raw "
                "asyncio loop's (ratio >= 1); CPU per firing at most 0.5x APScheduler's (compare "
                'the CPU column). The runner\'s "firings per round" line counts jobs (each fires '
                "about 50 times in the full run, 10 in the quick one)."
            ),
            contenders={
                "ferrotick": _contender(_interval_ferrotick),
                "APScheduler 3 AsyncIOScheduler": _contender(_interval_apscheduler),
                "raw asyncio sleep-until loop": _contender(_interval_raw),
            },
            ops=1000,
            quick_ops=100,
            targets={"APScheduler 3 AsyncIOScheduler": 2.0, "raw asyncio sleep-until loop": 1.0},
            unit="firing",
        )
    )
    BENCHMARKS.append(
        Benchmark(
            name="scheduler_simultaneous_start",
            description=(
                "1,000 one-shot jobs (DateTrigger) due at the same instant (quick: 100). "
                "**Time per job = how late the last job body starts** after the due instant; "
                "**CPU per job** = process CPU time from 20 ms before the instant until the last job "
                "ran / jobs. Target: at most 0.3x APScheduler's (ratio >= 3.33); the raw asyncio "
                "loop (one sleeping task per job) is shown for reference."
            ),
            contenders={
                "ferrotick": _contender(_same_ferrotick),
                "APScheduler 3 AsyncIOScheduler": _contender(_same_apscheduler),
                "raw asyncio sleep-until loop": _contender(_same_raw),
            },
            ops=1000,
            quick_ops=100,
            targets={"APScheduler 3 AsyncIOScheduler": 3.33},
            unit="job",
        )
    )
