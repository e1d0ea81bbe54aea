"""The command channel of the streaming client: send a command, match its answers by id, time it out.

One job. The sans-I/O :class:`~kalshi.ws.protocol.ClientProtocol` encodes commands and pairs responses with their
ids; this glue flushes the encoded frames to the current connection, parks the caller on a future until the
final answer arrives on the receive path (:meth:`CommandChannel.answer`, called synchronously for every
:class:`~kalshi.ws.protocol.CommandResponse`), and keeps reading unpaused meanwhile (the answer arrives on the
same socket).

``get_snapshot`` has no answer of its own: the server sends one ``orderbook_snapshot`` per market carrying the
command id, so the command completes when :meth:`CommandChannel.snapshot_arrived` has seen them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kalshi.errors import KalshiSubscriptionError
from kalshi.ws.flow import FlowControl
from kalshi.ws.models import ErrorMessage, SubscribedMessage
from kalshi.ws.protocol import ClientProtocol, CommandResponse
from kalshi.ws.transport import Connection

__all__ = ["CommandChannel"]

Unanswered = Callable[[ErrorMessage], None]
OnSubscribed = Callable[[int], None]
OnConfirmed = Callable[[], None]


class _Waiter:
    __slots__ = ("future", "on_confirmed", "on_subscribed", "responses", "snapshots")

    def __init__(
        self,
        future: asyncio.Future[list[Any]],
        on_subscribed: OnSubscribed | None,
        on_confirmed: OnConfirmed | None = None,
    ) -> None:
        self.future = future
        self.responses: list[Any] = []
        self.on_subscribed = on_subscribed
        self.on_confirmed = on_confirmed
        self.snapshots: set[str] | None = None


class CommandChannel:
    """Round trips of commands over the current connection.

    Args:
        proto: the session's protocol (encodes commands, matches responses).
        flow: reading stays unpaused while a command is in flight.
        timeout: seconds to wait for an answer.
        unanswered: called with an ``error`` that answers no pending command (it still reaches ``on_error``).
    """

    def __init__(self, proto: ClientProtocol, flow: FlowControl, timeout: float, unanswered: Unanswered) -> None:
        self._proto = proto
        self._flow = flow
        self._timeout = timeout
        self._unanswered = unanswered
        self._waiting: dict[int, _Waiter] = {}
        self._conn: Connection | None = None
        self.connection_id = 0
        """Counts the connections used so far: a server sid is valid only on the connection that gave it."""

    def __repr__(self) -> str:
        return f"CommandChannel(in_flight={sorted(self._waiting)})"

    @property
    def in_flight(self) -> list[int]:
        """Ids of the commands awaiting an answer."""
        return list(self._waiting)

    def use(self, conn: Connection | None) -> None:
        """Send on ``conn`` from now on (None: no connection)."""
        self._conn = conn
        if conn is not None:
            self.connection_id += 1

    @property
    def timeout(self) -> float:
        """Seconds to wait for an answer."""
        return self._timeout

    @property
    def connected(self) -> bool:
        conn = self._conn
        return conn is not None and not conn.closed

    async def request(
        self, cmd_id: int, *, on_subscribed: OnSubscribed | None = None, on_confirmed: OnConfirmed | None = None
    ) -> list[Any]:
        """Flush the queued commands and wait for the final response to ``cmd_id``.

        Args:
            cmd_id: the id the protocol gave the command.
            on_subscribed: called synchronously with the sid of each ``subscribed`` answer, before the next frame
                is processed (the snapshots that follow ``subscribed`` in the same read must find their route).
            on_confirmed: called synchronously when the final answer confirms the command, before the next frame
                is processed (an edit takes effect in frame order, not when the caller resumes).

        Returns:
            Every response to the command, in order.

        Raises:
            KalshiCommandError: the server answered ``error``.
            KalshiSubscriptionError: no answer within the command timeout, or the connection is down.
        """
        future = asyncio.get_running_loop().create_future()
        return await self._wait(cmd_id, _Waiter(future, on_subscribed, on_confirmed))

    async def get_snapshot(self, sid: int, tickers: list[str]) -> None:
        """Send ``get_snapshot`` and wait until a snapshot of every market arrived (or an error).

        Raises:
            KalshiCommandError: the server refused.
            KalshiSubscriptionError: not every snapshot came in time, or the connection is down.
        """
        cmd_id = self._proto.send_get_snapshot(sid, tickers)
        waiter = _Waiter(asyncio.get_running_loop().create_future(), None)
        waiter.snapshots = set(tickers)
        try:
            await self._wait(cmd_id, waiter)
        finally:
            self._proto.forget_command(cmd_id)

    async def _wait(self, cmd_id: int, waiter: _Waiter) -> list[Any]:
        self._waiting[cmd_id] = waiter
        self._flow.command_started()
        try:
            self._flush()
            async with asyncio.timeout(self._timeout):
                return await waiter.future
        except TimeoutError:
            self._proto.forget_command(cmd_id)
            raise KalshiSubscriptionError(
                f"no answer to command {cmd_id} within {self._timeout} s; the connection may be stalled"
            ) from None
        finally:
            del self._waiting[cmd_id]
            self._flow.command_finished()

    def _flush(self) -> None:
        frames = self._proto.data_to_send()
        conn = self._conn
        if conn is None or conn.closed:
            raise KalshiSubscriptionError(
                "the connection is down: the command was not sent (subscriptions are restored by the reconnect;"
                " other commands must be sent again once the session is streaming)"
            )
        for frame in frames:
            conn.send(frame)

    # ------------------------------------------------------------------ receive path

    def answer(self, event: CommandResponse) -> None:
        """A response arrived (synchronously, in frame order)."""
        cmd_id = event.cmd_id
        message = event.message
        waiter = self._waiting.get(cmd_id) if cmd_id is not None else None
        if waiter is None:
            if isinstance(message, ErrorMessage):
                self._unanswered(message)
            return
        waiter.responses.append(message)
        if waiter.on_subscribed is not None and isinstance(message, SubscribedMessage):
            waiter.on_subscribed(message.msg.sid)
        future = waiter.future
        if future.done():
            return
        if isinstance(message, ErrorMessage):
            future.set_exception(message.to_error())
        elif event.final and waiter.snapshots is None:
            if waiter.on_confirmed is not None:
                waiter.on_confirmed()
            future.set_result(waiter.responses)

    def snapshot_arrived(self, cmd_id: int, ticker: str) -> None:
        """A snapshot answering ``get_snapshot`` ``cmd_id`` arrived."""
        waiter = self._waiting.get(cmd_id)
        if waiter is None or waiter.snapshots is None:
            return
        waiter.snapshots.discard(ticker)
        if not waiter.snapshots and not waiter.future.done():
            waiter.future.set_result(waiter.responses)

    def connection_lost(self) -> None:
        """Fail every command in flight: its answer can no longer come."""
        for waiter in self._waiting.values():
            if not waiter.future.done():
                waiter.future.set_exception(KalshiSubscriptionError("the connection closed before the server answered"))
