"""Exact fixed-point money and counts as integer ticks.

Prices travel as dollar strings with up to 4 decimals (tick $0.0001): we hold them as integer
*price ticks* (``"0.5600"`` -> 5600). Counts travel as strings with 2 decimals (fractional contracts):
we hold them as integer *count units* (``"12.50"`` -> 1250). Legacy integer-cent prices and integer
counts of the pre-2026-03 protocol convert with :func:`cents_to_ticks` and :func:`contracts_to_units`.

Parsing is memoised because the same few thousand price strings repeat on every delta.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Final

__all__ = [
    "COUNT_SCALE",
    "ONE_DOLLAR_TICKS",
    "PRICE_SCALE",
    "cents_to_ticks",
    "contracts_to_units",
    "count_units",
    "format_count",
    "format_price",
    "price_ticks",
    "ticks_to_decimal",
    "units_to_decimal",
]

PRICE_SCALE: Final = 10_000
COUNT_SCALE: Final = 100
ONE_DOLLAR_TICKS: Final = PRICE_SCALE
_PRICE_DECIMALS: Final = 4
_COUNT_DECIMALS: Final = 2


def _parse_scaled(text: str, decimals: int, what: str) -> int:
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a decimal string, got {type(text).__name__}")
    s = text.strip()
    negative = s.startswith("-")
    if negative or s.startswith("+"):
        s = s[1:]
    whole, _dot, frac = s.partition(".")
    if not whole and not frac:
        raise ValueError(f"{what} {text[:40]!r} is not a decimal number")
    if len(frac) > decimals:
        # Trailing zeros past the tick are harmless ("0.560000"); anything else is sub-tick.
        if frac[decimals:].strip("0"):
            raise ValueError(f"{what} {text[:40]!r} has more than {decimals} decimals")
        frac = frac[:decimals]
    digits = (whole or "0") + frac.ljust(decimals, "0")
    if not digits.isdigit() or not digits.isascii() or len(digits) > 30:
        raise ValueError(f"{what} {text[:40]!r} is not a decimal number")
    value = int(digits)
    return -value if negative else value


@lru_cache(maxsize=65_536)
def price_ticks(text: str) -> int:
    """``"0.5600"`` -> 5600. Raises ValueError on anything that is not an exact 4-decimal price."""
    return _parse_scaled(text, _PRICE_DECIMALS, "price")


@lru_cache(maxsize=65_536)
def count_units(text: str) -> int:
    """``"12.50"`` -> 1250. Raises ValueError on anything that is not an exact 2-decimal count."""
    return _parse_scaled(text, _COUNT_DECIMALS, "count")


def cents_to_ticks(cents: int) -> int:
    """Legacy integer cents (56) -> price ticks (5600)."""
    return cents * 100


def contracts_to_units(contracts: int) -> int:
    """Legacy integer contract count (3) -> count units (300)."""
    return contracts * COUNT_SCALE


def ticks_to_decimal(ticks: int) -> Decimal:
    """5600 -> Decimal('0.5600')."""
    return Decimal(ticks).scaleb(-_PRICE_DECIMALS)


def units_to_decimal(units: int) -> Decimal:
    """1250 -> Decimal('12.50')."""
    return Decimal(units).scaleb(-_COUNT_DECIMALS)


def format_price(ticks: int) -> str:
    """5600 -> ``"0.5600"`` (the wire form of ``*_dollars``)."""
    sign = "-" if ticks < 0 else ""
    whole, frac = divmod(abs(ticks), PRICE_SCALE)
    return f"{sign}{whole}.{frac:04d}"


def format_count(units: int) -> str:
    """1250 -> ``"12.50"`` (the wire form of ``*_fp``)."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), COUNT_SCALE)
    return f"{sign}{whole}.{frac:02d}"
