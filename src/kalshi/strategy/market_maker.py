"""The example strategy: a simple market maker with inventory limits.

It keeps one post-only bid and one post-only ask per market at the best prices (joining the queue, or
stepping inside the spread by ``improve`` ticks when the spread allows), sized ``size`` units. Inventory is
bounded: at ``+max_position`` it stops bidding, at ``-max_position`` it stops offering, and beyond
``hard_limit`` it sends an immediate-or-cancel order at the opposite best price to get back under it (taking
liquidity, so those fills pay the taker fee). It acts only when the top of the book or its position changed,
so it is cheap on every delta. A quote that must move is cancelled and placed anew rather than amended: an
amend names the order's *total* count, so its result would depend on fills still in flight.

Run it with ``kalshi backtest rec --strategy kalshi.strategy.market_maker:MarketMaker``.
"""

from __future__ import annotations

from kalshi.strategy.base import Strategy
from kalshi.strategy.book import Book
from kalshi.strategy.context import Context
from kalshi.strategy.types import Fill, OrderUpdate

__all__ = ["MarketMaker"]


class MarketMaker(Strategy):
    """Quote both sides of every market, within inventory limits.

    Args:
        size: units per quote (100 = one contract).
        max_position: stop quoting the side that would grow the position past this many units.
        hard_limit: above this many units, reduce the position with an immediate-or-cancel order
            (default ``2 * max_position``).
        improve: ticks to step inside the spread when it is wider than ``2 * improve`` (0 joins the best prices).
        markets: the markets to trade (empty: every market the runner provides).
    """

    def __init__(
        self,
        size: int = 100,
        max_position: int = 500,
        hard_limit: int | None = None,
        improve: int = 0,
        markets: tuple[str, ...] = (),
    ) -> None:
        self.size = size
        self.max_position = max_position
        self.hard_limit = hard_limit if hard_limit is not None else 2 * max_position
        self.improve = improve
        if markets:
            self.markets = tuple(markets)
        self._wanted = frozenset(self.markets)
        self._quotes: dict[tuple[str, str], str] = {}  # (ticker, side) -> client order id
        self._seen: dict[str, tuple[int, int]] = {}
        self._targets: dict[str, tuple[int | None, int | None, int]] = {}
        self._reducing: dict[str, str] = {}  # ticker -> client order id of the IOC in flight
        self._cancelling: set[str] = set()

    async def on_book(self, ctx: Context, book: Book) -> None:
        ticker = book.ticker
        if self._wanted and ticker not in self._wanted:
            return
        position = ctx.position(ticker)
        key = (book.top_version, position)
        if self._seen.get(ticker) == key:
            return  # neither the top of the book nor the position moved
        self._seen[ticker] = key
        # Quote off the other traders' prices: the book also holds our own quotes.
        bid, ask = book.others_best_bid, book.others_best_ask
        targets = (bid, ask, position)
        if self._targets.get(ticker) == targets:
            return  # the top moved, but not the prices we quote off
        self._targets[ticker] = targets
        if bid is None or ask is None or bid >= ask:
            for side in ("bid", "ask"):
                self._pull(ctx, ticker, side)
            return
        if abs(position) > self.hard_limit and ticker not in self._reducing:
            excess = abs(position) - self.max_position
            if position > 0:
                cid = ctx.place_order(ticker, "ask", bid, excess, time_in_force="immediate_or_cancel")
            else:
                cid = ctx.place_order(ticker, "bid", ask, excess, time_in_force="immediate_or_cancel")
            self._reducing[ticker] = cid
        inside = ask - bid > 2 * self.improve and self.improve > 0
        bid_px = bid + self.improve if inside else bid
        ask_px = ask - self.improve if inside else ask
        self._quote(ctx, ticker, "bid", bid_px, position < self.max_position)
        self._quote(ctx, ticker, "ask", ask_px, position > -self.max_position)

    async def on_fill(self, ctx: Context, fill: Fill) -> None:
        self._forget(fill.ticker)  # the position changed: re-evaluate on the next book

    async def on_order_update(self, ctx: Context, update: OrderUpdate) -> None:
        if update.status in ("canceled", "executed", "rejected"):
            self._cancelling.discard(update.client_order_id)
            quote = (update.ticker, update.side)
            if self._reducing.get(update.ticker) == update.client_order_id:
                del self._reducing[update.ticker]
            if self._quotes.get(quote) == update.client_order_id:
                del self._quotes[quote]
                self._forget(update.ticker)
                book = ctx.book(update.ticker)
                if book is not None:
                    await self.on_book(ctx, book)  # re-quote at once

    def _forget(self, ticker: str) -> None:
        self._seen.pop(ticker, None)
        self._targets.pop(ticker, None)

    def _quote(self, ctx: Context, ticker: str, side: str, price: int, wanted: bool) -> None:
        cid = self._quotes.get((ticker, side))
        order = ctx.order(cid) if cid is not None else None
        if not wanted:
            if order is not None:
                self._cancel(ctx, order.client_order_id, order.status)
            return
        if order is None:
            self._quotes[(ticker, side)] = ctx.place_order(
                ticker,
                "bid" if side == "bid" else "ask",
                price,
                self.size,
                post_only=True,
            )
        elif order.price != price:
            self._cancel(ctx, order.client_order_id, order.status)

    def _pull(self, ctx: Context, ticker: str, side: str) -> None:
        cid = self._quotes.get((ticker, side))
        order = ctx.order(cid) if cid is not None else None
        if order is not None:
            self._cancel(ctx, order.client_order_id, order.status)

    def _cancel(self, ctx: Context, cid: str, status: str) -> None:
        if status == "resting" and cid not in self._cancelling:
            self._cancelling.add(cid)
            ctx.cancel_order(cid)
