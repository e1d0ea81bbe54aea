"""Shared state and primitives of the engine: ids, time, the outbox, resting, cancelling, filling.

The public :class:`kalshi.sim.engine.Engine` composes one :class:`EngineCore` with the area desks
(orders, order groups, markets and accounts, RFQs, block trades), each given this core in its
constructor. Every public mutating call is bracketed by :meth:`EngineCore.begin` (reads the clock once,
runs due expiries, market openings and closings) and :meth:`EngineCore.end` (emits at most one
``TickerEvent`` per market whose ticker state changed).
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from kalshi._fixed import PRICE_SCALE
from kalshi.sim.engine.book import OrderBook, OrderRecord
from kalshi.sim.engine.events import (
    BookDelta,
    Event,
    FillEvent,
    LifecycleType,
    MarketLifecycleEvent,
    OrderGroupEvent,
    OrderUpdate,
    PositionUpdate,
    TickerEvent,
    TradeEvent,
)
from kalshi.sim.engine.ledger import (
    AccountRecord,
    fee_numerator,
    fee_reserve,
    fee_total,
    worst_fee_spread,
)
from kalshi.sim.engine.types import (
    MICROS_PER_DOLLAR,
    ORDER_GROUP_WINDOW_MS,
    BookSide,
    EngineError,
    EventSpec,
    MarketResult,
    MarketSpec,
    MarketStatus,
    MarketView,
    OrderStatus,
    PriceRange,
    TickerState,
)

__all__ = ["EngineCore", "GroupRecord", "MarketState", "required_reserve"]


def required_reserve(
    spec: MarketSpec,
    side: BookSide,
    price: int,
    remaining: int,
    *,
    taker_fee_acc: int,
    maker_fee_acc: int,
    taker_phase: bool,
) -> int:
    """Collateral plus the most fees ``remaining`` units of an order can still cost, in micros.

    While matching as taker both the taker fee (at the worst reachable price) and the maker fee of a later
    rest are reserved, so an account's available cash never falls as fills land (see ``engine_ledger``).
    """
    if remaining <= 0:
        return 0
    unit_cost = price if side == "bid" else PRICE_SCALE - price
    need = remaining * unit_cost
    need += fee_reserve(maker_fee_acc, fee_numerator(spec.maker_fee_bp, remaining, price))
    if taker_phase:
        need += fee_reserve(taker_fee_acc, spec.taker_fee_bp * remaining * worst_fee_spread(side, price))
    return need


_UUID_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET: Final = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


class _Ids:
    """Deterministic UUID4-shaped ids: the same seed and call sequence give the same ids."""

    __slots__ = ("_rng",)

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def new(self) -> str:
        # Same text as str(uuid.UUID(int=bits, version=4)), without building a UUID object.
        bits = self._rng.getrandbits(128) & _UUID_CLEAR | _UUID_SET
        h = f"{bits:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(slots=True, eq=False)
class MarketState:
    """Mutable state of one market."""

    spec: MarketSpec
    market_id: str
    ranges: tuple[PriceRange, ...]
    prices: frozenset[int]  # every tradeable YES price of the grid
    status: MarketStatus
    created_ms: int
    updated_ms: int
    close_ms: int | None
    paused: bool = False
    result: MarketResult | None = None
    value: int | None = None
    determination_ms: int | None = None
    settled_ms: int | None = None
    book: OrderBook = field(default_factory=OrderBook)
    clock: int = 0
    volume: int = 0
    dollar_volume_micros: int = 0
    last_price: int = 0
    last_size: int = 0
    open_interest: int = 0
    trades: deque[TradeEvent] = field(default_factory=deque)
    holders: dict[str, None] = field(default_factory=dict)  # accounts with a position record, in order
    last_ticker_key: tuple[int, ...] | None = None

    def view(self) -> MarketView:
        """A frozen snapshot."""
        return MarketView(
            spec=self.spec,
            market_id=self.market_id,
            status=self.status,
            is_deactivated=self.paused,
            close_time_ms=self.close_ms,
            result=self.result,
            settlement_value_ticks=self.value,
            determination_ts_ms=self.determination_ms,
            settled_ts_ms=self.settled_ms,
            created_ts_ms=self.created_ms,
            updated_ts_ms=self.updated_ms,
            price_ranges=self.ranges,
        )

    def is_trading(self) -> bool:
        """Open for orders: active and not paused."""
        return self.status == "active" and not self.paused


@dataclass(slots=True, eq=False)
class GroupRecord:
    """Mutable state of an order group."""

    group_id: str
    account: str
    limit: int
    triggered: bool = False
    window: deque[tuple[int, int]] = field(default_factory=deque)
    order_ids: dict[str, None] = field(default_factory=dict)  # insertion-ordered set

    def matched(self, now: int) -> int:
        """Units matched in the rolling window ending at ``now``."""
        while self.window and self.window[0][0] <= now - ORDER_GROUP_WINDOW_MS:
            self.window.popleft()
        return sum(units for _, units in self.window)


class EngineCore:
    """State and primitives shared by the engine's area desks; the desks and the facade use it, users do not.

    Args:
        clock_ms: returns the current time in epoch milliseconds; read once per call.
        seed: seeds the one id generator every area draws from.
        history_limit: if set, keep at most this many closed orders (see :class:`~kalshi.sim.engine.Engine`).
        on_tickers: called at the end of each call with the ``TickerEvent`` list that call emitted.

    Attributes:
        now: the clock reading of the current (or latest) call; ``clock_ms`` reads the clock.
        ids: the one id generator every area draws from, in call order.
        markets, event_specs, accounts, orders, groups: the shared state, keyed by ticker or id.
        outbox: events not yet drained; touched: markets whose ticker may have changed this call.
        request_fills: the fills of the current call; history_limit: see :class:`~kalshi.sim.engine.Engine`.
    """

    def __init__(
        self,
        clock_ms: Callable[[], int],
        *,
        seed: int = 0,
        history_limit: int | None = None,
        on_tickers: Callable[[list[Event]], None] | None = None,
    ) -> None:
        if history_limit is not None and history_limit < 1:
            raise ValueError("history_limit must be positive or None")
        self.history_limit = history_limit
        self._closed_orders: deque[str] = deque()
        self.request_fills: list[FillEvent] = []
        self.clock_ms = clock_ms
        self.ids = _Ids(seed)
        self.now = clock_ms()
        self.markets: dict[str, MarketState] = {}
        self.event_specs: dict[str, EventSpec] = {}
        self.accounts: dict[str, AccountRecord] = {}
        self.orders: dict[str, OrderRecord] = {}
        self.groups: dict[str, GroupRecord] = {}
        self.outbox: list[Event] = []
        self.touched: dict[str, None] = {}
        self._expiries: list[tuple[int, int, str]] = []
        self._schedule: list[tuple[int, int, str, str]] = []
        self._seq = 0
        self._on_tickers = on_tickers

    # ------------------------------------------------------------------------------------ bracketing

    def begin(self) -> int:
        """Open a call: read the clock once, forget last call's fills, run due expiries and market timers."""
        self.now = now = self.clock_ms()
        self.request_fills.clear()
        self.run_timers(now)
        return now

    def end(self) -> None:
        """Close a call: emit one ``TickerEvent`` per touched market whose ticker state changed."""
        mark = len(self.outbox)
        for ticker in self.touched:
            m = self.markets[ticker]
            state = self.ticker_state(m)
            key = (
                state.last_price_ticks,
                state.yes_bid_ticks,
                state.yes_ask_ticks,
                state.yes_bid_size_units,
                state.yes_ask_size_units,
                state.volume_units,
                state.open_interest_units,
                state.last_trade_size_units,
            )
            if key != m.last_ticker_key:
                m.last_ticker_key = key
                self.outbox.append(TickerEvent(state=state, ts_ms=self.now))
        self.touched.clear()
        if self._on_tickers is not None:
            self._on_tickers(self.outbox[mark:])  # the ticker events this call emitted

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # ------------------------------------------------------------------------------------ lookups

    def market(self, ticker: str) -> MarketState:
        """The market ``ticker``; raises ``market_not_found``."""
        m = self.markets.get(ticker)
        if m is None:
            raise EngineError("market_not_found", f"no market {ticker!r}", status=404)
        return m

    def account(self, account: str) -> AccountRecord:
        """The account ``account``; raises ``account_not_found``."""
        acct = self.accounts.get(account)
        if acct is None:
            raise EngineError("account_not_found", f"no account {account!r}; open it first", status=404)
        return acct

    def own_order(self, account: str, order_id: str) -> OrderRecord:
        """An order of ``account``; raises ``order_not_found``."""
        order = self.orders.get(order_id)
        if order is None or order.account != account:
            raise EngineError("order_not_found", f"no order {order_id!r} for this account", status=404)
        return order

    def own_resting(self, account: str, order_id: str) -> OrderRecord:
        """A resting order of ``account``; raises ``order_not_found``, ``order_not_resting``."""
        order = self.own_order(account, order_id)
        if order.status != "resting":
            raise EngineError("order_not_resting", f"order {order_id!r} is already {order.status}", status=409)
        return order

    # ------------------------------------------------------------------------------------ book edits

    def delta(self, m: MarketState, order: OrderRecord, units: int) -> None:
        """Emit the book change of ``units`` (signed) at the order's level and advance the market's clock."""
        m.clock += 1
        bid = order.side == "bid"
        self.outbox.append(
            BookDelta(
                ticker=m.spec.ticker,
                market_id=m.market_id,
                side="yes" if bid else "no",
                price_ticks=order.price if bid else PRICE_SCALE - order.price,
                delta_units=units,
                clock=m.clock,
                order_id=order.order_id,
                account=order.account,
                client_order_id=order.client_order_id,
                ts_ms=self.now,
            )
        )
        self.touched[m.spec.ticker] = None

    def rest(self, m: MarketState, order: OrderRecord) -> None:
        """Put an order on the book, reserve its collateral and schedule its expiry."""
        m.book.add(order)
        self.delta(m, order, order.remaining)
        self.set_reserve(order, self.required(m, order, taker_phase=False))
        if order.expiration_ms is not None:
            self.schedule_expiry(order)

    def schedule_expiry(self, order: OrderRecord) -> None:
        """Cancel the order at its ``expiration_ms`` (a stale entry is skipped when it is due)."""
        assert order.expiration_ms is not None
        heapq.heappush(self._expiries, (order.expiration_ms, self._next_seq(), order.order_id))

    def unrest(self, m: MarketState, order: OrderRecord) -> None:
        """Take an order off the book (emitting the delta); its reserve is left to the caller."""
        self.delta(m, order, -order.remaining)
        m.book.remove(order)

    def required(self, m: MarketState, order: OrderRecord, *, taker_phase: bool) -> int:
        """The reserve a resting order needs now (0 once it is closed)."""
        if order.status != "resting":
            return 0
        return required_reserve(
            m.spec,
            order.side,
            order.price,
            order.remaining,
            taker_fee_acc=order.taker_fee_acc,
            maker_fee_acc=order.maker_fee_acc,
            taker_phase=taker_phase,
        )

    def set_reserve(self, order: OrderRecord, amount: int) -> None:
        """Set the collateral an order holds, moving its account's reserved total by the difference."""
        acct = self.accounts[order.account]
        acct.reserved += amount - order.reserved
        order.reserved = amount

    def close_order(self, order: OrderRecord, status: OrderStatus, reason: str | None) -> None:
        """Close an order (executed or canceled), release its reserve and emit its update."""
        order.status = status
        order.remaining = 0
        if reason is not None:
            order.reason = reason
        order.updated_ms = self.now
        self.set_reserve(order, 0)
        self.outbox.append(OrderUpdate(order=order.view(), ts_ms=self.now))
        if self.history_limit is not None:
            self._closed_orders.append(order.order_id)
            while len(self._closed_orders) > self.history_limit:
                self._forget_order(self._closed_orders.popleft())

    def _forget_order(self, order_id: str) -> None:
        order = self.orders.pop(order_id, None)
        if order is None:
            return
        self.accounts[order.account].order_ids.pop(order_id, None)
        group = self.groups.get(order.group_id) if order.group_id is not None else None
        if group is not None:
            group.order_ids.pop(order_id, None)

    def cancel_resting(self, order: OrderRecord, reason: str | None) -> int:
        """Cancel a resting order; returns the units taken off the book."""
        reduced = order.remaining
        if order.in_book:
            self.unrest(self.markets[order.ticker], order)
        self.close_order(order, "canceled", reason)
        return reduced

    # ------------------------------------------------------------------------------------ trading

    def fill(
        self, m: MarketState, taker: OrderRecord, maker: OrderRecord, units: int, price: int, *, block: bool
    ) -> None:
        """Trade ``units`` at YES ``price`` between an incoming ``taker`` and a ``maker``."""
        now = self.now
        spec = m.spec
        ticker = spec.ticker
        if maker.in_book:
            m.book.shrink(maker, units)
            self.delta(m, maker, -units)
        trade_id = self.ids.new()
        taker_outcome: Literal["yes", "no"] = "yes" if taker.side == "bid" else "no"
        trade = TradeEvent(
            trade_id=trade_id,
            ticker=ticker,
            market_id=m.market_id,
            yes_price_ticks=price,
            count_units=units,
            taker_outcome_side=taker_outcome,
            taker_book_side=taker.side,
            is_block_trade=block,
            ts_ms=now,
        )
        m.trades.append(trade)
        self.outbox.append(trade)
        spread_num = price * (PRICE_SCALE - price) * units
        for order, is_taker in ((maker, False), (taker, True)):
            unit_cost = price if order.side == "bid" else PRICE_SCALE - price
            if is_taker:
                before = fee_total(order.taker_fee_acc)
                order.taker_fee_acc += spec.taker_fee_bp * spread_num
                fee = fee_total(order.taker_fee_acc) - before
                order.taker_fees += fee
                order.taker_cost += units * unit_cost
            else:
                before = fee_total(order.maker_fee_acc)
                order.maker_fee_acc += spec.maker_fee_bp * spread_num
                fee = fee_total(order.maker_fee_acc) - before
                order.maker_fees += fee
                order.maker_cost += units * unit_cost
            order.filled += units
            order.remaining -= units
            order.updated_ms = now
            order.reason = "Trade"
            acct = self.accounts[order.account]
            pos = acct.position(ticker)
            m.holders[order.account] = None
            oi_before = max(pos.units, 0)
            acct.cash += pos.apply_fill(order.side, units, unit_cost, fee)
            m.open_interest += max(pos.units, 0) - oi_before
            pos.updated_ms = acct.updated_ms = now
            fill = FillEvent(
                fill_id=self.ids.new(),
                trade_id=trade_id,
                order_id=order.order_id,
                client_order_id=order.client_order_id,
                account=order.account,
                ticker=ticker,
                market_id=m.market_id,
                is_taker=is_taker,
                book_side=order.side,
                yes_price_ticks=price,
                count_units=units,
                fee_micros=fee,
                post_position_units=pos.units,
                ts_ms=now,
                exchange_index=spec.exchange_index,
            )
            acct.fills.append(fill)
            self.request_fills.append(fill)
            self.outbox.append(fill)
            self.outbox.append(PositionUpdate(position=pos.view(order.account, ticker), ts_ms=now))
        m.volume += units
        m.dollar_volume_micros += units * price
        m.last_price = price
        m.last_size = units
        self.touched[ticker] = None
        if maker.remaining == 0:
            if maker.in_book:
                m.book.remove(maker)
            self.close_order(maker, "executed", "Trade")
        else:
            self.set_reserve(maker, self.required(m, maker, taker_phase=False))
            if maker.in_book:
                self.outbox.append(OrderUpdate(order=maker.view(), ts_ms=now))
        self.set_reserve(taker, self.required(m, taker, taker_phase=True))
        for order in (maker, taker):
            if order.group_id is not None:
                group = self.groups.get(order.group_id)
                if group is not None:
                    group.window.append((now, units))
                    if not group.triggered and group.matched(now) >= group.limit:
                        self.trigger_group(group)

    def group_allowance(self, group_id: str | None) -> int | None:
        """Units the order group may still match now; None without a (live) group."""
        if group_id is None:
            return None
        group = self.groups.get(group_id)
        if group is None:
            return None
        return 0 if group.triggered else max(group.limit - group.matched(self.now), 0)

    def trigger_group(self, group: GroupRecord) -> None:
        """Mark a group triggered (emitting the event) and cancel its resting orders."""
        group.triggered = True
        self.outbox.append(
            OrderGroupEvent(
                account=group.account,
                order_group_id=group.group_id,
                event_type="triggered",
                contracts_limit_units=None,
                ts_ms=self.now,
            )
        )
        self.cancel_group_orders(group)

    def cancel_group_orders(self, group: GroupRecord) -> None:
        """Cancel every resting order of a group."""
        for order_id in list(group.order_ids):
            order = self.orders.get(order_id)  # None: forgotten by history_limit while this loop ran
            if order is not None and order.status == "resting" and order.in_book:
                self.cancel_resting(order, None)

    # ------------------------------------------------------------------------------------ lifecycle

    def lifecycle(
        self,
        m: MarketState,
        event_type: LifecycleType,
        *,
        spec: MarketSpec | None = None,
        open_time_ms: int | None = None,
        close_time_ms: int | None = None,
        determination_ts_ms: int | None = None,
        settled_ts_ms: int | None = None,
        result: MarketResult | None = None,
        settlement_value_ticks: int | None = None,
        is_deactivated: bool | None = None,
        price_level_structure: str | None = None,
        price_ranges: tuple[PriceRange, ...] | None = None,
    ) -> None:
        """Emit a market lifecycle event of ``event_type`` with the given fields."""
        m.updated_ms = self.now
        self.outbox.append(
            MarketLifecycleEvent(
                ticker=m.spec.ticker,
                market_id=m.market_id,
                event_type=event_type,
                is_multivariate=m.spec.is_multivariate,
                ts_ms=self.now,
                spec=spec,
                open_time_ms=open_time_ms,
                close_time_ms=close_time_ms,
                determination_ts_ms=determination_ts_ms,
                settled_ts_ms=settled_ts_ms,
                result=result,
                settlement_value_ticks=settlement_value_ticks,
                is_deactivated=is_deactivated,
                price_level_structure=price_level_structure,
                price_ranges=price_ranges,
            )
        )

    def activate(self, m: MarketState) -> None:
        """Open a market for trading (emits ``activated``)."""
        m.status = "active"
        self.lifecycle(m, "activated", is_deactivated=False)

    def close(self, m: MarketState) -> None:
        """Close a market to trading and cancel its resting orders."""
        m.status = "closed"
        m.updated_ms = self.now
        for order in m.book.orders():
            self.cancel_resting(order, "CloseCancel")

    def schedule_at(self, when: int, kind: str, ticker: str) -> None:
        """Run ``kind`` (``open`` or ``close``) for ``ticker`` once the clock reaches ``when``."""
        heapq.heappush(self._schedule, (when, self._next_seq(), kind, ticker))

    def run_timers(self, now: int) -> None:
        """Run the order expiries, then the market openings and closings, due at ``now``."""
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            when, _, order_id = heapq.heappop(expiries)
            order = self.orders.get(order_id)
            if order is not None and order.status == "resting" and order.in_book and order.expiration_ms == when:
                self.cancel_resting(order, "ExpiryCancel")
        schedule = self._schedule
        while schedule and schedule[0][0] <= now:
            when, _, kind, ticker = heapq.heappop(schedule)
            m = self.markets[ticker]
            if kind == "open" and m.status == "initialized":
                self.activate(m)
            elif kind == "close" and m.status == "active" and m.close_ms == when:
                self.close(m)

    # ------------------------------------------------------------------------------------ views

    def ticker_state(self, m: MarketState) -> TickerState:
        """The market's current ticker state."""
        book = m.book
        bid = book.best_bid()
        ask = book.best_ask()
        return TickerState(
            ticker=m.spec.ticker,
            market_id=m.market_id,
            last_price_ticks=m.last_price,
            yes_bid_ticks=bid if bid is not None else 0,
            yes_ask_ticks=ask if ask is not None else PRICE_SCALE,
            yes_bid_size_units=book.size_at("bid", bid) if bid is not None else 0,
            yes_ask_size_units=book.size_at("ask", ask) if ask is not None else 0,
            last_trade_size_units=m.last_size,
            volume_units=m.volume,
            open_interest_units=m.open_interest,
            dollar_volume=m.dollar_volume_micros // MICROS_PER_DOLLAR,
            dollar_open_interest=m.open_interest * m.last_price // MICROS_PER_DOLLAR,
            ts_ms=self.now,
        )
