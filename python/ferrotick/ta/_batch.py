"""Many indicators over many symbols at once, in parallel on the compute
pool."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import _core
from .._core import IndicatorInputError
from ._common import SPECS, normalize_spec

_INPUT_KEYS = ("open", "high", "low", "close", "volume")


def _series_list(key: str, x: Any, axis: int) -> tuple[Any, dict[str, Any]]:
    """Per-series contiguous float64 rows and how to shape the outputs."""
    mod = type(x).__module__
    if mod.startswith("pandas") and hasattr(x, "columns"):
        # A wide frame: bars x symbols.
        meta = {"kind": "frame", "index": x.index, "columns": x.columns}
        arr = x.to_numpy()
        if arr.dtype.kind not in "iuf":
            raise IndicatorInputError(f"batch: {key} must be numeric, got {arr.dtype}")
        rows = np.ascontiguousarray(arr.T, dtype=np.float64)
        return rows, meta
    if isinstance(x, np.ndarray):
        if x.ndim != 2:
            raise IndicatorInputError(
                f"batch: {key} must be 2-D (symbols x bars), got {x.ndim} dimensions"
            )
        if x.dtype.kind not in "iuf":
            raise IndicatorInputError(f"batch: {key} must have a real numeric dtype, got {x.dtype}")
        if axis not in (0, 1):
            raise IndicatorInputError(f"batch: axis must be 0 or 1, got {axis!r}")
        rows = np.ascontiguousarray(x if axis == 1 else x.T, dtype=np.float64)
        return rows, {"kind": "2d", "axis": axis}
    if isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
        out = []
        for i, s in enumerate(x):
            a = np.asarray(s.to_numpy() if hasattr(s, "to_numpy") else s)
            if a.ndim != 1:
                raise IndicatorInputError(f"batch: {key}[{i}] must be 1-D, got {a.ndim} dimensions")
            if a.dtype.kind not in "iuf":
                raise IndicatorInputError(
                    f"batch: {key}[{i}] must have a real numeric dtype, got {a.dtype}"
                )
            out.append(np.ascontiguousarray(a, dtype=np.float64))
        return out, {"kind": "list"}
    raise IndicatorInputError(
        f"batch: {key} must be a 2-D array, a wide DataFrame or a list of 1-D arrays"
    )


def _prepare(
    data: Any, indicators: Sequence[Any], axis: int
) -> tuple[
    list[tuple[str, list[float]]], list[tuple[str, list[np.ndarray]]], list[str], dict[str, Any]
]:
    if isinstance(data, Mapping):
        cols = {}
        for k, v in data.items():
            key = "close" if k == "real" else k
            if key not in _INPUT_KEYS:
                raise IndicatorInputError(
                    f"batch: unknown input {k!r} (use {', '.join(_INPUT_KEYS)})"
                )
            cols[key] = v
    else:
        cols = {"close": data}
    if not cols:
        raise IndicatorInputError("batch: no input data")
    inputs = []
    meta: dict[str, Any] = {}
    for k, v in cols.items():
        rows, meta = _series_list(k, v, axis)
        inputs.append((k, rows))
    if isinstance(indicators, (str, Mapping)) or (
        isinstance(indicators, tuple) and indicators and isinstance(indicators[0], str)
    ):
        indicators = [indicators]
    specs = []
    labels: list[str] = []
    for item in indicators:
        label, name, params = normalize_spec(item)
        if label in labels:
            raise IndicatorInputError(
                f"batch: two indicators share the label {label!r}; give one a 'label'"
            )
        for i in SPECS[name]["inputs"]:
            key = "close" if i == "real" else i
            if key not in cols:
                raise IndicatorInputError(
                    f"batch: {name} needs {key!r}, which the data does not have"
                )
        labels.append(label)
        specs.append((name, params))
    if not specs:
        raise IndicatorInputError("batch: no indicators")
    return specs, inputs, labels, meta


def _shape(
    result: list[tuple[Any, ...]], labels: list[str], meta: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, outs in zip(labels, result, strict=False):
        shaped = []
        for o in outs:
            if meta["kind"] == "2d":
                shaped.append(o if meta["axis"] == 1 else o.T)
            elif meta["kind"] == "frame":
                import pandas as pd

                shaped.append(pd.DataFrame(o.T, index=meta["index"], columns=meta["columns"]))
            else:
                shaped.append(o if isinstance(o, list) else list(o))
        out[label] = shaped[0] if len(shaped) == 1 else tuple(shaped)
    return out


def batch(data: Any, indicators: Sequence[Any], *, axis: int = 1) -> dict[str, Any]:
    """Computes every indicator for every symbol, in parallel.

    ``data``: a 2-D array of closes (symbols x bars; ``axis=0`` for bars x
    symbols), a wide pandas DataFrame (bars x symbols), a list of 1-D
    arrays of any lengths, or a mapping with any of ``open``, ``high``,
    ``low``, ``close``, ``volume`` to such values.

    ``indicators``: specs such as ``"RSI"``, ``("SMA", {"timeperiod": 20})``,
    ``("BBANDS", 20)`` or ``{"name": "EMA", "timeperiod": 50, "label": "ema50"}``.

    Returns ``{label: output}`` where output is an array shaped and
    oriented like the input (a DataFrame for a frame, a list of arrays for
    a list), or a tuple of them in TA-Lib's order for several outputs.
    Labels default to the name plus any non-default parameters (``SMA_20``).
    """
    specs, inputs, labels, meta = _prepare(data, indicators, axis)
    result = _core.ta_batch(specs, inputs)
    return _shape(result, labels, meta)


async def batch_async(data: Any, indicators: Sequence[Any], *, axis: int = 1) -> dict[str, Any]:
    """Awaitable ``batch``: runs on the compute pool while the loop keeps
    serving; cancelling stops the work at its next chunk boundary."""
    specs, inputs, labels, meta = _prepare(data, indicators, axis)
    result = await _core.ta_batch_async(specs, inputs)
    return _shape(result, labels, meta)
