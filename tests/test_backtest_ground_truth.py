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

The scenario is deterministic, so the comparison means the same thing every run:

* the simulator runs on :class:`ScenarioClock`, not the wall clock: the crowd's fair values are a latent value
  per event walked by the elapsed exchange time, so a wall clock gave different books (and fills) every run;
* ``rate=0``: the activity happens only in :meth:`Simulator.step`, between quiescent checkpoints, so the
  strategy's REST requests never race it;
* the markets are chosen explicitly (two markets of one event, on a series with maker fees, so both fee
  roundings are exercised) and their fee schedule is read from the simulator;
* the market maker has no minimum quote life (a wall-clock rule) and no timer.

Live, the engine's fills are then the same every run (checked by hand: identical fill lists run after run);
what still varies is only the receive stamps, hence the measured latency, which the backtest's exchange-time
alignment absorbs. A maker fill that differs changes the position and so the strategy's later decisions (its
inventory-reducing IOC orders), so the exact taker comparison needs the maker fills to agree too.

The scenario runs at several step lengths (the exchange time per activity step, which changes the crowd's
books and so which levels the strategy joins). Two parts of the model make them agree: the queue model pairs
a level's decreases and trades in recorded order (the latest decreases before a trade are its own, earlier
ones are cancels that happened before it, and the recording account's own deltas say which trade volume was
its own), and self-trade prevention cancels an inventory-reducing IOC that would meet the strategy's own
resting quote, as the engine does.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from kalshi.backtest import FeeSchedule, run_async
from kalshi.record import Recorder
from kalshi.rest import AsyncKalshiClient, RateLimiter
from kalshi.sim import Simulator
from kalshi.sim.rest.controls import rest_controls
from kalshi.strategy import MarketMaker
from kalshi.strategy.live import LiveRunner
from kalshi.strategy.stream import FrameTap
from kalshi.ws import KalshiWebSocket

SEED = 11
STEPS = 400
START_MS = 1_780_000_000_000  # 2026-05-28T20:26:40Z: the exchange's clock at the start of every run
# Exchange time per activity step (the crowd's fair values walk by it). Checked by hand to agree exactly (maker
# and taker) at 1, 2, 5, 7, 10, 15, 25, 30, 40, 45 and 50 s; at 3 and 90 s the scenario has no taker fill, and
# at 60 s an IOC decided right after the strategy's own taker fill sees a level its fill emptied live but the
# recording removes only later (the model has no market impact).
STEPS_MS = (1_000, 10_000, 30_000, 45_000)
# Maker fills whose queue place depended on unobservable cancels ahead: at most this share of maker fills (by
# (order, price) group) may differ. Justification: the simulator's crowd cancels a random resting order, so at
# a level the strategy joined a cancel may come from ahead of it, which aggregated levels cannot show; "cancels
# come from the back" can then only delay such a fill, never invent one at a price the book did not trade. With
# the ordered pairing none differs at these steps (fees and PnL are then compared exactly, below).
MAKER_TOLERANCE = 0.1


