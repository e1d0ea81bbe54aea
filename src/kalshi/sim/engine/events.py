"""Events the engine appends to its outbox: every public and private feed derives from them.

Each event is a frozen dataclass with ``ts_ms`` (the engine clock when it happened). The server drains them
with :meth:`kalshi.sim.engine.Engine.drain_events` and turns them into wire messages:

===========================  =====================================================================
event                        feed
===========================  =====================================================================
``BookDelta``                ``orderbook_delta`` (replaying deltas from empty rebuilds the book)
``TradeEvent``               ``trade``
``TickerEvent``              ``ticker`` (at most one per market per engine call, only on change)
``FillEvent``                ``fill`` for ``account``
``OrderUpdate``              ``user_orders`` for ``order.account``
``PositionUpdate``           ``market_positions`` for ``position.account``
``OrderGroupEvent``          ``order_group_updates`` for ``account``
``MarketLifecycleEvent``     ``market_lifecycle_v2`` (``multivariate_market_lifecycle`` if multivariate)
``EventLifecycleEvent``      ``event_lifecycle`` on both lifecycle channels
``RfqEvent``/``QuoteEvent``  ``communications``
===========================  =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kalshi.sim.engine.types import (
    BookSide,
    EventSpec,
    MarketResult,
    MarketSpec,
    OrderView,
    OutcomeSide,
    PositionView,
    PriceRange,
    QuoteView,
    RfqView,
    TickerState,
)

__all__ = [
    "BookDelta",
    "Event",
    "EventLifecycleEvent",
    "FillEvent",
    "GroupEventType",
    "LifecycleType",
    "MarketLifecycleEvent",
    "OrderGroupEvent",
    "OrderUpdate",
    "PositionUpdate",
    "QuoteEvent",
    "RfqEvent",
    "TickerEvent",
    "TradeEvent",
]


@dataclass(frozen=True, slots=True)
class BookDelta:
    """A change of resting size at one price level.

    ``side`` is ``"yes"`` for bids (price = YES price) and ``"no"`` for asks (price = NO price,
    ``10000 - yes``). ``clock`` is the market's book clock after this change (it increments by one per
    delta). ``account``/``client_order_id`` name the order whose resting size changed, so the server can
    show ``client_order_id`` to its owner only.
    """

    ticker: str
    market_id: str
    side: OutcomeSide
    price_ticks: int
    delta_units: int
    clock: int
    order_id: str
    account: str
    client_order_id: str | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """A public trade. ``is_block_trade`` is true for RFQ executions (off the book)."""

    trade_id: str
    ticker: str
    market_id: str
    yes_price_ticks: int
    count_units: int
    taker_outcome_side: OutcomeSide
    taker_book_side: BookSide
    is_block_trade: bool
    ts_ms: int

    @property
    def no_price_ticks(self) -> int:
        """The trade price in NO terms."""
        return 10_000 - self.yes_price_ticks


@dataclass(frozen=True, slots=True)
class FillEvent:
    """One account's side of a trade (``fill`` feed / REST ``Fill``). ``fee_micros`` is this fill's fee."""

    fill_id: str
    trade_id: str
    order_id: str
    client_order_id: str | None
    account: str
    ticker: str
    market_id: str
    is_taker: bool
    book_side: BookSide
    yes_price_ticks: int
    count_units: int
    fee_micros: int
    post_position_units: int
    ts_ms: int
    exchange_index: int = 0

    @property
    def outcome_side(self) -> OutcomeSide:
        """``"yes"`` for bid fills, ``"no"`` for ask fills."""
        return "yes" if self.book_side == "bid" else "no"

    @property
    def no_price_ticks(self) -> int:
        """The fill price in NO terms."""
        return 10_000 - self.yes_price_ticks


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order changed (``user_orders``); ``order.last_update_reason`` says why."""

    order: OrderView
    ts_ms: int


@dataclass(frozen=True, slots=True)
class PositionUpdate:
    """An account's market position changed (``market_positions``)."""

    position: PositionView
    ts_ms: int


GroupEventType = Literal["created", "triggered", "reset", "deleted", "limit_updated"]


@dataclass(frozen=True, slots=True)
class OrderGroupEvent:
    """``order_group_updates``: ``contracts_limit_units`` is set for ``created`` and ``limit_updated``."""

    account: str
    order_group_id: str
    event_type: GroupEventType
    contracts_limit_units: int | None
    ts_ms: int


LifecycleType = Literal["created", "activated", "deactivated", "close_date_updated", "determined", "settled"]


@dataclass(frozen=True, slots=True)
class MarketLifecycleEvent:
    """``market_lifecycle_v2`` / ``multivariate_market_lifecycle`` (route on ``is_multivariate``).

    Only the fields of ``event_type`` are set: ``created`` carries ``spec``, the times, the structure and
    ranges; ``close_date_updated`` carries ``close_time_ms``; ``determined`` carries ``result``,
    ``settlement_value_ticks``, ``determination_ts_ms``; ``settled`` carries ``settled_ts_ms``;
    ``activated``/``deactivated`` carry ``is_deactivated``.
    """

    ticker: str
    market_id: str
    event_type: LifecycleType
    is_multivariate: bool
    ts_ms: int
    spec: MarketSpec | None = None
    open_time_ms: int | None = None
    close_time_ms: int | None = None
    determination_ts_ms: int | None = None
    settled_ts_ms: int | None = None
    result: MarketResult | None = None
    settlement_value_ticks: int | None = None
    is_deactivated: bool | None = None
    price_level_structure: str | None = None
    price_ranges: tuple[PriceRange, ...] | None = None


@dataclass(frozen=True, slots=True)
class EventLifecycleEvent:
    """An event was created (``event_lifecycle``)."""

    event: EventSpec
    ts_ms: int


@dataclass(frozen=True, slots=True)
class RfqEvent:
    """``rfq_created`` (to everyone) or ``rfq_deleted``."""

    kind: Literal["rfq_created", "rfq_deleted"]
    rfq: RfqView
    ts_ms: int


@dataclass(frozen=True, slots=True)
class QuoteEvent:
    """``quote_created``/``quote_accepted`` (to both parties) or ``quote_executed``.

    ``quote_deleted`` (a quote withdrawn, replaced, or cancelled with its RFQ) is not a wire message; it
    lets a server track quote state and can be ignored on the feed.

    ``quote_executed`` is emitted once per party: ``recipient`` is that party's account and ``order_id`` /
    ``client_order_id`` are its own order from the execution. For the other kinds ``recipient`` is None.
    """

    kind: Literal["quote_created", "quote_accepted", "quote_executed", "quote_deleted"]
    quote: QuoteView
    ts_ms: int
    recipient: str | None = None
    order_id: str | None = None
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class TickerEvent:
    """The market's ``ticker`` state after an engine call that changed it."""

    state: TickerState
    ts_ms: int


Event = (
    BookDelta
    | TradeEvent
    | TickerEvent
    | FillEvent
    | OrderUpdate
    | PositionUpdate
    | OrderGroupEvent
    | MarketLifecycleEvent
    | EventLifecycleEvent
    | RfqEvent
    | QuoteEvent
)
