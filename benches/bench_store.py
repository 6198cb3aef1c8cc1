"""Durable outputs: the InfluxDB writer against a real influxd 1.x (pinned to CPU 0,
the writer on CPU 1) and the signal store against a Python executemany batcher."""

from __future__ import annotations

import asyncio
import atexit
import os
import queue
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS: list = []

BATCH = 5000
T0 = 1_700_000_000_000_000_000
_server: dict[str, object] = {}


def _influxd() -> str:
    """Starts influxd once (temp dirs, free ports, CPU 0) and returns its URL."""
    if "url" in _server:
        return str(_server["url"])
    sys.path.insert(0, str(HERE.parent / "tests"))
    from influx_servers import Influxd

    root = tempfile.mkdtemp(prefix="bench-influxd-")
    s = Influxd(root)
    s.start(cpu=0)
    s.create_db("bench")

    def stop() -> None:
        s.stop()
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    _server["url"] = s.url
    _server["s"] = s
    return s.url


def _points(n: int) -> list[dict]:
    syms = ["BTCUSDT", "ETHUSDT", "ADAUSDT", "SOLUSDT"]
    return [
        {
            "measurement": "trades",
            "tags": {"symbol": syms[i % 4], "side": "BUY" if i % 2 else "SELL", "venue": "binance"},
            "fields": {"price": 45000.0 + i * 0.01, "quantity": 0.001 * (i % 100 + 1), "n": i},
            "time": T0 + i,
        }
        for i in range(n)
    ]


_cache: dict[int, list[dict]] = {}


def points(n: int) -> list[dict]:
    if n not in _cache:
        _cache[n] = _points(n)
    return _cache[n]


class _OnCpu1:
    """Runs the writer on CPU 1 (the server has CPU 0) for the timed part."""

    def __enter__(self) -> None:
        self.old = os.sched_getaffinity(0)
        if len(self.old) > 1 and 1 in self.old:
            os.sched_setaffinity(0, {1})

    def __exit__(self, *exc: object) -> None:
        os.sched_setaffinity(0, self.old)


def _ferrotick_points(n: int):
    from run import Measurement

    from ferrotick.store import InfluxDBConfig, InfluxDBWriter

    url = _influxd()
    pts = points(n)

    async def go() -> tuple[float, float]:
        w = InfluxDBWriter(InfluxDBConfig(database="bench", url=url, batch_size=BATCH))
        await w.start()
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(0, n, BATCH):
            await w.write_points(pts[i : i + BATCH])
        await w.flush()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        await w.close()
        return dt, dc

    with _OnCpu1():
        dt, dc = asyncio.run(go())
    return Measurement(dt, dc, n)


def _ferrotick_columns(n: int):
    import numpy as np
    from run import Measurement

    from ferrotick.store import InfluxDBConfig, InfluxDBWriter

    url = _influxd()
    t = np.arange(n, dtype=np.int64) + T0
    price = 45000.0 + np.arange(n) * 0.01
    qty = 0.001 * (np.arange(n) % 100 + 1)
    cnt = np.arange(n, dtype=np.int64)

    async def go() -> tuple[float, float]:
        w = InfluxDBWriter(InfluxDBConfig(database="bench", url=url, batch_size=BATCH))
        await w.start()
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(0, n, BATCH):
            await w.write_columns(
                "bars",
                {
                    "price": price[i : i + BATCH],
                    "quantity": qty[i : i + BATCH],
                    "n": cnt[i : i + BATCH],
                },
                t[i : i + BATCH],
                tags={"symbol": "BTCUSDT", "side": "BUY", "venue": "binance"},
            )
        await w.flush()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        await w.close()
        return dt, dc

    with _OnCpu1():
        dt, dc = asyncio.run(go())
    return Measurement(dt, dc, n)


def _influxdb_client(n: int):
    from influxdb import InfluxDBClient
    from run import Measurement

    u = urllib.parse.urlsplit(_influxd())
    c = InfluxDBClient(host=u.hostname, port=u.port, database="bench")
    pts = points(n)
    with _OnCpu1():
        c0, t0 = time.process_time(), time.perf_counter()
        c.write_points(pts, batch_size=BATCH)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
    c.close()
    return Measurement(dt, dc, n)


