"""Tests for kalshi.models.markets: the public immutable Orderbook view."""

from __future__ import annotations

import json
import pickle
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kalshi.models as models
from kalshi.models.markets import Orderbook, PriceLevel, _side_levels

D = Decimal


def sample() -> Orderbook:
    return Orderbook.from_levels(
        "KX-T",
        yes=[(5500, 250), (5612, 1250), (100, 1)],
        no=[(4300, 500), (4000, 75)],
        seq=12,
        clock=34,
        version=5,
    )


def test_public_exports() -> None:
    assert models.Orderbook is Orderbook and models.PriceLevel is PriceLevel
    assert set(models.__all__) == {"Orderbook", "PriceLevel", "Side"}


def test_price_level_behaves_like_a_pair() -> None:
    level = sample().yes[0]
    price, size = level
    assert (price, size) == (D("0.5612"), D("12.50"))
    assert level == (D("0.5612"), D("12.5")) and level[0] is level.price
    assert str(level.price) == "0.5612" and str(level.size) == "12.50"
    assert repr(level) == "PriceLevel(price=Decimal('0.5612'), size=Decimal('12.50'))"


def test_ladders_sorted_best_first_in_ticks_and_decimals() -> None:
    book = sample()
    assert book.yes_ticks == ((5612, 1250), (5500, 250), (100, 1))
    assert book.no_ticks == ((4300, 500), (4000, 75))
    assert book.yes == (
        PriceLevel(D("0.5612"), D("12.50")),
        PriceLevel(D("0.5500"), D("2.50")),
        PriceLevel(D("0.0100"), D("0.01")),
    )
    assert book.no[-1] == PriceLevel(D("0.4000"), D("0.75"))
    assert book.yes is book.yes  # converted once, cached
    assert (book.market_ticker, book.seq, book.clock, book.version) == ("KX-T", 12, 34, 5)


def test_top_of_book_and_derived_asks() -> None:
    book = sample()
    assert book.best_yes_bid == PriceLevel(D("0.5612"), D("12.50"))
    assert book.best_no_bid == PriceLevel(D("0.4300"), D("5.00"))
    assert book.best_yes_ask == PriceLevel(D("0.5700"), D("5.00"))  # $1 - best NO bid
    assert book.best_no_ask == PriceLevel(D("0.4388"), D("12.50"))  # $1 - best YES bid
    assert book.spread == D("0.0088")
    assert book.mid == D("0.5656")
    assert book.best_bid_ticks("yes") == (5612, 1250)
    assert book.best_bid_ticks("no") == (4300, 500)


def test_mid_may_be_half_a_tick_and_spread_may_be_crossed() -> None:
    half = Orderbook.from_levels("KX-T", yes=[(5601, 1)], no=[(4398, 1)])
    assert half.spread == D("0.0001")
    assert half.mid == D("0.56015")
    crossed = Orderbook.from_levels("KX-T", yes=[(6000, 1)], no=[(4500, 1)])
    assert crossed.spread == D("-0.0500")
    locked = Orderbook.from_levels("KX-T", yes=[(5500, 1)], no=[(4500, 1)])
    assert locked.spread == 0
    assert locked.to_dict()["spread"] == "0.0000"
    assert crossed.to_dict()["spread"] == "-0.0500"
    assert half.to_dict()["mid"] == "0.56015"


def test_empty_sides() -> None:
    book = Orderbook.from_levels("KX-T", yes=[(5000, 100)])
    assert book.no == () and book.no_ticks == ()
    assert book.best_no_bid is None and book.best_yes_ask is None
    assert book.best_no_ask == PriceLevel(D("0.5000"), D("1.00"))
    assert book.spread is None and book.mid is None
    assert book.depth("no") == 0
    empty = Orderbook.from_levels("KX-T")
    assert empty.best_yes_bid is None and empty.best_bid_ticks("yes") is None


def test_depth_and_total_size() -> None:
    book = sample()
    assert book.depth_units("yes") == 1501
    assert book.depth("yes") == D("15.01")
    assert book.depth("yes", levels=1) == D("12.50")
    assert book.depth("yes", 2) == D("15.00")
    assert book.depth("yes", 0) == 0
    assert book.depth("yes", 99) == D("15.01")
    assert book.total_size("no") == D("5.75")
    with pytest.raises(ValueError, match="side"):
        book.depth("maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="side"):
        book.best_bid_ticks("YES")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="levels"):
        book.depth("yes", -1)


def test_from_levels_validates_and_drops_zero_sizes() -> None:
    assert Orderbook.from_levels("KX-T", yes=[(5000, 0), (4000, 3)]).yes_ticks == ((4000, 3),)
    for yes in ([(0, 1)], [(10_000, 1)], [(5000, -1)], [(5000, 1), (5000, 2)], [(5000.0, 1)], [(5000, D(1))]):
        with pytest.raises(ValueError):
            Orderbook.from_levels("KX-T", yes=yes)  # type: ignore[arg-type]


def test_from_dollars_reads_wire_strings_and_yes_price_terms() -> None:
    book = Orderbook.from_dollars("KX-T", yes=[("0.5612", "12.50")], no=[("0.4300", "5.00")], seq=3)
    assert book == Orderbook.from_levels("KX-T", yes=[(5612, 1250)], no=[(4300, 500)])
    assert book.seq == 3
    yes_terms = Orderbook.from_dollars("KX-T", yes=[("0.5612", "12.50")], no=[("0.5700", "5.00")], use_yes_price=True)
    assert yes_terms == book
    with pytest.raises(ValueError):
        Orderbook.from_dollars("KX-T", yes=[("0.56125", "1.00")])  # finer than the $0.0001 tick
    with pytest.raises(ValueError):
        Orderbook.from_dollars("KX-T", yes=[("0.5600", "1.005")])  # finer than 1/100 contract


