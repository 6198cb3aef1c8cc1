"""The analysis service's app: its two container services and its routes (see the
package doc)."""

from __future__ import annotations

import asyncio
import datetime as _dt
import inspect
import logging
import math
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .. import _core, _validate
from .._errors import ConfigError, ExchangeError, FerrotickError, MarketDataError
from ..config import FerrotickConfig, load_config
from ..container import ServiceContainer
from ..exchange import BINANCE_URL, BINANCE_WS_URL, BinanceConfig, OptimizedBinanceClient
from ..fastapi import MetricsMiddleware, lifespan, metrics_router
from ..monitor import AsyncHealthChecker, track_operation
from ..pipeline import (
    AnalysisResult,
    AsyncConfig,
    AsyncDataProcessor,
    MarketData,
    MarketRegimeAnalyzer,
    MultiTimeframeAnalyzer,
    SymbolResult,
)
from ..sim import DEFAULT_SYMBOLS

__all__ = [
    "SIM_SYMBOLS",
    "AnalysisService",
    "DetectRegimeRequest",
    "ExchangeService",
    "app_from_env",
    "create_app",
]

log = logging.getLogger("ferrotick.service")

#: The symbols the embedded simulated exchange lists (the simulator's defaults:
#: its market advances every symbol on a 1 ms tick whether or not anyone asks, so
#: an idle service costs CPU in proportion to this list).
SIM_SYMBOLS: tuple[str, ...] = tuple(DEFAULT_SYMBOLS)
DEFAULT_TIMEFRAMES: tuple[str, ...] = ("5m", "15m", "1h")
# 3000 1m bars make 50 1h bars: enough for the multi-timeframe analyzer's slow EMA
# (50) on every default timeframe.
DEFAULT_BARS = 3000
MAX_BARS = 10_000
# Bars one /detect/ request may carry (a year of 5m bars).
MAX_DETECT_BARS = 105_120
# Processors kept for (timeframes, bars) combinations other than the default one.
_MAX_PROCESSORS = 16
# Exchange codes that mean the symbol is not listed.
_UNKNOWN_SYMBOL = frozenset({-1121})

ENV_EXCHANGE_URL = "FERROTICK_SERVE_EXCHANGE_URL"
ENV_WS_URL = "FERROTICK_SERVE_WS_URL"
ENV_WORKERS = "FERROTICK_SERVE_WORKERS"


def binance_config(base: BinanceConfig, **changes: Any) -> BinanceConfig:
    """A copy of ``base`` with ``changes`` (any of BinanceConfig's parameters)."""
    params = inspect.signature(BinanceConfig).parameters
    kw = {k: getattr(base, k) for k in params if hasattr(base, k)}
    kw.update(changes)
    return BinanceConfig(**kw)


def ws_url_for(exchange_url: str, configured: str) -> str:
    """The WebSocket URL going with ``exchange_url``: the configured one when it is
    not the public default, the public one for the public REST URL, else the same
    host and port over ws(s)://."""
    if configured.rstrip("/") != BINANCE_WS_URL:
        return configured
    if exchange_url.rstrip("/") == BINANCE_URL:
        return BINANCE_WS_URL
    scheme, _, rest = exchange_url.partition("://")
    return ("wss" if scheme == "https" else "ws") + "://" + rest.split("/", 1)[0]


def configured_exchange_url(config: FerrotickConfig | None) -> str | None:
    """The config's exchange URL, or None when it names the public default (then the
    service embeds a simulator)."""
    if config is None or config.binance.base_url.rstrip("/") == BINANCE_URL:
        return None
    return config.binance.base_url


# -- services ------------------------------------------------------------------------


