"""One accepted WebSocket connection of the simulator: reader, writer, heartbeat, and connection faults.

The writer drains the connection's :class:`Outbox` in batches and writes ready-made WebSocket text frames
straight to the transport (server frames are unmasked, so framing is a 2-10 byte header): one
``transport.write`` per batch instead of one per message. aiohttp still owns the handshake, reading, control
frames (ping, pong, close) and flow control (``drain``). Compression is never negotiated, so raw frames are
valid.

Heartbeat: a ping with body ``heartbeat`` every ``ping_interval`` seconds; a client that leaves a ping
unanswered for ``ping_timeout`` seconds is closed with 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp.abc import AbstractStreamWriter

from kalshi.sim.faults import FaultController
from kalshi.sim.ws.fanout import Outbox
from kalshi.sim.ws.session import WsSession

if TYPE_CHECKING:
    from asyncio import Transport

__all__ = ["SimConnection", "frame_header"]

log = logging.getLogger(__name__)

_BATCH_FRAMES: Final = 4096
_PING_BODY: Final = b"heartbeat"


def frame_header(length: int) -> bytes:
    """Header of an unmasked, final WebSocket text frame carrying ``length`` payload bytes."""
    if length < 126:
        return bytes((0x81, length))
    if length < 65536:
        return b"\x81\x7e" + length.to_bytes(2, "big")
    return b"\x81\x7f" + length.to_bytes(8, "big")


# Headers of every frame length below 4 KiB, built once (most messages are 100-400 bytes).
_HEADERS: Final = tuple(frame_header(n) for n in range(4096))
_N_HEADERS: Final = len(_HEADERS)


def _frames_to_bytes(batch: list[bytes]) -> bytes:
    """Concatenate text frames, each behind its header."""
    headers = _HEADERS
    limit = _N_HEADERS
    parts = [headers[n] if n < limit else frame_header(n) for n in map(len, batch)]
    return b"".join(itertools.chain.from_iterable(zip(parts, batch, strict=True)))


class SimConnection:
    """The tasks and state of one client connection."""

    def __init__(
        self,
        conn_id: int,
        *,
        ws: web.WebSocketResponse,
        stream: AbstractStreamWriter,
        transport: Transport,
        outbox: Outbox,
        session: WsSession,
        faults: FaultController,
        key_id: str | None,
        ping_interval: float,
        ping_timeout: float,
        before_command: Callable[[], object],
    ) -> None:
        self.conn_id = conn_id
        self.ws = ws
        self.key_id = key_id
        self.account = outbox.account
        self.outbox = outbox
        self.session = session
        self.faults = faults
        self._stream = stream
        self._transport = transport
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._before_command = before_command
        self._wake = asyncio.Event()
        outbox.set_wakeup(self._wake.set)
        self._commands: deque[tuple[float, str | bytes]] = deque()
        self._command_task: asyncio.Task[None] | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self._ping_task: asyncio.Task[None] | None = None
        self._pending_drop: asyncio.Task[None] | None = None
        self._writing = False
        self._stalled_until = 0.0
        self._drop_after: int | None = None
        self._drop_clean = False
        self._unanswered_since: float | None = None
        self.frames_written = 0
        self.pings_sent = 0
        self.pongs_received = 0
        self.closed = False
        self.close_reason = ""

    # -- lifecycle --------------------------------------------------------------------------------------------

    async def serve(self) -> None:
        """Run until the client leaves or the server drops the connection."""
        self._writer_task = asyncio.create_task(self._write_loop(), name=f"sim-writer-{self.conn_id}")
        if self._ping_interval > 0:
            self._ping_task = asyncio.create_task(self._ping_loop(), name=f"sim-ping-{self.conn_id}")
        try:
            await self._read_loop()
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        self.closed = True
        self.session.close()
        tasks = [
            t
            for t in (self._writer_task, self._ping_task, self._command_task, self._pending_drop)
            if t is not None and t is not asyncio.current_task()
        ]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.close()

    async def _read_loop(self) -> None:
        ws = self.ws
        while True:
            msg = await ws.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                self._on_command(msg.data)
            elif kind is WSMsgType.PING:
                if self.faults.ignoring_pings:
                    self.faults.note("ignore_ping")
                else:
                    with contextlib.suppress(ConnectionError):
                        await ws.pong(msg.data)
            elif kind is WSMsgType.PONG:
                self.pongs_received += 1
                self._unanswered_since = None
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                if not self.close_reason:
                    self.close_reason = "client closed"
                return

    # -- commands ---------------------------------------------------------------------------------------------

    def _on_command(self, data: str | bytes) -> None:
        delay = self.faults.delay_acks_s
        if delay <= 0 and not self._commands:
            self._before_command()
            self.session.receive(data)
            return
        if delay > 0:
            self.faults.note("delay_ack")
        self._commands.append((time.monotonic() + delay, data))
        if self._command_task is None or self._command_task.done():
            self._command_task = asyncio.create_task(self._command_loop(), name=f"sim-commands-{self.conn_id}")

    async def _command_loop(self) -> None:
        commands = self._commands
        while commands:
            due, data = commands[0]
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            commands.popleft()
            self._before_command()
            self.session.receive(data)

    # -- writing ----------------------------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        frames = self.outbox.frames
        wake = self._wake
        transport = self._transport
        popleft = frames.popleft
        try:
            while True:
                stall = self._stalled_until - time.monotonic()
                if stall > 0:
                    await asyncio.sleep(stall)
                    continue
                if not frames:
                    self._writing = False
                    wake.clear()
                    await wake.wait()
                    continue
                self._writing = True
                n = min(len(frames), _BATCH_FRAMES)
                if self._drop_after is not None:
                    n = min(n, self._drop_after)
                batch = [popleft() for _ in range(n)]
                if transport.is_closing():
                    return
                transport.write(_frames_to_bytes(batch))
                self.frames_written += n
                if self._drop_after is not None:
                    self._drop_after -= n
                    if self._drop_after <= 0:
                        await self._drop_now()
                        return
                await self._stream.drain()
        except (ConnectionError, RuntimeError) as exc:
            log.debug("connection %d: writer stopped: %s", self.conn_id, exc)

    @property
    def idle(self) -> bool:
        """Nothing left to write: queue empty, no command pending, transport buffer flushed."""
        if self.closed:
            return True
        return (
            self.outbox.idle
            and not self._commands
            and not self._writing
            and self._transport.get_write_buffer_size() == 0
        )

    # -- heartbeat --------------------------------------------------------------------------------------------

    async def _ping_loop(self) -> None:
        interval = self._ping_interval
        next_ping = time.monotonic() + interval
        try:
            while True:
                now = time.monotonic()
                deadline = next_ping
                if self._unanswered_since is not None:
                    deadline = min(deadline, self._unanswered_since + self._ping_timeout)
                if deadline > now:
                    await asyncio.sleep(deadline - now)
                    continue
                if self._unanswered_since is not None and now - self._unanswered_since >= self._ping_timeout:
                    self.close_reason = "no pong"
                    await self.ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"heartbeat timeout")
                    return
                if now >= next_ping:
                    next_ping = now + interval
                    if now >= self._stalled_until:
                        await self.ws.ping(_PING_BODY)
                        self.pings_sent += 1
                        if self._unanswered_since is None:
                            self._unanswered_since = now
        except (ConnectionError, RuntimeError) as exc:
            log.debug("connection %d: heartbeat stopped: %s", self.conn_id, exc)

    # -- faults -----------------------------------------------------------------------------------------------

    def drop(self, *, after_messages: int = 0, clean: bool = False) -> None:
        """Drop the connection now (abort, or close 1001 when ``clean``) or after ``after_messages`` frames."""
        self._drop_clean = clean
        if after_messages > 0:
            self._drop_after = after_messages
            return
        if clean:
            # Kept: a task must not be garbage collected while it runs.
            self._pending_drop = asyncio.get_running_loop().create_task(self._drop_now())
            return
        self.faults.note("drop")
        self.close_reason = "dropped"
        self._transport.abort()

    async def _drop_now(self) -> None:
        self.faults.note("drop")
        self.close_reason = "dropped"
        if self._drop_clean:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"simulated drop")
        else:
            self._transport.abort()

    async def close_going_away(self) -> None:
        """Close with 1001 (server shutting down) and wait for the connection's tasks to end."""
        self.close_reason = "server stopped"
        with contextlib.suppress(ConnectionError, RuntimeError):
            await asyncio.wait_for(self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"simulator stopping"), 2.0)

    def stall(self, duration: float) -> None:
        """Stop writing (frames and pings) for ``duration`` seconds."""
        self.faults.note("stall")
        self._stalled_until = max(self._stalled_until, time.monotonic() + duration)
        self._wake.set()
