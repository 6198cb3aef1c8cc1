"""Seed 000's analysis service, extended: ``ferrotick.service``'s app (the exchange,
the pipeline, ``POST /detect/``, ``GET /analyze/{symbol}``, ``/metrics``, ``/health``,
``/async-performance``) with a service of this example's own in its container and two
routes of its own.

    uvicorn app:app --app-dir examples/analysis_service

``PriceFeed`` keeps the latest price of a few symbols, polled from the service's
exchange client by a managed background task; it depends on the service's
``"exchange"``, so the container starts it after the exchange is connected and stops
it before the exchange closes. The app runs seed 000's schedulers too
(``schedulers=True``). Routes added here: ``GET /price/{symbol}`` and ``GET /tasks``.
With no exchange URL configured, the app embeds ferrotick's simulated exchange.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import Depends, HTTPException

from ferrotick import FerrotickError, ServiceContainer, TaskManager, track_async_function
from ferrotick.fastapi import get_service, get_task_manager
from ferrotick.service import ExchangeService, create_app

logging.basicConfig(
    level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
)
logger = logging.getLogger("analysis_service")

SYMBOLS = ("BTCUSDT", "ETHUSDT")


class PriceFeed:
    """The latest price per symbol, refreshed by a managed background task."""

    def __init__(self, container: ServiceContainer) -> None:
        self.container = container
        self.prices: dict[str, float] = {}

    async def initialize(self) -> None:
        from ferrotick import get_task_manager as tasks

        tasks().create_task(self._refresh(), name="price-refresh", group="feeds")
        logger.info("price feed started")

    async def _refresh(self) -> None:
        exchange: ExchangeService = self.container.get("exchange")
        while True:
            try:
                await self._poll(exchange)
            except FerrotickError as e:  # the next round tries again
                logger.warning("price poll failed: %s", e)
            await asyncio.sleep(0.2)

    @track_async_function(name="prices.poll")
    async def _poll(self, exchange: ExchangeService) -> None:
        assert exchange.client is not None
        rows = await asyncio.gather(*(exchange.client.get_ticker_price(s) for s in SYMBOLS))
        for row in rows:
            self.prices[row["symbol"]] = float(row["price"])

    async def cleanup(self) -> None:
        from ferrotick import get_task_manager as tasks

        report = await tasks().cancel_group("feeds", timeout=5)
        logger.info("price feed stopped (%d feed task(s) cancelled)", report.stopped)

    async def health_check(self) -> bool:
        return bool(self.prices)


container = ServiceContainer(timeout=10)
container.register_service("prices", PriceFeed(container), depends_on=["exchange"])
app = create_app(container=container, schedulers=True)

Prices = Annotated[PriceFeed, Depends(get_service("prices"))]
Tasks = Annotated[TaskManager, Depends(get_task_manager)]


@app.get("/price/{symbol}")
async def price(symbol: str, feed: Prices):
    symbol = symbol.upper()
    if symbol not in SYMBOLS:
        raise HTTPException(404, f"{symbol}: not followed (the feed follows {', '.join(SYMBOLS)})")
    return {"symbol": symbol, "price": feed.prices.get(symbol)}


@app.get("/tasks")
async def tasks(manager: Tasks):
    return {str(tid): st for tid, st in manager.get_task_status().items()}
