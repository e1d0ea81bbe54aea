"""The relay follows market_lifecycle_v2: a market listed while it runs is relayed, a settled one is dropped."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

import kalshi.relay.relay as relay_module
from kalshi.errors import KalshiSubscriptionError
from kalshi.relay import Relay, RelayClient
from kalshi.relay.layout import parse_id
from kalshi.sim import Simulator
from kalshi.ws import ConnectionState
from redis_server import RedisServer

NEW_TICKER = "KXRELAYNEW-26DEC03-T50"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis", persistent=False) as server:
        yield server


def relayed(relay: Relay) -> set[str]:
    return {ticker for shard in relay.shards for ticker in shard.markets}


async def test_a_market_listed_while_relaying_is_added_and_a_settled_one_removed(redis_server: RedisServer) -> None:
    async with Simulator(seed=11, markets=4, rate=0, open_access=True, lifecycle=False) as sim:
        first = sorted(sim.tickers)
        relay = Relay(redis_server.url, config=sim.config, markets_per_connection=10, checkpoint_interval=60)
        async with relay.running(), RelayClient(redis_server.url).connect() as feed:
            assert relayed(relay) == set(first)
            await feed.orderbook([*first, NEW_TICKER])

            spec = dataclasses.replace(sim.universe.markets[0], ticker=NEW_TICKER, market_id=None)
            sim.do(lambda engine: engine.add_market(spec))
            # The relay hears "created" on market_lifecycle_v2, subscribes the market, and its snapshot is
            # relayed: the consumer's book of it appears (event-driven wait, bounded).
            await feed.wait_for(lambda: NEW_TICKER in feed.books, within=15)
            assert NEW_TICKER in relayed(relay)

            sim.step(300)  # activity on every market, the new one included
            await sim.quiesce()
            last = parse_id((await relay.settle())["orderbook_delta"])
            await feed.wait_for(lambda: parse_id(feed.position("orderbook_delta") or "0-0") >= last)
            for ticker in [*first, NEW_TICKER]:
                assert feed.books[ticker] == sim.book(ticker), ticker

            gone = first[0]
            sim.do(lambda engine: engine.determine_market(gone, "yes", 10_000))
            sim.do(lambda engine: engine.settle_market(gone))
            async with asyncio.timeout(15):
                while gone in relayed(relay):  # noqa: ASYNC110 (the relay's own follower task: polled, bounded)
                    await asyncio.sleep(0.01)
            assert relayed(relay) == {*first[1:], NEW_TICKER}
            sim.step(200)  # the markets still relayed stay exact
            await sim.quiesce()
            last = parse_id((await relay.settle())["orderbook_delta"])
            await feed.wait_for(lambda: parse_id(feed.position("orderbook_delta") or "0-0") >= last)
            for ticker in [*first[1:], NEW_TICKER]:
                assert feed.books[ticker] == sim.book(ticker), ticker


class _DownOnce:
    """A shard's order book subscription whose first edit fails as it does while its connection is down."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def add_markets(self, tickers: list[str]) -> None:
        if not self.failed:
            self.failed += 1
            raise KalshiSubscriptionError("the connection is down")
        await self.real.add_markets(tickers)


async def test_a_market_listed_while_its_shard_reconnects_is_added_once_it_can_be(redis_server: RedisServer) -> None:
    async with Simulator(seed=12, markets=3, rate=0, open_access=True, lifecycle=False) as sim:
        first = sorted(sim.tickers)
        relay = Relay(redis_server.url, config=sim.config, markets_per_connection=10, checkpoint_interval=60)
        async with relay.running(), RelayClient(redis_server.url).connect() as feed:
            await feed.orderbook([*first, NEW_TICKER])
            down = _DownOnce(relay.shards[-1].books_sub)
            relay.shards[-1].books_sub = down

            spec = dataclasses.replace(sim.universe.markets[0], ticker=NEW_TICKER, market_id=None)
            sim.do(lambda engine: engine.add_market(spec))
            # The first add fails (the shard is reconnecting); the market must not be forgotten.
            await feed.wait_for(lambda: NEW_TICKER in feed.books, within=15)
            assert down.failed == 1
            assert NEW_TICKER in relayed(relay)
            assert feed.books[NEW_TICKER] == sim.book(NEW_TICKER)


