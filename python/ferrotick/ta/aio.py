"""Awaitable twins of every indicator function: the kernel runs on the
compute pool and completes through ferrotick's bridge, so the event loop
keeps serving meanwhile. ``await ferrotick.ta.aio.RSI(close, 14)``."""

from __future__ import annotations

from . import _gen
from ._batch import batch_async
from ._common import SPECS, call_async

globals().update(_gen.make("async", call_async))

__all__ = ["batch_async", *SPECS]
