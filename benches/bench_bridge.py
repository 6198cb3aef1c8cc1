"""The bridge: awaiting Rust futures from asyncio.

The pending no-op (`ferrotick._core._bench.pending_noop`) is a Rust future that is
pending at its first poll and is completed by another tokio task afterwards, with no
spin-waiting. The baseline awaits the same Rust future through pyo3-async-runtimes'
``future_into_py`` (built into the bench-only module). The pure-Python contender is
an ``async def`` no-op under the same ``asyncio.gather``.
"""

from __future__ import annotations

import asyncio
import time

from run import Benchmark, Measurement

import ferrotick
from ferrotick._core import _bench

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

_loops: dict[str, asyncio.AbstractEventLoop] = {}


def _loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind not in _loops:
        _loops[kind] = uvloop.new_event_loop() if kind == "uvloop" else asyncio.new_event_loop()
    return _loops[kind]


async def _noop() -> None:
    return None


async def _gather(make, n: int) -> Measurement:
    c0 = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*[make() for _ in range(n)])
    t1 = time.perf_counter()
    return Measurement(t1 - t0, time.process_time() - c0, n)


async def _sequential(make, n: int) -> Measurement:
    c0 = time.process_time()
    t0 = time.perf_counter()
    for _ in range(n):
        await make()
    t1 = time.perf_counter()
    return Measurement(t1 - t0, time.process_time() - c0, n)


def _ready_ferrotick(n: int) -> Measurement:
    echo = ferrotick.echo

    async def body() -> Measurement:
        c0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(n):
            await echo(None)
        t1 = time.perf_counter()
        return Measurement(t1 - t0, time.process_time() - c0, n)

    return _loop("asyncio").run_until_complete(body())


def _ready_python(n: int) -> Measurement:
    noop = _noop

    async def body() -> Measurement:
        c0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(n):
            await noop()
        t1 = time.perf_counter()
        return Measurement(t1 - t0, time.process_time() - c0, n)

    return _loop("asyncio").run_until_complete(body())


def _on(kind: str, runner, make):
    return lambda n: _loop(kind).run_until_complete(runner(make, n))


BENCHMARKS = []
for kind, pyo3_target in (("asyncio", 10.0), ("uvloop", 5.0)):
    if kind == "uvloop" and uvloop is None:
        continue
    BENCHMARKS.append(
        Benchmark(
            name=f"gather_pending_{kind}",
            description=(
                f"10,000 concurrent awaits of a pending Rust no-op under `asyncio.gather` on {kind} "
                "(creation included), against pyo3-async-runtimes' `future_into_py` on the same Rust "
                "future and against a pure-Python `async def` no-op under the same gather."
            ),
            contenders={
                "ferrotick": _on(kind, _gather, _bench.pending_noop),
                "pyo3-async-runtimes future_into_py": _on(kind, _gather, _bench.pending_noop_pyo3),
                "pure-Python async def no-op": _on(kind, _gather, _noop),
            },
            ops=10_000,
            quick_ops=2_000,
            targets={
                "pyo3-async-runtimes future_into_py": pyo3_target,
                "pure-Python async def no-op": 1.0,
            },
            unit="await",
        )
    )

BENCHMARKS.append(
    Benchmark(
        name="sequential_pending_asyncio",
        description=(
            "20,000 sequential awaits of the pending Rust no-op on stdlib asyncio: one hop from the "
            "loop to tokio and one back per await."
        ),
        contenders={
            "ferrotick": _on("asyncio", _sequential, _bench.pending_noop),
            "pyo3-async-runtimes future_into_py": _on(
                "asyncio", _sequential, _bench.pending_noop_pyo3
            ),
        },
        ops=20_000,
        quick_ops=2_000,
        targets={"pyo3-async-runtimes future_into_py": 2.0},
        unit="await",
    )
)

BENCHMARKS.append(
    Benchmark(
        name="ready_await",
        description=(
            "An already-done awaitable, including the call that creates it (`await ferrotick.echo(None)`), "
            "against `await noop()` for a pure-Python `async def noop()`. Target: at most 2x its cost "
            "(ratio >= 0.5)."
        ),
        contenders={
            "ferrotick": _ready_ferrotick,
            "pure-Python await noop()": _ready_python,
        },
        ops=200_000,
        quick_ops=20_000,
        targets={"pure-Python await noop()": 0.5},
        unit="await",
    )
)
