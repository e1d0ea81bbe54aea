"""KalshiWebSocket: the asyncio streaming client (public API of seed 000), a thin facade over collaborators.

Each collaborator has one job and talks to the others through their public methods only:

* :class:`~kalshi.ws.supervisor.Supervisor`: connect, reconnect with capped full jitter, lifecycle events;
* :class:`~kalshi.ws.router.Router`: the synchronous receive path, every frame to the subscription (sid) it
  arrived on and that subscription's channel callbacks;
* :class:`~kalshi.ws.commands.CommandChannel`: commands out, answers matched by id;
* :class:`~kalshi.ws.editing.SubscriptionEditor`: the live subscriptions, chunks, edits, resubscribing;
* :class:`~kalshi.ws.books.BookKeeper`: books, views, gap repair;
* :class:`~kalshi.ws.flow.FlowControl`: pausing reads while a lossless queue is above its high watermark;
* :class:`~kalshi.ws.hooks.HookRunner`: user callbacks and hooks, off the receive path, in kept tasks.

Loss policy (:data:`kalshi.ws.codes.CHANNEL_TABLE`): channels where a lost message costs money or corrupts a
book (fill, user_orders, market_positions, order_group_updates, communications, orderbook_delta, trade, the
lifecycle channels) default to ``OverflowStrategy.BLOCK``: when their consumer falls behind, the client stops
reading the socket (TCP backpressure) instead of dropping. ticker defaults to CONFLATE (latest per market), index
values to DROP_OLDEST; every drop is counted on the subscription (``sub.dropped`` / ``sub.conflated``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, Final

from kalshi.auth import KalshiAuth
from kalshi.config import KalshiConfig
from kalshi.errors import (
    KalshiBackpressureError,
    KalshiConnectionError,
    KalshiError,
    KalshiHandshakeError,
    KalshiSubscriptionError,
)
from kalshi.models.markets import Orderbook
from kalshi.ws import channels
from kalshi.ws.backpressure import OverflowStrategy
from kalshi.ws.books import BookKeeper
from kalshi.ws.channels import DEFAULT_BOOK_MAXSIZE, DEFAULT_MAXSIZE, FORWARDED_PARAMS
from kalshi.ws.codes import ClientErrorCode
from kalshi.ws.commands import CommandChannel
from kalshi.ws.connection import CloseInfo, ConnectionState
from kalshi.ws.editing import SubscriptionEditor
from kalshi.ws.flow import FlowControl
from kalshi.ws.hooks import HookRunner
from kalshi.ws.lifecycle import LifecycleBus, LifecycleEvent, LifecycleListener
from kalshi.ws.models import (
    CfbenchmarksValue5HzMessage,
    CfbenchmarksValueMessage,
    CommunicationsMessage,
    ErrorMessage,
    FillMessage,
    MarketLifecycleMessage,
    MarketPositionsMessage,
    MultivariateLifecycleMessage,
    MultivariateMessage,
    OrderbookDeltaMessage,
    OrderbookSnapshotMessage,
    OrderGroupMessage,
    PythValueMessage,
    TickerMessage,
    TradeMessage,
    UserOrdersMessage,
)
from kalshi.ws.protocol import ClientProtocol
from kalshi.ws.router import Router
from kalshi.ws.subscription import SubscribeRequest, Subscription
from kalshi.ws.supervisor import Attempt, RetryPolicy, Supervisor
from kalshi.ws.transport import Connection, open_connection

__all__ = ["DEFAULT_MARKETS_PER_SUBSCRIPTION", "FORWARDED_PARAMS", "KalshiWebSocket"]

logger = logging.getLogger(__name__)

LifecycleCallback = Callable[[LifecycleEvent], Awaitable[None]]
StateCallback = Callable[[ConnectionState, ConnectionState], Awaitable[None]]
ErrorCallback = Callable[[ErrorMessage], Awaitable[None]]
MessageCallback = Callable[[Any], Awaitable[None]]

DEFAULT_MARKETS_PER_SUBSCRIPTION: Final = 500
# Synthesized on_error codes (outside the server's 1-28), kept under their old names.
CLIENT_ERROR_PROTOCOL: Final = ClientErrorCode.PROTOCOL
CLIENT_ERROR_GAP: Final = ClientErrorCode.GAP
CLIENT_ERROR_CALLBACK: Final = ClientErrorCode.CALLBACK
CLIENT_ERROR_RESUBSCRIBE: Final = ClientErrorCode.RESUBSCRIBE


class KalshiWebSocket:
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
        on_error: ``async (ErrorMessage)`` for server errors and synthesized client errors (codes >= 1000, see
            :class:`~kalshi.ws.codes.ClientErrorCode`; a callback that raised is 1003).
        markets_per_subscription: most markets per server subscription; larger requests are split.
        command_timeout: seconds to wait for a command's answer (default ``config.timeout``).
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
        self._config = config = config or KalshiConfig.production()
        self._heartbeat_timeout = heartbeat_timeout or config.heartbeat_timeout
        self._callbacks: dict[str, list[MessageCallback]] = {}
        self._lifecycle_callbacks: list[LifecycleCallback] = []
        self._conn: Connection | None = None
        self._connected = False
        self._bus = LifecycleBus()
        self._hooks = HookRunner(on_error, on_state_change)
        self._flow = FlowControl()
        # The books convert and check prices and sizes themselves (a bad one raises KalshiProtocolError, which
        # becomes a repair): validating in the protocol first would do the work twice.
        self._proto = ClientProtocol(validate_book=False)
        self._commands = CommandChannel(self._proto, self._flow, command_timeout or config.timeout, self._hooks.error)
        self._router = Router(self._proto, self._flow, self._fatal, self._hooks.error, on_raw_frame)
        self._editor = SubscriptionEditor(
            self._proto,
            self._commands,
            self._router,
            self._bus,
            self._hooks.client_error,
            self._hooks.spawn,
            markets_per_subscription,
        )
        self._books = BookKeeper(
            self._proto,
            self._router,
            self._commands,
            self._bus,
            self._hooks.client_error,
            self._hooks.spawn,
            self._editor.reissue,
            self._editor.states.values(),
        )
        self._editor.reconnecting = self._books.reconnecting
        self._router.wire(books=self._books, commands=self._commands, editor=self._editor)
        self._supervisor = Supervisor(
            url=config.ws_url,
            connect=self._open_once,
            restore=self._editor.resubscribe_all,
            classify=_judge_attempt,
            retry_on=(KalshiConnectionError,),
            policy=RetryPolicy(config.retry_base_delay, config.retry_max_delay, config.ws_max_retries),
            bus=self._bus,
            on_state=self._hooks.state,
            on_end=self._ended,
            rng=rng,
        )
        # The transport's frame callback (looked up at each connect, so tests and tools may wrap it).
        self._on_frame: Callable[[bytes], None] = self._router.receive

    def __repr__(self) -> str:
        subs = len(self._editor.states)
        return f"KalshiWebSocket(url={self._config.ws_url!r}, state={self.state.value}, subscriptions={subs})"

    # ------------------------------------------------------------------ public: session

    @property
    def state(self) -> ConnectionState:
        """The current connection state."""
        return self._supervisor.state

    @property
    def config(self) -> KalshiConfig:
        return self._config

    @property
    def reconnects(self) -> int:
        """Successful reconnects so far (see :meth:`lifecycle_events` to be told of each)."""
        return self._supervisor.reconnects

    @property
    def last_close(self) -> CloseInfo | None:
        """How the last connection ended (None before any ended)."""
        return self._supervisor.last_close

    @property
    def frames_received(self) -> int:
        """Frames received over every connection of this client."""
        return self._router.frames_received

    @property
    def read_pauses(self) -> int:
        """How many times reading paused because a lossless queue reached its high watermark."""
        return self._flow.pauses

    @property
    def reading_paused(self) -> bool:
        """True while the socket is not being read (a lossless consumer is behind)."""
        return self._flow.paused

    @property
    def subscriptions(self) -> list[Subscription[Any]]:
        """Every live logical subscription."""
        return list(self._editor.handles.values())

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
        self._hooks.start()
        for channel, callbacks in self._callbacks.items():
            self._router.attach_callbacks(channel, self._hooks.ensure_channel(channel, callbacks))
        if self._lifecycle_callbacks:
            self._hooks.watch_lifecycle(self._bus.listen(), self._lifecycle_callbacks)
        self._editor.closing = False
        self._books.open()
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
            KalshiConnectionError: reconnecting gave up, or the server closed for good.
        """
        if not self._editor.ever_subscribed:
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

        A message reaches the callbacks of the channel of the subscription it arrived on. Works before and after
        connect(). Callbacks run in order, one channel at a time, off the receive path; none is ever dropped
        (a full callback queue pauses reading). An exception reaches ``on_error`` (code 1003).
        """

        def register(callback: MessageCallback) -> MessageCallback:
            callbacks = self._callbacks.setdefault(channel, [])
            callbacks.append(callback)
            if any(state.channel == channel for state in self._editor.states.values()):
                logger.warning("channel %r has both an iterator and a callback: both receive every message", channel)
            if self._hooks.running:
                self._router.attach_callbacks(channel, self._hooks.ensure_channel(channel, callbacks))
            return callback

        return register

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
        if self._hooks.running:
            self._hooks.watch_lifecycle(self._bus.listen(), self._lifecycle_callbacks)
        return callback

    async def list_subscriptions(self) -> list[tuple[str, int]]:
        """Ask the server which subscriptions are live: ``[(channel, sid), ...]``.

        Raises:
            KalshiSubscriptionError: the server answered with an error or did not answer in time.
        """
        responses = await self._commands.request(self._proto.send_list_subscriptions())
        infos = getattr(responses[-1], "subscriptions", None) or []
        return [(info.channel, info.sid) for info in infos]

    def diagnostics(self) -> dict[str, Any]:
        """A snapshot of the client's internal state, for logs when something does not converge."""
        states = self._editor.states.values()
        return {
            "state": self.state.value,
            "reconnects": self.reconnects,
            "commands_in_flight": self._commands.in_flight,
            "reading_paused": self._flow.paused,
            "subscriptions": [
                {
                    "channel": s.channel,
                    "sids": s.sids,
                    "queued": s.queue.qsize(),
                    "stats": s.stats.as_dict(),
                    "awaiting_snapshot": [sid for sid in s.sids if self._proto.is_awaiting_snapshot(sid)],
                    "last_seq": {sid: self._proto.last_seq(sid) for sid in s.sids},
                    "stale_books": sorted(t for t, b in (s.books.books.items() if s.books else ()) if b.stale),
                }
                for s in states
            ],
        }

    # ------------------------------------------------------------------ public: books

    @property
    def books(self) -> Mapping[str, Orderbook]:
        """Books maintained by :meth:`orderbook` and ``keep_books=True`` subscriptions, by ticker (stale or unbuilt
        books are absent).

        A live read-only mapping, not a copy: ``session.books[ticker]`` costs a lookup, and an unchanged book
        returns the same cached view object.
        """
        return self._books.view

    async def wait_for_book(self, ticker: str, *, after_version: int | None = None) -> Orderbook:
        """Wait for the next update of a maintained book (or return it at once if newer than ``after_version``).

        Raises:
            KalshiConnectionError: the session closed while waiting.
        """
        return await self._books.wait_for_book(ticker, after_version=after_version)

    # ------------------------------------------------------------------ public: subscribing

    def _request(
        self,
        channel: str,
        params: dict[str, Any],
        overflow: OverflowStrategy | None,
        maxsize: int,
        *,
        book_mode: str | None = None,
        keep_books: bool = False,
        tap_only: bool = False,
    ) -> SubscribeRequest[Any]:
        editor = self._editor

        def start() -> Coroutine[Any, Any, Subscription[Any]]:
            return editor.open(channel, params, overflow, maxsize, book_mode, keep_books, tap_only)

        return SubscribeRequest(start)

    def subscribe(
        self,
        channel: str,
        params: Mapping[str, Any] | None = None,
        overflow: OverflowStrategy | None = None,
        maxsize: int = DEFAULT_MAXSIZE,
        *,
        tap_only: bool = False,
    ) -> SubscribeRequest[Any]:
        """Subscribe to any channel (forward compatible). Only the spec's params are forwarded.

        Unknown param keys are dropped with a warning. Known channels yield typed messages; unknown ones yield
        :class:`~kalshi.ws.models.UnknownMessage` whose ``raw`` is the dict.

        ``tap_only=True`` (with ``KalshiWebSocket(on_raw_frame=...)``) is for consumers of the raw bytes, such as
        relays and recorders: the subscription's frames reach only the tap. Its in-order data frames are read
        for ``sid``/``seq`` and not decoded; gaps are still detected and repaired (a fresh snapshot follows,
        also through the tap) and reported as lifecycle events. Iterating it yields nothing; ``@ws.on``
        callbacks do not see it.

        Raises:
            KalshiSubscriptionError: the server refused, or ``tap_only`` without an ``on_raw_frame`` tap.
        """
        params_sent = channels.forwarded_params(channel, params)
        return self._request(channel, params_sent, overflow, maxsize, tap_only=tap_only)

    def subscribe_ticker(
        self,
        tickers: Sequence[str] | None = None,
        *,
        market_ids: Sequence[str] | None = None,
        skip_ticker_ack: bool | None = None,
        overflow: OverflowStrategy | None = None,
        maxsize: int = DEFAULT_MAXSIZE,
    ) -> SubscribeRequest[TickerMessage]:
        """Ticker updates (all markets when ``tickers`` is None). Default CONFLATE: latest per market wins; pass
        ``overflow=OverflowStrategy.BLOCK`` to get every one."""
        params = channels.market_params(tickers, market_ids)
        if skip_ticker_ack is not None:
            params["skip_ticker_ack"] = skip_ticker_ack
        return self._request("ticker", params, overflow, maxsize)

    def subscribe_trade(
        self, tickers: Sequence[str] | None = None, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[TradeMessage]:
        """Public trades (all markets when ``tickers`` is None). Default BLOCK."""
        return self._request("trade", channels.market_params(tickers, None), overflow, maxsize)

    def subscribe_orderbook_delta(
        self,
        tickers: Sequence[str],
        *,
        send_initial_snapshot: bool = True,
        use_yes_price: bool | None = None,
        keep_books: bool = False,
        overflow: OverflowStrategy | None = None,
        maxsize: int = DEFAULT_MAXSIZE,
        tap_only: bool = False,
    ) -> SubscribeRequest[OrderbookSnapshotMessage | OrderbookDeltaMessage]:
        """Raw snapshot and delta messages, gap-repaired: after a gap, a market's deltas resume only after its
        fresh snapshot. Every market starts with a snapshot (``send_initial_snapshot`` is always sent as true:
        repairs and reconnects rely on it).

        ``keep_books=True`` also maintains the books (readable in :attr:`books`, checked delta by delta); by
        default they are left to the consumer, which is much cheaper. :meth:`orderbook` always keeps them. A raw
        stream checks prices before delivery and sizes when the consumer converts them (``msg.msg.delta_units()``
        raises ``KalshiProtocolError`` for a malformed one); a delta without ``seq`` is never delivered.
        ``tap_only=True``: the frames reach only the ``on_raw_frame`` tap, gap-repaired (see :meth:`subscribe`).

        Raises:
            KalshiSubscriptionError: no market given, or ``tap_only`` with ``keep_books`` or without a tap.
        """
        params = channels.orderbook_params(
            tickers, send_initial_snapshot=send_initial_snapshot, use_yes_price=use_yes_price
        )
        return self._request(
            "orderbook_delta", params, overflow, maxsize, book_mode="raw", keep_books=keep_books, tap_only=tap_only
        )

    def subscribe_market_lifecycle(
        self, tickers: Sequence[str] | None = None, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[MarketLifecycleMessage]:
        """market_lifecycle_v2 (also carries event_lifecycle and event_fee_update)."""
        return self._request("market_lifecycle_v2", channels.market_params(tickers, None), overflow, maxsize)

    def subscribe_multivariate(
        self, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[MultivariateMessage]:
        """The retired ``multivariate`` channel (kept for old code; the exchange answers error 8 today)."""
        channels.warn_retired_multivariate()
        return self._request("multivariate", {}, overflow, maxsize)

    def subscribe_multivariate_lifecycle(
        self, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[MultivariateLifecycleMessage]:
        """multivariate_market_lifecycle (also carries event_lifecycle, routed to this subscription)."""
        return self._request("multivariate_market_lifecycle", {}, overflow, maxsize)

    def subscribe_fill(
        self, tickers: Sequence[str] | None = None, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[FillMessage]:
        """Your fills (private). Default BLOCK: never dropped."""
        return self._request("fill", channels.market_params(tickers, None), overflow, maxsize)

    def subscribe_user_orders(
        self, tickers: Sequence[str] | None = None, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[UserOrdersMessage]:
        """Your order updates (private; wire type ``user_order``). Default BLOCK: never dropped."""
        return self._request("user_orders", channels.market_params(tickers, None), overflow, maxsize)

    def subscribe_market_positions(
        self, tickers: Sequence[str] | None = None, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[MarketPositionsMessage]:
        """Your positions (private; wire type ``market_position``). Default BLOCK: never dropped."""
        return self._request("market_positions", channels.market_params(tickers, None), overflow, maxsize)

    def subscribe_order_group(
        self, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[OrderGroupMessage]:
        """Your order group updates (private, sequenced). Default BLOCK: never dropped."""
        return self._request("order_group_updates", {}, overflow, maxsize)

    def subscribe_communications(
        self,
        *,
        shard_factor: int | None = None,
        shard_key: int | None = None,
        overflow: OverflowStrategy | None = None,
        maxsize: int = 1000,
    ) -> SubscribeRequest[CommunicationsMessage]:
        """RFQs and quotes (private). Default BLOCK: never dropped."""
        params: dict[str, Any] = {}
        if shard_factor is not None:
            params["shard_factor"] = shard_factor
        if shard_key is not None:
            params["shard_key"] = shard_key
        return self._request("communications", params, overflow, maxsize)

    def subscribe_cfbenchmarks_value(
        self, index_ids: Sequence[str], *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[CfbenchmarksValueMessage]:
        """CF Benchmarks index values."""
        return self._request("cfbenchmarks_value", {"index_ids": list(index_ids)}, overflow, maxsize)

    def subscribe_cfbenchmarks_value_5hz(
        self, index_ids: Sequence[str], *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[CfbenchmarksValue5HzMessage]:
        """CF Benchmarks index values at 5 Hz."""
        return self._request("cfbenchmarks_value_5hz", {"index_ids": list(index_ids)}, overflow, maxsize)

    def subscribe_pyth_value(
        self, underlying_tickers: Sequence[str], *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[PythValueMessage]:
        """Pyth prices of underlyings."""
        return self._request("pyth_value", {"underlying_tickers": list(underlying_tickers)}, overflow, maxsize)

    def orderbook(
        self, tickers: str | Sequence[str], *, maxsize: int = DEFAULT_BOOK_MAXSIZE
    ) -> SubscribeRequest[Orderbook]:
        """Yield an immutable :class:`Orderbook` after every applied snapshot or delta.

        Views are conflated per market when the consumer is slow (each view is the whole book, so nothing is
        lost by skipping an intermediate one). A book being repaired after a gap is not yielded until rebuilt.

        Raises:
            KalshiSubscriptionError: no market given.
        """
        params = channels.views_params(tickers)
        return self._request("orderbook_delta", params, OverflowStrategy.CONFLATE, maxsize, book_mode="views")

    # ------------------------------------------------------------------ connection (the supervisor's calls)

    def _headers(self) -> dict[str, str]:
        if self._auth is None:
            return {}
        return self._auth.headers("GET", self._config.ws_path)

    async def _open_once(self) -> None:
        """One connection attempt (the supervisor retries)."""
        self._proto.reset()
        self._router.clear()
        self._conn = conn = await open_connection(
            self._config.ws_url,
            headers=self._headers(),  # re-signed on every attempt
            on_frame=self._on_frame,
            on_close=self._on_close,
            connect_timeout=self._config.connect_timeout,
            heartbeat_interval=self._config.heartbeat_interval,
            heartbeat_timeout=self._heartbeat_timeout,
            verify_tls=self._config.verify_tls,
        )
        self._commands.use(conn)
        self._flow.use(conn)

    def _on_close(self, info: CloseInfo) -> None:
        if logger.isEnabledFor(logging.INFO):
            logger.info("connection closed: code=%s reason=%s", info.code, info.reason)
        self._commands.connection_lost()
        self._supervisor.connection_lost(info)

    def _fatal(self, exc: BaseException) -> None:
        """Seed 000: an ERROR-strategy overflow ends the session: every iterator stops, state CLOSED."""
        logger.error("fatal: %s", exc)
        self._hooks.client_error(ClientErrorCode.CALLBACK, str(exc))
        self._flow.stop_reading()
        self._editor.close_all()
        self._supervisor.fail(exc)

    async def _ended(self, error: BaseException | None) -> None:
        """The session ended by itself (gave up, closed for good, fatal): close the socket, end every iterator."""
        if error is not None and not isinstance(error, KalshiBackpressureError):
            self._hooks.client_error(ClientErrorCode.RESUBSCRIBE, f"the session ended: {error}")
        await self._close_connection()
        self._editor.close_all()

    async def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._commands.use(None)
        if conn is not None and not conn.closed:
            with suppress(KalshiError, OSError):
                await conn.close(1000, "")

    async def _shutdown(self) -> None:
        # Every step runs even if the caller is cancelled meanwhile: nothing may be left running or open.
        self._editor.close_all()
        self._editor.forget_all()
        self._router.clear()
        self._supervisor.begin_close()
        try:
            await self._close_connection()
        finally:
            try:
                await self._supervisor.close()
            finally:
                self._flow.clear()
                self._router.detach_callbacks()
                self._books.close()
                await self._hooks.stop()


def _judge_attempt(exc: BaseException, first: bool) -> Attempt:
    """401/403 are never retried; a 429 waits at least its Retry-After; other connection errors retry."""
    if isinstance(exc, KalshiHandshakeError):
        if exc.is_permanent:
            return Attempt(retry=False)
        return Attempt(retry=True, not_before=exc.retry_after or 0.0)
    return Attempt(retry=True)
