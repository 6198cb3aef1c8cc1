"""The analysis pipeline: market data, resampling, analyzers and the processor.

- ``MarketData``: one symbol's OHLCV columns (numpy), from arrays, pandas, polars or
  the exchange client's ``Klines``; ``.resample("5m")`` in Rust.
- Resampling rules: buckets are labelled by their open time (UTC ms); weeks start on
  Monday 00:00 UTC; ``tz=`` puts daily and weekly boundaries at local midnight (DST
  days have 23 or 25 hours); months are calendar months. A bucket with no input bars
  is left out unless ``fill_empty=True`` (then it repeats the previous close with
  volume 0). NaN values are skipped within a bucket. The last bar is flagged
  ``partial_last`` when its period had not ended. ``join_higher`` aligns a higher
  timeframe to a lower one without look-ahead. ``Resampler`` (from ``ferrotick._core``)
  does the same incrementally.
- ``MarketRegimeAnalyzer``, ``MultiTimeframeAnalyzer``, ``BaseAnalyzer``,
  ``AnalysisResult``: the analyzers of seeds 000 and 002.
- ``AsyncDataProcessor(AsyncConfig)``: seed 004's pipeline over many symbols, and its
  real-time mode; ``ListSink``/``CallbackSink`` and the ``Sink`` contract.
"""

from .._core import RegimeClassifier, Resampler
from ._analyzers import (
    REGIMES,
    AnalysisResult,
    BaseAnalyzer,
    MarketRegimeAnalyzer,
    MultiTimeframeAnalyzer,
)
from ._config import AsyncConfig
from ._data import MarketData, join_higher
from ._processor import AsyncDataProcessor, ProcessingResults, SymbolResult
from ._sinks import CallbackSink, ListSink, Sink

__all__ = [
    "REGIMES",
    "AnalysisResult",
    "AsyncConfig",
    "AsyncDataProcessor",
    "BaseAnalyzer",
    "CallbackSink",
    "ListSink",
    "MarketData",
    "MarketRegimeAnalyzer",
    "MultiTimeframeAnalyzer",
    "ProcessingResults",
    "RegimeClassifier",
    "Resampler",
    "Sink",
    "SymbolResult",
    "join_higher",
]
