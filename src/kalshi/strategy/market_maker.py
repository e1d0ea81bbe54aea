"""The example strategy: a simple market maker with inventory limits.

It keeps one post-only bid and one post-only ask per market at the other traders' best prices (joining the
queue, or stepping inside the spread by ``improve`` ticks when the spread allows), sized ``size`` units.
Inventory is bounded: at ``+max_position`` it stops bidding, at ``-max_position`` it stops offering, and beyond
``hard_limit`` it sends an immediate-or-cancel order at the opposite best price to get back under it (taking
liquidity, so those fills pay the taker fee).

Like a production market maker it does not chase every flicker of the book, which would cost it its queue
place and load the exchange with cancels:

* it re-evaluates only when the other traders' best bid or ask price or its inventory band (long limit,
  short limit, over the hard limit) changed, so it declares :attr:`~kalshi.strategy.Strategy.book_updates`
  ``= "quotes"`` and runners skip the other deltas (its decisions are the same when a runner does not);
* a resting quote is moved only when its target price moved by at least ``requote_ticks``;
* a quote younger than ``min_quote_life_s`` is left alone (a minimum quote life, as exchanges' market-maker
  programs ask for and as desks use against flickering); the move happens on the next top-of-book change
  after that.

A quote that must move is cancelled and placed anew rather than amended: an amend names the order's *total*
count, so its result would depend on fills still in flight.

Run it with ``kalshi backtest rec --strategy kalshi.strategy.market_maker:MarketMaker``.
"""

from __future__ import annotations

from typing import Final, Literal

from kalshi.strategy.base import Strategy
from kalshi.strategy.book import Book
from kalshi.strategy.context import Context
from kalshi.strategy.types import Fill, OrderUpdate

__all__ = ["MarketMaker"]

_DONE: Final = frozenset({"canceled", "executed", "rejected"})


