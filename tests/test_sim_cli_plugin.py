"""`ferrotick sim` on the command line and the `ferrotick.testing` pytest plugin."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

from conftest import run_python


def test_cli_serves_until_ctrl_c():
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ferrotick",
            "sim",
            "--port",
            "0",
            "--symbols",
            "BTCUSDT,ETHBTC",
            "--seed",
            "5",
            "--fault",
            "latency_ms=1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = p.stdout.readline()
        assert line.startswith("simulated exchange at http://127.0.0.1:"), line + p.stderr.read()
        base = line.split()[3]
        with urllib.request.urlopen(f"{base}/api/v3/exchangeInfo", timeout=5) as r:
            info = json.loads(r.read())
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHBTC"]
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()


def test_cli_rejects_bad_arguments():
    r = subprocess.run(
        [sys.executable, "-m", "ferrotick", "sim", "--fault", "error_rate=lots"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 2 and "NAME=NUMBER" in r.stderr


def test_importing_the_plugin_starts_nothing():
    r = run_python(
        """
        import threading
        before = threading.active_count()
        import ferrotick.testing
        import ferrotick
        assert threading.active_count() == before, threading.enumerate()
        assert ferrotick.runtime_stats()["started"] is False, ferrotick.runtime_stats()
        print("ok")
        """
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_plugin_fixtures_in_a_user_suite(tmp_path: Path):
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import asyncio
            import json
            import urllib.request

            import aiohttp
            import pytest


            def fetch(url):
                with urllib.request.urlopen(url, timeout=5) as r:
                    return r.status, json.loads(r.read())


            # a user's service under test: it reads the price from the exchange
            async def last_price(base_url, symbol):
                async with aiohttp.ClientSession() as s:
                    async with s.get(f"{base_url}/api/v3/ticker/price", params={"symbol": symbol}) as r:
                        return float((await r.json())["price"])


            @pytest.mark.asyncio
            async def test_async_service(sim_exchange):
                assert await last_price(sim_exchange.base_url, "BTCUSDT") > 0


            @pytest.mark.sim_exchange(symbols=["ETHUSDT"], maintenance=True)
            def test_marker_faults(sim_exchange):
                try:
                    fetch(sim_exchange.base_url + "/api/v3/ping")
                except urllib.error.HTTPError as e:
                    assert e.code == 503
                else:
                    raise AssertionError("maintenance was not on")
                assert sim_exchange.symbols == ["ETHUSDT"]


            def test_factory(sim_exchange_factory):
                a = sim_exchange_factory(seed=1)
                b = sim_exchange_factory(seed=1)
                assert a.port != b.port


            def test_session_sync(sim_exchange_session):
                assert fetch(sim_exchange_session.base_url + "/api/v3/ping") == (200, {})


            @pytest.mark.asyncio
            async def test_session_from_a_loop(sim_exchange_session):
                assert await last_price(sim_exchange_session.base_url, "ETHUSDT") > 0
            """
        )
    )
    env = dict(os.environ)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "ferrotick.testing",
            "-W",
            "ignore::pytest.PytestAssertRewriteWarning",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    # with the wheel installed the entry point loads the plugin too
    if "already registered" in r.stdout + r.stderr:
        r = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=env,
        )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5 passed" in r.stdout
    time.sleep(0)
