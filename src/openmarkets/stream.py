"""LiquidityStream: the asyncio client of the OpenMarkets liquidity stream.

Layers: each :class:`~openmarkets.link.Link` is one WebSocket connection on kalshi-kit's transport, decoding
frames synchronously and handing them here. :class:`~openmarkets.pool.LinkPool` spreads contests over links
(200 per connection, 3 connections per key) and restores subscriptions after reconnects;
:class:`~openmarkets.book.LiquidityBook` keeps one table per ``liquidity`` contest, rebuilt from REST when the
server says ``refresh_required``, after reconnects and on first subscribe. This module is the public face: it
routes messages, hands updates to the bounded feeds (:class:`~openmarkets.fanout.UpdateFanout`, which pauses
a connection while a BLOCK feed is full) and reports errors and states. Tasks (link supervisors, REST rebuilds, backpressure resumes) are kept by a
:class:`kalshi.ws.hooks.HookRunner`, which also runs the ``on_error`` and ``on_state_change`` hooks off the
receive path.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from kalshi.errors import KalshiConfigError
from kalshi.ws.backpressure import OverflowStrategy
from kalshi.ws.connection import ConnectionState
from kalshi.ws.hooks import HookRunner
from kalshi.ws.lifecycle import Closed, LifecycleBus, LifecycleListener
from openmarkets._redact import install_log_filter, redact_url, with_api_key
from openmarkets.book import LiquidityBook
from openmarkets.errors import (
    OpenMarketsConnectionError,
    OpenMarketsError,
    OpenMarketsProtocolError,
    error_for_code,
)
from openmarkets.fanout import UpdateFanout
from openmarkets.feeds import Feed
from openmarkets.link import Link, LinkSettings
from openmarkets.models import (
    CHANNEL_CONTEST_STATE,
    CHANNEL_LIQUIDITY,
    ConnectedMessage,
    ContestStateUpdate,
    ErrorMessage,
    LiquidityUpdate,
    Message,
    PongMessage,
    UnknownMessage,
)
from openmarkets.placement import check_contest_ids
from openmarkets.pool import LinkPool
from openmarkets.refresh import Refresher
from openmarkets.rest import LiquidityRest, rest_url_for
from openmarkets.states import ContestStates, ContestStateView
from openmarkets.table import LiquidityView

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_URL",
    "MAX_CONTESTS_PER_CONNECTION",
    "ConnectionInfo",
    "LiquidityStream",
    "StreamUpdate",
]

logger = logging.getLogger(__name__)

DEFAULT_URL: Final = "wss://api.openmarkets.ai/flow/v1/stream"
DEFAULT_MAX_CONNECTIONS: Final = 3
MAX_CONTESTS_PER_CONNECTION: Final = 200

StreamUpdate = LiquidityUpdate | ContestStateUpdate | UnknownMessage
ErrorHook = Callable[[OpenMarketsError], Awaitable[None]]
StateHook = Callable[[ConnectionState, ConnectionState], Awaitable[None]]

_ERRORS: Final = "error"


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """One connection of a stream, as reported by :attr:`LiquidityStream.connections`."""

    number: int
    state: ConnectionState
    contests: int
    reconnects: int
    greeting: ConnectedMessage | None


class LiquidityStream:
    """Client of the OpenMarkets liquidity stream, with maintained per-contest liquidity tables.

    Usage::

        async with LiquidityStream(api_key=KEY) as stream:
            await stream.subscribe(["ct_abc123"])                 # channel "liquidity"
            async for view in stream.tables():                     # immutable table views
                print(view.contest_id, len(view))

    Args:
        api_key: the OpenMarkets key. Sent as the ``api_key`` query parameter (and as ``X-API-Key`` on REST);
            it never appears in reprs, logs or exceptions.
        url: the stream URL without the key.
        rest_url: the REST base for liquidity snapshots; derived from ``url`` when None
            (``wss://h/flow/v1/stream`` -> ``https://h/flow/v1``).
        max_connections: most connections this stream opens (the server allows 3 per key by default).
        max_contests_per_connection: contests per connection (the server's limit is 200).
        maintain_tables: keep a liquidity table per ``liquidity`` contest (needs the REST API).
        connect_timeout: seconds for connecting and the ``connected`` greeting.
        command_timeout: seconds to wait for ``subscribed``/``unsubscribed``/``pong``; a connection that does not
            answer in time is replaced (reconnected, its subscriptions restored and its tables rebuilt).
        heartbeat_interval: seconds between our own WebSocket pings; 0 (default) relies on the server's 25 s
            pings, which are always answered.
        heartbeat_timeout: seconds of silence after which a connection is declared dead.
        reconnect_base_delay: backoff scale in seconds (full jitter, doubled per attempt).
        reconnect_max_delay: backoff cap in seconds (30 by default).
        max_reconnect_attempts: attempts per reconnection before the stream gives up.
        max_concurrent_fetches: REST snapshot requests in flight at once.
        verify_tls: verify certificates (False only for a local server).
        on_error: ``async fn(OpenMarketsError)`` for in-band errors (InvalidMessageError, InvalidChannelError,
            ...), undecodable frames, failed refreshes and the terminal error.
        on_state_change: ``async fn(old, new)`` on every change of the stream's overall ConnectionState.
        rng: random source for backoff jitter (tests pass a seeded one).
        http_client: an httpx.AsyncClient for REST (not closed by the stream).
    """

    def __init__(
        self,
        api_key: str,
        url: str = DEFAULT_URL,
        *,
        rest_url: str | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        max_contests_per_connection: int = MAX_CONTESTS_PER_CONNECTION,
        maintain_tables: bool = True,
        connect_timeout: float = 10.0,
        command_timeout: float = 10.0,
        heartbeat_interval: float = 0.0,
        heartbeat_timeout: float = 60.0,
        reconnect_base_delay: float = 1.0,
        reconnect_max_delay: float = 30.0,
        max_reconnect_attempts: int = 10,
        max_concurrent_fetches: int = 8,
        verify_tls: bool = True,
        on_error: ErrorHook | None = None,
        on_state_change: StateHook | None = None,
        rng: random.Random | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key:
            raise KalshiConfigError("api_key must be a non-empty string")
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise KalshiConfigError(f"not a WebSocket URL: {redact_url(url)}; use wss://host/flow/v1/stream")
        if max_connections < 1 or max_contests_per_connection < 1 or max_reconnect_attempts < 0:
            raise KalshiConfigError("max_connections and max_contests_per_connection must be >= 1")
        if min(connect_timeout, command_timeout, heartbeat_timeout) <= 0 or heartbeat_interval < 0:
            raise KalshiConfigError("timeouts must be > 0 and heartbeat_interval >= 0")
        install_log_filter()
        self._display_url = redact_url(url)
        self._settings = LinkSettings(
            url=with_api_key(url, api_key),
            display_url=redact_url(with_api_key(url, api_key)),
            connect_timeout=connect_timeout,
            command_timeout=command_timeout,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            verify_tls=verify_tls,
            reconnect_base_delay=reconnect_base_delay,
            reconnect_max_delay=reconnect_max_delay,
            max_reconnect_attempts=max_reconnect_attempts,
            rng=rng or random.Random(),
        )
        self._api_key = api_key
        self._rest_url = (rest_url or rest_url_for(url)).rstrip("/")
        self._http_client = http_client
        self._max_connections = max_connections
        self._per_connection = max_contests_per_connection
        self._maintain = maintain_tables
        self._max_fetches = max_concurrent_fetches
        self._on_error = on_error
        self._on_state_change = on_state_change

        self._book = LiquidityBook(self._report)
        self._states = ContestStates()
        self._fanout = UpdateFanout(self._spawn)
        self._hooks: HookRunner | None = None
        self._bus = LifecycleBus()
        self._pool = LinkPool(
            self,
            self._settings,
            max_connections=max_connections,
            per_connection=max_contests_per_connection,
            book=self._book if maintain_tables else None,
            spawn=self._spawn,
            report=self._report,
            changed=self._recompute_state,
            bus=self._bus,
        )
        self._state = ConnectionState.DISCONNECTED
        self._started = False
        self._closing = False
        self._terminal: OpenMarketsError | None = None
        self.protocol_errors = 0

    def __repr__(self) -> str:
        return (
            f"LiquidityStream(url={self._display_url!r}, state={self._state.value}, "
            f"connections={len(self._pool.links)}, contests={self.contest_count})"
        )

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> LiquidityStream:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the first connection and read its greeting.

        Raises:
            OpenMarketsAuthError: the key was refused (401/403; not retried).
            ConnectionLimitError: the key already holds its maximum of connections.
            OpenMarketsConnectionError: the server could not be reached within the retry budget.
        """
        if self._started:
            raise OpenMarketsConnectionError("this LiquidityStream was already started; create a new one")
        self._started = True
        hooks = self._hooks = HookRunner(None, self._on_state_change)
        hooks.start()
        if self._on_error is not None:
            hooks.ensure_channel(_ERRORS, [self._on_error])
        if self._maintain:
            rest = LiquidityRest(
                self._api_key,
                self._rest_url,
                timeout=self._settings.command_timeout,
                verify_tls=self._settings.verify_tls,
                client=self._http_client,
            )
            self._book.refresher = Refresher(self._book, rest, hooks, self._settings, max_concurrent=self._max_fetches)
        try:
            await self._pool.add_link()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close every connection; feeds deliver what they hold, then end. Idempotent."""
        if self._closing:
            return
        self._closing = True
        await self._pool.close_all()
        self._fanout.close()
        self._book.close()
        self._set_state(ConnectionState.CLOSED)
        self._bus.publish(Closed("client_close" if self._terminal is None else "error", self._terminal))
        if self._hooks is not None:
            await self._hooks.stop()
        await self._book.aclose()

    def lifecycle_events(self) -> LifecycleListener:
        """An async iterator over the lifecycle events of every connection of this stream, published from now on
        (``Connected``, ``Disconnected``, ``Reconnected`` from the shared supervisor, carrying the key-free URL),
        ending with ``Closed`` when the stream closes."""
        return self._bus.listen()

    @property
    def state(self) -> ConnectionState:
        """The overall state: RECONNECTING while any connection is, STREAMING when all are."""
        return self._state

    @property
    def closed(self) -> bool:
        return self._closing or self._terminal is not None

    @property
    def error(self) -> OpenMarketsError | None:
        """The error that ended the stream, if one did."""
        return self._terminal

    @property
    def greeting(self) -> ConnectedMessage | None:
        """The ``connected`` greeting of the first connection (organization_id, api_key_id, server_time)."""
        return self._pool.links[0].greeting if self._pool.links else None

    @property
    def connections(self) -> list[ConnectionInfo]:
        """Every open connection, with its state and load."""
        return [
            ConnectionInfo(link.number, link.state, link.contest_count, link.reconnects, link.greeting)
            for link in self._pool.links
        ]

    @property
    def reconnects(self) -> int:
        """Reconnections over all connections."""
        return sum(link.reconnects for link in self._pool.links)

    @property
    def contest_count(self) -> int:
        """Distinct contests subscribed over all channels."""
        return self._pool.contest_count

    def contests(self, channel: str = CHANNEL_LIQUIDITY) -> list[str]:
        """The contests subscribed on ``channel``."""
        return self._pool.contests(channel)

    # ------------------------------------------------------------------ subscribing

    async def subscribe(
        self, contest_ids: Iterable[str], *, channel: str = CHANNEL_LIQUIDITY, replace: bool = True
    ) -> None:
        """Subscribe contests on a channel, and wait for the server's confirmations.

        As on the wire, subscribing *replaces* the channel's contest list (``replace=False`` adds instead), and
        subscribing no contest changes nothing (to drop them all, :meth:`unsubscribe` the channel).
        Contests are spread over connections, at most ``max_contests_per_connection`` on each; new connections
        are opened as needed, up to ``max_connections``. On ``liquidity`` each contest gets a table, built from
        a REST snapshot (see :meth:`table`).

        Args:
            contest_ids: the contests, e.g. ``["ct_abc123"]``.
            channel: ``"liquidity"`` or ``"contest_state"``.
            replace: replace the channel's contest list (True) or add to it.

        Raises:
            ContestLimitError: the contests do not fit in the allowed connections (nothing was changed).
            InvalidChannelError: the server does not know ``channel``.
            OpenMarketsAuthError: a new connection was refused the key.
            ConnectionLimitError: a new connection was refused: the key holds its maximum of connections.
            OpenMarketsConnectionError: the stream is closed. (A connection that is down, or does not answer
                within ``command_timeout`` and is replaced, gets the change when it reconnects.)
        """
        ids = check_contest_ids(contest_ids)
        self._check_open()
        if not ids:
            return  # the protocol's no-op, not "replace the list with nothing"
        async with self._pool.lock:
            self._check_open()
            current = dict.fromkeys(self.contests(channel))
            target = dict.fromkeys(ids) if replace else {**current, **dict.fromkeys(ids)}
            await self._reconcile(channel, target)

    async def unsubscribe(self, contest_ids: Iterable[str] | None = None, *, channel: str = CHANNEL_LIQUIDITY) -> None:
        """Unsubscribe contests from a channel (all of the channel's contests when None).

        Raises:
            InvalidChannelError: the server does not know ``channel``.
            OpenMarketsConnectionError: the stream is closed (a connection that is down or does not answer in
                time gets the change when it reconnects).
        """
        drop = None if contest_ids is None else set(check_contest_ids(contest_ids))
        self._check_open()
        async with self._pool.lock:
            self._check_open()
            target = {c: None for c in self.contests(channel) if drop is not None and c not in drop}
            await self._reconcile(channel, target)

    async def _reconcile(self, channel: str, target: dict[str, None]) -> None:
        try:
            await self._pool.reconcile(channel, target)
        finally:  # an unsubscribed contest's state is no longer followed
            if channel == CHANNEL_CONTEST_STATE:
                self._states.keep_only(self.contests(channel))

    # ------------------------------------------------------------------ what the links report (LinkOwner)

    def link_message(self, link: Link, message: Message | UnknownMessage) -> None:
        """Every decoded frame of every link (receive path: synchronous, no awaiting)."""
        cls = message.__class__
        if cls is LiquidityUpdate:
            assert isinstance(message, LiquidityUpdate)
            self._book.on_update(message)
        elif cls is ContestStateUpdate:
            assert isinstance(message, ContestStateUpdate)
            self._states.on_update(message)
        elif cls is ErrorMessage:
            assert isinstance(message, ErrorMessage)
            self._report(error_for_code(message.code, message.message))
            return
        elif cls is not UnknownMessage:
            return  # greeting, confirmations and pongs were handled by the link
        self._fanout.offer(link, message)

    def link_protocol_error(self, link: Link, error: OpenMarketsProtocolError) -> None:
        self.protocol_errors += 1
        self._report(error)

    def link_lost(self, link: Link) -> None:
        """A link dropped: its tables go stale until rebuilt after the resubscribe, its states until updated."""
        self._fanout.link_lost(link)
        self._book.lost(link.desired.get(CHANNEL_LIQUIDITY, {}))
        self._states.lost(link.desired.get(CHANNEL_CONTEST_STATE, {}))

    async def link_reconnected(self, link: Link) -> None:
        """Restore a reconnected link's subscriptions, then rebuild its tables."""
        await self._pool.restore(link)

    def link_failed(self, link: Link, error: OpenMarketsError) -> None:
        """Reconnecting a link cannot succeed: the whole stream ends with ``error``."""
        if self._terminal is not None or self._closing:
            return
        self._terminal = error
        logger.error("the stream ended: %s", error)
        self._report(error)
        self._fanout.fail(error)
        self._book.close(error)
        self._recompute_state()
        if self._hooks is not None:
            self._hooks.spawn(self._close_links())

    async def _close_links(self) -> None:
        await self._pool.close_all()

    def link_state_changed(self, link: Link) -> None:
        self._recompute_state()

    def _recompute_state(self) -> None:
        states = {link.state for link in self._pool.links if not link.closing}
        if self._closing or self._terminal is not None:
            new = ConnectionState.CLOSED
        elif not states:
            new = ConnectionState.DISCONNECTED if not self._started else ConnectionState.CONNECTING
        elif ConnectionState.RECONNECTING in states:
            new = ConnectionState.RECONNECTING
        elif ConnectionState.CONNECTING in states:
            new = ConnectionState.CONNECTING
        elif states == {ConnectionState.STREAMING}:
            new = ConnectionState.STREAMING
        elif ConnectionState.CLOSED in states:
            new = ConnectionState.RECONNECTING
        else:
            new = ConnectionState.CONNECTED
        self._set_state(new)

    def _set_state(self, new: ConnectionState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        logger.info("stream state %s -> %s", old.value, new.value)
        if self._hooks is not None:
            self._hooks.state(old, new)

    # ------------------------------------------------------------------ tables

    def table(self, contest_id: str) -> LiquidityView | None:
        """The latest complete table of a ``liquidity`` contest; None until its first snapshot arrived.

        During a rebuild this is still the last complete table, with ``stale=True``: never a partial one.
        """
        return self._book.view(contest_id)

    @property
    def views(self) -> Mapping[str, LiquidityView]:
        """Every built table, by contest id."""
        return self._book.views

    def contest_state(self, contest_id: str) -> str | None:
        """A contest's current state on the ``contest_state`` channel (e.g. ``"live"``).

        None while it is not known: before its first ``contest_state.update``, once it is unsubscribed, and from
        the moment its connection drops until the first update after the reconnect (the server sends no state on
        subscribe, so one that changed during the outage is only learnt from its next change).
        :meth:`contest_state_view` has the last state seen even then, flagged ``stale``.
        """
        return self._states.current(contest_id)

    def contest_state_view(self, contest_id: str) -> ContestStateView | None:
        """The last state seen, ``stale=True`` after an outage until its next update (as a stale table stays
        readable until rebuilt); None when none was seen or it is unsubscribed."""
        return self._states.view(contest_id)

    @property
    def contest_states(self) -> Mapping[str, ContestStateView]:
        """Every contest state seen (stale ones included), by contest id."""
        return self._states.views

    async def wait_for_table(self, contest_id: str, *, after_version: int = 0) -> LiquidityView:
        """Wait for a complete, non-stale table of a contest newer than ``after_version``.

        Raises:
            RefreshError: the table could not be fetched (an unknown contest, or the retries ran out).
            OpenMarketsError: the stream ended (its terminal error).
            asyncio.CancelledError: the stream was closed while waiting.
        """
        current = self._book.view(contest_id)
        if current is None or current.stale or current.version <= after_version:
            self._check_open()
        return await self._book.wait_for(contest_id, after_version)

    # ------------------------------------------------------------------ feeds

    def updates(
        self,
        *,
        channel: str | None = None,
        contest_ids: Iterable[str] | None = None,
        maxsize: int = 1000,
        overflow: OverflowStrategy = OverflowStrategy.BLOCK,
    ) -> Feed[StreamUpdate]:
        """An async iterator over incoming updates (``liquidity.update``, ``contest_state.update``, unknown).

        Registered at once: every update from now on is kept. With the default BLOCK overflow nothing is lost;
        a consumer that falls behind makes the stream stop reading (which delays the tables too), except while a
        command (subscribe, ping, sync) awaits its answer: the feed then holds more than ``maxsize``.

        Args:
            channel: only this channel's updates (None: all, including unknown message types).
            contest_ids: only these contests.
            maxsize: pending updates before the overflow strategy applies.
            overflow: what to do when full.

        Raises:
            OpenMarketsConnectionError: the stream is closed.
        """
        self._check_open()
        feed: Feed[StreamUpdate] = self._fanout.open(channel, contest_ids, maxsize, overflow)
        return feed

    def tables(self, *, contest_ids: Iterable[str] | None = None, maxsize: int = 1000) -> Feed[LiquidityView]:
        """An async iterator over table views: the current ones first, then one per change.

        Conflated per contest: a slow consumer gets the newest view of each contest, never a backlog.

        Raises:
            OpenMarketsConnectionError: the stream is closed.
        """
        self._check_open()
        return self._book.feed(contest_ids, maxsize)

    # ------------------------------------------------------------------ round trips

    async def ping(self, connection: int = 0) -> PongMessage:
        """Send the ``ping`` action on one connection and return the ``pong``.

        Args:
            connection: index into :attr:`connections`.

        Raises:
            IndexError: no such connection.
            OpenMarketsConnectionError: the connection is down or did not answer in time.
        """
        self._check_open()
        return await self._pool.links[connection].ping()

    async def sync(self) -> None:
        """Wait until everything the server sent so far is applied: every connection streaming, a ping round
        trip on each (the server answers in order), and every pending table rebuild finished.

        Bound it with ``asyncio.timeout`` if the server may be unreachable.

        Raises:
            OpenMarketsError: the stream ended (its terminal error), or a ping failed.
        """
        self._check_open()
        for link in list(self._pool.links):
            while True:
                await link.wait_ready()
                self._check_open()
                try:
                    await link.ping()
                    break
                except OpenMarketsConnectionError:
                    if link.connected or link.closing:
                        raise
                    # It dropped meanwhile: wait for the reconnect, then round-trip again.
        if self._book.refresher is not None:
            await self._book.refresher.wait_idle()
        self._check_open()

    # ------------------------------------------------------------------ errors

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        hooks = self._hooks
        if hooks is None:  # never: links are only added after start() made the runner
            coro.close()
            raise OpenMarketsConnectionError("the stream is not started")
        return hooks.spawn(coro)

    def _report(self, error: OpenMarketsError) -> None:
        logger.warning("%s", error)
        if self._hooks is not None and self._on_error is not None:
            self._hooks.dispatch(_ERRORS, error)

    def _check_open(self) -> None:
        if self._terminal is not None:
            raise self._terminal
        if self._closing or not self._started:
            raise OpenMarketsConnectionError("the stream is not open: use `async with LiquidityStream(...) as s:`")
