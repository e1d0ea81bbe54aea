"""Accounts, positions and fee arithmetic of the engine (exact integers; money in micros).

Positions are netted on one signed YES count: buying YES adds, buying NO (a filled ask) subtracts. When a
fill crosses the sign of a position, the YES/NO pairs it completes are redeemed at once for $1 each, so
cash moves by ``-(price paid + fee) + closed_units * PAYOUT_PER_UNIT``. This keeps, for every market,
the sum of positions at zero and, across all accounts, ``cash + fees + open_interest * $1 == deposits``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

from kalshi._fixed import PRICE_SCALE
from kalshi.sim.engine.events import FillEvent
from kalshi.sim.engine.types import PAYOUT_PER_UNIT, BookSide, PositionView, SettlementView

__all__ = [
    "FEE_CENT_DENOMINATOR",
    "AccountRecord",
    "PositionRecord",
    "fee_numerator",
    "fee_reserve",
    "fee_total",
    "worst_fee_spread",
]

# A fee numerator is bp * units * ticks * (10000 - ticks); dividing by 10**12 gives cents.
FEE_CENT_DENOMINATOR: Final = 10**12
_MICROS_PER_CENT: Final = 10_000
_HALF: Final = PRICE_SCALE // 2


def fee_numerator(fee_bp: int, units: int, yes_price: int) -> int:
    """Exact numerator of the quadratic fee ``rate * C * P * (1 - P)`` for ``units`` at ``yes_price``."""
    return fee_bp * units * yes_price * (PRICE_SCALE - yes_price)


def fee_total(numerator: int) -> int:
    """Fee in micros for an accumulated numerator, rounded up to the whole cent."""
    return -(-numerator // FEE_CENT_DENOMINATOR) * _MICROS_PER_CENT


def fee_reserve(accumulated: int, extra: int) -> int:
    """What ``extra`` more numerator can add to a fee that already stands at ``fee_total(accumulated)``."""
    return fee_total(accumulated + extra) - fee_total(accumulated)


def worst_fee_spread(side: BookSide, limit: int) -> int:
    """Largest ``P * (10000 - P)`` among the prices an order at ``limit`` can trade at.

    A bid trades at or below its limit, an ask at or above; ``P(1-P)`` peaks at 0.5.
    """
    if (side == "bid" and limit >= _HALF) or (side == "ask" and limit <= _HALF):
        return _HALF * _HALF
    return limit * (PRICE_SCALE - limit)


@dataclass(slots=True)
class PositionRecord:
    """Mutable position of one account in one market."""

    units: int = 0
    cost: int = 0
    fee_cost: int = 0
    realized: int = 0
    fees_paid: int = 0
    volume: int = 0
    traded: int = 0
    updated_ms: int = 0

    def apply_fill(self, book_side: BookSide, units: int, unit_cost: int, fee: int) -> int:
        """Book a fill of ``units`` bought at ``unit_cost`` micros each (YES price for bids, NO for asks).

        Returns:
            The cash change in micros (negative when paying), pair redemptions included.
        """
        paid = units * unit_cost
        signed = units if book_side == "bid" else -units
        self.volume += units
        self.fees_paid += fee
        self.traded += paid
        if self.units == 0 or (self.units > 0) == (signed > 0):
            self.units += signed
            self.cost += paid
            self.fee_cost += fee
            return -(paid + fee)
        held = abs(self.units)
        closed = min(units, held)
        # Proportional share of the basis; the last close takes the remainder so nothing is lost to rounding.
        removed_cost = self.cost if closed == held else self.cost * closed // held
        removed_fee = self.fee_cost if closed == held else self.fee_cost * closed // held
        self.cost -= removed_cost
        self.fee_cost -= removed_fee
        self.realized += closed * PAYOUT_PER_UNIT - closed * unit_cost - removed_cost
        self.units += signed
        opened = units - closed
        if opened:
            self.cost = opened * unit_cost
            self.fee_cost = fee * opened // units
        return -(paid + fee) + closed * PAYOUT_PER_UNIT

    def settle(self, value_ticks: int) -> tuple[int, int, int, int, int]:
        """Pay out at ``value_ticks`` per YES unit and flatten.

        Returns:
            ``(payout, yes_units, yes_cost, no_units, no_cost)`` before flattening.
        """
        yes_units = max(self.units, 0)
        no_units = max(-self.units, 0)
        payout = yes_units * value_ticks + no_units * (PRICE_SCALE - value_ticks)
        yes_cost = self.cost if yes_units else 0
        no_cost = self.cost if no_units else 0
        self.realized += payout - self.cost
        self.units = self.cost = self.fee_cost = 0
        return payout, yes_units, yes_cost, no_units, no_cost

    def view(self, account: str, ticker: str) -> PositionView:
        """A frozen snapshot."""
        return PositionView(
            account=account,
            ticker=ticker,
            position_units=self.units,
            position_cost_micros=self.cost,
            realized_pnl_micros=self.realized,
            fees_paid_micros=self.fees_paid,
            position_fee_cost_micros=self.fee_cost,
            volume_units=self.volume,
            total_traded_micros=self.traded,
            last_updated_ts_ms=self.updated_ms,
        )


@dataclass(slots=True)
class AccountRecord:
    """Mutable state of one account."""

    account_id: str
    communications_id: str
    cash: int
    deposits: int
    reserved: int = 0
    updated_ms: int = 0
    positions: dict[str, PositionRecord] = field(default_factory=dict)
    fills: deque[FillEvent] = field(default_factory=deque)
    settlements: list[SettlementView] = field(default_factory=list)
    order_ids: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    client_order_ids: set[str] = field(default_factory=set)

    def position(self, ticker: str) -> PositionRecord:
        """The account's position record in ``ticker`` (created flat on first use)."""
        pos = self.positions.get(ticker)
        if pos is None:
            pos = self.positions[ticker] = PositionRecord()
        return pos
