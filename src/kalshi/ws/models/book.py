"""Order book messages of the ``orderbook_delta`` channel: ``orderbook_snapshot`` and ``orderbook_delta``.

The order book (:mod:`kalshi.ws.orderbook`) consumes integer price ticks ($0.0001) and count units (0.01
contract) through :meth:`OrderbookSnapshotPayload.levels_ticks`, :meth:`OrderbookDeltaPayload.price_ticks` and
:meth:`OrderbookDeltaPayload.delta_units`; they accept the current fixed-point fields and the legacy shapes.
"""

from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal
from typing import Final, Literal

import msgspec

from kalshi._fixed import ONE_DOLLAR_TICKS, cents_to_ticks, contracts_to_units
from kalshi.errors import KalshiProtocolError
from kalshi.ws.models._base import (
    DataMessage,
    Payload,
    Timestamp,
    count_or_none,
    price_or_none,
    timestamp_ms,
)
from kalshi.ws.models._numbers import (
    COUNT_CACHE,
    DELTA_CACHE,
    PRICE_CACHE,
    Levels,
    levels_cents,
    levels_dollars,
    levels_fp,
    parse_count,
    parse_price,
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

# levels_ticks() results of the last snapshots, by payload identity (the memo holds the payload, so the id
# cannot be reused while the entry lives): the protocol validates a snapshot and the book converts the same
# payload moments later; the second call then costs two list copies instead of a full conversion.
_LEVELS_MEMO: OrderedDict[int, tuple[OrderbookSnapshotPayload, Levels, Levels]] = OrderedDict()
_LEVELS_MEMO_SIZE: Final = 64

_NO_RAW: Final = msgspec.Raw()
_FP_LEVELS_DECODER: Final[msgspec.json.Decoder[list[tuple[str, str]] | None]] = msgspec.json.Decoder(
    list[tuple[str, str]] | None
)


def _decode_levels(raw: msgspec.Raw, market_ticker: str) -> list[tuple[str, str]] | None:
    if not raw:
        return None
    try:
        return _FP_LEVELS_DECODER.decode(raw)
    except (msgspec.MsgspecError, RecursionError, UnicodeDecodeError) as exc:
        text = str(exc)[:200]
        raise KalshiProtocolError(f"orderbook_snapshot for {market_ticker[:60]!r}: bad levels: {text}") from exc


class OrderbookSnapshotPayload(Payload, frozen=True, kw_only=True):
    """Full aggregated book of one market.

    Current protocol: ``yes_dollars_fp``/``no_dollars_fp`` as ``[["0.0800", "300.00"], ...]`` (a side is absent
    when empty). They are kept undecoded (``msgspec.Raw`` in ``yes_dollars_fp_raw``/``no_dollars_fp_raw``): a
    90-level snapshot then decodes ~10x faster, and consumers that never read the levels (recorders, relays)
    never pay for them. The ``yes_dollars_fp``/``no_dollars_fp`` properties decode on each access;
    :meth:`levels_ticks` converts straight to ticks. Legacy: ``yes_dollars``/``no_dollars`` as
    ``[["0.08", 300], ...]`` and ``yes``/``no`` as ``[[8, 300], ...]`` (cents, contracts), stored as
    ``yes_cents``/``no_cents``.
    """

    market_ticker: str
    market_id: str | None = None
    yes_dollars_fp_raw: msgspec.Raw = msgspec.field(default=_NO_RAW, name="yes_dollars_fp")
    no_dollars_fp_raw: msgspec.Raw = msgspec.field(default=_NO_RAW, name="no_dollars_fp")
    yes_dollars: list[tuple[str, int | str]] | None = None
    no_dollars: list[tuple[str, int | str]] | None = None
    yes_cents: list[tuple[int, int]] | None = msgspec.field(default=None, name="yes")
    no_cents: list[tuple[int, int]] | None = msgspec.field(default=None, name="no")
    clock: int | None = None

    @property
    def yes_dollars_fp(self) -> list[tuple[str, str]] | None:
        """YES levels as wire strings ``[(price_dollars, count_fp), ...]``, or None when absent.

        Raises:
            KalshiProtocolError: the levels are not a list of string pairs.
        """
        return _decode_levels(self.yes_dollars_fp_raw, self.market_ticker)

    @property
    def no_dollars_fp(self) -> list[tuple[str, str]] | None:
        """NO levels as wire strings, or None when absent.

        Raises:
            KalshiProtocolError: the levels are not a list of string pairs.
        """
        return _decode_levels(self.no_dollars_fp_raw, self.market_ticker)

    def levels_ticks(self) -> tuple[Levels, Levels]:
        """Both sides as ``(price_ticks, count_units)`` pairs, in wire order: ``(yes_levels, no_levels)``.

        Each side prefers ``*_dollars_fp``, then legacy ``*_dollars``, then legacy cents; an absent side is empty.
        The result of the last few snapshots is memoised, so converting a payload twice (protocol validation,
        then the book) costs one conversion. The lists returned are the caller's own.

        Raises:
            KalshiProtocolError: a level is not an exact price/count, or is outside $0-$1 or negative.
        """
        memo = _LEVELS_MEMO.get(id(self))
        if memo is not None and memo[0] is self:
            return list(memo[1]), list(memo[2])
        yes_fp = _decode_levels(self.yes_dollars_fp_raw, self.market_ticker)
        no_fp = _decode_levels(self.no_dollars_fp_raw, self.market_ticker)
        try:
            yes = self._side(yes_fp, self.yes_dollars, self.yes_cents)
            no = self._side(no_fp, self.no_dollars, self.no_cents)
        except ValueError as exc:
            raise KalshiProtocolError(f"orderbook_snapshot for {self.market_ticker[:60]!r}: {exc}") from exc
        if len(_LEVELS_MEMO) >= _LEVELS_MEMO_SIZE:
            _LEVELS_MEMO.popitem(last=False)
        _LEVELS_MEMO[id(self)] = (self, yes, no)
        return list(yes), list(no)

    def level_maps(self) -> tuple[dict[int, int], dict[int, int]] | None:
        """Both sides as ``{price_ticks: count_units}`` dicts ``(yes, no)``, or None to use :meth:`levels_ticks`.

        The fast path of a book: it answers only when every level is in the current fixed-point form, an exact
        price inside $0-$1 exclusive with a positive size, each price listed once. Anything else (a bad number,
        a zero size, a repeat, a legacy shape) returns None, and :meth:`levels_ticks` converts and reports it.
        The dicts are the caller's own.

        Raises:
            KalshiProtocolError: the levels are not a list of string pairs.
        """
        prices = PRICE_CACHE
        counts = COUNT_CACHE
        maps: list[dict[int, int]] = []
        for raw, dollars, cents in (
            (self.yes_dollars_fp_raw, self.yes_dollars, self.yes_cents),
            (self.no_dollars_fp_raw, self.no_dollars, self.no_cents),
        ):
            fixed = _decode_levels(raw, self.market_ticker)
            if fixed is None:
                if dollars is not None or cents is not None:
                    return None
                maps.append({})
                continue
            try:
                side = {prices[price]: counts[count] for price, count in fixed}
            except KeyError:  # a number not seen yet: parse (and cache) the new ones
                try:
                    side = {
                        prices[price] if price in prices else parse_price(price): (
                            counts[count] if count in counts else parse_count(count, signed=False)
                        )
                        for price, count in fixed
                    }
                except ValueError:
                    return None
            if len(side) != len(fixed):
                return None
            if side and (min(side) <= 0 or max(side) >= _MAX_TICKS or min(side.values()) <= 0):
                return None
            maps.append(side)
        return maps[0], maps[1]

    @staticmethod
    def _side(
        fixed: list[tuple[str, str]] | None,
        dollars: list[tuple[str, int | str]] | None,
        cents: list[tuple[int, int]] | None,
    ) -> Levels:
        if fixed is not None:
            return levels_fp(fixed)
        if dollars is not None:
            return levels_dollars(dollars)
        if cents is not None:
            return levels_cents(cents)
        return []


class OrderbookDeltaPayload(Payload, frozen=True, kw_only=True):
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
        text = self.price_dollars
        if text is not None:
            ticks = PRICE_CACHE.get(text)
            if ticks is not None:
                return ticks
            try:
                return parse_price(text)
            except ValueError as exc:
                raise KalshiProtocolError(f"orderbook_delta for {self.market_ticker[:60]!r}: {exc}") from exc
        if self.price_cents is not None:
            ticks = cents_to_ticks(self.price_cents)
            if 0 <= ticks <= _MAX_TICKS:
                return ticks
            raise KalshiProtocolError(f"orderbook_delta price {self.price_cents} cents is outside $0-$1")
        raise KalshiProtocolError(f"orderbook_delta for {self.market_ticker[:60]!r} carries no price")

    def delta_units(self) -> int:
        """The signed size change in count units (0.01 contract): ``delta_fp`` preferred, else legacy contracts.

        Raises:
            KalshiProtocolError: no delta field, or not an exact count.
        """
        text = self.delta_fp
        if text is not None:
            units = DELTA_CACHE.get(text)
            if units is not None:
                return units
            try:
                return parse_count(text, signed=True)
            except ValueError as exc:
                raise KalshiProtocolError(f"orderbook_delta for {self.market_ticker[:60]!r}: {exc}") from exc
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


class OrderbookSnapshotMessage(DataMessage, tag="orderbook_snapshot", frozen=True, kw_only=True):
    """``orderbook_snapshot``: the full book of one market; restarts the market's state (``id`` set when it
    answers a ``get_snapshot`` command)."""

    type = "orderbook_snapshot"
    msg: OrderbookSnapshotPayload


class OrderbookDeltaMessage(DataMessage, tag="orderbook_delta", frozen=True, kw_only=True):
    """``orderbook_delta``: one level change, to apply in ``seq`` order after the snapshot."""

    type = "orderbook_delta"
    msg: OrderbookDeltaPayload
