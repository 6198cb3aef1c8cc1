"""ServiceContainer: ordered start and stop, failures, timeouts and bad input."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from ferrotick import ServiceContainer, ServiceContainerError


class Svc:
    def __init__(self, name, log, *, fail_init=False, fail_cleanup=False, hang=False, sync=False):
        self.name, self.log = name, log
        self.fail_init, self.fail_cleanup, self.hang = fail_init, fail_cleanup, hang
        if sync:
            self.initialize = self._sync_init  # type: ignore[method-assign]
            self.cleanup = self._sync_cleanup  # type: ignore[method-assign]

    async def initialize(self):
        self.log.append(f"+{self.name}")
        if self.hang:
            await asyncio.sleep(60)
        await asyncio.sleep(0.01)
        if self.fail_init:
            raise RuntimeError(f"{self.name} cannot start")

    async def cleanup(self):
        self.log.append(f"-{self.name}")
        if self.fail_cleanup:
            raise RuntimeError(f"{self.name} cannot stop")

    def _sync_init(self):
        self.log.append(f"+{self.name}")

    def _sync_cleanup(self):
        self.log.append(f"-{self.name}")


@pytest.mark.asyncio
async def test_order_levels_and_reverse_cleanup():
    log: list[str] = []
    c = ServiceContainer()
    c.register_analyzer("an", Svc("an", log), depends_on=["cache"])
    c.register_service("db", Svc("db", log))
    c.register_service("cache", Svc("cache", log), depends_on="db")
    c.register_service("http", Svc("http", log, sync=True))
    c.register_service("config", {"debug": True})
    assert c.plan() == [["db", "http", "config"], ["cache"], ["an"]]
    await c.initialize()
    assert log[:2] == ["+db", "+http"] and log[2:] == ["+cache", "+an"]
    assert c.get("config") == {"debug": True} and "db" in c and c.initialized
    log.clear()
    await c.cleanup()
    # dependents first; within a level, reverse registration order
    assert log == ["-an", "-cache", "-http", "-db"]


@pytest.mark.asyncio
async def test_level_starts_concurrently():
    c = ServiceContainer()

    class Slow:
        async def initialize(self):
            await asyncio.sleep(0.2)

    for i in range(5):
        c.register_service(f"s{i}", Slow())
    t0 = asyncio.get_running_loop().time()
    await c.initialize()
    assert asyncio.get_running_loop().time() - t0 < 0.8
    await c.cleanup()


@pytest.mark.asyncio
async def test_failed_initialize_cleans_up_started():
    log: list[str] = []
    c = ServiceContainer()
    c.register_service("db", Svc("db", log))
    c.register_service("cache", Svc("cache", log, fail_init=True), depends_on=["db"])
    c.register_service("queue", Svc("queue", log), depends_on=["db"])
    c.register_analyzer("an", Svc("an", log))
    with pytest.raises(ServiceContainerError, match="service 'cache': RuntimeError: cache cannot"):
        await c.initialize()
    # queue (same level as cache) started and is stopped again, db last; an never ran
    assert log[0] == "+db" and set(log[1:3]) == {"+cache", "+queue"}
    assert log[3:] == ["-queue", "-db"]


@pytest.mark.asyncio
async def test_hanging_initialize_times_out_then_cleans_up():
    log: list[str] = []
    c = ServiceContainer(timeout=5)
    c.register_service("db", Svc("db", log))
    c.register_service("stuck", Svc("stuck", log, hang=True), depends_on=["db"], timeout=0.2)
    with pytest.raises(ServiceContainerError, match=r"service 'stuck': TimeoutError: .*0\.2s"):
        await c.initialize()
    assert log == ["+db", "+stuck", "-db"]


@pytest.mark.asyncio
async def test_cleanup_runs_every_step_and_collects_errors():
    log: list[str] = []
    c = ServiceContainer()
    c.register_service("a", Svc("a", log, fail_cleanup=True))
    c.register_service("b", Svc("b", log, fail_cleanup=True))
    c.register_service("c", Svc("c", log))
    await c.initialize()
    log.clear()
    with pytest.raises(ServiceContainerError) as ei:
        await c.cleanup()
    assert log == ["-c", "-b", "-a"]
    assert "'b'" in str(ei.value) and "'a'" in str(ei.value)


@pytest.mark.asyncio
async def test_async_context_managers():
    log: list[str] = []

    @contextlib.asynccontextmanager
    async def resource():
        log.append("enter")
        yield
        log.append("exit")

    async with ServiceContainer() as c:
        pass
    c = ServiceContainer()
    c.register_service("r", resource())
    async with c:
        assert log == ["enter"]
    assert log == ["enter", "exit"]


@pytest.mark.asyncio
async def test_bad_dependencies_and_names():
    c = ServiceContainer()
    c.register_service("a", object(), depends_on=["b"])
    c.register_service("b", object(), depends_on=["a"])
    with pytest.raises(ServiceContainerError, match=r"cyclic depends_on among \['a', 'b'\]"):
        await c.initialize()
    c = ServiceContainer()
    c.register_service("a", object(), depends_on=["nope"])
    with pytest.raises(ServiceContainerError, match=r"service 'a' depends on unknown \['nope'\]"):
        await c.initialize()
    with pytest.raises(ServiceContainerError, match="'a': the name is already registered"):
        c.register_analyzer("a", object())
    c = ServiceContainer()
    c.register_analyzer("an", object())
    c.register_service("s", object(), depends_on=["an"])
    with pytest.raises(ServiceContainerError, match="depends on analyzer"):
        await c.initialize()
    with pytest.raises(ServiceContainerError, match="no service or analyzer named 'x'"):
        c.get("x")
    with pytest.raises(ValueError, match="timeout"):
        ServiceContainer(timeout=0)


@pytest.mark.asyncio
async def test_health():
    c = ServiceContainer()

    class Healthy:
        async def health_check(self):
            return True

    class Sick:
        def health_check(self):
            raise RuntimeError("down")

    c.register_service("ok", Healthy())
    c.register_service("sick", Sick())
    c.register_service("plain", object())
    await c.initialize()
    h = await c.health()
    assert h["status"] == "unhealthy"
    assert h["checks"] == {"ok": True, "sick": False, "plain": True}
    await c.cleanup()
