"""ferrotick under pytest-asyncio: function-scoped and session-scoped loops."""

from __future__ import annotations

import asyncio

import pytest

import ferrotick

# strong references, so that ids of collected loops cannot be reused
_loops: dict[str, list[asyncio.AbstractEventLoop]] = {"function": [], "session": []}
_session_futures: list = []


@pytest.mark.asyncio
@pytest.mark.parametrize("i", range(3))
async def test_function_scoped_loop(i):
    _loops["function"].append(asyncio.get_running_loop())
    assert await ferrotick.echo(i, 0.001) == i
    assert await asyncio.gather(*(ferrotick.echo(k, 0.001) for k in range(100))) == list(range(100))
    await ferrotick.sleep(0)


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("i", range(3))
async def test_session_scoped_loop(i):
    loop = asyncio.get_running_loop()
    _loops["session"].append(loop)
    await ferrotick.sleep(0.001)
    assert await ferrotick.echo(i, 0.001) == i
    # a future made by an earlier test of the session is still awaitable here
    if _session_futures:
        assert await _session_futures.pop() == ("earlier", i - 1)
    _session_futures.append(ferrotick.echo(("earlier", i), 0.001))
    assert ferrotick.echo(None).done()


@pytest.mark.asyncio(loop_scope="session")
async def test_session_loop_cancellation():
    while _session_futures:
        await _session_futures.pop()
    await ferrotick.sleep(0.02)  # tokio tasks of earlier tests have ended
    base = ferrotick.runtime_stats()["alive_tasks"]
    tasks = [asyncio.ensure_future(ferrotick.sleep(30)) for _ in range(50)]
    await asyncio.sleep(0)
    assert ferrotick.runtime_stats()["alive_tasks"] >= base + 50
    for t in tasks:
        t.cancel()
    for t in tasks:
        with pytest.raises(asyncio.CancelledError):
            await t
    for _ in range(100):
        if ferrotick.runtime_stats()["alive_tasks"] <= base:
            break
        await ferrotick.sleep(0.01)
    assert ferrotick.runtime_stats()["alive_tasks"] <= base


def test_loops_were_distinct_and_shared_as_scoped():
    fn, sess = _loops["function"], _loops["session"]
    assert len(fn) == 3 and len({id(x) for x in fn}) == 3
    assert len(sess) == 3 and all(x is sess[0] for x in sess)
    assert not any(x is sess[0] for x in fn)
