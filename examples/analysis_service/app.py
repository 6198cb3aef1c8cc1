"""Seed 000's analysis service on ferrotick: a service container, the schedulers,
the monitors and the monitoring endpoints, started and stopped by one lifespan.

    uvicorn app:app --app-dir examples/analysis_service

Endpoints: ``GET /analyze/{symbol}``, ``GET /tasks``, and from ``metrics_router``
``/metrics``, ``/health``, ``/async-performance``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import Depends, FastAPI

from ferrotick import ServiceContainer, TaskManager, track_async_function
from ferrotick.fastapi import (
    MetricsMiddleware,
    get_service,
    get_task_manager,
    lifespan,
    metrics_router,
)

logging.basicConfig(
    level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
)
logger = logging.getLogger("analysis_service")


class MarketDataService:
    """Keeps the latest price per symbol, refreshed by a managed background task."""

    def __init__(self) -> None:
        self.prices: dict[str, float] = {}

    async def initialize(self) -> None:
        from ferrotick import get_task_manager as tasks

        tasks().create_task(self._refresh(), name="price-refresh", group="feeds")
        logger.info("market data service started")

    async def _refresh(self) -> None:
        tick = 0
        while True:
            tick += 1
            for symbol in ("BTCUSDT", "ETHUSDT"):
                self.prices[symbol] = 100.0 + tick
            await asyncio.sleep(0.05)

    async def cleanup(self) -> None:
        from ferrotick import get_task_manager as tasks

        report = await tasks().cancel_group("feeds", timeout=5)
        logger.info("market data service stopped (%d feed task(s) cancelled)", report.stopped)

    async def health_check(self) -> bool:
        return bool(self.prices)


class RegimeAnalyzer:
    def __init__(self, market_data: MarketDataService) -> None:
        self.market_data = market_data

    async def initialize(self) -> None:
        logger.info("regime analyzer started")

    @track_async_function(name="regime.analyze")
    async def analyze(self, symbol: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        price = self.market_data.prices.get(symbol)
        return {"symbol": symbol, "price": price, "regime": "trending" if price else "unknown"}

    async def cleanup(self) -> None:
        logger.info("regime analyzer stopped")


container = ServiceContainer(timeout=10)
market_data = container.register_service("market_data", MarketDataService())
container.register_analyzer("regime", RegimeAnalyzer(market_data), depends_on=["market_data"])

app = FastAPI(lifespan=lifespan(container, report_interval=300))
app.add_middleware(MetricsMiddleware)
app.include_router(metrics_router(health_checker=container.health_checker()))


Regime = Annotated[RegimeAnalyzer, Depends(get_service("regime"))]
Tasks = Annotated[TaskManager, Depends(get_task_manager)]


@app.get("/analyze/{symbol}")
async def analyze(symbol: str, regime: Regime):
    return await regime.analyze(symbol)


@app.get("/tasks")
async def tasks(manager: Tasks):
    return {str(tid): st for tid, st in manager.get_task_status().items()}
