"""One latent value per event keeps strike ladders coherent: in the model, and in the crowd's books.

Tolerance for the books. The crowd quotes each market 50 to 600 ticks either side of its fair value (snapped
outward by under one grid step, <= 100 ticks), and before acting on a market again it cancels every quote the
fair value has moved through by more than ``_REQUOTE_SLACK`` (100) or left by more than ``_QUOTE_BAND`` +
slack (800). So after a refresh every bid lies in [f - 800, f + 100] and every ask in [f - 100, f + 800], and
the mid lies within (800 + 100) / 2 = 450 ticks of the fair value f. Fair values are monotone in the strike,
so two adjacent strikes' mids can be inverted by at most 2 * 450 = 900 ticks (9 cents); an incoherent ladder
(the reported "above 5500" at 0.49 below "above 5525" at 0.78 is 2900 ticks) fails it. The buckets of a range
event sum to one in the model; their mids add each one's 450 plus up to 200 ticks of clamping (the crowd
never prices a bucket below 0.02) per bucket.

Last trades: a taker's limit is at most 400 ticks (plus a grid step) through the fair value, and the quotes it
meets were refreshed in the same step, so every trade prints within 500 ticks of the fair value at that
moment; two adjacent strikes' recent trades (both in the last checkpoint window, so the fair values barely
moved between them) are inverted by at most 2 * 500 = 1000 ticks. Measured over 60 runs: worst mid inversion
270 ticks, worst recent-trade inversion 500.
"""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ManualClock
from kalshi.sim.engine import Engine
from kalshi.sim.fair import UNIT, Interval, LatentValue, probability_ticks
from kalshi.sim.market import _FAIR_FLOOR, _QUOTE_BAND, _REQUOTE_SLACK, ActivityGenerator, MarketUniverse

T0 = 1_700_000_000_000
MID_BAND = (_QUOTE_BAND + 2 * _REQUOTE_SLACK) // 2
LADDER_TOLERANCE = 2 * MID_BAND
TRADE_TOLERANCE = 2 * (400 + 100)
assert LADDER_TOLERANCE == 900
CHECK_EVERY = 150


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    value=st.integers(-(10**6) * UNIT, 10**6 * UNIT),
    width=st.integers(1, 10**4 * UNIT),
    base=st.integers(-(10**5), 10**5),
    unit=st.integers(1, 1000),
    count=st.integers(3, 8),
)
def test_model_prices_fall_with_the_strike_and_buckets_sum_to_one(
    value: int, width: int, base: int, unit: int, count: int
) -> None:
    strikes = [base + k * unit for k in range(count)]
    above = [probability_ticks(value, Interval.above(k), width) for k in strikes]
    assert all(0 <= p <= 10_000 for p in above)
    assert above == sorted(above, reverse=True), "P(above K) never rises with K"
    buckets = [Interval.below(strikes[0])]
    buckets += [Interval.between(lo, hi - 1) for lo, hi in itertools.pairwise(strikes)]
    buckets.append(Interval.above(strikes[-1] - 1))
    prices = [probability_ticks(value, b, width) for b in buckets]
    assert abs(sum(prices) - 10_000) <= len(buckets), "buckets partition the outcomes (up to rounding)"
    outcome = [b.contains(value) for b in buckets]
    assert outcome.count(True) == 1


@settings(derandomize=True, max_examples=50, deadline=None)
@given(seed=st.integers(0, 10**6), elapsed=st.integers(0, 10 * 3_600_000))
def test_spread_narrows_to_the_close_and_the_walk_is_deterministic(seed: int, elapsed: int) -> None:
    def walk() -> LatentValue:
        latent = LatentValue(
            value=5500 * UNIT, sigma=30 * UNIT, period_ms=3_600_000, close_ms=T0 + 3_600_000, updated_ms=T0
        )
        latent.advance(random.Random(seed), T0 + elapsed)
        return latent

    latent = walk()
    assert latent == walk()
    assert latent.updated_ms == min(T0 + elapsed, latent.close_ms), "the walk stops at the close"
    assert latent.width(T0) >= latent.width(T0 + elapsed) >= latent.width(latent.close_ms) > 0


def mids(engine: Engine, tickers: list[str]) -> dict[str, float]:
    out = {}
    for ticker in tickers:
        state = engine.ticker_state(ticker)
        if engine.market(ticker).status == "active" and state.yes_bid_ticks and state.yes_ask_ticks < 10_000:
            out[ticker] = (state.yes_bid_ticks + state.yes_ask_ticks) / 2
    return out


@settings(derandomize=True, max_examples=8, deadline=None)
@given(seed=st.integers(0, 10**6), quick=st.booleans())
def test_crowd_books_are_monotone_in_strike(seed: int, quick: bool) -> None:
    clock = ManualClock(T0)
    engine = Engine(clock, seed=seed, history_limit=1000)
    universe = MarketUniverse.generate(seed, 12, now_ms=T0, engine=engine, quick=quick)
    activity = ActivityGenerator(engine, seed, universe=universe, lifecycle=True)
    checked = 0
    dt = 50 if quick else 20_000  # quick: the pace of `kalshi sim` (20 actions/s)
    for step in range(1, 1201):
        clock.now += dt
        activity.step()
        engine.drain_events()
        if step % CHECK_EVERY:
            continue
        for event in engine.events():
            tickers = [t for t in universe.event_markets(event.event_ticker) if engine.market(t).status == "active"]
            if event.is_multivariate or len(tickers) < 2:
                continue
            specs = {t: engine.market(t).spec for t in tickers}
            latent = universe.latents[event.event_ticker]  # read, not walked: the run is left undisturbed
            fair = {t: latent.fair_ticks(universe.intervals[t], clock.now) for t in tickers}
            quoted = mids(engine, tickers)
            if event.mutually_exclusive:
                assert abs(sum(fair.values()) - 10_000) <= len(tickers)
                if len(quoted) == len(tickers):
                    slack = len(tickers) * (MID_BAND + _FAIR_FLOOR)
                    assert abs(sum(quoted.values()) - 10_000) <= slack, (event.event_ticker, quoted)
                    checked += 1
                continue
            ladder = sorted(tickers, key=lambda t: specs[t].floor_strike or 0)
            assert [fair[t] for t in ladder] == sorted((fair[t] for t in ladder), reverse=True)
            priced = [t for t in ladder if t in quoted]
            for low, high in itertools.pairwise(priced):
                assert quoted[high] <= quoted[low] + LADDER_TOLERANCE, (low, quoted[low], high, quoted[high])
                checked += 1
            recent = {}
            for t in ladder:
                trades = engine.trades(t)
                if trades and trades[-1].ts_ms > clock.now - CHECK_EVERY * dt:
                    recent[t] = trades[-1].yes_price_ticks
            traded = [t for t in ladder if t in recent]
            for low, high in itertools.pairwise(traded):
                assert recent[high] <= recent[low] + TRADE_TOLERANCE, (low, recent[low], high, recent[high])
                checked += 1
    assert checked > 0
