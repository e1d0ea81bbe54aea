"""What a :class:`~kalshi.relay.client.RelayFeed` hands out: stored entries and bounded subscriptions.

:class:`RelayEntry` is one stream entry as stored (for recorders); :class:`RelaySubscription` is one bounded
iterator of typed messages, book views or entries, awaitable and iterable through :class:`RelayRequest` like the
streaming client's subscribe requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Generator, Mapping
from typing import TYPE_CHECKING, Any, Final, Generic, NamedTuple, NoReturn, TypeVar

import msgspec

from kalshi.errors import KalshiConnectionError
from kalshi.relay.layout import FIELD_FRAME, FIELD_JSON, FIELD_KIND, FIELD_META

if TYPE_CHECKING:
    from kalshi.relay.client import RelayFeed

__all__ = ["RelayEntry", "RelayRequest", "RelaySubscription", "entries_of_read", "entry_from_fields"]

T = TypeVar("T")
END: Final = object()
_JSON: Final = msgspec.json.Decoder()


class RelayEntry(NamedTuple):
    """One stream entry as stored: a frame (``frame`` set) or a control entry (``kind`` and ``body`` set)."""

    channel: str
    id: str
    frame: bytes | None
    recv_ns: int | None
    conn: str | None
    sid: int | None
    seq: int | None
    kind: str | None
    body: dict[str, Any] | None
    stored: Mapping[bytes, bytes]
    """The fields as stored (what :meth:`kalshi.relay.BookBuilder.apply` takes)."""


def entry_from_fields(channel: str, entry_id: str, fields: Mapping[bytes, bytes]) -> RelayEntry:
    frame = fields.get(FIELD_FRAME)
    if frame is None:
        try:
            body = _JSON.decode(fields.get(FIELD_JSON, b"{}"))
        except msgspec.DecodeError:
            body = {}
        kind = fields.get(FIELD_KIND, b"")
        return RelayEntry(
            channel, entry_id, None, None, None, None, None, kind.decode(errors="replace"), body or {}, fields
        )
    meta = fields.get(FIELD_META)
    if meta is not None:
        try:  # the usual entry, in one go: "<recv_ns> <conn> <sid> <seq>"
            recv, conn, sid, seq = meta.split(b" ")
            # tuple.__new__ directly: the NamedTuple constructor's keyword handling costs as much as the parsing.
            return _new_entry(
                RelayEntry,
                (
                    channel,
                    entry_id,
                    frame,
                    int(recv) if recv else None,
                    conn.decode() if conn else None,
                    int(sid) if sid else None,
                    int(seq) if seq else None,
                    None,
                    None,
                    fields,
                ),
            )
        except ValueError:
            pass  # a foreign or damaged meta field: the frame without it
    return _new_entry(RelayEntry, (channel, entry_id, frame, None, None, None, None, None, None, fields))


_new_entry: Final = tuple.__new__
_CONNS: dict[bytes, str] = {}  # connection tags as read -> as text: a relay has a handful


def entries_of_read(channel: str, entries: list[Any]) -> list[RelayEntry]:
    """One read's entries (hiredis's ``[[id, [name, value, ...]], ...]``; entries without fields left out) as
    :class:`RelayEntry`, the same as :func:`entry_from_fields` on each. Data entries as the relay writes them
    (``f`` then ``m``, four meta parts) take one pass with no intermediate objects: the consumer's hot path."""
    out: list[RelayEntry] = []
    append = out.append
    new = _new_entry
    conns = _CONNS
    for raw_id, stored in entries:
        if stored is None:
            continue
        if stored.__class__ is list and len(stored) == 4 and stored[0] == FIELD_FRAME and stored[2] == FIELD_META:
            frame = stored[1]
            meta = stored[3]
            parts = meta.split(b" ")
            if len(parts) == 4:
                recv, conn_raw, sid, seq = parts
                conn = conns.get(conn_raw) if conn_raw else None
                try:
                    if conn is None and conn_raw:
                        conn = conn_raw.decode()
                        if len(conns) < 1024:
                            conns[conn_raw] = conn
                    append(
                        new(
                            RelayEntry,
                            (
                                channel,
                                raw_id.decode(),
                                frame,
                                int(recv) if recv else None,
                                conn,
                                int(sid) if sid else None,
                                int(seq) if seq else None,
                                None,
                                None,
                                {FIELD_FRAME: frame, FIELD_META: meta},
                            ),
                        )
                    )
                    continue
                except ValueError:
                    pass  # the general path below decides (a damaged meta field: the frame without it)
        append(entry_from_fields(channel, raw_id.decode(), _fields_of(stored)))
    return out


