"""The picows transport and the connection policy, against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType as AioMsgType
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from picows import WSCloseCode, WSFrame, WSHandshakeError, WSListener, WSMsgType, WSTransport, ws_create_server

from kalshi.errors import KalshiConfigError, KalshiConnectionError, KalshiHandshakeError, KalshiProtocolError
from kalshi.ws.bounded_reads import MAX_READ_BYTES, BoundedReads, bound_reads
from kalshi.ws.connection import (
    PERMANENT_CLOSE_CODES,
    REASON_CALLBACK_ERROR,
    REASON_CLIENT_CLOSE,
    REASON_CONNECTION_LOST,
    REASON_HEARTBEAT_TIMEOUT,
    REASON_PROTOCOL_ERROR,
    CloseInfo,
    ConnectionState,
    backoff_delay,
    is_permanent_close,
    parse_retry_after,
)
from kalshi.ws.transport import Connection, open_connection

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WAIT = 10.0  # upper bound for awaiting an event; tests finish far sooner


class Sink:
    """Collects what the transport reports."""

    def __init__(self, expect: int | None = None) -> None:
        self.frames: list[bytes] = []
        self.closes: list[CloseInfo] = []
        self.closed = asyncio.Event()
        self.expect = expect
        self.complete = asyncio.Event()

    def on_frame(self, payload: bytes) -> None:
        self.frames.append(payload)
        if self.expect is not None and len(self.frames) >= self.expect:
            self.complete.set()

    def on_close(self, info: CloseInfo) -> None:
        self.closes.append(info)
        self.closed.set()

    async def wait_close(self) -> CloseInfo:
        async with asyncio.timeout(WAIT):
            await self.closed.wait()
        assert len(self.closes) == 1
        return self.closes[0]


async def connect(url: str, sink: Sink, **options: Any) -> Connection:
    settings: dict[str, Any] = {
        "headers": {},
        "connect_timeout": 5.0,
        "heartbeat_interval": 30.0,
        "heartbeat_timeout": 30.0,
    }
    settings.update(options)
    return await open_connection(url, on_frame=sink.on_frame, on_close=sink.on_close, **settings)


@pytest.fixture
async def aio_server() -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Start an aiohttp app serving ``handler`` at /ws; returns its URL."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler, *, ssl_context: ssl.SSLContext | None = None) -> str:
        app = web.Application()
        app.router.add_get("/ws", handler)
        runner = web.AppRunner(app, shutdown_timeout=1.0)  # a failing test must not hang teardown
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        port = runner.addresses[0][1]
        return f"{'wss' if ssl_context else 'ws'}://127.0.0.1:{port}/ws"

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def picows_server() -> AsyncIterator[Callable[[Callable[[], WSListener]], Awaitable[str]]]:
    """Start a picows server (it can send raw fragments and bad frames); returns its URL."""
    servers: list[asyncio.Server] = []

    async def start(make_listener: Callable[[], WSListener]) -> str:
        server = await ws_create_server(lambda _request: make_listener(), "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


class ScriptedServer(WSListener):
    """Sends ``script`` (msg_type, payload, fin) on connect; records what the client sends back."""

    def __init__(self, script: list[tuple[WSMsgType, bytes, bool]], *, drop: bool = False) -> None:
        super().__init__()
        self.script = script
        self.drop = drop
        self.received: list[tuple[WSMsgType, bytes]] = []
        self.close_code: int | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        for msg_type, payload, fin in self.script:
            if msg_type is WSMsgType.PING:
                transport.send_ping(payload)
            else:
                transport.send(msg_type, payload, fin=fin)
        if self.drop:
            transport.disconnect(graceful=False)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        self.received.append((frame.msg_type, frame.get_payload_as_bytes()))
        if frame.msg_type is WSMsgType.CLOSE:
            self.close_code = frame.get_close_code().value
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()


# -- policy ---------------------------------------------------------------------------------------


def test_connection_state_values_are_lowercase_names() -> None:
    assert [s.name for s in ConnectionState] == [
        "DISCONNECTED",
        "CONNECTING",
        "CONNECTED",
        "STREAMING",
        "RECONNECTING",
        "CLOSED",
    ]
    assert all(s.value == s.name.lower() for s in ConnectionState)


def test_backoff_delay_stays_within_full_jitter_bounds() -> None:
    rng = random.Random(7)
    base, cap = 0.5, 30.0
    for attempt in [*range(80), 1023, 1024, 10_000, 10**9]:
        ceiling = min(base * 2.0 ** min(attempt, 100), cap)
        samples = [backoff_delay(attempt, base, cap, rng) for _ in range(50)]
        assert all(0.0 <= d <= ceiling for d in samples), attempt
        assert max(samples) > ceiling / 2  # jitter spans the range, not a constant
    assert 0.0 <= backoff_delay(3, base, cap) <= 4.0  # module-level generator


def test_backoff_delay_matches_the_seed_formula() -> None:
    ours, reference = random.Random(11), random.Random(11)
    for attempt in range(12):
        assert backoff_delay(attempt, 0.5, 30.0, ours) == reference.uniform(0, min(0.5 * 2**attempt, 30.0))


def test_backoff_delay_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(-1, 0.5, 30.0)
    with pytest.raises(ValueError):
        backoff_delay(0, -0.5, 30.0)


@pytest.mark.parametrize(
    ("code", "permanent"),
    [
        *[(code, False) for code in (None, 1000, 1001, 1006, 1011, 1012, 1013, 4000, 4999)],
        *[(code, True) for code in (1002, 1003, 1007, 1008, 1010, 3000, 3003)],
    ],
)
def test_is_permanent_close(code: int | None, permanent: bool) -> None:
    assert is_permanent_close(code) is permanent
    assert (code in PERMANENT_CLOSE_CODES) is permanent


def test_close_info_reconnectable() -> None:
    assert not CloseInfo(1000, REASON_CLIENT_CLOSE, None, True).reconnectable
    assert CloseInfo(None, REASON_HEARTBEAT_TIMEOUT, KalshiConnectionError("x"), True).reconnectable
    assert CloseInfo(1000, "", None, False).reconnectable
    assert not CloseInfo(1008, "policy", None, False).reconnectable


def test_retry_after_parses_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now) == 0.0
    for bad in (None, "", "soon", "-3", "nan", "inf"):
        assert parse_retry_after(bad) is None


# -- delivery -------------------------------------------------------------------------------------


def numbered(i: int) -> str:
    """Sizes 10-310 bytes: frames over 125 bytes take the transport's fast path, smaller ones the typed one."""
    return f'{{"seq":{i},"pad":"{"x" * (i % 301)}"}}'


