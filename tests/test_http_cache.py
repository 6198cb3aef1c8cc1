"""AsyncHTTPClient's response cache (``cache=ResponseCacheConfig(...)``) against real
servers on 127.0.0.1: what is stored and for how long, what the key is made of, one
request for concurrent identical GETs (the server counts them), a waiter's cancellation
and a failure of the shared request, several event loops and threads, the blocking twin."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from urllib.parse import urlencode

import pytest
from http_server import AsgiServer

from ferrotick import (
    AsyncHTTPClient,
    BlockingCallError,
    ConfigError,
    ConnectError,
    HTTPError,
    HTTPStatusError,
    RequestTimeout,
    ResponseCacheConfig,
)


def cached_url(server: AsgiServer, key: str, **query: object) -> str:
    return f"{server.url}/cached?" + urlencode({"key": key, **query})


def hits(server: AsgiServer, key: str) -> int:
    """Requests that reached the server's /cached route for this key."""
    return server.state.hits[f"cached:{key}"]


def cached_client(**kwargs: object) -> AsyncHTTPClient:
    return AsyncHTTPClient(cache=ResponseCacheConfig(**kwargs))  # type: ignore[arg-type]


async def wait_idle(client: AsyncHTTPClient, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = client.cache_info()
        assert info is not None
        if not info["in_flight"]:
            return
        await asyncio.sleep(0.01)


# -- what is stored --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_off_by_default(server, key):
    async with AsyncHTTPClient() as client:
        for n in (1, 2):
            resp = await client.get(cached_url(server, key))
            assert await resp.json() == {"hits": n, "auth": None}
            assert resp.from_cache is False
        assert client.cache_info() is None
        client.cache_clear()  # nothing to clear: a no-op
    assert hits(server, key) == 2


@pytest.mark.asyncio
async def test_a_repeated_get_is_served_from_the_cache(server, key):
    async with cached_client(ttl_seconds=60) as client:
        url = cached_url(server, key)
        first = await client.get(url)
        second = await client.get(url)
        assert first.from_cache is False and second.from_cache is True
        for resp in (first, second):
            assert resp.status == 200 and resp.ok and resp.reason == "OK"
            assert resp.url == url and resp.attempts == 1
            assert resp.headers["Content-Type"] == "application/json"
            assert await resp.json() == {"hits": 1, "auth": None}
        assert client.cache_info() == {
            "hits": 1,
            "misses": 1,
            "shared": 0,
            "size": 1,
            "maxsize": 1024,
            "ttl_seconds": 60.0,
            "in_flight": 0,
        }
    assert hits(server, key) == 1


@pytest.mark.asyncio
async def test_every_caller_reads_its_own_response(server, key):
    async with cached_client() as client:
        url = cached_url(server, key)
        a, b, c = [await client.get(url) for _ in range(3)]
        doc = await a.json()
        doc["hits"] = 99  # one caller mutating its document ...
        assert await b.json() == {"hits": 1, "auth": None}  # ... changes nobody else's
        assert await a.json() == {"hits": 1, "auth": None}  # decoded afresh on each call
        body = await b.read()
        assert [chunk async for chunk in b] == [body]  # iterating yields the body once
        assert [chunk async for chunk in b] == []
        assert await b.read() == body and await b.text() == body.decode()  # still readable
        assert b"".join([chunk async for chunk in c.iter_chunked(5)]) == body
        assert await c.json(loads=json.loads) == {"hits": 1, "auth": None}
        assert [chunk async for chunk in a] == [body]  # the response of the miss too
        c.release()
        assert await (await client.get(url)).read() == body
    assert hits(server, key) == 1


@pytest.mark.asyncio
async def test_the_key_is_method_url_and_request_headers(server, key):
    base = server.url + "/cached"
    async with cached_client() as client:
        r1 = await client.get(base, params={"key": key, "a": 1})
        r2 = await client.get(base, params={"key": key, "a": 2})  # other params: a miss
        r3 = await client.get(f"{base}?key={key}&a=1")  # the same URL spelled out: a hit
        assert [(await r.json())["hits"] for r in (r1, r2, r3)] == [1, 2, 1]
        assert r3.from_cache

        q = {"key": key}
        alice = await client.get(base, params=q, headers={"Authorization": "Bearer alice"})
        bob = await client.get(base, params=q, headers={"Authorization": "Bearer bob"})
        assert (await alice.json())["auth"] == "Bearer alice"
        assert (await bob.json())["auth"] == "Bearer bob"  # never alice's response
        assert not bob.from_cache
        again = await client.get(base, params=q, headers={"authorization": "Bearer bob"})
        assert again.from_cache and (await again.json())["auth"] == "Bearer bob"

        # header names' case and order do not matter
        x = await client.get(base, params=q, headers={"Accept": "application/json", "X-A": "1"})
        y = await client.get(base, params=q, headers={"x-a": "1", "accept": "application/json"})
        assert not x.from_cache and y.from_cache
    assert hits(server, key) == 5


@pytest.mark.asyncio
async def test_no_secret_is_kept_in_clear(server, key, caplog):
    api_key, token = "s3cr3t-api-key", "t0ken-abc"
    with caplog.at_level(logging.DEBUG, logger="ferrotick"):
        async with cached_client() as client:
            url = cached_url(server, key, apiKey=api_key)
            auth = {"Authorization": f"Bearer {token}"}
            first = await client.get(url, headers=auth)
            assert (await client.get(url, headers=auth)).from_cache  # it was stored
            store = client._cache
            assert store is not None and all(len(k) == 32 for k in store.entries)
            texts = [repr(client.cache_info()), repr(vars(store)), repr(first)]
            texts += [r.getMessage() for r in caplog.records]
            for text in texts:
                assert api_key not in text and token not in text, text


@pytest.mark.asyncio
async def test_only_get_is_cached_unless_head_is_asked_for(server, key):
    async with cached_client() as client:
        url = cached_url(server, key)
        for _ in range(2):
            assert not (await client.post(url, json={})).from_cache
            assert not (await client.head(url)).from_cache
        assert hits(server, key) == 4
        with pytest.raises(ConfigError, match="cache_ttl"):
            client.post(url, cache_ttl=5)
    async with cached_client(methods=("GET", "HEAD")) as client:
        url = cached_url(server, key + "-head")
        h1 = await client.head(url)
        h2 = await client.head(url)
        get = await client.get(url)  # a key of its own
        assert not h1.from_cache and h2.from_cache and not get.from_cache
        assert h2.status == 200 and await h2.read() == b""
        assert (await get.json())["hits"] == 2


@pytest.mark.asyncio
async def test_only_2xx_is_stored_unless_configured(server, key):
    async with cached_client() as client:
        for n in (1, 2):
            resp = await client.get(cached_url(server, key, status=404))
            assert resp.status == 404 and not resp.from_cache
            assert (await resp.json())["hits"] == n
        await client.get(cached_url(server, key + "-203", status=203))
        assert (await client.get(cached_url(server, key + "-203", status=203))).from_cache
    async with cached_client(cacheable_statuses={200, 404}) as client:
        url = cached_url(server, key + "-404", status=404)
        first = await client.get(url)
        second = await client.get(url)
        assert second.from_cache and second.status == 404 and not second.ok
        with pytest.raises(HTTPStatusError) as ei:
            second.raise_for_status()
        assert ei.value.status == 404 and ei.value.body == await first.read()
        url = cached_url(server, key + "-203b", status=203)  # 2xx, but not in the set
        await client.get(url)
        assert not (await client.get(url)).from_cache


@pytest.mark.asyncio
async def test_entries_expire_after_ttl_seconds(server, key):
    async with cached_client(ttl_seconds=1.0) as client:
        url = cached_url(server, key)
        assert (await (await client.get(url)).json())["hits"] == 1
        assert (await client.get(url)).from_cache
        await asyncio.sleep(1.3)
        resp = await client.get(url)
        assert not resp.from_cache and (await resp.json())["hits"] == 2
        assert client.cache_info()["size"] == 1


@pytest.mark.asyncio
async def test_a_response_max_age_shorter_than_the_ttl_wins(server, key):
    async with cached_client(ttl_seconds=60) as long_ttl, cached_client(ttl_seconds=1) as short:
        short_age = cached_url(server, key + "-a", cc="public, max-age=1")
        long_age = cached_url(server, key + "-b", cc="max-age=3600")
        await long_ttl.get(short_age)
        await short.get(long_age)
        assert (await long_ttl.get(short_age)).from_cache
        assert (await short.get(long_age)).from_cache
        await asyncio.sleep(1.3)
        assert not (await long_ttl.get(short_age)).from_cache  # max-age=1 beat the 60 s
        assert not (await short.get(long_age)).from_cache  # and never extends the TTL


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("query", "stored"),
    [
        ({}, True),
        ({"cc": "private, max-age=30"}, True),
        ({"cc": "max-age=60", "age": "5"}, True),
        ({"expires": "30"}, True),
        ({"vary": "Accept"}, True),
        ({"cc": "no-store"}, False),
        ({"cc": "public, no-cache"}, False),
        ({"cc": "max-age=0"}, False),
        ({"cc": "max-age=soon"}, False),
        ({"cc": "max-age=5", "age": "9"}, False),
        ({"vary": "*"}, False),
        ({"vary": "Accept-Encoding, Cookie"}, False),  # the jar's cookies are not in the key
        ({"expires": "-30"}, False),
        ({"expires": "never"}, False),
    ],
)
async def test_response_headers_decide_what_is_stored(server, key, query, stored):
    async with cached_client() as client:
        url = cached_url(server, key, **query)
        await client.get(url)
        assert (await client.get(url)).from_cache is stored
    assert hits(server, key) == (1 if stored else 2)
    # respect_cache_control=False: stored for the TTL, whatever the response says
    async with cached_client(respect_cache_control=False) as client:
        url = cached_url(server, key + "-ignored", **query)
        await client.get(url)
        assert (await client.get(url)).from_cache


