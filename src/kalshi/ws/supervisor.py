"""The connection supervisor shared by every stream (:mod:`kalshi.ws`, :mod:`openmarkets`).

One job: keep one logical connection alive. It opens the first connection (retrying transient failures), waits
for the connection to end, reconnects with capped full-jitter backoff, lets its owner restore what the connection
carried, and publishes what happened as typed :mod:`~kalshi.ws.lifecycle` events on a
:class:`~kalshi.ws.lifecycle.LifecycleBus`: :class:`Connected`, :class:`Disconnected` (with its cause),
:class:`Reconnected`, :class:`Closed`. The owner publishes the data events (resubscribed, gap, repaired) on the
same bus.

It knows nothing of frames or protocols: the owner gives it ``connect`` (one attempt, which must register
:meth:`Supervisor.connection_lost` as the connection's close callback) and ``restore`` (resubscribe after a
reconnect), and says which exceptions are worth another attempt (``classify``). Liveness (pings, silence
deadlines) is detected by the transport, which reports it as a ``heartbeat_timeout`` close. Anything else raised
by ``connect`` is a bug and propagates: a parsing bug must not become a reconnect storm.

The clock, the sleep and the random source are injected, so the whole policy is testable without sockets or
real waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from kalshi.errors import KalshiConnectionError
from kalshi.ws.connection import (
    REASON_CALLBACK_ERROR,
    REASON_CLIENT_CLOSE,
    REASON_CONNECTION_LOST,
    REASON_HEARTBEAT_TIMEOUT,
    REASON_PROTOCOL_ERROR,
    CloseInfo,
    ConnectionState,
    backoff_delay,
)
from kalshi.ws.lifecycle import Closed, Connected, Disconnected, LifecycleBus, Reconnected

__all__ = ["Attempt", "RetryPolicy", "SessionClosing", "Supervisor", "disconnect_cause"]

logger = logging.getLogger(__name__)

_LOCAL_REASONS: Final = frozenset(
    {
        REASON_CALLBACK_ERROR,
        REASON_CLIENT_CLOSE,
        REASON_CONNECTION_LOST,
        REASON_HEARTBEAT_TIMEOUT,
        REASON_PROTOCOL_ERROR,
    }
)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
StateListener = Callable[[ConnectionState, ConnectionState], None]


class SessionClosing(KalshiConnectionError):
    """The session was closed while a connection attempt was pending."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: ``max_retries`` further attempts after the first, waiting
    ``uniform(0, min(base_delay * 2**n, max_delay))`` before retry ``n`` (full jitter, capped)."""

    base_delay: float
    max_delay: float
    max_retries: int

    def __post_init__(self) -> None:
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retries < 0:
            raise ValueError("retry delays and max_retries must be >= 0")


@dataclass(frozen=True, slots=True)
class Attempt:
    """The verdict on a failed connection attempt: try again (``retry``), not sooner than ``not_before`` s."""

    retry: bool
    not_before: float = 0.0


def disconnect_cause(info: CloseInfo) -> str:
    """The :class:`~kalshi.ws.lifecycle.Disconnected` cause of a close: ours by name, or the server's."""
    if info.initiated_by_us or info.reason in _LOCAL_REASONS:
        return info.reason or REASON_CLIENT_CLOSE
    if info.code is None:
        return REASON_CONNECTION_LOST
    return info.reason or "server_close"


def _default_reconnect(info: CloseInfo) -> bool:
    return info.reconnectable


