"""Live market data for paper and live runners: the streaming client's subscriptions merged into one queue.

:class:`MarketStream` subscribes a connected :class:`~kalshi.ws.KalshiWebSocket` session to the strategy's
markets (``orderbook_delta``, ``trade``, ``ticker``, ``market_lifecycle_v2``, and for live trading the private
``fill`` and ``user_orders``), forwards the session's lifecycle events (``session.lifecycle_events()``), and
funnels everything into one bounded queue that a single consumer drains, so strategy hooks never run
concurrently. A full queue blocks the forwarding tasks, and the client then applies TCP backpressure: nothing
is dropped. One kept task per subscription, all cancelled on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

from kalshi.strategy.book import Book
from kalshi.ws.client import KalshiWebSocket
from kalshi.ws.models import OrderbookDeltaMessage, OrderbookSnapshotMessage

__all__ = ["TIMER", "MarketStream", "apply_book_message"]

TIMER: Final = "timer"  # queue item tag of timer ticks
_DEFAULT_QUEUE: Final = 10_000


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
    ) -> None:
        self._session = session
        self._tickers = list(tickers)
        self._private = private
        self._timer = timer_interval
        self.queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue(maxsize)
        self._tasks: list[asyncio.Task[None]] = []
        self._subs: list[Any] = []
        self.forwarded = 0  # items put into the queue so far

    async def __aenter__(self) -> MarketStream:
        session = self._session
        lifecycle = session.lifecycle_events()
        self._spawn(self._forward(lifecycle), "lifecycle")
        if self._private:
            self._subs += [await session.subscribe_fill(), await session.subscribe_user_orders()]
        self._subs += [
            await session.subscribe_market_lifecycle(self._tickers),
            await session.subscribe_trade(self._tickers),
            await session.subscribe_ticker(self._tickers),
            await session.subscribe_orderbook_delta(self._tickers),
        ]
        for sub in self._subs:
            self._spawn(self._forward(sub), "subscription")
        if self._timer:
            self._spawn(self._tick(self._timer), "timer")
        return self

    async def __aexit__(self, *exc: object) -> None:
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
        return waiting

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"kalshi-strategy-{name}"))

    async def _forward(self, source: AsyncIterator[Any]) -> None:
        put = self.queue.put
        async for item in source:
            await put((time.time_ns(), item))
            self.forwarded += 1

    async def _tick(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval
        while True:
            await asyncio.sleep(max(next_at - loop.time(), 0.0))
            next_at += interval
            await self.queue.put((time.time_ns(), TIMER))
            self.forwarded += 1