@pytest.mark.asyncio
async def test_vary_cookie_is_stored_when_the_client_keeps_no_cookies(server, key):
    async with AsyncHTTPClient(cookies=False, cache=True) as client:
        url = cached_url(server, key, vary="Cookie")
        await client.get(url)
        assert (await client.get(url)).from_cache


@pytest.mark.asyncio
async def test_request_no_cache_refreshes_and_no_store_bypasses(server, key):
    async with cached_client() as client:
        url = cached_url(server, key)
        assert (await (await client.get(url)).json())["hits"] == 1
        fresh = await client.get(url, headers={"Cache-Control": "no-cache"})
        assert not fresh.from_cache and (await fresh.json())["hits"] == 2
        plain = await client.get(url)  # the refreshed entry is the one plain GETs get
        assert plain.from_cache and (await plain.json())["hits"] == 2
        bypass = await client.get(url, headers={"Cache-Control": "no-store"})
        assert not bypass.from_cache and (await bypass.json())["hits"] == 3
        assert (await (await client.get(url)).json())["hits"] == 2  # left as it was
        pragma = await client.get(url, headers={"Pragma": "no-cache"})
        assert (await pragma.json())["hits"] == 4
    assert hits(server, key) == 4


@pytest.mark.asyncio
async def test_per_request_cache_false_and_cache_ttl(server, key):
    async with cached_client(ttl_seconds=60) as client:
        url = cached_url(server, key)
        await client.get(url)
        off = await client.get(url, cache=False)  # neither reads nor writes the cache
        assert not off.from_cache and (await off.json())["hits"] == 2
        assert (await (await client.get(url)).json())["hits"] == 1

        short = cached_url(server, key + "-short")
        await client.get(short, cache_ttl=1.0)
        assert (await client.get(short)).from_cache
        never = cached_url(server, key + "-never")
        await client.get(never, cache_ttl=0)
        assert not (await client.get(never)).from_cache
        await asyncio.sleep(1.3)
        assert not (await client.get(short)).from_cache  # its own TTL, not the 60 s
        assert (await client.get(url)).from_cache


