"""Shared test helpers: one polling helper, one fast-retry config, one simulator fixture.

* :func:`eventually`: wait (bounded) for a condition the code under test reaches through background tasks, for
  state that has no event to wait on. Prefer awaiting a real event or a lifecycle event where there is one.
* :data:`FAST_RETRIES` / :func:`fast_config`: a simulator's config with quick retries, so no test waits for real
  backoff.
* the ``sim`` fixture: a running simulator (open access, no background activity unless asked); options come from
  ``@pytest.mark.sim(markets=4, ...)`` on the test or module (``pytestmark``). A module that defines its own
  ``sim`` fixture overrides this one.

Test modules import the helpers with ``from conftest import eventually, fast_config``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import pytest

import hypothesis_profile  # noqa: F401  (derandomized unless HYPOTHESIS_PROFILE says otherwise)
from kalshi.config import KalshiConfig
from kalshi.sim import Simulator

__all__ = ["FAST_RETRIES", "SIM_DEFAULTS", "eventually", "fast_config"]

FAST_RETRIES: Final[dict[str, Any]] = {
    "retry_base_delay": 0.01,
    "retry_max_delay": 0.05,
    "ws_max_retries": 3,
    "timeout": 5.0,
    "connect_timeout": 2.0,
}

SIM_DEFAULTS: Final[dict[str, Any]] = {"seed": 8, "markets": 6, "lifecycle": False, "open_access": True}

_POLL_SECONDS: Final = 0.002


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sim(**options): options of the shared `sim` fixture's simulator")


async def eventually(condition: Callable[[], bool], within: float = 5.0, *, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail the test after ``within`` seconds.

    Raises:
        AssertionError: the condition did not hold in time (``what`` says which).
    """
    try:
        async with asyncio.timeout(within):
            while not condition():  # noqa: ASYNC110 - plain state with no event to wait on
                await asyncio.sleep(_POLL_SECONDS)
    except TimeoutError:
        raise AssertionError(f"not reached within {within} s: {what or condition!r}") from None


def fast_config(sim: Simulator, **options: Any) -> KalshiConfig:
    """The simulator's config with quick retries (tests never wait for real backoff)."""
    return sim.config.with_options(**{**FAST_RETRIES, **options})


@pytest.fixture
async def sim(request: pytest.FixtureRequest, kalshi_sim_factory: Callable[..., Simulator]) -> AsyncIterator[Simulator]:
    """A running simulator: :data:`SIM_DEFAULTS` updated by the nearest ``@pytest.mark.sim(...)``."""
    options = dict(SIM_DEFAULTS)
    for marker in reversed(list(request.node.iter_markers("sim"))):
        options.update(marker.kwargs)
    async with kalshi_sim_factory(**options) as running:
        yield running


class ManualClock:
    """An epoch-milliseconds clock the test moves by hand: pass it as the simulator's or engine's ``clock_ms``."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now
