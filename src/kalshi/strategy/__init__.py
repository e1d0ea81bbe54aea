"""kalshi.strategy: one Strategy interface for backtests, paper trading and live trading.

::

    from kalshi.strategy import Context, Strategy
    from kalshi.strategy.book import Book

    class Joiner(Strategy):
        markets = ("KXFED-25DEC-T4.00",)

        async def on_book(self, ctx: Context, book: Book) -> None:
            if book.best_bid and not ctx.open_orders(book.ticker):
                ctx.place_order(book.ticker, "bid", book.best_bid, 100, post_only=True)

Prices are YES ticks ($0.0001), counts units (0.01 contract), money micros. Backtest it with
:func:`kalshi.backtest.run`, paper-trade it with :class:`kalshi.strategy.paper.PaperRunner`, trade it with
:class:`kalshi.strategy.live.LiveRunner` (or ``kalshi backtest|paper|live --strategy pkg.module:Class``).
"""

from kalshi.strategy.base import Strategy
from kalshi.strategy.book import Book
from kalshi.strategy.context import Context, Ledger, OrderSink
from kalshi.strategy.loader import load_strategy
from kalshi.strategy.market_maker import MarketMaker
from kalshi.strategy.types import (
    Fill,
    MarketLifecycle,
    OrderState,
    OrderUpdate,
    Side,
    StrategyError,
    Ticker,
    TimeInForce,
    Trade,
)

__all__ = [
    "Book",
    "Context",
    "Fill",
    "Ledger",
    "MarketLifecycle",
    "MarketMaker",
    "OrderSink",
    "OrderState",
    "OrderUpdate",
    "Side",
    "Strategy",
    "StrategyError",
    "Ticker",
    "TimeInForce",
    "Trade",
    "load_strategy",
]
