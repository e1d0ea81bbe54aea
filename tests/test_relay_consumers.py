"""Relay consumers against a real redis-server: recording from Redis, consumer groups, typed channels, the CLI."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import redis.asyncio as aioredis

import kalshi.record
from kalshi.cli.main import main as kalshi_main
from kalshi.record.from_redis import FromRedisStats, record_from_redis
from kalshi.relay import Relay, RelayClient
from kalshi.relay.core import EntryBuffer, RelayCore
from kalshi.relay.layout import StreamLayout
from kalshi.sim import Simulator
from kalshi.ws.lifecycle import Gap
from kalshi.ws.models import TickerMessage
from redis_server import RedisServer
from relay_helpers import write_out


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis", persistent=False) as server:
        yield server


async def publish_tickers(
    url: str, count: int, *, maxlen: int | None = None, core: RelayCore | None = None
) -> RelayCore:
    """``count`` ticker frames (market T<i % 5>) written by a relay core and publisher, acknowledged."""
    if core is None:
        core = RelayCore(StreamLayout(), epoch=time.time_ns() // 1_000_000, maxlen=maxlen, buffer=EntryBuffer())
    conn = core.connection(0, 0)
    start = core.counters.frames
    for i in range(start, start + count):
        body = {
            "type": "ticker",
            "sid": 2,
            "msg": {"market_ticker": f"T{i % 5}", "price_dollars": "0.5000", "dollar_volume": i},
        }
        core.frame(conn, msgspec.json.encode(body), i)
    await write_out(url, core)
    return core


def _n(message: object) -> int:
    """The frame number publish_tickers put in ``dollar_volume``."""
    assert isinstance(message, TickerMessage) and message.msg.dollar_volume is not None
    return message.msg.dollar_volume


async def test_consumer_group_shares_work_and_recovers_a_dead_members_entries(redis_server: RedisServer) -> None:
    url = redis_server.url
    async with RelayClient(url, group="g", consumer="a", start="earliest", batch=20).connect() as feed_a:
        sub_a = await feed_a.subscribe_raw(["ticker"], maxsize=10)
        core = await publish_tickers(url, 200)
        got_a = []
        async for entry in sub_a:
            got_a.append(entry.id)
            if len(got_a) == 30:
                break  # "dies": the 30th and everything it had read ahead stay unacknowledged
    all_ids = {f"{core.epoch}-{n}" for n in range(200)}
    seen_b: set[str] = set()
    async with RelayClient(url, group="g", consumer="b", claim_idle=0.05, start="earliest").connect() as feed_b:
        sub_b = await feed_b.subscribe_raw(["ticker"])

        async def take_all() -> None:
            async for entry in sub_b:
                seen_b.add(entry.id)
                if seen_b | set(got_a[:29]) >= all_ids:
                    return

        await asyncio.wait_for(take_all(), 20)
        await feed_b.ack()
    assert got_a[29] in seen_b  # handed to a, never acknowledged: claimed by b
    assert not seen_b & set(got_a[:29])  # acknowledged entries are not delivered again
    client = aioredis.Redis.from_url(url)
    pending = await client.xpending("kalshi:stream:ticker", "g")
    await client.aclose()
    assert pending["pending"] <= 1  # at most b's own last one, handed out and not asked past


async def test_typed_channel_subscription_filters_tickers_and_reports_trimming(redis_server: RedisServer) -> None:
    url = redis_server.url
    async with RelayClient(url, start="earliest", batch=1000).connect() as feed:
        events = feed.lifecycle_events()
        await publish_tickers(url, 50)
        sub = await feed.subscribe_ticker(["T1"])
        got = [_n(await anext(sub)) for _ in range(9)]
        assert got == [1, 6, 11, 16, 21, 26, 31, 36, 41]
        last = await anext(sub)
        assert isinstance(last, TickerMessage) and _n(last) == 46
    # A reader that fell behind MAXLEN: the stream was trimmed under it, and it is told how much it missed.
    client = aioredis.Redis.from_url(url)
    await client.delete("kalshi:stream:ticker")
    await client.aclose()
    core = await publish_tickers(url, 10, maxlen=100)
    async with RelayClient(url, start="earliest", batch=10).connect() as slow:
        events = slow.lifecycle_events()
        sub = await slow.subscribe_ticker(maxsize=5)
        assert _n(await anext(sub)) == 0  # its reader is now blocked on the full queue, behind
        await publish_tickers(url, 5000, core=core)
        async with asyncio.timeout(10):
            while not slow.missing_entries:
                await anext(sub)
            event = await anext(events)
            while not isinstance(event, Gap):
                event = await anext(events)
        assert event.reason == "trimmed" and event.channel == "ticker"
        assert slow.missing_entries > 4000


async def test_record_from_redis_writes_the_recording_layout(redis_server: RedisServer, tmp_path: Path) -> None:
    url = redis_server.url
    out = tmp_path / "rec"
    async with Simulator(seed=5, markets=6, rate=0, open_access=True, lifecycle=False) as sim:
        relay = Relay(url, config=sim.config, markets_per_connection=3, checkpoint_interval=60)
        stop = asyncio.Event()
        ready = asyncio.Event()
        progress = FromRedisStats()
        async with relay.running():
            recording = asyncio.create_task(
                record_from_redis(
                    out,
                    url,
                    channels=["orderbook_delta", "trade"],
                    start="earliest",
                    stop=stop,
                    ready=ready,
                    stats=progress,
                )
            )
            await ready.wait()
            sim.step(300)
            await sim.quiesce()
            await relay.settle()
            client = aioredis.Redis.from_url(url)
            total = sum([await client.xlen("kalshi:stream:orderbook_delta"), await client.xlen("kalshi:stream:trade")])
            await client.aclose()
            async with asyncio.timeout(10):
                while progress.entries < total:  # noqa: ASYNC110 (the recorder catching up: polled, bounded)
                    await asyncio.sleep(0.01)
            stop.set()
            stats = await recording
        assert sorted(p.name for p in out.iterdir()) == ["shard-0", "shard-1"]
        for shard in ("shard-0", "shard-1"):
            rec = kalshi.record.open(out / shard)
            books = rec.books_at(time.time_ns())
            assert books and all(book == sim.book(ticker) for ticker, book in books.items())
        # Every entry of the two streams was read, and every frame entry went into a shard's recording. How many
        # frames 300 crowd actions make depends on the crowd (some actions change no book), hence no exact count.
        assert stats.entries == total
        assert stats.frames == sum(shard.frames for shard in stats.shards.values()) > 100


def test_cli_relay_runs_for_a_duration(redis_server: RedisServer, capsys: pytest.CaptureFixture[str]) -> None:
    async def serve() -> int:
        async with Simulator(seed=2, markets=4, rate=50, open_access=True, lifecycle=False) as sim:
            args = [
                "relay",
                "--redis",
                redis_server.url,
                "--url",
                sim.url,
                "--duration",
                "1",
                "--progress-every",
                "0.2",
            ]
            return await asyncio.to_thread(kalshi_main, args)

    assert asyncio.run(serve()) == 0
    err = capsys.readouterr().err
    assert "relayed" in err and "1 connection(s) for 4 market(s)" in err


def test_cli_record_from_redis(redis_server: RedisServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rec"
    assert kalshi_main(["record", "--from-redis", redis_server.url, "--out", str(out), "--duration", "0.5"]) == 0
    assert "recorded 0 frames" in capsys.readouterr().err
    assert kalshi_main(["record", "--from-redis", "localhost:6379", "--out", str(out)]) == 2


async def test_paper_trading_on_a_relay_feed_keeps_the_exchange_s_books(redis_server: RedisServer) -> None:
    from kalshi.strategy import Book, Context, Strategy
    from kalshi.strategy.paper import PaperRunner

    class Watcher(Strategy):
        """Rests one far-away paper bid on the first book of each market; counts the book updates."""

        def __init__(self, markets: tuple[str, ...]) -> None:
            self.markets = markets
            self.books = 0

        async def on_book(self, ctx: Context, book: Book) -> None:
            self.books += 1
            if not ctx.open_orders(book.ticker):
                ctx.place_order(book.ticker, "bid", 100, 100)

    url = redis_server.url
    async with Simulator(seed=5, markets=4, rate=0, open_access=True, lifecycle=False) as sim:
        tickers = tuple(sim.tickers[:2])
        relay = Relay(url, config=sim.config, markets=list(tickers), checkpoint_interval=0.2)
        async with relay.running(), RelayClient(url).connect() as feed:
            sim.step(100)
            await sim.quiesce()
            await relay.settle()
            await relay.checkpoint()  # the paper books start from a checkpoint, as a late consumer's do
            strategy = Watcher(tickers)
            runner = PaperRunner(strategy, feed)  # type: ignore[arg-type]  # a relay's feed, not a session
            stop = asyncio.Event()
            task = asyncio.create_task(runner.run(stop=stop))

            def others(levels: dict[int, int], own: dict[int, int]) -> list[tuple[int, int]]:
                return sorted((p, u - own.get(p, 0)) for p, u in levels.items() if u > own.get(p, 0))

            def books_match() -> bool:  # the paper book shows our paper bid too, as the exchange's feed would
                return all(
                    (book := runner.books.get(t)) is not None
                    and others(book.yes, book.own_yes) == sorted(sim.book(t).yes_ticks)
                    and others(book.no, book.own_no) == sorted(sim.book(t).no_ticks)
                    for t in tickers
                )

            for _ in range(3):  # changes after the start reach the paper books as level changes
                sim.step(150)
                await sim.quiesce()
                await relay.settle()
                async with asyncio.timeout(10):
                    while not (runner.caught_up() and books_match()) and not task.done():  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
                assert not task.done(), task.exception()
            stop.set()
            result = await task
    assert strategy.books > 2 and result.summary.orders == 2  # one resting paper bid per market


def test_cli_paper_from_redis(redis_server: RedisServer, capsys: pytest.CaptureFixture[str]) -> None:
    async def trade() -> int:
        async with Simulator(seed=2, markets=3, rate=200, open_access=True, lifecycle=False) as sim:
            tickers = ",".join(sim.tickers[:2])
            relay = Relay(redis_server.url, config=sim.config, markets=sim.tickers[:2], checkpoint_interval=0.2)
            async with relay.running():
                await relay.settle()
                await relay.checkpoint()
                args = ["paper", "-s", "kalshi.strategy.market_maker:MarketMaker", "-m", tickers]
                return await asyncio.to_thread(kalshi_main, [*args, "--from-redis", redis_server.url, "-d", "1.5"])

    assert asyncio.run(trade()) == 0
    captured = capsys.readouterr()
    assert "paper trading" in captured.err and redis_server.url.split("//")[1] in captured.err
    assert "PnL" in captured.out
    mm = "kalshi.strategy.market_maker:MarketMaker"
    assert kalshi_main(["paper", "-s", mm, "-m", "T", "--from-redis", redis_server.url, "--record", "r"]) == 2
    assert "kalshi record --from-redis" in capsys.readouterr().err
