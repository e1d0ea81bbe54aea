"""REST routes of the simulator under ``/trade-api/v2`` (the REST issue extends this module).

Shapes follow openapi.yaml: ``GET /exchange/status`` -> ``ExchangeStatus``;
``GET /markets/{ticker}/orderbook`` -> ``GetMarketOrderbookResponse`` (YES and NO bids, best first, as
``[price_dollars, count_fp]`` pairs; ``depth`` limits the levels per side).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from kalshi._fixed import format_count, format_price
from kalshi.config import REST_PATH
from kalshi.errors import KalshiError

if TYPE_CHECKING:
    from kalshi.sim.server import Simulator

__all__ = ["add_rest_routes", "error_response"]


def error_response(status: int, code: str, message: str) -> web.Response:
    """An error body shaped like the exchange's (``{"error": {"code", "message"}}``)."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def add_rest_routes(app: web.Application, sim: Simulator) -> None:
    """Register the REST endpoints of ``sim`` on ``app``."""

    async def exchange_status(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "exchange_active": True,
                "trading_active": True,
                "intra_exchange_transfers_active": True,
                "exchange_estimated_resume_time": None,
            }
        )

    async def market_orderbook(request: web.Request) -> web.Response:
        ticker = request.match_info["ticker"]
        raw_depth = request.query.get("depth", "0")
        try:
            depth = int(raw_depth)
        except ValueError:
            return error_response(400, "bad_request", "depth must be an integer from 0 to 100")
        if not 0 <= depth <= 100:
            return error_response(400, "bad_request", "depth must be an integer from 0 to 100")
        try:
            snap = sim.engine.book_snapshot(ticker)
        except KalshiError:
            return error_response(404, "not_found", f"market {ticker[:60]!r} not found")
        yes = snap.yes[:depth] if depth else snap.yes
        no = snap.no[:depth] if depth else snap.no
        body: dict[str, Any] = {
            "orderbook_fp": {
                "yes_dollars": [[format_price(p), format_count(u)] for p, u in yes],
                "no_dollars": [[format_price(p), format_count(u)] for p, u in no],
            }
        }
        return web.json_response(body)

    app.router.add_get(f"{REST_PATH}/exchange/status", exchange_status)
    app.router.add_get(f"{REST_PATH}/markets/{{ticker}}/orderbook", market_orderbook)
