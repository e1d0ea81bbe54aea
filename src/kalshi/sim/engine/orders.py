"""Order entry of the engine: place (with matching), amend, decrease, cancel, cancel all (:class:`OrderDesk`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from kalshi._fixed import COUNT_SCALE, PRICE_SCALE
from kalshi.sim.engine.book import OrderRecord
from kalshi.sim.engine.core import EngineCore, MarketState, required_reserve
from kalshi.sim.engine.events import FillEvent, OrderUpdate
from kalshi.sim.engine.types import (
    BookSide,
    EngineError,
    OrderStatus,
    OrderView,
    SelfTradePrevention,
    TimeInForce,
)

__all__ = ["KEEP", "AmendResult", "CancelResult", "Keep", "OrderDesk", "OrderResult"]


class Keep:
    """Sentinel type: leave a field as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = Keep()

_SIDES: Final = ("bid", "ask")
_TIFS: Final = ("fill_or_kill", "good_till_canceled", "immediate_or_cancel")
_STPS: Final = ("taker_at_cross", "maker")


def _averages(fills: tuple[FillEvent, ...]) -> tuple[Decimal | None, Decimal | None]:
    units = sum(f.count_units for f in fills)
    if not units:
        return None, None
    price = Decimal(sum(f.yes_price_ticks * f.count_units for f in fills)) / (units * PRICE_SCALE)
    fee = Decimal(sum(f.fee_micros for f in fills) * COUNT_SCALE) / (units * 1_000_000)
    return price, fee


@dataclass(frozen=True, slots=True)
class OrderResult:
    """Outcome of :meth:`place_order`: the order after matching and this request's fills."""

    order: OrderView
    fills: tuple[FillEvent, ...]
    ts_ms: int

    @property
    def order_id(self) -> str:
        """The new order's id."""
        return self.order.order_id

    @property
    def status(self) -> OrderStatus:
        """``resting``, ``executed`` or ``canceled``."""
        return self.order.status

    @property
    def fill_units(self) -> int:
        """Units filled by this request."""
        return sum(f.count_units for f in self.fills)

    @property
    def remaining_units(self) -> int:
        """Units left resting (0 unless the order rests)."""
        return self.order.remaining_units

    @property
    def average_fill_price(self) -> Decimal | None:
        """Volume-weighted YES price in dollars, or None without fills."""
        return _averages(self.fills)[0]

    @property
    def average_fee_paid(self) -> Decimal | None:
        """Fee per contract in dollars, or None without fills."""
        return _averages(self.fills)[1]


@dataclass(frozen=True, slots=True)
class CancelResult:
    """Outcome of a cancel: ``reduced_by_units`` is the remaining size that was cancelled."""

    order: OrderView
    reduced_by_units: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class AmendResult:
    """Outcome of :meth:`amend_order`: the order before and after, and fills if the new price crossed."""

    old_order: OrderView
    order: OrderView
    fills: tuple[FillEvent, ...]
    ts_ms: int

    @property
    def fill_units(self) -> int:
        """Units filled by the amend."""
        return sum(f.count_units for f in self.fills)