class ExchangeService:
    """The container's ``"exchange"``: at ``initialize()`` starts the embedded
    ``SimulatedExchange`` when no URL is given, then connects ``client`` (an
    ``OptimizedBinanceClient``); ``cleanup()`` closes both."""

    def __init__(
        self,
        binance: BinanceConfig | None = None,
        *,
        exchange_url: str | None = None,
        ws_url: str | None = None,
        symbols: Sequence[str] = SIM_SYMBOLS,
    ) -> None:
        self.binance = binance if binance is not None else BinanceConfig()
        if exchange_url is not None and not (
            isinstance(exchange_url, str) and exchange_url.startswith(("http://", "https://"))
        ):
            raise ConfigError(f"exchange_url: expected an http(s) URL, got {exchange_url!r}")
        if ws_url is not None and not (
            isinstance(ws_url, str) and ws_url.startswith(("ws://", "wss://"))
        ):
            raise ConfigError(f"ws_url: expected a ws(s) URL, got {ws_url!r}")
        self.exchange_url = exchange_url
        self.ws_url = ws_url
        self.symbols = list(symbols)
        self.simulator: Any = None
        self.client: OptimizedBinanceClient | None = None

    @property
    def embedded(self) -> bool:
        """True when the service runs its own simulated exchange."""
        return self.exchange_url is None

    async def initialize(self) -> None:
        try:
            cfg = await self._start_simulator() if self.embedded else self._remote_config()
            self.client = OptimizedBinanceClient(cfg)
            await self.client.connect()
        except BaseException:
            await self.cleanup()
            raise
        log.info("exchange client connected to %s", _core.redact_url(cfg.base_url))

    async def _start_simulator(self) -> BinanceConfig:
        from ..sim import SimulatedExchange

        self.simulator = SimulatedExchange(self.symbols, epoch=None)
        await self.simulator.__aenter__()
        log.info("embedded simulated exchange at %s", self.simulator.base_url)
        return binance_config(
            self.binance,
            base_url=self.simulator.base_url,
            ws_url=self.simulator.ws_url,
            api_key=self.simulator.api_key,
            api_secret=self.simulator.api_secret,
        )

    def _remote_config(self) -> BinanceConfig:
        url = str(self.exchange_url)
        return binance_config(
            self.binance, base_url=url, ws_url=self.ws_url or ws_url_for(url, self.binance.ws_url)
        )

    async def cleanup(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.close()
        sim, self.simulator = self.simulator, None
        if sim is not None:
            await sim.aclose()
            log.info("embedded simulated exchange stopped")

    async def ping(self) -> bool:
        """One ``/api/v3/ping`` to the exchange."""
        if self.client is None:
            return False
        await self.client.request("GET", "/api/v3/ping")
        return True

    async def health_check(self) -> bool:
        return await self.ping()


class AnalysisService:
    """The container's ``"analysis"``: the ``AsyncDataProcessor`` on the exchange's
    client (one per timeframes/bars combination asked for, the default one built at
    ``initialize()``), the regime analyzer of ``/detect/``, and the health checks."""

    def __init__(
        self,
        exchange: ExchangeService,
        pipeline: AsyncConfig | None = None,
        *,
        timeframes: Sequence[str] = DEFAULT_TIMEFRAMES,
        bars: int = DEFAULT_BARS,
        container: ServiceContainer | None = None,
    ) -> None:
        self.exchange = exchange
        self.container = container
        self.pipeline = pipeline if pipeline is not None else AsyncConfig()
        self.timeframes = _timeframes(timeframes)
        self.bars = _validate.integer("bars", bars, min=1, max=MAX_BARS)
        self.regime = MarketRegimeAnalyzer()
        self.health: AsyncHealthChecker | None = None
        self._others: AsyncHealthChecker | None = None
        self._processors: OrderedDict[tuple[tuple[str, ...], int], AsyncDataProcessor] = (
            OrderedDict()
        )

    async def initialize(self) -> None:
        processor = self.processor(self.timeframes, self.bars)
        health = processor.health_checker()
        health.add_check("exchange", self.exchange.ping)
        self.health = health
        if self.container is not None:
            # the container's other objects (an app's own services), one check each
            others = self.container.health_checker()
            for name in ("exchange", "analysis"):
                others.remove_check(name)
            self._others = others

    async def cleanup(self) -> None:
        self.health = self._others = None
        processors = list(self._processors.values())
        self._processors.clear()
        for p in processors:
            await p.close()

    def processor(self, timeframes: Sequence[str], bars: int) -> AsyncDataProcessor:
        """The processor for ``timeframes`` and ``bars`` (kept for reuse: its
        concurrency limits then hold across requests)."""
        if self.exchange.client is None:
            raise ConfigError("exchange: not connected (the service has not started)")
        key = (tuple(timeframes), bars)
        p = self._processors.get(key)
        if p is None:
            p = AsyncDataProcessor(
                self.pipeline, client=self.exchange.client, bars=bars, timeframes=list(timeframes)
            )
            self._processors[key] = p
            default = (tuple(self.timeframes), self.bars)
            while len(self._processors) > _MAX_PROCESSORS:
                old = next(k for k in self._processors if k != default)
                # not closed: it owns no client, no sinks, no stream
                del self._processors[old]
        return p

    async def analyze(
        self, symbol: str, timeframes: Sequence[str] | None = None, bars: int | None = None
    ) -> SymbolResult:
        """``symbol`` through the pipeline; the result carries any failure."""
        p = self.processor(
            self.timeframes if timeframes is None else _timeframes(timeframes),
            self.bars if bars is None else bars,
        )
        return (await p.process_symbols_parallel([symbol]))[0]

    async def detect(self, data: MarketData) -> AnalysisResult:
        """The market regime of ``data``."""
        return await self.regime.analyze(data)

    async def check_health(self) -> dict[str, Any]:
        """The ``/health`` body: the processor's checks, ``exchange``, and one per
        other object of the container."""
        if self.health is None:
            return {"status": "unhealthy", "checks": {"service": False}, "details": {}}
        runs = [self.health.check_health()]
        if self._others is not None:
            runs.append(self._others.check_health())
        checks: dict[str, bool] = {}
        details: dict[str, Any] = {}
        for r in await asyncio.gather(*runs):
            checks.update(r["checks"])
            details.update(r["details"])
        status = "healthy" if all(checks.values()) else "unhealthy"
        return {"status": status, "checks": checks, "details": details}


def _timeframes(tfs: Sequence[str] | str) -> list[str]:
    if isinstance(tfs, str):
        tfs = tfs.split(",")
    out = [t.strip() for t in tfs if isinstance(t, str) and t.strip()]
    if len(out) != len(list(tfs)) or not out:
        raise ConfigError(f"timeframes: expected names such as 5m,15m,1h, got {list(tfs)!r}")
    MultiTimeframeAnalyzer(out)  # checks each name
    return out


# -- /detect/ input ------------------------------------------------------------------


class DetectRegimeRequest(BaseModel):
    """The body of ``POST /detect/`` (seed 000): bars as a list of dicts with
    ``timestamp`` (or ``open_time``; UTC milliseconds or ISO 8601), ``open``,
    ``high``, ``low``, ``close`` and optionally ``volume`` (numbers or numeric
    strings), oldest first; at most 105,120 bars."""

    symbol: str = Field(min_length=1, max_length=64)
    timeframe: str = "1h"
    ohlc_data: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_DETECT_BARS)


