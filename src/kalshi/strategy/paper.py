"""Paper trading: a strategy on live market data, its orders filled by the backtest's model, none sent.

:class:`PaperRunner` takes a connected streaming session (production, demo, the simulator) or a relay's feed
(:class:`kalshi.relay.RelayFeed`: books from its checkpoints, see :mod:`kalshi.strategy.relay_books`) and
nothing else: it has no REST client and this module imports none, so no order can reach an exchange. The
strategy's orders go to a :class:`~kalshi.backtest.matching.SimulatedExchange` fed by the live book and
trades, the same queue-position model and fees as a backtest; the strategy sees the live book with its own
paper orders added, as the exchange's feed would show them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Mapping
from typing import Any

from kalshi.backtest.fees import FeeSchedule
from kalshi.backtest.market_rules import MarketRules
from kalshi.backtest.matching import AMEND, CANCEL, PLACE, CancelModel, SimulatedExchange
from kalshi.backtest.results import BacktestResult, ResultCollector
from kalshi.strategy.base import Strategy, book_version, overridden_hooks
from kalshi.strategy.book import Book
from kalshi.strategy.context import Context
from kalshi.strategy.feed import SETTLING_EVENTS, lifecycle_of, ticker_of, trade_of
from kalshi.strategy.killswitch import KillSwitch, KillSwitchLimits, book_marks
from kalshi.strategy.stream import TIMER, FrameTap, MarketStream
from kalshi.strategy.types import Fill, MarketLifecycle, OrderState, OrderUpdate, StrategyError
from kalshi.ws.client import KalshiWebSocket
from kalshi.ws.models import (
    MarketLifecycleMessage,
    OrderbookDeltaMessage,
    OrderbookSnapshotMessage,
    TickerMessage,
    TradeMessage,
)

__all__ = ["PaperRunner"]

logger = logging.getLogger(__name__)


class PaperRunner:
    """Runs a strategy on a live session with simulated fills.

    Args:
        strategy: the strategy (its ``markets`` are subscribed unless ``markets`` is given).
        session: a connected :class:`~kalshi.ws.KalshiWebSocket` session; no credentials are needed.
        markets: the markets to trade.
        cash_micros: starting paper cash.
        fees: the fee schedule.
        cancel_model: the queue model's cancel assumption (``"back"`` or ``"pro_rata"``).
        sample_interval_s: spacing of the timeline samples of the result.
        tap: the session's :class:`~kalshi.strategy.stream.FrameTap`: handle messages in wire order.
        order_latency_ms: strategy -> exchange delay of every order, amend and cancel, as in a backtest: an
            order sent at ``s`` reaches the simulated exchange at ``s + order_latency_ms`` and matches against
            the live book as it is then (after every message received before that instant). Times are the
            receive stamps of the feed (epoch ns), so orders and market data are ordered on one clock.
        limits: the kill switch of a live run (max position, max loss, max order rate), applied to the paper
            account the same way: when a limit is hit, new orders are refused and every open paper order is
            cancelled, so a strategy can be tried with the limits it will run under live.
        market_rules: the markets' price grids (:func:`kalshi.backtest.market_rules.rules_by_market` of
            :func:`kalshi.record.universe.market_price_ranges`): paper orders off a market's grid are refused as
            the exchange refuses them (``kalshi paper`` reads them from the exchange at start). Lifecycle messages
            carrying a new grid update them.

    Raises:
        StrategyError: no markets to trade.
        ValueError: a negative order latency.
    """

    def __init__(
        self,
        strategy: Strategy,
        session: KalshiWebSocket,
        *,
        markets: tuple[str, ...] | None = None,
        cash_micros: int = 100_000 * 1_000_000,
        fees: FeeSchedule | None = None,
        cancel_model: CancelModel = "back",
        sample_interval_s: float = 1.0,
        tap: FrameTap | None = None,
        order_latency_ms: float = 0.0,
        limits: KillSwitchLimits | None = None,
        market_rules: Mapping[str, MarketRules] | None = None,
    ) -> None:
        if order_latency_ms < 0:
            raise ValueError("order_latency_ms must be >= 0")
        self.strategy = strategy
        self._order_ns = int(order_latency_ms * 1_000_000)
        # Orders on their way to the simulated exchange: (arrival epoch ns, op, order, price, count).
        self._in_flight: deque[tuple[int, int, OrderState, int, int]] = deque()
        self._tap = tap
        self.markets = tuple(markets or strategy.markets)
        if not self.markets:
            raise StrategyError("paper trading needs markets: give markets=... or set Strategy.markets")
        self._session = session
        self.exchange = SimulatedExchange(
            self._on_report,
            time.time_ns,
            fees=fees,
            cancel_model=cancel_model,
            cash=cash_micros,
            on_own_delta=self._own_delta,
        )
        self.exchange.rules.update(market_rules or {})
        self.books: dict[str, Book] = {}
        self.ctx = Context(
            self, time.time_ns, self.books, cash=cash_micros, id_prefix="paper", event_clock=self._event_number
        )
        self.kill_switch = KillSwitch(limits or KillSwitchLimits())
        self._watch_loss = self.kill_switch.limits.max_loss_micros is not None
        self.collector = ResultCollector(self.exchange, sample_interval_s)
        self._hooks = overridden_hooks(strategy)
        self._watch = {"all": 0, "top": 1, "quotes": 2}[strategy.book_updates]
        self._reports: deque[tuple[str, Any]] = deque()
        self._settled: set[str] = set()
        self._stream: MarketStream | None = None
        self.events = 0

    # ------------------------------------------------------------------ OrderSink: the simulated exchange only

    def place(self, order: OrderState) -> None:
        if self._allowed(PLACE):
            self._send(PLACE, order, 0, 0)

    def amend(self, order: OrderState, price: int, count: int) -> None:
        if self._allowed(AMEND):
            self._send(AMEND, order, price, count)

    def cancel(self, order: OrderState) -> None:
        if self._allowed(CANCEL):
            self._send(CANCEL, order, 0, 0)

    def _send(self, op: int, order: OrderState, price: int, count: int) -> None:
        if self._order_ns:
            self._in_flight.append((time.time_ns() + self._order_ns, op, order, price, count))
        else:
            self.exchange.submit(op, order, price, count)

    def _allowed(self, op: int) -> bool:
        """Count one request against the kill switch's order rate; False (and trip) once it is hit."""
        if self.kill_switch.on_request() is None:
            return True
        self._trip()
        if op == PLACE:
            raise StrategyError(f"orders are blocked by the kill switch: {self.kill_switch.reason}")
        return False

    def _trip(self) -> None:
        """A limit was hit: refuse new orders and cancel every open paper order (as a live run does)."""
        ctx = self.ctx
        if ctx.blocked is not None:
            return
        ctx.blocked = self.kill_switch.reason or "kill switch"
        logger.error("kill switch: %s; cancelling every open paper order", ctx.blocked)
        for order in ctx.open_orders():
            self._send(CANCEL, order, 0, 0)

    def _check_limits(self) -> None:
        if self.kill_switch.check(self.ctx.ledger, book_marks(self.books)) is not None:
            self._trip()

    def _event_number(self) -> int:
        return self.events

    def caught_up(self) -> bool:
        """True when every item received so far was handled and no order is in flight (for checkpoints)."""
        stream = self._stream
        return stream is not None and stream.backlog() == 0 and self.events == stream.forwarded and not self._in_flight

    def in_flight(self) -> int:
        """Orders, amends and cancels sent but not yet at the simulated exchange (the order latency)."""
        return len(self._in_flight)

    def _arrive(self, now_ns: int) -> bool:
        """Hand the simulated exchange every request due by ``now_ns``; True if there was one."""
        flight, exchange = self._in_flight, self.exchange
        arrived = False
        while flight and flight[0][0] <= now_ns:
            _, op, order, price, count = flight.popleft()
            exchange.submit(op, order, price, count)
            arrived = True
        return arrived

    # ------------------------------------------------------------------ running

    async def run(self, *, stop: asyncio.Event | None = None, duration: float | None = None) -> BacktestResult:
        """Trade until ``stop`` is set or ``duration`` seconds passed (or forever); returns the paper results.

        Raises:
            KalshiError: subscribing failed or the session closed.
        """
        stop = stop or asyncio.Event()
        async with MarketStream(
            self._session, self.markets, timer_interval=self.strategy.timer_interval, tap=self._tap
        ) as stream:
            self._stream = stream
            try:
                await self._hook("on_start", self.ctx)
                await self._drain_reports()
                async with asyncio.timeout(duration):
                    await self._trade(stream, stop)
            except TimeoutError:
                pass
            except StrategyError as exc:
                self._stopped_by_kill_switch(exc)
            # on_stop, then what was sent before the stop still lands, as in a backtest.
            await self._unless_blocked(self._hook("on_stop", self.ctx))
            while self._reports or self._in_flight:
                if self._in_flight:
                    self._arrive(self._in_flight[-1][0])
                await self._unless_blocked(self._drain_reports())
        self.collector.sample(time.time_ns(), force=True)
        return self.collector.result(self.events, self.ctx)

    async def _trade(self, stream: MarketStream, stop: asyncio.Event) -> None:
        waiter = asyncio.create_task(stop.wait())
        getter: asyncio.Task[tuple[int, Any]] | None = None
        try:
            while not stop.is_set():
                if getter is None:
                    getter = asyncio.create_task(stream.get())
                wait = None
                if self._in_flight:  # wake when the next order reaches the exchange
                    wait = max(self._in_flight[0][0] - time.time_ns(), 0) / 1e9
                done, _ = await asyncio.wait({getter, waiter}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    recv_ns, item = getter.result()
                    getter = None
                    await self.handle(recv_ns, item)
                elif waiter in done:
                    break
                elif self._arrive(time.time_ns()):
                    await self._drain_reports()
        finally:
            waiter.cancel()
            if getter is not None:
                getter.cancel()

    def _stopped_by_kill_switch(self, exc: StrategyError) -> None:
        """A hook raised: re-raise, unless it is the refusal of an order after the kill switch tripped (a strategy
        that does not catch it has stopped trading, which is what the switch is for)."""
        if self.ctx.blocked is None:
            raise exc
        logger.error("the strategy stopped after the kill switch tripped: %s", exc)

    async def _unless_blocked(self, step: Awaitable[None]) -> None:
        try:
            await step
        except StrategyError as exc:
            self._stopped_by_kill_switch(exc)

    async def handle(self, recv_ns: int, item: Any) -> None:
        """Process one item of the live feed (a typed message, a lifecycle event or a timer tick)."""
        self.events += 1
        strategy, ctx, hooks, exchange = self.strategy, self.ctx, self._hooks, self.exchange
        if self._in_flight and self._arrive(recv_ns):
            await self._drain_reports()  # orders that reached the exchange before this message did
        kind = type(item)
        if kind is OrderbookDeltaMessage:
            m = item.msg
            on_yes, price, delta = m.side == "yes", m.price_ticks(), m.delta_units()
            exchange.delta(m.market_ticker, on_yes, price, delta, m.ts_ms)
            book = self.books.get(m.market_ticker)
            if book is not None:
                watch = self._watch
                before = book_version(book, watch)
                book.apply(on_yes, price, delta)
                book.ts_ns = recv_ns
                if self._watch_loss and ctx.ledger.positions.get(m.market_ticker):
                    self._check_limits()  # the mark moved under an open position
                if "on_book" in hooks and (not watch or book_version(book, watch) != before):
                    await strategy.on_book(ctx, book)
        elif kind is OrderbookSnapshotMessage:
            m2 = item.msg
            yes, no = m2.levels_ticks()
            exchange.snapshot(m2.market_ticker, yes, no)
            book = self.books.get(m2.market_ticker)
            if book is None:
                book = self.books[m2.market_ticker] = Book(m2.market_ticker)
            book.set_levels(yes, no, keep_own=False)
            for order in exchange.resting_in(m2.market_ticker):
                book.apply_own(order.on_yes, order.book_price, order.remaining)
            book.ts_ns = recv_ns
            if "on_book" in hooks:
                await strategy.on_book(ctx, book)
        elif kind is TradeMessage:
            trade = trade_of(item, recv_ns)
            if trade is not None:
                exchange.trade(trade.ticker, trade.price, trade.count, trade.taker_side == "yes", item.msg.ts_ms)
                if "on_trade" in hooks:
                    await strategy.on_trade(ctx, trade)
        elif kind is TickerMessage:
            if "on_ticker" in hooks:
                await strategy.on_ticker(ctx, ticker_of(item, recv_ns))
        elif kind is MarketLifecycleMessage:
            rules = MarketRules.from_wire(item.msg.price_ranges)
            if rules is not None:  # a new price grid: paper orders off it are refused from now on
                self.exchange.rules[item.msg.market_ticker] = rules
            await self._lifecycle(lifecycle_of(item, recv_ns))
        elif item == TIMER:
            self._check_limits()
            await self._hook("on_timer", ctx, recv_ns)
        elif "on_connection" in hooks:
            await strategy.on_connection(ctx, item)
        await self._drain_reports()
        self.collector.maybe_sample(recv_ns)

    async def _lifecycle(self, event: MarketLifecycle) -> None:
        value = event.settlement_value
        if event.event_type in SETTLING_EVENTS and value is not None and event.ticker not in self._settled:
            self._settled.add(event.ticker)
            self.exchange.settle(event.ticker, value)
            await self._drain_reports()
            self.ctx.apply_settlement(event.ticker, value)
        await self._hook("on_lifecycle", self.ctx, event)

    def _on_report(self, report: Fill | OrderUpdate) -> None:
        self._reports.append(("report", report))

    def _own_delta(self, ticker: str, on_yes: bool, price: int, delta: int) -> None:
        self._reports.append(("own", (ticker, on_yes, price, delta)))

    async def _drain_reports(self) -> None:
        """Deliver the simulated exchange's reports after the hook that caused them (never re-entrantly)."""
        strategy, ctx, hooks = self.strategy, self.ctx, self._hooks
        reports = self._reports
        while reports:
            kind, item = reports.popleft()
            if kind == "own":
                ticker, on_yes, price, delta = item
                book = self.books.get(ticker)
                if book is not None:
                    before = book_version(book, self._watch)
                    book.apply_own(on_yes, price, delta)
                    if "on_book" in hooks and (not self._watch or book_version(book, self._watch) != before):
                        await strategy.on_book(ctx, book)
            elif type(item) is Fill:
                ctx.apply_fill(item)
                self.collector.on_fill(item)
                self._check_limits()
                if "on_fill" in hooks:
                    await strategy.on_fill(ctx, item)
            else:
                ctx.apply_update(item)
                if "on_order_update" in hooks:
                    await strategy.on_order_update(ctx, item)

    async def _hook(self, name: str, *args: Any) -> None:
        if name in self._hooks:
            await getattr(self.strategy, name)(*args)
