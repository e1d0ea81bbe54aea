"""KalshiWebSocket under slow consumers: each overflow strategy, counted against what the simulator sent, and no
frame lost while a subscribe command is in flight under load."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from kalshi._fixed import price_ticks
from kalshi.errors import KalshiBackpressureError
from kalshi.sim import Simulator
from kalshi.ws import ConnectionState, KalshiWebSocket, OverflowStrategy, Subscription
from kalshi.ws.models import OrderbookSnapshotMessage, TickerMessage
from ws_client_helpers import Drain, Recorder, fast_config, mismatched_books, replay, settle, until

pytestmark = pytest.mark.sim(seed=21, markets=6)  # the shared `sim` fixture of conftest.py (open access, no lifecycle)


def sent_on(sim: Simulator, stream: Subscription[object]) -> int:
    """Data frames the simulator produced for the subscription (it is the only one on its channel)."""
    return sim.hub.delivered


@contextlib.asynccontextmanager
async def market_flow(sim: Simulator, actions: int = 5, pause: float = 0.002) -> AsyncIterator[None]:
    """Seeded activity in the background while the block runs."""

    async def run() -> None:
        while True:
            sim.step(actions)
            await asyncio.sleep(pause)

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_drop_oldest_keeps_the_newest_and_counts_drops(sim: Simulator) -> None:
    async with KalshiWebSocket(auth=None, config=fast_config(sim)).connect() as session:
        stream = await session.subscribe_ticker(tickers=sim.tickers, overflow=OverflowStrategy.DROP_OLDEST, maxsize=5)
        sim.step(400)
        await settle(sim, session)  # nobody reads meanwhile
        sent = sent_on(sim, stream)
        assert sent > 20
        kept = [stream.queue.get_nowait() for _ in range(stream.queue.qsize())]
    assert len(kept) == 5 and stream.dropped == sent - 5
    assert stream.conflated == 0
    assert all(isinstance(m, TickerMessage) for m in kept)


async def test_conflate_keeps_the_latest_per_market(sim: Simulator) -> None:
    async with KalshiWebSocket(auth=None, config=fast_config(sim)).connect() as session:
        stream = await session.subscribe_ticker(tickers=sim.tickers)  # CONFLATE is the ticker default
        assert stream.queue.overflow is OverflowStrategy.CONFLATE
        sim.step(400)
        await settle(sim, session)
        sent = sent_on(sim, stream)
        latest = [stream.queue.get_nowait() for _ in range(stream.queue.qsize())]
    by_market = {m.msg.market_ticker: m for m in latest}
    assert len(by_market) == len(latest) <= len(sim.tickers)  # one message per market
    assert stream.conflated + stream.dropped + len(latest) == sent and stream.conflated > 0
    for ticker, message in by_market.items():
        state = sim.engine.ticker_state(ticker)
        assert message.msg.yes_bid_dollars is not None
        assert price_ticks(message.msg.yes_bid_dollars) == state.yes_bid_ticks


async def test_error_strategy_is_a_fatal_teardown(sim: Simulator) -> None:
    recorder = Recorder()
    ws = KalshiWebSocket(
        auth=None, config=fast_config(sim), on_error=recorder.on_error, on_state_change=recorder.on_state_change
    )
    async with ws.connect() as session:
        trades = await session.subscribe_trade(overflow=OverflowStrategy.ERROR, maxsize=5)
        other = Drain(await session.subscribe_ticker(tickers=sim.tickers[:2]))
        runner = asyncio.create_task(session.run_forever())
        sim.step(400)
        with pytest.raises(KalshiBackpressureError):
            await asyncio.wait_for(runner, 5)
        await asyncio.wait_for(other.finished.wait(), 5)  # every iterator ends, not only the overflowing one
        received = [m async for m in trades]  # the queued messages, then StopAsyncIteration
        assert len(received) == 5 and trades.dropped == 1
        assert session.state is ConnectionState.CLOSED
        await until(lambda: not sim.connection_ids())  # and the socket is closed at once
    assert other.error is None
    assert recorder.states[-1] is ConnectionState.CLOSED
    assert any("queue full" in e.msg.msg for e in recorder.errors)


async def test_block_pauses_the_socket_and_loses_nothing(sim: Simulator) -> None:
    tickers = sim.tickers[:4]
    async with KalshiWebSocket(auth=None, config=fast_config(sim)).connect() as session:
        stream = await session.subscribe_orderbook_delta(tickers, maxsize=20)
        assert stream.queue.overflow is OverflowStrategy.BLOCK
        drain = Drain(stream, delay=0.0005)
        sim.step(600)
        await settle(sim, session, drain)
        sid = stream.sids[0]
        last_seq_sent = sim.connections()[0].session.subscriptions[sid].seq
        assert session.read_pauses > 0  # the consumer was slower than the feed: reading paused
        assert mismatched_books(sim, replay(drain.items), tickers) == []
    seqs = [m.seq for m in drain.items]
    assert seqs == list(range(1, last_seq_sent + 1)) and len(seqs) > 200
    assert stream.dropped == 0


async def test_no_frame_lost_while_a_subscribe_is_in_flight(sim: Simulator) -> None:
    tickers = sim.tickers[:3]
    async with KalshiWebSocket(auth=None, config=fast_config(sim)).connect() as session:
        first = await session.subscribe_orderbook_delta(tickers)
        drain = Drain(first)
        async with market_flow(sim):
            await drain.wait_for(20)
            sim.faults.delay_acks(0.2)  # the exchange takes 200 ms to answer; data keeps flowing meanwhile
            before = len(drain.items)
            second = await session.subscribe_trade()
            during_ack = len(drain.items) - before
            sim.faults.delay_acks(0)
            third = await session.subscribe_ticker(tickers=tickers)
        await settle(sim, session, drain)
        sid = first.sids[0]
        sent = sim.connections()[0].session.subscriptions[sid].seq
        assert second.sids and third.sids
        assert mismatched_books(sim, replay(drain.items), tickers) == []
    assert during_ack > 10  # frames of the first subscription arrived while the second was unanswered
    assert [m.seq for m in drain.items] == list(range(1, sent + 1))  # every one of them, in order
    assert first.stats.gaps == 0 and first.dropped == 0
    assert sum(isinstance(m, OrderbookSnapshotMessage) for m in drain.items) == len(tickers)


async def test_a_pause_never_blocks_a_command(sim: Simulator) -> None:
    # A BLOCK subscription that is full before its consumer starts pauses reading; a subscribe sent meanwhile
    # must still get its answer (reads resume while a command is in flight; the queue overshoots a little).
    tickers = sim.tickers
    async with KalshiWebSocket(auth=None, config=fast_config(sim, timeout=2.0)).connect() as session:
        books = await session.subscribe_orderbook_delta(tickers, maxsize=2)  # 6 snapshots: full at once
        assert books.queue.qsize() == len(tickers)
        sim.step(300)
        trades = await session.subscribe_trade()
        assert trades.sids
        drain = Drain(books)
        await settle(sim, session, drain)
        assert mismatched_books(sim, replay(drain.items), tickers) == []
    assert books.dropped == 0
    assert all(isinstance(m, OrderbookSnapshotMessage) for m in drain.items[: len(tickers)])
