"""AsyncHTTPClient against real servers on 127.0.0.1 (uvicorn in a thread, a raw
asyncio server that resets connections, uvicorn over TLS with a trustme CA)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
import time

import pytest
from conftest import wait_for_tasks
from http_server import JSON_DOC, LARGE_SIZE, AsgiServer, free_port, wait_until

import ferrotick
from ferrotick import (
    AsyncHTTPClient,
    BlockingCallError,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
    ClientTimeout,
    ConfigError,
    ConnectError,
    ConnectionPoolConfig,
    HTTPError,
    HTTPStatusError,
    RateLimitExceeded,
    RequestTimeout,
    RetryConfig,
    RetryStrategy,
    get_http_client,
)

FAST_RETRY = RetryConfig(max_retries=3, base_delay=0.01, max_delay=5.0)


@pytest.fixture(scope="module")
def tls_server():
    with AsgiServer(tls=True) as s:
        yield s


def host_stats(client: AsyncHTTPClient, base: str) -> dict:
    return client.stats()["hosts"][base]


# -- eager and streamed responses -------------------------------------------------------


@pytest.mark.asyncio
async def test_eager_response_json_text_read(server):
    async with AsyncHTTPClient() as client:
        resp = await client.get(server.url + "/json")
        assert resp.status == 200 and resp.ok and resp.reason == "OK"
        assert resp.headers["Content-Type"] == "application/json"  # case-insensitive
        assert "content-length" in resp.headers
        assert await resp.json() == JSON_DOC
        assert await resp.text() == (await resp.read()).decode()
        assert resp.url == server.url + "/json"
        assert resp.attempts == 1


@pytest.mark.asyncio
async def test_streamed_response_json_and_iteration(server):
    async with AsyncHTTPClient() as client:
        async with client.get(server.url + "/json") as resp:
            assert resp.status == 200
            assert await resp.json() == JSON_DOC
        async with client.get(server.url + "/slow?chunks=4&delay=0.02") as resp:
            chunks = [c async for c in resp]
        assert b"".join(chunks) == b"chunk0\nchunk1\nchunk2\nchunk3\n"
        async with client.get(server.url + "/slow?chunks=3&delay=0") as resp:
            assert await resp.text() == "chunk0\nchunk1\nchunk2\n"
        # the streamed bodies gave their connection slots back
        assert client.stats()["in_flight"] == 0


@pytest.mark.asyncio
async def test_streamed_response_released_unread_frees_the_slot(server):
    cfg = ConnectionPoolConfig(connector_limit=1, connector_limit_per_host=1, pool_timeout=2.0)
    async with AsyncHTTPClient(cfg) as client:
        for _ in range(3):  # would time out on the pool if the first slot leaked
            async with client.get(server.url + "/slow?chunks=50&delay=0.05") as resp:
                assert resp.status == 200
                assert client.stats()["in_flight"] == 1
        assert client.stats()["in_flight"] == 0


@pytest.mark.asyncio
async def test_large_body_eager_and_streamed(server):
    expected = (bytes(range(256)) * 256 * (LARGE_SIZE // 65536 + 1))[:LARGE_SIZE]
    async with AsyncHTTPClient() as client:
        resp = await client.get(server.url + "/large")
        body = await resp.read()
        assert len(body) == LARGE_SIZE and body == expected
        total, n = 0, 0
        async with client.get(server.url + "/large") as resp:
            async for chunk in resp:
                total += len(chunk)
                n += 1
        assert total == LARGE_SIZE and n > 1
        async with client.get(server.url + "/large?size=200000") as resp:
            sizes = [len(c) async for c in resp.iter_chunked(1000)]
        assert sum(sizes) == 200000 and max(sizes) <= 1000


@pytest.mark.asyncio
async def test_params_headers_json_and_data(server):
    async with AsyncHTTPClient(headers={"X-Default": "d"}) as client:
        resp = await client.post(
            server.url + "/echo",
            params={"symbol": "BTC USDT", "flag": True, "n": 3},
            headers={"X-Custom": "v1"},
            json={"a": [1, 2], "b": None},
        )
        doc = await resp.json()
        hdrs = dict(doc["headers"])
        assert doc["method"] == "POST"
        assert doc["query"] == "symbol=BTC+USDT&flag=true&n=3"
        assert hdrs["x-custom"] == "v1" and hdrs["x-default"] == "d"
        assert hdrs["content-type"] == "application/json"
        assert doc["body"] == '{"a":[1,2],"b":null}'

        resp = await client.put(server.url + "/echo?x=1", params=[("y", "2")], data={"f": "g h"})
        doc = await resp.json()
        assert doc["method"] == "PUT" and doc["query"] == "x=1&y=2"
        assert dict(doc["headers"])["content-type"] == "application/x-www-form-urlencoded"
        assert doc["body"] == "f=g+h"

        resp = await client.delete(server.url + "/echo", data=b"\x00raw")
        doc = await resp.json()
        assert doc["method"] == "DELETE" and doc["body"] == "\x00raw"


@pytest.mark.asyncio
async def test_raise_for_status(server):
    async with AsyncHTTPClient() as client:
        resp = await client.get(server.url + "/status?code=404")
        assert resp.status == 404 and not resp.ok
        with pytest.raises(HTTPStatusError) as ei:
            resp.raise_for_status()
        assert ei.value.status == 404
        assert isinstance(ei.value, HTTPError)
        assert ei.value.body == b'{"status":"as asked"}'
        assert ei.value.headers["content-type"] == "application/json"
        (await client.get(server.url + "/json")).raise_for_status()  # no error below 400

        async with client.get(server.url + "/status?code=502") as resp:
            with pytest.raises(HTTPStatusError) as ei:
                resp.raise_for_status()
            assert ei.value.status == 502
        assert client.stats()["in_flight"] == 0


@pytest.mark.asyncio
async def test_raise_for_status_on_a_streamed_body_does_not_hold_the_connection(server):
    async with AsyncHTTPClient() as client:
        with pytest.raises(HTTPStatusError) as ei:
            async with client.get(server.url + "/slow?status=500&chunks=50&delay=0.1") as resp:
                resp.raise_for_status()
        assert ei.value.status == 500 and ei.value.body is None  # not read: streamed
        await asyncio.sleep(0.1)
        # released on exit, not after the 5 s body has been read in the background
        assert client.stats()["in_flight"] == 0


@pytest.mark.asyncio
async def test_redirects_followed_and_limited(server, key):
    async with AsyncHTTPClient() as client:
        resp = await client.get(server.url + f"/redirect?n=3&key={key}")
        assert resp.status == 200
        assert resp.url == server.url + "/json"
        assert await resp.json() == JSON_DOC
    assert server.state.hits[f"redirect:{key}"] == 1  # later hops carry no key
    async with AsyncHTTPClient(ConnectionPoolConfig(max_redirects=0)) as client:
        resp = await client.get(server.url + "/redirect?n=1")
        assert resp.status == 302 and resp.headers["location"] == "/json"
    async with AsyncHTTPClient(ConnectionPoolConfig(max_redirects=1)) as client:
        with pytest.raises(HTTPError):
            await client.get(server.url + "/redirect?n=3")


@pytest.mark.asyncio
async def test_gzip_and_brotli_bodies_are_decoded(server):
    async with AsyncHTTPClient() as client:
        for enc in ("gzip", "br"):
            resp = await client.get(server.url + f"/{enc}")
            assert await resp.json() == JSON_DOC, enc
            # the client advertised what it decodes
            assert enc in resp.headers["x-accept-encoding"].split(",")
            async with client.get(server.url + f"/{enc}") as resp:
                assert await resp.json() == JSON_DOC, enc


# -- retries -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_retry_5xx_then_success(server, key):
    async with AsyncHTTPClient(retry_config=FAST_RETRY) as client:
        resp = await client.get(server.url + f"/flaky?key={key}&fail=2&status=503")
        assert resp.status == 200
        assert await resp.json() == {"hits": 3}
        assert resp.attempts == 3
        assert host_stats(client, server.url)["retries"] == 2
    assert server.state.hits[f"flaky:{key}"] == 3


@pytest.mark.asyncio
async def test_retries_exhausted_returns_the_last_5xx(server, key):
    policy = RetryConfig(max_retries=1, base_delay=0.01, strategy=RetryStrategy.FIXED_DELAY)
    async with AsyncHTTPClient() as client:
        resp = await client.get(server.url + f"/flaky?key={key}&fail=5", retry_config=policy)
        assert resp.status == 503 and resp.attempts == 2
    assert server.state.hits[f"flaky:{key}"] == 2


@pytest.mark.asyncio
async def test_no_retry_without_retry_config(server, key):
    async with AsyncHTTPClient() as client:
        resp = await client.get(server.url + f"/flaky?key={key}&fail=1&status=500")
        assert resp.status == 500
    assert server.state.hits[f"flaky:{key}"] == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("form", ["seconds", "date"])
async def test_retry_after_is_honoured(server, key, form):
    async with AsyncHTTPClient(retry_config=FAST_RETRY) as client:
        t0 = time.monotonic()
        resp = await client.get(server.url + f"/ratelimit?key={key}&times=1&after=1&form={form}")
        elapsed = time.monotonic() - t0
    assert resp.status == 200
    # seconds: exactly 1 s; date: the next whole second + 1, i.e. more than 1 s away
    # (an HTTP-date has a one-second resolution; allow the clock's rounding)
    assert elapsed >= 0.95, elapsed
    assert elapsed < 2.5, elapsed
    assert server.state.hits[f"ratelimit:{key}"] == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("form", ["seconds", "date"])
async def test_retry_after_above_max_delay_fails_at_once(server, key, form):
    async with AsyncHTTPClient(retry_config=FAST_RETRY) as client:
        t0 = time.monotonic()
        with pytest.raises(RateLimitExceeded) as ei:
            await client.get(server.url + f"/ratelimit?key={key}&times=5&after=60&form={form}")
        assert time.monotonic() - t0 < 0.5
    assert 58 <= ei.value.retry_after <= 61.5
    assert server.state.hits[f"ratelimit:{key}"] == 1


@pytest.mark.asyncio
async def test_429_exhausted_raises_rate_limit_exceeded(server, key):
    async with AsyncHTTPClient(retry_config=FAST_RETRY) as client:
        with pytest.raises(RateLimitExceeded) as ei:
            await client.get(server.url + f"/ratelimit?key={key}&times=100&after=0")
        assert ei.value.retry_after == 0.0
        with pytest.raises(RateLimitExceeded) as ei:
            await client.get(server.url + f"/ratelimit?key={key}-nohdr&times=100&form=none")
        assert ei.value.retry_after is None
    assert server.state.hits[f"ratelimit:{key}"] == 4  # 1 + max_retries
    assert server.state.hits[f"ratelimit:{key}-nohdr"] == 4


@pytest.mark.asyncio
async def test_connect_error_is_retried_then_raised(key):
    url = f"http://127.0.0.1:{free_port()}"
    async with AsyncHTTPClient(retry_config=FAST_RETRY) as client:
        with pytest.raises(ConnectError) as ei:
            await client.get(url + "/x")
        assert isinstance(ei.value, ConnectionError) and isinstance(ei.value, HTTPError)
        assert host_stats(client, url)["retries"] == 3
        # never sent, so even a POST may be retried
        with pytest.raises(ConnectError):
            await client.post(url + "/x", data=b"1")
        assert host_stats(client, url)["retries"] == 6


@pytest.mark.asyncio
async def test_connection_reset(raw_server):
    async with AsyncHTTPClient() as client:
        before = raw_server.requests
        with pytest.raises(ConnectError):
            await client.get(raw_server.url + "/reset")
        assert raw_server.requests - before == 1
        # idempotent: retried; a POST that reached the server: not retried
        before = raw_server.requests
        with pytest.raises(ConnectError):
            await client.get(raw_server.url + "/reset", retry_config=FAST_RETRY)
        assert raw_server.requests - before == 4
        before = raw_server.requests
        with pytest.raises(ConnectError):
            await client.post(raw_server.url + "/reset", json={"o": 1}, retry_config=FAST_RETRY)
        assert raw_server.requests - before == 1
        assert client.stats()["in_flight"] == 0


# -- timeouts ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_timeout_raises_request_timeout(server, key):
    async with AsyncHTTPClient() as client:
        t0 = time.monotonic()
        with pytest.raises(RequestTimeout) as ei:
            await client.get(server.url + f"/sleep?key={key}&sleep=3", timeout=0.3)
        assert 0.25 <= time.monotonic() - t0 < 1.5
        assert isinstance(ei.value, TimeoutError)
        # the body counts too: a head at once and a slow body
        with pytest.raises(RequestTimeout):
            await client.get(server.url + "/slow?chunks=10&delay=0.2", timeout=ClientTimeout(0.3))
    async with AsyncHTTPClient(timeout=0.3) as client:  # client-wide default
        with pytest.raises(RequestTimeout):
            await client.get(server.url + f"/sleep?key={key}&sleep=3")


@pytest.mark.asyncio
async def test_sock_read_timeout_while_streaming(server):
    async with AsyncHTTPClient() as client:
        with pytest.raises(RequestTimeout):
            async with client.get(
                server.url + "/slow?chunks=3&delay=1.0", timeout=ClientTimeout(sock_read=0.2)
            ) as resp:
                async for _ in resp:
                    pass
        assert client.stats()["in_flight"] == 0


@pytest.mark.asyncio
async def test_total_timeout_covers_a_streamed_body(server):
    # aiohttp's meaning of `total`: reading the body inside `async with` counts too
    async with AsyncHTTPClient() as client:
        t0 = time.monotonic()
        with pytest.raises(RequestTimeout):
            async with client.get(server.url + "/slow?chunks=8&delay=0.2", timeout=0.4) as resp:
                assert resp.status == 200  # the head came in time
                await resp.read()
        assert 0.35 <= time.monotonic() - t0 < 1.0
        assert client.stats()["in_flight"] == 0


@pytest.mark.asyncio
async def test_post_timeout_is_never_retried(server, key):
    async with AsyncHTTPClient(retry_config=FAST_RETRY) as client:
        with pytest.raises(RequestTimeout):
            await client.post(server.url + f"/sleep?key={key}-post&sleep=1.5", json={}, timeout=0.3)
        # the same policy does retry an idempotent GET (so the count above means something)
        with pytest.raises(RequestTimeout):
            await client.get(server.url + f"/sleep?key={key}-get&sleep=1.5", timeout=0.3)
    await asyncio.sleep(0.3)  # let late arrivals land, if any
    assert server.state.hits[f"sleep:{key}-post"] == 1
    assert server.state.hits[f"sleep:{key}-get"] == 4


@pytest.mark.asyncio
async def test_post_503_is_retried_like_429(server, key):
    # 503 (like 429) says the server did not take the request: retried for any
    # method, as the network layer's rules state; other 5xx on a POST are not
    async with AsyncHTTPClient(retry_config=FAST_RETRY) as client:
        resp = await client.post(server.url + f"/flaky?key={key}&fail=1&status=503", json={})
        assert resp.status == 200
        assert server.state.hits[f"flaky:{key}"] == 2
        resp = await client.post(server.url + f"/flaky?key={key}x&fail=1&status=500", json={})
        assert resp.status == 500
        assert server.state.hits[f"flaky:{key}x"] == 1


@pytest.mark.asyncio
async def test_deadline_across_retries(server, key):
    cfg = ConnectionPoolConfig(deadline=0.5)
    policy = RetryConfig(max_retries=50, base_delay=0.1, jitter=False, strategy="fixed")
    async with AsyncHTTPClient(cfg, retry_config=policy) as client:
        t0 = time.monotonic()
        with pytest.raises(RequestTimeout, match="deadline"):
            await client.get(server.url + f"/flaky?key={key}&fail=1000")
        assert time.monotonic() - t0 < 1.0
    assert 2 <= server.state.hits[f"flaky:{key}"] <= 7


# -- the pool ------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_connector_limit_is_honoured(server, key):
    cfg = ConnectionPoolConfig(connector_limit=4, connector_limit_per_host=0)
    async with AsyncHTTPClient(cfg) as client:
        seen_waiting = []

        async def watch():
            while True:
                seen_waiting.append(client.stats()["waiting"])
                await asyncio.sleep(0.005)

        w = asyncio.ensure_future(watch())
        resps = await asyncio.gather(
            *[client.get(server.url + f"/concurrency?key={key}&delay=0.05") for _ in range(30)]
        )
        w.cancel()
        assert all(r.status == 200 for r in resps)
        s = host_stats(client, server.url)
        assert s["pool_waits"] >= 20 and s["pool_wait_seconds"] > 0
        assert max(seen_waiting) > 0
        assert client.stats()["in_flight"] == 0 and client.stats()["waiting"] == 0
    assert server.state.max_in_flight[key] == 4
    assert server.state.hits[f"concurrency:{key}"] == 30


@pytest.mark.asyncio
async def test_connector_limit_per_host_is_honoured(server, key):
    cfg = ConnectionPoolConfig(connector_limit=5, connector_limit_per_host=3)
    # two host names for one server: two pools of 3 under a global limit of 5
    hosts = [f"http://127.0.0.1:{server.port}", f"http://localhost:{server.port}"]
    async with AsyncHTTPClient(cfg) as client:
        peak = 0

        async def watch():
            nonlocal peak
            while True:
                peak = max(peak, client.stats()["in_flight"])
                await asyncio.sleep(0.002)

        w = asyncio.ensure_future(watch())
        await asyncio.gather(
            *[
                client.get(f"{h}/concurrency?key={key}-{i}&group={key}&delay=0.05")
                for i, h in enumerate(hosts)
                for _ in range(15)
            ]
        )
        w.cancel()
        assert peak <= 5
        assert all(host_stats(client, h)["pool_waits"] > 0 for h in hosts)
    assert server.state.max_in_flight[f"{key}-0"] == 3
    assert server.state.max_in_flight[f"{key}-1"] == 3
    assert server.state.max_in_flight[key] == 5  # both hosts together: the global limit


@pytest.mark.asyncio
async def test_pool_timeout(server, key):
    cfg = ConnectionPoolConfig(connector_limit=1, connector_limit_per_host=1, pool_timeout=0.2)
    async with AsyncHTTPClient(cfg) as client:
        first = asyncio.ensure_future(client.get(server.url + f"/sleep?key={key}&sleep=1"))
        await asyncio.sleep(0.05)
        with pytest.raises(RequestTimeout, match="free connection"):
            await client.get(server.url + "/json")
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        assert (await client.get(server.url + "/json")).status == 200


@pytest.mark.asyncio
async def test_cancelling_10000_requests_mid_flight(baseline_tasks):
    cfg = ConnectionPoolConfig(connector_limit=100, connector_limit_per_host=100)
    server_conns = []
    # a server of its own, so that its connection count is this test's alone
    server = AsgiServer()
    with server:
        async with AsyncHTTPClient(cfg) as client:
            for _ in range(5):  # 5 x 2,000 = 10,000 requests
                tasks = [
                    asyncio.ensure_future(client.get(server.url + "/slow?chunks=50&delay=0.1"))
                    for _ in range(2000)
                ]
                await asyncio.sleep(0.3)
                st = client.stats()
                assert st["in_flight"] == 100 and st["waiting"] == 1900
                assert server.state.slow_active >= 50  # really mid-flight on the server
                assert server.open_connections() <= 100  # one connection per slot, no more
                # the client's count of open connections is the server's
                assert 0 < st["open"] <= 100
                assert st["open"] == st["hosts"][server.url]["open"]
                assert await asyncio.to_thread(
                    wait_until, lambda: client.stats()["open"] == server.open_connections(), 5
                )
                for t in tasks:
                    t.cancel()
                res = await asyncio.gather(*tasks, return_exceptions=True)
                assert all(isinstance(r, asyncio.CancelledError) for r in res)
                # the Rust futures are dropped when tokio next schedules them: promptly,
                # though not necessarily before gather() returns
                t0 = time.monotonic()
                while time.monotonic() - t0 < 0.5:
                    st = client.stats()
                    if st["in_flight"] == 0 and st["waiting"] == 0:
                        break
                    await asyncio.sleep(0.002)
                assert st["in_flight"] == 0 and st["waiting"] == 0 and st["free_slots"] == 100
                # the server sees every connection go away (and its handlers end), and so
                # does the client's own count
                assert await asyncio.to_thread(
                    wait_until,
                    lambda: server.open_connections() == 0 and server.state.slow_active == 0,
                    5,
                )
                assert await asyncio.to_thread(wait_until, lambda: client.stats()["open"] == 0, 5)
                server_conns.append(server.open_connections())
            assert server_conns == [0, 0, 0, 0, 0]
            assert server.state.slow_active == 0
            # no Rust work left behind
            assert await wait_for_tasks(baseline_tasks, 3.0) <= baseline_tasks
            resp = await client.get(server.url + "/json")
            assert resp.status == 200 and await resp.json() == JSON_DOC


# -- circuit breaker in the client ---------------------------------------------------


@pytest.mark.asyncio
async def test_client_circuit_breaker_opens_and_recovers(server):
    cb = CircuitBreakerConfig(failure_threshold=2, recovery_timeout=0.3)
    async with AsyncHTTPClient(circuit_breaker=cb) as client:
        for _ in range(2):
            assert (await client.get(server.url + "/status?code=500")).status == 500
        before = server.state.total
        with pytest.raises(CircuitOpenError) as ei:
            await client.get(server.url + "/json")
        assert 0 < ei.value.retry_after <= 0.3
        assert server.state.total == before  # failed fast, nothing sent
        assert host_stats(client, server.url)["breaker"] == "open"
        await asyncio.sleep(0.35)
        assert (await client.get(server.url + "/json")).status == 200  # the trial
        assert host_stats(client, server.url)["breaker"] == "closed"


@pytest.mark.asyncio
async def test_client_takes_a_circuit_breaker_instance_settings(server):
    # the seed builds `CircuitBreaker(config)`; its settings must reach the client
    breaker = CircuitBreaker(CircuitBreakerConfig(failure_threshold=1, recovery_timeout=0.3))
    async with AsyncHTTPClient(circuit_breaker=breaker) as client:
        assert (await client.get(server.url + "/status?code=503")).status == 503
        with pytest.raises(CircuitOpenError) as ei:  # opened after 1 failure, not 5
            await client.get(server.url + "/json")
        assert 0 < ei.value.retry_after <= 0.3  # 0.3 s, not 30 s
    with pytest.raises(TypeError, match="circuit_breaker"):
        AsyncHTTPClient(circuit_breaker=3)


@pytest.mark.asyncio
async def test_cancelled_breaker_trial_does_not_wedge_the_host(server, key):
    cb = CircuitBreakerConfig(failure_threshold=1, recovery_timeout=0.2)
    async with AsyncHTTPClient(circuit_breaker=cb) as client:
        await client.get(server.url + "/status?code=500")
        await asyncio.sleep(0.25)
        trial = asyncio.ensure_future(client.get(server.url + f"/sleep?key={key}&sleep=2"))
        await asyncio.sleep(0.1)
        trial.cancel()
        await asyncio.gather(trial, return_exceptions=True)
        await asyncio.sleep(0.3)
        assert (await client.get(server.url + "/json")).status == 200


# -- TLS -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_tls_verification(tls_server):
    async with AsyncHTTPClient() as client:
        with pytest.raises(ConnectError, match="(?i)certificate|UnknownIssuer"):
            await client.get(tls_server.url + "/json")
    for kwargs in ({"ca": tls_server.ca_path}, {"ca": tls_server.ca_pem}, {"verify": False}):
        async with AsyncHTTPClient(**kwargs) as client:
            resp = await client.get(tls_server.url + "/json")
            assert resp.status == 200 and await resp.json() == JSON_DOC, kwargs
    async with AsyncHTTPClient(ca=tls_server.ca_pem) as client:  # and by host name
        resp = await client.get(f"https://localhost:{tls_server.port}/json")
        assert resp.status == 200


def test_tls_bad_ca_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="ca"):
        AsyncHTTPClient(ca=b"not a pem")
    with pytest.raises(ConfigError, match="ca"):
        AsyncHTTPClient(ca=str(tmp_path / "missing.pem"))


# -- shared client, fork, blocking twins ----------------------------------------------


def _child_uses_shared_client(url: str, parent_client_id: int, q) -> None:
    try:
        client = get_http_client()

        async def go():
            resp = await client.get(url + "/json")
            return resp.status, await resp.json()

        status, doc = asyncio.run(go())
        q.put(("ok", status, doc == JSON_DOC, id(client) != parent_client_id))
    except BaseException as e:  # reported to the parent
        q.put(("error", repr(e)))


def _child_uses_parent_client(client: AsyncHTTPClient, url: str, q) -> None:
    async def go():
        await client.get(url + "/json")

    try:
        asyncio.run(go())
        q.put(("ok",))
    except BaseException as e:
        q.put((type(e).__name__, str(e)))


def test_get_http_client_shared_and_renewed_after_fork(server):
    client = get_http_client()
    assert get_http_client() is client
    other: list[AsyncHTTPClient] = []
    t = threading.Thread(target=lambda: other.append(get_http_client()))
    t.start()
    t.join()
    assert other[0] is client
    assert client.get_sync(server.url + "/json").status == 200

    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_uses_shared_client, args=(server.url, id(client), q))
    p.start()
    result = q.get(timeout=30)
    p.join(10)
    assert result == ("ok", 200, True, True), result
    assert p.exitcode == 0

    # the parent's own client, used in a child, refuses clearly instead of hanging
    p = ctx.Process(target=_child_uses_parent_client, args=(client, server.url, q))
    p.start()
    result = q.get(timeout=30)
    p.join(10)
    assert result[0] == "HTTPError" and "fork" in result[1], result

    # and the parent's client still works
    assert client.get_sync(server.url + "/json").status == 200
    client.close_sync()
    assert get_http_client() is not client


def test_get_sync_from_a_plain_thread(server):
    client = AsyncHTTPClient()
    out: list = []
    errors: list = []

    def worker():
        try:
            resp = client.get_sync(server.url + "/echo", params={"a": 1}, headers={"X-T": "1"})
            out.append((resp.status, resp.read().result()))
            resp = client.post_sync(server.url + "/echo", json={"k": "v"})
            out.append((resp.status, resp.json().result()))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert len(out) == 8
    assert all(status == 200 for status, _ in out)
    assert any(isinstance(b, dict) and b["body"] == '{"k":"v"}' for _, b in out)
    client.close_sync()


@pytest.mark.asyncio
async def test_blocking_twin_inside_a_loop_raises(server):
    client = AsyncHTTPClient()
    before = server.state.total
    with pytest.raises(BlockingCallError) as ei:
        client.get_sync(server.url + "/json")
    assert isinstance(ei.value, RuntimeError)
    assert server.state.total == before
    await client.close()


# -- bad input and redaction ---------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("call", "exc", "names"),
    [
        (lambda c, u: c.get("not a url"), ConfigError, "url"),
        (lambda c, u: c.get("ftp://127.0.0.1/file"), ConfigError, "url"),
        (lambda c, u: c.get("http://"), ConfigError, "url"),
        (lambda c, u: c.get(u, headers={"bad name": "v"}), ConfigError, "headers"),
        (lambda c, u: c.get(u, headers={"X-Ok": "a\r\nInjected: 1"}), ConfigError, "headers"),
        (lambda c, u: c.post(u, json={"x": object()}), TypeError, "json"),
        (lambda c, u: c.post(u, json=float("nan")), TypeError, "json"),
        (lambda c, u: c.post(u, json={}, data=b"x"), ConfigError, "json"),
        (lambda c, u: c.post(u, data=12), TypeError, "data"),
        (lambda c, u: c.get(u, timeout=-1), ConfigError, "timeout"),
        (
            lambda c, u: c.get(u, timeout=ClientTimeout(connect=float("inf"))),
            ConfigError,
            "timeout",
        ),
        (lambda c, u: c.request("BAD METHOD", u), ConfigError, "method"),
    ],
)
async def test_bad_input_is_rejected_before_any_io(server, call, exc, names):
    async with AsyncHTTPClient() as client:
        before = server.state.total
        with pytest.raises(exc) as ei:
            await call(client, server.url + "/json")
        assert names in str(ei.value)
        assert server.state.total == before


def test_bad_client_config_is_rejected():
    with pytest.raises(ConfigError, match="timeout_total"):
        AsyncHTTPClient(ConnectionPoolConfig(timeout_total=-5))
    with pytest.raises(ConfigError, match="max_retries"):
        AsyncHTTPClient(retry_config=RetryConfig(max_retries=-1))
    with pytest.raises(ValueError):
        RetryConfig(strategy="sometimes")._policy()


SECRETS = ("abc", "xyz", "signature=", "apiKey", "pa55w0rd")


def assert_redacted(exc: BaseException) -> None:
    for text in (str(exc), repr(exc), *map(str, exc.args)):
        for secret in SECRETS:
            assert secret not in text, (secret, text)


@pytest.mark.asyncio
async def test_error_messages_never_contain_query_strings_or_secrets(server, raw_server, key):
    query = "?signature=abc&apiKey=xyz"
    closed = f"http://127.0.0.1:{free_port()}"
    async with AsyncHTTPClient(retry_config=RetryConfig(max_retries=1, base_delay=0.01)) as client:
        with pytest.raises(ConnectError) as ei:
            await client.get(closed + "/api/v3/order" + query)
        assert_redacted(ei.value)
        assert "127.0.0.1" in str(ei.value) and "/api/v3/order" in str(ei.value)
        with pytest.raises(ConnectError) as ei:
            await client.get(f"http://user:pa55w0rd@127.0.0.1:{free_port()}/x" + query)
        assert_redacted(ei.value)
        with pytest.raises(ConnectError) as ei:
            await client.post(raw_server.url + "/order" + query, data=b"1")
        assert_redacted(ei.value)
        with pytest.raises(RequestTimeout) as ei:
            await client.get(server.url + f"/sleep{query}&key={key}&sleep=2", timeout=0.2)
        assert_redacted(ei.value)
        resp = await client.get(server.url + "/status" + query + "&code=401")
        with pytest.raises(HTTPStatusError) as ei:
            resp.raise_for_status()
        assert_redacted(ei.value)
        with pytest.raises(RateLimitExceeded) as ei:
            await client.get(server.url + f"/ratelimit{query}&key={key}&after=90")
        assert_redacted(ei.value)


@pytest.mark.asyncio
async def test_debug_logs_are_redacted(server, key, caplog):
    with caplog.at_level(logging.DEBUG, logger="ferrotick"):
        async with AsyncHTTPClient(retry_config=FAST_RETRY) as client:
            resp = await client.get(server.url + f"/flaky?key={key}&fail=1&signature=abc")
            assert resp.status == 200
        await asyncio.sleep(0.05)
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("ferrotick"))
    assert "retrying" in text  # the retry was logged ...
    assert "signature=abc" not in text  # ... without its query string


@pytest.mark.asyncio
async def test_closed_client_refuses_requests(server):
    client = AsyncHTTPClient()
    await client.close()
    assert client.closed
    with pytest.raises(HTTPError, match="closed"):
        await client.get(server.url + "/json")


def test_runtime_is_reachable():
    # the suite's own premise: the installed extension answers
    assert ferrotick.echo_sync(7) == 7


def test_json_loads_matches_the_standard_library():
    import json
    import random

    from ferrotick._core import json_loads

    rng = random.Random(11)

    def gen(depth=0):
        r = rng.random()
        if depth > 4 or r < 0.3:
            return rng.choice(
                [
                    rng.randint(-(10**20), 10**20),
                    rng.random() * 10 ** rng.randint(-300, 300),
                    round(rng.uniform(0, 1e5), rng.randint(0, 8)),
                    "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(0, 10))),
                    None,
                    True,
                    False,
                    "",
                ]
            )
        if r < 0.65:
            return [gen(depth + 1) for _ in range(rng.randint(0, 6))]
        return {
            "".join(chr(rng.randint(32, 126)) for _ in range(rng.randint(0, 6))): gen(depth + 1)
            for _ in range(rng.randint(0, 6))
        }

    for _ in range(2000):
        obj = gen()
        for ensure_ascii in (True, False):
            data = json.dumps(obj, ensure_ascii=ensure_ascii).encode()
            assert json_loads(data) == json.loads(data)
    for bad in (
        b"",
        b"[1,]",
        b'{"a":1,}',
        b"01",
        b"[1 2]",
        b'"abc',
        b'"\x01"',
        b"[1]x",
        b"1.",
        b"\xff",
    ):
        with pytest.raises(ValueError):
            json_loads(bad)


# -- rate limiters attached to the client, connection counts, monitor reporting ----------


def _max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.mark.asyncio
async def test_rate_limiter_attached_per_route_spaces_requests_at_the_server(server, key):
    limiter = ferrotick.RateLimiter(3, 0.25)
    async with AsyncHTTPClient() as client:
        client.add_rate_limit(limiter, host="127.0.0.1", route="/flaky")
        t0 = time.monotonic()
        # 9 requests through a limit of 3 per 0.25 s: the server sees them in 3 windows
        res = await asyncio.gather(
            *(client.get(server.url + f"/flaky?key={key}&fail=0") for _ in range(9))
        )
        took = time.monotonic() - t0
        assert all(r.status == 200 for r in res)
        arrivals = server.state.arrivals[f"flaky:{key}"]
        assert len(arrivals) == 9
        # small margin for the server's clock reading after the request arrives
        assert _max_in_any_window(arrivals, 0.25 - 0.02) <= 3
        assert took >= 0.5 - 0.02
        st = host_stats(client, server.url)
        assert st["limiter_waits"] == 6 and st["limiter_wait_seconds"] > 0
        # another route of the host is not limited
        t0 = time.monotonic()
        await asyncio.gather(*(client.get(server.url + "/json") for _ in range(9)))
        assert time.monotonic() - t0 < 0.25
        assert host_stats(client, server.url)["limiter_waits"] == 6
        # detached: no more waits
        assert client.remove_rate_limit(limiter) == 1
        await asyncio.gather(*(client.get(server.url + f"/flaky?key={key}x") for _ in range(6)))
        assert host_stats(client, server.url)["limiter_waits"] == 6


@pytest.mark.asyncio
async def test_rate_limiter_counts_every_attempt_and_matches_methods(server, key):
    limiter = ferrotick.RateLimiter(1, 0.2)
    async with AsyncHTTPClient(retry_config=FAST_RETRY) as client:
        client.add_rate_limit(limiter, route="/flaky", methods=["get"])
        t0 = time.monotonic()
        resp = await client.get(server.url + f"/flaky?key={key}&fail=2&status=503")
        assert resp.status == 200 and resp.attempts == 3
        # three attempts, each taking the limiter's only slot: two full windows apart
        assert time.monotonic() - t0 >= 0.4 - 0.02
        arrivals = server.state.arrivals[f"flaky:{key}"]
        assert len(arrivals) == 3 and _max_in_any_window(arrivals, 0.2 - 0.02) == 1
        # a POST is not limited by a GET rule
        waits = host_stats(client, server.url)["limiter_waits"]
        await asyncio.gather(*(client.post(server.url + "/echo", data=b"x") for _ in range(5)))
        assert host_stats(client, server.url)["limiter_waits"] == waits


@pytest.mark.asyncio
async def test_cancelled_limiter_waiters_give_their_slots_back(server, key):
    limiter = ferrotick.RateLimiter(1, 0.3)
    async with AsyncHTTPClient() as client:
        client.add_rate_limit(limiter, host=f"127.0.0.1:{server.port}")
        await client.get(server.url + "/json")  # takes the slot
        waiters = [asyncio.ensure_future(client.get(server.url + "/json")) for _ in range(20)]
        await asyncio.sleep(0.05)
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        await asyncio.sleep(0.05)
        # the 20 reservations were given back: the next request waits one window at most
        t0 = time.monotonic()
        await client.get(server.url + "/json")
        assert time.monotonic() - t0 < 0.3


def test_rate_limit_bad_input_names_the_argument():
    client = AsyncHTTPClient()
    try:
        lim = ferrotick.RateLimiter(5, 1.0)
        with pytest.raises(ConfigError, match="weight"):
            client.add_rate_limit(lim, weight=6)
        with pytest.raises(ConfigError, match="weight"):
            client.add_rate_limit(lim, weight=0)
        with pytest.raises(ConfigError, match="route"):
            client.add_rate_limit(lim, route="api/v3")
        with pytest.raises(ConfigError, match="methods"):
            client.add_rate_limit(lim, methods=["GE T"])
        with pytest.raises(ConfigError, match="host"):
            client.add_rate_limit(lim, host="http://x/y")
        with pytest.raises(TypeError, match="limiter"):
            client.add_rate_limit(object())
        with pytest.raises(ConfigError, match="monitor"):
            AsyncHTTPClient(monitor="yes")
    finally:
        client.close_sync()


@pytest.mark.asyncio
async def test_open_and_idle_connections_per_host_match_the_server():
    server = AsgiServer()  # its own: the connection count is this test's alone
    with server:
        async with AsyncHTTPClient() as client:
            res = await asyncio.gather(
                *(client.get(server.url + "/slow?chunks=1&head_delay=0.2") for _ in range(6))
            )
            assert all(r.status == 200 for r in res)
            st = client.stats()
            h = st["hosts"][server.url]
            assert h["open"] == server.open_connections() == 6
            assert h["idle"] == 6 and h["in_flight"] == 0
            assert st["open"] == 6 and st["idle"] == 6
            # two requests in flight: 2 busy, 4 idle
            busy = [
                asyncio.ensure_future(client.get(server.url + "/slow?chunks=1&head_delay=0.5"))
                for _ in range(2)
            ]
            await asyncio.sleep(0.2)
            h = client.stats()["hosts"][server.url]
            assert h["in_flight"] == 2 and h["open"] == 6 and h["idle"] == 4
            await asyncio.gather(*busy)
        # closed client: the pool's sockets are gone, on both sides
        assert await asyncio.to_thread(wait_until, lambda: server.open_connections() == 0, 5)
        assert client.stats()["open"] == 0


@pytest.mark.asyncio
async def test_requests_are_reported_to_the_performance_monitor(server, key):
    from ferrotick.monitor import AsyncPerformanceMonitor

    mon = AsyncPerformanceMonitor()
    async with AsyncHTTPClient(monitor=mon, retry_config=FAST_RETRY) as client:
        for _ in range(3):
            await client.get(server.url + "/json")
        await client.get(server.url + f"/flaky?key={key}&fail=1&status=503")
        with pytest.raises(ConnectError):
            await client.get(f"http://127.0.0.1:{free_port()}/x", retry_config=None)
    ops = mon.get_metrics()
    ok = ops[f"http GET {server.url}"]
    assert ok["count"] == 4 and ok["error_count"] == 0 and ok["max_time"] > 0
    dead = [
        v
        for k, v in ops.items()
        if k.startswith("http GET http://127.0.0.1:") and k != f"http GET {server.url}"
    ]
    assert len(dead) == 1 and dead[0]["error_types"] == {"ConnectError": 1}
    # monitor=False: nothing reported
    mon2 = AsyncPerformanceMonitor()
    async with AsyncHTTPClient(monitor=False) as client:
        await client.get(server.url + "/json")
    assert mon2.get_metrics() == {}
