"""Seeded market activity: the universe, the crowd's order flow, lifecycle actions, index walks."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from conftest import ManualClock
from kalshi.sim.engine import (
    BookDelta,
    Engine,
    Event,
    EventLifecycleEvent,
    FillEvent,
    MarketLifecycleEvent,
    TradeEvent,
    is_valid_price,
)
from kalshi.sim.market import CROWD_ACCOUNTS, ActivityGenerator, IndexWalk, MarketUniverse

T0 = 1_700_000_000_000


def session(
    seed: int, steps: int, *, markets: int = 12, lifecycle: bool = False, quick: bool = False
) -> tuple[Engine, list[Event]]:
    clock = ManualClock(T0)
    engine = Engine(clock, seed=seed)
    universe = MarketUniverse.generate(seed, markets, now_ms=clock.now, engine=engine, quick=quick)
    activity = ActivityGenerator(engine, seed, universe=universe, lifecycle=lifecycle)
    events = engine.drain_events()
    for _ in range(steps):
        clock.now += 250
        activity.step()
        events.extend(engine.drain_events())
    return engine, events


def test_universe_has_sub_penny_multivariate_and_strikes() -> None:
    universe = MarketUniverse.generate(3, 24)
    assert len(universe.markets) == 24
    tickers = [m.ticker for m in universe.markets]
    assert len(set(tickers)) == 24
    structures = Counter(m.price_level_structure for m in universe.markets)
    assert structures["deci_cent"] and structures["tapered_deci_cent"] and structures["linear_cent"]
    combos = [m for m in universe.markets if m.is_multivariate]
    assert len(combos) == 3
    for combo in combos:
        assert len(combo.mve_selected_legs) == 2 and combo.mve_collection_ticker
        assert all(
            leg.market_ticker in tickers and not leg.market_ticker.startswith("KXMVE")
            for leg in combo.mve_selected_legs
        )
        assert next(e for e in universe.events if e.event_ticker == combo.event_ticker).is_multivariate
    singles = [m for m in universe.markets if not m.is_multivariate]
    for m in singles:
        assert m.strike_type in ("greater", "less", "between")
        assert isinstance(m.floor_strike if m.strike_type != "less" else m.cap_strike, Decimal)
        if m.strike_type == "between":
            assert m.floor_strike is not None and m.cap_strike is not None and m.floor_strike <= m.cap_strike
    # A range event's buckets are mutually exclusive; "above" ladders are not.
    for event in universe.events:
        kinds = {m.strike_type for m in singles if m.event_ticker == event.event_ticker}
        assert event.mutually_exclusive == ("between" in kinds)
    assert any(e.mutually_exclusive for e in universe.events)
    assert {m.event_ticker for m in universe.markets} == {e.event_ticker for e in universe.events}
    assert {m.series_ticker for m in universe.markets} == {s.series_ticker for s in universe.series}
    for market in universe.markets:
        assert is_valid_price(market.ranges(), universe.fair_values[market.ticker])
        assert market.close_time_ms is not None and market.close_time_ms > universe.now_ms
    assert MarketUniverse.generate(3, 24) == universe
    assert MarketUniverse.generate(4, 24).markets != universe.markets
    assert len(MarketUniverse.generate(9, 1).markets) == 1
    with pytest.raises(ValueError):
        MarketUniverse.generate(1, 0)


def test_install_emits_event_and_market_creation() -> None:
    engine = Engine(ManualClock(T0), seed=1)
    universe = MarketUniverse.generate(5, 10, now_ms=T0, engine=engine)
    events = engine.drain_events()
    created = [e for e in events if isinstance(e, MarketLifecycleEvent)]
    assert [e.ticker for e in created] == [m.ticker for m in universe.markets]
    assert {e.ticker for e in created if e.is_multivariate} == {m.ticker for m in universe.markets if m.is_multivariate}
    assert len([e for e in events if isinstance(e, EventLifecycleEvent)]) == len(universe.events)
    assert all(m.status == "active" for m in engine.markets())


def test_same_seed_same_session_and_different_seed_differs() -> None:
    _, first = session(21, 400)
    _, again = session(21, 400)
    _, other = session(22, 400)
    assert first == again
    assert first != other
    kinds = Counter(type(e).__name__ for e in first)
    assert kinds["TradeEvent"] > 20 and kinds["BookDelta"] > 200 and kinds["FillEvent"] == 2 * kinds["TradeEvent"]
    assert kinds["TickerEvent"] > 0 and kinds["OrderUpdate"] > 0


def test_crowd_flow_keeps_the_exchange_consistent() -> None:
    engine, events = session(8, 1500)
    books: dict[str, Counter[tuple[str, int]]] = {}
    for ev in events:
        if isinstance(ev, BookDelta):
            books.setdefault(ev.ticker, Counter())[(ev.side, ev.price_ticks)] += ev.delta_units
    for market in engine.markets():
        yes, no = engine.book_levels(market.ticker)
        if yes and no:
            assert yes[0][0] < 10_000 - no[0][0]
        replayed = {k: v for k, v in books.get(market.ticker, Counter()).items() if v}
        assert replayed == {("yes", p): u for p, u in yes} | {("no", p): u for p, u in no}
        assert sum(engine.position(a, market.ticker).position_units for a in engine.accounts()) == 0
        for trade in engine.trades(market.ticker):
            assert is_valid_price(market.price_ranges, trade.yes_price_ticks)
    assert set(engine.accounts()) == set(CROWD_ACCOUNTS)
    for account in engine.accounts():
        assert engine.balance(account).available_micros > 0
        for fill in engine.fills(account)[-50:]:
            spec = engine.market(fill.ticker).spec
            if not spec.fractional_trading_enabled:
                assert fill.count_units % 100 == 0
    fills = [e for e in events if isinstance(e, FillEvent)]
    assert any(f.is_taker for f in fills) and any(not f.is_taker for f in fills)


def test_without_lifecycle_no_market_changes_state() -> None:
    engine, events = session(2, 300)
    assert all(m.status == "active" for m in engine.markets())
    assert {e.event_type for e in events if isinstance(e, MarketLifecycleEvent)} == {"created"}


def test_quick_lifecycle_settles_markets_and_lists_successors() -> None:
    engine, events = session(4, 600, lifecycle=True, quick=True)  # 150 simulated seconds
    kinds = Counter(e.event_type for e in events if isinstance(e, MarketLifecycleEvent))
    assert kinds["determined"] == kinds["settled"] > 0
    assert kinds["close_date_updated"] == 0  # nothing closes early: markets settle at their close time
    assert kinds["created"] == 12 + kinds["settled"]  # each settled market's series listed a successor
    settled = [m for m in engine.markets() if m.status == "settled"]
    assert settled and all(m.result in ("yes", "no") for m in settled)
    for market in settled:
        assert engine.book_levels(market.ticker) == ([], [])
        assert all(engine.position(a, market.ticker).position_units == 0 for a in engine.accounts())
    assert len(engine.trading_tickers()) == 12
    assert any(isinstance(e, TradeEvent) for e in events)
    _, again = session(4, 600, lifecycle=True, quick=True)
    assert again == events


def test_lifecycle_needs_a_universe() -> None:
    with pytest.raises(ValueError):
        ActivityGenerator(Engine(ManualClock(T0)), 1, lifecycle=True)


def test_generator_without_universe_trades_existing_markets() -> None:
    clock = ManualClock(T0)
    engine = Engine(clock)
    MarketUniverse.generate(6, 3, engine=engine)
    activity = ActivityGenerator(engine, 6, accounts=("x", "y"))
    for _ in range(200):
        clock.now += 100
        activity.step()
    assert activity.steps == 200
    assert engine.accounts() == ["x", "y"]
    assert sum(len(engine.fills(a)) for a in engine.accounts()) > 0


def test_index_walk_is_deterministic_and_exact() -> None:
    ids = ["BRTI", "ETHUSD_RTI", "BTC", "UNKNOWN"]
    walk = IndexWalk(11, ids)
    same = IndexWalk(11, ids)
    assert walk.ids == tuple(ids) and walk.value("UNKNOWN") == Decimal(100)
    for step in range(200):
        now = T0 + step * 1000
        ticks = walk.step(now)
        assert ticks == same.step(now)
        assert [t.index_id for t in ticks] == ids
        for tick in ticks:
            assert tick.value > 0 and tick.value == tick.value.quantize(Decimal("0.00000001"))
            assert len(tick.value_usd.split(".")[1]) == 8
            assert now - 40 <= tick.source_ts_ms < tick.received_at_ms == now
    assert walk.value("BRTI") != Decimal(68000)
    assert abs(walk.value("BRTI") / Decimal(68000) - 1) < Decimal("0.2")
    custom = IndexWalk(1, ["X"], start_values={"X": Decimal("2.5")})
    assert custom.value("X") == Decimal("2.5")
    assert IndexWalk(12, ids).step(T0) != IndexWalk(11, ids).step(T0)
