"""Kalshi's trading fee, exactly as the exchange (and the simulator's engine) charges it.

The fee of an order is ``ceil(rate * C * P * (1 - P))`` rounded up to the whole cent, where ``C`` is the
contracts filled and ``P`` the price in dollars; takers pay ``taker_fee_bp`` (700 bp = 0.07 for most
markets) and makers ``maker_fee_bp`` (0 for most markets, 175 on those with maker fees). The rounding applies
to the order's running total, so an order's total fee never depends on how it was split into fills: each fill
is charged what it adds to the rounded total. In integers (prices in ticks of $0.0001, counts in units of
0.01 contract, money in micros) the numerator of one fill is ``bp * units * ticks * (10000 - ticks)`` and
``10**12`` of it is one cent.

The arithmetic is the simulator engine's own (:mod:`kalshi.sim.engine.ledger`, sans-I/O, imported without
the simulator's servers), so a backtest charges exactly what the engine charges; ``tests/test_backtest_fees.py``
also checks both on random orders split into random fills.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from kalshi.sim.engine.ledger import FEE_CENT_DENOMINATOR, fee_numerator, fee_reserve, fee_total

__all__ = ["CENT_DENOMINATOR", "FeeSchedule", "fee_for_fill", "fee_numerator", "fee_reserve", "fee_total"]

CENT_DENOMINATOR: Final = FEE_CENT_DENOMINATOR


def fee_for_fill(accumulated: int, fee_bp: int, units: int, price: int) -> tuple[int, int]:
    """The fee of one more fill of an order whose fee numerator so far is ``accumulated``.

    Returns:
        ``(fee_micros, new_accumulated)``.
    """
    extra = fee_numerator(fee_bp, units, price)
    return fee_reserve(accumulated, extra), accumulated + extra


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
