"""A thin asyncio WebSocket transport over picows: frames in, text out, liveness, backpressure.

One :func:`open_connection` call is one connection attempt; reconnecting is the client's job
(see :mod:`kalshi.ws.connection` for the policy). What this layer guarantees:

* Every complete TEXT/BINARY message reaches ``on_frame(payload)`` synchronously from picows'
  read callback, in order; no task or future per frame. Fragmented messages are reassembled
  (control frames may arrive between fragments) and bounded by ``max_message_size``.
* Server PINGs (Kalshi sends ``heartbeat`` every 10 s) are answered with a PONG echoing the body.
* Our own PING goes out every ``heartbeat_interval``; if no frame at all (PONG or anything else)
  arrives within ``heartbeat_timeout`` of a ping, the connection is declared dead, aborted, and
  ``on_close`` gets ``reason="heartbeat_timeout"``. Timers are ``loop.call_later`` handles on the
  monotonic loop clock; no background task.
* ``pause_reading()`` stops TCP reads and also holds back the frames picows already parsed from
  the current read, so after it returns ``on_frame`` is not called until ``resume_reading()``.
  While paused the heartbeat deadline is suspended (a silent socket is then our doing, not the
  server's); the next ping after resuming re-arms it. Keep pauses short: while paused we cannot
  answer the server's pings either.
* ``on_close(CloseInfo)`` is called exactly once per connection that opened. Frames held by a
  pause are dropped when the connection ends: after a reconnect the client resubscribes and
  re-bootstraps its state from fresh snapshots anyway.

Errors: picows and OS errors never leak. A refused upgrade raises ``KalshiHandshakeError``
(``status``, ``retry_after``), every other failure to connect ``KalshiConnectionError``, always
chained with ``raise ... from``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import urlsplit

from picows import (
    WSCloseCode,
    WSError,
    WSFrame,
    WSHandshakeError,
    WSInvalidURL,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)

from kalshi.errors import KalshiConfigError, KalshiConnectionError, KalshiProtocolError
from kalshi.ws.bounded_reads import bound_reads
from kalshi.ws.connection import (
    REASON_CALLBACK_ERROR,
    REASON_CLIENT_CLOSE,
    REASON_CONNECTION_LOST,
    REASON_HEARTBEAT_TIMEOUT,
    REASON_PROTOCOL_ERROR,
    CloseInfo,
)
from kalshi.ws.handshake import handshake_error

__all__ = ["DEFAULT_CLOSE_TIMEOUT", "DEFAULT_MAX_MESSAGE_SIZE", "Connection", "open_connection"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_SIZE: Final = 64 * 1024 * 1024
DEFAULT_CLOSE_TIMEOUT: Final = 2.0

# Bound once: reading picows' enum attributes is a Python-level lookup on the hot path.
_TEXT: Final = WSMsgType.TEXT
_BINARY: Final = WSMsgType.BINARY
_CONTINUATION: Final = WSMsgType.CONTINUATION
_PING: Final = WSMsgType.PING
_PONG: Final = WSMsgType.PONG
_CLOSE: Final = WSMsgType.CLOSE
_DATA_TYPES: Final = frozenset((_TEXT, _BINARY))

FrameCallback = Callable[[bytes], None]
CloseCallback = Callable[[CloseInfo], None]


class _Listener(WSListener):
    """picows callbacks plus all per-connection state. Single use: one per connection attempt."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_frame: FrameCallback,
        on_close: CloseCallback,
        *,
        heartbeat_interval: float,
        heartbeat_timeout: float,
        max_message_size: int,
        close_timeout: float,
    ) -> None:
        super().__init__()
        self._loop = loop
        self._on_frame = on_frame
        self._on_close = on_close
        self._heartbeat_interval = heartbeat_interval
        self._heartbeat_timeout = heartbeat_timeout
        self._max_message_size = max_message_size
        self._close_timeout = close_timeout

        self.transport: WSTransport | None = None
        # True whenever a frame must leave the fast path: paused, held frames waiting, a fragmented
        # message in progress, or closing. One flag keeps the per-frame check to a single load.
        self._divert = False
        self._paused = False
        self._closing = False
        self._finished = False
        self._silent = False  # abandoned before the caller got a Connection: no on_close
        self._fragments: bytearray | None = None
        self._held: deque[bytes] = deque()
        self._rx_seen = False  # any frame since the heartbeat last looked

        self._ping_handle: asyncio.TimerHandle | None = None
        self._deadline_handle: asyncio.TimerHandle | None = None
        self._abort_handle: asyncio.TimerHandle | None = None
        self._drain_handle: asyncio.Handle | None = None

        self._ending: tuple[str, BaseException | None] | None = None  # (reason, error) when we close
        self._received_code: int | None = None
        self._received_reason = ""
        self.info: CloseInfo | None = None
        self.closed_future: asyncio.Future[CloseInfo] = loop.create_future()

    # -- picows callbacks ---------------------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        if self._silent:
            # The caller was cancelled mid-upgrade and picows finished the handshake behind a shield:
            # nobody owns this connection, so end it now instead of keeping it alive with pings.
            self._begin_close(REASON_CLIENT_CLOSE, None)
            transport.disconnect(graceful=False)
            return
        period = self._heartbeat_interval if self._heartbeat_interval > 0 else self._heartbeat_timeout
        self._ping_handle = self._loop.call_later(period, self._on_ping_timer, period)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        self._rx_seen = True
        # Reading frame.msg_type costs ~200 ns (picows builds an Enum per access), so a final frame
        # over 125 bytes skips it: control frames carry at most 125 bytes, and a legitimate
        # CONTINUATION never gets here because a fragmented message in progress sets _divert.
        # (Consequence: a stray CONTINUATION over 125 bytes reaches on_frame as a message and fails
        # decoding there, instead of being reported as a protocol error here.)
        if not self._divert and frame.fin and (frame.payload_size > 125 or frame.msg_type in _DATA_TYPES):
            try:
                self._on_frame(frame.get_payload_as_bytes())
            except Exception as exc:
                self._callback_failed(exc)
            return
        self._on_other_frame(transport, frame, frame.msg_type)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._finished = True
        self._closing = True
        self._divert = True
        self._cancel_timers()
        self._held.clear()
        self._fragments = None
        info = self._close_info(transport)
        self.info = info
        self.closed_future.set_result(info)
        if self._silent:
            return
        try:
            self._on_close(info)
        except Exception:
            logger.exception("the on_close callback raised; the connection is closed regardless")

    def pause_writing(self) -> None:
        """Commands are small and rare: let asyncio buffer them (no log noise from picows)."""

    def resume_writing(self) -> None:
        """See pause_writing."""

    # -- frames off the fast path -------------------------------------------------------------------

    def _on_other_frame(self, transport: WSTransport, frame: WSFrame, msg_type: WSMsgType) -> None:
        if msg_type is _PING:
            transport.send_pong(frame.get_payload_as_bytes())
            return
        if msg_type is _PONG:
            return  # _rx_seen already recorded it
        if msg_type is _CLOSE:
            self._on_close_frame(transport, frame)
            return
        if self._closing:
            return  # we are closing: nobody is left to consume data
        if msg_type is _CONTINUATION:
            if self._fragments is None:
                self._protocol_failed("continuation frame without a message to continue")
                return
            self._fragments += frame.get_payload_as_memoryview()
            if len(self._fragments) > self._max_message_size:
                self._message_too_big(len(self._fragments))
                return
            if frame.fin:
                payload = bytes(self._fragments)
                self._fragments = None
                self._update_divert()
                self._deliver(payload)
            return
        if msg_type is _TEXT or msg_type is _BINARY:
            if self._fragments is not None:
                self._protocol_failed("new message started before the fragmented one ended")
                return
            if not frame.fin:
                self._fragments = bytearray(frame.get_payload_as_memoryview())
                self._divert = True
                if len(self._fragments) > self._max_message_size:
                    self._message_too_big(len(self._fragments))
                return
            self._deliver(frame.get_payload_as_bytes())

    def _deliver(self, payload: bytes) -> None:
        if self._paused or self._held:
            self._held.append(payload)
            return
        try:
            self._on_frame(payload)
        except Exception as exc:
            self._callback_failed(exc)

    def _on_close_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        code: int = frame.get_close_code().value
        self._received_code = code or None
        self._received_reason = frame.get_close_reason() or ""
        if not transport.is_close_frame_sent:
            # Echo the code as RFC 6455 section 5.5.1 asks; an empty CLOSE is answered with 1000.
            transport.send_close(WSCloseCode(code) if code else WSCloseCode.OK)
        self._closing = True
        self._divert = True
        self._cancel_heartbeat()
        self._disconnect(graceful=True)

    # -- failures detected here ---------------------------------------------------------------------

    def _callback_failed(self, exc: Exception) -> None:
        logger.error("the frame callback raised %r; closing the connection", exc)
        self._fail(REASON_CALLBACK_ERROR, exc, WSCloseCode.INTERNAL_ERROR)

    def _protocol_failed(self, what: str) -> None:
        error = KalshiProtocolError(f"the server broke the WebSocket protocol: {what}")
        self._fail(REASON_PROTOCOL_ERROR, error, WSCloseCode.PROTOCOL_ERROR)

    def _message_too_big(self, size: int) -> None:
        error = KalshiProtocolError(
            f"a message of at least {size} bytes exceeds max_message_size={self._max_message_size}"
        )
        self._fail(REASON_PROTOCOL_ERROR, error, WSCloseCode.MESSAGE_TOO_BIG)

    def _fail(self, reason: str, error: BaseException, code: WSCloseCode, *, abort: bool = False) -> None:
        if self._closing or self.transport is None:
            return
        self._begin_close(reason, error)
        self.transport.send_close(code, reason.encode())
        if abort:
            # The peer is presumed dead: a graceful close could wait on unsent data for minutes.
            self.transport.disconnect(graceful=False)
        else:
            self._disconnect(graceful=True)

    # -- heartbeat ----------------------------------------------------------------------------------

    def _on_ping_timer(self, period: float) -> None:
        self._ping_handle = self._loop.call_later(period, self._on_ping_timer, period)
        if self._paused or self._closing or self.transport is None:
            return
        if self._heartbeat_interval > 0:
            self.transport.send_ping()
        # Start a new deadline unless an earlier ping is still waiting for any sign of life.
        if self._deadline_handle is None or self._rx_seen:
            if self._deadline_handle is not None:
                self._deadline_handle.cancel()
            self._rx_seen = False
            self._deadline_handle = self._loop.call_later(self._heartbeat_timeout, self._on_deadline)

    def _on_deadline(self) -> None:
        self._deadline_handle = None
        if self._paused or self._rx_seen or self._closing:
            return
        error = KalshiConnectionError(
            f"no frame from the server within heartbeat_timeout={self._heartbeat_timeout} s of a ping; "
            "the connection is dead"
        )
        logger.warning("%s; closing it", error)
        self._fail(REASON_HEARTBEAT_TIMEOUT, error, WSCloseCode.GOING_AWAY, abort=True)

    def _cancel_heartbeat(self) -> None:
        for handle in (self._ping_handle, self._deadline_handle):
            if handle is not None:
                handle.cancel()
        self._ping_handle = self._deadline_handle = None

    def _cancel_timers(self) -> None:
        self._cancel_heartbeat()
        for handle in (self._abort_handle, self._drain_handle):
            if handle is not None:
                handle.cancel()
        self._abort_handle = self._drain_handle = None

    # -- flow control -------------------------------------------------------------------------------

    def pause(self) -> None:
        if self._paused or self._closing or self.transport is None:
            return
        self._paused = True
        self._divert = True
        self.transport.underlying_transport.pause_reading()
        if self._deadline_handle is not None:
            self._deadline_handle.cancel()
            self._deadline_handle = None
        if self._drain_handle is not None:
            self._drain_handle.cancel()
            self._drain_handle = None

    def resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        if self._closing:
            return
        # Deliver held frames before reading more, from the loop rather than the caller's stack.
        self._drain_handle = self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_handle = None
        while self._held and not self._paused and not self._closing:
            payload = self._held.popleft()
            try:
                self._on_frame(payload)
            except Exception as exc:
                self._callback_failed(exc)
                return
        if self._paused or self._closing or self.transport is None:
            return
        self._update_divert()
        self.transport.underlying_transport.resume_reading()

    def _update_divert(self) -> None:
        self._divert = self._paused or self._closing or self._fragments is not None or bool(self._held)

    # -- closing ------------------------------------------------------------------------------------

    def _begin_close(self, reason: str, error: BaseException | None) -> None:
        self._ending = (reason, error)
        self._closing = True
        self._divert = True
        self._held.clear()
        self._cancel_heartbeat()
        if self._paused and self.transport is not None:
            # Read again so the server's CLOSE reply can arrive; data frames are dropped now.
            self._paused = False
            self.transport.underlying_transport.resume_reading()

    def _disconnect(self, *, graceful: bool) -> None:
        if self.transport is None:
            return
        self.transport.disconnect(graceful=graceful)
        if graceful and self._abort_handle is None:
            # A graceful close waits for the send buffer to drain; bound that wait.
            self._abort_handle = self._loop.call_later(self._close_timeout, self.transport.disconnect, False)

    async def close(self, code: int, reason: str) -> CloseInfo:
        if not self._closing and self.transport is not None:
            self._begin_close(REASON_CLIENT_CLOSE, None)
            self.transport.send_close(WSCloseCode(code), reason.encode())
            # A timer, not a timeout around the wait: the socket is torn down even if our caller is
            # cancelled while waiting for the server's answer.
            self._abort_handle = self._loop.call_later(self._close_timeout, self.transport.disconnect, False)
        return await self.wait_closed()

    async def wait_closed(self) -> CloseInfo:
        info = await asyncio.shield(self.closed_future)
        if self.transport is not None:
            # Consume picows' own record of a parser failure (already reported in CloseInfo)
            # so asyncio does not log it as a never-retrieved exception.
            with contextlib.suppress(WSError):
                await self.transport.wait_disconnected()
        return info

    def abandon(self) -> None:
        """Tear down a connection the caller never received (cancelled or timed out mid-connect)."""
        self._silent = True
        if self.transport is not None and not self._finished:
            self._begin_close(REASON_CLIENT_CLOSE, None)
            self.transport.disconnect(graceful=False)

    def _close_info(self, transport: WSTransport) -> CloseInfo:
        if self._ending is not None:
            reason, error = self._ending
            return CloseInfo(self._received_code, reason, error, True)
        handshake = transport.close_handshake
        if handshake is not None and handshake.sent is not None and not handshake.recv_then_sent:
            # Not our CLOSE, not an echo: picows' parser rejected a frame (e.g. one over max size).
            error = KalshiProtocolError(f"the server sent an invalid frame: {handshake.sent.reason}")
            return CloseInfo(self._received_code, REASON_PROTOCOL_ERROR, error, True)
        if handshake is not None and handshake.recv is not None:
            return CloseInfo(self._received_code, self._received_reason, None, False)
        lost = KalshiConnectionError("the server dropped the connection without a close frame")
        return CloseInfo(None, REASON_CONNECTION_LOST, lost, False)