async def test_frames_arrive_complete_and_in_order(aio_server: Callable[..., Awaitable[str]]) -> None:
    count = 10_000
    seen_headers: dict[str, str] = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        seen_headers.update(request.headers)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for i in range(count):
            await ws.send_str(numbered(i))
        await ws.close(code=1000, message=b"bye")
        return ws

    url = await aio_server(handler)
    sink = Sink()
    conn = await connect(url, sink, headers={"KALSHI-ACCESS-KEY": "key-id"})
    info = await sink.wait_close()
    assert sink.frames == [numbered(i).encode() for i in range(count)]
    assert seen_headers["KALSHI-ACCESS-KEY"] == "key-id"
    assert info == CloseInfo(1000, "bye", None, False)
    assert info.reconnectable
    assert conn.closed and conn.close_info == info
    assert await conn.wait_closed() == info


async def test_reads_are_bounded_and_a_message_larger_than_a_read_arrives_whole(
    aio_server: Callable[..., Awaitable[str]], server_tls: ssl.SSLContext
) -> None:
    big = "x" * (3 * MAX_READ_BYTES + 17)
    count = 2_000

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(big)
        for i in range(count):
            await ws.send_str(numbered(i))
        await ws.send_str(big)
        await ws.close(code=1000, message=b"bye")
        return ws

    for url, options in (
        (await aio_server(handler), {}),
        (await aio_server(handler, ssl_context=server_tls), {"verify_tls": False}),
    ):
        sink = Sink()
        conn = await connect(url, sink, **options)
        protocol = conn._impl.transport.underlying_transport.get_protocol()  # type: ignore[union-attr]
        assert isinstance(protocol, BoundedReads)
        await sink.wait_close()
        assert sink.frames == [big.encode(), *(numbered(i).encode() for i in range(count)), big.encode()]


