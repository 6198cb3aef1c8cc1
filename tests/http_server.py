"""Real servers on 127.0.0.1 for the HTTP client tests (imported by the test modules).

- :class:`AsgiServer` serves :func:`make_app` (a small raw-ASGI app) with uvicorn in a
  background thread, over plain HTTP or TLS (certificates from ``trustme``).
- :class:`RawServer` is an ``asyncio.start_server`` in a background thread whose handler
  reads one request head and then resets the connection (RST, no response).

Faults are keyed by a ``key`` query parameter so that every test has its own counters.
Routes of the app:

    /json                 a fixed JSON document of about 200 bytes
    /echo                 method, path, query, headers and body of the request, as JSON
    /large?size=N         N bytes (default 5 MB) in 64 KB chunks
    /slow?chunks=&delay=&head_delay=&status=
                          the head after head_delay s, then `chunks` chunks `delay` s apart
    /gzip, /br            the JSON document with Content-Encoding gzip / br
    /redirect?n=N         302 to /redirect?n=N-1 ... and finally to /json
    /flaky?key=&fail=N&status=503
                          `status` N times for this key, then 200 {"hits": n}
    /ratelimit?key=&times=N&after=S&form=seconds|date|none
                          429 with Retry-After (S seconds, or an HTTP-date S seconds
                          ahead rounded up to the next whole second) N times, then 200
    /sleep?key=&sleep=S   counts the request, then answers after S s (any method)
    /concurrency?key=&group=&delay=S
                          counts requests in flight for this key (and group, if given;
                          the max seen is in the state)
    /status?code=N        an empty response with that status
    /cached?key=&delay=S&status=N&cc=&expires=&age=&vary=
                          counts the request and answers {"hits": n, "auth": <Authorization>}
                          after `delay` s (a client gone before that counts in `disconnects`)
                          with that status and, when given, Cache-Control `cc`, Expires
                          (`expires` s from now, or the text as given), Age and Vary
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import gzip
import json
import math
import os
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import uvicorn

JSON_DOC = {
    "symbol": "BTCUSDT",
    "price": "67012.45000000",
    "bids": [["67012.44", "0.512"], ["67012.43", "1.020"], ["67012.40", "0.004"]],
    "asks": [["67012.46", "0.330"], ["67012.50", "2.115"]],
    "lastUpdateId": 1027024,
    "ok": True,
}
JSON_BODY = json.dumps(JSON_DOC).encode()
LARGE_SIZE = 5 * 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerState:
    """What the app saw. Written on the server's loop thread, read by tests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hits: collections.Counter[str] = collections.Counter()
        self.in_flight: collections.Counter[str] = collections.Counter()
        self.max_in_flight: collections.Counter[str] = collections.Counter()
        self.disconnects: collections.Counter[str] = collections.Counter()
        self.slow_active = 0
        self.total = 0  # every request the app saw
        # monotonic arrival times per key (rate-limit tests check the spacing)
        self.arrivals: collections.defaultdict[str, list[float]] = collections.defaultdict(list)

    def hit(self, key: str) -> int:
        with self.lock:
            self.hits[key] += 1
            self.arrivals[key].append(time.monotonic())
            return self.hits[key]

    @contextlib.contextmanager
    def track(self, key: str) -> Iterator[None]:
        with self.lock:
            self.in_flight[key] += 1
            self.max_in_flight[key] = max(self.max_in_flight[key], self.in_flight[key])
        try:
            yield
        finally:
            with self.lock:
                self.in_flight[key] -= 1


