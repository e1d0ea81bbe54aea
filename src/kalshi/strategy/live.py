"""Live trading: the same strategy with real orders through the REST client, guarded by a kill switch.

:class:`LiveRunner` reads the market and the account's private channels from a connected, authenticated
streaming session (:class:`~kalshi.strategy.stream.MarketStream`), sends the strategy's orders over REST from
one kept worker task (in order, so an amend or cancel always follows the order it names), and feeds fills and
order updates from the ``fill``/``user_orders`` channels back to the strategy. A
:class:`~kalshi.portfolio.Portfolio` (its own REST snapshot and reconciliation after reconnects) seeds the
starting cash and positions and stays readable as :attr:`LiveRunner.portfolio`.

The :class:`~kalshi.strategy.killswitch.KillSwitch` is asked before every request and after every fill; when a
limit is hit, the context refuses new orders, queued requests are dropped and every resting order of the
account is cancelled (``DELETE /portfolio/events/orders``), then the runner keeps streaming so the strategy
sees the cancels arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import time
import uuid
from collections import deque
from decimal import Decimal
from typing import Any, Final, NamedTuple

from kalshi._fixed import format_count, format_price
from kalshi.errors import KalshiAPIError, KalshiError, KalshiNotFoundError
from kalshi.portfolio import Portfolio
from kalshi.rest import AsyncKalshiClient
from kalshi.strategy.base import Strategy, overridden_hooks
from kalshi.strategy.book import Book
from kalshi.strategy.cancel_everything import cancel_everything
from kalshi.strategy.context import Context
from kalshi.strategy.feed import SETTLING_EVENTS, fill_of, lifecycle_of, order_update_of, ticker_of, trade_of
from kalshi.strategy.killswitch import KillSwitch, KillSwitchLimits, book_marks
from kalshi.strategy.live_reconcile import MissedReports, rejected
from kalshi.strategy.stream import TIMER, FrameTap, MarketStream, apply_book_message
from kalshi.strategy.types import Fill, OrderState, OrderUpdate, StrategyError
from kalshi.ws.client import KalshiWebSocket
from kalshi.ws.disruptions import DisruptionTracker
from kalshi.ws.models import (
    FillMessage,
    MarketLifecycleMessage,
    OrderbookDeltaMessage,
    OrderbookSnapshotMessage,
    TickerMessage,
    TradeMessage,
    UserOrdersMessage,
)

__all__ = ["LiveRunner"]

logger = logging.getLogger(__name__)

_STP: Final = "taker_at_cross"
_MICROS: Final = Decimal(1_000_000)
_REQUEST_QUEUE: Final = 1_000
_CANCEL_ALL_WITHIN_S: Final = 10.0
_STOP_WAIT_S: Final = _CANCEL_ALL_WITHIN_S + 5.0  # the cancel-all's own deadline comes first
_RECONCILE_RETRY_S: Final = 1.0


class LiveRunner:
    """Runs a strategy against an exchange with real orders.

    Args:
        strategy: the strategy.
        session: a connected, authenticated streaming session (market data and private channels).
        rest: an authenticated REST client of the same exchange and account.
        limits: the kill switch limits.
        portfolio: a started Portfolio to read the starting cash and positions from (None: read the balance
            over REST and start flat).
        markets: the markets to trade (default: the strategy's ``markets``).
        id_prefix: prefix of client order ids (default: random per run, so ids never repeat across runs).
        tap: the session's :class:`~kalshi.strategy.stream.FrameTap`: handle messages in wire order (as a
            backtest of a recording of this session will).

    Raises:
        StrategyError: no markets to trade.
    """

    def __init__(
        self,
        strategy: Strategy,
        session: KalshiWebSocket,
        rest: AsyncKalshiClient,
        *,
        limits: KillSwitchLimits | None = None,
        portfolio: Portfolio | None = None,
        markets: tuple[str, ...] | None = None,
        id_prefix: str | None = None,
        tap: FrameTap | None = None,
    ) -> None:
        self.strategy = strategy
        self.markets = tuple(markets or strategy.markets)
        if not self.markets:
            raise StrategyError("live trading needs markets: give markets=... or set Strategy.markets")
        self._session = session
        self._tap = tap
        self._rest = rest
        self.portfolio = portfolio
        self.kill_switch = KillSwitch(limits or KillSwitchLimits())
        self._watch_loss = self.kill_switch.limits.max_loss_micros is not None
        self.books: dict[str, Book] = {}
        prefix = id_prefix if id_prefix is not None else f"k{uuid.uuid4().hex[:8]}-"
        self.ctx = Context(self, time.time_ns, self.books, cash=0, id_prefix=prefix, event_clock=self._event_number)
        self._hooks = overridden_hooks(strategy)
        self._requests: asyncio.Queue[tuple[int, OrderState, int, int]] = asyncio.Queue(_REQUEST_QUEUE)
        self._order_ids: dict[str, str] = {}
        self._stream: MarketStream | None = None
        self._worker: asyncio.Task[None] | None = None
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.round_trips: deque[float] = deque(maxlen=10_000)  # REST order round trips, seconds
        self.events = 0
        self.cancelled_all = False
        # Why the kill switch could not make sure nothing rests (orders may still rest), or None.
        self.cancel_all_failure: str | None = None
        # Fills and order changes the private channels lost (a reconnect, error 25) come back over REST.
        self.missed = MissedReports(rest, self.ctx)
        self._disruptions = DisruptionTracker()
        self._unknown: dict[str, str] = {}  # orders whose placing failed without a clear answer -> the failure
        self._reconcile_after = 0.0  # monotonic time before which a failed reconciliation is not retried
        self._retry_wake: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ OrderSink: the REST worker

    def place(self, order: OrderState) -> None:
        self._submit(0, order, 0, 0)

    def amend(self, order: OrderState, price: int, count: int) -> None:
        self._submit(1, order, price, count)

    def cancel(self, order: OrderState) -> None:
        self._submit(2, order, 0, 0)

    def _submit(self, op: int, order: OrderState, price: int, count: int) -> None:
        if self.kill_switch.on_request() is not None:
            self._trip()
            if op == 0:
                raise StrategyError(f"orders are blocked by the kill switch: {self.kill_switch.reason}")
            return
        try:
            self._requests.put_nowait((op, order, price, count))
        except asyncio.QueueFull:
            raise StrategyError(f"{_REQUEST_QUEUE} order requests are waiting for the exchange; slow down") from None
        self._inflight += 1
        self._idle.clear()

    @property
    def median_round_trip(self) -> float | None:
        """Median REST order round trip in seconds (None before the first order)."""
        return statistics.median(self.round_trips) if self.round_trips else None

    def caught_up(self) -> bool:
        """True when every item received so far was handled and every order request was answered."""
        stream = self._stream
        return stream is not None and stream.backlog() == 0 and self.events == stream.forwarded and self._idle.is_set()

    async def wait_idle(self) -> None:
        """Wait until every order request sent so far was answered."""
        await self._idle.wait()

    # ------------------------------------------------------------------ running

    async def run(self, *, stop: asyncio.Event | None = None, duration: float | None = None) -> None:
        """Trade until ``stop`` is set or ``duration`` seconds passed (or forever).

        Raises:
            KalshiError: subscribing, the starting balance or the session failed.
        """
        stop = stop or asyncio.Event()
        await self._seed()
        async with MarketStream(
            self._session, self.markets, private=True, timer_interval=self.strategy.timer_interval, tap=self._tap
        ) as stream:
            self._stream = stream
            for subscription in stream.private_subscriptions:
                self._disruptions.watch(subscription)
            self._worker = asyncio.create_task(self._work(), name="kalshi-live-orders")
            try:
                await self._hook("on_start", self.ctx)
                async with asyncio.timeout(duration):
                    waiter = asyncio.create_task(stop.wait())
                    try:
                        while True:
                            getter = asyncio.create_task(stream.get())
                            done, _ = await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
                            if getter not in done:
                                getter.cancel()
                                with contextlib.suppress(asyncio.CancelledError):
                                    await getter
                                break
                            await self.handle(*getter.result())
                    finally:
                        waiter.cancel()
            except TimeoutError:
                pass
            except StrategyError as exc:
                if self.ctx.blocked is None:
                    raise
                # The kill switch tripped and the strategy did not catch the refusal: the run is over, not broken.
                logger.error("the strategy stopped after the kill switch tripped: %s", exc)
            finally:
                with contextlib.suppress(KalshiError):
                    await self._hook("on_stop", self.ctx)
                if self._retry_wake is not None:
                    self._retry_wake.cancel()
                await self._stop_worker()

    async def _seed(self) -> None:
        if self.portfolio is not None and self.portfolio.balance is not None:
            cash = int(self.portfolio.balance * _MICROS)
            positions = {t: int(p.position * 100) for t, p in self.portfolio.positions.items() if p.position}
        else:
            balance = await self._rest.portfolio.get_balance()
            cash = int(Decimal(balance.balance_dollars) * _MICROS)
            positions = {}
        ledger = self.ctx.ledger
        ledger.start_cash = ledger.cash = cash
        ledger.positions.update(positions)

    async def handle(self, recv_ns: int, item: Any) -> None:
        """Process one item of the feed (market data, our fills and order updates, lifecycle, timer)."""
        self.events += 1
        strategy, ctx, hooks = self.strategy, self.ctx, self._hooks
        kind = type(item)
        if kind is OrderbookDeltaMessage or kind is OrderbookSnapshotMessage:
            book = apply_book_message(self.books, item, recv_ns)
            if book is not None and self._watch_loss and ctx.ledger.positions.get(book.ticker):
                self._check_limits()  # the mark moved under an open position
            if book is not None and "on_book" in hooks:
                await strategy.on_book(ctx, book)
        elif kind is FillMessage:
            fill = fill_of(item, recv_ns)
            if fill is not None and self.missed.first_sight(fill):
                await self._fill(fill)
        elif kind is UserOrdersMessage:
            await self._update(order_update_of(item, recv_ns))
        elif kind is OrderUpdate:  # a rejection from the REST worker
            await self._update(item)
        elif kind is _Refused:
            await self._refused(item)
        elif kind is TradeMessage:
            trade = trade_of(item, recv_ns)
            if trade is not None and "on_trade" in hooks:
                await strategy.on_trade(ctx, trade)
        elif kind is TickerMessage:
            if "on_ticker" in hooks:
                await strategy.on_ticker(ctx, ticker_of(item, recv_ns))
        elif kind is MarketLifecycleMessage:
            event = lifecycle_of(item, recv_ns)
            if event.event_type in SETTLING_EVENTS and event.settlement_value is not None:
                ctx.apply_settlement(event.ticker, event.settlement_value)
            await self._hook("on_lifecycle", ctx, event)
        elif item is _LOOK_UP:
            pass  # a wake-up for the reconciliation below
        elif item == TIMER:
            self._check_limits()
            await self._hook("on_timer", ctx, recv_ns)
        else:
            self._disruptions.observe(item)
            await self._hook("on_connection", ctx, item)
        if self._disruptions.due and time.monotonic() >= self._reconcile_after:
            await self._reconcile()

    async def _fill(self, fill: Fill) -> None:
        ctx = self.ctx
        ctx.apply_fill(fill)
        self._check_limits()
        if "on_fill" in self._hooks:
            await self.strategy.on_fill(ctx, fill)

    async def _update(self, update: OrderUpdate) -> None:
        if update.order_id:
            self._order_ids[update.client_order_id] = update.order_id
        self.ctx.apply_update(update)
        if "on_order_update" in self._hooks:
            await self.strategy.on_order_update(self.ctx, update)

    async def _refused(self, refused: _Refused) -> None:
        """An amend or cancel failed: report the order as it stands now, with the failure as the reason."""
        order = self.ctx.order(refused.client_order_id)
        if order is None or "on_order_update" not in self._hooks:
            return
        update = OrderUpdate(
            order.client_order_id,
            order.order_id,
            order.ticker,
            order.side,
            order.price,
            order.status,
            order.remaining,
            order.filled,
            refused.reason,
            time.time_ns(),
        )
        await self.strategy.on_order_update(self.ctx, update)

    def _wake_for_retry(self) -> None:
        self._retry_wake = None
        if self._stream is not None:
            self._stream.inject(_LOOK_UP)

    async def _reconcile(self) -> None:
        """The private channels flow again after a disruption: hand the strategy what they did not deliver."""
        unknown = dict(self._unknown)
        try:
            missed = await self.missed.fetch(self._order_ids, unknown)
        except KalshiError as exc:
            self._reconcile_after = time.monotonic() + _RECONCILE_RETRY_S
            # Retried at the first feed item after the pause; this one makes sure there is such an item.
            if self._retry_wake is None or self._retry_wake.cancelled():
                self._retry_wake = asyncio.get_running_loop().call_later(_RECONCILE_RETRY_S, self._wake_for_retry)
            logger.warning("reconciling the run's orders failed (%s); retrying", exc)
            return
        self._disruptions.reconciled()
        for cid in unknown:
            del self._unknown[cid]
        if missed:
            logger.info("recovered %d report(s) the private channels did not deliver", len(missed))
        for report in missed:
            if type(report) is Fill:
                await self._fill(report)
            else:
                await self._update(report)  # type: ignore[arg-type]  # the other kind

    def _event_number(self) -> int:
        return self.events

    def _check_limits(self) -> None:
        if self.kill_switch.check(self.ctx.ledger, book_marks(self.books)) is not None:
            self._trip()

    # ------------------------------------------------------------------ the kill switch

    def _trip(self) -> None:
        if self.ctx.blocked is not None:
            return
        reason = self.kill_switch.reason or "kill switch"
        logger.error("kill switch: %s; cancelling every resting order", reason)
        self.ctx.blocked = reason
        while not self._requests.empty():  # queued requests never reach the exchange
            self._requests.get_nowait()
            self._done_one()
        self._submit_cancel_all()

    def _submit_cancel_all(self) -> None:
        self._inflight += 1
        self._idle.clear()
        self._requests.put_nowait((3, _NO_ORDER, 0, 0))

    # ------------------------------------------------------------------ the REST worker

    async def _work(self) -> None:
        orders = self._rest.orders
        while True:
            op, order, price, count = await self._requests.get()
            started = time.monotonic()
            try:
                if op == 0:
                    created = await orders.create_order_v2(
                        ticker=order.ticker,
                        side=order.side,
                        count=format_count(order.count),
                        price=format_price(order.price),
                        time_in_force=order.time_in_force,
                        self_trade_prevention_type=_STP,
                        client_order_id=order.client_order_id,
                        post_only=order.post_only or None,
                    )
                    self._order_ids[order.client_order_id] = created.order_id
                    if order.order_id is None:
                        order.order_id = created.order_id
                elif op == 3:
                    failure = await cancel_everything(self._rest, within_s=_CANCEL_ALL_WITHIN_S)
                    self.cancelled_all = failure is None
                    self.cancel_all_failure = failure
                    if failure is not None:
                        logger.critical(
                            "the kill switch could not cancel every order, some may still rest: %s", failure
                        )
                else:
                    order_id = self._order_ids.get(order.client_order_id) or order.order_id
                    if order_id is None:
                        raise StrategyError(f"order {order.client_order_id} has no exchange id (it was rejected)")
                    if op == 1:
                        await orders.amend_order_v2(
                            order_id,
                            ticker=order.ticker,
                            side=order.side,
                            price=format_price(price),
                            count=format_count(count),
                        )
                    else:
                        await orders.cancel_order_v2(order_id)
                self.round_trips.append(time.monotonic() - started)
            except (KalshiAPIError, StrategyError) as exc:
                if op == 0 and isinstance(exc, KalshiAPIError) and _outcome_unknown(exc):
                    self._outcome_unknown(order, exc)
                else:
                    self._reject(op, order, exc)
            except KalshiError as exc:  # the exchange could not be reached: report, keep going
                logger.warning("order request failed: %s", exc)
                if op == 0:
                    self._outcome_unknown(order, exc)
                else:
                    self._reject(op, order, exc)
            finally:
                self._done_one()

    def _outcome_unknown(self, order: OrderState, exc: Exception) -> None:
        """Placing failed without saying whether the exchange has the order (its reply was lost, or a retry of
        it found the client order id taken): look it up before telling the strategy anything."""
        logger.warning("order %s: %s; looking it up on the exchange", order.client_order_id, exc)
        self._unknown[order.client_order_id] = str(exc)
        self._disruptions.request()
        if self._stream is not None and not self._stream.inject(_LOOK_UP):
            logger.error("order %s: the feed queue is full; it is looked up after the next item", order.client_order_id)

    def _reject(self, op: int, order: OrderState, exc: Exception) -> None:
        if op != 0 or self._stream is None:
            logger.warning("order %s: %s", order.client_order_id, exc)
            if self._stream is not None and not isinstance(exc, StrategyError | KalshiNotFoundError):
                # An amend or cancel that failed (a not-found cancel needs nothing: the order is done, its report
                # comes). Tell the strategy, or it waits for ever for a cancel that never happened; when the
                # exchange may have acted after all (a 5xx, a timeout), the order is also looked up.
                what = "amend" if op == 1 else "cancel"
                self._stream.inject(_Refused(order.client_order_id, f"{what} failed: {exc}"))
                if not isinstance(exc, KalshiAPIError) or exc.status >= 500:
                    self._disruptions.request()
            return
        update = rejected(order, str(exc), time.time_ns())
        if not self._stream.inject(update):
            logger.error("order %s rejected (%s) but the feed queue is full", order.client_order_id, exc)

    def _done_one(self) -> None:
        self._inflight -= 1
        if self._inflight <= 0:
            self._inflight = 0
            self._idle.set()

    async def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None and self.ctx.blocked is not None and not self.cancelled_all:
            # The kill switch's cancel-all is queued: it must reach the exchange before the worker stops.
            try:
                async with asyncio.timeout(_STOP_WAIT_S):
                    await self._idle.wait()
            except TimeoutError:
                self.cancel_all_failure = f"the cancel-all did not finish within {_STOP_WAIT_S:.0f} s"
                logger.critical("the kill switch's %s; orders may still rest", self.cancel_all_failure)
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._idle.set()

    async def _hook(self, name: str, *args: Any) -> None:
        if name in self._hooks:
            await getattr(self.strategy, name)(*args)


_LOOK_UP: Final = object()  # feed item: an order's fate is unknown, reconcile


class _Refused(NamedTuple):
    """Feed item: an amend or cancel of an order failed. The report is built when it is handled, from the order's
    state then: fills reported meanwhile must not be undone by a snapshot taken at the failure."""

    client_order_id: str
    reason: str


def _outcome_unknown(exc: KalshiAPIError) -> bool:
    """Whether a refused order request may still have been carried out: a server error (after the client's
    retries), or a retry that found its client order id already used (by the attempt whose reply was lost)."""
    return exc.status >= 500 or (exc.status == 409 and "duplicate" in (exc.code or ""))


_NO_ORDER: Final = OrderState("", "", "bid", 1, 1, "good_till_canceled", False)
