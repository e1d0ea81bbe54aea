"""The typed ``subscribe_<channel>()`` methods of seed 000 and the current spec, as a mixin of KalshiWebSocket.

Each returns a :class:`~kalshi.ws.subscription.SubscribeRequest`: await it for the Subscription or iterate it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Final

from kalshi.errors import KalshiSubscriptionError
from kalshi.models.markets import Orderbook
from kalshi.ws.backpressure import OverflowStrategy
from kalshi.ws.models import (
    CfbenchmarksValue5HzMessage,
    CfbenchmarksValueMessage,
    CommunicationsMessage,
    FillMessage,
    MarketLifecycleMessage,
    MarketPositionsMessage,
    MultivariateLifecycleMessage,
    MultivariateMessage,
    OrderbookDeltaMessage,
    OrderbookSnapshotMessage,
    OrderGroupMessage,
    PythValueMessage,
    TickerMessage,
    TradeMessage,
    UserOrdersMessage,
)
from kalshi.ws.subscription import SubscribeRequest

__all__ = ["FORWARDED_PARAMS", "ChannelSubscriptions"]

logger = logging.getLogger(__name__)

# Params of the spec's subscribe command; the generic subscribe() forwards only these.
FORWARDED_PARAMS: Final = frozenset(
    {
        "market_ticker",
        "market_tickers",
        "market_id",
        "market_ids",
        "shard_factor",
        "shard_key",
        "send_initial_snapshot",
        "skip_ticker_ack",
        "use_yes_price",
        "user_filter",
        "index_ids",
        "underlying_tickers",
    }
)
_DEFAULT_MAXSIZE: Final = 1000
_BOOK_MAXSIZE: Final = 100


class ChannelSubscriptions:
    """One method per channel; all funnel into ``_request``."""

    def _request(
        self,
        channel: str,
        params: dict[str, Any],
        overflow: OverflowStrategy | None,
        maxsize: int,
        *,
        book_mode: str | None = None,
        keep_books: bool = False,
    ) -> SubscribeRequest[Any]:
        raise NotImplementedError

    # ------------------------------------------------------------------ public: subscribing

    def subscribe(
        self,
        channel: str,
        params: Mapping[str, Any] | None = None,
        overflow: OverflowStrategy | None = None,
        maxsize: int = _DEFAULT_MAXSIZE,
    ) -> SubscribeRequest[Any]:
        """Subscribe to any channel (forward compatible). Only the spec's params are forwarded.

        Unknown param keys are dropped with a warning. Known channels yield typed messages; unknown ones yield
        :class:`~kalshi.ws.models.UnknownMessage` whose ``raw`` is the dict.
        """
        clean: dict[str, Any] = {}
        for key, value in (params or {}).items():
            if key in FORWARDED_PARAMS:
                clean[key] = value
            else:
                logger.warning("subscribe(%r): param %r is not part of the protocol and was not sent", channel, key)
        return self._request(channel, clean, overflow, maxsize)

    def subscribe_ticker(
        self,
        tickers: Sequence[str] | None = None,
        *,
        market_ids: Sequence[str] | None = None,
        skip_ticker_ack: bool | None = None,
        overflow: OverflowStrategy | None = None,
        maxsize: int = _DEFAULT_MAXSIZE,
    ) -> SubscribeRequest[TickerMessage]:
        """Ticker updates (all markets when ``tickers`` is None). Default CONFLATE: latest per market wins."""
        params = _market_params(tickers, market_ids)
        if skip_ticker_ack is not None:
            params["skip_ticker_ack"] = skip_ticker_ack
        return self._request("ticker", params, overflow, maxsize)

    def subscribe_trade(
        self, tickers: Sequence[str] | None = None, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[TradeMessage]:
        """Public trades (all markets when ``tickers`` is None)."""
        return self._request("trade", _market_params(tickers, None), overflow, maxsize)

    def subscribe_orderbook_delta(
        self,
        tickers: Sequence[str],
        *,
        send_initial_snapshot: bool = True,
        use_yes_price: bool | None = None,
        keep_books: bool = False,
        overflow: OverflowStrategy | None = None,
        maxsize: int = _DEFAULT_MAXSIZE,
    ) -> SubscribeRequest[OrderbookSnapshotMessage | OrderbookDeltaMessage]:
        """Raw snapshot and delta messages, gap-repaired: after a gap, a market's deltas resume only after its
        fresh snapshot. Every market starts with a snapshot (``send_initial_snapshot`` is always sent as true:
        repairs and reconnects rely on it).

        ``keep_books=True`` also maintains the books (readable in :attr:`books`, checked delta by delta); by
        default they are left to the consumer, which is much cheaper. :meth:`orderbook` always keeps them.
        """
        if not tickers:
            raise KalshiSubscriptionError("orderbook_delta needs market tickers (error 14 otherwise)")
        params = _market_params(tickers, None)
        params["send_initial_snapshot"] = send_initial_snapshot
        if use_yes_price is not None:
            params["use_yes_price"] = use_yes_price
        return self._request("orderbook_delta", params, overflow, maxsize, book_mode="raw", keep_books=keep_books)

    def subscribe_market_lifecycle(
        self, tickers: Sequence[str] | None = None, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[MarketLifecycleMessage]:
        """market_lifecycle_v2 (also carries event_lifecycle and event_fee_update)."""
        return self._request("market_lifecycle_v2", _market_params(tickers, None), overflow, maxsize)

    def subscribe_multivariate(
        self, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[MultivariateMessage]:
        """The retired ``multivariate`` channel (kept for old code; the exchange answers error 8 today)."""
        warnings.warn(
            "the 'multivariate' channel was retired in 2026-08; use subscribe_multivariate_lifecycle()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._request("multivariate", {}, overflow, maxsize)

    def subscribe_multivariate_lifecycle(
        self, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[MultivariateLifecycleMessage]:
        """multivariate_market_lifecycle."""
        return self._request("multivariate_market_lifecycle", {}, overflow, maxsize)

    def subscribe_fill(
        self, tickers: Sequence[str] | None = None, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[FillMessage]:
        """Your fills (private)."""
        return self._request("fill", _market_params(tickers, None), overflow, maxsize)

    def subscribe_user_orders(
        self, tickers: Sequence[str] | None = None, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[UserOrdersMessage]:
        """Your order updates (private; wire type ``user_order``)."""
        return self._request("user_orders", _market_params(tickers, None), overflow, maxsize)

    def subscribe_market_positions(
        self, tickers: Sequence[str] | None = None, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[MarketPositionsMessage]:
        """Your positions (private; wire type ``market_position``)."""
        return self._request("market_positions", _market_params(tickers, None), overflow, maxsize)

    def subscribe_order_group(
        self, *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[OrderGroupMessage]:
        """Your order group updates (private, sequenced)."""
        return self._request("order_group_updates", {}, overflow, maxsize)

    def subscribe_communications(
        self,
        *,
        shard_factor: int | None = None,
        shard_key: int | None = None,
        overflow: OverflowStrategy | None = None,
        maxsize: int = 1000,
    ) -> SubscribeRequest[CommunicationsMessage]:
        """RFQs and quotes (private)."""
        params: dict[str, Any] = {}
        if shard_factor is not None:
            params["shard_factor"] = shard_factor
        if shard_key is not None:
            params["shard_key"] = shard_key
        return self._request("communications", params, overflow, maxsize)

    def subscribe_cfbenchmarks_value(
        self, index_ids: Sequence[str], *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[CfbenchmarksValueMessage]:
        """CF Benchmarks index values."""
        return self._request("cfbenchmarks_value", {"index_ids": list(index_ids)}, overflow, maxsize)

    def subscribe_cfbenchmarks_value_5hz(
        self, index_ids: Sequence[str], *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[CfbenchmarksValue5HzMessage]:
        """CF Benchmarks index values at 5 Hz."""
        return self._request("cfbenchmarks_value_5hz", {"index_ids": list(index_ids)}, overflow, maxsize)

    def subscribe_pyth_value(
        self, underlying_tickers: Sequence[str], *, overflow: OverflowStrategy | None = None, maxsize: int = 1000
    ) -> SubscribeRequest[PythValueMessage]:
        """Pyth prices of underlyings."""
        return self._request("pyth_value", {"underlying_tickers": list(underlying_tickers)}, overflow, maxsize)

    def orderbook(self, tickers: str | Sequence[str], *, maxsize: int = _BOOK_MAXSIZE) -> SubscribeRequest[Orderbook]:
        """Yield an immutable :class:`Orderbook` after every applied snapshot or delta.

        Views are conflated per market when the consumer is slow (each view is the whole book, so nothing is
        lost by skipping an intermediate one). A book being repaired after a gap is not yielded until rebuilt.
        """
        names = [tickers] if isinstance(tickers, str) else list(tickers)
        if not names:
            raise KalshiSubscriptionError("orderbook() needs at least one market ticker")
        params: dict[str, Any] = {"market_tickers": names, "send_initial_snapshot": True}
        return self._request("orderbook_delta", params, OverflowStrategy.CONFLATE, maxsize, book_mode="views")


def _market_params(tickers: Sequence[str] | None, market_ids: Sequence[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if tickers is not None:
        if isinstance(tickers, str):
            tickers = [tickers]
        params["market_tickers"] = list(tickers)
    if market_ids is not None:
        params["market_ids"] = list(market_ids)
    return params
