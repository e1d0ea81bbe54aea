"""End to end in one process: simulator -> Relay -> a real redis-server -> RelayClient."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kalshi.errors import KalshiSubscriptionError
from kalshi.relay import Relay, RelayClient, RelayFeed
from kalshi.relay.layout import parse_id
from kalshi.sim import Simulator
from kalshi.ws.lifecycle import Gap
from redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


def mismatches(sim: Simulator, books: object, tickers: list[str]) -> list[str]:
    get = books.get
    return [t for t in tickers if not (get(t) is not None and get(t) == sim.book(t))]


def caught_up(feed: RelayFeed, entry_id: str) -> Callable[[], bool]:
    target = parse_id(entry_id)
    return lambda: parse_id(feed.position("orderbook_delta") or "0-0") >= target


async def test_books_equal_the_exchange_at_quiescent_points(redis_server: RedisServer) -> None:
    async with Simulator(seed=3, markets=12, rate=0, open_access=True, lifecycle=False) as sim:
        relay = Relay(redis_server.url, config=sim.config, markets_per_connection=5, checkpoint_interval=60)
        async with relay.running():
            assert len(relay.shards) == 3
            sim.step(300)
            async with RelayClient(redis_server.url).connect() as feed:
                await feed.orderbook(sim.tickers)
                for _ in range(3):
                    sim.step(200)
                    await sim.quiesce()
                    last = await relay.settle()
                    await feed.wait_for(caught_up(feed, last["orderbook_delta"]))
                    assert mismatches(sim, feed.books, sim.tickers) == []


async def test_error_26_halves_the_subscription_and_books_stay_exact(redis_server: RedisServer) -> None:
    async with Simulator(
        seed=4, markets=12, rate=0, open_access=True, lifecycle=False, max_markets_per_subscription=4
    ) as sim:
        relay = Relay(redis_server.url, config=sim.config, markets_per_connection=8, checkpoint_interval=60)
        async with relay.running():
            assert relay.learned_limit == 4  # the exchange answered 26 to 8 markets: halved
            assert [len(shard.markets) for shard in relay.shards] == [8, 4]
            async with RelayClient(redis_server.url).connect() as feed:
                await feed.orderbook(sim.tickers)
                sim.step(300)
                await sim.quiesce()
                last = await relay.settle()
                await feed.wait_for(caught_up(feed, last["orderbook_delta"]))
                assert mismatches(sim, feed.books, sim.tickers) == []


async def test_a_consumer_starting_late_begins_at_the_latest_checkpoint(redis_server: RedisServer) -> None:
    async with Simulator(seed=6, markets=6, rate=0, open_access=True, lifecycle=False) as sim:
        relay = Relay(redis_server.url, config=sim.config, markets_per_connection=3, checkpoint_interval=60)
        async with relay.running():
            sim.step(200)
            await sim.quiesce()
            await relay.settle()
            checkpoint = await relay.checkpoint()
            assert checkpoint is not None
            sim.step(100)
            await sim.quiesce()
            last = await relay.settle()
            async with RelayClient(redis_server.url).connect() as feed:
                await feed.orderbook(sim.tickers)
                builder = feed.builder
                assert builder is not None and builder.stats.checkpoints_loaded == 1
                await feed.wait_for(caught_up(feed, last["orderbook_delta"]))
                assert builder.stats.snapshots == 0  # nothing replayed from before the checkpoint
                assert mismatches(sim, feed.books, sim.tickers) == []
            # The relay is still, and a consumer starting now gets a view of every book at once, from the checkpoint.
            await relay.checkpoint()
            await relay.settle()
            async with RelayClient(redis_server.url).connect() as feed:
                views = await feed.orderbook(sim.tickers)
                seen = {}
                async with asyncio.timeout(10):
                    async for view in views:
                        seen[view.market_ticker] = view
                        if len(seen) == len(sim.tickers):
                            break
                assert seen == {ticker: sim.book(ticker) for ticker in sim.tickers}


async def test_an_exchange_reconnect_is_marked_and_books_rebuild(redis_server: RedisServer) -> None:
    async with Simulator(seed=8, markets=6, rate=0, open_access=True, lifecycle=False) as sim:
        config = sim.config.with_options(retry_base_delay=0.01, retry_max_delay=0.05, ws_max_retries=20)
        relay = Relay(redis_server.url, config=config, markets_per_connection=3, checkpoint_interval=60)
        async with relay.running(), RelayClient(redis_server.url).connect() as feed:
            events = feed.lifecycle_events()
            await feed.orderbook(sim.tickers)
            sim.step(100)
            first = relay.shards[0].ws
            sim.drop_connection(sim.connection_ids()[0])
            async with asyncio.timeout(10):
                while first.reconnects < 1:  # noqa: ASYNC110 (the client reconnects on its own: polled, bounded)
                    await asyncio.sleep(0.01)
            sim.step(100)
            await sim.quiesce()
            last = await relay.settle()
            await feed.wait_for(caught_up(feed, last["orderbook_delta"]))
            assert mismatches(sim, feed.books, sim.tickers) == []
            reasons = []
            async with asyncio.timeout(5):
                async for event in events:
                    if isinstance(event, Gap):
                        reasons.append(event.reason)
                    if "reconnect" in reasons:
                        break
            assert "reconnect" in reasons  # the dropped connection's books were hidden until rebuilt


async def test_a_book_a_bad_update_broke_is_re_snapshotted_from_the_exchange(redis_server: RedisServer) -> None:
    async with Simulator(seed=5, markets=4, rate=0, open_access=True, lifecycle=False) as sim:
        relay = Relay(redis_server.url, config=sim.config, markets_per_connection=4, checkpoint_interval=60)
        async with relay.running():
            sim.step(50)
            await relay.settle()
            core = relay.core
            assert core is not None
            books = core.books
            before = books.stats.snapshots
            broken = sim.tickers[1]
            books.needs_snapshot.add(broken)  # what a bad update leaves (see test_relay_core)
            sim.step(5)  # the next frames wake the relay's repair
            async with asyncio.timeout(10):
                while broken in books.needs_snapshot or books.stats.snapshots == before:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            assert books.stats.snapshots == before + 1, "one fresh snapshot, of that market alone"
            await sim.quiesce()
            await relay.settle()
            assert books.books[broken] == sim.book(broken)


class _SnapshotFailsOnce:
    """A shard's order book subscription whose first snapshot request fails (a command timeout, say)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def request_snapshot(self, tickers: list[str] | None = None) -> None:
        if not self.failed:
            self.failed += 1
            raise KalshiSubscriptionError("no answer within the command timeout")
        await self.real.request_snapshot(tickers)


async def test_a_failed_re_snapshot_is_retried_until_the_book_is_mended(redis_server: RedisServer) -> None:
    async with Simulator(seed=5, markets=4, rate=0, open_access=True, lifecycle=False) as sim:
        relay = Relay(redis_server.url, config=sim.config, markets_per_connection=4, checkpoint_interval=60)
        async with relay.running():
            sim.step(50)
            await relay.settle()
            core = relay.core
            assert core is not None
            books = core.books
            failing = _SnapshotFailsOnce(relay.shards[0].books_sub)
            relay.shards[0].books_sub = failing
            before = books.stats.snapshots
            broken = sim.tickers[1]
            books.needs_snapshot.add(broken)  # what a bad update leaves (see test_relay_core)
            sim.step(5)  # the next frames wake the relay's repair
            async with asyncio.timeout(10):
                while books.stats.snapshots == before:  # noqa: ASYNC110 (the relay's own repair task: polled, bounded)
                    await asyncio.sleep(0.01)
            assert failing.failed == 1
            assert broken not in books.needs_snapshot
            await sim.quiesce()
            await relay.settle()
            assert books.books[broken] == sim.book(broken)
