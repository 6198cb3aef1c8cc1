"""The service examples of seed 001's plan run as scripts: each starts ferrotick's
simulated exchange in its own process, does its work, prints a report and exits 0.
The checks read the figures each one prints: counts of real work, an alert fired and
resolved, an order filled and one rejected by the exchange."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import ferrotick

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str, timeout: float = 60) -> str:
    env = dict(os.environ)
    pkg = str(Path(ferrotick.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([pkg, env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    out = proc.stdout
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{out}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return out


def number(pattern: str, text: str) -> int:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in:\n{text}"
    return int(m.group(1))


def test_data_pipeline(tmp_path: Path) -> None:
    out = run_example(
        "data_pipeline.py", "--symbols", "30", "--stream-seconds", "2", "--dir", str(tmp_path)
    )
    assert number(r"batch: (\d+) symbols ok, 1 failed", out) == 30
    assert "failed: NOSUCHUSDT at stage fetch: code -1121" in out
    assert re.search(r"\((\d+) symbols/s", out)
    assert "regimes: " in out
    assert number(r"then 2 s: (\d+) closed bars", out) > 0
    stored = number(r"stored: (\d+) signals", out)
    assert stored > 0 and (tmp_path / "signals.sqlite3").exists()
    assert "FAIL" not in out


def test_strategy_execution() -> None:
    out = run_example("strategy_execution.py")
    m = re.search(r"orders: (\d+) sent, (\d+) filled, (\d+) rejected", out)
    assert m, out
    sent, filled, rejected = map(int, m.groups())
    assert filled > 0 and rejected == 1 and sent == filled + rejected
    assert re.search(r"-> FILLED [\d.]+ avg [\d.]+ \(\d+ trades?\)", out)
    assert re.search(r"MARKET qty=\S+ -> REJECTED -1013 Filter failure: NOTIONAL", out)


def test_risk_checks() -> None:
    out = run_example("risk_checks.py", "--seconds", "7")
    assert re.search(r"FIRING\s+exposure:BTC: BTC is [\d.]+% of equity > 35%", out)
    assert re.search(r"RESOLVED exposure:BTC: BTC back to", out)
    assert re.search(r"FIRING\s+risk_data_unavailable: \w+ check failed: .*maintenance", out)
    assert "RESOLVED risk_data_unavailable" in out
    assert number(r"(\d+) risk reduction", out) == 1
    assert number(r"exposure runs=(\d+)", out) >= 5
    assert number(r"exposure runs=\d+ errors=(\d+)", out) >= 1
    assert "scheduler stopped (running=False), 0 task(s) left" in out
    assert "0 still active" in out


def test_monitoring_alerting() -> None:
    out = run_example("monitoring_alerting.py", "--phase", "3")
    assert number(r"phase normal .*?: (\d+) requests, 0 errors", out) > 0
    assert number(r"phase incident .*?: \d+ requests, (\d+) errors", out) > 0
    assert re.search(r"alert exchange_error_rate FIRING at .* error ratio \d+% .*> 10%", out)
    assert re.search(r"alert exchange_error_rate RESOLVED", out)
    assert "/health 503 unhealthy (failing: ['no_alert_firing'])" in out
    assert "/health by phase ['200', '503', '200']" in out
    assert re.search(r'exchange_requests_total\{endpoint="depth",outcome="error"\} [1-9]', out)
    assert re.search(r'alert_firing\{alert="exchange_error_rate"\} 0', out)
    assert number(r'operation_type="fetch"\} (\d+)', out) > 0