async def test_stopping_publishes_every_frame_received_and_ends_each_stream_with_relay_stop(
    redis_server: RedisServer,
) -> None:
    async with Simulator(seed=13, markets=6, rate=2000, open_access=True, lifecycle=False) as sim:
        relay = Relay(redis_server.url, config=sim.config, markets_per_connection=3, checkpoint_interval=60)
        receiving_at_final_drain: list[int] = []
        async with relay.running():
            core, publisher = relay.core, relay.publisher
            assert core is not None and publisher is not None
            drained = publisher.drained

            async def final_drain(within: float) -> bool:
                receiving = [s for s in relay.shards if s.ws.state is not ConnectionState.CLOSED]
                receiving_at_final_drain.append(len(receiving))
                return await drained(within)

            publisher.drained = final_drain  # type: ignore[method-assign]
            await publisher.wait_until(lambda: core.counters.frames > 300, 15)  # the exchange is busy
        # Frames still arriving while the last entries are flushed would be buffered and never written.
        assert receiving_at_final_drain == [0]
        assert core.counters.dropped == 0
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            frames = 0
            for key in core.stream_keys():
                entries = await client.xrange(key)
                frames += sum(1 for _, fields in entries if b"f" in fields)
                assert entries[-1][1][b"k"] == b"relay_stop", key
        finally:
            await client.aclose()
        assert frames == core.counters.frames


async def test_a_market_listed_while_the_lifecycle_connection_is_down_is_found_after_it_reconnects(
    redis_server: RedisServer,
) -> None:
    async with Simulator(seed=14, markets=3, rate=0, open_access=True, lifecycle=False) as sim:
        first = sorted(sim.tickers)
        relay = Relay(redis_server.url, config=sim.config, markets_per_connection=10, checkpoint_interval=60)
        async with relay.running(), RelayClient(redis_server.url).connect() as feed:
            await feed.orderbook([*first, NEW_TICKER])
            [conn_id] = sim.connection_ids()  # one shard: it follows market_lifecycle_v2
            sim.drop_connection(conn_id)
            spec = dataclasses.replace(sim.universe.markets[0], ticker=NEW_TICKER, market_id=None)
            sim.do(lambda engine: engine.add_market(spec))  # "created" goes nowhere: the connection is gone
            await feed.wait_for(lambda: NEW_TICKER in feed.books, within=15)
            assert NEW_TICKER in relayed(relay)
            assert feed.books[NEW_TICKER] == sim.book(NEW_TICKER)


async def test_announcements_dropped_from_a_lifecycle_backlog_are_found_again(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(relay_module, "_LIFECYCLE_QUEUE_SIZE", 2)
    async with Simulator(seed=15, markets=3, rate=0, open_access=True, lifecycle=False) as sim:
        new = [f"KXRELAYNEW-26DEC03-T{50 + i}" for i in range(5)]
        relay = Relay(redis_server.url, config=sim.config, markets_per_connection=10, checkpoint_interval=60)
        async with relay.running(), RelayClient(redis_server.url).connect() as feed:
            await feed.orderbook([*sim.tickers, *new])
            gate = asyncio.Event()
            add = relay.add_markets

            async def slow_add(tickers: Sequence[str]) -> None:
                await gate.wait()  # the follower is busy: announcements pile up behind it
                await add(tickers)

            relay.add_markets = slow_add  # type: ignore[method-assign]
            for ticker in new:
                spec = dataclasses.replace(sim.universe.markets[0], ticker=ticker, market_id=None)
                sim.do(lambda engine, spec=spec: engine.add_market(spec))
            await relay.settle()  # every announcement was received: the backlog overflowed (2 kept)
            gate.set()
            await feed.wait_for(lambda: all(t in feed.books for t in new), within=15)
            assert set(new) <= relayed(relay)
            assert "lifecycle announcement(s) dropped" in caplog.text  # the backlog did overflow