class OrderDesk:
    """Order entry and matching on the shared :class:`EngineCore`; :class:`~kalshi.sim.engine.Engine` forwards to it.

    Args:
        core: the engine's state and primitives.
    """

    __slots__ = ("_core",)

    def __init__(self, core: EngineCore) -> None:
        self._core = core

    # ------------------------------------------------------------------------------------ validation

    def _check_price(self, m: MarketState, price: int) -> None:
        if price not in m.prices or not isinstance(price, int):
            raise EngineError(
                "invalid_price",
                f"price {price!r} ticks is not on {m.spec.ticker}'s {m.spec.price_level_structure} grid; "
                "use a price inside its price_ranges on their step",
            )

    def _check_count(self, m: MarketState, count: int, what: str = "count") -> None:
        if not isinstance(count, int) or count <= 0:
            raise EngineError("invalid_count", f"{what} must be a positive number of contracts, got {count!r} units")
        if not m.spec.fractional_trading_enabled and count % COUNT_SCALE:
            raise EngineError(
                "invalid_count", f"{m.spec.ticker} trades whole contracts only; {what} {count} units is fractional"
            )

    def _check_trading(self, m: MarketState) -> None:
        if not m.is_trading():
            state = "paused" if m.paused and m.status == "active" else m.status
            raise EngineError("market_closed", f"market {m.spec.ticker} is {state}; it takes no orders now", status=409)

    # ------------------------------------------------------------------------------------ matching

    def _match(self, m: MarketState, taker: OrderRecord) -> None:
        core = self._core
        book = m.book
        resting_side: BookSide = "ask" if taker.side == "bid" else "bid"
        while taker.remaining > 0 and taker.status == "resting":
            price = book.best_opposite(taker.side, taker.price)
            if price is None:
                return
            maker = book.first_at(resting_side, price)
            if maker.account == taker.account:
                if taker.stp == "taker_at_cross":
                    core.close_order(taker, "canceled", "SelfTradeCancel")
                    return
                core.cancel_resting(maker, "SelfTradeCancel")
                continue
            units = min(taker.remaining, maker.remaining)
            maker_allowance = core.group_allowance(maker.group_id)
            if maker_allowance == 0:
                core.cancel_resting(maker, None)
                continue
            taker_allowance = core.group_allowance(taker.group_id)
            if taker_allowance == 0:
                break
            for allowance in (maker_allowance, taker_allowance):
                if allowance is not None:
                    units = min(units, allowance)
            core.fill(m, taker, maker, units, price, block=False)
        if taker.status == "resting" and taker.remaining and taker.group_id is not None:
            group = core.groups.get(taker.group_id)
            if group is not None and group.triggered:
                core.close_order(taker, "canceled", None)

    def _fillable(self, m: MarketState, order: OrderRecord) -> int:
        """Units an incoming order could fill now, without changing anything (for fill-or-kill)."""
        total = 0
        used: dict[str, int] = {}
        for maker in m.book.crossing_orders(order.side, order.price):
            if maker.account == order.account:
                if order.stp == "taker_at_cross":
                    break
                continue
            units = maker.remaining
            allowance = self._core.group_allowance(maker.group_id)
            if allowance is not None and maker.group_id is not None:
                units = min(units, allowance - used.get(maker.group_id, 0))
                used[maker.group_id] = used.get(maker.group_id, 0) + units
            total += units
            if total >= order.remaining:
                break
        allowance = self._core.group_allowance(order.group_id)
        return total if allowance is None else min(total, allowance)

    def _finish_incoming(self, m: MarketState, order: OrderRecord, capped: bool) -> None:
        """After matching: rest a good-till-cancelled remainder, close everything else."""
        core = self._core
        if order.status != "resting":
            return
        if order.remaining == 0:
            if capped:  # reduce_only never placed part of the requested size
                core.close_order(order, "canceled", "ReduceOnlyCancel")
            else:
                core.close_order(order, "executed", "Trade")
        elif order.time_in_force == "good_till_canceled":
            core.rest(m, order)
            core.outbox.append(OrderUpdate(order=order.view(), ts_ms=core.now))
        else:
            core.close_order(order, "canceled", "ReduceOnlyCancel" if capped else None)

    # ------------------------------------------------------------------------------------ public

    def place_order(
        self,
        account: str,
        ticker: str,
        side: BookSide,
        price_ticks: int,
        count_units: int,
        *,
        time_in_force: TimeInForce = "good_till_canceled",
        client_order_id: str | None = None,
        post_only: bool = False,
        reduce_only: bool = False,
        self_trade_prevention: SelfTradePrevention = "taker_at_cross",
        order_group_id: str | None = None,
        expiration_ms: int | None = None,
        cancel_order_on_pause: bool = False,
    ) -> OrderResult:
        """Place a limit order on the single YES book and match it (price-time priority, maker's price).

        ``side="bid"`` buys YES at up to ``price_ticks``; ``side="ask"`` sells YES (buys NO) at
        ``price_ticks`` or more. Fill-or-kill fills completely or not at all; immediate-or-cancel
        cancels what does not fill; good-till-cancelled rests the remainder (until ``expiration_ms``).
        ``reduce_only`` (immediate-or-cancel only) caps the size at the position it can reduce.

        Raises:
            EngineError: ``account_not_found``, ``market_not_found``, ``market_closed``, ``invalid_price``,
                ``invalid_count``, ``invalid_parameters``, ``invalid_expiration``,
                ``duplicate_client_order_id``, ``order_group_not_found``, ``order_group_triggered``,
                ``post_only_cross``, ``insufficient_balance``.
        """
        core = self._core
        now = core.begin()
        try:
            acct = core.account(account)
            m = core.market(ticker)
            if side not in _SIDES or time_in_force not in _TIFS or self_trade_prevention not in _STPS:
                raise EngineError(
                    "invalid_parameters",
                    f"side must be bid|ask, time_in_force one of {_TIFS}, self_trade_prevention one of {_STPS}",
                )
            self._check_trading(m)
            self._check_price(m, price_ticks)
            self._check_count(m, count_units)
            gtc = time_in_force == "good_till_canceled"
            if reduce_only and time_in_force != "immediate_or_cancel":
                raise EngineError("invalid_parameters", "reduce_only orders must be immediate_or_cancel")
            if post_only and not gtc:
                raise EngineError("invalid_parameters", "post_only orders must be good_till_canceled")
            if expiration_ms is not None:
                if not gtc:
                    raise EngineError("invalid_parameters", "expiration_time needs time_in_force good_till_canceled")
                if expiration_ms <= now:
                    raise EngineError("invalid_expiration", "expiration_time must be in the future")
            if client_order_id and client_order_id in acct.client_order_ids:
                raise EngineError(
                    "duplicate_client_order_id",
                    f"client_order_id {client_order_id!r} was already used by this account",
                    status=409,
                )
            if order_group_id is not None:
                group = core.groups.get(order_group_id)
                if group is None or group.account != account:
                    raise EngineError("order_group_not_found", f"no order group {order_group_id!r}", status=404)
                if group.triggered:
                    raise EngineError(
                        "order_group_triggered",
                        f"order group {order_group_id} hit its limit; reset it before placing orders",
                        status=409,
                    )
            if post_only and m.book.best_opposite(side, price_ticks) is not None:
                raise EngineError("post_only_cross", "post_only order would cross the book; it was not placed")
            count = count_units
            if reduce_only:
                pos = acct.positions.get(ticker)
                held = pos.units if pos is not None else 0
                count = min(count, max(-held if side == "bid" else held, 0))
            order = OrderRecord(
                order_id="",
                account=account,
                ticker=ticker,
                market_id=m.market_id,
                side=side,
                price=price_ticks,
                initial=count_units,
                remaining=count,
                time_in_force=time_in_force,
                stp=self_trade_prevention,
                post_only=post_only,
                reduce_only=reduce_only,
                cancel_on_pause=cancel_order_on_pause,
                client_order_id=client_order_id or None,
                group_id=order_group_id,
                expiration_ms=expiration_ms,
                created_ms=now,
                updated_ms=now,
            )
            need = core.required(m, order, taker_phase=True)
            if need > acct.cash - acct.reserved:
                raise EngineError(
                    "insufficient_balance",
                    f"order needs {need} micro-dollars of collateral and fees; {acct.cash - acct.reserved} available",
                )
            order.order_id = core.ids.new()
            core.orders[order.order_id] = order
            acct.order_ids[order.order_id] = None
            if order.client_order_id:
                acct.client_order_ids.add(order.client_order_id)
            if order_group_id is not None:
                core.groups[order_group_id].order_ids[order.order_id] = None
            if time_in_force == "fill_or_kill" and self._fillable(m, order) < order.remaining:
                core.close_order(order, "canceled", None)
            else:
                core.set_reserve(order, need)
                self._match(m, order)
                self._finish_incoming(m, order, capped=count < count_units)
            fills = tuple(f for f in core.request_fills if f.order_id == order.order_id)
            return OrderResult(order=order.view(), fills=fills, ts_ms=now)
        finally:
            core.end()

    def amend_order(
        self,
        account: str,
        order_id: str,
        *,
        price_ticks: int,
        count_units: int,
        updated_client_order_id: str | None = None,
        expiration_ms: int | Keep | None = KEEP,
    ) -> AmendResult:
        """Change a resting order's price and/or total size (``count_units`` = filled + new remaining).

        Same price with a smaller or equal remainder keeps the queue place; otherwise the order leaves the
        book, may trade at the new price, and rests at the back of its level. ``expiration_ms=None``
        removes the expiry; :data:`KEEP` leaves it.

        Raises:
            EngineError: ``order_not_found``, ``order_not_resting``, ``market_closed``, ``invalid_price``,
                ``invalid_count``, ``invalid_expiration``, ``duplicate_client_order_id``,
                ``post_only_cross``, ``insufficient_balance``.
        """
        core = self._core
        now = core.begin()
        try:
            order = core.own_resting(account, order_id)
            acct = core.accounts[account]
            m = core.markets[order.ticker]
            self._check_trading(m)
            self._check_price(m, price_ticks)
            self._check_count(m, count_units)
            new_rem = count_units - order.filled
            if new_rem <= 0:
                raise EngineError(
                    "invalid_count",
                    f"count must exceed the {order.filled} units already filled; cancel the order instead",
                )
            if not isinstance(expiration_ms, Keep) and expiration_ms is not None and expiration_ms <= now:
                raise EngineError("invalid_expiration", "expiration_time must be in the future")
            new_cid = updated_client_order_id or None
            if new_cid and new_cid != order.client_order_id and new_cid in acct.client_order_ids:
                raise EngineError(
                    "duplicate_client_order_id", f"client_order_id {new_cid!r} was already used", status=409
                )
            keep_queue = price_ticks == order.price and new_rem <= order.remaining
            need = required_reserve(
                m.spec,
                order.side,
                price_ticks,
                new_rem,
                taker_fee_acc=order.taker_fee_acc,
                maker_fee_acc=order.maker_fee_acc,
                taker_phase=not keep_queue,
            )
            if not keep_queue:
                if order.post_only and m.book.best_opposite(order.side, price_ticks) is not None:
                    raise EngineError("post_only_cross", "amended post_only order would cross; it was left as it was")
                if need > acct.cash - acct.reserved + order.reserved:
                    raise EngineError("insufficient_balance", "not enough available balance for the amended order")
            old = order.view()
            if new_cid:
                acct.client_order_ids.add(new_cid)
                order.client_order_id = new_cid
            if not isinstance(expiration_ms, Keep):
                order.expiration_ms = expiration_ms
            order.initial = count_units
            order.reason = "Amend"
            order.updated_ms = now
            if keep_queue:
                shrink = order.remaining - new_rem
                if shrink:
                    m.book.shrink(order, shrink)
                    order.remaining = new_rem
                    core.delta(m, order, -shrink)
                core.set_reserve(order, need)
                if order.expiration_ms is not None:
                    core.schedule_expiry(order)
                core.outbox.append(OrderUpdate(order=order.view(), ts_ms=now))
            else:
                core.unrest(m, order)
                order.price = price_ticks
                order.remaining = new_rem
                core.set_reserve(order, need)
                self._match(m, order)
                self._finish_incoming(m, order, capped=False)
            fills = tuple(f for f in core.request_fills if f.order_id == order_id)
            return AmendResult(old_order=old, order=order.view(), fills=fills, ts_ms=now)
        finally:
            core.end()

    def decrease_order(
        self, account: str, order_id: str, *, reduce_by: int | None = None, reduce_to: int | None = None
    ) -> OrderView:
        """Shrink a resting order, keeping its queue place; down to zero cancels it. Give exactly one size.

        Raises:
            EngineError: ``order_not_found``, ``order_not_resting``, ``invalid_parameters``.
        """
        core = self._core
        core.begin()
        try:
            order = core.own_resting(account, order_id)
            if (reduce_by is None) == (reduce_to is None):
                raise EngineError("invalid_parameters", "give exactly one of reduce_by or reduce_to")
            if reduce_by is not None:
                if reduce_by <= 0:
                    raise EngineError("invalid_parameters", "reduce_by must be positive")
                new_rem = order.remaining - reduce_by
            else:
                assert reduce_to is not None
                if not 0 <= reduce_to < order.remaining:
                    raise EngineError(
                        "invalid_parameters", f"reduce_to must be below the remaining {order.remaining} units"
                    )
                new_rem = reduce_to
            if new_rem <= 0:
                core.cancel_resting(order, "Decrease")
                return order.view()
            m = core.markets[order.ticker]
            shrink = order.remaining - new_rem
            m.book.shrink(order, shrink)
            order.remaining = new_rem
            core.delta(m, order, -shrink)
            order.reason = "Decrease"
            order.updated_ms = core.now
            core.set_reserve(order, core.required(m, order, taker_phase=False))
            core.outbox.append(OrderUpdate(order=order.view(), ts_ms=core.now))
            return order.view()
        finally:
            core.end()

    def cancel_order(self, account: str, order_id: str) -> CancelResult:
        """Cancel a resting order.

        Raises:
            EngineError: ``order_not_found``, ``order_not_resting``.
        """
        core = self._core
        now = core.begin()
        try:
            order = core.own_resting(account, order_id)
            reduced = core.cancel_resting(order, None)
            return CancelResult(order=order.view(), reduced_by_units=reduced, ts_ms=now)
        finally:
            core.end()

    def cancel_all(self, account: str, ticker: str | None = None) -> list[CancelResult]:
        """Cancel every resting order of ``account`` (in one market if ``ticker`` is given).

        Raises:
            EngineError: ``account_not_found``.
        """
        core = self._core
        now = core.begin()
        try:
            acct = core.account(account)
            results = []
            for order_id in list(acct.order_ids):
                # With history_limit, a cancel may forget an older closed order this loop has yet to reach.
                order = core.orders.get(order_id)
                if order is None:
                    continue
                if order.status == "resting" and order.in_book and (ticker is None or order.ticker == ticker):
                    reduced = core.cancel_resting(order, None)
                    results.append(CancelResult(order=order.view(), reduced_by_units=reduced, ts_ms=now))
            return results
        finally:
            core.end()
