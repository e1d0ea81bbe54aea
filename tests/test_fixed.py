from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalshi._fixed import (
    count_units,
    format_count,
    format_price,
    price_ticks,
    ticks_to_decimal,
    units_to_decimal,
)


@pytest.mark.parametrize(
    ("text", "ticks"),
    [("0.5600", 5600), ("0.56", 5600), ("1", 10000), ("0.0001", 1), (".5", 5000), ("0.560000", 5600), ("-0.01", -100)],
)
def test_price_parse(text: str, ticks: int) -> None:
    assert price_ticks(text) == ticks


@pytest.mark.parametrize("text", ["", ".", "abc", "0.00001", "1e3", "0.5.5", "٣"])
def test_price_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        price_ticks(text)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_price_roundtrip(ticks: int) -> None:
    assert price_ticks(format_price(ticks)) == ticks
    assert ticks_to_decimal(ticks) == Decimal(format_price(ticks))


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_count_roundtrip(units: int) -> None:
    assert count_units(format_count(units)) == units
    assert units_to_decimal(units) == Decimal(format_count(units))
