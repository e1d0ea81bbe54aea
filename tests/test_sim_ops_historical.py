"""The ``/historical/*`` operations: settled markets and old trades, fills and orders move there as the
cutoff (one hour behind the engine's clock) passes them, and the live endpoints stop serving them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from conftest import ManualClock
from kalshi.errors import KalshiAPIError
from kalshi.rest import AsyncKalshiClient
from kalshi.sim import Simulator, rest_controls
from kalshi.sim.engine import EngineError
from kalshi.sim.engine.historical import HistoricalCutoff
from kalshi.sim.rest.common import iso
from test_sim_rest_schema import add_quiet_market, rest_client

T0 = 1_767_225_600_000
HOUR = 3_600_000
GTC = "good_till_canceled"
STP = "taker_at_cross"


@dataclass
class Env:
    sim: Simulator
    clock: ManualClock
    a: AsyncKalshiClient
    b: AsyncKalshiClient
    p: AsyncKalshiClient


@pytest.fixture
async def env(kalshi_sim_factory: Callable[..., Simulator]) -> AsyncIterator[Env]:
    clock = ManualClock(T0)
    async with kalshi_sim_factory(seed=5, markets=2, clock_ms=clock, lifecycle=False) as sim:
        rest_controls(sim).limits.enabled = False
        a_auth, _ = sim.create_account_auth()
        b_auth, _ = sim.create_account_auth()
        async with rest_client(sim, a_auth) as a, rest_client(sim, b_auth) as b, rest_client(sim) as p:
            yield Env(sim, clock, a, b, p)


async def _order(c: AsyncKalshiClient, ticker: str, side: str, price: str, count: str) -> str:
    made = await c.orders.create_order_v2(
        ticker=ticker, side=side, price=price, count=count, client_order_id=str(uuid.uuid4()),
        time_in_force=GTC, self_trade_prevention_type=STP,
    )  # fmt: skip
    return made.order_id


async def test_a_settled_market_becomes_historical_when_the_cutoff_passes_it(env: Env) -> None:
    ticker = add_quiet_market(env.sim, "KXHIST-26-T1")
    live = add_quiet_market(env.sim, "KXHISTLIVE-26-T1")  # another event: KXHIST-26 settles as a whole
    env.clock.now = T0 + 10_000
    bought = await _order(env.a, ticker, "bid", "0.5500", "2.00")
    await _order(env.b, ticker, "ask", "0.5500", "2.00")
    resting = await _order(env.a, live, "bid", "0.1000", "1.00")
    env.clock.now = T0 + 20_000
    env.sim.do(lambda e: e.close_market(ticker))
    env.sim.do(lambda e: e.determine_market(ticker, "yes"))
    env.sim.do(lambda e: e.settle_market(ticker))

    env.clock.now = T0 + 30_000
    before = await env.p.historical.get_historical_cutoff()
    assert before.market_settled_ts == iso(T0 + 30_000 - HOUR)
    assert ticker not in [m.ticker for m in (await env.p.historical.get_historical_markets()).markets]
    with pytest.raises(KalshiAPIError) as not_yet:
        await env.p.historical.get_historical_market(ticker)
    assert not_yet.value.status == 404 and "not historical yet" in str(not_yet.value)
    assert (await env.p.historical.get_trades_historical(ticker=ticker)).trades == []
    assert (await env.a.historical.get_fills_historical()).fills == []
    live_trades = (await env.p.markets.get_trades(ticker=ticker)).trades
    assert len(live_trades) == 1

    env.clock.now = T0 + 20_000 + HOUR  # the cutoff reaches the settlement
    after = await env.p.historical.get_historical_cutoff()
    assert after.trades_created_ts == iso(T0 + 20_000) and after.orders_updated_ts == iso(T0 + 20_000)
    markets = (await env.p.historical.get_historical_markets()).markets
    assert [m.ticker for m in markets] == [ticker] and markets[0].result == "yes"
    assert (await env.p.historical.get_historical_market(ticker)).market.status == "finalized"
    old_trades = (await env.p.historical.get_trades_historical(ticker=ticker)).trades
    assert [t.trade_id for t in old_trades] == [t.trade_id for t in live_trades]
    assert (await env.p.markets.get_trades(ticker=ticker)).trades == []  # moved, not copied
    fills = (await env.a.historical.get_fills_historical(ticker=ticker)).fills
    assert [(f.order_id, f.count_fp) for f in fills] == [(bought, "2.00")]
    orders = (await env.a.historical.get_historical_orders()).orders
    assert [o.order_id for o in orders] == [bought]  # the resting order on the live market stays live
    assert resting not in [o.order_id for o in orders]
    positions = await env.a.historical.get_historical_positions()
    assert [p.ticker for p in positions.market_positions] == [ticker]
    assert positions.event_positions[0].event_ticker == "KXHIST-26"
    candles = await env.p.historical.get_market_candlesticks_historical(
        ticker, start_ts=T0 // 1000 + 1, end_ts=(T0 + 60_000) // 1000, period_interval=1
    )
    (candle,) = candles.candlesticks
    assert (candle.price.open, candle.price.close, candle.volume) == ("0.5500", "0.5500", "2.00")


async def _settle(env: Env, ticker: str, result: str = "yes") -> None:
    env.sim.do(lambda e: e.close_market(ticker))
    env.sim.do(lambda e: e.determine_market(ticker, result))
    env.sim.do(lambda e: e.settle_market(ticker))


async def test_the_live_endpoints_leave_what_the_cutoff_passed_to_historical(env: Env) -> None:
    # Event KXLIVE-26 has two markets: T1 settles early, T2 later; an event's positions move as a whole.
    first, second = add_quiet_market(env.sim, "KXLIVE-26-T1"), add_quiet_market(env.sim, "KXLIVE-26-T2")
    other = add_quiet_market(env.sim, "KXOPEN-26-T1")
    env.clock.now = T0 + 10_000
    bought = await _order(env.a, first, "bid", "0.5500", "2.00")
    await _order(env.b, first, "ask", "0.5500", "2.00")
    await _order(env.a, second, "bid", "0.3000", "1.00")
    await _order(env.b, second, "ask", "0.3000", "1.00")
    canceled = await _order(env.a, other, "bid", "0.2000", "1.00")
    await env.a.orders.cancel_order_v2(canceled)
    resting = await _order(env.a, other, "bid", "0.1000", "1.00")
    env.clock.now = T0 + 20_000
    await _settle(env, first)
    env.clock.now = T0 + 20_000 + 2 * HOUR  # the cutoff passes the trades, fills, closed orders and T1
    series, event = "KXLIVE", "KXLIVE-26"

    markets = [m.ticker for m in (await env.p.markets.get_markets(event_ticker=event)).markets]
    assert markets == [second]  # settled before the cutoff: only GET /historical/markets has it
    assert [m.ticker for m in (await env.p.historical.get_historical_markets(event_ticker=event)).markets] == [first]
    assert (await env.p.markets.get_trades(ticker=first)).trades == []
    assert len((await env.p.historical.get_trades_historical(ticker=first)).trades) == 1
    assert (await env.a.portfolio.get_fills()).fills == []
    assert {f.order_id for f in (await env.a.historical.get_fills_historical()).fills} >= {bought}
    live_orders = [o.order_id for o in (await env.a.orders.get_orders()).orders]
    assert live_orders == [resting]  # resting orders stay live whatever their age
    old_orders = {o.order_id for o in (await env.a.historical.get_historical_orders()).orders}
    assert {bought, canceled} <= old_orders and resting not in old_orders
    nested = (await env.p.events.get_event(event, with_nested_markets=True)).event.markets or []
    assert [m.ticker for m in nested] == [second]
    assert [m.ticker for m in (await env.p.events.get_event(event)).markets] == [second]
    with pytest.raises(KalshiAPIError) as archived:
        await env.p.markets.get_market_candlesticks(series, first, start_ts=0, end_ts=1, period_interval=1)
    assert archived.value.status == 404 and "/historical/markets/" in str(archived.value)

    # T2 is still open: the event's positions (T1's included) stay live, none are historical yet.
    live = (await env.a.portfolio.get_positions()).market_positions
    assert {first, second} <= {p.ticker for p in live}
    assert (await env.a.historical.get_historical_positions()).market_positions == []
    await _settle(env, second, "no")
    assert {p.ticker for p in (await env.a.portfolio.get_positions()).market_positions} >= {first, second}
    env.clock.now += 2 * HOUR  # now the whole event lies before the cutoff: its positions move together
    live_tickers = {p.ticker for p in (await env.a.portfolio.get_positions()).market_positions}
    assert not live_tickers & {first, second}
    moved = await env.a.historical.get_historical_positions(event_ticker=event)
    assert sorted(p.ticker for p in moved.market_positions) == [first, second]


async def test_historical_candles_of_a_live_market_are_a_404(env: Env) -> None:
    ticker = add_quiet_market(env.sim, "KXHIST-26-T3")
    with pytest.raises(KalshiAPIError) as live:
        await env.p.historical.get_market_candlesticks_historical(ticker, start_ts=0, end_ts=1, period_interval=1)
    assert live.value.status == 404


async def test_filters_and_pages_of_historical_trades(env: Env) -> None:
    ticker = add_quiet_market(env.sim, "KXHIST-26-T4")
    for i in range(5):
        env.clock.now = T0 + 1_000 * (i + 1)
        await _order(env.a, ticker, "bid", "0.4000", "1.00")
        await _order(env.b, ticker, "ask", "0.4000", "1.00")
    env.clock.now = T0 + HOUR + 10_000
    first = await env.p.historical.get_trades_historical(ticker=ticker, limit=2)
    second = await env.p.historical.get_trades_historical(ticker=ticker, limit=2, cursor=first.cursor)
    third = await env.p.historical.get_trades_historical(ticker=ticker, limit=2, cursor=second.cursor)
    ids = [t.trade_id for page in (first, second, third) for t in page.trades]
    assert len(ids) == len(set(ids)) == 5 and third.cursor == ""
    ranged = await env.p.historical.get_trades_historical(ticker=ticker, min_ts=T0 // 1000 + 2, max_ts=T0 // 1000 + 3)
    assert len(ranged.trades) == 2


def test_the_cutoff_trails_the_clock_and_only_moves_forward() -> None:
    cutoff = HistoricalCutoff(lag_ms=1000)
    assert cutoff.cutoff_ms(5000) == 4000
    assert cutoff.archive_through(4900, now_ms=5000) == 4900
    assert cutoff.archive_through(100, now_ms=5000) == 4900  # never back
    assert cutoff.is_historical(4900, 5000) and not cutoff.is_historical(4901, 5000)
    with pytest.raises(EngineError, match="past the present"):
        cutoff.archive_through(6000, now_ms=5000)
