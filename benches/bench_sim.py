"""The simulated exchange under load, its server in its own process pinned to one core.

``sim_rest_klines_cached``: ``GET /api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1000`` (a
closed range, answered from the response cache) under ``wrk`` (one thread, 32 connections,
pinned to the other core), against a minimal aiohttp server on uvloop returning the same
pre-serialised body. The CPU column is the server process's CPU per request.

``sim_rest_klines_generate``: the same request with a new ``startTime`` each time (a
``wrk`` script), so every response is generated from the price process.

``sim_ws_replay``: ``/replay`` frames (126-byte ``@trade`` messages) drained by a raw
socket reader (the server's rate) against the same frames read by an aiohttp WebSocket
client (a fast Python client); the ratio is how much faster the server sends than the
client reads, which must be >= 2 so that client benchmarks measure the client.

``sim_ws_live``: messages per second delivered by live generation (``@trade`` streams of
four symbols at 60,000 trades/s each) to four aiohttp clients in this process.

    python benches/run.py --only sim_
    python benches/bench_sim.py --serve-sim PORT CPU      # the server alone
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run import Benchmark, Measurement  # noqa: E402

EPOCH = 1_704_067_200_000
KLINES_QUERY = f"symbol=BTCUSDT&interval=1m&limit=1000&startTime={EPOCH - 86_400_000}"
SERVER_CPU = 0
CLIENT_CPU = 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


# -- servers (their own processes) ---------------------------------------------------------


def serve_sim(port: int, cpu: int, trade_rate: float, symbols: list[str] | None = None) -> None:
    _pin(cpu)
    import ferrotick
    from ferrotick.sim import SimulatedExchange

    ferrotick.configure(worker_threads=1)
    symbols = symbols or ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]
    with SimulatedExchange(
        symbols, port=port, limits=False, trade_rate=trade_rate, book_levels=200, epoch=None
    ):
        while True:
            time.sleep(3600)


def serve_aiohttp(port: int, cpu: int, body_path: str) -> None:
    _pin(cpu)
    from aiohttp import web

    body = Path(body_path).read_bytes()

    async def klines(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v3/klines", klines)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def serve_aiohttp_ws(port: int, cpu: int, rate: float) -> None:
    """One ``@trade``-shaped stream at ``rate`` messages/s; ``E`` is each message's due time."""
    _pin(cpu)
    from aiohttp import web

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        i, t0 = 0, time.time()
        while not ws.closed:
            due = int((time.time() - t0) * rate)
            while i < due:
                e = int((t0 + i / rate) * 1000)
                await ws.send_str(
                    f'{{"e":"trade","E":{e},"s":"BTCUSDT","t":{i},"p":"60000.00000000",'
                    f'"q":"0.01000000","T":{e},"m":true,"M":true}}'
                )
                i += 1
            await asyncio.sleep(0.001)
        return ws

    app = web.Application()
    app.router.add_get("/ws/btcusdt@trade", stream)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


class Server:
    """A server process pinned to SERVER_CPU; stopped at exit."""

    def __init__(self, *args: str) -> None:
        self.port = _free_port()
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            *args[:1],
            str(self.port),
            str(SERVER_CPU),
            *args[1:],
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        atexit.register(self.stop)
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError as e:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"the server did not start: {err}") from e
                time.sleep(0.05)

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_servers: dict[str, Server] = {}


def _server(kind: str) -> Server:
    if kind not in _servers:
        if kind == "sim":
            _servers[kind] = Server("--serve-sim", "0")
        elif kind == "sim-live":
            _servers[kind] = Server("--serve-sim", "60000")
        elif kind == "sim-lag":
            _servers[kind] = Server("--serve-sim-one", "10000")
        elif kind == "aiohttp-ws":
            _servers[kind] = Server("--serve-aiohttp-ws", "10000")
        else:
            sim = _server("sim")
            url = f"http://127.0.0.1:{sim.port}/api/v3/klines?{KLINES_QUERY}"
            body = urllib.request.urlopen(url).read()
            path = Path(tempfile.mkdtemp()) / "klines.json"
            path.write_bytes(body)
            _servers[kind] = Server("--serve-aiohttp", str(path))
    return _servers[kind]


# -- REST under wrk ------------------------------------------------------------------------


GENERATE_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local start = %d - counter * 60000000
  return wrk.format("GET", "/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=1000&startTime=" .. start)
