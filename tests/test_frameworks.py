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
from fastapi import FastAPI

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


def test_client_disconnect_cancels_the_rust_work(baseline_tasks):
    with Server(watch_disconnect) as base:
        with httpx.Client(base_url=base) as c:
            for _ in range(5):
                with pytest.raises(httpx.ReadTimeout):
                    c.get("/", timeout=0.3)
        deadline = time.monotonic() + 3
        n = ferrotick.runtime_stats()["alive_tasks"]
        while n > baseline_tasks and time.monotonic() < deadline:
            time.sleep(0.02)
            n = ferrotick.runtime_stats()["alive_tasks"]
        assert n <= baseline_tasks