def _post(session, url: str, body: bytes) -> None:
    r = session.post(url, data=body, headers={"Content-Type": "text/plain; charset=utf-8"})
    if r.status_code != 204:
        raise RuntimeError(f"write failed: {r.status_code} {r.text[:200]}")


def _fstring_writer(n: int):
    import requests
    from run import Measurement

    url = _influxd() + "/write?db=bench&precision=n"
    pts = points(n)
    s = requests.Session()
    with _OnCpu1():
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(0, n, BATCH):
            lines = []
            for p in pts[i : i + BATCH]:
                t, f = p["tags"], p["fields"]
                lines.append(
                    f"{p['measurement']},side={t['side']},symbol={t['symbol']},venue={t['venue']} "
                    f"price={f['price']!r},quantity={f['quantity']!r},n={f['n']}i {p['time']}"
                )
            _post(s, url, ("\n".join(lines) + "\n").encode())
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
    s.close()
    return Measurement(dt, dc, n)


def _raw_post(n: int):
    import requests
    from run import Measurement

    from ferrotick import _core

    url = _influxd() + "/write?db=bench&precision=n"
    pts = points(n)
    bodies = [_core.lp_encode_points(pts[i : i + BATCH])[0] for i in range(0, n, BATCH)]
    s = requests.Session()
    with _OnCpu1():
        c0, t0 = time.process_time(), time.perf_counter()
        for b in bodies:
            _post(s, url, b)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
    s.close()
    return Measurement(dt, dc, n)


# -- the signal store -----------------------------------------------------------------------

WRITERS = 64
_latency: dict[str, list[float]] = {}


def _p99(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * 0.99))]


async def _drive(n: int, create) -> tuple[float, float, list[float]]:
    """64 writers, each awaiting its acknowledgement before the next write."""
    lat: list[float] = []
    left = [n]

    async def one(i: int) -> None:
        while left[0] > 0:
            left[0] -= 1
            t = time.perf_counter()
            await create(f"S{i}", "BUY", float(i), 0.5)
            lat.append(time.perf_counter() - t)

    c0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(WRITERS)))
    return time.perf_counter() - t0, time.process_time() - c0, lat


def _signals_ferrotick(n: int):
    from run import Measurement

    from ferrotick.store import SignalManager

    with tempfile.TemporaryDirectory() as d:

        async def go():
            m = SignalManager(
                os.path.join(d, "s.sqlite3"), synchronous="NORMAL", auto_cleanup=False
            )
            try:
                return await _drive(n, m.create_signal_async)
            finally:
                await m.close()

        dt, dc, lat = asyncio.run(go())
    _latency["ferrotick"] = lat
    return Measurement(dt, dc, n)


class PyBatcher:
    """What users write (aiosqlite-style): a thread draining a queue with executemany,
    one call_soon_threadsafe per acknowledgement."""

    def __init__(self, path: str) -> None:
        from ferrotick.store._signals import _SCHEMA

        self.q: queue.Queue = queue.Queue()
        self.con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.executescript(_SCHEMA)
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self) -> None:
        from ferrotick.store._signals import _INSERT

        while True:
            item = self.q.get()
            if item is None:
                return
            batch = [item]
            while True:
                try:
                    batch.append(self.q.get_nowait())
                except queue.Empty:
                    break
            stop = batch[-1] is None
            if stop:
                batch.pop()
            self.con.execute("BEGIN")
            self.con.executemany(_INSERT, [b[0] for b in batch])
            last = self.con.execute("SELECT last_insert_rowid()").fetchone()[0]
            self.con.execute("COMMIT")
            first = last - len(batch) + 1
            for k, (_, loop, fut) in enumerate(batch):
                loop.call_soon_threadsafe(fut.set_result, first + k)
            if stop:
                return

    def create(self, symbol, signal_type, value, confidence):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        now = time.time()
        self.q.put(((symbol, signal_type, value, confidence, now, now + 3600, None), loop, fut))
        return fut

    def close(self) -> None:
        self.q.put(None)
        self.t.join()
        self.con.close()


