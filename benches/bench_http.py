"""The HTTP client, JSON decoding, the rate limiter and the circuit breaker.

``net_http_get_json``: GETs of a ~200-byte JSON document at a concurrency of 64 (64 workers
looping), ``await resp.json()`` included, against aiohttp, pyreqwest and httpx, each with
a pool of 64 connections, on the stdlib asyncio loop. The server is a tiny HTTP/1.1
keep-alive server on uvloop answering a fixed response, in a separate process pinned
to its own core; this process (the clients, tokio's threads included) is pinned to
another core while a contender runs, so the CPU column is the client's CPU per request
(the server's own CPU per request is printed at exit).

``net_json_loads_100k``: decoding a 100 KB exchange-style document from bytes.
``net_ratelimiter_acquire``: an uncontended ``await limiter.acquire()`` (target <= 1 µs).
``net_breaker_closed(_sync)``: entering and leaving a closed breaker (target <= 0.5 µs).

    python benches/run.py --only net_          # these five benchmarks
    python benches/bench_http.py --serve PORT [CPU]      # the server alone
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator

CONCURRENCY = 64
JSON_DOC = {
    "symbol": "BTCUSDT",
    "price": "67012.45000000",
    "bids": [["67012.44", "0.512"], ["67012.43", "1.020"], ["67012.40", "0.004"]],
    "asks": [["67012.46", "0.330"], ["67012.50", "2.115"]],
    "lastUpdateId": 1027024,
    "ok": True,
}
JSON_BODY = json.dumps(JSON_DOC).encode()
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
    b"server: bench\r\n\r\n" % len(JSON_BODY)
) + JSON_BODY


# -- the server (its own process) -------------------------------------------------------


class _Http11(asyncio.Protocol):
    """Answers every request head with RESPONSE (GETs only: no request bodies)."""

    __slots__ = ("transport", "buf")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buf = b""
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        n = buf.count(b"\r\n\r\n")
        if n:
            self.transport.write(RESPONSE * n)
            buf = buf[buf.rfind(b"\r\n\r\n") + 4 :]
        self.buf = buf


def serve(port: int, cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(_Http11, "127.0.0.1", port, backlog=1024, reuse_address=True)
    )
    print("ready", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


class _Server:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        # server on the last core, clients on the others
        self.server_cpu = cpus[-1] if len(cpus) >= 2 else None
        self.client_cpus = set(cpus[:-1]) if len(cpus) >= 2 else None

    def start(self) -> str:
        if self.proc is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            args = [sys.executable, __file__, "--serve", str(port)]
            if self.server_cpu is not None:
                args.append(str(self.server_cpu))
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE)
            assert self.proc.stdout is not None
            if self.proc.stdout.readline().strip() != b"ready":
                raise RuntimeError("the benchmark server did not start")
            self.url = f"http://127.0.0.1:{port}/json"
            atexit.register(self.stop)
        return self.url

    def cpu_seconds(self) -> float:
        """The server process's CPU time so far (user + system)."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            with contextlib.suppress(Exception):
                self.proc.wait(5)
            self.proc = None


_server = _Server()


