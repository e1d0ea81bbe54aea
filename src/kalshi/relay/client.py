"""RelayClient: consume the relay's Redis Streams with the shape of a streaming session.

::

    async with RelayClient("redis://relay-host:6379/0").connect() as feed:
        await feed.orderbook(["ECON-GDP-25Q1"])          # exact books from the latest checkpoint on
        async for msg in feed.subscribe_trade():          # typed messages, as from KalshiWebSocket
            print(msg.msg.market_ticker, feed.books.get("ECON-GDP-25Q1"))

Two ways to share a stream:

* fan-out (default): every client reads every entry (``XREAD``); books need this.
* work sharing: ``RelayClient(url, group="writers", consumer="w1")`` reads through a Redis consumer group
  (``XREADGROUP``): each entry goes to one member of the group. An entry is acknowledged (``XACK``) once the
  iterator is asked for the next item after it (every iterator of the member that got it, when several did: see
  :mod:`kalshi.relay.acks`); entries a dead member took but never acknowledged are claimed
  by the others after ``claim_idle`` seconds (``XAUTOCLAIM``), and a member that restarts under the same name
  first gets its own pending entries again. Delivery is at least once.

Continuity is checked on every stream by the entry ids (see :mod:`kalshi.relay.layout`): entries trimmed away
before this client read them, or lost by Redis, are reported as a :class:`~kalshi.ws.lifecycle.Gap`
(``reason="trimmed"``, ``received`` = how many) and books are hidden until rebuilt. Redis going away is a
``Disconnected``; the client reconnects with backoff and resumes after the last entry it read. A consumer group
that vanished (Redis restarted without persistence, the stream or the group deleted) is made again and reported
as a ``Gap`` (``reason="trimmed"``, ``received=None``: see :mod:`kalshi.relay.group_recovery`). An entry typed
subscriptions cannot decode is skipped for them (raw ones still get it), logged and reported as a ``Gap``
(``reason="protocol_error"``); an unreadable checkpoint is logged and skipped (books wait for the next one); both
count in ``RelayFeed.protocol_errors``. Should reading fail otherwise, every subscription's iterator raises
:class:`~kalshi.errors.KalshiConnectionError` (and so does leaving ``connect()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from kalshi.errors import KalshiConnectionError, KalshiProtocolError, KalshiSubscriptionError
from kalshi.models.markets import Orderbook
from kalshi.relay.acks import GroupAcks
from kalshi.relay.books import BookBuilder
from kalshi.relay.control_entries import publish_control_entry
from kalshi.relay.feed_books import FeedBooks
from kalshi.relay.group_recovery import GroupRecovery
from kalshi.relay.layout import BOOK_CHANNEL, FIELD_FRAME, StreamLayout
from kalshi.relay.reads import StreamReads
from kalshi.relay.streams import StreamState, fields_of
from kalshi.relay.subscription import RelayEntry, RelayRequest, RelaySubscription, entries_of_read, entry_from_fields
from kalshi.ws.lifecycle import (
    Closed,
    Connected,
    Disconnected,
    Gap,
    LifecycleBus,
    LifecycleEvent,
    LifecycleListener,
    Reconnected,
)
from kalshi.ws.models import decode_message

__all__ = ["RelayClient", "RelayEntry", "RelayFeed", "RelaySubscription"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_RAW: Final = "*raw*"
_ANSWERS: Final = frozenset({"subscribed", "ok", "error", "unsubscribed"})  # command answers: not data
_MALFORMED: Final = object()  # an entry's frame that typed subscriptions cannot take


class RelayClient:
    """Where the relay is and how to read it.

    Args:
        redis_url: ``redis://host:port/db`` of the relay's Redis.
        prefix: the relay's key prefix.
        group: consumer group name for work sharing (None: fan-out).
        consumer: this member's name in ``group`` (stable across restarts to get its pending entries back).
        claim_idle: seconds an entry may stay unacknowledged by another member before this one claims it.
        start: where message channels start: ``"latest"`` (entries from now on) or ``"earliest"``.
        block_ms: longest wait of one read (new subscriptions start within this).
        batch: most entries per read. Reads of a few hundred entries are the cheapest per entry: larger ones keep
            more objects alive at once, and Python's garbage collector then costs more than the reads save.
        retry_max_delay: longest pause between reconnect attempts.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        prefix: str = "kalshi",
        group: str | None = None,
        consumer: str | None = None,
        claim_idle: float = 30.0,
        start: str = "latest",
        block_ms: int = 100,
        batch: int = 300,
        retry_max_delay: float = 2.0,
    ) -> None:
        if start not in ("latest", "earliest"):
            raise ValueError("start must be 'latest' or 'earliest'")
        if group is not None and not consumer:
            raise ValueError("a consumer group member needs a consumer name")
        self.redis_url = redis_url
        self.layout = StreamLayout(prefix)
        self.group = group
        self.consumer = consumer
        self.claim_idle = claim_idle
        self.start = start
        self.block_ms = block_ms
        self.batch = batch
        self.retry_max_delay = retry_max_delay

    def __repr__(self) -> str:
        return f"RelayClient({self.redis_url!r}, prefix={self.layout.prefix!r}, group={self.group!r})"

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[RelayFeed]:
        """Connect to Redis and read until the block exits.

        Raises:
            KalshiConnectionError: Redis cannot be reached.
        """
        redis = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=5.0)
        try:
            await redis.ping()
        except (RedisError, OSError) as exc:
            await redis.aclose()
            raise KalshiConnectionError(f"cannot reach the relay's Redis at {self.redis_url}: {exc}") from exc
        feed = RelayFeed(self, redis)
        feed._task = asyncio.create_task(feed._read_loop(), name="kalshi-relay-reader")
        try:
            yield feed
            if feed._task.done() and not feed._task.cancelled() and feed._task.exception() is not None:
                raise KalshiConnectionError(f"reading the relay failed: {feed._task.exception()!r}")
        finally:
            try:
                await feed._close()
            finally:
                await redis.aclose()


