"""The order record and the single-YES price-time-priority book of one market (internal to the engine)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from kalshi._fixed import PRICE_SCALE
from kalshi.sim.engine.types import (
    BookSide,
    OrderStatus,
    OrderView,
    SelfTradePrevention,
    TimeInForce,
)

__all__ = ["OrderBook", "OrderRecord"]


@dataclass(slots=True, eq=False)
class OrderRecord:
    """Mutable engine-side state of one order; :meth:`view` freezes it for callers and events."""

    order_id: str
    account: str
    ticker: str
    market_id: str
    side: BookSide
    price: int
    initial: int
    remaining: int
    time_in_force: TimeInForce
    stp: SelfTradePrevention
    post_only: bool
    reduce_only: bool
    cancel_on_pause: bool
    client_order_id: str | None
    group_id: str | None
    expiration_ms: int | None
    created_ms: int
    updated_ms: int
    filled: int = 0
    status: OrderStatus = "resting"
    reason: str | None = None
    taker_cost: int = 0
    maker_cost: int = 0
    taker_fees: int = 0
    maker_fees: int = 0
    # Exact fee numerators (basis points * units * ticks * (10000 - ticks)); fees charged so far are
    # these rounded up to the cent, so an order's total fee never depends on how it was split into fills.
    taker_fee_acc: int = 0
    maker_fee_acc: int = 0
    reserved: int = 0
    in_book: bool = False

    @property
    def unit_cost(self) -> int:
        """Micros this order pays per unit at its own limit: YES price for bids, NO price for asks."""
        return self.price if self.side == "bid" else PRICE_SCALE - self.price

    def view(self) -> OrderView:
        """A frozen snapshot."""
        return OrderView(
            order_id=self.order_id,
            account=self.account,
            ticker=self.ticker,
            market_id=self.market_id,
            client_order_id=self.client_order_id,
            book_side=self.side,
            yes_price_ticks=self.price,
            status=self.status,
            initial_units=self.initial,
            fill_units=self.filled,
            remaining_units=self.remaining if self.status == "resting" else 0,
            taker_fill_cost_micros=self.taker_cost,
            maker_fill_cost_micros=self.maker_cost,
            taker_fees_micros=self.taker_fees,
            maker_fees_micros=self.maker_fees,
            time_in_force=self.time_in_force,
            self_trade_prevention=self.stp,
            post_only=self.post_only,
            reduce_only=self.reduce_only,
            cancel_order_on_pause=self.cancel_on_pause,
            order_group_id=self.group_id,
            expiration_ms=self.expiration_ms,
            created_ts_ms=self.created_ms,
            last_updated_ts_ms=self.updated_ms,
            last_update_reason=self.reason,
        )


class _Side:
    """One side of the book: price -> FIFO of resting orders (dicts keep insertion order, O(1) removal)."""

    __slots__ = ("levels", "prices", "sizes")

    def __init__(self) -> None:
        self.levels: dict[int, dict[str, OrderRecord]] = {}
        self.sizes: dict[int, int] = {}
        self.prices: list[int] = []  # ascending

    def add(self, order: OrderRecord) -> None:
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = {}
            self.sizes[order.price] = 0
            bisect.insort(self.prices, order.price)
        level[order.order_id] = order
        self.sizes[order.price] += order.remaining

    def remove(self, order: OrderRecord) -> None:
        level = self.levels[order.price]
        del level[order.order_id]
        self.sizes[order.price] -= order.remaining
        if not level:
            self._drop(order.price)

    def shrink(self, order: OrderRecord, units: int) -> None:
        self.sizes[order.price] -= units

    def _drop(self, price: int) -> None:
        del self.levels[price]
        del self.sizes[price]
        del self.prices[bisect.bisect_left(self.prices, price)]


class OrderBook:
    """Resting orders of one market on a single YES book.

    Bids buy YES at their price; asks sell YES (buy NO at ``10000 - price``). The caller keeps each
    order's ``remaining`` in step: :meth:`shrink` before lowering it, :meth:`remove` while it still holds
    the resting size.
    """

    __slots__ = ("_asks", "_bids")

    def __init__(self) -> None:
        self._bids = _Side()
        self._asks = _Side()

    def _side(self, side: BookSide) -> _Side:
        return self._bids if side == "bid" else self._asks

    def add(self, order: OrderRecord) -> None:
        """Append a resting order at the back of its price level."""
        self._side(order.side).add(order)
        order.in_book = True

    def remove(self, order: OrderRecord) -> None:
        """Take a resting order (with its whole remaining size) off the book."""
        self._side(order.side).remove(order)
        order.in_book = False

    def shrink(self, order: OrderRecord, units: int) -> None:
        """Account for ``units`` leaving a resting order that keeps its queue place."""
        self._side(order.side).shrink(order, units)

    def best_bid(self) -> int | None:
        """Highest bid price, or None."""
        prices = self._bids.prices
        return prices[-1] if prices else None

    def best_ask(self) -> int | None:
        """Lowest ask price, or None."""
        prices = self._asks.prices
        return prices[0] if prices else None

    def best_opposite(self, side: BookSide, limit: int) -> int | None:
        """The best resting price an incoming ``side`` order at ``limit`` would trade with, or None."""
        if side == "bid":
            ask = self.best_ask()
            return ask if ask is not None and ask <= limit else None
        bid = self.best_bid()
        return bid if bid is not None and bid >= limit else None

    def first_at(self, resting_side: BookSide, price: int) -> OrderRecord:
        """The order with time priority at a price level that exists."""
        return next(iter(self._side(resting_side).levels[price].values()))

    def crossing_orders(self, side: BookSide, limit: int) -> list[OrderRecord]:
        """Resting orders an incoming ``side`` order at ``limit`` could meet, in priority order."""
        opposite = self._asks if side == "bid" else self._bids
        prices = (
            [p for p in opposite.prices if p <= limit]
            if side == "bid"
            else [p for p in reversed(opposite.prices) if p >= limit]
        )
        return [order for p in prices for order in opposite.levels[p].values()]

    def queue_ahead(self, order: OrderRecord) -> int:
        """Units resting ahead of ``order`` at its price level."""
        ahead = 0
        for other in self._side(order.side).levels[order.price].values():
            if other is order:
                return ahead
            ahead += other.remaining
        raise KeyError(order.order_id)

    def size_at(self, side: BookSide, price: int) -> int:
        """Resting units at a level (0 if none)."""
        return self._side(side).sizes.get(price, 0)

    def orders(self) -> list[OrderRecord]:
        """Every resting order, bids then asks, in priority order."""
        bids = [o for p in reversed(self._bids.prices) for o in self._bids.levels[p].values()]
        return bids + [o for p in self._asks.prices for o in self._asks.levels[p].values()]

    def levels(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """``(yes_levels, no_levels)`` as ``(price_ticks, units)`` best first; NO prices are ``10000 - ask``."""
        yes = [(p, self._bids.sizes[p]) for p in reversed(self._bids.prices)]
        no = [(PRICE_SCALE - p, self._asks.sizes[p]) for p in self._asks.prices]
        return yes, no
