"""The simulated Kalshi exchange: a sans-I/O, deterministic, exact matching engine.

:class:`Engine` holds markets (one YES book each, price-time priority, trades at the maker's price),
accounts (cash, netted positions, fees, resting-order collateral), order groups, RFQs and the market
lifecycle. It does no I/O and reads time only from the ``clock_ms`` callable it is given. Every state
change appends typed events (:mod:`kalshi.sim.engine.events`) to an outbox that the server drains with
:meth:`Engine.drain_events` and turns into WebSocket messages; REST handlers call the methods and the
read-only queries below. Errors are :class:`EngineError` with REST-shaped ``code``/``message``/``status``.

Units: prices are integer ticks of $0.0001 (YES price, 1..9999), counts integer units of 1/100
contract, money integer micro-dollars (one tick times one unit). See :mod:`kalshi.sim.engine.types`.

Determinism: ids come from ``random.Random(seed)``; the same seed, clock readings and calls give the
same ids and the same event sequence.

Example::

    engine = Engine(clock_ms=lambda: 1_700_000_000_000, seed=7)
    engine.add_market(MarketSpec(ticker="T-1", event_ticker="E", series_ticker="S", title="T"))
    engine.open_account("alice", 1_000 * MICROS_PER_DOLLAR)
    engine.open_account("bob", 1_000 * MICROS_PER_DOLLAR)
    engine.place_order("alice", "T-1", "bid", 5600, 1000)   # bid 10 YES at $0.56
    result = engine.place_order("bob", "T-1", "ask", 5500, 400)  # sells 4 at $0.56 (maker's price)
    events = engine.drain_events()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from kalshi.sim.engine.api_keys import ApiKeyBook
from kalshi.sim.engine.block_trades import BlockTradeDesk, BlockTradeProposal
from kalshi.sim.engine.candles import QuoteTape
from kalshi.sim.engine.core import EngineCore
from kalshi.sim.engine.events import Event, FillEvent, TradeEvent
from kalshi.sim.engine.fcm import FcmBook
from kalshi.sim.engine.groups import GroupDesk
from kalshi.sim.engine.historical import HistoricalCutoff
from kalshi.sim.engine.lifecycle import LifecycleDesk
from kalshi.sim.engine.multivariate import CollectionSpec, ComboDesk
from kalshi.sim.engine.off_book import OffBookDesk
from kalshi.sim.engine.orders import KEEP, AmendResult, CancelResult, Keep, OrderDesk, OrderResult
from kalshi.sim.engine.rfq import RfqDesk
from kalshi.sim.engine.settings import SettingsBook
from kalshi.sim.engine.subaccounts import SubaccountBook, SubaccountDesk, SubaccountTransfer
from kalshi.sim.engine.types import (
    BalanceView,
    BookSide,
    BookSnapshot,
    EngineError,
    EventSpec,
    MarketResult,
    MarketSpec,
    MarketStatus,
    MarketView,
    MveLeg,
    OrderGroupView,
    OrderStatus,
    OrderView,
    OutcomeSide,
    PositionView,
    QuoteView,
    RfqView,
    SelfTradePrevention,
    SettlementView,
    TickerState,
    TimeInForce,
)

__all__ = ["Engine"]


class Engine:
    """A local Kalshi exchange without I/O.

    Args:
        clock_ms: returns the current time in epoch milliseconds; read once per call.
        seed: seeds the id generator (order, trade, fill, market, group, RFQ and quote ids).
        history_limit: if set, keep at most this many closed orders, and per account/market this many
            fills/trades (older ones are forgotten); None keeps everything.

    Mutating methods: accounts ``open_account``, ``deposit``; reference data ``add_event``, ``add_market``;
    lifecycle ``activate_market``, ``deactivate_market``, ``update_close_time``, ``close_market``,
    ``determine_market``, ``settle_market``; orders ``place_order``, ``amend_order``, ``decrease_order``,
    ``cancel_order``, ``cancel_all``; order groups ``create_order_group``, ``update_order_group_limit``,
    ``reset_order_group``, ``trigger_order_group``, ``delete_order_group``; RFQs ``create_rfq``, ``delete_rfq``,
    ``create_quote``, ``delete_quote``, ``accept_quote``, ``confirm_quote``; block trades
    ``propose_block_trade``, ``accept_block_trade``; subaccounts ``create_subaccount``,
    ``transfer_between_subaccounts``; combos ``create_multivariate_market``; time ``advance_time``.

    The engine is composed, one collaborator per area, all sharing one :class:`EngineCore` (state, ids,
    clock, outbox): :attr:`order_desk` (:class:`OrderDesk`), :attr:`group_desk` (:class:`GroupDesk`),
    :attr:`lifecycle_desk` (:class:`LifecycleDesk`: accounts, events, markets), :attr:`rfq_desk`
    (:class:`RfqDesk`), :attr:`block_trade_desk` (:class:`BlockTradeDesk`), :attr:`off_book`
    (:class:`OffBookDesk`, executes quotes and block trades), :attr:`subaccount_desk` and :attr:`combo_desk`.
    The methods here forward to them; each desk method documents its ``Raises:`` in full.

    Composed books (each its own module): :attr:`quote_tape` (best bid/ask history, for candlesticks),
    :attr:`history` (the historical cutoff), :attr:`subaccounts`, :attr:`api_keys`, :attr:`fcm` (subtraders),
    :attr:`settings` (usage level, balance allocation, instance transfers).
    """

    def __init__(self, clock_ms: Callable[[], int], *, seed: int = 0, history_limit: int | None = None) -> None:
        self.quote_tape = QuoteTape(history_limit)
        self._core = core = EngineCore(
            clock_ms, seed=seed, history_limit=history_limit, on_tickers=self.quote_tape.observe
        )
        self.history = HistoricalCutoff()
        self.subaccounts = SubaccountBook()
        self.api_keys = ApiKeyBook()
        self.fcm = FcmBook()
        self.settings = SettingsBook()
        self.order_desk = OrderDesk(core)
        self.group_desk = GroupDesk(core)
        self.lifecycle_desk = LifecycleDesk(core)
        self.off_book = OffBookDesk(core)
        self.rfq_desk = RfqDesk(core, self.off_book)
        self.block_trade_desk = BlockTradeDesk(core, self.off_book)
        self.subaccount_desk = SubaccountDesk(core, self.lifecycle_desk, self.subaccounts)
        self.combo_desk = ComboDesk(core, self.lifecycle_desk)

    # ------------------------------------------------------------------------------------ events & time

    def drain_events(self) -> list[Event]:
        """Every event since the last drain, in order; the outbox is emptied."""
        events, self._core.outbox = self._core.outbox, []
        return events

    def advance_time(self) -> None:
        """Read the clock and run what is due: order expiries, market openings and scheduled closes.

        Every mutating call does this first; a server calls it on a timer so expiries happen on time.
        """
        self._core.begin()
        self._core.end()

    @property
    def now_ms(self) -> int:
        """The clock reading of the latest engine call."""
        return self._core.now

    # ------------------------------------------------------------------------------------ markets

    def market(self, ticker: str) -> MarketView:
        """One market's current state.

        Raises:
            EngineError: ``market_not_found``.
        """
        return self._core.market(ticker).view()

    def markets(self, status: MarketStatus | None = None) -> list[MarketView]:
        """Every market (with ``status`` if given), in creation order."""
        return [m.view() for m in self._core.markets.values() if status is None or m.status == status]

    def trading_tickers(self) -> list[str]:
        """Tickers of the markets that take orders now (active and not paused), in creation order."""
        return [ticker for ticker, m in self._core.markets.items() if m.is_trading()]

    def event(self, event_ticker: str) -> EventSpec:
        """One event.

        Raises:
            EngineError: ``event_not_found``.
        """
        spec = self._core.event_specs.get(event_ticker)
        if spec is None:
            raise EngineError("event_not_found", f"no event {event_ticker!r}", status=404)
        return spec

    def events(self) -> list[EventSpec]:
        """Every event, in creation order."""
        return list(self._core.event_specs.values())

    def book_levels(self, ticker: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """``(yes_levels, no_levels)``: ``(price_ticks, count_units)`` best first; NO price = 10000 - ask.

        Raises:
            EngineError: ``market_not_found``.
        """
        return self._core.market(ticker).book.levels()

    def book_snapshot(self, ticker: str) -> BookSnapshot:
        """Both sides with the market's book ``clock``, for ``orderbook_snapshot`` and REST books.

        Raises:
            EngineError: ``market_not_found``.
        """
        m = self._core.market(ticker)
        yes, no = m.book.levels()
        return BookSnapshot(
            ticker=ticker, market_id=m.market_id, yes=tuple(yes), no=tuple(no), clock=m.clock, ts_ms=self._core.now
        )

    def ticker_state(self, ticker: str) -> TickerState:
        """Last price, best bid/ask and sizes, volume and open interest.

        Raises:
            EngineError: ``market_not_found``.
        """
        return self._core.ticker_state(self._core.market(ticker))

    def trades(self, ticker: str) -> list[TradeEvent]:
        """Trades of a market, oldest first.

        Raises:
            EngineError: ``market_not_found``.
        """
        return list(self._core.market(ticker).trades)

    # ------------------------------------------------------------------------------------ accounts

    def accounts(self) -> list[str]:
        """Every account id, in opening order."""
        return list(self._core.accounts)

    def communications_id(self, account: str) -> str:
        """The account's public (anonymized) id on the communications channel.

        Raises:
            EngineError: ``account_not_found``.
        """
        return self._core.account(account).communications_id

    def balance(self, account: str) -> BalanceView:
        """Cash, reserved collateral and portfolio value (positions at the last price).

        Raises:
            EngineError: ``account_not_found``.
        """
        return self.lifecycle_desk.balance_view(self._core.account(account))

    def order(self, order_id: str) -> OrderView:
        """One order, any account.

        Raises:
            EngineError: ``order_not_found``.
        """
        order = self._core.orders.get(order_id)
        if order is None:
            raise EngineError("order_not_found", f"no order {order_id!r}", status=404)
        return order.view()

    def orders(self, account: str, status: OrderStatus | None = None, *, ticker: str | None = None) -> list[OrderView]:
        """An account's orders, oldest first, optionally filtered by status and market.

        Raises:
            EngineError: ``account_not_found``.
        """
        out = []
        for order_id in self._core.account(account).order_ids:
            order = self._core.orders[order_id]
            if (status is None or order.status == status) and (ticker is None or order.ticker == ticker):
                out.append(order.view())
        return out

    def queue_position(self, order_id: str) -> int:
        """Units resting ahead of an order at its price level.

        Raises:
            EngineError: ``order_not_found``, ``order_not_resting``.
        """
        order = self._core.orders.get(order_id)
        if order is None:
            raise EngineError("order_not_found", f"no order {order_id!r}", status=404)
        if not order.in_book:
            raise EngineError("order_not_resting", f"order {order_id} is {order.status}", status=409)
        return self._core.markets[order.ticker].book.queue_ahead(order)

    def fills(self, account: str, ticker: str | None = None) -> list[FillEvent]:
        """An account's fills, oldest first.

        Raises:
            EngineError: ``account_not_found``.
        """
        return [f for f in self._core.account(account).fills if ticker is None or f.ticker == ticker]

    def position(self, account: str, ticker: str) -> PositionView:
        """An account's position in one market (flat if it never traded there).

        Raises:
            EngineError: ``account_not_found``, ``market_not_found``.
        """
        acct = self._core.account(account)
        self._core.market(ticker)
        pos = acct.positions.get(ticker)
        if pos is None:
            return PositionView(account, ticker, 0, 0, 0, 0, 0, 0, 0, 0)
        return pos.view(account, ticker)

    def positions(self, account: str) -> list[PositionView]:
        """Positions in every market the account traded, in first-trade order.

        Raises:
            EngineError: ``account_not_found``.
        """
        return [pos.view(account, ticker) for ticker, pos in self._core.account(account).positions.items()]

    def settlements(self, account: str) -> list[SettlementView]:
        """An account's settlement payouts, oldest first.

        Raises:
            EngineError: ``account_not_found``.
        """
        return list(self._core.account(account).settlements)

    def order_group_ids(self) -> list[str]:
        """Every live order group id (all accounts)."""
        return list(self._core.groups)

    def new_id(self) -> str:
        """A fresh deterministic UUID-shaped id (for records the composed books keep)."""
        return self._core.ids.new()

    # ------------------------------------------------------------------------------------ subaccounts

    def create_subaccount(self, owner: str) -> int:
        """Open the owner's next subaccount (an empty engine account); returns its number."""
        return self.subaccount_desk.create_subaccount(owner)

    def transfer_between_subaccounts(
        self, owner: str, client_transfer_id: str, from_number: int, to_number: int, amount_cents: int
    ) -> SubaccountTransfer:
        """Move available cash between two of the owner's subaccounts (a retry with the same id is a no-op)."""
        return self.subaccount_desk.transfer_between_subaccounts(
            owner, client_transfer_id, from_number, to_number, amount_cents
        )

    # ------------------------------------------------------------------------------------ combos

    def multivariate_collections(self) -> list[CollectionSpec]:
        """Every collection: one per series of listed combo markets, plus those added explicitly."""
        return self.combo_desk.collections()

    def add_collection(self, collection: CollectionSpec) -> None:
        """List a multivariate collection."""
        self.combo_desk.add(collection)

    def create_multivariate_market(self, collection_ticker: str, legs: list[MveLeg]) -> MarketView:
        """The combo market of ``legs`` in a collection, listed (and activated) if new."""
        return self.combo_desk.create_market(collection_ticker, legs)

    # ------------------------------------------------------------------------------------ orders (OrderDesk)

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
        """Place a limit order on the single YES book and match it (price-time priority, maker's price)."""
        return self.order_desk.place_order(
            account,
            ticker,
            side,
            price_ticks,
            count_units,
            time_in_force=time_in_force,
            client_order_id=client_order_id,
            post_only=post_only,
            reduce_only=reduce_only,
            self_trade_prevention=self_trade_prevention,
            order_group_id=order_group_id,
            expiration_ms=expiration_ms,
            cancel_order_on_pause=cancel_order_on_pause,
        )

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
        """Change a resting order's price and/or total size (``count_units`` = filled + new remaining)."""
        return self.order_desk.amend_order(
            account,
            order_id,
            price_ticks=price_ticks,
            count_units=count_units,
            updated_client_order_id=updated_client_order_id,
            expiration_ms=expiration_ms,
        )

    def decrease_order(
        self, account: str, order_id: str, *, reduce_by: int | None = None, reduce_to: int | None = None
    ) -> OrderView:
        """Shrink a resting order, keeping its queue place; down to zero cancels it. Give exactly one size."""
        return self.order_desk.decrease_order(account, order_id, reduce_by=reduce_by, reduce_to=reduce_to)

    def cancel_order(self, account: str, order_id: str) -> CancelResult:
        """Cancel a resting order."""
        return self.order_desk.cancel_order(account, order_id)

    def cancel_all(self, account: str, ticker: str | None = None) -> list[CancelResult]:
        """Cancel every resting order of ``account`` (in one market if ``ticker`` is given)."""
        return self.order_desk.cancel_all(account, ticker)

    # ------------------------------------------------------------------------------------ order groups (GroupDesk)

    def create_order_group(self, account: str, contracts_limit_units: int) -> OrderGroupView:
        """Create an order group matching at most ``contracts_limit_units`` per rolling 15 s."""
        return self.group_desk.create_order_group(account, contracts_limit_units)

    def order_group(self, account: str, group_id: str) -> OrderGroupView:
        """One order group of ``account``."""
        return self.group_desk.order_group(account, group_id)

    def order_groups(self, account: str) -> list[OrderGroupView]:
        """Every order group of ``account``, oldest first."""
        return self.group_desk.order_groups(account)

    def update_order_group_limit(self, account: str, group_id: str, contracts_limit_units: int) -> OrderGroupView:
        """Change the limit; if the window already holds that much the group triggers at once."""
        return self.group_desk.update_order_group_limit(account, group_id, contracts_limit_units)

    def reset_order_group(self, account: str, group_id: str) -> OrderGroupView:
        """Zero the matched counter and accept orders again after a trigger."""
        return self.group_desk.reset_order_group(account, group_id)

    def trigger_order_group(self, account: str, group_id: str) -> OrderGroupView:
        """Trigger by hand: cancel the group's orders and refuse new ones until reset."""
        return self.group_desk.trigger_order_group(account, group_id)

    def delete_order_group(self, account: str, group_id: str) -> None:
        """Cancel the group's orders and delete it."""
        self.group_desk.delete_order_group(account, group_id)

    # ------------------------------------------------------------------------------------ lifecycle (LifecycleDesk)

    def open_account(self, account: str, balance_micros: int = 0) -> BalanceView:
        """Open an account with a starting cash balance in micro-dollars."""
        return self.lifecycle_desk.open_account(account, balance_micros)

    def deposit(self, account: str, amount_micros: int) -> BalanceView:
        """Add cash to an account (negative amounts withdraw available cash)."""
        return self.lifecycle_desk.deposit(account, amount_micros)

    def add_event(self, spec: EventSpec) -> None:
        """Register an event (emits ``EventLifecycleEvent``)."""
        self.lifecycle_desk.add_event(spec)

    def add_market(self, spec: MarketSpec) -> MarketView:
        """Register a market (emits ``created``; an unknown event is created from the spec first)."""
        return self.lifecycle_desk.add_market(spec)

    def activate_market(self, ticker: str) -> MarketView:
        """Open an initialized market now, or resume a paused one (emits ``activated``)."""
        return self.lifecycle_desk.activate_market(ticker)

    def deactivate_market(self, ticker: str) -> MarketView:
        """Pause trading (emits ``deactivated``); orders with ``cancel_order_on_pause`` are cancelled."""
        return self.lifecycle_desk.deactivate_market(ticker)

    def update_close_time(self, ticker: str, close_time_ms: int) -> MarketView:
        """Move the scheduled close (emits ``close_date_updated``); a past time closes the market now."""
        return self.lifecycle_desk.update_close_time(ticker, close_time_ms)

    def close_market(self, ticker: str) -> MarketView:
        """Close trading now and cancel resting orders; an early close emits ``close_date_updated``."""
        return self.lifecycle_desk.close_market(ticker)

    def determine_market(
        self, ticker: str, result: MarketResult, settlement_value_ticks: int | None = None
    ) -> MarketView:
        """Record the outcome (emits ``determined``), closing the market first if it still trades."""
        return self.lifecycle_desk.determine_market(ticker, result, settlement_value_ticks)

    def settle_market(self, ticker: str) -> list[SettlementView]:
        """Pay every position at the settlement value, flatten them, and emit ``settled``."""
        return self.lifecycle_desk.settle_market(ticker)

    # ------------------------------------------------------------------------------------ RFQs (RfqDesk)

    def create_rfq(
        self,
        account: str,
        ticker: str,
        *,
        contracts_units: int | None = None,
        target_cost_micros: int | None = None,
        rest_remainder: bool = False,
        replace_existing: bool = False,
    ) -> RfqView:
        """Ask for quotes on ``ticker`` for a size (``contracts_units``) or a budget (``target_cost_micros``)."""
        return self.rfq_desk.create_rfq(
            account,
            ticker,
            contracts_units=contracts_units,
            target_cost_micros=target_cost_micros,
            rest_remainder=rest_remainder,
            replace_existing=replace_existing,
        )

    def delete_rfq(self, account: str, rfq_id: str) -> RfqView:
        """Withdraw an open RFQ (its open quotes are cancelled)."""
        return self.rfq_desk.delete_rfq(account, rfq_id)

    def create_quote(
        self,
        account: str,
        rfq_id: str,
        *,
        yes_bid_ticks: int,
        no_bid_ticks: int,
        rest_remainder: bool = False,
    ) -> QuoteView:
        """Quote an open RFQ; 0 declines a side. Replaces this account's earlier quote on the RFQ."""
        return self.rfq_desk.create_quote(
            account, rfq_id, yes_bid_ticks=yes_bid_ticks, no_bid_ticks=no_bid_ticks, rest_remainder=rest_remainder
        )

    def delete_quote(self, account: str, quote_id: str) -> QuoteView:
        """Withdraw an open or accepted (not yet confirmed) quote."""
        return self.rfq_desk.delete_quote(account, quote_id)

    def accept_quote(self, account: str, quote_id: str, accepted_side: OutcomeSide) -> QuoteView:
        """The RFQ creator takes one side of a quote; the quoter must then confirm."""
        return self.rfq_desk.accept_quote(account, quote_id, accepted_side)

    def confirm_quote(self, account: str, quote_id: str) -> QuoteView:
        """The quoter confirms an accepted quote: it executes now as a block trade."""
        return self.rfq_desk.confirm_quote(account, quote_id)

    def rfq(self, rfq_id: str) -> RfqView:
        """One RFQ."""
        return self.rfq_desk.rfq(rfq_id)

    def rfqs(self, *, status: Literal["open", "closed"] | None = None, creator: str | None = None) -> list[RfqView]:
        """RFQs, oldest first, optionally filtered."""
        return self.rfq_desk.rfqs(status=status, creator=creator)

    def quote(self, quote_id: str) -> QuoteView:
        """One quote."""
        return self.rfq_desk.quote(quote_id)

    def quotes(self, *, account: str | None = None, rfq_id: str | None = None) -> list[QuoteView]:
        """Quotes, oldest first: those ``account`` made or received, and/or those on ``rfq_id``."""
        return self.rfq_desk.quotes(account=account, rfq_id=rfq_id)

    # ------------------------------------------------------------------------------------ block trades (BlockTradeDesk)

    def propose_block_trade(
        self,
        proposer: str,
        *,
        buyer: str,
        seller: str,
        ticker: str,
        price_ticks: int,
        count_units: int,
        maker_side: OutcomeSide,
        expiration_ms: int,
    ) -> BlockTradeProposal:
        """Propose a block trade; the proposer must be the buyer or the seller."""
        return self.block_trade_desk.propose_block_trade(
            proposer,
            buyer=buyer,
            seller=seller,
            ticker=ticker,
            price_ticks=price_ticks,
            count_units=count_units,
            maker_side=maker_side,
            expiration_ms=expiration_ms,
        )

    def accept_block_trade(self, account: str, proposal_id: str) -> BlockTradeProposal:
        """Accept a proposal as its buyer or seller; executes it once both sides accepted."""
        return self.block_trade_desk.accept_block_trade(account, proposal_id)

    def block_trade_proposals(self, account: str) -> list[BlockTradeProposal]:
        """The proposals ``account`` is party to, oldest first."""
        return self.block_trade_desk.block_trade_proposals(account)
