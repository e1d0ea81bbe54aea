"""Publisher: the relay's pipelined writer from an :class:`~kalshi.relay.core.EntryBuffer` to Redis.

One task owns one Redis connection (:class:`~kalshi.relay.wire.RespConnection`: prepacked commands out,
hiredis-parsed replies back). It takes up to ``batch`` commands at a time and writes them in one go between
``CLIENT REPLY OFF`` and ``CLIENT REPLY ON``. (A redis-py pipeline reads one reply per XADD, which measured 3-5x
slower here.) Up to ``window`` such batches are in flight at once. New entries go out at the end of the event
loop's turn that buffered them when nothing is in flight or a whole batch is ready (so Redis always has work
queued under load), else with the answer to the batch in flight (one write per round trip for a trickle). Redis runs a connection's commands in order, so the ``OK`` to the final ``ON`` says every command was
executed, but not that each succeeded: with replies off, an ``XADD`` Redis refuses (``OOM`` under
``maxmemory``, ``MISCONF``, ``READONLY`` on a replica, ``WRONGTYPE``) would vanish without a word. So each batch
ends with one ``XREVRANGE <key> + - COUNT 1`` per stream it wrote, whose replies do come back: a stream whose
newest id is below the batch's last entry for it did not store that tail. Only what Redis holds is acknowledged (the batches after a refused one are settled too, and nothing new
is sent meanwhile); the rest is kept, the refusal is read with replies on (it goes to ``stats.last_error`` and
the log), and it is retried with backoff like a lost connection (the buffer meanwhile fills, bounded and
counted). A batch re-sent after a lost connection is rejected entry by entry for ids Redis already has
(explicit, increasing ids): re-sending is idempotent, and the check counts those entries as stored, which they
are.

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
from typing import Any

from redis.exceptions import RedisError, ResponseError

from kalshi.relay.core import EntryBuffer
from kalshi.relay.layout import parse_id
from kalshi.relay.resp import REPLY_OFF, REPLY_ON, pack_command
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
    """Refusals of entries with replies off, counted per attempt (the entries are kept and retried, never
    acknowledged)."""


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
        newest = _newest(flight, replies)
        short = {
            key for key, entry_id in flight.last.items() if (top := newest[key]) is None or parse_id(entry_id) > top
        }
        if short:
            await self._refused_flights(conn, newest)  # raises when something is kept for a retry
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
        last: dict[str, bytes] = {}
        for mark in marks:
            if mark is not None:
                last[mark[0]] = mark[1]
        checks = [pack_command("XREVRANGE", key, "+", "-", "COUNT", 1) for key in last]
        payload = b"".join((REPLY_OFF, *commands, REPLY_ON, *checks))
        try:
            future = conn.send(payload, 1 + len(checks))
        except RedisError as exc:  # lost already: the batch stays in flight, to be recalled with the rest
            future = asyncio.get_running_loop().create_future()
            future.set_exception(exc)
        flight = _Flight(commands, marks, last, future, len(payload))
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

    async def _refused_flights(self, conn: RespConnection, newest: dict[str, tuple[int, int] | None]) -> None:
        """The oldest batch was not all stored: let the later ones land (Redis ran them too), then keep what
        Redis does not hold of all of them, in order, and raise with Redis's reason."""
        self._hold = True
        try:
            await self._settle_refused(conn, newest)
        finally:
            self._hold = False

    async def _settle_refused(self, conn: RespConnection, newest: dict[str, tuple[int, int] | None]) -> None:
        flights = list(self._flights)
        for flight in flights[1:]:
            try:
                async with asyncio.timeout(self.timeout):
                    replies = await flight.future
            except (RedisError, OSError, TimeoutError):
                break  # what is unsettled is recalled whole, and re-sending is idempotent
            newest.update(_newest(flight, replies))
        last: dict[str, bytes] = {}
        for flight in flights:
            last.update(flight.last)
        short = {key for key, entry_id in last.items() if (top := newest.get(key)) is None or parse_id(entry_id) > top}
        commands = [c for flight in flights for c in flight.commands]
        marks = [m for flight in flights for m in flight.marks]
        self._flights.clear()
        self._inflight_count = 0
        await self._refused(conn, commands, marks, short, newest)

    async def _refused(
        self,
        conn: RespConnection,
        commands: list[bytes],
        marks: list[tuple[str, bytes] | None],
        short: set[str],
        newest: dict[str, tuple[int, int] | None],
    ) -> None:
        """Acknowledge what Redis holds, keep the rest for a retry, and raise with Redis's reason."""

        def stored(mark: tuple[str, bytes] | None) -> bool:
            if mark is None or mark[0] not in short:
                return True
            top = newest.get(mark[0])
            return top is not None and parse_id(mark[1]) <= top

        first = next((i for i, mark in enumerate(marks) if not stored(mark)), len(commands))
        keep = [i for i in range(first, len(commands)) if marks[i] is None or not stored(marks[i])]
        landed = len(commands) - len(keep)
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
        reason = "no reason given"
        try:  # the first refused entry again, with replies on, to learn why
            await conn.call(self._retry[0], within=self.timeout)
            self.buffer.ack(1)  # stored this time
            self.stats.commands += 1
            del self._retry[0], self._retry_marks[0]
            reason = "stored when retried alone"
        except ResponseError as exc:
            reason = f"{type(exc).__name__}: {exc}"
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

    __slots__ = ("commands", "future", "last", "marks", "size")

    def __init__(
        self,
        commands: list[bytes],
        marks: list[tuple[str, bytes] | None],
        last: dict[str, bytes],
        future: asyncio.Future[list[Any]],
        size: int,
    ) -> None:
        self.commands = commands
        self.marks = marks
        self.last = last
        self.future = future
        self.size = size


def _newest(flight: _Flight, replies: list[Any]) -> dict[str, tuple[int, int] | None]:
    """Each checked stream's newest id after ``flight`` ran (None: empty, or not a stream).

    Raises:
        RedisError: the replies are not what the batch asked for.
    """
    if not replies or replies[0] != b"OK":
        raise RedisError(f"unexpected reply to CLIENT REPLY ON: {replies[:1]!r}")
    newest: dict[str, tuple[int, int] | None] = {}
    for key, top in zip(flight.last, replies[1:], strict=True):
        newest[key] = parse_id(top[0][0]) if isinstance(top, list) and top else None
    return newest
