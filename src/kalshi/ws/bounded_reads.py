"""At most :data:`MAX_READ_BYTES` per socket read, so one read never turns into thousands of frames at once.

picows doubles its read buffer whenever a read fills it, so a client that falls behind a fast feed soon reads
megabytes per call and parses every frame in them before the event loop runs anything else. The messages of
such a burst are all alive at the same time: a consumer far behind pays for memory that no longer fits the CPU
cache, and under ``OverflowStrategy.BLOCK`` most of the burst arrives after the queue asked for a pause and has
to be held and replayed. Bounding each read keeps a burst to a few thousand frames; the kernel keeps the rest
(TCP flow control as usual: the window is not made smaller, only each read).

:func:`bound_reads` puts :class:`BoundedReads` between the asyncio transport and picows' protocol once the
WebSocket is open. A message larger than the bound still arrives whole: picows keeps growing its buffer for a
frame in progress, only each read is shorter.
"""

from __future__ import annotations

import asyncio
from typing import Final

__all__ = ["MAX_READ_BYTES", "BoundedReads", "bound_reads"]

# Measured with bench/ws_throughput.py against a firehose: 256 KiB per read cost 0.3-0.5 CPU-us less per message
# than unbounded reads for a consumer behind the feed, and the same for one that keeps up (32 KiB and 512 KiB
# were both slower than 256 KiB).
MAX_READ_BYTES: Final = 256 * 1024


class BoundedReads(asyncio.BufferedProtocol):
    """``protocol`` with every buffer it offers cut to ``limit`` bytes; everything else is passed through."""

    __slots__ = ("_limit", "protocol")

    def __init__(self, protocol: asyncio.BufferedProtocol, limit: int = MAX_READ_BYTES) -> None:
        if limit < 1:
            raise ValueError("the read limit must be at least one byte")
        self.protocol = protocol
        self._limit = limit

    def get_buffer(self, sizehint: int) -> memoryview:
        buffer = memoryview(self.protocol.get_buffer(sizehint))
        return buffer[: self._limit] if len(buffer) > self._limit else buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.protocol.buffer_updated(nbytes)

    def eof_received(self) -> bool | None:
        return self.protocol.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()


def bound_reads(transport: asyncio.BaseTransport, limit: int = MAX_READ_BYTES) -> None:
    """Make ``transport`` read at most ``limit`` bytes at a time into its (buffered) protocol; a transport whose
    protocol is not a :class:`asyncio.BufferedProtocol` is left as it is."""
    protocol = transport.get_protocol()
    if isinstance(protocol, asyncio.BufferedProtocol) and not isinstance(protocol, BoundedReads):
        transport.set_protocol(BoundedReads(protocol, limit))
