"""Argument checks shared by the package: numbers, seconds, integers and flags.

A bool is never a number here, although Python's ``bool`` is an ``int``:
``timeout=True`` or ``maxsize=False`` is a mistake, not 1 or 0. Numbers are finite.

A failed check raises ConfigError with the message
``"<name>: expected <what>, got <value!r>"``; ``what`` is built from the bounds
unless ``expected`` gives it. The ``is_*`` predicates serve call sites whose
message has another shape.

The options after ``name, v`` are not keyword-only, although callers pass them
by keyword: CPython calls a function whose keyword-only parameters have defaults
on a slower path, and these checks run per request (a request's timeout) and per
job or trigger created. For the same reason each check is written out in full
rather than through another function of this module.
"""

from __future__ import annotations

import math
from typing import Any

from ._errors import ConfigError

__all__ = ["boolean", "integer", "is_integer", "is_number", "number", "seconds"]


def is_number(
    v: object, min: float | None = None, gt: float | None = None, max: float | None = None
) -> bool:
    """True for a finite int or float (never a bool) with ``min <= v``, ``gt < v``
    and ``v <= max`` for the bounds given."""
    return (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and (min is None or v >= min)
        and (gt is None or v > gt)
        and (max is None or v <= max)
        and math.isfinite(v)
    )


def is_integer(v: object, min: int | None = None, max: int | None = None) -> bool:
    """True for an int (never a bool) with ``min <= v <= max`` for the bounds given."""
    return (
        isinstance(v, int)
        and not isinstance(v, bool)
        and (min is None or v >= min)
        and (max is None or v <= max)
    )


def _fail(name: str, expected: str, v: object) -> ConfigError:
    return ConfigError(f"{name}: expected {expected}, got {v!r}")


def seconds(
    name: str,
    v: Any,
    positive: bool = False,
    max: float | None = None,
    allow_none: bool = False,
    expected: str | None = None,
) -> Any:
    """``v`` as a float number of seconds: >= 0 (> 0 with ``positive``), at most
    ``max``; None passes through with ``allow_none``. Messages say "seconds >= 0",
    "seconds > 0" or "seconds in [0, max]"."""
    if (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and (v > 0 if positive else v >= 0)
        and (max is None or v <= max)
        and math.isfinite(v)
    ):
        return float(v)
    if v is None and allow_none:
        return None
    if expected is None:
        if max is not None:
            expected = f"seconds in {'(' if positive else '['}0, {max:g}]"
        else:
            expected = "seconds > 0" if positive else "seconds >= 0"
    raise _fail(name, expected, v)


def number(name: str, v: Any, allow_none: bool = False) -> Any:
    """``v`` as a float: any finite number; None passes through with ``allow_none``.
    The message says "a finite number"."""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    if v is None and allow_none:
        return None
    raise _fail(name, "a finite number", v)


def integer(
    name: str,
    v: Any,
    min: int | None = None,
    max: int | None = None,
    allow_none: bool = False,
    expected: str | None = None,
) -> Any:
    """``v`` itself when it is an int with ``min <= v <= max`` for the bounds given;
    None passes through with ``allow_none``. Messages say "an integer >= min",
    "an integer min-max" or "an integer"."""
    if (
        isinstance(v, int)
        and not isinstance(v, bool)
        and (min is None or v >= min)
        and (max is None or v <= max)
    ):
        return v
    if v is None and allow_none:
        return None
    if expected is None:
        if min is not None and max is not None:
            expected = f"an integer {min}-{max}"
        elif min is not None:
            expected = f"an integer >= {min}"
        elif max is not None:
            expected = f"an integer <= {max}"
        else:
            expected = "an integer"
    raise _fail(name, expected, v)


def boolean(name: str, v: Any) -> bool:
    """``v`` when it is True or False (not 0, 1 or any other truthy value)."""
    if v is True or v is False:
        return v
    raise _fail(name, "True or False", v)
