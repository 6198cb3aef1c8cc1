"""Keeps the Rust-side log filter equal to the level of the ``ferrotick`` loggers.

Rust ``tracing`` events are delivered to ``logging.getLogger("ferrotick.<domain>")``.
So that disabled levels cost nothing in Rust, the Rust filter follows the lowest
effective level among the ``ferrotick`` loggers. Every change of a logger's level
(``setLevel``) and every ``logging.disable`` goes through the logging manager's
cache invalidation, which this module hooks; the hook is installed once.
"""

from __future__ import annotations

import logging

from . import _core

LOGGER_NAME = "ferrotick"
_installed = False


def _threshold() -> int:
    manager = logging.Logger.manager
    levels = [logging.getLogger(LOGGER_NAME).getEffectiveLevel()]
    base = logging.getLogger(LOGGER_NAME)
    if base.disabled:
        levels = [logging.CRITICAL + 10]
    for name, obj in list(manager.loggerDict.items()):
        if name.startswith(LOGGER_NAME + ".") and isinstance(obj, logging.Logger):
            if not obj.disabled:
                levels.append(obj.getEffectiveLevel())
    level = min(levels)
    disabled = manager.disable
    if disabled:
        level = max(level, disabled + 1)
    return level


def sync_level() -> int:
    """Pushes the current threshold to Rust and returns it."""
    level = _threshold()
    _core._set_log_level(level)
    return level


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    manager = logging.Logger.manager
    original = getattr(manager, "_clear_cache", None)
    if callable(original):

        def _clear_cache_and_sync() -> None:
            original()
            try:
                sync_level()
            except Exception:  # never break logging configuration
                pass

        manager._clear_cache = _clear_cache_and_sync  # type: ignore[method-assign]
    sync_level()
