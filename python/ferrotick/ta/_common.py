"""Shared plumbing of ferrotick.ta: the function table, input conversion,
parameter handling and output wrapping."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import _core
from .._core import IndicatorInputError

SPECS: dict[str, dict[str, Any]] = {s["name"]: s for s in _core.ta_specs()}


class InsufficientHistory(IndicatorInputError):
    """A stream was opened from fewer bars than its lookback needs."""


def _kind(x: Any) -> str:
    mod = type(x).__module__
    if mod.startswith("pandas") and hasattr(x, "index"):
        return "pandas"
    if mod.startswith("polars"):
        return "polars"
    return "numpy"


def as_f64(fn: str, arg: str, x: Any) -> np.ndarray:
    """A contiguous 1-D float64 view (no copy for contiguous float64)."""
    k = _kind(x)
    if k == "pandas":
        x = x.to_numpy()
    elif k == "polars":
        x = x.to_numpy()
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as e:
            raise IndicatorInputError(f"{fn}: {arg} is not an array of numbers ({e})") from None
    if x.ndim != 1:
        raise IndicatorInputError(
            f"{fn}: {arg} must be 1-dimensional, got {x.ndim} dimensions (use ferrotick.ta.batch for 2-D)"
        )
    if x.dtype.kind not in "iuf":
        raise IndicatorInputError(f"{fn}: {arg} must have a real numeric dtype, got {x.dtype}")
    if x.dtype == np.float64 and x.flags.c_contiguous:
        return x
    return np.ascontiguousarray(x, dtype=np.float64)


def params_of(name: str, values: Sequence[Any]) -> list[float]:
    spec = SPECS[name]
    out = []
    for p, v in zip(spec["params"], values, strict=False):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise IndicatorInputError(f"{name}: {p['name']} must be a number, got {v!r}")
        out.append(float(v))
    return out


def wrap(template: Any, outs: Sequence[np.ndarray]) -> Any:
    """Outputs as the caller's kind: pandas Series with the same index,
    polars Series, or numpy arrays; one value or a tuple."""
    k = _kind(template)
    if k == "pandas":
        import pandas as pd

        res: list[Any] = [pd.Series(o, index=template.index) for o in outs]
    elif k == "polars":
        import polars as pl

        res = [pl.Series(template.name, o) for o in outs]
    else:
        res = list(outs)
    return res[0] if len(res) == 1 else tuple(res)


def call(name: str, inputs: Sequence[Any], params: Sequence[Any]) -> Any:
    spec = SPECS[name]
    arrays = [as_f64(name, a, x) for a, x in zip(spec["inputs"], inputs, strict=False)]
    outs = _core.ta_run(name, arrays, params_of(name, params))
    return wrap(inputs[0], outs)


async def call_async(name: str, inputs: Sequence[Any], params: Sequence[Any]) -> Any:
    spec = SPECS[name]
    arrays = [as_f64(name, a, x) for a, x in zip(spec["inputs"], inputs, strict=False)]
    outs = await _core.ta_run_async(name, arrays, params_of(name, params))
    return wrap(inputs[0], outs)


def normalize_spec(item: Any) -> tuple[str, str, list[float]]:
    """(label, NAME, params) from "RSI", ("SMA", {"timeperiod": 20}),
    ("SMA", 20), or {"name": "SMA", "timeperiod": 20, "label": "fast"}."""
    label = None
    kwargs: dict[str, Any] = {}
    args: tuple[Any, ...] = ()
    if isinstance(item, str):
        name = item
    elif isinstance(item, Mapping):
        d = dict(item)
        name = d.pop("name", None)
        label = d.pop("label", None)
        kwargs = d
    elif isinstance(item, (tuple, list)) and item and isinstance(item[0], str):
        name = item[0]
        rest = list(item[1:])
        if rest and isinstance(rest[-1], Mapping):
            kwargs = dict(rest.pop())
        args = tuple(rest)
    else:
        raise IndicatorInputError(f"indicators: cannot read an indicator spec from {item!r}")
    if not isinstance(name, str) or name.upper() not in SPECS:
        raise IndicatorInputError(f"indicators: unknown indicator {name!r}")
    name = name.upper()
    spec = SPECS[name]
    pnames = [p["name"] for p in spec["params"]]
    if len(args) > len(pnames):
        raise IndicatorInputError(f"{name} takes at most {len(pnames)} parameters, got {len(args)}")
    values = {p["name"]: p["default"] for p in spec["params"]}
    for pn, v in zip(pnames, args, strict=False):
        values[pn] = v
    for k, v in kwargs.items():
        if k not in values:
            raise IndicatorInputError(
                f"{name} has no parameter {k!r} (it takes {', '.join(pnames) or 'none'})"
            )
        values[k] = v
    plist = params_of(name, [values[p] for p in pnames])
    if label is None:
        non_default = [
            f"{v:g}"
            for p, v in zip(spec["params"], plist, strict=False)
            if v != float(p["default"])
        ]
        label = "_".join([name, *non_default])
    return str(label), name, plist
