"""The strategy's context: order methods and state, identical in backtest, paper and live.

:class:`Context` keeps what the strategy knows from the reports it received (orders, positions, cash) and
hands its order requests to an :class:`OrderSink`: the simulated exchange of a backtest or paper run, or the
REST order worker of a live run. Nothing else differs between the modes, so a strategy cannot tell them apart
except by the clock and the fills it gets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final, Protocol

from kalshi.strategy.book import Book
from kalshi.strategy.types import (
    PAYOUT_PER_UNIT,
    PRICE_SCALE,
    Fill,
    OrderState,
    OrderUpdate,
    Side,
    StrategyError,
    TimeInForce,
)

__all__ = ["Context", "Ledger", "OrderSink"]

_TIME_IN_FORCE = frozenset({"good_till_canceled", "immediate_or_cancel", "fill_or_kill"})

MAX_REQUESTS_PER_EVENT: Final = 10_000
"""Default of :attr:`Context.max_requests_per_event`."""


class OrderSink(Protocol):
    """Where a context sends order requests. Each method returns at once; results come back as reports."""

    def place(self, order: OrderState) -> None:
        """Send a new order."""

    def amend(self, order: OrderState, price: int, count: int) -> None:
        """Change a resting order's price and total count (filled + new remaining)."""

    def cancel(self, order: OrderState) -> None:
        """Cancel a resting order."""


class Ledger:
    """Positions and cash from fills, netted as the exchange does (exact micros).

    Positions are one signed YES count per market (a filled ask subtracts). A fill against the sign of the
    position redeems the YES/NO pairs it completes at $1 each, so cash moves by
    ``-(price paid + fee) + closed_units * 10000``, as in the exchange's ledger.
    """

    __slots__ = ("cash", "fees", "positions", "realized_settlements", "start_cash", "volume")

    def __init__(self, cash: int) -> None:
        self.start_cash = cash
        self.cash = cash
        self.fees = 0
        self.volume = 0
        self.realized_settlements = 0
        self.positions: dict[str, int] = {}

    def apply_fill(self, ticker: str, side: str, price: int, count: int, fee: int) -> None:
        """Book a fill of ``count`` units at YES ``price``."""
        if side == "bid":
            paid, signed = count * price, count
        else:
            paid, signed = count * (PRICE_SCALE - price), -count
        held = self.positions.get(ticker, 0)
        redeemed = 0 if held == 0 or (held > 0) == (signed > 0) else min(count, abs(held))
        self.positions[ticker] = held + signed
        self.cash += redeemed * PAYOUT_PER_UNIT - paid - fee
        self.fees += fee
        self.volume += count

    def settle(self, ticker: str, value: int) -> int:
        """Pay out the position at ``value`` ticks per YES unit and flatten it; returns the payout in micros."""
        held = self.positions.get(ticker, 0)
        payout = held * value if held > 0 else -held * (PRICE_SCALE - value)
        self.cash += payout
        self.realized_settlements += payout
        self.positions[ticker] = 0
        return payout

    def equity(self, marks: Mapping[str, int]) -> int:
        """Cash plus every position valued at ``marks`` (YES price ticks; unmarked positions count as 0)."""
        value = self.cash
        for ticker, held in self.positions.items():
            mark = marks.get(ticker)
            if held and mark is not None:
                value += held * mark if held > 0 else -held * (PRICE_SCALE - mark)
        return value


