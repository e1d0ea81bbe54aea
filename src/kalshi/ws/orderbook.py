"""Pure order book state for the ``orderbook_delta`` channel: exact, fast, no I/O.

:class:`OrderbookState` holds one market's two bid ladders (YES and NO, price ticks -> size units) and
applies ``orderbook_snapshot`` / ``orderbook_delta`` payloads to them. :class:`OrderbookManager` keeps
one state per market ticker and takes the decoded wire messages directly. Views
(:class:`kalshi.models.markets.Orderbook`) are immutable and cheap: a view copies only the side that
changed since the previous view and sorts nothing until someone reads a ladder.

Sequence numbers are per subscription (``sid``), not per market, so gap detection belongs to the
protocol layer; on a gap it calls :meth:`OrderbookManager.mark_stale` (or ``mark_all_stale``) and the
next snapshot rebuilds the book. The manager itself drops deltas whose ``seq`` is not newer than the
last one applied to that book (duplicates).

This module imports no asyncio, sockets or transport library (a test enforces that).
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Iterator, Mapping
from enum import IntEnum
from typing import Final, Protocol

from kalshi._fixed import ONE_DOLLAR_TICKS
from kalshi.errors import KalshiError
from kalshi.models.markets import Orderbook, _Ladder, _side_levels

__all__ = [
    "BookError",
    "DeltaMessageLike",
    "DeltaResult",
    "OrderbookManager",
    "OrderbookState",
    "SnapshotMessageLike",
]


class BookError(KalshiError, ValueError):
    """A snapshot cannot be applied (bad price, negative size, repeated price), or a view was
    requested from a book that has no current snapshot. Resubscribe or wait for the next snapshot."""


class DeltaResult(IntEnum):
    """Outcome of applying one delta. Anything but ``APPLIED`` left the book untouched."""

    APPLIED = 0
    NO_SNAPSHOT = 1
    """No snapshot yet (or the book was marked stale / cleared): the delta cannot be placed."""
    NEGATIVE_LEVEL = 2
    """The delta would drive a level below zero: the book and the stream disagree."""
    BAD_SIDE = 3
    """``side`` is neither ``"yes"`` nor ``"no"``."""
    BAD_PRICE = 4
    """The price is outside 1..9999 ticks ($0.0001..$0.9999)."""
    DUPLICATE = 5
    """(Manager only) ``seq`` is not newer than the last message applied to this book."""


# Module constants: the hot path returns these without an enum lookup.
_APPLIED: Final = DeltaResult.APPLIED
_NO_SNAPSHOT: Final = DeltaResult.NO_SNAPSHOT
_NEGATIVE_LEVEL: Final = DeltaResult.NEGATIVE_LEVEL
_BAD_SIDE: Final = DeltaResult.BAD_SIDE
_BAD_PRICE: Final = DeltaResult.BAD_PRICE
_DUPLICATE: Final = DeltaResult.DUPLICATE


class OrderbookState:
    """One market's live book (mutable, single-threaded; not for sharing with consumers: use :meth:`view`).

    Prices are integer ticks of $0.0001 (1..9999), sizes integer units of 1/100 contract.

    Args:
        market_ticker: the market.
        yes_price_terms: NO levels arrive in YES prices (subscriptions with ``use_yes_price``); they are
            stored as NO prices (``10000 - price``), so views and best bids are always in NO terms.

    A book is *ready* after a snapshot. :meth:`mark_stale` (a sequence gap) or :meth:`clear` empties it
    until the next snapshot; meanwhile deltas return ``NO_SNAPSHOT`` and :meth:`view` raises
    :class:`BookError` (check :attr:`has_snapshot` first), so a stale book is never exposed.
    """

    __slots__ = (
        "_base_version",
        "_clock",
        "_has_snapshot",
        "_last_seq",
        "_market_ticker",
        "_no",
        "_no_ladder",
        "_no_ladder_version",
        "_no_version",
        "_stale",
        "_view",
        "_view_version",
        "_yes",
        "_yes_ladder",
        "_yes_ladder_version",
        "_yes_price_terms",
        "_yes_version",
    )

    def __init__(self, market_ticker: str, *, yes_price_terms: bool = False) -> None:
        self._market_ticker = market_ticker
        self._yes_price_terms = yes_price_terms
        self._yes: dict[int, int] = {}
        self._no: dict[int, int] = {}
        self._has_snapshot = False
        self._stale = False
        self._last_seq: int | None = None
        self._clock: int | None = None
        # version = base + yes + no: per-side counters let a view reuse the unchanged side's ladder,
        # and the hot path pays for one counter only.
        self._base_version = 0
        self._yes_version = 0
        self._no_version = 0
        self._yes_ladder: _Ladder | None = None
        self._yes_ladder_version = -1
        self._no_ladder: _Ladder | None = None
        self._no_ladder_version = -1
        self._view: Orderbook | None = None
        self._view_version = -1

    # -- state ------------------------------------------------------------------------------------

    @property
    def market_ticker(self) -> str:
        """The market this book is for."""
        return self._market_ticker

    @property
    def yes_price_terms(self) -> bool:
        """Whether incoming NO prices are in YES terms."""
        return self._yes_price_terms

    @property
    def has_snapshot(self) -> bool:
        """True when the book holds a current snapshot (and is not stale)."""
        return self._has_snapshot

    @property
    def stale(self) -> bool:
        """True between :meth:`mark_stale` and the next snapshot."""
        return self._stale

    @property
    def version(self) -> int:
        """Change counter: grows by one per applied snapshot, delta, clear or mark_stale."""
        return self._base_version + self._yes_version + self._no_version

    @property
    def last_seq(self) -> int | None:
        """``seq`` of the last snapshot or delta applied (``None`` if none carried one)."""
        return self._last_seq

    @property
    def clock(self) -> int | None:
        """The exchange's per-market ``clock`` of the last applied change, when the messages carry one."""
        return self._clock

    # -- changes ----------------------------------------------------------------------------------

    def apply_snapshot(
        self,
        yes_levels: Iterable[tuple[int, int]],
        no_levels: Iterable[tuple[int, int]],
        *,
        seq: int | None = None,
        clock: int | None = None,
    ) -> None:
        """Replace the whole book with ``(price_ticks, size_units)`` levels; zero sizes are ignored.

        Clears :attr:`stale`. With ``yes_price_terms`` the NO prices are converted.

        Raises:
            BookError: a price outside 1..9999, a negative size, a non-integer value or a repeated
                price. The book is then marked stale: its old contents are superseded.
        """
        try:
            yes = _side_levels(yes_levels, invert=False, side="yes")
            no = _side_levels(no_levels, invert=self._yes_price_terms, side="no")
        except ValueError as exc:
            self.mark_stale()
            raise BookError(f"{self._market_ticker}: bad snapshot: {exc}") from exc
        self._reset(yes, no)
        self._has_snapshot = True
        self._stale = False
        self._last_seq = seq
        self._clock = clock

    def _replace_checked(self, yes: dict[int, int], no: dict[int, int], *, seq: int | None, clock: int | None) -> None:
        # apply_snapshot for levels already validated and owned by this book (OrderbookManager's fast path).
        self._reset(yes, no)
        self._has_snapshot = True
        self._stale = False
        self._last_seq = seq
        self._clock = clock

    def apply_delta(
        self,
        side: str,
        price_ticks: int,
        delta_units: int,
        *,
        seq: int | None = None,
        clock: int | None = None,
    ) -> DeltaResult:
        """Add ``delta_units`` (may be negative) to the ``side`` level at ``price_ticks``.

        A level that reaches zero is removed. Checks run in this order: side, snapshot, price, level;
        nothing changes (not even ``seq``/``clock``) unless the result is ``APPLIED``.

        Args:
            side: ``"yes"`` or ``"no"``.
            price_ticks: level price in ticks (YES terms for the NO side when ``yes_price_terms``).
            delta_units: size change in units of 1/100 contract.
            seq: the message's sequence number, recorded on success.
            clock: the message's exchange ``clock``, recorded on success.

        Returns:
            ``APPLIED``, ``NO_SNAPSHOT``, ``NEGATIVE_LEVEL``, ``BAD_SIDE`` or ``BAD_PRICE``.
        """
        # Hot path (hundreds of thousands per second): the two sides are written out in full to keep
        # it to a membership test, one read and one write. Existing levels were validated when
        # created, so the snapshot and price checks only run for a new level (the book is empty
        # without a snapshot, so every delta then takes that branch).
        if side == "yes":
            levels = self._yes
            if price_ticks in levels:
                size = levels[price_ticks] + delta_units
                if size > 0:
                    levels[price_ticks] = size
                elif size == 0:
                    del levels[price_ticks]
                else:
                    return _NEGATIVE_LEVEL
            elif not self._has_snapshot:
                return _NO_SNAPSHOT
            elif not 0 < price_ticks < ONE_DOLLAR_TICKS:
                return _BAD_PRICE
            elif delta_units > 0:
                levels[price_ticks] = delta_units
            elif delta_units < 0:
                return _NEGATIVE_LEVEL
            self._yes_version += 1
        elif side == "no":
            if self._yes_price_terms:
                price_ticks = ONE_DOLLAR_TICKS - price_ticks
            levels = self._no
            if price_ticks in levels:
                size = levels[price_ticks] + delta_units
                if size > 0:
                    levels[price_ticks] = size
                elif size == 0:
                    del levels[price_ticks]
                else:
                    return _NEGATIVE_LEVEL
            elif not self._has_snapshot:
                return _NO_SNAPSHOT
            elif not 0 < price_ticks < ONE_DOLLAR_TICKS:
                return _BAD_PRICE
            elif delta_units > 0:
                levels[price_ticks] = delta_units
            elif delta_units < 0:
                return _NEGATIVE_LEVEL
            self._no_version += 1
        else:
            return _BAD_SIDE
        if seq is not None:
            self._last_seq = seq
        if clock is not None:
            self._clock = clock
        return _APPLIED

    def mark_stale(self) -> None:
        """Drop the levels after a sequence gap; deltas are refused and views raise until the next snapshot."""
        self._reset({}, {})
        self._has_snapshot = False
        self._stale = True
        self._last_seq = None

    def clear(self) -> None:
        """Forget everything (e.g. on reconnect): back to the state before the first snapshot."""
        self._reset({}, {})
        self._has_snapshot = False
        self._stale = False
        self._last_seq = None
        self._clock = None

    def _reset(self, yes: dict[int, int], no: dict[int, int]) -> None:
        self._yes = yes
        self._no = no
        self._base_version += 1
        self._yes_ladder = None
        self._no_ladder = None
        self._view = None

    # -- reading ----------------------------------------------------------------------------------

    def best_yes_bid(self) -> tuple[int, int] | None:
        """Highest YES bid as ``(price_ticks, size_units)``, or ``None`` if there is none."""
        ladder = self._yes_ladder
        if ladder is not None and self._yes_ladder_version == self._yes_version:
            return ladder.best()
        return _best(self._yes)

    def best_no_bid(self) -> tuple[int, int] | None:
        """Highest NO bid as ``(price_ticks, size_units)`` in NO terms, or ``None`` if there is none."""
        ladder = self._no_ladder
        if ladder is not None and self._no_ladder_version == self._no_version:
            return ladder.best()
        return _best(self._no)

    def view(self) -> Orderbook:
        """The book now, as an immutable :class:`~kalshi.models.markets.Orderbook`.

        Unchanged books return the same view object; after a change only the changed side is copied.

        Raises:
            BookError: no snapshot yet, or the book is stale (check :attr:`has_snapshot` first).
        """
        if not self._has_snapshot:
            state = "stale after a sequence gap" if self._stale else "not received a snapshot yet"
            raise BookError(f"{self._market_ticker}: book has {state}; wait for the next snapshot")
        version = self._base_version + self._yes_version + self._no_version
        view = self._view
        if view is not None and self._view_version == version:
            return view
        yes = self._yes_ladder
        if yes is None or self._yes_ladder_version != self._yes_version:
            yes = self._yes_ladder = _Ladder(self._yes.copy())
            self._yes_ladder_version = self._yes_version
        no = self._no_ladder
        if no is None or self._no_ladder_version != self._no_version:
            no = self._no_ladder = _Ladder(self._no.copy())
            self._no_ladder_version = self._no_version
        view = self._view = Orderbook(self._market_ticker, yes, no, self._last_seq, self._clock, version)
        self._view_version = version
        return view

    def __repr__(self) -> str:
        return (
            f"OrderbookState({self._market_ticker!r}, yes={len(self._yes)} levels, no={len(self._no)} levels, "
            f"has_snapshot={self._has_snapshot}, stale={self._stale}, version={self.version})"
        )


