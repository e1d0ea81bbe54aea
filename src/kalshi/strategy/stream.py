"""Live market data for paper and live runners: the streaming client's feed in one queue, in wire order.

:class:`MarketStream` subscribes a connected :class:`~kalshi.ws.KalshiWebSocket` session to the strategy's
markets (``orderbook_delta``, ``trade``, ``ticker``, ``market_lifecycle_v2``, and for live trading the private
``fill`` and ``user_orders``), forwards the session's lifecycle events (``session.lifecycle_events()``), and
funnels everything into one bounded queue that a single consumer drains, so strategy hooks never run
concurrently. A full queue blocks the forwarding tasks, and the client then applies TCP backpressure: nothing
is dropped. One kept task per subscription, all cancelled on exit.

Each subscription has its own queue, so messages of different channels that arrived in one read would be
handed over grouped by channel. Give the session a :class:`FrameTap` (``KalshiWebSocket(on_raw_frame=tap)``,
optionally chained to a recorder) and the stream takes the messages from the tap instead, in exactly the order
the exchange sent them, the order a backtest of a recording replays them in; the subscriptions' own queues
are then only drained. Sequence numbers are checked as in a backtest (:class:`SequenceFilter`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Final

from kalshi.errors import KalshiProtocolError
from kalshi.strategy.book import Book
from kalshi.strategy.relay_books import RelayBookMessages
from kalshi.ws.client import KalshiWebSocket
from kalshi.ws.models import (
    FillMessage,
    MarketLifecycleMessage,
    OrderbookDeltaMessage,
    OrderbookSnapshotMessage,
    SubscribedMessage,
    TickerMessage,
    TradeMessage,
    UserOrdersMessage,
    decode_message,
)

__all__ = ["TIMER", "FrameTap", "MarketStream", "SequenceFilter", "apply_book_message"]

TIMER: Final = "timer"  # queue item tag of timer ticks
_DEFAULT_QUEUE: Final = 10_000
_TAP_HIGH: Final = 50_000  # frames waiting in a tap before the subscriptions stop being drained (backpressure)
_MARKET_TYPES: Final = (TradeMessage, TickerMessage, MarketLifecycleMessage)
_PRIVATE_TYPES: Final = (FillMessage, UserOrdersMessage)


class FrameTap:
    """Raw frames in wire order, for a :class:`MarketStream` (pass as ``KalshiWebSocket(on_raw_frame=tap)``).

    Args:
        then: another tap to call first with every frame (e.g. ``Recorder.add_frame``).
    """

    def __init__(self, then: Callable[[bytes, int], None] | None = None) -> None:
        self._then = then
        self.frames: deque[tuple[int, bytes]] = deque()
        self.active = False
        self.wake: asyncio.Event | None = None
        self.space: asyncio.Event | None = None  # set while the backlog is below the high-water mark

    def __call__(self, data: bytes, recv_ns: int) -> None:
        if self._then is not None:
            self._then(data, recv_ns)
        if self.active:
            self.frames.append((recv_ns, data))
            if self.wake is not None:
                self.wake.set()


class SequenceFilter:
    """Drops duplicate book messages and holds a subscription's books stale after a gap until their snapshots.

    Sans-I/O; fed every decoded message in wire order.
    """

    def __init__(self) -> None:
        self._seqs: dict[int, int] = {}
        self._sid_markets: dict[int, set[str]] = {}
        self.stale: set[str] = set()

    def subscribed(self, sid: int) -> None:
        """A (re)subscription assigned ``sid``: its numbering starts again."""
        self._seqs.pop(sid, None)

    def accept(self, message: OrderbookSnapshotMessage | OrderbookDeltaMessage) -> bool:
        """True if the message should be applied to the books."""
        ticker = message.msg.market_ticker
        sid, seq = message.sid, message.seq
        snapshot = isinstance(message, OrderbookSnapshotMessage)
        if seq is not None and sid is not None:
            markets = self._sid_markets.setdefault(sid, set())
            markets.add(ticker)
            last = self._seqs.get(sid)
            if last is not None and seq <= last:
                return False
            self._seqs[sid] = seq
            if last is not None and seq > last + 1:
                self.stale.update(markets)
        if snapshot:
            self.stale.discard(ticker)
            return True
        return ticker not in self.stale


def apply_book_message(books: dict[str, Book], message: Any, now_ns: int) -> Book | None:
    """Apply a snapshot or delta message to ``books``; returns the changed book (None for an unknown market)."""
    ticker = message.msg.market_ticker
    if isinstance(message, OrderbookSnapshotMessage):
        yes, no = message.msg.levels_ticks()
        book = books.get(ticker)
        if book is None:
            book = books[ticker] = Book(ticker)
        book.set_levels(yes, no)
    elif isinstance(message, OrderbookDeltaMessage):
        book = books.get(ticker)
        if book is None:
            return None
        m = message.msg
        # The exchange shows an order's client_order_id to its owner only: such a delta is our own order.
        apply = book.apply if m.client_order_id is None else book.apply_own
        apply(m.side == "yes", m.price_ticks(), m.delta_units())
    else:
        return None
    book.ts_ns = now_ns
    return book


class MarketStream:
    """The merged feed of one session. Use as ``async with MarketStream(session, tickers) as stream``.

    Args:
        session: a connected streaming session.
        tickers: the markets.
        tap: the session's :class:`FrameTap`: take messages from it, in wire order.
        private: also subscribe ``fill`` and ``user_orders`` (needs an authenticated session).
        timer_interval: seconds between timer items (None: no timer).
        maxsize: bound of the merged queue.
    """

    def __init__(
        self,
        session: KalshiWebSocket,
        tickers: Sequence[str],
        *,
        private: bool = False,
        timer_interval: float | None = None,
        maxsize: int = _DEFAULT_QUEUE,
        tap: FrameTap | None = None,
    ) -> None:
        self._session = session
        self._tap = tap
        self._wanted = set(tickers)
        self._filter = SequenceFilter()
        self._tap_busy = False
        self._tickers = list(tickers)
        self._private = private
        self._timer = timer_interval
        self.queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue(maxsize)
        self._tasks: list[asyncio.Task[None]] = []
        self._subs: list[Any] = []
        self.forwarded = 0  # items put into the queue so far
        self.private_subscriptions: tuple[int, ...] = ()  # client ids of the fill and user_orders subscriptions

    async def __aenter__(self) -> MarketStream:
        session = self._session
        lifecycle = session.lifecycle_events()
        self._spawn(self._forward(lifecycle), "lifecycle")
        tap = self._tap
        if tap is not None:
            tap.wake = asyncio.Event()
            tap.space = asyncio.Event()
            tap.space.set()
            tap.active = True
            self._spawn(self._from_tap(tap), "tap")
        if self._private:
            self._subs += [await session.subscribe_fill(), await session.subscribe_user_orders()]
            self.private_subscriptions = tuple(sub.client_id for sub in self._subs)
        if not hasattr(session, "subscribe_orderbook_delta"):  # a relay's feed: books from its checkpoints
            relayed: Any = session
            self._subs += [
                await relayed.subscribe("market_lifecycle_v2", self._tickers),
                await relayed.subscribe_trade(self._tickers),
                await relayed.subscribe_ticker(self._tickers),
                RelayBookMessages(await relayed.orderbook(self._tickers)),
            ]
        else:
            self._subs += [
                await session.subscribe_market_lifecycle(self._tickers),
                await session.subscribe_trade(self._tickers),
                await session.subscribe_ticker(self._tickers),
                await session.subscribe_orderbook_delta(self._tickers),
            ]
        for sub in self._subs:
            self._spawn(self._forward(sub) if tap is None else self._drain(sub, tap), "subscription")
        if self._timer:
            self._spawn(self._tick(self._timer), "timer")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._tap is not None:
            self._tap.active = False
            self._tap.frames.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def get(self) -> tuple[int, Any]:
        """The next ``(recv_ns, item)``: a typed message, a lifecycle event, or ``(TIMER, monotonic)``."""
        return await self.queue.get()

    def inject(self, item: Any) -> bool:
        """Queue an item of the runner's own (a REST rejection) behind what arrived; False if the queue is full."""
        try:
            self.queue.put_nowait((time.time_ns(), item))
        except asyncio.QueueFull:
            return False
        self.forwarded += 1
        return True

    def backlog(self) -> int:
        """Items waiting in the subscriptions' queues and in the merged queue."""
        waiting: int = self.queue.qsize() + sum(sub.queue.qsize() for sub in self._subs)
        if self._tap is not None:
            waiting += len(self._tap.frames) + self._tap_busy
        return waiting

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"kalshi-strategy-{name}"))

    async def _forward(self, source: AsyncIterator[Any]) -> None:
        put = self.queue.put
        async for item in source:
            await put((time.time_ns(), item))
            self.forwarded += 1

    async def _drain(self, source: AsyncIterator[Any], tap: FrameTap) -> None:
        """Empty a subscription whose messages the tap delivers; stop while the tap is far behind."""
        space = tap.space
        assert space is not None
        async for _ in source:
            if len(tap.frames) > _TAP_HIGH:
                space.clear()
                await space.wait()

    async def _from_tap(self, tap: FrameTap) -> None:
        wake, space = tap.wake, tap.space
        assert wake is not None and space is not None
        frames, put, wanted, filt = tap.frames, self.queue.put, self._wanted, self._filter
        private = self._private
        while True:
            await wake.wait()
            wake.clear()
            while frames:
                recv_ns, data = frames.popleft()
                if len(frames) < _TAP_HIGH // 2:
                    space.set()
                self._tap_busy = True
                try:
                    try:
                        message = decode_message(data)
                    except KalshiProtocolError:
                        continue
                    if isinstance(message, OrderbookSnapshotMessage | OrderbookDeltaMessage):
                        if message.msg.market_ticker not in wanted or not filt.accept(message):
                            continue
                    elif isinstance(message, _MARKET_TYPES):
                        if message.msg.market_ticker not in wanted:
                            continue
                    elif isinstance(message, _PRIVATE_TYPES):
                        if not private:
                            continue
                    elif isinstance(message, SubscribedMessage):
                        filt.subscribed(message.msg.sid)
                        continue
                    else:
                        continue
                    await put((recv_ns, message))
                    self.forwarded += 1
                finally:
                    self._tap_busy = False

    async def _tick(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval
        while True:
            await asyncio.sleep(max(next_at - loop.time(), 0.0))
            next_at += interval
            await self.queue.put((time.time_ns(), TIMER))
            self.forwarded += 1