@pytest.mark.asyncio
async def test_the_least_recently_used_goes_first_at_maxsize(server, key):
    async with cached_client(maxsize=2) as client:
        a, b, c = (cached_url(server, f"{key}-{n}") for n in "abc")
        await client.get(a)
        await client.get(b)
        assert (await client.get(a)).from_cache  # a is now the most recently used
        await client.get(c)  # evicts b
        assert client.cache_info()["size"] == 2
        assert (await client.get(a)).from_cache and (await client.get(c)).from_cache
        assert not (await client.get(b)).from_cache
    assert [hits(server, f"{key}-{n}") for n in "abc"] == [1, 2, 1]


# -- one request for concurrent identical GETs --------------------------------------------


@pytest.mark.asyncio
async def test_concurrent_identical_gets_send_one_request(server, key):
    async with cached_client() as client:
        url = cached_url(server, key, delay=0.4)

        async def streamed():
            async with client.get(url) as resp:
                return resp

        async def late():
            await asyncio.sleep(0.1)  # arrives while the request is in flight
            return await client.get(url)

        calls = [client.get(url) for _ in range(15)] + [streamed() for _ in range(3)]
        resps = await asyncio.gather(*calls, late(), late())
        assert hits(server, key) == 1
        assert [r.from_cache for r in resps].count(False) == 1
        assert all(r.status == 200 for r in resps)
        docs = [await r.json() for r in resps]
        assert all(d == {"hits": 1, "auth": None} for d in docs)
        docs[0]["hits"] = -1
        assert await resps[1].json() == {"hits": 1, "auth": None}
        info = client.cache_info()
        assert info["misses"] == 1 and info["shared"] + info["hits"] == 19
        assert info["in_flight"] == 0 and info["size"] == 1