def test_equality_is_ticker_and_levels_only() -> None:
    a = sample()
    b = Orderbook.from_levels("KX-T", yes=[(100, 1), (5612, 1250), (5500, 250)], no=[(4000, 75), (4300, 500)])
    assert a == b and hash(a) == hash(b)  # seq, clock and version differ
    assert a != Orderbook.from_levels("KX-U", yes=a.yes_ticks, no=a.no_ticks)
    assert a != Orderbook.from_levels("KX-T", yes=a.yes_ticks, no=a.no_ticks[:1])
    assert a != Orderbook.from_levels("KX-T", yes=a.no_ticks, no=a.yes_ticks)
    assert a != (a.yes_ticks, a.no_ticks)
    assert len({a, b}) == 1


def test_view_is_frozen() -> None:
    book = sample()
    for name, value in [("seq", 1), ("market_ticker", "X"), ("version", 9), ("extra", 1)]:
        with pytest.raises(AttributeError):
            setattr(book, name, value)
    assert book.seq == 12


def test_to_dict_is_json_ready_with_exact_strings() -> None:
    data = sample().to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "market_ticker": "KX-T",
        "seq": 12,
        "clock": 34,
        "version": 5,
        "yes": [["0.5612", "12.50"], ["0.5500", "2.50"], ["0.0100", "0.01"]],
        "no": [["0.4300", "5.00"], ["0.4000", "0.75"]],
        "best_yes_bid": "0.5612",
        "best_no_bid": "0.4300",
        "best_yes_ask": "0.5700",
        "best_no_ask": "0.4388",
        "spread": "0.0088",
        "mid": "0.5656",
    }
    empty = Orderbook.from_levels("KX-T").to_dict()
    assert empty["best_yes_bid"] is None and empty["spread"] is None and empty["mid"] is None


def test_repr_is_short() -> None:
    assert repr(sample()) == "Orderbook('KX-T', yes=[0.5612 x 12.50, +2], no=[0.4300 x 5.00, +1], seq=12, version=5)"
    assert repr(Orderbook.from_levels("E")) == "Orderbook('E', yes=[], no=[], seq=None, version=0)"


def test_rich_repr_shows_levels_not_internals() -> None:
    from rich.pretty import pretty_repr

    text = pretty_repr(sample())
    assert "Decimal('0.5612')" in text and "_Ladder" not in text and "_yes_side" not in text


def test_pickle_round_trip() -> None:
    book = sample()
    again = pickle.loads(pickle.dumps(book))
    assert again == book and again.seq == 12 and again.yes == book.yes


levels = st.dictionaries(st.integers(1, 9999), st.integers(1, 10**8), max_size=30)


@given(yes=levels, no=levels, n=st.integers(0, 40))
def test_view_agrees_with_plain_arithmetic(yes: dict[int, int], no: dict[int, int], n: int) -> None:
    book = Orderbook.from_levels("KX-T", yes=yes.items(), no=no.items())
    # Read the best bids before sorting (max path) and after (ladder path): same answers.
    best_yes = book.best_bid_ticks("yes")
    assert best_yes == (max(yes.items()) if yes else None)
    assert book.yes_ticks == tuple(sorted(yes.items(), reverse=True))
    assert book.best_bid_ticks("no") == (book.no_ticks[0] if no else None)
    assert book.depth_units("no", n) == sum(u for _p, u in sorted(no.items(), reverse=True)[:n])
    if yes and no:
        ask = 10_000 - max(no)
        assert book.spread == D(ask - max(yes)) / 10_000
        assert book.mid == D(ask + max(yes)) / 20_000
    assert [p for p, _s in book.yes] == [D(p) / 10_000 for p in sorted(yes, reverse=True)]


def test_equal_books_are_not_unequal() -> None:
    import operator

    from kalshi.models.markets import Orderbook

    a = Orderbook.from_levels("T", yes=[(5000, 100)], no=[(4000, 200)])
    b = Orderbook.from_levels("T", yes=[(5000, 100)], no=[(4000, 200)])
    c = Orderbook.from_levels("T", yes=[(5000, 101)], no=[(4000, 200)])
    # operator.ne calls __ne__ directly: the bug was a != b being True for equal books.
    assert operator.eq(a, b) is True and operator.ne(a, b) is False
    assert operator.eq(a, c) is False and operator.ne(a, c) is True
    assert operator.ne(a, "not a book") is True


# The snapshot fast path of _side_levels (a list) must decide exactly as the level-by-level path (any other
# iterable): same dict, or the same refusal.
_LEVEL_VALUES = st.one_of(st.integers(min_value=-2, max_value=10_001), st.booleans(), st.sampled_from([0.5, 1.0, "5"]))


@given(st.lists(st.tuples(_LEVEL_VALUES, _LEVEL_VALUES), max_size=8))
def test_side_levels_fast_path_decides_like_the_checked_path(levels: list[tuple[Any, Any]]) -> None:
    def decide(given: Any) -> object:
        try:
            return _side_levels(given, invert=False, side="yes")
        except ValueError as exc:
            return ("refused", str(exc))

    fast, checked = decide(list(levels)), decide(tuple(levels))
    assert fast == checked
    if isinstance(fast, dict):
        assert all(type(price) is int and type(size) is int for price, size in fast.items())