class Context:
    """What a strategy reads and does. Made by a runner; strategies never construct one.

    Args:
        sink: where order requests go.
        clock_ns: the runner's clock (replay time in a backtest, epoch ns live).
        books: the strategy-visible books by ticker (updated by the runner).
        cash: starting cash in micros.
        id_prefix: prefix of generated client order ids (unique per run live).
        event_clock: what counts as one event for :attr:`max_requests_per_event` (default ``clock_ns``: one
            instant of the runner's clock; live runners count the feed items they handled).
    """

    def __init__(
        self,
        sink: OrderSink,
        clock_ns: Callable[[], int],
        books: Mapping[str, Book],
        *,
        cash: int,
        id_prefix: str = "s",
        event_clock: Callable[[], int] | None = None,
    ) -> None:
        self._sink = sink
        self._clock = clock_ns
        self._books = books
        self.ledger = Ledger(cash)
        self._orders: dict[str, OrderState] = {}
        self._open: dict[str, OrderState] = {}
        self._fill_units: dict[str, int] = {}  # units filled per order, summed from fill reports
        self._prefix = id_prefix
        self._next_id = 1
        self.blocked: str | None = None  # set by a kill switch: new orders are refused with this reason
        self.max_requests_per_event = MAX_REQUESTS_PER_EVENT
        """Most order requests (places, amends, cancels) the strategy may send at one event (one instant of a
        backtest's clock, one feed item live) before the run stops with :class:`StrategyError`. A strategy that
        answers its own order reports with new orders at once, for example one that re-sends an order the
        exchange refused, would otherwise loop forever at one instant of a backtest, and would hold a live
        event loop (no pings answered, no data read). Raise it if a single event really needs more."""
        self._event_clock = event_clock or clock_ns
        self._event = -1
        self._event_requests = 0

    # ------------------------------------------------------------------ reading

    @property
    def now_ns(self) -> int:
        """The runner's clock in epoch nanoseconds (replay time in a backtest)."""
        return self._clock()

    @property
    def cash(self) -> int:
        """Cash in micros, from the fills and settlements reported so far (collateral not deducted)."""
        return self.ledger.cash

    @property
    def positions(self) -> Mapping[str, int]:
        """Signed YES positions in units by ticker (negative: NO held)."""
        return self.ledger.positions

    def position(self, ticker: str) -> int:
        """Signed YES position in units (0 if never traded)."""
        return self.ledger.positions.get(ticker, 0)

    def book(self, ticker: str) -> Book | None:
        """The current book of ``ticker`` as the strategy sees it, or None before its first snapshot."""
        return self._books.get(ticker)

    @property
    def markets(self) -> list[str]:
        """Tickers with a book."""
        return list(self._books)

    def order(self, client_order_id: str) -> OrderState | None:
        """One of the strategy's orders by client order id (open or done), or None."""
        return self._orders.get(client_order_id)

    def orders(self) -> list[OrderState]:
        """Every order of the run, open or done, oldest first."""
        return list(self._orders.values())

    def open_orders(self, ticker: str | None = None) -> list[OrderState]:
        """Pending and resting orders (of ``ticker`` if given), oldest first."""
        return [o for o in self._open.values() if ticker is None or o.ticker == ticker]

    # ------------------------------------------------------------------ orders

    def place_order(
        self,
        ticker: str,
        side: Side,
        price: int,
        count: int,
        *,
        time_in_force: TimeInForce = "good_till_canceled",
        post_only: bool = False,
        client_order_id: str | None = None,
    ) -> str:
        """Send a limit order; returns its client order id at once (the result arrives as reports).

        Args:
            ticker: the market.
            side: ``"bid"`` buys YES at up to ``price``; ``"ask"`` sells YES (buys NO) at ``price`` or more.
            price: YES price in ticks, 1..9999.
            count: units (1/100 contract), positive.
            time_in_force: ``good_till_canceled`` rests the rest; ``immediate_or_cancel`` cancels it;
                ``fill_or_kill`` fills completely or not at all.
            post_only: reject instead of taking liquidity.
            client_order_id: your id (generated when None); must be unique among your orders.

        Raises:
            StrategyError: bad side, price, count or time in force, a reused client order id, or orders
                blocked by the kill switch.
        """
        if self.blocked is not None:
            raise StrategyError(f"orders are blocked: {self.blocked}")
        if side != "bid" and side != "ask":
            raise StrategyError(f"side must be 'bid' or 'ask', not {side!r}")
        if type(price) is not int or not 0 < price < PRICE_SCALE:
            raise StrategyError(f"price must be integer ticks in 1..9999 ($0.0001 each), not {price!r}")
        if type(count) is not int or count <= 0:
            raise StrategyError(f"count must be positive integer units (1/100 contract), not {count!r}")
        if time_in_force not in _TIME_IN_FORCE:
            raise StrategyError(f"time_in_force must be one of {sorted(_TIME_IN_FORCE)}, not {time_in_force!r}")
        if client_order_id is None:
            client_order_id = f"{self._prefix}{self._next_id}"
            self._next_id += 1
        elif client_order_id in self._orders:
            raise StrategyError(f"client_order_id {client_order_id!r} was already used; give a new one")
        # Positional, in OrderState's field order (status, order_id, filled, remaining, created_ns last).
        order = OrderState(
            client_order_id,
            ticker,
            side,
            price,
            count,
            time_in_force,
            post_only,
            "pending",
            None,
            0,
            count,
            self._clock(),
        )
        self._count_request()
        self._orders[client_order_id] = self._open[client_order_id] = order
        try:
            self._sink.place(order)
        except StrategyError:  # refused before it left (a kill switch): it never existed
            del self._orders[client_order_id], self._open[client_order_id]
            raise
        return client_order_id

    def amend_order(self, client_order_id: str, *, price: int, count: int) -> None:
        """Change a resting order's price and total count (filled so far + new remaining).

        Same price with a smaller remainder keeps the queue place; anything else goes to the back.

        Raises:
            StrategyError: unknown or closed order, or a bad price/count.
        """
        order = self._open_order(client_order_id)
        if type(price) is not int or not 0 < price < PRICE_SCALE:
            raise StrategyError(f"price must be integer ticks in 1..9999, not {price!r}")
        if type(count) is not int or count <= order.filled:
            raise StrategyError(f"count must exceed the {order.filled} units already filled, not {count!r}")
        self._count_request()
        self._sink.amend(order, price, count)

    def cancel_order(self, client_order_id: str) -> None:
        """Cancel an open order (a no-op for one already done).

        Raises:
            StrategyError: no order with that client order id.
        """
        order = self._orders.get(client_order_id)
        if order is None:
            raise StrategyError(f"no order with client_order_id {client_order_id!r}")
        if order.is_open:
            self._count_request()
            self._sink.cancel(order)

    def cancel_all(self, ticker: str | None = None) -> int:
        """Cancel every open order (of ``ticker`` if given); returns how many cancels were sent."""
        orders = self.open_orders(ticker)
        for order in orders:
            self._count_request()
            self._sink.cancel(order)
        return len(orders)

    # ------------------------------------------------------------------ reports (runners call these)

    def apply_fill(self, fill: Fill) -> None:
        """Book a fill report into the ledger and the order."""
        self.ledger.apply_fill(fill.ticker, fill.side, fill.price, fill.count, fill.fee)
        order = self._orders.get(fill.client_order_id)
        if order is not None:
            # Fills and order reports come on different channels, in either order: an order report may already
            # count this fill, so the order's filled size is the larger of the two sums, never both.
            total = self._fill_units.get(fill.client_order_id, 0) + fill.count
            self._fill_units[fill.client_order_id] = total
            if total > order.filled:
                order.remaining = max(order.remaining - (total - order.filled), 0)
                order.filled = total
            if order.order_id is None:
                order.order_id = fill.order_id

    def apply_update(self, update: OrderUpdate) -> None:
        """Apply an order report (status, remaining, price after an amend)."""
        order = self._orders.get(update.client_order_id)
        if order is None:
            return
        order.status = update.status
        order.remaining = update.remaining
        order.filled = max(order.filled, update.filled)
        order.price = update.price
        if update.order_id is not None:
            order.order_id = update.order_id
        if not order.is_open:
            self._open.pop(order.client_order_id, None)

    def apply_settlement(self, ticker: str, value: int) -> int:
        """Pay out ``ticker`` at ``value`` ticks per YES unit; its open orders are gone. Returns the payout."""
        for order in self.open_orders(ticker):
            order.status = "canceled"
            order.remaining = 0
            self._open.pop(order.client_order_id, None)
        return self.ledger.settle(ticker, value)

    def _count_request(self) -> None:
        event = self._event_clock()
        if event != self._event:
            self._event = event
            self._event_requests = 0
        self._event_requests += 1
        if self._event_requests > self.max_requests_per_event:
            raise StrategyError(
                f"more than {self.max_requests_per_event} order requests at one event (t={event}): the strategy "
                "seems to answer its own order reports with new orders in a loop, e.g. sending an order again at "
                "once after the exchange refused it (the order update says why). Send it again on a later change "
                "of the market instead, or raise Context.max_requests_per_event if one event needs that many"
            )

    def _open_order(self, client_order_id: str) -> OrderState:
        order = self._open.get(client_order_id)
        if order is None:
            state = self._orders.get(client_order_id)
            what = "no order" if state is None else f"order is {state.status}"
            raise StrategyError(f"cannot amend {client_order_id!r}: {what}")
        return order