@pytest.mark.asyncio
async def test_ttl_zero_shares_requests_in_flight_and_stores_nothing(server, key):
    async with cached_client(ttl_seconds=0) as client:
        url = cached_url(server, key, delay=0.2)
        resps = await asyncio.gather(*[client.get(url) for _ in range(5)])
        assert hits(server, key) == 1 and sum(r.from_cache for r in resps) == 4
        assert not (await client.get(url)).from_cache
        assert hits(server, key) == 2 and client.cache_info()["size"] == 0


@pytest.mark.asyncio
async def test_a_cancelled_waiter_does_not_cancel_the_shared_request(server, key):
    async with cached_client() as client:
        url = cached_url(server, key, delay=1.0)
        tasks = [asyncio.ensure_future(client.get(url)) for _ in range(3)]
        await asyncio.sleep(0.1)
        tasks[0].cancel()  # the caller whose call sent the request
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[0], asyncio.CancelledError)
        assert all(r.status == 200 and r.from_cache for r in results[1:])
        assert [(await r.json())["hits"] for r in results[1:]] == [1, 1]

        # every waiter gone: the request still completes, and is stored
        url = cached_url(server, key + "-all", delay=0.3)
        tasks = [asyncio.ensure_future(client.get(url)) for _ in range(3)]
        await asyncio.sleep(0.1)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await wait_idle(client)
        resp = await client.get(url)
        assert resp.from_cache and (await resp.json())["hits"] == 1
    for k in (key, key + "-all"):
        assert hits(server, k) == 1
        assert server.state.disconnects[f"cached:{k}"] == 0  # never dropped mid-way


@pytest.mark.asyncio
async def test_a_failed_shared_request_fails_every_waiter_and_is_not_stored(raw_server):
    async with cached_client() as client:
        url = raw_server.url + "/reset"
        before = raw_server.requests
        results = await asyncio.gather(*[client.get(url) for _ in range(5)], return_exceptions=True)
        assert all(isinstance(r, ConnectError) for r in results), results
        assert raw_server.requests - before == 1
        info = client.cache_info()
        assert (info["misses"], info["shared"], info["size"]) == (1, 4, 0)
        with pytest.raises(ConnectError):  # nothing stored: sent again
            await client.get(url)
        assert raw_server.requests - before == 2


@pytest.mark.asyncio
async def test_a_timeout_of_the_shared_request_reaches_every_waiter(server, key):
    async with cached_client() as client:
        url = cached_url(server, key, delay=3)
        calls = [client.get(url, timeout=0.3) for _ in range(4)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, RequestTimeout) for r in results), results
        assert hits(server, key) == 1 and client.cache_info()["size"] == 0


