"""What a strategy sees and asks for: market events, its own order reports, and order parameters.

Events are immutable (order updates, tickers and lifecycle events are named tuples: cheap to build, a backtest
makes millions). Units are the exchange's exact
integers, as in the simulator's engine: prices are YES price *ticks* of
$0.0001 (``5600`` is $0.56), counts are *units* of 1/100 contract (``100`` is one contract), money is
*micros* (one tick times one unit, $0.000001). ``side="bid"`` buys YES at up to ``price``; ``side="ask"``
sells YES (buys NO at ``10000 - price``) at ``price`` or more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

from kalshi.errors import KalshiError

__all__ = [
    "PAYOUT_PER_UNIT",
    "PRICE_SCALE",
    "Fill",
    "MarketLifecycle",
    "OrderState",
    "OrderStatus",
    "OrderUpdate",
    "Side",
    "StrategyError",
    "Ticker",
    "TimeInForce",
    "Trade",
]

PRICE_SCALE: Final = 10_000
PAYOUT_PER_UNIT: Final = PRICE_SCALE  # a winning unit pays $0.01 = 10000 micros

Side = Literal["bid", "ask"]
TimeInForce = Literal["good_till_canceled", "immediate_or_cancel", "fill_or_kill"]
OrderStatus = Literal["pending", "resting", "canceled", "executed", "rejected"]


class StrategyError(KalshiError):
    """A strategy asked for something impossible (bad price or count, unknown order), or a runner failed."""


@dataclass(frozen=True, slots=True)
class Trade:
    """A public trade: ``count`` units at YES ``price``; ``taker_side`` is the outcome the taker bought."""

    ticker: str
    price: int
    count: int
    taker_side: Literal["yes", "no"]
    ts_ns: int


class Ticker(NamedTuple):
    """A ``ticker`` update: best bid/ask (None when that side is empty) and the last trade price."""

    ticker: str
    bid: int | None
    ask: int | None
    last: int | None
    ts_ns: int


class MarketLifecycle(NamedTuple):
    """A market lifecycle change (``market_lifecycle_v2``).

    ``event_type`` is the wire's (``created``, ``activated``, ``deactivated``, ``close_date_updated``,
    ``determined``, ``settled``); ``settlement_value`` is the YES payout in ticks once determined.
    """

    ticker: str
    event_type: str
    result: str | None
    settlement_value: int | None
    ts_ns: int


@dataclass(frozen=True, slots=True)
class Fill:
    """One of the strategy's fills. ``fee`` is this fill's fee in micros (the order's running fee rounds up
    to the cent, so a fill may cost 0 and the next one the whole cent)."""

    client_order_id: str
    order_id: str
    ticker: str
    side: Side
    price: int
    count: int
    fee: int
    is_taker: bool
    ts_ns: int
    trade_id: str = ""  # the exchange's id of the fill ("" when it gave none, and in backtests)


class OrderUpdate(NamedTuple):
    """A change of one of the strategy's orders: accepted (``resting``), done, or ``rejected`` with a reason.

    An amend or cancel the exchange refused or that failed on the way is reported too: the order as it stands
    (its status unchanged, usually ``resting``) with ``reason`` saying what failed, e.g. ``"cancel failed: ..."``.
    Send it again on a later event if it is still wanted.
    """

    client_order_id: str
    order_id: str | None
    ticker: str
    side: Side
    price: int
    status: OrderStatus
    remaining: int
    filled: int
    reason: str | None
    ts_ns: int


@dataclass(slots=True)
class OrderState:
    """The strategy's view of one of its orders (kept by its context from the reports it received)."""

    client_order_id: str
    ticker: str
    side: Side
    price: int
    count: int
    time_in_force: TimeInForce
    post_only: bool
    status: OrderStatus = "pending"
    order_id: str | None = None
    filled: int = 0
    remaining: int = 0
    created_ns: int = 0

    @property
    def is_open(self) -> bool:
        """Pending or resting: it may still fill."""
        return self.status == "pending" or self.status == "resting"
