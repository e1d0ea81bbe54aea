"""KalshiWebSocket connection lifecycle against the simulator: reconnect and resubscribe, auth failures without
retry storms, giving up after ws_max_retries, heartbeats both ways, and a shutdown that leaves no task behind."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import pytest

from kalshi.auth import KalshiAuth, generate_private_key_pem
from kalshi.errors import KalshiConnectionError, KalshiHandshakeError
from kalshi.sim import Simulator
from kalshi.ws import ConnectionState, KalshiWebSocket
from kalshi.ws.models import OrderbookSnapshotMessage, TickerMessage
from ws_client_helpers import Drain, Recorder, fast_config, mismatched_books, replay, settle, until

S = ConnectionState


pytestmark = pytest.mark.sim(seed=8, markets=6)  # the shared `sim` fixture of conftest.py (open access, no lifecycle)


async def wait_reconnected(session: KalshiWebSocket, count: int) -> None:
    await until(lambda: session.reconnects >= count and session.state is S.STREAMING)


# -- reconnect ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("clean", [False, True])
async def test_dropped_connections_reconnect_resubscribe_and_keep_iterators(sim: Simulator, clean: bool) -> None:
    tickers = sim.tickers[:4]
    recorder = Recorder()
    auth, account = sim.create_account_auth()
    ws = KalshiWebSocket(
        auth=auth, config=fast_config(sim), on_state_change=recorder.on_state_change, rng=random.Random(1)
    )
    async with ws.connect() as session:
        raw = await session.subscribe_orderbook_delta(tickers)
        views = await session.orderbook(tickers[:2])
        ticks = await session.subscribe_ticker(tickers=tickers)
        orders = await session.subscribe_user_orders()
        drains = [Drain(raw), Drain(views), Drain(ticks), Drain(orders)]
        placed = []
        for drop in range(1, 4):
            sim.step(150)
            await settle(sim, session, *drains)
            old_connection = sim.connection_ids()[0]
            sim.faults.drop(old_connection, clean=clean)
            await wait_reconnected(session, drop)
            assert sim.connection_ids() == [old_connection + 1]
            sim.step(150)
            placed.append(sim.place_order(account, tickers[0], "bid", 100 * drop, 100).order_id)
            await settle(sim, session, *drains)
            assert mismatched_books(sim, replay(drains[0].items), tickers) == []
            assert mismatched_books(sim, session.books, tickers[:2]) == []  # kept by orderbook()
            assert mismatched_books(sim, {v.market_ticker: v for v in drains[1].items}, tickers[:2]) == []
        assert session.reconnects == 3 and sim.faults.counts["drop"] == 3
        assert raw.stats.resubscribes == views.stats.resubscribes == ticks.stats.resubscribes == 3
        assert not any(d.finished.is_set() for d in drains)  # every iterator is still alive
        listed = await session.list_subscriptions()
        assert sorted(sid for _, sid in listed) == sorted([*raw.sids, *views.sids, *ticks.sids, *orders.sids])
    snapshots = [m for m in drains[0].items if isinstance(m, OrderbookSnapshotMessage)]
    assert len(snapshots) == 4 * len(tickers)  # every book re-bootstrapped from a fresh snapshot per connection
    # The order of each round reported on the private channel, over three different connections.
    assert {m.msg.order_id for m in drains[3].items} == set(placed) and len(placed) == 3
    assert all(isinstance(m, TickerMessage) for m in drains[2].items)
    assert all(d.finished.is_set() and d.error is None for d in drains)
    assert recorder.states[:3] == [S.CONNECTING, S.CONNECTED, S.STREAMING]
    cycle = [S.RECONNECTING, S.CONNECTING, S.CONNECTED, S.STREAMING]
    assert recorder.states[3:15] == cycle * 3
    assert recorder.states[-1] is S.CLOSED


async def test_unsigned_401_on_connect_is_not_retried(kalshi_sim_factory: Callable[..., Simulator]) -> None:
    async with kalshi_sim_factory(seed=1, markets=2) as sim:
        private_pem, _ = generate_private_key_pem("ed25519")
        stranger = KalshiAuth.from_pem("unknown-key", private_pem)
        recorder = Recorder()
        ws = KalshiWebSocket(auth=stranger, config=fast_config(sim), on_state_change=recorder.on_state_change)
        with pytest.raises(KalshiHandshakeError) as refused:
            async with ws.connect():
                raise AssertionError("must not connect")
        assert refused.value.status == 401
        assert "(unknown_key: unknown API key id" in str(refused.value)  # the server's reason, then what to do
        assert sum(sim.rejections.values()) == 1  # one attempt, no retry storm
        assert ws.state is S.CLOSED


async def test_401_while_reconnecting_ends_the_session_without_retrying(sim: Simulator) -> None:
    recorder = Recorder()
    ws = KalshiWebSocket(auth=None, config=fast_config(sim, ws_max_retries=10), on_error=recorder.on_error)
    async with ws.connect() as session:
        stream = await session.subscribe_ticker(tickers=sim.tickers[:2])
        drain = Drain(stream)
        runner = asyncio.create_task(session.run_forever())
        sim.faults.refuse_handshakes(401, 10.0, now=time.monotonic())
        sim.faults.drop(sim.connection_ids()[0])
        await asyncio.wait_for(drain.finished.wait(), 5)  # the iterator ends instead of hanging
        with pytest.raises(KalshiHandshakeError):
            await asyncio.wait_for(runner, 5)
        assert session.state is S.CLOSED
    assert sim.faults.counts["refuse"] == 1
    assert drain.error is None


async def test_giving_up_after_ws_max_retries_ends_every_iterator(sim: Simulator) -> None:
    recorder = Recorder()
    config = fast_config(sim, ws_max_retries=4)
    ws = KalshiWebSocket(auth=None, config=config, on_state_change=recorder.on_state_change)
    async with ws.connect() as session:
        drains = [
            Drain(await session.subscribe_ticker(tickers=sim.tickers[:2])),
            Drain(await session.subscribe_trade()),
        ]
        runner = asyncio.create_task(session.run_forever())
        sim.faults.refuse_handshakes(503, 30.0, now=time.monotonic())
        sim.faults.drop(sim.connection_ids()[0])
        for drain in drains:
            await asyncio.wait_for(drain.finished.wait(), 5)
        with pytest.raises(KalshiConnectionError):
            await asyncio.wait_for(runner, 5)
        assert session.state is S.CLOSED
    assert sim.faults.counts["refuse"] == 4 + 1  # the attempt after the drop plus ws_max_retries retries
    assert S.RECONNECTING in recorder.states and recorder.states[-1] is S.CLOSED


async def test_transient_refusals_are_retried_until_the_server_accepts(sim: Simulator) -> None:
    async with KalshiWebSocket(auth=None, config=fast_config(sim, ws_max_retries=20)).connect() as session:
        stream = await session.subscribe_orderbook_delta(sim.tickers[:2])
        drain = Drain(stream)
        sim.faults.refuse_handshakes(503, 0.15, now=time.monotonic())
        sim.faults.drop(sim.connection_ids()[0])
        await wait_reconnected(session, 1)
        sim.step(200)
        await settle(sim, session, drain)
        assert mismatched_books(sim, replay(drain.items), sim.tickers[:2]) == []
    assert sim.faults.counts["refuse"] >= 1


# -- heartbeat ------------------------------------------------------------------------------------------------


async def test_a_stalled_link_is_detected_by_heartbeat(sim: Simulator) -> None:
    recorder = Recorder()
    config = fast_config(sim, heartbeat_interval=0.05)
    ws = KalshiWebSocket(auth=None, config=config, heartbeat_timeout=0.2, on_state_change=recorder.on_state_change)
    async with ws.connect() as session:
        stream = await session.subscribe_orderbook_delta(sim.tickers[:3])
        drain = Drain(stream)
        sim.step(100)
        await settle(sim, session, drain)
        # The server goes silent: no data, no pings, no pongs; the TCP connection itself stays up.
        sim.faults.ignore_pings(True)
        sim.faults.stall(30.0, connection=sim.connection_ids()[0])
        # The TCP connection stays up: only our ping going unanswered can notice (heartbeat_timeout=0.2 s).
        await recorder.wait_state(S.RECONNECTING)
        sim.faults.ignore_pings(False)
        await wait_reconnected(session, 1)
        sim.step(100)
        await settle(sim, session, drain)
        assert mismatched_books(sim, replay(drain.items), sim.tickers[:3]) == []
    assert sim.faults.counts["ignore_ping"] >= 1


async def test_server_pings_are_answered(kalshi_sim_factory: Callable[..., Simulator]) -> None:
    sim = kalshi_sim_factory(seed=2, markets=2, open_access=True, ping_interval=0.05, ping_timeout=0.2)
    async with sim, KalshiWebSocket(auth=None, config=fast_config(sim)).connect() as session:
        await session.subscribe_ticker(tickers=sim.tickers)
        connection = sim.connections()[0]
        await until(lambda: connection.pongs_received >= 5)
        assert session.reconnects == 0 and not connection.closed


# -- shutdown -------------------------------------------------------------------------------------------------


async def test_shutdown_leaves_no_pending_task(kalshi_sim_factory: Callable[..., Simulator]) -> None:
    async with kalshi_sim_factory(seed=3, markets=4, open_access=True) as sim:
        recorder = Recorder()
        ws = KalshiWebSocket(
            auth=None, config=fast_config(sim), on_state_change=recorder.on_state_change, on_error=recorder.on_error
        )
        seen: list[object] = []

        @ws.on("trade")
        async def on_trade(msg: object) -> None:
            seen.append(msg)
            await asyncio.sleep(1)  # a slow callback still running at exit

        async with ws.connect() as session:
            blocked = await session.subscribe_orderbook_delta(sim.tickers, maxsize=50)
            await anext(aiter(blocked))  # consumed once, then left to fill up: the socket pauses (BLOCK)
            trades = await session.subscribe_trade()
            views = await session.orderbook(sim.tickers[0])
            waiter = asyncio.create_task(session.wait_for_book("NOT-A-MARKET"))
            sim.step(500)
            await until(lambda: bool(seen) and session.reading_paused)
        assert session.state is S.CLOSED
        with pytest.raises(KalshiConnectionError, match="closed"):
            await waiter
        async with asyncio.timeout(1):
            remaining = [view async for view in views]  # iterators end after their queued messages
        assert all(view.market_ticker == sim.tickers[0] for view in remaining)
        assert trades.queue.closed and blocked.queue.closed
        assert seen
    leftover = asyncio.all_tasks() - {asyncio.current_task()}
    assert leftover == set()
