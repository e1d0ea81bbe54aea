"""One OpenMarkets WebSocket connection: open, greeting, command answers, reconnect. The stream owns several.

Built on kalshi-kit's streaming core: :func:`kalshi.ws.transport.open_connection` (picows frames, answering the
server's pings, silence detection, pause/resume) and the same :class:`~kalshi.ws.supervisor.Supervisor` as
:class:`~kalshi.ws.KalshiWebSocket` (connect, capped full-jitter reconnects, typed lifecycle events).

The protocol has no command ids: the server answers each connection's commands in order, so a ``subscribed``
answers the oldest pending subscribe on that channel, ``unsubscribed`` the oldest unsubscribe, ``pong`` the
oldest ping, and an ``error`` the oldest command of any kind.

Frames are decoded synchronously in the transport's callback and handed to the owner (the stream); updates
take a fast path with no isinstance chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Final, Protocol, TypeVar

from kalshi.errors import KalshiConfigError, KalshiConnectionError, KalshiError, KalshiHandshakeError
from kalshi.ws.connection import REASON_CALLBACK_ERROR, CloseInfo, ConnectionState
from kalshi.ws.lifecycle import LifecycleBus
from kalshi.ws.supervisor import Attempt, RetryPolicy, Supervisor
from kalshi.ws.transport import Connection, open_connection
from openmarkets.errors import (
    ConnectionLimitError,
    OpenMarketsAuthError,
    OpenMarketsConnectionError,
    OpenMarketsError,
    OpenMarketsProtocolError,
    error_for_code,
)
from openmarkets.models import (
    ConnectedMessage,
    ContestStateUpdate,
    ErrorMessage,
    LiquidityUpdate,
    Message,
    PongMessage,
    SubscribedMessage,
    UnknownMessage,
    UnsubscribedMessage,
    decode_message,
    encode_command,
)

__all__ = ["Link", "LinkOwner", "LinkSettings"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_PING: Final = encode_command("ping")
_CLOSE_NORMAL: Final = 1000
_CLOSE_STALLED: Final = 4000  # a private-use code: "no answer to a command"


class LinkOwner(Protocol):
    """What a link reports to the stream that owns it (all called on the event loop)."""

    def link_message(self, link: Link, message: Message | UnknownMessage) -> None: ...

    def link_protocol_error(self, link: Link, error: OpenMarketsProtocolError) -> None: ...

    def link_lost(self, link: Link) -> None: ...

    def link_state_changed(self, link: Link) -> None: ...

    async def link_reconnected(self, link: Link) -> None: ...

    def link_failed(self, link: Link, error: OpenMarketsError) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSettings:
    """Connection settings shared by a stream's links. ``url`` holds the key and is kept out of the repr."""

    url: str = field(repr=False)
    display_url: str
    connect_timeout: float
    command_timeout: float
    heartbeat_interval: float
    heartbeat_timeout: float
    verify_tls: bool
    reconnect_base_delay: float
    reconnect_max_delay: float
    max_reconnect_attempts: int
    rng: random.Random = field(repr=False, compare=False)


@dataclass(slots=True)
class _Pending:
    kind: type[SubscribedMessage] | type[UnsubscribedMessage]
    channel: str
    future: asyncio.Future[SubscribedMessage | UnsubscribedMessage]


