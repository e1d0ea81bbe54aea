"""The relay core (sans-I/O): frames, lifecycle events and book checkpoints in, Redis commands out.

:class:`RelayCore` turns every frame a connection receives into one ``XADD`` of its channel's stream (see
:mod:`kalshi.relay.layout`), reading only the envelope (``type``, ``sid``, ``seq``; the body of snapshots and
``subscribed`` answers). The commands go into an :class:`EntryBuffer`, bounded and counted: while Redis is away the
buffer fills, and once it is full new entries are dropped and counted per stream; the next entry of that stream is
preceded by a ``gap`` control entry saying how many were lost, so consumers know exactly what they missed
(and so does a stream whose entries Redis refused while storing later ones: :meth:`RelayCore.refused`). A quiet
stream need not wait for its next entry: :meth:`RelayCore.mark_gaps` (the publisher calls it whenever Redis took a
batch) writes its marker as soon as the buffer has room.

:meth:`RelayCore.checkpoint` writes every book (as the streaming client holds it after the frames already
buffered) next to a ``checkpoint`` control entry, so a consumer can start at that entry without the exchange.

No asyncio, sockets or Redis client here: tests drive it with bytes and read the commands it produced.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from kalshi.models.markets import Orderbook
from kalshi.record.schema import TYPE_CHANNELS
from kalshi.relay.books import BookBuilder, decode_frame
from kalshi.relay.checkpoint import BookEntry, Checkpoint, SidEntry, encode_checkpoint
from kalshi.relay.layout import (
    BOOK_CHANNEL,
    FIELD_JSON,
    FIELD_KIND,
    KIND_CHECKPOINT,
    KIND_CONNECTION,
    KIND_GAP,
    OTHER_CHANNEL,
    StreamLayout,
    track_seq,
)
from kalshi.relay.resp import XaddHead, pack_command

__all__ = ["ConnectionTag", "EntryBuffer", "RelayCore", "RelayCounters"]

DEFAULT_BUFFER_LIMIT: Final = 1_000_000
CHECKPOINT_TTL_S: Final = 600


_JSON: Final = msgspec.json.Encoder()
_CONTROL_TYPES: Final = frozenset({"subscribed", "unsubscribed", "ok", "error", "list_subscriptions"})


class EntryBuffer:
    """Commands waiting for Redis, in order, at most ``limit`` (a checkpoint may overshoot by its few commands).

    Each ``XADD`` carries a mark, ``(stream key, entry id)``, so the publisher can check after a batch that Redis
    really stored it (replies are off while a batch is written; see :mod:`kalshi.relay.publisher`).

    Counters: ``appended`` (commands ever put), ``acknowledged`` (Redis answered the batch holding them).
    """

    __slots__ = ("_items", "_marks", "acknowledged", "appended", "limit")

    def __init__(self, limit: int = DEFAULT_BUFFER_LIMIT) -> None:
        if limit < 1:
            raise ValueError("the buffer limit must be >= 1")
        self.limit = limit
        self._items: deque[bytes] = deque()
        self._marks: deque[tuple[str, bytes] | None] = deque()
        self.appended = 0
        self.acknowledged = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        return len(self._items) >= self.limit

    def put(self, command: bytes, mark: tuple[str, bytes] | None = None) -> None:
        """Append ``command``; ``mark`` is ``(stream key, entry id)`` for an ``XADD``."""
        self._items.append(command)
        self._marks.append(mark)
        self.appended += 1

    def take(self, count: int) -> list[bytes]:
        """Up to ``count`` commands from the front (the caller owns them until :meth:`ack`)."""
        return self.take_marked(count)[0]

    def take_marked(self, count: int) -> tuple[list[bytes], list[tuple[str, bytes] | None]]:
        """Like :meth:`take`, with each command's mark."""
        items = self._items
        marks = self._marks
        n = min(count, len(items))
        return [items.popleft() for _ in range(n)], [marks.popleft() for _ in range(n)]

    def ack(self, count: int) -> None:
        self.acknowledged += count


