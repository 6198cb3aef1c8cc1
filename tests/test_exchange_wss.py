"""Market streams over wss://: a TLS WebSocket server on loopback (certificates from
trustme) speaking Binance's combined-stream format; the client verifies it against a
given CA bundle and refuses it against the platform's store."""

from __future__ import annotations

import asyncio
import json
import ssl

import pytest
import trustme
from aiohttp import web

import ferrotick
from ferrotick.exchange import BinanceConfig, OptimizedBinanceClient

pytestmark = pytest.mark.asyncio


async def start_tls_stream_server(ca: trustme.CA) -> tuple[web.AppRunner, int]:
    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        names = request.query["streams"].split("/")
        for i in range(3):
            for n in names:
                await ws.send_str(json.dumps({"stream": n, "data": {"e": "trade", "t": i}}))
        await asyncio.sleep(30)
        return ws

    app = web.Application()
    app.router.add_get("/stream", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


async def test_wss_with_a_ca_bundle_receives_frames(tmp_path) -> None:
    ca = trustme.CA()
    runner, port = await start_tls_stream_server(ca)
    try:
        cfg = BinanceConfig(base_url="http://127.0.0.1:9", ws_url=f"wss://localhost:{port}")
        client = OptimizedBinanceClient(cfg)
        sub = client.stream(["btcusdt@trade", "ethusdt@trade"], ca=ca.cert_pem.bytes())
        got = []
        async with asyncio.timeout(10):
            async for msg in sub:
                got.append((msg["stream"], msg["data"]["t"]))
                if len(got) == 6:
                    break
        assert sorted(got) == sorted(
            (n, i) for i in range(3) for n in ("btcusdt@trade", "ethusdt@trade")
        )
        sub.close()
        # the same bundle from a file
        path = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(path))
        sub = client.stream(["btcusdt@trade"], ca=str(path))
        async with asyncio.timeout(10):
            first = await sub.__anext__()
        assert first["stream"] == "btcusdt@trade"
        sub.close()
    finally:
        await runner.cleanup()


async def test_wss_refuses_an_untrusted_certificate() -> None:
    runner, port = await start_tls_stream_server(trustme.CA())
    try:
        cfg = BinanceConfig(base_url="http://127.0.0.1:9", ws_url=f"wss://localhost:{port}")
        sub = OptimizedBinanceClient(cfg).stream(["btcusdt@trade"], max_backoff=0.2)
        await asyncio.sleep(1.0)
        st = sub.stats()
        assert st["received"] == 0 and st["connects"] == 0
        assert "TLS" in (st["last_error"] or "")
        sub.close()
    finally:
        await runner.cleanup()


async def test_bad_ca_arguments_are_named(tmp_path) -> None:
    cfg = BinanceConfig(base_url="http://127.0.0.1:9", ws_url="wss://localhost:9")
    client = OptimizedBinanceClient(cfg)
    with pytest.raises(ferrotick.ConfigError, match="ca: cannot read"):
        client.stream(["btcusdt@trade"], ca=str(tmp_path / "missing.pem"))
    with pytest.raises(ferrotick.ConfigError, match="ca: the CA bundle holds no certificate"):
        client.stream(["btcusdt@trade"], ca=b"not a certificate")
