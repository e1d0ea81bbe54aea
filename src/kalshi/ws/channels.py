"""What the ``subscribe_<channel>()`` methods of :class:`~kalshi.ws.client.KalshiWebSocket` send: their params.

Pure functions (no client state): the facade's methods validate and build the subscribe params here.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Final

from kalshi.errors import KalshiSubscriptionError

__all__ = [
    "DEFAULT_BOOK_MAXSIZE",
    "DEFAULT_MAXSIZE",
    "FORWARDED_PARAMS",
    "forwarded_params",
    "market_params",
    "orderbook_params",
    "views_params",
]

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
DEFAULT_MAXSIZE: Final = 1000
DEFAULT_BOOK_MAXSIZE: Final = 100


def forwarded_params(channel: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The params of a generic ``subscribe()`` that the protocol knows; unknown keys are dropped with a warning."""
    clean: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if key in FORWARDED_PARAMS:
            clean[key] = value
        else:
            logger.warning("subscribe(%r): param %r is not part of the protocol and was not sent", channel, key)
    return clean


def orderbook_params(
    tickers: Sequence[str], *, send_initial_snapshot: bool, use_yes_price: bool | None
) -> dict[str, Any]:
    """Params of an ``orderbook_delta`` subscription.

    Raises:
        KalshiSubscriptionError: no market given (the exchange answers error 14).
    """
    if not tickers:
        raise KalshiSubscriptionError("orderbook_delta needs market tickers (error 14 otherwise)")
    params = market_params(tickers, None)
    params["send_initial_snapshot"] = send_initial_snapshot
    if use_yes_price is not None:
        params["use_yes_price"] = use_yes_price
    return params


def views_params(tickers: str | Sequence[str]) -> dict[str, Any]:
    """Params of an ``orderbook()`` view subscription.

    Raises:
        KalshiSubscriptionError: no market given.
    """
    names = [tickers] if isinstance(tickers, str) else list(tickers)
    if not names:
        raise KalshiSubscriptionError("orderbook() needs at least one market ticker")
    return {"market_tickers": names, "send_initial_snapshot": True}


def warn_retired_multivariate() -> None:
    warnings.warn(
        "the 'multivariate' channel was retired in 2026-08; use subscribe_multivariate_lifecycle()",
        DeprecationWarning,
        stacklevel=3,
    )


def market_params(tickers: Sequence[str] | None, market_ids: Sequence[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if tickers is not None:
        if isinstance(tickers, str):
            tickers = [tickers]
        params["market_tickers"] = list(tickers)
    if market_ids is not None:
        params["market_ids"] = list(market_ids)
    return params
