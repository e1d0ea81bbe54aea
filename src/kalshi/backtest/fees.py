"""Kalshi's trading fee, exactly as the exchange (and the simulator's engine) charges it.

The fee of an order is ``ceil(rate * C * P * (1 - P))`` rounded up to the whole cent, where ``C`` is the
contracts filled and ``P`` the price in dollars; takers pay ``taker_fee_bp`` (700 bp = 0.07 for most
markets) and makers ``maker_fee_bp`` (0 for most markets, 175 on those with maker fees). The rounding applies
to the order's running total, so an order's total fee never depends on how it was split into fills: each fill
is charged what it adds to the rounded total. In integers (prices in ticks of $0.0001, counts in units of
0.01 contract, money in micros) the numerator of one fill is ``bp * units * ticks * (10000 - ticks)`` and
``10**12`` of it is one cent.

The simulator's engine implements the same arithmetic; ``tests/test_backtest_fees.py`` checks the two agree on
random orders split into random fills.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["CENT_DENOMINATOR", "FeeSchedule", "fee_for_fill", "fee_numerator", "fee_total"]

CENT_DENOMINATOR: Final = 10**12
_MICROS_PER_CENT: Final = 10_000
_PRICE_SCALE: Final = 10_000


def fee_numerator(fee_bp: int, units: int, price: int) -> int:
    """Exact numerator of ``rate * C * P * (1 - P)`` for ``units`` at YES ``price`` ticks."""
    return fee_bp * units * price * (_PRICE_SCALE - price)


def fee_total(numerator: int) -> int:
    """Fee in micros for an order's accumulated numerator, rounded up to the whole cent."""
    return -(-numerator // CENT_DENOMINATOR) * _MICROS_PER_CENT


def fee_for_fill(accumulated: int, fee_bp: int, units: int, price: int) -> tuple[int, int]:
    """The fee of one more fill of an order whose fee numerator so far is ``accumulated``.

    Returns:
        ``(fee_micros, new_accumulated)``.
    """
    after = accumulated + fee_numerator(fee_bp, units, price)
    return fee_total(after) - fee_total(accumulated), after


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """Fee rates in basis points of ``C * P * (1 - P)``: Kalshi's general schedule by default.

    Args:
        taker_fee_bp: rate for fills that take liquidity (700 = 0.07).
        maker_fee_bp: rate for fills of resting orders (0; 175 on markets with maker fees).

    Raises:
        ValueError: a negative rate.
    """

    taker_fee_bp: int = 700
    maker_fee_bp: int = 0

    def __post_init__(self) -> None:
        if self.taker_fee_bp < 0 or self.maker_fee_bp < 0:
            raise ValueError("fee rates must be >= 0 basis points")
