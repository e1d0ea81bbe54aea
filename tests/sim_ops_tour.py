"""One pass through the operations added with candlesticks, historical data, subaccounts, API keys, combos,
milestones, live data, discovery, block trades and FCM, through the typed client on a validating transport.

The contract test (:mod:`test_sim_rest_contract`) calls :func:`tour_operations` so every implemented
operation is validated against the spec with a 2xx answer; the behaviour of each group is tested in depth in
``test_sim_ops_*.py``.
"""

from __future__ import annotations

import uuid

from kalshi.auth import generate_private_key_pem
from kalshi.rest import AsyncKalshiClient
from kalshi.rest.models import TargetBalanceAllocationInput, TickerPair
from kalshi.sim import Simulator
from kalshi.sim.ws.feeds import user_id
from test_sim_rest_schema import add_quiet_market

GTC = "good_till_canceled"
STP = "taker_at_cross"


async def _trade(a: AsyncKalshiClient, b: AsyncKalshiClient, ticker: str, price: str, count: str) -> None:
    await a.orders.create_order_v2(
        ticker=ticker, side="bid", count=count, price=price, client_order_id=f"t-{uuid.uuid4()}",
        time_in_force=GTC, self_trade_prevention_type=STP,
    )  # fmt: skip
    await b.orders.create_order_v2(
        ticker=ticker, side="ask", count=count, price=price, client_order_id=f"t-{uuid.uuid4()}",
        time_in_force=GTC, self_trade_prevention_type=STP,
    )  # fmt: skip


async def _candles(p: AsyncKalshiClient, a: AsyncKalshiClient, sim: Simulator) -> None:
    busy = sim.tickers[0]
    spec = sim.engine.market(busy).spec
    now_s = sim.clock_ms() // 1000
    one = await p.markets.get_market_candlesticks(
        spec.series_ticker, busy, start_ts=now_s - 3600, end_ts=now_s, period_interval=1
    )
    assert one.ticker == busy and one.candlesticks
    batch = await p.markets.batch_get_market_candlesticks(
        market_tickers=busy, start_ts=now_s - 3600, end_ts=now_s, period_interval=5
    )
    assert [m.market_ticker for m in batch.markets] == [busy]
    event = await p.events.get_market_candlesticks_by_event(
        spec.series_ticker, spec.event_ticker, start_ts=now_s - 3600, end_ts=now_s, period_interval=60
    )
    assert busy in event.market_tickers
    forecast = await a.events.get_event_forecast_percentiles_history(
        spec.series_ticker, spec.event_ticker, percentiles=[5000], start_ts=now_s - 600, end_ts=now_s,
        period_interval=1,
    )  # fmt: skip
    assert forecast.forecast_history is not None


async def _accounts(a: AsyncKalshiClient) -> None:
    number = (await a.portfolio.create_subaccount()).subaccount_number
    await a.portfolio.apply_subaccount_transfer(
        client_transfer_id=str(uuid.uuid4()), from_subaccount=0, to_subaccount=number, amount_cents=1000
    )
    balances = (await a.portfolio.get_subaccount_balances()).subaccount_balances
    assert [b.balance for b in balances if b.subaccount_number == number] == ["10.0000"]
    assert len((await a.portfolio.get_subaccount_transfers()).transfers) == 1
    await a.portfolio.update_subaccount_netting(subaccount_number=number, enabled=False)
    assert not [c.enabled for c in (await a.portfolio.get_subaccount_netting()).netting_configs][number]
    moved = await a.portfolio.intra_exchange_instance_transfer(
        source="event_contract", destination="margined", amount=100
    )
    assert (await a.portfolio.get_intra_exchange_instance_transfer(moved.transfer_id)).transfer.amount == "1.0000"
    assert len((await a.portfolio.get_intra_exchange_instance_transfers()).transfers) == 1
    await a.portfolio.set_target_balance_allocation(
        allocations=[TargetBalanceAllocationInput(exchange_index=0, percent=100)], resting_margin_reservation="sum"
    )
    assert (await a.portfolio.get_target_balance_allocation()).resting_margin_reservation == "sum"


async def _keys(a: AsyncKalshiClient) -> None:
    _, public_pem = generate_private_key_pem("ed25519")
    created = await a.api_keys.create_api_key(name="bot", public_key=public_pem.decode())
    generated = await a.api_keys.generate_api_key(name="gen", key_type="ed25519")
    assert "PRIVATE KEY" in generated.private_key
    ids = {k.api_key_id for k in (await a.api_keys.get_api_keys()).api_keys}
    assert {created.api_key_id, generated.api_key_id} <= ids
    await a.api_keys.delete_api_key(created.api_key_id)
    progress = await a.account.get_account_api_usage_level_volume_progress()
    assert progress.volume_progress[0].goals
    await a.account.upgrade_account_api_usage_level()


async def _combos(p: AsyncKalshiClient, a: AsyncKalshiClient, sim: Simulator) -> None:
    collections = (await p.multivariate.get_multivariate_event_collections()).multivariate_contracts
    assert collections
    ticker = collections[0].collection_ticker
    collection = (await p.multivariate.get_multivariate_event_collection(ticker)).multivariate_contract
    legs = []
    for event in collection.associated_event_tickers[:2]:
        market = next(m for m in sim.engine.markets() if m.spec.event_ticker == event)
        legs.append(TickerPair(market_ticker=market.spec.ticker, event_ticker=event, side="yes"))
    made = await a.multivariate.create_market_in_multivariate_event_collection(
        ticker, selected_markets=legs, with_market_payload=True
    )
    assert made.market is not None and made.market.ticker == made.market_ticker