class RelayFeed:
    """A connected :class:`RelayClient` (made by :meth:`RelayClient.connect`)."""

    def __init__(self, client: RelayClient, redis: aioredis.Redis) -> None:
        self.client = client
        self.group = client.group
        self._redis: Any = redis  # redis-py's reply types are unions of every protocol shape: read as Any
        self._layout = client.layout
        self._streams: dict[str, StreamState] = {}
        self._bus = LifecycleBus()
        self._books = FeedBooks(redis, self._layout, self._publish)
        self._hooks: list[Callable[[LifecycleEvent], Awaitable[None]]] = []
        self._acks = GroupAcks()
        self._changed = asyncio.Event()
        self._streams_changed = asyncio.Event()
        self._hook_tasks: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._reads = StreamReads(client, self._acks)
        self._regroup = GroupRecovery(redis, client, self._reads, self._publish)
        self._closing = False
        self._rng = random.Random()
        self.entries_read = 0
        self.reads = 0
        """Reads from Redis so far (``entries_read / reads``: entries per read)."""
        self.gaps = 0
        self.missing_entries = 0
        self.reconnects = 0
        self.malformed_entries = 0
        """Entries typed subscriptions could not decode: each skipped, logged and reported as a ``Gap``
        (``reason="protocol_error"``)."""
        self._failure: BaseException | None = None
        self._ended = False

    # ------------------------------------------------------------------ public

    @property
    def books(self) -> Mapping[str, Orderbook]:
        """Exact books of :meth:`orderbook` markets (stale or unbuilt ones are absent)."""
        return self._books.books

    @property
    def builder(self) -> BookBuilder | None:
        """The book builder (its ``stats`` count snapshots, deltas, gaps and repairs)."""
        return self._books.builder

    @property
    def protocol_errors(self) -> int:
        """Entries and checkpoints that could not be used (malformed, or not a checkpoint): each logged and
        skipped (see :attr:`malformed_entries`)."""
        return self.malformed_entries + self._books.unreadable_checkpoints

    def position(self, channel: str) -> str | None:
        """The id of the last entry read from ``channel``'s stream."""
        state = self._streams.get(self._layout.stream(channel))
        return state.last if state is not None else None

    def lifecycle_events(self) -> LifecycleListener:
        """Every lifecycle event from now on (Gap, Repaired, Disconnected, Reconnected, ...), as an iterator."""
        return self._bus.listen()

    def on_lifecycle(self, callback: Callable[[LifecycleEvent], Awaitable[None]]) -> None:
        """Call ``async callback(event)`` for every lifecycle event."""
        self._hooks.append(callback)

    def subscribe(
        self, channel: str, tickers: Sequence[str] | None = None, *, maxsize: int = 1000
    ) -> RelayRequest[Any]:
        """Typed messages of any relayed channel (only ``tickers``' when given)."""

        async def start() -> RelaySubscription[Any]:
            sub: RelaySubscription[Any] = RelaySubscription(self, channel, tickers, maxsize)
            await self._attach(channel, sub)
            return sub

        return RelayRequest(start)

    def subscribe_ticker(self, tickers: Sequence[str] | None = None, *, maxsize: int = 1000) -> RelayRequest[Any]:
        """Ticker messages (all markets when ``tickers`` is None)."""
        return self.subscribe("ticker", tickers, maxsize=maxsize)

    def subscribe_trade(self, tickers: Sequence[str] | None = None, *, maxsize: int = 1000) -> RelayRequest[Any]:
        """Public trades (all markets when ``tickers`` is None)."""
        return self.subscribe("trade", tickers, maxsize=maxsize)

    def subscribe_raw(self, channels: Sequence[str], *, maxsize: int = 10_000) -> RelayRequest[RelayEntry]:
        """Every entry of ``channels``' streams as stored (frames and control entries): for recorders."""

        async def start() -> RelaySubscription[RelayEntry]:
            sub: RelaySubscription[RelayEntry] = RelaySubscription(self, _RAW, None, maxsize)
            for channel in channels:
                await self._attach(channel, sub)
            return sub

        return RelayRequest(start)

    def subscribe_raw_batches(self, channels: Sequence[str], *, maxsize: int = 2) -> RelayRequest[list[RelayEntry]]:
        """Like :meth:`subscribe_raw`, but each item is everything one read of a stream returned (up to
        ``RelayClient(batch=...)`` entries, in order): the fast path for consumers that process entries in bulk,
        such as a :class:`~kalshi.relay.BookBuilder` of their own. In a consumer group the whole batch is
        acknowledged once the iterator is asked for the next one. ``maxsize`` reads wait for the consumer (few:
        Redis holds the rest, and entries read ahead only cost memory and garbage-collector time)."""

        async def start() -> RelaySubscription[list[RelayEntry]]:
            sub: RelaySubscription[list[RelayEntry]] = RelaySubscription(self, _RAW, None, maxsize, batches=True)
            for channel in channels:
                await self._attach(channel, sub)
            return sub

        return RelayRequest(start)

    def orderbook(self, tickers: str | Sequence[str] | None = None) -> RelayRequest[Orderbook]:
        """Maintain exact books of ``tickers`` (None: every market) from the latest checkpoint on; iterate the
        result for a view of every book exact at the start (those of the checkpoint), then after every change
        (conflated per market). Books are in :attr:`books`. Other subscriptions of the book stream are not moved
        (each still gets every entry once): the books catch up with them on their own.

        Raises:
            KalshiSubscriptionError: in a consumer group (books need every entry: use fan-out).
        """
        names = None if tickers is None else ([tickers] if isinstance(tickers, str) else list(tickers))

        async def start() -> RelaySubscription[Orderbook]:
            if self.group is not None:
                raise KalshiSubscriptionError("books need every entry: use a fan-out RelayClient (no group)")
            sub: RelaySubscription[Orderbook] = RelaySubscription(self, BOOK_CHANNEL, names, 1, views=True)
            await self._books.start(names, lambda: self._stream(BOOK_CHANNEL), batch=self.client.batch)
            self._books.add(sub)  # its first views: the books exact already (from the checkpoint)
            return sub

        return RelayRequest(start)

    async def wait_for(self, condition: Callable[[], bool], *, within: float = 10.0) -> None:
        """Wait until ``condition()`` holds (checked after every batch read).

        Raises:
            TimeoutError: not within ``within`` seconds.
            KalshiConnectionError: reading the relay failed.
        """
        async with asyncio.timeout(within):
            while not condition():
                if self._failure is not None:
                    raise KalshiConnectionError(f"reading the relay failed: {self._failure!r}") from self._failure
                self._changed.clear()
                await self._changed.wait()

    # ------------------------------------------------------------------ setup

    async def _attach(self, channel: str, sub: RelaySubscription[Any]) -> None:
        (await self._stream(channel)).subs.append(sub)

    async def _stream(self, channel: str) -> StreamState:
        """``channel``'s stream, read from where ``start`` says the first time (later subscriptions join it)."""
        key = self._layout.stream(channel)
        state = self._streams.get(key)
        if state is None:
            start = await self._start_id(key)
            state = self._streams.get(key)  # made by another subscription meanwhile: join it
            if state is None:
                state = self._streams[key] = StreamState(key, channel, start)
                self._streams_changed.set()
        return state

    async def _start_id(self, key: str) -> str:
        if self.group is not None:
            with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists
                await self._redis.xgroup_create(
                    key, self.group, id="$" if self.client.start == "latest" else "0", mkstream=True
                )
            return "0"  # first this member's own pending entries, then new ones
        if self.client.start == "earliest":
            return "0-0"
        last = await self._redis.xrevrange(key, count=1)
        return last[0][0].decode() if last else "0-0"

    # ------------------------------------------------------------------ reading

    async def _read_loop(self) -> None:
        try:
            await self._read()
        except Exception as exc:
            self._fail(exc)
            raise

    async def _read(self) -> None:
        attempt = 0
        down = False
        self._publish(Connected(self.client.redis_url))
        while not self._closing:
            if not self._streams:
                self._streams_changed.clear()
                await self._streams_changed.wait()
                continue
            try:
                await self._flush_acks()
                await self._books.load_wanted()  # one whose load failed: before reading on
                if self.group is not None:
                    self.gaps += await self._regroup.restore(self._streams)
                    await self._claim()
                replies = await self._reads.read(self._streams, self.group)
                self.reads += 1
                if down:
                    down = False
                    self.reconnects += 1
                    self._publish(Reconnected(self.client.redis_url, attempt, 0.0))
                attempt = 0
                # A checkpoint's load failing here leaves the stream at the entry before it: read again.
                for key, entries in replies:
                    await self._dispatch(key.decode(), entries)
            except (RedisError, OSError) as exc:
                if self._closing or self._regroup.noticed(exc):  # NOGROUP: not Redis failing, restored next round
                    continue
                if not down:
                    down = True
                    self._publish(Disconnected(f"redis: {type(exc).__name__}: {exc}", None, True))
                attempt += 1
                cap = min(self.client.retry_max_delay, 0.02 * 2 ** min(attempt, 10))
                await asyncio.sleep(self._rng.uniform(0, cap))
                continue
            self._changed.set()

    async def _claim(self) -> None:
        assert self.group is not None
        for key in list(self._streams):
            entries, gone = await self._reads.claim(key, self.group)
            if gone:
                self._lost(key, gone)
            if entries:
                await self._dispatch(key, entries)

    def _lost(self, key: str, count: int) -> None:
        """``count`` entries of stream ``key`` pending in the group were trimmed or deleted before any member took
        them: a gap (they are out of the group now, acknowledged)."""
        state = self._streams.get(key)
        if state is None:
            return
        self.missing_entries += count
        self.gaps += 1
        self._publish(Gap(state.channel, None, None, count, (), "trimmed"))

    async def _dispatch(self, key: str, entries: list[Any]) -> None:
        """Hand out one read's entries of stream ``key``: ``(id, fields)`` with the fields as a dict (redis-py)
        or flat ``[name, value, ...]`` (hiredis); an entry without fields (a pending one of this group member,
        trimmed or deleted since) is acknowledged and reported as a gap."""
        state = self._streams.get(key)
        if state is None:
            return
        books = self._books if state.channel == BOOK_CHANNEL and self._books.builder is not None else None
        grouped = self.group is not None
        batch_subs = [sub for sub in state.subs if sub.batches]
        per_entry = len(batch_subs) < len(state.subs)
        if batch_subs and not (grouped or per_entry or books is not None) and state.follows_on(entries):
            await self._hand_over(state, entries, batch_subs)
            return
        collected: list[RelayEntry] = []
        try:
            gone = await self._dispatch_each(state, entries, books, batch_subs, per_entry, collected)
        except (RedisError, OSError):
            await self._hand_out(state, batch_subs, collected)  # what was read before the failed checkpoint load
            raise
        if gone:
            self._lost(state.key, gone)
        await self._hand_out(state, batch_subs, collected)

    async def _dispatch_each(
        self,
        state: StreamState,
        entries: list[Any],
        books: FeedBooks | None,
        batch_subs: list[RelaySubscription[Any]],
        per_entry: bool,
        collected: list[RelayEntry],
    ) -> int:
        """:meth:`_dispatch` entry by entry, collecting the entries of batch subscriptions; returns how many
        were gone. A checkpoint the books ask for is loaded after the entry asking for it was handed out, so a
        failing load leaves the stream at that entry (the next read goes on after it)."""
        grouped = self.group is not None
        channel = state.channel
        book_stream = books is None and channel == BOOK_CHANNEL
        gone = 0
        for raw_id, stored in entries:
            if book_stream and self._books.builder is not None:
                books = self._books  # orderbook() caught up while this read was handed out: the rest is theirs
                book_stream = False
            if stored is None:
                if grouped:  # acknowledged, or it stays pending (and read again) for ever
                    self._ack(state.key, raw_id.decode())
                    gone += 1
                continue
            fields = fields_of(stored)
            entry_id = raw_id.decode()
            self.entries_read += 1
            if not grouped and (hole := state.advance(entry_id)) is not None:
                self.missing_entries += hole[1] - hole[0]
                self.gaps += 1
                if books is None:  # the book builder reports its own, with the markets it hid
                    self._publish(Gap(state.channel, None, hole[0], hole[1], (), "trimmed"))
            if books is not None:
                books.apply(entry_id, fields)
            if batch_subs:
                collected.append(entry_from_fields(channel, entry_id, fields))
            if per_entry:
                await self._deliver(state, entry_id, fields, len(batch_subs))
            else:
                if grouped and len(batch_subs) > 1:
                    self._acks.share(state.key, entry_id, len(batch_subs))
                if FIELD_FRAME not in fields:
                    publish_control_entry(state.channel, fields, self._publish)
            if books is not None:
                await books.load_wanted()
        return gone

    async def _hand_out(
        self, state: StreamState, batch_subs: list[RelaySubscription[Any]], collected: list[RelayEntry]
    ) -> None:
        if collected:  # one hand-over per read, not one queue put per entry
            ids = [entry.id for entry in collected] if self.group is not None else collected[-1].id
            for sub in batch_subs:
                await sub.queue.put((collected, state.key, ids))

    async def _hand_over(self, state: StreamState, entries: list[Any], subs: list[RelaySubscription[Any]]) -> None:
        """A fan-out read for batch subscriptions only, continuity already checked: the hot path."""
        collected = entries_of_read(state.channel, entries)
        for entry in collected:
            if entry.frame is None:
                publish_control_entry(state.channel, entry.stored, self._publish)
        self.entries_read += len(collected)
        for sub in subs:
            await sub.queue.put((collected, state.key, state.last))

    async def _deliver(self, state: StreamState, entry_id: str, fields: dict[bytes, bytes], batch_subs: int) -> None:
        """Hand one entry to the per-entry subscriptions that want it (``batch_subs`` batch subscriptions get it in
        their batch)."""
        frame = fields.get(FIELD_FRAME)
        if frame is None:
            publish_control_entry(state.channel, fields, self._publish)
        takers: list[tuple[RelaySubscription[Any], Any]] = []
        message: Any = None
        for sub in state.subs:
            if sub.batches:
                continue
            if sub.channel == _RAW:
                takers.append((sub, entry_from_fields(state.channel, entry_id, fields)))
                continue
            if frame is None:
                continue
            if message is None:
                try:
                    message = decode_message(frame)
                except KalshiProtocolError as exc:
                    message = _MALFORMED
                    self._malformed(state, entry_id, exc)
            if message is _MALFORMED or getattr(message, "type", None) in _ANSWERS:
                continue
            if sub.tickers is not None:
                body = getattr(message, "msg", None)
                if getattr(body, "market_ticker", None) not in sub.tickers:
                    continue
            takers.append((sub, message))
        if self.group is not None:
            count = len(takers) + batch_subs
            if not count:
                self._ack(state.key, entry_id)
            elif count > 1:  # before any of them can take it: acknowledged once all did
                self._acks.share(state.key, entry_id, count)
        for sub, item in takers:
            await sub.queue.put((item, state.key, entry_id))

    def _malformed(self, state: StreamState, entry_id: str, error: KalshiProtocolError) -> None:
        self.malformed_entries += 1
        logger.warning("relay entry %s of %s skipped for typed subscriptions: %s", entry_id, state.key, error)
        self._publish(Gap(state.channel, None, None, 1, (), "protocol_error"))

    def _fail(self, error: BaseException) -> None:
        """Reading failed for good: every subscription ends with ``error``, rather than waiting for ever."""
        logger.error("reading the relay failed: %r", error)
        self._failure = error
        for sub in self._subscriptions():
            sub._fail(error)
        self._changed.set()
        self._end(Closed("reader_failed", error))

    def _subscriptions(self) -> list[RelaySubscription[Any]]:
        subs = {id(sub): sub for state in self._streams.values() for sub in state.subs}
        subs.update((id(sub), sub) for sub in self._books.subs)
        return list(subs.values())

    def _end(self, closed: Closed) -> None:
        if not self._ended:
            self._ended = True
            self._publish(closed)

    def _publish(self, event: LifecycleEvent) -> None:
        self._bus.publish(event)
        for hook in self._hooks:
            task = asyncio.ensure_future(hook(event))
            self._hook_tasks.add(task)
            task.add_done_callback(self._hook_done)

    def _hook_done(self, task: asyncio.Task[None]) -> None:
        self._hook_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("lifecycle callback failed: %r", task.exception())

    # ------------------------------------------------------------------ acknowledgements

    def _ack(self, key: str, entry_id: str | list[str]) -> None:
        """A subscription took these entries (or none wants them)."""
        self._acks.taken(key, entry_id)

    async def _flush_acks(self) -> None:
        if self.group is not None:
            await self._acks.flush(self._redis, self.group)

    async def ack(self) -> None:
        """Acknowledge now everything the iterators handed out and were asked past (done at close too)."""
        for state in self._streams.values():
            for sub in state.subs:
                if sub._unacked is not None:
                    self._ack(*sub._unacked)
                    sub._unacked = None
        await self._flush_acks()

    # ------------------------------------------------------------------ closing

    async def _close(self) -> None:
        self._closing = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._reads.close()
        if self.group is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._flush_acks()
        for sub in self._subscriptions():
            sub._close()
        self._end(Closed("client_close"))
        self._bus.close()
        for hook_task in list(self._hook_tasks):
            with contextlib.suppress(Exception):
                await hook_task