def _best(levels: dict[int, int]) -> tuple[int, int] | None:
    if not levels:
        return None
    price = max(levels)
    return price, levels[price]


# -- wire messages (duck-typed so this module does not depend on kalshi.ws.models) -------------------


class _SnapshotBody(Protocol):
    @property
    def market_ticker(self) -> str: ...

    @property
    def clock(self) -> int | None: ...

    def levels_ticks(self) -> tuple[Iterable[tuple[int, int]], Iterable[tuple[int, int]]]: ...


class SnapshotMessageLike(Protocol):
    """An ``orderbook_snapshot`` envelope: ``seq`` and ``msg`` with ``market_ticker``, ``clock`` and
    ``levels_ticks()``."""

    @property
    def seq(self) -> int | None: ...

    @property
    def msg(self) -> _SnapshotBody: ...


class _DeltaBody(Protocol):
    @property
    def market_ticker(self) -> str: ...

    @property
    def clock(self) -> int | None: ...

    @property
    def side(self) -> str: ...

    def price_ticks(self) -> int: ...

    def delta_units(self) -> int: ...


class DeltaMessageLike(Protocol):
    """An ``orderbook_delta`` envelope: ``seq`` and ``msg`` with ``market_ticker``, ``clock``, ``side``,
    ``price_ticks()`` and ``delta_units()``."""

    @property
    def seq(self) -> int | None: ...

    @property
    def msg(self) -> _DeltaBody: ...


