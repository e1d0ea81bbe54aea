"""Relay: the exchange's streams into Redis Streams, over as many connections as the market limit needs.

``Relay(redis_url, config=..., auth=...).run()`` discovers every open market over REST, splits them into shards of
``markets_per_connection`` (one streaming connection each), subscribes the channels, and publishes every frame
through :class:`~kalshi.relay.core.RelayCore` and :class:`~kalshi.relay.publisher.Publisher`. It follows
``market_lifecycle_v2``: new markets are added to the last shard with room (or a new one), settled ones removed; an
add that fails (the shard reconnecting) is retried until the market is relayed, and after the connection that follows
the channel reconnects, the open markets are listed again over REST (announcements made while it was down are lost).
Every ``checkpoint_interval`` seconds it writes every book (kept by the core from the relayed frames, see
:class:`~kalshi.relay.books.BookBuilder`) so that consumers can start without the exchange.

Error 26 (too many markets on one subscription) is handled where it happens: the streaming client halves the
subscription and retries; the relay learns the smaller limit and uses it for the shards it opens later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kalshi.auth import KalshiAuth
from kalshi.config import KalshiConfig
from kalshi.errors import KalshiConnectionError, KalshiError
from kalshi.relay.core import EntryBuffer, RelayCore
from kalshi.relay.layout import (
    BOOK_CHANNEL,
    KIND_RELAY_START,
    KIND_RELAY_STOP,
    StreamLayout,
    parse_id,
)
from kalshi.relay.listings import RETRY_FIRST_S, RETRY_MAX_S, ListingFollower
from kalshi.relay.publisher import Publisher
from kalshi.ws import KalshiWebSocket, OverflowStrategy, Subscription

__all__ = ["DEFAULT_RELAY_CHANNELS", "Relay", "RelayProgress"]

logger = logging.getLogger(__name__)

DEFAULT_RELAY_CHANNELS: Final = ("orderbook_delta", "ticker", "trade", "market_lifecycle_v2")
_LIFECYCLE: Final = "market_lifecycle_v2"
# Channels subscribed per shard with its markets when markets are given; otherwise once, for every market.
_MARKET_CHANNELS: Final = frozenset({"ticker", "trade", "market_lifecycle_v2", "fill", "user_orders"})
_LIFECYCLE_QUEUE_SIZE = 10_000  # announcements waiting for the follower


@dataclass(frozen=True, slots=True)
class RelayProgress:
    """One progress sample (rates over the time since the previous sample)."""

    elapsed: float
    frames: int
    frames_per_s: float
    acked_per_s: float
    markets: int
    connections: int
    pending: int
    dropped: int
    redis_down_s: float
    checkpoints: int
    reconnects: int

    def line(self) -> str:
        down = f"  REDIS DOWN {self.redis_down_s:.1f}s" if self.redis_down_s else ""
        return (
            f"{self.elapsed:7.1f}s  {self.frames:,} frames  in {self.frames_per_s:,.0f}/s  out {self.acked_per_s:,.0f}/s"
            f"  markets {self.markets}  connections {self.connections}  lag {self.pending:,} entries"
            f"  dropped {self.dropped:,}  checkpoints {self.checkpoints}  ws reconnects {self.reconnects}{down}"
        )


class _Shard:
    def __init__(self, index: int, markets: list[str], ws: KalshiWebSocket) -> None:
        self.index = index
        self.markets = markets
        self.ws = ws
        self.session: KalshiWebSocket | None = None
        self.books_sub: Subscription[Any] | None = None
        self.subs: list[Subscription[Any]] = []


class Relay:
    """Publish the exchange's streams into Redis Streams (see the module docstring).

    Args:
        redis_url: ``redis://host:port/db``.
        config: where the exchange is.
        auth: signs the connections (None for an open simulator).
        channels: channels to relay (``orderbook_delta`` needs markets: every open market by default).
        markets: tickers to relay (None: discover every open market, and follow new ones).
        maxlen: approximate length bound of every stream (``MAXLEN ~``); None keeps everything.
        prefix: key prefix in Redis (see :class:`~kalshi.relay.layout.StreamLayout`).
        markets_per_connection: markets per shard (connection); lowered when the exchange answers error 26.
        checkpoint_interval: seconds between book checkpoints.
        buffer_limit: commands buffered while Redis is away before new entries are dropped (and marked as a gap).
        batch: most commands per Redis write.
        follow_lifecycle: add new markets and remove settled ones as market_lifecycle_v2 announces them.

    Raises:
        ValueError: a bound is not positive.
    """

    def __init__(
        self,
        redis_url: str,
        *,
        config: KalshiConfig,
        auth: KalshiAuth | None = None,
        channels: Sequence[str] = DEFAULT_RELAY_CHANNELS,
        markets: Sequence[str] | None = None,
        maxlen: int | None = 1_000_000,
        prefix: str = "kalshi",
        markets_per_connection: int = 500,
        checkpoint_interval: float = 5.0,
        buffer_limit: int = 1_000_000,
        batch: int = 4096,
        follow_lifecycle: bool = True,
    ) -> None:
        if markets_per_connection < 1 or checkpoint_interval <= 0:
            raise ValueError("markets_per_connection must be >= 1 and checkpoint_interval > 0")
        if maxlen is not None and maxlen < 1:
            raise ValueError("maxlen must be >= 1 (or None)")
        self.redis_url = redis_url
        self.config = config
        self.auth = auth
        self.channels = list(dict.fromkeys(channels))
        self.markets = list(markets) if markets is not None else None
        self.maxlen = maxlen
        self.layout = StreamLayout(prefix)
        self.markets_per_connection = markets_per_connection
        self.checkpoint_interval = checkpoint_interval
        self.follow_lifecycle = follow_lifecycle
        self.buffer = EntryBuffer(buffer_limit)
        self.batch = batch
        self.core: RelayCore | None = None
        self.publisher: Publisher | None = None
        self.shards: list[_Shard] = []
        self.learned_limit: int | None = None
        self._stack: AsyncExitStack | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._publishing: asyncio.Task[None] | None = None
        self._repair_wanted = asyncio.Event()
        self._started = 0.0
        self._last_sample: tuple[float, int, int] = (0.0, 0, 0)
        self._edit_lock = asyncio.Lock()
        self.listings = ListingFollower(
            self.add_markets,
            self.remove_markets,
            self._discover,
            lambda: {t for shard in self.shards for t in shard.markets},
        )
        self.ready = asyncio.Event()

    def __repr__(self) -> str:
        return f"Relay(redis={self.redis_url!r}, channels={self.channels}, shards={len(self.shards)})"

    # ------------------------------------------------------------------ public

    @property
    def market_count(self) -> int:
        return sum(len(shard.markets) for shard in self.shards)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Relay]:
        """Start (Redis, discovery, every shard subscribed), yield, then stop cleanly (everything flushed).

        Raises:
            KalshiConnectionError: Redis or the exchange cannot be reached at start.
            KalshiSubscriptionError: a channel cannot be subscribed.
        """
        async with AsyncExitStack() as stack:
            shards = self._stack = AsyncExitStack()  # closed first on stop: no frame arrives after the last flush
            stack.push_async_callback(shards.aclose)
            try:
                await self._start(stack)
                self.ready.set()
                yield self
            finally:
                self._stack = None
                await self._stop(shards)

    async def run(
        self,
        stop: asyncio.Event | None = None,
        *,
        on_progress: Callable[[RelayProgress], None] | None = None,
        progress_every: float = 1.0,
        duration: float | None = None,
    ) -> RelayProgress:
        """Relay until ``stop`` is set (or ``duration`` s passed); returns the final progress sample.

        Raises:
            KalshiConnectionError: Redis or the exchange cannot be reached at start, or a connection gave up.
        """
        stop = stop or asyncio.Event()
        async with self.running():
            loop = asyncio.get_running_loop()
            deadline = None if duration is None else loop.time() + duration
            while not stop.is_set():
                timeout = progress_every if deadline is None else max(0.0, min(progress_every, deadline - loop.time()))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await stop.wait()
                if on_progress is not None:
                    on_progress(self.progress())
                if deadline is not None and loop.time() >= deadline:
                    break
            return self.progress()

    def progress(self) -> RelayProgress:
        """A progress sample now (rates since the previous call)."""
        now = time.monotonic()
        core, publisher = self.core, self.publisher
        frames = core.counters.frames if core else 0
        acked = self.buffer.acknowledged
        last_t, last_frames, last_acked = self._last_sample
        span = max(now - last_t, 1e-9)
        self._last_sample = (now, frames, acked)
        down = publisher.stats.down_since if publisher else None
        return RelayProgress(
            elapsed=now - self._started,
            frames=frames,
            frames_per_s=(frames - last_frames) / span,
            acked_per_s=(acked - last_acked) / span,
            markets=self.market_count,
            connections=len(self.shards),
            pending=publisher.pending if publisher else 0,
            dropped=core.counters.dropped if core else 0,
            redis_down_s=now - down if down is not None else 0.0,
            checkpoints=core.counters.checkpoints if core else 0,
            reconnects=sum(shard.ws.reconnects for shard in self.shards),
        )

    async def checkpoint(self) -> str | None:
        """Write a book checkpoint now; returns its entry id (None when the buffer is full)."""
        core = self.core
        if core is None or BOOK_CHANNEL not in self.channels:
            return None
        entry_id = core.checkpoint()
        if self.publisher is not None:
            self.publisher.wake()
        return entry_id

    async def settle(self, *, within: float = 10.0) -> dict[str, str]:
        """Wait until every frame received so far is acknowledged by Redis (a ``list_subscriptions`` round trip
        on every connection proves the earlier frames were processed); returns the last entry id by channel.

        Raises:
            TimeoutError: Redis did not acknowledge within ``within`` seconds.
        """
        for shard in self.shards:
            if shard.session is not None:
                await shard.session.list_subscriptions()
        if not await self.flush(within=within):
            raise TimeoutError(f"Redis did not acknowledge {self.publisher.pending if self.publisher else 0} entries")
        return self.core.last_ids() if self.core is not None else {}

    async def flush(self, *, within: float = 10.0) -> bool:
        """Wait until every entry so far is acknowledged by Redis; False after ``within`` seconds."""
        return await self.publisher.drained(within) if self.publisher is not None else True

    # ------------------------------------------------------------------ start and stop

    async def _start(self, stack: AsyncExitStack) -> None:
        self._started = time.monotonic()
        self._last_sample = (self._started, 0, 0)
        epoch = await self._choose_epoch()
        core = self.core = RelayCore(self.layout, epoch=epoch, maxlen=self.maxlen, buffer=self.buffer)
        core.declare(self.channels)
        publisher = self.publisher = Publisher(
            self.redis_url, self.buffer, batch=self.batch, on_acked=core.mark_gaps, on_lost=core.refused
        )
        stack.push_async_callback(publisher.aclose)
        self._publishing = asyncio.create_task(publisher.run(), name="kalshi-relay-publisher")
        markets = self.markets if self.markets is not None else await self._discover()
        core.control(None, KIND_RELAY_START, {"epoch": epoch, "channels": self.channels, "markets": len(markets)})
        publisher.wake()
        size = self.markets_per_connection
        chunks = [markets[i : i + size] for i in range(0, len(markets), size)] or [[]]
        assert self._stack is not None
        for chunk in chunks:
            await self._open_shard(self._stack, chunk)
        if BOOK_CHANNEL in self.channels:
            self._tasks.append(asyncio.create_task(self._checkpoints(), name="kalshi-relay-checkpoints"))
            self._tasks.append(asyncio.create_task(self._repairs(), name="kalshi-relay-repairs"))

    async def _stop(self, shards: AsyncExitStack) -> None:
        """Stop receiving (every connection closed), then mark the end and flush what is buffered."""
        try:
            await _cancel(self._tasks)
            await shards.aclose()
            core = self.core
            if core is not None and self.publisher is not None:
                core.control(None, KIND_RELAY_STOP, {"frames": core.counters.frames})
                if not await self.publisher.drained(5.0):
                    logger.warning("stopping with %d entries not acknowledged by Redis", self.publisher.pending)
        finally:
            publishing, self._publishing = self._publishing, None
            await _cancel([publishing] if publishing is not None else [])

    async def _choose_epoch(self) -> int:
        """Epoch ms above every id already in the streams (entry ids must increase)."""
        client: Any = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=5.0)
        top = 0
        try:
            for channel in self.channels:
                last = await client.xrevrange(self.layout.stream(channel), count=1)
                if last:
                    top = max(top, parse_id(last[0][0])[0])
        except (RedisError, OSError) as exc:
            raise KalshiConnectionError(
                f"cannot reach Redis at {self.redis_url}: {exc}; is redis-server running?"
            ) from exc
        finally:
            await client.aclose()
        return max(time.time_ns() // 1_000_000, top + 1)

    async def _discover(self) -> list[str]:
        from kalshi.rest import AsyncKalshiClient

        found: dict[str, None] = {}  # a listing that shifts while paged may repeat a market: subscribe it once
        async with AsyncKalshiClient(self.config, auth=self.auth) as client:
            async for market in client.markets.iter_get_markets(status="open", limit=1000):
                found[market.ticker] = None
        logger.info("discovered %d open markets", len(found))
        return list(found)

    async def _open_shard(self, stack: AsyncExitStack, markets: list[str]) -> _Shard:
        core = self.core
        assert core is not None and self.publisher is not None
        index = len(self.shards)
        wake = self.publisher.wake
        holder: list[_Shard] = []
        broken = core.books.needs_snapshot
        repair = self._repair_wanted
        reconnected = self.listings.relist if index == 0 else asyncio.Event()

        def tap(data: bytes, recv_ns: int) -> None:
            shard = holder[0]
            number = shard.ws.reconnects
            conn = core.connections.get(index)
            if conn is None or conn.number != number:
                conn = core.connection(index, number)
                if number:
                    reconnected.set()
            core.frame(conn, data, recv_ns)
            wake()
            if broken:
                repair.set()

        limit = self.learned_limit or self.markets_per_connection
        ws = KalshiWebSocket(self.auth, self.config, markets_per_subscription=limit, on_raw_frame=tap)
        shard = _Shard(index, list(markets), ws)
        holder.append(shard)
        core.connection(index, 0)
        on_lifecycle = getattr(ws, "on_lifecycle", None)
        if callable(on_lifecycle):

            async def lifecycle(event: object) -> None:
                core.lifecycle(event)
                wake()

            on_lifecycle(lifecycle)
        shard.session = await stack.enter_async_context(ws.connect())
        self.shards.append(shard)
        await self._subscribe_shard(shard)
        return shard

    async def _subscribe_shard(self, shard: _Shard) -> None:
        session = shard.session
        assert session is not None
        everything = self.markets is None
        follow = shard.index == 0 and self.follow_lifecycle and everything and BOOK_CHANNEL in self.channels
        for channel in self.channels:
            if follow and channel == _LIFECYCLE:
                continue  # the follower's own subscription relays it
            if channel == BOOK_CHANNEL:
                if not shard.markets:
                    continue
                # Frames for the tap only (the client reads their envelope, repairs gaps, decodes nothing and
                # keeps no book): the relay core keeps its own books from the frames, for checkpoints.
                sub = await session.subscribe_orderbook_delta(shard.markets, tap_only=True)
                shard.books_sub = sub
                self._learn_limit(sub)
            elif channel in _MARKET_CHANNELS and not everything:
                if shard.markets:
                    shard.subs.append(await self._quiet(session, channel, shard.markets))
            elif shard.index == 0:
                shard.subs.append(await self._quiet(session, channel, None))
        if follow:
            lifecycle = await session.subscribe_market_lifecycle(
                overflow=OverflowStrategy.DROP_OLDEST, maxsize=_LIFECYCLE_QUEUE_SIZE
            )
            listings = self.listings
            self._tasks.append(asyncio.create_task(listings.follow(lifecycle), name="kalshi-relay-lifecycle"))
            self._tasks.append(asyncio.create_task(listings.retries(), name="kalshi-relay-lifecycle-retries"))
            self._tasks.append(asyncio.create_task(listings.relistings(), name="kalshi-relay-rediscovery"))

    async def _quiet(self, session: KalshiWebSocket, channel: str, markets: list[str] | None) -> Subscription[Any]:
        """A subscription for the tap only: its frames are relayed, never decoded or queued."""
        params: dict[str, Any] = {} if markets is None else {"market_tickers": markets}
        return await session.subscribe(channel, params, tap_only=True)

    def _learn_limit(self, sub: Subscription[Any]) -> None:
        if len(sub.sids) > 1:
            # The client met error 26 and halved the subscription: later shards start at the smaller size.
            size = max(1, -(-len(sub.markets) // len(sub.sids)))
            if self.learned_limit is None or size < self.learned_limit:
                logger.warning("error 26: at most %d markets per subscription; shards now hold %d", size, size)
                self.learned_limit = size
                self.markets_per_connection = min(self.markets_per_connection, size)

    async def _repairs(self) -> None:
        """Books a bad update broke (the relay's own books, kept from the frames): ask the exchange for fresh
        snapshots of those markets. Their frames then reach Redis like any other, and mend every consumer. A
        request that fails is retried with capped backoff (meanwhile the book stays out of checkpoints: consumers
        see it as stale, never as wrong)."""
        core = self.core
        assert core is not None
        delay = RETRY_FIRST_S
        while True:
            await self._repair_wanted.wait()
            self._repair_wanted.clear()
            broken = set(core.books.needs_snapshot)
            core.books.needs_snapshot.difference_update(broken)
            failed = False
            for shard in self.shards:
                mine = [t for t in shard.markets if t in broken]
                if not mine or shard.books_sub is None:
                    continue
                logger.warning("re-snapshotting %d market(s) after a bad book update: %s", len(mine), mine[:5])
                try:
                    await shard.books_sub.request_snapshot(mine)
                except KalshiError as exc:
                    logger.warning("could not re-snapshot %s (next try in %.1fs): %s", mine[:5], delay, exc)
                    core.books.needs_snapshot.update(mine)
                    failed = True
            if failed:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                self._repair_wanted.set()
            else:
                delay = RETRY_FIRST_S

    async def _checkpoints(self) -> None:
        while True:
            await asyncio.sleep(self.checkpoint_interval)
            await self.checkpoint()

    # ------------------------------------------------------------------ market edits

    async def add_markets(self, tickers: Sequence[str]) -> None:
        """Relay these markets too (into the last shard with room, else a new shard).

        Raises:
            KalshiSubscriptionError: the exchange refused the subscription.
        """
        async with self._edit_lock:
            known = {t for shard in self.shards for t in shard.markets}
            new = [t for t in dict.fromkeys(tickers) if t not in known]
            while new:
                last = self.shards[-1] if self.shards else None
                room = self.markets_per_connection - len(last.markets) if last is not None else 0
                if last is not None and room > 0 and last.books_sub is not None:
                    part, new = new[:room], new[room:]
                    await last.books_sub.add_markets(part)
                    for sub in last.subs:
                        if sub.markets:
                            await sub.add_markets(part)
                    last.markets.extend(part)
                else:
                    part, new = new[: self.markets_per_connection], new[self.markets_per_connection :]
                    if self._stack is None:
                        return
                    await self._open_shard(self._stack, part)

    async def remove_markets(self, tickers: Sequence[str]) -> None:
        """Stop relaying these markets.

        Raises:
            KalshiSubscriptionError: the exchange refused the edit.
        """
        async with self._edit_lock:
            drop = set(tickers)
            for shard in self.shards:
                mine = [t for t in shard.markets if t in drop]
                if not mine or len(mine) == len(shard.markets):
                    continue  # a shard is never emptied: its subscription would end
                if shard.books_sub is not None:
                    await shard.books_sub.remove_markets(mine)
                for sub in shard.subs:
                    if sub.markets:
                        await sub.remove_markets(mine)
                shard.markets = [t for t in shard.markets if t not in drop]


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    tasks.clear()
