"""Base class of every generated REST model, and the description of one REST operation."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

import msgspec

from kalshi.errors import KalshiProtocolError
from kalshi.models.markets import PriceLevel

__all__ = ["Model", "Operation", "fixed_decimal", "price_levels"]

_MAX_FIXED_TEXT = 40  # longer than any amount the exchange sends; bounds the work on a hostile body


def fixed_decimal(text: str, field: str) -> Decimal:
    """A fixed-point wire string (``"0.5600"``, ``"10.00"``) as an exact Decimal.

    Args:
        text: the wire value.
        field: the field it came from, for the error message.

    Raises:
        KalshiProtocolError: the value is not a finite decimal number.
    """
    if len(text) <= _MAX_FIXED_TEXT:
        try:
            value = Decimal(text)
        except InvalidOperation:
            pass
        else:
            if value.is_finite():
                return value
    raise KalshiProtocolError(f"{field} is not a fixed-point decimal string: {text[:_MAX_FIXED_TEXT]!r}")


class Model(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A REST request or response body.

    Decoding is tolerant: unknown fields are ignored, missing optional fields default to ``None``
    and enum fields (typed as ``Literal`` for type checkers) accept values newer than the spec.
    Money stays exact: ``*_dollars`` and ``*_fp`` fields are the wire strings, and each has a
    Decimal property named without the suffix, as on the WebSocket models
    (``market.yes_bid`` is ``Decimal("0.5600")`` for ``yes_bid_dollars="0.5600"``; a fixed-point
    field without suffix, or whose bare name is taken, gets ``_decimal``: ``fill_count_decimal``).
    Optional fields left at ``None`` are not sent.
    """

    def decimal(self, name: str) -> Decimal | None:
        """The value of field ``name`` as a Decimal (``None`` when the field is null).

        Args:
            name: a field such as ``"yes_bid_dollars"`` or ``"count_fp"``.

        Raises:
            AttributeError: the model has no field ``name``.
            ValueError: the field holds something that is not a decimal number.
        """
        value = getattr(self, name)
        if value is None:
            return None
        if isinstance(value, Decimal):
            return value
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(f"{type(self).__name__}.{name} is not a number: {value!r}")
        try:
            return Decimal(value)
        except InvalidOperation as exc:
            raise ValueError(f"{type(self).__name__}.{name} is not a decimal number: {value!r}") from exc


def price_levels(pairs: list[list[str]], field: str) -> list[PriceLevel]:
    """``[["0.5600", "12.50"], ...]`` (an order book side) as exact ``PriceLevel(price, size)`` Decimals.

    Args:
        pairs: the wire pairs of dollar price and fixed-point count.
        field: the field they came from, for the error message.

    Raises:
        KalshiProtocolError: a pair is not two fixed-point decimal strings.
    """
    levels = []
    for pair in pairs:
        if len(pair) != 2 or not all(isinstance(v, str) for v in pair):
            raise KalshiProtocolError(f"{field}: expected [price, count] strings, got {pair!r:.80}")
        levels.append(PriceLevel(fixed_decimal(pair[0], field), fixed_decimal(pair[1], field)))
    return levels


Lane = Literal["read", "write"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One operation of openapi.yaml, as the client needs it at run time.

    Attributes:
        operation_id: the spec's operationId, e.g. ``"GetMarkets"``.
        method: HTTP method in upper case.
        path: path template below the API prefix, e.g. ``"/markets/{ticker}"``.
        tag: the spec tag the operation is grouped under.
        requires_auth: the spec's ``security`` demands a signed request.
        deprecated: the spec marks the operation deprecated.
        lane: the rate-limit bucket the request draws from (GET reads, everything else writes).
        cost: tokens one request costs (or one item of a batch, see ``cost_per_item``).
        cost_per_item: name of the body list whose length multiplies ``cost`` (batch calls).
        note: what the spec says to use instead of a deprecated operation.
    """

    operation_id: str
    method: str
    path: str
    tag: str
    requires_auth: bool
    deprecated: bool = False
    lane: Lane = "read"
    cost: int = 10
    cost_per_item: str | None = None
    note: str = ""
