"""KalshiWebSocket against the simulator: every channel end to end, and the usage forms of seed 000."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from kalshi._fixed import count_units, price_ticks
from kalshi.errors import KalshiCommandError, KalshiConnectionError, KalshiSubscriptionError
from kalshi.sim import Simulator
from kalshi.sim.engine import MarketSpec
from kalshi.ws import KalshiWebSocket, OverflowStrategy
from kalshi.ws.models import (
    CfbenchmarksValue5HzMessage,
    CfbenchmarksValueMessage,
    CommunicationsMessage,
    EventLifecycleMessage,
    FillMessage,
    MarketLifecycleMessage,
    MarketPositionsMessage,
    MultivariateLifecycleMessage,
    OrderbookDeltaMessage,
    OrderbookSnapshotMessage,
    OrderGroupMessage,
    PythValueMessage,
    TickerMessage,
    TradeMessage,
    UnknownMessage,
    UserOrdersMessage,
)
from kalshi.ws.transport import Connection
from ws_client_helpers import (
    Drain,
    Recorder,
    fast_config,
    latest_views,
    mismatched_books,
    replay,
    session_for,
    settle,
    until,
)

pytestmark = pytest.mark.sim(seed=5, markets=8)  # the shared `sim` fixture of conftest.py (open access, no lifecycle)


# -- public market data -----------------------------------------------------------------------------------------


async def test_ticker_messages_match_the_engine(sim: Simulator) -> None:
    tickers = sim.tickers[:2]
    async with session_for(sim, private=False) as (session, _):
        stream = await session.subscribe_ticker(tickers=tickers, overflow=OverflowStrategy.DROP_OLDEST)
        drain = Drain(stream)
        sim.step(300)
        await settle(sim, session, drain)
    assert drain.items and all(isinstance(m, TickerMessage) for m in drain.items)
    assert {m.msg.market_ticker for m in drain.items} == set(tickers)
    for ticker in tickers:
        last = [m.msg for m in drain.items if m.msg.market_ticker == ticker][-1]
        state = sim.engine.ticker_state(ticker)
        assert last.yes_bid_dollars is not None and price_ticks(last.yes_bid_dollars) == state.yes_bid_ticks
        assert last.volume_fp is not None and count_units(last.volume_fp) == state.volume_units
    assert stream.dropped == 0


async def test_trades_add_up_to_volume(sim: Simulator) -> None:
    async with session_for(sim, private=False) as (session, _):
        stream = await session.subscribe_trade()
        drain = Drain(stream)
        sim.step(400)
        await settle(sim, session, drain)
    assert drain.items and all(isinstance(m, TradeMessage) for m in drain.items)
    seqs = [m.seq for m in drain.items]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    volume: dict[str, int] = {}
    for trade in drain.items:
        assert trade.msg.count_fp is not None
        volume[trade.msg.market_ticker] = volume.get(trade.msg.market_ticker, 0) + count_units(trade.msg.count_fp)
    for ticker, units in volume.items():
        assert sim.engine.ticker_state(ticker).volume_units == units


async def test_raw_orderbook_delta_stream_and_maintained_books(sim: Simulator) -> None:
    tickers = sim.tickers[:3]
    async with session_for(sim, private=False) as (session, _):
        stream = await session.subscribe_orderbook_delta(tickers)
        kept = await session.subscribe_orderbook_delta(tickers[:1], keep_books=True)
        drain, kept_drain = Drain(stream), Drain(kept)
        sim.step(300)
        await settle(sim, session, drain, kept_drain)
        books = dict(session.books)
    snapshots = [m for m in drain.items if isinstance(m, OrderbookSnapshotMessage)]
    deltas = [m for m in drain.items if isinstance(m, OrderbookDeltaMessage)]
    assert [m.msg.market_ticker for m in snapshots] == tickers
    assert deltas and {m.msg.market_ticker for m in deltas} <= set(tickers)
    assert mismatched_books(sim, replay(drain.items), tickers) == []  # what a raw consumer builds
    assert set(books) == {tickers[0]}  # only keep_books=True (and orderbook()) maintain session.books
    assert mismatched_books(sim, books, tickers[:1]) == []


async def test_orderbook_views_follow_every_update(sim: Simulator) -> None:
    tickers = sim.tickers[:3]
    async with session_for(sim, private=False) as (session, _):
        views = await session.orderbook(tickers)
        drain = Drain(views)
        for _ in range(3):
            sim.step(150)
            await settle(sim, session, drain)
            assert mismatched_books(sim, latest_views(drain.items), tickers) == []
        one = await session.orderbook(tickers[0])
        single = Drain(one)
        await single.wait_for(1)
    held = drain.items[0]
    assert held == drain.items[0] and held.version <= drain.items[-1].version  # views are immutable values
    assert single.items[0] == sim.book(tickers[0])


async def test_books_property_and_wait_for_book(sim: Simulator) -> None:
    ticker = sim.tickers[0]
    async with session_for(sim, private=False) as (session, _):
        stream = await session.subscribe_orderbook_delta([ticker], keep_books=True)
        drain = Drain(stream)
        await drain.wait_for(1)
        first = session.books[ticker]
        assert session.books[ticker] is first  # unchanged book: the same cached view, no copy
        waiter = asyncio.create_task(session.wait_for_book(ticker))
        await asyncio.sleep(0)
        for _ in range(50):
            sim.step(10)
            await asyncio.sleep(0)
            if waiter.done():
                break
        updated = await asyncio.wait_for(waiter, 5)
        assert updated.version > first.version
        assert (await session.wait_for_book(ticker, after_version=first.version)).version > first.version
        await settle(sim, session, drain)
        assert session.books[ticker] == sim.book(ticker)


async def test_market_and_multivariate_lifecycle(sim: Simulator) -> None:
    plain = next(t for t in sim.tickers if not sim.engine.market(t).spec.is_multivariate)
    combo = next(t for t in sim.tickers if sim.engine.market(t).spec.is_multivariate)
    async with session_for(sim, private=False) as (session, _):
        lifecycle = Drain(await session.subscribe_market_lifecycle(tickers=[plain]))
        multivariate = Drain(await session.subscribe_multivariate_lifecycle())
        sim.do(lambda e: e.deactivate_market(plain))
        sim.do(lambda e: e.activate_market(plain))
        sim.do(lambda e: e.determine_market(plain, "yes"))
        sim.do(lambda e: e.deactivate_market(combo))
        spec = MarketSpec(ticker="KXNEW-S9999-T1", event_ticker="KXNEW-S9999", series_ticker="KXNEW", title="New")
        sim.do(lambda e: e.add_market(spec))
        await settle(sim, session, lifecycle, multivariate)
    events = [(type(m), getattr(m.msg, "event_type", None)) for m in lifecycle.items]
    assert (MarketLifecycleMessage, "deactivated") in events and (MarketLifecycleMessage, "determined") in events
    assert (EventLifecycleMessage, None) in events
    assert next(m.msg.market_ticker for m in lifecycle.items if isinstance(m, MarketLifecycleMessage)) == plain
    assert any(isinstance(m, MultivariateLifecycleMessage) and m.msg.market_ticker == combo for m in multivariate.items)


async def test_private_channels_see_the_accounts_orders(sim: Simulator) -> None:
    ticker = sim.tickers[2]
    _, bob = sim.create_account_auth()
    async with session_for(sim) as (session, alice):
        assert alice is not None
        fills = Drain(await session.subscribe_fill())
        orders = Drain(await session.subscribe_user_orders())
        positions = Drain(await session.subscribe_market_positions(tickers=[ticker]))
        placed = sim.place_order(alice, ticker, "bid", 4000, 1000, client_order_id="a-1")
        sim.place_order(bob, ticker, "ask", 3900, 250)
        sim.cancel_order(alice, placed.order_id)
        await settle(sim, session, fills, orders, positions)
    assert [type(m) for m in fills.items] == [FillMessage]
    fill = fills.items[0].msg
    assert fill.order_id == placed.order_id and fill.client_order_id == "a-1" and fill.count_fp == "2.50"
    assert all(isinstance(m, UserOrdersMessage) for m in orders.items)
    assert [m.msg.status for m in orders.items][-1] == "canceled"
    assert positions.items and all(isinstance(m, MarketPositionsMessage) for m in positions.items)
    assert positions.items[-1].msg.position_fp == "2.50"


async def test_order_group_updates_are_sequenced(sim: Simulator) -> None:
    async with session_for(sim) as (session, account):
        assert account is not None
        groups = Drain(await session.subscribe_order_group())
        group = sim.do(lambda e: e.create_order_group(account, 500))
        sim.do(lambda e: e.update_order_group_limit(account, group.order_group_id, 700))
        sim.do(lambda e: e.delete_order_group(account, group.order_group_id))
        await settle(sim, session, groups)
    assert all(isinstance(m, OrderGroupMessage) for m in groups.items)
    assert [(m.msg.event_type, m.seq) for m in groups.items] == [("created", 1), ("limit_updated", 2), ("deleted", 3)]
    assert groups.items[1].msg.contracts_limit_fp == "7.00"


async def test_communications_rfq_and_quote(sim: Simulator) -> None:
    _, maker = sim.create_account_auth()
    ticker = sim.tickers[0]
    async with session_for(sim) as (session, taker):
        assert taker is not None
        comms = Drain(await session.subscribe_communications())
        rfq = sim.do(lambda e: e.create_rfq(taker, ticker, contracts_units=1000))
        quote = sim.do(lambda e: e.create_quote(maker, rfq.rfq_id, yes_bid_ticks=4000, no_bid_ticks=5000))
        sim.do(lambda e: e.accept_quote(taker, quote.quote_id, "yes"))
        await settle(sim, session, comms)
    assert all(isinstance(m, CommunicationsMessage) for m in comms.items)
    assert [m.type for m in comms.items] == ["rfq_created", "quote_created", "quote_accepted"]
    assert comms.items[0].msg.market_ticker == ticker


async def test_index_channels(sim: Simulator) -> None:
    async with session_for(sim, private=False) as (session, _):
        cfb = Drain(await session.subscribe_cfbenchmarks_value(["BRTI"]))
        fast = Drain(await session.subscribe_cfbenchmarks_value_5hz(["ETHUSD_RTI"]))
        pyth = Drain(await session.subscribe_pyth_value(["Metal.XAU/USD"]))
        sim.tick_indices(3)
        await settle(sim, session, cfb, fast, pyth)
    assert [(type(m), m.msg.index_id) for m in cfb.items] == [(CfbenchmarksValueMessage, "BRTI")] * 3
    assert [(type(m), m.msg.index_id) for m in fast.items] == [(CfbenchmarksValue5HzMessage, "ETHUSD_RTI")] * 3
    assert [(type(m), m.msg.underlying_ticker) for m in pyth.items] == [(PythValueMessage, "Metal.XAU/USD")] * 3


async def test_retired_multivariate_channel_warns_and_is_refused(sim: Simulator) -> None:
    recorder = Recorder()
    async with session_for(sim, private=False, on_error=recorder.on_error) as (session, _):
        with pytest.warns(DeprecationWarning, match="retired"):
            request = session.subscribe_multivariate()
        with pytest.raises(KalshiCommandError) as refused:
            await request
        assert refused.value.code == 8
        assert session.subscriptions == []


# -- seed 000 usage forms ---------------------------------------------------------------------------------------


async def test_await_then_iterate_and_iterate_directly(sim: Simulator) -> None:
    ticker = sim.tickers[0]
    async with session_for(sim, private=False) as (session, _):
        stream = await session.subscribe_ticker(tickers=[ticker])
        sim.step(200)
        first = await asyncio.wait_for(anext(aiter(stream)), 5)
        assert isinstance(first, TickerMessage) and first.msg.market_ticker == ticker

        got: list[TickerMessage] = []

        async def direct() -> None:
            async for msg in session.subscribe_ticker(tickers=[ticker]):
                got.append(msg)
                return

        task = asyncio.create_task(direct())
        await asyncio.sleep(0.05)
        sim.step(200)
        await asyncio.wait_for(task, 5)
    assert got and got[0].msg.market_ticker == ticker


async def test_callbacks_registered_before_connect_with_run_forever(sim: Simulator) -> None:
    ws = KalshiWebSocket(auth=None, config=fast_config(sim))
    seen: list[Any] = []
    ticker = sim.tickers[0]

    @ws.on("ticker")
    async def on_ticker(msg: TickerMessage) -> None:
        seen.append(msg)

    async with ws.connect() as session:
        assert session is ws
        await session.subscribe_ticker(tickers=[ticker])
        runner = asyncio.create_task(session.run_forever())
        sim.step(300)
        await sim.quiesce()
        await session.list_subscriptions()
        await until(lambda: bool(seen))
        assert not runner.done()
        runner.cancel()
    assert all(isinstance(m, TickerMessage) and m.msg.market_ticker == ticker for m in seen)


async def test_callbacks_fan_out_beside_iterators(sim: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    ws = KalshiWebSocket(auth=None, config=fast_config(sim))
    by_callback: list[TradeMessage] = []
    async with ws.connect() as session:
        stream = await session.subscribe_trade()
        with caplog.at_level(logging.WARNING, logger="kalshi.ws.client"):

            @session.on("trade")
            async def on_trade(msg: TradeMessage) -> None:
                by_callback.append(msg)

        assert "both" in caplog.text
        drain = Drain(stream)
        sim.step(300)
        await settle(sim, session, drain)
        await until(lambda: len(by_callback) >= len(drain.items))
    assert drain.items and [m.seq for m in by_callback] == [m.seq for m in drain.items]


async def test_run_forever_needs_a_subscription(sim: Simulator) -> None:
    ws = KalshiWebSocket(auth=None, config=fast_config(sim))

    @ws.on("ticker")
    async def on_ticker(msg: TickerMessage) -> None:
        raise AssertionError("never called")

    async with ws.connect() as session:
        with pytest.raises(KalshiSubscriptionError, match="subscribe"):
            await session.run_forever()


async def test_run_forever_returns_when_the_session_ends(sim: Simulator) -> None:
    ws = KalshiWebSocket(auth=None, config=fast_config(sim))
    async with ws.connect() as session:
        await session.subscribe_ticker(tickers=[sim.tickers[0]])
        runner = asyncio.create_task(session.run_forever())
        await asyncio.sleep(0.01)
    await asyncio.wait_for(runner, 5)


async def test_subscribe_outside_a_session_is_refused(sim: Simulator) -> None:
    ws = KalshiWebSocket(auth=None, config=fast_config(sim))
    with pytest.raises(KalshiSubscriptionError, match="connect"):
        await ws.subscribe_ticker(tickers=[sim.tickers[0]])
    with pytest.raises(KalshiConnectionError):
        async with ws.connect(), ws.connect():
            pass


async def test_generic_subscribe_forwards_only_documented_params(
    sim: Simulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[bytes] = []
    ticker = sim.tickers[0]
    original = Connection.send

    def spy(self: Connection, data: bytes) -> None:
        sent.append(data)
        original(self, data)

    monkeypatch.setattr(Connection, "send", spy)  # what goes on the wire
    async with session_for(sim, private=False) as (session, _):
        with caplog.at_level(logging.WARNING, logger="kalshi.ws.channels"):
            stream = await session.subscribe(
                "ticker",
                params={"market_tickers": [ticker], "skip_ticker_ack": True, "bogus": 1, "channels": ["fill"]},
                maxsize=10,
            )
        assert "'bogus'" in caplog.text and "'channels'" in caplog.text
        drain = Drain(stream)
        sim.step(200)
        await settle(sim, session, drain)
    subscribe = next(frame for frame in sent if b'"subscribe"' in frame)
    assert b"bogus" not in subscribe and b'"fill"' not in subscribe
    assert b'"skip_ticker_ack":true' in subscribe and b'"channels":["ticker"]' in subscribe
    assert drain.items and all(isinstance(m, TickerMessage) for m in drain.items)


async def test_generic_subscribe_to_an_unknown_channel_is_refused(sim: Simulator) -> None:
    async with session_for(sim, private=False) as (session, _):
        with pytest.raises(KalshiCommandError) as refused:
            await session.subscribe("not_a_channel")
        assert refused.value.code == 8


async def test_unknown_message_types_reach_generic_iterators(sim: Simulator) -> None:
    # A frame of a type this version does not know is delivered as UnknownMessage on its sid, not dropped.
    async with session_for(sim, private=False) as (session, _):
        stream = await session.subscribe("trade")
        drain = Drain(stream)
        sid = stream.sids[0]
        session._on_frame(b'{"type":"trade_v9","sid":%d,"seq":1,"msg":{"market_ticker":"X"}}' % sid)
        await drain.wait_for(1)
    assert isinstance(drain.items[0], UnknownMessage) and drain.items[0].raw["type"] == "trade_v9"


async def test_list_subscriptions_and_unsubscribe(sim: Simulator) -> None:
    async with session_for(sim, private=False) as (session, _):
        ticks = await session.subscribe_ticker(tickers=[sim.tickers[0]])
        trades = await session.subscribe_trade()
        listed = await session.list_subscriptions()
        assert sorted(listed) == sorted([("ticker", ticks.sids[0]), ("trade", trades.sids[0])])
        drain = Drain(ticks)
        await ticks.unsubscribe()
        await asyncio.wait_for(drain.finished.wait(), 5)
        assert await session.list_subscriptions() == [("trade", trades.sids[0])]
        assert session.subscriptions == [trades]
        with pytest.raises(KalshiSubscriptionError):
            await ticks.add_markets([sim.tickers[1]])
