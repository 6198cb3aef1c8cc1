"""Renders the type stubs of ``ferrotick.ta``, ``ta.aio`` and ``ta.stream`` from the
function table, so that IDEs and type checkers see every indicator with its inputs,
parameters and outputs.

``python -m ferrotick.ta._stubs`` rewrites the three ``.pyi`` files beside this module;
``tests/test_stubs.py`` checks that the shipped files equal what this renders.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ._common import SPECS

_HEADER = '''"""Type stubs generated from the function table by ``python -m ferrotick.ta._stubs``."""

from collections.abc import Sequence
from typing import Any, TypeVar, overload

import numpy as np
from numpy.typing import NDArray

'''

_TYPES = """_S = TypeVar("_S")
_Array = NDArray[Any] | Sequence[float]
_F64 = NDArray[np.float64]

"""


_PACKAGE_NAMES = [
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
]


def _all(names: list[str]) -> str:
    return "__all__ = [\n" + "".join(f"    {n!r},\n" for n in [*names, *SPECS]) + "]\n\n"


def _params(spec: dict[str, Any]) -> str:
    return "".join(
        f", {p['name']}: {'int' if p['int'] else 'float'} = {p['default']!r}"
        for p in spec["params"]
    )


def _result(spec: dict[str, Any], one: str) -> str:
    n = len(spec["outputs"])
    return one if n == 1 else f"tuple[{', '.join([one] * n)}]"


def _function(spec: dict[str, Any], prefix: str) -> str:
    name, params = spec["name"], _params(spec)
    arrays = ", ".join(f"{i}: _Array" for i in spec["inputs"])
    series = ", ".join(f"{i}: _S" for i in spec["inputs"])
    return (
        f"@overload\n{prefix}def {name}({arrays}{params}) -> {_result(spec, '_F64')}: ...\n"
        f"@overload\n{prefix}def {name}({series}{params}) -> {_result(spec, '_S')}: ...\n"
    )


def _stream_function(spec: dict[str, Any]) -> str:
    inputs = ", ".join(f"{i}: Any = None" for i in spec["inputs"])
    return f"def {spec['name']}({inputs}{_params(spec)}) -> Stream: ...\n"


def render_package() -> str:
    ma = "".join(
        f"    {k}: int\n"
        for k in ("SMA", "EMA", "WMA", "DEMA", "TEMA", "TRIMA", "KAMA", "MAMA", "T3")
    )
    body = (
        _HEADER
        + "from .._errors import IndicatorInputError as IndicatorInputError\n"
        + "from . import aio as aio, stream as stream\n"
        + "from ._batch import batch as batch, batch_async as batch_async\n"
        + "from ._common import InsufficientHistory as InsufficientHistory\n\n"
        + _TYPES
        + "FUNCTIONS: tuple[str, ...]\n\n"
        + _all(_PACKAGE_NAMES)
        + f"class MA_Type:\n{ma}\n"
        + "def get_functions() -> list[str]: ...\n"
        + "def lookback(name: str, **params: Any) -> int: ...\n"
        + "def buffer_pool(limit_bytes: int | None = None) -> tuple[int, int]: ...\n"
        + "def compute_threads() -> int: ...\n\n"
    )
    return body + "".join(_function(s, "") for s in SPECS.values())


def render_aio() -> str:
    body = (
        _HEADER
        + "from ._batch import batch_async as batch_async\n\n"
        + _TYPES
        + _all(["batch_async"])
    )
    return body + "".join(_function(s, "async ") for s in SPECS.values())


def render_stream() -> str:
    body = (
        '"""Type stubs generated from the function table by ``python -m ferrotick.ta._stubs``."""\n\n'
        "from typing import Any\n\n"
        "from .._core import Bundle as Bundle, Stream as Stream\n"
        "from ._common import InsufficientHistory as InsufficientHistory\n\n"
        + _all(["Bundle", "InsufficientHistory", "Stream"])
    )
    return body + "".join(_stream_function(s) for s in SPECS.values())


RENDERERS = {"__init__.pyi": render_package, "aio.pyi": render_aio, "stream.pyi": render_stream}


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else Path(__file__).parent
    for name, render in RENDERERS.items():
        (folder / name).write_text(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
