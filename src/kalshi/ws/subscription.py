"""Logical subscriptions: what the user holds while server sids come and go.

A :class:`Subscription` has a durable client id. Underneath it are one or more *chunks*, each one server
subscription (``sid``) over a slice of the markets, because the exchange caps markets per subscription (error 26).
On reconnect every chunk is re-issued and gets a new sid; the user's iterator never notices.
"""

from __future__ import annotations

import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from kalshi.models.markets import Orderbook
from kalshi.ws.backpressure import MessageQueue, OverflowStrategy
from kalshi.ws.models import message_market
from kalshi.ws.orderbook import OrderbookManager, OrderbookState

if TYPE_CHECKING:
    from kalshi.ws.client import KalshiWebSocket

__all__ = ["BooksView", "Chunk", "SubscribeRequest", "Subscription", "SubscriptionStats"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_SEQUENCED_DEFAULT_BLOCK: Final = frozenset(
    {"orderbook_delta", "order_group_updates", "trade", "market_lifecycle_v2", "multivariate_market_lifecycle"}
)
_CONFLATE_DEFAULT: Final = frozenset({"ticker"})


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


class Chunk:
    """One server subscription under a logical one: its markets and, while connected, its sid."""

    __slots__ = ("markets", "sid")

    def __init__(self, markets: list[str] | None) -> None:
        self.markets = markets  # None: the channel's whole feed (no market filter)
        self.sid: int | None = None

    def __repr__(self) -> str:
        count = "all" if self.markets is None else len(self.markets)
        return f"Chunk(sid={self.sid}, markets={count})"


class Subscription(Generic[T]):
    """A live subscription: an async iterator of messages that survives reconnects.

    Iterate it with ``async for``; it ends when the session closes or :meth:`unsubscribe` is called. It also
    edits its markets in place (``update_subscription``) and asks for fresh order book snapshots.
    """

    def __init__(
        self,
        client: KalshiWebSocket,
        client_id: int,
        channel: str,
        params: dict[str, Any],
        markets: list[str] | None,
        queue: MessageQueue[T],
        *,
        book_mode: str | None = None,
        keep_books: bool = False,
    ) -> None:
        self._client = client
        self.client_id = client_id
        self.channel = channel
        self.params = params
        self.queue = queue
        self.chunks: list[Chunk] = []
        self.initial_markets = markets
        self.stats = SubscriptionStats(queue)
        # "raw": yield snapshot/delta messages; "views": yield Orderbook views; None: not a book channel.
        self.book_mode = book_mode
        self.views = book_mode == "views"
        self.books: OrderbookManager | None = (
            OrderbookManager(yes_price_terms=bool(params.get("use_yes_price"))) if self.views or keep_books else None
        )
        # Raw subscriptions without books: markets whose deltas are held back until their next snapshot.
        self.stale: set[str] = set()
        self.plain = self.books is None  # no book to maintain: deltas may go straight to the queue
        self.active = False
        self.consumed = False  # set on first iteration: only a consumer that reads may pause the socket
        self.warned_unconsumed = False

    # ------------------------------------------------------------------ iteration

    def __aiter__(self) -> AsyncIterator[T]:
        # ``async for`` iterates the queue itself: one call less per message on the hot path.
        self.consumed = True
        if self.views:
            return self
        return self.queue

    def __anext__(self) -> Awaitable[T]:
        # A plain method handing out the queue's own coroutine: one coroutine per message, not two (hot path).
        # The queue ends the iteration with StopAsyncIteration once closed and drained.
        self.consumed = True
        if self.views:
            return self._next_view()
        return self.queue.__anext__()

    async def _next_view(self) -> T:
        # orderbook() queues the changed books themselves (conflated per market) and takes the immutable view
        # here, when the consumer asks: no view is built for an update that a later one supersedes. A book that
        # went stale meanwhile is skipped; its rebuilding snapshot queues it again.
        queue = self.queue
        while True:
            state: Any = await queue.__anext__()  # an OrderbookState (views subscriptions only)
            if state.has_snapshot:
                view: T = state.view()
                return view

    def __repr__(self) -> str:
        return (
            f"Subscription(id={self.client_id}, channel={self.channel!r}, markets={len(self.markets)}, "
            f"sids={self.sids}, queued={self.queue.qsize()})"
        )

    # ------------------------------------------------------------------ state

    @property
    def markets(self) -> list[str]:
        """Every market this subscription covers (empty when it takes the channel's whole feed)."""
        out: list[str] = []
        for chunk in self.chunks:
            if chunk.markets:
                out.extend(chunk.markets)
        return out

    @property
    def sids(self) -> list[int]:
        """The server sids currently serving this subscription (they change on reconnect)."""
        return [chunk.sid for chunk in self.chunks if chunk.sid is not None]

    @property
    def dropped(self) -> int:
        """Messages dropped by the overflow strategy (DROP_OLDEST) so far."""
        return self.queue.dropped

    @property
    def conflated(self) -> int:
        """Messages replaced by a newer one for the same market (CONFLATE) so far."""
        return self.queue.conflated

    def mark_stale(self, tickers: Iterable[str]) -> None:
        """These markets' state is unknown until their next snapshot: their books are hidden, and no delta of
        theirs is yielded before that snapshot (a consumer's own book would be corrupted)."""
        if self.books is not None:
            for ticker in tickers:
                self.books.mark_stale(ticker)
        else:
            self.stale.update(tickers)

    # ------------------------------------------------------------------ commands

    async def add_markets(self, tickers: Sequence[str]) -> None:
        """Add markets (``update_subscription`` ``add_markets``), splitting under the per-subscription limit.

        Raises:
            KalshiSubscriptionError: the subscription is closed, or the server refused.
        """
        await self._client._add_markets(self, list(tickers))

    async def remove_markets(self, tickers: Sequence[str]) -> None:
        """Remove markets (``update_subscription`` ``delete_markets``).

        Raises:
            KalshiSubscriptionError: the subscription is closed, or the server refused.
        """
        await self._client._remove_markets(self, list(tickers))

    async def request_snapshot(self, tickers: Sequence[str] | None = None) -> None:
        """Ask for fresh order book snapshots (``get_snapshot``) of some or all markets.

        Raises:
            KalshiSubscriptionError: not an orderbook_delta subscription, or the server refused.
        """
        await self._client._request_snapshot(self, None if tickers is None else list(tickers))

    async def unsubscribe(self) -> None:
        """End the subscription on the server; the iterator finishes after the queued messages.

        Raises:
            KalshiSubscriptionError: the server refused or did not answer (the subscription ends locally anyway).
        """
        await self._client._unsubscribe(self)


class SubscribeRequest(Generic[T]):
    """What ``subscribe_*`` returns: await it for the :class:`Subscription`, or iterate it directly.

    Both forms of seed 000 work: ``stream = await session.subscribe_ticker(...)`` and
    ``async for msg in session.subscribe_ticker(...)``.
    """

    __slots__ = ("_factory", "_subscription")

    def __init__(self, factory: Callable[[], Awaitable[Subscription[T]]]) -> None:
        self._factory: Callable[[], Awaitable[Subscription[T]]] | None = factory
        self._subscription: Subscription[T] | None = None

    async def _start(self) -> Subscription[T]:
        if self._subscription is None:
            factory = self._factory
            if factory is None:
                raise RuntimeError("subscription request already in progress")
            self._factory = None
            self._subscription = await factory()
        return self._subscription

    def __await__(self) -> Generator[Any, None, Subscription[T]]:
        return self._start().__await__()

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        subscription = await self._start()
        return await subscription.__anext__()


class BooksView(Mapping[str, Orderbook]):
    """Read-only live mapping ``ticker -> Orderbook`` over every book-keeping subscription (``session.books``).

    Only books with a current snapshot appear (a book being repaired after a gap is absent until rebuilt).
    """

    __slots__ = ("_subs",)

    def __init__(self, subs: Mapping[int, Subscription[Any]]) -> None:
        self._subs = subs

    def _ready(self) -> Iterator[tuple[str, OrderbookState]]:
        for sub in self._subs.values():
            if sub.books is not None:
                for ticker, state in sub.books.books.items():
                    if state.has_snapshot:
                        yield ticker, state

    def __getitem__(self, ticker: str) -> Orderbook:
        for sub in self._subs.values():
            books = sub.books
            if books is not None:
                state = books.get(ticker)
                if state is not None and state.has_snapshot:
                    return state.view()
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


def _view_market(view: Any) -> Hashable:
    try:
        ticker: Hashable = view.market_ticker
    except AttributeError:
        return market_key(view)
    return ticker


def market_key(message: Any) -> Hashable:
    """Conflation key: the market a message is about (messages without one never conflate together)."""
    ticker = message_market(message)
    if ticker is None:
        ticker = getattr(message, "market_ticker", None)  # Orderbook views
    return ticker if ticker is not None else id(message)


def new_queue(maxsize: int, overflow: OverflowStrategy, *, views: bool = False) -> MessageQueue[Any]:
    """A subscription's queue; CONFLATE keys by market (``views``: the queue holds Orderbook views)."""
    if maxsize < 1:
        raise ValueError("maxsize must be >= 1")
    key = (_view_market if views else _payload_market) if overflow is OverflowStrategy.CONFLATE else None
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


def default_overflow(channel: str) -> OverflowStrategy:
    if channel in _SEQUENCED_DEFAULT_BLOCK:
        return OverflowStrategy.BLOCK
    if channel in _CONFLATE_DEFAULT:
        return OverflowStrategy.CONFLATE
    return OverflowStrategy.DROP_OLDEST


_TYPE_TO_CHANNEL: Final = {
    "orderbook_snapshot": "orderbook_delta",
    "orderbook_delta": "orderbook_delta",
    "user_order": "user_orders",
    "market_position": "market_positions",
    "event_lifecycle": "market_lifecycle_v2",
    "event_fee_update": "market_lifecycle_v2",
    "multivariate_lookup": "multivariate",
    "rfq_created": "communications",
    "rfq_deleted": "communications",
    "quote_created": "communications",
    "quote_accepted": "communications",
    "quote_executed": "communications",
}


def channel_of(message: Any) -> str:
    kind: str = getattr(message, "type", "")
    return _TYPE_TO_CHANNEL.get(kind, kind)
