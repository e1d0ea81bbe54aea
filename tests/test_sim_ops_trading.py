"""Combos created in multivariate collections, block trades and FCM subtraders, over signed HTTP requests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from conftest import ManualClock
from kalshi.auth import KalshiAuth, generate_private_key_pem
from kalshi.errors import KalshiAPIError
from kalshi.rest import AsyncKalshiClient
from kalshi.rest.models import TickerPair
from kalshi.sim import Simulator, rest_controls
from kalshi.sim.rest.common import iso
from kalshi.sim.ws.feeds import user_id
from test_sim_rest_schema import add_quiet_market, rest_client

T0 = 1_767_225_600_000
GTC = "good_till_canceled"
STP = "taker_at_cross"


@dataclass
class Env:
    sim: Simulator
    clock: ManualClock
    a: AsyncKalshiClient
    b: AsyncKalshiClient
    alice: str
    bob: str


@pytest.fixture
async def env(kalshi_sim_factory: Callable[..., Simulator]) -> AsyncIterator[Env]:
    clock = ManualClock(T0)
    async with kalshi_sim_factory(seed=4, markets=8, clock_ms=clock, lifecycle=False) as sim:
        rest_controls(sim).limits.enabled = False
        a_auth, alice = sim.create_account_auth()
        b_auth, bob = sim.create_account_auth()
        async with rest_client(sim, a_auth) as a, rest_client(sim, b_auth) as b:
            yield Env(sim, clock, a, b, alice, bob)


async def _order(c: AsyncKalshiClient, ticker: str, side: str, price: str, count: str) -> str:
    made = await c.orders.create_order_v2(
        ticker=ticker, side=side, price=price, count=count, client_order_id=str(uuid.uuid4()),
        time_in_force=GTC, self_trade_prevention_type=STP,
    )  # fmt: skip
    return made.order_id


def _legs(env: Env, events: list[str]) -> list[TickerPair]:
    out = []
    for event in events:
        market = next(m for m in env.sim.engine.markets() if m.spec.event_ticker == event)
        out.append(TickerPair(market_ticker=market.spec.ticker, event_ticker=event, side="yes"))
    return out


# ---------------------------------------------------------------------------------------------- combos


async def test_a_market_created_in_a_collection_is_listed_and_trades(env: Env) -> None:
    collections = (await env.a.multivariate.get_multivariate_event_collections(status="open")).multivariate_contracts
    assert [c.collection_ticker for c in collections] == ["KXMVECROSSCATEGORY"]
    collection = collections[0]
    legs = _legs(env, collection.associated_event_tickers[:2])
    made = await env.a.multivariate.create_market_in_multivariate_event_collection(
        collection.collection_ticker, selected_markets=legs
    )
    again = await env.b.multivariate.create_market_in_multivariate_event_collection(
        collection.collection_ticker, selected_markets=list(reversed(legs))
    )
    assert (again.market_ticker, again.event_ticker) == (made.market_ticker, made.event_ticker)  # same legs, same combo
    combos = (await env.a.markets.get_markets(mve_filter="only", limit=100)).markets
    listed = next(m for m in combos if m.ticker == made.market_ticker)
    assert listed.status == "active" and listed.mve_collection_ticker == collection.collection_ticker
    assert sorted((leg.market_ticker or "") for leg in listed.mve_selected_legs or []) == sorted(
        leg.market_ticker for leg in legs
    )
    events = await env.a.events.get_multivariate_events(collection_ticker=collection.collection_ticker)
    assert made.event_ticker in [e.event_ticker for e in events.events]
    await _order(env.a, made.market_ticker, "bid", "0.2000", "3.00")
    await _order(env.b, made.market_ticker, "ask", "0.2000", "3.00")
    fills = (await env.a.portfolio.get_fills(ticker=made.market_ticker)).fills
    assert [f.count_fp for f in fills] == ["3.00"]


async def test_combos_that_break_the_collection_rules_are_refused(env: Env) -> None:
    collection = (await env.a.multivariate.get_multivariate_event_collections()).multivariate_contracts[0]
    event = collection.associated_event_tickers[0]
    same_event = [m for m in env.sim.engine.markets() if m.spec.event_ticker == event][:1] * 2
    doubled = [TickerPair(market_ticker=m.spec.ticker, event_ticker=event, side="yes") for m in same_event]
    cases = [
        (doubled, "one leg per event"),
        (_legs(env, [event]), "legs, got 1"),
        (
            [TickerPair(market_ticker=_legs(env, [event])[0].market_ticker, event_ticker=collection.associated_event_tickers[1], side="no"),
             *_legs(env, [event])],
            "is not a market of",
        ),
    ]  # fmt: skip
    for legs, message in cases:
        with pytest.raises(KalshiAPIError) as refused:
            await env.a.multivariate.create_market_in_multivariate_event_collection(
                collection.collection_ticker, selected_markets=legs
            )
        assert refused.value.status == 400 and message in str(refused.value)
    with pytest.raises(KalshiAPIError) as missing:
        await env.a.multivariate.get_multivariate_event_collection("KXNOSUCH")
    assert missing.value.status == 404


# ---------------------------------------------------------------------------------------------- block trades


async def test_a_block_trade_executes_when_both_sides_accepted(env: Env) -> None:
    ticker = add_quiet_market(env.sim, "KXBLK-26-T1")
    proposed = await env.a.communications.propose_block_trade(
        buyer_user_id=user_id(env.alice), seller_user_id=user_id(env.bob), market_ticker=ticker,
        price_centi_cents=4200, centicount=500, maker_side="no", expiration_ts=iso(T0 + 60_000),
    )  # fmt: skip
    (pending,) = (await env.b.communications.get_block_trade_proposals()).block_trade_proposals
    assert (pending.status, pending.buyer_accepted, pending.seller_accepted) == ("proposed", True, False)
    assert (await env.a.markets.get_trades(ticker=ticker)).trades == []
    await env.b.communications.accept_block_trade_proposal(proposed.block_trade_proposal_id)
    (done,) = (await env.a.communications.get_block_trade_proposals(status="executed")).block_trade_proposals
    assert done.buyer_order_id and done.seller_order_id and done.executed_ts
    (trade,) = (await env.a.markets.get_trades(ticker=ticker)).trades
    assert (trade.is_block_trade, trade.count_fp, trade.yes_price_dollars) == (True, "5.00", "0.4200")
    assert trade.taker_book_side == "bid"  # the seller was the maker
    positions = {p.ticker: p.position_fp for p in (await env.b.portfolio.get_positions()).market_positions}
    assert positions[ticker] == "-5.00"
    with pytest.raises(KalshiAPIError) as twice:
        await env.a.communications.accept_block_trade_proposal(proposed.block_trade_proposal_id)
    assert twice.value.status == 409


async def test_an_expired_proposal_cannot_be_accepted(env: Env) -> None:
    ticker = add_quiet_market(env.sim, "KXBLK-26-T2")
    proposed = await env.b.communications.propose_block_trade(
        buyer_user_id=user_id(env.alice), seller_user_id=user_id(env.bob), market_ticker=ticker,
        price_centi_cents=4200, centicount=100, maker_side="yes", expiration_ts=iso(T0 + 1_000),
    )  # fmt: skip
    env.clock.now = T0 + 1_000
    with pytest.raises(KalshiAPIError) as expired:
        await env.a.communications.accept_block_trade_proposal(proposed.block_trade_proposal_id)
    assert expired.value.status == 409 and expired.value.code == "block_trade_expired"
    (listed,) = (await env.a.communications.get_block_trade_proposals()).block_trade_proposals
    assert listed.status == "expired"
    with pytest.raises(KalshiAPIError) as off_grid:
        await env.a.communications.propose_block_trade(
            buyer_user_id=user_id(env.alice), seller_user_id=user_id(env.bob), market_ticker=ticker,
            price_centi_cents=4205, centicount=100, maker_side="yes", expiration_ts=iso(T0 + 60_000),
        )  # fmt: skip
    assert off_grid.value.status == 400 and "grid" in str(off_grid.value)


# ---------------------------------------------------------------------------------------------- fcm


async def test_an_fcm_reads_what_its_subtrader_did(env: Env) -> None:
    ticker = add_quiet_market(env.sim, "KXFCM-26-T1")
    sub = (await env.a.fcm.create_fcm_subtrader(subtrader_suffix="desk-1")).subtrader_id
    private_pem, public_pem = generate_private_key_pem("ed25519")
    key = await env.a.api_keys.create_api_key(name="desk", public_key=public_pem.decode(), fcm_subtrader_id=sub)
    async with rest_client(env.sim, KalshiAuth.from_pem(key.api_key_id, private_pem)) as desk:
        order_id = await _order(desk, ticker, "bid", "0.3000", "2.00")
    await _order(env.b, ticker, "ask", "0.3000", "2.00")
    orders = (await env.a.fcm.get_fcm_orders(subtrader_id=sub)).orders
    assert [(o.order_id, o.status) for o in orders] == [(order_id, "executed")]
    assert (await env.a.orders.get_orders(ticker=ticker)).orders == []  # the FCM's own book is untouched
    (fill,) = (await env.a.fcm.get_fcm_fills()).fills
    assert (fill.maker_order_id, fill.maker_subtrader_id, fill.taker_outcome_side) == (order_id, sub, "no")
    positions = (await env.a.fcm.get_fcm_positions(subtrader_id=sub)).market_positions
    assert [(p.ticker, p.position_fp) for p in positions] == [(ticker, "2.00")]
    cap = await env.a.fcm.get_fcm_event_contract_daily_cap(subtrader_id=sub)
    assert cap.executed_utilization == "0.6000"
    with pytest.raises(KalshiAPIError) as other:
        await env.b.fcm.get_fcm_orders(subtrader_id=sub)
    assert other.value.status == 404
    with pytest.raises(KalshiAPIError) as duplicate:
        await env.a.fcm.create_fcm_subtrader(subtrader_suffix="desk-1")
    assert duplicate.value.status == 409
