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

from kalshi.sim.engine.events import Event, FillEvent, TradeEvent
from kalshi.sim.engine.groups import GroupsMixin
from kalshi.sim.engine.lifecycle import LifecycleMixin
from kalshi.sim.engine.orders import OrdersMixin
from kalshi.sim.engine.rfq import RfqMixin
from kalshi.sim.engine.types import (
    BalanceView,
    BookSnapshot,
    EngineError,
    EventSpec,
    MarketStatus,
    MarketView,
    OrderStatus,
    OrderView,
    PositionView,
    SettlementView,
    TickerState,
)

__all__ = ["Engine"]


class Engine(OrdersMixin, GroupsMixin, LifecycleMixin, RfqMixin):
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
    ``accept_quote``, ``confirm_quote``; time ``advance_time``.
    """

    def __init__(self, clock_ms: Callable[[], int], *, seed: int = 0, history_limit: int | None = None) -> None:
        super().__init__(clock_ms, seed=seed, history_limit=history_limit)

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
