"""Publisher: the relay's pipelined writer from an :class:`~kalshi.relay.core.EntryBuffer` to Redis.

One task owns one Redis connection (:class:`~kalshi.relay.wire.RespConnection`: prepacked commands out,
hiredis-parsed replies back). It takes up to ``batch`` commands at a time and writes them in one go; up to
``window`` such batches are in flight at once. (A redis-py pipeline measured 3-5x slower here.) Every command's
reply is read (hiredis, one tight loop in :mod:`kalshi.relay.wire`): that tells each entry's outcome, for about
0.1-0.3 µs per entry here and 0.3-0.4 µs of Redis's CPU more than ``CLIENT REPLY OFF`` batches with one check per
batch, which cannot see an entry refused between two stored ones. New entries go out at the
end of the event loop's turn that buffered them when nothing is in flight or a whole batch is ready (so Redis always
has work queued under load), else with the answer to the batch in flight (one write per round trip for a trickle).

Every ``XADD``'s reply is read, so a refusal (``OOM`` under ``maxmemory``, ``MISCONF``, ``READONLY`` on a replica,
``WRONGTYPE``) is seen entry by entry. Only what Redis holds is acknowledged (the batches after a refused one are
settled too, and nothing new is sent meanwhile). A refused entry Redis stored a later entry of the same stream
after (memory went down again between the two, say) can never be stored (ids only grow): it is counted
(``stats.lost``), settled and reported to ``on_lost``, and the relay marks a gap in its stream
(:meth:`~kalshi.relay.core.RelayCore.refused`) so consumers never take the books across it. The other refused
entries are kept, the refusal goes to ``stats.last_error`` and the log, and they are retried with backoff like a
lost connection (the buffer meanwhile fills, bounded and counted). A batch re-sent after a lost connection is
rejected entry by entry for ids Redis already has (explicit, increasing ids): re-sending is idempotent, and those
entries count as stored, which they are.

While Redis is unreachable the batches in flight are kept (re-sent first, in order) and the buffer fills
(bounded, counted, see :class:`~kalshi.relay.core.RelayCore`); reconnecting uses capped full-jitter backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from redis.exceptions import RedisError, ResponseError

from kalshi.relay.core import EntryBuffer
from kalshi.relay.layout import parse_id
from kalshi.relay.wire import RespConnection

__all__ = ["Publisher", "PublisherStats"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class PublisherStats:
    """Counters of the publisher (``down_since``: monotonic time Redis became unreachable, else None)."""

    batches: int = 0
    commands: int = 0
    bytes: int = 0
    reconnects: int = 0
    resent_batches: int = 0
    errors: int = 0
    last_error: str = ""
    down_since: float | None = None
    max_batch: int = 0
    refused: int = 0
    """Refusals of entries, counted per attempt (the entries are kept and retried, never
    acknowledged)."""
    lost: int = 0
    """Entries Redis refused while storing later ones of their stream: they can never be stored (ids only grow),
    so they are settled as lost and reported (``on_lost``: the relay marks a gap in their stream)."""


class _Refused(RedisError):
    """Redis did not store some entries of a batch (they stay in flight)."""


class Publisher:
    """Drain ``buffer`` into Redis at ``url`` (see the module docstring).

    Args:
        url: ``redis://host:port/db``.
        buffer: the commands to write, in order.
        batch: most commands per write.
        window: most writes in flight at once (pipelined).
        retry_base_delay: first backoff cap in seconds (doubles per failed attempt).
        retry_max_delay: largest backoff cap.
        timeout: seconds to wait for Redis to answer a batch before reconnecting.
        on_acked: called after Redis acknowledged commands (the buffer has room again): the relay marks the gaps
            of streams that lost entries while it was full (:meth:`~kalshi.relay.core.RelayCore.mark_gaps`).
        on_lost: called with ``(stream key, count)`` when Redis refused entries of a stream and stored later
            ones: the relay marks a gap there (:meth:`~kalshi.relay.core.RelayCore.refused`).
    """

    def __init__(
        self,
        url: str,
        buffer: EntryBuffer,
        *,
        batch: int = 4096,
        window: int = 4,
        retry_base_delay: float = 0.05,
        retry_max_delay: float = 2.0,
        timeout: float = 10.0,
        rng: random.Random | None = None,
        on_acked: Callable[[], None] | None = None,
        on_lost: Callable[[str, int], None] | None = None,
    ) -> None:
        if batch < 1 or window < 1:
            raise ValueError("batch and window must be >= 1")
        self.url = url
        self.buffer = buffer
        self.batch = batch
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.timeout = timeout
        self.stats = PublisherStats()
        self._on_acked = on_acked
        self._on_lost = on_lost
        self._rng = rng or random.Random()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._attempted = asyncio.Event()  # set after every write attempt, whatever its outcome
        self.window = window
        self._flights: deque[_Flight] = deque()
        self._inflight_count = 0
        self._retry: list[bytes] = []  # what a failure left, in order: sent before anything newer
        self._retry_marks: list[tuple[str, bytes] | None] = []
        self._conn: RespConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kick_pending = False
        self._hold = False  # a refusal is being settled: nothing new goes out

    def wake(self) -> None:
        """New commands are in the buffer (cheap; call after every append).

        They are sent at the end of this turn of the event loop (so every frame of one socket read goes in one
        batch) when nothing is in flight or a whole batch is ready; otherwise with the next answer."""
        if not self._kick_pending and self._loop is not None:
            self._kick_pending = True
            self._loop.call_soon(self._kick)
        if not self._wakeup.is_set():
            self._wakeup.set()
            self._idle.clear()

    def _kick(self) -> None:
        self._kick_pending = False
        conn = self._conn
        if conn is None or conn.closed or self._retry or self._hold:
            return  # the run loop reconnects, re-sends or settles a refusal first
        # Like Nagle's algorithm: a batch goes out at once when nothing is in flight (latency) or when a whole one
        # is ready (throughput); a few entries behind a batch in flight wait for its answer and go together, so
        # a steady trickle costs one write per round trip, not one per event loop turn (each write wakes Redis and
        # every blocked reader: a system call and a process switch each, the dearest part of a small write).
        flights = self._flights
        buffer = self.buffer
        while len(flights) < self.window and (len(buffer) >= self.batch or (not flights and len(buffer))):
            self._launch(conn, *buffer.take_marked(self.batch))

    @property
    def pending(self) -> int:
        """Commands not yet acknowledged by Redis (buffered plus in flight)."""
        return len(self.buffer) + self._inflight_count + len(self._retry)

    async def drained(self, within: float) -> bool:
        """Wait up to ``within`` s until everything buffered so far is acknowledged; False on timeout."""
        try:
            async with asyncio.timeout(within):
                while self.pending:
                    self.wake()
                    self._idle.clear()
                    await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def wait_until(self, condition: Callable[[], bool], within: float) -> None:
        """Wait until ``condition()`` holds, checked after every write attempt.

        Raises:
            TimeoutError: not within ``within`` seconds.
        """
        async with asyncio.timeout(within):
            while not condition():
                self._attempted.clear()
                await self._attempted.wait()

    async def run(self) -> None:
        """Write until cancelled."""
        self._loop = asyncio.get_running_loop()
        try:
            attempt = 0
            while True:
                if not (self._flights or self._retry or len(self.buffer)):
                    self._idle.set()
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                try:
                    await self._step()
                except (RedisError, OSError, TimeoutError) as exc:
                    self._recall()
                    self._attempted.set()
                    await self._lost(exc, attempt)
                    attempt += 1
                    continue
                if attempt:
                    logger.info("redis is back after %d attempt(s)", attempt)
                attempt = 0
                self.stats.down_since = None
                self._attempted.set()
        finally:
            self._loop = None
            await self._close()

    async def _step(self) -> None:
        """Send what the window allows, then settle the oldest batch in flight."""
        conn = self._conn
        if conn is None or conn.closed:
            conn = self._conn = await RespConnection.open(self.url, within=self.timeout)
        if self._retry:  # what a failure left comes first, alone
            commands, marks = self._retry, self._retry_marks
            self._retry, self._retry_marks = [], []
            self._launch(conn, commands, marks)
        while len(self._flights) < self.window and len(self.buffer):
            self._launch(conn, *self.buffer.take_marked(self.batch))
        flight = self._flights[0]
        async with asyncio.timeout(self.timeout):
            replies = await flight.future
        if len(replies) != len(flight.commands):
            raise RedisError(f"{len(replies)} replies to {len(flight.commands)} commands")
        if set(map(type, replies)) != _BYTES_ONLY:  # an error reply (or a foreign one): see which
            await self._refused_flights(replies)  # raises when something is kept for a retry
            return
        self._flights.popleft()
        done = len(flight.commands)
        self._inflight_count -= done
        self.buffer.ack(done)
        if self._on_acked is not None:
            self._on_acked()
        stats = self.stats
        stats.batches += 1
        stats.commands += done
        stats.bytes += flight.size
        stats.max_batch = max(stats.max_batch, done)

    def _launch(self, conn: RespConnection, commands: list[bytes], marks: list[tuple[str, bytes] | None]) -> None:
        payload = b"".join(commands)
        try:
            future = conn.send(payload, len(commands))
        except RedisError as exc:  # lost already: the batch stays in flight, to be recalled with the rest
            future = asyncio.get_running_loop().create_future()
            future.set_exception(exc)
        flight = _Flight(commands, marks, future, len(payload))
        self._flights.append(flight)
        self._inflight_count += len(commands)

    def _recall(self) -> None:
        """A failure: every batch in flight goes back, in order, to be sent again (ids make it idempotent)."""
        commands = list(self._retry)
        marks = list(self._retry_marks)
        for flight in self._flights:
            commands.extend(flight.commands)
            marks.extend(flight.marks)
            future = flight.future
            if future.done():
                if not future.cancelled():
                    future.exception()  # seen: the failure is handled here
            else:
                future.cancel()
        self._flights.clear()
        self._inflight_count = 0
        self._retry, self._retry_marks = commands, marks

    async def _refused_flights(self, replies: list[Any]) -> None:
        """The oldest batch was not all stored: let the later ones land (Redis ran them too), then keep what
        Redis did not store of all of them, in order, and raise with Redis's reason."""
        self._hold = True
        try:
            await self._settle_refused(replies)
        finally:
            self._hold = False

    async def _settle_refused(self, first_replies: list[Any]) -> None:
        flights = list(self._flights)
        answers: list[list[Any] | None] = [first_replies]
        for flight in flights[1:]:
            try:
                async with asyncio.timeout(self.timeout):
                    replies = await flight.future
            except (RedisError, OSError, TimeoutError):
                break  # what is unsettled is recalled whole, and re-sending is idempotent
            answers.append(replies if len(replies) == len(flight.commands) else None)
        commands: list[bytes] = []
        marks: list[tuple[str, bytes] | None] = []
        states: list[int] = []
        reasons: list[str] = []
        for i, flight in enumerate(flights):
            answer = answers[i] if i < len(answers) else None  # None: unsettled (or garbled), sent again whole
            commands.extend(flight.commands)
            marks.extend(flight.marks)
            if answer is None:
                states.extend(_RETRY for _ in flight.commands)
                continue
            for reply in answer:
                if reply.__class__ is bytes:
                    states.append(_STORED)
                elif isinstance(reply, ResponseError) and _ALREADY_STORED in str(reply):
                    states.append(_STORED)  # a batch sent again: Redis has this entry (or a later one) already
                else:
                    states.append(_RETRY)
                    reasons.append(f"{type(reply).__name__}: {reply}")
        # An entry refused while a later one of its stream was stored can never be stored (ids only grow): lost.
        newest: dict[str, tuple[int, int]] = {}
        for mark, state in zip(marks, states, strict=True):
            if state == _STORED and mark is not None:
                position = parse_id(mark[1])
                if position > newest.get(mark[0], (-1, -1)):
                    newest[mark[0]] = position
        for i, (mark, state) in enumerate(zip(marks, states, strict=True)):
            top = newest.get(mark[0]) if state == _RETRY and mark is not None else None
            if top is not None and mark is not None and parse_id(mark[1]) < top:
                states[i] = _LOST
        self._flights.clear()
        self._inflight_count = 0
        await self._refused(commands, marks, states, reasons[0] if reasons else "no reason given")

    async def _refused(
        self, commands: list[bytes], marks: list[tuple[str, bytes] | None], states: list[int], reason: str
    ) -> None:
        """Acknowledge what Redis holds, count as lost (and report) what it can no longer take, keep the rest for a
        retry, and raise with Redis's reason."""
        keep = [i for i, state in enumerate(states) if state == _RETRY]
        lost: dict[str, int] = {}
        for mark, state in zip(marks, states, strict=True):
            if state == _LOST and mark is not None:
                lost[mark[0]] = lost.get(mark[0], 0) + 1
        landed = len(commands) - len(keep)
        if lost:
            count = sum(lost.values())
            self.stats.lost += count
            self.stats.last_error = (
                f"Redis refused {count} XADD(s) to {', '.join(lost)} ({reason}) and stored later ones: lost, "
                "marked as a gap: check Redis (maxmemory and eviction policy)"
            )
            logger.error("%s", self.stats.last_error)
            if self._on_lost is not None:
                for key, n in lost.items():
                    self._on_lost(key, n)
        self.buffer.ack(landed)
        if self._on_acked is not None:
            self._on_acked()
        self.stats.commands += landed
        self._retry = [commands[i] for i in keep]
        self._retry_marks = [marks[i] for i in keep]
        refused = sum(1 for i in keep if marks[i] is not None)
        self.stats.refused += refused
        if not self._retry:
            return
        mark = marks[keep[0]]
        key = mark[0] if mark is not None else "?"
        raise _Refused(
            f"Redis refused {refused} XADD(s) to {key} ({reason}); they are kept and retried: "
            "check Redis (maxmemory and eviction policy, disk errors, a replica, the key's type)"
        )

    async def _lost(self, exc: BaseException, attempt: int) -> None:
        stats = self.stats
        stats.errors += 1
        stats.last_error = f"{type(exc).__name__}: {exc}"
        if stats.down_since is None:
            stats.down_since = time.monotonic()
            logger.warning("redis write failed (%s); buffering and reconnecting", stats.last_error)
        if self._retry:
            stats.resent_batches += 1
        await self._close()
        stats.reconnects += 1
        cap = min(self.retry_max_delay, self.retry_base_delay * (2 ** min(attempt, 16)))
        await asyncio.sleep(self._rng.uniform(0, cap))

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def aclose(self) -> None:
        await self._close()


class _Flight:
    """One batch written and not yet settled."""

    __slots__ = ("commands", "future", "marks", "size")

    def __init__(
        self,
        commands: list[bytes],
        marks: list[tuple[str, bytes] | None],
        future: asyncio.Future[list[Any]],
        size: int,
    ) -> None:
        self.commands = commands
        self.marks = marks
        self.future = future
        self.size = size


_STORED, _RETRY, _LOST = 0, 1, 2
_BYTES_ONLY: Final = {bytes}
# Redis's answer to an XADD whose explicit id is not above the stream's newest: the entry is there already.
_ALREADY_STORED: Final = "The ID specified in XADD is equal or smaller"
