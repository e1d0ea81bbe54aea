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
        self._issuing: set[Chunk] = set()  # chunks whose subscribe is in flight
        self._changed = asyncio.Event()  # pulsed when a subscribe ends or a subscription goes (edits wait on it)

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
        self._issuing.add(chunk)
        try:
            await self._issue_once(state, chunk)
        finally:
            self._issuing.discard(chunk)
            self._pulse()

    async def _issue_once(self, state: SubscriptionState, chunk: Chunk) -> None:
        params = dict(state.params)
        if chunk.markets is not None:
            params["market_tickers"] = chunk.markets
        if state.book_mode is not None:
            params["send_initial_snapshot"] = True  # gap repair and reconnects rebuild from snapshots
        cmd_id = self._proto.send_subscribe([state.channel], **params)
        router = self._router
        commands = self._commands

        def bound(sid: int) -> None:
            router.bind(sid, state, chunk)
            chunk.connection = commands.connection_id

        try:
            responses = await commands.request(cmd_id, on_subscribed=bound)
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
                if chunk not in state.chunks:
                    continue  # removed meanwhile (remove_markets narrows a chunk awaiting its resubscribe)
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
        """Add markets; see :meth:`kalshi.ws.subscription.Subscription.add_markets` for the contract.

        While the subscription is not subscribed on the current connection (the connection is down, or the
        reconnect's resubscribe has not finished with it) the edit waits for it, at most the command timeout,
        then asks the server on the new sids. If the connection drops while a command is in flight, what the
        server confirmed is in the chunks (the resubscribe restores it) and the rest is asked again after it.

        Raises:
            KalshiSubscriptionError: closed, refused, or the subscription was not restored in time (the message
                says what it covers).
        """
        self._check_live(state)
        deadline = asyncio.get_running_loop().time() + self._commands.timeout
        while True:
            known = set(state.markets)
            new = [t for t in dict.fromkeys(tickers) if t not in known]
            if not new:
                return
            if state.chunks and state.chunks[0].markets is None:
                raise KalshiSubscriptionError("this subscription takes every market already; nothing to add")
            try:
                await self._wait(state, deadline, lambda: all(self._settled(c) for c in state.chunks))
            except TimeoutError:
                raise KalshiSubscriptionError(
                    f"add_markets: {new} not added: the subscription was not subscribed again within"
                    f" {self._commands.timeout} s of a reconnect; it covers {state.markets} and is resubscribed"
                    " with exactly those; call add_markets again once it is (lifecycle Resubscribed)"
                ) from None
            connection = self._commands.connection_id
            try:
                await self._add(state, new)
                return
            except KalshiSubscriptionError:
                if self._commands.connected and self._commands.connection_id == connection:
                    raise
                # The connection dropped meanwhile: go round (what was confirmed is kept, the rest asked again).

    async def _add(self, state: SubscriptionState, new: list[str]) -> None:
        while new:
            last = state.chunks[-1] if state.chunks else None
            room = self._chunk_size - len(last.markets or []) if last is not None else 0
            if last is not None and self._live(last) and last.markets is not None and room > 0:
                assert last.sid is not None
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
        """Remove markets; see :meth:`kalshi.ws.subscription.Subscription.remove_markets` for the contract.

        A chunk live on the current connection is edited on the server (``delete_markets``, or ``unsubscribe``
        when it loses every market). A chunk with no server subscription on this connection (the connection is
        down, or the reconnect has not resubscribed it yet) is narrowed here: its (re)subscribe leaves the markets
        out. A chunk whose subscribe is in flight is waited for (at most the command timeout), then edited.

        Raises:
            KalshiSubscriptionError: closed, refused, or a subscribe in flight did not end in time.
        """
        self._check_live(state)
        drop = set(tickers)
        deadline = asyncio.get_running_loop().time() + self._commands.timeout
        while True:
            pending = again = False
            for chunk in list(state.chunks):
                if chunk.markets is None or chunk not in state.chunks:
                    continue
                mine = [t for t in chunk.markets if t in drop]
                if not mine:
                    continue
                if chunk in self._issuing:
                    pending = True
                    continue
                if self._live(chunk):
                    try:
                        await self._remove_live(state, chunk, mine, drop)
                    except KalshiSubscriptionError:
                        if self._live(chunk):
                            raise
                        again = True  # the connection dropped meanwhile: this chunk is narrowed locally next
                        continue
                else:
                    chunk.markets = [t for t in chunk.markets if t not in drop]
                    if not chunk.markets:
                        state.chunks.remove(chunk)
                if state.books is not None:
                    for ticker in mine:
                        state.books.remove(ticker)
                state.stale.difference_update(mine)
            if again:
                continue
            if not pending:
                return
            try:
                await self._wait(state, deadline, lambda: not any(c in self._issuing for c in state.chunks))
            except TimeoutError:
                still = sorted(drop.intersection(state.markets))
                raise KalshiSubscriptionError(
                    f"remove_markets: {still} not removed: their server subscription was still being made after"
                    f" {self._commands.timeout} s; the subscription covers {state.markets}"
                ) from None

    async def _remove_live(self, state: SubscriptionState, chunk: Chunk, mine: list[str], drop: set[str]) -> None:
        assert chunk.sid is not None and chunk.markets is not None
        if len(mine) == len(chunk.markets):
            sid = chunk.sid
            await self._commands.request(self._proto.send_unsubscribe([sid]))
            self._router.unbind(sid)
            if chunk in state.chunks:
                state.chunks.remove(chunk)
        else:
            cmd_id = self._proto.send_update_subscription(chunk.sid, "delete_markets", market_tickers=mine)
            # Left as the answer is read: a gap later in the same read must not re-snapshot them.
            await self._commands.request(cmd_id, on_confirmed=_keeping(chunk, drop))

    def _live(self, chunk: Chunk) -> bool:
        """The chunk's sid is a server subscription on the current connection."""
        commands = self._commands
        return chunk.sid is not None and chunk.connection == commands.connection_id and commands.connected

    def _settled(self, chunk: Chunk) -> bool:
        """Nothing to wait for: the chunk is not being subscribed and is not awaiting a reconnect's resubscribe."""
        commands = self._commands
        return chunk not in self._issuing and commands.connected and chunk.connection == commands.connection_id

    async def _wait(self, state: SubscriptionState, deadline: float, ready: Callable[[], bool]) -> None:
        """Wait until ``ready()`` (re-checked whenever a subscribe ends); TimeoutError at ``deadline``.

        Raises:
            KalshiSubscriptionError: the subscription or the session ended meanwhile.
            TimeoutError: ``deadline`` (loop time) passed.
        """
        loop = asyncio.get_running_loop()
        while not ready():
            self._check_live(state)
            if self.closing:
                raise KalshiSubscriptionError("the session closed before the edit could be applied")
            if loop.time() >= deadline:
                raise TimeoutError
            changed = self._changed
            async with asyncio.timeout_at(deadline):
                await changed.wait()
        self._check_live(state)

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

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
        self._pulse()

    def close_all(self) -> None:
        """The session ends: every iterator ends after what it holds."""
        self.closing = True
        for state in list(self.states.values()):
            state.queue.close()
        self._pulse()

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
