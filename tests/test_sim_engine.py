"""The simulated exchange's matching engine: rules, money, events, and invariants under random order flow."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import hypothesis_profile  # noqa: F401  (derandomized unless HYPOTHESIS_PROFILE says otherwise)
from conftest import ManualClock
from kalshi.errors import KalshiError
from kalshi.sim.engine import (
    KEEP,
    MICROS_PER_DOLLAR,
    BookDelta,
    Engine,
    EngineError,
    Event,
    EventLifecycleEvent,
    FillEvent,
    MarketLifecycleEvent,
    MarketSpec,
    OrderGroupEvent,
    OrderUpdate,
    PositionUpdate,
    PriceRange,
    QuoteEvent,
    RfqEvent,
    TickerEvent,
    TradeEvent,
    format_micros,
    is_valid_price,
    price_ranges_for,
    valid_prices,
)
from kalshi.sim.engine.core import required_reserve
from kalshi.sim.engine.ledger import fee_numerator

T0 = 1_700_000_000_000
DOLLAR = MICROS_PER_DOLLAR


def spec(ticker: str = "MKT-A", structure: str = "linear_cent", **kw: object) -> MarketSpec:
    return MarketSpec(
        ticker=ticker, event_ticker="EVT", series_ticker="SER", title=ticker, price_level_structure=structure, **kw
    )


def make(
    *accounts: str, balance: int = 1_000 * DOLLAR, seed: int = 1, **market_kw: object
) -> tuple[Engine, ManualClock]:
    clock = ManualClock(T0)
    engine = Engine(clock, seed=seed)
    engine.add_market(spec(**market_kw))
    for account in accounts or ("a", "b", "c"):
        engine.open_account(account, balance)
    engine.drain_events()
    return engine, clock


def of(events: list[Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


# ------------------------------------------------------------------------------------------ invariants


def replay_books(events: list[Event], books: dict[str, dict[tuple[str, int], int]], clocks: dict[str, int]) -> None:
    for ev in events:
        if isinstance(ev, BookDelta):
            book = books.setdefault(ev.ticker, {})
            key = (ev.side, ev.price_ticks)
            book[key] = book.get(key, 0) + ev.delta_units
            assert book[key] >= 0, "a delta took a level below zero"
            if book[key] == 0:
                del book[key]
            assert ev.clock == clocks.get(ev.ticker, 0) + 1, "book clock must step by one per delta"
            clocks[ev.ticker] = ev.clock


def check_invariants(engine: Engine, books: dict[str, dict[tuple[str, int], int]], deposits: dict[str, int]) -> None:
    total_cash = total_fees = total_oi = 0
    for market in engine.markets():
        ticker = market.ticker
        yes, no = engine.book_levels(ticker)
        if yes and no:
            assert yes[0][0] < 10_000 - no[0][0], "crossed book after matching"
        assert yes == sorted(yes, reverse=True) and no == sorted(no, reverse=True)
        replayed_yes = sorted(((p, u) for (s, p), u in books.get(ticker, {}).items() if s == "yes"), reverse=True)
        replayed_no = sorted(((p, u) for (s, p), u in books.get(ticker, {}).items() if s == "no"), reverse=True)
        assert (replayed_yes, replayed_no) == (yes, no), "replaying BookDelta events must rebuild the book"
        positions = [engine.position(a, ticker).position_units for a in engine.accounts()]
        assert sum(positions) == 0, "contracts not conserved"
        oi = sum(p for p in positions if p > 0)
        assert engine.ticker_state(ticker).open_interest_units == oi
        total_oi += oi
        resting: Counter[tuple[str, int]] = Counter()
        for account in engine.accounts():
            for order in engine.orders(account, "resting", ticker=ticker):
                assert market.status == "active", "orders rest only on trading markets"
                side = "yes" if order.book_side == "bid" else "no"
                price = order.yes_price_ticks if side == "yes" else 10_000 - order.yes_price_ticks
                resting[(side, price)] += order.remaining_units
        assert dict(resting) == {k: v for k, v in books.get(ticker, {}).items()}
    for account in engine.accounts():
        balance = engine.balance(account)
        fills = engine.fills(account)
        fees = sum(f.fee_micros for f in fills)
        total_cash += balance.cash_micros
        total_fees += fees
        assert balance.reserved_micros >= 0 and balance.available_micros >= 0, "available cash went negative"
        # Reserved cash is exactly what the resting orders need, recomputed from their fills.
        reserved = 0
        for order in engine.orders(account, "resting"):
            own = [f for f in fills if f.order_id == order.order_id]
            mspec = engine.market(order.ticker).spec
            reserved += required_reserve(
                mspec,
                order.book_side,
                order.yes_price_ticks,
                order.remaining_units,
                taker_fee_acc=sum(
                    fee_numerator(mspec.taker_fee_bp, f.count_units, f.yes_price_ticks) for f in own if f.is_taker
                ),
                maker_fee_acc=sum(
                    fee_numerator(mspec.maker_fee_bp, f.count_units, f.yes_price_ticks) for f in own if not f.is_taker
                ),
                taker_phase=False,
            )
        assert balance.reserved_micros == reserved
        # Cash = deposits - paid - fees + redeemed YES/NO pairs + settlement revenue.
        revenue = sum(s.revenue_micros for s in engine.settlements(account))
        cash = deposits[account] - fees + revenue
        by_market: dict[str, list[FillEvent]] = {}
        for f in fills:
            by_market.setdefault(f.ticker, []).append(f)
            cash -= f.count_units * (f.yes_price_ticks if f.book_side == "bid" else 10_000 - f.yes_price_ticks)
        for ticker, mfills in by_market.items():
            yes_units = sum(f.count_units for f in mfills if f.book_side == "bid")
            no_units = sum(f.count_units for f in mfills if f.book_side == "ask")
            net = yes_units - no_units
            assert (yes_units + no_units - abs(net)) % 2 == 0
            cash += (yes_units + no_units - abs(net)) // 2 * 10_000
            position = engine.position(account, ticker).position_units
            assert position == (0 if engine.market(ticker).status == "settled" else net), "positions must equal fills"
            if mfills:
                assert mfills[-1].post_position_units == net
        assert balance.cash_micros == cash
        for order in engine.orders(account):
            own = [f for f in fills if f.order_id == order.order_id]
            assert order.fill_units == sum(f.count_units for f in own)
            assert order.fill_units + order.remaining_units <= order.initial_units
            # Fees: rate * C * P * (1 - P) over the order's taker (maker) fills, rounded up to the cent once.
            mspec = engine.market(order.ticker).spec
            for is_taker, bp, charged in (
                (True, mspec.taker_fee_bp, order.taker_fees_micros),
                (False, mspec.maker_fee_bp, order.maker_fees_micros),
            ):
                numerator = sum(
                    fee_numerator(bp, f.count_units, f.yes_price_ticks) for f in own if f.is_taker is is_taker
                )
                assert (
                    charged
                    == sum(f.fee_micros for f in own if f.is_taker is is_taker)
                    == -(-numerator // 10**12) * 10_000
                )
    assert total_cash + total_fees + total_oi * 10_000 == sum(deposits.values()), "money not conserved"


# ------------------------------------------------------------------------------------------ rules


def test_engine_modules_import_no_io() -> None:
    forbidden = {"asyncio", "socket", "picows", "aiohttp", "httpx", "websockets", "selectors", "ssl"}
    sim = Path(__file__).resolve().parents[1] / "src" / "kalshi" / "sim"
    for path in sorted(sim.glob("engine*.py")):
        roots = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots.add(node.module.split(".")[0])
        assert not roots & forbidden, path.name


def test_price_time_priority_and_maker_price() -> None:
    engine, _ = make()
    first = engine.place_order("a", "MKT-A", "bid", 5500, 300).order_id
    second = engine.place_order("b", "MKT-A", "bid", 5500, 300).order_id
    better = engine.place_order("b", "MKT-A", "bid", 5600, 100).order_id
    result = engine.place_order("c", "MKT-A", "ask", 5400, 500)
    fills = result.fills
    assert [(f.yes_price_ticks, f.count_units) for f in fills] == [(5600, 100), (5500, 300), (5500, 100)]
    assert engine.order(better).status == "executed"
    assert engine.order(first).status == "executed"
    assert engine.order(second).remaining_units == 200
    assert result.status == "executed" and result.average_fill_price is not None
    assert engine.book_levels("MKT-A") == ([(5500, 200)], [])
    assert engine.queue_position(second) == 0


def test_taker_improvement_is_refunded_and_fee_is_exact() -> None:
    engine, _ = make("a", "b")
    engine.place_order("a", "MKT-A", "ask", 2500, 27_800)  # sells 278 YES at 0.25 (buys NO at 0.75)
    before = engine.balance("b").available_micros
    result = engine.place_order("b", "MKT-A", "bid", 9000, 27_800)
    # 0.07 * 278 * 0.25 * 0.75 = 3.64875 -> rounded up to $3.65
    assert result.fills[0].fee_micros == 3_650_000
    assert result.average_fee_paid is not None
    assert engine.balance("b").available_micros == before - 278 * 250_000 - 3_650_000
    assert engine.balance("b").reserved_micros == 0
    assert format_micros(3_650_000) == "3.650000"


def test_reservation_covers_the_worst_taker_fee_exactly() -> None:
    # A bid at 0.90 for 10 contracts reserves $9.00 plus the taker fee at the worst price it can
    # reach (0.50): ceil(0.07 * 10 * 0.25) = $0.18. A cent less is refused.
    engine, _ = make("seller", "tight", "short", balance=0)
    engine.deposit("seller", 100 * DOLLAR)
    engine.deposit("tight", 9_180_000)
    engine.deposit("short", 9_170_000)
    engine.place_order("seller", "MKT-A", "ask", 5000, 1000)
    with pytest.raises(EngineError) as err:
        engine.place_order("short", "MKT-A", "bid", 9000, 1000)
    assert err.value.code == "insufficient_balance"
    result = engine.place_order("tight", "MKT-A", "bid", 9000, 1000)
    assert result.fill_units == 1000 and result.fills[0].fee_micros == 180_000
    assert engine.balance("tight").available_micros == 9_180_000 - 5_000_000 - 180_000


def test_fee_rounds_per_order_not_per_fill() -> None:
    engine, _ = make("a", "b", "c")
    engine.place_order("a", "MKT-A", "ask", 5000, 100)
    engine.place_order("b", "MKT-A", "ask", 5000, 100)
    result = engine.place_order("c", "MKT-A", "bid", 5000, 200)
    # 0.07 * 1 * .25 = 0.0175 per contract: per fill that would be 2 + 2 cents, per order ceil(3.5) = 4 cents
    assert [f.fee_micros for f in result.fills] == [20_000, 20_000]
    engine2, _ = make("a", "b", "c")
    engine2.place_order("a", "MKT-A", "ask", 5000, 1)
    engine2.place_order("b", "MKT-A", "ask", 5000, 199)
    fees = [f.fee_micros for f in engine2.place_order("c", "MKT-A", "bid", 5000, 200).fills]
    assert fees == [10_000, 30_000] and sum(fees) == 40_000


def test_maker_fees_when_the_market_charges_them() -> None:
    engine, _ = make("a", "b", maker_fee_bp=175)
    engine.place_order("a", "MKT-A", "bid", 5000, 10_000)
    engine.place_order("b", "MKT-A", "ask", 5000, 10_000)
    maker_fill = engine.fills("a")[0]
    assert not maker_fill.is_taker and maker_fill.fee_micros == 440_000  # ceil(0.0175*100*.25 = 0.4375)
    assert engine.order(maker_fill.order_id).maker_fees_micros == 440_000
    with pytest.raises(EngineError) as err:
        engine.add_market(spec("BAD", maker_fee_bp=800))
    assert err.value.code == "invalid_parameters"


@pytest.mark.parametrize(
    ("structure", "good", "bad"),
    [
        ("linear_cent", [100, 5600, 9900], [0, 10_000, 5650, 5601, -100]),
        ("deci_cent", [10, 5650, 9990], [5655, 5, 0]),
        ("tapered_deci_cent", [10, 50, 990, 1000, 5600, 9000, 9950], [5650, 1005, 9995]),
        ("banded_centi_cent", [1, 5555, 9999], [0, 10_000]),
    ],
)
def test_off_tick_prices_are_rejected(structure: str, good: list[int], bad: list[int]) -> None:
    engine, _ = make("a", structure=structure)
    for price in good:
        assert engine.place_order("a", "MKT-A", "bid", price, 100).status == "resting"
    for price in bad:
        with pytest.raises(EngineError) as err:
            engine.place_order("a", "MKT-A", "bid", price, 100)
        assert err.value.code == "invalid_price" and err.value.status == 400
    ranges = price_ranges_for(structure)
    assert all(is_valid_price(ranges, p) for p in valid_prices(ranges))


def test_custom_price_ranges_and_unknown_structure() -> None:
    engine, _ = make("a", price_ranges=(PriceRange(0, 5000, 500), PriceRange(5000, 10_000, 100)))
    assert engine.place_order("a", "MKT-A", "bid", 1500, 100).status == "resting"
    with pytest.raises(EngineError):
        engine.place_order("a", "MKT-A", "bid", 1600, 100)
    assert engine.market("MKT-A").price_ranges[0].wire() == {"start": "0.0000", "end": "0.5000", "step": "0.0500"}
    with pytest.raises(EngineError) as err:
        price_ranges_for("nope")
    assert err.value.code == "invalid_price_level_structure"


def test_counts_fractional_and_whole() -> None:
    engine, _ = make("a", fractional_trading_enabled=False)
    with pytest.raises(EngineError) as err:
        engine.place_order("a", "MKT-A", "bid", 5000, 150)
    assert err.value.code == "invalid_count"
    with pytest.raises(EngineError):
        engine.place_order("a", "MKT-A", "bid", 5000, 0)
    assert engine.place_order("a", "MKT-A", "bid", 5000, 200).status == "resting"


def test_ioc_fills_what_it_can_and_cancels_the_rest() -> None:
    engine, _ = make()
    engine.place_order("a", "MKT-A", "ask", 6000, 300)
    result = engine.place_order("b", "MKT-A", "bid", 6000, 500, time_in_force="immediate_or_cancel")
    assert result.fill_units == 300 and result.status == "canceled" and result.remaining_units == 0
    assert engine.book_levels("MKT-A") == ([], [])
    assert engine.balance("b").reserved_micros == 0


def test_fok_is_all_or_none() -> None:
    engine, _ = make()
    engine.place_order("a", "MKT-A", "ask", 6000, 300)
    engine.drain_events()
    killed = engine.place_order("b", "MKT-A", "bid", 6000, 500, time_in_force="fill_or_kill")
    assert killed.status == "canceled" and killed.fill_units == 0
    events = engine.drain_events()
    assert not of(events, TradeEvent) and not of(events, BookDelta)
    filled = engine.place_order("b", "MKT-A", "bid", 6100, 300, time_in_force="fill_or_kill")
    assert filled.status == "executed" and filled.fill_units == 300


def test_fok_counts_self_trade_prevention() -> None:
    engine, _ = make()
    engine.place_order("b", "MKT-A", "ask", 5900, 300)
    engine.place_order("a", "MKT-A", "ask", 6000, 300)
    killed = engine.place_order("b", "MKT-A", "bid", 6000, 400, time_in_force="fill_or_kill")
    assert killed.status == "canceled" and engine.book_levels("MKT-A")[1] == [(4100, 300), (4000, 300)]


def test_post_only_rejects_a_cross() -> None:
    engine, _ = make()
    engine.place_order("a", "MKT-A", "ask", 6000, 300)
    with pytest.raises(EngineError) as err:
        engine.place_order("b", "MKT-A", "bid", 6000, 100, post_only=True)
    assert err.value.code == "post_only_cross"
    assert engine.place_order("b", "MKT-A", "bid", 5900, 100, post_only=True).status == "resting"
    with pytest.raises(EngineError) as err:
        engine.place_order("b", "MKT-A", "bid", 5900, 100, post_only=True, time_in_force="immediate_or_cancel")
    assert err.value.code == "invalid_parameters"


def test_self_trade_taker_at_cross_cancels_the_taker() -> None:
    engine, _ = make()
    engine.place_order("b", "MKT-A", "ask", 5900, 100)
    own = engine.place_order("a", "MKT-A", "ask", 6000, 100).order_id
    result = engine.place_order("a", "MKT-A", "bid", 6100, 500)
    assert result.fill_units == 100  # executes what is ahead of its own order, then stops
    assert result.status == "canceled" and result.order.last_update_reason == "SelfTradeCancel"
    assert engine.order(own).status == "resting"


def test_self_trade_maker_cancels_the_resting_order() -> None:
    engine, _ = make()
    own = engine.place_order("a", "MKT-A", "ask", 5900, 100).order_id
    engine.place_order("b", "MKT-A", "ask", 6000, 100)
    engine.drain_events()
    result = engine.place_order("a", "MKT-A", "bid", 6000, 100, self_trade_prevention="maker")
    assert result.fill_units == 100 and result.fills[0].yes_price_ticks == 6000
    assert engine.order(own).status == "canceled" and engine.order(own).last_update_reason == "SelfTradeCancel"
    updates = [e.order for e in of(engine.drain_events(), OrderUpdate)]
    assert any(o.order_id == own and o.status == "canceled" for o in updates)


def test_order_groups_trigger_block_and_reset() -> None:
    engine, _ = make()
    group = engine.create_order_group("a", 500)
    created = of(engine.drain_events(), OrderGroupEvent)
    assert [(e.event_type, e.contracts_limit_units) for e in created] == [("created", 500)]
    resting = engine.place_order("a", "MKT-A", "bid", 5000, 1000, order_group_id=group.order_group_id).order_id
    other = engine.place_order("a", "MKT-A", "bid", 4000, 100, order_group_id=group.order_group_id).order_id
    hit = engine.place_order("b", "MKT-A", "ask", 5000, 800)
    assert hit.fill_units == 500  # the group allows 5 contracts per 15 s
    assert engine.order(resting).status == "canceled" and engine.order(other).status == "canceled"
    assert engine.order_group("a", group.order_group_id).is_triggered
    assert [e.event_type for e in of(engine.drain_events(), OrderGroupEvent)] == ["triggered"]
    with pytest.raises(EngineError) as err:
        engine.place_order("a", "MKT-A", "bid", 5000, 100, order_group_id=group.order_group_id)
    assert err.value.code == "order_group_triggered"
    engine.reset_order_group("a", group.order_group_id)
    engine.place_order("a", "MKT-A", "bid", 4900, 100, order_group_id=group.order_group_id)
    engine.update_order_group_limit("a", group.order_group_id, 50_000)
    engine.trigger_order_group("a", group.order_group_id)
    assert not engine.orders("a", "resting")
    engine.delete_order_group("a", group.order_group_id)
    assert [e.event_type for e in of(engine.drain_events(), OrderGroupEvent)] == [
        "reset",
        "limit_updated",
        "triggered",
        "deleted",
    ]
    with pytest.raises(EngineError):
        engine.order_group("a", group.order_group_id)


def test_order_group_window_rolls_and_limit_update_triggers() -> None:
    engine, clock = make()
    group = engine.create_order_group("a", 1000).order_group_id
    engine.place_order("b", "MKT-A", "ask", 5000, 5000)
    engine.place_order("a", "MKT-A", "bid", 5000, 600, order_group_id=group, time_in_force="immediate_or_cancel")
    assert engine.order_group("a", group).matched_in_window_units == 600
    clock.now += 15_001
    assert engine.order_group("a", group).matched_in_window_units == 0
    engine.place_order("a", "MKT-A", "bid", 5000, 900, order_group_id=group, time_in_force="immediate_or_cancel")
    engine.place_order("a", "MKT-A", "bid", 4000, 100, order_group_id=group)
    engine.update_order_group_limit("a", group, 900)
    assert engine.order_group("a", group).is_triggered and not engine.orders("a", "resting")


def test_insufficient_balance_and_duplicate_client_order_id() -> None:
    engine, _ = make("a", "poor", balance=0)
    engine.deposit("poor", 10 * DOLLAR)
    with pytest.raises(EngineError) as err:
        engine.place_order("poor", "MKT-A", "bid", 5000, 2_100)  # 21 contracts * $0.50 > $10
    assert err.value.code == "insufficient_balance"
    assert engine.place_order("poor", "MKT-A", "bid", 5000, 1_900, client_order_id="x1").status == "resting"
    with pytest.raises(EngineError) as err:
        engine.place_order("poor", "MKT-A", "bid", 4000, 100, client_order_id="x1")
    assert err.value.code == "duplicate_client_order_id" and err.value.status == 409
    assert isinstance(err.value, KalshiError)
    with pytest.raises(EngineError):
        engine.deposit("poor", -10 * DOLLAR)
    for call, code in (
        (lambda: engine.place_order("ghost", "MKT-A", "bid", 5000, 100), "account_not_found"),
        (lambda: engine.place_order("a", "NOPE", "bid", 5000, 100), "market_not_found"),
        (lambda: engine.cancel_order("a", "nope"), "order_not_found"),
        (lambda: engine.place_order("a", "MKT-A", "buy", 5000, 100), "invalid_parameters"),
    ):
        with pytest.raises(EngineError) as err:
            call()
        assert err.value.code == code


def test_expiration_cancels_on_time() -> None:
    engine, clock = make()
    with pytest.raises(EngineError) as err:
        engine.place_order("a", "MKT-A", "bid", 5000, 100, expiration_ms=T0)
    assert err.value.code == "invalid_expiration"
    order_id = engine.place_order("a", "MKT-A", "bid", 5000, 100, expiration_ms=T0 + 1_000).order_id
    engine.drain_events()
    clock.now = T0 + 999
    engine.advance_time()
    assert engine.order(order_id).status == "resting"
    clock.now = T0 + 1_000
    engine.advance_time()
    order = engine.order(order_id)
    assert order.status == "canceled" and order.last_update_reason == "ExpiryCancel"
    events = engine.drain_events()
    assert [(e.price_ticks, e.delta_units) for e in of(events, BookDelta)] == [(5000, -100)]
    assert engine.balance("a").reserved_micros == 0


def test_amend_keeps_or_loses_queue_priority() -> None:
    engine, _ = make()
    first = engine.place_order("a", "MKT-A", "bid", 5000, 500, client_order_id="c1").order_id
    second = engine.place_order("b", "MKT-A", "bid", 5000, 500).order_id
    smaller = engine.amend_order("a", first, price_ticks=5000, count_units=300)
    assert smaller.old_order.remaining_units == 500 and smaller.order.remaining_units == 300
    assert engine.queue_position(first) == 0 and engine.queue_position(second) == 300
    engine.amend_order("a", first, price_ticks=5000, count_units=600, updated_client_order_id="c2")
    assert engine.queue_position(first) == 500 and engine.order(first).client_order_id == "c2"
    engine.place_order("c", "MKT-A", "ask", 5200, 200)
    crossed = engine.amend_order("a", first, price_ticks=5300, count_units=600)
    assert crossed.fill_units == 200 and crossed.fills[0].yes_price_ticks == 5200
    assert engine.order(first).remaining_units == 400 and engine.order(first).initial_units == 600
    with pytest.raises(EngineError):
        engine.amend_order("a", first, price_ticks=5300, count_units=200)  # not above the filled 200
    expiring = engine.amend_order("a", first, price_ticks=5300, count_units=600, expiration_ms=T0 + 50)
    assert expiring.order.expiration_ms == T0 + 50
    assert (
        engine.amend_order("a", first, price_ticks=5300, count_units=600, expiration_ms=KEEP).order.expiration_ms
        == T0 + 50
    )
    assert (
        engine.amend_order("a", first, price_ticks=5300, count_units=600, expiration_ms=None).order.expiration_ms
        is None
    )


def test_decrease_cancel_and_cancel_all() -> None:
    engine, _ = make()
    one = engine.place_order("a", "MKT-A", "bid", 5000, 500).order_id
    engine.place_order("a", "MKT-A", "ask", 6000, 500)
    assert engine.decrease_order("a", one, reduce_by=200).remaining_units == 300
    assert engine.decrease_order("a", one, reduce_to=100).remaining_units == 100
    with pytest.raises(EngineError):
        engine.decrease_order("a", one, reduce_by=1, reduce_to=1)
    gone = engine.decrease_order("a", one, reduce_by=100)
    assert gone.status == "canceled" and gone.last_update_reason == "Decrease"
    with pytest.raises(EngineError) as err:
        engine.cancel_order("a", one)
    assert err.value.code == "order_not_resting"
    results = engine.cancel_all("a")
    assert [r.reduced_by_units for r in results] == [500]
    assert engine.book_levels("MKT-A") == ([], [])
    assert engine.balance("a").reserved_micros == 0


def test_reduce_only_caps_at_the_position() -> None:
    engine, _ = make()
    engine.place_order("b", "MKT-A", "ask", 4000, 1000)
    engine.place_order("a", "MKT-A", "bid", 4000, 300)  # a holds 3 YES
    with pytest.raises(EngineError):
        engine.place_order("a", "MKT-A", "ask", 3000, 500, reduce_only=True)
    engine.place_order("c", "MKT-A", "bid", 3000, 1000)
    capped = engine.place_order("a", "MKT-A", "ask", 3000, 500, reduce_only=True, time_in_force="immediate_or_cancel")
    assert capped.fill_units == 300 and capped.order.last_update_reason == "ReduceOnlyCancel"
    assert engine.position("a", "MKT-A").position_units == 0
    nothing = engine.place_order("a", "MKT-A", "ask", 3000, 500, reduce_only=True, time_in_force="immediate_or_cancel")
    assert nothing.fill_units == 0 and nothing.status == "canceled"


def test_netting_realizes_pnl_and_redeems_pairs() -> None:
    engine, _ = make(maker_fee_bp=0, taker_fee_bp=0)
    engine.place_order("b", "MKT-A", "ask", 4000, 1000)
    engine.place_order("a", "MKT-A", "bid", 4000, 1000)  # a: 10 YES at 0.40
    engine.place_order("c", "MKT-A", "bid", 6000, 400)
    cash_before = engine.balance("a").cash_micros
    engine.place_order("a", "MKT-A", "ask", 6000, 400)  # sells 4 at 0.60
    pos = engine.position("a", "MKT-A")
    assert pos.position_units == 600 and pos.realized_pnl_micros == 800_000 and pos.position_cost_micros == 2_400_000
    assert engine.balance("a").cash_micros - cash_before == 400 * 6000
    engine.place_order("c", "MKT-A", "bid", 5000, 1000)
    flipped = engine.place_order("a", "MKT-A", "ask", 5000, 1000)  # closes 6, opens 4 NO at 0.50
    assert flipped.fills[0].post_position_units == -400
    pos = engine.position("a", "MKT-A")
    assert pos.position_cost_micros == 400 * 5000 and pos.realized_pnl_micros == 800_000 + 600 * (5000 - 4000)
    assert pos.volume_units == 2400


@pytest.mark.parametrize(
    ("result", "value", "yes_pays"), [("yes", None, 10_000), ("no", None, 0), ("scalar", 3000, 3000)]
)
def test_settlement_pays_out_and_flattens(result: str, value: int | None, yes_pays: int) -> None:
    engine, clock = make(maker_fee_bp=0, taker_fee_bp=0)
    deposits = {a: 1_000 * DOLLAR for a in ("a", "b", "c")}
    engine.place_order("a", "MKT-A", "bid", 5600, 1000, client_order_id="rest")
    engine.place_order("b", "MKT-A", "ask", 5600, 700)
    engine.drain_events()
    clock.now += 10
    engine.determine_market("MKT-A", result, value)
    assert engine.order(engine.orders("a")[0].order_id).last_update_reason == "CloseCancel"
    with pytest.raises(EngineError) as err:
        engine.place_order("a", "MKT-A", "bid", 5600, 100)
    assert err.value.code == "market_closed"
    settlements = {s.account: s for s in engine.settle_market("MKT-A")}
    assert settlements["a"].revenue_micros == 700 * yes_pays and settlements["a"].yes_count_units == 700
    assert settlements["b"].revenue_micros == 700 * (10_000 - yes_pays) and settlements["b"].no_count_units == 700
    assert settlements["a"].yes_total_cost_micros == 700 * 5600
    assert engine.position("a", "MKT-A").position_units == 0 and engine.ticker_state("MKT-A").open_interest_units == 0
    assert engine.balance("a").cash_micros == deposits["a"] - 700 * 5600 + 700 * yes_pays
    assert engine.position("a", "MKT-A").realized_pnl_micros == 700 * (yes_pays - 5600)
    events = engine.drain_events()
    lifecycle = of(events, MarketLifecycleEvent)
    assert [e.event_type for e in lifecycle] == ["close_date_updated", "determined", "settled"]
    assert lifecycle[1].result == result and lifecycle[1].settlement_value_ticks == yes_pays
    assert lifecycle[2].settled_ts_ms == T0 + 10
    assert {e.position.account for e in of(events, PositionUpdate)} == {"a", "b"}
    assert engine.settlements("a")[0].market_result == result
    with pytest.raises(EngineError):
        engine.settle_market("MKT-A")


def test_market_lifecycle_open_pause_close_dates() -> None:
    clock = ManualClock(T0)
    engine = Engine(clock, seed=3)
    engine.open_account("a", 100 * DOLLAR)
    engine.add_market(
        spec("LATE", status="initialized", open_time_ms=T0 + 1000, close_time_ms=T0 + 5000, is_multivariate=True)
    )
    events = engine.drain_events()
    assert isinstance(events[0], EventLifecycleEvent) and events[0].event.is_multivariate
    created = of(events, MarketLifecycleEvent)[0]
    assert created.event_type == "created" and created.is_multivariate and created.spec is not None
    assert created.price_ranges == price_ranges_for("linear_cent")
    with pytest.raises(EngineError):
        engine.place_order("a", "LATE", "bid", 5000, 100)
    clock.now = T0 + 1000
    engine.advance_time()
    assert engine.market("LATE").status == "active"
    engine.place_order("a", "LATE", "bid", 5000, 100, cancel_order_on_pause=True)
    keep = engine.place_order("a", "LATE", "bid", 4000, 100).order_id
    engine.deactivate_market("LATE")
    assert engine.orders("a", "resting") == [engine.order(keep)]
    with pytest.raises(EngineError):
        engine.place_order("a", "LATE", "bid", 5000, 100)
    engine.activate_market("LATE")
    engine.update_close_time("LATE", T0 + 9000)
    clock.now = T0 + 5000
    engine.advance_time()
    assert engine.market("LATE").status == "active"
    clock.now = T0 + 9000
    engine.advance_time()
    assert engine.market("LATE").status == "closed" and engine.order(keep).last_update_reason == "CloseCancel"
    kinds = [e.event_type for e in of(engine.drain_events(), MarketLifecycleEvent)]
    assert kinds == ["activated", "deactivated", "activated", "close_date_updated"]
    with pytest.raises(EngineError):
        engine.update_close_time("LATE", T0)


def test_rfq_quote_accept_confirm_executes_a_block_trade() -> None:
    engine, _ = make("asker", "maker", maker_fee_bp=0, taker_fee_bp=0)
    rfq = engine.create_rfq("asker", "MKT-A", contracts_units=1000)
    with pytest.raises(EngineError) as err:
        engine.create_quote("asker", rfq.rfq_id, yes_bid_ticks=4000, no_bid_ticks=5500)
    assert err.value.code == "self_quote"
    first = engine.create_quote("maker", rfq.rfq_id, yes_bid_ticks=4000, no_bid_ticks=5000)
    quote = engine.create_quote("maker", rfq.rfq_id, yes_bid_ticks=4000, no_bid_ticks=5500)
    assert engine.quote(first.quote_id).status == "cancelled"
    accepted = engine.accept_quote("asker", quote.quote_id, "yes")
    assert accepted.status == "accepted" and accepted.contracts_accepted_units == 1000
    done = engine.confirm_quote("maker", quote.quote_id)
    assert done.status == "executed" and engine.rfq(rfq.rfq_id).status == "closed"
    assert engine.position("asker", "MKT-A").position_units == 1000
    assert engine.position("maker", "MKT-A").position_units == -1000
    fill = engine.fills("asker")[0]
    assert fill.is_taker and fill.yes_price_ticks == 4500  # the quoter's NO bid of 0.55
    events = engine.drain_events()
    assert of(events, TradeEvent)[0].is_block_trade
    assert [e.kind for e in of(events, RfqEvent)] == ["rfq_created"]
    kinds = [(e.kind, e.recipient) for e in of(events, QuoteEvent)]
    assert kinds == [
        ("quote_created", None),
        ("quote_deleted", None),
        ("quote_created", None),
        ("quote_accepted", None),
        ("quote_executed", "asker"),
        ("quote_executed", "maker"),
    ]
    executed = of(events, QuoteEvent)[-2]
    assert executed.order_id == fill.order_id and engine.order(fill.order_id).status == "executed"
    assert not of(events, BookDelta)  # off the book
    assert engine.quotes(account="asker") == [engine.quote(first.quote_id), engine.quote(quote.quote_id)]


def test_rfq_target_cost_and_delete() -> None:
    engine, _ = make("asker", "maker")
    rfq = engine.create_rfq("asker", "MKT-A", target_cost_micros=10 * DOLLAR)
    quote = engine.create_quote("maker", rfq.rfq_id, yes_bid_ticks=2000, no_bid_ticks=0)
    assert quote.no_contracts_units == 1200 and quote.yes_contracts_units == 0  # $10 / $0.80, whole contracts
    with pytest.raises(EngineError):
        engine.accept_quote("asker", quote.quote_id, "yes")  # that side is not offered
    engine.delete_rfq("asker", rfq.rfq_id)
    assert engine.quote(quote.quote_id).status == "cancelled"
    assert [e.kind for e in of(engine.drain_events(), RfqEvent)] == ["rfq_created", "rfq_deleted"]
    with pytest.raises(EngineError):
        engine.create_rfq("asker", "MKT-A", contracts_units=100, target_cost_micros=100)


def test_book_deltas_use_each_sides_price_and_carry_the_owner() -> None:
    engine, _ = make()
    engine.place_order("a", "MKT-A", "ask", 5600, 250, client_order_id="mine")
    delta = of(engine.drain_events(), BookDelta)[0]
    assert (delta.side, delta.price_ticks, delta.delta_units, delta.client_order_id, delta.account) == (
        "no",
        4400,
        250,
        "mine",
        "a",
    )
    assert engine.book_levels("MKT-A") == ([], [(4400, 250)])
    snapshot = engine.book_snapshot("MKT-A")
    assert snapshot.no == ((4400, 250),) and snapshot.clock == delta.clock == 1


def test_ticker_events_once_per_call_and_only_on_change() -> None:
    engine, _ = make()
    engine.place_order("a", "MKT-A", "bid", 5000, 100)
    engine.place_order("a", "MKT-A", "bid", 4000, 100)
    engine.drain_events()
    engine.place_order("a", "MKT-A", "bid", 3000, 100)  # below the best bid: no ticker change
    assert not of(engine.drain_events(), TickerEvent)
    engine.place_order("b", "MKT-A", "ask", 3000, 300)  # sweeps three levels in one call
    tickers = of(engine.drain_events(), TickerEvent)
    assert len(tickers) == 1
    state = tickers[0].state
    assert (state.last_price_ticks, state.volume_units, state.yes_bid_ticks, state.yes_ask_ticks) == (
        3000,
        300,
        0,
        10_000,
    )
    assert state.open_interest_units == 300 and state.last_trade_size_units == 100


def test_same_seed_same_ids_and_events() -> None:
    def run(seed: int) -> list[Event]:
        engine, _ = make(seed=seed)
        engine.place_order("a", "MKT-A", "bid", 5000, 300)
        engine.place_order("b", "MKT-A", "ask", 4900, 500)
        engine.create_order_group("c", 100)
        return engine.drain_events()

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_history_limit_forgets_old_closed_orders() -> None:
    clock = ManualClock(T0)
    engine = Engine(clock, history_limit=3)
    engine.add_market(spec())
    engine.open_account("a", 100 * DOLLAR)
    ids = [engine.place_order("a", "MKT-A", "bid", 5000, 100).order_id for _ in range(5)]
    for order_id in ids:
        engine.cancel_order("a", order_id)
    assert [o.order_id for o in engine.orders("a")] == ids[2:]
    with pytest.raises(EngineError):
        engine.order(ids[0])
    with pytest.raises(ValueError):
        Engine(clock, history_limit=0)


def test_cancel_all_with_history_limit_skips_orders_forgotten_meanwhile() -> None:
    # Cancelling the resting order closes it, which makes history_limit=1 forget the older closed IOC order
    # that the cancel loop has still to visit: it must skip it, not fail.
    engine = Engine(ManualClock(T0), history_limit=1)
    engine.add_market(spec())
    engine.open_account("a", 100 * DOLLAR)
    resting = engine.place_order("a", "MKT-A", "bid", 4000, 100).order_id
    engine.place_order("a", "MKT-A", "bid", 4100, 100, time_in_force="immediate_or_cancel")
    cancelled = engine.cancel_all("a")
    assert [result.order.order_id for result in cancelled] == [resting]
    assert engine.order(resting).status == "canceled"


def test_a_triggered_group_with_history_limit_cancels_every_resting_order() -> None:
    engine = Engine(ManualClock(T0), history_limit=1)
    engine.add_market(spec())
    engine.open_account("a", 100 * DOLLAR)
    group = engine.create_order_group("a", 10_000).order_group_id
    first = engine.place_order("a", "MKT-A", "bid", 4000, 100, order_group_id=group).order_id
    engine.place_order("a", "MKT-A", "bid", 4100, 100, time_in_force="immediate_or_cancel", order_group_id=group)
    second = engine.place_order("a", "MKT-A", "bid", 3900, 100, order_group_id=group).order_id
    engine.trigger_order_group("a", group)
    assert not [o for o in engine.orders("a") if o.status == "resting"]
    updates = [e.order for e in engine.drain_events() if isinstance(e, OrderUpdate)]
    assert {o.order_id for o in updates if o.status == "canceled"} >= {first, second}


# ------------------------------------------------------------------------------------------ random flow

ACCOUNTS = ("a", "b", "c")
TICKERS = ("LIN", "DECI")
# Mostly cent prices near the middle (valid everywhere, so books fill and cross), some deci-cent ones
# (valid on DECI only) and a few arbitrary ticks (mostly off every grid).
PRICES = st.integers(0, 9).flatmap(
    lambda k: (
        st.integers(1, 9999)
        if k == 0
        else st.integers(400, 600).map(lambda d: d * 10)
        if k == 1
        else st.integers(35, 65).map(lambda c: c * 100)
    )
)


class RandomFlow(RuleBasedStateMachine):
    """Random order flow over two markets and three accounts; every invariant holds after every step."""

    @initialize()
    def setup(self) -> None:
        self.clock = ManualClock(T0)
        self.engine = Engine(self.clock, seed=11)
        self.engine.add_market(spec("LIN", maker_fee_bp=175))
        self.engine.add_market(spec("DECI", "deci_cent"))
        self.deposits = {}
        for account in ACCOUNTS:
            # "c" is nearly broke, so collateral and fee reservations run tight.
            self.deposits[account] = 3 * DOLLAR if account == "c" else 200 * DOLLAR
            self.engine.open_account(account, self.deposits[account])
        self.groups: list[tuple[str, str]] = []
        self.books: dict[str, dict[tuple[str, int], int]] = {}
        self.clocks: dict[str, int] = {}

    def _resting(self) -> list[tuple[str, str]]:
        return [(o.account, o.order_id) for a in ACCOUNTS for o in self.engine.orders(a, "resting")]

    @rule(
        account=st.sampled_from(ACCOUNTS),
        ticker=st.sampled_from(TICKERS),
        side=st.sampled_from(("bid", "ask")),
        price=st.integers(40, 60).map(lambda c: c * 100)
        | st.integers(4000, 6000).map(lambda t: t // 10 * 10)
        | st.integers(1, 9999),
        count=st.integers(1, 2000),
        tif=st.sampled_from(("good_till_canceled", "good_till_canceled", "immediate_or_cancel", "fill_or_kill")),
        post_only=st.booleans(),
        stp=st.sampled_from(("taker_at_cross", "maker")),
        grouped=st.booleans(),
        expires=st.booleans(),
    )
    def place(
        self,
        account: str,
        ticker: str,
        side: str,
        price: int,
        count: int,
        tif: str,
        post_only: bool,
        stp: str,
        grouped: bool,
        expires: bool,
    ) -> None:
        group = next((g for a, g in self.groups if a == account), None) if grouped else None
        try:
            result = self.engine.place_order(
                account,
                ticker,
                side,
                price,
                count,
                time_in_force=tif,
                post_only=post_only and tif == "good_till_canceled",
                self_trade_prevention=stp,
                order_group_id=group,
                expiration_ms=self.clock.now + 500 if expires and tif == "good_till_canceled" else None,
            )
        except EngineError as err:
            assert err.code in {
                "invalid_price",
                "post_only_cross",
                "insufficient_balance",
                "order_group_triggered",
                "market_closed",
            }
            if err.code == "invalid_price":
                assert not is_valid_price(self.engine.market(ticker).price_ranges, price)
            return
        assert is_valid_price(self.engine.market(ticker).price_ranges, price)
        if tif == "fill_or_kill":
            assert result.fill_units in (0, count)
        if tif != "good_till_canceled":
            assert result.remaining_units == 0
        for fill in result.fills:
            assert (fill.yes_price_ticks <= price) if side == "bid" else (fill.yes_price_ticks >= price)

    @rule(
        account=st.sampled_from(ACCOUNTS),
        ticker=st.sampled_from(TICKERS),
        side=st.sampled_from(("bid", "ask")),
        count=st.integers(1, 1500),
        tif=st.sampled_from(("good_till_canceled", "immediate_or_cancel", "fill_or_kill")),
    )
    def cross(self, account: str, ticker: str, side: str, count: int, tif: str) -> None:
        """Take liquidity at the far side's best price, so most runs trade a lot."""
        yes, no = self.engine.book_levels(ticker)
        levels = no if side == "bid" else yes
        if not levels:
            return
        price = 10_000 - levels[0][0] if side == "bid" else levels[0][0]
        try:
            result = self.engine.place_order(account, ticker, side, price, count, time_in_force=tif)
        except EngineError as err:
            assert err.code in {"insufficient_balance", "market_closed"}
            return
        if tif == "fill_or_kill":
            assert result.fill_units in (0, count)

    @precondition(lambda self: bool(self._resting()))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        account, order_id = data.draw(st.sampled_from(self._resting()))
        assert self.engine.cancel_order(account, order_id).reduced_by_units > 0

    @precondition(lambda self: bool(self._resting()))
    @rule(data=st.data(), price=st.integers(40, 60).map(lambda c: c * 100), extra=st.integers(-300, 500))
    def amend(self, data: st.DataObject, price: int, extra: int) -> None:
        account, order_id = data.draw(st.sampled_from(self._resting()))
        order = self.engine.order(order_id)
        try:
            self.engine.amend_order(
                account, order_id, price_ticks=price, count_units=max(order.initial_units + extra, 1)
            )
        except EngineError as err:
            assert err.code in {"invalid_count", "post_only_cross", "insufficient_balance", "invalid_price"}

    @precondition(lambda self: bool(self._resting()))
    @rule(data=st.data(), by=st.integers(1, 500))
    def decrease(self, data: st.DataObject, by: int) -> None:
        account, order_id = data.draw(st.sampled_from(self._resting()))
        self.engine.decrease_order(account, order_id, reduce_by=by)

    @rule(
        action=st.sampled_from(("group", "tick", "tick", "rfq", "settle")),
        account=st.sampled_from(ACCOUNTS),
        other=st.sampled_from(ACCOUNTS),
        ticker=st.sampled_from(TICKERS),
        number=st.integers(1, 20_000),
        side=st.sampled_from(("yes", "no")),
        result=st.sampled_from(("yes", "no", "scalar")),
    )
    def admin(self, action: str, account: str, other: str, ticker: str, number: int, side: str, result: str) -> None:
        """Order groups, time passing, RFQ executions and (rarely) settlement, in one rule so trading dominates."""
        engine = self.engine
        trading = engine.market(ticker).status == "active"
        if action == "group":
            mine = [g for a, g in self.groups if a == account]
            limit = 100 + number % 3000
            if not mine:
                self.groups.append((account, engine.create_order_group(account, limit).order_group_id))
            elif number % 3 == 0:
                engine.reset_order_group(account, mine[0])
            else:
                engine.update_order_group_limit(account, mine[0], limit)
        elif action == "tick":
            self.clock.now += number
            engine.advance_time()
        elif action == "rfq" and trading and account != other:
            rfq = engine.create_rfq(account, ticker, contracts_units=300)
            quote = engine.create_quote(other, rfq.rfq_id, yes_bid_ticks=4000, no_bid_ticks=5000)
            engine.accept_quote(account, quote.quote_id, side)
            try:
                engine.confirm_quote(other, quote.quote_id)
            except EngineError as err:
                assert err.code == "insufficient_balance"
        elif action == "settle" and trading and number % 10 == 0:
            engine.determine_market(ticker, result, 2500 if result == "scalar" else None)
            engine.settle_market(ticker)

    @invariant()
    def consistent(self) -> None:
        replay_books(self.engine.drain_events(), self.books, self.clocks)
        check_invariants(self.engine, self.books, self.deposits)
        for ticker in TICKERS:
            assert self.engine.book_snapshot(ticker).clock == self.clocks.get(ticker, 0)


TestRandomFlow = RandomFlow.TestCase
TestRandomFlow.settings = settings(
    max_examples=100, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_importing_the_engine_loads_no_server() -> None:
    """Backtests import the engine alone: no aiohttp, none of the simulator's servers."""
    code = (
        "import sys, kalshi.sim.engine; "
        "print(sorted(m for m in ('aiohttp', 'kalshi.sim.server', 'kalshi.sim.rest', 'kalshi.sim.ws') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
