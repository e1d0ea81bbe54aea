"""Publisher: the relay's pipelined writer from an :class:`~kalshi.relay.core.EntryBuffer` to Redis.

One task owns one Redis connection (redis-py asyncio, hiredis parser when installed). It takes up to ``batch``
commands at a time and writes them in one go between ``CLIENT REPLY OFF`` and ``CLIENT REPLY ON``. (A redis-py
pipeline reads one reply per XADD, which measured 3-5x slower here.) Redis runs a connection's commands in order,
so the ``OK`` to the final ``ON`` says every command was executed, but not that each succeeded: with replies off,
an ``XADD`` Redis refuses (``OOM`` under ``maxmemory``, ``MISCONF``, ``READONLY`` on a replica, ``WRONGTYPE``)
would vanish without a word. So each batch ends with one ``XREVRANGE <key> + - COUNT 1`` per stream it wrote,
whose replies do come back: a stream whose newest id is below the batch's last entry for it did not store that
tail. Only what Redis holds is acknowledged; the rest stays in flight, the refusal is read with replies on (it
goes to ``stats.last_error`` and the log), and the batch is retried with backoff like a lost connection (the
buffer meanwhile fills, bounded and counted). A batch re-sent after a lost connection is rejected entry by entry
for ids Redis already has (explicit, increasing ids): re-sending is idempotent, and the check counts those entries
as stored, which they are.

While Redis is unreachable the batch in flight is kept and the buffer fills (bounded, counted, see
:class:`~kalshi.relay.core.RelayCore`); reconnecting uses capped full-jitter backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from kalshi.relay.core import EntryBuffer
from kalshi.relay.layout import parse_id
from kalshi.relay.resp import REPLY_OFF, REPLY_ON, pack_command

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
        retry_base_delay: first backoff cap in seconds (doubles per failed attempt).
        retry_max_delay: largest backoff cap.
        timeout: seconds to wait for Redis to answer a batch before reconnecting.
    """

    def __init__(
        self,
        url: str,
        buffer: EntryBuffer,
        *,
        batch: int = 4096,
        retry_base_delay: float = 0.05,
        retry_max_delay: float = 2.0,
        timeout: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be >= 1")
        self.url = url
        self.buffer = buffer
        self.batch = batch
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.timeout = timeout
        self.stats = PublisherStats()
        self._rng = rng or random.Random()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._attempted = asyncio.Event()  # set after every write attempt, whatever its outcome
        self._inflight: list[bytes] = []
        self._marks: list[tuple[str, bytes] | None] = []
        self._pool = aioredis.ConnectionPool.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._conn: aioredis.Connection | None = None

    def wake(self) -> None:
        """New commands are in the buffer (cheap; call after every append)."""
        if not self._wakeup.is_set():
            self._wakeup.set()
            self._idle.clear()

    @property
    def pending(self) -> int:
        """Commands not yet acknowledged by Redis (buffered plus in flight)."""
        return len(self.buffer) + len(self._inflight)

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
        try:
            attempt = 0
            while True:
                if not self._inflight:
                    if not len(self.buffer):
                        self._idle.set()
                        self._wakeup.clear()
                        await self._wakeup.wait()
                        continue
                    self._inflight, self._marks = self.buffer.take_marked(self.batch)
                try:
                    await self._write(self._inflight, self._marks)
                except (RedisError, OSError, TimeoutError) as exc:
                    self._attempted.set()
                    await self._lost(exc, attempt)
                    attempt += 1
                    continue
                if attempt:
                    logger.info("redis is back after %d attempt(s)", attempt)
                attempt = 0
                self.stats.down_since = None
                done = len(self._inflight)
                self.buffer.ack(done)
                self._inflight = []
                self._marks = []
                self._attempted.set()
                stats = self.stats
                stats.batches += 1
                stats.commands += done
                stats.max_batch = max(stats.max_batch, done)
        finally:
            await self._close()

    async def _write(self, commands: list[bytes], marks: list[tuple[str, bytes] | None]) -> None:
        conn = self._conn
        if conn is None:
            conn = self._pool.make_connection()  # type: ignore[no-untyped-call]
            await conn.connect()
            self._conn = conn
        last: dict[str, bytes] = {}
        for mark in marks:
            if mark is not None:
                last[mark[0]] = mark[1]
        checks = [pack_command("XREVRANGE", key, "+", "-", "COUNT", 1) for key in last]
        payload = b"".join((REPLY_OFF, *commands, REPLY_ON, *checks))
        await conn.send_packed_command(payload, check_health=False)
        newest: dict[str, tuple[int, int] | None] = {}
        async with asyncio.timeout(self.timeout):
            reply = await conn.read_response()
            if reply not in (b"OK", "OK"):
                raise RedisError(f"unexpected reply to CLIENT REPLY ON: {reply!r}")
            for key in last:
                try:
                    top = await conn.read_response()
                except ResponseError:  # not a stream (WRONGTYPE): nothing of this batch is in it
                    newest[key] = None
                    continue
                newest[key] = parse_id(top[0][0]) if top else None
        self.stats.bytes += len(payload)
        short = {key for key, entry_id in last.items() if (top := newest[key]) is None or parse_id(entry_id) > top}
        if short:
            await self._refused(conn, commands, marks, short, newest)

    async def _refused(
        self,
        conn: aioredis.Connection,
        commands: list[bytes],
        marks: list[tuple[str, bytes] | None],
        short: set[str],
        newest: dict[str, tuple[int, int] | None],
    ) -> None:
        """Acknowledge what Redis holds, keep the rest in flight, and raise with Redis's reason."""

        def stored(mark: tuple[str, bytes] | None) -> bool:
            if mark is None or mark[0] not in short:
                return True
            top = newest[mark[0]]
            return top is not None and parse_id(mark[1]) <= top

        first = next(i for i, mark in enumerate(marks) if not stored(mark))
        keep = [i for i in range(first, len(commands)) if marks[i] is None or not stored(marks[i])]
        landed = len(commands) - len(keep)
        self.buffer.ack(landed)
        self.stats.commands += landed
        self._inflight = [commands[i] for i in keep]
        self._marks = [marks[i] for i in keep]
        refused = sum(1 for i in keep if marks[i] is not None)
        self.stats.refused += refused
        reason = "no reason given"
        try:  # the first refused entry again, with replies on, to learn why
            await conn.send_packed_command(self._inflight[0], check_health=False)
            async with asyncio.timeout(self.timeout):
                await conn.read_response()
            self.buffer.ack(1)  # stored this time
            self.stats.commands += 1
            del self._inflight[0], self._marks[0]
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
        if self._inflight:
            stats.resent_batches += 1
        await self._close()
        stats.reconnects += 1
        cap = min(self.retry_max_delay, self.retry_base_delay * (2 ** min(attempt, 16)))
        await asyncio.sleep(self._rng.uniform(0, cap))

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(RedisError, OSError, RuntimeError):
                await conn.disconnect()

    async def aclose(self) -> None:
        await self._close()
        await self._pool.aclose()
