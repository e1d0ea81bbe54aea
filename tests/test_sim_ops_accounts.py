"""Subaccounts, API keys, the API usage level and exchange-instance transfers, over signed HTTP requests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest

from conftest import ManualClock
from kalshi.auth import KalshiAuth, generate_private_key_pem
from kalshi.errors import KalshiAPIError
from kalshi.rest import AsyncKalshiClient
from kalshi.rest.models import CreateOrderV2Request
from kalshi.sim import Simulator, rest_controls
from simclient import SimClient
from test_sim_rest_schema import add_quiet_market, rest_client

T0 = 1_767_225_600_000
HOUR = 3_600_000
GTC = "good_till_canceled"
STP = "taker_at_cross"


@dataclass
class Env:
    sim: Simulator
    a: AsyncKalshiClient
    b: AsyncKalshiClient
    a_auth: KalshiAuth
    ticker: str


@pytest.fixture
async def env(kalshi_sim_factory: Callable[..., Simulator]) -> AsyncIterator[Env]:
    async with kalshi_sim_factory(seed=8, markets=2, lifecycle=False) as sim:
        rest_controls(sim).limits.enabled = False
        ticker = add_quiet_market(sim, "KXACCT-26-T1")
        a_auth, _ = sim.create_account_auth()
        b_auth, _ = sim.create_account_auth()
        async with rest_client(sim, a_auth) as a, rest_client(sim, b_auth) as b:
            yield Env(sim, a, b, a_auth, ticker)


def _order(ticker: str, side: str, price: str, count: str, **extra: object) -> dict[str, object]:
    return {
        "ticker": ticker, "side": side, "price": price, "count": count, "client_order_id": str(uuid.uuid4()),
        "time_in_force": GTC, "self_trade_prevention_type": STP, **extra,
    }  # fmt: skip


async def _dollars(c: AsyncKalshiClient, subaccount: int | None = None) -> Decimal:
    return Decimal((await c.portfolio.get_balance(subaccount=subaccount)).balance_dollars)


# ---------------------------------------------------------------------------------------------- subaccounts


async def test_a_transfer_moves_cash_between_subaccounts_exactly_once(env: Env) -> None:
    start = await _dollars(env.a)
    assert (await env.a.portfolio.create_subaccount()).subaccount_number == 1
    assert (await env.a.portfolio.create_subaccount()).subaccount_number == 2
    transfer_id = str(uuid.uuid4())
    for _ in range(2):  # a retry with the same client_transfer_id moves nothing more
        await env.a.portfolio.apply_subaccount_transfer(
            client_transfer_id=transfer_id, from_subaccount=0, to_subaccount=1, amount_cents=5000
        )
    assert await _dollars(env.a) == start - 50
    assert await _dollars(env.a, 1) == 50
    balances = (await env.a.portfolio.get_subaccount_balances()).subaccount_balances
    assert {b.subaccount_number: Decimal(b.balance) for b in balances} == {0: start - 50, 1: 50, 2: 0}
    transfers = (await env.a.portfolio.get_subaccount_transfers()).transfers
    assert [(t.from_subaccount, t.to_subaccount, t.amount_cents) for t in transfers] == [(0, 1, 5000)]
    with pytest.raises(KalshiAPIError) as reused:
        await env.a.portfolio.apply_subaccount_transfer(
            client_transfer_id=transfer_id, from_subaccount=0, to_subaccount=2, amount_cents=1
        )
    assert reused.value.status == 409
    with pytest.raises(KalshiAPIError) as too_much:
        await env.a.portfolio.apply_subaccount_transfer(
            client_transfer_id=str(uuid.uuid4()), from_subaccount=1, to_subaccount=2, amount_cents=5001
        )
    assert too_much.value.status == 400 and too_much.value.code == "insufficient_balance"
    assert await _dollars(env.a, 1) == 50  # nothing moved
    with pytest.raises(KalshiAPIError) as unknown:
        await env.a.portfolio.get_balance(subaccount=9)
    assert unknown.value.status == 400 and "POST /portfolio/subaccounts" in str(unknown.value)


async def test_orders_and_fills_of_a_subaccount_stay_in_it(env: Env) -> None:
    number = (await env.a.portfolio.create_subaccount()).subaccount_number
    await env.a.portfolio.apply_subaccount_transfer(
        client_transfer_id=str(uuid.uuid4()), from_subaccount=0, to_subaccount=number, amount_cents=10_000
    )
    primary_before = await _dollars(env.a)
    made = await env.a.orders.create_order_v2(**_order(env.ticker, "bid", "0.4000", "10.00", subaccount=number))
    assert [o.order_id for o in (await env.a.orders.get_orders(subaccount=number)).orders] == [made.order_id]
    assert (await env.a.orders.get_orders(subaccount=0)).orders == []
    order = (await env.a.orders.get_orders(subaccount=number)).orders[0]
    assert order.subaccount_number == number
    # GetOrder (no subaccount parameter) finds it in whichever subaccount holds it.
    assert (await env.a.orders.get_order(made.order_id)).order.subaccount_number == number
    spare = await env.a.orders.create_order_v2(**_order(env.ticker, "bid", "0.0500", "1.00", subaccount=number))
    assert (await env.a.orders.cancel_order_v2(spare.order_id, subaccount=number)).reduced_by == "1.00"
    await env.b.orders.create_order_v2(**_order(env.ticker, "ask", "0.4000", "10.00"))
    fills = (await env.a.portfolio.get_fills(subaccount=number)).fills
    assert [(f.order_id, f.count_fp, f.subaccount_number) for f in fills] == [(made.order_id, "10.00", number)]
    assert (await env.a.portfolio.get_fills(subaccount=0)).fills == []
    positions = (await env.a.portfolio.get_positions(subaccount=number)).market_positions
    assert [(p.ticker, p.position_fp) for p in positions] == [(env.ticker, "10.00")]
    assert (await env.a.portfolio.get_positions()).market_positions == []
    assert await _dollars(env.a) == primary_before  # the primary paid nothing
    assert await _dollars(env.a, number) <= 100 - 4  # $4 of contracts (plus fees) came out of the subaccount


async def test_a_batch_uses_one_subaccount_and_netting_is_a_setting(env: Env) -> None:
    number = (await env.a.portfolio.create_subaccount()).subaccount_number
    mixed = [
        CreateOrderV2Request(
            ticker=env.ticker,
            side="bid",
            price="0.1000",
            count="1.00",
            client_order_id=str(uuid.uuid4()),
            time_in_force=GTC,
            self_trade_prevention_type=STP,
            subaccount=sub,
        )
        for sub in (0, number)
    ]
    with pytest.raises(KalshiAPIError) as refused:
        await env.a.orders.batch_create_orders_v2(orders=mixed)
    assert refused.value.status == 400 and "same subaccount" in str(refused.value)
    assert [(c.subaccount_number, c.enabled) for c in (await env.a.portfolio.get_subaccount_netting()).netting_configs] == [
        (0, True), (number, True),
    ]  # fmt: skip
    await env.a.portfolio.update_subaccount_netting(subaccount_number=number, enabled=False)
    configs = (await env.a.portfolio.get_subaccount_netting()).netting_configs
    assert [(c.subaccount_number, c.enabled) for c in configs] == [(0, True), (number, False)]


# ---------------------------------------------------------------------------------------------- api keys


async def test_a_generated_key_signs_the_next_request_and_a_deleted_one_does_not(env: Env) -> None:
    generated = await env.a.api_keys.generate_api_key(name="bot", key_type="ed25519")
    auth = KalshiAuth.from_pem(generated.api_key_id, generated.private_key)
    async with rest_client(env.sim, auth) as bot:
        assert await _dollars(bot) == await _dollars(env.a)  # the same account
        listed = (await env.a.api_keys.get_api_keys()).api_keys
        assert generated.api_key_id in [k.api_key_id for k in listed]
        with pytest.raises(KalshiAPIError) as not_theirs:
            await env.b.api_keys.delete_api_key(generated.api_key_id)
        assert not_theirs.value.status == 404
        await env.a.api_keys.delete_api_key(generated.api_key_id)
        with pytest.raises(KalshiAPIError) as rejected:
            await bot.portfolio.get_balance()
        assert rejected.value.status == 401
    assert generated.api_key_id not in [k.api_key_id for k in (await env.a.api_keys.get_api_keys()).api_keys]


async def test_a_created_key_with_a_subaccount_acts_for_it(env: Env) -> None:
    number = (await env.a.portfolio.create_subaccount()).subaccount_number
    await env.a.portfolio.apply_subaccount_transfer(
        client_transfer_id=str(uuid.uuid4()), from_subaccount=0, to_subaccount=number, amount_cents=1234
    )
    private_pem, public_pem = generate_private_key_pem("rsa")
    created = await env.a.api_keys.create_api_key(
        name="sub bot", public_key=public_pem.decode(), scopes=["read", "write"], subaccount=number
    )
    async with rest_client(env.sim, KalshiAuth.from_pem(created.api_key_id, private_pem)) as sub:
        assert await _dollars(sub) == Decimal("12.34")
    key = next(k for k in (await env.a.api_keys.get_api_keys()).api_keys if k.api_key_id == created.api_key_id)
    assert (key.name, key.subaccount, list(key.scopes)) == ("sub bot", number, ["read", "write"])


async def test_bad_keys_are_refused_naming_the_field(env: Env) -> None:
    with pytest.raises(KalshiAPIError) as bad_pem:
        await env.a.api_keys.create_api_key(name="x", public_key="not a key")
    assert bad_pem.value.status == 400 and "public_key" in str(bad_pem.value)
    with pytest.raises(KalshiAPIError) as bad_scope:
        await env.a.request("POST", "/api_keys/generate", json={"name": "x", "scopes": ["admin"]})
    assert bad_scope.value.status == 400 and "scopes" in str(bad_scope.value)


async def test_the_usage_level_upgrades_once_the_volume_goal_is_met(env: Env) -> None:
    with pytest.raises(KalshiAPIError) as short:
        await env.a.account.upgrade_account_api_usage_level()
    assert short.value.status == 403 and short.value.code == "volume_goal_not_met"
    await env.a.orders.create_order_v2(**_order(env.ticker, "bid", "0.2000", "100.00"))
    await env.b.orders.create_order_v2(**_order(env.ticker, "ask", "0.2000", "100.00"))
    progress = (await env.a.account.get_account_api_usage_level_volume_progress()).volume_progress[0]
    assert progress.trailing_30d_volume_fp == "100.00"
    await env.a.account.upgrade_account_api_usage_level()
    assert env.sim.engine.settings.of(env.sim.account_of(env.a_auth.key_id) or "").usage_level == "advanced"


async def test_instance_transfers_move_cash_out_of_the_event_contract_balance(env: Env) -> None:
    start = await _dollars(env.a)
    out = await env.a.portfolio.intra_exchange_instance_transfer(
        source="event_contract", destination="margined", amount=2500
    )
    assert await _dollars(env.a) == start - 25
    await env.a.portfolio.intra_exchange_instance_transfer(source="margined", destination="event_contract", amount=500)
    assert await _dollars(env.a) == start - 20
    with pytest.raises(KalshiAPIError) as overdrawn:
        await env.a.portfolio.intra_exchange_instance_transfer(
            source="margined", destination="event_contract", amount=2001
        )
    assert overdrawn.value.status == 400
    listed = (await env.a.portfolio.get_intra_exchange_instance_transfers()).transfers
    assert [t.amount for t in listed] == ["5.0000", "25.0000"]  # newest first
    assert (
        await env.a.portfolio.get_intra_exchange_instance_transfer(out.transfer_id)
    ).transfer.source == "event_contract"


async def test_a_subaccount_s_fills_reach_the_owner_s_websocket_tagged_with_its_number(env: Env) -> None:
    number = (await env.a.portfolio.create_subaccount()).subaccount_number
    await env.a.portfolio.apply_subaccount_transfer(
        client_transfer_id=str(uuid.uuid4()), from_subaccount=0, to_subaccount=number, amount_cents=10_000
    )
    async with await SimClient.connect(env.sim.url, auth=env.a_auth) as ws:
        await ws.request("subscribe", {"channels": ["fill", "user_orders", "market_positions"]})
        made = await env.a.orders.create_order_v2(**_order(env.ticker, "bid", "0.4000", "2.00", subaccount=number))
        await env.b.orders.create_order_v2(**_order(env.ticker, "ask", "0.4000", "2.00"))
        await env.sim.quiesce()
        messages = [r.data for r in await ws.sync() if r.data is not None]
    fills = [m["msg"] for m in messages if m["type"] == "fill"]
    orders = [m["msg"] for m in messages if m["type"] == "user_order"]
    positions = [m["msg"] for m in messages if m["type"] == "market_position"]
    assert [(f["order_id"], f["count_fp"], f["subaccount"]) for f in fills] == [(made.order_id, "2.00", number)]
    assert orders and all(o["subaccount_number"] == number for o in orders)
    assert [(p["position_fp"], p["subaccount"]) for p in positions] == [("2.00", number)]


async def test_lists_without_a_subaccount_cover_every_subaccount_as_the_spec_says(
    kalshi_sim_factory: Callable[..., Simulator],
) -> None:
    # SubaccountQuery ("If omitted, defaults to all subaccounts"): GetOrders, GetFills, GetSettlements,
    # GetFillsHistorical, GetHistoricalOrders. SubaccountQueryDefaultPrimary ("Defaults to 0"): GetPositions,
    # GetBalance, GetHistoricalPositions.
    clock = ManualClock(T0)
    async with kalshi_sim_factory(seed=8, markets=2, clock_ms=clock, lifecycle=False) as sim:
        rest_controls(sim).limits.enabled = False
        ticker = add_quiet_market(sim, "KXALLSUB-26-T1")
        a_auth, _ = sim.create_account_auth()
        b_auth, _ = sim.create_account_auth()
        async with rest_client(sim, a_auth) as a, rest_client(sim, b_auth) as b:
            number = (await a.portfolio.create_subaccount()).subaccount_number
            await a.portfolio.apply_subaccount_transfer(
                client_transfer_id=str(uuid.uuid4()), from_subaccount=0, to_subaccount=number, amount_cents=10_000
            )
            clock.now = T0 + 1_000
            sub = await a.orders.create_order_v2(**_order(ticker, "bid", "0.4000", "10.00", subaccount=number))
            clock.now = T0 + 2_000
            primary = await a.orders.create_order_v2(**_order(ticker, "bid", "0.3000", "1.00"))
            clock.now = T0 + 3_000
            await b.orders.create_order_v2(**_order(ticker, "ask", "0.4000", "10.00"))

            listed = (await a.orders.get_orders()).orders  # newest first, across subaccounts
            assert [(o.order_id, o.subaccount_number) for o in listed] == [
                (primary.order_id, 0),
                (sub.order_id, number),
            ]
            assert [o.order_id for o in (await a.orders.get_orders(subaccount=0)).orders] == [primary.order_id]
            assert [o.order_id for o in (await a.orders.get_orders(subaccount=number)).orders] == [sub.order_id]
            first = await a.orders.get_orders(limit=1)
            second = await a.orders.get_orders(limit=1, cursor=first.cursor)
            assert [o.order_id for o in [*first.orders, *second.orders]] == [primary.order_id, sub.order_id]
            assert second.cursor == ""
            raw = await a.request("GET", "/portfolio/orders")
            assert set(raw) == {"orders", "cursor"} and raw["cursor"] == ""

            fills = (await a.portfolio.get_fills()).fills
            assert [(f.order_id, f.subaccount_number) for f in fills] == [(sub.order_id, number)]
            assert (await a.portfolio.get_fills(subaccount=0)).fills == []
            assert (await a.portfolio.get_positions()).market_positions == []  # the primary's only
            assert len((await a.portfolio.get_positions(subaccount=number)).market_positions) == 1

            clock.now = T0 + 4_000
            sim.do(lambda e: e.close_market(ticker))
            sim.do(lambda e: e.determine_market(ticker, "yes"))
            sim.do(lambda e: e.settle_market(ticker))
            assert [s.ticker for s in (await a.portfolio.get_settlements()).settlements] == [ticker]
            assert (await a.portfolio.get_settlements(subaccount=0)).settlements == []

            clock.now = T0 + 4_000 + 2 * HOUR  # the cutoff passes the fills and the closed orders
            old_fills = (await a.historical.get_fills_historical()).fills
            assert [(f.order_id, f.subaccount_number) for f in old_fills] == [(sub.order_id, number)]
            assert (await a.historical.get_fills_historical(subaccount=0)).fills == []
            old_orders = {o.order_id for o in (await a.historical.get_historical_orders()).orders}
            assert old_orders == {sub.order_id, primary.order_id}
            only_primary = (await a.historical.get_historical_orders(subaccount=0)).orders
            assert [o.order_id for o in only_primary] == [primary.order_id]
            assert (await a.historical.get_historical_positions()).market_positions == []  # the primary's only


async def test_cancel_amend_and_decrease_without_a_subaccount_act_on_the_primary(env: Env) -> None:
    # CancelOrderV2, AmendOrderV2, DecreaseOrderV2 take SubaccountQueryDefaultPrimary ("Defaults to 0"): a
    # subaccount's order is not the primary's. GetOrder and GetOrderQueuePosition take no subaccount: they find it.
    number = (await env.a.portfolio.create_subaccount()).subaccount_number
    await env.a.portfolio.apply_subaccount_transfer(
        client_transfer_id=str(uuid.uuid4()), from_subaccount=0, to_subaccount=number, amount_cents=10_000
    )
    made = await env.a.orders.create_order_v2(**_order(env.ticker, "bid", "0.2000", "5.00", subaccount=number))
    order_id = made.order_id
    amend = {"ticker": env.ticker, "side": "bid", "price": "0.2100", "count": "5.00"}
    for attempt in (
        lambda: env.a.orders.cancel_order_v2(order_id),
        lambda: env.a.orders.amend_order_v2(order_id, **amend),
        lambda: env.a.orders.decrease_order_v2(order_id, reduce_by="1.00"),
        lambda: env.a.orders.cancel_order_v2(order_id, subaccount=0),
    ):
        with pytest.raises(KalshiAPIError) as not_primary:
            await attempt()
        assert (not_primary.value.status, not_primary.value.code) == (404, "order_not_found")
    assert (await env.a.orders.get_order(order_id)).order.remaining_count_fp == "5.00"  # untouched
    assert (await env.a.orders.get_order_queue_position(order_id)).queue_position_fp == "0.00"
    amended = await env.a.orders.amend_order_v2(order_id, subaccount=number, **amend)
    decreased = await env.a.orders.decrease_order_v2(amended.order_id, subaccount=number, reduce_by="1.00")
    assert decreased.remaining_count == "4.00"
    assert (await env.a.orders.cancel_order_v2(amended.order_id, subaccount=number)).reduced_by == "4.00"


async def test_a_key_bound_to_a_subaccount_reads_and_trades_only_it(env: Env) -> None:
    # "API keys restricted to a subaccount return only that subaccount's orders. If supplied, `subaccount` must
    # match the key's restriction."
    number = (await env.a.portfolio.create_subaccount()).subaccount_number
    await env.a.portfolio.apply_subaccount_transfer(
        client_transfer_id=str(uuid.uuid4()), from_subaccount=0, to_subaccount=number, amount_cents=10_000
    )
    primary = await env.a.orders.create_order_v2(**_order(env.ticker, "bid", "0.1000", "1.00"))
    private_pem, public_pem = generate_private_key_pem("rsa")
    created = await env.a.api_keys.create_api_key(
        name="sub bot", public_key=public_pem.decode(), scopes=["read", "write"], subaccount=number
    )
    async with rest_client(env.sim, KalshiAuth.from_pem(created.api_key_id, private_pem)) as sub:
        mine = await sub.orders.create_order_v2(**_order(env.ticker, "bid", "0.1500", "1.00"))
        assert [o.order_id for o in (await sub.orders.get_orders()).orders] == [mine.order_id]
        assert [o.order_id for o in (await sub.orders.get_orders(subaccount=number)).orders] == [mine.order_id]
        for attempt in (
            lambda: sub.orders.get_orders(subaccount=0),
            lambda: sub.portfolio.get_fills(subaccount=0),
            lambda: sub.portfolio.get_balance(subaccount=0),
            lambda: sub.orders.create_order_v2(**_order(env.ticker, "bid", "0.1000", "1.00", subaccount=0)),
        ):
            with pytest.raises(KalshiAPIError) as other:
                await attempt()
            assert other.value.status == 400 and "subaccount" in str(other.value)
        with pytest.raises(KalshiAPIError) as hidden:
            await sub.orders.get_order(primary.order_id)  # the primary's order is not this key's
        assert hidden.value.status == 404
        assert (await sub.orders.cancel_order_v2(mine.order_id)).reduced_by == "1.00"
    assert [o.order_id for o in (await env.a.orders.get_orders(status="resting")).orders] == [primary.order_id]


async def test_a_batch_item_without_a_subaccount_is_the_primary_s_not_its_neighbours(env: Env) -> None:
    # CreateOrderV2Request.subaccount: "The subaccount number to use for this order. 0 is the primary subaccount."
    # An item that names none is the primary's, so a batch pairing it with a subaccount's item mixes subaccounts.
    number = (await env.a.portfolio.create_subaccount()).subaccount_number
    await env.a.portfolio.apply_subaccount_transfer(
        client_transfer_id=str(uuid.uuid4()), from_subaccount=0, to_subaccount=number, amount_cents=10_000
    )
    items = [
        _order(env.ticker, "bid", "0.1000", "1.00", subaccount=number),
        _order(env.ticker, "bid", "0.1100", "1.00"),
    ]
    with pytest.raises(KalshiAPIError) as refused:
        await env.a.request("POST", "/portfolio/events/orders/batched", json={"orders": items})
    assert refused.value.status == 400 and "same subaccount" in str(refused.value)
    assert (await env.a.orders.get_orders()).orders == []  # nothing was placed, in neither subaccount

    sub = await env.a.orders.create_order_v2(**_order(env.ticker, "bid", "0.1000", "1.00", subaccount=number))
    primary = await env.a.orders.create_order_v2(**_order(env.ticker, "bid", "0.1100", "1.00"))
    cancels = [{"order_id": sub.order_id, "subaccount": number}, {"order_id": primary.order_id}]
    with pytest.raises(KalshiAPIError) as mixed:
        await env.a.request("DELETE", "/portfolio/events/orders/batched", json={"orders": cancels})
    assert mixed.value.status == 400 and "same subaccount" in str(mixed.value)
    assert {o.order_id for o in (await env.a.orders.get_orders(status="resting")).orders} == {
        sub.order_id,
        primary.order_id,
    }
