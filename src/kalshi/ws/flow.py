"""Read-side flow control of the streaming client: when the socket is paused, and when it must not stay paused.

Every lossless queue (a BLOCK subscription queue, a callback queue) reports pressure with two watermarks (see
:meth:`~kalshi.ws.backpressure.MessageQueue.watch_pressure`): at its high watermark it calls :meth:`FlowControl.hold`
once, at its low watermark :meth:`FlowControl.release` once. Reading is paused while any queue holds it, so the
exchange's TCP window closes and nothing is lost; there is no per-message check and no task per pause.

The pause takes effect after the frames already read from the socket are processed (a ``call_soon``): pausing in
the middle of a read would park the rest of it in the transport and feed it back frame by frame, the slow path.
Queues therefore overshoot ``maxsize`` by at most one socket read.

One exception: while a command awaits its answer, reading never pauses (the answer arrives on the same socket, so
pausing would stall the command until it times out). Queues may then overshoot ``maxsize`` by what arrives during
one command round trip; when the last command is answered the pause is re-applied if a queue still holds it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable

from kalshi.ws.transport import Connection

__all__ = ["FlowControl"]

logger = logging.getLogger(__name__)


class FlowControl:
    """Pauses and resumes the client's current connection (set with :meth:`use`, swapped on every reconnect)."""

    __slots__ = ("_commands", "_conn", "_holds", "_pausing", "_stopped", "pauses")

    def __init__(self) -> None:
        self._holds: set[Hashable] = set()
        self._commands = 0
        self._pausing: asyncio.Handle | None = None
        self._conn: Connection | None = None
        self._stopped = False
        self.pauses = 0
        """How many times reading was paused (cumulative)."""

    def __repr__(self) -> str:
        return f"FlowControl(holds={len(self._holds)}, commands={self._commands}, paused={self.paused})"

    @property
    def paused(self) -> bool:
        conn = self._conn
        return conn is not None and conn.paused

    @property
    def held(self) -> bool:
        """True while some queue wants reading paused."""
        return bool(self._holds)

    def use(self, conn: Connection) -> None:
        """A new connection: it starts reading; pause it when the commands in flight are answered."""
        self._cancel_pausing()
        self._conn = conn
        self._stopped = False
        self._schedule()

    def hold(self, source: Hashable) -> None:
        """``source`` reached its high watermark: pause reading (after the current read) until released."""
        self._holds.add(source)
        self._schedule()

    def release(self, source: Hashable) -> None:
        """``source`` drained to its low watermark; reading resumes when nothing else holds it."""
        self._holds.discard(source)
        if not self._holds:
            self._resume()

    def command_started(self) -> None:
        """A command awaits its answer: read now, whatever holds."""
        self._commands += 1
        if self._holds and logger.isEnabledFor(logging.DEBUG):
            logger.debug("resuming reads for a command; queues may overshoot until it is answered")
        self._resume()

    def command_finished(self) -> None:
        self._commands -= 1
        self._schedule()

    def stop_reading(self) -> None:
        """Pause for good (fatal teardown): nothing may be processed any more; the connection is closing."""
        self._cancel_pausing()
        self._stopped = True
        conn = self._conn
        if conn is not None and not conn.paused and not conn.closed:
            conn.pause_reading()

    def clear(self) -> None:
        """Forget every hold (the session ended)."""
        self._holds.clear()
        self._commands = 0
        self._resume()

    def _schedule(self) -> None:
        if self._holds and not self._commands and self._pausing is None and not self.paused:
            self._pausing = asyncio.get_running_loop().call_soon(self._pause_now)

    def _pause_now(self) -> None:
        self._pausing = None
        conn = self._conn
        if conn is None or conn.paused or conn.closed or self._commands or not self._holds:
            return
        conn.pause_reading()
        self.pauses += 1

    def _resume(self) -> None:
        self._cancel_pausing()
        conn = self._conn
        if conn is not None and conn.paused and not conn.closed and not self._stopped:
            conn.resume_reading()

    def _cancel_pausing(self) -> None:
        handle, self._pausing = self._pausing, None
        if handle is not None:
            handle.cancel()
