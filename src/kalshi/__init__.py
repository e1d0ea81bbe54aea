"""kalshi-kit: stream, trade and test against the Kalshi exchange from Python.

Quick start (a local exchange, no account needed)::

    $ pip install 'kalshi-kit[cli]'
    $ kalshi demo

Stream order books from Python::

    import asyncio
    from kalshi import KalshiAuth, KalshiConfig, KalshiWebSocket

    async def main() -> None:
        auth = KalshiAuth.from_key_path("your-key-id", "~/.kalshi/private_key.pem")
        async with KalshiWebSocket(auth, KalshiConfig.demo()).connect() as session:
            async for book in await session.orderbook(["KXFED-25DEC-T4.00"]):
                print(book.market_ticker, book.best_yes_bid, book.best_yes_ask)

    asyncio.run(main())

What is here:

* :class:`KalshiWebSocket` (``kalshi.ws``): the asyncio streaming client; exact order books, gap repair,
  reconnects, bounded queues that never drop sequenced data silently.
* :class:`AsyncKalshiClient` and :class:`KalshiClient` (``kalshi.rest``): every REST operation, signed,
  paginated, rate limited.
* :class:`Portfolio`: live positions and resting orders kept consistent over reconnects.
* ``kalshi.sim`` (extra ``sim``): a local exchange to develop and test bots offline; the ``kalshi_sim``
  pytest fixture (``kalshi.testing``) starts one per test.
* ``kalshi.record`` (extra ``record``): record streams to Parquet, read them back, replay them.
* The ``kalshi`` command (extra ``cli``): ``demo``, ``sim``, ``book``, ``stream``, ``markets``, ``record``,
  ``replay``.

Every error raised derives from :class:`KalshiError`; the classes are exported here. The names of
``__all__`` are the curated public surface.
"""

from __future__ import annotations

from kalshi.auth import KalshiAuth
from kalshi.config import KalshiConfig
from kalshi.errors import (
    KalshiAPIError,
    KalshiAuthError,
    KalshiBackpressureError,
    KalshiBadRequestError,
    KalshiCommandError,
    KalshiConfigError,
    KalshiConflictError,
    KalshiConnectionError,
    KalshiError,
    KalshiForbiddenError,
    KalshiHandshakeError,
    KalshiNotFoundError,
    KalshiProtocolError,
    KalshiRateLimitError,
    KalshiSequenceGapError,
    KalshiServerError,
    KalshiSubscriptionError,
    KalshiUnauthorizedError,
)
from kalshi.models.markets import Orderbook
from kalshi.portfolio import Portfolio
from kalshi.rest import AsyncKalshiClient, KalshiClient, KalshiPaginationError
from kalshi.ws import ConnectionState, KalshiWebSocket, OverflowStrategy

# The one place the version is written: pyproject.toml reads it (``[tool.setuptools.dynamic]``).
__version__ = "0.1.0"

__all__ = [
    "AsyncKalshiClient",
    "ConnectionState",
    "KalshiAPIError",
    "KalshiAuth",
    "KalshiAuthError",
    "KalshiBackpressureError",
    "KalshiBadRequestError",
    "KalshiClient",
    "KalshiCommandError",
    "KalshiConfig",
    "KalshiConfigError",
    "KalshiConflictError",
    "KalshiConnectionError",
    "KalshiError",
    "KalshiForbiddenError",
    "KalshiHandshakeError",
    "KalshiNotFoundError",
    "KalshiPaginationError",
    "KalshiProtocolError",
    "KalshiRateLimitError",
    "KalshiSequenceGapError",
    "KalshiServerError",
    "KalshiSubscriptionError",
    "KalshiUnauthorizedError",
    "KalshiWebSocket",
    "Orderbook",
    "OverflowStrategy",
    "Portfolio",
    "__version__",
]
