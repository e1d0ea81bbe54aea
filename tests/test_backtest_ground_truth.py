"""Ground truth: the example strategy live against the simulator while recording, then backtested on that recording.

The live run trades through REST and the streaming client (LiveRunner) while a Recorder taps the same session;
the simulator's engine is the truth (its fills, fees and cash). The backtest replays the recording with the
order latency measured live (half the median REST round trip) and must reproduce the engine's account.

Scenario: seeded activity one action at a time (each followed by a quiescent checkpoint), the market maker
stepping one cent inside the spread (``improve=100``), so its quotes usually stand alone at their price and the
queue position is known exactly, plus inventory-reducing IOC orders (taker fills). When the spread is too
narrow to step inside, it joins a level and its queue place then depends on which orders ahead the activity
cancels, which a recording of aggregated levels cannot tell: those maker fills are the only ones allowed to
differ (tolerance below).
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from kalshi.backtest import FeeSchedule, run_async
from kalshi.record import Recorder
from kalshi.rest import AsyncKalshiClient, RateLimiter
from kalshi.sim import Simulator
from kalshi.sim.rest.controls import rest_controls
from kalshi.strategy import MarketMaker
from kalshi.strategy.live import LiveRunner
from kalshi.strategy.stream import FrameTap
from kalshi.ws import KalshiWebSocket

STEPS = 400
# Maker fills whose queue place depended on unobservable cancels ahead: at most this share of maker fills may
# differ (by count). Justification: only quotes that had to join an existing level can differ, and "cancels
# come from the back" can only delay such a fill, never invent one at a price the book did not trade.
MAKER_TOLERANCE = 0.25


async def until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    async with asyncio.timeout(limit):
        for _ in itertools.count():
            if condition():
                return
            await asyncio.sleep(0.001)


async def checkpoint(sim: Simulator, session: KalshiWebSocket, runner: LiveRunner, task: asyncio.Task[None]) -> None:
    """Quiescent point: the simulator wrote everything, the runner handled it and every REST request returned,
    repeated until the runner's reactions produce nothing new."""
    for _ in range(20):
        before = runner.events
        await sim.quiesce()
        await session.list_subscriptions()  # the client processed every earlier frame
        await until(lambda: runner.caught_up() or task.done())
        if task.done():
            task.result()  # the runner failed: show why
            raise AssertionError("the live runner stopped")
        if runner.events == before:
            return
    raise AssertionError("the live runner never became quiet")


def strategy(tickers: tuple[str, ...]) -> MarketMaker:
    return MarketMaker(size=300, max_position=600, hard_limit=600, improve=100, markets=tickers, min_quote_life_s=0)


async def test_backtest_reproduces_the_simulators_account(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    async with Simulator(
        seed=11, markets=3, rate=0, lifecycle=False, ping_interval=0, command_rate=1e6, command_burst=1_000_000
    ) as sim:
        rest_controls(sim).limits.enabled = False
        auth, account = sim.create_account_auth()
        tickers = tuple(sim.tickers[:2])
        start_cash = sim.engine.balance(account).cash_micros
        stop = asyncio.Event()
        with Recorder(rec) as recorder:
            tap = FrameTap(recorder.add_frame)  # the runner sees frames in wire order, as the backtest will
            ws = KalshiWebSocket(auth=auth, config=sim.config, on_raw_frame=tap)
            rest = AsyncKalshiClient(sim.config, auth=auth, rate_limiter=RateLimiter.unlimited(), rng=random.Random(0))
            async with rest, ws.connect() as session:
                runner = LiveRunner(strategy(tickers), session, rest, markets=tickers, tap=tap)
                task = asyncio.create_task(runner.run(stop=stop))
                await until(lambda: all(t in runner.books for t in tickers))
                await checkpoint(sim, session, runner, task)
                for _ in range(STEPS):
                    sim.step(1)
                    await checkpoint(sim, session, runner, task)
                for ticker in tickers:
                    result = "yes" if sim.engine.ticker_state(ticker).last_price_ticks >= 5000 else "no"
                    sim.do(lambda e, t=ticker, r=result: e.determine_market(t, r))
                    sim.do(lambda e, t=ticker: e.settle_market(t))
                await checkpoint(sim, session, runner, task)
                stop.set()
                await task
        engine_fills = [f for f in sim.engine.fills(account) if f.ticker in tickers]
        end_cash = sim.engine.balance(account).cash_micros
        assert sim.engine.orders(account, "resting") == []
        assert runner.median_round_trip is not None
        latency_ms = runner.median_round_trip / 2 * 1000
        # The simulator's universe gives some series maker fees: the backtest is told the markets' schedule.
        schedules = {
            (m.spec.taker_fee_bp, m.spec.maker_fee_bp) for m in sim.engine.markets() if m.spec.ticker in tickers
        }
        assert len(schedules) == 1, schedules
        ((taker_bp, maker_bp),) = schedules

    result = await run_async(
        strategy(tickers),
        rec,
        order_latency_ms=latency_ms,
        cash_micros=start_cash,
        fees=FeeSchedule(taker_fee_bp=taker_bp, maker_fee_bp=maker_bp),
    )
    summary = result.summary
    backtest_fills = result.fills.to_pylist()

    def key(ticker: str, side: str, price: int, count: int, fee: int) -> tuple[str, str, int, int, int]:
        return (ticker, side, price, count, fee)

    live_taker = [
        key(f.ticker, f.book_side, f.yes_price_ticks, f.count_units, f.fee_micros) for f in engine_fills if f.is_taker
    ]
    bt_taker = [
        key(f["ticker"], f["side"], f["price_ticks"], f["count_units"], f["fee_micros"])
        for f in backtest_fills
        if f["is_taker"]
    ]
    live_maker = Counter(
        key(f.ticker, f.book_side, f.yes_price_ticks, f.count_units, f.fee_micros)
        for f in engine_fills
        if not f.is_taker
    )
    bt_maker = Counter(
        key(f["ticker"], f["side"], f["price_ticks"], f["count_units"], f["fee_micros"])
        for f in backtest_fills
        if not f["is_taker"]
    )
    assert engine_fills, "the scenario must trade"
    assert live_taker, "the scenario must have taker fills"
    assert bt_taker == live_taker  # taker fills agree exactly: price, size and fee, in order
    differing = sum(((live_maker - bt_maker) + (bt_maker - live_maker)).values())
    assert differing <= MAKER_TOLERANCE * max(sum(live_maker.values()), 1), (live_maker, bt_maker)
    if differing == 0:
        # With the same fills, fees and final PnL agree exactly (positions are settled, so PnL is cash).
        assert summary.fees_micros == sum(f.fee_micros for f in engine_fills)
        assert summary.end_cash_micros == end_cash
        assert summary.final_positions == {}
