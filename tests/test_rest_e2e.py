"""Our REST client against the simulator over loopback, with the WebSocket client watching the private channels.

Every response is validated against openapi.yaml on its way in (``ValidatingTransport``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest

from kalshi.auth import KalshiAuth, generate_private_key_pem
from kalshi.errors import (
    KalshiAPIError,
    KalshiAuthError,
    KalshiBadRequestError,
    KalshiConflictError,
    KalshiNotFoundError,
    KalshiRateLimitError,
    KalshiServerError,
    KalshiUnauthorizedError,
)
from kalshi.rest import BucketLimit, KalshiClient, RateLimiter
from kalshi.rest.models import BatchCancelOrdersV2RequestOrdersItem as CancelItem
from kalshi.rest.models import CreateOrderV2Request
from kalshi.sim import Simulator, rest_controls
from kalshi.sim.rest.limits import RateLimits
from kalshi.ws import KalshiWebSocket
from kalshi.ws.subscription import Subscription
from test_sim_rest_schema import add_quiet_market, rest_client

T = TypeVar("T")
GTC = "good_till_canceled"
STP = "taker_at_cross"


@pytest.fixture
async def sim(kalshi_sim_factory: Callable[..., Simulator]) -> AsyncIterator[Simulator]:
    async with kalshi_sim_factory(seed=21, markets=4) as s:
        rest_controls(s).limits.enabled = False
        yield s


async def next_of(sub: Subscription[T], within: float = 5.0) -> T:
    async with asyncio.timeout(within):
        return await anext(sub)


def order(ticker: str, side: str, price: str, count: str, cid: str | None) -> CreateOrderV2Request:
    return CreateOrderV2Request(
        ticker=ticker,
        side=side,
        price=price,
        count=count,
        client_order_id=cid,
        time_in_force=GTC,
        self_trade_prevention_type=STP,
    )


class FakeTime:
    """One clock for the server's buckets and the client's limiter; the client's sleep advances it."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# -- order lifecycle --------------------------------------------------------------------------------------