class _Recording(asyncio.BufferedProtocol):
    def __init__(self, size: int) -> None:
        self.buffer = bytearray(size)
        self.calls: list[tuple[str, object]] = []

    def get_buffer(self, sizehint: int) -> bytearray:
        self.calls.append(("get_buffer", sizehint))
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.calls.append(("buffer_updated", nbytes))

    def eof_received(self) -> bool:
        self.calls.append(("eof_received", None))
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.calls.append(("connection_lost", exc))

    def pause_writing(self) -> None:
        self.calls.append(("pause_writing", None))

    def resume_writing(self) -> None:
        self.calls.append(("resume_writing", None))


def test_bounded_reads_cut_every_buffer_and_pass_everything_else_through() -> None:
    inner = _Recording(100)
    bounded = BoundedReads(inner, 30)
    view = bounded.get_buffer(-1)
    assert len(view) == 30
    view[:3] = b"abc"  # writes land in the wrapped protocol's own buffer
    assert inner.buffer[:3] == b"abc"
    assert len(BoundedReads(_Recording(10), 30).get_buffer(-1)) == 10  # a smaller buffer is left whole
    bounded.buffer_updated(3)
    assert bounded.eof_received() is True
    bounded.pause_writing()
    bounded.resume_writing()
    lost = ConnectionResetError()
    bounded.connection_lost(lost)
    assert inner.calls == [
        ("get_buffer", -1),
        ("buffer_updated", 3),
        ("eof_received", None),
        ("pause_writing", None),
        ("resume_writing", None),
        ("connection_lost", lost),
    ]
    with pytest.raises(ValueError, match="at least one byte"):
        BoundedReads(inner, 0)


async def test_bound_reads_wraps_a_buffered_protocol_once_and_leaves_others_alone() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        inner = _Recording(100)
        transport, _ = await loop.create_connection(lambda: inner, "127.0.0.1", port)
        bound_reads(transport, 10)
        bounded = transport.get_protocol()
        assert isinstance(bounded, BoundedReads) and bounded.protocol is inner
        bound_reads(transport, 10)
        assert transport.get_protocol() is bounded
        transport.close()
        plain, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        protocol = plain.get_protocol()
        bound_reads(plain)
        assert plain.get_protocol() is protocol
        plain.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_fragmented_message_is_reassembled_around_a_ping(picows_server: Callable[..., Awaitable[str]]) -> None:
    server = ScriptedServer(
        [
            (WSMsgType.TEXT, b'{"type":', False),
            (WSMsgType.PING, b"heartbeat", True),  # control frames may interleave with fragments
            (WSMsgType.CONTINUATION, b'"ticker",', False),
            (WSMsgType.CONTINUATION, b'"msg":{}}', True),
            (WSMsgType.BINARY, b"whole", True),
        ]
    )
    url = await picows_server(lambda: server)
    sink = Sink(expect=2)
    conn = await connect(url, sink)
    async with asyncio.timeout(WAIT):
        await sink.complete.wait()
    assert sink.frames == [b'{"type":"ticker","msg":{}}', b"whole"]
    await conn.close()
    assert (WSMsgType.PONG, b"heartbeat") in server.received


async def test_server_ping_is_answered_with_its_payload(aio_server: Callable[..., Awaitable[str]]) -> None:
    answered: asyncio.Future[tuple[AioMsgType, bytes]] = asyncio.get_running_loop().create_future()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        await ws.ping(b"heartbeat")
        msg = await ws.receive()
        answered.set_result((msg.type, msg.data))
        await ws.receive()  # the client's close
        return ws

    url = await aio_server(handler)
    sink = Sink()
    conn = await connect(url, sink, heartbeat_interval=0)  # no pings of ours to confuse the server
    async with asyncio.timeout(WAIT):
        assert await answered == (AioMsgType.PONG, b"heartbeat")
    await conn.close()


