"""Markets settle at their close time, never before, and their series list the next event (engine level).

The clock is injected and advanced by the tests; nothing sleeps.
"""

from __future__ import annotations

from collections import Counter

from conftest import ManualClock
from kalshi.sim.engine import Engine, Event, MarketLifecycleEvent, MarketView
from kalshi.sim.market import ActivityGenerator, MarketUniverse

T0 = 1_700_000_000_000
HOUR = 3_600_000


def exchange(
    seed: int, markets: int = 12, *, quick: bool = False, lifecycle: bool = True
) -> tuple[ManualClock, Engine, MarketUniverse, ActivityGenerator]:
    clock = ManualClock(T0)
    engine = Engine(clock, seed=seed, history_limit=2000)
    universe = MarketUniverse.generate(seed, markets, now_ms=clock.now, engine=engine, quick=quick)
    activity = ActivityGenerator(engine, seed, universe=universe, lifecycle=lifecycle)
    return clock, engine, universe, activity


def close_of(view: MarketView) -> int:
    assert view.close_time_ms is not None
    return view.close_time_ms


def test_markets_settle_at_their_close_never_before_and_series_roll_for_hours() -> None:
    clock, engine, _, activity = exchange(5)
    assert len(engine.trading_tickers()) == 12
    starting_series = Counter(e.series_ticker for e in engine.events())
    assert starting_series["KXBTCD"] + starting_series["KXETHD"] > 0
    # A live exchange lists today's events: nothing closes within the first period (an hour at least).
    assert min(close_of(m) for m in engine.markets()) >= T0 + HOUR
    events: list[Event] = engine.drain_events()
    dt = 60_000
    for step in range(30 * HOUR // dt):  # thirty simulated hours
        clock.now += dt
        activity.step()
        events.extend(engine.drain_events())
        assert len(engine.trading_tickers()) == 12, "the set of live markets stays the same size"
        if step % 20 == 0:
            for market in engine.markets():
                if close_of(market) > clock.now:
                    assert market.status == "active", f"{market.ticker} left trading before its close time"
                else:
                    assert market.status == "settled", f"{market.ticker} is {market.status} after its close"
    for market in engine.markets("settled"):
        # Settled in the first step at or after the close.
        assert market.settled_ts_ms is not None and 0 <= market.settled_ts_ms - close_of(market) < dt
    lifecycle = [e for e in events if isinstance(e, MarketLifecycleEvent)]
    kinds = Counter(e.event_type for e in lifecycle)
    for e in lifecycle:
        if e.event_type in ("determined", "settled"):
            assert e.ts_ms >= close_of(engine.market(e.ticker)), f"{e.ticker} {e.event_type} before its close"
    assert kinds["close_date_updated"] == 0, "no market closed early"
    # Hourly series rolled about thirty times; the others at least once a day.
    assert kinds["settled"] >= 30
    assert kinds["created"] == 12 + kinds["settled"]
    # Each settled event was replaced by exactly one event of its series.
    settled_events = {m.spec.event_ticker for m in engine.markets("settled")}
    rolled = Counter(engine.event(t).series_ticker for t in settled_events)
    listed = Counter(e.series_ticker for e in engine.events())
    assert listed - starting_series == rolled
    assert rolled["KXBTCD"] + rolled["KXETHD"] >= 29  # the hourly series


def test_every_settled_event_has_a_live_successor_in_its_series() -> None:
    clock, engine, universe, activity = exchange(11, quick=True)
    series_live = Counter(engine.market(t).spec.series_ticker for t in engine.trading_tickers())
    for _ in range(2400):  # ten simulated minutes
        clock.now += 250
        activity.step()
    assert engine.markets("settled")
    now_live = Counter(engine.market(t).spec.series_ticker for t in engine.trading_tickers())
    assert now_live == series_live  # each series still has as many live markets as it started with
    for event in engine.events():
        markets = [engine.market(t) for t in universe.event_markets(event.event_ticker)]
        if all(m.status == "settled" for m in markets):
            later = [
                e
                for e in engine.events()
                if e.series_ticker == event.series_ticker
                and any(
                    close_of(engine.market(t)) > close_of(markets[0]) for t in universe.event_markets(e.event_ticker)
                )
            ]
            assert later, f"{event.series_ticker} lists nothing after {event.event_ticker}"


def test_outcomes_are_coherent_across_each_event() -> None:
    clock, engine, universe, activity = exchange(3, quick=True)
    for _ in range(4000):
        clock.now += 250
        activity.step()
    checked = 0
    for event in engine.events():
        markets = [engine.market(t) for t in universe.event_markets(event.event_ticker)]
        if not markets or any(m.status != "settled" for m in markets) or event.is_multivariate:
            continue
        checked += 1
        if event.mutually_exclusive:
            assert [m.result for m in markets].count("yes") == 1, "exactly one bucket of a range event wins"
        else:
            ladder = sorted(markets, key=lambda m: m.spec.floor_strike or 0)
            results = [m.result for m in ladder]
            # "above K" resolves YES up to some strike and NO above it.
            assert results == sorted(results, key=lambda r: r != "yes")
    assert checked >= 10
    for combo in (m for m in engine.markets("settled") if m.spec.is_multivariate):
        legs = [engine.market(leg.market_ticker).result == leg.side for leg in combo.spec.mve_selected_legs]
        assert combo.result == ("yes" if all(legs) else "no")


def test_a_close_moved_later_is_waited_for() -> None:
    clock, engine, universe, activity = exchange(7, quick=True)
    ticker = engine.trading_tickers()[0]
    event = engine.market(ticker).spec.event_ticker
    original = close_of(engine.market(ticker))
    engine.update_close_time(ticker, original + 600_000)
    while clock.now < original + 300_000:
        clock.now += 250
        activity.step()
    assert engine.market(ticker).status == "active"
    siblings = [t for t in universe.event_markets(event) if t != ticker]
    assert all(engine.market(t).status == "settled" for t in siblings)  # the rest of the event closed on time
    while clock.now < original + 600_000 + 250:
        clock.now += 250
        activity.step()
    view = engine.market(ticker)
    assert view.status == "settled" and view.settled_ts_ms is not None and view.settled_ts_ms >= original + 600_000


def test_without_lifecycle_markets_close_on_time_but_stay_unsettled() -> None:
    clock, engine, _, activity = exchange(2, quick=True, lifecycle=False)
    first_close = min(close_of(m) for m in engine.markets())
    clock.now = first_close + 1
    for _ in range(20):
        activity.step()
    statuses = Counter(m.status for m in engine.markets())
    assert statuses["closed"] > 0 and statuses["settled"] == 0 and len(engine.markets()) == 12


def test_quick_settle_closes_every_market_within_minutes() -> None:
    clock, engine, _, activity = exchange(9, quick=True)
    starting = {m.ticker: close_of(m) for m in engine.markets()}
    assert all(T0 < close <= T0 + 3 * 60_000 for close in starting.values())
    while clock.now <= max(starting.values()):
        clock.now += 500
        activity.step()
    assert all(engine.market(t).status == "settled" for t in starting)
    assert len(engine.trading_tickers()) == len(starting)


def test_same_seed_and_clock_give_the_same_lifecycle() -> None:
    def run() -> list[Event]:
        clock, engine, _, activity = exchange(13, quick=True)
        events = engine.drain_events()
        for _ in range(800):
            clock.now += 250
            activity.step()
            events.extend(engine.drain_events())
        return events

    first = run()
    assert any(isinstance(e, MarketLifecycleEvent) and e.event_type == "settled" for e in first)
    assert run() == first
