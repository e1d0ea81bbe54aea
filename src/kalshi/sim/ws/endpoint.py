"""The simulator's WebSocket face: it answers the upgrade and keeps the open connections.

:meth:`WsEndpoint.handle` is the aiohttp handler of ``/trade-api/ws/v2``. An upgrade is refused while fault
injection says so (the configured status, ``Retry-After``), then must be signed like every connection to the
2026 exchange, public channels included, unless the simulator is open (``--open``), where unsigned
connections get the public channels only. An accepted connection gets its own :class:`Outbox`,
:class:`WsSession` and :class:`SimConnection`, registered until it closes; the simulator's fault target
(:meth:`connection_ids`, :meth:`overflow_subscription`...) reads this registry.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from kalshi.auth import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP
from kalshi.sim.faults import FaultController
from kalshi.sim.keys import KeyRegistry, SignatureRejected
from kalshi.sim.ws.connection import SimConnection
from kalshi.sim.ws.fanout import Hub, Outbox, Subscription
from kalshi.sim.ws.feeds import Feeds
from kalshi.sim.ws.session import SessionLimits, WsSession
from kalshi.ws.codes import ErrorCode

__all__ = ["WsEndpoint", "WsSettings"]

log = logging.getLogger(__name__)

_AUTH_HEADERS: Final = (HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE)
_UNSIGNED_UPGRADE: Final = {
    "code": "missing_header",
    "message": "every WebSocket connection must be signed, for public channels too: send KALSHI-ACCESS-KEY, "
    "KALSHI-ACCESS-TIMESTAMP and KALSHI-ACCESS-SIGNATURE (KalshiAuth.headers()), or start the simulator with "
    "--open (Simulator(open_access=True)) to accept unsigned connections to public channels",
}
_MAX_FRAME: Final = 1 << 20
_WRITE_BUFFER_HIGH: Final = 4 << 20


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class WsSettings:
    """How connections are served (see :class:`~kalshi.sim.server.Simulator` for each)."""

    open_access: bool
    limits: SessionLimits
    outbox_limit: int
    ping_interval: float
    ping_timeout: float


class WsEndpoint:
    """Accepts WebSocket connections and keeps those open.

    Args:
        settings: access, limits and heartbeat.
        hub: routes data frames to subscriptions.
        feeds: the market directory and snapshot source of the sessions.
        keys: verifies signed upgrades.
        faults: handshake refusals and per-connection faults.
        account_of: the account a key id acts as.
        before_command: run before each client command (the simulator publishes pending engine events).
        rejections: counts refused signatures by code (shared with REST).
    """

    def __init__(
        self,
        settings: WsSettings,
        *,
        hub: Hub,
        feeds: Feeds,
        keys: KeyRegistry,
        faults: FaultController,
        account_of: Callable[[str], str | None],
        before_command: Callable[[], object],
        rejections: Counter[str],
    ) -> None:
        self.settings = settings
        self._hub = hub
        self._feeds = feeds
        self._keys = keys
        self._faults = faults
        self._account_of = account_of
        self._before_command = before_command
        self._rejections = rejections
        self._ids = itertools.count(1)
        self._connections: dict[int, SimConnection] = {}

    # -- the registry ------------------------------------------------------------------------------------------

    def connection_ids(self) -> list[int]:
        """Ids of the open connections, oldest first."""
        return sorted(c for c, conn in self._connections.items() if not conn.closed)

    def connections(self) -> list[SimConnection]:
        """The open connections, oldest first."""
        return [self._connections[c] for c in self.connection_ids()]

    def connection(self, conn_id: int) -> SimConnection:
        """One connection.

        Raises:
            KeyError: No such connection.
        """
        return self._connections[conn_id]

    def all_idle(self) -> bool:
        """True when every connection has written all it has queued."""
        return all(c.idle for c in list(self._connections.values()))

    def release_held(self) -> None:
        """Let every connection write the frames a fault is holding back."""
        for conn in self._connections.values():
            conn.outbox.release_held()

    def overflow_subscription(self, conn_id: int | None, sid: int | None) -> bool:
        """End one matching subscription (chosen by the fault RNG) with error 25; False when none matches."""
        candidates = [
            sub
            for cid in self.connection_ids()
            if conn_id is None or cid == conn_id
            for sub in self._connections[cid].session.subscriptions.values()
            if sid is None or sub.sid == sid
        ]
        if not candidates:
            return False
        sub = self._faults.rng.choice(candidates)
        self._faults.note("overflow")
        sub.owner.terminate(sub, ErrorCode.BUFFER_OVERFLOW)
        return True

    async def close_all(self) -> None:
        """Close every connection with 1001 (going away)."""
        conns = list(self._connections.values())
        if conns:
            await asyncio.gather(*(c.close_going_away() for c in conns), return_exceptions=True)

    # -- the upgrade -------------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one WebSocket connection until it closes (or refuse the upgrade with a JSON error)."""
        refusal = self._faults.handshake_refusal(time.monotonic())
        if refusal is not None:
            headers = {}
            if refusal.retry_after is not None:
                headers["Retry-After"] = str(max(0, math.ceil(refusal.retry_after)))
            return web.json_response(
                {"error": {"code": "refused", "message": "simulated refusal (fault injection)"}},
                status=refusal.status,
                headers=headers,
            )
        key_id: str | None = None
        signed = any(name in request.headers for name in _AUTH_HEADERS)
        if not signed and not self.settings.open_access:
            # The 2026 exchange signs every connection, public channels included.
            self._rejections["missing_header"] += 1
            return web.json_response({"error": _UNSIGNED_UPGRADE}, status=401)
        if signed:
            try:
                key_id = self._keys.verify(request.headers, request.method, request.path, now_ms=_wall_ms())
            except SignatureRejected as exc:
                self._rejections[exc.code] += 1
                return web.json_response({"error": {"code": exc.code, "message": exc.reason}}, status=401)
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=_MAX_FRAME)
        if not ws.can_prepare(request).ok:
            return web.json_response(
                {"error": {"code": "bad_request", "message": "expected a WebSocket upgrade"}}, status=400
            )
        stream = await ws.prepare(request)
        transport = request.transport
        if transport is None:
            return ws
        transport.set_write_buffer_limits(high=_WRITE_BUFFER_HIGH)
        await self._serve(next(self._ids), ws, stream, transport, key_id)
        return ws

    async def _serve(
        self,
        conn_id: int,
        ws: web.WebSocketResponse,
        stream: AbstractStreamWriter,
        transport: asyncio.Transport,
        key_id: str | None,
    ) -> None:
        settings = self.settings
        account = self._account_of(key_id) if key_id is not None else None
        outbox = Outbox(conn_id, account=account, limit=settings.outbox_limit)
        session = WsSession(
            outbox,
            self._hub,
            self._feeds,
            authenticated=key_id is not None,
            limits=settings.limits,
            clock=time.monotonic,
            on_terminated=self._on_terminated,
        )
        conn = SimConnection(
            conn_id,
            ws=ws,
            stream=stream,
            transport=transport,
            outbox=outbox,
            session=session,
            faults=self._faults,
            key_id=key_id,
            ping_interval=settings.ping_interval,
            ping_timeout=settings.ping_timeout,
            before_command=self._before_command,
        )
        self._connections[conn_id] = conn
        try:
            await conn.serve()
        finally:
            self._connections.pop(conn_id, None)

    def _on_terminated(self, sub: Subscription, code: ErrorCode) -> None:
        log.debug("subscription %d of connection %d ended with error %d", sub.sid, sub.conn_id, code)