@contextlib.contextmanager
def _pinned(cpus: set[int] | None) -> Iterator[None]:
    """Pins every thread of this process (tokio's too) to `cpus`, then restores."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    tids = [int(t) for t in os.listdir("/proc/self/task")]
    for tid in tids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, cpus)
    try:
        yield
    finally:
        for t in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(t), before)


# -- contenders --------------------------------------------------------------------------

_loop: asyncio.AbstractEventLoop | None = None


def _get_loop() -> asyncio.AbstractEventLoop:
    global _loop
    if _loop is None:
        _loop = asyncio.new_event_loop()
    return _loop


async def _workers(
    one: Callable[[], Awaitable[object]], n: int, latencies: list[float] | None = None
) -> None:
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    async def timed_worker() -> None:
        nonlocal remaining
        clock = time.perf_counter
        record = latencies.append  # type: ignore[union-attr]
        while remaining > 0:
            remaining -= 1
            t = clock()
            await one()
            record(clock() - t)

    if latencies is not None:
        await asyncio.gather(*[timed_worker() for _ in range(CONCURRENCY)])
        return

    await asyncio.gather(*[worker() for _ in range(CONCURRENCY)])


_server_cpu: dict[str, list[float]] = {}
_clients: dict[str, object] = {}
_closers: list[Callable[[], Awaitable[None]]] = []


def _http_contender(
    label: str,
    setup: Callable[[str], Awaitable[Callable[[], Awaitable[object]]]],
    cap: int | None = None,
    p99: bool = False,
) -> Callable[[int], object]:
    from run import Measurement

    def run(n: int) -> Measurement:
        if cap is not None:
            n = min(n, cap)  # a slow peer: fewer requests, the same per-request median
        url = _server.start()
        loop = _get_loop()
        with _pinned(_server.client_cpus):
            if label not in _clients:
                one = loop.run_until_complete(setup(url))
                assert loop.run_until_complete(one()) == JSON_DOC, label
                _clients[label] = one
            one = _clients[label]  # type: ignore[assignment]
            if p99:
                lat: list[float] = []
                c0 = time.process_time()
                loop.run_until_complete(_workers(one, n, lat))  # type: ignore[arg-type]
                c1 = time.process_time()
                lat.sort()
                # wall = the p99 latency of one request; CPU per request
                return Measurement(lat[int(0.99 * (len(lat) - 1))], (c1 - c0) / n, 1)
            s0 = _server.cpu_seconds()
            c0 = time.process_time()
            t0 = time.perf_counter()
            loop.run_until_complete(_workers(one, n))  # type: ignore[arg-type]
            t1 = time.perf_counter()
            c1 = time.process_time()
            _server_cpu.setdefault(label, []).append((_server.cpu_seconds() - s0) / n)
        return Measurement(t1 - t0, c1 - c0, n)

    return run


async def _setup_ferrotick(url: str):
    from ferrotick import AsyncHTTPClient, ConnectionPoolConfig

    client = AsyncHTTPClient(
        ConnectionPoolConfig(connector_limit=CONCURRENCY, connector_limit_per_host=CONCURRENCY)
    )
    _closers.append(client.close)
    get = client.get

    async def one():
        resp = await get(url)
        return await resp.json()

    return one


async def _setup_aiohttp(url: str):
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONCURRENCY, limit_per_host=CONCURRENCY)
    )
    _closers.append(session.close)
    get = session.get

    async def one():
        async with get(url) as resp:
            return await resp.json()

    return one


async def _setup_pyreqwest(url: str):
    from pyreqwest.client import ClientBuilder

    client = ClientBuilder().max_connections(CONCURRENCY).build()
    _closers.append(client.close)
    get = client.get

    async def one():
        resp = await get(url).build().send()
        return await resp.json()

    return one


async def _setup_httpx(url: str):
    import httpx

    client = httpx.AsyncClient(
        limits=httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    )
    _closers.append(client.aclose)
    get = client.get

    async def one():
        resp = await get(url)
        return resp.json()

    return one


def _close_clients() -> None:
    # before the interpreter finalizes: pyreqwest's runtime must be stopped by then
    if _loop is not None and not _loop.is_closed():
        for close in _closers:
            with contextlib.suppress(Exception):
                _loop.run_until_complete(close())
        _closers.clear()
    if _server_cpu:
        parts = [f"{lb} {statistics.median(v) * 1e6:.1f} µs" for lb, v in _server_cpu.items()]
        print(
            "net_http_get_json: server CPU per request (median): " + ", ".join(parts),
            file=sys.stderr,
        )


def _big_json() -> bytes:
    """About 100 KB: klines and an order book as an exchange sends them."""
    klines = [
        [
            1700000000000 + i * 60000,
            f"{67000 + (i * 37) % 500:.2f}",
            f"{67010 + (i * 41) % 500:.2f}",
            f"{66990 + (i * 43) % 500:.2f}",
            f"{67005 + (i * 47) % 500:.2f}",
            f"{(i * 7919) % 1000 / 7:.8f}",
            1700000059999 + i * 60000,
            f"{(i * 104729) % 100000 / 3:.8f}",
            1000 + i,
            (i * 31) % 997 / 13.0,
            True,
            None,
        ]
        for i in range(500)
    ]
    book = {
        "lastUpdateId": 1027024,
        "bids": [
            {"price": 67000.0 - i * 0.01, "qty": (i % 17) / 3, "orders": i} for i in range(300)
        ],
        "asks": [
            {"price": 67000.5 + i * 0.01, "qty": (i % 13) / 7, "orders": i} for i in range(300)
        ],
        "note": "snapshot ✓ ünïcode",
    }
    data = json.dumps({"klines": klines, "book": book}).encode()
    return data


BIG = _big_json()


def _loads_contender(loads: Callable[[bytes], object]) -> Callable[[int], object]:
    from run import Measurement

    def run(n: int) -> Measurement:
        data = BIG
        c0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(n):
            loads(data)
        t1 = time.perf_counter()
        return Measurement(t1 - t0, time.process_time() - c0, n)

    return run


def _async_loop_contender(make_body: Callable[[int], Awaitable[None]]) -> Callable[[int], object]:
    from run import Measurement

    def run(n: int) -> Measurement:
        loop = _get_loop()
        c0 = time.process_time()
        t0 = time.perf_counter()
        loop.run_until_complete(make_body(n))
        t1 = time.perf_counter()
        return Measurement(t1 - t0, time.process_time() - c0, n)

    return run


def _limiter_ferrotick():
    from ferrotick import RateLimiter

    limiter = RateLimiter(max_requests=10**12, time_window=1.0)

    async def body(n: int) -> None:
        acquire = limiter.acquire
        for _ in range(n):
            await acquire()

    return _async_loop_contender(body)


def _limiter_aiolimiter():
    from aiolimiter import AsyncLimiter

    limiter = AsyncLimiter(max_rate=10**12, time_period=1.0)

    async def body(n: int) -> None:
        acquire = limiter.acquire
        for _ in range(n):
            await acquire()

    return _async_loop_contender(body)


class _PyBreaker:
    """A plain-Python closed/open/half-open breaker (the seed's shape), as a reference."""

    def __init__(self, failure_threshold: int = 5, recovery_timeout: float = 60.0) -> None:
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0

    async def __aenter__(self) -> _PyBreaker:
        if self.state == "open":
            if time.monotonic() - self.opened_at < self.recovery_timeout:
                raise RuntimeError("open")
            self.state = "half_open"
        return self

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.failures = 0
            self.state = "closed"
        elif issubclass(exc_type, Exception):
            self.failures += 1
            if self.failures >= self.failure_threshold:
                self.state = "open"
                self.opened_at = time.monotonic()
        return False


def _breaker_async(breaker) -> Callable[[int], object]:
    async def body(n: int) -> None:
        for _ in range(n):
            async with breaker:
                pass

    return _async_loop_contender(body)


def _breaker_sync_ferrotick() -> Callable[[int], object]:
    from run import Measurement

    from ferrotick import CircuitBreaker

    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout=60)

    def run(n: int) -> Measurement:
        c0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(n):
            with breaker:
                pass
        t1 = time.perf_counter()
        return Measurement(t1 - t0, time.process_time() - c0, n)

    return run


