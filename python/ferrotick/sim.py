"""A simulated Binance spot exchange on loopback, served by ferrotick's Rust core.

``SimulatedExchange`` starts a real HTTP/WebSocket server on the shared tokio runtime
(``127.0.0.1`` and an ephemeral port by default) with Binance spot's REST endpoints, JSON
shapes and ``{"code", "msg"}`` errors, its request weights, 429/418 bans and signed-request
rules, market streams, and fault knobs for testing clients::

    async with SimulatedExchange(symbols=["BTCUSDT"], seed=7) as ex:
        async with aiohttp.ClientSession() as s:
            r = await s.get(f"{ex.base_url}/api/v3/klines",
                            params={"symbol": "BTCUSDT", "interval": "1m"})

``with SimulatedExchange(...)`` works the same way from Flask tests and scripts.

Prices are a pure function of ``(seed, symbol, simulated time)``. The simulated clock starts
at ``epoch`` (ms since 1970; ``DEFAULT_EPOCH_MS`` unless given, ``None`` for the wall clock)
and runs at ``time_scale`` times wall time; every server-side duration (limit windows, bans,
pings, the pong deadline, the WebSocket lifetime) is divided by ``time_scale`` in wall time,
and ``Retry-After`` is given in wall seconds. Signed requests must carry timestamps on the
server's clock: take it from ``/api/v3/time`` (as python-binance does) or
``ex.server_time()``.

The default API key pair is Binance's documented example pair, ``DEFAULT_API_KEY`` /
``DEFAULT_API_SECRET``; pass ``api_keys={key: secret}`` for others. Every account starts
with ``balances`` (default ``DEFAULT_BALANCES``). The matching model: MARKET orders and the
crossing part of LIMIT orders take liquidity from the simulated book; the rest of a GTC LIMIT
order rests outside the public book and fills whole at its price once the market reaches
it; commissions are zero.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from . import _core

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "DEFAULT_BALANCES",
    "DEFAULT_EPOCH_MS",
    "DEFAULT_SYMBOLS",
    "FAULTS",
    "SimulatedExchange",
]

#: Binance's documented example key pair (its HMAC signing example uses it).
DEFAULT_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DEFAULT_API_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
#: 2024-01-01 00:00:00 UTC.
DEFAULT_EPOCH_MS = 1_704_067_200_000
DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
DEFAULT_BALANCES: Mapping[str, str] = {
    "USDT": "100000",
    "USDC": "100000",
    "BTC": "2",
    "ETH": "30",
    "BNB": "150",
}
#: The fault knobs ``set_faults`` takes, with their "off" values.
FAULTS: Mapping[str, Any] = {
    "latency_ms": 0.0,
    "jitter_ms": 0.0,
    "error_rate": 0.0,
    "unknown_status_rate": 0.0,
    "reset_rate": 0.0,
    "truncate_rate": 0.0,
    "malformed_rate": 0.0,
    "ws_drop_rate": 0.0,
    "depth_skip_rate": 0.0,
    "clock_offset_ms": 0,
    "maintenance": False,
}


class SimulatedExchange:
    """A simulated Binance spot exchange; starts on ``start()`` or entering a ``with`` block.

    Settings (all keyword-only):

    - ``symbols``: symbols to list, e.g. ``["BTCUSDT", "ETHBTC"]``.
    - ``seed``: the price process's seed; the same seed gives byte-identical klines.
    - ``epoch``: simulated time at start (ms since 1970), ``None`` for now.
    - ``time_scale``: simulated seconds per wall second.
    - ``host``/``port``: where to listen (port 0 picks a free one).
    - ``api_keys``: ``{key: secret}`` accepted on signed endpoints.
    - ``balances``: every account's starting balances, ``{asset: amount}``.
    - ``limits``: ``False`` turns request weights and order counts off (headers stay).
    - ``weight_limit``, ``raw_limit``, ``orders_10s``, ``orders_1d``: the limits
      (Binance's: 6000/min, 61000/5 min, 100/10 s, 200000/day).
    - ``ban_after``: violations within a minute that earn a 418 ban (3).
    - ``book_levels``: levels per side (at most 5000, so ``limit=5000`` is the whole book).
    - ``trade_rate``: trades per wall second per symbol on the streams.
    - ``ws_ping_interval``, ``ws_pong_timeout``, ``ws_lifetime``: simulated seconds
      (20, 60, 86400); ``ws_max_streams`` (1024) and ``ws_max_incoming`` (5/s).
    - any fault knob of ``FAULTS``.
    """

    def __init__(
        self,
        symbols: Iterable[str] = DEFAULT_SYMBOLS,
        *,
        seed: int = 0,
        epoch: int | None = DEFAULT_EPOCH_MS,
        time_scale: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        api_keys: Mapping[str, str] | None = None,
        balances: Mapping[str, str | float | int] | None = None,
        limits: bool = True,
        weight_limit: int = 6000,
        raw_limit: int = 61000,
        orders_10s: int = 100,
        orders_1d: int = 200_000,
        ban_after: int = 3,
        book_levels: int = 5000,
        trade_rate: float = 20.0,
        ws_ping_interval: float = 20.0,
        ws_pong_timeout: float = 60.0,
        ws_lifetime: float = 86_400.0,
        ws_max_streams: int = 1024,
        ws_max_incoming: int = 5,
        **faults: Any,
    ) -> None:
        if isinstance(symbols, str):
            symbols = [symbols]
        unknown = set(faults) - set(FAULTS)
        if unknown:
            from ._errors import ConfigError

            raise ConfigError(
                f"unknown argument(s) {sorted(unknown)}; fault knobs are {sorted(FAULTS)}"
            )
        self._settings: dict[str, Any] = dict(
            symbols=list(symbols),
            seed=int(seed),
            epoch_ms=int(time.time() * 1000) if epoch is None else int(epoch),
            time_scale=float(time_scale),
            host=host,
            port=int(port),
            api_keys=list(
                (
                    api_keys if api_keys is not None else {DEFAULT_API_KEY: DEFAULT_API_SECRET}
                ).items()
            ),
            balances=[
                (a, _amount(v))
                for a, v in (balances if balances is not None else DEFAULT_BALANCES).items()
            ],
            limits_enabled=bool(limits),
            weight_limit=int(weight_limit),
            raw_limit=int(raw_limit),
            orders_10s=int(orders_10s),
            orders_1d=int(orders_1d),
            ban_after=int(ban_after),
            book_levels=int(book_levels),
            trade_rate=float(trade_rate),
            ws_ping_interval=float(ws_ping_interval),
            ws_pong_timeout=float(ws_pong_timeout),
            ws_lifetime=float(ws_lifetime),
            ws_max_streams=int(ws_max_streams),
            ws_max_incoming=int(ws_max_incoming),
            faults=dict(faults),
        )
        self.api_key, self.api_secret = (
            self._settings["api_keys"][0] if self._settings["api_keys"] else ("", "")
        )
        self._server: _core.SimServer | None = None

    # -- life cycle ---------------------------------------------------------

    def start(self) -> SimulatedExchange:
        """Starts listening (returns at once; the server runs on the tokio runtime)."""
        if self._server is None:
            self._server = _core.SimServer(**self._settings)
        return self

    def close(self) -> None:
        """Stops the server and waits (blocking) until its listener has closed; called on
        a thread that runs an event loop, it stops the server without waiting."""
        if self._server is not None:
            server, self._server = self._server, None
            server.stop()
            from ._errors import BlockingCallError

            try:
                server.closed_sync()
            except BlockingCallError:
                pass

    async def aclose(self) -> None:
        """Stops the server and waits until its listener has closed."""
        if self._server is not None:
            server, self._server = self._server, None
            server.stop()
            await server.closed()

    async def __aenter__(self) -> SimulatedExchange:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> SimulatedExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"at {self.base_url}" if self._server else "stopped"
        return f"<SimulatedExchange {state}>"

    # -- addresses ----------------------------------------------------------

    @property
    def _srv(self) -> _core.SimServer:
        if self._server is None:
            from ._errors import ConfigError

            raise ConfigError("the simulated exchange is not running (use start() or a with block)")
        return self._server

    @property
    def port(self) -> int:
        return self._srv.port

    @property
    def host(self) -> str:
        return self._srv.host

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (REST paths start with ``/api/v3/``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT`` (``/ws/<stream>``, ``/stream?streams=...``, ``/replay``)."""
        return f"ws://{self.host}:{self.port}"

    @property
    def symbols(self) -> list[str]:
        return list(self._settings["symbols"])

    @property
    def time_scale(self) -> float:
        return float(self._settings["time_scale"])

    # -- live controls ------------------------------------------------------

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Changes fault knobs on the running server; returns every knob's value."""
        return self._srv.set_faults(**faults)

    def faults(self) -> dict[str, Any]:
        return self._srv.faults()

    def stats(self) -> dict[str, int]:
        """Counters of what was served and what was injected."""
        return self._srv.stats()

    def server_time(self) -> int:
        """The server's clock in ms (simulated time plus the clock-offset fault)."""
        return self._srv.server_time()

    def freeze(self, on: bool = True) -> None:
        """Stops (or restarts) the market; freezing flushes pending depth diffs."""
        self._srv.freeze(on)

    def set_replay(self, frames: Iterable[bytes | str]) -> None:
        """Frames ``/replay`` sends (cycled); empty: pre-serialised ``@trade`` events."""
        self._srv.set_replay([f.encode() if isinstance(f, str) else bytes(f) for f in frames])

    def sign(self, params: Mapping[str, Any] | str, secret: str | None = None) -> str:
        """The hex HMAC-SHA256 signature of a query string, as Binance computes it."""
        import hashlib
        import hmac
        from urllib.parse import urlencode

        payload = params if isinstance(params, str) else urlencode(params)
        key = (secret or self.api_secret).encode()
        return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def _amount(v: str | float | int) -> str:
    if isinstance(v, bool):
        raise TypeError("balances: amounts must be numbers or decimal strings")
    if isinstance(v, float):
        return f"{v:.8f}"
    return str(v)
