"""Shared helpers for the suite."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

import ferrotick


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_python(
    code: str, *, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


async def wait_for_tasks(baseline: int, timeout: float = 2.0) -> int:
    """Polls runtime_stats() until live tokio tasks drop to `baseline`."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    n = ferrotick.runtime_stats()["alive_tasks"]
    while n > baseline and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        n = ferrotick.runtime_stats()["alive_tasks"]
    return n


@pytest.fixture
def baseline_tasks() -> int:
    """The runtime's idle task count, once work left by earlier tests has drained."""
    import time

    ferrotick.echo_sync(None)
    last = -1
    stable = 0
    deadline = time.monotonic() + 3
    while stable < 3 and time.monotonic() < deadline:
        n = ferrotick.runtime_stats()["alive_tasks"]
        stable = stable + 1 if n == last else 0
        last = n
        time.sleep(0.02)
    return last


# -- the loopback HTTP servers of the client tests (tests/http_server.py) ---------------


@pytest.fixture(scope="module")
def server():
    """uvicorn serving the test app, one per test module."""
    from http_server import AsgiServer

    with AsgiServer() as s:
        yield s


@pytest.fixture(scope="module")
def raw_server():
    """A server that resets every connection after the request head."""
    from http_server import RawServer

    with RawServer() as s:
        yield s


@pytest.fixture
def key() -> str:
    """A fresh key for the server's per-test counters."""
    import uuid

    return uuid.uuid4().hex[:12]