async def test_order_lifecycle_reaches_the_private_channels(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    auth, account = sim.create_account_auth()
    _, seller = sim.create_account_auth()
    ws = KalshiWebSocket(auth=auth, config=sim.config)
    async with rest_client(sim, auth) as client, ws.connect() as session:
        fills = await session.subscribe_fill()
        orders = await session.subscribe_user_orders()
        positions = await session.subscribe_market_positions()

        created = await client.orders.create_order_v2(
            ticker=quiet, side="bid", count="10.00", price="0.4000", client_order_id="life-1", time_in_force=GTC,
            self_trade_prevention_type=STP,
        )  # fmt: skip
        assert (created.fill_count, created.remaining_count) == ("0.00", "10.00")
        resting = (await next_of(orders)).msg
        assert (resting.order_id, resting.status, resting.remaining_count) == (created.order_id, "resting", 10)

        # Simulated flow: another account sells 4 into the bid.
        sim.place_order(seller, quiet, "ask", 4000, 400)
        fill = (await next_of(fills)).msg
        assert (fill.order_id, fill.count, fill.yes_price, fill.is_taker) == (
            created.order_id, 4, Decimal("0.4"), False,
        )  # fmt: skip
        assert fill.post_position == 4 and fill.client_order_id == "life-1"
        partial = (await next_of(orders)).msg
        assert (partial.fill_count, partial.remaining_count) == (4, 6)
        position = (await next_of(positions)).msg
        assert (position.market_ticker, position.position) == (quiet, 4)

        amended = await client.orders.amend_order_v2(
            created.order_id, ticker=quiet, side="bid", price="0.4100", count="8.00"
        )
        assert (amended.fill_count, amended.remaining_count) == ("4.00", "4.00")
        moved = (await next_of(orders)).msg
        assert (moved.yes_price, moved.remaining_count, moved.last_update_reason) == (Decimal("0.41"), 4, "Amend")

        cancelled = await client.orders.cancel_order_v2(created.order_id)
        assert cancelled.reduced_by == "4.00"
        gone = (await next_of(orders)).msg
        assert (gone.status, gone.remaining_count) == ("canceled", 0)

        # REST and the engine agree on the end state.
        rest_order = (await client.orders.get_order(created.order_id)).order
        engine_order = sim.engine.order(created.order_id)
        assert rest_order.status == engine_order.status == "canceled"
        assert Decimal(rest_order.fill_count_fp) * 100 == engine_order.fill_units == 400
        rest_positions = (await client.portfolio.get_positions()).market_positions
        assert [(p.ticker, p.position_fp) for p in rest_positions] == [(quiet, "4.00")]
        assert sim.engine.position(account, quiet).position_units == 400


async def test_batch_create_and_cancel(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    auth, account = sim.create_account_auth()
    ws = KalshiWebSocket(auth=auth, config=sim.config)
    async with rest_client(sim, auth) as client, ws.connect() as session:
        orders = await session.subscribe_user_orders()
        batch = await client.orders.batch_create_orders_v2(
            orders=[
                order(quiet, "bid", "0.2000", "1.00", "b-1"),
                order(quiet, "bid", "0.2050", "1.00", "b-2"),  # off the cent grid
                order(quiet, "ask", "0.8000", "2.50", "b-3"),
            ]
        )
        ok = [item for item in batch.orders if item.error is None]
        failed = [item for item in batch.orders if item.error is not None]
        assert [item.client_order_id for item in ok] == ["b-1", "b-3"]
        assert failed[0].client_order_id == "b-2" and failed[0].error is not None
        assert failed[0].error.code == "invalid_price"
        seen = {(await next_of(orders)).msg.client_order_id for _ in range(2)}
        assert seen == {"b-1", "b-3"}
        ids = [item.order_id for item in ok if item.order_id is not None]
        resting = {o.order_id for o in sim.engine.orders(account, "resting")}
        assert resting == set(ids)

        result = await client.orders.batch_cancel_orders_v2(
            orders=[CancelItem(order_id=ids[0]), CancelItem(order_id="no-such-order"), CancelItem(order_id=ids[1])]
        )
        assert [(r.order_id, r.reduced_by) for r in result.orders] == [
            (ids[0], "1.00"), ("no-such-order", "0.00"), (ids[1], "2.50"),
        ]  # fmt: skip
        assert result.orders[1].error is not None and result.orders[1].error.code == "order_not_found"
        assert sim.engine.orders(account, "resting") == []
        assert {(await next_of(orders)).msg.status for _ in range(2)} == {"canceled"}


# -- pagination -------------------------------------------------------------------------------------------


async def test_iterators_follow_cursors_over_several_pages(sim: Simulator) -> None:
    sim.step(300)
    quiet = add_quiet_market(sim)
    auth, account = sim.create_account_auth()
    async with rest_client(sim, auth) as client:
        for i in range(7):
            await client.orders.create_order_v2(
                ticker=quiet, side="bid", count="1.00", price=f"0.{10 + i}00", client_order_id=f"p-{i}",
                time_in_force=GTC, self_trade_prevention_type=STP,
            )  # fmt: skip
        listed = [o.order_id async for o in client.orders.iter_get_orders(limit=2)]
        assert listed == [o.order_id for o in reversed(sim.engine.orders(account))]
        assert rest_controls(sim).calls["GetOrders"] == 4
        tickers = [m.ticker async for m in client.markets.iter_get_markets(limit=2)]
        assert tickers == [m.ticker for m in sim.engine.markets()]
        trade_ids = [t.trade_id async for t in client.markets.iter_get_trades(limit=25)]
        everything = [t for m in sim.engine.markets() for t in sim.engine.trades(m.ticker)]
        assert len(trade_ids) == len(set(trade_ids)) == len(everything) > 25
        assert rest_controls(sim).calls["GetTrades"] == -(-len(everything) // 25)
        first_two = [o.order_id async for o in client.orders.iter_get_orders(limit=2, max_pages=1)]
        assert first_two == listed[:2]


# -- rate limits and retries ------------------------------------------------------------------------------


async def test_429_is_honoured_with_retry_after(sim: Simulator) -> None:
    fake = FakeTime()
    controls = rest_controls(sim)
    controls.limits = RateLimits(clock=fake)
    controls.limits.set_limits(read=BucketLimit(10, 10))  # one read per second
    auth, _ = sim.create_account_auth()
    async with rest_client(sim, auth, sleep=fake.sleep) as client:
        for _ in range(3):
            await client.portfolio.get_balance()
        assert fake.slept == [1.0, 1.0]  # the server's Retry-After, twice
        assert controls.calls["GetBalance"] == 5 and controls.limits.rejected == 2
    # Out of retries: the error surfaces with the server's Retry-After.
    fake.now += 1.0
    async with rest_client(sim, auth, sleep=fake.sleep, max_retries=0) as client:
        await client.portfolio.get_balance()
        with pytest.raises(KalshiRateLimitError) as info:
            await client.portfolio.get_balance()
        assert info.value.retry_after == 1.0 and "rate limit" in str(info.value)


async def test_client_throttles_itself_after_loading_the_limits(sim: Simulator) -> None:
    fake = FakeTime()
    controls = rest_controls(sim)
    controls.limits = RateLimits(clock=fake)
    controls.limits.set_limits(read=BucketLimit(20, 40), write=BucketLimit(10, 10))
    auth, _ = sim.create_account_auth()
    limiter = RateLimiter(clock=fake)
    async with rest_client(sim, auth, sleep=fake.sleep, rate_limiter=limiter) as client:
        await client.refresh_limits()  # reads /account/limits and /account/endpoint_costs
        assert limiter.limits()["read"] == BucketLimit(20, 40)
        fake.now += 2.0  # both buckets full again
        for _ in range(6):
            await client.portfolio.get_balance()
    assert controls.limits.rejected == 0  # the client waited instead of collecting 429s
    assert fake.slept == [pytest.approx(0.5), pytest.approx(0.5)]  # 4 reads on hand, then 20 tokens/s


async def test_5xx_is_retried_when_safe(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    auth, account = sim.create_account_auth()
    fake = FakeTime()
    faults = rest_controls(sim).faults
    async with rest_client(sim, auth, sleep=fake.sleep, retry_base_delay=0.01) as client:
        faults.fail_next(2, status=503)
        assert (await client.exchange.get_exchange_status()).exchange_active
        assert len(fake.slept) == 2
        faults.fail_next(status=500, operation_id="GetBalance")
        await client.portfolio.get_balance()  # a GET is retried even on 500
        # An order with a client_order_id is safe to send again...
        faults.fail_next(status=502, operation_id="CreateOrderV2")
        placed = await client.orders.create_order_v2(
            ticker=quiet, side="bid", count="1.00", price="0.3000", client_order_id="safe-1", time_in_force=GTC,
            self_trade_prevention_type=STP,
        )  # fmt: skip
        assert [o.order_id for o in sim.engine.orders(account)] == [placed.order_id]
        # ...one without is not: the first attempt may have been placed.
        faults.fail_next(status=503, operation_id="CreateOrderV2")
        with pytest.raises(KalshiServerError) as info:
            await client.orders.create_order_v2(
                ticker=quiet, side="bid", count="1.00", price="0.3000", time_in_force=GTC,
                self_trade_prevention_type=STP,
            )  # fmt: skip
        assert info.value.status == 503
        assert rest_controls(sim).calls["CreateOrderV2"] == 3
        faults.fail_next(status=500, operation_id="CreateOrderV2")
        with pytest.raises(KalshiServerError):  # 500 is retried for GET only
            await client.orders.create_order_v2(
                ticker=quiet, side="bid", count="1.00", price="0.3000", client_order_id="safe-2", time_in_force=GTC,
                self_trade_prevention_type=STP,
            )  # fmt: skip


# -- errors -----------------------------------------------------------------------------------------------


async def test_bad_parameters_raise_typed_errors_with_the_server_message(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    auth, _ = sim.create_account_auth()
    new_order: dict[str, Any] = {
        "ticker": quiet, "side": "bid", "count": "1.00", "time_in_force": GTC, "self_trade_prevention_type": STP,
    }  # fmt: skip
    async with rest_client(sim, auth) as client, rest_client(sim) as public:
        with pytest.raises(KalshiBadRequestError) as bad:
            await client.orders.create_order_v2(price="0.3333", **new_order)
        assert bad.value.status == 400 and bad.value.code == "invalid_price"
        assert "linear_cent grid" in str(bad.value)
        with pytest.raises(KalshiBadRequestError, match=re.escape("price: '1.5x' is not a dollar amount")):
            await client.orders.create_order_v2(price="1.5x", **new_order)
        with pytest.raises(KalshiBadRequestError, match="depth: must be between"):
            await client.markets.get_market_orderbook(quiet, depth=101)
        await client.orders.create_order_v2(price="0.3000", client_order_id="once", **new_order)
        with pytest.raises(KalshiConflictError, match="once"):
            await client.orders.create_order_v2(price="0.3000", client_order_id="once", **new_order)
        with pytest.raises(KalshiNotFoundError, match="no order"):
            await client.orders.cancel_order_v2("missing")
        with pytest.raises(KalshiNotFoundError, match="no market"):
            await public.markets.get_market("NOPE-1")
        with pytest.raises(KalshiAuthError):  # refused by the client before any request
            await public.portfolio.get_balance()
        stranger = KalshiAuth.from_pem("unregistered", generate_private_key_pem("ed25519")[0])
        async with rest_client(sim, stranger) as unknown:
            with pytest.raises(KalshiUnauthorizedError, match="unknown API key"):
                await unknown.portfolio.get_balance()
        # A success status that carries an error object still raises.
        rest_controls(sim).faults.fail_next(status=200, operation_id="GetBalance")
        with pytest.raises(KalshiAPIError, match="simulated"):
            await client.portfolio.get_balance()


# -- order groups and RFQs on the WebSocket ---------------------------------------------------------------


async def test_order_groups_and_rfqs_reach_their_channels(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    alice_auth, alice = sim.create_account_auth()
    bob_auth, bob = sim.create_account_auth()
    ws = KalshiWebSocket(auth=alice_auth, config=sim.config)
    async with rest_client(sim, alice_auth) as a, rest_client(sim, bob_auth) as b, ws.connect() as session:
        groups = await session.subscribe_order_group()
        comms = await session.subscribe_communications()
        group_id = (await a.order_groups.create_order_group(contracts_limit_fp="2.00")).order_group_id
        created = (await next_of(groups)).msg
        assert (created.event_type, created.order_group_id, created.contracts_limit) == ("created", group_id, 2)
        await a.orders.create_order_v2(
            ticker=quiet, side="bid", count="5.00", price="0.5000", client_order_id="g", time_in_force=GTC,
            self_trade_prevention_type=STP, order_group_id=group_id,
        )  # fmt: skip
        sim.place_order(bob, quiet, "ask", 5000, 500)  # matches 2, the group's limit: it triggers
        assert (await next_of(groups)).msg.event_type == "triggered"
        assert sim.engine.orders(alice, "resting") == []
        rfq_id = (await a.communications.create_rfq(market_ticker=quiet, contracts_fp="3.00", rest_remainder=False)).id
        assert (await next_of(comms)).type == "rfq_created"
        quote_id = (
            await b.communications.create_quote(rfq_id=rfq_id, yes_bid="0.4000", no_bid="0.5500", rest_remainder=False)
        ).id
        assert (await next_of(comms)).type == "quote_created"
        await a.communications.accept_rfq_quote(rfq_id, quote_id, accepted_side="yes")
        assert (await next_of(comms)).type == "quote_accepted"
        await b.communications.confirm_rfq_quote(rfq_id, quote_id)
        assert (await next_of(comms)).type == "quote_executed"
    assert sim.engine.position(alice, quiet).position_units == 200 + 300


async def test_sync_client_against_the_simulator(sim: Simulator) -> None:
    auth, _ = sim.create_account_auth()

    def blocking() -> tuple[str, list[str]]:
        with KalshiClient(sim.config, auth=auth, rate_limiter=RateLimiter.unlimited()) as client:
            balance = client.portfolio.get_balance().balance_dollars
            return balance, [m.ticker for m in client.markets.iter_get_markets(limit=3)]

    balance, tickers = await asyncio.to_thread(blocking)  # the simulator keeps serving on this loop
    assert balance == "100000.0000" and tickers == sim.tickers
