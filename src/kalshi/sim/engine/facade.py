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

from kalshi.sim.engine.api_keys import ApiKeyBook
from kalshi.sim.engine.block_trades import BlockTradeProposal, BlockTradesMixin
from kalshi.sim.engine.candles import QuoteTape
from kalshi.sim.engine.events import Event, FillEvent, TradeEvent
from kalshi.sim.engine.fcm import FcmBook
from kalshi.sim.engine.groups import GroupsMixin
from kalshi.sim.engine.historical import HistoricalCutoff
from kalshi.sim.engine.lifecycle import LifecycleMixin
from kalshi.sim.engine.multivariate import CollectionSpec, combo_specs
from kalshi.sim.engine.orders import OrdersMixin
from kalshi.sim.engine.rfq import RfqMixin
from kalshi.sim.engine.settings import SettingsBook
from kalshi.sim.engine.subaccounts import SubaccountBook, SubaccountTransfer, subaccount_account
from kalshi.sim.engine.types import (
    BalanceView,
    BookSnapshot,
    EngineError,
    EventSpec,
    MarketStatus,
    MarketView,
    MveLeg,
    OrderStatus,
    OrderView,
    PositionView,
    SettlementView,
    TickerState,
)

__all__ = ["Engine"]


class Engine(OrdersMixin, GroupsMixin, LifecycleMixin, BlockTradesMixin, RfqMixin):
    """A local Kalshi exchange without I/O.

    Args:
        clock_ms: returns the current time in epoch milliseconds; read once per call.
        seed: seeds the id generator (order, trade, fill, market, group, RFQ and quote ids).
        history_limit: if set, keep at most this many closed orders, and per account/market this many
            fills/trades (older ones are forgotten); None keeps everything.

    Mutating methods (each documents its ``Raises:``): accounts ``open_account``, ``deposit``;
    reference data ``add_event``, ``add_market``; lifecycle ``activate_market``, ``deactivate_market``,
    ``update_close_time``, ``close_market``, ``determine_market``, ``settle_market``; orders
    ``place_order``, ``amend_order``, ``decrease_order``, ``cancel_order``, ``cancel_all``; order groups
    ``create_order_group``, ``update_order_group_limit``, ``reset_order_group``, ``trigger_order_group``,
    ``delete_order_group``; RFQs ``create_rfq``, ``delete_rfq``, ``create_quote``, ``delete_quote``,
    ``accept_quote``, ``confirm_quote``; block trades ``propose_block_trade``, ``accept_block_trade``;
    subaccounts ``create_subaccount``, ``transfer_between_subaccounts``; combos
    ``create_multivariate_market``; time ``advance_time``.

    Composed books (each its own module): :attr:`quote_tape` (best bid/ask history, for candlesticks),
    :attr:`history` (the historical cutoff), :attr:`subaccounts`, :attr:`api_keys`, :attr:`fcm` (subtraders),
    :attr:`settings` (usage level, balance allocation, instance transfers).
    """

    def __init__(self, clock_ms: Callable[[], int], *, seed: int = 0, history_limit: int | None = None) -> None:
        super().__init__(clock_ms, seed=seed, history_limit=history_limit)
        self.quote_tape = QuoteTape(history_limit)
        self.history = HistoricalCutoff()
        self.subaccounts = SubaccountBook()
        self.api_keys = ApiKeyBook()
        self.fcm = FcmBook()
        self.settings = SettingsBook()
        self._collections: dict[str, CollectionSpec] = {}
        self._proposals: dict[str, BlockTradeProposal] = {}

    def _end(self) -> None:
        mark = len(self._outbox)
        super()._end()
        self.quote_tape.observe(self._outbox[mark:])  # the ticker events this call emitted

    # ------------------------------------------------------------------------------------ events & time

    def drain_events(self) -> list[Event]:
        """Every event since the last drain, in order; the outbox is emptied."""
        events, self._outbox = self._outbox, []
        return events

    def advance_time(self) -> None:
        """Read the clock and run what is due: order expiries, market openings and scheduled closes.

        Every mutating call does this first; a server calls it on a timer so expiries happen on time.
        """
        self._begin()
        self._end()

    @property
    def now_ms(self) -> int:
        """The clock reading of the latest engine call."""
        return self._now

    # ------------------------------------------------------------------------------------ markets

    def market(self, ticker: str) -> MarketView:
        """One market's current state.

        Raises:
            EngineError: ``market_not_found``.
        """
        return self._market(ticker).view()

    def markets(self, status: MarketStatus | None = None) -> list[MarketView]:
        """Every market (with ``status`` if given), in creation order."""
        return [m.view() for m in self._markets.values() if status is None or m.status == status]

    def trading_tickers(self) -> list[str]:
        """Tickers of the markets that take orders now (active and not paused), in creation order."""
        return [ticker for ticker, m in self._markets.items() if m.is_trading()]

    def event(self, event_ticker: str) -> EventSpec:
        """One event.

        Raises:
            EngineError: ``event_not_found``.
        """
        spec = self._event_specs.get(event_ticker)
        if spec is None:
            raise EngineError("event_not_found", f"no event {event_ticker!r}", status=404)
        return spec

    def events(self) -> list[EventSpec]:
        """Every event, in creation order."""
        return list(self._event_specs.values())

    def book_levels(self, ticker: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """``(yes_levels, no_levels)``: ``(price_ticks, count_units)`` best first; NO price = 10000 - ask.

        Raises:
            EngineError: ``market_not_found``.
        """
        return self._market(ticker).book.levels()

    def book_snapshot(self, ticker: str) -> BookSnapshot:
        """Both sides with the market's book ``clock``, for ``orderbook_snapshot`` and REST books.

        Raises:
            EngineError: ``market_not_found``.
        """
        m = self._market(ticker)
        yes, no = m.book.levels()
        return BookSnapshot(
            ticker=ticker, market_id=m.market_id, yes=tuple(yes), no=tuple(no), clock=m.clock, ts_ms=self._now
        )

    def ticker_state(self, ticker: str) -> TickerState:
        """Last price, best bid/ask and sizes, volume and open interest.

        Raises:
            EngineError: ``market_not_found``.
        """
        return self._ticker_state(self._market(ticker))

    def trades(self, ticker: str) -> list[TradeEvent]:
        """Trades of a market, oldest first.

        Raises:
            EngineError: ``market_not_found``.
        """
        return list(self._market(ticker).trades)

    # ------------------------------------------------------------------------------------ accounts

    def accounts(self) -> list[str]:
        """Every account id, in opening order."""
        return list(self._accounts)

    def communications_id(self, account: str) -> str:
        """The account's public (anonymized) id on the communications channel.

        Raises:
            EngineError: ``account_not_found``.
        """
        return self._account(account).communications_id

    def balance(self, account: str) -> BalanceView:
        """Cash, reserved collateral and portfolio value (positions at the last price).

        Raises:
            EngineError: ``account_not_found``.
        """
        return self._balance_view(self._account(account))

    def order(self, order_id: str) -> OrderView:
        """One order, any account.

        Raises:
            EngineError: ``order_not_found``.
        """
        order = self._orders.get(order_id)
        if order is None:
            raise EngineError("order_not_found", f"no order {order_id!r}", status=404)
        return order.view()

    def orders(self, account: str, status: OrderStatus | None = None, *, ticker: str | None = None) -> list[OrderView]:
        """An account's orders, oldest first, optionally filtered by status and market.

        Raises:
            EngineError: ``account_not_found``.
        """
        out = []
        for order_id in self._account(account).order_ids:
            order = self._orders[order_id]
            if (status is None or order.status == status) and (ticker is None or order.ticker == ticker):
                out.append(order.view())
        return out

    def queue_position(self, order_id: str) -> int:
        """Units resting ahead of an order at its price level.

        Raises:
            EngineError: ``order_not_found``, ``order_not_resting``.
        """
        order = self._orders.get(order_id)
        if order is None:
            raise EngineError("order_not_found", f"no order {order_id!r}", status=404)
        if not order.in_book:
            raise EngineError("order_not_resting", f"order {order_id} is {order.status}", status=409)
        return self._markets[order.ticker].book.queue_ahead(order)

    def fills(self, account: str, ticker: str | None = None) -> list[FillEvent]:
        """An account's fills, oldest first.

        Raises:
            EngineError: ``account_not_found``.
        """
        return [f for f in self._account(account).fills if ticker is None or f.ticker == ticker]

    def position(self, account: str, ticker: str) -> PositionView:
        """An account's position in one market (flat if it never traded there).

        Raises:
            EngineError: ``account_not_found``, ``market_not_found``.
        """
        acct = self._account(account)
        self._market(ticker)
        pos = acct.positions.get(ticker)
        if pos is None:
            return PositionView(account, ticker, 0, 0, 0, 0, 0, 0, 0, 0)
        return pos.view(account, ticker)

    def positions(self, account: str) -> list[PositionView]:
        """Positions in every market the account traded, in first-trade order.

        Raises:
            EngineError: ``account_not_found``.
        """
        return [pos.view(account, ticker) for ticker, pos in self._account(account).positions.items()]

    def settlements(self, account: str) -> list[SettlementView]:
        """An account's settlement payouts, oldest first.

        Raises:
            EngineError: ``account_not_found``.
        """
        return list(self._account(account).settlements)

    def order_group_ids(self) -> list[str]:
        """Every live order group id (all accounts)."""
        return list(self._groups)

    def new_id(self) -> str:
        """A fresh deterministic UUID-shaped id (for records the composed books keep)."""
        return self._ids.new()

    # ------------------------------------------------------------------------------------ subaccounts

    def create_subaccount(self, owner: str) -> int:
        """Open the owner's next subaccount (an empty engine account); returns its number.

        Raises:
            EngineError: ``account_not_found``, ``subaccount_limit_reached``.
        """
        self._account(owner)
        number = self.subaccounts.allocate(owner)
        self.open_account(subaccount_account(owner, number), 0)
        return number

    def transfer_between_subaccounts(
        self, owner: str, client_transfer_id: str, from_number: int, to_number: int, amount_cents: int
    ) -> SubaccountTransfer:
        """Move available cash between two of the owner's subaccounts (a retry with the same id is a no-op).

        Raises:
            EngineError: ``subaccount_not_found``, ``invalid_parameters`` (same subaccount, non-positive
                amount), ``insufficient_balance``.
        """
        previous = self.subaccounts.previous_transfer(owner, client_transfer_id)
        if previous is not None:
            return previous
        source = self.subaccounts.resolve(owner, from_number)
        target = self.subaccounts.resolve(owner, to_number)
        if source == target:
            raise EngineError("invalid_parameters", "from_subaccount and to_subaccount must differ")
        if amount_cents <= 0:
            raise EngineError("invalid_parameters", "amount_cents must be positive")
        micros = amount_cents * 10_000
        self.deposit(source, -micros)  # raises insufficient_balance before anything moves
        self.deposit(target, micros)
        transfer = SubaccountTransfer(
            self.new_id(), client_transfer_id, owner, from_number, to_number, amount_cents, self._now
        )
        self.subaccounts.record(transfer)
        return transfer

    # ------------------------------------------------------------------------------------ combos

    def multivariate_collections(self) -> list[CollectionSpec]:
        """Every collection: one per series of listed combo markets, plus those added explicitly."""
        singles = tuple(e.event_ticker for e in self._event_specs.values() if not e.is_multivariate)
        found: dict[str, CollectionSpec] = {}
        for m in self._markets.values():
            ticker = m.spec.mve_collection_ticker
            if ticker is None or ticker in found or ticker in self._collections:
                continue
            members = [x for x in self._markets.values() if x.spec.mve_collection_ticker == ticker]
            found[ticker] = CollectionSpec(
                collection_ticker=ticker,
                title=f"{ticker} combos",
                associated_event_tickers=singles,
                size_min=2,
                size_max=max(2, min(4, len(singles))),
                open_ms=min(x.created_ms for x in members),
                close_ms=max((x.close_ms or x.created_ms) for x in members),
            )
        return [*found.values(), *self._collections.values()]

    def add_collection(self, collection: CollectionSpec) -> None:
        """List a multivariate collection."""
        self._collections[collection.collection_ticker] = collection

    def create_multivariate_market(self, collection_ticker: str, legs: list[MveLeg]) -> MarketView:
        """The combo market of ``legs`` in a collection, listed (and activated) if new.

        Raises:
            EngineError: ``collection_not_found``, ``market_not_found`` (a leg), ``invalid_parameters``.
        """
        collection = next(
            (c for c in self.multivariate_collections() if c.collection_ticker == collection_ticker), None
        )
        if collection is None:
            raise EngineError("collection_not_found", f"no multivariate collection {collection_ticker!r}", status=404)
        leg_specs = [self._market(leg.market_ticker).spec for leg in legs]
        event, market = combo_specs(collection, legs, leg_specs, now_ms=self._now)
        if market.ticker in self._markets:
            return self.market(market.ticker)
        if event.event_ticker not in self._event_specs:
            self.add_event(event)
        return self.add_market(market)