class Link:
    """One connection of a stream, numbered from 0, with its share of the contests (``desired``)."""

    def __init__(self, owner: LinkOwner, settings: LinkSettings, number: int, bus: LifecycleBus | None = None) -> None:
        self.number = number
        # channel -> contest ids (ordered) this connection should be subscribed to; restored after reconnects.
        self.desired: dict[str, dict[str, None]] = {}
        self.greeting: ConnectedMessage | None = None
        self.frames_received = 0
        self.supervisor: asyncio.Task[None] | None = None  # the owner's watcher of this link (see supervise())
        self._owner = owner
        self._settings = settings
        self._conn: Connection | None = None
        self._closing = False
        self._ready = asyncio.Event()
        self._greeted: asyncio.Future[ConnectedMessage] | None = None
        self._commands: deque[_Pending] = deque()
        self._pings: deque[asyncio.Future[PongMessage]] = deque()
        self._hold = False  # the owner wants reading paused (a BLOCK feed is full)
        self._awaiting = 0  # commands and pings awaiting their answer: reading stays on meanwhile
        self._stalled = False  # we closed the connection because an answer never came: reconnect
        self._keeper = Supervisor(
            url=settings.display_url,
            connect=self._open_once,
            restore=self._restore,
            classify=_judge_attempt,
            retry_on=(OpenMarketsError,),
            policy=RetryPolicy(
                settings.reconnect_base_delay, settings.reconnect_max_delay, settings.max_reconnect_attempts
            ),
            bus=bus if bus is not None else LifecycleBus(),
            on_state=self._state_changed,
            may_reconnect=self._may_reconnect,
            announce_close=False,  # one connection of several: the stream announces its own end
            rng=settings.rng,
        )

    def __repr__(self) -> str:
        return f"Link({self.number}, {self.state.value}, contests={self.contest_count})"

    # ------------------------------------------------------------------ facts

    @property
    def state(self) -> ConnectionState:
        return self._keeper.state

    @property
    def reconnects(self) -> int:
        return self._keeper.reconnects

    @property
    def last_close(self) -> CloseInfo | None:
        return self._keeper.last_close

    @property
    def contests(self) -> dict[str, None]:
        """Every contest this connection carries, over all channels (ordered, no duplicates)."""
        union: dict[str, None] = {}
        for ids in self.desired.values():
            union.update(ids)
        return union

    @property
    def contest_count(self) -> int:
        return len(self.contests)

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def paused(self) -> bool:
        """True while the owner holds reading paused (even if it is resumed for a command's answer)."""
        return self._hold

    def pause_reading(self) -> None:
        """Stop reading until :meth:`resume_reading`; a command or ping sent meanwhile reads until answered."""
        self._hold = True
        self._apply_hold()

    def resume_reading(self) -> None:
        self._hold = False
        self._apply_hold()

    def _apply_hold(self) -> None:
        # The answer to a command comes on this socket, behind the updates: pausing while one is awaited
        # would stall it until it timed out.
        conn = self._conn
        if conn is None or conn.closed:
            return
        if self._hold and not self._awaiting:
            conn.pause_reading()
        elif conn.paused:
            conn.resume_reading()

    async def wait_ready(self) -> None:
        """Wait until connected with every subscription of ``desired`` restored."""
        await self._ready.wait()

    def set_streaming(self) -> None:
        """Called by the owner once the subscriptions are in place."""
        if self.connected:
            self._ready.set()
            self._keeper.streaming()

    # ------------------------------------------------------------------ opening

    async def open(self) -> None:
        """Open the link's first connection, retrying with capped full-jitter backoff; no retry after 401/403,
        and a 429 (connection limit) is raised at once. Reconnects later are the supervisor's.

        Raises:
            OpenMarketsAuthError: the key was refused.
            ConnectionLimitError: the key holds its maximum of connections.
            OpenMarketsConnectionError: every attempt failed.
        """
        try:
            await self._keeper.start()
        except KalshiConnectionError as exc:
            if isinstance(exc, OpenMarketsError):
                raise
            raise OpenMarketsConnectionError(f"connection {self.number} was closed while connecting") from exc

    async def _open_once(self) -> None:
        settings = self._settings
        where = settings.display_url
        self._ready.clear()
        self._stalled = False
        self.greeting = None
        greeted: asyncio.Future[ConnectedMessage] = asyncio.get_running_loop().create_future()
        self._greeted = greeted
        try:
            conn = await open_connection(
                settings.url,
                headers={},  # the key travels as the api_key query parameter
                on_frame=self._on_frame,
                on_close=self._on_close,
                connect_timeout=settings.connect_timeout,
                heartbeat_interval=settings.heartbeat_interval,
                heartbeat_timeout=settings.heartbeat_timeout,
                verify_tls=settings.verify_tls,
            )
        except KalshiHandshakeError as exc:
            raise _handshake_error(exc, where) from exc
        except KalshiConfigError:
            # Not chained: the lower error quotes the URL, and with it the key.
            raise OpenMarketsConnectionError(f"not a usable WebSocket URL: {where}; use wss://host/path") from None
        except KalshiConnectionError as exc:
            raise OpenMarketsConnectionError(f"could not connect to {where}: {exc}") from exc
        self._conn = conn
        try:
            async with asyncio.timeout(settings.connect_timeout):
                await greeted
        except TimeoutError:
            with contextlib.suppress(KalshiError, OSError):
                await conn.close(_CLOSE_NORMAL, "")
            raise OpenMarketsConnectionError(
                f"{where} sent no 'connected' greeting within {settings.connect_timeout} s"
            ) from None
        logger.info("connection %d open to %s", self.number, where)

    # ------------------------------------------------------------------ receive path

    def _on_frame(self, data: bytes) -> None:
        self.frames_received += 1
        try:
            message = decode_message(data)
        except OpenMarketsProtocolError as exc:
            self._owner.link_protocol_error(self, exc)
            return
        cls = message.__class__
        if cls is LiquidityUpdate or cls is ContestStateUpdate:
            self._owner.link_message(self, message)
            return
        if cls is ConnectedMessage:
            assert isinstance(message, ConnectedMessage)
            self.greeting = message
            greeted = self._greeted
            if greeted is not None and not greeted.done():
                greeted.set_result(message)
        elif cls is SubscribedMessage or cls is UnsubscribedMessage:
            assert isinstance(message, SubscribedMessage | UnsubscribedMessage)
            self._answer(message)
        elif cls is PongMessage:
            assert isinstance(message, PongMessage)
            while self._pings:
                future = self._pings.popleft()
                if not future.done():
                    future.set_result(message)
                    break
        elif cls is ErrorMessage:
            assert isinstance(message, ErrorMessage)
            while self._commands:
                pending = self._commands.popleft()
                if not pending.future.done():
                    pending.future.set_exception(error_for_code(message.code, message.message))
                    break
        self._owner.link_message(self, message)

    def _answer(self, message: SubscribedMessage | UnsubscribedMessage) -> None:
        kind = message.__class__
        for pending in self._commands:
            if pending.kind is kind and pending.channel == message.channel and not pending.future.done():
                self._commands.remove(pending)
                pending.future.set_result(message)
                return
        logger.debug("connection %d: unsolicited %s for %s", self.number, kind.__name__, message.channel)

    def _on_close(self, info: CloseInfo) -> None:
        self._ready.clear()
        self._hold = False  # the next connection starts reading; a full feed pauses it again
        logger.info("connection %d closed: code=%s reason=%s", self.number, info.code, info.reason)
        lost = OpenMarketsConnectionError(f"connection {self.number} closed before the server answered")
        greeted = self._greeted
        if greeted is not None and not greeted.done():
            greeted.set_exception(lost)
        for pending in self._commands:
            if not pending.future.done():
                pending.future.set_exception(lost)
        self._commands.clear()
        for future in self._pings:
            if not future.done():
                future.set_exception(lost)
        self._pings.clear()
        self._keeper.connection_lost(info)
        if not self._closing:
            self._owner.link_lost(self)

    # ------------------------------------------------------------------ commands

    async def command(
        self, action: str, channel: str, contest_ids: list[str]
    ) -> SubscribedMessage | UnsubscribedMessage:
        """Send subscribe/unsubscribe and wait for its confirmation.

        Raises:
            OpenMarketsServerError: the server answered with an error (e.g. InvalidChannelError).
            ContestLimitError: the server refused more contests.
            OpenMarketsConnectionError: the connection is down or no answer came in time.
        """
        kind: type[SubscribedMessage] | type[UnsubscribedMessage] = (
            SubscribedMessage if action == "subscribe" else UnsubscribedMessage
        )
        future: asyncio.Future[SubscribedMessage | UnsubscribedMessage] = asyncio.get_running_loop().create_future()
        pending = _Pending(kind, channel, future)
        self._commands.append(pending)
        try:
            self._send(encode_command(action, channel, contest_ids))
            return await self._wait(future, f"{action} {channel!r}")
        finally:
            with contextlib.suppress(ValueError):
                self._commands.remove(pending)

    async def ping(self) -> PongMessage:
        """Send the ``ping`` action and wait for the ``pong``.

        Raises:
            OpenMarketsConnectionError: the connection is down or no pong came in time.
        """
        future: asyncio.Future[PongMessage] = asyncio.get_running_loop().create_future()
        self._pings.append(future)
        try:
            self._send(_PING)
            return await self._wait(future, "ping")
        finally:
            with contextlib.suppress(ValueError):
                self._pings.remove(future)

    def _send(self, data: bytes) -> None:
        conn = self._conn
        if conn is None or conn.closed:
            self._ready.clear()  # closing: not ready, even before the transport reports the close
            raise OpenMarketsConnectionError(f"connection {self.number} is down; it is being re-established")
        try:
            conn.send(data)
        except KalshiConnectionError as exc:
            raise OpenMarketsConnectionError(f"connection {self.number} closed: {exc}") from exc

    async def _wait(self, future: asyncio.Future[T], what: str) -> T:
        timeout = self._settings.command_timeout
        self._awaiting += 1
        self._apply_hold()
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            await self._drop_stalled(what)
            raise OpenMarketsConnectionError(
                f"no answer to {what} within {timeout} s on connection {self.number}"
            ) from None
        finally:
            self._awaiting -= 1
            self._apply_hold()

    async def _drop_stalled(self, what: str) -> None:
        """Replace a connection that left a command unanswered. Answers carry no command ids, so a late one
        would be taken for the next command's, and whether the server applied the change is unknown: a new
        connection restores every subscription of ``desired`` (and rebuilds the tables) from a known state."""
        conn = self._conn
        if conn is None or conn.closed or self._closing:
            return
        logger.warning("connection %d: no answer to %s; reconnecting", self.number, what)
        self._stalled = True
        with contextlib.suppress(KalshiError, OSError):
            await conn.close(_CLOSE_STALLED, "no answer")

    # ------------------------------------------------------------------ supervision

    async def supervise(self) -> None:
        """Wait until the link ends; report ``link_failed`` when it ended by itself (reconnecting could not help).
        The reconnecting itself is the shared supervisor's; after each reconnect the owner restores the
        subscriptions (``link_reconnected``)."""
        await self._keeper.done.wait()
        error = self._keeper.error
        if self._closing or error is None:
            return
        if not isinstance(error, OpenMarketsError):
            info = self._keeper.last_close
            code = info.code if info is not None else None
            reason = (info.reason if info is not None else "") or "no reason"
            cause = info.error if info is not None else None
            error = OpenMarketsConnectionError(
                f"connection {self.number} ended for good (code {code}, {reason})"
                + (f": {cause}" if cause is not None else "")
            )
        self._owner.link_failed(self, error)

    async def _restore(self) -> None:
        await self._owner.link_reconnected(self)

    async def close(self) -> None:
        """Close with 1000 and stop reconnecting. Idempotent."""
        self._closing = True
        self._keeper.begin_close()
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(KalshiError, OSError):
                await conn.close(_CLOSE_NORMAL, "")
        await self._keeper.close()
        task = self.supervisor
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._ready.set()  # wake sync() callers: they find the stream closed

    def _state_changed(self, old: ConnectionState, new: ConnectionState) -> None:
        self._owner.link_state_changed(self)

    def _may_reconnect(self, info: CloseInfo) -> bool:
        if self._stalled:
            self._stalled = False
            return not self._closing
        # A callback error is a bug here or in user code: reconnecting would only repeat it.
        return info.reconnectable and info.reason != REASON_CALLBACK_ERROR


def _judge_attempt(exc: BaseException, first: bool) -> Attempt:
    if isinstance(exc, OpenMarketsAuthError):
        return Attempt(retry=False)
    if isinstance(exc, ConnectionLimitError):
        # The first connection of a link: a limit is an answer, not a glitch. Later: wait at least Retry-After.
        return Attempt(retry=not first, not_before=exc.retry_after or 0.0)
    return Attempt(retry=isinstance(exc, OpenMarketsConnectionError))


def _handshake_error(exc: KalshiHandshakeError, where: str) -> OpenMarketsConnectionError | OpenMarketsAuthError:
    status = exc.status
    if status in (401, 403):
        return OpenMarketsAuthError(
            f"{where} refused the API key at the WebSocket upgrade (HTTP {status}); check the key "
            "(not retried: retrying a refused key only hammers the server)",
            status=status,
        )
    if status == 429:
        return ConnectionLimitError(
            f"{where} refused another connection (HTTP 429): this API key already holds its maximum of "
            "connections (3 by default) or connects too often; close other clients using the key, or wait",
            retry_after=exc.retry_after,
        )
    return OpenMarketsConnectionError(f"{where} refused the WebSocket upgrade with HTTP {status}")
