"""Lifecycle events against the simulator: what a consumer sees across a dropped connection, a seq gap repair,
a server-ended subscription, and the end of the session; as an async iterator and as a hook."""

from __future__ import annotations

import asyncio
import random
import time

from conftest import eventually, fast_config
from kalshi.sim import Simulator
from kalshi.ws import KalshiWebSocket, OverflowStrategy
from kalshi.ws.codes import ClientErrorCode
from kalshi.ws.lifecycle import (
    Closed,
    Connected,
    Disconnected,
    Gap,
    LifecycleEvent,
    LifecycleListener,
    Reconnected,
    Repaired,
    Resubscribed,
)
from ws_client_helpers import Drain, Recorder, settle


async def next_of(events: LifecycleListener, kind: type[LifecycleEvent], seen: list[LifecycleEvent]) -> LifecycleEvent:
    """Read events (keeping them in ``seen``) until one of ``kind``, bounded."""
    async with asyncio.timeout(5.0):
        async for event in events:
            seen.append(event)
            if isinstance(event, kind):
                return event
    raise AssertionError(f"the events ended before a {kind.__name__}: {seen}")


async def test_events_across_a_dropped_connection(sim: Simulator) -> None:
    tickers = sim.tickers[:3]
    hooked: list[LifecycleEvent] = []
    ws = KalshiWebSocket(config=fast_config(sim), rng=random.Random(3))

    @ws.on_lifecycle
    async def keep(event: LifecycleEvent) -> None:
        hooked.append(event)

    events = ws.lifecycle_events()
    seen: list[LifecycleEvent] = []
    async with ws.connect() as session:
        connected = await next_of(events, Connected, seen)
        assert isinstance(connected, Connected) and connected.url == sim.config.ws_url
        books = await session.orderbook(tickers)
        ticks = await session.subscribe_ticker(tickers=tickers)
        drains = [Drain(books), Drain(ticks)]
        sim.step(50)
        await settle(sim, session, *drains)

        sim.faults.drop()
        gone = await next_of(events, Disconnected, seen)
        assert isinstance(gone, Disconnected) and gone.will_reconnect and gone.cause == "connection_lost"
        back = await next_of(events, Reconnected, seen)
        assert isinstance(back, Reconnected) and back.attempt >= 1 and back.downtime_s >= 0
        first = await next_of(events, Resubscribed, seen)
        second = await next_of(events, Resubscribed, seen)
        assert isinstance(first, Resubscribed) and isinstance(second, Resubscribed)
        assert {first.channel, second.channel} == {"orderbook_delta", "ticker"}
        assert {first.sids, second.sids} == {tuple(books.sids), tuple(ticks.sids)}
        # The books were declared untrustworthy at the reconnect and each market reported repaired after.
        gaps = [e for e in seen if isinstance(e, Gap)]
        assert [(g.channel, g.reason, set(g.markets)) for g in gaps] == [("orderbook_delta", "reconnect", set(tickers))]
        # Snapshots (and so repairs) may arrive before the Resubscribed of their own subscription.
        repaired = {m for e in seen if isinstance(e, Repaired) for m in e.markets}
        while repaired != set(tickers):
            event = await next_of(events, Repaired, seen)
            assert isinstance(event, Repaired) and event.channel == "orderbook_delta"
            repaired.update(event.markets)
        assert seen.index(gaps[0]) < min(i for i, e in enumerate(seen) if isinstance(e, Repaired))
        for drain in drains:
            await drain.stop()
    closed = await next_of(events, Closed, seen)
    assert isinstance(closed, Closed) and closed.cause == "client_close" and closed.error is None
    assert [type(e) for e in hooked] == [type(e) for e in seen]  # the hook saw the same events, in order
    assert [e async for e in events] == []  # the iterator ended with Closed