class MarketMaker(Strategy):
    """Quote both sides of every market, within inventory limits.

    Args:
        size: units per quote (100 = one contract).
        max_position: stop quoting the side that would grow the position past this many units.
        hard_limit: above this many units, reduce the position with an immediate-or-cancel order
            (default ``2 * max_position``).
        improve: ticks to step inside the spread when it is wider than ``2 * improve`` (0 joins the best prices).
        markets: the markets to trade (empty: every market the runner provides).
        requote_ticks: move a resting quote only when its target moved by at least this many ticks
            (100 = one cent; 1 follows every tick).
        min_quote_life_s: leave a quote at least this long (runner clock) before moving it (0: move at once).
            Pulling a quote because a side must stop (inventory limit, crossed or empty book) is never delayed.

    Raises:
        ValueError: a non-positive size or ``requote_ticks``, or a negative limit or quote life.
    """

    book_updates: Literal["all", "top", "quotes"] = "quotes"

    def __init__(
        self,
        size: int = 100,
        max_position: int = 500,
        hard_limit: int | None = None,
        improve: int = 0,
        markets: tuple[str, ...] = (),
        requote_ticks: int = 100,
        min_quote_life_s: float = 0.25,
    ) -> None:
        if size <= 0 or requote_ticks <= 0 or max_position < 0 or improve < 0 or min_quote_life_s < 0:
            raise ValueError("size and requote_ticks must be > 0; max_position, improve, min_quote_life_s >= 0")
        self.size = size
        self.max_position = max_position
        self.hard_limit = hard_limit if hard_limit is not None else 2 * max_position
        if self.hard_limit < 0:
            raise ValueError("hard_limit must be >= 0")
        self.improve = improve
        self.requote_ticks = requote_ticks
        self.min_quote_life_ns = int(min_quote_life_s * 1e9)
        if markets:
            self.markets = tuple(markets)
        self._wanted = frozenset(self.markets)
        self._quotes: dict[tuple[str, str], str] = {}  # (ticker, side) -> client order id
        self._seen: dict[str, tuple[int, int]] = {}  # ticker -> (quote_version, position) last handled
        self._targets: dict[str, tuple[int | None, int | None, int]] = {}  # last acted-on (bid, ask, band)
        self._reducing: dict[str, str] = {}  # ticker -> client order id of the IOC in flight
        self._cancelling: set[str] = set()

    def _band(self, position: int) -> int:
        """The inventory band: which sides may quote and whether to reduce (the quotes depend on nothing else)."""
        if abs(position) > self.hard_limit:
            return 2 if position > 0 else -2
        if position >= self.max_position:
            return 1
        if position <= -self.max_position:
            return -1
        return 0

    async def on_book(self, ctx: Context, book: Book) -> None:
        ticker = book.ticker
        if self._wanted and ticker not in self._wanted:
            return
        position = ctx.position(ticker)
        key = (book.quote_version, position)
        seen = self._seen
        if seen.get(ticker) == key:
            return  # neither the others' best prices nor the position moved
        seen[ticker] = key
        # Quote off the other traders' prices: the book also holds our own quotes.
        bid, ask = book.others_best_bid, book.others_best_ask
        band = self._band(position)
        targets = (bid, ask, band)
        last_targets = self._targets
        if last_targets.get(ticker) == targets:
            return  # the top moved, but not the prices we quote off nor the inventory band
        last_targets[ticker] = targets
        if bid is None or ask is None or bid >= ask:
            for side in ("bid", "ask"):
                self._pull(ctx, ticker, side)
            return
        if (band == 2 or band == -2) and ticker not in self._reducing:
            excess = abs(position) - self.max_position
            if position > 0:
                cid = ctx.place_order(ticker, "ask", bid, excess, time_in_force="immediate_or_cancel")
            else:
                cid = ctx.place_order(ticker, "bid", ask, excess, time_in_force="immediate_or_cancel")
            self._reducing[ticker] = cid
        inside = ask - bid > 2 * self.improve and self.improve > 0
        bid_px = bid + self.improve if inside else bid
        ask_px = ask - self.improve if inside else ask
        settled = self._quote(ctx, ticker, "bid", bid_px, band <= 0)
        if not self._quote(ctx, ticker, "ask", ask_px, band >= 0) or not settled:
            del self._targets[ticker]  # a move was deferred: act again on the next change of the others' prices

    async def on_fill(self, ctx: Context, fill: Fill) -> None:
        # The position changed: re-evaluate now, so the decision does not wait for (or depend on) the next delta.
        book = ctx.book(fill.ticker)
        if book is not None:
            await self.on_book(ctx, book)

    async def on_order_update(self, ctx: Context, update: OrderUpdate) -> None:
        if update.status not in _DONE and update.reason is not None and update.client_order_id in self._cancelling:
            # The cancel failed and the quote still rests: decide again on the next change of the market.
            self._cancelling.discard(update.client_order_id)
            self._forget(update.ticker)
            return
        if update.status in _DONE:
            cid, ticker = update.client_order_id, update.ticker
            self._cancelling.discard(cid)
            again = False
            if self._reducing.get(ticker) == cid:
                del self._reducing[ticker]
                again = update.filled > 0  # still over the hard limit? reduce again, unless this one found nothing
            quote = (ticker, update.side)
            if self._quotes.get(quote) == cid:
                del self._quotes[quote]
                # Re-quote at once, except after a refusal (e.g. a post-only bid that would cross our own older
                # ask, still too young to move): sent again now it would be refused again, over and over at the
                # same instant. The next change of the market or of the position quotes it again.
                again = again or update.status != "rejected"
            if again:
                self._forget(ticker)
                book = ctx.book(ticker)
                if book is not None:
                    await self.on_book(ctx, book)

    def _forget(self, ticker: str) -> None:
        self._seen.pop(ticker, None)
        self._targets.pop(ticker, None)

    def _quote(self, ctx: Context, ticker: str, side: Literal["bid", "ask"], price: int, wanted: bool) -> bool:
        """Bring one quote towards ``price``; False when a needed move was deferred by the minimum quote life."""
        quote = (ticker, side)
        cid = self._quotes.get(quote)
        order = ctx.order(cid) if cid is not None else None
        if not wanted:
            if order is not None:
                self._cancel(ctx, order.client_order_id, order.status)
            return True
        if order is None:
            self._quotes[quote] = ctx.place_order(ticker, side, price, self.size, post_only=True)
        elif abs(order.price - price) >= self.requote_ticks:
            if ctx.now_ns - order.created_ns < self.min_quote_life_ns:
                return False
            self._cancel(ctx, order.client_order_id, order.status)
        return True

    def _pull(self, ctx: Context, ticker: str, side: str) -> None:
        cid = self._quotes.get((ticker, side))
        order = ctx.order(cid) if cid is not None else None
        if order is not None:
            self._cancel(ctx, order.client_order_id, order.status)

    def _cancel(self, ctx: Context, cid: str, status: str) -> None:
        if status == "resting" and cid not in self._cancelling:
            self._cancelling.add(cid)
            ctx.cancel_order(cid)
