"""Book checkpoints: every book of the relay with its source, ``seq`` and ``clock``, at one stream entry.

A consumer that starts at the ``checkpoint`` entry with id ``entry_id`` loads these books and the sids' tracked
``seq``, then applies the entries after it: the result is exactly what it would hold had it read the stream from
the relay's start. Encoded as compact JSON (msgspec), levels as ``[price_ticks, size_units]`` integers.
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = ["BookEntry", "Checkpoint", "SidEntry", "decode_checkpoint", "encode_checkpoint"]


class BookEntry(msgspec.Struct, gc=False):
    """One market's book: YES and NO bids as ``[price_ticks, size_units]``."""

    ticker: str
    c: str
    sid: int
    seq: int | None
    clock: int | None
    yes: list[list[int]]
    no: list[list[int]]


class SidEntry(msgspec.Struct, gc=False):
    """A subscription's tracked ``seq`` on connection ``c``."""

    c: str
    sid: int
    seq: int
    channel: str = ""


class Checkpoint(msgspec.Struct, gc=False):
    """Every book at stream entry ``entry_id`` of the ``orderbook_delta`` stream."""

    entry_id: str
    taken_ns: int
    connections: list[str]
    books: list[BookEntry]
    sids: list[SidEntry]


_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(Checkpoint)


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    return _ENCODER.encode(checkpoint)


def decode_checkpoint(data: bytes) -> Checkpoint:
    """Raises:
    msgspec.DecodeError: not a checkpoint (a foreign key under the relay's prefix).
    """
    return _DECODER.decode(data)
