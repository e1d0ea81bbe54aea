"""A small mutable L2 book in exact integers, as every mode of a strategy keeps it (no I/O, no asyncio).

The book holds the two sides the exchange publishes: YES bids and NO bids, ``price_ticks -> count_units``.
A NO bid at ``q`` is a YES ask at ``10000 - q``. Best prices are cached and recomputed only when the best
level empties, so reading them is O(1) on every delta.
"""

from __future__ import annotations

from collections.abc import Iterable

from kalshi.strategy.types import PRICE_SCALE

__all__ = ["Book"]


class Book:
    """The aggregated book of one market.

    Attributes:
        ticker: the market.
        yes: YES bids, ``price_ticks -> count_units``.
        no: NO bids, ``price_ticks -> count_units`` (YES asks at ``10000 - price``).
        own_yes: the part of ``yes`` that is the strategy's own orders (from deltas carrying its
            ``client_order_id``, or its simulated orders in a backtest / paper run).
        own_no: the same for ``no``.
        version: increments on every change.
        top_version: increments when a best price or the size at a best price may have changed (a cheap
            "did the top of the book move" check for strategies).
        quote_version: increments exactly when :attr:`others_best_bid` or :attr:`others_best_ask` changed
            (the prices a quoting strategy quotes off), and on snapshots.
        ts_ns: time of the last change (the runner's clock).
    """

    __slots__ = (
        "_best_no",
        "_best_yes",
        "_others_no",
        "_others_yes",
        "no",
        "own_no",
        "own_yes",
        "quote_version",
        "ticker",
        "top_version",
        "ts_ns",
        "version",
        "yes",
    )

    def __init__(self, ticker: str) -> None:
        self.ticker = ticker
        self.yes: dict[int, int] = {}
        self.no: dict[int, int] = {}
        self.own_yes: dict[int, int] = {}
        self.own_no: dict[int, int] = {}
        self._best_yes = 0
        self._best_no = 0
        # Others' best per side (own ticks), kept up to date on every change so reading it is O(1).
        self._others_yes = 0
        self._others_no = 0
        self.version = 0
        self.top_version = 0
        self.quote_version = 0
        self.ts_ns = 0

    def __repr__(self) -> str:
        return f"Book({self.ticker!r}, bid={self.best_bid}, ask={self.best_ask}, v{self.version})"

    # ------------------------------------------------------------------ reading

    @property
    def best_bid(self) -> int | None:
        """Best YES bid in ticks, or None when there is none."""
        return self._best_yes or None

    @property
    def best_ask(self) -> int | None:
        """Best YES ask in ticks (``10000 -`` the best NO bid), or None when there is none."""
        return PRICE_SCALE - self._best_no if self._best_no else None

    @property
    def bid_size(self) -> int:
        """Units at the best YES bid (0 when empty)."""
        return self.yes.get(self._best_yes, 0)

    @property
    def ask_size(self) -> int:
        """Units at the best YES ask (0 when empty)."""
        return self.no.get(self._best_no, 0)

    @property
    def mid2(self) -> int | None:
        """Twice the mid price in ticks (exact), or None unless both sides are present."""
        if not self._best_yes or not self._best_no:
            return None
        return self._best_yes + PRICE_SCALE - self._best_no

    @property
    def others_best_bid(self) -> int | None:
        """Best YES bid of other traders (levels holding only the strategy's own orders are skipped)."""
        return self._others_yes or None

    @property
    def others_best_ask(self) -> int | None:
        """Best YES ask of other traders (levels holding only the strategy's own orders are skipped)."""
        best = self._others_no
        return PRICE_SCALE - best if best else None

    @staticmethod
    def _others_best(levels: dict[int, int], own: dict[int, int], best: int) -> int:
        price = best
        while price:
            if levels.get(price, 0) > own.get(price, 0):
                return price
            price = max((p for p in levels if p < price), default=0)
        return 0

    @property
    def others_mid2(self) -> int | None:
        """Twice the mid of the other traders' best prices in ticks (exact), or None unless both are present."""
        if not self._others_yes or not self._others_no:
            return None
        return self._others_yes + PRICE_SCALE - self._others_no

    def others_top_level(self, is_yes: bool) -> int:
        """Like :meth:`top_level`, skipping levels that hold only the strategy's own orders."""
        return self._others_yes if is_yes else self._others_no

    def others_size(self, is_yes: bool, price: int) -> int:
        """Other traders' units at ``price`` on the YES-bid (``is_yes``) or NO-bid side (own ticks)."""
        if is_yes:
            size = self.yes.get(price, 0) - self.own_yes.get(price, 0)
        else:
            size = self.no.get(price, 0) - self.own_no.get(price, 0)
        return size if size > 0 else 0

    def top_level(self, is_yes: bool) -> int:
        """Best price on the YES-bid (``is_yes``) or NO-bid side in that side's own ticks, 0 when empty."""
        return self._best_yes if is_yes else self._best_no

    def bids(self) -> list[tuple[int, int]]:
        """YES bids ``(price, units)``, best (highest) first."""
        return sorted(self.yes.items(), reverse=True)

    def asks(self) -> list[tuple[int, int]]:
        """YES asks ``(yes_price, units)``, best (lowest) first."""
        return [(PRICE_SCALE - p, u) for p, u in sorted(self.no.items(), reverse=True)]

    def size_at(self, side: str, price: int) -> int:
        """Units resting at YES ``price`` on ``side`` (``"bid"``: YES bids; ``"ask"``: YES asks)."""
        if side == "bid":
            return self.yes.get(price, 0)
        return self.no.get(PRICE_SCALE - price, 0)

    # ------------------------------------------------------------------ changing

    def clear(self) -> None:
        """Empty both sides."""
        self.yes.clear()
        self.no.clear()
        self.own_yes.clear()
        self.own_no.clear()
        self.top_version += 1
        self._best_yes = self._best_no = self._others_yes = self._others_no = 0
        self.version += 1
        self.quote_version += 1

    def set_levels(
        self, yes: Iterable[tuple[int, int]], no: Iterable[tuple[int, int]], *, keep_own: bool = True
    ) -> None:
        """Replace the book with a snapshot's levels (``(price_ticks, count_units)``; zero sizes ignored).

        A snapshot does not say which size is ours: ``keep_own`` keeps the own sizes known so far (capped by
        the new levels); without it they are cleared, for a caller that re-adds them.
        """
        self.yes = {p: u for p, u in yes if u > 0}
        self.no = {p: u for p, u in no if u > 0}
        if keep_own:
            for levels, own in ((self.yes, self.own_yes), (self.no, self.own_no)):
                for price in list(own):
                    capped = min(own[price], levels.get(price, 0))
                    if capped > 0:
                        own[price] = capped
                    else:
                        del own[price]
        else:
            self.own_yes.clear()
            self.own_no.clear()
        self._best_yes = max(self.yes, default=0)
        self._best_no = max(self.no, default=0)
        self._others_yes = self._others_best(self.yes, self.own_yes, self._best_yes)
        self._others_no = self._others_best(self.no, self.own_no, self._best_no)
        self.version += 1
        self.top_version += 1
        self.quote_version += 1

    def apply_own(self, is_yes: bool, price: int, delta: int) -> int:
        """Apply a change of the strategy's own resting size (kept in ``own_yes``/``own_no`` too)."""
        self.top_version += 1  # the split between own and others' size at a level changed
        own = self.own_yes if is_yes else self.own_no
        held = own.get(price, 0)
        level = (self.yes if is_yes else self.no).get(price, 0)
        size = held + delta
        if size > 0:
            own[price] = size
        else:
            own.pop(price, None)
        result = self.apply(is_yes, price, delta)
        if size < 0 or level + delta < 0:
            # Others' sizes are unchanged (``apply`` kept their best) unless a level or the own size was clamped.
            self._recompute_others(is_yes)
        return result

    def _recompute_others(self, is_yes: bool) -> None:
        if is_yes:
            best = self._others_best(self.yes, self.own_yes, self._best_yes)
            if best != self._others_yes:
                self._others_yes = best
                self.quote_version += 1
        else:
            best = self._others_best(self.no, self.own_no, self._best_no)
            if best != self._others_no:
                self._others_no = best
                self.quote_version += 1

    def apply(self, is_yes: bool, price: int, delta: int) -> int:
        """Add ``delta`` units at ``price`` on the YES (``is_yes``) or NO side; returns the new level size.

        A level that would go negative is clamped at zero (a book that lost a message stays usable).
        """
        self.version += 1
        if is_yes:
            levels = self.yes
            size = levels.get(price, 0) + delta
            best = self._best_yes
            if price >= best:
                self.top_version += 1
            if size > 0:
                levels[price] = size
                if price > best:
                    self._best_yes = best = price
            else:
                size = 0
                levels.pop(price, None)
                if price == best:
                    self._best_yes = best = max(levels, default=0)
            own = self.own_yes
            if own:
                # Others' size at this level decides: it may become the others' best, or stop being it (a level
                # below the others' best changes neither).
                others = self._others_yes
                if price >= others:
                    if size > own.get(price, 0):
                        if price > others:
                            self._others_yes = price
                            self.quote_version += 1
                    elif price == others:
                        self._recompute_others(True)
            elif best != self._others_yes:
                self._others_yes = best
                self.quote_version += 1
            return size
        levels = self.no
        size = levels.get(price, 0) + delta
        best = self._best_no
        if price >= best:
            self.top_version += 1
        if size > 0:
            levels[price] = size
            if price > best:
                self._best_no = best = price
        else:
            size = 0
            levels.pop(price, None)
            if price == best:
                self._best_no = best = max(levels, default=0)
        own = self.own_no
        if own:
            # Others' size at this level decides: it may become the others' best, or stop being it (a level
            # below the others' best changes neither).
            others = self._others_no
            if price >= others:
                if size > own.get(price, 0):
                    if price > others:
                        self._others_no = price
                        self.quote_version += 1
                elif price == others:
                    self._recompute_others(False)
        elif best != self._others_no:
            self._others_no = best
            self.quote_version += 1
        return size
