"""Binance spot client on ferrotick's Rust core: signed REST with a weight budget, klines
as columns, safe order placement.

::

    from ferrotick.exchange import BinanceConfig, initialize_binance_client

    config = BinanceConfig(api_key="...", api_secret="...", enable_rate_limiting=True)
    async with initialize_binance_client(config) as client:
        account = await client.get_account_info()
        bars = await client.get_klines("BTCUSDT", "1m", limit=5000)  # 5 requests
        df = bars.to_pandas()

``base_url`` points at the real exchange (the default), its testnet, or ferrotick's
simulated exchange (``SimulatedExchange.base_url``).

The weight budget: each request's weight is known before it is sent, and a request that
would pass the minute's limit waits instead. The limit is the exchange's (read from
``/exchangeInfo``) or ``rate_limit_requests_per_minute`` if lower; orders likewise with
``rate_limit_orders_per_second``. Every response's ``X-MBX-USED-WEIGHT-1M`` header corrects
the budget, so traffic from other processes on the same IP is seen after one response;
several worker processes sharing an IP should each take ``weight_share=1/N`` of it so none
of them waits on the others' surprises. A 429 or 418 stops every request for its
Retry-After, with or without ``enable_rate_limiting``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import hmac
import inspect
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from . import _core
from ._core import Klines, OrderBook
from ._errors import ConfigError, ExchangeError

__all__ = [
    "BinanceConfig",
    "ExchangeError",
    "Klines",
    "OptimizedBinanceClient",
    "OrderBook",
    "Secret",
    "Subscription",
    "TickerSubscription",
    "initialize_binance_client",
]

BINANCE_URL = "https://api.binance.com"
BINANCE_WS_URL = "wss://stream.binance.com:9443"

log = logging.getLogger("ferrotick.exchange")


class Secret:
    """A string kept out of reprs, logs and exception messages: ``repr`` is ``'***'``;
    ``get_secret_value()`` returns the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise ConfigError("Secret: the value must be a str")
        object.__setattr__(self, "_value", value)

    def get_secret_value(self) -> str:
        return self._value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is read-only")

    def __repr__(self) -> str:
        return "'***'"

    def __str__(self) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


def _secret(name: str, v: Any) -> Secret | None:
    if v is None or isinstance(v, Secret):
        return v
    if isinstance(v, str):
        if not v:
            raise ConfigError(f"{name}: must not be empty")
        return Secret(v)
    raise ConfigError(f"{name}: a str or Secret, got {type(v).__name__}")


def _int(name: str, v: Any, lo: int, optional: bool = False) -> int | None:
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(f"{name}: an int of at least {lo}, got {v!r}")
    return v


