"""Public market-data models: the immutable order book view.

Kalshi's book is two bid ladders: resting YES bids and resting NO bids, each price -> size. There are
no asks on the wire: a NO bid at p is a YES ask at $1 - p (and vice versa), so asks are derived.

:class:`Orderbook` is what users hold. It is immutable and cheap to produce: it shares frozen
copies of the two ladders with the live book (``kalshi.ws.orderbook``) and only sorts them, and
converts them to :class:`~decimal.Decimal`, when someone reads them. Internally everything is
integer ticks ($0.0001) and units (1/100 contract), see :mod:`kalshi._fixed`.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final, Literal, NamedTuple

import msgspec

from kalshi._fixed import (
    ONE_DOLLAR_TICKS,
    count_units,
    format_count,
    format_price,
    price_ticks,
    ticks_to_decimal,
    units_to_decimal,
)

__all__ = ["Orderbook", "PriceLevel", "Side"]

Side = Literal["yes", "no"]
"""Which contract a ladder bids for."""

TickLevel = tuple[int, int]
"""(price ticks, size units) of one resting level."""


class PriceLevel(NamedTuple):
    """One resting level in dollars and contracts, exact: ``PriceLevel(Decimal('0.5600'), Decimal('12.50'))``."""

    price: Decimal
    size: Decimal


# Prices and spreads live within +-9999 ticks, so their Decimals are memoised with a natural bound;
# building a Decimal costs ~0.3 us on the target machine and views repeat the same prices.
_PRICE_DECIMALS: dict[int, Decimal] = {}


def _price_decimal(ticks: int) -> Decimal:
    value = _PRICE_DECIMALS.get(ticks)
    if value is None:
        value = ticks_to_decimal(ticks)
        if -ONE_DOLLAR_TICKS < ticks < ONE_DOLLAR_TICKS:
            _PRICE_DECIMALS[ticks] = value
    return value


@lru_cache(maxsize=16_384)
def _level(price: int, size: int) -> PriceLevel:
    # Consecutive views of a ladder share nearly all levels: memoising the Decimal pairs makes
    # reading a whole ladder ~0.1 us per level instead of ~0.8 us. PriceLevel is immutable.
    return PriceLevel(_price_decimal(price), units_to_decimal(size))


def _side_levels(levels: Iterable[TickLevel], *, invert: bool, side: str) -> dict[int, int]:
    """Validate ``(price_ticks, size_units)`` pairs into a level dict (zero sizes dropped).

    Args:
        levels: pairs in any order.
        invert: the prices are in YES terms for a NO ladder (``use_yes_price``): store $1 - price.
        side: ``"yes"`` or ``"no"``, for messages.

    Raises:
        ValueError: a price outside 1..9999 ticks, a negative size, a non-integer value or a price
            given twice.
    """
    if not invert and type(levels) is list:
        # The usual snapshot: integer pairs from the wire parsers, every price once, all in range, none empty.
        # Checked with C-level passes over the dict; anything else takes the level-by-level path below.
        try:
            fast = dict(levels)
        except (TypeError, ValueError):
            fast = None
        if fast is not None and len(fast) == len(levels):
            if not fast:
                return fast
            exact = {*map(type, fast), *map(type, fast.values())} == _ONLY_INT  # int: not bool, not float
            if exact and min(fast) > 0 and max(fast) < ONE_DOLLAR_TICKS and min(fast.values()) > 0:
                return fast
    out: dict[int, int] = {}
    # Prices given with size 0 are not kept but still count as given: a repeated price is refused whatever its
    # sizes and their order (a snapshot lists each level once; a repeat means the frame is not a book).
    empty: set[int] | None = None
    for price, size in levels:
        if type(price) is not int or type(size) is not int:
            raise ValueError(f"{side} level ({price!r}, {size!r}) must be integer ticks and units")
        if invert:
            price = ONE_DOLLAR_TICKS - price
        if not 0 < price < ONE_DOLLAR_TICKS:
            raise ValueError(f"{side} price {format_price(price)} is outside 0.0001..0.9999")
        if size < 0:
            raise ValueError(f"{side} level {format_price(price)} has negative size {format_count(size)}")
        if price in out or (empty is not None and price in empty):
            raise ValueError(f"{side} price {format_price(price)} appears twice")
        if size:
            out[price] = size
        elif empty is None:
            empty = {price}
        else:
            empty.add(price)
    return out


_ONLY_INT: Final = {int}


class _Ladder:
    """One side's resting bids frozen at view time (package-internal).

    Owns ``levels``: nobody mutates it after construction. Sorting and Decimal conversion happen
    on first use and are cached, so views that share a ladder share that work too.
    """

    __slots__ = ("_ask_level", "_best", "_best_known", "_bid_level", "_levels", "_price_levels", "_ticks")

    def __init__(self, levels: dict[int, int]) -> None:
        self._levels = levels
        self._ticks: tuple[TickLevel, ...] | None = None
        self._price_levels: tuple[PriceLevel, ...] | None = None
        self._best: TickLevel | None = None
        self._best_known = False
        self._bid_level: PriceLevel | None = None
        self._ask_level: PriceLevel | None = None

    @property
    def levels(self) -> dict[int, int]:
        return self._levels

    def ticks(self) -> tuple[TickLevel, ...]:
        ticks = self._ticks
        if ticks is None:
            ticks = self._ticks = tuple(sorted(self._levels.items(), reverse=True))
        return ticks

    def best(self) -> TickLevel | None:
        if not self._best_known:
            if self._ticks is not None:
                self._best = self._ticks[0] if self._ticks else None
            elif self._levels:
                # max() is O(n) but avoids a full sort for readers of the top of book only.
                price = max(self._levels)
                self._best = (price, self._levels[price])
            self._best_known = True
        return self._best

    def bid_level(self) -> PriceLevel | None:
        """The best bid in dollars and contracts."""
        level = self._bid_level
        if level is None:
            best = self.best()
            if best is None:
                return None
            level = self._bid_level = _level(best[0], best[1])
        return level

    def ask_level(self) -> PriceLevel | None:
        """The opposite contract's best ask implied by this side's best bid: $1 - price, same size."""
        level = self._ask_level
        if level is None:
            best = self.best()
            if best is None:
                return None
            level = self._ask_level = _level(ONE_DOLLAR_TICKS - best[0], best[1])
        return level

    def price_levels(self) -> tuple[PriceLevel, ...]:
        out = self._price_levels
        if out is None:
            out = self._price_levels = tuple([_level(price, size) for price, size in self.ticks()])
        return out

    def units(self, levels: int | None) -> int:
        if levels is None:
            return sum(self._levels.values())
        return sum(size for _price, size in self.ticks()[:levels])

    def __repr__(self) -> str:
        return f"_Ladder({len(self._levels)} levels)"


class Orderbook(msgspec.Struct, frozen=True, eq=False, gc=False):
    """An immutable view of one market's order book at one moment.

    Build one with :meth:`from_levels` (integer ticks/units) or :meth:`from_dollars` (wire strings);
    live books hand them out through ``OrderbookState.view()``. Two views are equal when they are for
    the same market and hold the same levels (``seq``, ``clock`` and ``version`` are not compared), so
    a simulator's truth compares with ``==`` to a client's view.

    Attributes:
        market_ticker: the market.
        seq: the sequence number of the last message applied (``None`` if unknown).
        clock: the exchange's per-market clock of the last message applied (``None`` if not carried).
        version: the live book's change counter when the view was taken.
    """

    market_ticker: str
    _yes_side: _Ladder
    _no_side: _Ladder
    seq: int | None = None
    clock: int | None = None
    version: int = 0

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def from_levels(
        cls,
        market_ticker: str,
        yes: Iterable[TickLevel] = (),
        no: Iterable[TickLevel] = (),
        *,
        seq: int | None = None,
        clock: int | None = None,
        version: int = 0,
    ) -> Orderbook:
        """Build a view from ``(price_ticks, size_units)`` pairs in any order; zero sizes are dropped.

        Raises:
            ValueError: a price outside 1..9999 ticks, a negative size, a non-integer value or a
                price listed twice on one side.
        """
        return cls(
            market_ticker,
            _Ladder(_side_levels(yes, invert=False, side="yes")),
            _Ladder(_side_levels(no, invert=False, side="no")),
            seq,
            clock,
            version,
        )

    @classmethod
    def from_dollars(
        cls,
        market_ticker: str,
        yes: Iterable[tuple[str, str]] = (),
        no: Iterable[tuple[str, str]] = (),
        *,
        use_yes_price: bool = False,
        seq: int | None = None,
        clock: int | None = None,
        version: int = 0,
    ) -> Orderbook:
        """Build a view from wire pairs such as ``[["0.5600", "12.50"], ...]`` (REST ``yes_dollars``).

        Args:
            market_ticker: the market.
            yes: YES bids as ``(price_dollars, count_fp)`` strings.
            no: NO bids, in NO prices unless ``use_yes_price``.
            use_yes_price: NO levels are quoted in YES terms (NO price = $1 - given price).
            seq: sequence number to carry.
            clock: timestamp to carry.
            version: version to carry.

        Raises:
            ValueError: a malformed or sub-tick string, or any reason of :meth:`from_levels`.
        """
        yes_ticks = [(price_ticks(price), count_units(size)) for price, size in yes]
        no_ticks = [(price_ticks(price), count_units(size)) for price, size in no]
        return cls(
            market_ticker,
            _Ladder(_side_levels(yes_ticks, invert=False, side="yes")),
            _Ladder(_side_levels(no_ticks, invert=use_yes_price, side="no")),
            seq,
            clock,
            version,
        )

    # -- ladders ----------------------------------------------------------------------------------

    @property
    def yes(self) -> tuple[PriceLevel, ...]:
        """YES bids, best (highest) first, in dollars and contracts."""
        return self._yes_side.price_levels()

    @property
    def no(self) -> tuple[PriceLevel, ...]:
        """NO bids, best (highest) first, in dollars and contracts."""
        return self._no_side.price_levels()

    @property
    def yes_ticks(self) -> tuple[TickLevel, ...]:
        """YES bids as ``(price_ticks, size_units)``, best first."""
        return self._yes_side.ticks()

    @property
    def no_ticks(self) -> tuple[TickLevel, ...]:
        """NO bids as ``(price_ticks, size_units)``, best first."""
        return self._no_side.ticks()

    def best_bid_ticks(self, side: Side) -> TickLevel | None:
        """Best bid of ``side`` as ``(price_ticks, size_units)`` without sorting the ladder.

        Raises:
            ValueError: ``side`` is not ``"yes"`` or ``"no"``.
        """
        return self._ladder(side).best()

    # -- top of book ------------------------------------------------------------------------------

    @property
    def best_yes_bid(self) -> PriceLevel | None:
        """Highest YES bid (price, size), or ``None`` when there are no YES bids."""
        return self._yes_side.bid_level()

    @property
    def best_no_bid(self) -> PriceLevel | None:
        """Highest NO bid (price, size), or ``None`` when there are no NO bids."""
        return self._no_side.bid_level()

    @property
    def best_yes_ask(self) -> PriceLevel | None:
        """Cheapest YES offer: $1 - best NO bid, with that bid's size."""
        return self._no_side.ask_level()

    @property
    def best_no_ask(self) -> PriceLevel | None:
        """Cheapest NO offer: $1 - best YES bid, with that bid's size."""
        return self._yes_side.ask_level()

    @property
    def spread(self) -> Decimal | None:
        """YES ask - YES bid in dollars (zero or negative if the book is locked or crossed).

        ``None`` unless both sides have bids.
        """
        spread = self._spread_ticks()
        return None if spread is None else _price_decimal(spread)

    def _spread_ticks(self) -> int | None:
        yes_bid = self._yes_side.best()
        no_bid = self._no_side.best()
        if yes_bid is None or no_bid is None:
            return None
        return ONE_DOLLAR_TICKS - no_bid[0] - yes_bid[0]

    @property
    def mid(self) -> Decimal | None:
        """Midpoint of YES bid and YES ask in dollars, exact (may be half a tick); ``None`` if a side is empty."""
        yes_bid = self._yes_side.best()
        no_bid = self._no_side.best()
        if yes_bid is None or no_bid is None:
            return None
        return ticks_to_decimal(yes_bid[0] + ONE_DOLLAR_TICKS - no_bid[0]) / 2

    # -- depth ------------------------------------------------------------------------------------

    def depth_units(self, side: Side, levels: int | None = None) -> int:
        """Resting size in units (1/100 contract) over the best ``levels`` levels of ``side`` (all if None).

        Raises:
            ValueError: an unknown side or a negative ``levels``.
        """
        ladder = self._ladder(side)
        if levels is not None and levels < 0:
            raise ValueError(f"levels must be >= 0, got {levels}")
        return ladder.units(levels)

    def depth(self, side: Side, levels: int | None = None) -> Decimal:
        """Resting contracts over the best ``levels`` levels of ``side`` (all levels if None).

        Raises:
            ValueError: an unknown side or a negative ``levels``.
        """
        return units_to_decimal(self.depth_units(side, levels))

    def total_size(self, side: Side) -> Decimal:
        """All resting contracts on ``side``.

        Raises:
            ValueError: an unknown side.
        """
        return self.depth(side)

    # -- conversions ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with wire-format strings (``"0.5600"``, ``"12.50"``) for the CLI and logs."""

        def price(level: TickLevel | None, *, ask: bool = False) -> str | None:
            if level is None:
                return None
            return format_price(ONE_DOLLAR_TICKS - level[0] if ask else level[0])

        yes_bid = self._yes_side.best()
        no_bid = self._no_side.best()
        spread = self._spread_ticks()
        mid = self.mid
        return {
            "market_ticker": self.market_ticker,
            "seq": self.seq,
            "clock": self.clock,
            "version": self.version,
            "yes": [[format_price(p), format_count(s)] for p, s in self.yes_ticks],
            "no": [[format_price(p), format_count(s)] for p, s in self.no_ticks],
            "best_yes_bid": price(yes_bid),
            "best_no_bid": price(no_bid),
            "best_yes_ask": price(no_bid, ask=True),
            "best_no_ask": price(yes_bid, ask=True),
            "spread": None if spread is None else format_price(spread),
            "mid": None if mid is None else str(mid),
        }

    # -- value semantics --------------------------------------------------------------------------

    def _ladder(self, side: str) -> _Ladder:
        if side == "yes":
            return self._yes_side
        if side == "no":
            return self._no_side
        raise ValueError(f"side must be 'yes' or 'no', got {side!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Orderbook):
            return NotImplemented
        return (
            self.market_ticker == other.market_ticker
            and self._yes_side.levels == other._yes_side.levels
            and self._no_side.levels == other._no_side.levels
        )

    def __ne__(self, other: object) -> bool:
        # msgspec Structs with eq=False do not derive __ne__ from a custom __eq__.
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash((self.market_ticker, self.yes_ticks, self.no_ticks))

    def __rich_repr__(self) -> list[tuple[str, Any]]:
        # msgspec's default would show the private ladder objects; show the levels instead.
        return [
            ("market_ticker", self.market_ticker),
            ("yes", self.yes),
            ("no", self.no),
            ("seq", self.seq),
            ("clock", self.clock),
            ("version", self.version),
        ]

    def __repr__(self) -> str:
        def top(ladder: _Ladder) -> str:
            best = ladder.best()
            if best is None:
                return "[]"
            more = len(ladder.levels) - 1
            tail = f", +{more}" if more else ""
            return f"[{format_price(best[0])} x {format_count(best[1])}{tail}]"

        return (
            f"Orderbook({self.market_ticker!r}, yes={top(self._yes_side)}, no={top(self._no_side)}, "
            f"seq={self.seq}, version={self.version})"
        )
