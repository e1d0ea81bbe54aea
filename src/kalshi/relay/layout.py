"""The relay's layout in Redis: key names, entry fields and control entry kinds, in one table.

Every relayed channel has one stream, ``<prefix>:stream:<channel>``. Entry ids are ``<epoch>-<n>``: ``epoch`` is
the relay run's start (epoch ms, above every id already in the stream) and ``n`` counts that run's entries of the
stream from 0 with no holes. A consumer that reads ``E-7`` after ``E-5`` therefore knows that exactly one entry is
missing (trimmed by ``MAXLEN ~``, or lost by a Redis without persistence), and a new ``epoch`` means a new relay
run (whose first entry is a ``relay_start`` control entry).

Data entries hold the wire frame exactly as received plus, in one more field, what a consumer needs without
parsing it (two fields, not five: Redis spends about half as much per entry storing and serving them):

=========  ===========================================================================================
field      meaning
=========  ===========================================================================================
``f``      the WebSocket text frame, byte for byte
``m``      ``<recv_ns> <conn> <sid> <seq>``, ASCII, one space apart: the local receive time (epoch
           nanoseconds), the connection it came on (``<shard>.<connection number>``: sids are per
           connection), the envelope ``sid`` and ``seq`` (each empty when the frame has none)
=========  ===========================================================================================

Control entries have ``k`` (the kind, below) and ``j`` (a JSON object) instead. Book checkpoints live beside the
streams: ``<prefix>:checkpoint:<entry id>`` holds every book as of the ``checkpoint`` control entry with that id
(expiring after a while), and ``<prefix>:checkpoint`` names the latest one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "BOOK_CHANNEL",
    "CONTROL_KINDS",
    "DEFAULT_PREFIX",
    "FIELD_FRAME",
    "FIELD_JSON",
    "FIELD_KIND",
    "FIELD_META",
    "KIND_CHECKPOINT",
    "KIND_CONNECTION",
    "KIND_DISCONNECTED",
    "KIND_GAP",
    "KIND_RECONNECTED",
    "KIND_RELAY_START",
    "KIND_RELAY_STOP",
    "KIND_REPAIRED",
    "KIND_RESUBSCRIBED",
    "OTHER_CHANNEL",
    "StreamLayout",
    "format_id",
    "format_meta",
    "parse_id",
    "parse_meta",
    "track_seq",
]

DEFAULT_PREFIX: Final = "kalshi"
BOOK_CHANNEL: Final = "orderbook_delta"
OTHER_CHANNEL: Final = "_other"  # frames that belong to no channel (list_subscriptions answers, bare errors)

FIELD_FRAME: Final = b"f"
FIELD_META: Final = b"m"
FIELD_KIND: Final = b"k"
FIELD_JSON: Final = b"j"

KIND_RELAY_START: Final = "relay_start"
"""A relay run began (``epoch``, ``shards``): books from before are not to be trusted until rebuilt."""
KIND_RELAY_STOP: Final = "relay_stop"
"""The relay stopped cleanly."""
KIND_CONNECTION: Final = "connection"
"""Frames of a shard now come on a new connection ``c`` (``prev`` was the old one): its books restart."""
KIND_CHECKPOINT: Final = "checkpoint"
"""Every book as of this entry is in ``<prefix>:checkpoint:<this entry's id>`` (``key``)."""
KIND_GAP: Final = "gap"
"""Entries could not be kept (``reason``: ``buffer_overflow``, or a lifecycle Gap); ``dropped`` counts them."""
KIND_DISCONNECTED: Final = "disconnected"
KIND_RECONNECTED: Final = "reconnected"
KIND_RESUBSCRIBED: Final = "resubscribed"
KIND_REPAIRED: Final = "repaired"

CONTROL_KINDS: Final = frozenset(
    {
        KIND_RELAY_START,
        KIND_RELAY_STOP,
        KIND_CONNECTION,
        KIND_CHECKPOINT,
        KIND_GAP,
        KIND_DISCONNECTED,
        KIND_RECONNECTED,
        KIND_RESUBSCRIBED,
        KIND_REPAIRED,
    }
)


@dataclass(frozen=True, slots=True)
class StreamLayout:
    """Key names under one ``prefix`` (several relays can share a Redis with different prefixes)."""

    prefix: str = DEFAULT_PREFIX

    def stream(self, channel: str) -> str:
        """The stream of ``channel``."""
        return f"{self.prefix}:stream:{channel}"

    def channel_of(self, stream: str) -> str:
        """The channel of a stream key made by :meth:`stream`."""
        return stream.rsplit(":", 1)[-1]

    @property
    def checkpoint_latest(self) -> str:
        """The key naming the latest checkpoint's entry id."""
        return f"{self.prefix}:checkpoint"

    def checkpoint(self, entry_id: str) -> str:
        """The key holding the checkpoint written at ``entry_id``."""
        return f"{self.prefix}:checkpoint:{entry_id}"

    @property
    def status(self) -> str:
        """A hash the relay refreshes with its counters (for ``redis-cli HGETALL``)."""
        return f"{self.prefix}:relay"


def format_id(epoch: int, n: int) -> str:
    """The entry id ``<epoch>-<n>``."""
    return f"{epoch}-{n}"


def parse_id(entry_id: str | bytes) -> tuple[int, int]:
    """``(epoch, n)`` of an entry id.

    Raises:
        ValueError: not a Redis stream id.
    """
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, n = text.partition("-")
    return int(ms), int(n) if n else 0


def format_meta(recv_ns: int, conn: bytes, sid: int | None, seq: int | None) -> bytes:
    """The ``m`` field of a data entry (``conn``: the connection tag, e.g. ``b"0.1"``)."""
    if sid is None:
        return b"%d %b  " % (recv_ns, conn)
    if seq is None:
        return b"%d %b %d " % (recv_ns, conn, sid)
    return b"%d %b %d %d" % (recv_ns, conn, sid, seq)


def parse_meta(meta: bytes) -> tuple[int | None, bytes, int | None, int | None]:
    """``(recv_ns, conn, sid, seq)`` of an ``m`` field; a missing or malformed part is None (``conn``: empty).

    Never raises: a foreign entry yields what can be read of it.
    """
    parts = meta.split(b" ")
    if len(parts) != 4:
        return None, b"", None, None
    recv, conn, sid, seq = parts
    try:
        return (int(recv) if recv else None), conn, (int(sid) if sid else None), (int(seq) if seq else None)
    except ValueError:
        return None, conn, None, None


def track_seq(last: int | None, seq: int, *, snapshot: bool = False, control: bool = False) -> int:
    """A sid's tracked ``seq`` after a message numbered ``seq``: the same rule on the relay (for checkpoints)
    and on consumers. Data messages moving forward (in order or across a gap) advance it; a snapshot may restart
    the numbering lower; a command answer (``ok``, ``error``...) advances it only when exactly in order, so a
    jump shows as a gap at the next data message; anything else is a duplicate and leaves it."""
    if last is None or snapshot:
        return seq
    if control:
        return seq if seq == last + 1 else last
    return seq if seq > last else last