end
"""


def _wrk(kind: str, path: str, seconds: float, script: str | None = None) -> Measurement:
    srv = _server(kind)
    cmd = ["wrk", "-t1", "-c32", f"-d{max(1, round(seconds))}s"]
    if script:
        cmd += ["-s", script]
    cmd.append(f"http://127.0.0.1:{srv.port}{path}")
    if shutil.which("taskset") and (os.cpu_count() or 1) > CLIENT_CPU:
        cmd = ["taskset", "-c", str(CLIENT_CPU), *cmd]
    c0 = srv.cpu_seconds()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    cpu = srv.cpu_seconds() - c0
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if not m or "Non-2xx" in out:
        raise RuntimeError(f"wrk failed: {out}")
    n = int(m.group(1))
    wall = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
    return Measurement(wall, cpu, n)


def _rest_benchmarks() -> list[Benchmark]:
    if not shutil.which("wrk"):
        print("bench_sim: wrk is not installed; REST rows skipped", file=sys.stderr)
        return []
    lua = Path(tempfile.mkdtemp()) / "generate.lua"
    lua.write_text(GENERATE_LUA % (EPOCH - 86_400_000))
    path = f"/api/v3/klines?{KLINES_QUERY}"
    return [
        Benchmark(
            name="sim_rest_klines_cached",
            description=(
                "`/api/v3/klines?limit=1000` (a closed range, from the response cache) under wrk "
                "(1 thread, 32 connections) on one core, the server pinned to the other, against "
                "a minimal aiohttp server on uvloop returning the same pre-serialised body "
                "(~150 KB). Operations are requests; time per request is wall time / requests; "
                "CPU is the server's CPU per request. "
                "In `.ci/run` (quick mode) the five sim_ rows take about 40 s and "
                "tests/test_sim_*.py about 16 s. wrk on one core is the bound here: the "
                "server's CPU per request is the figure to compare."
            ),
            contenders={
                "ferrotick sim": lambda ops: _wrk("sim", path, ops),
                "aiohttp (pre-serialised body)": lambda ops: _wrk("aiohttp", path, ops),
            },
            ops=3,
            quick_ops=1,
            targets={"aiohttp (pre-serialised body)": 3.0},
            unit="request",
        ),
        Benchmark(
            name="sim_rest_klines_generate",
            description=(
                "The same request with a new `startTime` each time (a wrk script), so every "
                "response is 1,000 1m klines generated from the price process and serialised."
            ),
            contenders={"ferrotick sim": lambda ops: _wrk("sim", path, ops, str(lua))},
            ops=3,
            quick_ops=1,
            unit="request",
        ),
    ]


# -- WebSocket -----------------------------------------------------------------------------


def _handshake(port: int, path: str) -> tuple[socket.socket, bytes]:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    return s, head.split(b"\r\n\r\n", 1)[1]


def _replay_drain(n: int) -> Measurement:
    """Reads /replay's bytes as fast as possible without parsing (the server's rate)."""
    srv = _server("sim")
    s, rest = _handshake(srv.port, f"/replay?count={n}")
    frame = 2 + 126  # header of a 126-byte frame and its payload, roughly
    total = len(rest)
    buf = bytearray(1 << 20)
    t0, c0 = time.perf_counter(), srv.cpu_seconds()
    while True:
        k = s.recv_into(buf)
        if not k:
            break
        total += k
    wall = time.perf_counter() - t0
    s.close()
    assert total >= n * (frame - 10), total
    return Measurement(wall, srv.cpu_seconds() - c0, n)


def _replay_aiohttp(n: int) -> Measurement:
    import aiohttp

    srv = _server("sim")

    async def main() -> int:
        got = 0
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"ws://127.0.0.1:{srv.port}/replay?count={n}") as ws:
                async for m in ws:
                    if m.type != aiohttp.WSMsgType.TEXT:
                        break
                    got += 1
        return got

    t0 = time.perf_counter()
    got = asyncio.run(main())
    assert got == n, got
    return Measurement(time.perf_counter() - t0, 0.0, n)


def _live(seconds: float) -> Measurement:
    """Four raw WebSocket readers, one per symbol's ``@trade`` stream, counting events in
    the bytes they receive without parsing JSON (so the server, not Python, is measured)."""
    import selectors

    srv = _server("sim-live")
    streams = ["btcusdt@trade", "ethusdt@trade", "bnbusdt@trade", "solusdt@trade"]
    sel = selectors.DefaultSelector()
    socks = []
    total = 0
    for st in streams:
        s, rest = _handshake(srv.port, f"/ws/{st}")
        total += rest.count(b'"e":"trade"')
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    tails = {s: b"" for s in socks}
    c0 = srv.cpu_seconds()
    t0 = time.perf_counter()
    stop = t0 + seconds
    while time.perf_counter() < stop:
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj
            k = s.recv_into(buf)
            if not k:
                continue
            chunk = tails[s] + bytes(view[:k])
            total += chunk.count(b'"e":"trade"')
            tails[s] = chunk[-10:]
    wall = time.perf_counter() - t0
    cpu = srv.cpu_seconds() - c0
    for s in socks:
        s.close()
    return Measurement(wall, cpu, max(total, 1))


def _lag(kind: str, seconds: float) -> Measurement:
    """p99 of (receive time - event time ``E``) on one 10,000 msgs/s stream, read by a raw
    reader; the Measurement's time per message is that p99 (so the table shows it)."""
    srv = _server(kind)
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    _pin(CLIENT_CPU)
    try:
        return _lag_read(srv, seconds)
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)


