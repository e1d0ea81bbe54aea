"""The live/historical split as the REST handlers see it: the cutoff now, and the events archived at it.

Live endpoints leave what lies at or before the cutoff to ``/historical/*``, as the spec says each must be
accessed there: settled markets and their candlesticks (``market_settled_ts``), fills and trades
(``trades_created_ts``), canceled or executed orders (``orders_updated_ts``; resting orders stay live) and the
positions of whole settled events (``market_positions_last_updated_ts``). The rules are the engine's
(:mod:`kalshi.sim.engine.historical`), so each record is served by exactly one side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kalshi.sim.engine.historical import archived_events

if TYPE_CHECKING:
    from kalshi.sim.rest.common import RestCall

__all__ = ["archived_event_tickers", "cutoff_ms"]


def cutoff_ms(call: RestCall) -> int:
    """The historical cutoff at this request's time (epoch ms): data at or before it is historical."""
    return call.sim.engine.history.cutoff_ms(call.sim.clock_ms())


def archived_event_tickers(call: RestCall, cutoff: int) -> frozenset[str]:
    """The events whose positions have moved to ``/historical/positions`` (every market settled by ``cutoff``)."""
    return archived_events(call.sim.engine.markets(), cutoff)
