"""The Strategy interface: async hooks a runner calls, in one order, in every mode.

Subclass :class:`Strategy` and override the hooks you need; the same class runs in a backtest
(:func:`kalshi.backtest.run`), in paper trading (:class:`kalshi.strategy.PaperRunner`) and live
(:class:`kalshi.strategy.LiveRunner`). Hooks are called one at a time, never concurrently; each receives the
:class:`~kalshi.strategy.context.Context` through which it reads state and places orders. Order methods
return at once: what became of an order arrives later through :meth:`Strategy.on_order_update` and
:meth:`Strategy.on_fill`, after the mode's latency, exactly as it would from the exchange.

Hooks should not wait on real time (``asyncio.sleep``): a backtest runs faster than the clock. Use
:attr:`Strategy.timer_interval` and :meth:`Strategy.on_timer` for periodic work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from kalshi.strategy.book import Book
    from kalshi.strategy.context import Context
    from kalshi.strategy.types import Fill, MarketLifecycle, OrderUpdate, Ticker, Trade
    from kalshi.ws.lifecycle import LifecycleEvent

__all__ = ["HOOKS", "Strategy", "book_version", "overridden_hooks"]

HOOKS: tuple[str, ...] = (
    "on_start",
    "on_book",
    "on_trade",
    "on_ticker",
    "on_fill",
    "on_order_update",
    "on_lifecycle",
    "on_timer",
    "on_connection",
    "on_stop",
)


class Strategy:
    """Base class of trading strategies; every hook does nothing by default.

    Attributes:
        markets: market tickers the strategy trades; a runner subscribes to them (a backtest defaults to every
            market of the recording when empty).
        timer_interval: seconds between :meth:`on_timer` calls (on the runner's clock), or None for no timer.
        book_updates: which book changes call :meth:`on_book`: ``"all"`` (default) every snapshot and delta;
            ``"top"`` only snapshots and changes that bump :attr:`Book.top_version` (a best price, the size at
            a best price, or the strategy's own resting size); ``"quotes"`` only snapshots and changes of the
            other traders' best bid or ask price (:attr:`Book.quote_version`), for strategies that quote off
            those prices and read nothing else of the book. Runners skip the hook call for the other deltas,
            which is most of them; a strategy must then not depend on seeing them.
    """

    markets: tuple[str, ...] = ()
    timer_interval: float | None = None
    book_updates: Literal["all", "top", "quotes"] = "all"

    async def on_start(self, ctx: Context) -> None:
        """Called once before the first market event."""

    async def on_book(self, ctx: Context, book: Book) -> None:
        """Called after the book of ``book.ticker`` changed (snapshot or delta). The book is live: read it now."""

    async def on_trade(self, ctx: Context, trade: Trade) -> None:
        """Called on every public trade of a subscribed market."""

    async def on_ticker(self, ctx: Context, ticker: Ticker) -> None:
        """Called on every ``ticker`` update."""

    async def on_fill(self, ctx: Context, fill: Fill) -> None:
        """Called on each fill of one of the strategy's orders (positions and cash already include it)."""

    async def on_order_update(self, ctx: Context, update: OrderUpdate) -> None:
        """Called when one of the strategy's orders is accepted, amended, cancelled, executed or rejected."""

    async def on_lifecycle(self, ctx: Context, event: MarketLifecycle) -> None:
        """Called on market lifecycle changes; after ``settled`` the position is paid out and flat."""

    async def on_timer(self, ctx: Context, now_ns: int) -> None:
        """Called every :attr:`timer_interval` seconds of the runner's clock."""

    async def on_connection(self, ctx: Context, event: LifecycleEvent) -> None:
        """Paper and live only: the stream's lifecycle (connected, disconnected, reconnected, gap, repaired,
        closed; see :mod:`kalshi.ws.lifecycle`). Books of a market are rebuilt by its next snapshot."""

    async def on_stop(self, ctx: Context) -> None:
        """Called once at the end (recording exhausted, runner stopped)."""


def overridden_hooks(strategy: Strategy) -> frozenset[str]:
    """Names of the hooks ``strategy`` overrides; runners skip the others (a no-op coroutine still costs)."""
    cls = type(strategy)
    return frozenset(name for name in HOOKS if getattr(cls, name) is not getattr(Strategy, name))


def book_version(book: Book, watch: int) -> int:
    """The book counter a ``book_updates`` mode watches (``watch``: 0 all, 1 top, 2 quotes; 0 reads ``version``)."""
    if watch == 2:
        return book.quote_version
    return book.top_version if watch == 1 else book.version