class Supervisor:
    """Keeps one logical connection alive and publishes its lifecycle (see the module docstring).

    Args:
        url: where it connects, as shown in events and logs (never a URL holding a key).
        connect: makes one connection attempt; raises on failure.
        restore: after a reconnect, re-establishes what the connection carried (subscriptions).
        classify: ``(exc, first) -> Attempt`` for exceptions of ``retry_on`` raised by ``connect``; ``first`` is
            True while opening the session's first connection.
        retry_on: the exception types ``classify`` judges; any other propagates at once.
        policy: attempts and backoff.
        bus: where the lifecycle events go.
        on_state: ``(old, new)`` on every :class:`ConnectionState` transition (synchronous; keep it cheap).
        on_end: awaited once when the session ends by itself (gave up, permanent close, :meth:`fail`), with the
            error, before :class:`Closed` is published: the owner closes its connection and its consumers.
        may_reconnect: whether a connection that ended as ``CloseInfo`` says is worth reconnecting.
        announce_close: publish :class:`Closed` when the session ends (False for one connection of several,
            whose owner announces the end of the whole stream).
        rng: jitter source. clock: monotonic seconds. sleep: the backoff wait (tests inject fakes).
    """

    def __init__(
        self,
        *,
        url: str,
        connect: Callable[[], Awaitable[None]],
        restore: Callable[[], Awaitable[None]],
        classify: Callable[[BaseException, bool], Attempt],
        retry_on: tuple[type[BaseException], ...],
        policy: RetryPolicy,
        bus: LifecycleBus,
        on_state: StateListener | None = None,
        on_end: Callable[[BaseException | None], Awaitable[None]] | None = None,
        may_reconnect: Callable[[CloseInfo], bool] = _default_reconnect,
        announce_close: bool = True,
        rng: random.Random | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.url = url
        self._connect = connect
        self._restore = restore
        self._classify = classify
        self._retry_on = retry_on
        self._policy = policy
        self._bus = bus
        self._on_state = on_state
        self._on_end = on_end
        self._may_reconnect = may_reconnect
        self._announce_close = announce_close
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self._state = ConnectionState.DISCONNECTED
        self._lost = asyncio.Event()
        self._last_close: CloseInfo | None = None
        self._task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self._closing = False
        self._closed_published = False
        self._end_cause = REASON_CLIENT_CLOSE
        self.error: BaseException | None = None
        """Why the session ended, when it did not end by :meth:`close` (reconnecting gave up, a permanent close,
        or :meth:`fail`)."""
        self.reconnects = 0
        self.attempts = 0

    def __repr__(self) -> str:
        return f"Supervisor({self.url!r}, {self._state.value}, reconnects={self.reconnects})"

    # ------------------------------------------------------------------ facts

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def closing(self) -> bool:
        """True once the session is ending (closed, failed or given up)."""
        return self._closing

    @property
    def done(self) -> asyncio.Event:
        """Set when the session has ended for good."""
        return self._done

    @property
    def last_close(self) -> CloseInfo | None:
        return self._last_close

    # ------------------------------------------------------------------ driving

    async def start(self) -> None:
        """Open the first connection (retrying per ``classify``), publish :class:`Connected`, and start
        supervising. The owner marks the session :meth:`streaming` once its subscriptions are in place.

        Raises:
            Exception: the last connection error when every attempt failed or one was permanent (the session
                is then CLOSED and :class:`Closed` published).
        """
        if self._task is not None:
            raise KalshiConnectionError("this session is already connected; use one connect() at a time")
        self._closing = False
        self._closed_published = False
        self._done.clear()
        self.error = None
        try:
            attempt = await self._open(first=True)
        except BaseException as exc:
            self._finish("connect_failed", exc if isinstance(exc, Exception) else None)
            raise
        self._bus.publish(Connected(self.url, attempt))
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kalshi-ws-supervisor")

    def connection_lost(self, info: CloseInfo) -> None:
        """The current connection ended (the transport's close callback calls this)."""
        self._last_close = info
        self._lost.set()

    def streaming(self) -> None:
        """The owner has restored everything the connection carries: the session is STREAMING."""
        if not self._lost.is_set() and not self._closing:
            self._set_state(ConnectionState.STREAMING)

    def fail(self, error: BaseException) -> None:
        """End the session with ``error`` (e.g. a fatal overflow): no reconnect; :class:`Closed` is published."""
        if self._closing:
            return
        self.error = error
        self._end_cause = "error"
        self._closing = True
        self._lost.set()
        if self._task is None:
            self._finish("error", error)

    def begin_close(self) -> None:
        """The owner is about to close the connection on purpose: do not reconnect when it ends."""
        self._closing = True
        self._lost.set()

    async def close(self) -> None:
        """End the session on purpose: stop supervising and publish :class:`Closed` (cause ``client_close``).
        The owner closes the connection itself. Idempotent."""
        self._closing = True
        self._lost.set()
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._finish(self._end_cause if self.error is not None else REASON_CLIENT_CLOSE, self.error)

    # ------------------------------------------------------------------ internals

    async def _open(self, *, first: bool) -> int:
        """Connect, retrying; returns the attempt number (1-based) that succeeded."""
        policy = self._policy
        not_before = 0.0
        last: BaseException | None = None
        for attempt in range(policy.max_retries + 1):
            if attempt or not first:
                delay = backoff_delay(attempt, policy.base_delay, policy.max_delay, self._rng)
                await self._sleep(max(delay, min(not_before, policy.max_delay)))
                if self._closing:
                    raise SessionClosing("the session was closed while reconnecting")
            self._set_state(ConnectionState.CONNECTING)
            self._lost = asyncio.Event()
            self.attempts += 1
            try:
                await self._connect()
            except self._retry_on as exc:
                verdict = self._classify(exc, first)
                if not verdict.retry:
                    raise
                last, not_before = exc, verdict.not_before
                logger.warning("connect attempt %d/%d failed: %s", attempt + 1, policy.max_retries + 1, exc)
                self._set_state(ConnectionState.RECONNECTING if not first or attempt else ConnectionState.CONNECTING)
                continue
            self._set_state(ConnectionState.CONNECTED)
            return attempt + 1
        assert last is not None
        raise last

    async def _run(self) -> None:
        try:
            while not self._closing:
                await self._lost.wait()
                if self._closing:
                    break
                info = self._last_close or CloseInfo(None, REASON_CONNECTION_LOST, None, False)
                will = self._may_reconnect(info)
                self._bus.publish(Disconnected(disconnect_cause(info), info.code, will))
                if not will:
                    self._end_cause = "server_close"
                    self.error = KalshiConnectionError(
                        f"the server closed the connection for good (code {info.code}: {info.reason or 'no reason'})"
                        + (f": {info.error}" if info.error is not None else "")
                    )
                    break
                self._set_state(ConnectionState.RECONNECTING)
                down_since = self._clock()
                try:
                    attempt = await self._open(first=False)
                except SessionClosing:
                    break
                except self._retry_on as exc:
                    if not self._closing:
                        self._end_cause = "reconnect_failed"
                        self.error = exc
                    break
                self.reconnects += 1
                self._bus.publish(Reconnected(self.url, attempt, self._clock() - down_since))
                await self._restore()
                self.streaming()
        finally:
            ended_by_itself = self.error is not None
            self._closing = True
            if ended_by_itself and self._on_end is not None:
                await self._on_end(self.error)
            if ended_by_itself:
                self._finish(self._end_cause, self.error)
            self._done.set()

    def _finish(self, cause: str, error: BaseException | None) -> None:
        self._set_state(ConnectionState.CLOSED)
        if not self._closed_published:
            self._closed_published = True
            if self._announce_close:
                self._bus.publish(Closed(cause, error))
        self._done.set()

    def _set_state(self, new: ConnectionState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        logger.info("connection state %s -> %s", old.value, new.value)
        if self._on_state is not None:
            self._on_state(old, new)
