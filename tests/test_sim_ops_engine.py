"""The engine's new books without any server: subaccounts, combos, block trades, the quote tape, API keys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kalshi.sim.engine import MICROS_PER_DOLLAR, Engine, EngineError, EventSpec, MarketSpec, MveLeg
from kalshi.sim.engine.api_keys import ApiKeyBook, ApiKeyRecord
from kalshi.sim.engine.candles import build_candles
from kalshi.sim.engine.events import TradeEvent
from kalshi.sim.engine.multivariate import CollectionSpec, combo_specs
from kalshi.sim.engine.subaccounts import number_of, owner_of, subaccount_account

T0 = 1_767_225_600_000


def _engine() -> tuple[Engine, list[int]]:
    now = [T0]
    engine = Engine(lambda: now[0], seed=1)
    for event in ("E1", "E2"):
        engine.add_event(EventSpec(event_ticker=event, series_ticker="S", title=event))
        engine.add_market(MarketSpec(ticker=f"{event}-M", event_ticker=event, series_ticker="S", title=event))
    engine.open_account("alice", 100 * MICROS_PER_DOLLAR)
    engine.open_account("bob", 100 * MICROS_PER_DOLLAR)
    return engine, now


def test_subaccount_transfers_keep_the_total_cash() -> None:
    engine, _ = _engine()
    number = engine.create_subaccount("alice")
    sub = subaccount_account("alice", number)
    assert (owner_of(sub), number_of(sub), number_of("alice")) == ("alice", number, 0)
    engine.transfer_between_subaccounts("alice", "t-1", 0, number, 2_500)
    total = engine.balance("alice").available_micros + engine.balance(sub).available_micros
    assert total == 100 * MICROS_PER_DOLLAR
    assert engine.balance(sub).available_micros == 25 * MICROS_PER_DOLLAR
    with pytest.raises(EngineError, match="insufficient"):
        engine.transfer_between_subaccounts("alice", "t-2", number, 0, 2_501)
    with pytest.raises(EngineError) as unknown:
        engine.transfer_between_subaccounts("alice", "t-3", 0, 7, 1)
    assert unknown.value.code == "subaccount_not_found"


def test_a_combo_has_the_same_tickers_whatever_the_order_of_its_legs() -> None:
    engine, _ = _engine()
    legs = [MveLeg("E1", "E1-M", "yes"), MveLeg("E2", "E2-M", "no")]
    collection = CollectionSpec("KXCOMBO", "Combos", ("E1", "E2"), 2, 2, T0, T0 + 86_400_000)
    specs = [engine.market(leg.market_ticker).spec for leg in legs]
    event, market = combo_specs(collection, legs, specs, now_ms=T0)
    again = combo_specs(collection, legs[::-1], specs[::-1], now_ms=T0)
    assert (event.event_ticker, market.ticker) == (again[0].event_ticker, again[1].ticker)
    assert market.is_multivariate and market.mve_collection_ticker == "KXCOMBO"
    engine.add_collection(collection)
    made = engine.create_multivariate_market("KXCOMBO", legs)
    assert engine.create_multivariate_market("KXCOMBO", legs[::-1]).spec.ticker == made.spec.ticker
    assert made.status == "active"
    with pytest.raises(EngineError, match="one leg per event"):
        engine.create_multivariate_market("KXCOMBO", [legs[0], legs[0]])


def test_a_block_trade_moves_positions_and_cash_like_a_trade() -> None:
    engine, now = _engine()
    proposal = engine.propose_block_trade(
        "alice", buyer="alice", seller="bob", ticker="E1-M", price_ticks=3000, count_units=1000,
        maker_side="yes", expiration_ms=T0 + 1000,
    )  # fmt: skip
    assert proposal.status(T0) == "proposed"
    done = engine.accept_block_trade("bob", proposal.proposal_id)
    assert done.status(T0) == "executed"
    assert engine.position("alice", "E1-M").position_units == 1000
    assert engine.position("bob", "E1-M").position_units == -1000
    (trade,) = engine.trades("E1-M")
    assert trade.is_block_trade and trade.yes_price_ticks == 3000
    with pytest.raises(EngineError) as again:
        engine.accept_block_trade("alice", proposal.proposal_id)
    assert again.value.code == "block_trade_executed"
    late = engine.propose_block_trade(
        "bob", buyer="alice", seller="bob", ticker="E2-M", price_ticks=3000, count_units=100,
        maker_side="no", expiration_ms=T0 + 1000,
    )  # fmt: skip
    now[0] = T0 + 1000
    with pytest.raises(EngineError) as expired:
        engine.accept_block_trade("alice", late.proposal_id)
    assert expired.value.code == "block_trade_expired"


def test_the_quote_tape_records_each_change_of_the_best_quotes() -> None:
    engine, now = _engine()
    engine.place_order("alice", "E1-M", "bid", 4000, 100)
    now[0] = T0 + 1000
    engine.place_order("bob", "E1-M", "ask", 6000, 100)
    points = engine.quote_tape.points("E1-M")
    assert [(p.ts_ms, p.bid_ticks, p.ask_ticks) for p in points] == [(T0, 4000, 10_000), (T0 + 1000, 4000, 6000)]


def test_api_keys_are_owned() -> None:
    book = ApiKeyBook()
    book.add(ApiKeyRecord("k1", "alice", "bot", ("read",), None, None, 0))
    with pytest.raises(EngineError) as taken:
        book.add(ApiKeyRecord("k1", "bob", "bot", ("read",), None, None, 0))
    assert taken.value.status == 409
    with pytest.raises(EngineError):
        book.remove("bob", "k1")
    assert book.remove("alice", "k1").name == "bot" and book.owned("alice") == []


@settings(derandomize=True, deadline=None, max_examples=100, database=None)
@given(
    st.lists(st.tuples(st.integers(0, 600_000), st.integers(1, 9999), st.integers(1, 1000)), max_size=40),
    st.sampled_from([1, 2, 5, 60]),
)
def test_candles_partition_the_trades(raw: list[tuple[int, int, int]], period: int) -> None:
    trades = [
        TradeEvent(str(i), "M", "m", p, u, "yes", "bid", False, T0 + ms) for i, (ms, p, u) in enumerate(sorted(raw))
    ]
    candles = build_candles(trades, [], start_s=T0 // 1000, end_s=T0 // 1000 + 600, period_minutes=period)
    assert sum(c.volume_units for c in candles) == sum(t.count_units for t in trades)  # every trade, once
    for c in candles:
        inside = [t for t in trades if c.end_s - period * 60 < t.ts_ms // 1000 <= c.end_s]
        assert c.volume_units == sum(t.count_units for t in inside)
        if inside:
            assert c.price is not None and c.price.high == max(t.yes_price_ticks for t in inside)
            assert c.price.low <= (c.mean_ticks or 0) <= c.price.high
