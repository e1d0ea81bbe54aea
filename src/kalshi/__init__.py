"""kalshi-kit: a toolkit for the Kalshi exchange API v2.

The names below are the curated public surface; a test locks ``__all__``.
"""

from __future__ import annotations

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

__version__ = "0.1.0"

__all__ = [
    "KalshiAPIError",
    "KalshiAuthError",
    "KalshiBackpressureError",
    "KalshiCommandError",
    "KalshiConfig",
    "KalshiConfigError",
    "KalshiConnectionError",
    "KalshiError",
    "KalshiRateLimitError",
    "KalshiSequenceGapError",
    "KalshiSubscriptionError",
    "__version__",
]