def _lag_read(srv: Server, seconds: float) -> Measurement:
    s, rest = _handshake(srv.port, "/ws/btcusdt@trade")
    buf = rest
    lags: list[float] = []
    t0 = time.time()
    warm = t0 + 0.3
    s.settimeout(1.0)
    pattern = re.compile(rb'"E":(\d+)')
    while True:
        now = time.time()
        if now > warm + seconds:
            break
        try:
            data = s.recv(1 << 20)
        except TimeoutError:
            continue
        if not data:
            break
        now_ms = time.time() * 1000
        buf += data
        cut = buf.rfind(b"}")
        done, buf = buf[: cut + 1], buf[cut + 1 :]
        if now > warm:
            lags.extend(now_ms - int(e) for e in pattern.findall(done))
    s.close()
    lags.sort()
    p99 = lags[int(len(lags) * 0.99)] / 1000 if lags else float("nan")
    return Measurement(p99 * len(lags), 0.0, max(len(lags), 1))


def _ws_benchmarks() -> list[Benchmark]:
    return [
        Benchmark(
            name="sim_ws_replay",
            description=(
                "`/replay` sending pre-serialised 126-byte `@trade` frames: drained by a raw "
                "socket reader that does not parse (the server's send rate, server CPU per "
                "frame) against an aiohttp WebSocket client reading the same frames. The ratio "
                "must be >= 2: the server outruns the client, so client benchmarks measure the "
                "client."
            ),
            contenders={
                "ferrotick sim replay (raw drain)": _replay_drain,
                "aiohttp client reading it": _replay_aiohttp,
            },
            ops=500_000,
            quick_ops=20_000,
            targets={"aiohttp client reading it": 2.0},
            unit="frame",
        ),
        Benchmark(
            name="sim_ws_live",
            description=(
                "Live generation: four `@trade` streams at 60,000 trades/s each (generated from "
                "the price process, serialised and sent as they happen), read by four raw "
                "WebSocket readers on the other core that count events without parsing; rate "
                "is messages delivered per second, CPU is the server's CPU per message."
            ),
            contenders={"ferrotick sim live streams": lambda ops: _live(ops)},
            ops=2,
            quick_ops=1,
            unit="message",
        ),
        Benchmark(
            name="sim_ws_lag_p99",
            description=(
                "One `@trade` stream at 10,000 msgs/s read by a raw reader; the time column is "
                "the p99 of receive time minus the event's `E` (its generation time; the "
                "server's clock is the wall clock here), against an aiohttp WebSocket server on "
                "uvloop sending the same shape at the same rate (`E` = each message's due time). "
                "Ratio above 1: the simulated exchange's p99 lag is lower."
            ),
            contenders={
                "ferrotick sim": lambda ops: _lag("sim-lag", ops),
                "aiohttp WebSocket server": lambda ops: _lag("aiohttp-ws", ops),
            },
            ops=2,
            quick_ops=1,
            targets={"aiohttp WebSocket server": 1.0},
            unit="message",
        ),
    ]


def _benchmarks() -> list[Benchmark]:
    if not sys.platform.startswith("linux"):
        return []
    return _rest_benchmarks() + _ws_benchmarks()


BENCHMARKS = _benchmarks()

if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "--serve-sim-one":
        serve_sim(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), ["BTCUSDT"])
    elif len(sys.argv) >= 5 and sys.argv[1] == "--serve-aiohttp-ws":
        serve_aiohttp_ws(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "--serve-sim":
        serve_sim(
            int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
        )
    elif len(sys.argv) >= 5 and sys.argv[1] == "--serve-aiohttp":
        serve_aiohttp(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        print(json.dumps({"usage": __doc__}))
