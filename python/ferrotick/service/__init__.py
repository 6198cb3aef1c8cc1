"""The analysis service of seed 000, shipped: FastAPI on ferrotick's lifespan, service
container, exchange client and pipeline. ``ferrotick serve`` runs it under uvicorn;
install it with ``pip install 'ferrotick[serve]'`` (FastAPI and uvicorn).

```python
from ferrotick.service import create_app

app = create_app()                                   # embedded simulated exchange
app = create_app(load_config("config.yml"))          # the config's exchange and limits
app = create_app(exchange_url="http://127.0.0.1:9000")
```

Endpoints:

* ``POST /detect/`` — body ``{"symbol", "timeframe", "ohlc_data": [{"timestamp" (or
  "open_time": UTC ms or ISO 8601), "open", "high", "low", "close", "volume"}, ...]}``;
  the ``MarketRegimeAnalyzer`` result (``AnalysisResult.to_dict()``; per-bar arrays
  with ``?series=true``). Data that cannot be read → 422 naming the row and key.
* ``GET /analyze/{symbol}?timeframes=5m,15m,1h&bars=1000`` — the symbol through the
  ``AsyncDataProcessor`` (the latest ``bars`` 1m klines, resampled, both analyzers);
  ``SymbolResult.to_dict()``. A symbol the exchange does not list → 404 with the
  exchange's message; an exchange failure → 502, a timeout → 504.
* ``GET /async-performance[?operation=]``, ``POST /async-performance/report`` — the
  process-wide ``AsyncPerformanceMonitor`` (``service.detect``, ``service.analyze`` and
  the pipeline's stages ``fetch``, ``resample``, ``indicators`` among its operations).
* ``GET /metrics`` — Prometheus text of the default registry (the pipeline's
  ``async_operation_duration_seconds``, ``async_errors_total``, ``active_async_tasks``,
  the HTTP request metrics, the exchange client's); ``GET /metrics.json``.
* ``GET /health`` — the processor's checks (``data_streaming``,
  ``indicator_processing``, ``api_connectivity``, ``thread_pools``) and ``exchange``
  (``/api/v3/ping``): 200 when all pass, else 503.

Which exchange: ``exchange_url`` when given; else the config's ``binance.base_url``
when it is not the public exchange's default; else an embedded
``SimulatedExchange`` that the app starts at startup and stops at shutdown. To reach
the public exchange, give its URL explicitly.

The container holds two services: ``"exchange"`` (:class:`ExchangeService`: the
simulator when embedded, the connected ``OptimizedBinanceClient`` as ``.client``)
and the analyzer ``"analysis"`` (:class:`AnalysisService`). Pass ``container=`` to
add services of your own (they may ``depends_on=["exchange"]``).

``app_from_env()`` is the factory uvicorn's workers import
(``uvicorn ferrotick.service:app_from_env --factory``): it reads the config from
``$FERROTICK_CONFIG`` and the exchange from ``$FERROTICK_SERVE_EXCHANGE_URL`` /
``$FERROTICK_SERVE_WS_URL`` (set by ``ferrotick serve --workers N``, whose parent
process runs one simulator for all workers), and gives each worker
``1/$FERROTICK_SERVE_WORKERS`` of the exchange's weight budget.

Importing this package does not import FastAPI; its names do, on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import (
        SIM_SYMBOLS,
        AnalysisService,
        DetectRegimeRequest,
        ExchangeService,
        app_from_env,
        create_app,
    )

__all__ = [
    "SIM_SYMBOLS",
    "AnalysisService",
    "DetectRegimeRequest",
    "ExchangeService",
    "app_from_env",
    "create_app",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import _app

        return getattr(_app, name)
    raise AttributeError(f"module 'ferrotick.service' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
