"""Fees: Kalshi's schedule (rate * C * P * (1 - P), rounded up to the cent per order) agrees with the engine."""

from __future__ import annotations

import random

import pytest

from kalshi.backtest.fees import FeeSchedule, fee_for_fill, fee_total
from kalshi.backtest.matching import SimulatedExchange
from kalshi.sim.engine import MICROS_PER_DOLLAR, Engine, EventSpec, MarketSpec
from kalshi.strategy.types import Fill, OrderState


def test_fee_examples_by_hand() -> None:
    # 0.07 * 10 contracts * 0.50 * 0.50 = $0.175 -> $0.18
    fee, acc = fee_for_fill(0, 700, 1000, 5000)
    assert fee == 180_000
    # One contract at 0.50: $0.0175 -> $0.02; a second one adds $0.0175: the order's total is $0.035 -> $0.04,
    # so the second fill costs only what it adds to the rounded total: $0.02.
    first, acc = fee_for_fill(0, 700, 100, 5000)
    second, acc = fee_for_fill(acc, 700, 100, 5000)
    assert (first, second) == (20_000, 20_000) and fee_total(acc) == 40_000
    third, acc = fee_for_fill(acc, 700, 100, 5000)
    assert third == 20_000  # total $0.0525 -> $0.06
    # At 0.90 one contract costs $0.0063: totals $0.0063, $0.0126, $0.0189 round to 1, 2, 2 cents, so the third
    # fill of the order is free.
    acc = 0
    fees = []
    for _ in range(3):
        fee, acc = fee_for_fill(acc, 700, 100, 9000)
        fees.append(fee)
    assert fees == [10_000, 10_000, 0]
    assert fee_for_fill(0, 0, 1000, 5000)[0] == 0  # no maker fee
    # 175 bp maker fee at 0.90: 0.0175 * 1 * 0.9 * 0.1 = $0.001575 -> $0.01
    assert fee_for_fill(0, 175, 100, 9000)[0] == 10_000
    with pytest.raises(ValueError):
        FeeSchedule(taker_fee_bp=-1)


def _engine(taker_bp: int, maker_bp: int) -> Engine:
    engine = Engine(clock_ms=lambda: 1_700_000_000_000, seed=3)
    engine.add_event(EventSpec(event_ticker="E", series_ticker="S", title="E"))
    engine.add_market(
        MarketSpec(
            ticker="T", event_ticker="E", series_ticker="S", title="T", taker_fee_bp=taker_bp, maker_fee_bp=maker_bp
        )
    )
    engine.open_account("maker", 10**6 * MICROS_PER_DOLLAR)
    engine.open_account("taker", 10**6 * MICROS_PER_DOLLAR)
    return engine


@pytest.mark.parametrize("seed", range(6))
def test_backtest_fees_equal_the_engine_s_on_random_sweeps(seed: int) -> None:
    rng = random.Random(seed)
    taker_bp, maker_bp = rng.choice([(700, 0), (700, 175), (350, 0), (1000, 250)])
    engine = _engine(taker_bp, maker_bp)
    levels = sorted({100 * rng.randrange(1, 99) for _ in range(rng.randint(1, 6))})  # the cent grid
    asks = [(p, rng.randint(1, 700)) for p in levels]  # sizes in units: fractional contracts too
    for price, units in asks:
        engine.place_order("maker", "T", "ask", price, units)
    limit = rng.choice(levels)
    count = rng.randint(1, sum(u for _, u in asks) + 100)
    engine.place_order("taker", "T", "bid", limit, count, time_in_force="immediate_or_cancel")
    engine_fills = engine.fills("taker", "T")
    maker_fills = engine.fills("maker", "T")

    fills: list[Fill] = []
    ex = SimulatedExchange(
        lambda r: fills.append(r) if isinstance(r, Fill) else None,
        lambda: 0,
        fees=FeeSchedule(taker_fee_bp=taker_bp, maker_fee_bp=maker_bp),
    )
    ex.snapshot("T", [], [(10_000 - p, u) for p, u in asks])
    ex.place(OrderState("c", "T", "bid", limit, count, "immediate_or_cancel", False, remaining=count))
    assert [(f.price, f.count, f.fee) for f in fills] == [
        (f.yes_price_ticks, f.count_units, f.fee_micros) for f in engine_fills
    ]
    # The makers' fees follow the same per-order rounding; each maker order is one level here.
    for f in maker_fills:
        assert f.fee_micros == fee_for_fill(0, maker_bp, f.count_units, f.yes_price_ticks)[0]
