"""The analysis pipeline: market data, resampling, analyzers and the processor."""

from ._config import AsyncConfig

__all__ = ["AsyncConfig"]
