"""Order book number parsing on the hot path: wire strings -> integer price ticks and count units.

Plain dict caches sit in front of the parsers: the same few thousand price strings and many repeated sizes
recur on every delta, a dict lookup is about half the cost of an ``lru_cache`` call, and the hash a lookup
computes stays cached in the string object, so the order book's second lookup of the same string is cheaper
still. Only validated values enter a cache, so a hit needs no further check. The caches are bounded by clearing.

A miss takes a fast path for the canonical wire forms (``"0.5600"``, ``"12.50"``, ``"-3.00"``) and falls back to
the general parsers of :mod:`kalshi._fixed` for anything else (legacy 2- or 3-decimal prices, trailing zeros).
"""

from __future__ import annotations

from typing import Final

from kalshi._fixed import ONE_DOLLAR_TICKS, cents_to_ticks, contracts_to_units, count_units, price_ticks

__all__ = [
    "COUNT_CACHE",
    "DELTA_CACHE",
    "PRICE_CACHE",
    "Levels",
    "levels_cents",
    "levels_dollars",
    "levels_fp",
    "parse_count",
    "parse_price",
]

Levels = list[tuple[int, int]]

PRICE_CACHE: Final[dict[str, int]] = {}
COUNT_CACHE: Final[dict[str, int]] = {}  # level sizes: non-negative only
DELTA_CACHE: Final[dict[str, int]] = {}  # signed deltas
_CACHE_LIMIT: Final = 200_000
_MAX_TICKS: Final = ONE_DOLLAR_TICKS
_MAX_WHOLE_DIGITS: Final = 18


def _price_ticks(text: str) -> int:
    whole, dot, frac = text.partition(".")
    if dot and len(frac) == 4 and (whole == "0" or whole == "1") and frac.isdigit() and frac.isascii():
        return (ONE_DOLLAR_TICKS if whole == "1" else 0) + int(frac)
    return price_ticks(text)


def _count_units(text: str) -> int:
    whole, dot, frac = text.partition(".")
    if dot and len(frac) == 2 and text.isascii() and frac.isdigit():
        if whole.isdigit() and len(whole) <= _MAX_WHOLE_DIGITS:
            return int(whole + frac)
        if whole[:1] == "-" and whole[1:].isdigit() and len(whole) <= _MAX_WHOLE_DIGITS + 1:
            return -int(whole[1:] + frac)
    return count_units(text)


def parse_price(text: str) -> int:
    """``"0.5600"`` -> 5600, validated to $0-$1 and cached.

    Raises:
        ValueError: not an exact price on the $0.0001 tick, or outside $0-$1.
    """
    ticks = _price_ticks(text)
    if not 0 <= ticks <= _MAX_TICKS:
        raise ValueError(f"price {text[:40]!r} is outside $0-$1")
    if len(PRICE_CACHE) >= _CACHE_LIMIT:
        PRICE_CACHE.clear()
    PRICE_CACHE[text] = ticks
    return ticks


def parse_count(text: str, *, signed: bool) -> int:
    """``"12.50"`` -> 1250 (cached); a negative value only when ``signed``.

    Raises:
        ValueError: not an exact count of 0.01 contract, or negative when not ``signed``.
    """
    units = _count_units(text)
    if units < 0 and not signed:
        raise ValueError(f"count {text[:40]!r} is negative")
    cache = DELTA_CACHE if signed else COUNT_CACHE
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[text] = units
    return units


def levels_fp(levels: list[tuple[str, str]]) -> Levels:
    """``[["0.0800", "300.00"], ...]`` -> ``[(800, 30000), ...]``.

    Raises:
        ValueError: a level is not an exact price/count, is outside $0-$1, or has a negative size.
    """
    prices = PRICE_CACHE
    counts = COUNT_CACHE
    try:
        return [(prices[price], counts[count]) for price, count in levels]
    except KeyError:
        pass
    out: Levels = []
    for price, count in levels:
        ticks = prices.get(price)
        if ticks is None:
            ticks = parse_price(price)
        units = counts.get(count)
        if units is None:
            units = parse_count(count, signed=False)
        out.append((ticks, units))
    return out


def levels_dollars(levels: list[tuple[str, int | str]]) -> Levels:
    """Legacy ``[["0.08", 300], ...]`` (dollar string, integer contracts) -> ticks and units.

    Raises:
        ValueError: a bad price or a negative size.
    """
    out: Levels = []
    for price, count in levels:
        if isinstance(count, int):
            if count < 0:
                raise ValueError(f"count {count} is negative")
            units = contracts_to_units(count)
        else:
            units = parse_count(count, signed=False)
        out.append((parse_price(price), units))
    return out


def levels_cents(levels: list[tuple[int, int]]) -> Levels:
    """Legacy ``[[8, 300], ...]`` (cents, contracts) -> ticks and units.

    Raises:
        ValueError: a price outside $0-$1 or a negative size.
    """
    out: Levels = []
    for cents, count in levels:
        ticks = cents_to_ticks(cents)
        if not 0 <= ticks <= _MAX_TICKS or count < 0:
            raise ValueError(f"level {cents!r} x {count!r} out of range")
        out.append((ticks, contracts_to_units(count)))
    return out
