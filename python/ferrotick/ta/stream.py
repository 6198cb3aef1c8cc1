"""O(1) streaming indicators in the shape of TA-Lib 0.8's ``talib.stream``.

``EMA(history, timeperiod=30)`` opens a stream from history (raising
InsufficientHistory when it is too short); ``EMA(timeperiod=30)`` opens one
that warms up from updates. Streams have ``update(bar...)``, ``peek(...)``,
``value``, ``copy()``, ``update_many(arrays...)`` and pickle. Each output
equals the batch function's at the same bar, bit for bit.

``Bundle([...])`` updates many indicators of one symbol in one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import _core
from . import _gen
from ._common import SPECS, InsufficientHistory, as_f64, params_of

Stream = _core.Stream


def _open(name: str, history: Sequence[Any], params: Sequence[Any]) -> Any:
    s = _core.Stream(name, params_of(name, params))
    given = [h is not None for h in history]
    if any(given):
        spec = SPECS[name]
        if not all(given):
            missing = [i for i, g in zip(spec["inputs"], given, strict=False) if not g]
            raise InsufficientHistory(f"{name}: history needs {', '.join(missing)} as well")
        arrays = [as_f64(name, a, x) for a, x in zip(spec["inputs"], history, strict=False)]
        s.update_many(arrays)
        if not s.ready:
            need = _core.ta_lookback(name, s.params) + 1
            raise InsufficientHistory(
                f"{name}: {s.count} bars of history, at least {need} needed "
                "(a bar with NaN in any input is not history)"
            )
    return s


globals().update(_gen.make("stream", _open))


Bundle = _core.Bundle


__all__ = ["Bundle", "InsufficientHistory", "Stream", *SPECS]
