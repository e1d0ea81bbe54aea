"""kalshi.sim.openmarkets: a local OpenMarkets liquidity stream (``/flow/v1``) for offline use and tests.

See :class:`~kalshi.sim.openmarkets.server.OpenMarketsServer`.
"""

from kalshi.sim.openmarkets.contests import DEFAULT_PARTNERS, LiquidityRow
from kalshi.sim.openmarkets.serve import run_openmarkets_server, serve_openmarkets
from kalshi.sim.openmarkets.server import (
    DEMO_API_KEY,
    REST_PREFIX,
    STREAM_PATH,
    OpenMarketsServer,
    PeerInfo,
)

__all__ = [
    "DEFAULT_PARTNERS",
    "DEMO_API_KEY",
    "REST_PREFIX",
    "STREAM_PATH",
    "LiquidityRow",
    "OpenMarketsServer",
    "PeerInfo",
    "run_openmarkets_server",
    "serve_openmarkets",
]
