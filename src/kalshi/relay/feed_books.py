"""The books of a :class:`~kalshi.relay.client.RelayFeed`: its :class:`~kalshi.relay.books.BookBuilder`, the
book view subscriptions, and the checkpoints the books start from or are repaired with.

The book stream's position is shared with every other subscription of it (raw ones, say), and starting books
never moves it: the books read what lies between their checkpoint and that position on their own (``XRANGE``),
then follow the shared reads. A position behind the checkpoint needs nothing: the builder skips the entries it
holds already.

A checkpoint that cannot be read (a foreign key under the relay's prefix, not a checkpoint or not even a string)
is logged, counted and skipped: the books start from the stream's first entry instead, or wait for the next
checkpoint to be repaired. A Redis error while loading one is raised: the feed's read loop reconnects and loads it
again before reading on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, Final

import msgspec
from redis.exceptions import ResponseError

from kalshi.models.markets import Orderbook
from kalshi.relay.books import BookBuilder
from kalshi.relay.checkpoint import Checkpoint, decode_checkpoint
from kalshi.relay.layout import StreamLayout, parse_id
from kalshi.relay.streams import StreamState
from kalshi.relay.subscription import RelaySubscription
from kalshi.ws.lifecycle import LifecycleEvent

__all__ = ["FeedBooks"]

logger = logging.getLogger(__name__)

_UNREADABLE: Final = (msgspec.DecodeError, ValueError)  # ValueError: a key name that is not UTF-8


class FeedBooks:
    """Books kept from the ``orderbook_delta`` stream, and who is told when one changes.

    Args:
        redis: the feed's redis-py client (checkpoints are plain keys).
        layout: the relay's key layout.
        publish: publishes a lifecycle event of the feed.
    """

    def __init__(self, redis: Any, layout: StreamLayout, publish: Callable[[LifecycleEvent], None]) -> None:
        self._redis = redis
        self._layout = layout
        self._publish = publish
        self.builder: BookBuilder | None = None
        self.subs: list[RelaySubscription[Orderbook]] = []
        self.unreadable_checkpoints = 0
        """Checkpoints skipped because they could not be decoded."""
        self._starting = asyncio.Lock()  # two orderbook() calls at once: one builder

    @property
    def books(self) -> Mapping[str, Orderbook]:
        return {} if self.builder is None else self.builder.books

    async def start(
        self, tickers: Collection[str] | None, stream: Callable[[], Awaitable[StreamState]], *, batch: int
    ) -> None:
        """Keep the books of ``tickers`` (None: every market) from the latest checkpoint on (or from the stream's
        first entry); when books are kept already, ``tickers`` are added.

        Args:
            tickers: the markets.
            stream: gives the book stream's shared position (made when the feed reads the stream for the first
                time); the books catch up with it without moving it.
            batch: most entries per catch-up read.

        Raises:
            RedisError, OSError: Redis did not answer; no books are kept (call again).
        """
        async with self._starting:
            if self.builder is not None:
                if tickers is not None:
                    self.builder.want(tickers)
                return
            builder = BookBuilder(tickers)
            checkpoint = await self._latest()
            after = "0-0"
            if checkpoint is not None:
                builder.load_checkpoint(checkpoint, start=True)
                after = checkpoint.entry_id
            # Only now: a stream read for the first time starts where the feed's start= says, and a subscription
            # made right after this one gets what the feed reads from there on.
            state = await stream()
            await self._catch_up(builder, state, after, batch)
            # No await since the last catch-up read: every entry up to the shared position is applied, and the
            # feed's reads give the books the next ones (even the rest of a read it is handing out now).
            self.builder = builder

    async def _catch_up(self, builder: BookBuilder, state: StreamState, after: str, batch: int) -> None:
        """Apply the entries after ``after`` up to ``state``'s position (which moves meanwhile)."""
        done = parse_id(after)
        while done < parse_id(state.last):
            upto = state.last
            entries = await self._redis.xrange(state.key, min=f"{done[0]}-{done[1] + 1}", max=upto, count=batch)
            for entry_id, fields in entries:
                builder.apply(entry_id, fields)
            for event in builder.events():
                self._publish(event)
            # None left up to ``upto``: trimmed since the feed read them (the builder sees the hole next entry).
            done = parse_id(entries[-1][0]) if entries else parse_id(upto)

    async def _latest(self) -> Checkpoint | None:
        latest = await self._get(self._layout.checkpoint_latest)
        if not latest:
            return None
        try:
            key = self._layout.checkpoint(latest.decode())
        except _UNREADABLE as exc:
            self._unreadable(repr(latest), exc)
            return None
        data = await self._get(key)
        return self._decode(key, data) if data else None

    def add(self, sub: RelaySubscription[Orderbook]) -> None:
        """Tell ``sub`` of every change from now on, and first of every book exact already."""
        self.subs.append(sub)
        for ticker in list(self.books):
            sub._book_changed(ticker)

    def apply(self, entry_id: str, fields: Mapping[bytes, bytes]) -> None:
        """Apply one entry of the book stream (books must be kept)."""
        builder = self.builder
        assert builder is not None
        changed = builder.apply(entry_id, fields)
        for event in builder.events():
            self._publish(event)
        if changed is not None:
            for sub in self.subs:
                sub._book_changed(changed)

    async def load_wanted(self) -> None:
        """Load the checkpoint the books asked for, if any (stale books are repaired from it).

        Raises:
            RedisError, OSError: Redis did not answer; the checkpoint is still wanted.
        """
        builder = self.builder
        if builder is None or builder.wants_checkpoint is None:
            return
        key = builder.wants_checkpoint
        data = await self._get(key)
        checkpoint = self._decode(key, data) if data is not None else None
        if checkpoint is None:
            builder.wants_checkpoint = None  # expired or unreadable: the next checkpoint entry asks again
            return
        for ticker in builder.load_checkpoint(checkpoint):
            for sub in self.subs:
                sub._book_changed(ticker)
        for event in builder.events():
            self._publish(event)

    async def _get(self, key: str) -> bytes | None:
        """The value of ``key``; None when absent, or when it is not a string (unreadable: logged and counted)."""
        try:
            return await self._redis.get(key)  # type: ignore[no-any-return]
        except ResponseError as exc:
            # Another kind of key: no retry can make it a checkpoint.
            if not str(exc).startswith("WRONGTYPE"):
                raise
            self._unreadable(key, exc)
            return None

    def _decode(self, key: str, data: bytes) -> Checkpoint | None:
        try:
            return decode_checkpoint(data)
        except _UNREADABLE as exc:
            self._unreadable(key, exc)
            return None

    def _unreadable(self, key: str, error: Exception) -> None:
        self.unreadable_checkpoints += 1
        logger.warning("relay checkpoint %s skipped: not a checkpoint (%s)", key, error)
