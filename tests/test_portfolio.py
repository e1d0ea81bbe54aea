"""Portfolio against the simulator: REST snapshot, WebSocket updates, and reconciliation after a lost connection."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest

from kalshi.auth import KalshiAuth
from kalshi.errors import KalshiConnectionError
from kalshi.portfolio import Correction, OrderState, Portfolio
from kalshi.sim import Simulator, rest_controls
from kalshi.ws import KalshiWebSocket
from kalshi.ws.lifecycle import Closed, Disconnected, LifecycleListener
from simclient import eventually
from test_sim_rest_schema import add_quiet_market, rest_client

GTC = "good_till_canceled"
STP = "taker_at_cross"


@pytest.fixture
async def sim(kalshi_sim_factory: Callable[..., Simulator]) -> AsyncIterator[Simulator]:
    async with kalshi_sim_factory(seed=31, markets=3) as s:
        rest_controls(s).limits.enabled = False
        yield s


def engine_positions(sim: Simulator, account: str) -> dict[str, Decimal]:
    return {p.ticker: Decimal(p.position_units) / 100 for p in sim.engine.positions(account) if p.position_units != 0}


def engine_orders(sim: Simulator, account: str) -> dict[str, Decimal]:
    return {o.order_id: Decimal(o.remaining_units) / 100 for o in sim.engine.orders(account, "resting")}


def portfolio_positions(portfolio: Portfolio) -> dict[str, Decimal]:
    return {ticker: p.position for ticker, p in portfolio.positions.items()}


def portfolio_orders(portfolio: Portfolio) -> dict[str, Decimal]:
    return {order_id: o.remaining for order_id, o in portfolio.orders.items()}


def websocket(sim: Simulator, auth: KalshiAuth) -> KalshiWebSocket:
    return KalshiWebSocket(auth=auth, config=sim.config.with_options(retry_base_delay=0.02, retry_max_delay=0.1))


async def test_start_takes_the_rest_snapshot_then_follows_the_websocket(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    auth, account = sim.create_account_auth()
    _, seller = sim.create_account_auth()
    sim.place_order(account, quiet, "bid", 4500, 1000, client_order_id="pre")
    sim.place_order(seller, quiet, "ask", 4500, 250)
    async with rest_client(sim, auth) as rest, websocket(sim, auth).connect() as ws, Portfolio(rest, ws) as portfolio:
        assert portfolio_positions(portfolio) == {quiet: Decimal("2.5")}
        assert portfolio_orders(portfolio) == engine_orders(sim, account)
        assert portfolio.balance == Decimal(sim.engine.balance(account).available_micros) / 1_000_000
        assert portfolio.corrections == [] and portfolio.reconciliations == 1
        sim.place_order(seller, quiet, "ask", 4500, 300)
        await eventually(lambda: portfolio_positions(portfolio) == {quiet: Decimal("5.5")})
        await eventually(lambda: portfolio_orders(portfolio) == engine_orders(sim, account))
        assert portfolio.fills_seen == 1 and portfolio.reconciliations == 1  # the stream, not REST


async def test_websocket_killed_mid_fill_is_reconciled_over_rest(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    other = add_quiet_market(sim, "KXQUIET-26-T2")
    auth, account = sim.create_account_auth()
    _, seller = sim.create_account_auth()
    reported: list[list[Correction]] = []

    async def on_correction(corrections: list[Correction]) -> None:
        reported.append(corrections)

    async with rest_client(sim, auth) as rest, websocket(sim, auth).connect() as ws:
        portfolio = Portfolio(rest, ws, on_correction=on_correction)
        await portfolio.start()
        try:
            created = await rest.orders.create_order_v2(
                ticker=quiet, side="bid", count="10.00", price="0.5000", client_order_id="big", time_in_force=GTC,
                self_trade_prevention_type=STP,
            )  # fmt: skip
            small = await rest.orders.create_order_v2(
                ticker=other, side="bid", count="3.00", price="0.2000", client_order_id="small", time_in_force=GTC,
                self_trade_prevention_type=STP,
            )  # fmt: skip
            sim.place_order(seller, quiet, "ask", 5000, 100)
            await eventually(lambda: portfolio_positions(portfolio) == {quiet: Decimal(1)})
            await eventually(lambda: len(portfolio.orders) == 2)
            reconnects = ws.reconnects

            # Kill the socket one frame into the next fill: the rest of that fill's messages and all of the
            # following fill's are lost, and the private channels carry no seq to reveal it.
            sim.faults.drop_all(after_messages=1)
            sim.place_order(seller, quiet, "ask", 5000, 200)
            sim.place_order(seller, quiet, "ask", 5000, 300)
            sim.cancel_order(account, small.order_id)
            await eventually(lambda: portfolio.reconciliations >= 2, within=10)
            assert ws.reconnects > reconnects

            # The reconciled state is the simulator's account.
            assert portfolio_positions(portfolio) == engine_positions(sim, account) == {quiet: Decimal(6)}
            assert portfolio_orders(portfolio) == engine_orders(sim, account) == {created.order_id: Decimal(4)}
            assert portfolio.balance == Decimal(sim.engine.balance(account).available_micros) / 1_000_000
            # ...and the portfolio said what it corrected.
            corrections = {(c.kind, c.key): c for c in portfolio.corrections}
            position = corrections[("position", quiet)]
            assert position.remote == Decimal(6) and position.local in (Decimal(1), Decimal(3))
            changed = corrections[("order_changed", created.order_id)]
            assert changed.remote == Decimal(4) and changed.local in (Decimal(9), Decimal(7))
            gone = corrections[("order_gone", small.order_id)]
            assert gone.remote is None and isinstance(gone.local, OrderState) and gone.local.remaining == Decimal(3)
            assert reported and reported[-1] == portfolio.corrections[-len(reported[-1]) :]

            # After the reconnect the stream keeps the portfolio live again.
            sim.place_order(seller, quiet, "ask", 5000, 400)
            await eventually(lambda: portfolio_positions(portfolio) == {quiet: Decimal(10)})
            await eventually(lambda: portfolio.orders == {})
            assert portfolio.reconciliations == 2
        finally:
            await portfolio.stop()


async def test_reconcile_reports_nothing_when_in_sync(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    auth, account = sim.create_account_auth()
    async with rest_client(sim, auth) as rest, websocket(sim, auth).connect() as ws, Portfolio(rest, ws) as portfolio:
        await rest.orders.create_order_v2(
            ticker=quiet, side="ask", count="2.00", price="0.7000", client_order_id="a", time_in_force=GTC,
            self_trade_prevention_type=STP,
        )  # fmt: skip
        await eventually(lambda: portfolio_orders(portfolio) == engine_orders(sim, account))
        assert await portfolio.reconcile() == []
        assert portfolio.reconciliations == 2 and portfolio.corrections == []


class _GatedOrders:
    """``rest.orders`` whose resting-order listing waits for ``gate``: holds a reconciliation mid-way."""

    def __init__(self, inner: Any, gate: asyncio.Event, waiting: asyncio.Event) -> None:
        self._inner = inner
        self._gate = gate
        self._waiting = waiting

    async def iter_get_orders(self, **query: Any) -> AsyncIterator[Any]:
        self._waiting.set()
        await self._gate.wait()
        async for order in self._inner.iter_get_orders(**query):
            yield order


class _GatedRest:
    def __init__(self, rest: Any, gate: asyncio.Event, waiting: asyncio.Event) -> None:
        self.portfolio = rest.portfolio
        self.orders = _GatedOrders(rest.orders, gate, waiting)


async def test_updates_during_a_reconciliation_are_not_overwritten(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    auth, account = sim.create_account_auth()
    _, seller = sim.create_account_auth()
    sim.place_order(account, quiet, "bid", 6000, 500)
    gate, waiting = asyncio.Event(), asyncio.Event()
    gate.set()
    async with (
        rest_client(sim, auth) as rest,
        websocket(sim, auth).connect() as ws,
        Portfolio(_GatedRest(rest, gate, waiting), ws) as portfolio,
    ):
        gate.clear()
        waiting.clear()
        reconciling = asyncio.create_task(portfolio.reconcile())
        await eventually(waiting.is_set)  # positions are read; the order listing is held
        frames = ws.frames_received
        sim.place_order(seller, quiet, "ask", 6000, 200)  # fill, user_order, market_position
        await eventually(lambda: ws.frames_received >= frames + 3)
        for _ in range(50):
            await asyncio.sleep(0)  # let the stream consumers run
        gate.set()
        await reconciling
        await eventually(lambda: portfolio_positions(portfolio) == engine_positions(sim, account))
        await eventually(lambda: portfolio_orders(portfolio) == engine_orders(sim, account))
        assert portfolio_positions(portfolio) == {quiet: Decimal(2)}


async def test_reconciles_once_the_private_channels_flow_again(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    auth, account = sim.create_account_auth()
    _, seller = sim.create_account_auth()
    async with rest_client(sim, auth) as rest, websocket(sim, auth).connect() as ws, Portfolio(rest, ws) as portfolio:
        sim.faults.delay_acks(0.3)  # the three resubscriptions take about a second
        sim.faults.drop_all()
        await eventually(lambda: portfolio.reconciliations >= 2, within=10)
        # Reconciled: from here the stream alone must keep the portfolio current.
        sim.place_order(account, quiet, "bid", 5000, 100)
        sim.place_order(seller, quiet, "ask", 5000, 100)
        await eventually(lambda: portfolio_positions(portfolio) == {quiet: Decimal(1)})
        assert portfolio_positions(portfolio) == engine_positions(sim, account)
        sim.faults.delay_acks(0)


async def test_error_25_on_a_private_channel_resubscribes_and_reconciles(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    auth, account = sim.create_account_auth()
    _, seller = sim.create_account_auth()
    sim.place_order(account, quiet, "bid", 4500, 1000)
    async with rest_client(sim, auth) as rest, websocket(sim, auth).connect() as ws, Portfolio(rest, ws) as portfolio:
        [fills] = [sub for sub in ws.subscriptions if sub.channel == "fill"]
        old_sid = fills.sids[0]
        assert portfolio.reconciliations == 1
        # The server ends the fill subscription (buffer overflow): fills sent meanwhile would be lost.
        assert sim.faults.overflow(sid=old_sid)
        sim.place_order(seller, quiet, "ask", 4500, 200)
        await eventually(lambda: portfolio.reconciliations == 2 and portfolio.settled)
        assert fills.sids and fills.sids != [old_sid]  # re-subscribed on a new sid
        assert portfolio_positions(portfolio) == engine_positions(sim, account) == {quiet: Decimal(2)}


async def test_an_update_queued_before_a_reconciliation_does_not_undo_its_snapshot(sim: Simulator) -> None:
    # Updates still queued when a reconciliation starts are older than its snapshot. Applied on top of it after
    # a reconnect, with the updates that followed them lost, they would leave a cancelled order resting.
    quiet = add_quiet_market(sim)
    other = add_quiet_market(sim, "KXQUIET-26-T2")
    auth, account = sim.create_account_auth()
    _, seller = sim.create_account_auth()
    bid = sim.place_order(account, quiet, "bid", 6000, 1000)
    gate, waiting = asyncio.Event(), asyncio.Event()
    gate.set()
    async with (
        rest_client(sim, auth) as rest,
        websocket(sim, auth).connect() as ws,
        Portfolio(_GatedRest(rest, gate, waiting), ws) as portfolio,
    ):
        gate.clear()
        waiting.clear()
        held = asyncio.create_task(portfolio.reconcile())  # holds the stream updates back while it waits
        await eventually(waiting.is_set)
        frames = ws.frames_received
        sim.place_order(seller, quiet, "ask", 6000, 200)
        sim.place_order(seller, quiet, "ask", 6000, 300)  # two updates on each private channel, both held
        await eventually(lambda: ws.frames_received >= frames + 6)
        sim.faults.drop_all()
        sim.cancel_order(account, bid.order_id)  # lost with the connection
        # The reconciliation after the reconnect waits behind the held one (private state, observed only).
        await eventually(
            lambda: portfolio._tracker.due and portfolio._events is not None and not portfolio._events.backlog
        )
        gate.set()
        await held
        await eventually(lambda: portfolio.reconciliations == 3 and portfolio.settled)
        # A marker on each channel: once it is applied, everything queued before it has been too.
        marker = sim.place_order(account, other, "bid", 3000, 200)
        sim.place_order(seller, other, "ask", 3000, 100)
        await eventually(lambda: other in portfolio.positions)
        await eventually(lambda: portfolio_orders(portfolio).get(marker.order_id) == Decimal(1))
        assert portfolio_orders(portfolio) == engine_orders(sim, account) == {marker.order_id: Decimal(1)}
        assert portfolio_positions(portfolio) == engine_positions(sim, account)


async def next_event(listener: LifecycleListener, kind: type[Any]) -> Any:
    async with asyncio.timeout(10):
        async for event in listener:
            if isinstance(event, kind):
                return event
    raise AssertionError(f"the session ended without {kind.__name__}")


async def test_a_waiter_is_woken_by_a_lost_connection_and_by_the_reconciliation_after_it(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    auth, account = sim.create_account_auth()
    _, seller = sim.create_account_auth()
    sim.place_order(account, quiet, "bid", 5000, 1000)
    patient = KalshiWebSocket(
        auth=auth, config=sim.config.with_options(retry_base_delay=0.02, retry_max_delay=0.1, ws_max_retries=10_000)
    )
    async with rest_client(sim, auth) as rest, patient.connect() as ws, Portfolio(rest, ws) as portfolio:
        assert portfolio.settled
        events = ws.lifecycle_events()
        sim.faults.refuse_handshakes(503, duration=600, now=time.monotonic())  # stays down until told
        waiter = asyncio.create_task(portfolio.wait_for_change())
        sim.faults.drop_all()
        sim.place_order(seller, quiet, "ask", 5000, 300)  # a fill the stream never delivers
        await next_event(events, Disconnected)
        await eventually(waiter.done, what="wait_for_change() returned when the connection was lost")
        await waiter
        assert not portfolio.settled  # the state is stale for as long as the connection is down
        assert portfolio_positions(portfolio) == {}

        sim.faults.stop_refusing()
        async with asyncio.timeout(10):
            while not portfolio.settled:  # what a trader's loop does: wake on each change, trust a settled state
                await portfolio.wait_for_change()
        assert portfolio_positions(portfolio) == engine_positions(sim, account) == {quiet: Decimal(3)}
        assert portfolio.fills_seen == 0  # woken by the reconciliation, not by a stream update


async def test_a_session_that_gives_up_ends_waiting_and_is_never_settled(sim: Simulator) -> None:
    auth, _ = sim.create_account_auth()
    hopeless = KalshiWebSocket(auth=auth, config=sim.config.with_options(retry_base_delay=0.01, ws_max_retries=1))
    async with rest_client(sim, auth) as rest, hopeless.connect() as ws, Portfolio(rest, ws) as portfolio:
        events = ws.lifecycle_events()
        sim.faults.refuse_handshakes(503, duration=600, now=time.monotonic())
        sim.faults.drop_all()
        with pytest.raises(KalshiConnectionError):
            async with asyncio.timeout(10):
                while True:  # woken when the connection drops, then ended when the session gives up
                    await portfolio.wait_for_change()
        assert isinstance(await next_event(events, Closed), Closed)
        assert not portfolio.settled
        with pytest.raises(KalshiConnectionError):
            await portfolio.wait_for_change()  # at once, not for ever


async def test_a_failing_on_correction_callback_does_not_stop_later_reconciliations(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    auth, account = sim.create_account_auth()
    _, seller = sim.create_account_auth()
    sim.place_order(account, quiet, "bid", 5000, 1000)
    calls: list[list[Correction]] = []

    async def on_correction(corrections: list[Correction]) -> None:
        calls.append(corrections)
        raise RuntimeError("a bug in the trader's callback")

    async with (
        rest_client(sim, auth) as rest,
        websocket(sim, auth).connect() as ws,
        Portfolio(rest, ws, on_correction=on_correction) as portfolio,
    ):
        for expected in (Decimal(1), Decimal(3)):
            sim.faults.drop_all()
            sim.place_order(seller, quiet, "ask", 5000, 100 if expected == 1 else 200)  # lost with the connection
            await eventually(
                lambda want=expected: portfolio_positions(portfolio) == {quiet: want} and portfolio.settled
            )
        assert len(calls) == 2 and portfolio.reconciliations == 3


async def test_a_failed_reconciliation_is_retried_and_the_state_is_unsettled_meanwhile(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    auth, account = sim.create_account_auth()
    _, seller = sim.create_account_auth()
    sim.place_order(account, quiet, "bid", 5000, 1000)
    faults = rest_controls(sim).faults
    async with (
        rest_client(sim, auth, max_retries=0) as rest,
        websocket(sim, auth).connect() as ws,
        Portfolio(rest, ws) as portfolio,
    ):
        faults.fail_next(2, status=503, operation_id="GetPositions")
        sim.faults.drop_all()
        sim.place_order(seller, quiet, "ask", 5000, 200)  # lost with the connection
        await eventually(lambda: faults.pending == 1, what="the first reconciliation failed")
        assert not portfolio.settled and portfolio_positions(portfolio) == {}  # stale, and saying so
        await eventually(lambda: portfolio.settled, within=10, what="retried until it succeeded")
        assert portfolio_positions(portfolio) == engine_positions(sim, account) == {quiet: Decimal(2)}
        assert faults.pending == 0 and portfolio.reconciliations == 2


def test_an_order_update_that_leaves_fields_out_keeps_what_was_known() -> None:
    from kalshi.ws.models import decode_message

    portfolio = Portfolio(None, KalshiWebSocket(None))
    full = (
        b'{"type":"user_order","sid":1,"msg":{"order_id":"o1","ticker":"M","client_order_id":"c1","status":"resting",'
        b'"book_side":"bid","yes_price_dollars":"0.4200","remaining_count_fp":"5.00"}}'
    )
    partial = b'{"type":"user_order","sid":1,"msg":{"order_id":"o1","ticker":"M","status":"resting"}}'
    for frame in (full, partial):
        portfolio._apply_order(decode_message(frame), False)  # type: ignore[arg-type]
    order = portfolio.orders["o1"]
    # Before, the partial update left it resting with 0 remaining and no price: a trader sizing from it was wrong.
    assert order.remaining == Decimal("5.00") and order.yes_price == Decimal("0.42")
    assert (order.book_side, order.client_order_id, order.status) == ("bid", "c1", "resting")


def test_fills_without_a_trade_id_are_not_taken_for_repeats_of_each_other() -> None:
    from kalshi.ws.models import decode_message

    portfolio = Portfolio(None, KalshiWebSocket(None))
    anonymous = b'{"type":"fill","sid":2,"msg":{"market_ticker":"M","side":"yes","post_position_fp":"%s"}}'
    identified = b'{"type":"fill","sid":2,"msg":{"trade_id":"t1","order_id":"o1","market_ticker":"M","side":"yes"}}'
    for frame in (anonymous % b"1.00", anonymous % b"2.00", identified, identified):
        portfolio._apply_fill(decode_message(frame), False)  # type: ignore[arg-type]
    assert portfolio.fills_seen == 3  # two fills without ids, and one fill delivered twice
    assert portfolio.positions["M"].position == Decimal("2.00")


async def test_a_primary_portfolio_leaves_the_subaccounts_orders_and_positions_out(sim: Simulator) -> None:
    # GET /portfolio/orders without a subaccount lists every subaccount's orders, and the owner's private
    # channels carry its subaccounts' fills, orders and positions (tagged with the number): a portfolio of the
    # primary account must count neither as its own.
    quiet, other = add_quiet_market(sim), add_quiet_market(sim, "KXQUIET-26-T2")
    auth, account = sim.create_account_auth()
    _, seller = sim.create_account_auth()

    def order(ticker: str, price: str, count: str, **extra: object) -> dict[str, object]:
        return {
            "ticker": ticker, "side": "bid", "price": price, "count": count, "client_order_id": str(uuid.uuid4()),
            "time_in_force": GTC, "self_trade_prevention_type": STP, **extra,
        }  # fmt: skip

    async with rest_client(sim, auth) as rest, websocket(sim, auth).connect() as ws:
        number = (await rest.portfolio.create_subaccount()).subaccount_number
        await rest.portfolio.apply_subaccount_transfer(
            client_transfer_id=str(uuid.uuid4()), from_subaccount=0, to_subaccount=number, amount_cents=10_000
        )
        await rest.orders.create_order_v2(**order(quiet, "0.1000", "5.00", subaccount=number))
        async with Portfolio(rest, ws) as portfolio:
            assert portfolio.orders == {}  # the REST snapshot: the subaccount's resting order is not ours
            await rest.orders.create_order_v2(**order(other, "0.3500", "3.00", subaccount=number))
            sim.place_order(seller, other, "ask", 3500, 100)  # the subaccount buys 1 of `other`
            # Then the primary's own updates, after the subaccount's on every channel.
            mine = await rest.orders.create_order_v2(**order(quiet, "0.3000", "2.00"))
            sim.place_order(seller, quiet, "ask", 3000, 100)
            await eventually(lambda: portfolio_orders(portfolio).get(mine.order_id) == Decimal(1))
            await eventually(lambda: portfolio.positions.get(quiet) is not None)
            assert portfolio_orders(portfolio) == engine_orders(sim, account) == {mine.order_id: Decimal(1)}
            assert portfolio_positions(portfolio) == engine_positions(sim, account) == {quiet: Decimal(1)}
            assert portfolio.fills_seen == 1
            assert await portfolio.reconcile() == []  # REST agrees: nothing to correct
            assert portfolio.balance == Decimal(sim.engine.balance(account).available_micros) / 1_000_000
