"""What the HTTP client and the scheduler publish to the default registry.

Live ``AsyncHTTPClient`` and ``AsyncScheduler`` objects register themselves here
(weakly: a closed or collected object disappears from the exposition). At scrape
time their figures become Prometheus families:

* ``ferrotick_http_client_in_flight{client,host}``, ``..._waiting{client,host}``
  (requests waiting for a connection slot), ``..._requests_total``,
  ``..._retries_total``, ``..._errors_total``, ``..._pool_waits_total`` and
  ``..._pool_wait_seconds_total``, ``..._open_connections``, ``..._idle_connections``,
  ``..._limiter_waits_total`` and ``..._limiter_wait_seconds_total`` per host, and
  ``ferrotick_http_client_breaker_open{client,host}``;
* ``ferrotick_scheduler_job_runs_total{scheduler,job}``, ``..._errors_total``,
  ``..._misses_total``, ``..._skips_total``, ``..._running`` and
  ``ferrotick_scheduler_job_next_run_timestamp_seconds``;
* ``ferrotick_managed_tasks{group}`` (live tasks of every ``TaskManager``) and
  ``ferrotick_managed_task_errors_total{group}`` (managed tasks that raised).
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any

_clients: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_schedulers: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_task_managers: weakref.WeakSet[Any] = weakref.WeakSet()
_ids = itertools.count(1)


def publish_client(client: Any) -> str:
    name = f"client{next(_ids)}"
    _clients[name] = client
    return name


def publish_scheduler(scheduler: Any) -> str:
    name = f"scheduler{next(_ids)}"
    _schedulers[name] = scheduler
    return name


def publish_task_manager(manager: Any) -> None:
    _task_managers.add(manager)


def _task_families() -> list[dict[str, Any]]:
    live: dict[str, int] = {}
    errors: dict[str, int] = {}
    for manager in list(_task_managers):
        for group, n in manager.live_counts().items():
            live[group] = live.get(group, 0) + n
        for group, n in list(manager.errors.items()):
            errors[group] = errors.get(group, 0) + n
    families = []
    if live or errors:
        # a group seen once keeps a (zero) live series, so graphs do not break off
        for group in errors:
            live.setdefault(group, 0)
        families.append(
            _family(
                "ferrotick_managed_tasks",
                "gauge",
                "Live tasks held by ferrotick TaskManagers.",
                [("", {"group": g}, float(n)) for g, n in sorted(live.items())],
            )
        )
    if errors:
        families.append(
            _family(
                "ferrotick_managed_task_errors",
                "counter",
                "Managed tasks that ended with an exception.",
                [("_total", {"group": g}, float(n)) for g, n in sorted(errors.items())],
            )
        )
    return families


def _family(
    name: str, kind: str, help: str, samples: list[tuple[str, dict[str, str], float]]
) -> dict[str, Any]:
    return {"name": name, "type": kind, "help": help, "samples": samples}


def collect() -> list[dict[str, Any]]:  # noqa: C901 (one family per client statistic, written out as they appear in the exposition)
    families: list[dict[str, Any]] = []
    http_rows: dict[str, list[tuple[str, dict[str, str], float]]] = {}

    def add(key: str, suffix: str, labels: dict[str, str], value: float) -> None:
        http_rows.setdefault(key, []).append((suffix, labels, float(value)))

    for cname, client in list(_clients.items()):
        try:
            if client.closed:
                continue
            stats = client.stats()
        except Exception:  # a client being torn down
            continue
        for host, h in stats.get("hosts", {}).items():
            labels = {"client": cname, "host": host}
            add("in_flight", "", labels, h["in_flight"])
            add("waiting", "", labels, h["waiting"])
            add("requests", "_total", labels, h["requests"])
            add("retries", "_total", labels, h["retries"])
            add("errors", "_total", labels, h["errors"])
            add("pool_waits", "_total", labels, h["pool_waits"])
            add("pool_wait_seconds", "_total", labels, h["pool_wait_seconds"])
            add("breaker_open", "", labels, 1.0 if h.get("breaker") == "open" else 0.0)
            if h.get("open") is not None:
                add("open_connections", "", labels, h["open"])
                add("idle_connections", "", labels, h["idle"])
            add("limiter_waits", "_total", labels, h.get("limiter_waits", 0))
            add("limiter_wait_seconds", "_total", labels, h.get("limiter_wait_seconds", 0.0))
    helps = {
        "in_flight": ("gauge", "HTTP requests holding a connection slot."),
        "waiting": ("gauge", "HTTP requests waiting for a connection slot."),
        "requests": ("counter", "HTTP requests sent (logical requests, retries excluded)."),
        "retries": ("counter", "HTTP request retries."),
        "errors": ("counter", "HTTP requests that failed after retries."),
        "pool_waits": ("counter", "Requests that had to wait for a connection slot."),
        "pool_wait_seconds": ("counter", "Time spent waiting for connection slots."),
        "breaker_open": ("gauge", "1 while the host's circuit breaker is open."),
        "open_connections": ("gauge", "Connections to the host this process holds open."),
        "idle_connections": ("gauge", "Open connections to the host not serving a request."),
        "limiter_waits": ("counter", "Requests that waited for an attached rate limiter."),
        "limiter_wait_seconds": ("counter", "Time spent waiting for attached rate limiters."),
    }
    for key, (kind, help) in helps.items():
        if key in http_rows:
            families.append(_family(f"ferrotick_http_client_{key}", kind, help, http_rows[key]))

    job_rows: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for sname, scheduler in list(_schedulers.items()):
        try:
            jobs = scheduler.get_jobs()
        except Exception:
            continue
        for job in jobs:
            st = job.status
            labels = {"scheduler": sname, "job": str(job.id)}
            for key, value in (
                ("runs", st.runs),
                ("errors", st.errors),
                ("misses", st.misses),
                ("skips", st.skips),
            ):
                job_rows.setdefault(key, []).append(("_total", labels, float(value)))
            job_rows.setdefault("running", []).append(("", labels, float(st.running)))
            if st.next_run_time is not None:
                job_rows.setdefault("next_run_timestamp_seconds", []).append(
                    ("", labels, st.next_run_time.timestamp())
                )
    job_helps = {
        "runs": ("counter", "Job runs (finished, with or without error)."),
        "errors": ("counter", "Job runs that raised."),
        "misses": ("counter", "Firings dropped by misfire_grace_time."),
        "skips": ("counter", "Firings skipped by max_instances."),
        "running": ("gauge", "Instances of the job running now."),
        "next_run_timestamp_seconds": ("gauge", "Next run time of the job (unix seconds)."),
    }
    for key, (kind, help) in job_helps.items():
        if key in job_rows:
            families.append(_family(f"ferrotick_scheduler_job_{key}", kind, help, job_rows[key]))
    families.extend(_task_families())
    return families
