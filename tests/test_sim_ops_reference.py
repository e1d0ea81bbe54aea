"""Milestones, structured targets, live data, incentive programs and search filters, derived from the listed
events and markets, over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest

from kalshi.errors import KalshiAPIError
from kalshi.rest import AsyncKalshiClient
from kalshi.sim import Simulator, rest_controls
from test_sim_rest_schema import add_quiet_market, rest_client

T0 = 1_767_225_600_000
GTC = "good_till_canceled"
STP = "taker_at_cross"


@dataclass
class Env:
    sim: Simulator
    a: AsyncKalshiClient
    b: AsyncKalshiClient
    p: AsyncKalshiClient


@pytest.fixture
async def env(kalshi_sim_factory: Callable[..., Simulator]) -> AsyncIterator[Env]:
    async with kalshi_sim_factory(seed=6, markets=6, clock_ms=lambda: T0, lifecycle=False) as sim:
        rest_controls(sim).limits.enabled = False
        a_auth, _ = sim.create_account_auth()
        b_auth, _ = sim.create_account_auth()
        async with rest_client(sim, a_auth) as a, rest_client(sim, b_auth) as b, rest_client(sim) as p:
            yield Env(sim, a, b, p)


async def _trade(env: Env, ticker: str, price: str) -> None:
    for client, side in ((env.a, "bid"), (env.b, "ask")):
        await client.orders.create_order_v2(
            ticker=ticker, side=side, price=price, count="1.00", client_order_id=str(uuid.uuid4()),
            time_in_force=GTC, self_trade_prevention_type=STP,
        )  # fmt: skip


def _settle(sim: Simulator, ticker: str) -> None:
    sim.do(lambda e: e.close_market(ticker))
    sim.do(lambda e: e.determine_market(ticker, "yes"))
    sim.do(lambda e: e.settle_market(ticker))


async def test_each_single_event_has_one_milestone_whose_live_data_follows_its_markets(env: Env) -> None:
    ticker = add_quiet_market(env.sim, "KXMILE-26-T1")
    singles = [e.event_ticker for e in env.sim.engine.events() if not e.is_multivariate]
    milestones = (await env.p.milestones.get_milestones(limit=100)).milestones
    assert [m.related_event_tickers for m in milestones] == [[e] for e in singles]
    (mine,) = (await env.p.milestones.get_milestones(limit=5, related_event_ticker="KXMILE-26")).milestones
    assert (await env.p.milestones.get_milestone(mine.id)).milestone == mine
    await _trade(env, ticker, "0.6100")
    live = (await env.p.live_data.get_live_data_by_milestone(mine.id)).live_data
    assert live.details["status"] == "live"
    assert live.details["markets"][0]["last_price_dollars"] == "0.6100"
    stats = (await env.p.live_data.get_game_stats(mine.id)).pbp
    assert stats is not None and stats.periods and len(stats.periods[0].events or []) == 1
    _settle(env.sim, ticker)
    final = (await env.p.live_data.get_live_data(live.type, mine.id)).live_data
    assert final.details["status"] == "final" and final.details["markets"][0]["result"] == "yes"
    event_live = (await env.p.live_data.get_event_live_data("KXMILE-26")).live_data
    assert event_live.is_historical is True
    batch = (await env.p.live_data.get_live_datas(milestone_ids=[mine.id, "no-such-id"])).live_datas
    assert [d.milestone_id for d in batch] == [mine.id]
    with pytest.raises(KalshiAPIError) as wrong_type:
        await env.p.live_data.get_live_data("not_a_type", mine.id)
    assert wrong_type.value.status == 404
    with pytest.raises(KalshiAPIError) as no_limit:
        await env.p.request("GET", "/milestones")
    assert no_limit.value.status == 400 and "limit" in str(no_limit.value)


async def test_milestone_ids_are_stable_across_runs(kalshi_sim_factory: Callable[..., Simulator]) -> None:
    seen = []
    for _ in range(2):
        async with kalshi_sim_factory(seed=6, markets=6, clock_ms=lambda: T0) as sim, rest_client(sim) as p:
            seen.append([m.id for m in (await p.milestones.get_milestones(limit=100)).milestones])
    assert seen[0] and seen[0] == seen[1]


async def test_structured_targets_tags_and_sport_filters(env: Env) -> None:
    series = {e.series_ticker for e in env.sim.engine.events() if not e.is_multivariate}
    targets = (await env.p.structured_targets.get_structured_targets()).structured_targets or []
    assert {t.source_id for t in targets} == series
    first = targets[0]
    assert (await env.p.structured_targets.get_structured_target(first.id or "")).structured_target == first
    competition = (first.details or {})["competition"]
    narrowed = (await env.p.structured_targets.get_structured_targets(competition=competition)).structured_targets
    assert narrowed and all((t.details or {})["competition"] == competition for t in narrowed)
    tags = (await env.p.search.get_tags_for_series_categories()).tags_by_categories
    assert set(tags) >= {s.category for s in env.sim.universe.series if s.series_ticker in series}
    sports = await env.p.search.get_filters_for_sports()
    assert sports.sport_ordering == list(sports.filters_by_sports)


async def test_incentive_programs_are_paid_out_once_their_market_settles(env: Env) -> None:
    programs = (await env.p.incentive_programs.get_incentive_programs(status="active")).incentive_programs
    assert programs and all(not p.paid_out for p in programs)
    target = programs[0].market_ticker
    _settle(env.sim, target)
    paid = (await env.p.incentive_programs.get_incentive_programs(status="paid_out")).incentive_programs
    assert {p.market_ticker for p in paid} == {target} and all(p.paid_out for p in paid)
    liquidity = (await env.p.incentive_programs.get_incentive_programs(type="liquidity")).incentive_programs
    assert liquidity and all(p.incentive_type == "liquidity" for p in liquidity)


async def test_the_weather_index_is_one_reading_a_minute_and_deterministic(env: Env) -> None:
    now_s = T0 // 1000
    first = await env.p.live_data.get_weather_index("NY", from_=now_s - 600, to=now_s, detailed=True)
    second = await env.p.live_data.get_weather_index("ny", from_=now_s - 600, to=now_s)
    assert [p.t for p in first.timeseries] == list(range(now_s - 600, now_s + 1, 60))
    assert [p.v for p in first.timeseries] == [p.v for p in second.timeseries]
    assert all(len(p.stations or []) == 3 for p in first.timeseries)
    calibration = (await env.p.live_data.get_weather_index_calibrations("NY")).calibrations[0]
    assert sum(Decimal(str(s.weight)) for s in calibration.stations) == 1
    with pytest.raises(KalshiAPIError) as unknown:
        await env.p.live_data.get_weather_index("ATLANTIS")
    assert unknown.value.status == 400 and "known cities" in str(unknown.value)
