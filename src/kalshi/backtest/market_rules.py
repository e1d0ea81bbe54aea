"""What prices and sizes a market takes: its price grid (``price_ranges``) and whether it trades fractions.

The exchange refuses an order priced off the market's grid (most markets trade in whole cents; some in tenths
of a cent near the edges) and a fractional count in a market that trades whole contracts only. A backtest that
accepted them would fill orders the exchange never takes, often at the head of a queue no one else can join.
The rules come from the markets' specs: ``price_ranges`` of a ``market_lifecycle_v2`` ``created`` or
``price_level_structure_updated`` message, or of a REST market (``GetMarkets``), which also says
``fractional_trading_enabled``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kalshi._fixed import price_ticks
from kalshi.strategy.types import PRICE_SCALE

__all__ = ["MarketRules", "rules_by_market"]

_UNITS_PER_CONTRACT = 100


@dataclass(frozen=True, slots=True)
class MarketRules:
    """A market's price bands ``(start, end, step)`` in ticks (inclusive, each grid anchored at its start), and
    whether it trades whole contracts only (None: not known, fractions are allowed)."""

    bands: tuple[tuple[int, int, int], ...]
    whole_contracts: bool | None = None

    @classmethod
    def from_wire(cls, price_ranges: Iterable[Any] | None, *, fractional: bool | None = None) -> MarketRules | None:
        """The rules from a wire ``price_ranges`` list (objects or dicts with ``start``/``end``/``step`` dollar
        strings); None when it is absent, empty or malformed (the market's grid is then not known)."""
        if not price_ranges:
            return None
        bands = []
        try:
            for band in price_ranges:
                get = band.get if isinstance(band, dict) else lambda name, b=band: getattr(b, name, None)
                start, end, step = (price_ticks(str(get(name))) for name in ("start", "end", "step"))
                if step <= 0 or start > end:
                    return None
                bands.append((start, end, step))
        except (ValueError, TypeError):
            return None
        return cls(tuple(bands), None if fractional is None else not fractional)

    def price_allowed(self, ticks: int) -> bool:
        """Whether the YES price ``ticks`` (an ask's price too: orders are priced in YES terms) is on a band."""
        if not 0 < ticks < PRICE_SCALE:
            return False
        return any(start <= ticks <= end and (ticks - start) % step == 0 for start, end, step in self.bands)

    def refusal(self, ticker: str, price: int, count: int) -> str | None:
        """The exchange's reason to refuse an order of ``count`` units at ``price`` ticks, or None."""
        if not self.price_allowed(price):
            steps = ", ".join(
                f"${s / PRICE_SCALE:.4f}-${e / PRICE_SCALE:.4f} by ${p / PRICE_SCALE:.4f}" for s, e, p in self.bands
            )
            return f"invalid_price: {price} ticks is not on {ticker}'s price grid ({steps})"
        if self.whole_contracts and count % _UNITS_PER_CONTRACT:
            return f"invalid_count: {ticker} trades whole contracts only; {count} units is fractional"
        return None


def rules_by_market(price_ranges: Mapping[str, Iterable[Any]]) -> dict[str, MarketRules]:
    """:meth:`MarketRules.from_wire` of each market's ``price_ranges`` (those that do not parse are left out)."""
    out = {}
    for ticker, ranges in price_ranges.items():
        rules = MarketRules.from_wire(ranges)
        if rules is not None:
            out[ticker] = rules
    return out
