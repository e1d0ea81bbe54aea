"""Logical subscriptions: what the user holds while server sids come and go.

* :class:`Subscription`: the user's handle, an async iterator of messages that survives reconnects, with its
  edits (add/remove markets, snapshots, unsubscribe), its counters and :meth:`Subscription.batches`.
* :class:`SubscriptionState`: the client's record behind a handle (queue, server chunks, books), shared by the
  collaborators of :mod:`kalshi.ws.client`; users never need it.
* :class:`SubscribeRequest`: what ``subscribe_*()`` returns: a real coroutine (``await`` it, or hand it to
  ``asyncio.create_task``/``gather``/``wait_for``/``TaskGroup.create_task``) that is also async-iterable
  (``async for msg in session.subscribe_ticker(...)``).

A logical subscription has a durable client id. Underneath it are one or more *chunks*, each one server
subscription (``sid``) over a slice of the markets, because the exchange caps markets per subscription (error 26).
On reconnect every chunk is re-issued and gets a new sid; the user's iterator never notices.
"""

from __future__ import annotations

import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, Final, Generic, Protocol, TypeVar

from kalshi.models.markets import Orderbook
from kalshi.ws.backpressure import MessageQueue, OverflowStrategy
from kalshi.ws.models import message_market
from kalshi.ws.orderbook import OrderbookManager, OrderbookState

__all__ = [
    "BooksView",
    "Chunk",
    "SubscribeRequest",
    "Subscription",
    "SubscriptionEdits",
    "SubscriptionState",
    "SubscriptionStats",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_BLOCK: Final = OverflowStrategy.BLOCK


class SubscriptionStats:
    """What happened to one logical subscription; every figure is cumulative over reconnects."""

    __slots__ = ("_queue", "gaps", "repairs", "resubscribes", "stale_drops")

    _FIELDS: Final = ("delivered_frames", "gaps", "repairs", "resubscribes", "stale_drops")

    def __init__(self, queue: MessageQueue[Any]) -> None:
        self._queue = queue
        self.gaps = 0
        self.repairs = 0
        self.resubscribes = 0
        self.stale_drops = 0

    @property
    def delivered_frames(self) -> int:
        """Messages handed to the subscription's queue (consumed, pending, dropped or conflated)."""
        queue = self._queue
        return queue.delivered + queue.qsize() + queue.dropped + queue.conflated

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self._FIELDS}

    def __repr__(self) -> str:
        return f"SubscriptionStats({self.as_dict()})"


class Chunk:
    """One server subscription under a logical one: its markets and, while connected, its sid."""

    __slots__ = ("connection", "markets", "sid")

    def __init__(self, markets: list[str] | None) -> None:
        self.markets = markets  # None: the channel's whole feed (no market filter)
        self.sid: int | None = None
        self.connection = 0  # CommandChannel.connection_id of the connection that gave ``sid`` (0: none yet)

    def __repr__(self) -> str:
        count = "all" if self.markets is None else len(self.markets)
        return f"Chunk(sid={self.sid}, markets={count})"


