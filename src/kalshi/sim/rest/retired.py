"""Endpoints the exchange has retired but still answers: the V1 order writes under ``/portfolio/orders``.

Since June 2026 the exchange answers them ``410 Gone`` with ``deprecated_v1_order_endpoint`` (orders moved to
``/portfolio/events/orders``: a single YES book, ``side`` bid/ask, dollar-string prices); the simulator does
the same, so a bot still on the old paths fails here as it would in production. The V1 reads
(``GET /portfolio/orders...``) are current operations and stay served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aiohttp import web

from kalshi.sim.rest.common import JSON_CONTENT, error_body, json_bytes

__all__ = ["V1_ORDER_WRITES", "RetiredEndpoint", "answer_retired"]

_V2_DOCS: Final = "https://docs.kalshi.com/api-reference/orders/create-order-v2"


@dataclass(frozen=True, slots=True)
class RetiredEndpoint:
    """One retired operation: its old name, method and path, and the operation that replaces it."""

    operation_id: str
    method: str
    path: str
    replacement: str  # "METHOD /path" of the V2 operation


V1_ORDER_WRITES: Final = (
    RetiredEndpoint("CreateOrder", "POST", "/portfolio/orders", "POST /portfolio/events/orders"),
    RetiredEndpoint("BatchCreateOrders", "POST", "/portfolio/orders/batched", "POST /portfolio/events/orders/batched"),
    RetiredEndpoint(
        "BatchCancelOrders", "DELETE", "/portfolio/orders/batched", "DELETE /portfolio/events/orders/batched"
    ),
    RetiredEndpoint(
        "CancelOrder", "DELETE", "/portfolio/orders/{order_id}", "DELETE /portfolio/events/orders/{order_id}"
    ),
    RetiredEndpoint(
        "AmendOrder", "POST", "/portfolio/orders/{order_id}/amend", "POST /portfolio/events/orders/{order_id}/amend"
    ),
    RetiredEndpoint(
        "DecreaseOrder",
        "POST",
        "/portfolio/orders/{order_id}/decrease",
        "POST /portfolio/events/orders/{order_id}/decrease",
    ),
)


async def answer_retired(endpoint: RetiredEndpoint, _request: web.Request) -> web.StreamResponse:
    """The exchange's answer to a retired V1 order write: 410 ``deprecated_v1_order_endpoint``."""
    body = error_body(
        "deprecated_v1_order_endpoint",
        f"Please switch to the V2 endpoints: {endpoint.operation_id} ({endpoint.method} {endpoint.path}) is "
        f"retired; use {endpoint.replacement}",
        _V2_DOCS,
    )
    return web.Response(body=json_bytes(body), status=410, content_type=JSON_CONTENT)