class Connection:
    """One open WebSocket connection. Made by :func:`open_connection`; single use."""

    __slots__ = ("_impl",)

    def __init__(self, impl: _Listener) -> None:
        self._impl = impl

    def send(self, data: bytes) -> None:
        """Send one TEXT frame (a JSON command).

        Raises:
            KalshiConnectionError: the connection is closing or closed.
        """
        impl = self._impl
        if impl._closing or impl.transport is None:
            raise KalshiConnectionError("the WebSocket connection is closed; reconnect before sending")
        impl.transport.send(_TEXT, data)

    def pause_reading(self) -> None:
        """Stop delivering frames (and reading the socket) until :meth:`resume_reading`.

        Frames already read are held and delivered in order after resuming. The heartbeat deadline
        is suspended while paused. No-op if already paused or closed.
        """
        self._impl.pause()

    def resume_reading(self) -> None:
        """Deliver held frames (from the event loop, not this call) and read the socket again."""
        self._impl.resume()

    @property
    def paused(self) -> bool:
        """True between :meth:`pause_reading` and :meth:`resume_reading`."""
        return self._impl._paused

    @property
    def closed(self) -> bool:
        """True once the connection is closing or closed: :meth:`send` would raise."""
        return self._impl._closing

    @property
    def close_info(self) -> CloseInfo | None:
        """How the connection ended, once it has; None while it is open or closing."""
        return self._impl.info

    async def close(self, code: int = 1000, reason: str = "") -> CloseInfo:
        """Close with the WebSocket close handshake, waiting at most ``close_timeout`` for the server.

        Idempotent; also safe after the server closed. ``on_close`` is called before this returns.

        Args:
            code: the close code to send: 1000, another RFC 6455 sendable code, or 3000-4999.
            reason: a short reason text (at most 123 bytes of UTF-8).

        Returns:
            The connection's CloseInfo.

        Raises:
            ValueError: the code may not be sent or the reason is too long.
        """
        if not (code in _SENDABLE_CODES or 3000 <= code <= 4999):
            raise ValueError(f"close code {code} may not be sent; use 1000 or 3000-4999")
        if len(reason.encode()) > 123:
            raise ValueError("a close reason is at most 123 bytes of UTF-8")
        return await self._impl.close(code, reason)

    async def wait_closed(self) -> CloseInfo:
        """Wait until the connection has ended, however it ends.

        Returns:
            The connection's CloseInfo.
        """
        return await self._impl.wait_closed()


