"""The monitoring and alerting service of seed 001's plan: a service exposing
``/metrics`` and ``/health``, metrics fed by real work against the exchange, and an
alert rule evaluated on those metrics that fires during an incident and clears after.

    python examples/monitoring_alerting.py [--phase 3.5] [--error-rate 0.3]

Everything runs in this process (no network): ferrotick's simulated exchange, a FastAPI
app with ferrotick's ``metrics_router`` served by uvicorn on loopback, the workers and
the rule evaluator on the same event loop. Three phases of ``--phase`` seconds at least:

1. normal: a poller asks the exchange for prices and books, the pipeline
   (``AsyncDataProcessor``) analyses a few symbols every half second;
2. incident: the simulator answers ``--error-rate`` of requests with 5xx
   (``ex.set_faults(error_rate=...)``), until the alert fires;
3. recovered: faults off, until the alert resolves.

Every request is counted in ``exchange_requests_total{endpoint,outcome}`` and timed in
``exchange_request_duration_seconds{endpoint}``; the pipeline records its stages in the
performance monitor's ``async_operation_duration_seconds{operation_type}``. A scheduler
job scrapes ``/metrics`` over HTTP every ``--eval`` seconds, as Prometheus would, and
evaluates the rule "error ratio over the last 2 s above ``--threshold`` for two
evaluations in a row": the alert fires in phase 2 and resolves in phase 3. Its state is
itself a metric (``alert_firing{alert}``) and one of the ``/health`` checks, so
``/health`` answers 503 while it fires.

How ferrotick changes the usual code: the usual service pairs prometheus_client (whose
``Histogram.time()`` on an ``async def`` times only the coroutine's creation) with a
hand-written health endpoint and a thread-based poller. Here the metrics live in Rust
behind prometheus_client's API, ``track_operation`` times awaits correctly, the
pipeline, HTTP client and scheduler publish their own series into the same registry,
and ``metrics_router`` gives the endpoints in one line.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import re
import sys
import time
from typing import Any

import uvicorn
from fastapi import FastAPI

from ferrotick import ExchangeError, FerrotickError, TaskManager
from ferrotick.exchange import BinanceConfig, OptimizedBinanceClient
from ferrotick.fastapi import metrics_router
from ferrotick.http import AsyncHTTPClient
from ferrotick.monitor import AsyncHealthChecker, Counter, Gauge, Histogram, get_async_monitor
from ferrotick.pipeline import AsyncConfig, AsyncDataProcessor
from ferrotick.scheduler import AsyncScheduler, IntervalTrigger
from ferrotick.sim import SimulatedExchange

log = logging.getLogger("monitoring")

SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
RULE = "exchange_error_rate"

REQUESTS = Counter(
    "exchange_requests_total", "Exchange requests by endpoint and outcome", ["endpoint", "outcome"]
)
LATENCY = Histogram("exchange_request_duration_seconds", "Exchange request duration", ["endpoint"])
ALERT = Gauge("alert_firing", "1 while the alert fires", ["alert"])

SAMPLE = re.compile(r'^exchange_requests_total\{[^}]*outcome="(\w+)"[^}]*\} (\S+)$', re.M)


async def observed(endpoint: str, call: Any) -> Any:
    """Awaits one exchange call, counting and timing it; errors are counted, not raised."""
    t0 = time.perf_counter()
    try:
        result = await call
    except (ExchangeError, FerrotickError) as e:
        REQUESTS.labels(endpoint, "error").inc()
        log.debug("%s failed: %s", endpoint, e)
        return None
    finally:
        LATENCY.labels(endpoint).observe(time.perf_counter() - t0)
    REQUESTS.labels(endpoint, "ok").inc()
    return result


async def poll(client: OptimizedBinanceClient, every: float) -> None:
    """The poller: prices and top of book of every symbol, ``every`` seconds."""
    monitor = get_async_monitor()
    while True:
        async with monitor.track_operation("poll"):
            await asyncio.gather(
                *(observed("ticker_price", client.get_ticker_price(s)) for s in SYMBOLS),
                *(observed("depth", client.get_order_book(s, limit=5)) for s in SYMBOLS),
            )
        await asyncio.sleep(every)


async def analyse(processor: AsyncDataProcessor, every: float) -> None:
    """The pipeline: a few symbols through fetch, resample and the analyzers."""
    while True:
        await processor.process_symbols_parallel(SYMBOLS)
        await asyncio.sleep(every)


class ErrorRateRule:
    """Fires when the error ratio over ``window`` seconds stays above ``threshold`` for
    ``for_evals`` evaluations, resolves when it stays below for as many."""

    def __init__(self, url: str, threshold: float, window: float, for_evals: int = 2) -> None:
        self.url = url
        self.threshold = threshold
        self.window = window
        self.for_evals = for_evals
        self.samples: collections.deque[tuple[float, float, float]] = collections.deque()
        self.streak = 0
        self.firing = False
        self.t0 = time.monotonic()
        self.events: list[str] = []
        self.http = AsyncHTTPClient(timeout=2.0)
        ALERT.labels(RULE).set(0)

    async def scrape(self) -> tuple[float, float]:
        resp = await self.http.get(self.url)
        resp.raise_for_status()
        totals = collections.Counter[str]()
        for outcome, value in SAMPLE.findall(await resp.text()):
            totals[outcome] += float(value)
        return totals["ok"] + totals["error"], totals["error"]

    async def evaluate(self) -> None:
        now = time.monotonic()
        total, errors = await self.scrape()
        self.samples.append((now, total, errors))
        while self.samples[0][0] < now - self.window:
            self.samples.popleft()
        _, total0, errors0 = self.samples[0]
        ratio = (errors - errors0) / (total - total0) if total > total0 else 0.0
        breach = ratio > self.threshold
        self.streak = self.streak + 1 if breach != self.firing else 0
        if self.streak >= self.for_evals:
            self.firing, self.streak = breach, 0
            ALERT.labels(RULE).set(1 if breach else 0)
            state = "FIRING" if breach else "RESOLVED"
            line = (
                f"alert {RULE} {state} at t={now - self.t0:.1f}s: error ratio {ratio:.0%} "
                f"over {self.window:g} s ({'>' if breach else '<='} {self.threshold:.0%})"
            )
            self.events.append(line)
            print(f"  {line}", flush=True)  # the alert sink: stdout, and the events list

    async def close(self) -> None:
        await self.http.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--phase", type=float, default=3.5, help="seconds per phase")
    p.add_argument("--error-rate", type=float, default=0.3, help="5xx share in the incident")
    p.add_argument("--threshold", type=float, default=0.1, help="alert above this error ratio")
    p.add_argument("--eval", type=float, default=0.5, help="seconds between rule evaluations")
    p.add_argument("--port", type=int, default=0, help="HTTP port (0: a free one)")
    return p.parse_args(argv)


async def start_server(app: FastAPI, port: int) -> tuple[uvicorn.Server, asyncio.Task[Any], int]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why the server did not start
        await asyncio.sleep(0.02)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


async def get_health(http: AsyncHTTPClient, base: str) -> str:
    resp = await http.get(f"{base}/health")
    body = await resp.json()
    failed = sorted(k for k, ok in body["checks"].items() if not ok)
    return f"/health {resp.status} {body['status']}" + (f" (failing: {failed})" if failed else "")


def counts() -> tuple[int, int]:
    ok = err = 0
    for ep in ("ticker_price", "depth"):
        ok += int(REQUESTS.labels(ep, "ok").get())
        err += int(REQUESTS.labels(ep, "error").get())
    return ok + err, err


async def run(args: argparse.Namespace) -> int:
    async with SimulatedExchange(SYMBOLS, book_levels=200) as ex:
        config = BinanceConfig(base_url=ex.base_url, max_retries=0, timeout=2.0)
        async with OptimizedBinanceClient(config) as client:
            processor = AsyncDataProcessor(
                AsyncConfig(retry_attempts=0), client=client, bars=600, timeframes=["5m", "15m"]
            )
            tasks = TaskManager()
            health = AsyncHealthChecker(timeout=2.0)
            health.add_check("workers", lambda: len(tasks.tasks("workers")) == 2)
            app = FastAPI()
            app.include_router(metrics_router(health_checker=health))
            server, serve_task, port = await start_server(app, args.port)
            base = f"http://127.0.0.1:{port}"
            print(f"serving {base}/metrics and {base}/health")

            rule = ErrorRateRule(f"{base}/metrics", args.threshold, window=2.0)
            health.add_check("no_alert_firing", lambda: not rule.firing)
            tasks.create_task(poll(client, 0.05), name="poller", group="workers")
            tasks.create_task(analyse(processor, 0.5), name="pipeline", group="workers")
            scheduler = AsyncScheduler()
            scheduler.add_job(
                rule.evaluate, IntervalTrigger(seconds=args.eval), id="rules", max_instances=1
            )
            await scheduler.start()
            http = AsyncHTTPClient(timeout=2.0)
            statuses: list[str] = []
            try:
                # the incident lasts until the alert fires, recovery until it
                # resolves: at least --phase seconds each, at most three times that
                for name, rate, until in (
                    ("normal", 0.0, None),
                    ("incident", args.error_rate, True),
                    ("recovered", 0.0, False),
                ):
                    ex.set_faults(error_rate=rate)
                    before, t0 = counts(), time.monotonic()
                    await asyncio.sleep(args.phase)
                    while until is not None and rule.firing != until:
                        if time.monotonic() - t0 > 3 * args.phase:
                            break
                        await asyncio.sleep(args.eval / 5)
                    n, e = (a - b for a, b in zip(counts(), before, strict=True))
                    status = await get_health(http, base)
                    statuses.append(status.split()[1])
                    print(
                        f"phase {name:9s} (error_rate={rate:g}) {time.monotonic() - t0:.1f} s: "
                        f"{n} requests, {e} errors; {status}"
                    )
                metrics = await (await http.get(f"{base}/metrics")).text()
            finally:
                await scheduler.stop()
                await tasks.shutdown(timeout=5)
                await http.close()
                await rule.close()
                await processor.close()
                server.should_exit = True
                await serve_task

    shown = ("exchange_requests_total{", "alert_firing{", 'operation_type="fetch"}')
    for line in metrics.splitlines():
        if line.startswith(shown[:2]) or (
            line.startswith("async_operation_duration_seconds_count") and shown[2] in line
        ):
            print(f"  {line}")
    fired = any("FIRING" in e for e in rule.events)
    resolved = bool(rule.events) and "RESOLVED" in rule.events[-1]
    print(f"summary: alert fired={fired} resolved={resolved}; /health by phase {statuses}")
    return 0 if fired and resolved and statuses == ["200", "503", "200"] else 1


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="  %(levelname)s %(name)s: %(message)s")
    # the pipeline logs each symbol it could not fetch during the incident; the
    # metrics and the alert are the report here
    logging.getLogger("ferrotick.pipeline").setLevel(logging.ERROR)
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
