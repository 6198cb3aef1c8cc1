"""Technical indicators with TA-Lib's names, parameters and results.

``import ferrotick.ta as talib`` runs existing TA-Lib code for the core
set (see ``FUNCTIONS``); kernels are Rust state machines that release the
GIL. ``batch`` computes many indicators over many symbols in parallel on
the compute pool; ``ferrotick.ta.stream`` updates them bar by bar in O(1);
``ferrotick.ta.aio`` has awaitable twins of every function.

NaN rule: a bar with NaN in any input an indicator reads is skipped. Its
output is NaN and the indicator's state does not change, so windows span
the last N valid bars. Leading NaNs therefore behave exactly as in TA-Lib.
"""

from __future__ import annotations

from typing import Any

from .. import _core
from .._core import IndicatorInputError
from .._validate import is_integer
from . import _gen, aio, stream
from ._batch import batch, batch_async
from ._common import SPECS, InsufficientHistory, call, params_of

FUNCTIONS: tuple[str, ...] = tuple(SPECS)

MA_Type = type(
    "MA_Type",
    (),
    {"SMA": 0, "EMA": 1, "WMA": 2, "DEMA": 3, "TEMA": 4, "TRIMA": 5, "KAMA": 6, "MAMA": 7, "T3": 8},
)

# numpy float64 arrays and plain numbers go straight to the kernels;
# anything else through `call`, which converts and checks
_funcs = _gen.make("func", call, _core.ta_call)
globals().update(_funcs)


def get_functions() -> list[str]:
    """Names of every indicator function."""
    return list(FUNCTIONS)


def lookback(name: str, **params: Any) -> int:
    """Bars before the first output of ``name`` with these parameters."""
    spec = SPECS.get(name.upper())
    if spec is None:
        raise IndicatorInputError(f"unknown indicator {name!r}")
    values = {p["name"]: p["default"] for p in spec["params"]}
    for k, v in params.items():
        if k not in values:
            raise IndicatorInputError(f"{spec['name']} has no parameter {k!r}")
        values[k] = v
    return int(_core.ta_lookback(spec["name"], params_of(spec["name"], list(values.values()))))


def buffer_pool(limit_bytes: int | None = None) -> tuple[int, int]:
    """Result buffers kept for reuse after Python frees them (default 1 GiB;
    0 turns recycling off). Returns (previous limit, bytes held now)."""
    if limit_bytes is not None and not is_integer(limit_bytes, min=0):
        raise IndicatorInputError(
            f"buffer_pool: limit_bytes must be a non-negative integer, got {limit_bytes!r}"
        )
    prev, held = _core.ta_buffer_pool(limit_bytes)
    return int(prev), int(held)


def compute_threads() -> int:
    """Threads of the compute pool (``configure(compute_threads=...)``)."""
    return int(_core.ta_pool_threads())


__all__ = [
    "FUNCTIONS",
    "aio",
    "stream",
    "IndicatorInputError",
    "InsufficientHistory",
    "MA_Type",
    "batch",
    "batch_async",
    "buffer_pool",
    "compute_threads",
    "get_functions",
    "lookback",
    *FUNCTIONS,
]
