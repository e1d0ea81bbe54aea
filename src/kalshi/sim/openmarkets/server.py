"""A local OpenMarkets liquidity server (seed 004): the stream, its limits and the REST liquidity endpoint.

The contests and their tables are :mod:`kalshi.sim.openmarkets.contests` (sans-I/O); this module is the I/O.

One aiohttp port serves:

* ``GET /flow/v1/stream?api_key=...``: the WebSocket. An unknown or missing key is refused at the upgrade with
  HTTP 401; a key that already holds ``max_connections_per_key`` connections gets HTTP 429. Once open the server
  greets (``connected``), answers ``subscribe`` (replacing the channel's filter list), ``unsubscribe`` and
  ``ping``, and streams ``liquidity.update`` / ``contest_state.update`` for subscribed contests. A subscribe
  that would put more than ``max_contests`` distinct contests on the connection is refused with an
  ``error`` (code ``contest_limit_exceeded``) and changes nothing. Non-JSON gets ``invalid_message``, an
  unknown channel ``invalid_channel``. The server pings every ``ping_interval`` seconds and closes (4000) a
  connection whose pong has not arrived by the next ping.
* ``GET /flow/v1/contests/{contest_id}/liquidity`` with ``X-API-Key``: the contest's whole table.
* ``GET /flow/v1/contests``: the synthetic contests and their states.

Activity is synthetic and seeded: contests with quotes from partners (kalshi, polymarket, ...). Every change is
applied to the server's table (:meth:`OpenMarketsServer.truth`) and enqueued to subscribers synchronously, so
what a client receives is always in the order the table changed. An entry with ``available`` 0 is a removed
quote. Fault hooks: dropped connections, ``refresh_required`` bursts (changes applied but not streamed),
malformed frames, unsolicited errors, withheld answers, failing REST answers, revoked keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from aiohttp import WSMsgType, web

from kalshi.sim.openmarkets.contests import CONTEST_STATES, DEFAULT_PARTNERS, ContestBoard, LiquidityRow, wire_entry

__all__ = [
    "DEMO_API_KEY",
    "REST_PREFIX",
    "STREAM_PATH",
    "OpenMarketsServer",
    "PeerInfo",
]

log = logging.getLogger(__name__)

STREAM_PATH: Final = "/flow/v1/stream"
REST_PREFIX: Final = "/flow/v1"
DEMO_API_KEY: Final = "om_data_local_demo"  # the simulator's public demo key: not a secret
CHANNELS: Final = ("liquidity", "contest_state")
_OUTBOX_LIMIT: Final = 100_000
_CLOSE_HEARTBEAT: Final = 4000
_CLOSE_SLOW: Final = 1013
_CLOSE_RESTART: Final = 1012
_CLOSE_GOING_AWAY: Final = 1001
_ENCODER: Final = msgspec.json.Encoder(decimal_format="number")


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """One open connection, for tests and the CLI."""

    conn_id: int
    api_key_id: str
    filters: dict[str, list[str]]
    pings_sent: int
    pongs_received: int


@dataclass(slots=True)
class _Key:
    organization_id: str
    api_key_id: str


@dataclass(eq=False)
class _Peer:
    conn_id: int
    api_key: str = field(repr=False)
    key: _Key
    ws: web.WebSocketResponse
    request: web.Request
    filters: dict[str, dict[str, None]] = field(default_factory=dict)
    outbox: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(_OUTBOX_LIMIT))
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    pings_sent: int = 0
    pongs_received: int = 0
    awaiting_pong: bool = False
    released: bool = False

    def contests(self) -> set[str]:
        union: set[str] = set()
        for ids in self.filters.values():
            union.update(ids)
        return union

    def wants(self, channel: str, contest_id: str) -> bool:
        ids = self.filters.get(channel)
        return ids is not None and contest_id in ids


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class OpenMarketsServer:
    """The local OpenMarkets server. An async context manager; 127.0.0.1 and a free port by default.

    Args:
        seed: seeds contests, quotes and activity.
        contests: how many synthetic contests, or their ids.
        partners: the venues quoting every contest.
        rate: activity events per second (0: only :meth:`step` changes anything).
        api_keys: accepted keys (a mapping gives each its organization id); the demo key when None.
        max_contests: contests per connection.
        max_connections_per_key: concurrent connections per key.
        ping_interval: seconds between server pings (0: none).
        host: interface to bind.
        port: TCP port; 0 picks a free one (see :attr:`url`).
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        contests: int | Sequence[str] = 8,
        partners: Sequence[str] = DEFAULT_PARTNERS,
        rate: float = 10.0,
        api_keys: Mapping[str, str] | Iterable[str] | None = None,
        max_contests: int = 200,
        max_connections_per_key: int = 3,
        ping_interval: float = 25.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._rng = random.Random(seed)
        self.rate = rate
        self.max_contests = max_contests
        self.max_connections_per_key = max_connections_per_key
        self.ping_interval = ping_interval
        self.host = host
        self.port = port
        self.partners = tuple(partners)
        self._keys: dict[str, _Key] = {}
        keys = {DEMO_API_KEY: "org_local"} if api_keys is None else api_keys
        for api_key in keys:
            self.add_key(api_key, keys[api_key] if isinstance(keys, Mapping) else "org_local")
        self._board = ContestBoard(self._rng, contests, self.partners)
        self._contests = self._board.contests
        self._peers: dict[int, _Peer] = {}
        self._live: Counter[str] = Counter()
        self._next_conn = 1
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._rest_failures: deque[int] = deque()
        self._rest_gate: asyncio.Event | None = None
        self._withheld: Counter[str] = Counter()
        self.handshakes: Counter[int | str] = Counter()
        self.rest_requests = 0
        self.events_sent = 0

    def __repr__(self) -> str:
        return f"OpenMarketsServer({self.url!r}, contests={len(self._contests)}, connections={len(self._peers)})"

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> OpenMarketsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind and serve (and run activity when ``rate > 0``).

        Raises:
            RuntimeError: already started.
            OSError: the port cannot be bound.
        """
        if self._runner is not None:
            raise RuntimeError("the OpenMarkets server is already running")
        app = web.Application()
        app.router.add_get(STREAM_PATH, self._handle_ws)
        app.router.add_get(f"{REST_PREFIX}/contests", self._handle_contests)
        app.router.add_get(f"{REST_PREFIX}/contests/{{contest_id}}/liquidity", self._handle_liquidity)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        if self.rate > 0:
            self._tasks.append(asyncio.create_task(self._activity(), name="openmarkets-activity"))
        log.info("OpenMarkets server on %s (%d contests)", self.url, len(self._contests))

    async def stop(self) -> None:
        """Stop activity, close every connection (1001) and release the port."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        peers = list(self._peers.values())
        if peers:
            await asyncio.gather(
                *(peer.ws.close(code=_CLOSE_GOING_AWAY, message=b"server shutdown") for peer in peers),
                return_exceptions=True,
            )
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    @property
    def url(self) -> str:
        """The stream URL, without a key: ``ws://127.0.0.1:PORT/flow/v1/stream``."""
        return f"ws://{self.host}:{self.port}{STREAM_PATH}"

    @property
    def rest_url(self) -> str:
        """The REST base: ``http://127.0.0.1:PORT/flow/v1``."""
        return f"http://{self.host}:{self.port}{REST_PREFIX}"

    # ------------------------------------------------------------------ keys and inspection

    def add_key(self, api_key: str, organization_id: str = "org_local") -> None:
        """Accept ``api_key``; its ``api_key_id`` is derived from it (never the key itself)."""
        digest = hashlib.sha256(api_key.encode()).hexdigest()[:12]
        self._keys[api_key] = _Key(organization_id, f"key_{digest}")

    def revoke_key(self, api_key: str) -> None:
        """Refuse ``api_key`` from now on (open connections stay until dropped)."""
        self._keys.pop(api_key, None)

    @property
    def contest_ids(self) -> list[str]:
        return list(self._contests)

    def truth(self, contest_id: str) -> dict[str, LiquidityRow]:
        """A copy of the server's liquidity table of a contest.

        Raises:
            KeyError: no such contest.
        """
        return dict(self._contests[contest_id].table)

    def contest_state(self, contest_id: str) -> str:
        return self._contests[contest_id].state

    @property
    def connections(self) -> list[PeerInfo]:
        """Every open connection with its filters."""
        return [
            PeerInfo(
                peer.conn_id,
                peer.key.api_key_id,
                {channel: list(ids) for channel, ids in peer.filters.items()},
                peer.pings_sent,
                peer.pongs_received,
            )
            for peer in self._peers.values()
        ]

    # ------------------------------------------------------------------ activity

    def step(self, events: int = 1, *, contest_ids: Sequence[str] | None = None) -> int:
        """Make ``events`` random changes (1-3 quotes each) and stream them; returns the number of changes."""
        pool = list(contest_ids) if contest_ids is not None else list(self._contests)
        if not pool:
            return 0
        changes = 0
        for _ in range(events):
            contest = self._contests[self._rng.choice(pool)]
            entries = [self._board.change(contest) for _ in range(self._rng.randint(1, 3))]
            changes += len(entries)
            self._broadcast_liquidity(contest.contest_id, entries, refresh=False)
            if self._rng.random() < 0.05:
                index = CONTEST_STATES.index(contest.state) if contest.state in CONTEST_STATES else 0
                self.set_contest_state(contest.contest_id, CONTEST_STATES[(index + 1) % len(CONTEST_STATES)])
        return changes

    def set_contest_state(self, contest_id: str, state: str) -> None:
        """Change a contest's state and stream ``contest_state.update``."""
        contest = self._contests[contest_id]
        contest.state = state
        text = self._encode(
            {"type": "contest_state.update", "contest_id": contest_id, "state": state, "timestamp": _now()}
        )
        for peer in list(self._peers.values()):
            if peer.wants("contest_state", contest_id):
                self._enqueue(peer, text)

    def refresh_burst(self, contest_ids: Iterable[str] | None = None, *, changes: int = 25) -> None:
        """Change many quotes *without* streaming them, then send ``refresh_required: true`` (as when a
        partner re-sends its whole book): clients must re-fetch over REST."""
        for contest_id in list(contest_ids) if contest_ids is not None else list(self._contests):
            contest = self._contests[contest_id]
            for _ in range(changes):
                self._board.change(contest)
            self._broadcast_liquidity(contest_id, [], refresh=True)

    async def _activity(self) -> None:
        tick = max(0.01, 1.0 / self.rate)
        per_tick = max(1, round(self.rate * tick))
        while True:
            await asyncio.sleep(tick)
            self.step(per_tick)

    def _broadcast_liquidity(self, contest_id: str, entries: list[dict[str, Any]], *, refresh: bool) -> None:
        message = {
            "type": "liquidity.update",
            "contest_id": contest_id,
            "changed_entries": entries,
            "refresh_required": refresh,
            "timestamp": _now(),
        }
        text: str | None = None
        for peer in list(self._peers.values()):
            if peer.wants("liquidity", contest_id):
                text = text or self._encode(message)
                self._enqueue(peer, text)
                self.events_sent += 1

    # ------------------------------------------------------------------ faults

    async def drop_connections(self, *, clean: bool = False) -> int:
        """Drop every connection: abort the TCP connection, or close with 1012 (service restart) when
        ``clean``. Returns how many. Slots are released at once, so reconnects are not refused."""
        peers = list(self._peers.values())
        for peer in peers:
            self._release(peer)
            if clean:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await peer.ws.close(code=_CLOSE_RESTART, message=b"service restart")
            elif peer.request.transport is not None:
                peer.request.transport.abort()
        return len(peers)

    def send_raw(self, text: str) -> None:
        """Send ``text`` as-is to every connection (e.g. malformed JSON)."""
        for peer in list(self._peers.values()):
            self._enqueue(peer, text)

    def send_error(self, code: str, message: str) -> None:
        """Send an unsolicited ``error`` to every connection."""
        self.send_raw(self._encode({"type": "error", "code": code, "message": message}))

    def fail_rest(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` liquidity requests with HTTP ``status``."""
        self._rest_failures.extend([status] * times)

    def hold_rest(self) -> None:
        """Hold liquidity requests until :meth:`release_rest` (their tables are read after the release)."""
        if self._rest_gate is None:
            self._rest_gate = asyncio.Event()

    def withhold_replies(self, reply_type: str, times: int = 1) -> None:
        """Apply the next ``times`` commands answered by ``reply_type`` (``subscribed``, ``unsubscribed``,
        ``pong``) but send no answer, as a stalled server would."""
        self._withheld[reply_type] += times

    def release_rest(self) -> None:
        """Let held liquidity requests answer."""
        gate, self._rest_gate = self._rest_gate, None
        if gate is not None:
            gate.set()

    # ------------------------------------------------------------------ WebSocket

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        api_key = request.query.get("api_key", "")
        key = self._keys.get(api_key)
        if key is None:
            self.handshakes[401] += 1
            return _json_error(401, "unauthorized", "missing or invalid api_key")
        if self._live[api_key] >= self.max_connections_per_key:
            self.handshakes[429] += 1
            return _json_error(
                429,
                "too_many_connections",
                f"this API key already holds {self.max_connections_per_key} connections",
            )
        self._live[api_key] += 1  # reserved before any await: concurrent upgrades cannot overshoot
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
        peer = _Peer(self._next_conn, api_key, key, ws, request)
        self._next_conn += 1
        try:
            await ws.prepare(request)
            self.handshakes["accepted"] += 1
            self._peers[peer.conn_id] = peer
            peer.tasks.append(asyncio.create_task(self._writer(peer)))
            if self.ping_interval > 0:
                peer.tasks.append(asyncio.create_task(self._pinger(peer)))
            greeting = {
                "type": "connected",
                "organization_id": key.organization_id,
                "api_key_id": key.api_key_id,
                "server_time": _now(),
            }
            self._enqueue(peer, self._encode(greeting))
            log.info("connection %d opened (key id %s)", peer.conn_id, key.api_key_id)
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_text(peer, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    self._on_text(peer, bytes(msg.data).decode("utf-8", "replace"))
                elif msg.type is WSMsgType.PING:
                    await ws.pong(msg.data)
                elif msg.type is WSMsgType.PONG:
                    peer.pongs_received += 1
                    peer.awaiting_pong = False
        except (ConnectionError, RuntimeError) as exc:
            log.debug("connection %d ended: %s", peer.conn_id, exc)
        finally:
            self._release(peer)
            for task in peer.tasks:
                task.cancel()
            for task in peer.tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            log.info("connection %d closed", peer.conn_id)
        return ws

    def _release(self, peer: _Peer) -> None:
        if peer.released:
            return
        peer.released = True
        self._peers.pop(peer.conn_id, None)
        self._live[peer.api_key] -= 1
        if self._live[peer.api_key] <= 0:
            del self._live[peer.api_key]

    def _on_text(self, peer: _Peer, text: str) -> None:
        try:
            data = msgspec.json.decode(text)
        except msgspec.DecodeError:
            self._error(peer, "invalid_message", "message is not valid JSON")
            return
        if not isinstance(data, dict):
            self._error(peer, "invalid_message", "a message is a JSON object with an 'action'")
            return
        action = data.get("action")
        if action == "ping":
            self._reply(peer, {"type": "pong", "server_time": _now()})
            return
        if action not in ("subscribe", "unsubscribe"):
            self._error(peer, "invalid_message", f"unknown action {action!r}; use subscribe, unsubscribe or ping")
            return
        channel = data.get("channel")
        if channel not in CHANNELS:
            self._error(peer, "invalid_channel", f"unknown channel {channel!r}; channels: {', '.join(CHANNELS)}")
            return
        ids = data.get("contest_ids", [])
        if not isinstance(ids, list) or not all(isinstance(c, str) for c in ids):
            self._error(peer, "invalid_message", "contest_ids must be an array of strings")
            return
        if action == "subscribe":
            self._subscribe(peer, channel, ids)
        else:
            current = peer.filters.get(channel, {})
            removed = [c for c in dict.fromkeys(ids) if c in current]
            for contest_id in removed:
                del current[contest_id]
            if not current:
                peer.filters.pop(channel, None)
            reply = {"type": "unsubscribed", "channel": channel, "contest_ids": removed}
            self._reply(peer, reply)

    def _subscribe(self, peer: _Peer, channel: str, ids: list[str]) -> None:
        if ids:  # an empty array is a no-op, as the seed says
            wanted = dict.fromkeys(ids)
            others: set[str] = set()
            for name, current in peer.filters.items():
                if name != channel:
                    others.update(current)
            total = len(others | set(wanted))
            if total > self.max_contests:
                self._error(
                    peer,
                    "contest_limit_exceeded",
                    f"{total} contests on one connection; the limit is {self.max_contests} per connection",
                )
                return
            peer.filters[channel] = wanted  # re-subscribing replaces the filter list
        reply = {"type": "subscribed", "channel": channel, "contest_ids": list(peer.filters.get(channel, {}))}
        self._reply(peer, reply)

    def _reply(self, peer: _Peer, reply: dict[str, Any]) -> None:
        if self._withheld[reply["type"]] > 0:
            self._withheld[reply["type"]] -= 1
            return
        self._enqueue(peer, self._encode(reply))

    def _error(self, peer: _Peer, code: str, message: str) -> None:
        self._enqueue(peer, self._encode({"type": "error", "code": code, "message": message}))

    def _enqueue(self, peer: _Peer, text: str) -> None:
        try:
            peer.outbox.put_nowait(text)
        except asyncio.QueueFull:
            log.warning("connection %d: client too slow (%d frames queued); closing it", peer.conn_id, _OUTBOX_LIMIT)
            self._release(peer)
            peer.tasks.append(asyncio.create_task(self._close(peer, _CLOSE_SLOW, b"client too slow")))

    async def _close(self, peer: _Peer, code: int, message: bytes) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await peer.ws.close(code=code, message=message)

    async def _writer(self, peer: _Peer) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                await peer.ws.send_str(await peer.outbox.get())

    async def _pinger(self, peer: _Peer) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                await asyncio.sleep(self.ping_interval)
                if peer.awaiting_pong:
                    log.info("connection %d: no pong since the last ping; terminating it", peer.conn_id)
                    await peer.ws.close(code=_CLOSE_HEARTBEAT, message=b"heartbeat timeout")
                    return
                peer.awaiting_pong = True
                peer.pings_sent += 1
                await peer.ws.ping(b"")

    # ------------------------------------------------------------------ REST

    async def _handle_contests(self, request: web.Request) -> web.Response:
        if request.headers.get("X-API-Key", "") not in self._keys:
            return _json_error(401, "unauthorized", "missing or invalid X-API-Key header")
        body = {"contests": [{"contest_id": c.contest_id, "state": c.state} for c in self._contests.values()]}
        return web.Response(body=self._encode_bytes(body), content_type="application/json")

    async def _handle_liquidity(self, request: web.Request) -> web.Response:
        self.rest_requests += 1
        if request.headers.get("X-API-Key", "") not in self._keys:
            return _json_error(401, "unauthorized", "missing or invalid X-API-Key header")
        gate = self._rest_gate
        if gate is not None:
            await gate.wait()
        if self._rest_failures:
            status = self._rest_failures.popleft()
            return _json_error(status, "injected_failure", "injected by fail_rest()")
        contest = self._contests.get(request.match_info["contest_id"])
        if contest is None:
            return _json_error(404, "not_found", "no such contest")
        body = {
            "contest_id": contest.contest_id,
            "entries": [wire_entry(h, row) for h, row in contest.table.items()],
            "timestamp": _now(),
        }
        return web.Response(body=self._encode_bytes(body), content_type="application/json")

    @staticmethod
    def _encode(message: dict[str, Any]) -> str:
        return _ENCODER.encode(message).decode()

    @staticmethod
    def _encode_bytes(message: dict[str, Any]) -> bytes:
        return _ENCODER.encode(message)


def _json_error(status: int, code: str, message: str) -> web.Response:
    body = _ENCODER.encode({"error": {"code": code, "message": message}})
    return web.Response(status=status, body=body, content_type="application/json")
