"""KalshiWebSocket: the asyncio streaming client (public API of seed 000).

Layers: :mod:`kalshi.ws.transport` (picows: frames, pings, pause/resume) feeds every frame synchronously into
:meth:`KalshiWebSocket._on_frame`, which runs the sans-I/O :class:`~kalshi.ws.protocol.ClientProtocol` and fans
messages out to per-subscription bounded queues, order books and callback queues. No task per frame. One kept
supervisor task owns reconnecting; one task per callback channel runs user callbacks; one task delivers hooks.

Loss policy: sequenced channels (orderbook_delta, order_group_updates, ...) default to
``OverflowStrategy.BLOCK``: when their consumer falls behind, the client stops reading the socket (TCP
backpressure, see :mod:`kalshi.ws.flow`) instead of dropping. Latest-wins channels default to CONFLATE (ticker)
or DROP_OLDEST, and every drop is counted on the subscription (``sub.dropped`` / ``sub.conflated``).

Books: :meth:`orderbook` (and ``subscribe_orderbook_delta(keep_books=True)``) maintain them; a raw
``subscribe_orderbook_delta`` leaves that to its consumer but is still gap-repaired: after a gap, a market's deltas
are held back until its fresh snapshot. Commands and subscription edits live in :mod:`kalshi.ws.editing`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final

from kalshi.auth import KalshiAuth
from kalshi.config import KalshiConfig
from kalshi.errors import (
    KalshiBackpressureError,
    KalshiCommandError,
    KalshiConnectionError,
    KalshiError,
    KalshiHandshakeError,
    KalshiProtocolError,
    KalshiSubscriptionError,
)
from kalshi.models.markets import Orderbook
from kalshi.ws.backpressure import OverflowStrategy
from kalshi.ws.channels import FORWARDED_PARAMS, ChannelSubscriptions
from kalshi.ws.codes import ClientErrorCode
from kalshi.ws.connection import CloseInfo, ConnectionState
from kalshi.ws.editing import SubscriptionCommands
from kalshi.ws.flow import FlowControl
from kalshi.ws.hooks import HookRunner
from kalshi.ws.lifecycle import Gap, LifecycleBus, LifecycleEvent, LifecycleListener, Repaired, Resubscribed
from kalshi.ws.models import (
    ErrorMessage,
    ErrorPayload,
    OrderbookDeltaMessage,
    OrderbookSnapshotMessage,
    SubscribedMessage,
    TickerMessage,
)
from kalshi.ws.models._numbers import DELTA_CACHE, PRICE_CACHE
from kalshi.ws.orderbook import BookError, DeltaResult
from kalshi.ws.protocol import (
    AwaitingSnapshotDropped,
    ClientProtocol,
    CommandResponse,
    DuplicateDropped,
    GapDetected,
    ProtocolErrorEvent,
    ProtocolEvent,
    ServerError,
)
from kalshi.ws.subscription import (
    BooksView,
    Chunk,
    SubscribeRequest,
    Subscription,
    channel_of,
    default_overflow,
    new_queue,
    take_markets,
)
from kalshi.ws.supervisor import Attempt, RetryPolicy, Supervisor
from kalshi.ws.transport import Connection, open_connection

__all__ = ["DEFAULT_MARKETS_PER_SUBSCRIPTION", "FORWARDED_PARAMS", "KalshiWebSocket"]

logger = logging.getLogger(__name__)

LifecycleCallback = Callable[[LifecycleEvent], Awaitable[None]]
StateCallback = Callable[[ConnectionState, ConnectionState], Awaitable[None]]
ErrorCallback = Callable[[ErrorMessage], Awaitable[None]]
MessageCallback = Callable[[Any], Awaitable[None]]

DEFAULT_MARKETS_PER_SUBSCRIPTION: Final = 500

_APPLIED: Final = DeltaResult.APPLIED
_BLOCK: Final = OverflowStrategy.BLOCK
_DEFAULT_MAXSIZE: Final = 1000
_BOOK_MAXSIZE: Final = 100
# Synthesized on_error codes (outside the server's 1-28): the client's own findings.
CLIENT_ERROR_PROTOCOL: Final = ClientErrorCode.PROTOCOL
CLIENT_ERROR_GAP: Final = ClientErrorCode.GAP
CLIENT_ERROR_CALLBACK: Final = ClientErrorCode.CALLBACK
CLIENT_ERROR_RESUBSCRIBE: Final = ClientErrorCode.RESUBSCRIBE


class KalshiWebSocket(SubscriptionCommands, ChannelSubscriptions):
    """WebSocket client for real-time Kalshi market data.

    Usage::

        ws = KalshiWebSocket(auth=auth, config=config)
        async with ws.connect() as session:
            async for msg in session.subscribe_ticker(tickers=["ECON-GDP-25Q1"]):
                print(msg.msg.yes_bid)

    Args:
        auth: signs the upgrade (required by the exchange for every connection); None for an open simulator.
        config: where to connect and the retry/heartbeat settings.
        heartbeat_timeout: seconds without any frame after our ping before the link is declared dead
            (default ``config.heartbeat_timeout``).
        on_state_change: ``async (old, new)`` called on every ConnectionState transition.
        on_error: ``async (ErrorMessage)`` for server errors and synthesized client errors (codes >= 1000).
        markets_per_subscription: most markets per server subscription; larger requests are split.
        rng: random source for backoff jitter (tests pass a seeded one).
        on_raw_frame: ``fn(frame_bytes, receive_time_ns)`` called synchronously for every frame before decoding
            (recorders use it; keep it fast and non-blocking).
    """

    def __init__(
        self,
        auth: KalshiAuth | None = None,
        config: KalshiConfig | None = None,
        heartbeat_timeout: float | None = None,
        on_state_change: StateCallback | None = None,
        on_error: ErrorCallback | None = None,
        *,
        markets_per_subscription: int = DEFAULT_MARKETS_PER_SUBSCRIPTION,
        command_timeout: float | None = None,
        rng: random.Random | None = None,
        on_raw_frame: Callable[[bytes, int], None] | None = None,
    ) -> None:
        if markets_per_subscription < 1:
            raise ValueError("markets_per_subscription must be >= 1")
        self._auth = auth
        self._config = config or KalshiConfig.production()
        self._heartbeat_timeout = heartbeat_timeout or self._config.heartbeat_timeout
        self._on_state_change = on_state_change
        self._on_error = on_error
        self._chunk_size = markets_per_subscription
        self._command_timeout = command_timeout or self._config.timeout
        self._rng = rng or random.Random()
        self._raw_tap = on_raw_frame
        self._callbacks: dict[str, list[MessageCallback]] = {}
        self._lifecycle_callbacks: list[LifecycleCallback] = []
        self._bus = LifecycleBus()
        self._supervisor = Supervisor(
            url=self._config.ws_url,
            connect=self._open_once,
            restore=self._resubscribe_all,
            classify=_judge_attempt,
            retry_on=(KalshiConnectionError,),
            policy=RetryPolicy(
                self._config.retry_base_delay, self._config.retry_max_delay, self._config.ws_max_retries
            ),
            bus=self._bus,
            on_state=self._state_changed,
            on_end=self._ended,
            rng=self._rng,
        )
        self._proto = self._new_protocol(1)
        self._conn: Connection | None = None
        self._subs: dict[int, Subscription[Any]] = {}
        self._routes: dict[int, tuple[Subscription[Any], Chunk]] = {}
        self._pending: dict[int, tuple[asyncio.Future[list[Any]], list[Any]]] = {}
        # Subscribe commands in flight -> the chunk to bind. The route must exist before the next frame is
        # processed: snapshots follow `subscribed` in the same read, before the awaiting coroutine resumes.
        self._binding: dict[int, tuple[Subscription[Any], Chunk]] = {}
        # get_snapshot commands in flight -> markets still to come: the server answers with one snapshot per
        # market carrying the command id, and nothing else.
        self._snapshot_waits: dict[int, set[str]] = {}
        self._next_client_id = 1
        self._ever_subscribed = False
        self._connected = False
        self._hooks: HookRunner | None = None
        self._flow = FlowControl(self._spawn, lambda: bool(self._pending))
        self._book_waiters: dict[str, list[asyncio.Future[Orderbook]]] = {}
        self._books_view = BooksView(self._subs)
        self.frames_received = 0

    def __repr__(self) -> str:
        return (
            f"KalshiWebSocket(url={self._config.ws_url!r}, state={self.state.value}, subscriptions={len(self._subs)})"
        )

    # ------------------------------------------------------------------ public: lifecycle

    @property
    def state(self) -> ConnectionState:
        """The current connection state."""
        return self._supervisor.state

    @property
    def reconnects(self) -> int:
        """Successful reconnects so far (see :meth:`lifecycle_events` to be told of each)."""
        return self._supervisor.reconnects

    def lifecycle_events(self) -> LifecycleListener:
        """An async iterator over the lifecycle events published from now on (connected, disconnected,
        reconnected, resubscribed, gap, repaired, closed); it ends after :class:`~kalshi.ws.lifecycle.Closed`.

        Create it before ``connect()`` to see the first :class:`~kalshi.ws.lifecycle.Connected` too.
        """
        return self._bus.listen()

    def on_lifecycle(self, callback: LifecycleCallback) -> LifecycleCallback:
        """Register ``async fn(event)`` for every lifecycle event (usable as a decorator); called in order, off
        the receive path. An exception it raises reaches ``on_error`` (code 1003) and the session continues."""
        self._lifecycle_callbacks.append(callback)
        if self._hooks is not None:
            self._hooks.watch_lifecycle(self._bus.listen(), self._lifecycle_callbacks)
        return callback

    @property
    def config(self) -> KalshiConfig:
        return self._config

    @property
    def subscriptions(self) -> list[Subscription[Any]]:
        """Every live logical subscription."""
        return list(self._subs.values())

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[KalshiWebSocket]:
        """Open the socket and start receiving; the block's exit ends every iterator and closes with 1000.

        Raises:
            KalshiHandshakeError: the server refused the upgrade with 401/403 (no retry), or kept refusing.
            KalshiConnectionError: the server could not be reached within ``ws_max_retries`` attempts.
        """
        if self._connected:
            raise KalshiConnectionError("this KalshiWebSocket is already connected; use one connect() at a time")
        self._connected = True
        self._proto = self._new_protocol(self._proto.next_command_id)
        self._hooks = HookRunner(self._on_error, self._on_state_change)
        self._hooks.start()
        for channel, callbacks in self._callbacks.items():
            self._hooks.ensure_channel(channel, callbacks)
        if self._lifecycle_callbacks:
            self._hooks.watch_lifecycle(self._bus.listen(), self._lifecycle_callbacks)
        try:
            await self._supervisor.start()
            self._supervisor.streaming()
            yield self
        finally:
            try:
                await self._shutdown()
            finally:
                self._connected = False

    async def run_forever(self) -> None:
        """Block until the session ends (the connect() block exits or reconnecting gives up).

        Raises:
            KalshiSubscriptionError: nothing was subscribed in this session: a callback alone receives nothing.
        """
        if not self._ever_subscribed:
            raise KalshiSubscriptionError(
                "run_forever() needs at least one subscribe_*() call first: @ws.on() only routes messages, "
                "the server sends frames only for channels you subscribe to"
            )
        if not self._connected:
            raise KalshiConnectionError("not connected: use `async with ws.connect() as session:` first")
        await self._supervisor.done.wait()
        if self._supervisor.error is not None:
            raise self._supervisor.error

    def on(self, channel: str) -> Callable[[MessageCallback], MessageCallback]:
        """Decorator: call ``async fn(message)`` for every message of ``channel`` (beside any iterators).

        Works before and after connect(). Callbacks run in order, one channel at a time, off the receive path.
        """

        def register(callback: MessageCallback) -> MessageCallback:
            self._callbacks.setdefault(channel, []).append(callback)
            if any(sub.channel == channel for sub in self._subs.values()):
                logger.warning("channel %r has both an iterator and a callback: both receive every message", channel)
            if self._hooks is not None:
                self._hooks.ensure_channel(channel, self._callbacks[channel])
            return callback

        return register

    async def list_subscriptions(self) -> list[tuple[str, int]]:
        """Ask the server which subscriptions are live: ``[(channel, sid), ...]``.

        Raises:
            KalshiSubscriptionError: the server answered with an error or did not answer in time.
        """
        responses = await self._command(self._proto.send_list_subscriptions())
        infos = getattr(responses[-1], "subscriptions", None) or []
        return [(info.channel, info.sid) for info in infos]

    # ------------------------------------------------------------------ public: books

    @property
    def books(self) -> Mapping[str, Orderbook]:
        """Books maintained by :meth:`orderbook` and ``keep_books=True`` subscriptions, by ticker (stale or unbuilt
        books are absent).

        A live read-only mapping, not a copy: ``session.books[ticker]`` costs a lookup, and an unchanged book
        returns the same cached view object.
        """
        return self._books_view

    async def wait_for_book(self, ticker: str, *, after_version: int | None = None) -> Orderbook:
        """Wait for the next update of a maintained book (or return it at once if newer than ``after_version``).

        Raises:
            KalshiConnectionError: the session closed while waiting.
        """
        if after_version is not None:
            current = self.books.get(ticker)
            if current is not None and current.version > after_version:
                return current
        future: asyncio.Future[Orderbook] = asyncio.get_running_loop().create_future()
        self._book_waiters.setdefault(ticker, []).append(future)
        try:
            return await future
        finally:
            waiters = self._book_waiters.get(ticker)
            if waiters and future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self._book_waiters[ticker]

    # ------------------------------------------------------------------ subscribing internals

    def _request(
        self,
        channel: str,
        params: dict[str, Any],
        overflow: OverflowStrategy | None,
        maxsize: int,
        *,
        book_mode: str | None = None,
        keep_books: bool = False,
    ) -> SubscribeRequest[Any]:
        async def start() -> Subscription[Any]:
            return await self._create(channel, params, overflow, maxsize, book_mode, keep_books)

        return SubscribeRequest(start)

    async def _create(
        self,
        channel: str,
        params: dict[str, Any],
        overflow: OverflowStrategy | None,
        maxsize: int,
        book_mode: str | None,
        keep_books: bool = False,
    ) -> Subscription[Any]:
        if self._conn is None or self._supervisor.closing:
            raise KalshiSubscriptionError("not connected: subscribe inside `async with ws.connect() as session:`")
        if book_mode is None and channel == "orderbook_delta":
            book_mode = "raw"
        strategy = overflow or default_overflow(channel)
        queue = new_queue(maxsize, strategy, views=book_mode == "views")
        markets = take_markets(params)
        client_id = self._next_client_id
        self._next_client_id += 1
        sub: Subscription[Any] = Subscription(
            self, client_id, channel, params, markets, queue, book_mode=book_mode, keep_books=keep_books
        )
        if markets is None:
            sub.chunks = [Chunk(None)]
        else:
            size = self._chunk_size
            sub.chunks = [Chunk(markets[i : i + size]) for i in range(0, len(markets), size)] or [Chunk([])]
        self._subs[client_id] = sub
        if self._callbacks.get(channel):
            logger.warning("channel %r has both an iterator and a callback: both receive every message", channel)
        try:
            for chunk in list(sub.chunks):
                await self._issue_chunk(sub, chunk)
        except BaseException:
            await self._discard(sub)
            raise
        sub.active = True
        self._ever_subscribed = True
        return sub

    # ------------------------------------------------------------------ receive path (hot)

    def _new_protocol(self, first_command_id: int) -> ClientProtocol:
        # The books convert and check prices and sizes themselves (a bad one raises KalshiProtocolError, which
        # the receive path turns into a repair): validating in the protocol first would do the work twice.
        proto = ClientProtocol(validate_book=False, first_command_id=first_command_id)
        self._receive = proto.receive_frame
        return proto

    def _on_frame(self, data: bytes) -> None:
        # The two message types that make up almost all traffic take the first branches; class identity checks
        # are used because a failing isinstance() on a msgspec Struct is slow.
        self.frames_received += 1
        if self._raw_tap is not None:
            self._raw_tap(data, time.time_ns())
        result: Any = self._receive(data)
        cls = result.__class__
        if cls is OrderbookDeltaMessage:
            route = self._routes.get(result.sid)
            if route is None:
                return self._on_other(result)
            sub = route[0]
            body = result.msg
            # Straight to the queue only for a raw stream without books, nothing held back, and numbers seen (so
            # checked) before; everything else takes _on_delta.
            if not sub.plain or sub.stale or body.price_dollars not in PRICE_CACHE or body.delta_fp not in DELTA_CACHE:
                return self._on_delta(sub, route[1], result)
        elif cls is TickerMessage:
            route = self._routes.get(result.sid)
            if route is None:
                return self._on_other(result)
            sub = route[0]
        else:
            return self._on_other(result)
        # _deliver(), inlined: this is most of the traffic.
        queue = sub.queue
        try:
            queue.put_nowait(result)
        except KalshiBackpressureError as exc:
            return self._fatal(exc)
        if queue.is_full and queue.overflow is _BLOCK:
            self._full(sub)
        if self._callbacks:
            self._callback(result)

    def _on_other(self, result: Any) -> None:
        if isinstance(result, ProtocolEvent):
            if not isinstance(result, DuplicateDropped | AwaitingSnapshotDropped):
                self._on_event(result)
            return
        route = self._routes.get(result.sid) if result.sid is not None else None
        if route is None:
            # A data message for a sid we no longer route (e.g. late after unsubscribe): callbacks only.
            self._callback(result)
        elif result.__class__ is OrderbookSnapshotMessage:
            self._on_snapshot(route[0], route[1], result)
        elif result.__class__ is OrderbookDeltaMessage:
            self._on_delta(route[0], route[1], result)
        else:
            self._deliver(route[0], result)

    def _deliver(self, sub: Subscription[Any], message: Any) -> None:
        queue = sub.queue
        try:
            queue.put_nowait(message)
        except KalshiBackpressureError as exc:
            self._fatal(exc)
            return
        if queue.is_full and queue.overflow is _BLOCK:
            self._full(sub)
        if self._callbacks:
            self._callback(message)

    def _full(self, sub: Subscription[Any]) -> None:
        if self._blocks(sub):
            if not self._flow.armed:  # else a pause is already scheduled or in force
                queue = sub.queue
                self._flow.pause(queue.wait_for_space, lambda: queue.is_full)
            return
        # Callback-style use (seed 000): the subscription was made only to start the feed and nobody iterates
        # it. Never stall the socket for it; its callbacks still get every message.
        sub.queue.get_nowait()
        sub.queue.dropped += 1
        if not sub.warned_unconsumed:
            sub.warned_unconsumed = True
            logger.warning(
                "subscription %s (%s) is not being iterated and its queue is full: its iterator now drops the "
                "oldest messages (callbacks still get every one)",
                sub.client_id,
                sub.channel,
            )

    def _callback(self, message: Any) -> None:
        hooks = self._hooks
        if hooks is None or not self._callbacks:
            return
        channel = channel_of(message)
        if channel in self._callbacks and hooks.dispatch(channel, message):
            self._flow.pause(lambda: hooks.wait_for_callback_space(channel), lambda: hooks.channel_full(channel))

    def _on_delta(self, sub: Subscription[Any], chunk: Chunk, message: OrderbookDeltaMessage) -> None:
        books = sub.books
        if books is None:
            body = message.msg
            if sub.stale and body.market_ticker in sub.stale:
                return  # held back until the market's fresh snapshot
            # Numbers seen before were checked then (the parse caches hold only valid ones): new ones only.
            if body.price_dollars not in PRICE_CACHE or body.delta_fp not in DELTA_CACHE:
                try:
                    body.price_ticks()
                    body.delta_units()
                except KalshiProtocolError as exc:
                    self._book_broken(sub, chunk, body.market_ticker, CLIENT_ERROR_PROTOCOL, f"bad delta: {exc}")
                    return
            self._deliver(sub, message)
            return
        try:
            result = books.apply_delta_message(message)
        except KalshiProtocolError as exc:
            # Its seq was counted, so no gap will show: the book misses this change, repair it.
            self._book_broken(sub, chunk, message.msg.market_ticker, CLIENT_ERROR_PROTOCOL, f"bad delta: {exc}")
            return
        if result is not _APPLIED:
            self._delta_rejected(sub, chunk, message.msg.market_ticker, result)
            return
        if sub.views or self._book_waiters:
            self._book_updated(sub, message.msg.market_ticker, message)
        else:
            self._deliver(sub, message)

    def _on_snapshot(self, sub: Subscription[Any], chunk: Chunk, message: OrderbookSnapshotMessage) -> None:
        ticker = message.msg.market_ticker
        if message.id and self._snapshot_waits:
            self._snapshot_answered(message.id, ticker)
        books = sub.books
        if books is None:
            if ticker in sub.stale:
                sub.stale.discard(ticker)
                self._bus.publish(Repaired(sub.channel, chunk.sid, (ticker,)))
            self._deliver(sub, message)
            return
        before = books.get(ticker)
        was_stale = before is not None and before.stale
        try:
            books.apply_snapshot_message(message)
        except (BookError, KalshiProtocolError) as exc:
            self._book_broken(sub, chunk, ticker, CLIENT_ERROR_PROTOCOL, f"bad snapshot: {exc}", again=not message.id)
            return
        if was_stale:
            self._bus.publish(Repaired(sub.channel, chunk.sid, (ticker,)))
        self._book_updated(sub, ticker, message)

    def _book_updated(self, sub: Subscription[Any], ticker: str, message: Any) -> None:
        state = sub.books.get(ticker) if sub.books is not None else None
        if state is None:
            return
        if not sub.views:
            self._deliver(sub, message)
        else:
            sub.queue.put_nowait(state)  # CONFLATE per market; the iterator takes the view (see Subscription)
            if self._callbacks:
                self._callback(message)
        waiters = self._book_waiters.get(ticker)
        if waiters:
            view = state.view()
            for future in waiters:
                if not future.done():
                    future.set_result(view)
            waiters.clear()

    def _delta_rejected(self, sub: Subscription[Any], chunk: Chunk, ticker: str, result: DeltaResult) -> None:
        if result is DeltaResult.DUPLICATE:
            return
        sub.stats.stale_drops += 1
        books = sub.books
        broken = books.get(ticker) if books is not None else None
        if result is DeltaResult.NO_SNAPSHOT and broken is not None and broken.stale:
            return  # repair in flight: its snapshot will rebuild the book
        # An inapplicable delta means our book disagrees with the exchange: repair it.
        self._book_broken(sub, chunk, ticker, CLIENT_ERROR_GAP, f"delta not applicable ({result.name})")

    def _book_broken(
        self, sub: Subscription[Any], chunk: Chunk, ticker: str, code: int, why: str, *, again: bool = True
    ) -> None:
        """One market's book cannot be trusted: hide it (stale) and re-snapshot that market alone."""
        self._client_error(code, f"{sub.channel} {ticker}: {why}", sub)
        sub.mark_stale([ticker])
        self._bus.publish(Gap(sub.channel, chunk.sid, markets=(ticker,), reason="bad_book_update"))
        if again:  # never in a loop of bad answers to our own request
            self._repair(sub, chunk, [ticker])

    def _on_event(self, event: Any) -> None:
        if isinstance(event, CommandResponse):
            cmd_id = event.cmd_id
            entry = self._pending.get(cmd_id) if cmd_id is not None else None
            message = event.message
            if entry is None:
                if isinstance(message, ErrorMessage):
                    self._emit_error(message)
                return
            future, collected = entry
            collected.append(message)
            if isinstance(message, SubscribedMessage):
                binding = self._binding.get(cmd_id) if cmd_id is not None else None
                if binding is not None:
                    binding[1].sid = message.msg.sid
                    self._routes[message.msg.sid] = binding
            if future.done():
                return
            if isinstance(message, ErrorMessage):
                future.set_exception(message.to_error())
            elif event.final:
                future.set_result(collected)
        elif isinstance(event, ServerError):
            self._on_server_error(event)
        elif isinstance(event, GapDetected):
            self._on_gap(event)
        elif isinstance(event, ProtocolErrorEvent):
            self._client_error(CLIENT_ERROR_PROTOCOL, str(event.error), None)

    def _on_gap(self, gap: GapDetected) -> None:
        route = self._routes.get(gap.sid)
        if route is None:
            return
        sub, chunk = route
        sub.stats.gaps += 1
        self._bus.publish(
            Gap(sub.channel, gap.sid, gap.expected, gap.received, tuple(chunk.markets or ()), reason="seq_gap")
        )
        logger.info("seq gap on sid %s (%s): expected %s, got %s", gap.sid, sub.channel, gap.expected, gap.received)
        if sub.book_mode is not None:
            if chunk.markets:
                sub.mark_stale(chunk.markets)
                self._repair(sub, chunk, list(chunk.markets), whole_sid=True)
            return
        # Latest-wins or event channels cannot be replayed over the WebSocket: deliver, count and tell.
        self._client_error(CLIENT_ERROR_GAP, f"{gap.received - gap.expected} message(s) lost on {sub.channel}", sub)
        self._deliver(sub, gap.message)

    def _repair(self, sub: Subscription[Any], chunk: Chunk, tickers: list[str], *, whole_sid: bool = False) -> None:
        """Re-snapshot stale markets. ``whole_sid`` (a seq gap: every market of the sid is stale) also re-bases
        the sid's sequence; a single bad market must not do that, or the healthy markets would lose deltas."""
        if chunk.sid is None or self._conn is None or self._conn.closed:
            return  # the reconnect path re-bootstraps every book
        tickers = [t for t in tickers if chunk.markets is None or t in chunk.markets]
        if not tickers:
            return
        if whole_sid:
            self._proto.reset_sequence(chunk.sid)
        sub.stats.repairs += 1
        if self._hooks is not None:
            self._hooks.spawn(self._repair_async(sub, chunk, tickers))

    async def _repair_async(self, sub: Subscription[Any], chunk: Chunk, tickers: list[str]) -> None:
        sid = chunk.sid
        if sid is None or self._supervisor.closing:
            return
        try:
            await self._get_snapshot(sid, tickers)
        except KalshiError as exc:
            if self._supervisor.closing or self._conn is None or self._conn.closed:
                return  # reconnecting (or closing) re-bootstraps every book anyway
            logger.warning("get_snapshot on sid %s failed (%s); resubscribing the chunk", sid, exc)
            with contextlib.suppress(KalshiError):
                await self._command(self._proto.send_unsubscribe([sid]))
            self._routes.pop(sid, None)
            chunk.sid = None
            try:
                await self._issue_chunk(sub, chunk)
                sub.stats.resubscribes += 1
            except KalshiError as again:
                self._client_error(CLIENT_ERROR_RESUBSCRIBE, f"could not repair {sub.channel}: {again}", sub)

    def _on_server_error(self, event: ServerError) -> None:
        message = event.message
        self._emit_error(message)
        sid = event.sid
        if sid is None or not event.terminal:
            return
        route = self._routes.pop(sid, None)
        if route is None:
            return
        sub, chunk = route
        chunk.sid = None
        if sub.book_mode is not None and chunk.markets:
            sub.mark_stale(chunk.markets)
        logger.warning("server ended sid %s (%s) with error %s; resubscribing", sid, sub.channel, event.code)
        self._bus.publish(Gap(sub.channel, sid, markets=tuple(chunk.markets or ()), reason="subscription_ended"))
        if self._hooks is not None:
            self._hooks.spawn(self._resubscribe_chunk(sub, chunk))

    async def _resubscribe_chunk(self, sub: Subscription[Any], chunk: Chunk) -> None:
        try:
            await self._issue_chunk(sub, chunk)
        except KalshiError as exc:
            self._client_error(CLIENT_ERROR_RESUBSCRIBE, f"could not resubscribe {sub.channel}: {exc}", sub)
            return
        sub.stats.resubscribes += 1
        self._bus.publish(Resubscribed(sub.channel, tuple(sub.sids), tuple(sub.markets)))

    # ------------------------------------------------------------------ backpressure

    def _blocks(self, sub: Subscription[Any]) -> bool:
        """Whether a full BLOCK queue of ``sub`` should pause reading (see _deliver)."""
        return sub.consumed or not self._callbacks.get(sub.channel)

    def _reapply_backpressure(self) -> None:
        """After the last command was answered: pause again if a queue overshot meanwhile."""
        for sub in self._subs.values():
            if sub.queue.overflow is OverflowStrategy.BLOCK and sub.queue.is_full and self._blocks(sub):
                self._full(sub)
                return
        hooks = self._hooks
        channel = hooks.full_channel() if hooks is not None else None
        if hooks is not None and channel is not None:
            self._flow.pause(lambda: hooks.wait_for_callback_space(channel), lambda: hooks.channel_full(channel))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        if self._hooks is None:
            coro.close()
            raise KalshiConnectionError("not connected")
        return self._hooks.spawn(coro)

    # ------------------------------------------------------------------ errors and state

    def _emit_error(self, message: ErrorMessage) -> None:
        if self._hooks is not None:
            self._hooks.error(message)

    def _client_error(self, code: int, text: str, sub: Subscription[Any] | None) -> None:
        sid = sub.sids[0] if sub and sub.sids else None
        message = ErrorMessage(msg=ErrorPayload(code=code, msg=text), sid=sid)
        logger.warning("%s", text)
        self._emit_error(message)

    def _state_changed(self, old: ConnectionState, new: ConnectionState) -> None:
        if self._hooks is not None:
            self._hooks.state(old, new)

    def _fatal(self, exc: BaseException) -> None:
        """Seed 000: an ERROR-strategy overflow ends the session: every iterator stops, state CLOSED."""
        logger.error("fatal: %s", exc)
        self._client_error(CLIENT_ERROR_CALLBACK, str(exc), None)
        self._flow.stop_reading()
        for sub in list(self._subs.values()):
            sub.queue.close()
        self._supervisor.fail(exc)

    # ------------------------------------------------------------------ connection management

    def _headers(self) -> dict[str, str]:
        if self._auth is None:
            return {}
        return self._auth.headers("GET", self._config.ws_path)

    def _on_close(self, info: CloseInfo) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info("connection closed: code=%s reason=%s", info.code, info.reason)
        for future, _ in self._pending.values():
            if not future.done():
                future.set_exception(KalshiSubscriptionError("the connection closed before the server answered"))
        self._supervisor.connection_lost(info)

    async def _open_once(self) -> None:
        """One connection attempt (the supervisor retries)."""
        self._flow.unpause()
        self._proto.reset()
        self._routes.clear()
        self._conn = await open_connection(
            self._config.ws_url,
            headers=self._headers(),  # re-signed on every attempt
            on_frame=self._on_frame,
            on_close=self._on_close,
            connect_timeout=self._config.connect_timeout,
            heartbeat_interval=self._config.heartbeat_interval,
            heartbeat_timeout=self._heartbeat_timeout,
            verify_tls=self._config.verify_tls,
        )
        self._flow.conn = self._conn

    async def _ended(self, error: BaseException | None) -> None:
        """The supervisor gave up (or the session failed): close the socket and end every iterator."""
        if error is not None and not isinstance(error, KalshiBackpressureError):
            self._client_error(CLIENT_ERROR_RESUBSCRIBE, f"reconnecting gave up: {error}", None)
        conn = self._conn
        if conn is not None and not conn.closed:
            with contextlib.suppress(KalshiError, OSError):
                await conn.close(1000, "")
        for sub in list(self._subs.values()):
            sub.queue.close()

    async def _resubscribe_all(self) -> None:
        for sub in list(self._subs.values()):
            if sub.book_mode is not None and sub.markets:
                sub.mark_stale(sub.markets)
                self._bus.publish(Gap(sub.channel, None, markets=tuple(sub.markets), reason="reconnect"))
            for chunk in list(sub.chunks):
                chunk.sid = None
                try:
                    await self._issue_chunk(sub, chunk)
                except KalshiCommandError as exc:
                    # Isolated: this subscription ends, the others continue.
                    self._client_error(CLIENT_ERROR_RESUBSCRIBE, f"resubscribe of {sub.channel} failed: {exc}", sub)
                    await self._discard(sub)
                    break
                except KalshiSubscriptionError:
                    return  # the new connection dropped too: the supervisor goes round again
            else:
                sub.stats.resubscribes += 1
                self._bus.publish(Resubscribed(sub.channel, tuple(sub.sids), tuple(sub.markets)))

    async def _shutdown(self) -> None:
        for sub in list(self._subs.values()):
            sub.queue.close()
        self._subs.clear()
        self._routes.clear()
        self._supervisor.begin_close()
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(KalshiError, OSError):
                await conn.close(1000, "")
        await self._supervisor.close()
        self._flow.unpause()
        if self._hooks is not None:
            await self._hooks.stop()
            self._hooks = None
        for waiters in self._book_waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(KalshiConnectionError("the session closed while waiting for a book"))
        self._book_waiters.clear()


def _judge_attempt(exc: BaseException, first: bool) -> Attempt:
    """401/403 are never retried; a 429 waits at least its Retry-After; other connection errors retry."""
    if isinstance(exc, KalshiHandshakeError):
        if exc.is_permanent:
            return Attempt(retry=False)
        return Attempt(retry=True, not_before=exc.retry_after or 0.0)
    return Attempt(retry=True)
