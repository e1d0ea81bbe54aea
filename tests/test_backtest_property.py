"""Property: a backtest never fills at a price the recorded book did not offer.

Random recorded flow (snapshots, deltas, trades at the prices the book holds) interleaved with random strategy
orders goes through the simulated exchange. Every fill is checked against the event that caused it: a taker fill
is at a price the opposite side of the recorded book held, with that much size; a maker fill is at the order's
own limit and was caused by a trade or new crossing size at that price or one better for the strategy.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalshi.backtest.matching import SimulatedExchange
from kalshi.strategy.types import Fill, OrderState, OrderUpdate

PRICES = st.integers(min_value=1, max_value=99).map(lambda c: c * 100)
UNITS = st.integers(min_value=1, max_value=20).map(lambda c: c * 50)

event = st.one_of(
    st.tuples(st.just("delta"), st.booleans(), PRICES, st.integers(min_value=-600, max_value=600)),
    st.tuples(st.just("trade"), st.booleans(), st.integers(min_value=0, max_value=50), UNITS),
    st.tuples(
        st.just("order"),
        st.sampled_from(["bid", "ask"]),
        PRICES,
        UNITS,
        st.sampled_from(["good_till_canceled", "immediate_or_cancel", "fill_or_kill"]),
    ),
    st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=50)),
    st.tuples(st.just("tick")),
)
side_levels = st.dictionaries(PRICES, UNITS, max_size=6)


@settings(
    max_examples=100,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    yes=side_levels, no=side_levels, events=st.lists(event, max_size=40), model=st.sampled_from(["back", "pro_rata"])
)
def test_fills_only_at_prices_the_recorded_book_offered(
    yes: dict[int, int], no: dict[int, int], events: list[tuple[object, ...]], model: str
) -> None:
    # An uncrossed recorded book: drop NO bids that would cross the best YES bid.
    best_yes = max(yes, default=0)
    no = {p: u for p, u in no.items() if p + best_yes < 10_000}
    emitted: list[Fill] = []
    ex = SimulatedExchange(
        lambda r: emitted.append(r) if isinstance(r, Fill) else None,
        lambda: 0,
        cancel_model=model,  # type: ignore[arg-type]
    )
    book = ex.snapshot("M", list(yes.items()), list(no.items()))
    placed: list[OrderState] = []
    ts = 1
    for ev in events:
        before = {"yes": dict(book.yes), "no": dict(book.no)}
        start = len(emitted)
        kind = ev[0]
        if kind == "delta":
            _, on_yes, price, delta = ev
            assert isinstance(on_yes, bool) and isinstance(price, int) and isinstance(delta, int)
            other = book.no if on_yes else book.yes
            if delta > 0 and other and price + max(other) >= 10_000:
                continue  # recorded books do not cross
            ex.delta("M", on_yes, price, delta, ts)
        elif kind == "trade":
            _, taker_yes, pick, units = ev
            assert isinstance(taker_yes, bool) and isinstance(pick, int) and isinstance(units, int)
            makers = book.no if taker_yes else book.yes
            if not makers:
                continue
            level = sorted(makers)[pick % len(makers)]
            price = 10_000 - level if taker_yes else level
            ex.trade("M", price, units, taker_yes, ts)
        elif kind == "order":
            _, side, price, units, tif = ev
            state = OrderState(f"o{len(placed)}", "M", side, price, units, tif, False, remaining=units)  # type: ignore[arg-type]
            placed.append(state)
            ex.place(state)
        elif kind == "cancel":
            if placed:
                ex.cancel(placed[ev[1] % len(placed)])  # type: ignore[operator]
        else:
            ts += 1
        for fill in emitted[start:]:
            order = ex.orders[fill.client_order_id]
            if fill.is_taker:
                assert kind == "order"
                offered = before["no"] if fill.side == "bid" else before["yes"]
                level = 10_000 - fill.price if fill.side == "bid" else fill.price
                assert offered.get(level, 0) >= fill.count, (fill, before)
            else:
                assert fill.price == order.price  # makers trade at their own limit
                if kind == "trade":
                    _, taker_yes, _, _ = ev
                    # A taker selling YES at price hits bids at price or above; one buying YES, asks at or below.
                    if fill.side == "bid":
                        assert not taker_yes and fill.price >= price
                    else:
                        assert taker_yes and fill.price <= price
                else:
                    assert kind == "delta"
                    _, on_yes, dprice, delta = ev
                    assert isinstance(dprice, int) and isinstance(delta, int) and delta > 0
                    crossing_yes = 10_000 - dprice if not on_yes else dprice  # the new size's YES price
                    if fill.side == "bid":
                        assert not on_yes and crossing_yes <= fill.price
                    else:
                        assert on_yes and crossing_yes >= fill.price
    for state in placed:
        order = ex.orders[state.client_order_id]
        assert 0 <= order.filled <= state.count
        assert sum(f.count for f in emitted if f.client_order_id == state.client_order_id) == order.filled


def test_reports_are_consistent_for_a_simple_order() -> None:
    updates: list[OrderUpdate] = []
    ex = SimulatedExchange(lambda r: updates.append(r) if isinstance(r, OrderUpdate) else None, lambda: 0)
    ex.snapshot("M", [(4000, 100)], [(5000, 100)])
    ex.place(OrderState("a", "M", "bid", 4500, 100, "good_till_canceled", False, remaining=100))
    assert [(u.status, u.remaining) for u in updates] == [("resting", 100)]
