"""A minimal WebSocket client for simulator tests (aiohttp, deliberately not the project's client).

A background task reads every frame into a queue, so the server is never blocked by an idle test; each text
frame is decoded with ``json`` and validated against asyncapi.yaml unless it is unparsable (kept raw, for the
malformed-frame fault). ``sync()`` sends ``list_subscriptions`` and returns everything received before its
answer: since the server answers in order, that is every frame sent before the command arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp

from asyncapi_schema import validate_message
from conftest import eventually as eventually  # re-exported: the one polling helper
from kalshi.auth import KalshiAuth
from kalshi.models.markets import Orderbook

WS_PATH = "/trade-api/ws/v2"


@dataclass
class Received:
    """One frame from the server: ``data`` is the decoded JSON, or None with ``raw`` for unparsable text."""

    raw: str
    data: dict[str, Any] | None
    schema: str | None = None


@dataclass
class SimClient:
    session: aiohttp.ClientSession
    ws: aiohttp.ClientWebSocketResponse
    validate: bool = True
    frames: asyncio.Queue[Received | None] = field(default_factory=asyncio.Queue)
    log: list[Received] = field(default_factory=list)
    pings: list[bytes] = field(default_factory=list)
    pongs: list[bytes] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    _next_id: int = 1
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls,
        base_url: str,
        *,
        auth: KalshiAuth | None = None,
        headers: Mapping[str, str] | None = None,
        autopong: bool = True,
        validate: bool = True,
    ) -> SimClient:
        """Open a connection to ``base_url`` (``http://127.0.0.1:PORT``), signed with ``auth`` if given.

        Raises:
            aiohttp.WSServerHandshakeError: the server refused the upgrade (its ``status`` says why).
        """
        url = base_url.replace("http://", "ws://") + WS_PATH
        all_headers = dict(headers or {})
        if auth is not None:
            all_headers.update(auth.headers("GET", WS_PATH))
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(url, headers=all_headers, autoping=autopong, heartbeat=None, max_msg_size=0)
        except BaseException:
            await session.close()
            raise
        client = cls(session, ws, validate=validate)
        client._reader = asyncio.create_task(client._read())
        return client

    async def _read(self) -> None:
        try:
            while True:
                msg = await self.ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._on_text(msg.data)
                elif msg.type is aiohttp.WSMsgType.PING:
                    self.pings.append(msg.data)
                elif msg.type is aiohttp.WSMsgType.PONG:
                    self.pongs.append(msg.data)
                elif msg.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                    aiohttp.WSMsgType.CLOSING,
                ):
                    break
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            self.frames.put_nowait(None)

    def _on_text(self, text: str) -> None:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            item = Received(text, None)
        else:
            schema = validate_message(data) if self.validate else None
            item = Received(text, data, schema)
        self.log.append(item)
        self.frames.put_nowait(item)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.session.close()

    async def __aenter__(self) -> SimClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- sending ----------------------------------------------------------------------------------------------

    def next_id(self) -> int:
        cmd_id = self._next_id
        self._next_id += 1
        return cmd_id

    async def send_raw(self, text: str) -> None:
        await self.ws.send_str(text)

    async def cmd(self, cmd: str, params: dict[str, Any] | None = None, *, cmd_id: int | None = None) -> int:
        """Send a command; returns its id."""
        cid = self.next_id() if cmd_id is None else cmd_id
        body: dict[str, Any] = {"id": cid, "cmd": cmd}
        if params is not None:
            body["params"] = params
        await self.ws.send_str(json.dumps(body))
        return cid

    # -- receiving --------------------------------------------------------------------------------------------

    async def recv_frame(self, wait: float = 5.0) -> Received:
        """The next frame (raw or decoded).

        Raises:
            ConnectionError: the connection closed first.
            TimeoutError: nothing within ``wait`` seconds.
        """
        item = await asyncio.wait_for(self.frames.get(), wait)
        if item is None:
            self.frames.put_nowait(None)
            raise ConnectionError(f"connection closed (code {self.close_code})")
        return item

    async def recv(self, wait: float = 5.0) -> dict[str, Any]:
        """The next decoded message (fails on an unparsable frame)."""
        item = await self.recv_frame(wait)
        assert item.data is not None, f"unparsable frame: {item.raw[:80]!r}"
        return item.data

    async def recv_until(self, predicate: Callable[[dict[str, Any]], bool], wait: float = 5.0) -> list[dict[str, Any]]:
        """Messages up to and including the first for which ``predicate`` holds."""
        out: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            item = await self.recv_frame(max(0.01, deadline - loop.time()))
            if item.data is None:
                continue
            out.append(item.data)
            if predicate(item.data):
                return out

    async def request(self, cmd: str, params: dict[str, Any] | None = None, wait: float = 5.0) -> list[dict[str, Any]]:
        """Send a command and return messages up to its first response carrying the command id."""
        cid = await self.cmd(cmd, params)
        return await self.recv_until(lambda m: m.get("id") == cid, wait)

    async def sync(self, wait: float = 5.0) -> list[Received]:
        """Every frame received before the answer to a fresh ``list_subscriptions`` (which is not returned)."""
        cid = await self.cmd("list_subscriptions")
        out: list[Received] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            item = await self.recv_frame(max(0.01, deadline - loop.time()))
            if (
                item.data is not None
                and item.data.get("id") == cid
                and item.data.get("type") == "ok"
                and isinstance(item.data.get("msg"), list)
            ):
                return out
            out.append(item)

    def drain_nowait(self) -> list[Received]:
        """Frames already received and not yet consumed."""
        out: list[Received] = []
        while not self.frames.empty():
            item = self.frames.get_nowait()
            if item is None:
                self.frames.put_nowait(None)
                break
            out.append(item)
        return out


def data_of(items: list[Received]) -> list[dict[str, Any]]:
    """The decoded messages of a list of frames (unparsable ones skipped)."""
    return [i.data for i in items if i.data is not None]


def ticks(text: str) -> int:
    """``"0.5600"`` -> 5600, parsed here with Decimal (independent of the library's parser)."""
    value = Decimal(text) * 10_000
    assert value == value.to_integral_value(), text
    return int(value)


def units(text: str) -> int:
    """``"12.50"`` -> 1250."""
    value = Decimal(text) * 100
    assert value == value.to_integral_value(), text
    return int(value)


class BookReplica:
    """Order books rebuilt from orderbook_snapshot/orderbook_delta messages with plain dicts.

    NO levels are kept in NO prices; with ``use_yes_price`` the wire's YES-leg prices are converted back.
    """

    def __init__(self, *, use_yes_price: bool = False) -> None:
        self.use_yes_price = use_yes_price
        self.books: dict[str, dict[str, dict[int, int]]] = {}
        self.clocks: dict[str, int] = {}

    def _no_price(self, price: int, side: str) -> int:
        return 10_000 - price if side == "no" and self.use_yes_price else price

    def apply(self, message: dict[str, Any]) -> None:
        if message["type"] not in ("orderbook_snapshot", "orderbook_delta"):
            return
        msg = message["msg"]
        ticker = msg["market_ticker"]
        if message["type"] == "orderbook_snapshot":
            book: dict[str, dict[int, int]] = {"yes": {}, "no": {}}
            for side, key in (("yes", "yes_dollars_fp"), ("no", "no_dollars_fp")):
                for price, size in msg.get(key, []):
                    book[side][self._no_price(ticks(price), side)] = units(size)
            self.books[ticker] = book
        elif message["type"] == "orderbook_delta":
            side = msg["side"]
            level = self.books[ticker][side]
            price = self._no_price(ticks(msg["price_dollars"]), side)
            new = level.get(price, 0) + units(msg["delta_fp"])
            assert new >= 0, f"negative level {ticker} {side} {price}: {new}"
            if new:
                level[price] = new
            else:
                level.pop(price, None)
        if "clock" in msg:
            assert msg["clock"] >= self.clocks.get(ticker, 0), "book clock went backwards"
            self.clocks[ticker] = msg["clock"]

    def apply_all(self, messages: list[dict[str, Any]]) -> None:
        for m in messages:
            self.apply(m)

    def orderbook(self, ticker: str) -> Orderbook:
        book = self.books[ticker]
        return Orderbook.from_levels(ticker, book["yes"].items(), book["no"].items())


def check_seq(messages: list[dict[str, Any]], sequenced: set[int]) -> dict[int, int]:
    """Assert seq runs 1, 2, 3... without gaps on each sid in ``sequenced``; returns the last seq per sid."""
    last: dict[int, int] = {}
    for m in messages:
        sid = m.get("sid")
        if sid in sequenced and "seq" in m:
            expected = last.get(sid, 0) + 1
            assert m["seq"] == expected, f"sid {sid}: seq {m['seq']} after {expected - 1} in {m}"
            last[sid] = m["seq"]
    return last
