"""REST side of the simulator under ``/trade-api/v2``: mounts every operation of openapi.yaml on the app.

:func:`add_rest_routes` (called by :class:`~kalshi.sim.server.Simulator` at start) registers one route per
operation of the spec; the handlers come from the one table :data:`kalshi.sim.rest.routes.ROUTES`. Each
request goes through the same steps:

1. **faults**: a response forced with :meth:`RestFaults.fail_next` is answered at once (tests of retries);
2. **authentication**: a request carrying ``KALSHI-ACCESS-*`` headers is verified like the WebSocket upgrade
   (401 JSON error otherwise) and acts as the key's account; operations the spec secures need it, public ones
   work unsigned;
3. **rate limits**: per-key read/write token buckets (:mod:`kalshi.sim.rest.limits`), 429 with ``Retry-After``;
4. **the acting account**: order and portfolio calls naming a ``subaccount`` act as it
   (:func:`kalshi.sim.rest.subaccounts.act_for_subaccount`);
5. **the handler**: mutations run through ``sim.do`` so their events reach the WebSocket subscribers (fill,
   user_orders, market_positions, order_group_updates, communications) before the response is sent.

Errors are ``{"error": {"code", "message", "details"?}}`` with the status the exchange uses (400 naming the
field, 401, 404, 409, 429, 501 for operations the simulator does not model, naming the operation).
The knobs (forced responses, limits, counters) are :class:`~kalshi.sim.rest.controls.RestControls`.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from typing import TYPE_CHECKING, Final

from aiohttp import web

from kalshi.auth import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP
from kalshi.config import REST_PATH
from kalshi.rest._generated_ops import OPERATIONS
from kalshi.rest._model import Operation
from kalshi.sim.engine import EngineError
from kalshi.sim.keys import SignatureRejected
from kalshi.sim.rest.common import JSON_CONTENT, Handler, RestCall, RestError, error_body, json_bytes
from kalshi.sim.rest.controls import ANNOUNCEMENTS, error_response
from kalshi.sim.rest.routes import ROUTES
from kalshi.sim.rest.subaccounts import act_for_subaccount

if TYPE_CHECKING:
    from kalshi.sim.server import Simulator

__all__ = ["add_rest_routes", "implemented_operations"]

log = logging.getLogger(__name__)

_AUTH_HEADERS: Final = (HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE)


def implemented_operations() -> frozenset[str]:
    """OperationIds the simulator serves (the others of the spec answer 501)."""
    return frozenset(ROUTES)


def _authenticate(request: web.Request, sim: Simulator) -> str | None:
    """The key id of a signed request, None for an unsigned one.

    Raises:
        RestError: 401 when the headers are present but do not verify.
    """
    headers = request.headers
    if not any(name in headers for name in _AUTH_HEADERS):
        return None
    keys = sim.keys
    saved = keys.reject_replays
    keys.reject_replays = sim.rest_controls.reject_replays
    try:
        # Signed path: the raw path on the wire, without the query string, as the client signs it.
        return keys.verify(headers, request.method, request.rel_url.raw_path, now_ms=time.time_ns() // 1_000_000)
    except SignatureRejected as exc:
        sim.rejections[exc.code] += 1
        raise RestError(401, exc.code, exc.reason) from None
    finally:
        keys.reject_replays = saved


async def _serve(sim: Simulator, op: Operation, handler: Handler, request: web.Request) -> web.StreamResponse:
    """One request of ``op``: forced faults, signature, rate limit, then the handler."""
    controls = sim.rest_controls
    controls.calls[op.operation_id] += 1
    forced = controls.faults.take(op.operation_id)
    if forced is not None:
        return forced.response()
    try:
        key_id = _authenticate(request, sim)
        account = sim.account_of(key_id) if key_id is not None else None
        if op.requires_auth and account is None:
            raise RestError(
                401,
                "missing_header",
                f"{op.operation_id} needs a signed request: send KALSHI-ACCESS-KEY, -TIMESTAMP and -SIGNATURE "
                "(make the client with auth=KalshiAuth(...))",
            )
        call = RestCall(request, sim, op, key_id, account)
        await act_for_subaccount(call)
        items = 1
        if op.cost_per_item:
            listed = (await call.body()).data.get(op.cost_per_item)
            items = len(listed) if isinstance(listed, list) else 1
        remote = request.remote or "local"
        controls.limits.charge(key_id if key_id is not None else f"anon:{remote}", op, items)
        reply = await handler(call)
        return reply.response()
    except RestError as exc:
        log.debug("REST %s refused: %d %s", op.operation_id, exc.status, exc.code)
        return web.Response(
            body=json_bytes(error_body(exc.code, exc.message, exc.details)),
            status=exc.status,
            content_type=JSON_CONTENT,
            headers=exc.headers,
        )
    except EngineError as exc:
        log.debug("REST %s refused by the engine: %d %s", op.operation_id, exc.status, exc.code)
        return error_response(exc.status, exc.code, exc.message)


async def _not_implemented(sim: Simulator, op: Operation, _request: web.Request) -> web.StreamResponse:
    controls = sim.rest_controls
    controls.calls[op.operation_id] += 1
    forced = controls.faults.take(op.operation_id)
    if forced is not None:
        return forced.response()
    return error_response(
        501,
        "not_implemented",
        f"{op.operation_id} ({op.method} {op.path}) is not modelled by the simulator; use the demo exchange for it",
    )


def _path_pattern(path: str) -> re.Pattern[str]:
    segments = ("[^/]+" if seg.startswith("{") else re.escape(seg) for seg in path.split("/"))
    return re.compile("^" + "/".join(segments) + "$")


def _route_order(op: Operation) -> tuple[tuple[int, str], ...]:
    # Literal segments before placeholders, so /markets/trades is matched before /markets/{ticker}.
    return tuple((1 if seg.startswith("{") else 0, seg) for seg in op.path.split("/"))


async def _unknown_path(templates: list[tuple[str, re.Pattern[str]]], request: web.Request) -> web.StreamResponse:
    tail = request.path[len(REST_PATH) :]
    allowed = sorted({method for method, pattern in templates if pattern.match(tail)})
    if allowed:
        return error_response(
            405, "method_not_allowed", f"{request.method} is not allowed on {tail}; use {', '.join(allowed)}"
        )
    return error_response(404, "not_found", f"no REST endpoint {tail[:100]!r} in the trade API v2")


def add_rest_routes(app: web.Application, sim: Simulator) -> None:
    """Register every REST operation of the spec on ``app`` (501 for those missing from the route table).

    Raises:
        RuntimeError: the route table names an operation the spec does not have (a programming error).
    """
    unknown = ROUTES.keys() - OPERATIONS.keys() - {ANNOUNCEMENTS.operation_id}
    if unknown:
        raise RuntimeError(f"handlers for operations the spec does not have: {sorted(unknown)}")
    templates: list[tuple[str, re.Pattern[str]]] = []
    for op in sorted([*OPERATIONS.values(), ANNOUNCEMENTS], key=_route_order):
        handler = ROUTES.get(op.operation_id)
        if handler is not None:
            serve = functools.partial(_serve, sim, op, handler)
        else:
            serve = functools.partial(_not_implemented, sim, op)
        app.router.add_route(op.method, REST_PATH + op.path, serve)
        templates.append((op.method, _path_pattern(op.path)))
    app.router.add_route("*", REST_PATH + "/{tail:.*}", functools.partial(_unknown_path, templates))