class OrderbookManager:
    """The books of one ``orderbook_delta`` subscription (or several), keyed by market ticker.

    Args:
        yes_price_terms: books created here take NO levels in YES prices (``use_yes_price``).
    """

    __slots__ = ("_books", "_books_view", "_yes_price_terms")

    def __init__(self, *, yes_price_terms: bool = False) -> None:
        self._yes_price_terms = yes_price_terms
        self._books: dict[str, OrderbookState] = {}
        self._books_view: Mapping[str, OrderbookState] = types.MappingProxyType(self._books)

    @property
    def books(self) -> Mapping[str, OrderbookState]:
        """Read-only live mapping of ticker -> book."""
        return self._books_view

    def get(self, market_ticker: str) -> OrderbookState | None:
        """The book for ``market_ticker``, or ``None`` if no snapshot for it has ever arrived."""
        return self._books.get(market_ticker)

    def apply_snapshot_message(self, message: SnapshotMessageLike) -> OrderbookState:
        """Replace (or create) the book named by an ``orderbook_snapshot`` message (``seq`` and the
        exchange ``clock``, when present, are recorded).

        Returns:
            The book, now ready.

        Raises:
            BookError: the snapshot is malformed; an existing book is marked stale, a new one is not kept.
        """
        body = message.msg
        ticker = body.market_ticker
        book = self._books.get(ticker)
        level_maps = None if self._yes_price_terms else getattr(body, "level_maps", None)
        maps = level_maps() if level_maps is not None else None
        if maps is not None:  # every level valid as it stands: no second pass
            if book is None:
                book = self._books[ticker] = OrderbookState(ticker)
            book._replace_checked(maps[0], maps[1], seq=message.seq, clock=body.clock)
            return book
        yes, no = body.levels_ticks()
        if book is None:
            book = OrderbookState(ticker, yes_price_terms=self._yes_price_terms)
            book.apply_snapshot(yes, no, seq=message.seq, clock=body.clock)
            self._books[ticker] = book
        else:
            book.apply_snapshot(yes, no, seq=message.seq, clock=body.clock)
        return book

    def apply_delta_message(self, message: DeltaMessageLike) -> DeltaResult:
        """Apply an ``orderbook_delta`` message to its book.

        Returns:
            ``NO_SNAPSHOT`` for a market without a book, ``DUPLICATE`` when ``seq`` is not newer than
            the book's last applied ``seq``, else the result of :meth:`OrderbookState.apply_delta`.
        """
        body = message.msg
        book = self._books.get(body.market_ticker)
        if book is None:
            return _NO_SNAPSHOT
        seq = message.seq
        if seq is not None:
            last = book.last_seq
            if last is not None and seq <= last:
                return _DUPLICATE
        return book.apply_delta(body.side, body.price_ticks(), body.delta_units(), seq=seq, clock=body.clock)

    def mark_stale(self, market_ticker: str) -> None:
        """Mark one book stale (after a gap); unknown tickers are ignored."""
        book = self._books.get(market_ticker)
        if book is not None:
            book.mark_stale()

    def mark_all_stale(self) -> None:
        """Mark every book stale: a gap on a multi-market subscription may have hit any of them."""
        for book in self._books.values():
            book.mark_stale()

    def remove(self, market_ticker: str) -> OrderbookState | None:
        """Forget a market (e.g. after ``delete_markets``); returns its book if there was one."""
        return self._books.pop(market_ticker, None)

    def clear(self) -> None:
        """Forget every book (e.g. on reconnect, before the fresh snapshots)."""
        self._books.clear()

    def __len__(self) -> int:
        return len(self._books)

    def __contains__(self, market_ticker: object) -> bool:
        return market_ticker in self._books

    def __iter__(self) -> Iterator[str]:
        return iter(self._books)