async def _reference(p: AsyncKalshiClient, sim: Simulator) -> None:
    milestones = (await p.milestones.get_milestones(limit=5)).milestones
    first = milestones[0]
    assert (await p.milestones.get_milestone(first.id)).milestone.title == first.title
    targets = (await p.structured_targets.get_structured_targets(page_size=5)).structured_targets or []
    assert targets and targets[0].id
    assert (await p.structured_targets.get_structured_target(targets[0].id)).structured_target is not None
    live = (await p.live_data.get_live_data_by_milestone(first.id)).live_data
    assert (await p.live_data.get_live_data(live.type, first.id)).live_data.milestone_id == first.id
    assert len((await p.live_data.get_live_datas(milestone_ids=[first.id])).live_datas) == 1
    assert (await p.live_data.get_game_stats(first.id)).pbp is not None
    assert (await p.live_data.get_event_live_data(first.related_event_tickers[0])).live_data.type == live.type
    weather = await p.live_data.get_weather_index("NY", last_sec=600, detailed=True)
    assert weather.timeseries
    assert (await p.live_data.get_weather_index_calibrations("NY")).calibrations
    assert (await p.incentive_programs.get_incentive_programs()).incentive_programs
    assert (await p.search.get_tags_for_series_categories()).tags_by_categories
    assert (await p.search.get_filters_for_sports()).sport_ordering


async def _block_trades(a: AsyncKalshiClient, b: AsyncKalshiClient, sim: Simulator, alice: str, bob: str) -> None:
    ticker = add_quiet_market(sim, "KXBLOCK-26-T1")
    proposal = await a.communications.propose_block_trade(
        buyer_user_id=user_id(alice), seller_user_id=user_id(bob), market_ticker=ticker, price_centi_cents=4000,
        centicount=500, maker_side="yes", expiration_ts="2099-01-01T00:00:00Z",
    )  # fmt: skip
    await b.communications.accept_block_trade_proposal(proposal.block_trade_proposal_id)
    listed = (await b.communications.get_block_trade_proposals()).block_trade_proposals
    assert [x.status for x in listed] == ["executed"]


async def _fcm(a: AsyncKalshiClient) -> None:
    sub = (await a.fcm.create_fcm_subtrader(subtrader_suffix="desk-1")).subtrader_id
    assert [s.subtrader_id for s in (await a.fcm.list_fcm_subtraders()).subtraders] == [sub]
    assert (await a.fcm.get_fcm_orders(subtrader_id=sub)).orders == []
    assert (await a.fcm.get_fcm_fills()).fills == []
    assert (await a.fcm.get_fcm_positions()).market_positions == []
    await a.fcm.update_fcm_subtrader_blocked_categories(subtrader_id=sub, category="Crypto", blocked=True)
    assert (await a.fcm.get_fcm_subtrader_blocked_categories(subtrader_id=sub)).categories == ["Crypto"]
    await a.fcm.update_fcm_event_contract_daily_cap(subtrader_id=sub, limit="2500.00")
    assert (await a.fcm.get_fcm_event_contract_daily_cap(subtrader_id=sub)).limit == "2500.0000"
    await a.fcm.delete_fcm_event_contract_daily_cap(subtrader_id=sub)


async def _historical(p: AsyncKalshiClient, a: AsyncKalshiClient, b: AsyncKalshiClient, sim: Simulator) -> None:
    ticker = add_quiet_market(sim, "KXHIST-26-T1")
    await _trade(a, b, ticker, "0.6000", "3.00")
    sim.do(lambda e: e.close_market(ticker))
    sim.do(lambda e: e.determine_market(ticker, "no"))
    sim.do(lambda e: e.settle_market(ticker))
    sim.do(lambda e: e.history.archive_through(e.now_ms, now_ms=e.now_ms))
    assert (await p.historical.get_historical_cutoff()).market_settled_ts
    assert ticker in [m.ticker for m in (await p.historical.get_historical_markets()).markets]
    assert (await p.historical.get_historical_market(ticker)).market.result == "no"
    now_s = sim.clock_ms() // 1000
    candles = await p.historical.get_market_candlesticks_historical(
        ticker, start_ts=now_s - 60, end_ts=now_s, period_interval=1
    )
    assert sum(int(float(c.volume)) for c in candles.candlesticks) == 3
    assert (await p.historical.get_trades_historical(ticker=ticker)).trades[0].count_fp == "3.00"
    assert (await a.historical.get_fills_historical(ticker=ticker)).fills[0].count_fp == "3.00"
    assert (await a.historical.get_historical_orders(ticker=ticker)).orders
    assert (await a.historical.get_historical_positions(ticker=ticker)).market_positions[0].ticker == ticker


async def tour_operations(
    p: AsyncKalshiClient, a: AsyncKalshiClient, b: AsyncKalshiClient, sim: Simulator, alice: str, bob: str
) -> None:
    """Call every operation of the groups above once with a 2xx answer (``a``, ``b`` signed; ``p`` public)."""
    quiet = add_quiet_market(sim, "KXTOUR-26-T1")
    await _trade(a, b, quiet, "0.3000", "100.00")  # volume for the usage-level upgrade
    await _candles(p, a, sim)
    await _accounts(a)
    await _keys(a)
    await _combos(p, a, sim)
    await _reference(p, sim)
    await _block_trades(a, b, sim, alice, bob)
    await _fcm(a)
    await _historical(p, a, b, sim)