def _num(name: str, v: Any, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise ConfigError(f"{name}: a number between {lo} and {hi}, got {v!r}")
    return float(v)


class BinanceConfig:
    """Settings of the Binance client; every default is here.

    ``api_key`` and ``api_secret`` are stored as :class:`Secret`.
    ``rate_limit_requests_per_minute`` caps the request weight per minute and
    ``rate_limit_orders_per_second`` the order rate (the lower of these and the
    exchange's own limits wins); ``weight_share`` is this process's fraction of them.
    ``batch_size`` is how many orders ``create_batch_orders`` keeps in flight and
    ``max_concurrent_requests`` how many requests the data helpers run at once.
    """

    def __init__(
        self,
        api_key: str | Secret | None = None,
        api_secret: str | Secret | None = None,
        *,
        base_url: str = BINANCE_URL,
        ws_url: str = BINANCE_WS_URL,
        enable_rate_limiting: bool = True,
        enable_request_batching: bool = True,
        batch_size: int = 10,
        rate_limit_requests_per_minute: int | None = None,
        rate_limit_orders_per_second: int | None = None,
        weight_share: float = 1.0,
        max_concurrent_requests: int = 50,
        recv_window: int = 5000,
        timeout: float = 10.0,
        max_retries: int = 3,
        retry_delay: float = 0.2,
        exchange_info_ttl: float = 300.0,
        enable_websockets: bool = True,
    ) -> None:
        self.api_key = _secret("api_key", api_key)
        self.api_secret = _secret("api_secret", api_secret)
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url: an http(s) URL, got {base_url!r}")
        if not isinstance(ws_url, str) or not ws_url.startswith(("ws://", "wss://")):
            raise ConfigError(f"ws_url: a ws(s) URL, got {ws_url!r}")
        self.base_url = base_url.rstrip("/")
        self.ws_url = ws_url.rstrip("/")
        self.enable_rate_limiting = bool(enable_rate_limiting)
        self.enable_request_batching = bool(enable_request_batching)
        self.batch_size = _int("batch_size", batch_size, 1)
        self.rate_limit_requests_per_minute = _int(
            "rate_limit_requests_per_minute", rate_limit_requests_per_minute, 1, True
        )
        self.rate_limit_orders_per_second = _int(
            "rate_limit_orders_per_second", rate_limit_orders_per_second, 1, True
        )
        if (
            isinstance(weight_share, bool)
            or not isinstance(weight_share, (int, float))
            or not 0 < weight_share <= 1
        ):
            raise ConfigError(f"weight_share: a fraction in (0, 1], got {weight_share!r}")
        self.weight_share = float(weight_share)
        self.max_concurrent_requests = _int("max_concurrent_requests", max_concurrent_requests, 1)
        self.recv_window = _int("recv_window", recv_window, 1)
        if self.recv_window > 60_000:  # type: ignore[operator]
            raise ConfigError(f"recv_window: at most 60000 ms, got {recv_window}")
        self.timeout = _num("timeout", timeout, 0.001, 3600)
        self.max_retries = _int("max_retries", max_retries, 0)
        self.retry_delay = _num("retry_delay", retry_delay, 0, 60)
        self.exchange_info_ttl = _num("exchange_info_ttl", exchange_info_ttl, 0, 86_400 * 7)
        self.enable_websockets = bool(enable_websockets)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BinanceConfig:
        """From a config file's ``binance:`` section (unknown keys are refused)."""
        try:
            return cls(**dict(d))
        except TypeError as e:
            raise ConfigError(f"BinanceConfig: {e}") from None

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"BinanceConfig({items})"


def _param(name: str, v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, float):
        # Binance refuses exponents: fixed notation, trailing zeros dropped
        return format(Decimal(repr(v)), "f")
    if isinstance(v, (int, str)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(f'"{x}"' for x in v) + "]"
    raise ConfigError(f"{name}: a str, int, float, Decimal or bool, got {type(v).__name__}")


def _params(p: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    return [(k, _param(k, v)) for k, v in (p or {}).items() if v is not None]


def _ms(name: str, t: Any) -> int | None:
    if t is None:
        return None
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return int(t.timestamp() * 1000)
    if isinstance(t, bool) or not isinstance(t, int):
        raise ConfigError(f"{name}: ms since the epoch (int) or a datetime, got {t!r}")
    return t


class Subscription:
    """``async for msg in client.stream([...])``: combined-stream messages (dicts with
    ``stream`` and ``data``), parsed in Rust and handed over in batches. The connection
    reconnects with backoff on drops and silences; the buffer is bounded (``overflow``:
    ``"drop_oldest"``, ``"drop_newest"`` or ``"block"``) and counts what it drops."""

    def __init__(self, core: _core.MarketStream) -> None:
        self._core = core
        self._pending: list[Any] = []
        self._i = 0

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        while self._i >= len(self._pending):
            batch = await self._core.next_batch()
            if batch is None:
                raise StopAsyncIteration
            self._pending, self._i = batch, 0
        self._i += 1
        return self._pending[self._i - 1]

    async def batches(self) -> Any:
        """Whole batches (lists), for consumers that take many messages at once."""
        while True:
            batch = await self._core.next_batch()
            if batch is None:
                return
            yield batch

    def stats(self) -> dict[str, Any]:
        return self._core.stats()

    def close(self) -> None:
        self._core.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class TickerSubscription:
    """A handler called with each ``<symbol>@ticker`` message's data; a handler that
    raises is logged and counted (``errors``) and the stream goes on."""

    def __init__(self, sub: Subscription, handler: Any) -> None:
        self.subscription = sub
        self.handler = handler
        self.errors = 0
        self.calls = 0
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        async for msg in self.subscription:
            data = msg.get("data", msg) if isinstance(msg, dict) else msg
            self.calls += 1
            try:
                r = self.handler(data)
                if inspect.isawaitable(r):
                    await r
            except Exception:
                self.errors += 1
                log.exception("ticker handler %r raised", self.handler)

    def close(self) -> None:
        self.subscription.close()
        self.task.cancel()


class OptimizedBinanceClient:
    """The seed's Binance client: ``async with OptimizedBinanceClient(config) as client``.

    REST runs in Rust (``ferrotick._core.ExchangeClient``); this class holds the config,
    the conveniences and the concurrency of the many-symbol helpers.
    """

    def __init__(self, config: BinanceConfig | None = None, *, monitor: Any = None) -> None:
        """``monitor``: where request timings and errors go — an
        ``AsyncPerformanceMonitor`` (default: the process-wide one) as operations
        ``exchange <METHOD> <path>``; ``False`` records nothing."""
        if config is None:
            config = BinanceConfig()
        if not isinstance(config, BinanceConfig):
            raise ConfigError(f"config: a BinanceConfig, got {type(config).__name__}")
        self.config = config
        self._core: _core.ExchangeClient | None = None
        self._subs: list[Subscription | TickerSubscription] = []
        self._clock_synced = False
        self._monitor_arg = monitor
        self._monitor: Any = None

    def __repr__(self) -> str:
        state = "connected" if self._core is not None else "not connected"
        return f"OptimizedBinanceClient(base_url={self.config.base_url!r}, {state})"

    def _make_core(self) -> _core.ExchangeClient:
        c = self.config
        return _core.ExchangeClient(
            base_url=c.base_url,
            api_key=c.api_key.get_secret_value() if c.api_key else None,
            api_secret=c.api_secret.get_secret_value() if c.api_secret else None,
            recv_window=c.recv_window,
            timeout=c.timeout,
            max_retries=c.max_retries,
            retry_delay=c.retry_delay,
            rate_limiting=c.enable_rate_limiting,
            weight_per_minute=c.rate_limit_requests_per_minute,
            orders_per_second=c.rate_limit_orders_per_second,
            weight_share=c.weight_share,
            pool_size=c.max_concurrent_requests,
            exchange_info_ttl=c.exchange_info_ttl,
        )

    @property
    def core(self) -> _core.ExchangeClient:
        if self._core is None:
            self._core = self._make_core()
        return self._core

    async def connect(self) -> OptimizedBinanceClient:
        """Reads the exchange's limits and, with a secret configured, the clock offset."""
        core = self.core
        await core.exchange_info()
        if self.config.api_secret:
            await core.sync_time()
            self._clock_synced = True
        return self

    async def close(self) -> None:
        subs, self._subs = self._subs, []
        for sub in subs:
            sub.close()
        if self._core is not None:
            self._core.close()
            self._core = None

    async def __aenter__(self) -> OptimizedBinanceClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- REST ------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        signed: bool = False,
    ) -> Any:
        """Any endpoint; its weight is taken from the documented table."""
        async with self._track(method, path):
            return await self.core.request(method, path, _params(params), signed)

    def _track(self, method: str, path: str) -> Any:
        """The performance monitor's tracker for one call (timing, errors, in flight)."""
        m = self._monitor
        if m is None:
            if self._monitor_arg is False:
                return contextlib.nullcontext()
            if self._monitor_arg is None:
                from .monitor import get_async_monitor

                self._monitor_arg = get_async_monitor()
            m = self._monitor = self._monitor_arg
        return m.track_operation(f"exchange {method.upper()} {path}")

    async def get_server_time(self) -> int:
        return int((await self.request("GET", "/api/v3/time"))["serverTime"])

    async def get_account_info(self) -> dict[str, Any]:
        return await self.request("GET", "/api/v3/account", signed=True)

    async def get_exchange_info(self) -> dict[str, Any]:
        """``/exchangeInfo``, cached for ``exchange_info_ttl`` seconds."""
        return await self.core.exchange_info()

    async def get_ticker_price(self, symbol: str | None = None) -> Any:
        """The latest price of ``symbol`` (a dict), or of every symbol (a list)."""
        return await self.request("GET", "/api/v3/ticker/price", {"symbol": symbol})

    async def get_ticker_24hr(self, symbol: str) -> dict[str, Any]:
        return await self.request("GET", "/api/v3/ticker/24hr", {"symbol": symbol})

    async def get_order_book(self, symbol: str, limit: int = 100) -> dict[str, Any]:
        return await self.request("GET", "/api/v3/depth", {"symbol": symbol, "limit": limit})

    async def get_klines(
        self,
        symbol: str,
        interval: str,
        start: int | _dt.datetime | None = None,
        end: int | _dt.datetime | None = None,
        limit: int | None = None,
    ) -> Klines:
        """Klines as columns, paginated past 1000 bars: from ``start`` to ``end``, or the
        latest ``limit`` bars (500 by default)."""
        if not isinstance(symbol, str):
            raise ConfigError(f"symbol: a str, got {type(symbol).__name__}")
        if not isinstance(interval, str):
            raise ConfigError(f"interval: a str, got {type(interval).__name__}")
        if start is None and (limit or 500) > 1000 and not self._clock_synced:
            # the latest bars past one page are paged forward from a start time
            # computed on the exchange's clock
            await self.core.sync_time()
            self._clock_synced = True
        async with self._track("GET", "/api/v3/klines"):
            return await self.core.klines(
                symbol,
                interval,
                _ms("start", start),
                _ms("end", end),
                _int("limit", limit, 1, True),
            )

    async def _gather(self, coros: Sequence[Any]) -> list[Any]:
        sem = asyncio.Semaphore(self.config.max_concurrent_requests)

        async def one(c: Any) -> Any:
            async with sem:
                return await c

        return await asyncio.gather(*(one(c) for c in coros))

    async def get_multiple_symbols_data(self, symbols: Iterable[str]) -> dict[str, Any]:
        """24-hour tickers of many symbols, fetched concurrently within the budget."""
        symbols = list(symbols)
        rows = await self._gather([self.get_ticker_24hr(s) for s in symbols])
        return dict(zip(symbols, rows, strict=True))

    async def get_multiple_klines(
        self,
        symbols: Iterable[str],
        interval: str,
        start: int | _dt.datetime | None = None,
        end: int | _dt.datetime | None = None,
        limit: int | None = None,
    ) -> dict[str, Klines]:
        """Klines of many symbols, fetched concurrently within the budget."""
        symbols = list(symbols)
        rows = await self._gather(
            [self.get_klines(s, interval, start, end, limit) for s in symbols]
        )
        return dict(zip(symbols, rows, strict=True))

    # -- orders ----------------------------------------------------------------------

    async def create_order(self, **params: Any) -> dict[str, Any]:
        """``POST /api/v3/order``. ``newClientOrderId`` is set if not given; an order whose
        outcome is unknown (timeout, reset, 5xx) is looked up by it, never sent again."""
        for k in ("symbol", "side", "type"):
            if k not in params:
                raise ConfigError(f"{k}: every order needs one")
        async with self._track("POST", "/api/v3/order"):
            return await self.core.create_order(_params(params))

    async def create_batch_orders(
        self, orders: Iterable[Mapping[str, Any]]
    ) -> list[dict[str, Any] | ExchangeError]:
        """Places many orders (spot has no batch endpoint: concurrent ``POST /order``,
        ``batch_size`` in flight at most). Returns one entry per order, in order: the
        exchange's answer, or the exception that order met."""
        orders = [dict(o) for o in orders]
        sem = asyncio.Semaphore(self.config.batch_size)

        async def one(o: dict[str, Any]) -> Any:
            async with sem:
                try:
                    return await self.create_order(**o)
                except ExchangeError as e:
                    return e

        return await asyncio.gather(*(one(o) for o in orders))

    async def get_order(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> dict[str, Any]:
        if order_id is None and client_order_id is None:
            raise ConfigError("order_id: give order_id or client_order_id")
        return await self.request(
            "GET",
            "/api/v3/order",
            {"symbol": symbol, "orderId": order_id, "origClientOrderId": client_order_id},
            signed=True,
        )

    async def cancel_order(
        self, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> dict[str, Any]:
        if order_id is None and client_order_id is None:
            raise ConfigError("order_id: give order_id or client_order_id")
        return await self.request(
            "DELETE",
            "/api/v3/order",
            {"symbol": symbol, "orderId": order_id, "origClientOrderId": client_order_id},
            signed=True,
        )

    # -- streams ---------------------------------------------------------------------

    def stream(
        self,
        streams: Iterable[str],
        *,
        buffer: int = 10_000,
        overflow: str = "drop_oldest",
        max_backoff: float = 30.0,
        watchdog: float = 60.0,
        max_frame: int = 1 << 20,
        ca: str | bytes | os.PathLike[str] | None = None,
        rotate_after: float = 84_600.0,
    ) -> Subscription:
        """A subscription to Binance stream names (``"btcusdt@trade"``, ...).
        ``wss://`` URLs are verified against the platform's trust store, or against
        ``ca`` (a PEM bundle as bytes, or its path) for a private exchange. A
        connection older than ``rotate_after`` seconds (23.5 h: Binance ends them at
        24 h) is replaced with no gap and no repeated frame."""
        if isinstance(streams, str):
            streams = [streams]
        ca_pem: bytes | None = None
        if isinstance(ca, bytes):
            ca_pem = ca
        elif ca is not None:
            try:
                with open(ca, "rb") as f:
                    ca_pem = f.read()
            except OSError as e:
                raise ConfigError(f"ca: cannot read {os.fspath(ca)!r}: {e.strerror}") from None
        sub = Subscription(
            _core.MarketStream(
                ws_url=self.config.ws_url,
                streams=list(streams),
                buffer=_int("buffer", buffer, 1),
                overflow=overflow,
                max_backoff=max_backoff,
                watchdog=watchdog,
                max_frame=_int("max_frame", max_frame, 1024),
                ca_pem=ca_pem,
                rotate_after=rotate_after,
            )
        )
        self._subs.append(sub)
        return sub

    async def subscribe_to_ticker(
        self, symbol: str, handler: Any, **stream_settings: Any
    ) -> TickerSubscription:
        """Calls ``handler`` (sync or async) with each ``<symbol>@ticker`` update."""
        if not isinstance(symbol, str) or not symbol:
            raise ConfigError(f"symbol: a non-empty str, got {symbol!r}")
        if not callable(handler):
            raise ConfigError("handler: must be callable")
        t = TickerSubscription(
            self.stream([f"{symbol.lower()}@ticker"], **stream_settings), handler
        )
        self._subs.append(t)
        return t

    # -- state -----------------------------------------------------------------------

    def budget(self) -> dict[str, Any]:
        """The weight budget: limits, use, reservations, how long sending is blocked."""
        return self.core.budget()

    def stats(self) -> dict[str, int]:
        return self.core.stats()


def initialize_binance_client(config: BinanceConfig | None = None) -> OptimizedBinanceClient:
    """The seed's entry point: a client for ``config``; ``await client.connect()`` or use it
    as an async context manager."""
    return OptimizedBinanceClient(config)