class SubscriptionState:
    """The client's record of one logical subscription (internal: shared by router, books and editor).

    ``book_mode``: "raw" yields snapshot/delta messages, "views" yields Orderbook views, None: not a book channel.
    ``plain``: no book to maintain, so deltas may go straight to the queue. ``callbacks``: the channel's callback
    queue when ``@ws.on(channel)`` callbacks exist (messages are copied there too). ``tap_only``: its frames go
    only to the session's ``on_raw_frame`` tap (its queue is a :class:`~kalshi.ws.backpressure.DiscardQueue`).
    """

    __slots__ = (
        "active",
        "book_mode",
        "books",
        "callbacks",
        "channel",
        "chunks",
        "client_id",
        "consumed",
        "params",
        "plain",
        "queue",
        "stale",
        "stats",
        "tap_only",
        "views",
        "warned_unconsumed",
    )

    def __init__(
        self,
        client_id: int,
        channel: str,
        params: dict[str, Any],
        queue: MessageQueue[Any],
        *,
        book_mode: str | None = None,
        keep_books: bool = False,
        tap_only: bool = False,
    ) -> None:
        self.client_id = client_id
        self.channel = channel
        self.params = params
        self.queue = queue
        self.chunks: list[Chunk] = []
        self.stats = SubscriptionStats(queue)
        self.book_mode = book_mode
        self.views = book_mode == "views"
        self.books: OrderbookManager | None = (
            OrderbookManager(yes_price_terms=bool(params.get("use_yes_price"))) if self.views or keep_books else None
        )
        # Raw subscriptions without books: markets whose deltas are held back until their next snapshot.
        self.stale: set[str] = set()
        # tap_only: frames only reach the session's on_raw_frame tap (in-order data is not even decoded).
        self.tap_only = tap_only
        self.plain = self.books is None
        self.callbacks: MessageQueue[Any] | None = None
        self.active = False
        self.consumed = False  # set on first iteration: only a consumer that reads may pause the socket
        self.warned_unconsumed = False

    def __repr__(self) -> str:
        return f"SubscriptionState(id={self.client_id}, channel={self.channel!r}, chunks={self.chunks})"

    @property
    def markets(self) -> list[str]:
        out: list[str] = []
        for chunk in self.chunks:
            if chunk.markets:
                out.extend(chunk.markets)
        return out

    @property
    def sids(self) -> list[int]:
        return [chunk.sid for chunk in self.chunks if chunk.sid is not None]

    def mark_stale(self, tickers: Iterable[str]) -> None:
        """These markets' state is unknown until their next snapshot: their books are hidden, and no delta of
        theirs is yielded before that snapshot (a consumer's own book would be corrupted)."""
        if self.books is not None:
            for ticker in tickers:
                self.books.mark_stale(ticker)
        else:
            self.stale.update(tickers)

    def start_consuming(self) -> None:
        """The user iterates: a BLOCK queue that was shedding while nobody read blocks again."""
        if not self.consumed:
            self.consumed = True
            if self.warned_unconsumed and self.queue.overflow is not _BLOCK:
                self.queue.set_overflow(_BLOCK)


class SubscriptionEdits(Protocol):
    """What a :class:`Subscription` asks of the client (the client's subscription editor implements it)."""

    async def add_markets(self, state: SubscriptionState, tickers: list[str]) -> None: ...

    async def remove_markets(self, state: SubscriptionState, tickers: list[str]) -> None: ...

    async def request_snapshot(self, state: SubscriptionState, tickers: list[str] | None) -> None: ...

    async def unsubscribe(self, state: SubscriptionState) -> None: ...