_TIME_KEYS = ("timestamp", "open_time", "time", "date")
_PRICE_KEYS = ("open", "high", "low", "close")


def _ms(where: str, v: Any) -> int:
    if isinstance(v, bool):
        raise MarketDataError(f"{where}: expected UTC ms or an ISO 8601 time, got {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and math.isfinite(v):
        return int(v)
    if isinstance(v, str):
        s = v.strip()
        if s.lstrip("-").isdigit():
            return int(s)
        try:
            t = _dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if t.tzinfo is None:
                t = t.replace(tzinfo=_dt.timezone.utc)
            return int(t.timestamp() * 1000)
    raise MarketDataError(f"{where}: expected UTC ms or an ISO 8601 time, got {v!r}")


def _number(where: str, v: Any) -> float:
    if isinstance(v, bool) or v is None:
        raise MarketDataError(f"{where}: expected a number, got {v!r}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise MarketDataError(f"{where}: expected a number, got {v!r}") from None


def _row(i: int, row: Mapping[str, Any]) -> tuple[int, float, float, float, float, float]:
    keys = {str(k).lower(): k for k in row}
    tkey = next((keys[k] for k in _TIME_KEYS if k in keys), None)
    if tkey is None:
        raise MarketDataError(f"ohlc_data[{i}]: no timestamp (or open_time)")
    prices = []
    for k in _PRICE_KEYS:
        if k not in keys:
            raise MarketDataError(f"ohlc_data[{i}]: no {k!r}")
        prices.append(_number(f"ohlc_data[{i}].{k}", row[keys[k]]))
    vol = row[keys["volume"]] if "volume" in keys else 0.0
    o, h, lo, c = prices
    return (
        _ms(f"ohlc_data[{i}].{tkey}", row[tkey]),
        o,
        h,
        lo,
        c,
        _number(f"ohlc_data[{i}].volume", vol),
    )


def market_data(req: DetectRegimeRequest) -> MarketData:
    """The request's bars as MarketData; MarketDataError or ConfigError names the
    row and key that cannot be read."""
    rows = [_row(i, r) for i, r in enumerate(req.ohlc_data)]
    t, o, h, lo, c, v = (list(col) for col in zip(*rows, strict=True))
    return MarketData(req.symbol, req.timeframe, t, o, h, lo, c, v)


# -- errors → HTTP -------------------------------------------------------------------


def _analysis_error(symbol: str, res: SymbolResult) -> HTTPException:
    e = res.error
    detail = f"{symbol}: {res.stage}: {type(e).__name__}: {e}"
    if isinstance(e, ExchangeError):
        if e.code in _UNKNOWN_SYMBOL:
            return HTTPException(404, f"{symbol}: {e.msg}")
        return HTTPException(502, detail)
    if isinstance(e, TimeoutError):
        return HTTPException(504, detail)
    if isinstance(e, (ConfigError, MarketDataError)):
        return HTTPException(422, detail)
    if isinstance(e, FerrotickError):
        return HTTPException(502, detail)
    log.error("analysis of %s failed at %s", symbol, res.stage, exc_info=e)
    return HTTPException(500, detail)


# -- the app -------------------------------------------------------------------------


def create_app(
    config: FerrotickConfig | None = None,
    *,
    exchange_url: str | None = None,
    ws_url: str | None = None,
    container: ServiceContainer | None = None,
    symbols: Sequence[str] = SIM_SYMBOLS,
    timeframes: Sequence[str] = DEFAULT_TIMEFRAMES,
    bars: int = DEFAULT_BARS,
    schedulers: Any = False,
    report_interval: float = 300.0,
) -> FastAPI:
    """The analysis service (see the package doc).

    ``config``: a loaded config file (its ``binance`` settings and ``pipeline``
    limits). ``exchange_url``/``ws_url``: the exchange to use (see the package doc
    for the default). ``container``: a ``ServiceContainer`` to add the service's
    ``"exchange"`` and ``"analysis"`` to (a new one by default). ``symbols``: what
    the embedded simulator lists. ``timeframes``/``bars``: ``/analyze``'s defaults.
    ``schedulers``/``report_interval``: as ``ferrotick.fastapi.lifespan`` takes them
    (seed 000's schedulers are off unless asked for)."""
    if config is not None and not isinstance(config, FerrotickConfig):
        raise ConfigError(f"config: expected a FerrotickConfig, got {type(config).__name__}")
    binance = config.binance if config is not None else BinanceConfig()
    if container is None:
        container = ServiceContainer()
    exchange = ExchangeService(
        binance,
        exchange_url=exchange_url or configured_exchange_url(config),
        ws_url=ws_url,
        symbols=symbols,
    )
    analysis = AnalysisService(
        exchange,
        config.pipeline if config is not None else None,
        timeframes=timeframes,
        bars=bars,
        container=container,
    )
    container.register_service("exchange", exchange)
    container.register_analyzer("analysis", analysis, depends_on=["exchange"])

    app = FastAPI(
        title="ferrotick analysis service",
        lifespan=lifespan(container, schedulers=schedulers, report_interval=report_interval),
    )
    app.state.service_container = container
    app.add_middleware(MetricsMiddleware)
    app.include_router(metrics_router(health_checker=analysis))
    _routes(app, analysis)
    return app


def _routes(app: FastAPI, analysis: AnalysisService) -> None:
    # Bad input is answered before the operation is tracked: the monitor's error
    # counts are the service's failures, not its callers'.

    @app.post("/detect/", summary="Market regime of the given bars")
    async def detect(
        request: DetectRegimeRequest,
        series: Annotated[bool, Query(description="include the per-bar arrays")] = False,
    ) -> JSONResponse:
        try:
            md = market_data(request)
        except (ConfigError, MarketDataError) as e:
            raise HTTPException(422, str(e)) from None
        async with track_operation("service.detect"):
            result = await analysis.detect(md)
        return JSONResponse(result.to_dict(series=series))

    @app.get("/analyze/{symbol}", summary="A symbol through the analysis pipeline")
    async def analyze(
        symbol: str,
        timeframes: Annotated[
            str | None, Query(description="comma-separated, e.g. 5m,15m,1h")
        ] = None,
        bars: Annotated[int | None, Query(ge=1, le=MAX_BARS, description="1m bars")] = None,
    ) -> JSONResponse:
        symbol = symbol.upper()
        try:
            tfs = analysis.timeframes if timeframes is None else _timeframes(timeframes)
            processor = analysis.processor(tfs, analysis.bars if bars is None else bars)
        except ConfigError as e:
            raise HTTPException(422, str(e)) from None
        async with track_operation("service.analyze"):
            res = (await processor.process_symbols_parallel([symbol]))[0]
        if not res.ok:
            raise _analysis_error(symbol, res)
        body = res.to_dict()
        body["timeframes"] = tfs
        return JSONResponse(body)


def app_from_env() -> FastAPI:
    """The app uvicorn's workers build (``factory=True``): config from
    ``$FERROTICK_CONFIG`` (none when unset), exchange from
    ``$FERROTICK_SERVE_EXCHANGE_URL``/``$FERROTICK_SERVE_WS_URL``, and
    ``1/$FERROTICK_SERVE_WORKERS`` of the weight budget per worker."""
    config = load_config() if os.environ.get("FERROTICK_CONFIG") else None
    raw = os.environ.get(ENV_WORKERS, "1")
    if not raw.strip().isdigit() or int(raw) < 1:
        raise ConfigError(f"{ENV_WORKERS}: expected an integer >= 1, got {raw!r}")
    workers = int(raw)
    if workers > 1:
        base = config if config is not None else FerrotickConfig()
        share = base.binance.weight_share / workers
        config = _replace_binance(base, binance_config(base.binance, weight_share=share))
    return create_app(
        config,
        exchange_url=os.environ.get(ENV_EXCHANGE_URL) or None,
        ws_url=os.environ.get(ENV_WS_URL) or None,
    )


def _replace_binance(config: FerrotickConfig, binance: BinanceConfig) -> FerrotickConfig:
    import dataclasses

    return dataclasses.replace(config, binance=binance)
