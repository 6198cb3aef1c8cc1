"""The InfluxDB writer: points encoded to line protocol in Rust, batched by size
and time, POSTed by ferrotick's HTTP client (on the tokio runtime) to 1.x
``/write`` or 2.x ``/api/v2/write``.

Delivery rules:

* the buffer holds at most ``max_buffer_points``; when full, ``overflow="block"``
  makes writers wait for room and ``overflow="drop_oldest"`` drops the oldest
  buffered points, counting them in ``stats()["dropped"]`` and the metrics;
* a batch stays at the head of the buffer until the server acknowledged it (2xx):
  429, 5xx and connection errors are retried with backoff, honouring
  Retry-After, for as long as it takes (the bound above keeps memory finite);
* a 4xx other than 408/429 means bad points: the batch is dropped, counted in
  ``stats()["rejected"]`` and reported with the server's message naming the line;
  ``flush()`` raises it;
* ``await flush()`` returns once everything written before it was acknowledged;
  ``close()`` flushes, and so does interpreter exit for writers not closed.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import dataclasses
import email.utils
import gzip as _gzip
import logging
import random
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from .. import _core
from .._errors import ConfigError, FerrotickError, RateLimitExceeded
from .._validate import boolean, integer, seconds

__all__ = ["InfluxDBConfig", "InfluxDBWriter", "initialize_influxdb", "get_influxdb_client"]

log = logging.getLogger("ferrotick.store")

_PRECISIONS = ("ns", "us", "ms", "s")


@dataclasses.dataclass
class InfluxDBConfig:
    """Where and how to write. Give ``database`` for InfluxDB 1.x, or ``bucket``,
    ``org`` and ``token`` for 2.x. ``enable_batching=False`` (or ``batch=False``
    on a write) sends each write at once and waits for its acknowledgement."""

    database: str | None = None
    url: str = "http://localhost:8086"
    bucket: str | None = None
    org: str | None = None
    # secrets: left out of the repr
    token: str | None = dataclasses.field(default=None, repr=False)
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    retention_policy: str | None = None
    precision: str = "ns"
    batch_size: int = 1000
    flush_interval: float = 2.0
    enable_batching: bool = True
    max_buffer_points: int = 100_000
    overflow: str = "block"
    gzip: bool = False
    retries: int = 5
    retry_base_delay: float = 0.1
    retry_max_delay: float = 10.0
    timeout: float = 10.0
    flush_at_exit: bool = True
    exit_timeout: float = 5.0

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"url: expected an http:// or https:// URL, got {self.url!r}")
        v2 = self.bucket is not None or self.org is not None or self.token is not None
        if v2:
            for name in ("bucket", "org", "token"):
                v = getattr(self, name)
                if not isinstance(v, str) or not v:
                    raise ConfigError(
                        f"{name}: InfluxDB 2.x needs bucket, org and token, got {name}={v!r}"
                    )
            if self.database is not None:
                raise ConfigError("database: give database (1.x) or bucket+org+token (2.x)")
        elif not isinstance(self.database, str) or not self.database:
            raise ConfigError(
                f"database: expected a database name (or bucket+org+token), got {self.database!r}"
            )
        if self.precision not in _PRECISIONS:
            raise ConfigError(f"precision: expected one of {_PRECISIONS}, got {self.precision!r}")
        integer("batch_size", self.batch_size, min=1)
        seconds("flush_interval", self.flush_interval, positive=True)
        boolean("enable_batching", self.enable_batching)
        integer("max_buffer_points", self.max_buffer_points, min=1)
        if self.overflow not in ("block", "drop_oldest"):
            raise ConfigError(f"overflow: expected 'block' or 'drop_oldest', got {self.overflow!r}")
        boolean("gzip", self.gzip)
        integer("retries", self.retries, min=0)
        seconds("retry_base_delay", self.retry_base_delay)
        seconds("retry_max_delay", self.retry_max_delay)
        seconds("timeout", self.timeout, positive=True)
        seconds("exit_timeout", self.exit_timeout)

    @property
    def v2(self) -> bool:
        return self.bucket is not None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InfluxDBConfig:
        """From a ``config.yml`` ``influxdb:`` section; unknown keys are refused."""
        names = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(d) - names)
        if extra:
            raise ConfigError(f"influxdb: unknown settings {extra}")
        return cls(**dict(d))


class _Rejected(FerrotickError):
    pass


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class InfluxDBWriter:
    """Batches and delivers points; see the module documentation for the rules.
    Made by :func:`initialize_influxdb`."""

    def __init__(self, config: InfluxDBConfig) -> None:
        from ..http import AsyncHTTPClient, ConnectionPoolConfig

        self.config = config
        c = config
        base = c.url.rstrip("/")
        if c.v2:
            self._url = base + "/api/v2/write"
            self._params = {"org": c.org, "bucket": c.bucket, "precision": c.precision}
            self._headers = {"Authorization": f"Token {c.token}"}
        else:
            self._url = base + "/write"
            p = {
                "db": c.database,
                "precision": {"ns": "n", "us": "u"}.get(c.precision, c.precision),
            }
            if c.retention_policy:
                p["rp"] = c.retention_policy
            self._params = p
            self._headers = {}
            if c.username is not None:
                import base64

                cred = f"{c.username}:{c.password or ''}".encode()
                self._headers["Authorization"] = "Basic " + base64.b64encode(cred).decode()
        self._headers["Content-Type"] = "text/plain; charset=utf-8"
        if c.gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._full_url = (
            self._url
            + "?"
            + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in self._params.items())
        )
        self._http = AsyncHTTPClient(
            ConnectionPoolConfig(connector_limit=4, timeout_total=c.timeout)
        )
        # the buffer: chunks of encoded lines, oldest first; each is [bytes, count]
        self._chunks: collections.deque[list[Any]] = collections.deque()
        self._buffered = 0
        self._accepted = 0  # sequence number of the last point put in the buffer
        self._settled = 0  # points acknowledged, rejected or dropped, in order
        self._inflight: bytes | None = None
        self._inflight_n = 0
        self._rejections: list[tuple[int, str]] = []  # (sequence after the batch, message)
        self._stats = {
            "written": 0,
            "batches": 0,
            "dropped": 0,
            "rejected": 0,
            "retries": 0,
            "last_error": None,
            "last_batch_seconds": 0.0,
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[bool] | None = None
        self._room: asyncio.Condition | None = None
        self._progress: asyncio.Condition | None = None
        self._task: asyncio.Task[None] | None = None
        self._flush_now = False
        self._pending_drop = 0
        self._closed = False
        self._lock = threading.Lock()
        _WRITERS.add(self)

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._room = asyncio.Condition()
        self._progress = asyncio.Condition()
        self._task = self._loop.create_task(self._run(), name="ferrotick-influxdb-writer")

    async def ping(self) -> bool:
        """True when the server answers ``/ping`` (1.x and 2.x both serve it)."""
        try:
            r = await self._http.get(self.config.url.rstrip("/") + "/ping", cache=False)
        except (OSError, FerrotickError):
            return False
        return 200 <= r.status < 300

    async def health_check(self) -> bool:
        """For AsyncHealthChecker: the server answers and the last batch went through."""
        return await self.ping() and self._stats["last_error"] is None

    def register_health_check(self, checker: Any, name: str = "influxdb") -> None:
        """Adds :meth:`health_check` to an ``AsyncHealthChecker``."""
        checker.add_check(name, self.health_check)

    # -- writing --------------------------------------------------------------

    async def write_point(
        self,
        measurement: str,
        fields: Mapping[str, Any],
        tags: Mapping[str, str] | None = None,
        time: Any = None,
        batch: bool = True,
    ) -> None:
        """Buffers one point (``time``: int in the configured precision, float Unix
        seconds, datetime, or None for the server's clock). With ``batch=False``
        (or batching disabled) the point is sent at once and this returns when the
        server acknowledged it."""
        lines = _core.lp_encode_point(
            measurement, fields, tags, time, precision=self.config.precision, v2=self.config.v2
        )
        await self._put(lines, 1, batch)

    async def write_points(self, points: Iterable[Mapping[str, Any]], batch: bool = True) -> int:
        """Buffers dict points (``measurement``, ``fields``, optional ``tags`` and
        ``time``); a bad point raises ConfigError naming it and nothing of the call
        is buffered. Returns the number of points."""
        if not isinstance(points, list):
            points = list(points)
        lines, n = _core.lp_encode_points(
            points, precision=self.config.precision, v2=self.config.v2
        )
        if n:
            await self._put(lines, n, batch)
        return n

    async def write(self, batch: Iterable[Mapping[str, Any]]) -> int:
        """The pipeline's sink contract: each signal becomes a point of measurement
        ``signals`` tagged by ``symbol`` and ``signal_type`` with fields ``value`` and
        ``confidence``, at the bar's open time when the signal's metadata has one
        (else the server's clock). Buffered like ``write_points``; ``flush()`` and
        ``close()`` deliver it."""
        points = []
        for sig in batch:
            meta = sig.get("metadata") or {}
            t = meta.get("open_time") if isinstance(meta, Mapping) else None
            points.append(
                {
                    "measurement": "signals",
                    "tags": {"symbol": str(sig["symbol"]), "signal_type": str(sig["signal_type"])},
                    "fields": {
                        "value": float(sig["value"]),
                        "confidence": float(sig.get("confidence", 1.0)),
                    },
                    "time": None if t is None else int(t) / 1000.0,
                }
            )
        return await self.write_points(points)

    async def write_columns(
        self,
        measurement: str,
        fields: Mapping[str, Any],
        time: Any,
        tags: Mapping[str, str] | None = None,
        batch: bool = True,
    ) -> int:
        """Bulk rows from numpy columns: ``fields`` maps names to float64, int64 or
        bool arrays and ``time`` is an int64 array in the configured precision (or
        datetime64, converted)."""
        import numpy as np

        t = np.asarray(time)
        if t.dtype.kind == "M":
            t = t.astype(f"datetime64[{self.config.precision}]").astype(np.int64)
        t = np.ascontiguousarray(t, dtype=np.int64)
        cols = {}
        for k, v in fields.items():
            a = np.asarray(v)
            if a.dtype.kind == "f":
                a = a.astype(np.float64, copy=False)
            elif a.dtype.kind in "iu":
                a = a.astype(np.int64, copy=False)
            cols[k] = a
        lines, n = _core.lp_encode_columns(
            measurement,
            cols,
            t,
            tags=dict(tags) if tags else None,
            precision=self.config.precision,
            v2=self.config.v2,
        )
        if n:
            await self._put(lines, n, batch)
        return n

    async def write_lines(self, lines: bytes, count: int, batch: bool = True) -> None:
        """Buffers line protocol encoded elsewhere (``count`` lines, each ending in
        a newline)."""
        await self._put(bytes(lines), count, batch)

    async def _put(self, lines: bytes, n: int, batch: bool) -> None:
        if self._closed:
            raise FerrotickError("InfluxDB writer is closed")
        if self._task is None:
            await self.start()
        cap = self.config.max_buffer_points
        if self._buffered + n > cap:
            if self.config.overflow == "block":
                assert self._room is not None
                async with self._room:
                    # a chunk larger than the whole buffer goes in once it is empty
                    await self._room.wait_for(
                        lambda: self._buffered + n <= cap or self._buffered == 0
                    )
            else:
                self._drop_oldest(min(self._buffered, self._buffered + n - cap))
                if n > cap:
                    # the call alone overflows: its own oldest points go too
                    lines, kept = _tail_lines(lines, n, cap)
                    self._stats["dropped"] += n - kept
                    _count("dropped", n - kept)
                    n = kept
        self._chunks.append([lines, n])
        self._buffered += n
        self._accepted += n
        _gauge_depth(self._buffered)
        if not batch or not self.config.enable_batching:
            await self.flush()
        elif self._buffered >= self.config.batch_size:
            self._kick()
            # lets the flusher start this batch's POST (on the tokio runtime)
            # before the caller encodes the next one
            await asyncio.sleep(0)

    def _kick(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(False)

    def _drop_oldest(self, k: int) -> None:
        dropped = 0
        while k > 0 and self._chunks:
            chunk = self._chunks[0]
            if chunk[1] <= k:
                self._chunks.popleft()
                k -= chunk[1]
                dropped += chunk[1]
            else:
                chunk[0], _ = _tail_lines(chunk[0], chunk[1], chunk[1] - k)
                chunk[1] -= k
                dropped += k
                k = 0
        if dropped:
            self._buffered -= dropped
            self._stats["dropped"] += dropped
            _count("dropped", dropped)
            # dropped points are settled: a flush does not wait for them; the
            # in-flight batch is older still, so settle them after it
            self._pending_drop += dropped
            if self._inflight is None:
                self._settle(0)

    def _settle(self, n: int) -> None:
        self._settled += n + self._pending_drop
        self._pending_drop = 0

    # -- delivering -----------------------------------------------------------

    def _take_batch(self) -> tuple[bytes, int]:
        size = self.config.batch_size
        parts: list[bytes] = []
        n = 0
        while self._chunks and n < size:
            chunk = self._chunks[0]
            want = size - n
            if chunk[1] <= want:
                self._chunks.popleft()
                parts.append(chunk[0])
                n += chunk[1]
            else:
                head, rest = _split_lines(chunk[0], want)
                parts.append(head)
                chunk[0] = rest
                chunk[1] -= want
                n += want
        self._buffered -= n
        return (parts[0] if len(parts) == 1 else b"".join(parts)), n

    async def _run(self) -> None:
        assert self._room is not None and self._progress is not None
        interval = self.config.flush_interval
        size = self.config.batch_size
        while True:
            timed_out = False
            if self._buffered < size and not self._flush_now:
                # a bare future resolved by _kick (False) or the timer (True): the
                # flusher runs one loop step after a writer fills a batch
                loop = asyncio.get_running_loop()
                self._waiter = w = loop.create_future()
                h = loop.call_later(interval, _resolve, w, True)
                try:
                    timed_out = await w
                finally:
                    h.cancel()
                    self._waiter = None
            # full batches go at once; a partial one waits for the timer or a flush
            drain = timed_out or self._flush_now
            self._flush_now = False
            while self._buffered and (drain or self._buffered >= size):
                body, n = self._take_batch()
                self._inflight, self._inflight_n = body, n
                async with self._room:
                    self._room.notify_all()
                _gauge_depth(self._buffered)
                await self._deliver(body, n)
                self._inflight, self._inflight_n = None, 0
                self._settle(n)
                async with self._progress:
                    self._progress.notify_all()
                if self._flush_now:
                    drain, self._flush_now = True, False
            async with self._progress:
                self._progress.notify_all()

    async def _deliver(self, body: bytes, n: int) -> None:
        from ..http import RetryConfig

        c = self.config
        payload = body
        if c.gzip:
            payload = await asyncio.to_thread(_gzip.compress, body, 1)
        attempt = 0
        no_retry = RetryConfig(max_retries=0)
        t0 = time.perf_counter()
        while True:
            wait: float | None = None
            try:
                r = await self._http.post(
                    self._url,
                    params=self._params,
                    headers=self._headers,
                    data=payload,
                    retry_config=no_retry,
                    cache=False,
                )
                status = r.status
                if 200 <= status < 300:
                    dt = time.perf_counter() - t0
                    st = self._stats
                    st["written"] += n
                    st["batches"] += 1
                    st["last_error"] = None
                    st["last_batch_seconds"] = dt
                    _observe_batch(n, dt)
                    return
                text = (await r.text())[:1000]
                if status in (408, 429) or status >= 500:
                    wait = _retry_after(r.headers.get("Retry-After"))
                    err = f"HTTP {status}: {text}"
                else:
                    msg = f"InfluxDB rejected a batch of {n} points: HTTP {status}: {text}"
                    self._stats["rejected"] += n
                    self._stats["last_error"] = msg
                    self._rejections.append((self._settled + n, msg))
                    del self._rejections[:-16]
                    _count("rejected", n)
                    log.error("%s", msg)
                    return
            except RateLimitExceeded as e:
                # the HTTP client reports a 429 this way, with its Retry-After
                err = f"HTTP 429: {e}"
                wait = e.retry_after
            except (OSError, FerrotickError) as e:
                err = f"{type(e).__name__}: {e}"
            attempt += 1
            self._stats["retries"] += 1
            self._stats["last_error"] = err
            _count("retries", 1)
            backoff = min(c.retry_max_delay, c.retry_base_delay * 2 ** min(attempt - 1, 16)) * (
                0.5 + random.random() / 2
            )
            delay = wait if wait is not None else backoff
            if attempt == c.retries + 1:
                log.warning(
                    "InfluxDB write failing after %d attempts (%s); %d points kept, retrying",
                    attempt,
                    err,
                    n + self._buffered,
                )
            await asyncio.sleep(delay)

    async def flush(self, timeout: float | None = None) -> None:
        """Returns once every point written before this call was acknowledged by
        the server (or dropped by the overflow policy); raises FerrotickError when
        the server rejected some of them, TimeoutError after ``timeout`` seconds."""
        target = self._accepted
        if self._settled >= target:
            self._raise_rejected(target)
            return
        assert self._progress is not None
        self._flush_now = True
        self._kick()

        async def wait() -> None:
            assert self._progress is not None
            async with self._progress:
                await self._progress.wait_for(lambda: self._settled >= target)

        if timeout is None:
            await wait()
        else:
            await asyncio.wait_for(wait(), timeout)
        self._raise_rejected(target)

    def _raise_rejected(self, target: int) -> None:
        bad = [m for seq, m in self._rejections if seq <= target]
        if bad:
            self._rejections = [r for r in self._rejections if r[0] > target]
            raise FerrotickError(bad[-1])

    async def close(self, timeout: float | None = None) -> None:
        """Flushes what is buffered and stops the writer. With ``timeout`` (seconds),
        gives up after it, logs how many points were not sent and raises
        TimeoutError; without, waits for the server as long as it takes."""
        if self._closed:
            return
        try:
            if self._task is not None:
                await self.flush(timeout)
        except (TimeoutError, asyncio.TimeoutError):
            lost = self._buffered + self._inflight_n
            log.error("InfluxDB writer closed after %ss with %d points unsent", timeout, lost)
            raise
        finally:
            self._closed = True
            if self._task is not None:
                self._task.cancel()
                try:
                    await self._task
                except (asyncio.CancelledError, Exception):  # noqa: BLE001
                    pass
            await self._http.close()
            _WRITERS.discard(self)

    def _flush_at_exit(self) -> None:
        """Sends what is still buffered with blocking POSTs (no loop runs any more)."""
        if self._closed or not self.config.flush_at_exit:
            return
        parts = []
        if self._inflight is not None:
            parts.append(self._inflight)
        parts.extend(c[0] for c in self._chunks)
        self._chunks.clear()
        self._closed = True
        if not parts:
            return
        import urllib.request

        body = b"".join(parts)
        if self.config.gzip:
            body = _gzip.compress(body, 1)
        deadline = time.monotonic() + self.config.exit_timeout
        while True:
            req = urllib.request.Request(
                self._full_url, data=body, headers=self._headers, method="POST"
            )
            try:
                with urllib.request.urlopen(req, timeout=max(0.5, deadline - time.monotonic())):
                    return
            except Exception as e:  # noqa: BLE001  (reported, then given up at the deadline)
                code = getattr(e, "code", None)
                if code is not None and 400 <= code < 500 and code not in (408, 429):
                    log.error("InfluxDB rejected the points flushed at exit: %s", e)
                    return
                if time.monotonic() >= deadline:
                    log.error("InfluxDB points lost at exit: %s", e)
                    return
                time.sleep(0.2)

    def stats(self) -> dict[str, Any]:
        return {
            **self._stats,
            "buffered": self._buffered + self._inflight_n,
            "accepted": self._accepted,
        }

    async def __aenter__(self) -> InfluxDBWriter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _resolve(fut: asyncio.Future[bool], value: bool) -> None:
    if not fut.done():
        fut.set_result(value)


def _split_lines(data: bytes, k: int) -> tuple[bytes, bytes]:
    """The first ``k`` lines of ``data`` and the rest (encoded lines never contain
    a raw newline, so each newline ends one point)."""
    pos = -1
    for _ in range(k):
        pos = data.index(b"\n", pos + 1)
    return data[: pos + 1], data[pos + 1 :]


def _tail_lines(data: bytes, n: int, keep: int) -> tuple[bytes, int]:
    if keep >= n:
        return data, n
    return _split_lines(data, n - keep)[1], keep


# strong references: a writer dropped with points still buffered is flushed at
# exit, not collected with them (close() removes it)
_WRITERS: set[InfluxDBWriter] = set()


def _exit_flush() -> None:
    for w in list(_WRITERS):
        try:
            w._flush_at_exit()
        except Exception:  # noqa: BLE001
            log.exception("InfluxDB exit flush failed")


atexit.register(_exit_flush)

_METRICS: Any = None


def _metrics() -> Any:
    global _METRICS
    if _METRICS is None:
        try:
            from ..monitor import Counter, Gauge, Histogram

            _METRICS = {
                "batch": Histogram(
                    "ferrotick_influxdb_batch_points",
                    "Points per acknowledged InfluxDB write",
                    buckets=(1, 10, 100, 500, 1000, 5000, 10000, 50000),
                ),
                "latency": Histogram(
                    "ferrotick_influxdb_write_seconds",
                    "From a batch's first attempt to its acknowledgement",
                ),
                "depth": Gauge("ferrotick_influxdb_buffer_points", "Points waiting in the buffer"),
                "events": Counter(
                    "ferrotick_influxdb_points",
                    "Points dropped, rejected, or batch retries",
                    ["outcome"],
                ),
            }
        except Exception:  # noqa: BLE001  (a clashing registration: metrics stay off)
            _METRICS = False
    return _METRICS or None


def _observe_batch(n: int, dt: float) -> None:
    m = _metrics()
    if m:
        m["batch"].observe(n)
        m["latency"].observe(dt)


def _gauge_depth(n: int) -> None:
    m = _metrics()
    if m:
        m["depth"].set(n)


def _count(outcome: str, n: int) -> None:
    m = _metrics()
    if m:
        m["events"].labels(outcome).inc(n)


_CLIENT: InfluxDBWriter | None = None


async def initialize_influxdb(
    config: InfluxDBConfig | None = None, **kwargs: Any
) -> InfluxDBWriter:
    """The seed's entry point: makes the process's writer and starts its flusher
    on the running loop."""
    global _CLIENT
    if config is None:
        config = InfluxDBConfig(**kwargs)
    elif kwargs:
        config = dataclasses.replace(config, **kwargs)
    w = InfluxDBWriter(config)
    await w.start()
    _CLIENT = w
    return w


def get_influxdb_client() -> InfluxDBWriter:
    if _CLIENT is None:
        raise FerrotickError("no InfluxDB writer: call initialize_influxdb() first")
    return _CLIENT
