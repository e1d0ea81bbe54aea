"""The historical cutoff: what the exchange has moved from its live tables to the historical ones (sans-I/O).

The exchange serves settled markets, and the trades, orders and fills older than a cutoff, from
``/historical/*`` (and the live endpoints stop serving them). The cutoff trails the clock by ``lag_ms`` (so it
moves forward on its own) and can be pushed forward at once with :meth:`HistoricalCutoff.archive_through`
(tests, replays). It never moves back. The predicates below say which records lie past it, so the live and the
historical endpoints split the data the same way: each record is served by exactly one of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from kalshi.sim.engine.types import EngineError, MarketView, OrderView

__all__ = ["DEFAULT_LAG_MS", "HistoricalCutoff", "archived_events", "market_archived", "order_archived"]

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


def market_archived(view: MarketView, cutoff_ms: int) -> bool:
    """True when the market settled at or before the cutoff: it and its candlesticks are historical."""
    return view.status == "settled" and view.settled_ts_ms is not None and view.settled_ts_ms <= cutoff_ms


def order_archived(order: OrderView, cutoff_ms: int) -> bool:
    """True when the order was canceled or fully executed at or before the cutoff (resting orders stay live)."""
    return order.status != "resting" and order.last_updated_ts_ms <= cutoff_ms


def archived_events(markets: Iterable[MarketView], cutoff_ms: int) -> frozenset[str]:
    """The events every market of which is archived: their positions are historical, as a whole event."""
    archived: dict[str, bool] = {}
    for view in markets:
        event = view.spec.event_ticker
        archived[event] = archived.get(event, True) and market_archived(view, cutoff_ms)
    return frozenset(event for event, whole in archived.items() if whole)