# -- heartbeat ------------------------------------------------------------------------------------


def silent_server(pings: list[bytes]) -> Handler:
    """Never answers pings (autoping off) and never sends anything."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == AioMsgType.PING:
                pings.append(msg.data)
        return ws

    return handler


async def test_heartbeat_declares_a_silent_server_dead(aio_server: Callable[..., Awaitable[str]]) -> None:
    pings: list[bytes] = []
    url = await aio_server(silent_server(pings))
    sink = Sink()
    conn = await connect(url, sink, heartbeat_interval=0.2, heartbeat_timeout=0.2)
    info = await sink.wait_close()
    assert info.reason == REASON_HEARTBEAT_TIMEOUT
    assert isinstance(info.error, KalshiConnectionError)
    assert info.initiated_by_us and info.code is None and info.reconnectable
    assert pings  # we did ping before giving up
    assert conn.closed


async def test_heartbeat_is_satisfied_by_pongs(aio_server: Callable[..., Awaitable[str]]) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()  # autoping: answers our pings, sends nothing else
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    url = await aio_server(handler)
    sink = Sink()
    conn = await connect(url, sink, heartbeat_interval=0.05, heartbeat_timeout=0.2)
    await asyncio.sleep(0.8)  # several heartbeat periods
    assert not sink.closes and not conn.closed
    info = await conn.close()
    assert info.reason == REASON_CLIENT_CLOSE


async def test_pause_suspends_the_heartbeat_deadline(aio_server: Callable[..., Awaitable[str]]) -> None:
    pings: list[bytes] = []
    url = await aio_server(silent_server(pings))
    sink = Sink()
    conn = await connect(url, sink, heartbeat_interval=0.05, heartbeat_timeout=0.1)
    conn.pause_reading()
    await asyncio.sleep(0.6)  # many heartbeat timeouts long: a paused socket is silent by our choice
    assert not sink.closes and conn.paused
    conn.resume_reading()
    info = await sink.wait_close()
    assert info.reason == REASON_HEARTBEAT_TIMEOUT


# -- backpressure ---------------------------------------------------------------------------------


async def test_pause_stops_delivery_until_resume(aio_server: Callable[..., Awaitable[str]]) -> None:
    count = 600  # about 100 kB: fits in socket buffers, so the server finishes while we are paused
    all_sent = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # "go"
        for i in range(count):
            await ws.send_str(numbered(i))
        all_sent.set()
        async for _ in ws:
            pass
        return ws

    url = await aio_server(handler)
    sink = Sink(expect=count)
    holder: list[Connection] = []

    def on_frame(payload: bytes) -> None:
        sink.on_frame(payload)
        if len(sink.frames) == 1:
            holder[0].pause_reading()  # mid-read: frames already parsed must be held too

    conn = await open_connection(
        url,
        headers={},
        on_frame=on_frame,
        on_close=sink.on_close,
        connect_timeout=5.0,
        heartbeat_interval=30.0,
        heartbeat_timeout=30.0,
    )
    holder.append(conn)
    conn.send(b"go")
    async with asyncio.timeout(WAIT):
        await all_sent.wait()
    await asyncio.sleep(0.2)  # give the loop every chance to (wrongly) read and deliver
    assert sink.frames == [numbered(0).encode()]
    assert conn.paused
    conn.resume_reading()
    async with asyncio.timeout(WAIT):
        await sink.complete.wait()
    assert sink.frames == [numbered(i).encode() for i in range(count)]
    await conn.close()


# -- errors while connecting ----------------------------------------------------------------------


async def test_handshake_401_raises_handshake_error(aio_server: Callable[..., Awaitable[str]]) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=401, text="invalid signature")

    url = await aio_server(handler)
    with pytest.raises(KalshiHandshakeError) as caught:
        await connect(url, Sink())
    assert caught.value.status == 401
    assert caught.value.is_permanent
    assert caught.value.retry_after is None
    assert "401" in str(caught.value) and "clock" in str(caught.value)
    assert isinstance(caught.value.__cause__, WSHandshakeError)


async def test_handshake_429_carries_retry_after(aio_server: Callable[..., Awaitable[str]]) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "7"})

    url = await aio_server(handler)
    with pytest.raises(KalshiHandshakeError) as caught:
        await connect(url, Sink())
    assert caught.value.status == 429
    assert caught.value.retry_after == 7.0
    assert not caught.value.is_permanent


async def test_refused_connection_raises_connection_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(KalshiConnectionError) as caught:
        await connect(f"ws://127.0.0.1:{port}/ws", Sink())
    assert not isinstance(caught.value, KalshiHandshakeError)
    assert isinstance(caught.value.__cause__, OSError)


async def test_connect_timeout_raises_and_leaves_nothing_behind() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accept TCP, never answer the upgrade

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    before = asyncio.all_tasks()
    with pytest.raises(KalshiConnectionError, match=r"within 0\.2 s"):
        await connect(f"ws://127.0.0.1:{port}/ws", Sink(), connect_timeout=0.2)
    assert asyncio.all_tasks() <= before
    for writer in accepted:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_not_a_websocket_url_is_a_config_error() -> None:
    with pytest.raises(KalshiConfigError):
        await connect("http://127.0.0.1:1/ws", Sink())


# -- closing --------------------------------------------------------------------------------------


async def test_close_completes_the_handshake_and_leaves_no_tasks(aio_server: Callable[..., Awaitable[str]]) -> None:
    server_saw: list[int | None] = []
    server_done = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        server_saw.append(ws.close_code)
        server_done.set()
        return ws

    url = await aio_server(handler)
    before = asyncio.all_tasks()
    sink = Sink()
    conn = await connect(url, sink, heartbeat_interval=0.05, heartbeat_timeout=1.0)
    info = await conn.close(4001, "done")
    assert info == CloseInfo(1000, REASON_CLIENT_CLOSE, None, True)  # the server answered with 1000
    assert not info.reconnectable
    assert sink.closes == [info]
    assert await conn.close() == info  # idempotent
    with pytest.raises(KalshiConnectionError):
        conn.send(b"{}")
    async with asyncio.timeout(WAIT):
        await server_done.wait()
    assert server_saw == [4001]
    assert asyncio.all_tasks() <= before | {asyncio.current_task()}


async def test_close_gives_up_on_a_server_that_never_answers(picows_server: Callable[..., Awaitable[str]]) -> None:
    deaf = WSListener()  # the base listener ignores every frame, CLOSE included
    url = await picows_server(lambda: deaf)
    sink = Sink()
    conn = await connect(url, sink, close_timeout=0.2)
    info = await conn.close()
    assert info == CloseInfo(None, REASON_CLIENT_CLOSE, None, True)
    assert sink.closes == [info]


async def test_close_rejects_unsendable_codes(aio_server: Callable[..., Awaitable[str]]) -> None:
    url = await aio_server(silent_server([]))
    conn = await connect(url, Sink())
    with pytest.raises(ValueError):
        await conn.close(1006)
    with pytest.raises(ValueError):
        await conn.close(1000, "x" * 124)
    await conn.close()


async def test_server_policy_close_is_not_reconnectable(aio_server: Callable[..., Awaitable[str]]) -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close(code=1008, message=b"policy")
        return ws

    url = await aio_server(handler)
    sink = Sink()
    await connect(url, sink)
    info = await sink.wait_close()
    assert info == CloseInfo(1008, "policy", None, False)
    assert not info.reconnectable


async def test_dropped_connection_is_reported_as_lost(picows_server: Callable[..., Awaitable[str]]) -> None:
    url = await picows_server(lambda: ScriptedServer([(WSMsgType.TEXT, b"last", True)], drop=True))
    sink = Sink()
    await connect(url, sink)
    info = await sink.wait_close()
    assert sink.frames == [b"last"]
    assert info.reason == REASON_CONNECTION_LOST
    assert isinstance(info.error, KalshiConnectionError)
    assert not info.initiated_by_us and info.reconnectable


async def test_callback_error_closes_with_1011_and_reports_it(picows_server: Callable[..., Awaitable[str]]) -> None:
    server = ScriptedServer([(WSMsgType.TEXT, b"1", True), (WSMsgType.TEXT, b"2", True)])
    url = await picows_server(lambda: server)
    boom = RuntimeError("consumer bug")
    delivered: list[bytes] = []
    closes: list[CloseInfo] = []
    closed = asyncio.Event()

    def on_frame(payload: bytes) -> None:
        delivered.append(payload)
        raise boom

    def on_close(info: CloseInfo) -> None:
        closes.append(info)
        closed.set()

    await open_connection(
        url,
        headers={},
        on_frame=on_frame,
        on_close=on_close,
        connect_timeout=5.0,
        heartbeat_interval=30.0,
        heartbeat_timeout=30.0,
    )
    async with asyncio.timeout(WAIT):
        await closed.wait()
    assert delivered == [b"1"]  # nothing more after the failure
    assert closes[0].error is boom and closes[0].reason == REASON_CALLBACK_ERROR
    assert server.close_code == 1011


async def test_continuation_without_a_start_is_a_protocol_error(picows_server: Callable[..., Awaitable[str]]) -> None:
    server = ScriptedServer([(WSMsgType.CONTINUATION, b"orphan", True)])
    url = await picows_server(lambda: server)
    sink = Sink()
    conn = await connect(url, sink)
    info = await sink.wait_close()
    assert info.reason == REASON_PROTOCOL_ERROR
    assert isinstance(info.error, KalshiProtocolError)
    assert server.close_code == 1002
    assert await conn.wait_closed() == info


async def test_fragmented_message_over_the_limit_is_refused(picows_server: Callable[..., Awaitable[str]]) -> None:
    server = ScriptedServer([(WSMsgType.TEXT, b"123456", False), (WSMsgType.CONTINUATION, b"789012", True)])
    url = await picows_server(lambda: server)
    sink = Sink()
    await connect(url, sink, max_message_size=10)
    info = await sink.wait_close()
    assert not sink.frames
    assert isinstance(info.error, KalshiProtocolError) and "max_message_size=10" in str(info.error)
    assert server.close_code == 1009


async def test_oversized_frame_is_refused_by_the_parser(picows_server: Callable[..., Awaitable[str]]) -> None:
    url = await picows_server(lambda: ScriptedServer([(WSMsgType.TEXT, b"x" * 100, True)]))
    sink = Sink()
    conn = await connect(url, sink, max_message_size=10)
    info = await sink.wait_close()
    # picows' parser may still hand over the oversized frame itself if more data follows before it
    # disconnects; what matters is that the connection ends as a protocol error.
    assert len(sink.frames) <= 1
    assert info.reason == REASON_PROTOCOL_ERROR and isinstance(info.error, KalshiProtocolError)
    assert await conn.wait_closed() == info


# -- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A self-signed certificate for 127.0.0.1: untrusted by the default store."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


async def echo_once(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await ws.send_str("hello")
    async for _ in ws:
        pass
    return ws


async def test_tls_is_verified_by_default(
    aio_server: Callable[..., Awaitable[str]], server_tls: ssl.SSLContext
) -> None:
    url = await aio_server(echo_once, ssl_context=server_tls)
    with pytest.raises(KalshiConnectionError, match="verification") as caught:
        await connect(url, Sink())
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)


async def test_verify_tls_false_connects_and_warns(
    aio_server: Callable[..., Awaitable[str]], server_tls: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    url = await aio_server(echo_once, ssl_context=server_tls)
    sink = Sink(expect=1)
    with caplog.at_level(logging.WARNING, logger="kalshi.ws.transport"):
        conn = await connect(url, sink, verify_tls=False)
    assert any(r.levelno == logging.WARNING and "verification is OFF" in r.getMessage() for r in caplog.records)
    async with asyncio.timeout(WAIT):
        await sink.complete.wait()
    assert sink.frames == [b"hello"]
    await conn.close()
