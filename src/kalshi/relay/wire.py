"""A small asyncio Redis connection for the relay's hot paths: RESP bytes out, hiredis-parsed replies back.

redis-py spends tens of microseconds of Python per command (connection checkout, argument packing, response
callbacks that turn every stream entry into a dict). The relay's readers issue thousands of ``XREAD`` per second
and its writer pipelines whole batches, so they use this instead: commands go out prepacked (see
:mod:`kalshi.relay.resp`), replies come back as hiredis parses them (lists of bytes, RESP2), in order.

Requests are pipelined: :meth:`RespConnection.send` writes at once and returns a future for its replies, so a
caller may have several batches in flight. A request whose caller gave up (cancelled) still consumes its own
replies, so the ones after it stay aligned. Error replies are :class:`redis.exceptions.ResponseError` instances
in the reply list (not raised: a batch reports each command's outcome); a lost connection fails every pending
request with :class:`redis.exceptions.ConnectionError`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any, Final

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ResponseError

from kalshi.relay.resp import pack_command

__all__ = ["RespConnection"]

_HIGH_WATER: Final = 4 << 20  # bytes buffered for the socket before writers wait (drain)


class _Pending:
    __slots__ = ("future", "left", "replies")

    def __init__(self, future: asyncio.Future[list[Any]], count: int) -> None:
        self.future = future
        self.left = count
        self.replies: list[Any] = []


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(protocolError=InvalidResponse, replyError=ResponseError)
        self.pending: deque[_Pending] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None
        self.writable = asyncio.Event()
        self.writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=_HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        pending = self.pending
        gets = reader.gets
        try:
            while pending:  # a request's replies in one tight loop: a batch of XADDs has thousands
                head = pending[0]
                append = head.replies.append
                left = head.left
                while left:
                    reply = gets()
                    if reply is False:
                        head.left = left
                        return
                    append(reply)
                    left -= 1
                head.left = 0
                pending.popleft()
                if not head.future.done():
                    head.future.set_result(head.replies)
            if gets() is not False:
                raise InvalidResponse("a reply nobody asked for")
        except InvalidResponse as exc:
            self._fail(RedisConnectionError(f"Redis protocol error: {exc}"))
            if self.transport is not None:
                self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"connection to Redis lost: {exc or 'closed by the server'}"))
        self.writable.set()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def _fail(self, error: BaseException) -> None:
        if self.lost is None:
            self.lost = error
        while self.pending:
            head = self.pending.popleft()
            if not head.future.done():
                head.future.set_exception(error)


class RespConnection:
    """One connection to Redis (see the module docstring); open it with :meth:`open`."""

    def __init__(self, protocol: _Protocol, url: str) -> None:
        self._protocol = protocol
        self.url = url

    def __repr__(self) -> str:
        return f"RespConnection({self.url!r}, pending={len(self._protocol.pending)})"

    @classmethod
    async def open(cls, url: str, *, within: float = 5.0) -> RespConnection:
        """Connect to ``redis://``, ``rediss://`` or ``unix://`` ``url`` (with its user, password and db).

        Raises:
            redis.exceptions.ConnectionError: Redis cannot be reached, or refused the login or the db.
        """
        options = parse_url(url)
        loop = asyncio.get_running_loop()
        connection_class = options.get("connection_class")
        try:
            async with asyncio.timeout(within):
                if connection_class is UnixDomainSocketConnection:
                    _, protocol = await loop.create_unix_connection(_Protocol, options["path"])
                else:
                    context = ssl.create_default_context() if connection_class is SSLConnection else None
                    host = options.get("host", "localhost")
                    _, protocol = await loop.create_connection(
                        _Protocol, host, int(options.get("port", 6379)), ssl=context
                    )
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"cannot connect to Redis at {url}: {exc}") from exc
        conn = cls(protocol, url)
        try:
            password = options.get("password")
            if password is not None:
                user = options.get("username")
                auth = ("AUTH", user, password) if user else ("AUTH", password)
                await conn.call(pack_command(*auth), within=within)
            db = int(options.get("db", 0) or 0)
            if db:
                await conn.call(pack_command("SELECT", db), within=within)
        except (ResponseError, TimeoutError) as exc:
            conn.close()
            raise RedisConnectionError(f"Redis at {url} refused the connection setup: {exc}") from exc
        return conn

    @property
    def closed(self) -> bool:
        """Whether the connection is lost or closed (every later request fails)."""
        return self._protocol.lost is not None or self._protocol.transport is None

    @property
    def pending(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._protocol.pending)

    def send(self, payload: bytes, replies: int = 1) -> asyncio.Future[list[Any]]:
        """Write ``payload`` (commands whose replies number ``replies``) now; the future gets the replies.

        Raises:
            redis.exceptions.ConnectionError: the connection is lost.
        """
        protocol = self._protocol
        if protocol.lost is not None:
            raise protocol.lost
        transport = protocol.transport
        if transport is None or transport.is_closing():
            raise RedisConnectionError("the connection to Redis is closed")
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        if replies > 0:
            protocol.pending.append(_Pending(future, replies))
        else:
            future.set_result([])
        transport.write(payload)
        return future

    async def drain(self) -> None:
        """Wait while the socket's send buffer is above its high-water mark."""
        await self._protocol.writable.wait()

    async def call(self, payload: bytes, *, within: float | None = None) -> Any:
        """One command's reply.

        Raises:
            redis.exceptions.ResponseError: Redis answered with an error.
            redis.exceptions.ConnectionError: the connection is lost.
            TimeoutError: no reply within ``within`` seconds.
        """
        future = self.send(payload)
        async with asyncio.timeout(within):
            [reply] = await future
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    def close(self) -> None:
        """Close now (pending requests fail with ``ConnectionError``)."""
        transport = self._protocol.transport
        if transport is not None and not transport.is_closing():
            transport.close()
        self._protocol._fail(RedisConnectionError("the connection to Redis was closed"))
