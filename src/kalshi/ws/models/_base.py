"""Envelope bases and exact-number helpers shared by every WebSocket message module.

Every server message is a msgspec Struct tagged on the wire field ``type``. Money and counts stay as the wire
strings inside the Structs (decoding a string is the cheapest thing msgspec does); the payload classes expose
exact accessors that turn them into :class:`~decimal.Decimal` or integer ticks on demand, falling back to the
legacy integer-cent fields of the pre-2026-03 protocol. Bad numbers surface as
:class:`~kalshi.errors.KalshiProtocolError` at the accessor.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, ClassVar, Final

import msgspec

from kalshi._fixed import (
    cents_to_ticks,
    contracts_to_units,
    count_units,
    price_ticks,
    ticks_to_decimal,
    units_to_decimal,
)
from kalshi.errors import KalshiProtocolError

__all__ = [
    "MAX_INT64",
    "CmdId",
    "DataMessage",
    "Message",
    "Payload",
    "Seq",
    "Sid",
    "Timestamp",
    "count_or_none",
    "money_or_none",
    "price_or_none",
    "timestamp_ms",
]

MAX_INT64: Final = 2**63 - 1
_MAX_MONEY_TEXT: Final = 64

# Ids and sequence numbers are int64 on the wire; anything outside is a malformed frame, and rejecting it at
# decode keeps a hostile value out of the sequence trackers.
Sid = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)]
CmdId = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT64)]
# Deprecated ``ts``: epoch seconds on most channels, an RFC 3339 string on orderbook_delta.
Timestamp = int | str


class Payload(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """Base of every ``msg`` body. Unknown wire fields are ignored; encoding omits absent (None) fields."""


class Message(msgspec.Struct, tag_field="type", frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """Base of every server message: the envelope ``type``, ``id``, ``sid``, ``seq`` and a ``msg`` body.

    ``type`` is the msgspec tag (a class attribute, e.g. ``TickerMessage.type == "ticker"``). ``id`` echoes a
    client command id (absent or 0 means none). ``sid`` and ``seq`` are present where the spec puts them.
    """

    type: ClassVar[str]
    id: CmdId | None = None
    sid: Sid | None = None
    seq: Seq | None = None


class DataMessage(Message, frozen=True, kw_only=True):
    """A channel message: always bound to a subscription (``sid`` required)."""

    sid: Sid


def _bad(what: str, text: object) -> KalshiProtocolError:
    shown = repr(text)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return KalshiProtocolError(f"{what} {shown} is not an exact number")


def price_or_none(dollars: str | None, cents: int | None = None) -> Decimal | None:
    """Exact price in dollars (4 decimals) from a ``*_dollars`` string, else legacy integer cents.

    Raises:
        KalshiProtocolError: the string is not a price on the $0.0001 tick.
    """
    try:
        if dollars is not None:
            return ticks_to_decimal(price_ticks(dollars))
        if cents is not None:
            return ticks_to_decimal(cents_to_ticks(cents))
    except ValueError as exc:
        raise _bad("price", dollars) from exc
    return None


def count_or_none(fixed: str | None, contracts: int | None = None) -> Decimal | None:
    """Exact contract count (2 decimals) from a ``*_fp`` string, else a legacy integer count.

    Raises:
        KalshiProtocolError: the string is not a count on the 0.01 contract unit.
    """
    try:
        if fixed is not None:
            return units_to_decimal(count_units(fixed))
        if contracts is not None:
            return units_to_decimal(contracts_to_units(contracts))
    except ValueError as exc:
        raise _bad("count", fixed) from exc
    return None


def money_or_none(dollars: str | None, legacy: int | None = None, legacy_exponent: int = -2) -> Decimal | None:
    """Exact money amount from a dollar string of any precision (fees carry 6 decimals).

    Args:
        dollars: the wire string, e.g. ``"0.010000"``.
        legacy: the pre-2026-03 integer amount, used when ``dollars`` is absent.
        legacy_exponent: the legacy unit as a power of ten of a dollar: -2 for cents, -4 for centi-cents.

    Raises:
        KalshiProtocolError: the string is not a finite decimal number.
    """
    if dollars is not None:
        if len(dollars) > _MAX_MONEY_TEXT:
            raise _bad("amount", dollars)
        try:
            value = Decimal(dollars)
        except InvalidOperation as exc:
            raise _bad("amount", dollars) from exc
        if not value.is_finite():
            raise _bad("amount", dollars)
        return value
    if legacy is not None:
        return Decimal(legacy).scaleb(legacy_exponent)
    return None


def timestamp_ms(ts_ms: int | None, ts: Timestamp | None) -> int | None:
    """Epoch milliseconds from ``ts_ms``, else the deprecated ``ts`` (epoch seconds or RFC 3339).

    Raises:
        KalshiProtocolError: ``ts`` is a string that is not RFC 3339.
    """
    if ts_ms is not None:
        return ts_ms
    if ts is None:
        return None
    if isinstance(ts, int):
        return ts * 1000
    try:
        moment = datetime.fromisoformat(ts)
    except ValueError as exc:
        raise KalshiProtocolError(f"timestamp {ts[:40]!r} is not RFC 3339") from exc
    if moment.tzinfo is None:
        raise KalshiProtocolError(f"timestamp {ts[:40]!r} has no UTC offset")
    # Integer arithmetic on the timedelta keeps milliseconds exact (no float seconds).
    delta = moment - datetime.fromisoformat("1970-01-01T00:00:00+00:00")
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
