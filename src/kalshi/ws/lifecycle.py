"""Typed lifecycle events of a stream: what happened to the connection and to the data's continuity.

Every stream built on the shared supervisor (:mod:`kalshi.ws`, :mod:`openmarkets`, the Redis relay consumer)
publishes these. Consume them either way:

* as an async iterator: ``async for event in session.lifecycle_events(): ...`` (each iterator gets every event
  published after it was created; a bounded per-listener buffer counts what a listener too slow to keep up lost
  in ``LifecycleListener.missed``), or
* as a hook: ``ws.on_lifecycle(async_callback)`` (called in order, off the receive path).

Events are frozen, small and cheap; they are published rarely (connection changes, gaps), never per message.
Times are monotonic seconds (``time.monotonic()``) for intervals plus epoch milliseconds for logs.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Final, TypeAlias

__all__ = [
    "Closed",
    "Connected",
    "Disconnected",
    "Gap",
    "LifecycleBus",
    "LifecycleEvent",
    "LifecycleListener",
    "Reconnected",
    "Repaired",
    "Resubscribed",
]

_LISTENER_BUFFER: Final = 1024


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Connected:
    """A connection is up (first connect of a session; see :class:`Reconnected` for later ones)."""

    url: str
    attempt: int = 1
    at_ms: int = field(default_factory=_now_ms)


@dataclass(frozen=True, slots=True)
class Disconnected:
    """A connection ended. ``cause`` is one of ``connection_lost``, ``heartbeat_timeout``, ``server_close``,
    ``protocol_error``, ``callback_error``, ``client_close`` (or a server's close reason); ``code`` is the close
    code when the server sent one; ``will_reconnect`` says whether the supervisor tries again."""

    cause: str
    code: int | None = None
    will_reconnect: bool = True
    at_ms: int = field(default_factory=_now_ms)


@dataclass(frozen=True, slots=True)
class Reconnected:
    """A connection is up again after ``attempt`` tries; ``downtime_s`` is monotonic seconds without a link."""

    url: str
    attempt: int
    downtime_s: float
    at_ms: int = field(default_factory=_now_ms)


@dataclass(frozen=True, slots=True)
class Resubscribed:
    """After a reconnect (or after the server ended it), a logical subscription is live again (new sids; books
    restart from snapshots). ``subscription`` is its ``Subscription.client_id`` when the stream has one."""

    channel: str
    sids: tuple[int, ...]
    markets: tuple[str, ...] = ()
    subscription: int | None = None
    at_ms: int = field(default_factory=_now_ms)


@dataclass(frozen=True, slots=True)
class Gap:
    """Continuity broke: a sequence gap on ``sid`` (``expected`` seq, ``received`` seq), or data that could not
    be kept (``reason`` says which: ``seq_gap``, ``reconnect``, ``trimmed``, ``relay_restart``...). Books of
    ``markets`` are not to be trusted until the matching :class:`Repaired`. ``subscription`` is the
    ``Subscription.client_id`` it happened to, when the stream has one."""

    channel: str
    sid: int | None
    expected: int | None = None
    received: int | None = None
    markets: tuple[str, ...] = ()
    reason: str = "seq_gap"
    subscription: int | None = None
    at_ms: int = field(default_factory=_now_ms)


@dataclass(frozen=True, slots=True)
class Repaired:
    """The books of ``markets`` are exact again (a fresh snapshot replaced them after a :class:`Gap`)."""

    channel: str
    sid: int | None
    markets: tuple[str, ...] = ()
    at_ms: int = field(default_factory=_now_ms)


@dataclass(frozen=True, slots=True)
class Closed:
    """The session ended for good: the ``connect()`` block exited (``error`` None) or reconnecting gave up."""

    cause: str
    error: BaseException | None = None
    at_ms: int = field(default_factory=_now_ms)


LifecycleEvent: TypeAlias = Connected | Disconnected | Reconnected | Resubscribed | Gap | Repaired | Closed


class LifecycleListener:
    """One consumer's view of a :class:`LifecycleBus`: an async iterator over the events published after it
    was created. It ends after :class:`Closed` (which it yields) or when the bus closes."""

    __slots__ = ("_buffer", "_bus", "_closed", "_maxlen", "_wakeup", "missed")

    def __init__(self, bus: LifecycleBus, maxlen: int) -> None:
        self._bus = bus
        self._buffer: deque[LifecycleEvent] = deque()
        self._maxlen = maxlen
        self._wakeup: asyncio.Event = asyncio.Event()
        self._closed = False
        self.missed = 0

    def _push(self, event: LifecycleEvent) -> None:
        if len(self._buffer) >= self._maxlen:
            self._buffer.popleft()
            self.missed += 1
        self._buffer.append(event)
        self._wakeup.set()

    def _close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def __aiter__(self) -> AsyncIterator[LifecycleEvent]:
        return self

    async def __anext__(self) -> LifecycleEvent:
        while not self._buffer:
            if self._closed:
                self._bus._detach(self)
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()
        event = self._buffer.popleft()
        if isinstance(event, Closed):
            self._closed = True
            self._buffer.clear()
            self._bus._detach(self)
        return event

    @property
    def backlog(self) -> int:
        """Events held, not yet taken."""
        return len(self._buffer)

    def take_nowait(self) -> list[LifecycleEvent]:
        """Every event held now, oldest first, without waiting (for synchronous consumers such as a frame tap)."""
        events = list(self._buffer)
        self._buffer.clear()
        return events

    def close(self) -> None:
        """Stop listening (the iterator ends after what it already holds)."""
        self._close()
        self._bus._detach(self)


class LifecycleBus:
    """Fan-out of lifecycle events to listeners; :meth:`publish` is synchronous and never blocks."""

    __slots__ = ("_listeners", "history", "published")

    def __init__(self, history: int = 256) -> None:
        self._listeners: list[LifecycleListener] = []
        self.history: deque[LifecycleEvent] = deque(maxlen=history)
        self.published = 0

    def listen(self, *, maxlen: int = _LISTENER_BUFFER) -> LifecycleListener:
        """A new listener that sees every event published from now on."""
        listener = LifecycleListener(self, maxlen)
        self._listeners.append(listener)
        return listener

    def publish(self, event: LifecycleEvent) -> None:
        self.published += 1
        self.history.append(event)
        for listener in tuple(self._listeners):
            listener._push(event)

    def close(self) -> None:
        """End every listener's iterator (after the events they hold)."""
        for listener in tuple(self._listeners):
            listener._close()

    def _detach(self, listener: LifecycleListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
