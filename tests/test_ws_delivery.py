"""Delivery guarantees against the simulator: every subscribe form of asyncio works, a fill burst behind a busy
consumer is delivered whole, frames reach the subscription (and callbacks) they arrived on, and batches."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conftest import eventually, fast_config
from kalshi.sim import Simulator
from kalshi.sim.engine import MarketSpec
from kalshi.ws import KalshiWebSocket, OverflowStrategy, Subscription
from kalshi.ws.codes import CHANNEL_TABLE, default_overflow, defaults_table
from kalshi.ws.models import EventLifecycleMessage, FillMessage, TickerMessage
from ws_client_helpers import Drain, settle

pytestmark = pytest.mark.sim(markets=4)

MONEY_CHANNELS = ("fill", "user_orders", "market_positions", "order_group_updates", "communications")


# -- the subscribe forms ----------------------------------------------------------------------------------------


async def test_subscribe_requests_are_coroutines_for_every_asyncio_form(sim: Simulator) -> None:
    tickers = sim.tickers[:2]
    async with KalshiWebSocket(config=fast_config(sim)).connect() as session:
        awaited = await session.subscribe_ticker(tickers=tickers)
        task = asyncio.create_task(session.subscribe_trade(tickers))
        gathered = await asyncio.gather(session.subscribe_ticker(tickers=tickers[:1]), session.orderbook(tickers))
        waited = await asyncio.wait_for(session.subscribe_market_lifecycle(), timeout=5)
        async with asyncio.TaskGroup() as group:
            grouped = group.create_task(session.subscribe_orderbook_delta(tickers))
        subs = [awaited, await task, *gathered, waited, grouped.result()]
        assert all(isinstance(sub, Subscription) and sub.active for sub in subs)
        assert len({sid for sub in subs for sid in sub.sids}) == len(subs)
        listed = await session.list_subscriptions()
        assert sorted(sid for _, sid in listed) == sorted(sid for sub in subs for sid in sub.sids)


async def test_iterating_a_request_directly_subscribes_on_the_first_step(sim: Simulator) -> None:
    ticker = sim.tickers[0]
    async with KalshiWebSocket(config=fast_config(sim)).connect() as session:
        request = session.subscribe_ticker(tickers=[ticker], overflow=OverflowStrategy.BLOCK)
        got: list[TickerMessage] = []

        async def read() -> None:
            async for message in request:
                got.append(message)
                if len(got) == 3:
                    return

        reader = asyncio.create_task(read())
        await eventually(lambda: bool(session.subscriptions), what="the first step subscribed")
        sim.step(400)
        await asyncio.wait_for(reader, 5)
        assert all(isinstance(m, TickerMessage) and m.msg.market_ticker == ticker for m in got)
        with pytest.raises(RuntimeError, match="already used"):
            await request  # a request is used once


async def test_a_request_never_awaited_warns_nothing_and_subscribes_nothing(sim: Simulator) -> None:
    async with KalshiWebSocket(config=fast_config(sim)).connect() as session:
        request = session.subscribe_ticker()
        request.close()  # what the garbage collector does with an unused coroutine
        del request
        assert session.subscriptions == [] and await session.list_subscriptions() == []


# -- nothing dropped where it costs money -----------------------------------------------------------------------


def test_money_channels_default_to_block_and_the_table_says_why() -> None:
    for channel in MONEY_CHANNELS:
        assert default_overflow(channel) is OverflowStrategy.BLOCK, channel
    assert default_overflow("ticker") is OverflowStrategy.CONFLATE
    assert all(spec.why for spec in CHANNEL_TABLE)
    table = defaults_table()
    assert all(f"| `{spec.name}` | {spec.overflow.name} |" in table for spec in CHANNEL_TABLE)
    assert len({spec.name for spec in CHANNEL_TABLE}) == len(CHANNEL_TABLE)


async def test_a_fill_burst_behind_a_busy_consumer_is_delivered_whole(sim: Simulator) -> None:
    burst = 5000
    ticker = sim.tickers[0]
    auth, buyer = sim.create_account_auth()
    _, seller = sim.create_account_auth()
    ws = KalshiWebSocket(auth=auth, config=fast_config(sim))
    async with ws.connect() as session:
        fills = await session.subscribe_fill()
        assert fills.queue.overflow is OverflowStrategy.BLOCK and fills.queue.maxsize == 1000
        busy = asyncio.Event()
        got: list[FillMessage] = []

        async def consume() -> None:
            await busy.wait()  # the consumer is busy elsewhere while the burst arrives
            async for message in fills:
                got.append(message)
                if len(got) == burst:
                    return

        consumer = asyncio.create_task(consume())
        sim.place_order(buyer, ticker, "bid", 4000, 100 * burst)
        for _ in range(burst):
            sim.place_order(seller, ticker, "ask", 4000, 100)
        # The queue filled to its high watermark and reading paused instead of dropping.
        await eventually(lambda: session.reading_paused, what="reading paused at the high watermark")
        assert fills.queue.qsize() >= fills.queue.maxsize and fills.dropped == 0
        busy.set()
        await asyncio.wait_for(consumer, 30)
        assert len(got) == burst and fills.dropped == 0
        assert len({m.msg.trade_id for m in got}) == burst
        assert session.read_pauses >= 1


# -- routing by subscription ------------------------------------------------------------------------------------


async def test_event_lifecycle_reaches_the_subscription_and_callbacks_it_arrived_on(sim: Simulator) -> None:
    ws = KalshiWebSocket(config=fast_config(sim))
    seen: dict[str, list[Any]] = {"market_lifecycle_v2": [], "multivariate_market_lifecycle": []}

    @ws.on("market_lifecycle_v2")
    async def on_v2(message: Any) -> None:
        seen["market_lifecycle_v2"].append(message)

    @ws.on("multivariate_market_lifecycle")
    async def on_mv(message: Any) -> None:
        seen["multivariate_market_lifecycle"].append(message)

    async with ws.connect() as session:
        multivariate = Drain(await session.subscribe_multivariate_lifecycle())
        spec = MarketSpec(ticker="KXNEW-S9999-T1", event_ticker="KXNEW-S9999", series_ticker="KXNEW", title="New")
        sim.do(lambda e: e.add_market(spec))
        await settle(sim, session, multivariate)
        await eventually(lambda: bool(seen["multivariate_market_lifecycle"]), what="the callback ran")
    events = [m for m in multivariate.items if isinstance(m, EventLifecycleMessage)]
    assert events and events[0].msg.event_ticker == "KXNEW-S9999"
    assert [type(m) for m in seen["multivariate_market_lifecycle"]] == [type(m) for m in multivariate.items]
    assert seen["market_lifecycle_v2"] == []  # not subscribed there: nothing arrived on it


# -- batches ----------------------------------------------------------------------------------------------------


async def test_batches_hold_every_message_in_order(sim: Simulator) -> None:
    tickers = sim.tickers[:3]
    async with KalshiWebSocket(config=fast_config(sim)).connect() as session:
        raw = await session.subscribe_orderbook_delta(tickers)
        one_by_one = Drain(await session.subscribe_orderbook_delta(tickers))
        batches: list[list[Any]] = []
        done = asyncio.Event()

        async def consume() -> None:
            async for batch in raw.batches():
                batches.append(batch)
                if sum(map(len, batches)) >= len(one_by_one.items) and done.is_set():
                    return

        consumer = asyncio.create_task(consume())
        sim.step(300)
        await settle(sim, session, one_by_one)
        await eventually(lambda: raw.queue.empty(), what="the batch consumer drained")
        done.set()
        sim.step(5)
        await settle(sim, session, one_by_one)
        await asyncio.wait_for(consumer, 5)
    flat = [m for batch in batches for m in batch]
    assert all(batches) and len(batches) < len(flat)  # several messages per wakeup
    key = [(type(m).__name__, m.msg.market_ticker, getattr(m.msg, "price_dollars", None)) for m in flat]
    assert key == [
        (type(m).__name__, m.msg.market_ticker, getattr(m.msg, "price_dollars", None)) for m in one_by_one.items
    ]


async def test_orderbook_view_batches_are_views(sim: Simulator) -> None:
    tickers = sim.tickers[:2]
    async with KalshiWebSocket(config=fast_config(sim)).connect() as session:
        views = await session.orderbook(tickers)
        sim.step(100)
        async with asyncio.timeout(5):
            async for batch in views.batches():
                assert batch and all(v.market_ticker in tickers for v in batch)
                break
