"""ServiceContainer: services and analyzers started in dependency order, stopped in reverse.

```python
from ferrotick import ServiceContainer

container = ServiceContainer(timeout=10)
container.register_service("db", Database())
container.register_service("cache", Cache(), depends_on=["db"])
container.register_analyzer("regime", RegimeAnalyzer(), depends_on=["cache"])
await container.initialize()
...
await container.cleanup()
```

What a registered object may be: one with ``initialize()`` and/or ``cleanup()``
methods (plain or async; a plain one runs on the loop, so its timeout cannot
interrupt it), an async context manager (``__aenter__`` / ``__aexit__``), or any
other value (stored, nothing called).

* ``initialize()``: services before analyzers; within each, dependencies before
  dependents, level by level, the objects of one level concurrently, each step
  bounded by its timeout. When a step fails, the objects already started are
  cleaned up, then ``ServiceContainerError`` names the object and the cause.
* ``cleanup()``: dependents before dependencies (analyzers first), level by level,
  one at a time in reverse registration order within a level; every step runs even
  if an earlier one failed, and the failures are raised together in one
  ``ServiceContainerError``. Only what ``initialize()`` started is cleaned up.
* Unknown or cyclic ``depends_on`` (or a service depending on an analyzer) raises
  ``ServiceContainerError`` at ``initialize()``, naming them; a duplicate name
  raises it at registration.
* ``health()`` runs the objects' ``health_check()`` (plain or async; truthy means
  healthy) through an ``AsyncHealthChecker``; objects without one are healthy once
  started.

Each step is logged at INFO on the ``ferrotick.container`` logger
("initialized service 'db'", "cleaned up service 'db'").
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import math
from collections.abc import Iterable
from typing import Any

from ._errors import ServiceContainerError

logger = logging.getLogger("ferrotick.container")

__all__ = ["ServiceContainer", "ServiceContainerError"]

_KINDS = ("service", "analyzer")


@dataclasses.dataclass
class _Entry:
    name: str
    obj: Any
    kind: str
    depends_on: tuple[str, ...]
    timeout: float
    order: int


def _check_timeout(timeout: Any) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout: expected seconds as a number, got {timeout!r}")
    if not (timeout > 0 and not math.isnan(timeout)):
        raise ValueError(f"timeout: must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _check_deps(depends_on: Iterable[str] | str | None) -> tuple[str, ...]:
    if depends_on is None:
        return ()
    if isinstance(depends_on, str):
        return (depends_on,)
    deps = tuple(depends_on)
    for d in deps:
        if not isinstance(d, str):
            raise TypeError(f"depends_on: expected names (strings), got {d!r}")
    return deps


async def _call(obj: Any, method: str) -> None:
    fn = getattr(obj, method, None)
    if fn is None:
        return
    result = fn()
    if inspect.isawaitable(result):
        await result


async def _start(obj: Any) -> None:
    if hasattr(obj, "initialize"):
        await _call(obj, "initialize")
    elif hasattr(obj, "__aenter__"):
        await obj.__aenter__()


async def _stop(obj: Any) -> None:
    if hasattr(obj, "cleanup"):
        await _call(obj, "cleanup")
    elif hasattr(obj, "__aexit__"):
        await obj.__aexit__(None, None, None)


def _levels(entries: list[_Entry], known: set[str]) -> list[list[_Entry]]:
    """Dependency levels (level 0 depends only on names in ``known``); raises on
    unknown or cyclic dependencies."""
    by_name = {e.name: e for e in entries}
    done = set(known)
    levels: list[list[_Entry]] = []
    left = list(entries)
    while left:
        level = [e for e in left if all(d in done for d in e.depends_on)]
        if not level:
            raise ServiceContainerError(_unresolvable(left, by_name, done))
        levels.append(level)
        done.update(e.name for e in level)
        left = [e for e in left if e.name not in done]
    return levels


def _unresolvable(left: list[_Entry], by_name: dict[str, _Entry], done: set[str]) -> str:
    parts = []
    for e in left:
        missing = [d for d in e.depends_on if d not in done and d not in by_name]
        if missing:
            parts.append(f"{e.kind} {e.name!r} depends on unknown {missing}")
    if parts:
        return "; ".join(parts)
    names = sorted(e.name for e in left)
    return f"cyclic depends_on among {names}"


class ServiceContainer:
    """Services and analyzers with ordered async start and stop (see the module doc)."""

    def __init__(self, *, timeout: float = 30.0) -> None:
        self.timeout = _check_timeout(timeout)
        self._entries: dict[str, _Entry] = {}
        self._started: list[str] = []
        self._initialized = False
        self._lock = asyncio.Lock()

    # -- registering ------------------------------------------------------------------

    def register_service(
        self,
        name: str,
        obj: Any,
        depends_on: Iterable[str] | str | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Registers ``obj`` as service ``name``; returns ``obj``."""
        return self._register("service", name, obj, depends_on, timeout)

    def register_analyzer(
        self,
        name: str,
        obj: Any,
        depends_on: Iterable[str] | str | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Registers ``obj`` as analyzer ``name`` (started after every service)."""
        return self._register("analyzer", name, obj, depends_on, timeout)

    def _register(
        self, kind: str, name: str, obj: Any, depends_on: Any, timeout: float | None
    ) -> Any:
        if not isinstance(name, str) or not name:
            raise TypeError(f"name: expected a non-empty string, got {name!r}")
        if name in self._entries:
            raise ServiceContainerError(
                f"{kind} {name!r}: the name is already registered (as a {self._entries[name].kind})"
            )
        deps = _check_deps(depends_on)
        t = self.timeout if timeout is None else _check_timeout(timeout)
        self._entries[name] = _Entry(name, obj, kind, deps, t, len(self._entries))
        return obj

    # -- reading ----------------------------------------------------------------------

    def get(self, name: str) -> Any:
        """The object registered as ``name``."""
        entry = self._entries.get(name)
        if entry is None:
            raise ServiceContainerError(
                f"no service or analyzer named {name!r} (have {sorted(self._entries)})"
            )
        return entry.obj

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def _of_kind(self, kind: str) -> dict[str, Any]:
        return {n: e.obj for n, e in self._entries.items() if e.kind == kind}

    @property
    def services(self) -> dict[str, Any]:
        return self._of_kind("service")

    @property
    def analyzers(self) -> dict[str, Any]:
        return self._of_kind("analyzer")

    @property
    def initialized(self) -> bool:
        return self._initialized

    def plan(self) -> list[list[str]]:
        """The start order: one list of names per level (services' levels first)."""
        return [[e.name for e in level] for level in self._plan()]

    def _plan(self) -> list[list[_Entry]]:
        services = [e for e in self._entries.values() if e.kind == "service"]
        analyzers = [e for e in self._entries.values() if e.kind == "analyzer"]
        service_names = {e.name for e in services}
        for e in services:
            wrong = [d for d in e.depends_on if self._entries.get(d, e).kind == "analyzer"]
            if wrong:
                raise ServiceContainerError(
                    f"service {e.name!r} depends on analyzer(s) {wrong}: services start first"
                )
        return _levels(services, set()) + _levels(analyzers, service_names)

    # -- starting ---------------------------------------------------------------------

    async def initialize(self) -> None:
        """Starts everything registered and not started yet (see the module doc)."""
        async with self._lock:
            plan = self._plan()
            try:
                for level in plan:
                    pending = [e for e in level if e.name not in self._started]
                    await self._start_level(pending)
            except asyncio.CancelledError:
                # cancelled while starting (Ctrl-C): stop what already started
                await self._cleanup_quietly()
                raise
            self._initialized = True

    async def _cleanup_quietly(self) -> None:
        try:
            await self._cleanup_started()
        except ServiceContainerError as e:
            logger.error("cleanup after the failed initialize: %s", e)

    async def _start_level(self, level: list[_Entry]) -> None:
        results = await asyncio.gather(*(self._start_one(e) for e in level), return_exceptions=True)
        failures = []
        for entry, result in zip(level, results, strict=True):
            if isinstance(result, BaseException):
                failures.append((entry, result))
            else:
                self._started.append(entry.name)
        if failures:
            await self._abort(failures)

    async def _start_one(self, entry: _Entry) -> None:
        try:
            async with asyncio.timeout(entry.timeout):
                await _start(entry.obj)
        except TimeoutError as e:
            raise TimeoutError(f"initialize timed out after {entry.timeout}s") from e
        logger.info("initialized %s %r", entry.kind, entry.name)

    async def _abort(self, failures: list[tuple[_Entry, BaseException]]) -> None:
        for entry, exc in failures:
            logger.error(
                "initializing %s %r failed: %s: %s", entry.kind, entry.name, type(exc).__name__, exc
            )
        cancelled = [exc for _, exc in failures if isinstance(exc, asyncio.CancelledError)]
        await self._cleanup_quietly()
        if cancelled:
            raise cancelled[0]
        detail = "; ".join(
            f"{entry.kind} {entry.name!r}: {type(exc).__name__}: {exc}" for entry, exc in failures
        )
        raise ServiceContainerError(f"initialize failed: {detail}") from failures[0][1]

    # -- stopping ---------------------------------------------------------------------

    async def cleanup(self) -> None:
        """Stops what ``initialize()`` started, dependents first (see the module doc)."""
        async with self._lock:
            await self._cleanup_started()

    async def _cleanup_started(self) -> None:
        started = set(self._started)
        levels = self._cleanup_levels()
        errors: list[str] = []
        first: BaseException | None = None
        for level in reversed(levels):
            for entry in sorted(level, key=lambda e: e.order, reverse=True):
                if entry.name not in started:
                    continue
                exc = await self._stop_one(entry)
                if exc is not None:
                    errors.append(f"{entry.kind} {entry.name!r}: {type(exc).__name__}: {exc}")
                    first = first or exc
        self._started.clear()
        self._initialized = False
        if errors:
            raise ServiceContainerError("cleanup failed: " + "; ".join(errors)) from first

    def _cleanup_levels(self) -> list[list[_Entry]]:
        try:
            return self._plan()
        except ServiceContainerError:
            # registrations changed into something unplannable after the start:
            # fall back to reverse start order, one object per level
            return [[self._entries[n]] for n in self._started if n in self._entries]

    async def _stop_one(self, entry: _Entry) -> BaseException | None:
        try:
            async with asyncio.timeout(entry.timeout):
                await _stop(entry.obj)
        except TimeoutError:
            logger.error(
                "cleanup of %s %r timed out after %ss", entry.kind, entry.name, entry.timeout
            )
            return TimeoutError(f"cleanup timed out after {entry.timeout}s")
        except Exception as e:  # collected: every other step still runs
            logger.error("cleanup of %s %r failed", entry.kind, entry.name, exc_info=e)
            return e
        logger.info("cleaned up %s %r", entry.kind, entry.name)
        return None

    # -- context manager and health ---------------------------------------------------

    async def __aenter__(self) -> ServiceContainer:
        await self.initialize()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cleanup()

    def health_checker(self, timeout: float = 5.0) -> Any:
        """An ``AsyncHealthChecker`` with one check per registered object."""
        from .monitor import AsyncHealthChecker

        checker = AsyncHealthChecker(timeout=timeout)
        for name, entry in self._entries.items():
            checker.add_check(name, self._check_for(name, entry.obj))
        return checker

    def _check_for(self, name: str, obj: Any) -> Any:
        fn = getattr(obj, "health_check", None)
        if callable(fn):
            return fn
        started = self._started

        async def started_check() -> bool:
            return name in started

        return started_check

    async def health(self, timeout: float = 5.0) -> dict[str, Any]:
        """``{"status": "healthy"|"unhealthy", "checks": {name: bool}, "details": ...}``."""
        return await self.health_checker(timeout).check_health()

    def __repr__(self) -> str:
        return (
            f"<ServiceContainer services={len(self.services)} analyzers={len(self.analyzers)} "
            f"started={len(self._started)}>"
        )