class Subscription(Generic[T]):
    """A live subscription: an async iterator of messages that survives reconnects.

    Iterate it with ``async for`` (one message per step) or ``async for batch in sub.batches()`` (every message
    pending at that moment); it ends when the session closes or :meth:`unsubscribe` is called. It also edits its
    markets in place (``update_subscription``) and asks for fresh order book snapshots.
    """

    __slots__ = ("_edits", "_state", "channel", "client_id", "queue", "stats")

    def __init__(self, state: SubscriptionState, edits: SubscriptionEdits) -> None:
        self._state = state
        self._edits = edits
        self.client_id = state.client_id
        self.channel = state.channel
        self.queue: MessageQueue[Any] = state.queue
        """The bounded queue between the receive path and this iterator (``qsize()``, ``overflow``, counters)."""
        self.stats = state.stats

    # ------------------------------------------------------------------ iteration

    def __aiter__(self) -> AsyncIterator[T]:
        # ``async for`` iterates the queue itself: no extra call per message on the hot path.
        self._state.start_consuming()
        if self._state.views:
            return self
        return self.queue

    def __anext__(self) -> Awaitable[T]:
        # A plain method handing out the queue's own coroutine: one coroutine per message, not two (hot path).
        # The queue ends the iteration with StopAsyncIteration once closed and drained.
        state = self._state
        if not state.consumed:
            state.start_consuming()
        if state.views:
            return self._next_view()
        return self.queue.__anext__()

    async def _next_view(self) -> T:
        # orderbook() queues the changed books themselves (conflated per market) and takes the immutable view
        # here, when the consumer asks: no view is built for an update that a later one supersedes. A book that
        # went stale meanwhile is skipped; its rebuilding snapshot queues it again.
        queue = self.queue
        while True:
            book: Any = await queue.__anext__()  # an OrderbookState (views subscriptions only)
            if book.has_snapshot:
                view: T = book.view()
                return view

    def batches(self) -> AsyncIterator[list[T]]:
        """An async iterator of lists: each holds every message pending when it is taken (at least one).

        Same ordering and loss rules as one-by-one iteration, one wakeup per batch: for consumers that want the
        ceiling. Example::

            async for batch in stream.batches():
                for msg in batch:
                    ...
        """
        self._state.start_consuming()
        if self._state.views:
            return self._view_batches()
        return self.queue.batches()

    async def _view_batches(self) -> AsyncIterator[list[T]]:
        async for books in self.queue.batches():
            views: list[T] = [book.view() for book in books if book.has_snapshot]
            if views:
                yield views

    def __repr__(self) -> str:
        return (
            f"Subscription(id={self.client_id}, channel={self.channel!r}, markets={len(self.markets)}, "
            f"sids={self.sids}, queued={self.queue.qsize()})"
        )

    # ------------------------------------------------------------------ state

    @property
    def markets(self) -> list[str]:
        """Every market this subscription covers (empty when it takes the channel's whole feed)."""
        return self._state.markets

    @property
    def sids(self) -> list[int]:
        """The server sids currently serving this subscription (they change on reconnect)."""
        return self._state.sids

    @property
    def server_subscriptions(self) -> list[tuple[int | None, tuple[str, ...]]]:
        """``(sid, markets)`` of each server subscription underneath (split under the per-subscription limit)."""
        return [(chunk.sid, tuple(chunk.markets or ())) for chunk in self._state.chunks]

    @property
    def active(self) -> bool:
        """True from the server's confirmation until unsubscribed or the session closed."""
        return self._state.active

    @property
    def dropped(self) -> int:
        """Messages lost by the overflow strategy so far (evicted, refused, or arriving after close)."""
        return self.queue.dropped

    @property
    def conflated(self) -> int:
        """Messages replaced by a newer one for the same market (CONFLATE) so far."""
        return self.queue.conflated

    @property
    def books(self) -> Mapping[str, Orderbook]:
        """The books this subscription maintains (``orderbook()`` and ``keep_books=True``), by ticker; a book
        being repaired is absent until rebuilt."""
        return BooksView([self._state])

    # ------------------------------------------------------------------ commands

    async def add_markets(self, tickers: Sequence[str]) -> None:
        """Add markets (``update_subscription`` ``add_markets``), splitting under the per-subscription limit.

        Returns once the server confirmed them. Across reconnects: while the connection is down, or the
        reconnect's resubscribe has not yet resubscribed this subscription, the call waits for it (at most the
        client's command timeout) and then adds the markets to the new server subscriptions. If the connection
        drops while the command is in flight, the call goes on after the resubscribe the same way. Nothing is
        ever silently skipped: every later reconnect subscribes exactly the markets confirmed so far.

        Raises:
            KalshiSubscriptionError: the subscription is closed, the server refused, or the subscription was not
                resubscribed within the command timeout (nothing added; the message lists what it covers).
        """
        await self._edits.add_markets(self._state, list(tickers))

    async def remove_markets(self, tickers: Sequence[str]) -> None:
        """Remove markets (``update_subscription`` ``delete_markets``).

        Returns once no server subscription on the current connection carries them any more, and every later
        reconnect subscribes without them. Across reconnects: a server subscription that the connection lost
        (down, or not yet resubscribed by the reconnect) is narrowed locally, so the resubscribe leaves the
        markets out; one being subscribed right now is waited for (at most the client's command timeout) and
        then edited on the server. An edit whose command was in flight when the connection dropped is applied
        to the resubscribe the same way. Messages already queued are still delivered.

        Raises:
            KalshiSubscriptionError: the subscription is closed, the server refused, or a subscribe in flight
                did not end within the command timeout (the message lists what the subscription covers).
        """
        await self._edits.remove_markets(self._state, list(tickers))

    async def request_snapshot(self, tickers: Sequence[str] | None = None) -> None:
        """Ask for fresh order book snapshots (``get_snapshot``) of some or all markets.

        Raises:
            KalshiSubscriptionError: not an orderbook_delta subscription, or the server refused.
        """
        await self._edits.request_snapshot(self._state, None if tickers is None else list(tickers))

    async def unsubscribe(self) -> None:
        """End the subscription on the server; the iterator finishes after the queued messages.

        Raises:
            KalshiSubscriptionError: the server refused or did not answer (the subscription ends locally anyway).
        """
        await self._edits.unsubscribe(self._state)


