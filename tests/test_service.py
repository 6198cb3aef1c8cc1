"""`ferrotick serve` started for real as a subprocess (one worker, two workers, a
configured exchange), every endpoint called over HTTP, stopped with SIGINT; and the
command's one-line failures (bad config, unreachable exchange, taken port)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from conftest import free_port

import ferrotick
from ferrotick.pipeline import REGIMES
from ferrotick.sim import SimulatedExchange

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

BAD = ("Traceback", "Task was destroyed but it is pending", "exception was never retrieved")
HOUR = 3_600_000
T0 = 1_700_000_000_000


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "FERROTICK_CONFIG" and not k.startswith("FERROTICK_SERVE_")
    }
    pkg = str(Path(ferrotick.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([pkg, os.environ.get("PYTHONPATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Server:
    """``ferrotick serve`` in a subprocess, its stderr read as it comes."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ferrotick", "serve", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def wait_log(self, text: str, count: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.log.count(text) < count:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"{text!r} x{count} not in the log:\n{self.log}")
            time.sleep(0.05)

    def wait_healthy(self, http: httpx.Client, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reader.join(5)
                raise AssertionError(f"server exited early ({self.proc.returncode}):\n{self.log}")
            try:
                if http.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"/health never answered 200:\n{self.log}")

    def interrupt(self) -> tuple[int, str]:
        """SIGINT, then the exit status and the whole log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"no exit within 60 s after SIGINT:\n{self.log}") from None
        self._reader.join(10)
        return self.proc.returncode, self.log


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferrotick", "serve", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )


def _clean_stop(rc: int, log: str) -> None:
    assert rc == 0, log
    for bad in BAD:
        assert bad not in log, f"{bad!r} in the server log:\n{log}"


def _bars(n: int, kind: str, iso: bool = False) -> list[dict[str, object]]:
    """Hourly bars of a known regime: ``"up"``/``"down"`` move 0.2% a bar, ``"range"``
    swings ±0.5% around 1000 every 12 bars; the bars' range narrows slowly, so
    volatility never stands out (the rules are in ferrotick.pipeline)."""
    i = np.arange(n)
    if kind == "range":
        close = 1000 + 5 * np.sin(i * 2 * np.pi / 12)
        width = 3 * (1 - i / (2 * n))
    else:
        close = 1000 * np.exp((0.002 if kind == "up" else -0.002) * i)
        width = close * 0.003 * (1 - i / (2 * n))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) + width
    low = np.minimum(open_, close) - width
    rows: list[dict[str, object]] = []
    for k in range(n):
        t: object = T0 + k * HOUR
        if iso:
            t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((T0 + k * HOUR) / 1000))
        rows.append(
            {"timestamp": t, "open": float(open_[k]), "high": float(high[k]),
             "low": float(low[k]), "close": float(close[k]), "volume": 10.0}
        )  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def service() -> Iterator[tuple[httpx.Client, Server]]:
    port = free_port()
    server = Server("--port", str(port))
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        try:
            server.wait_healthy(http)
            yield http, server
        finally:
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait()


# -- one worker, every endpoint --------------------------------------------------------


def test_detect_names_the_regime_of_the_bars(service):
    http, _ = service
    for kind, regime in (("up", "trending_up"), ("down", "trending_down"), ("range", "ranging")):
        rows = _bars(300, kind)
        r = http.post("/detect/", json={"symbol": "X", "timeframe": "1h", "ohlc_data": rows})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["analyzer_name"] == "market_regime"
        assert (body["symbol"], body["timeframe"]) == ("X", "1h")
        assert body["values"]["regime"] == regime, body
        assert 0.5 <= body["values"]["confidence"] <= 1.0
        assert body["timestamp"] == T0 + 299 * HOUR
    # ISO 8601 times, strings for numbers (as exchanges send them), per-bar series
    rows = _bars(200, "up", iso=True)
    for row in rows:
        row["close"] = str(row["close"])
    r = http.post("/detect/", params={"series": "true"},
                  json={"symbol": "X", "timeframe": "1h", "ohlc_data": rows})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["timestamp"] == T0 + 199 * HOUR
    assert len(body["timestamps"]) == 200 and len(body["series"]["regime"]) == 200
    assert body["series"]["regime"][-1] == REGIMES.index("trending_up")


def test_detect_rejects_bad_data_with_422_and_the_reason(service):
    http, _ = service
    good = _bars(50, "up")
    cases = [
        ([*good[:3], {"timestamp": T0 + 3 * HOUR, "open": 1, "high": 2, "low": 0}], "ohlc_data[3]: no 'close'"),
        ([{**good[0], "close": "abc"}], "ohlc_data[0].close: expected a number, got 'abc'"),
        ([{k: v for k, v in good[0].items() if k != "timestamp"}], "ohlc_data[0]: no timestamp"),
        ([{**good[0], "timestamp": "yesterday"}], "ohlc_data[0].timestamp"),
        ([good[1], good[0]], "open_time: must strictly increase"),
    ]  # fmt: skip
    for rows, message in cases:
        r = http.post("/detect/", json={"symbol": "X", "timeframe": "1h", "ohlc_data": rows})
        assert r.status_code == 422, (message, r.text)
        assert message in r.json()["detail"], r.text
    r = http.post("/detect/", json={"symbol": "X", "timeframe": "7x", "ohlc_data": good})
    assert r.status_code == 422 and "timeframe" in r.json()["detail"], r.text
    for body in ({"symbol": "X", "timeframe": "1h"}, {"symbol": "X", "ohlc_data": []}, [1, 2]):
        r = http.post("/detect/", json=body)
        assert r.status_code == 422, r.text
    r = http.post("/detect/", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_analyze_runs_the_pipeline_on_the_embedded_exchange(service):
    http, _ = service
    r = http.get("/analyze/BTCUSDT")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["symbol"] == "BTCUSDT" and body["error"] is None
    assert body["bars"] == 3000 and body["timeframes"] == ["5m", "15m", "1h"]
    regime = body["results"]["market_regime"]
    assert regime["timeframe"] == "5m" and regime["values"]["regime"] in REGIMES
    assert regime["values"]["regime"] != "unknown"
    mtf = body["results"]["multi_timeframe"]["values"]
    assert set(mtf["timeframes"]) == {"5m", "15m", "1h"}
    assert all(v["ema_slow"] is not None for v in mtf["timeframes"].values())  # 50 1h bars
    assert -1 <= mtf["alignment"] <= 1

    r = http.get("/analyze/ethusdt", params={"timeframes": "5m,1h", "bars": 600})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["symbol"] == "ETHUSDT" and body["bars"] == 600
    assert set(body["results"]["multi_timeframe"]["values"]["timeframes"]) == {"5m", "1h"}


def test_analyze_errors(service):
    http, _ = service
    r = http.get("/analyze/NOPEUSDT")
    assert r.status_code == 404 and r.json() == {"detail": "NOPEUSDT: Invalid symbol."}
    r = http.get("/analyze/BTCUSDT", params={"timeframes": "5m,7x"})
    assert r.status_code == 422 and "timeframe" in r.json()["detail"], r.text
    r = http.get("/analyze/BTCUSDT", params={"timeframes": "90s"})
    assert r.status_code == 422 and "whole multiple" in r.json()["detail"], r.text
    for bars in (0, 10_001, "many"):
        assert http.get("/analyze/BTCUSDT", params={"bars": bars}).status_code == 422


def test_performance_metrics_health_and_report(service):
    http, _ = service
    assert (
        http.post("/detect/", json={"symbol": "X", "ohlc_data": _bars(60, "up")}).status_code == 200
    )
    assert http.get("/analyze/BNBUSDT", params={"bars": 300}).status_code == 200

    perf = http.get("/async-performance").json()
    for op in ("service.detect", "service.analyze", "fetch", "resample", "indicators"):
        assert perf[op]["count"] >= 1, (op, perf.keys())
    assert perf["service.detect"]["error_count"] == 0  # refused input is not a failure
    one = http.get("/async-performance", params={"operation": "service.analyze"}).json()
    assert one["count"] == perf["service.analyze"]["count"]

    report = http.post("/async-performance/report")
    assert report.status_code == 200
    body = report.json()
    assert body["status"] == "success"
    assert body["metrics"]["operations"]["service.analyze"]["count"] >= 1

    metrics = http.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'async_operation_duration_seconds_count{operation_type="fetch"}' in text
    assert 'async_operation_duration_seconds_count{operation_type="service.detect"}' in text
    assert "# TYPE active_async_tasks gauge" in text
    assert (
        'http_request_duration_seconds_count{method="GET",route="/analyze/{symbol}",status="404"}'
        in text
    )

    health = http.get("/health")
    assert health.status_code == 200
    checks = health.json()["checks"]
    assert checks == {
        "data_streaming": True,
        "indicator_processing": True,
        "api_connectivity": True,
        "thread_pools": True,
        "exchange": True,
    }


def test_sigint_stops_cleanly(service):
    """Runs last in this module: stops the shared server."""
    _, server = service
    rc, log = server.interrupt()
    _clean_stop(rc, log)
    assert "embedded simulated exchange stopped" in log
    assert log.index("cleaned up analyzer 'analysis'") < log.index("service shutdown complete")


# -- two workers, one simulator --------------------------------------------------------


def test_two_workers_share_one_simulated_exchange():
    port = free_port()
    server = Server("--port", str(port), "--workers", "2")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            server.wait_healthy(http)
            server.wait_log("Application startup complete", 2)
            for _ in range(4):  # new connections: both workers take some
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as one:
                    r = one.get("/analyze/BNBUSDT", params={"bars": 300})
                    assert r.status_code == 200 and r.json()["ok"], r.text
            r = http.post("/detect/", json={"symbol": "X", "ohlc_data": _bars(120, "down")})
            assert r.json()["values"]["regime"] == "trending_down"
    finally:
        rc, log = server.interrupt()
    _clean_stop(rc, log)
    parent = [ln for ln in log.splitlines() if "simulated exchange at" in ln]
    assert len(parent) == 1 and "for 2 workers" in parent[0], log
    url = parent[0].split(" at ")[1].split()[0]
    connected = [ln for ln in log.splitlines() if "exchange client connected to" in ln]
    assert len(connected) == 2 and all(ln.endswith(url) for ln in connected), log
    assert "embedded simulated exchange at" not in log  # no worker started its own
    assert log.count("service shutdown complete") == 2


# -- an exchange from the configuration ------------------------------------------------


def test_config_file_points_at_an_exchange(tmp_path):
    with SimulatedExchange(["FOOUSDT"], seed=3, epoch=None) as ex:
        url = ex.base_url
        cfg = tmp_path / "config.yml"
        cfg.write_text(
            f"binance:\n  base_url: {ex.base_url}\n  ws_url: {ex.ws_url}\n"
            "pipeline:\n  max_concurrent_symbols: 2\n"
        )
        port = free_port()
        server = Server("--port", str(port), "--config", str(cfg))
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                server.wait_healthy(http)
                r = http.get("/analyze/FOOUSDT", params={"bars": 300})
                assert r.status_code == 200 and r.json()["ok"], r.text
                assert http.get("/analyze/BTCUSDT").status_code == 404  # not on that exchange
        finally:
            rc, log = server.interrupt()
    _clean_stop(rc, log)
    assert f"exchange client connected to {url}" in log
    assert "embedded simulated exchange" not in log


# -- failures: one line, the right status ----------------------------------------------


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ferrotick serve: "), err
    return lines[0]


def test_bad_config_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("binance:\n  rate_limit_requests_per_minute: abc\n")
    r = _run("--config", str(bad), "--port", str(free_port()))
    assert r.returncode == 2
    line = _one_line(r.stderr)
    assert "bad.yml:2: binance.rate_limit_requests_per_minute" in line
    r = _run("--config", str(tmp_path / "missing.yml"))
    assert r.returncode == 2
    assert "missing.yml" in _one_line(r.stderr)


def test_unreachable_exchange_exits_1_with_one_line():
    r = _run("--exchange-url", "http://127.0.0.1:9", "--port", str(free_port()))
    assert r.returncode == 1
    line = _one_line(r.stderr)
    assert "exchange at http://127.0.0.1:9 is unreachable" in line


def test_taken_port_exits_1_with_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = _run("--port", str(port))
    assert r.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in _one_line(r.stderr)


def test_serve_is_a_listed_subcommand():
    r = subprocess.run(
        [sys.executable, "-m", "ferrotick", "serve", "--help"],
        capture_output=True, text=True, env=_env(), timeout=60,
    )  # fmt: skip
    assert r.returncode == 0 and "--workers" in r.stdout and "--exchange-url" in r.stdout
