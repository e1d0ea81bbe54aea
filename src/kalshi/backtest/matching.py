"""The simulated exchange of backtests and paper trading: the strategy's orders against a recorded (or live) book.

Sans-I/O and exact. Market data (snapshots, deltas, trades) comes in through :meth:`SimulatedExchange.snapshot`,
:meth:`~SimulatedExchange.delta` and :meth:`~SimulatedExchange.trade`; the strategy's orders through
:meth:`~SimulatedExchange.place`, :meth:`~SimulatedExchange.amend` and :meth:`~SimulatedExchange.cancel`.
Fills and order reports go to the ``emit`` callback. Fees are :mod:`kalshi.backtest.fees` (the engine's).

The fill model (the exchange's rules, with the book seen only as aggregated levels):

* **Taking**: an arriving order matches the visible opposite levels best price first, at the resting price, up
  to its limit (fill-or-kill only if it fills completely; immediate-or-cancel cancels the rest; post-only is
  rejected if it would cross, own resting orders included). **Self-trade prevention** (the exchange's default,
  ``taker_at_cross``): a taker that reaches one of the strategy's own resting orders, after the others' size
  ahead of it, is cancelled there. The strategy does not move the book: the recording's later deltas do, as they
  did when it was made (**no market impact**).
* **Queue position**: a resting order joins the back of its level: ``ahead`` = the visible size at its price
  on arrival; size added later queues behind it.
* **Trades** at the order's price consume ``ahead`` first, then fill the order; a trade at a worse price
  than the order (the taker swept through it) fills it at its own price. A taker's volume fills the
  strategy's orders in price-time priority, each unit once.
* **Crossing liquidity**: new opposite size that would cross a resting order fills it at its price (the
  incoming order would have traded with it instead of resting).
* **Cancels ahead**, model ``"back"`` (default, conservative) - **cancels come from the back**: a decrease of a
  level not explained by trades at that price removes size behind the order first, so ``ahead`` only shrinks
  when the level becomes smaller than it. Model ``"pro_rata"``: a cancel of ``c`` units from a level of ``L``
  removes ``c * ahead / L`` (rounded down) from ahead. Decreases and trades are paired per level over one
  exchange timestamp in recorded order (the exchange publishes a trade's delta and its trade message with the
  same ``ts_ms``, the delta just before or after): the latest decreases before a trade are its own, so a trade
  is never counted twice, and the earlier ones are cancels that happened before it, applied to ahead before
  the trade consumes it. The recording account's own deltas (:meth:`SimulatedExchange.recorded_own_delta`)
  take part in the pairing without being others' size: a trade whose delta is one went to that order.
* **Own taker fills in the recording**: the trades a strategy's own taker fills caused (present when the
  recording is of its own live run) are absorbed for a second after the fill instead of being taken for
  other takers' flow.
* **Own orders in the recording**: deltas carrying a ``client_order_id`` (the exchange shows it only to the
  order's owner) were the recording account's own orders and are skipped by the runner when
  ``exclude_own`` is set (the default), so a strategy replayed on its own live recording does not queue
  behind itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from kalshi.backtest.fees import FeeSchedule, fee_numerator, fee_reserve
from kalshi.backtest.market_rules import MarketRules
from kalshi.strategy.book import Book
from kalshi.strategy.context import Ledger
from kalshi.strategy.types import PRICE_SCALE, Fill, OrderState, OrderStatus, OrderUpdate

__all__ = ["AMEND", "CANCEL", "PLACE", "CancelModel", "SimOrder", "SimulatedExchange"]

# A request on its way to the exchange (order latency) is queued as (arrival, op, order, price, count);
# SimulatedExchange.submit() carries it out when it arrives.
PLACE: Final = 0
AMEND: Final = 1
CANCEL: Final = 2

CancelModel = Literal["back", "pro_rata"]
_ECHO_NS = 1_000_000_000  # a taker fill's echo in the recording arrives well within a second


def _ignore(ticker: str, on_yes: bool, price: int, delta: int) -> None:
    return None


def _priority(order: SimOrder) -> tuple[int, int]:
    """Price-time priority of a resting order on its book side: best price first, then arrival."""
    return -order.book_price, order.seq


@dataclass(slots=True, eq=False)
class SimOrder:
    """The exchange's side of one strategy order."""

    client_order_id: str
    order_id: str
    ticker: str
    side: str
    price: int
    remaining: int
    filled: int
    time_in_force: str
    post_only: bool
    seq: int
    on_yes: bool = True  # rests on the YES-bid side of the book (a bid) or the NO-bid side (an ask)
    book_price: int = 0  # price on its book side: YES price for bids, 10000 - price for asks
    ahead: int = 0
    taker_acc: int = 0
    maker_acc: int = 0
    fees: int = 0
    created_ns: int = 0
    status: OrderStatus = "pending"
    reason: str | None = None


