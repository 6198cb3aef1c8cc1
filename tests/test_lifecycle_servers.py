"""The examples started for real: uvicorn (FastAPI) and gunicorn with 2 workers and
--preload (Flask); exercised over HTTP, stopped with SIGTERM, and checked for a clean,
ordered stop in their logs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from conftest import free_port

import ferrotick

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BAD = ("Traceback", "Task was destroyed but it is pending", "exception was never retrieved")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    pkg = str(Path(ferrotick.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([pkg, env.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.communicate()[1]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"server did not listen: {proc.communicate()[1]}")


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"no exit within 60 s after SIGTERM:\n{err}") from None
    return proc.returncode, err


def _in_order(log: str, steps: list[str]) -> None:
    pos = -1
    for step in steps:
        i = log.find(step, pos + 1)
        assert i > pos, f"{step!r} missing or out of order in:\n{log}"
        pos = i


def _clean(log: str) -> None:
    for bad in BAD:
        assert bad not in log, f"{bad!r} in the server log:\n{log}"


SHUTDOWN = [
    "schedulers stopped",
    "cleaned up analyzer 'analysis'",
    "price feed stopped (1 feed task(s) cancelled)",
    "cleaned up service 'prices'",
    "embedded simulated exchange stopped",
    "cleaned up service 'exchange'",
    "service container cleaned up",
    "memory monitoring stopped",
    "async performance monitoring stopped",
    "managed tasks stopped",
    "shared clients closed",
    "service shutdown complete",
]


def test_fastapi_analysis_service_under_uvicorn():
    """The example: ferrotick.service's app with a price feed of its own that
    depends on the service's exchange."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "serve.py", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=EXAMPLES / "analysis_service",
    )
    try:
        _wait_port(port, proc)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as http:
            deadline = time.monotonic() + 10
            while http.get("/price/BTCUSDT").json()["price"] is None:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert http.get("/price/BTCUSDT").json()["price"] > 0
            assert http.get("/price/XXX").status_code == 404
            analysis = http.get("/analyze/BTCUSDT", params={"bars": 600})
            assert analysis.status_code == 200, analysis.text
            assert set(analysis.json()["results"]) == {"market_regime", "multi_timeframe"}
            health = http.get("/health")
            assert health.status_code == 200, health.text
            checks = health.json()["checks"]
            assert checks["prices"] is True and checks["exchange"] is True, checks
            metrics = http.get("/metrics").text
            assert 'ferrotick_managed_tasks{group="feeds"} 1' in metrics
            perf = http.get("/async-performance").json()
            assert perf["prices.poll"]["count"] >= 1
            assert perf["service.analyze"]["count"] == 1
            tasks = list(http.get("/tasks").json().values())
            assert [t["name"] for t in tasks if not t["done"]] == ["price-refresh"]
    finally:
        rc, log = _stop(proc)
    assert rc == 0, log
    _in_order(
        log,
        [
            "embedded simulated exchange at",
            "initialized service 'exchange'",
            "price feed started",
            "initialized service 'prices'",
            "initialized analyzer 'analysis'",
            "service container initialized",
            "memory monitoring started",
            "async performance monitoring started",
            "schedulers initialized and started: effectiveness_scheduler",
            "service initialization complete",
            "Application startup complete",
            *SHUTDOWN,
        ],
    )
    _clean(log)


FLASK_SHUTDOWN = [
    "quotes service stopped (1 task(s) cancelled)",
    "cleaned up service 'quotes'",
    "service container cleaned up",
    "memory monitoring stopped",
    "async performance monitoring stopped",
    "managed tasks stopped",
    "shared clients closed",
    "service shutdown complete",
]


def test_flask_app_under_gunicorn_preload_two_workers():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-w", "2", "--preload",
         "-b", f"127.0.0.1:{port}", "app:app"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
        cwd=EXAMPLES / "flask_app",
    )  # fmt: skip
    pids: set[str] = set()
    try:
        _wait_port(port, proc)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for _ in range(20):  # new connections: both workers take some
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as one:
                    assert one.get("/quote").status_code == 200
            r = http.get("/async-quote")
            assert r.status_code == 200 and r.json()["tasks"] == 1
            metrics = http.get("/metrics").text
            assert 'http_request_duration_seconds_count{method="GET",route="/quote"' in metrics
    finally:
        rc, log = _stop(proc)
    assert rc == 0, log
    for line in log.splitlines():
        if "service initialization complete" in line:
            pids.add(line.split()[2])
    assert pids, log
    for pid in pids:  # every worker that started its loop stopped it, in order
        mine = "\n".join(ln for ln in log.splitlines() if f" {pid} " in ln)
        _in_order(mine, ["initialized service 'quotes'", "service initialization complete"])
        _in_order(mine, FLASK_SHUTDOWN)
    # the master never started a loop (--preload imports the app before the fork)
    assert log.count("service initialization complete") == len(pids)
    _clean(log)
