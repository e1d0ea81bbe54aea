"""The historical cutoff: what the exchange has moved from its live tables to the historical ones (sans-I/O).

The exchange serves settled markets, and the trades, orders and fills older than a cutoff, from
``/historical/*``. The cutoff trails the clock by ``lag_ms`` (so it moves forward on its own) and can be pushed
forward at once with :meth:`HistoricalCutoff.archive_through` (tests, replays). It never moves back.
"""

from __future__ import annotations

from typing import Final

from kalshi.sim.engine.types import EngineError

__all__ = ["DEFAULT_LAG_MS", "HistoricalCutoff"]

DEFAULT_LAG_MS: Final = 3_600_000  # one hour


class HistoricalCutoff:
    """Where live data ends and historical data begins.

    Args:
        lag_ms: how far the cutoff trails the clock.
    """

    __slots__ = ("_floor_ms", "lag_ms")

    def __init__(self, lag_ms: int = DEFAULT_LAG_MS) -> None:
        if lag_ms < 0:
            raise ValueError("lag_ms must not be negative")
        self.lag_ms = lag_ms
        self._floor_ms = 0

    def cutoff_ms(self, now_ms: int) -> int:
        """The cutoff at ``now_ms``: data at or before it is historical."""
        return max(now_ms - self.lag_ms, self._floor_ms)

    def archive_through(self, ts_ms: int, *, now_ms: int) -> int:
        """Move the cutoff forward to ``ts_ms`` (never back, never past ``now_ms``); returns the new cutoff.

        Raises:
            EngineError: ``invalid_parameters`` when ``ts_ms`` is in the future.
        """
        if ts_ms > now_ms:
            raise EngineError("invalid_parameters", "the historical cutoff cannot move past the present")
        self._floor_ms = max(self._floor_ms, ts_ms)
        return self.cutoff_ms(now_ms)

    def is_historical(self, ts_ms: int | None, now_ms: int) -> bool:
        """True when ``ts_ms`` (a settlement, trade or update time) is at or before the cutoff."""
        return ts_ms is not None and ts_ms <= self.cutoff_ms(now_ms)
