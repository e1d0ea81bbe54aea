"""The backtest loop: a recording replayed through the simulated exchange into a strategy, with latencies.

Timeline (the recording's receive time in epoch ns is the clock):

* a recorded message received at ``t`` changes the exchange (books, fills of resting orders) in recording order;
* the strategy sees it at ``t + data_latency`` (market data and its own order reports alike);
* an order the strategy sends at ``s`` reaches the exchange at ``s + order_latency`` and matches against the
  book as it is then: after every recorded message whose exchange time (its ``ts_ms``, aligned to the local
  clock by the smallest receive delay seen) is earlier, before the others. So an order a strategy sent on the
  first frame of a burst the exchange produced at once sees the whole burst, as it did live.

Everything due at the same instant runs in a fixed order (order arrivals, then deliveries, then timers, then
the next recorded message), so a run is deterministic for a given recording and options.

Without data latency the strategy's book is the simulated exchange's own book object (its own resting size is
added by the same deliveries as with latency), so each recorded delta updates one book; with data latency the
strategy keeps a book of its own that lags by it.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from kalshi.backtest.fees import FeeSchedule
from kalshi.backtest.market_rules import MarketRules, rules_by_market
from kalshi.backtest.matching import AMEND, CANCEL, PLACE, CancelModel, SimulatedExchange
from kalshi.backtest.replay import iter_frame_batches, recorded_price_ranges
from kalshi.backtest.results import BacktestResult, ResultCollector
from kalshi.backtest.wire import LEAN_DECODER, LEAN_TICKER, LeanDelta, LeanTrade
from kalshi.errors import KalshiError, KalshiProtocolError
from kalshi.record.reader import Recording
from kalshi.strategy.base import Strategy, book_version, overridden_hooks
from kalshi.strategy.book import Book
from kalshi.strategy.context import Context
from kalshi.strategy.feed import SETTLING_EVENTS, lifecycle_of, ticker_of, trade_of
from kalshi.strategy.types import Fill, MarketLifecycle, OrderState, OrderUpdate, StrategyError, Trade
from kalshi.ws.models import (
    MarketLifecycleMessage,
    OrderbookDeltaMessage,
    OrderbookSnapshotMessage,
    TickerMessage,
    TradeMessage,
    decode_message,
)
from kalshi.ws.models._numbers import COUNT_CACHE, DELTA_CACHE, PRICE_CACHE

__all__ = ["BacktestOptions", "BacktestRunner"]

_NS_PER_MS: Final = 1_000_000
_NEVER: Final = 1 << 62
DEFAULT_CASH_MICROS: Final = 100_000 * 1_000_000

# Delivery kinds (small ints: compared on the hot path).
# _BOOK and _OWN (book deltas: the common ones) come first, so "kind <= _OWN" picks them.
_BOOK, _OWN, _TRADE, _TICKER, _LIFE, _FILL, _UPDATE, _SNAP = range(8)
_WATCH: Final = {"all": 0, "top": 1, "quotes": 2}  # Strategy.book_updates on the hot path


@dataclass(frozen=True, slots=True)
class BacktestOptions:
    """How a backtest runs.

    Args:
        order_latency_ms: strategy -> exchange delay of every order, amend and cancel.
        data_latency_ms: exchange -> strategy delay of market data and order reports.
        fees: the fee schedule (Kalshi's general one by default: taker 700 bp, maker 0).
        cancel_model: ``"back"`` (cancels come from the back of the queue) or ``"pro_rata"``.
        cash_micros: starting cash.
        markets: replay only these markets (default: the strategy's ``markets``, else all).
        exclude_own: skip recorded deltas that carry a ``client_order_id`` (the recording account's own orders)
            as liquidity; the queue model still uses them to tell which trade volume was that account's.
        settlements: settlement value in ticks by ticker, for markets the recording does not settle.
        market_rules: price grids by ticker (:class:`~kalshi.backtest.market_rules.MarketRules`), for markets
            whose grid the recording does not carry; orders off a market's grid are refused as the exchange does.
            Recorded listings (``market_lifecycle_v2`` with ``price_ranges``) and the grids ``kalshi record``
            writes at the start of a session override these.
        sample_interval_s: spacing of the PnL/inventory timeline samples (fills are always sampled).

    Raises:
        ValueError: a negative latency or sample interval.
    """

    order_latency_ms: float = 0.0
    data_latency_ms: float = 0.0
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    cancel_model: CancelModel = "back"
    cash_micros: int = DEFAULT_CASH_MICROS
    markets: tuple[str, ...] | None = None
    exclude_own: bool = True
    settlements: Mapping[str, int] | None = None
    sample_interval_s: float = 1.0
    market_rules: Mapping[str, MarketRules] | None = None

    def __post_init__(self) -> None:
        if self.order_latency_ms < 0 or self.data_latency_ms < 0 or self.sample_interval_s <= 0:
            raise ValueError("latencies must be >= 0 ms and sample_interval_s > 0")


def _full_delta(frame: bytes | str) -> tuple[int, int] | None:
    """Price and delta of a delta frame in a legacy shape (cents, integer counts), or None if unusable."""
    try:
        message = decode_message(frame)
        if isinstance(message, OrderbookDeltaMessage):
            return message.msg.price_ticks(), message.msg.delta_units()
    except KalshiProtocolError:
        pass
    return None


def _full_trade(frame: bytes | str, ts_ns: int) -> Trade | None:
    """A trade frame in a legacy shape, or None if unusable."""
    try:
        message = decode_message(frame)
    except KalshiProtocolError:
        return None
    return trade_of(message, ts_ns) if isinstance(message, TradeMessage) else None


class BacktestRunner:
    """Runs one strategy over one recording (use :func:`kalshi.backtest.run`).

    Raises:
        RecordingError: the recording cannot be read.
    """

    def __init__(
        self, strategy: Strategy, recording: str | os.PathLike[str] | Recording, options: BacktestOptions
    ) -> None:
        self.strategy = strategy
        self.recording = recording if isinstance(recording, Recording) else Recording(recording)
        self.options = options
        self._now = 0
        self._order_ns = int(options.order_latency_ms * _NS_PER_MS)
        self._data_ns = int(options.data_latency_ms * _NS_PER_MS)
        self.exchange = SimulatedExchange(
            self._on_report,
            self._clock,
            fees=options.fees,
            cancel_model=options.cancel_model,
            cash=options.cash_micros,
            on_own_delta=self._own_delta,
        )
        self.exchange.rules.update(options.market_rules or {})
        self.exchange.rules.update(rules_by_market(recorded_price_ranges(self.recording)))
        # The strategy's books: the recorded book plus its own resting orders, as the exchange's feed shows it.
        self._books: dict[str, Book] = {}
        self.ctx = Context(self, self._clock, self._books, cash=options.cash_micros, id_prefix="bt")
        self._orders: deque[tuple[int, int, OrderState, int, int]] = deque()
        self._deliveries: deque[tuple[int, int, Any]] = deque()
        self._hooks = overridden_hooks(strategy)
        self._watch = 0
        self._on_book: Callable[[Context, Book], Awaitable[None]] | None = None
        self._settled: set[str] = set()
        self._ctx_settled: set[str] = set()
        self._stale: set[str] = set()
        self._timer_ns = 0
        self._next_timer = 0
        self._connection: tuple[str, int] | None = None
        self._seq_by_sid: dict[int | None, int] = {}
        self._sid_markets: dict[int | None, set[str]] = {}
        self.collector = ResultCollector(self.exchange, options.sample_interval_s)
        self.events = 0

    def _clock(self) -> int:
        return self._now

    # ------------------------------------------------------------------ OrderSink (the context calls these)

    def place(self, order: OrderState) -> None:
        self._orders.append((self._now + self._order_ns, PLACE, order, 0, 0))

    def amend(self, order: OrderState, price: int, count: int) -> None:
        self._orders.append((self._now + self._order_ns, AMEND, order, price, count))

    def cancel(self, order: OrderState) -> None:
        self._orders.append((self._now + self._order_ns, CANCEL, order, 0, 0))

    # ------------------------------------------------------------------ the loop

    async def run(self) -> BacktestResult:
        """Replay the whole recording; returns the results.

        Raises:
            RecordingError: the recording cannot be read.
            StrategyError: a hook raised (chained), with the replay time.
        """
        try:
            return await self._run()
        except StrategyError:
            raise
        except KalshiError:
            raise
        except Exception as exc:
            raise StrategyError(f"backtest stopped at t={self._now} ns (event {self.events}): {exc!r}") from exc

    async def _run(self) -> BacktestResult:
        strategy, ctx, hooks, exchange = self.strategy, self.ctx, self._hooks, self.exchange
        markets = self.options.markets or (tuple(strategy.markets) or None)
        wanted: Collection[str] | None = set(markets) if markets else None
        interval = strategy.timer_interval
        self._timer_ns = timer_ns = int(interval * 1e9) if interval else 0
        started = False
        data_ns = self._data_ns
        deliveries = self._deliveries
        orders = self._orders
        self._on_book = on_book = strategy.on_book if "on_book" in hooks else None
        self._watch = watch = _WATCH[strategy.book_updates]
        on_trade = strategy.on_trade if "on_trade" in hooks else None
        on_ticker = strategy.on_ticker if "on_ticker" in hooks else None
        exclude_own = self.options.exclude_own
        books = self._books
        stale = self._stale
        delta_of = exchange.delta
        collector = self.collector
        self._connection = None
        seqs = self._seq_by_sid
        lean_decode = LEAN_DECODER.decode
        prices, deltas, counts = PRICE_CACHE, DELTA_CACHE, COUNT_CACHE
        events = 0  # counted a batch at a time
        offset = _NEVER
        cur_session: str | None = None  # the connection of the last sequenced delta (cheap identity check)
        cur_conn = -1
        for batch in iter_frame_batches(self.recording, markets=wanted):
            events += len(batch.frame)
            for t, session, conn, frame in zip(batch.recv_ns, batch.session, batch.conn, batch.frame, strict=True):
                if not started:
                    started = True
                    self._now = t
                    self._next_timer = t + timer_ns
                    await self._hook("on_start", ctx)
                try:
                    lean: Any = lean_decode(frame)
                except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
                    lean = None  # legacy or odd shape: the full decoder below decides
                kind = type(lean)
                # Exchange time of the message: its ts_ms on the local clock (shifted by the smallest
                # receive delay seen, which absorbs clock offset), never after its receive time.
                xt = t
                if kind is LeanDelta or kind is LeanTrade:
                    m = lean.msg
                    ts_ms = m.ts_ms
                    if ts_ms is not None:
                        stamp = ts_ms * _NS_PER_MS
                        lag = t - stamp
                        if lag < offset:
                            offset = lag
                        elif lag > offset:
                            xt = stamp + offset
                if (
                    (orders and orders[0][0] <= xt)
                    or (deliveries and deliveries[0][0] <= t)
                    or (timer_ns and self._next_timer <= t)
                ):
                    await self._advance(t, xt)
                self._now = t
                if kind is LeanDelta:
                    ticker = m.market_ticker
                    price = prices.get(m.price_dollars)
                    delta = deltas.get(m.delta_fp)
                    if price is None or delta is None:
                        parsed = _full_delta(frame)
                        if parsed is None:
                            continue
                        price, delta = parsed
                    seq = lean.seq
                    if seq is not None:
                        if session is not cur_session or conn != cur_conn:
                            if self._connection != (session, conn):
                                self._new_connection(session, conn)
                            cur_session, cur_conn = session, conn
                        sid = lean.sid
                        last = seqs.get(sid)
                        if last is not None and seq != last + 1 and not self._check_seq(sid, seq, last, ticker):
                            continue
                        seqs[sid] = seq
                    if stale and ticker in stale:
                        continue
                    is_yes = m.side == "yes"
                    if exclude_own and m.client_order_id is not None:
                        # Not others' liquidity, but it tells the queue model which trade volume it was.
                        exchange.recorded_own_delta(ticker, is_yes, price, delta, ts_ms)
                        continue
                    if data_ns:
                        if delta_of(ticker, is_yes, price, delta, ts_ms) is None:
                            continue
                        deliveries.append((t + data_ns, _BOOK, (ticker, is_yes, price, delta)))
                    else:
                        # One book, shared by the exchange and the strategy's view: the exchange's change is it.
                        book = books.get(ticker)
                        if book is None:
                            continue  # no snapshot yet
                        if watch == 2:
                            before = book.quote_version
                            delta_of(ticker, is_yes, price, delta, ts_ms)
                            changed = book.quote_version != before
                        elif watch:
                            before = book.top_version
                            delta_of(ticker, is_yes, price, delta, ts_ms)
                            changed = book.top_version != before
                        else:
                            delta_of(ticker, is_yes, price, delta, ts_ms)
                            changed = True
                        book.ts_ns = t
                        if changed and on_book is not None:
                            await on_book(ctx, book)
                elif kind is LeanTrade:
                    price = prices.get(m.yes_price_dollars)
                    count = counts.get(m.count_fp)
                    taker = m.taker_outcome_side or m.taker_side
                    if price is None or count is None:
                        full = _full_trade(frame, t)
                        if full is None:
                            continue
                        price, count, taker = full.price, full.count, full.taker_side
                    ticker = m.market_ticker
                    if ticker in stale or (taker != "yes" and taker != "no"):
                        continue
                    exchange.trade(ticker, price, count, taker == "yes", ts_ms)
                    if data_ns:
                        # Without an on_trade hook an empty delivery keeps the instant (see tickers below).
                        trade = Trade(ticker, price, count, taker, t) if on_trade is not None else None
                        deliveries.append((t + data_ns, _TRADE, trade))
                    elif on_trade is not None:
                        await on_trade(ctx, Trade(ticker, price, count, taker, t))
                elif kind is LEAN_TICKER and on_ticker is None:
                    # Nobody reads tickers: not worth decoding. With data latency its delivery still happens
                    # (an empty one): a delivery is an instant at which orders due before it reach the exchange.
                    if data_ns:
                        deliveries.append((t + data_ns, _TICKER, None))
                else:
                    try:
                        message: Any = decode_message(frame)
                    except KalshiProtocolError:
                        continue
                    kind = type(message)
                    if kind is OrderbookSnapshotMessage:
                        ticker = message.msg.market_ticker
                        if message.seq is not None:
                            if self._connection != (session, conn):
                                self._new_connection(session, conn)
                            cur_session = None
                            last = seqs.get(message.sid)
                            if last is not None and message.seq <= last:
                                continue
                            seqs[message.sid] = message.seq
                            self._sid_markets.setdefault(message.sid, set()).add(ticker)
                        stale.discard(ticker)
                        yes, no = message.msg.levels_ticks()
                        exchange.snapshot(ticker, yes, no)
                        if data_ns:
                            deliveries.append((t + data_ns, _SNAP, (ticker, yes, no)))
                        else:
                            await self._deliver(_SNAP, (ticker, yes, no))
                    elif kind is OrderbookDeltaMessage or kind is TradeMessage:
                        continue  # a legacy frame the lean decoder could not read and _full_* rejected
                    elif kind is TickerMessage:
                        tick = ticker_of(message, t)
                        if data_ns:
                            deliveries.append((t + data_ns, _TICKER, tick))
                        elif on_ticker is not None:
                            await on_ticker(ctx, tick)
                    elif kind is MarketLifecycleMessage:
                        event = lifecycle_of(message, t)
                        rules = MarketRules.from_wire(message.msg.price_ranges)
                        if rules is not None:  # a listing or a new price grid: orders off it are refused
                            exchange.rules[event.ticker] = rules
                        self._exchange_lifecycle(event)
                        if data_ns:
                            deliveries.append((t + data_ns, _LIFE, event))
                        else:
                            await self._deliver_lifecycle(event)
                if deliveries and not data_ns:
                    await self._advance(t, xt)
                if t >= collector.next_sample_ns:
                    collector.sample(t)
        self.events = events
        # The recording is over: everything still in flight lands, then markets settle as told.
        if started:
            end = max(self._horizon(), self._now)
            await self._advance(end, end)
            for ticker, value in (self.options.settlements or {}).items():
                if ticker not in self._settled:
                    event = MarketLifecycle(ticker, "settled", None, value, self._now)
                    self._exchange_lifecycle(event)
                    await self._deliver_lifecycle(event)
            await self._hook("on_stop", ctx)
            end = max(self._horizon(), self._now)
            await self._advance(end, end)
        collector.sample(self._now, force=True)
        return collector.result(events, self.ctx)

    def _horizon(self) -> int:
        last = self._now
        if self._orders:
            last = max(last, self._orders[-1][0])
        if self._deliveries:
            last = max(last, self._deliveries[-1][0])
        return last + self._order_ns + self._data_ns

    async def _advance(self, t: int, xt: int) -> None:
        """Run what is due before the next recorded message (local time ``t``, exchange time ``xt``), in time
        order: deliveries and timers due by ``t``; order arrivals due by ``xt`` (the exchange has not yet
        done what the message reports) or before a due delivery or timer."""
        orders, deliveries, exchange = self._orders, self._deliveries, self.exchange
        never = _NEVER
        timer_ns = self._timer_ns
        books, on_book, watch, ctx = self._books, self._on_book, self._watch, self.ctx
        hooks, strategy = self._hooks, self.strategy
        on_fill = strategy.on_fill if "on_fill" in hooks else None
        on_update = strategy.on_order_update if "on_order_update" in hooks else None
        while True:
            next_delivery = deliveries[0][0] if deliveries else never
            next_timer = self._next_timer if timer_ns else never
            other = next_delivery if next_delivery <= next_timer else next_timer
            if other > t:
                other = never
            next_order = orders[0][0] if orders else never
            if next_order <= xt or next_order <= other < never:
                if next_order > self._now:
                    self._now = next_order
                _, op, state, price, count = orders.popleft()
                exchange.submit(op, state, price, count)
                self.collector.orders_sent += 1
            elif other == never:
                return
            elif next_delivery <= next_timer:
                if next_delivery > self._now:
                    self._now = next_delivery
                _, kind, item = deliveries.popleft()
                if kind <= _OWN:  # the common deliveries: inline
                    book = books.get(item[0])
                    if book is not None:
                        before = book.quote_version if watch == 2 else book.top_version if watch else 0
                        if kind == _OWN:
                            book.apply_own(item[1], item[2], item[3])
                        else:
                            book.apply(item[1], item[2], item[3])
                        book.ts_ns = self._now
                        if on_book is not None and (
                            not watch or (book.quote_version if watch == 2 else book.top_version) != before
                        ):
                            await on_book(ctx, book)
                elif kind == _UPDATE:  # the order reports, next most common: inline too
                    ctx.apply_update(item)
                    if on_update is not None:
                        await on_update(ctx, item)
                elif kind == _FILL:
                    ctx.apply_fill(item)
                    self.collector.on_fill(item)
                    if on_fill is not None:
                        await on_fill(ctx, item)
                else:
                    await self._deliver(kind, item)
            else:
                self._now = max(self._now, next_timer)
                self._next_timer += self._timer_ns
                await self._hook("on_timer", self.ctx, next_timer)

    async def _deliver(self, kind: int, item: Any) -> None:
        ctx, strategy, hooks = self.ctx, self.strategy, self._hooks
        if kind <= _OWN:  # by far the most common delivery: tested first
            ticker, is_yes, price, delta = item
            book = self._books.get(ticker)
            if book is None:
                return
            watch = self._watch
            before = book_version(book, watch) if watch else 0
            if kind == _OWN:
                book.apply_own(is_yes, price, delta)
            else:
                book.apply(is_yes, price, delta)
            book.ts_ns = self._now
            if "on_book" in hooks and (not watch or book_version(book, watch) != before):
                await strategy.on_book(ctx, book)
        elif kind == _FILL:
            ctx.apply_fill(item)
            self.collector.on_fill(item)
            if "on_fill" in hooks:
                await strategy.on_fill(ctx, item)
        elif kind == _UPDATE:
            ctx.apply_update(item)
            if "on_order_update" in hooks:
                await strategy.on_order_update(ctx, item)
        elif kind == _SNAP:
            ticker, yes, no = item
            book = self._books.get(ticker)
            if book is None:
                # Without data latency the strategy sees the exchange's own book (one book to update per delta);
                # with it, a book of its own that lags by the latency.
                shared = None if self._data_ns else self.exchange.book(ticker)
                book = self._books[ticker] = shared if shared is not None else Book(ticker)
            book.set_levels(yes, no, keep_own=False)
            for order in self.exchange.resting_in(ticker):
                book.apply_own(order.on_yes, order.book_price, order.remaining)
            book.ts_ns = self._now
            if "on_book" in hooks:
                await strategy.on_book(ctx, book)
        elif kind == _TRADE:
            if "on_trade" in hooks:
                await strategy.on_trade(ctx, item)
        elif kind == _TICKER:
            if "on_ticker" in hooks:
                await strategy.on_ticker(ctx, item)
        elif kind == _LIFE:
            await self._deliver_lifecycle(item)

    def _own_delta(self, ticker: str, on_yes: bool, price: int, delta: int) -> None:
        self._deliveries.append((self._now + self._data_ns, _OWN, (ticker, on_yes, price, delta)))

    def _on_report(self, report: Fill | OrderUpdate) -> None:
        kind = _FILL if type(report) is Fill else _UPDATE
        self._deliveries.append((self._now + self._data_ns, kind, report))

    def _exchange_lifecycle(self, event: MarketLifecycle) -> None:
        value = event.settlement_value
        if event.event_type in SETTLING_EVENTS and value is not None and event.ticker not in self._settled:
            self._settled.add(event.ticker)
            self.exchange.settle(event.ticker, value)
            self.collector.sample(self._now, force=True)

    async def _deliver_lifecycle(self, event: MarketLifecycle) -> None:
        if (
            event.event_type in SETTLING_EVENTS
            and event.settlement_value is not None
            and event.ticker not in self._ctx_settled
        ):
            self._ctx_settled.add(event.ticker)
            self.ctx.apply_settlement(event.ticker, event.settlement_value)
        if "on_lifecycle" in self._hooks:
            await self.strategy.on_lifecycle(self.ctx, event)

    def _new_connection(self, session: str, conn: int) -> None:
        # Sids and seqs restart with a connection: its books wait for their fresh snapshots.
        if self._connection is not None:
            self._stale.update(self.exchange.markets)
        self._connection = (session, conn)
        self._seq_by_sid.clear()
        self._sid_markets.clear()

    def _check_seq(self, sid: int | None, seq: int, last: int, ticker: str) -> bool:
        """A delta out of sequence: False for a duplicate; a gap makes the sid's books stale (lost numbers may
        have been deltas of any of its markets) until their snapshots."""
        if seq <= last:
            return False
        known = self._sid_markets.setdefault(sid, set())
        known.add(ticker)
        self._stale.update(known)
        self._seq_by_sid[sid] = seq
        return False

    async def _hook(self, name: str, *args: Any) -> None:
        if name in self._hooks:
            await getattr(self.strategy, name)(*args)
