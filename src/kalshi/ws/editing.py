"""The subscription editor of the streaming client: the live subscriptions and every change to them.

One job: own the registry of logical subscriptions and turn user intent into commands: subscribe (split into
server chunks under the per-subscription market limit, halving on error 26), add/remove markets, snapshots,
unsubscribe; re-subscribe everything after a reconnect and a chunk the server ended (error 25), publishing
:class:`~kalshi.ws.lifecycle.Resubscribed` (and a :class:`~kalshi.ws.lifecycle.Gap` for the lost one).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final

from kalshi.errors import KalshiCommandError, KalshiError, KalshiSubscriptionError
from kalshi.ws.backpressure import DiscardQueue, OverflowStrategy
from kalshi.ws.codes import ClientErrorCode, ErrorCode, default_overflow
from kalshi.ws.commands import CommandChannel
from kalshi.ws.lifecycle import Gap, LifecycleBus, Resubscribed
from kalshi.ws.protocol import ClientProtocol, ServerError
from kalshi.ws.router import Router
from kalshi.ws.subscription import Chunk, Subscription, SubscriptionState, new_queue, take_markets

__all__ = ["SubscriptionEditor"]

logger = logging.getLogger(__name__)

_LIMIT: Final = ErrorCode.MARKET_LIMIT_EXCEEDED

Report = Callable[[int, str, int | None], None]
Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]
Reconnecting = Callable[[SubscriptionState], None]


class SubscriptionEditor:
    """Live subscriptions and their commands (see the module docstring).

    Args:
        proto: encodes the commands.
        commands: sends them and waits for the answers.
        router: routes each chunk's sid to its subscription.
        bus: where Resubscribed and Gap go.
        report: ``(code, text, sid)`` reports a client error to ``on_error``.
        spawn: runs a background re-subscribe as a kept task.
        chunk_size: most markets per server subscription (lowered when the server says error 26).
    """

    def __init__(
        self,
        proto: ClientProtocol,
        commands: CommandChannel,
        router: Router,
        bus: LifecycleBus,
        report: Report,
        spawn: Spawn,
        chunk_size: int,
    ) -> None:
        self._proto = proto
        self._commands = commands
        self._router = router
        self._bus = bus
        self._report = report
        self._spawn = spawn
        self._chunk_size = chunk_size
        self._next_id = 1
        self.states: dict[int, SubscriptionState] = {}
        self.handles: dict[int, Subscription[Any]] = {}  # the user's handle of each state
        self.ever_subscribed = False
        self.closing = True
        self.reconnecting: Reconnecting = lambda state: None

    def __repr__(self) -> str:
        return f"SubscriptionEditor(subscriptions={len(self.states)}, chunk_size={self._chunk_size})"

    @property
    def chunk_size(self) -> int:
        return self._chunk_size

    # ------------------------------------------------------------------ subscribe

    async def open(
        self,
        channel: str,
        params: dict[str, Any],
        overflow: OverflowStrategy | None,
        maxsize: int,
        book_mode: str | None,
        keep_books: bool,
        tap_only: bool = False,
    ) -> Subscription[Any]:
        """Subscribe and return the user's handle once the server confirmed every chunk.

        While the session is reconnecting (or when the connection drops before the server answered) the
        subscription is kept and subscribed by the reconnect, like every other: the handle is returned at once.

        Raises:
            KalshiSubscriptionError: no session, or the server refused (nothing is left subscribed), or
                ``tap_only`` without an ``on_raw_frame`` tap or with books.
        """
        if tap_only and (not self._router.tapping or keep_books or book_mode == "views"):
            raise KalshiSubscriptionError(
                "tap_only=True needs KalshiWebSocket(on_raw_frame=...) (its frames go only there) and keeps no books:"
                " drop keep_books, or use a normal subscription"
            )
        if self.closing:
            raise KalshiSubscriptionError("not connected: subscribe inside `async with ws.connect() as session:`")
        if book_mode is None and channel == "orderbook_delta":
            book_mode = "raw"
        strategy = overflow or default_overflow(channel)
        queue = DiscardQueue[Any]() if tap_only else new_queue(maxsize, strategy, views=book_mode == "views")
        markets = take_markets(params)
        state = SubscriptionState(
            self._next_id, channel, params, queue, book_mode=book_mode, keep_books=keep_books, tap_only=tap_only
        )
        self._next_id += 1
        if markets is None:
            state.chunks = [Chunk(None)]
        else:
            size = self._chunk_size
            state.chunks = [Chunk(markets[i : i + size]) for i in range(0, len(markets), size)] or [Chunk([])]
        self.states[state.client_id] = state
        self._router.adopt(state)
        if state.callbacks is not None:
            logger.warning("channel %r has both an iterator and a callback: both receive every message", channel)
        try:
            for chunk in list(state.chunks):
                if self._commands.connected:
                    await self._issue(state, chunk)
        except KalshiSubscriptionError:
            if self.closing or self._commands.connected:
                self.discard(state)
                raise
            # The connection went down meanwhile: the reconnect subscribes it (see resubscribe_all).
            logger.info("the connection dropped while subscribing %s; it is subscribed after reconnecting", channel)
        except BaseException:
            self.discard(state)
            raise
        state.active = True
        self.ever_subscribed = True
        handle: Subscription[Any] = Subscription(state, self)
        self.handles[state.client_id] = handle
        return handle

    async def _issue(self, state: SubscriptionState, chunk: Chunk) -> None:
        """Send subscribe for one chunk; on error 26 split it in halves and retry."""
        params = dict(state.params)
        if chunk.markets is not None:
            params["market_tickers"] = chunk.markets
        if state.book_mode is not None:
            params["send_initial_snapshot"] = True  # gap repair and reconnects rebuild from snapshots
        cmd_id = self._proto.send_subscribe([state.channel], **params)
        router = self._router
        try:
            responses = await self._commands.request(cmd_id, on_subscribed=lambda sid: router.bind(sid, state, chunk))
        except KalshiCommandError as exc:
            if exc.code == _LIMIT and chunk.markets is not None and len(chunk.markets) > 1:
                half = len(chunk.markets) // 2
                first, second = Chunk(chunk.markets[:half]), Chunk(chunk.markets[half:])
                index = state.chunks.index(chunk)
                state.chunks[index : index + 1] = [first, second]
                self._chunk_size = max(1, min(self._chunk_size, half))
                await self._issue(state, first)
                await self._issue(state, second)
                return
            raise
        if chunk.sid is None:
            raise KalshiSubscriptionError(f"subscribe to {state.channel!r} got no sid in {responses[-1]!r}")

    async def reissue(self, state: SubscriptionState, chunk: Chunk) -> None:
        """Subscribe one chunk again (its server subscription ended or could not be repaired)."""
        try:
            await self._issue(state, chunk)
        except KalshiError as exc:
            self._report(ClientErrorCode.RESUBSCRIBE, f"could not resubscribe {state.channel}: {exc}", None)
            return
        state.stats.resubscribes += 1
        self._bus.publish(Resubscribed(state.channel, tuple(state.sids), tuple(state.markets), state.client_id))

    async def resubscribe_all(self) -> None:
        """After a reconnect: every subscription again, in order (books restart from snapshots), including
        those made while the connection was down."""
        done: set[int] = set()
        while todo := [state for state in self.states.values() if state.client_id not in done]:
            done.update(state.client_id for state in todo)
            if not await self._resubscribe(todo):
                return  # the new connection dropped too: the supervisor goes round again

    async def _resubscribe(self, states: list[SubscriptionState]) -> bool:
        for state in states:
            if state.client_id not in self.states:
                continue
            self.reconnecting(state)
            for chunk in list(state.chunks):
                chunk.sid = None
                try:
                    await self._issue(state, chunk)
                except KalshiCommandError as exc:
                    # Isolated: this subscription ends, the others continue.
                    text = f"resubscribe of {state.channel} failed: {exc}"
                    self._report(ClientErrorCode.RESUBSCRIBE, text, None)
                    self.discard(state)
                    break
                except KalshiSubscriptionError:
                    return False
            else:
                state.stats.resubscribes += 1
                self._bus.publish(Resubscribed(state.channel, tuple(state.sids), tuple(state.markets), state.client_id))
        return True

    def server_error(self, event: ServerError) -> None:
        """An ``error`` answering no command; a terminal one (10, 25) ended a server subscription: redo it."""
        sid = event.sid
        if sid is None or not event.terminal:
            return
        route = self._router.unbind(sid)
        if route is None:
            return
        state, chunk = route
        chunk.sid = None
        if state.book_mode is not None and chunk.markets:
            state.mark_stale(chunk.markets)
        logger.warning("server ended sid %s (%s) with error %s; resubscribing", sid, state.channel, event.code)
        self._bus.publish(
            Gap(
                state.channel,
                sid,
                markets=tuple(chunk.markets or ()),
                reason="subscription_ended",
                subscription=state.client_id,
            )
        )
        self._spawn(self.reissue(state, chunk))

    # ------------------------------------------------------------------ edits

    async def add_markets(self, state: SubscriptionState, tickers: list[str]) -> None:
        self._check_live(state)
        known = set(state.markets)
        new = [t for t in dict.fromkeys(tickers) if t not in known]
        if not new:
            return
        if state.chunks and state.chunks[0].markets is None:
            raise KalshiSubscriptionError("this subscription takes every market already; nothing to add")
        while new:
            last = state.chunks[-1] if state.chunks else None
            room = self._chunk_size - len(last.markets or []) if last is not None else 0
            if last is not None and last.sid is not None and last.markets is not None and room > 0:
                part, new = new[:room], new[room:]
                cmd_id = self._proto.send_update_subscription(last.sid, "add_markets", market_tickers=part)
                try:
                    # The markets join the chunk as the answer is read: a gap later in the same read must hide
                    # and repair them too (their snapshots follow the answer).
                    await self._commands.request(cmd_id, on_confirmed=functools.partial(last.markets.extend, part))
                except KalshiCommandError as exc:
                    if exc.code != _LIMIT:
                        raise
                    self._chunk_size = max(1, len(last.markets))
                    new = part + new
                    continue
            else:
                part, new = new[: self._chunk_size], new[self._chunk_size :]
                chunk = Chunk(part)
                state.chunks.append(chunk)
                await self._issue(state, chunk)

    async def remove_markets(self, state: SubscriptionState, tickers: list[str]) -> None:
        self._check_live(state)
        drop = set(tickers)
        for chunk in list(state.chunks):
            if chunk.markets is None or chunk.sid is None:
                continue
            mine = [t for t in chunk.markets if t in drop]
            if not mine:
                continue
            if len(mine) == len(chunk.markets):
                await self._commands.request(self._proto.send_unsubscribe([chunk.sid]))
                self._router.unbind(chunk.sid)
                state.chunks.remove(chunk)
            else:
                cmd_id = self._proto.send_update_subscription(chunk.sid, "delete_markets", market_tickers=mine)
                # Left as the answer is read: a gap later in the same read must not re-snapshot them.
                await self._commands.request(cmd_id, on_confirmed=_keeping(chunk, drop))
            if state.books is not None:
                for ticker in mine:
                    state.books.remove(ticker)
            state.stale.difference_update(mine)

    async def request_snapshot(self, state: SubscriptionState, tickers: list[str] | None) -> None:
        self._check_live(state)
        if state.channel != "orderbook_delta":
            raise KalshiSubscriptionError("request_snapshot() is for orderbook_delta subscriptions")
        wanted = None if tickers is None else set(tickers)
        for chunk in state.chunks:
            if chunk.sid is None or not chunk.markets:
                continue
            markets = [t for t in chunk.markets if wanted is None or t in wanted]
            if markets:
                await self._commands.get_snapshot(chunk.sid, markets)

    async def unsubscribe(self, state: SubscriptionState) -> None:
        if state.client_id not in self.states:
            return
        sids = state.sids
        try:
            if sids and self._commands.connected:
                await self._commands.request(self._proto.send_unsubscribe(sids))
        finally:
            self.discard(state)

    def discard(self, state: SubscriptionState) -> None:
        """Forget a subscription locally; its iterator ends after what it holds."""
        self.states.pop(state.client_id, None)
        self.handles.pop(state.client_id, None)
        self._router.forget(state)
        state.active = False
        state.queue.close()

    def close_all(self) -> None:
        """The session ends: every iterator ends after what it holds."""
        self.closing = True
        for state in list(self.states.values()):
            state.queue.close()

    def forget_all(self) -> None:
        for state in list(self.states.values()):
            self.discard(state)

    def _check_live(self, state: SubscriptionState) -> None:
        if state.client_id not in self.states:
            raise KalshiSubscriptionError("this subscription was unsubscribed or its session closed")


def _keeping(chunk: Chunk, drop: set[str]) -> Callable[[], None]:
    """Narrows ``chunk`` to the markets not in ``drop`` when called (a ``delete_markets`` answer)."""

    def narrow() -> None:
        chunk.markets = [t for t in chunk.markets or () if t not in drop]

    return narrow