_SENDABLE_CODES: Final = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014})


async def open_connection(
    url: str,
    *,
    headers: Mapping[str, str],
    on_frame: FrameCallback,
    on_close: CloseCallback,
    connect_timeout: float,
    heartbeat_interval: float,
    heartbeat_timeout: float,
    verify_tls: bool = True,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
) -> Connection:
    """Open one WebSocket connection (TCP, TLS, upgrade) within ``connect_timeout`` seconds.

    ``on_frame`` runs on the event loop for every complete message, possibly before this
    coroutine returns (frames can follow the upgrade response in the same read). If it raises,
    the connection is closed with code 1011 and ``CloseInfo.error`` is that exception.
    ``on_close`` runs exactly once when an opened connection ends (not if opening fails).

    Args:
        url: ``wss://`` (or ``ws://`` for a local simulator) URL.
        headers: extra upgrade request headers (the signed auth headers). Never logged.
        on_frame: called with each TEXT/BINARY message payload.
        on_close: called with the CloseInfo when the connection ends.
        connect_timeout: seconds for TCP connect, TLS and the upgrade together.
        heartbeat_interval: seconds between our PINGs; 0 sends none and only watches for silence
            (Kalshi pings every 10 s), declaring the connection dead after 1-2x heartbeat_timeout.
        heartbeat_timeout: seconds after a ping within which some frame must arrive.
        verify_tls: verify the server certificate and host name. False logs a WARNING.
        max_message_size: largest message (and frame) accepted, in bytes; bigger closes with 1009.
        close_timeout: seconds to wait for the server's side of a close before aborting.

    Returns:
        The open Connection.

    Raises:
        KalshiHandshakeError: the server answered the upgrade with an HTTP error status.
        KalshiConnectionError: the socket could not be opened, TLS failed, the upgrade response was
            invalid, or the timeout passed.
        KalshiConfigError: the URL is not a WebSocket URL, or a timeout is out of range.
    """
    if connect_timeout <= 0 or heartbeat_timeout <= 0 or heartbeat_interval < 0 or close_timeout <= 0:
        raise KalshiConfigError(
            "connect_timeout, heartbeat_timeout and close_timeout must be > 0, heartbeat_interval >= 0"
        )
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    ssl_context = _client_ssl_context(verify_tls) if parts.scheme == "wss" else None
    if parts.scheme == "wss" and not verify_tls:
        logger.warning(
            "TLS certificate verification is OFF for %s: anyone on the network path can read and alter "
            "the stream; use verify_tls=False only against a local simulator",
            where,
        )
    loop = asyncio.get_running_loop()
    listener = _Listener(
        loop,
        on_frame,
        on_close,
        heartbeat_interval=heartbeat_interval,
        heartbeat_timeout=heartbeat_timeout,
        max_message_size=max_message_size,
        close_timeout=close_timeout,
    )
    try:
        async with asyncio.timeout(connect_timeout):
            _, connected = await ws_connect(
                lambda: listener,
                url,
                ssl_context=ssl_context,
                # picows' own timer also frees the socket if our timeout cancels the wait mid-upgrade.
                websocket_handshake_timeout=connect_timeout,
                enable_auto_ping=False,
                enable_auto_pong=False,  # we answer pings ourselves so they count as signs of life
                max_frame_size=max_message_size,
                extra_headers=dict(headers),
                max_redirects=0,  # a redirect would need a new signature; report it instead
            )
    except asyncio.CancelledError:
        listener.abandon()
        raise
    except WSInvalidURL as exc:
        raise KalshiConfigError(f"not a WebSocket URL: {url!r}; use wss://host/path") from exc
    except WSHandshakeError as exc:
        raise handshake_error(exc, where) from exc
    except TimeoutError as exc:
        listener.abandon()
        raise KalshiConnectionError(f"could not open a WebSocket to {where} within {connect_timeout} s") from exc
    except ssl.SSLCertVerificationError as exc:
        raise KalshiConnectionError(
            f"TLS certificate of {where} failed verification ({exc.verify_message}); "
            "fix the trust store, or use verify_tls=False only for a local simulator"
        ) from exc
    except (OSError, WSError) as exc:
        raise KalshiConnectionError(f"could not open a WebSocket to {where}: {exc}") from exc
    if connected is not listener or listener.transport is None:
        raise KalshiConnectionError(f"{where} closed the connection during the WebSocket upgrade")
    bound_reads(listener.transport.underlying_transport)
    return Connection(listener)


@functools.lru_cache(maxsize=2)
def _client_ssl_context(verify: bool) -> ssl.SSLContext:
    # Loading the CA store costs milliseconds: build each variant once and share it.
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
