"""RelayClient's promises under the conditions that break them most easily, against a real redis-server: a
member's own pending entries after a restart (some deleted meanwhile), a relay restart whose first entries were
trimmed before a consumer read them, a book view asked for after its book went stale, malformed entries and
unusable checkpoints (skipped and reported, the reader going on), a reader that fails (every subscription ends
with its error), an entry several subscriptions of one group member get (acknowledged once all took it), a
consumer group that vanishes while read (made again, a gap), and a member's own entries it still holds (never
claimed back and handed out twice)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import msgspec
import pytest
import redis.asyncio as aioredis

import kalshi.relay.client
from kalshi.errors import KalshiConnectionError
from kalshi.relay import RelayClient
from kalshi.relay.checkpoint import BookEntry, Checkpoint, encode_checkpoint
from kalshi.relay.core import EntryBuffer, RelayCore
from kalshi.relay.layout import BOOK_CHANNEL, KIND_CHECKPOINT, KIND_RELAY_START, StreamLayout
from kalshi.ws.lifecycle import Closed, Disconnected, Gap, LifecycleEvent, LifecycleListener, Reconnected, Repaired
from kalshi.ws.models import TickerMessage
from redis_server import RedisServer
from relay_helpers import delta, snapshot, write_out

STREAM = "kalshi:stream:ticker"
T = TypeVar("T")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis", persistent=False) as server:
        yield server


def new_core(*, epoch: int | None = None, maxlen: int | None = None) -> RelayCore:
    return RelayCore(StreamLayout(), epoch=epoch or time.time_ns() // 1_000_000, maxlen=maxlen, buffer=EntryBuffer())


def ticker_frame(i: int) -> bytes:
    body = {
        "type": "ticker",
        "sid": 2,
        "msg": {"market_ticker": f"T{i % 5}", "price_dollars": "0.5000", "dollar_volume": i},
    }
    return msgspec.json.encode(body)


async def publish(url: str, core: RelayCore, frames: list[bytes]) -> None:
    """``frames`` (on connection 0.0) and whatever the core holds already, written and acknowledged by Redis."""
    conn = core.connection(0, 0)
    for frame in frames:
        core.frame(conn, frame, time.time_ns())
    await write_out(url, core)


async def next_gap(events: LifecycleListener) -> Gap:
    event: LifecycleEvent = await anext(events)
    while not isinstance(event, Gap):
        event = await anext(events)
    return event


async def test_a_restarted_member_gets_each_of_its_pending_entries_once(redis_server: RedisServer) -> None:
    url = redis_server.url
    core = new_core()
    await publish(url, core, [ticker_frame(i) for i in range(5)])
    client = aioredis.Redis.from_url(url)
    await client.xgroup_create(STREAM, "g", id="0")
    # Member "a" took the five entries and died before acknowledging any: they are its pending entries.
    taken = await client.xreadgroup("g", "a", {STREAM: ">"})
    assert len(taken[0][1]) == 5
    await publish(url, core, [ticker_frame(i) for i in range(5, 10)])
    ids = [f"{core.epoch}-{n}" for n in range(10)]
    async with RelayClient(url, group="g", consumer="a", start="earliest").connect() as feed:
        sub = await feed.subscribe_raw(["ticker"])
        got = []
        async with asyncio.timeout(10):
            async for entry in sub:
                got.append(entry.id)
                if entry.id == ids[-1]:
                    break
        await feed.ack()
    assert got == ids  # its five pending entries first, once each, then the new ones
    assert (await client.xpending(STREAM, "g"))["pending"] == 0
    await client.aclose()


async def test_pending_entries_deleted_before_a_member_restarts_are_a_gap_not_a_stall(
    redis_server: RedisServer,
) -> None:
    url = redis_server.url
    core = new_core()
    await publish(url, core, [ticker_frame(i) for i in range(5)])
    client = aioredis.Redis.from_url(url)
    await client.xgroup_create(STREAM, "g", id="0")
    await client.xreadgroup("g", "a", {STREAM: ">"})
    # Trimmed (or deleted) while still pending: Redis hands them back as an id without fields.
    deleted = [f"{core.epoch}-1", f"{core.epoch}-2"]
    assert await client.xdel(STREAM, *deleted) == 2
    await publish(url, core, [ticker_frame(i) for i in range(5, 8)])
    async with RelayClient(url, group="g", consumer="a", start="earliest").connect() as feed:
        events = feed.lifecycle_events()
        sub = await feed.subscribe_raw(["ticker"])
        got = []
        async with asyncio.timeout(10):
            async for entry in sub:
                got.append(entry.id)
                if entry.id == f"{core.epoch}-7":
                    break
            gap = await next_gap(events)
        await feed.ack()
    assert got == [f"{core.epoch}-{n}" for n in (0, 3, 4, 5, 6, 7)]
    assert (gap.channel, gap.reason, gap.received) == ("ticker", "trimmed", 2)
    assert (await client.xpending(STREAM, "g"))["pending"] == 0  # the deleted ones are not pending for ever
    await client.aclose()


async def test_deleted_entries_a_member_claims_from_a_dead_one_are_a_gap(redis_server: RedisServer) -> None:
    url = redis_server.url
    core = new_core()
    await publish(url, core, [ticker_frame(i) for i in range(4)])
    client = aioredis.Redis.from_url(url)
    await client.xgroup_create(STREAM, "g", id="0")
    await client.xreadgroup("g", "dead", {STREAM: ">"})
    assert await client.xdel(STREAM, f"{core.epoch}-2") == 1
    left = {f"{core.epoch}-{n}" for n in (0, 1, 3)}
    async with RelayClient(url, group="g", consumer="b", claim_idle=0.05, start="earliest").connect() as feed:
        events = feed.lifecycle_events()
        sub = await feed.subscribe_raw(["ticker"])
        got = set()
        async with asyncio.timeout(10):
            async for entry in sub:
                got.add(entry.id)
                if got >= left:
                    break
            gap = await next_gap(events)
        await feed.ack()
    assert got == left
    assert (gap.channel, gap.reason, gap.received) == ("ticker", "trimmed", 1)
    assert (await client.xpending(STREAM, "g"))["pending"] == 0
    await client.aclose()


async def test_a_relay_restart_whose_first_entries_were_trimmed_is_a_gap(redis_server: RedisServer) -> None:
    url = redis_server.url
    first = new_core(maxlen=100)
    await publish(url, first, [ticker_frame(i) for i in range(10)])
    async with RelayClient(url, start="earliest", batch=10).connect() as feed:
        events = feed.lifecycle_events()
        sub = await feed.subscribe_ticker(maxsize=1)
        await anext(sub)  # its reader now holds the first run's ten entries, blocked on the full queue
        # A new relay run (a higher epoch) writes so much that its relay_start entry is trimmed before this
        # consumer reads on: nothing in the stream says the run began, only the ids do (its n starts at 0).
        second = new_core(epoch=first.epoch + 1000, maxlen=100)
        second.declare(["ticker"])
        second.control(None, KIND_RELAY_START, {"epoch": second.epoch})
        await publish(url, second, [ticker_frame(i) for i in range(3000)])
        async with asyncio.timeout(10):
            while not feed.missing_entries:
                await anext(sub)
            gap = await next_gap(events)
    assert (gap.channel, gap.reason) == ("ticker", "trimmed")
    assert feed.missing_entries > 2000


async def test_a_book_view_pending_when_its_book_went_stale_is_skipped(redis_server: RedisServer) -> None:
    url = redis_server.url
    core = new_core()
    async with RelayClient(url, start="earliest").connect() as feed:
        sub = await feed.orderbook(["A", "B"])
        await publish(
            url,
            core,
            [
                snapshot(1, 1, "A", [("0.4000", "10.00")], [("0.5000", "5.00")]),
                snapshot(2, 1, "B", [("0.3000", "7.00")], [("0.6000", "2.00")]),
            ],
        )
        await feed.wait_for(lambda: set(feed.books) == {"A", "B"})
        # A's seq jumps (a lost delta): A is stale; B changes. Both views are still waiting for the iterator.
        await publish(url, core, [delta(1, 3, "A", "0.4000", "1.00"), delta(2, 2, "B", "0.3000", "1.00")])
        await feed.wait_for(lambda: feed.builder is not None and feed.builder.stats.deltas == 1)
        assert set(feed.books) == {"B"}
        view = await anext(sub)
    assert view.market_ticker == "B"


async def test_a_subscription_full_when_its_feed_closes_ends_after_its_entries(redis_server: RedisServer) -> None:
    url = redis_server.url
    core = new_core()
    await publish(url, core, [ticker_frame(i) for i in range(3)])
    async with RelayClient(url, start="earliest").connect() as feed:
        sub = await feed.subscribe_raw(["ticker"], maxsize=1)
        async with asyncio.timeout(10):
            while not sub.queue.full():  # noqa: ASYNC110 (yielding to the reader until it fills the queue)
                await asyncio.sleep(0)
    async with asyncio.timeout(10):
        assert [entry.id async for entry in sub] == [f"{core.epoch}-0"]


async def next_event(events: LifecycleListener, kind: type[T]) -> T:
    event: LifecycleEvent = await anext(events)
    while not isinstance(event, kind):
        event = await anext(events)
    return event


async def test_a_malformed_frame_is_skipped_for_typed_subscriptions_and_reported(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = redis_server.url
    core = new_core()
    frames = [ticker_frame(0), ticker_frame(1), b'{"type": "ticker", "sid": 2, "msg": 7}', ticker_frame(3)]
    async with RelayClient(url, start="earliest").connect() as feed:
        events = feed.lifecycle_events()
        typed = await feed.subscribe_ticker()
        raw = await feed.subscribe_raw(["ticker"])
        with caplog.at_level(logging.WARNING, logger="kalshi.relay"):
            await publish(url, core, frames)
            async with asyncio.timeout(10):
                got = [message.msg.dollar_volume for message in [await anext(typed) for _ in range(3)]]
                entries = [(await anext(raw)).id for _ in range(4)]
                gap = await next_event(events, Gap)
            # The reader goes on: later entries still flow, to both.
            await publish(url, core, [ticker_frame(4)])
            async with asyncio.timeout(10):
                later = await anext(typed)
                assert (await anext(raw)).id == f"{core.epoch}-4"
    assert got == [0, 1, 3]
    assert isinstance(later, TickerMessage) and later.msg.dollar_volume == 4
    assert entries == [f"{core.epoch}-{n}" for n in range(4)]  # a raw subscription takes it as stored
    assert feed.protocol_errors == 1
    assert (gap.channel, gap.reason, gap.received) == ("ticker", "protocol_error", 1)
    assert any(
        f"{core.epoch}-2" in record.getMessage() and "malformed" in record.getMessage() for record in caplog.records
    )


async def stale_book_with_checkpoint_entry(url: str, core: RelayCore, key: str) -> str:
    """Book A made stale by a lost delta, then a checkpoint entry pointing at ``key``: its id."""
    await publish(url, core, [delta(1, 3, "A", "0.4000", "1.00")])
    [entry_id] = core.control([BOOK_CHANNEL], KIND_CHECKPOINT, {"key": key, "books": 1})
    await publish(url, core, [])
    return entry_id


async def test_a_redis_error_loading_a_checkpoint_is_a_reconnect_and_the_load_is_retried(
    redis_server: RedisServer,
) -> None:
    url = redis_server.url
    core = new_core()
    client = aioredis.Redis.from_url(url)
    key = "kalshi:checkpoint:not-allowed"
    async with RelayClient(url, start="earliest", retry_max_delay=0.05).connect() as feed:
        events = feed.lifecycle_events()
        books = await feed.orderbook(["A"])
        await publish(url, core, [snapshot(1, 1, "A", [("0.4000", "10.00")], [("0.5000", "5.00")])])
        async with asyncio.timeout(10):
            view = await anext(books)
        # Only the streams may be touched for now: GET of the checkpoint answers NOPERM, a Redis error.
        await client.execute_command("ACL", "SETUSER", "default", "resetkeys", "~kalshi:stream:*")
        checkpoint_id = await stale_book_with_checkpoint_entry(url, core, key)
        async with asyncio.timeout(10):
            down = await next_event(events, Disconnected)
        assert "NoPermissionError" in down.cause
        await client.execute_command("ACL", "SETUSER", "default", "allkeys")
        book = BookEntry("A", "0.0", 1, 1, None, [list(x) for x in view.yes_ticks], [list(x) for x in view.no_ticks])
        await client.set(key, encode_checkpoint(Checkpoint(checkpoint_id, 0, ["0.0"], [book], [])))
        async with asyncio.timeout(10):
            seen = [await anext(events)]
            while not isinstance(seen[-1], Reconnected):
                seen.append(await anext(events))
            assert await anext(books) == view
        # Still reading: a later snapshot arrives.
        await publish(url, core, [snapshot(1, 4, "A", [("0.3000", "1.00")], [])])
        await feed.wait_for(lambda: feed.books.get("A") != view)
    # The checkpoint loaded once Redis answered, before reading on.
    assert [(type(event), getattr(event, "markets", None)) for event in seen] == [
        (Repaired, ("A",)),
        (Reconnected, None),
    ]
    await client.aclose()


async def test_a_checkpoint_key_of_another_type_is_skipped_and_the_next_checkpoint_repairs(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = redis_server.url
    core = new_core()
    client = aioredis.Redis.from_url(url)
    wrong = "kalshi:checkpoint:wrong-type"
    await client.rpush(wrong, b"not a string")  # GET answers WRONGTYPE: it will never be a checkpoint
    async with RelayClient(url, start="earliest", retry_max_delay=0.05).connect() as feed:
        events = feed.lifecycle_events()
        books = await feed.orderbook(["A"])
        await publish(url, core, [snapshot(1, 1, "A", [("0.4000", "10.00")], [("0.5000", "5.00")])])
        async with asyncio.timeout(10):
            view = await anext(books)
        with caplog.at_level(logging.WARNING, logger="kalshi.relay"):
            await stale_book_with_checkpoint_entry(url, core, wrong)
            await feed.wait_for(lambda: feed.protocol_errors == 1)
        assert "A" not in feed.books
        # The next checkpoint is a good one: it repairs the book.
        good = "kalshi:checkpoint:good"
        [entry_id] = core.control([BOOK_CHANNEL], KIND_CHECKPOINT, {"key": good, "books": 1})
        book = BookEntry("A", "0.0", 1, 1, None, [list(x) for x in view.yes_ticks], [list(x) for x in view.no_ticks])
        await client.set(good, encode_checkpoint(Checkpoint(entry_id, 0, ["0.0"], [book], [])))
        await publish(url, core, [])
        async with asyncio.timeout(10):
            repaired = await next_event(events, Repaired)
            assert await anext(books) == view
    assert repaired.markets == ("A",)
    assert (feed.protocol_errors, feed.reconnects) == (1, 0)  # not a Redis failure: no reconnect
    assert len([record for record in caplog.records if wrong in record.getMessage()]) == 1
    await client.aclose()


async def test_books_start_from_the_stream_when_the_latest_checkpoint_key_is_of_another_type(
    redis_server: RedisServer,
) -> None:
    url = redis_server.url
    core = new_core()
    client = aioredis.Redis.from_url(url)
    await client.rpush("kalshi:checkpoint", b"not an entry id")
    await publish(url, core, [snapshot(1, 1, "A", [("0.4000", "10.00")], [("0.5000", "5.00")])])
    async with RelayClient(url, start="earliest").connect() as feed:
        await feed.orderbook(["A"])
        await feed.wait_for(lambda: "A" in feed.books)
    assert feed.protocol_errors == 1
    await client.aclose()


async def test_an_undecodable_checkpoint_is_skipped_and_reported(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = redis_server.url
    core = new_core()
    client = aioredis.Redis.from_url(url)
    key = "kalshi:checkpoint:foreign"
    await client.set(key, b"not a checkpoint")
    async with RelayClient(url, start="earliest").connect() as feed:
        await feed.orderbook(["A"])
        await publish(url, core, [snapshot(1, 1, "A", [("0.4000", "10.00")], [("0.5000", "5.00")])])
        await feed.wait_for(lambda: "A" in feed.books)
        with caplog.at_level(logging.WARNING, logger="kalshi.relay"):
            await stale_book_with_checkpoint_entry(url, core, key)
            await feed.wait_for(lambda: feed.protocol_errors == 1)
        assert "A" not in feed.books
        # The book comes back with its next snapshot: the reader went on.
        await publish(url, core, [snapshot(1, 4, "A", [("0.3000", "1.00")], [])])
        await feed.wait_for(lambda: "A" in feed.books)
    assert any(key in record.getMessage() for record in caplog.records)
    await client.aclose()


async def test_a_failed_reader_ends_every_subscription_with_its_error(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = redis_server.url
    core = new_core()

    def broken(data: bytes) -> object:
        raise RuntimeError("a bug in the reader")

    monkeypatch.setattr(kalshi.relay.client, "decode_message", broken)
    with pytest.raises(KalshiConnectionError):
        async with RelayClient(url, start="earliest").connect() as feed:
            events = feed.lifecycle_events()
            typed = await feed.subscribe_ticker()
            raw = await feed.subscribe_raw(["trade"])
            books = await feed.orderbook()
            await publish(url, core, [ticker_frame(0)])
            async with asyncio.timeout(10):
                for sub in (typed, raw, books):
                    with pytest.raises(KalshiConnectionError) as info:
                        await anext(sub)
                    assert isinstance(info.value.__cause__, RuntimeError)
                closed = await next_event(events, Closed)
    assert isinstance(closed.error, RuntimeError)


async def test_entries_with_bytes_that_are_not_utf8_do_not_stop_the_reader(redis_server: RedisServer) -> None:
    url = redis_server.url
    core = new_core()
    client = aioredis.Redis.from_url(url)
    book_stream = f"kalshi:stream:{BOOK_CHANNEL}"
    async with RelayClient(url, start="earliest").connect() as feed:
        books = await feed.orderbook(["A"])
        typed = await feed.subscribe_ticker()
        raw = await feed.subscribe_raw(["ticker"])
        # A foreign writer's entries (an earlier run): a control entry of a kind that is not UTF-8, a frame whose
        # meta's connection is not; the relay's own entries follow.
        before = core.epoch - 1
        await client.xadd(STREAM, {b"k": b"\xff\xfe", b"j": b"{}"}, id=f"{before}-0")
        await client.xadd(book_stream, {b"k": b"\xff", b"j": b"{}"}, id=f"{before}-0")
        frame = snapshot(1, 1, "B", [("0.4000", "10.00")], [])
        await client.xadd(book_stream, {b"f": frame, b"m": b"1 \xff 1 1"}, id=f"{before}-1")
        await publish(url, core, [ticker_frame(1), snapshot(1, 1, "A", [("0.4000", "10.00")], [])])
        async with asyncio.timeout(10):
            control = await anext(raw)
            message = await anext(typed)
            view = await anext(books)
    assert control.kind == "\ufffd\ufffd"
    assert isinstance(message, TickerMessage) and message.msg.dollar_volume == 1
    assert view.market_ticker == "A"
    await client.aclose()


async def pending(client: aioredis.Redis) -> int:
    return int((await client.xpending(STREAM, "g"))["pending"])


async def take(sub: object, count: int) -> list[str]:
    """The ids of the next ``count`` entries of ``sub`` (raw entries, batches of them, or typed tickers)."""
    ids: list[str] = []
    async with asyncio.timeout(10):
        while len(ids) < count:
            item = await anext(sub)  # type: ignore[call-overload]
            if isinstance(item, list):
                ids += [entry.id for entry in item]
            elif isinstance(item, TickerMessage):
                ids.append(str(item.msg.dollar_volume))
            else:
                ids.append(item.id)
    return ids


@pytest.mark.parametrize("kinds", [("raw", "raw"), ("raw", "typed"), ("batches", "raw"), ("typed", "batches")])
async def test_an_entry_two_subscriptions_of_a_member_get_is_acknowledged_once_both_took_it(
    redis_server: RedisServer, kinds: tuple[str, str]
) -> None:
    url = redis_server.url
    core = new_core()
    client = aioredis.Redis.from_url(url)
    async with RelayClient(url, group="g", consumer="a", start="earliest").connect() as feed:
        starts = {
            "raw": lambda: feed.subscribe_raw(["ticker"]),
            "typed": feed.subscribe_ticker,
            "batches": lambda: feed.subscribe_raw_batches(["ticker"], maxsize=10),
        }
        first, second = [await starts[kind]() for kind in kinds]
        await publish(url, core, [ticker_frame(i) for i in range(3)])
        assert len(await take(first, 3)) == 3
        await feed.ack()
        # The second subscription has taken none of them yet: were the process to die now, they must come again.
        assert await pending(client) == 3
        if kinds[1] != "batches":  # (a batch is acknowledged whole)
            assert len(await take(second, 2)) == 2
            await feed.ack()
            assert await pending(client) == 1  # those both took, and only those
        assert len(await take(second, 3 if kinds[1] == "batches" else 1)) >= 1
        await feed.ack()
        assert await pending(client) == 0
    await client.aclose()


def book_frames(first_seq: int, count: int) -> list[bytes]:
    """``count`` deltas alternating between books A (sid 1) and B (sid 2), numbered from ``first_seq`` on each."""
    return [
        delta(1 + i % 2, first_seq + i // 2, "AB"[i % 2], "0.4000" if i % 2 == 0 else "0.3000", f"{1 + i}.00")
        for i in range(count)
    ]


async def books_with_a_checkpoint_between(url: str, core: RelayCore) -> list[str]:
    """Books A and B, deltas, a checkpoint, more deltas, all in the book stream: every id, in order."""
    await publish(
        url,
        core,
        [
            snapshot(1, 1, "A", [("0.4000", "10.00")], [("0.5000", "5.00")]),
            snapshot(2, 1, "B", [("0.3000", "7.00")], [("0.6000", "2.00")]),
            *book_frames(2, 8),
        ],
    )
    assert core.checkpoint() is not None
    await publish(url, core, book_frames(6, 8))
    return [f"{core.epoch}-{n}" for n in range(19)]


async def take_ids(sub: object, last: str) -> list[str]:
    """The ids ``sub`` hands out (raw entries or batches of them) up to ``last``."""
    ids: list[str] = []
    async with asyncio.timeout(10):
        while last not in ids:
            item = await anext(sub)  # type: ignore[call-overload]
            ids += [entry.id for entry in item] if isinstance(item, list) else [item.id]
    return ids


@pytest.mark.parametrize(
    ("kind", "taken", "batch"),
    [("raw", 1, 1), ("raw", 14, 300), ("batches", 1, 300)],
    ids=["behind-the-checkpoint", "ahead-mid-read", "batches-ahead"],
)
async def test_books_started_later_leave_the_other_subscriptions_of_their_stream_where_they_are(
    redis_server: RedisServer, kind: str, taken: int, batch: int
) -> None:
    url = redis_server.url
    core = new_core()
    ids = await books_with_a_checkpoint_between(url, core)
    async with RelayClient(url, start="earliest", batch=batch).connect() as feed:
        if kind == "raw":
            # The full queue stops the reader: between reads of one entry (behind the checkpoint), or in the
            # middle of handing out a read of them all (ahead of it).
            sub: object = await feed.subscribe_raw([BOOK_CHANNEL], maxsize=1)
        else:
            sub = await feed.subscribe_raw_batches([BOOK_CHANNEL], maxsize=1)
        got = []
        async with asyncio.timeout(10):
            while len(got) < taken:
                item = await anext(sub)  # type: ignore[call-overload]
                got += [entry.id for entry in item] if isinstance(item, list) else [item.id]
        books = await feed.orderbook()
        await publish(url, core, book_frames(10, 4))
        ids += [f"{core.epoch}-{n}" for n in range(19, 23)]
        got += await take_ids(sub, ids[-1])
        assert got == ids  # every entry once, in order: none skipped up to the checkpoint, none read again
        builder = feed.builder
        assert builder is not None
        await feed.wait_for(lambda: builder.position == ids[-1])
        assert (builder.stats.gaps, feed.gaps) == (0, 0)  # the books missed no entry either
        assert dict(feed.books) == dict(core.books.books) and len(feed.books) == 2
        async with asyncio.timeout(10):
            view = await anext(books)
    assert view.market_ticker in ("A", "B")


async def test_a_raw_subscription_after_the_books_starts_where_the_client_starts(redis_server: RedisServer) -> None:
    url = redis_server.url
    core = new_core()
    ids = await books_with_a_checkpoint_between(url, core)
    async with RelayClient(url, start="earliest").connect() as feed:
        await feed.orderbook()
        raw = await feed.subscribe_raw([BOOK_CHANNEL])
        got = await take_ids(raw, ids[-1])
        assert got == ids  # from the stream's first entry (start="earliest"), not from the books' checkpoint
        await feed.wait_for(lambda: feed.builder is not None and feed.builder.position == ids[-1])
    assert dict(feed.books) == dict(core.books.books) and len(feed.books) == 2


@pytest.mark.parametrize("loss", ["restart", "flushall", "del", "destroy"])
async def test_a_consumer_group_that_vanishes_is_created_again_and_reported_as_a_gap(
    redis_server: RedisServer, loss: str
) -> None:
    url = redis_server.url
    core = new_core()
    client = aioredis.Redis.from_url(url)
    ids = [f"{core.epoch}-{n}" for n in range(6)]
    async with RelayClient(url, group="g", consumer="a", start="earliest", retry_max_delay=0.05).connect() as feed:
        events = feed.lifecycle_events()
        sub = await feed.subscribe_raw(["ticker"])
        await publish(url, core, [ticker_frame(i) for i in range(3)])
        assert await take(sub, 3) == ids[:3]
        await feed.ack()
        # Redis restarted without persistence, the stream deleted, or the group destroyed, while reading.
        if loss == "restart":
            redis_server.restart()  # not persistent: it comes back empty
        elif loss == "flushall":
            await client.flushall()
        elif loss == "del":
            await client.delete(STREAM)
        else:
            await client.xgroup_destroy(STREAM, "g")
        await publish(url, core, [ticker_frame(i) for i in range(3, 6)])
        async with asyncio.timeout(10):
            gap = await next_gap(events)
        assert await take(sub, 3) == ids[3:]  # the new entries, once each
        await feed.ack()
    assert (gap.channel, gap.reason, gap.received) == ("ticker", "trimmed", None)  # how many: unknown
    assert feed.gaps == 1
    assert await pending(client) == 0
    await client.aclose()


async def test_a_member_does_not_claim_back_the_entries_it_still_holds(redis_server: RedisServer) -> None:
    url = redis_server.url
    core = new_core()
    client = aioredis.Redis.from_url(url)
    # claim_idle=0: every pending entry may be claimed at once, this member's own queued ones too.
    async with RelayClient(url, group="g", consumer="a", claim_idle=0.0, start="earliest").connect() as feed:
        sub = await feed.subscribe_raw(["ticker"])
        await publish(url, core, [ticker_frame(i) for i in range(3)])
        await feed.wait_for(lambda: sub.queue.qsize() >= 3)
        reads = feed.reads
        await feed.wait_for(lambda: feed.reads >= reads + 2)  # claims were made with the three still queued
        await publish(url, core, [ticker_frame(3)])
        got = await take_ids(sub, f"{core.epoch}-3")
        await feed.ack()
    assert got == [f"{core.epoch}-{n}" for n in range(4)]
    assert await pending(client) == 0
    await client.aclose()
