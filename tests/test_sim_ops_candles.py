"""Candlesticks served by the simulator: computed from the engine's trades and quotes, over HTTP.

The engine runs on a manual clock, so the test places trades in chosen minutes and checks every candle
against the trades ``GET /markets/trades`` returns for the same period.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest

from conftest import ManualClock
from kalshi.errors import KalshiAPIError
from kalshi.rest import AsyncKalshiClient
from kalshi.sim import Simulator, rest_controls
from kalshi.sim.engine.candles import QuotePoint, build_candles
from kalshi.sim.engine.events import TradeEvent
from test_sim_rest_schema import add_quiet_market, rest_client

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a day boundary
GTC = "good_till_canceled"
STP = "taker_at_cross"


@dataclass
class Env:
    sim: Simulator
    clock: ManualClock
    a: AsyncKalshiClient
    b: AsyncKalshiClient
    p: AsyncKalshiClient
    ticker: str


@pytest.fixture
async def env(kalshi_sim_factory: Callable[..., Simulator]) -> AsyncIterator[Env]:
    clock = ManualClock(T0 + 5_000)
    async with kalshi_sim_factory(seed=3, markets=2, clock_ms=clock, lifecycle=False) as sim:
        rest_controls(sim).limits.enabled = False
        ticker = add_quiet_market(sim, "KXCANDLE-26-T1")
        a_auth, _ = sim.create_account_auth()
        b_auth, _ = sim.create_account_auth()
        async with rest_client(sim, a_auth) as a, rest_client(sim, b_auth) as b, rest_client(sim) as p:
            yield Env(sim, clock, a, b, p, ticker)


async def _order(c: AsyncKalshiClient, ticker: str, side: str, price: str, count: str) -> str:
    made = await c.orders.create_order_v2(
        ticker=ticker, side=side, price=price, count=count, client_order_id=str(uuid.uuid4()),
        time_in_force=GTC, self_trade_prevention_type=STP,
    )  # fmt: skip
    return made.order_id


async def _trade(env: Env, price: str, count: str) -> None:
    await _order(env.a, env.ticker, "bid", price, count)
    await _order(env.b, env.ticker, "ask", price, count)


async def _trade_at(env: Env, ms: int, price: str, count: str) -> None:
    env.clock.now = ms
    await _trade(env, price, count)


async def test_minute_candles_match_the_trades_of_each_period(env: Env) -> None:
    # minute 1 (ends T0+60s): two trades; minute 2: none; minute 3: three trades.
    await _trade_at(env, T0 + 10_000, "0.4000", "2.00")
    await _trade_at(env, T0 + 50_000, "0.4500", "1.00")
    await _trade_at(env, T0 + 125_000, "0.3000", "4.00")
    await _trade_at(env, T0 + 130_000, "0.5000", "1.00")
    await _trade_at(env, T0 + 170_000, "0.3500", "5.00")
    env.clock.now = T0 + 175_000
    spec = env.sim.engine.market(env.ticker).spec
    got = await env.p.markets.get_market_candlesticks(
        spec.series_ticker, env.ticker, start_ts=T0 // 1000, end_ts=T0 // 1000 + 175, period_interval=1
    )
    candles = {c.end_period_ts: c for c in got.candlesticks}
    assert sorted(candles) == [T0 // 1000 + 60, T0 // 1000 + 120, T0 // 1000 + 180]
    trades = (await env.p.markets.get_trades(ticker=env.ticker, limit=100)).trades
    for end, candle in candles.items():
        inside = [t for t in reversed(trades) if end - 60 < _seconds(t.created_time) <= end]
        assert candle.volume_fp == f"{sum(Decimal(t.count_fp) for t in inside):.2f}"
        if not inside:
            assert candle.price.open_dollars is None and candle.price.previous_dollars == "0.4500"
            continue
        prices = [t.yes_price_dollars for t in inside]
        assert candle.price.open_dollars == prices[0] and candle.price.close_dollars == prices[-1]
        assert candle.price.high_dollars == max(prices) and candle.price.low_dollars == min(prices)
    # The volume-weighted mean of minute 3: (0.30*4 + 0.50*1 + 0.35*5) / 10 = 0.345.
    assert candles[T0 // 1000 + 180].price.mean_dollars == "0.3450"


def _seconds(created: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())


async def test_bid_and_ask_candles_follow_the_book_and_open_interest_the_positions(env: Env) -> None:
    env.clock.now = T0 + 10_000
    await _order(env.a, env.ticker, "bid", "0.2000", "3.00")
    env.clock.now = T0 + 20_000
    await _order(env.a, env.ticker, "bid", "0.2500", "3.00")
    env.clock.now = T0 + 30_000
    await _order(env.b, env.ticker, "ask", "0.7000", "3.00")
    env.clock.now = T0 + 70_000
    await _order(env.b, env.ticker, "ask", "0.2500", "3.00")  # takes the 0.25 bid: 3 contracts of open interest
    spec = env.sim.engine.market(env.ticker).spec
    got = await env.p.markets.get_market_candlesticks(
        spec.series_ticker, env.ticker, start_ts=T0 // 1000, end_ts=T0 // 1000 + 100, period_interval=1
    )
    first, second = got.candlesticks
    assert (first.yes_bid.open_dollars, first.yes_bid.high_dollars, first.yes_bid.close_dollars) == (
        "0.0000", "0.2500", "0.2500",
    )  # fmt: skip
    assert (first.yes_ask.open_dollars, first.yes_ask.low_dollars, first.yes_ask.close_dollars) == (
        "1.0000", "0.7000", "0.7000",
    )  # fmt: skip
    assert (second.yes_bid.open_dollars, second.yes_bid.close_dollars) == ("0.2500", "0.2000")
    assert first.open_interest_fp == "0.00" and second.open_interest_fp == "3.00"


async def test_every_period_and_the_batch_and_event_forms_agree(env: Env) -> None:
    await _trade_at(env, T0 + 10_000, "0.4000", "2.00")
    await _trade_at(env, T0 + 3_700_000, "0.6000", "3.00")  # in the second hour
    env.clock.now = T0 + 3_800_000
    spec = env.sim.engine.market(env.ticker).spec
    start, end = T0 // 1000, T0 // 1000 + 3800
    hours = await env.p.markets.get_market_candlesticks(
        spec.series_ticker, env.ticker, start_ts=start, end_ts=end, period_interval=60
    )
    assert [(c.end_period_ts, c.volume_fp) for c in hours.candlesticks] == [
        (start + 3600, "2.00"),
        (start + 7200, "3.00"),
    ]
    day = await env.p.markets.get_market_candlesticks(
        spec.series_ticker, env.ticker, start_ts=start, end_ts=end, period_interval=1440
    )
    assert [(c.end_period_ts, c.volume_fp, c.price.high_dollars) for c in day.candlesticks] == [
        (start + 86_400, "5.00", "0.6000")
    ]
    batch = await env.p.markets.batch_get_market_candlesticks(
        market_tickers=env.ticker, start_ts=start, end_ts=end, period_interval=60
    )
    assert batch.markets[0].candlesticks == hours.candlesticks
    event = await env.p.events.get_market_candlesticks_by_event(
        spec.series_ticker, spec.event_ticker, start_ts=start, end_ts=end, period_interval=60
    )
    assert event.market_tickers == [env.ticker] and event.market_candlesticks[0] == hours.candlesticks
    assert event.adjusted_end_ts == start + 7200
    before = await env.p.markets.get_market_candlesticks(
        spec.series_ticker, env.ticker, start_ts=start + 3700, end_ts=end, period_interval=60,
        include_latest_before_start=True,
    )  # fmt: skip
    assert [c.end_period_ts for c in before.candlesticks] == [start + 3600, start + 7200]


async def test_bad_candle_requests_name_the_parameter(env: Env) -> None:
    spec = env.sim.engine.market(env.ticker).spec
    with pytest.raises(KalshiAPIError) as bad_period:
        await env.p.markets.get_market_candlesticks(
            spec.series_ticker, env.ticker, start_ts=0, end_ts=10, period_interval=5
        )
    assert bad_period.value.status == 400 and "period_interval" in str(bad_period.value)
    with pytest.raises(KalshiAPIError) as backwards:
        await env.p.markets.batch_get_market_candlesticks(
            market_tickers=env.ticker, start_ts=100, end_ts=10, period_interval=1
        )
    assert backwards.value.status == 400 and "end_ts" in str(backwards.value)
    with pytest.raises(KalshiAPIError) as wrong_series:
        await env.p.markets.get_market_candlesticks("KXOTHER", env.ticker, start_ts=0, end_ts=10, period_interval=1)
    assert wrong_series.value.status == 404
    with pytest.raises(KalshiAPIError) as no_event:
        await env.p.events.get_market_candlesticks_by_event(
            spec.series_ticker, "KXNOSUCH-26", start_ts=0, end_ts=10, period_interval=1
        )
    assert no_event.value.status == 400 and no_event.value.code == "event_not_found"  # the spec lists 400 here


def test_build_candles_rounds_the_mean_half_even_and_skips_periods_before_listing() -> None:
    def trade(ms: int, price: int, units: int) -> TradeEvent:
        return TradeEvent("t", "M", "m", price, units, "yes", "bid", False, ms)

    trades = [trade(61_000, 4001, 100), trade(62_000, 4002, 100)]
    quotes = [QuotePoint(61_000, 3900, 4100, 0)]
    candles = build_candles(trades, quotes, start_s=0, end_s=120, period_minutes=1, first_s=61)
    assert [c.end_s for c in candles] == [120]
    assert candles[0].mean_ticks == 4002  # 4001.5 rounds to the even tick
    assert candles[0].yes_bid.open == 0 and candles[0].yes_bid.close == 3900


async def test_forecast_percentiles_read_the_greater_markets(env: Env) -> None:
    # The seeded events hold "greater" strike markets; their prices make a distribution.
    engine = env.sim.engine
    m = next(v for v in engine.markets() if v.spec.strike_type == "greater")
    env.sim.step(50)
    now_s = env.clock.now // 1000
    got = await env.a.events.get_event_forecast_percentiles_history(
        m.spec.series_ticker, m.spec.event_ticker, percentiles=[1000, 9000], start_ts=now_s - 600, end_ts=now_s,
        period_interval=1,
    )  # fmt: skip
    assert got.forecast_history
    for point in got.forecast_history:
        low, high = point.percentile_points
        assert (low.percentile, high.percentile) == (1000, 9000)
        assert low.numerical_forecast <= high.numerical_forecast


async def test_forecasts_need_a_signed_request(env: Env) -> None:
    m = next(v for v in env.sim.engine.markets() if v.spec.strike_type == "greater")
    with pytest.raises(KalshiAPIError) as unsigned:
        await env.p.request(
            "GET",
            f"/series/{m.spec.series_ticker}/events/{m.spec.event_ticker}/forecast_percentile_history",
            params={"percentiles": "5000", "start_ts": 0, "end_ts": 1, "period_interval": 1},
        )
    assert unsigned.value.status == 401