async def test_seq_gap_publishes_gap_then_repaired(sim: Simulator) -> None:
    ticker = sim.tickers[0]
    ws = KalshiWebSocket(config=fast_config(sim))
    events = ws.lifecycle_events()
    seen: list[LifecycleEvent] = []
    async with ws.connect() as session:
        books = await session.orderbook([ticker])
        drain = Drain(books)
        sim.step(30)
        await settle(sim, session, drain)
        sim.faults.skip_seq()

        def skip_taken() -> bool:
            # The skip lands on the next sequenced frame: move the market until one was sent (a few steps may
            # touch no book of ours; the engine's activity depends on the clock).
            if sim.faults.pending():
                sim.step(10)
                return False
            return True

        await eventually(skip_taken, what="a book frame took the skipped seq")
        sim.step(30)
        gap = await next_of(events, Gap, seen)
        assert isinstance(gap, Gap) and gap.reason == "seq_gap" and gap.sid == books.sids[0]
        assert gap.expected is not None and gap.received is not None and gap.received > gap.expected
        repaired = await next_of(events, Repaired, seen)
        assert isinstance(repaired, Repaired) and repaired.markets == (ticker,)
        await drain.stop()


async def test_server_ended_subscription_is_a_gap_then_resubscribed(sim: Simulator) -> None:
    ws = KalshiWebSocket(config=fast_config(sim))
    events = ws.lifecycle_events()
    seen: list[LifecycleEvent] = []
    async with ws.connect() as session:
        trades = await session.subscribe_trade()
        old_sid = trades.sids[0]
        assert sim.faults.overflow(sid=old_sid)
        gap = await next_of(events, Gap, seen)
        assert isinstance(gap, Gap) and (gap.channel, gap.sid, gap.reason) == ("trade", old_sid, "subscription_ended")
        again = await next_of(events, Resubscribed, seen)
        assert isinstance(again, Resubscribed) and again.channel == "trade" and again.sids == tuple(trades.sids)
        assert trades.sids != [old_sid]


async def test_a_failing_lifecycle_hook_reaches_on_error(sim: Simulator) -> None:
    recorder = Recorder()
    ws = KalshiWebSocket(config=fast_config(sim), on_error=recorder.on_error)

    @ws.on_lifecycle
    async def broken(event: LifecycleEvent) -> None:
        raise ValueError("boom")

    async with ws.connect():
        error = await recorder.wait_error(ClientErrorCode.CALLBACK)
        assert "boom" in error.msg.msg and "broken" in error.msg.msg


async def test_giving_up_publishes_closed_with_the_error(sim: Simulator) -> None:
    ws = KalshiWebSocket(config=fast_config(sim, ws_max_retries=1))
    events = ws.lifecycle_events()
    seen: list[LifecycleEvent] = []
    async with ws.connect() as session:
        await session.subscribe_ticker()
        await sim.stop()
        closed = await next_of(events, Closed, seen)
        assert isinstance(closed, Closed) and closed.cause == "reconnect_failed" and closed.error is not None
        await eventually(lambda: session.state.value == "closed")
    assert [type(e) for e in seen[:2]] == [Connected, Disconnected]


async def test_subscribing_while_reconnecting_is_done_by_the_reconnect(sim: Simulator) -> None:
    ticker = sim.tickers[0]
    ws = KalshiWebSocket(config=fast_config(sim, ws_max_retries=50, retry_max_delay=0.02))
    events = ws.lifecycle_events()
    seen: list[LifecycleEvent] = []
    async with ws.connect() as session:
        await session.subscribe_trade()
        sim.faults.refuse_handshakes(503, duration=30.0, now=time.monotonic())
        sim.faults.drop()
        await next_of(events, Disconnected, seen)
        ticks = await session.subscribe_ticker(tickers=[ticker], overflow=OverflowStrategy.BLOCK)
        assert ticks.active and ticks.sids == []  # kept: subscribed once a connection is back
        sim.faults.stop_refusing()
        await next_of(events, Reconnected, seen)
        resubscribed = {(await next_of(events, Resubscribed, seen)).channel for _ in range(2)}  # type: ignore[attr-defined]
        assert resubscribed == {"trade", "ticker"} and len(ticks.sids) == 1
        drain = Drain(ticks)
        sim.step(300)
        await settle(sim, session, drain)
        assert drain.items and all(m.msg.market_ticker == ticker for m in drain.items)
        await drain.stop()
