"""Following the exchange's listings for a relay of every market: markets announced on ``market_lifecycle_v2``
are added, settled ones removed, and none is lost on the way.

An announcement is not repeated, so each way to miss one is covered: an add that fails (the shard it would join
is reconnecting) is kept and retried with capped backoff; when the connection following the lifecycle is
replaced, or its bounded backlog dropped announcements, the open markets are listed over REST again and the ones
not relayed are added.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from kalshi.errors import KalshiError
from kalshi.ws import Subscription

__all__ = ["RETRY_FIRST_S", "RETRY_MAX_S", "ListingFollower"]

logger = logging.getLogger(__name__)

NEW_MARKET: Final = frozenset({"created", "activated"})
GONE_MARKET: Final = frozenset({"settled", "determined", "deactivated"})
RETRY_FIRST_S: Final = 0.5  # backoff of subscription edits and snapshot requests that failed
RETRY_MAX_S: Final = 30.0


class ListingFollower:
    """Keeps a relay's markets in step with the exchange's listings.

    Args:
        add: relays more markets (raises :class:`~kalshi.errors.KalshiError` when the edit fails).
        remove: stops relaying markets.
        discover: lists the open markets over REST.
        relayed: the markets relayed now.
    """

    def __init__(
        self,
        add: Callable[[Sequence[str]], Awaitable[None]],
        remove: Callable[[Sequence[str]], Awaitable[None]],
        discover: Callable[[], Awaitable[list[str]]],
        relayed: Callable[[], set[str]],
    ) -> None:
        self._add = add
        self._remove = remove
        self._discover = discover
        self._relayed = relayed
        self._unadded: dict[str, None] = {}  # announced markets a failed edit left out, in order
        self._add_retry = asyncio.Event()
        self.relist = asyncio.Event()
        """Set when announcements may have been missed (the following connection was replaced): list again."""

    async def follow(self, lifecycle: Subscription[Any]) -> None:
        """Act on every announcement of ``lifecycle`` (a ``market_lifecycle_v2`` subscription)."""
        queue = lifecycle.queue
        dropped = queue.dropped
        async for message in lifecycle:
            if queue.dropped != dropped:
                # A backlog behind slow edits lost announcements: list the open markets again.
                logger.warning("%d lifecycle announcement(s) dropped; listing open markets", queue.dropped - dropped)
                dropped = queue.dropped
                self.relist.set()
            body = getattr(message, "msg", None)
            kind = getattr(body, "event_type", None)
            ticker = getattr(body, "market_ticker", None)
            if not isinstance(ticker, str):
                continue
            if kind in NEW_MARKET:
                await self._add_now_or_later([ticker])
            elif kind in GONE_MARKET:
                self._unadded.pop(ticker, None)
                try:
                    await self._remove([ticker])
                except KalshiError as exc:
                    logger.warning("could not follow %s of %s: %s", kind, ticker, exc)

    async def relistings(self) -> None:
        """Whenever :attr:`relist` is set: ask REST for the open markets and add those not relayed."""
        delay = RETRY_FIRST_S
        while True:
            await self.relist.wait()
            self.relist.clear()
            try:
                found = await self._discover()
            except KalshiError as exc:
                logger.warning("could not list open markets after a reconnect (next try in %.1fs): %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                self.relist.set()
                continue
            delay = RETRY_FIRST_S
            known = self._relayed()
            missing = [t for t in found if t not in known]
            if missing:
                logger.info("%d market(s) listed while the lifecycle connection was down", len(missing))
                await self._add_now_or_later(missing)

    async def retries(self) -> None:
        """Add the announced markets a failed edit left out, with capped backoff, until they are relayed."""
        delay = RETRY_FIRST_S
        while True:
            await self._add_retry.wait()
            await asyncio.sleep(delay)
            tickers = list(self._unadded)
            try:
                await self._add(tickers)
            except KalshiError as exc:
                delay = min(delay * 2, RETRY_MAX_S)
                logger.warning("could not add %d market(s) yet (next try in %.1fs): %s", len(tickers), delay, exc)
                continue
            for ticker in tickers:
                self._unadded.pop(ticker, None)
            if not self._unadded:
                self._add_retry.clear()
                delay = RETRY_FIRST_S

    async def _add_now_or_later(self, tickers: list[str]) -> None:
        try:
            await self._add(tickers)
        except KalshiError as exc:
            # Most often the shard is reconnecting: its announcement will not come again, so keep the market.
            logger.warning("could not add %s yet (retrying): %s", tickers[:5], exc)
            self._unadded.update(dict.fromkeys(tickers))
            self._add_retry.set()