class ScenarioClock:
    """The simulator's epoch-ms clock: exactly ``start + k * step`` while the ``k``-th activity step runs (so the
    crowd's values walk the same way every run), then running with the wall clock until the next step (capped
    below it), so the exchange stamps the strategy's own orders when it handled them, as the backtest's
    alignment of exchange time to receive time expects."""

    def __init__(self, start_ms: int, step_ms: int) -> None:
        self.base = start_ms
        self.step_ms = step_ms
        self._since: int | None = None

    def __call__(self) -> int:
        if self._since is None:
            return self.base
        return self.base + min(time.monotonic_ns() // 1_000_000 - self._since, self.step_ms - 1)

    def step(self, sim: Simulator) -> None:
        """Run one activity step at the next step time."""
        self.base += self.step_ms
        self._since = None
        sim.step(1)
        self._since = time.monotonic_ns() // 1_000_000


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


def choose_markets(sim: Simulator) -> tuple[str, ...]:
    """Two markets of the first event whose series charges maker fees (both fee roundings then matter)."""
    by_event: defaultdict[str, list[str]] = defaultdict(list)
    for market in sim.engine.markets():
        spec = market.spec
        if spec.maker_fee_bp > 0 and not spec.is_multivariate and market.status == "active":
            by_event[spec.event_ticker].append(spec.ticker)
    event = next(e for e, tickers in by_event.items() if len(tickers) >= 2)
    return tuple(by_event[event][:2])


FillKey = tuple[str, str, str, int]  # (order sequence number, ticker, side, price)


def per_order_and_price(fills: Iterable[tuple[str, str, str, int, int, int]]) -> dict[FillKey, tuple[int, int]]:
    """Units and fees summed per (order, price): a taker order that met several makers at one level is several
    engine fills but one recorded level decrease, and its fee rounds on the order's running total, so the sums
    are what a recording can reproduce exactly. Orders are named by their client order id's number."""
    out: dict[FillKey, tuple[int, int]] = {}
    for cid, ticker, side, price, units, fee in fills:
        key = (cid.lstrip("abcdefghijklmnopqrstuvwxyz-"), ticker, side, price)
        total, fees = out.get(key, (0, 0))
        out[key] = (total + units, fees + fee)
    return out


@pytest.mark.parametrize("step_ms", STEPS_MS)
async def test_backtest_reproduces_the_simulators_account(tmp_path: Path, step_ms: int) -> None:
    rec = tmp_path / "rec"
    clock = ScenarioClock(START_MS, step_ms)
    async with Simulator(
        seed=SEED,
        markets=3,
        rate=0,
        clock_ms=clock,
        lifecycle=False,
        ping_interval=0,
        command_rate=1e6,
        command_burst=1_000_000,
    ) as sim:
        rest_controls(sim).limits.enabled = False
        auth, account = sim.create_account_auth()
        tickers = choose_markets(sim)
        start_cash = sim.engine.balance(account).cash_micros
        stop = asyncio.Event()
        with Recorder(rec) as recorder:
            tap = FrameTap(recorder.add_frame)  # the runner sees frames in wire order, as the backtest will
            ws = KalshiWebSocket(auth=auth, config=sim.config, on_raw_frame=tap)
            rest = AsyncKalshiClient(sim.config, auth=auth, rate_limiter=RateLimiter.unlimited(), rng=random.Random(0))
            async with rest, ws.connect() as session:
                runner = LiveRunner(strategy(tickers), session, rest, markets=tickers, tap=tap, id_prefix="gt-")
                task = asyncio.create_task(runner.run(stop=stop))
                await until(lambda: all(t in runner.books for t in tickers))
                await checkpoint(sim, session, runner, task)
                for _ in range(STEPS):
                    clock.step(sim)
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
        # The fee schedule of the chosen markets, as the simulator charges it.
        schedules = {
            (m.spec.taker_fee_bp, m.spec.maker_fee_bp) for m in sim.engine.markets() if m.spec.ticker in tickers
        }
        assert len(schedules) == 1, schedules
        ((taker_bp, maker_bp),) = schedules
        assert maker_bp > 0

    result = await run_async(
        strategy(tickers),
        rec,
        order_latency_ms=latency_ms,
        cash_micros=start_cash,
        fees=FeeSchedule(taker_fee_bp=taker_bp, maker_fee_bp=maker_bp),
    )
    summary = result.summary
    backtest_fills = result.fills.to_pylist()

    def live(taker: bool) -> list[tuple[str, str, str, int, int, int]]:
        return [
            (f.client_order_id or "", f.ticker, f.book_side, f.yes_price_ticks, f.count_units, f.fee_micros)
            for f in engine_fills
            if f.is_taker == taker
        ]

    def backtest(taker: bool) -> list[tuple[str, str, str, int, int, int]]:
        return [
            (f["client_order_id"], f["ticker"], f["side"], f["price_ticks"], f["count_units"], f["fee_micros"])
            for f in backtest_fills
            if f["is_taker"] == taker
        ]

    assert engine_fills, "the scenario must trade"
    live_taker, bt_taker = per_order_and_price(live(True)), per_order_and_price(backtest(True))
    assert live_taker, "the scenario must have taker fills"
    assert any(fee for _, fee in live_taker.values()), "the taker fees must be exercised"
    # Taker fills agree exactly: the same orders fill the same units at the same prices and pay the same fees.
    assert bt_taker == live_taker
    live_maker = Counter(per_order_and_price(live(False)).items())
    bt_maker = Counter(per_order_and_price(backtest(False)).items())
    assert any(fee for _, (_, fee) in live_maker), "the maker fees must be exercised"
    differing = sum(((live_maker - bt_maker) + (bt_maker - live_maker)).values())
    assert differing <= MAKER_TOLERANCE * max(sum(live_maker.values()), 1), (live_maker, bt_maker)
    if differing == 0:
        # With the same fills, fees and final PnL agree exactly (positions are settled, so PnL is cash).
        assert summary.fees_micros == sum(f.fee_micros for f in engine_fills)
        assert summary.end_cash_micros == end_cash
        assert summary.final_positions == {}
