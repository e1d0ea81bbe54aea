"""Read-side flow control of the streaming client: when to pause the socket, and when it must not stay paused.

A ``BLOCK`` subscription queue (or a callback queue) that fills up pauses socket reads, so the exchange's TCP
window closes and nothing is lost; reading resumes once that queue has drained to half. The pause takes effect
after the frames already read from the socket are processed (a ``call_soon``): pausing in the middle of a read
would park the rest of it in the transport and feed it back frame by frame, the slow path. Queues therefore
overshoot ``maxsize`` by at most one socket read.

One exception: while a command awaits its answer, reading never pauses (the answer arrives on the same socket, so
pausing would stall the command until it times out). Queues may then overshoot ``maxsize`` by what arrives during
one command round trip; when the last command is answered, the client re-applies backpressure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from kalshi.ws.transport import Connection

__all__ = ["FlowControl"]

logger = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


class FlowControl:
    """Pauses and resumes one client's current connection (``conn`` is swapped on every reconnect).

    Args:
        spawn: runs a coroutine as a kept task (the client's HookRunner).
        commands_in_flight: True while a command awaits its answer.
    """

    def __init__(self, spawn: Spawn, commands_in_flight: Callable[[], bool]) -> None:
        self._spawn = spawn
        self._commands_in_flight = commands_in_flight
        self._resume_task: asyncio.Task[Any] | None = None
        self._pausing: asyncio.Handle | None = None
        self.conn: Connection | None = None
        self.pauses = 0

    @property
    def armed(self) -> bool:
        """A pause is scheduled or in force (cheap check for the receive path)."""
        return self._pausing is not None or self.paused

    @property
    def paused(self) -> bool:
        conn = self.conn
        return conn is not None and conn.paused

    def pause(self, space: Callable[[], Awaitable[None]], full: Callable[[], bool]) -> None:
        """Stop reading once the current read is processed, if ``full()`` still holds then, until ``space()``
        completes (the queue drained)."""
        if self._pausing is None and not self.paused:
            self._pausing = asyncio.get_running_loop().call_soon(self._pause_now, space, full)

    def _pause_now(self, space: Callable[[], Awaitable[None]], full: Callable[[], bool]) -> None:
        self._pausing = None
        conn = self.conn
        if conn is None or conn.paused or conn.closed or self._commands_in_flight() or not full():
            return
        conn.pause_reading()
        self.pauses += 1
        self._resume_task = self._spawn(self._resume_when(conn, space))

    async def _resume_when(self, conn: Connection, space: Callable[[], Awaitable[None]]) -> None:
        await space()
        if conn is self.conn and not conn.closed:
            conn.resume_reading()

    def stop_reading(self) -> None:
        """Pause for good (fatal teardown): nothing may be processed any more; the connection is closing."""
        self._cancel_pausing()
        task, self._resume_task = self._resume_task, None
        if task is not None and not task.done():
            task.cancel()
        conn = self.conn
        if conn is not None and not conn.paused and not conn.closed:
            conn.pause_reading()

    def unpause(self) -> None:
        """Read again now (a command is about to be sent, or the connection is being replaced)."""
        self._cancel_pausing()
        task, self._resume_task = self._resume_task, None
        if task is not None and not task.done():
            task.cancel()
        conn = self.conn
        if conn is not None and conn.paused and not conn.closed:
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("resuming reads for a command; queues may overshoot until it is answered")
            conn.resume_reading()

    def _cancel_pausing(self) -> None:
        handle, self._pausing = self._pausing, None
        if handle is not None:
            handle.cancel()
