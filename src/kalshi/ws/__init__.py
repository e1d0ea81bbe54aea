"""kalshi.ws: the asyncio streaming client and its parts.

``from kalshi.ws import KalshiWebSocket, OverflowStrategy, ConnectionState`` as in seed 000.
"""

from __future__ import annotations

from kalshi.ws.backpressure import MessageQueue, OverflowStrategy
from kalshi.ws.client import KalshiWebSocket
from kalshi.ws.connection import ConnectionState
from kalshi.ws.subscription import SubscribeRequest, Subscription

__all__ = [
    "ConnectionState",
    "KalshiWebSocket",
    "MessageQueue",
    "OverflowStrategy",
    "SubscribeRequest",
    "Subscription",
]
