"""Saying so when a market a command watches does not trade: settled, closed, paused or not open yet.

An order book of a finalized market is empty for good, and a stream of it stays silent: without a word, both look
like a broken connection. ``kalshi book`` and ``kalshi stream -m`` ask the REST API for each market's status
first (best effort: a server without REST, such as a replay, just gets no notice), and ``kalshi book`` follows
``market_lifecycle_v2`` to note markets that stop trading while it runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Final

import httpx

from kalshi.auth import KalshiAuth
from kalshi.config import KalshiConfig
from kalshi.errors import KalshiError
from kalshi.rest import AsyncKalshiClient
from kalshi.ws.client import KalshiWebSocket
from kalshi.ws.models import MarketLifecycleMessage

__all__ = ["TRADING_STATUSES", "describe", "follow_status", "lifecycle_note", "not_trading", "status_note"]

logger = logging.getLogger(__name__)

# Market.status values (the spec's enum, plus the listing filter's "open") under which a market trades.
TRADING_STATUSES: Final = frozenset({"active", "open"})

_WHY: Final[dict[str, str]] = {
    "initialized": "not open yet",
    "unopened": "not open yet",
    "inactive": "paused",
    "closed": "closed",
    "determined": "determined",
    "disputed": "disputed",
    "amended": "amended",
    "finalized": "settled",
    "settled": "settled",
}
_HINT: Final = "its book stays empty; `kalshi markets --status open` lists the markets that trade"


def status_note(status: str, result: str | None = None) -> str | None:
    """A short note for a market ``status`` that does not trade (``settled, result yes``), None when it trades."""
    if status in TRADING_STATUSES:
        return None
    note = _WHY.get(status, status)
    if result:
        note += f", result {result}"
    return note


def lifecycle_note(message: MarketLifecycleMessage) -> tuple[str, str | None] | None:
    """``(ticker, note)`` for a lifecycle event that changes whether a market trades (note None: trades again)."""
    payload = message.msg
    event = payload.event_type
    if event == "activated":
        return payload.market_ticker, None
    if event == "deactivated":
        return payload.market_ticker, "paused"
    if event == "determined":
        return payload.market_ticker, status_note("determined", payload.result)
    if event == "settled":
        return payload.market_ticker, status_note("settled", payload.result)
    return None


async def not_trading(
    config: KalshiConfig,
    auth: KalshiAuth | None,
    tickers: Sequence[str],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, str]:
    """A note per ticker whose market does not trade now, from the REST API (best effort: {} when it fails)."""
    notes: dict[str, str] = {}
    try:
        async with AsyncKalshiClient(config, auth=auth, transport=transport) as client:
            answers = await asyncio.gather(
                *(client.markets.get_market(ticker) for ticker in tickers), return_exceptions=True
            )
    except KalshiError as exc:
        logger.debug("no market status from %s: %s", config.rest_url, exc)
        return notes
    for ticker, answer in zip(tickers, answers, strict=True):
        if isinstance(answer, BaseException):
            if not isinstance(answer, KalshiError):
                raise answer
            logger.debug("no status for %s: %s", ticker, answer)
            continue
        market: Any = answer.market
        note = status_note(str(market.status), getattr(market, "result", None) or None)
        if note is not None:
            notes[ticker] = note
    return notes


async def follow_status(session: KalshiWebSocket, tickers: Sequence[str], notes: dict[str, str]) -> None:
    """Keep ``notes`` current from ``market_lifecycle_v2`` until cancelled (best effort: a refusal ends it)."""
    wanted = set(tickers)
    try:
        lifecycle: Any = await session.subscribe("market_lifecycle_v2", {})
        async for message in lifecycle:
            if not isinstance(message, MarketLifecycleMessage):
                continue
            change = lifecycle_note(message)
            if change is None or change[0] not in wanted:
                continue
            ticker, note = change
            if note is None:
                notes.pop(ticker, None)
            else:
                notes[ticker] = note
    except KalshiError as exc:
        logger.debug("no lifecycle events: %s", exc)


def describe(ticker: str, note: str) -> str:
    """The stderr line for a market that does not trade."""
    return f"note: {ticker} is {note}: {_HINT}"
