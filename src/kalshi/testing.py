"""pytest plugin: fixtures that run a local Kalshi simulator for your bot's tests.

Installed with kalshi-kit and loaded automatically (entry point ``pytest11``). Fixtures:

* ``kalshi_sim``: a running :class:`~kalshi.sim.Simulator` (4 markets, seed 0, no background activity: drive
  it with ``sim.step(n)``), stopped after the test.
* ``kalshi_sim_factory``: ``factory(**options)`` returns a :class:`~kalshi.sim.Simulator` with your options
  (unstarted: use ``async with factory(rate=50) as sim:``); any left running are stopped after the test.

Both are async fixtures and need pytest-asyncio; without it they fail with a message saying so, and the rest
of pytest is unaffected. Nothing heavy is imported until a fixture is used.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    from kalshi.sim import Simulator

__all__ = ["DEFAULT_SIM_OPTIONS", "kalshi_sim", "kalshi_sim_factory"]

DEFAULT_SIM_OPTIONS: Final[dict[str, Any]] = {"seed": 0, "markets": 4, "rate": 0.0}

_NEEDS_ASYNCIO: Final = "the kalshi_sim fixtures are async: install pytest-asyncio (pip install pytest-asyncio)"


if importlib.util.find_spec("pytest_asyncio") is not None:
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def kalshi_sim() -> AsyncIterator[Simulator]:
        """A running simulator with the default options, stopped after the test."""
        from kalshi.sim import Simulator

        async with Simulator(**DEFAULT_SIM_OPTIONS) as sim:
            yield sim

    @pytest_asyncio.fixture
    async def kalshi_sim_factory() -> AsyncIterator[Callable[..., Simulator]]:
        """Make simulators with your options; those still running at the end of the test are stopped."""
        from kalshi.sim import Simulator

        made: list[Simulator] = []

        def factory(**options: Any) -> Simulator:
            sim = Simulator(**{**DEFAULT_SIM_OPTIONS, **options})
            made.append(sim)
            return sim

        yield factory
        for sim in made:
            await sim.stop()

else:  # pragma: no cover - exercised only where pytest-asyncio is missing

    @pytest.fixture
    def kalshi_sim() -> Iterator[None]:
        """Unavailable without pytest-asyncio."""
        pytest.fail(_NEEDS_ASYNCIO)
        yield

    @pytest.fixture
    def kalshi_sim_factory() -> Iterator[None]:
        """Unavailable without pytest-asyncio."""
        pytest.fail(_NEEDS_ASYNCIO)
        yield