@pytest.mark.asyncio
async def test_an_error_status_is_shared_in_flight_but_not_stored(server, key):
    async with cached_client() as client:
        url = f"{server.url}/flaky?key={key}&fail=1&status=503"
        resps = await asyncio.gather(*[client.get(url) for _ in range(5)])
        assert [r.status for r in resps] == [503] * 5
        assert server.state.hits[f"flaky:{key}"] == 1
        ok = await client.get(url)
        assert ok.status == 200 and not ok.from_cache and await ok.json() == {"hits": 2}
        again = await client.get(url)
        assert again.from_cache and await again.json() == {"hits": 2}


@pytest.mark.asyncio
async def test_the_streamed_form_uses_the_cache(server, key):
    async with cached_client() as client:
        url = cached_url(server, key)
        async with client.get(url) as resp:  # a miss: read whole, then stored
            assert resp.status == 200 and not resp.from_cache
            body = b"".join([chunk async for chunk in resp])
        async with client.get(url) as resp:
            assert resp.from_cache and await resp.json() == json.loads(body)
            assert [chunk async for chunk in resp] == [body]
        assert hits(server, key) == 1
        # cache=False streams as without a cache
        async with client.get(server.url + "/slow?chunks=3&delay=0", cache=False) as resp:
            assert not resp.from_cache
            assert b"".join([c async for c in resp]) == b"chunk0\nchunk1\nchunk2\n"
        assert client.stats()["in_flight"] == 0


# -- loops, threads and the blocking twin -----------------------------------------------


def test_two_event_loops_in_two_threads(server, key):
    client = cached_client()
    url = cached_url(server, key, delay=0.3)
    barrier = threading.Barrier(2)
    out: list = []
    errors: list = []

    async def ten() -> list:
        resps = await asyncio.gather(*[client.get(url) for _ in range(10)])
        return [(r.status, await r.json()) for r in resps]

    def worker() -> None:
        try:
            barrier.wait(5)
            out.extend(asyncio.run(ten()))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert len(out) == 20 and all(status == 200 for status, _ in out)
    assert 1 <= hits(server, key) <= 2  # at most one request per loop
    assert all(doc["hits"] in (1, 2) for _, doc in out)

    async def third() -> bool:
        return (await client.get(url)).from_cache

    assert asyncio.run(third())  # a third loop gets what they stored
    client.close_sync()


def get_sync_in_threads(client: AsyncHTTPClient, url: str, timeout: float | None) -> list:
    """client.get_sync(url) from 6 threads released at once: (status, doc, from_cache)
    or the exception, per thread."""
    barrier = threading.Barrier(6)
    results: list = []

    def worker() -> None:
        barrier.wait(5)
        try:
            r = client.get_sync(url, timeout=timeout)
            results.append((r.status, r.json().result(), r.from_cache))
        except BaseException as e:  # checked by the caller
            results.append(e)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_the_blocking_twin_uses_the_cache(server, key):
    client = cached_client()
    try:
        url = cached_url(server, key)
        first = client.get_sync(url)
        second = client.get_sync(url)
        assert not first.from_cache and second.from_cache
        assert second.json().result() == {"hits": 1, "auth": None}
        assert second.read().result() == first.read().result()

        async def from_a_loop() -> bool:
            return (await client.get(url)).from_cache

        assert asyncio.run(from_a_loop())  # one store for both sides
        assert hits(server, key) == 1

        # threads asking at once: one request between them, its answer ...
        ok = get_sync_in_threads(client, cached_url(server, key + "-ok", delay=1.0), None)
        assert hits(server, key + "-ok") == 1
        assert [r[:2] for r in ok] == [(200, {"hits": 1, "auth": None})] * 6
        assert [r[2] for r in ok].count(False) == 1
        # ... or its error
        failed = get_sync_in_threads(client, cached_url(server, key + "-t", delay=4), 1.0)
        assert hits(server, key + "-t") == 1
        assert len(failed) == 6 and all(isinstance(r, RequestTimeout) for r in failed), failed
    finally:
        client.close_sync()


@pytest.mark.asyncio
async def test_the_blocking_twin_inside_a_loop_still_raises(server, key):
    client = cached_client()
    url = cached_url(server, key)
    await client.get(url)
    with pytest.raises(BlockingCallError):
        client.get_sync(url)  # even when the response is stored
    assert hits(server, key) == 1
    await client.close()


# -- introspection, lifecycle, bad input -------------------------------------------------


