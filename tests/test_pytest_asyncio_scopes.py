"""ferrotick under pytest-asyncio: function-scoped and session-scoped loops."""

from __future__ import annotations

import asyncio

import pytest

import ferrotick

_loops: dict[str, set[int]] = {"function": set(), "session": set()}


@pytest.mark.asyncio
@pytest.mark.parametrize("i", range(3))
async def test_function_scoped_loop(i):
    _loops["function"].add(id(asyncio.get_running_loop()))
    assert await ferrotick.echo(i, 0.001) == i
    assert await asyncio.gather(*(ferrotick.echo(k, 0.001) for k in range(100))) == list(range(100))


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("i", range(3))
async def test_session_scoped_loop(i):
    _loops["session"].add(id(asyncio.get_running_loop()))
    await ferrotick.sleep(0.001)
    assert await ferrotick.echo(i, 0.001) == i


def test_loops_were_distinct_and_shared_as_scoped():
    assert len(_loops["function"]) >= 1
    assert len(_loops["session"]) == 1
