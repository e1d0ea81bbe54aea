"""Order book messages of the ``orderbook_delta`` channel: ``orderbook_snapshot`` and ``orderbook_delta``.

The order book (:mod:`kalshi.ws.orderbook`) consumes integer price ticks ($0.0001) and count units (0.01
contract) through :meth:`OrderbookSnapshotPayload.levels_ticks`, :meth:`OrderbookDeltaPayload.price_ticks` and
:meth:`OrderbookDeltaPayload.delta_units`; they accept the current fixed-point fields and the legacy shapes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final, Literal

import msgspec

from kalshi._fixed import ONE_DOLLAR_TICKS, cents_to_ticks, contracts_to_units, count_units
from kalshi._fixed import price_ticks as _price_ticks
from kalshi.errors import KalshiProtocolError
from kalshi.ws.models._base import (
    DataMessage,
    Payload,
    Timestamp,
    count_or_none,
    price_or_none,
    timestamp_ms,
)

__all__ = [
    "BookSide",
    "OrderbookDeltaMessage",
    "OrderbookDeltaPayload",
    "OrderbookSnapshotMessage",
    "OrderbookSnapshotPayload",
]

BookSide = Literal["yes", "no"]
_MAX_TICKS: Final = ONE_DOLLAR_TICKS

Levels = list[tuple[int, int]]


def _levels_fp(levels: list[tuple[str, str]]) -> Levels:
    out: Levels = []
    append = out.append
    for price, count in levels:
        ticks = _price_ticks(price)
        units = count_units(count)
        if not 0 <= ticks <= _MAX_TICKS or units < 0:
            raise ValueError(f"level {price!r} x {count!r} out of range")
        append((ticks, units))
    return out


def _levels_dollars(levels: list[tuple[str, int | str]]) -> Levels:
    out: Levels = []
    for price, count in levels:
        ticks = _price_ticks(price)
        units = contracts_to_units(count) if isinstance(count, int) else count_units(count)
        if not 0 <= ticks <= _MAX_TICKS or units < 0:
            raise ValueError(f"level {price!r} x {count!r} out of range")
        out.append((ticks, units))
    return out


def _levels_cents(levels: list[tuple[int, int]]) -> Levels:
    out: Levels = []
    for cents, count in levels:
        ticks = cents_to_ticks(cents)
        if not 0 <= ticks <= _MAX_TICKS or count < 0:
            raise ValueError(f"level {cents!r} x {count!r} out of range")
        out.append((ticks, contracts_to_units(count)))
    return out


class OrderbookSnapshotPayload(Payload):
    """Full aggregated book of one market.

    Current protocol: ``yes_dollars_fp``/``no_dollars_fp`` as ``[["0.0800", "300.00"], ...]`` (a side is absent
    when empty). Legacy: ``yes_dollars``/``no_dollars`` as ``[["0.08", 300], ...]`` and ``yes``/``no`` as
    ``[[8, 300], ...]`` (cents, contracts), stored as ``yes_cents``/``no_cents``.
    """

    market_ticker: str
    market_id: str | None = None
    yes_dollars_fp: list[tuple[str, str]] | None = None
    no_dollars_fp: list[tuple[str, str]] | None = None
    yes_dollars: list[tuple[str, int | str]] | None = None
    no_dollars: list[tuple[str, int | str]] | None = None
    yes_cents: list[tuple[int, int]] | None = msgspec.field(default=None, name="yes")
    no_cents: list[tuple[int, int]] | None = msgspec.field(default=None, name="no")
    clock: int | None = None

    def levels_ticks(self) -> tuple[Levels, Levels]:
        """Both sides as ``(price_ticks, count_units)`` pairs, in wire order: ``(yes_levels, no_levels)``.

        Each side prefers ``*_dollars_fp``, then legacy ``*_dollars``, then legacy cents; an absent side is empty.

        Raises:
            KalshiProtocolError: a level is not an exact price/count, or is outside $0-$1 or negative.
        """
        try:
            return (
                self._side(self.yes_dollars_fp, self.yes_dollars, self.yes_cents),
                self._side(self.no_dollars_fp, self.no_dollars, self.no_cents),
            )
        except ValueError as exc:
            raise KalshiProtocolError(f"orderbook_snapshot for {self.market_ticker[:60]!r}: {exc}") from exc

    @staticmethod
    def _side(
        fixed: list[tuple[str, str]] | None,
        dollars: list[tuple[str, int | str]] | None,
        cents: list[tuple[int, int]] | None,
    ) -> Levels:
        if fixed is not None:
            return _levels_fp(fixed)
        if dollars is not None:
            return _levels_dollars(dollars)
        if cents is not None:
            return _levels_cents(cents)
        return []


class OrderbookDeltaPayload(Payload):
    """A change of one price level: ``delta_fp`` contracts at ``price_dollars`` on ``side``.

    Legacy integer ``price`` (cents) and ``delta`` (contracts) are stored as ``price_cents`` and
    ``delta_contracts``; :attr:`price` and :attr:`delta` are exact Decimal views over either form.
    """

    market_ticker: str
    side: BookSide
    market_id: str | None = None
    price_dollars: str | None = None
    delta_fp: str | None = None
    client_order_id: str | None = None
    subaccount: int | None = None
    ts: Timestamp | None = None
    ts_ms: int | None = None
    clock: int | None = None
    price_cents: int | None = msgspec.field(default=None, name="price")
    delta_contracts: int | None = msgspec.field(default=None, name="delta")

    def price_ticks(self) -> int:
        """The level price in ticks ($0.0001): ``price_dollars`` preferred, else legacy cents.

        Raises:
            KalshiProtocolError: no price field, or not an exact price in $0-$1.
        """
        try:
            if self.price_dollars is not None:
                ticks = _price_ticks(self.price_dollars)
            elif self.price_cents is not None:
                ticks = cents_to_ticks(self.price_cents)
            else:
                raise KalshiProtocolError(f"orderbook_delta for {self.market_ticker[:60]!r} carries no price")
        except ValueError as exc:
            raise KalshiProtocolError(f"orderbook_delta price {self.price_dollars!r:.60}: {exc}") from exc
        if not 0 <= ticks <= _MAX_TICKS:
            raise KalshiProtocolError(f"orderbook_delta price {ticks} ticks is outside $0-$1")
        return ticks

    def delta_units(self) -> int:
        """The signed size change in count units (0.01 contract): ``delta_fp`` preferred, else legacy contracts.

        Raises:
            KalshiProtocolError: no delta field, or not an exact count.
        """
        try:
            if self.delta_fp is not None:
                return count_units(self.delta_fp)
        except ValueError as exc:
            raise KalshiProtocolError(f"orderbook_delta delta {self.delta_fp!r:.60}: {exc}") from exc
        if self.delta_contracts is not None:
            return contracts_to_units(self.delta_contracts)
        raise KalshiProtocolError(f"orderbook_delta for {self.market_ticker[:60]!r} carries no delta")

    @property
    def price(self) -> Decimal | None:
        """Level price in dollars (exact), from ``price_dollars`` or legacy cents."""
        return price_or_none(self.price_dollars, self.price_cents)

    @property
    def delta(self) -> Decimal | None:
        """Signed contract change (exact), from ``delta_fp`` or the legacy integer."""
        return count_or_none(self.delta_fp, self.delta_contracts)

    @property
    def timestamp_ms(self) -> int | None:
        """Epoch ms of the change: ``ts_ms``, else the deprecated RFC 3339 ``ts``."""
        return timestamp_ms(self.ts_ms, self.ts)


class OrderbookSnapshotMessage(DataMessage, tag="orderbook_snapshot"):
    """``orderbook_snapshot``: the full book of one market; restarts the market's state (``id`` set when it
    answers a ``get_snapshot`` command)."""

    type = "orderbook_snapshot"
    msg: OrderbookSnapshotPayload


class OrderbookDeltaMessage(DataMessage, tag="orderbook_delta"):
    """``orderbook_delta``: one level change, to apply in ``seq`` order after the snapshot."""

    type = "orderbook_delta"
    msg: OrderbookDeltaPayload
