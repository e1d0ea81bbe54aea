"""Accounts, events, markets and their lifecycle: create, activate, pause, close, determine, settle."""

from __future__ import annotations

from collections import deque

from kalshi._fixed import PRICE_SCALE
from kalshi.sim.engine.core import EngineCore, MarketState
from kalshi.sim.engine.events import EventLifecycleEvent, PositionUpdate
from kalshi.sim.engine.ledger import AccountRecord
from kalshi.sim.engine.types import (
    BalanceView,
    EngineError,
    EventSpec,
    MarketResult,
    MarketSpec,
    MarketView,
    SettlementView,
    valid_prices,
)

__all__ = ["LifecycleDesk"]


class LifecycleDesk:
    """Accounts, reference data and the market lifecycle; :class:`~kalshi.sim.engine.Engine` forwards to it.

    Args:
        core: the engine's state and primitives.
    """

    __slots__ = ("_core",)

    def __init__(self, core: EngineCore) -> None:
        self._core = core

    # ------------------------------------------------------------------------------------ accounts

    def balance_view(self, acct: AccountRecord) -> BalanceView:
        """Cash, reserved collateral and portfolio value (positions at the last price, else $0.50)."""
        value = 0
        for ticker, pos in acct.positions.items():
            if pos.units:
                last = self._core.markets[ticker].last_price or PRICE_SCALE // 2
                value += pos.units * last if pos.units > 0 else -pos.units * (PRICE_SCALE - last)
        return BalanceView(
            account=acct.account_id,
            cash_micros=acct.cash,
            reserved_micros=acct.reserved,
            portfolio_value_micros=value,
            updated_ts_ms=acct.updated_ms,
        )

    def open_account(self, account: str, balance_micros: int = 0) -> BalanceView:
        """Open an account with a starting cash balance in micro-dollars.

        Raises:
            EngineError: ``account_exists``, ``invalid_parameters`` for a negative balance.
        """
        core = self._core
        now = core.begin()
        try:
            if account in core.accounts:
                raise EngineError("account_exists", f"account {account!r} is already open", status=409)
            if balance_micros < 0:
                raise EngineError("invalid_parameters", "balance must not be negative")
            acct = AccountRecord(
                account_id=account,
                communications_id=core.ids.new().replace("-", "")[:24],
                cash=balance_micros,
                deposits=balance_micros,
                updated_ms=now,
                fills=deque(maxlen=core.history_limit),
            )
            core.accounts[account] = acct
            return self.balance_view(acct)
        finally:
            core.end()

    def deposit(self, account: str, amount_micros: int) -> BalanceView:
        """Add cash to an account (negative amounts withdraw available cash).

        Raises:
            EngineError: ``account_not_found``, ``insufficient_balance``.
        """
        core = self._core
        now = core.begin()
        try:
            acct = core.account(account)
            if acct.cash - acct.reserved + amount_micros < 0:
                raise EngineError("insufficient_balance", "cannot withdraw more than the available balance")
            acct.cash += amount_micros
            acct.deposits += amount_micros
            acct.updated_ms = now
            return self.balance_view(acct)
        finally:
            core.end()

    # ------------------------------------------------------------------------------------ reference data

    def _add_event(self, spec: EventSpec) -> None:
        core = self._core
        core.event_specs[spec.event_ticker] = spec
        core.outbox.append(EventLifecycleEvent(event=spec, ts_ms=core.now))

    def add_event(self, spec: EventSpec) -> None:
        """Register an event (emits ``EventLifecycleEvent``).

        Raises:
            EngineError: ``event_exists``.
        """
        core = self._core
        core.begin()
        try:
            if spec.event_ticker in core.event_specs:
                raise EngineError("event_exists", f"event {spec.event_ticker!r} exists", status=409)
            self._add_event(spec)
        finally:
            core.end()

    def add_market(self, spec: MarketSpec) -> MarketView:
        """Register a market (emits ``created``; an unknown event is created from the spec first).

        An ``initialized`` market activates at ``open_time_ms``; ``close_time_ms`` closes it.

        Raises:
            EngineError: ``market_exists``, ``invalid_price_level_structure``, ``invalid_parameters``.
        """
        core = self._core
        now = core.begin()
        try:
            if spec.ticker in core.markets:
                raise EngineError("market_exists", f"market {spec.ticker!r} exists", status=409)
            ranges = spec.ranges()
            if not ranges or any(r.step_ticks <= 0 or r.start_ticks > r.end_ticks for r in ranges):
                raise EngineError("invalid_parameters", "price_ranges need start <= end and a positive step")
            if not 0 <= spec.maker_fee_bp <= spec.taker_fee_bp:
                # Reservations rely on maker fees never exceeding taker fees.
                raise EngineError("invalid_parameters", "fees need 0 <= maker_fee_bp <= taker_fee_bp")
            if spec.event_ticker not in core.event_specs:
                self._add_event(
                    EventSpec(
                        event_ticker=spec.event_ticker,
                        series_ticker=spec.series_ticker,
                        title=spec.title,
                        is_multivariate=spec.is_multivariate,
                    )
                )
            m = MarketState(
                spec=spec,
                market_id=spec.market_id or core.ids.new(),
                ranges=ranges,
                prices=frozenset(valid_prices(ranges)),
                status="initialized",
                created_ms=now,
                updated_ms=now,
                close_ms=spec.close_time_ms,
                trades=deque(maxlen=core.history_limit),
            )
            core.markets[spec.ticker] = m
            core.lifecycle(
                m,
                "created",
                spec=spec,
                open_time_ms=spec.open_time_ms,
                close_time_ms=spec.close_time_ms,
                price_level_structure=spec.price_level_structure,
                price_ranges=ranges,
            )
            if spec.status == "active":
                m.status = "active"
            else:
                core.schedule_at(spec.open_time_ms, "open", spec.ticker)
            if spec.close_time_ms is not None:
                core.schedule_at(spec.close_time_ms, "close", spec.ticker)
            core.run_timers(now)
            return m.view()
        finally:
            core.end()

    # ------------------------------------------------------------------------------------ lifecycle

    def activate_market(self, ticker: str) -> MarketView:
        """Open an initialized market now, or resume a paused one (emits ``activated``).

        Raises:
            EngineError: ``market_not_found``, ``invalid_market_status``.
        """
        core = self._core
        core.begin()
        try:
            m = core.market(ticker)
            if m.status == "initialized":
                core.activate(m)
            elif m.status == "active" and m.paused:
                m.paused = False
                core.lifecycle(m, "activated", is_deactivated=False)
            else:
                raise EngineError("invalid_market_status", f"market {ticker} is {m.status}; cannot activate")
            return m.view()
        finally:
            core.end()

    def deactivate_market(self, ticker: str) -> MarketView:
        """Pause trading (emits ``deactivated``); orders with ``cancel_order_on_pause`` are cancelled.

        Raises:
            EngineError: ``market_not_found``, ``invalid_market_status``.
        """
        core = self._core
        core.begin()
        try:
            m = core.market(ticker)
            if m.status != "active" or m.paused:
                raise EngineError("invalid_market_status", f"market {ticker} is not trading; cannot pause")
            m.paused = True
            core.lifecycle(m, "deactivated", is_deactivated=True)
            for order in m.book.orders():
                if order.cancel_on_pause:
                    core.cancel_resting(order, "HaltCancel")
            return m.view()
        finally:
            core.end()

    def update_close_time(self, ticker: str, close_time_ms: int) -> MarketView:
        """Move the scheduled close (emits ``close_date_updated``); a past time closes the market now.

        Raises:
            EngineError: ``market_not_found``, ``invalid_market_status``.
        """
        core = self._core
        now = core.begin()
        try:
            m = core.market(ticker)
            if m.status not in ("initialized", "active"):
                raise EngineError("invalid_market_status", f"market {ticker} is {m.status}; its close time is final")
            m.close_ms = close_time_ms
            core.lifecycle(m, "close_date_updated", close_time_ms=close_time_ms)
            core.schedule_at(close_time_ms, "close", ticker)
            core.run_timers(now)
            return m.view()
        finally:
            core.end()

    def close_market(self, ticker: str) -> MarketView:
        """Close trading now and cancel resting orders; an early close emits ``close_date_updated``.

        Raises:
            EngineError: ``market_not_found``, ``invalid_market_status``.
        """
        core = self._core
        now = core.begin()
        try:
            m = core.market(ticker)
            self._close_now(m, now)
            return m.view()
        finally:
            core.end()

    def _close_now(self, m: MarketState, now: int) -> None:
        if m.status not in ("initialized", "active"):
            raise EngineError("invalid_market_status", f"market {m.spec.ticker} is already {m.status}")
        if m.close_ms is None or m.close_ms > now:
            m.close_ms = now
            self._core.lifecycle(m, "close_date_updated", close_time_ms=now)
        self._core.close(m)

    def determine_market(
        self, ticker: str, result: MarketResult, settlement_value_ticks: int | None = None
    ) -> MarketView:
        """Record the outcome (emits ``determined``), closing the market first if it still trades.

        ``settlement_value_ticks`` is what one YES contract pays: 10000 for ``yes``, 0 for ``no``, and
        required (0..10000) for ``scalar``.

        Raises:
            EngineError: ``market_not_found``, ``invalid_market_status``, ``invalid_parameters``.
        """
        core = self._core
        now = core.begin()
        try:
            m = core.market(ticker)
            if result == "yes":
                value = PRICE_SCALE
            elif result == "no":
                value = 0
            elif (
                result == "scalar" and settlement_value_ticks is not None and 0 <= settlement_value_ticks <= PRICE_SCALE
            ):
                value = settlement_value_ticks
            else:
                raise EngineError(
                    "invalid_parameters", "result must be yes, no, or scalar with a settlement value of 0..10000 ticks"
                )
            if m.status in ("initialized", "active"):
                self._close_now(m, now)
            if m.status != "closed":
                raise EngineError("invalid_market_status", f"market {ticker} is already {m.status}")
            m.status = "determined"
            m.result = result
            m.value = value
            m.determination_ms = now
            core.lifecycle(
                m,
                "determined",
                result=result,
                settlement_value_ticks=value,
                determination_ts_ms=now,
            )
            return m.view()
        finally:
            core.end()

    def settle_market(self, ticker: str) -> list[SettlementView]:
        """Pay every position at the settlement value, flatten them, and emit ``settled``.

        Returns:
            One settlement per account that held a position.

        Raises:
            EngineError: ``market_not_found``, ``invalid_market_status``.
        """
        core = self._core
        now = core.begin()
        try:
            m = core.market(ticker)
            if m.status != "determined" or m.result is None or m.value is None:
                raise EngineError("invalid_market_status", f"market {ticker} is {m.status}; determine it first")
            settlements = []
            for account in m.holders:
                acct = core.accounts[account]
                pos = acct.positions[ticker]
                if not pos.units:
                    continue
                payout, yes_units, yes_cost, no_units, no_cost = pos.settle(m.value)
                acct.cash += payout
                pos.updated_ms = acct.updated_ms = now
                settlement = SettlementView(
                    account=account,
                    ticker=ticker,
                    event_ticker=m.spec.event_ticker,
                    market_result=m.result,
                    yes_count_units=yes_units,
                    yes_total_cost_micros=yes_cost,
                    no_count_units=no_units,
                    no_total_cost_micros=no_cost,
                    revenue_micros=payout,
                    fee_cost_micros=pos.fees_paid,
                    value_ticks=m.value,
                    settled_ts_ms=now,
                )
                acct.settlements.append(settlement)
                settlements.append(settlement)
                core.outbox.append(PositionUpdate(position=pos.view(account, ticker), ts_ms=now))
            m.open_interest = 0
            m.status = "settled"
            m.settled_ms = now
            core.touched[ticker] = None
            core.lifecycle(m, "settled", settled_ts_ms=now)
            return settlements
        finally:
            core.end()
