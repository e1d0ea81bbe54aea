"""RESP2 encoding of the few commands the relay pipelines (sans-I/O, no Redis client needed).

The relay writes tens of thousands of ``XADD`` per second; building each command as one ``bytes % (...)`` with a
precomputed per-stream head costs about a microsecond, several times less than a general command encoder.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["REPLY_OFF", "REPLY_ON", "XaddHead", "pack_command"]


def pack_command(*args: bytes | str | int) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else (b"%d" % arg if isinstance(arg, int) else arg)
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


REPLY_OFF: Final = pack_command("CLIENT", "REPLY", "OFF")
REPLY_ON: Final = pack_command("CLIENT", "REPLY", "ON")


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(data), data)


class XaddHead:
    """``XADD <key> MAXLEN ~ <maxlen>`` (or without trimming), ready to be completed with an id and fields."""

    __slots__ = ("_frame_head", "_tail", "fixed_args", "key")

    def __init__(self, key: str, maxlen: int | None) -> None:
        self.key = key
        tail = _bulk(b"XADD") + _bulk(key.encode())
        if maxlen is not None:
            tail += _bulk(b"MAXLEN") + _bulk(b"~") + _bulk(b"%d" % maxlen)
        self._tail = tail
        self.fixed_args = 5 if maxlen is not None else 2
        self._frame_head = b"*%d\r\n%b" % (self.fixed_args + 5, tail)  # the id and two field pairs follow

    def frame(
        self, entry_id: bytes, frame: bytes, recv_ns: int, conn: bytes, sid: int | None, seq: int | None
    ) -> bytes:
        """A data entry: fields ``f`` (the frame) and ``m`` (see :func:`kalshi.relay.layout.format_meta`;
        ``conn`` is the connection tag, e.g. ``b"0.1"``)."""
        if sid is None:
            meta = b"%d %b  " % (recv_ns, conn)
        elif seq is None:
            meta = b"%d %b %d " % (recv_ns, conn, sid)
        else:
            meta = b"%d %b %d %d" % (recv_ns, conn, sid, seq)
        # One formatting pass, so the frame (the bulk of the bytes) is copied once.
        return b"%b$%d\r\n%b\r\n$1\r\nf\r\n$%d\r\n%b\r\n$1\r\nm\r\n$%d\r\n%b\r\n" % (
            self._frame_head,
            len(entry_id),
            entry_id,
            len(frame),
            frame,
            len(meta),
            meta,
        )

    def fields(self, entry_id: bytes, pairs: Iterable[tuple[bytes, bytes]]) -> bytes:
        """An entry with arbitrary fields (control entries)."""
        items = list(pairs)
        parts = [b"*%d\r\n" % (self.fixed_args + 1 + 2 * len(items)), self._tail, _bulk(entry_id)]
        for name, value in items:
            parts.append(_bulk(name))
            parts.append(_bulk(value))
        return b"".join(parts)


def bulk(data: bytes) -> bytes:
    """``data`` as a RESP bulk string (to precompute values repeated on every entry)."""
    return _bulk(data)


__all__ += ["bulk"]
