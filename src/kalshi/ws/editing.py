"""Commands of the streaming client: send one, wait for its answer on the running receive loop, and the
subscription edits built on them (server chunks, add/remove markets, snapshots, unsubscribe).

A mixin of :class:`~kalshi.ws.client.KalshiWebSocket`, split out to keep the client module readable; the state
it uses is declared below and owned by the client.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from kalshi.errors import KalshiCommandError, KalshiSubscriptionError
from kalshi.ws.subscription import Chunk, Subscription

if TYPE_CHECKING:
    from kalshi.ws.flow import FlowControl
    from kalshi.ws.protocol import ClientProtocol
    from kalshi.ws.transport import Connection

__all__ = ["SubscriptionCommands"]


class SubscriptionCommands:
    """Command round trips and subscription edits (mixin; see the module docstring)."""

    _proto: ClientProtocol
    _conn: Connection | None
    _flow: FlowControl
    _command_timeout: float
    _chunk_size: int
    _subs: dict[int, Subscription[Any]]
    _routes: dict[int, tuple[Subscription[Any], Chunk]]
    _pending: dict[int, tuple[asyncio.Future[list[Any]], list[Any]]]
    _binding: dict[int, tuple[Subscription[Any], Chunk]]
    _snapshot_waits: dict[int, set[str]]

    def _reapply_backpressure(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ commands

    async def _command(self, cmd_id: int) -> list[Any]:
        """Flush queued commands and wait for the final response to ``cmd_id``.

        Raises:
            KalshiCommandError: the server answered ``error``.
            KalshiSubscriptionError: no answer within the command timeout, or the connection is down.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        self._pending[cmd_id] = (future, [])
        self._flow.unpause()  # the answer arrives on the socket: it must be read
        try:
            self._flush()
            async with asyncio.timeout(self._command_timeout):
                return await future
        except TimeoutError:
            self._proto.forget_command(cmd_id)
            raise KalshiSubscriptionError(
                f"no answer to command {cmd_id} within {self._command_timeout} s; the connection may be stalled"
            ) from None
        finally:
            self._pending.pop(cmd_id, None)
            if not self._pending:
                self._reapply_backpressure()

    def _flush(self) -> None:
        frames = self._proto.data_to_send()
        conn = self._conn
        if conn is None or conn.closed:
            raise KalshiSubscriptionError("the connection is down; the command will be re-sent after reconnecting")
        for frame in frames:
            conn.send(frame)

    async def _get_snapshot(self, sid: int, tickers: list[str]) -> None:
        """Send get_snapshot and wait until a snapshot of every market arrived (or an error)."""
        cmd_id = self._proto.send_get_snapshot(sid, tickers)
        self._snapshot_waits[cmd_id] = set(tickers)
        try:
            await self._command(cmd_id)
        finally:
            self._snapshot_waits.pop(cmd_id, None)
            self._proto.forget_command(cmd_id)

    def _snapshot_answered(self, cmd_id: int, ticker: str) -> None:
        """A snapshot answering get_snapshot ``cmd_id`` arrived (the server sends nothing else for it)."""
        remaining = self._snapshot_waits.get(cmd_id)
        if remaining is None:
            return
        remaining.discard(ticker)
        entry = self._pending.get(cmd_id)
        if not remaining and entry is not None and not entry[0].done():
            entry[0].set_result(entry[1])

    # ------------------------------------------------------------------ subscriptions
    async def _issue_chunk(self, sub: Subscription[Any], chunk: Chunk) -> None:
        """Send subscribe for one chunk; on error 26 split it in halves and retry."""
        params = dict(sub.params)
        if chunk.markets is not None:
            params["market_tickers"] = chunk.markets
        if sub.book_mode is not None:
            params["send_initial_snapshot"] = True  # gap repair and reconnects rebuild from snapshots
        cmd_id = self._proto.send_subscribe([sub.channel], **params)
        self._binding[cmd_id] = (sub, chunk)
        try:
            responses = await self._command(cmd_id)
        except KalshiCommandError as exc:
            if exc.code == 26 and chunk.markets is not None and len(chunk.markets) > 1:
                half = len(chunk.markets) // 2
                first, second = Chunk(chunk.markets[:half]), Chunk(chunk.markets[half:])
                index = sub.chunks.index(chunk)
                sub.chunks[index : index + 1] = [first, second]
                self._chunk_size = max(1, min(self._chunk_size, half))
                await self._issue_chunk(sub, first)
                await self._issue_chunk(sub, second)
                return
            raise
        finally:
            self._binding.pop(cmd_id, None)
        if chunk.sid is None:
            raise KalshiSubscriptionError(f"subscribe to {sub.channel!r} got no sid in {responses[-1]!r}")

    async def _add_markets(self, sub: Subscription[Any], tickers: list[str]) -> None:
        self._check_live(sub)
        known = set(sub.markets)
        new = [t for t in dict.fromkeys(tickers) if t not in known]
        if not new:
            return
        if sub.chunks and sub.chunks[0].markets is None:
            raise KalshiSubscriptionError("this subscription takes every market already; nothing to add")
        while new:
            last = sub.chunks[-1] if sub.chunks else None
            room = self._chunk_size - len(last.markets or []) if last is not None else 0
            if last is not None and last.sid is not None and room > 0:
                part, new = new[:room], new[room:]
                try:
                    await self._command(
                        self._proto.send_update_subscription(last.sid, "add_markets", market_tickers=part)
                    )
                except KalshiCommandError as exc:
                    if exc.code != 26:
                        raise
                    self._chunk_size = max(1, len(last.markets or []))
                    new = part + new
                    continue
                assert last.markets is not None
                last.markets.extend(part)
            else:
                part, new = new[: self._chunk_size], new[self._chunk_size :]
                chunk = Chunk(part)
                sub.chunks.append(chunk)
                await self._issue_chunk(sub, chunk)

    async def _remove_markets(self, sub: Subscription[Any], tickers: list[str]) -> None:
        self._check_live(sub)
        drop = set(tickers)
        for chunk in list(sub.chunks):
            if chunk.markets is None or chunk.sid is None:
                continue
            mine = [t for t in chunk.markets if t in drop]
            if not mine:
                continue
            if len(mine) == len(chunk.markets):
                await self._command(self._proto.send_unsubscribe([chunk.sid]))
                self._routes.pop(chunk.sid, None)
                sub.chunks.remove(chunk)
            else:
                await self._command(
                    self._proto.send_update_subscription(chunk.sid, "delete_markets", market_tickers=mine)
                )
                chunk.markets = [t for t in chunk.markets if t not in drop]
            if sub.books is not None:
                for ticker in mine:
                    sub.books.remove(ticker)
            sub.stale.difference_update(mine)

    async def _request_snapshot(self, sub: Subscription[Any], tickers: list[str] | None) -> None:
        self._check_live(sub)
        if sub.channel != "orderbook_delta":
            raise KalshiSubscriptionError("request_snapshot() is for orderbook_delta subscriptions")
        wanted = None if tickers is None else set(tickers)
        for chunk in sub.chunks:
            if chunk.sid is None or not chunk.markets:
                continue
            markets = [t for t in chunk.markets if wanted is None or t in wanted]
            if markets:
                await self._get_snapshot(chunk.sid, markets)

    async def _unsubscribe(self, sub: Subscription[Any]) -> None:
        if sub.client_id not in self._subs:
            return
        sids = sub.sids
        try:
            if sids and self._conn is not None and not self._conn.closed:
                await self._command(self._proto.send_unsubscribe(sids))
        finally:
            await self._discard(sub)

    async def _discard(self, sub: Subscription[Any]) -> None:
        self._subs.pop(sub.client_id, None)
        for chunk in sub.chunks:
            if chunk.sid is not None:
                self._routes.pop(chunk.sid, None)
        sub.active = False
        sub.queue.close()

    def _check_live(self, sub: Subscription[Any]) -> None:
        if sub.client_id not in self._subs:
            raise KalshiSubscriptionError("this subscription was unsubscribed or its session closed")
