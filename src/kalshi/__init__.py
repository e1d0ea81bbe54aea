"""kalshi-kit: a toolkit for the Kalshi exchange API v2.

The names below are the curated public surface; a test locks ``__all__``.
"""

from __future__ import annotations

from kalshi.auth import KalshiAuth
from kalshi.config import KalshiConfig
from kalshi.errors import (
    KalshiAPIError,
    KalshiAuthError,
    KalshiBackpressureError,
    KalshiCommandError,
    KalshiConfigError,
    KalshiConnectionError,
    KalshiError,
    KalshiRateLimitError,
    KalshiSequenceGapError,
    KalshiSubscriptionError,
)
from kalshi.models.markets import Orderbook
from kalshi.portfolio import Portfolio
from kalshi.rest import AsyncKalshiClient, KalshiClient
from kalshi.ws import ConnectionState, KalshiWebSocket, OverflowStrategy

__version__ = "0.1.0"

__all__ = [
    "AsyncKalshiClient",
    "ConnectionState",
    "KalshiAPIError",
    "KalshiAuth",
    "KalshiAuthError",
    "KalshiBackpressureError",
    "KalshiClient",
    "KalshiCommandError",
    "KalshiConfig",
    "KalshiConfigError",
    "KalshiConnectionError",
    "KalshiError",
    "KalshiRateLimitError",
    "KalshiSequenceGapError",
    "KalshiSubscriptionError",
    "KalshiWebSocket",
    "Orderbook",
    "OverflowStrategy",
    "Portfolio",
    "__version__",
]
