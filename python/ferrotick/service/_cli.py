"""``ferrotick serve``: the analysis service (``ferrotick.service``) under uvicorn.

Exit status: 0 after Ctrl-C or SIGTERM (a graceful stop), 1 when the exchange cannot
be reached or the server cannot start (port taken, FastAPI or uvicorn missing), 2 for
bad arguments or a bad config file. Expected failures print one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import signal
import socket
import sys
from typing import Any

from .. import _core
from .._errors import ConfigError, FerrotickError

PROG = "ferrotick serve"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Run the analysis service (market regime /detect/, /analyze/{symbol}, "
        "/async-performance, /metrics, /health) under uvicorn, against the embedded "
        "simulated exchange unless an exchange URL is given or configured.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to bind (8000)")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (1); with more, one simulated exchange serves them all",
    )
    p.add_argument(
        "--config", metavar="PATH", help="a config file (default: $FERROTICK_CONFIG if set)"
    )
    p.add_argument(
        "--exchange-url",
        metavar="URL",
        help="the exchange's REST URL (default: the config's binance.base_url when it is "
        "not the public exchange's, else an embedded simulated exchange)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="log level (info)",
    )
    return p


def _fail(message: str, status: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return status


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging setup with ferrotick's loggers on its handler (workers
    apply it too: the setup travels with uvicorn's config)."""
    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["loggers"]["ferrotick"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return cfg


async def _ping(binance: Any) -> None:
    from ..exchange import OptimizedBinanceClient

    client = OptimizedBinanceClient(binance)
    try:
        await client.request("GET", "/api/v3/ping")
    finally:
        await client.close()


def _check_exchange(url: str, config: Any) -> str | None:
    """None when one ``/api/v3/ping`` to ``url`` succeeds, else why not."""
    from ..exchange import BinanceConfig
    from ._app import binance_config

    base = config.binance if config is not None else BinanceConfig()
    try:
        asyncio.run(_ping(binance_config(base, base_url=url, max_retries=0)))
    except (FerrotickError, OSError) as e:
        return f"{type(e).__name__}: {e}"
    return None


def _check_bind(host: str, port: int) -> str | None:
    """None when ``host:port`` can be bound (as uvicorn binds it, with SO_REUSEADDR),
    else why not; checked before the app starts so that a taken port costs one line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as e:
        return e.strerror or str(e)
    return None


def _stop_on_sigterm() -> None:
    """SIGTERM stops the server as Ctrl-C does. uvicorn handles the signal for the
    graceful stop, then raises it again with this handler back in place, so the
    process ends with status 0 instead of "killed by SIGTERM"."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _run_workers(args: argparse.Namespace, config: Any, url: str | None, log: Any) -> None:
    """Several workers: uvicorn imports ``app_from_env`` in each; the parent runs the
    one simulated exchange they share (unless an exchange URL is given)."""
    import uvicorn

    from ..exchange import BinanceConfig
    from ._app import ENV_EXCHANGE_URL, ENV_WORKERS, ENV_WS_URL, SIM_SYMBOLS, ws_url_for

    sim = None
    if url is None:
        from ..sim import SimulatedExchange

        sim = SimulatedExchange(SIM_SYMBOLS, epoch=None).start()
        url, ws = sim.base_url, sim.ws_url
        print(f"{PROG}: simulated exchange at {url} for {args.workers} workers", file=sys.stderr)
    else:
        ws = ws_url_for(url, (config.binance if config is not None else BinanceConfig()).ws_url)
    os.environ[ENV_EXCHANGE_URL] = url
    os.environ[ENV_WS_URL] = ws
    os.environ[ENV_WORKERS] = str(args.workers)
    if config is not None and config.path:
        os.environ["FERROTICK_CONFIG"] = os.path.abspath(config.path)
    try:
        uvicorn.run(
            "ferrotick.service:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_config=log,
            log_level=args.log_level,
        )
    finally:
        if sim is not None:
            sim.close()


def _serve(args: argparse.Namespace, config: Any, url: str | None) -> None:
    import uvicorn

    log = _log_config(args.log_level)
    if args.workers > 1:
        _run_workers(args, config, url, log)
        return
    from ._app import create_app

    app = create_app(config, exchange_url=url)
    uvicorn.run(app, host=args.host, port=args.port, log_config=log, log_level=args.log_level)


def _check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        p.error(f"--port: expected 0..65535, got {args.port}")
    if args.workers < 1:
        p.error(f"--workers: expected an integer >= 1, got {args.workers}")
    url = args.exchange_url
    if url is not None and not url.startswith(("http://", "https://")):
        p.error(f"--exchange-url: expected an http(s) URL, got {url!r}")


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    _check_args(p, args)
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        return _fail(f"needs FastAPI and uvicorn ({e}); install ferrotick[serve]", 1)
    from ..config import load_config
    from ._app import configured_exchange_url

    try:
        config = (
            load_config(args.config) if args.config or os.environ.get("FERROTICK_CONFIG") else None
        )
    except ConfigError as e:
        return _fail(str(e), 2)
    url = args.exchange_url or configured_exchange_url(config)
    why = _check_bind(args.host, args.port)
    if why is not None:
        return _fail(f"cannot listen on {args.host}:{args.port}: {why}", 1)
    try:
        if url is not None:
            why = _check_exchange(url, config)
            if why is not None:
                return _fail(f"exchange at {_core.redact_url(url)} is unreachable: {why}", 1)
        _stop_on_sigterm()
        _serve(args, config, url)
    except KeyboardInterrupt:
        pass
    except ConfigError as e:
        return _fail(str(e), 2)
    except SystemExit as e:  # uvicorn's own exits: it has logged why
        return 0 if e.code in (0, None) else 1
    return 0