async def _start(send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def _respond(
    send,
    status: int,
    body: bytes = b"",
    content_type: bytes = b"application/json",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    headers += extra or []
    await _start(send, status, headers)
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            break
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    return b"".join(chunks)


async def _until_disconnect(receive, coro) -> bool:
    """Runs `coro` until it ends or the client goes away; True if it went away."""
    work = asyncio.ensure_future(coro)

    async def watch() -> None:
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return

    watcher = asyncio.ensure_future(watch())
    done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    gone = watcher in done and work not in done
    for t in (work, watcher):
        t.cancel()
    await asyncio.gather(work, watcher, return_exceptions=True)
    if work in done and not work.cancelled() and work.exception() is not None:
        raise work.exception()
    return gone


def _brotli(data: bytes) -> bytes:
    import brotli

    return brotli.compress(data)


def make_app(state: ServerState):  # noqa: C901 (the test server routes every path the suite uses in one dispatcher)
    async def app(scope, receive, send) -> None:  # noqa: C901 (see make_app)
        if scope["type"] != "http":
            return
        state.total += 1
        path = scope["path"]
        q = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
        key = q.get("key", "")
        if path == "/json":
            state.hit("json")
            await _respond(send, 200, JSON_BODY)
        elif path == "/echo":
            body = await _read_body(receive)
            doc = {
                "method": scope["method"],
                "path": path,
                "query": scope["query_string"].decode(),
                "headers": [
                    [k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]
                ],
                "body": body.decode("utf-8", "replace"),
            }
            await _respond(send, 200, json.dumps(doc).encode())
        elif path == "/large":
            size = int(q.get("size", LARGE_SIZE))
            await _start(
                send,
                200,
                [
                    (b"content-type", b"application/octet-stream"),
                    (b"content-length", str(size).encode()),
                ],
            )
            block = bytes(range(256)) * 256  # 64 KB
            sent = 0
            while sent < size:
                n = min(len(block), size - sent)
                await send({"type": "http.response.body", "body": block[:n], "more_body": True})
                sent += n
            await send({"type": "http.response.body", "body": b""})
        elif path == "/slow":
            chunks = int(q.get("chunks", 5))
            delay = float(q.get("delay", 0.1))
            head_delay = float(q.get("head_delay", 0))

            async def slow() -> None:
                if head_delay:
                    await asyncio.sleep(head_delay)
                await _start(send, int(q.get("status", 200)), [(b"content-type", b"text/plain")])
                for i in range(chunks):
                    await send(
                        {"type": "http.response.body", "body": b"chunk%d\n" % i, "more_body": True}
                    )
                    await asyncio.sleep(delay)
                await send({"type": "http.response.body", "body": b""})

            state.hit("slow")
            with state.lock:
                state.slow_active += 1
            try:
                if await _until_disconnect(receive, slow()):
                    state.disconnects["slow"] += 1
            finally:
                with state.lock:
                    state.slow_active -= 1
        elif path in ("/gzip", "/br"):
            body = gzip.compress(JSON_BODY) if path == "/gzip" else _brotli(JSON_BODY)
            enc = b"gzip" if path == "/gzip" else b"br"
            accept = dict(scope["headers"]).get(b"accept-encoding", b"").decode()
            await _respond(
                send,
                200,
                body,
                extra=[(b"content-encoding", enc), (b"x-accept-encoding", accept.encode())],
            )
        elif path == "/redirect":
            n = int(q.get("n", 1))
            target = b"/json" if n <= 1 else b"/redirect?n=%d" % (n - 1)
            state.hit(f"redirect:{key}")
            await _respond(send, 302, b"", extra=[(b"location", target)])
        elif path == "/flaky":
            hits = state.hit(f"flaky:{key}")
            if hits <= int(q.get("fail", 1)):
                await _respond(send, int(q.get("status", 503)), b'{"error":"unavailable"}')
            else:
                await _respond(send, 200, json.dumps({"hits": hits}).encode())
        elif path == "/ratelimit":
            hits = state.hit(f"ratelimit:{key}")
            if hits <= int(q.get("times", 1)):
                after = q.get("after", "1")
                form = q.get("form", "seconds")
                extra = []
                if form == "seconds":
                    extra.append((b"retry-after", after.encode()))
                elif form == "date":
                    when = math.ceil(time.time()) + float(after)
                    extra.append(
                        (b"retry-after", email.utils.formatdate(when, usegmt=True).encode())
                    )
                await _respond(send, 429, b'{"error":"slow down"}', extra=extra)
            else:
                await _respond(send, 200, json.dumps({"hits": hits}).encode())
        elif path == "/sleep":
            state.hit(f"sleep:{key}")
            await _read_body(receive)

            async def later() -> None:
                await asyncio.sleep(float(q.get("sleep", 1.0)))
                await _respond(send, 200, b'{"slept":true}')

            await _until_disconnect(receive, later())
        elif path == "/concurrency":
            state.hit(f"concurrency:{key}")
            group = q.get("group")
            with state.track(key), state.track(group) if group else contextlib.nullcontext():
                await asyncio.sleep(float(q.get("delay", 0.05)))
            await _respond(send, 200, b"{}")
        elif path == "/status":
            await _respond(send, int(q.get("code", 200)), b'{"status":"as asked"}')
        elif path == "/cached":
            hits = state.hit(f"cached:{key}")
            auth = dict(scope["headers"]).get(b"authorization")
            doc = {"hits": hits, "auth": auth.decode("latin-1") if auth is not None else None}
            extra = []
            if "cc" in q:
                extra.append((b"cache-control", q["cc"].encode()))
            if "expires" in q:
                try:
                    value = email.utils.formatdate(time.time() + float(q["expires"]), usegmt=True)
                except ValueError:
                    value = q["expires"]
                extra.append((b"expires", value.encode()))
            for name in ("age", "vary"):
                if name in q:
                    extra.append((name.encode(), q[name].encode()))

            async def answer() -> None:
                await asyncio.sleep(float(q.get("delay", 0)))
                await _respond(
                    send, int(q.get("status", 200)), json.dumps(doc).encode(), extra=extra
                )

            if await _until_disconnect(receive, answer()):
                state.disconnects[f"cached:{key}"] += 1
        else:
            await _respond(send, 404, b'{"error":"not found"}')

    return app


class AsgiServer:
    """uvicorn serving :func:`make_app` in a background thread (``with`` starts/stops it)."""

    def __init__(self, *, tls: bool = False) -> None:
        self.state = ServerState()
        self.port = free_port()
        self.tls = tls
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ca_pem: bytes | None = None
        self.ca_path: str | None = None
        kwargs = {}
        if tls:
            import trustme

            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1", "localhost")
            self._tmp = tempfile.TemporaryDirectory()
            d = self._tmp.name
            key, chain = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
            self.ca_path = os.path.join(d, "ca.pem")
            cert.private_key_pem.write_to_path(key)
            with open(chain, "wb") as f:
                for pem in cert.cert_chain_pems:
                    f.write(pem.bytes())
            ca.cert_pem.write_to_path(self.ca_path)
            self.ca_pem = ca.cert_pem.bytes()
            kwargs = {"ssl_keyfile": key, "ssl_certfile": chain}
        self.server = uvicorn.Server(
            uvicorn.Config(
                make_app(self.state),
                host="127.0.0.1",
                port=self.port,
                log_level="critical",
                lifespan="off",
                access_log=False,
                timeout_keep_alive=30,
                **kwargs,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"

    def open_connections(self) -> int:
        """Connections the server holds open now (uvicorn's own bookkeeping)."""
        return len(self.server.server_state.connections)

    def __enter__(self) -> AsgiServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        if self._tmp is not None:
            self._tmp.cleanup()


class RawServer:
    """A TCP server that reads a request head and resets the connection (RST)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = 0
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        self.requests += 1
        sock = writer.get_extra_info("socket")
        # SO_LINGER with a zero timeout: close() sends RST instead of FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    def __enter__(self) -> RawServer:
        self.thread.start()
        fut = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self.loop
        )
        self._server = fut.result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            assert self._server is not None
            self._server.close()
            await self._server.wait_closed()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