@pytest.mark.asyncio
async def test_cache_info_and_cache_clear(server, key):
    async with cached_client(ttl_seconds=30, maxsize=10) as client:
        url = cached_url(server, key)
        await client.get(url)
        await client.get(url)
        info = client.cache_info()
        assert (info["hits"], info["misses"], info["size"], info["maxsize"]) == (1, 1, 1, 10)
        assert info["ttl_seconds"] == 30.0
        client.cache_clear()
        info = client.cache_info()
        assert (info["hits"], info["misses"], info["shared"], info["size"]) == (0, 0, 0, 0)
        assert not (await client.get(url)).from_cache

        # a request in flight during cache_clear() is not stored when it completes
        slow = cached_url(server, key + "-slow", delay=1.0)
        task = asyncio.ensure_future(client.get(slow))
        await asyncio.sleep(0.1)
        assert client.cache_info()["in_flight"] == 1
        client.cache_clear()
        assert (await task).status == 200
        assert client.cache_info()["size"] == 0
        assert not (await client.get(slow)).from_cache
    assert hits(server, key) == 2 and hits(server, key + "-slow") == 2


@pytest.mark.asyncio
async def test_a_closed_client_serves_nothing_from_its_cache(server, key):
    client = cached_client()
    url = cached_url(server, key)
    await client.get(url)
    slow = cached_url(server, key + "-slow", delay=0.4)
    in_flight = asyncio.ensure_future(client.get(slow))
    await asyncio.sleep(0.1)
    await client.close()
    assert client.cache_info()["size"] == 0
    await asyncio.gather(in_flight, return_exceptions=True)  # completes after close()
    for u in (url, slow):
        with pytest.raises(HTTPError, match="closed"):
            await client.get(u)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"ttl_seconds": -1}, "ttl_seconds"),
        ({"ttl_seconds": float("inf")}, "ttl_seconds"),
        ({"ttl_seconds": "60"}, "ttl_seconds"),
        ({"ttl_seconds": True}, "ttl_seconds"),
        ({"maxsize": 0}, "maxsize"),
        ({"maxsize": 1.5}, "maxsize"),
        ({"maxsize": None}, "maxsize"),
        ({"maxsize": True}, "maxsize"),
        ({"cacheable_statuses": ["200"]}, "cacheable_statuses"),
        ({"cacheable_statuses": 200}, "cacheable_statuses"),
        ({"cacheable_statuses": {700}}, "cacheable_statuses"),
        ({"methods": ("GET", "POST")}, "methods"),
        ({"methods": "GET"}, "methods"),
        ({"methods": ()}, "methods"),
        ({"respect_cache_control": "yes"}, "respect_cache_control"),
    ],
)
def test_bad_cache_config_is_a_config_error(kwargs, name):
    with pytest.raises(ConfigError, match=name):
        ResponseCacheConfig(**kwargs)


def test_bad_cache_arguments_are_rejected_before_any_io(server):
    url = server.url + "/json"
    before = server.state.total
    for bad in (5, "yes", {"ttl_seconds": 5}):
        with pytest.raises(ConfigError, match="cache"):
            AsyncHTTPClient(cache=bad)
    edited = ResponseCacheConfig()
    edited.maxsize = 0
    with pytest.raises(ConfigError, match="maxsize"):
        AsyncHTTPClient(cache=edited)

    client = AsyncHTTPClient(cache=True)  # the defaults
    assert client.cache_info()["ttl_seconds"] == 60.0
    assert client.cache_info()["maxsize"] == 1024
    with pytest.raises(ConfigError, match="cache"):
        client.get(url, cache="no")
    with pytest.raises(ConfigError, match="cache"):
        client.get_sync(url, cache=1)
    with pytest.raises(ConfigError, match="cache_ttl"):
        client.get(url, cache_ttl=-1)
    with pytest.raises(ConfigError, match="cache_ttl"):
        client.get_sync(url, cache_ttl="5")
    client.close_sync()

    plain = AsyncHTTPClient(cache=False)
    assert plain.cache_info() is None
    with pytest.raises(ConfigError, match="cache_ttl"):
        plain.get(url, cache_ttl=5)
    plain.close_sync()
    assert server.state.total == before