def _benchmarks() -> list:
    from run import Benchmark

    from ferrotick import CircuitBreaker, _core

    atexit.register(_close_clients)
    benches = []

    http = {"ferrotick": _http_contender("ferrotick", _setup_ferrotick)}
    targets = {}
    for label, setup, target, cap in (
        ("aiohttp", _setup_aiohttp, 2.0, None),
        ("pyreqwest", _setup_pyreqwest, 1.2, None),
        ("httpx", _setup_httpx, None, 2_000),
    ):
        try:
            __import__(label)
        except ImportError:
            continue
        http[label] = _http_contender(label, setup, cap)
        if target is not None:
            targets[label] = target
    benches.append(
        Benchmark(
            name="net_http_get_json",
            description=(
                f"GETs of a {len(JSON_BODY)}-byte JSON document at concurrency {CONCURRENCY} "
                "(64 workers looping; `await resp.json()` included) over a pool of 64 keep-alive "
                "connections, on the stdlib asyncio loop. Server: a fixed-response HTTP/1.1 "
                "keep-alive server on uvloop in another process pinned to its own core; this "
                "process is pinned to the other core while a contender runs, so the CPU column "
                "is the client's CPU per request (tokio's threads included). httpx, about "
                "40x slower here, runs at most 2,000 requests per round."
            ),
            contenders=http,
            ops=20_000,
            quick_ops=2_000,
            targets=targets,
            unit="request",
        )
    )

    latency = {
        label: _http_contender(label, setup, None, p99=True)
        for label, setup in (
            ("ferrotick", _setup_ferrotick),
            ("aiohttp", _setup_aiohttp),
            ("pyreqwest", _setup_pyreqwest),
        )
        if label == "ferrotick" or label in http
    }
    benches.append(
        Benchmark(
            name="net_http_get_json_p99",
            description=(
                "The same load as `net_http_get_json` (64 workers, the same clients and "
                "server), each request timed from the call to the decoded JSON: **time per "
                "request = the p99 latency** of one round (the rate column is 1 / that and "
                "means nothing). Target: p99 no worse than aiohttp's (ratio >= 1)."
            ),
            contenders=latency,
            ops=20_000,
            quick_ops=2_000,
            targets={"aiohttp": 1.0} if "aiohttp" in latency else {},
            unit="request",
        )
    )

    loads = {"ferrotick _core.json_loads": _loads_contender(_core.json_loads)}
    loads["json.loads"] = _loads_contender(json.loads)
    with contextlib.suppress(ImportError):
        import orjson

        loads["orjson.loads"] = _loads_contender(orjson.loads)
    benches.append(
        Benchmark(
            name="net_json_loads_100k",
            description=(
                f"Decoding a {len(BIG) // 1024} KB exchange-style JSON document (klines and an "
                "order book) from bytes to Python objects: the decoder behind `resp.json()`."
            ),
            contenders=loads,
            ops=1_000,
            quick_ops=100,
            targets={"json.loads": 2.0, "orjson.loads": 1.0},
            unit="document",
        )
    )

    limiter = {"ferrotick": _limiter_ferrotick()}
    with contextlib.suppress(ImportError):
        limiter["aiolimiter AsyncLimiter"] = _limiter_aiolimiter()
    benches.append(
        Benchmark(
            name="net_ratelimiter_acquire",
            description=(
                "`await limiter.acquire()` on a limiter that never makes the caller wait "
                "(uncontended), sequentially on the stdlib asyncio loop. Absolute target: "
                "<= 1 µs per acquire."
            ),
            contenders=limiter,
            ops=500_000,
            quick_ops=50_000,
            targets={"aiolimiter AsyncLimiter": 1.0},
            unit="acquire",
        )
    )

    benches.append(
        Benchmark(
            name="net_breaker_closed",
            description=(
                "`async with breaker: pass` on a closed CircuitBreaker (admission check on "
                "entry, success recorded on exit), against a plain-Python breaker of the same "
                "shape. Absolute target: <= 0.5 µs per enter and exit."
            ),
            contenders={
                "ferrotick": _breaker_async(CircuitBreaker(failure_threshold=5)),
                "plain-Python breaker": _breaker_async(_PyBreaker()),
            },
            ops=500_000,
            quick_ops=50_000,
            unit="enter+exit",
        )
    )
    benches.append(
        Benchmark(
            name="net_breaker_closed_sync",
            description="`with breaker: pass` (the synchronous form) on a closed CircuitBreaker.",
            contenders={"ferrotick": _breaker_sync_ferrotick()},
            ops=1_000_000,
            quick_ops=100_000,
            unit="enter+exit",
        )
    )
    return benches


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else None)
        sys.exit(0)
    print(__doc__)
    sys.exit(2)

BENCHMARKS = _benchmarks()