def _fields_of(stored: Any) -> Mapping[bytes, bytes]:
    if stored.__class__ is not list:
        return stored  # type: ignore[no-any-return]
    return dict(zip(stored[::2], stored[1::2], strict=False))


class RelaySubscription(Generic[T]):
    """Items of one subscription of a :class:`RelayFeed`: iterate it (``async for``). Bounded: a consumer that
    does not keep up slows only its own reading of Redis, never the relay (whose streams are trimmed; what this
    client then misses is reported as a gap). Should its feed's reading fail, the iterator raises
    :class:`~kalshi.errors.KalshiConnectionError` once the items already read are taken."""

    def __init__(
        self,
        feed: RelayFeed,
        channel: str,
        tickers: Collection[str] | None,
        maxsize: int,
        *,
        views: bool = False,
        batches: bool = False,
    ) -> None:
        self.feed = feed
        self.channel = channel
        self.tickers = None if tickers is None else set(tickers)
        self.views = views
        self.batches = batches
        """Items are whole reads (a list of :class:`RelayEntry` per stream per read), not single entries."""
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self._pending_views: dict[str, None] = {}
        self._view_ready = asyncio.Event()
        self._unacked: tuple[str, str | list[str]] | None = None
        self.delivered = 0
        self.closed = False
        self._error: BaseException | None = None

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        if self._unacked is not None:
            self.feed._ack(*self._unacked)
            self._unacked = None
        if self.views:
            return await self._next_view()
        if self.closed and self.queue.empty():
            self._end()  # closed while full: the end marker did not fit
        item = await self.queue.get()
        if item is END:
            self._end()
        message, stream, entry_id = item
        if self.feed.group is not None:
            self._unacked = (stream, entry_id)
        self.delivered += len(message) if self.batches else 1
        return message  # type: ignore[no-any-return]

    async def _next_view(self) -> T:
        while True:
            while not self._pending_views:
                if self.closed:
                    self._end()
                self._view_ready.clear()
                await self._view_ready.wait()
            ticker = next(iter(self._pending_views))
            del self._pending_views[ticker]
            view = self.feed.books.get(ticker)
            if view is not None:  # None: stale since it changed; its repair brings the next view
                self.delivered += 1
                return view  # type: ignore[return-value]

    def _book_changed(self, ticker: str) -> None:
        if self.tickers is None or ticker in self.tickers:
            self._pending_views[ticker] = None
            self._view_ready.set()

    def _end(self) -> NoReturn:
        if self._error is not None:
            raise KalshiConnectionError(f"reading the relay failed: {self._error!r}") from self._error
        raise StopAsyncIteration

    def _fail(self, error: BaseException) -> None:
        """End with ``error``: the feed's reading failed."""
        self._error = error
        self._close()

    def _close(self) -> None:
        self.closed = True
        self._view_ready.set()
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(END)


class RelayRequest(Generic[T]):
    """Awaitable (the subscription) and async-iterable (its items), like the streaming client's requests."""

    def __init__(self, start: Callable[[], Awaitable[RelaySubscription[T]]]) -> None:
        self._start = start
        self._sub: RelaySubscription[T] | None = None

    async def _get(self) -> RelaySubscription[T]:
        if self._sub is None:
            self._sub = await self._start()
        return self._sub

    def __await__(self) -> Generator[Any, None, RelaySubscription[T]]:
        return self._get().__await__()

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        return await (await self._get()).__anext__()
