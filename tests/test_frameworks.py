"""ferrotick awaited from FastAPI handlers under a real uvicorn server, and a
client disconnect cancelling the Rust work of a handler."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest
import uvicorn
from conftest import free_port
from fastapi import FastAPI, Request

import ferrotick


class Server:
    def __init__(self, app):
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


def make_app(state):
    app = FastAPI()

    @app.get("/echo/{x}")
    async def echo(x: int):
        values = await asyncio.gather(*(ferrotick.echo(x + i, 0.001) for i in range(10)))
        await ferrotick.sleep(0)
        return {"values": values, "pending": ferrotick.runtime_stats()["pending_futures"]}

    @app.get("/slow")
    async def slow():
        state["started"] += 1
        try:
            await ferrotick.sleep(30)
        except asyncio.CancelledError:
            state["cancelled"] += 1
            raise
        return {"done": True}

    @app.get("/watch")
    async def watch(request: Request):
        # the FastAPI way to stop work when the client goes away: uvicorn
        # does not cancel a plain route's coroutine on disconnect
        async def work():
            state["started"] += 1
            try:
                await ferrotick.sleep(30)
            except asyncio.CancelledError:
                state["cancelled"] += 1
                raise

        task = asyncio.ensure_future(work())
        while not task.done():
            if await request.is_disconnected():
                task.cancel()
                break
            await asyncio.wait({task}, timeout=0.05)
        return {"done": task.done() and not task.cancelled()}

    return app


async def watch_disconnect(scope, receive, send):
    """A raw ASGI app: waits on ferrotick.sleep and cancels it when the client
    disconnects (what Starlette's StreamingResponse/ FastAPI handlers get)."""
    assert scope["type"] == "http"
    work = asyncio.ensure_future(ferrotick.sleep(30))

    async def disconnected():
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return

    watcher = asyncio.ensure_future(disconnected())
    done, _ = await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if watcher in done:
        work.cancel()
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})


def test_fastapi_handlers_await_ferrotick():
    state = {"started": 0, "cancelled": 0}
    with Server(make_app(state)) as base:
        with httpx.Client(base_url=base, timeout=10) as c:
            for x in (1, 5, 100):
                r = c.get(f"/echo/{x}")
                assert r.status_code == 200
                assert r.json()["values"] == [x + i for i in range(10)]

        async def many():
            async with httpx.AsyncClient(base_url=base, timeout=10) as ac:
                rs = await asyncio.gather(*(ac.get(f"/echo/{i}") for i in range(50)))
            return [r.json()["values"][0] for r in rs]

        assert asyncio.run(many()) == list(range(50))


@pytest.mark.parametrize("kind", ["asgi", "fastapi"])
def test_client_disconnect_cancels_the_rust_work(kind, baseline_tasks):
    state = {"started": 0, "cancelled": 0}
    app = watch_disconnect if kind == "asgi" else make_app(state)
    path = "/" if kind == "asgi" else "/watch"
    with Server(app) as base:
        with httpx.Client(base_url=base) as c:
            for _ in range(5):
                with pytest.raises(httpx.ReadTimeout):
                    c.get(path, timeout=0.3)
            # while it runs, the server's Rust work is alive
        deadline = time.monotonic() + 3
        n = ferrotick.runtime_stats()["alive_tasks"]
        while n > baseline_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
            n = ferrotick.runtime_stats()["alive_tasks"]
        assert n <= baseline_tasks
        if kind == "fastapi":
            assert state == {"started": 5, "cancelled": 5}


def test_rust_work_is_alive_while_the_client_waits(baseline_tasks):
    # the counterpart of the test above: without a disconnect nothing is dropped
    with Server(watch_disconnect) as base:
        with httpx.Client(base_url=base) as c:
            seen = []

            def probe():
                time.sleep(0.2)
                seen.append(ferrotick.runtime_stats()["alive_tasks"])

            t = threading.Thread(target=probe)
            t.start()
            with pytest.raises(httpx.ReadTimeout):
                c.get("/", timeout=0.5)
            t.join()
    assert seen and seen[0] >= baseline_tasks + 1


@pytest.fixture
def app_state():
    return {"started": 0, "cancelled": 0}


@pytest.mark.asyncio
async def test_fastapi_in_process_under_pytest_asyncio(app_state):
    transport = httpx.ASGITransport(app=make_app(app_state))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
        rs = await asyncio.gather(*(c.get(f"/echo/{i}") for i in range(20)))
    assert [r.json()["values"][0] for r in rs] == list(range(20))
    assert await ferrotick.echo("after", 0.001) == "after"


@pytest.mark.asyncio
async def test_uvicorn_from_a_pytest_asyncio_loop(app_state):
    with Server(make_app(app_state)) as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            r, v = await asyncio.gather(c.get("/echo/7"), ferrotick.echo("mine", 0.01))
    assert r.json()["values"][:2] == [7, 8] and v == "mine"
