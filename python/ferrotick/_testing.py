"""Private helpers for ferrotick's own test suite (not a public API).

``_raise_after(kind, message, delay=0.0)`` returns an awaitable that raises the
exception class named ``kind`` (one of ferrotick's, e.g. ``"RequestTimeout"``)
with ``message`` after ``delay`` seconds, or at once; it is how the tests check
that errors cross the bridge as the right class, with their message redacted.
"""

from __future__ import annotations

from ._core import _raise_after

__all__ = ["_raise_after"]
