"""The relay's publisher against a real redis-server: a refused XADD is never acknowledged, and one refused while
later entries of its stream were stored is counted and marked as a gap."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis

from kalshi.relay.client import RelayClient
from kalshi.relay.core import EntryBuffer, RelayCore
from kalshi.relay.layout import StreamLayout, parse_id
from kalshi.relay.publisher import Publisher
from kalshi.ws.lifecycle import Gap
from redis_server import RedisServer

TICKERS = "kalshi:stream:ticker"
TRADES = "kalshi:stream:trade"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis", persistent=False) as server:
        yield server


def frames(core: RelayCore, count: int) -> None:
    """``count`` frames alternating between the ticker and trade streams."""
    conn = core.connection(0, 0)
    for i in range(count):
        kind = "ticker" if i % 2 == 0 else "trade"
        body = {"type": kind, "sid": 1 if kind == "ticker" else 2, "msg": {"market_ticker": "T", "n": i}}
        core.frame(conn, msgspec.json.encode(body), i)


@asynccontextmanager
async def publishing(url: str, core: RelayCore) -> AsyncIterator[Publisher]:
    publisher = Publisher(url, core.buffer, batch=16, retry_base_delay=0.001, retry_max_delay=0.01)
    task = asyncio.create_task(publisher.run())
    try:
        yield publisher
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await publisher.aclose()


async def stored_ids(redis: aioredis.Redis, key: str) -> list[int]:
    return [parse_id(entry_id)[1] for entry_id, _ in await redis.xrange(key)]


def new_core() -> RelayCore:
    return RelayCore(StreamLayout(), epoch=time.time_ns() // 1_000_000, maxlen=None, buffer=EntryBuffer())


async def test_xadd_refused_with_replies_off_is_kept_until_redis_stores_it(redis_server: RedisServer) -> None:
    redis = aioredis.Redis.from_url(redis_server.url)
    try:
        await redis.set(TICKERS, b"not a stream")  # every XADD to it is refused (WRONGTYPE), silently
        core = new_core()
        frames(core, 100)
        async with publishing(redis_server.url, core) as publisher:
            publisher.wake()
            await publisher.wait_until(lambda: publisher.stats.refused > 0, 10.0)
            buffer = core.buffer
            assert buffer.acknowledged < buffer.appended
            assert publisher.pending == buffer.appended - buffer.acknowledged > 0
            assert "WRONGTYPE" in publisher.stats.last_error or "wrong kind" in publisher.stats.last_error
            assert "ticker" in publisher.stats.last_error
            trades_before = await redis.xlen(TRADES)
            assert trades_before < 50  # the batch stopped at the first refused entry: order is kept

            await redis.delete(TICKERS)  # the operator fixes it: the kept entries go in
            assert await publisher.drained(10.0)
            assert buffer.acknowledged == buffer.appended == 100
        assert await stored_ids(redis, TICKERS) == list(range(50))
        assert await stored_ids(redis, TRADES) == list(range(50))
    finally:
        await redis.aclose()


async def test_out_of_memory_mid_stream_loses_nothing_acknowledged(redis_server: RedisServer) -> None:
    redis = aioredis.Redis.from_url(redis_server.url)
    try:
        core = new_core()
        async with publishing(redis_server.url, core) as publisher:
            frames(core, 40)
            publisher.wake()
            assert await publisher.drained(10.0)
            acknowledged = core.buffer.acknowledged
            assert acknowledged == 40

            await redis.config_set("maxmemory", "1")  # writes now fail with OOM (noeviction)
            await redis.config_set("maxmemory-policy", "noeviction")
            frames(core, 60)
            publisher.wake()
            await publisher.wait_until(lambda: publisher.stats.refused > 0, 10.0)
            assert core.buffer.acknowledged == acknowledged  # nothing refused counts as stored
            assert "maxmemory" in publisher.stats.last_error
            assert await redis.xlen(TICKERS) + await redis.xlen(TRADES) == 40

            await redis.config_set("maxmemory", "0")
            assert await publisher.drained(10.0)
            assert core.buffer.acknowledged == core.buffer.appended == 100
        assert await stored_ids(redis, TICKERS) == list(range(50))
        assert await stored_ids(redis, TRADES) == list(range(50))
    finally:
        await redis.aclose()


async def test_a_connection_lost_with_batches_in_flight_resends_them_in_order(redis_server: RedisServer) -> None:
    redis = aioredis.Redis.from_url(redis_server.url)
    try:
        core = new_core()
        publisher = Publisher(redis_server.url, core.buffer, batch=8, window=4, retry_base_delay=0.001)
        task = asyncio.create_task(publisher.run())
        try:
            frames(core, 400)
            publisher.wake()
            await publisher.wait_until(lambda: publisher.stats.batches >= 2, 10.0)
            killed = await redis.client_kill_filter(_type="normal", skipme=True)  # the publisher's connection
            assert killed >= 1
            assert await publisher.drained(10.0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await publisher.aclose()
        assert core.buffer.acknowledged == core.buffer.appended == 400
        assert await stored_ids(redis, TICKERS) == list(range(200))  # each once, in order
        assert await stored_ids(redis, TRADES) == list(range(200))
    finally:
        await redis.aclose()


async def test_a_gap_on_a_quiet_stream_is_marked_once_redis_has_room(redis_server: RedisServer) -> None:
    # Redis away, the buffer full: a trade is dropped. The trade stream then stays quiet; its consumers must
    # still learn of the loss as soon as Redis takes entries again, not at the next trade (maybe hours later).
    core = RelayCore(StreamLayout(), epoch=time.time_ns() // 1_000_000, maxlen=None, buffer=EntryBuffer(limit=4))
    conn = core.connection(0, 0)
    for i in range(4):
        core.frame(conn, msgspec.json.encode({"type": "ticker", "sid": 1, "msg": {"n": i}}), i)
    core.frame(conn, msgspec.json.encode({"type": "trade", "sid": 2, "msg": {"n": 4}}), 4)
    core.frame(conn, msgspec.json.encode({"type": "trade", "sid": 2, "msg": {"n": 5}}), 5)
    assert core.counters.dropped == 2
    redis = aioredis.Redis.from_url(redis_server.url)
    try:
        publisher = Publisher(redis_server.url, core.buffer, batch=2, on_acked=core.mark_gaps)
        task = asyncio.create_task(publisher.run())
        try:
            publisher.wake()
            await publisher.wait_until(lambda: core.counters.gaps_marked == 1, 10.0)
            assert await publisher.drained(10.0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await publisher.aclose()
        [(entry_id, marker)] = await redis.xrange(TRADES)
        assert parse_id(entry_id)[1] == 0  # before any later trade
        assert marker[b"k"] == b"gap"
        assert msgspec.json.decode(marker[b"j"]) == {"reason": "buffer_overflow", "dropped": 2, "channel": "trade"}
        assert await stored_ids(redis, TICKERS) == [0, 1, 2, 3]
        core.frame(conn, msgspec.json.encode({"type": "trade", "sid": 2, "msg": {"n": 6}}), 6)
        assert core.counters.gaps_marked == 1  # marked once
    finally:
        await redis.aclose()


async def test_entries_refused_between_stored_ones_are_counted_and_marked_as_a_gap(redis_server: RedisServer) -> None:
    # Near maxmemory, Redis refuses some XADDs of the pipelined batches and stores later ones (memory went down
    # meanwhile): the refused entries can never be stored after them (ids only grow). Two big entries, then two
    # small ones, in flight at once: the big ones put Redis over maxmemory, the small ones fit.
    redis = aioredis.Redis.from_url(redis_server.url)
    try:
        core = new_core()
        conn = core.connection(0, 0)
        big = b"x" * 1_000_000
        for i in range(4):
            pad = big if i < 2 else b"x"
            core.frame(conn, b'{"type":"ticker","sid":1,"msg":{"market_ticker":"T","pad":"%b"}}' % pad, i)
        used = int((await redis.info("memory"))["used_memory"])
        await redis.config_set("maxmemory-policy", "noeviction")
        await redis.config_set("maxmemory", str(used + 1_500_000))
        publisher = Publisher(
            redis_server.url, core.buffer, batch=2, window=4, on_acked=core.mark_gaps, on_lost=core.refused
        )
        task = asyncio.create_task(publisher.run())
        try:
            publisher.wake()
            assert await publisher.drained(10.0)
            await publisher.wait_until(lambda: core.counters.gaps_marked == 1, 10.0)
            assert await publisher.drained(10.0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await publisher.aclose()
        await redis.config_set("maxmemory", "0")
        rows = await redis.xrange(TICKERS)
        data = [parse_id(entry_id)[1] for entry_id, fields in rows if b"f" in fields]
        missing = sorted(set(range(4)) - set(data))
        assert missing  # the scenario did lose entries: they were refused, and later ones stored
        assert publisher.stats.lost == len(missing)
        [(marker_id, marker)] = [(entry_id, fields) for entry_id, fields in rows if b"f" not in fields]
        assert parse_id(marker_id)[1] == 4  # right after the entries buffered when the loss was seen
        assert marker[b"k"] == b"gap"
        assert msgspec.json.decode(marker[b"j"]) == {
            "reason": "redis_refused",
            "dropped": len(missing),
            "channel": "ticker",
        }
        assert core.buffer.acknowledged == core.buffer.appended  # settled: nothing left to retry

        # A consumer group member (no continuity check by ids there) is told, and so is a book builder.
        events: list[Gap] = []
        async with RelayClient(redis_server.url, group="g", consumer="a", start="earliest").connect() as feed:
            listener = feed.lifecycle_events()
            sub = await feed.subscribe_ticker()
            got = 0
            async for _ in sub:
                got += 1
                if got == len(data):
                    break
            async with asyncio.timeout(10):
                async for event in listener:
                    if isinstance(event, Gap):
                        events.append(event)
                        break
        assert [replace(event, at_ms=0) for event in events] == [
            Gap("ticker", None, None, len(missing), (), "redis_refused", at_ms=0)
        ]
    finally:
        await redis.aclose()