def _signals_python(n: int):
    from run import Measurement

    with tempfile.TemporaryDirectory() as d:
        b = PyBatcher(os.path.join(d, "s.sqlite3"))

        async def go():
            return await _drive(n, b.create)

        try:
            dt, dc, lat = asyncio.run(go())
        finally:
            b.close()
    _latency["python"] = lat
    return Measurement(dt, dc, n)


def _signals_bare(n: int):
    from run import Measurement

    from ferrotick.store._signals import _INSERT, _SCHEMA

    with tempfile.TemporaryDirectory() as d:
        con = sqlite3.connect(os.path.join(d, "s.sqlite3"), isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.executescript(_SCHEMA)
        now = time.time()
        rows = [(f"S{i % 64}", "BUY", float(i), 0.5, now, now + 3600, None) for i in range(n)]
        c0, t0 = time.process_time(), time.perf_counter()
        con.execute("BEGIN")
        con.executemany(_INSERT, rows)
        con.execute("COMMIT")
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        con.close()
    return Measurement(dt, dc, n)


def _p99_of(key: str, runner):
    def f(n: int):
        from run import Measurement

        if key not in _latency:
            runner(n)
        lat = _latency.pop(key)
        return Measurement(_p99(lat) * n, 0.0, n)

    return f


if __name__ != "__main__":
    from run import Benchmark

    if shutil.which("influxd"):
        try:
            import influxdb  # noqa: F401
            import requests  # noqa: F401

            _peers = True
        except ImportError:  # pragma: no cover
            _peers = False
        contenders = {"ferrotick write_points": _ferrotick_points}
        if _peers:
            contenders["influxdb 1.x client write_points(batch_size=5000)"] = _influxdb_client
            contenders["f-string lines + requests POST"] = _fstring_writer
            contenders["raw POST of pre-built lines (ceiling)"] = _raw_post
        contenders["ferrotick write_columns (numpy)"] = _ferrotick_columns
        BENCHMARKS.append(
            Benchmark(
                name="influxdb_write_points",
                description=(
                    "n dict points (3 tags, 3 fields, ns timestamps; n = 100,000, quick 10,000) "
                    "written in batches of 5,000 to a real influxd 1.6 pinned to CPU 0, the "
                    "writer on CPU 1, until the server acknowledged all of them. The raw POST "
                    "sends pre-encoded bodies (the ceiling); write_columns sends the same shape "
                    "from numpy columns."
                ),
                contenders=contenders,
                ops=100_000,
                quick_ops=10_000,
                targets={
                    "influxdb 1.x client write_points(batch_size=5000)": 4.0,
                    "f-string lines + requests POST": 1.0,
                },
                unit="point",
            )
        )

    BENCHMARKS.append(
        Benchmark(
            name="signal_store_64_writers",
            description=(
                "64 asyncio writers each awaiting the acknowledgement of its signal before the "
                "next, n signals in all (n = 20,000, quick 2,000), SQLite WAL with "
                "synchronous=NORMAL, same schema and INTEGER ids. The peer is a thread "
                "draining a queue with executemany (one call_soon_threadsafe per ack); bare "
                "executemany of all rows in one transaction is the ceiling. The p99 rows give "
                "the 99th percentile acknowledgement latency as the time per op."
            ),
            contenders={
                "ferrotick SignalManager": _signals_ferrotick,
                "Python executemany batcher in a thread": _signals_python,
                "bare executemany, one transaction (ceiling)": _signals_bare,
                "ferrotick p99 ack latency": _p99_of("ferrotick", _signals_ferrotick),
                "Python batcher p99 ack latency": _p99_of("python", _signals_python),
            },
            ops=20_000,
            quick_ops=2_000,
            targets={"Python executemany batcher in a thread": 1.5},
            unit="signal",
        )
    )
