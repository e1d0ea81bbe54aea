"""kalshi.sim.engine: the simulated exchange's rules without I/O (matching, ledger, lifecycle, groups, RFQs).

The package imports no asyncio, sockets or HTTP library and nothing of the simulator's servers
(``kalshi.sim.ws``, ``kalshi.sim.rest``) nor of the client (``kalshi.ws``, ``kalshi.rest``); a test
enforces it. Backtests and the simulator's servers drive the same :class:`Engine`.

Modules, one job each:

* :mod:`~kalshi.sim.engine.types`: units, value types (specs and read-only views), :class:`EngineError`;
* :mod:`~kalshi.sim.engine.events`: the typed events the engine emits;
* :mod:`~kalshi.sim.engine.book`: one market's price-time priority book;
* :mod:`~kalshi.sim.engine.ledger`: accounts, cash, collateral, fees, netted positions, settlements;
* :mod:`~kalshi.sim.engine.core`: the shared state and primitives (clock, ids, expiries, event outbox, the
  call bracket, resting, cancelling, filling) that every area desk is given;
* the area desks, each composed over that core: :mod:`~kalshi.sim.engine.orders` (order entry and matching),
  :mod:`~kalshi.sim.engine.groups` (order groups), :mod:`~kalshi.sim.engine.lifecycle` (accounts, events,
  market lifecycle), :mod:`~kalshi.sim.engine.rfq` (RFQs and quotes), :mod:`~kalshi.sim.engine.block_trades`
  (block trades agreed off the book), :mod:`~kalshi.sim.engine.off_book` (executing both off-book kinds);
* composed books: :mod:`~kalshi.sim.engine.candles` (quote tape and candlesticks),
  :mod:`~kalshi.sim.engine.historical` (the moving cutoff), :mod:`~kalshi.sim.engine.subaccounts` (with its
  desk), :mod:`~kalshi.sim.engine.api_keys`, :mod:`~kalshi.sim.engine.multivariate` (combo collections, with
  their desk),
  :mod:`~kalshi.sim.engine.fcm`, :mod:`~kalshi.sim.engine.settings`, :mod:`~kalshi.sim.engine.reference`
  (milestones, targets, incentives, live data derived from the listed events);
* :mod:`~kalshi.sim.engine.facade`: :class:`Engine`, the public entry point: it builds the desks, forwards
  each operation to its desk, and answers the read-only queries.
"""

from kalshi.sim.engine.events import (
    BookDelta,
    Event,
    EventLifecycleEvent,
    FillEvent,
    MarketLifecycleEvent,
    OrderGroupEvent,
    OrderUpdate,
    PositionUpdate,
    QuoteEvent,
    RfqEvent,
    TickerEvent,
    TradeEvent,
)
from kalshi.sim.engine.facade import Engine
from kalshi.sim.engine.orders import KEEP, AmendResult, CancelResult, OrderResult
from kalshi.sim.engine.types import (
    MICROS_PER_DOLLAR,
    PAYOUT_PER_UNIT,
    BalanceView,
    BookSide,
    BookSnapshot,
    EngineError,
    EventSpec,
    MarketSpec,
    MarketStatus,
    MarketView,
    MveLeg,
    OrderGroupView,
    OrderStatus,
    OrderView,
    PositionView,
    PriceRange,
    QuoteView,
    RfqView,
    SettlementView,
    TickerState,
    format_micros,
    is_valid_price,
    price_ranges_for,
    valid_prices,
)

__all__ = [
    "KEEP",
    "MICROS_PER_DOLLAR",
    "PAYOUT_PER_UNIT",
    "AmendResult",
    "BalanceView",
    "BookDelta",
    "BookSide",
    "BookSnapshot",
    "CancelResult",
    "Engine",
    "EngineError",
    "Event",
    "EventLifecycleEvent",
    "EventSpec",
    "FillEvent",
    "MarketLifecycleEvent",
    "MarketSpec",
    "MarketStatus",
    "MarketView",
    "MveLeg",
    "OrderGroupEvent",
    "OrderGroupView",
    "OrderResult",
    "OrderStatus",
    "OrderUpdate",
    "OrderView",
    "PositionUpdate",
    "PositionView",
    "PriceRange",
    "QuoteEvent",
    "QuoteView",
    "RfqEvent",
    "RfqView",
    "SettlementView",
    "TickerEvent",
    "TickerState",
    "TradeEvent",
    "format_micros",
    "is_valid_price",
    "price_ranges_for",
    "valid_prices",
]
