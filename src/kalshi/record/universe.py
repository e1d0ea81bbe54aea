"""Every market, the listed ones and those that list later: what ``kalshi record`` covers without ``--markets``.

``orderbook_delta`` (unlike ``ticker`` and ``trade``) needs market tickers, and a recording that runs for days
should also catch markets that open after it started. So a recording of "every market" starts from the open
markets of the REST listing and follows ``market_lifecycle_v2``: each market it announces (``created`` or
``activated``) is added to the running market-scoped subscriptions with ``update_subscription``, so the next
reconnect resubscribes it too. The lifecycle frames are recorded like any other.

:class:`NewListings` is the sans-I/O decision (which ticker is new); :func:`follow_new_listings` is the glue.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final

import httpx

from kalshi.auth import KalshiAuth
from kalshi.config import KalshiConfig
from kalshi.rest import AsyncKalshiClient
from kalshi.ws.client import KalshiWebSocket
from kalshi.ws.models import MarketLifecycleMessage

__all__ = [
    "LISTING_EVENTS",
    "MARKET_SCOPED_CHANNELS",
    "NewListings",
    "follow_new_listings",
    "market_price_ranges",
    "open_market_tickers",
]

logger = logging.getLogger(__name__)

# Lifecycle events after which a market trades: the ones that put it in a recording of every market.
LISTING_EVENTS: Final = frozenset({"created", "activated"})
# Channels whose subscriptions name markets; a new listing is added to these.
MARKET_SCOPED_CHANNELS: Final = frozenset({"orderbook_delta", "ticker", "trade"})

_PAGE: Final = 1000
_TICKERS_PER_REQUEST: Final = 100


async def open_market_tickers(
    config: KalshiConfig, auth: KalshiAuth | None, *, transport: httpx.AsyncBaseTransport | None = None
) -> list[str]:
    """The tickers of every open market, following the REST listing's cursor.

    Raises:
        KalshiAPIError: the exchange refused the listing.
        KalshiConnectionError: the exchange could not be reached.
    """
    async with AsyncKalshiClient(config, auth=auth, transport=transport) as client:
        pages = client.markets.iter_get_markets(status="open", limit=_PAGE)
        return list(dict.fromkeys([market.ticker async for market in pages]))


async def market_price_ranges(
    config: KalshiConfig, auth: KalshiAuth | None, tickers: Iterable[str]
) -> dict[str, list[dict[str, str]]]:
    """Each market's ``price_ranges`` as the REST listing gives them (``[{"start", "end", "step"}, ...]``, dollar
    strings): the price grid a backtest of the recording holds its orders to. Markets not listed are left out.

    Raises:
        KalshiAPIError: the exchange refused the listing.
        KalshiConnectionError: the exchange could not be reached.
    """
    wanted = list(dict.fromkeys(tickers))
    ranges: dict[str, list[dict[str, str]]] = {}
    async with AsyncKalshiClient(config, auth=auth) as client:
        for first in range(0, len(wanted), _TICKERS_PER_REQUEST):
            chunk = wanted[first : first + _TICKERS_PER_REQUEST]
            async for market in client.markets.iter_get_markets(tickers=chunk, limit=len(chunk)):
                if market.price_ranges:
                    ranges[market.ticker] = [
                        {"start": r.start, "end": r.end, "step": r.step} for r in market.price_ranges
                    ]
    return ranges


class NewListings:
    """Decides which lifecycle messages announce a market not yet recorded.

    Args:
        known: the tickers already subscribed.
    """

    def __init__(self, known: Iterable[str]) -> None:
        self.known: set[str] = set(known)

    def new_ticker(self, message: MarketLifecycleMessage) -> str | None:
        """The ticker to add for ``message``, or None (not a listing, or already known)."""
        payload = message.msg
        if payload.event_type not in LISTING_EVENTS:
            return None
        return payload.market_ticker if self.add(payload.market_ticker) else None

    def add(self, ticker: str) -> bool:
        """Note ``ticker`` as covered; True when it was new."""
        if ticker in self.known:
            return False
        self.known.add(ticker)
        return True


async def follow_new_listings(
    session: KalshiWebSocket,
    listings: NewListings,
    *,
    relist: Callable[[], Awaitable[list[str]]] | None = None,
    on_subscribed: Callable[[], None] | None = None,
    on_added: Callable[[str], None] | None = None,
) -> None:
    """Subscribe ``market_lifecycle_v2`` and add each newly listed market to the market-scoped subscriptions.

    Runs until the session closes (or the task is cancelled).

    Args:
        session: the connected client whose subscriptions get the new markets.
        listings: the markets already covered.
        relist: once the lifecycle subscription is live, the open markets again (e.g. a call of
            :func:`open_market_tickers`): closes the window between the first listing and the subscription.
        on_subscribed: called once the lifecycle subscription is live.
        on_added: called with each ticker added.

    Raises:
        KalshiSubscriptionError: the lifecycle channel, or adding a market, was refused.
    """
    lifecycle: Any = await session.subscribe("market_lifecycle_v2", {})

    async def add(ticker: str) -> None:
        for sub in session.subscriptions:
            if sub is not lifecycle and sub.channel in MARKET_SCOPED_CHANNELS and sub.markets:
                await sub.add_markets([ticker])
        logger.info("recording the new market %s", ticker)
        if on_added is not None:
            on_added(ticker)

    if on_subscribed is not None:
        on_subscribed()
    if relist is not None:
        for listed in await relist():
            if listings.add(listed):
                await add(listed)
    async for message in lifecycle:
        if isinstance(message, MarketLifecycleMessage):
            ticker = listings.new_ticker(message)
            if ticker is not None:
                await add(ticker)