class SubscribeRequest(Coroutine[Any, Any, Subscription[T]]):
    """What ``subscribe_*`` returns: a coroutine of the :class:`Subscription`, also iterable directly.

    All of these work::

        stream = await session.subscribe_ticker(tickers)
        task = asyncio.create_task(session.subscribe_ticker(tickers))      # also gather, wait_for, TaskGroup
        async for msg in session.subscribe_ticker(tickers): ...

    Iterating directly subscribes on the first step; every later step is the subscription's own, at no extra
    cost. A request is used once: await it or iterate it.
    """

    __slots__ = ("_coro", "_factory", "_subscription")

    def __init__(self, factory: Callable[[], Awaitable[Subscription[T]]]) -> None:
        self._factory: Callable[[], Awaitable[Subscription[T]]] | None = factory
        self._coro: Coroutine[Any, Any, Subscription[T]] | None = None
        self._subscription: Subscription[T] | None = None

    def __repr__(self) -> str:
        state = "done" if self._subscription is not None else "started" if self._coro is not None else "new"
        return f"SubscribeRequest({state})"

    async def _start(self) -> Subscription[T]:
        factory = self._factory
        if factory is None:
            raise RuntimeError("this subscribe request was already used; call subscribe_*() again")
        self._factory = None
        self._subscription = await factory()
        return self._subscription

    def _inner(self) -> Coroutine[Any, Any, Subscription[T]]:
        coro = self._coro
        if coro is None:
            coro = self._coro = self._start()
        elif self._subscription is not None:
            raise RuntimeError("this subscribe request was already used; call subscribe_*() again")
        return coro

    # -- the Coroutine protocol (asyncio drives a task with send/throw) --

    def __await__(self) -> Generator[Any, None, Subscription[T]]:
        return self._inner().__await__()

    def send(self, value: Any) -> Any:
        return self._inner().send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if val is None and tb is None:
            return self._inner().throw(typ)
        return self._inner().throw(typ, val, tb)  # pragma: no cover - legacy 3-argument form

    def close(self) -> None:
        if self._coro is not None:
            self._coro.close()
        self._factory = None

    # -- direct iteration --

    def __aiter__(self) -> SubscribeRequest[T]:
        return self

    def __anext__(self) -> Awaitable[T]:
        subscription = self._subscription
        if subscription is not None:
            return subscription.__anext__()
        return self._first()

    async def _first(self) -> T:
        subscription = self._subscription
        if subscription is None:
            subscription = await self._inner()
        return await subscription.__anext__()


class BooksView(Mapping[str, Orderbook]):
    """Read-only live mapping ``ticker -> Orderbook`` over book-keeping subscriptions (``session.books``).

    Only books with a current snapshot appear (a book being repaired after a gap is absent until rebuilt).
    """

    __slots__ = ("_states",)

    def __init__(self, states: Iterable[SubscriptionState]) -> None:
        self._states = states

    def _ready(self) -> Iterator[tuple[str, OrderbookState]]:
        for state in self._states:
            if state.books is not None:
                for ticker, book in state.books.books.items():
                    if book.has_snapshot:
                        yield ticker, book

    def __getitem__(self, ticker: str) -> Orderbook:
        for state in self._states:
            books = state.books
            if books is not None:
                book = books.get(ticker)
                if book is not None and book.has_snapshot:
                    return book.view()
        raise KeyError(ticker)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(ticker for ticker, _ in self._ready()))

    def __len__(self) -> int:
        return len({ticker for ticker, _ in self._ready()})

    def __repr__(self) -> str:
        return f"BooksView({len(self)} books)"


def _payload_market(message: Any) -> Hashable:
    """Conflation key of the usual channel messages (``msg.market_ticker``), fast; see :func:`market_key`."""
    try:
        ticker: Hashable = message.msg.market_ticker
    except AttributeError:
        return market_key(message)
    return ticker


def _book_market(book: Any) -> Hashable:
    try:
        ticker: Hashable = book.market_ticker
    except AttributeError:
        return market_key(book)
    return ticker


def market_key(message: Any) -> Hashable:
    """Conflation key: the market a message is about (messages without one never conflate together)."""
    ticker = message_market(message)
    if ticker is None:
        ticker = getattr(message, "market_ticker", None)  # order books
    return ticker if ticker is not None else id(message)


def new_queue(maxsize: int, overflow: OverflowStrategy, *, views: bool = False) -> MessageQueue[Any]:
    """A subscription's queue; CONFLATE keys by market (``views``: the queue holds order books).

    Raises:
        ValueError: ``maxsize`` < 1.
    """
    if maxsize < 1:
        raise ValueError("maxsize must be >= 1")
    key = (_book_market if views else _payload_market) if overflow is OverflowStrategy.CONFLATE else None
    return MessageQueue(maxsize=maxsize, overflow=overflow, conflate_key=key)


def take_markets(params: dict[str, Any]) -> list[str] | None:
    """Pull the market filter out of params (the chunks carry it); None means the whole feed."""
    markets: list[str] = []
    single = params.pop("market_ticker", None)
    if single:
        markets.append(single)
    many = params.pop("market_tickers", None)
    if many:
        markets.extend([many] if isinstance(many, str) else many)
    if not markets:
        return None
    return list(dict.fromkeys(markets))