@dataclass(slots=True)
class RelayCounters:
    """What the relay did, for progress lines and tests."""

    frames: int = 0
    frame_bytes: int = 0
    controls: int = 0
    checkpoints: int = 0
    dropped: int = 0
    refused: int = 0
    """Entries Redis refused while storing later ones of their stream (see :meth:`RelayCore.refused`)."""
    gaps_marked: int = 0
    per_channel: dict[str, int] = field(default_factory=dict)


class ConnectionTag:
    """One connection of one shard: its tag ``<shard>.<number>`` and the envelope state of its sids."""

    __slots__ = ("number", "raw", "shard", "sid_channel", "sid_seq", "tag")

    def __init__(self, shard: int, number: int) -> None:
        self.shard = shard
        self.number = number
        self.tag = f"{shard}.{number}"
        self.raw = self.tag.encode()
        self.sid_channel: dict[int, str] = {}
        self.sid_seq: dict[int, int] = {}


class _Stream:
    __slots__ = ("dropped", "head", "n", "refused")

    def __init__(self, head: XaddHead) -> None:
        self.head = head
        self.n = 0
        self.dropped = 0
        self.refused = 0  # entries Redis refused, with later ones stored: lost for good, no gap entry yet


class RelayCore:
    """Turns frames into stream entries (see the module docstring).

    Args:
        layout: key names.
        epoch: this run's id part (epoch ms above every id already in the streams).
        maxlen: approximate stream length (``MAXLEN ~``); None keeps everything.
        buffer: where commands go (default: a new :class:`EntryBuffer`).
    """

    def __init__(
        self,
        layout: StreamLayout,
        *,
        epoch: int,
        maxlen: int | None = 1_000_000,
        buffer: EntryBuffer | None = None,
        checkpoint_ttl_s: int = CHECKPOINT_TTL_S,
    ) -> None:
        self.layout = layout
        self.epoch = epoch
        self.maxlen = maxlen
        self.buffer = buffer if buffer is not None else EntryBuffer()
        self.counters = RelayCounters()
        self.checkpoint_ttl_s = checkpoint_ttl_s
        self._streams: dict[str, _Stream] = {}
        self._unmarked: dict[str, _Stream] = {}  # streams with drops no gap entry tells of yet
        self._epoch_prefix = b"%d-" % epoch
        # Where each book's snapshots come from: a gap on that (connection, sid) makes the book stale.
        self.book_source: dict[str, tuple[str, int]] = {}
        self.connections: dict[int, ConnectionTag] = {}
        # The relay's own books, kept from the frames it relays (the streaming client keeps none for it): what
        # checkpoints write. The same rules as every consumer's builder, so a checkpoint equals what a consumer
        # reading the stream from the start would hold at that entry.
        self.books = BookBuilder()

    # ------------------------------------------------------------------ streams

    def stream_keys(self) -> list[str]:
        return [stream.head.key for stream in self._streams.values()]

    def channels(self) -> list[str]:
        return list(self._streams)

    def _stream(self, channel: str) -> _Stream:
        stream = self._streams.get(channel)
        if stream is None:
            stream = self._streams[channel] = _Stream(XaddHead(self.layout.stream(channel), self.maxlen))
        return stream

    def last_ids(self) -> dict[str, str]:
        """The id of the last entry written so far, by channel (streams without entries are absent)."""
        return {channel: f"{self.epoch}-{s.n - 1}" for channel, s in self._streams.items() if s.n}

    def declare(self, channels: Iterable[str]) -> None:
        """Create the streams of ``channels`` now (control entries for "every stream" reach them)."""
        for channel in channels:
            self._stream(channel)

    def _next_id(self, stream: _Stream) -> bytes:
        n = stream.n
        stream.n = n + 1
        return self._epoch_prefix + b"%d" % n

    def _room(self, stream: _Stream, channel: str) -> bool:
        """Whether an entry fits; a full buffer drops it (counted). Writes the pending gap marker first."""
        if self.buffer.full:
            stream.dropped += 1
            self.counters.dropped += 1
            self._unmarked[channel] = stream
            return False
        if stream.dropped:
            dropped, stream.dropped = stream.dropped, 0
            self.counters.gaps_marked += 1
            self._put_control(stream, KIND_GAP, {"reason": "buffer_overflow", "dropped": dropped, "channel": channel})
        if stream.refused:
            refused, stream.refused = stream.refused, 0
            self.counters.gaps_marked += 1
            self._put_control(stream, KIND_GAP, {"reason": "redis_refused", "dropped": refused, "channel": channel})
        self._unmarked.pop(channel, None)
        return True

    def refused(self, key: str, count: int) -> None:
        """Redis refused ``count`` entries of stream ``key`` and stored later ones (near ``maxmemory``, say): they
        can never be stored after those (ids only grow). Their stream gets a ``gap`` entry saying so (reason
        ``redis_refused``) as soon as the buffer has room, like entries dropped by a full buffer."""
        for channel, stream in self._streams.items():
            if stream.head.key == key:
                stream.refused += count
                self.counters.refused += count
                self._unmarked[channel] = stream
                self.mark_gaps()
                return

    def mark_gaps(self) -> None:
        """Write the ``gap`` entry of every stream that lost entries, as far as the buffer has room (cheap when
        none did: call it whenever the buffer may have emptied)."""
        unmarked = self._unmarked
        while unmarked and not self.buffer.full:
            channel, stream = next(iter(unmarked.items()))
            self._room(stream, channel)

    # ------------------------------------------------------------------ connections and frames

    def connection(self, shard: int, number: int) -> ConnectionTag:
        """The tag for connection ``number`` of ``shard``; a new number writes a ``connection`` control entry."""
        previous = self.connections.get(shard)
        if previous is not None and previous.number == number:
            return previous
        tag = self.connections[shard] = ConnectionTag(shard, number)
        if previous is not None:
            stale = sorted(t for t, (conn, _) in self.book_source.items() if conn == previous.tag)
            for ticker in stale:
                del self.book_source[ticker]
            self.books.connection_replaced(previous.tag)
            self.control(None, KIND_CONNECTION, {"c": tag.tag, "prev": previous.tag, "shard": shard})
        return tag

    def frame(self, conn: ConnectionTag, data: bytes, recv_ns: int) -> None:
        """One frame as received on ``conn`` (``recv_ns``: epoch ns)."""
        decoded = decode_frame(data)  # once: the envelope and the few body fields the books need
        kind = decoded.type
        sid = decoded.sid
        seq = decoded.seq
        channel: str | None = None
        if sid is not None:
            channel = conn.sid_channel.get(sid)
        if kind == "subscribed":
            body = decoded.msg
            if body is not None and body.sid.__class__ is int and body.channel.__class__ is str and body.channel:
                conn.sid_channel[body.sid] = channel = body.channel
                conn.sid_seq.pop(body.sid, None)
        elif kind == "orderbook_snapshot" and sid is not None:
            body = decoded.msg
            if body is not None and body.market_ticker.__class__ is str and body.market_ticker:
                self.book_source[body.market_ticker] = (conn.tag, sid)
        if channel is None:
            channel = TYPE_CHANNELS.get(kind, OTHER_CHANNEL) if kind is not None else OTHER_CHANNEL
        if channel == BOOK_CHANNEL:
            self.books.apply_decoded(decoded, data, conn.tag)
        if sid is not None and seq is not None:
            sid_seq = conn.sid_seq
            last = sid_seq.get(sid)
            if kind == "orderbook_delta":  # most frames: track_seq's data rule, inlined
                if last is None or seq > last:
                    sid_seq[sid] = seq
            else:
                sid_seq[sid] = track_seq(
                    last, seq, snapshot=kind == "orderbook_snapshot", control=kind in _CONTROL_TYPES
                )
        counters = self.counters
        counters.frames += 1
        counters.frame_bytes += len(data)
        stream = self._streams.get(channel) or self._stream(channel)
        buffer = self.buffer
        if (stream.dropped or len(buffer) >= buffer.limit) and not self._room(stream, channel):
            return
        # _next_id() and EntryBuffer.put(), inlined: this runs for every frame.
        n = stream.n
        stream.n = n + 1
        entry_id = self._epoch_prefix + b"%d" % n
        head = stream.head
        buffer._items.append(head.frame(entry_id, data, recv_ns, conn.raw, sid, seq))
        buffer._marks.append((head.key, entry_id))
        buffer.appended += 1

    # ------------------------------------------------------------------ control entries

    def control(self, channels: Iterable[str] | None, kind: str, body: Mapping[str, Any]) -> list[str]:
        """A control entry of ``kind`` in each stream of ``channels`` (None: every stream); returns the ids."""
        names = list(self._streams) if channels is None else list(channels)
        ids = []
        for channel in names:
            stream = self._stream(channel)
            if self._room(stream, channel):
                ids.append(self._put_control(stream, kind, body))
        return ids

    def _put_control(self, stream: _Stream, kind: str, body: Mapping[str, Any]) -> str:
        entry_id = self._next_id(stream)
        payload = _JSON.encode(body)
        head = stream.head
        self.buffer.put(
            head.fields(entry_id, ((FIELD_KIND, kind.encode()), (FIELD_JSON, payload))), (head.key, entry_id)
        )
        self.counters.controls += 1
        return entry_id.decode()

    def lifecycle(self, event: object) -> None:
        """A lifecycle event of the streaming client (kalshi.ws.lifecycle) as a control entry.

        ``Gap`` and ``Repaired`` go to their channel's stream, the rest to every stream.
        """
        kind = type(event).__name__.lower()
        body: dict[str, Any] = {}
        for name in getattr(event, "__slots__", ()):
            value = getattr(event, name, None)
            if isinstance(value, BaseException):
                value = f"{type(value).__name__}: {value}"
            elif isinstance(value, tuple):
                value = list(value)
            body[name] = value
        channel = body.get("channel")
        self.control([channel] if isinstance(channel, str) and channel in self._streams else None, kind, body)

    # ------------------------------------------------------------------ checkpoints

    def checkpoint(self, books: Mapping[str, Orderbook] | None = None, *, taken_ns: int | None = None) -> str | None:
        """Write every book (``books``: views as of the frames already given; default the core's own, kept
        from those frames) and a ``checkpoint`` entry.

        Books without a known source (no snapshot seen) and stale ones are left out: a consumer waits for their
        snapshot. Returns the checkpoint entry's id, or None when the buffer is full (no checkpoint this time).
        """
        self.books.events()  # the relay's own gaps and repairs are in the stream already, as frames
        if books is None:
            books = self.books.books
        stream = self._stream(BOOK_CHANNEL)
        if self.buffer.full or not self._room(stream, BOOK_CHANNEL):
            return None
        entry_id = format_next(self.epoch, stream.n)
        entries = []
        for ticker, source in self.book_source.items():
            view = books.get(ticker)
            if view is None:
                continue
            entries.append(
                BookEntry(
                    ticker=ticker,
                    c=source[0],
                    sid=source[1],
                    seq=view.seq,
                    clock=view.clock,
                    yes=[list(level) for level in view.yes_ticks],
                    no=[list(level) for level in view.no_ticks],
                )
            )
        sids = [
            SidEntry(c=conn.tag, sid=sid, seq=seq, channel=conn.sid_channel.get(sid, ""))
            for conn in self.connections.values()
            for sid, seq in conn.sid_seq.items()
        ]
        snapshot = Checkpoint(
            entry_id=entry_id,
            taken_ns=taken_ns if taken_ns is not None else time.time_ns(),
            connections=[conn.tag for conn in self.connections.values()],
            books=entries,
            sids=sids,
        )
        key = self.layout.checkpoint(entry_id)
        buffer = self.buffer
        buffer.put(pack_command("SET", key, encode_checkpoint(snapshot), "EX", self.checkpoint_ttl_s))
        written = self._put_control(stream, KIND_CHECKPOINT, {"key": key, "books": len(entries)})
        assert written == entry_id
        buffer.put(pack_command("SET", self.layout.checkpoint_latest, entry_id))
        self.counters.checkpoints += 1
        return entry_id


def format_next(epoch: int, n: int) -> str:
    return f"{epoch}-{n}"
