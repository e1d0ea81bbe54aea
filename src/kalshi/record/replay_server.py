"""Serve a recording over the Kalshi WebSocket protocol, so any client consumes it as if it were live.

``ReplayServer`` listens on ``/trade-api/ws/v2`` (aiohttp) and honours the commands a client needs:

* ``subscribe``: ``subscribed`` with a new sid per channel, then the recorded data frames of that channel (and
  of ``market_tickers`` when given), from the start of the recording. The sid is rewritten to the new one and
  ``seq`` renumbered 1, 2, 3, ... per subscription, except where the recording has a hole: a recorded gap (seq
  numbers the recorder never received) skips as many numbers, and a recorded reconnect skips one (what was sent
  while the recorder was disconnected is unknown), so a client sees the gap exactly where the live client did
  and resyncs instead of applying later deltas to a book that lacks some. Recorded duplicates are skipped;
  snapshots that answered the recorder's ``get_snapshot`` (and the fresh ones after a reconnect) are replayed
  as snapshots, which repair the client's books.
* ``update_subscription``: ``get_snapshot`` (answered from the books as replayed so far), ``add_markets`` and
  ``delete_markets``; ``unsubscribe``; ``list_subscriptions``. Anything else gets an ``error``.

Pacing: ``speed=1.0`` keeps the recorded gaps between frames (by local receive time), ``speed=10`` is ten times
faster, ``speed=None`` sends as fast as the client reads. Each subscription runs on its own clock from its
subscribe; for exact cross-channel order use :meth:`kalshi.record.Recording.messages` instead.
Connections are not authenticated (a replay holds public data only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any, Final

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from kalshi.config import WS_PATH, KalshiConfig
from kalshi.record.reader import BookReplayer, RecordedRow, Recording
from kalshi.record.recorder import RecordingError
from kalshi.record.schema import CONTROL_TYPES
from kalshi.ws.codes import ErrorCode

__all__ = ["ReplayServer"]

logger = logging.getLogger(__name__)

_ORDERBOOK: Final = "orderbook_delta"
_YIELD_EVERY: Final = 256  # frames between yields to the loop when replaying as fast as possible


class _InFrame(msgspec.Struct, frozen=True, gc=False):
    type: str
    id: int | None = None
    sid: int | None = None
    seq: int | None = None
    msg: msgspec.Raw = msgspec.Raw()


class _OutFrame(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    type: str
    id: int | None = None
    sid: int | None = None
    seq: int | None = None
    msg: msgspec.Raw = msgspec.Raw()


_decode_frame = msgspec.json.Decoder(_InFrame).decode
_decode_any = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class _CommandError(Exception):
    def __init__(self, code: ErrorCode, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class _Subscription:
    __slots__ = ("books", "channel", "connection", "markets", "missing", "recorded_last", "seq", "sid", "task")

    def __init__(self, sid: int, channel: str, markets: set[str] | None) -> None:
        self.sid = sid
        self.channel = channel
        self.markets = markets
        self.seq = 0
        self.books = BookReplayer() if channel == _ORDERBOOK else None
        self.recorded_last: dict[tuple[str, int | None, int | None], int] = {}
        self.connection: tuple[str, int | None] | None = None  # the recorded connection of the last row
        self.missing = 0  # seq numbers to skip before the next frame: the holes of the recording
        self.task: asyncio.Task[None] | None = None

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def next_data_seq(self) -> int:
        """The seq of the next replayed data frame, past the holes met since the previous one."""
        self.seq += 1 + self.missing
        self.missing = 0
        return self.seq

    def note_recorded(self, row: RecordedRow) -> bool:
        """Account for a recorded data row: False for a recorded duplicate (not replayed)."""
        connection = (row.session, row.conn)
        if connection != self.connection:
            if self.connection is not None:
                self.missing += 1  # the recorder was disconnected in between
            self.connection = connection
        if row.seq is None:
            return True
        key = (row.session, row.conn, row.sid)
        last = self.recorded_last.get(key)
        if last is not None and row.seq <= last:
            return False
        self.recorded_last[key] = row.seq
        if last is not None:
            self.missing += row.seq - last - 1
        return True


class _Session:
    """One client connection: its subscriptions and their streaming tasks."""

    def __init__(self, server: ReplayServer, ws: web.WebSocketResponse) -> None:
        self.server = server
        self.ws = ws
        self.subs: dict[int, _Subscription] = {}
        self.next_sid = 1
        self.lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any] | bytes) -> None:
        data = frame if isinstance(frame, bytes) else _encode(frame)
        async with self.lock:
            await self.ws.send_str(data.decode())

    async def close(self) -> None:
        tasks = [sub.task for sub in self.subs.values() if sub.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.subs.clear()

    # ------------------------------------------------------------------ commands

    async def command(self, text: str) -> None:
        cmd_id = 0
        try:
            try:
                command = _decode_any(text)
            except msgspec.DecodeError:
                raise _CommandError(ErrorCode.UNABLE_TO_PROCESS, "Unable to process message") from None
            if not isinstance(command, dict):
                raise _CommandError(ErrorCode.UNABLE_TO_PROCESS, "Unable to process message")
            raw_id = command.get("id")
            cmd_id = raw_id if type(raw_id) is int else 0
            params = command.get("params")
            name = command.get("cmd")
            if name == "subscribe":
                await self._subscribe(cmd_id, params)
            elif name == "unsubscribe":
                await self._unsubscribe(cmd_id, params)
            elif name == "list_subscriptions":
                listing = [{"channel": s.channel, "sid": s.sid} for s in self.subs.values()]
                await self.send(_with_id({"type": "ok"}, cmd_id) | {"msg": listing})
            elif name == "update_subscription":
                await self._update(cmd_id, params)
            else:
                raise _CommandError(ErrorCode.UNKNOWN_COMMAND, "Unknown command")
        except _CommandError as exc:
            await self.send(_with_id({"type": "error"}, cmd_id) | {"msg": {"code": int(exc.code), "msg": exc.text}})

    async def _subscribe(self, cmd_id: int, params: Any) -> None:
        if not isinstance(params, dict):
            raise _CommandError(ErrorCode.PARAMS_REQUIRED, "Params required")
        channels = params.get("channels")
        if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
            raise _CommandError(ErrorCode.CHANNELS_REQUIRED, "Channels required")
        markets = _markets(params)
        for channel in channels:
            sub = _Subscription(self.next_sid, channel, set(markets) if markets is not None else None)
            self.next_sid += 1
            self.subs[sub.sid] = sub
            await self.send(_with_id({"type": "subscribed"}, cmd_id) | {"msg": {"channel": channel, "sid": sub.sid}})
            sub.task = asyncio.create_task(self._stream(sub), name=f"kalshi-replay-sid-{sub.sid}")

    async def _unsubscribe(self, cmd_id: int, params: Any) -> None:
        sids = params.get("sids") if isinstance(params, dict) else None
        if not isinstance(sids, list) or not sids:
            raise _CommandError(ErrorCode.SIDS_REQUIRED, "Subscription IDs required")
        for sid in sids:
            sub = self.subs.pop(sid, None) if type(sid) is int else None
            if sub is None:
                await self.send(
                    _with_id({"type": "error"}, cmd_id)
                    | {"msg": {"code": int(ErrorCode.UNKNOWN_SID), "msg": "Unknown sid"}}
                )
                continue
            if sub.task is not None:
                sub.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sub.task
            await self.send(_with_id({"type": "unsubscribed"}, cmd_id) | {"sid": sid, "seq": sub.next_seq()})

    async def _update(self, cmd_id: int, params: Any) -> None:
        if not isinstance(params, dict):
            raise _CommandError(ErrorCode.PARAMS_REQUIRED, "Params required")
        sid = params.get("sid")
        if sid is None and isinstance(params.get("sids"), list) and len(params["sids"]) == 1:
            sid = params["sids"][0]
        sub = self.subs.get(sid) if type(sid) is int else None
        if sub is None:
            raise _CommandError(ErrorCode.UNKNOWN_SID, "Unknown subscription ID")
        action = params.get("action")
        markets = _markets(params) or []
        if action == "get_snapshot" and sub.books is not None:
            if not markets:
                raise _CommandError(ErrorCode.MARKET_TICKER_REQUIRED, "Market Ticker required")
            for ticker in markets:
                await self._send_snapshot(sub, ticker, cmd_id)
        elif action in ("add_markets", "delete_markets") and sub.markets is not None:
            if not markets:
                raise _CommandError(ErrorCode.MARKET_TICKER_REQUIRED, "Market Ticker required")
            if action == "add_markets":
                sub.markets.update(markets)
            else:
                sub.markets.difference_update(markets)
            await self.send(
                _with_id({"type": "ok"}, cmd_id) | {"sid": sid, "msg": {"market_tickers": sorted(sub.markets)}}
            )
            if action == "add_markets" and sub.books is not None:
                for ticker in markets:
                    await self._send_snapshot(sub, ticker, None)
        else:
            raise _CommandError(
                ErrorCode.UNSUPPORTED_ACTION, f"{str(action)[:40]!r} is not supported by the replay server"
            )

    async def _send_snapshot(self, sub: _Subscription, ticker: str, cmd_id: int | None) -> None:
        assert sub.books is not None
        book = sub.books.book(ticker)
        if book is None:
            return  # not in the recording at this point; the recorded snapshots will follow
        levels = book.to_dict()
        body: dict[str, Any] = {"market_ticker": ticker}
        if levels["yes"]:
            body["yes_dollars_fp"] = levels["yes"]
        if levels["no"]:
            body["no_dollars_fp"] = levels["no"]
        frame: dict[str, Any] = {"type": "orderbook_snapshot"}
        if cmd_id:
            frame["id"] = cmd_id
        frame.update(sid=sub.sid, seq=sub.next_seq(), msg=body)
        await self.send(frame)

    # ------------------------------------------------------------------ streaming

    async def _stream(self, sub: _Subscription) -> None:
        server = self.server
        speed = server.speed
        loop = asyncio.get_running_loop()
        started = loop.time()
        first_ns: int | None = None
        sent = 0
        try:
            for row in server.recording.frames(channels=(sub.channel,)):
                if row.frame is None or row.type in CONTROL_TYPES:
                    continue
                if not sub.note_recorded(row):
                    continue
                if sub.books is not None:
                    sub.books.apply(row)
                if sub.markets is not None and row.market_ticker not in sub.markets:
                    continue
                try:
                    recorded = _decode_frame(row.frame)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue
                if speed is not None:
                    first_ns = row.recv_ns if first_ns is None else first_ns
                    delay = started + (row.recv_ns - first_ns) / 1e9 / speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                seq = sub.next_data_seq() if recorded.seq is not None else None
                await self.send(_encode(_OutFrame(type=recorded.type, sid=sub.sid, seq=seq, msg=recorded.msg)))
                sent += 1
                if speed is None and sent % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # let commands in between
        except (ConnectionResetError, RuntimeError) as exc:  # the client went away mid-stream
            logger.debug("replay of sid %d stopped: %s", sub.sid, exc)
            return
        except RecordingError as exc:
            # A file became unreadable mid-replay: end the connection (1011, as a failing exchange would), so the
            # client knows its stream stopped instead of waiting on a silent one.
            logger.error("replay of sid %d stopped: %s", sub.sid, exc)
            await self.ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"the recording could not be read")
            return
        server.stream_finished(sent)


def _with_id(frame: dict[str, Any], cmd_id: int) -> dict[str, Any]:
    if cmd_id:
        frame["id"] = cmd_id
    return frame


def _markets(params: dict[str, Any]) -> list[str] | None:
    tickers = params.get("market_tickers")
    single = params.get("market_ticker")
    if isinstance(single, str):
        return [single, *(tickers if isinstance(tickers, list) else [])]
    if isinstance(tickers, list):
        return [t for t in tickers if isinstance(t, str)]
    return None


class ReplayServer:
    """A WebSocket endpoint that replays a recording (see the module docstring).

    Use as ``async with ReplayServer("rec", speed=None) as server:`` and connect any client to
    ``server.config``.

    Args:
        source: a recording directory, file or opened :class:`~kalshi.record.Recording`.
        speed: replay speed factor (1.0 = recorded pace); None sends as fast as the client reads.
        host: interface to bind (loopback).
        port: TCP port; 0 picks a free one (read :attr:`url`).

    Raises:
        RecordingError: no recording at ``source``.
        ValueError: ``speed`` is not positive.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | Recording,
        *,
        speed: float | None = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if speed is not None and not speed > 0:
            raise ValueError("speed must be > 0 (or None for as fast as possible)")
        self.recording = source if isinstance(source, Recording) else Recording(source)
        self.speed = speed
        self.host = host
        self.port = port
        self.connections = 0
        self.streams_finished = 0
        self.frames_sent = 0
        self._runner: web.AppRunner | None = None
        self._sessions: set[_Session] = set()
        self._changed = asyncio.Event()

    async def __aenter__(self) -> ReplayServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """``http://HOST:PORT``, the base to give ``KalshiConfig.local`` or ``--url``."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}{WS_PATH}"

    @property
    def config(self) -> KalshiConfig:
        """A client configuration pointing here."""
        return KalshiConfig.local(self.url)

    async def start(self) -> None:
        """Bind and start serving.

        Raises:
            RuntimeError: already started.
            OSError: the port cannot be bound.
        """
        if self._runner is not None:
            raise RuntimeError("the replay server is already running")
        app = web.Application()
        app.router.add_get(WS_PATH, self._handle_ws)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop every replay and close every connection."""
        for session in list(self._sessions):
            await session.close()
            await session.ws.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def stream_finished(self, frames: int) -> None:
        """Called by a subscription that has sent its last recorded frame."""
        self.streams_finished += 1
        self.frames_sent += frames
        self._changed.set()

    async def wait_streams(self, count: int) -> None:
        """Wait until ``count`` subscriptions (in total) have sent all their recorded frames."""
        while self.streams_finished < count:
            self._changed.clear()
            await self._changed.wait()

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 20)
        if not ws.can_prepare(request).ok:
            return web.json_response(
                {"error": {"code": "bad_request", "message": "expected a WebSocket upgrade"}}, status=400
            )
        await ws.prepare(request)
        self.connections += 1
        session = _Session(self, ws)
        self._sessions.add(session)
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await session.command(message.data)
                elif message.type is WSMsgType.ERROR:
                    break
        finally:
            self._sessions.discard(session)
            await session.close()
        return ws
