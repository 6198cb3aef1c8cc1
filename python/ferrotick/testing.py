"""pytest plugin: fixtures that run ferrotick's simulated exchange for a test.

Registered through the ``pytest11`` entry point, so installing ferrotick makes the fixtures
available; importing this module starts nothing.

- ``sim_exchange``: a fresh :class:`~ferrotick.sim.SimulatedExchange` per test. Settings and
  fault knobs come from the ``sim_exchange`` marker::

      @pytest.mark.sim_exchange(symbols=["ETHUSDT"], error_rate=0.5, time_scale=60)
      async def test_retries(sim_exchange):
          ...

- ``sim_exchange_factory``: call it with settings to start more exchanges in one test;
  they stop at the end of the test.
- ``sim_exchange_session``: one exchange for the whole session. It is a plain (sync)
  fixture: the server runs on ferrotick's tokio runtime, not on a test's event loop, so it
  works with pytest-asyncio's per-test loops and without pytest-asyncio. Tests that change
  its faults should restore them (``set_faults(**ferrotick.sim.FAULTS)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

__all__ = ["sim_exchange", "sim_exchange_factory", "sim_exchange_session"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sim_exchange(**settings): settings and fault knobs of the sim_exchange fixture",
    )


@pytest.fixture
def sim_exchange_factory() -> Iterator[Callable[..., Any]]:
    from .sim import SimulatedExchange

    started: list[SimulatedExchange] = []

    def make(**settings: Any) -> SimulatedExchange:
        ex = SimulatedExchange(**settings).start()
        started.append(ex)
        return ex

    yield make
    for ex in started:
        ex.close()


@pytest.fixture
def sim_exchange(request: pytest.FixtureRequest, sim_exchange_factory: Callable[..., Any]) -> Any:
    settings: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("sim_exchange"))):
        settings.update(marker.kwargs)
    return sim_exchange_factory(**settings)


@pytest.fixture(scope="session")
def sim_exchange_session() -> Iterator[Any]:
    from .sim import SimulatedExchange

    ex = SimulatedExchange().start()
    yield ex
    ex.close()
