"""The HTTP client and the scheduler publish their figures to the default registry."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc

from prometheus_client.parser import text_string_to_metric_families

from ferrotick import AsyncHTTPClient
from ferrotick.monitor import generate_latest
from ferrotick.scheduler import AsyncScheduler, ManualClock, daily


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_scheduler_job_figures_are_exposed():
    async def main():
        clock = ManualClock(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
        async with AsyncScheduler(clock=clock, timezone="UTC") as s:

            async def job():
                return None

            async def bad():
                raise ValueError("x")

            s.add_job(job, daily(at="00:30"), id="report")
            s.add_job(bad, daily(at="01:00"), id="bad")
            await clock.advance(3 * 86400)
            return s.metrics_name, _samples(generate_latest().decode())

    name, samples = asyncio.run(main())
    runs = samples[("ferrotick_scheduler_job_runs_total", (("job", "report"), ("scheduler", name)))]
    errors = samples[
        ("ferrotick_scheduler_job_errors_total", (("job", "bad"), ("scheduler", name)))
    ]
    assert runs == 3.0 and errors == 3.0
    nxt = samples[
        (
            "ferrotick_scheduler_job_next_run_timestamp_seconds",
            (("job", "report"), ("scheduler", name)),
        )
    ]
    assert nxt == dt.datetime(2026, 1, 4, 0, 30, tzinfo=dt.timezone.utc).timestamp()


def test_http_client_figures_are_exposed_while_it_lives():
    async def main():
        client = AsyncHTTPClient()
        try:
            await client.get("http://127.0.0.1:9/")  # the discard port: nothing listens
        except Exception:
            pass
        return client

    client = asyncio.run(main())
    samples = _samples(generate_latest().decode())
    key = (
        "ferrotick_http_client_errors_total",
        (("client", client.metrics_name), ("host", "http://127.0.0.1:9")),
    )
    assert samples[key] == 1.0
    labels = (("client", client.metrics_name), ("host", "http://127.0.0.1:9"))
    # nothing connected: no connection held; no limiter attached: no waits
    assert samples[("ferrotick_http_client_open_connections", labels)] == 0.0
    assert samples[("ferrotick_http_client_idle_connections", labels)] == 0.0
    assert samples[("ferrotick_http_client_limiter_waits_total", labels)] == 0.0
    name = client.metrics_name
    del client
    gc.collect()
    assert not any(n[1] and ("client", name) in n[1] for n in _samples(generate_latest().decode()))