@dataclass(slots=True)
class _Pending:
    # Level decreases not yet explained by trades, in recorded order: others' (applied to the book) as positive
    # units, the recording account's own (not in the book) as negative units.
    decreases: list[int] = field(default_factory=list)
    traded: int = 0  # trade volume at the level not yet matched by a decrease (its delta comes later)


@dataclass(slots=True)
class _Market:
    book: Book
    resting: dict[bool, list[SimOrder]] = field(default_factory=lambda: {True: [], False: []})
    pending: dict[tuple[bool, int], _Pending] = field(default_factory=dict)
    window: int | None = None
    # Units the strategy took from a level as taker, (level side, price) -> [units, at_ns]: the recorded
    # trades that echo them (the recording of a live run has them) are not someone else's flow.
    echo: dict[tuple[bool, int], list[int]] = field(default_factory=dict)


class SimulatedExchange:
    """Fills a strategy's orders against a book it does not own (see the module doc for the model).

    Args:
        emit: receives every :class:`Fill` and :class:`OrderUpdate`, in exchange order.
        clock_ns: the exchange clock (replay time, or epoch ns in paper trading).
        fees: the fee schedule.
        cancel_model: ``"back"`` or ``"pro_rata"``.
        cash: the account's starting cash in micros.
        on_own_delta: called with ``(ticker, on_yes, book_price, delta_units)`` whenever the strategy's resting
            size changes, so a runner can show the strategy a book that includes its own orders (as the
            exchange's feed does live).

    Raises:
        ValueError: an unknown cancel model.
    """

    def __init__(
        self,
        emit: Callable[[Fill | OrderUpdate], None],
        clock_ns: Callable[[], int],
        *,
        fees: FeeSchedule | None = None,
        cancel_model: CancelModel = "back",
        cash: int = 0,
        on_own_delta: Callable[[str, bool, int, int], None] | None = None,
    ) -> None:
        if cancel_model not in ("back", "pro_rata"):
            raise ValueError(f"cancel_model must be 'back' or 'pro_rata', not {cancel_model!r}")
        self._emit = emit
        self._clock = clock_ns
        self.fees = fees or FeeSchedule()
        self._taker_bp = self.fees.taker_fee_bp
        self._maker_bp = self.fees.maker_fee_bp
        self.cancel_model: CancelModel = cancel_model
        self.account = Ledger(cash)
        self.markets: dict[str, _Market] = {}
        self.orders: dict[str, SimOrder] = {}  # every order by client order id
        # Price grids (and whole-contract rules) of the markets whose specs are known: orders off them are refused.
        self.rules: dict[str, MarketRules] = {}
        self.fills: list[Fill] = []
        self._seq = 0
        self._own = on_own_delta or _ignore

    # ------------------------------------------------------------------ market data

    def book(self, ticker: str) -> Book | None:
        """The exchange-side book of ``ticker`` (others' visible liquidity), or None before its snapshot."""
        market = self.markets.get(ticker)
        return market.book if market is not None else None

    def snapshot(self, ticker: str, yes: list[tuple[int, int]], no: list[tuple[int, int]]) -> Book:
        """Replace a market's book; resting orders keep their place, capped by what is now visible."""
        market = self.markets.get(ticker)
        if market is None:
            market = self.markets[ticker] = _Market(Book(ticker))
        book = market.book
        book.set_levels(yes, no)
        book.ts_ns = self._clock()
        market.pending.clear()
        for on_yes in (True, False):
            levels = book.yes if on_yes else book.no
            for order in market.resting[on_yes]:
                order.ahead = min(order.ahead, levels.get(order.book_price, 0))
        return book

    def delta(self, ticker: str, on_yes: bool, price: int, delta: int, ts_ms: int | None) -> Book | None:
        """Apply a level change (``on_yes``: the YES-bid side; else NO bids at NO ``price``)."""
        market = self.markets.get(ticker)
        if market is None:
            return None
        if market.pending and (market.window != ts_ms or ts_ms is None):
            self._flush(market)
        market.window = ts_ms
        book = market.book
        book.apply(on_yes, price, delta)
        if delta < 0:
            for order in market.resting[on_yes]:
                if order.book_price == price:
                    self._decrease(market, on_yes, price, -delta, own=False)
                    if ts_ms is None:
                        self._flush(market)
                    break
        else:
            opposite = market.resting[not on_yes]
            # New size on the other side: if it crosses a resting order, the incoming order traded with it.
            if opposite and opposite[0].book_price + price >= PRICE_SCALE:
                self._cross(market, opposite, price, delta)
        return book

    def recorded_own_delta(self, ticker: str, on_yes: bool, price: int, delta: int, ts_ms: int | None) -> None:
        """A level change of the recording account's own order (a delta carrying its ``client_order_id``).

        It is not others' liquidity, so the book does not take it; but it tells which trade volume was the
        recording account's: a trade whose delta this is did not consume others' queue, and the others'
        decreases recorded before it at its level were cancels that happened before that trade.
        """
        market = self.markets.get(ticker)
        if market is None or delta >= 0:
            return
        if market.pending and (market.window != ts_ms or ts_ms is None):
            self._flush(market)
        market.window = ts_ms
        for order in market.resting[on_yes]:
            if order.book_price == price:
                self._decrease(market, on_yes, price, -delta, own=True)
                if ts_ms is None:
                    self._flush(market)
                break

    def _decrease(self, market: _Market, on_yes: bool, price: int, units: int, *, own: bool) -> None:
        key = (on_yes, price)
        pending = market.pending.get(key)
        if pending is None:
            pending = market.pending[key] = _Pending()
        traded = pending.traded
        if traded:
            explained = units if units < traded else traded  # a trade recorded before its delta
            pending.traded = traded - explained
            units -= explained
        if units > 0:
            pending.decreases.append(-units if own else units)

    def trade(self, ticker: str, yes_price: int, count: int, taker_yes: bool, ts_ms: int | None) -> None:
        """A public trade: ``count`` units at YES ``yes_price``; ``taker_yes`` when the taker bought YES."""
        market = self.markets.get(ticker)
        if market is None:
            return
        if market.pending and market.window != ts_ms:
            self._flush(market)
        market.window = ts_ms
        maker_on_yes = not taker_yes
        level = yes_price if maker_on_yes else PRICE_SCALE - yes_price
        key = (maker_on_yes, level)
        if market.echo:
            echo = market.echo.get(key)
            if echo is not None:
                absorbed = min(count, echo[0]) if self._clock() - echo[1] <= _ECHO_NS else 0
                echo[0] -= absorbed
                count -= absorbed
                if echo[0] <= 0 or not absorbed:
                    del market.echo[key]
                if count <= 0:
                    return
        orders = market.resting[maker_on_yes]
        if not orders:
            return
        pending = market.pending.get(key)
        if pending is None:
            for order in orders:
                if order.book_price == level:
                    # Only a level holding a resting order has its decreases recorded (the others need no pairing).
                    pending = market.pending[key] = _Pending()
                    break
        if pending is not None:
            self._pair(market, pending, maker_on_yes, level, count)
        self._trade_fills(market, orders, level, count)

    def _pair(self, market: _Market, pending: _Pending, on_yes: bool, level: int, count: int) -> None:
        """Pair a trade of ``count`` at a level holding a resting order with the level's recorded decreases."""
        # The exchange sends a trade's deltas just before (or after) its trade message: the latest decreases
        # recorded at the level are this trade's; earlier ones were cancels, which happened before the trade
        # and so change the queue ahead before the trade consumes it.
        decreases = pending.decreases
        matched = others_matched = 0
        while decreases and matched < count:
            units = min(abs(decreases[-1]), count - matched)
            matched += units
            if decreases[-1] > 0:
                others_matched += units
                decreases[-1] -= units
            else:
                decreases[-1] += units
            if not decreases[-1]:
                decreases.pop()
        pending.traded += count - matched
        if decreases:
            # Visible at the time of those cancels: now plus this trade's own footprint on the level.
            self._cancels(market, on_yes, level, decreases, others_matched)
            decreases.clear()

    def _trade_fills(self, market: _Market, orders: list[SimOrder], level: int, count: int) -> None:
        """A trade's volume through the resting orders of its side, in price-time priority."""
        budget = count
        consumed = 0  # others consumed at the trade's level by this trade
        done: list[SimOrder] | None = None
        for order in orders:
            book_price = order.book_price
            if budget <= 0 or book_price < level:
                break
            if book_price == level:
                ahead = order.ahead - consumed
                if ahead < 0:
                    ahead = 0
                take = ahead if ahead < budget else budget
                order.ahead = ahead - take
                consumed += take
                budget -= take
                if budget <= 0:
                    break
            remaining = order.remaining
            units = remaining if remaining < budget else budget
            budget -= units
            self._fill(order, units, order.price, is_taker=False)
            if order.remaining == 0:
                if done is None:
                    done = []
                done.append(order)
        if done is not None:
            for order in done:
                self._close(market, order, "executed", None)

    def settle(self, ticker: str, value: int) -> int:
        """Settle ``ticker`` at ``value`` ticks per YES unit: cancel resting orders, pay out the position.

        Returns:
            The payout in micros.
        """
        market = self.markets.get(ticker)
        if market is not None:
            for on_yes in (True, False):
                for order in list(market.resting[on_yes]):
                    self._close(market, order, "canceled", "market settled")
        return self.account.settle(ticker, value)

    # ------------------------------------------------------------------ orders

    def submit(self, op: int, state: OrderState, price: int, count: int) -> None:
        """A queued request arrives: :data:`PLACE`, :data:`AMEND` (to ``price``/``count``) or :data:`CANCEL`."""
        if op == PLACE:
            self.place(state)
        elif op == AMEND:
            self.amend(state, price, count)
        else:
            self.cancel(state)

    def place(self, state: OrderState) -> None:
        """An order arrives at the exchange now: match, then rest / cancel the rest as its time in force says."""
        self._seq = seq = self._seq + 1
        on_yes = state.side == "bid"
        price = state.price
        # Positional: SimOrder's fields in declaration order (a keyword call costs twice as much per order).
        order = SimOrder(
            state.client_order_id,
            f"bt-{seq}",
            state.ticker,
            state.side,
            price,
            state.count,
            0,
            state.time_in_force,
            state.post_only,
            seq,
            on_yes,
            price if on_yes else PRICE_SCALE - price,
            0,
            0,
            0,
            0,
            self._clock(),
        )
        self.orders[order.client_order_id] = order
        market = self.markets.get(order.ticker)
        if market is None:
            self._reject(order, "market_not_found: no book for this market yet")
            return
        rules = self.rules.get(order.ticker)
        refusal = rules.refusal(order.ticker, order.price, order.remaining) if rules is not None else None
        if refusal is not None:
            self._reject(order, refusal)
            return
        self._enter(market, order)

    def amend(self, state: OrderState, price: int, count: int) -> None:
        """Change a resting order; same price and a smaller remainder keeps its queue place."""
        order = self.orders.get(state.client_order_id)
        market = self.markets.get(state.ticker)
        if order is None or market is None or order.status != "resting":
            self._report_reject(state, "order_not_resting")
            return
        remaining = count - order.filled
        if remaining <= 0:
            self._report_reject(state, "invalid_count: count must exceed the units already filled")
            return
        rules = self.rules.get(order.ticker)
        refusal = rules.refusal(order.ticker, price, count) if rules is not None else None
        if refusal is not None:
            self._report_reject(state, refusal)
            return
        if price == order.price and remaining <= order.remaining:
            if remaining < order.remaining:
                self._own(order.ticker, order.on_yes, order.book_price, remaining - order.remaining)
            order.remaining = remaining
            self._update(order, "resting", "Amend")
            return
        market.resting[order.on_yes].remove(order)
        self._own(order.ticker, order.on_yes, order.book_price, -order.remaining)
        self._seq += 1
        order.seq = self._seq
        order.price = price
        order.book_price = price if order.on_yes else PRICE_SCALE - price
        order.remaining = remaining
        self._enter(market, order, reason="Amend")

    def cancel(self, state: OrderState) -> None:
        """Cancel a resting order (nothing happens for one already done)."""
        order = self.orders.get(state.client_order_id)
        market = self.markets.get(state.ticker)
        if order is None or market is None or order.status != "resting":
            return
        self._close(market, order, "canceled", None)

    def resting_in(self, ticker: str) -> list[SimOrder]:
        """Resting orders of one market."""
        market = self.markets.get(ticker)
        return [] if market is None else market.resting[True] + market.resting[False]

    def open_orders(self) -> list[SimOrder]:
        """Resting orders of every market, in arrival order."""
        out = [o for m in self.markets.values() for side in (True, False) for o in m.resting[side]]
        return sorted(out, key=lambda o: o.seq)

    # ------------------------------------------------------------------ internals

    def _enter(self, market: _Market, order: SimOrder, reason: str | None = None) -> None:
        book = market.book
        # Others' liquidity only: a book shared with the strategy's view also holds its own resting orders.
        if order.on_yes:
            opposite, opposite_own, same, same_own = book.no, book.own_no, book.yes, book.own_yes
        else:
            opposite, opposite_own, same, same_own = book.yes, book.own_yes, book.no, book.own_no
        # Opposite book prices that cross: their YES/NO complement is within the limit.
        floor = PRICE_SCALE - order.book_price
        # Self-trade prevention (the exchange's default, "taker_at_cross"): matching best price first meets the
        # strategy's own crossing order after the others ahead of it at its level, and cancels the taker there.
        mine = market.resting[not order.on_yes]
        own_first = mine[0] if mine and mine[0].book_price >= floor else None
        stop = own_first.book_price if own_first is not None else 0
        top = book.others_top_level(not order.on_yes)
        crossing: list[tuple[int, int]] = []
        if top >= floor:
            lowest = floor if floor >= stop else stop
            for p in sorted((p for p in opposite if p >= lowest), reverse=True):
                others = opposite[p] - opposite_own.get(p, 0) if opposite_own else opposite[p]
                if p == stop and own_first is not None:
                    others = min(others, own_first.ahead)
                if others > 0:
                    crossing.append((p, others))
        if (crossing or own_first is not None) and order.post_only:
            self._reject(order, "post_only_cross: the order would take liquidity")
            return
        if order.time_in_force == "fill_or_kill" and sum(u for _, u in crossing) < order.remaining:
            self._close(market, order, "canceled", "fill_or_kill: not enough liquidity", resting=False)
            return
        for p, available in crossing:
            if order.remaining == 0:
                break
            units = min(order.remaining, available)
            fill_price = PRICE_SCALE - p if order.on_yes else p
            self._fill(order, units, fill_price, is_taker=True)
            echo = market.echo.setdefault((not order.on_yes, p), [0, 0])
            echo[0] += units
            echo[1] = self._clock()
        if order.remaining and own_first is not None:
            self._close(
                market, order, "canceled", "SelfTradeCancel: it would have traded with your own order", resting=False
            )
            return
        if order.remaining == 0:
            self._close(market, order, "executed", None, resting=False)
        elif order.time_in_force != "good_till_canceled":
            self._close(market, order, "canceled", None, resting=False)
        else:
            order.ahead = max(same.get(order.book_price, 0) - same_own.get(order.book_price, 0), 0)
            side = market.resting[order.on_yes]
            side.append(order)
            if len(side) > 1:
                side.sort(key=_priority)
            self._own(order.ticker, order.on_yes, order.book_price, order.remaining)
            self._update(order, "resting", reason)

    def _fill(self, order: SimOrder, units: int, price: int, *, is_taker: bool) -> None:
        extra = fee_numerator(self._taker_bp if is_taker else self._maker_bp, units, price)
        if is_taker:
            fee = fee_reserve(order.taker_acc, extra)
            order.taker_acc += extra
        else:
            fee = fee_reserve(order.maker_acc, extra)
            order.maker_acc += extra
        order.fees += fee
        if not is_taker:
            self._own(order.ticker, order.on_yes, order.book_price, -units)
        order.remaining -= units
        order.filled += units
        self.account.apply_fill(order.ticker, order.side, price, units, fee)
        fill = Fill(
            order.client_order_id,
            order.order_id,
            order.ticker,
            order.side,  # type: ignore[arg-type]
            price,
            units,
            fee,
            is_taker,
            self._clock(),
        )
        self.fills.append(fill)
        self._emit(fill)

    def _cross(self, market: _Market, orders: list[SimOrder], price: int, units: int) -> None:
        budget = units
        done = []
        for order in orders:
            if budget <= 0 or order.book_price + price < PRICE_SCALE:
                break
            take = min(order.remaining, budget)
            budget -= take
            self._fill(order, take, order.price, is_taker=False)
            if order.remaining == 0:
                done.append(order)
        for order in done:
            self._close(market, order, "executed", None)

    def _flush(self, market: _Market) -> None:
        pending_by_level = market.pending
        for (on_yes, price), pending in pending_by_level.items():
            if pending.decreases:
                self._cancels(market, on_yes, price, pending.decreases, 0)
        pending_by_level.clear()

    def _cancels(self, market: _Market, on_yes: bool, price: int, decreases: list[int], later: int) -> None:
        """Others' cancels at a level (the positive ``decreases``; own ones do not touch others' queue) move
        the resting orders' queue place by the cancel model; ``later`` is size removed from the level after
        them (a trade's footprint) that is already out of the book."""
        cancelled = 0
        for units in decreases:
            if units > 0:
                cancelled += units
        if cancelled <= 0:
            return
        visible = market.book.others_size(on_yes, price) + later
        pro_rata = self.cancel_model == "pro_rata"
        for order in market.resting[on_yes]:
            if order.book_price != price:
                continue
            if pro_rata:
                before = visible + cancelled
                order.ahead -= cancelled * order.ahead // before if before else order.ahead
            if order.ahead > visible:
                order.ahead = visible

    def _close(
        self, market: _Market, order: SimOrder, status: OrderStatus, reason: str | None, *, resting: bool = True
    ) -> None:
        if resting and order.status == "resting":
            market.resting[order.on_yes].remove(order)
            if order.remaining:
                self._own(order.ticker, order.on_yes, order.book_price, -order.remaining)
        if status == "canceled":
            order.remaining = 0
        self._update(order, status, reason)

    def _reject(self, order: SimOrder, reason: str) -> None:
        order.remaining = 0
        self._update(order, "rejected", reason)

    def _report_reject(self, state: OrderState, reason: str) -> None:
        self._emit(
            OrderUpdate(
                client_order_id=state.client_order_id,
                order_id=state.order_id,
                ticker=state.ticker,
                side=state.side,
                price=state.price,
                status=state.status,
                remaining=state.remaining,
                filled=state.filled,
                reason=reason,
                ts_ns=self._clock(),
            )
        )

    def _update(self, order: SimOrder, status: OrderStatus, reason: str | None) -> None:
        order.status = status
        order.reason = reason
        self._emit(
            OrderUpdate(
                order.client_order_id,
                order.order_id,
                order.ticker,
                order.side,  # type: ignore[arg-type]
                order.price,
                status,
                order.remaining,
                order.filled,
                reason,
                self._clock(),
            )
        )
