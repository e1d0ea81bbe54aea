"""REST side of the simulator under ``/trade-api/v2``: mounts every operation of openapi.yaml on the app.

:func:`add_rest_routes` (called by :class:`~kalshi.sim.server.Simulator` at start) registers one route per
operation of the spec; the handlers come from the one table :data:`kalshi.sim.rest.routes.ROUTES`. Each
request goes through the same steps:

1. **faults**: a response forced with :meth:`RestFaults.fail_next` is answered at once (tests of retries);
2. **authentication**: a request carrying ``KALSHI-ACCESS-*`` headers is verified like the WebSocket upgrade
   (401 JSON error otherwise) and acts as the key's account; operations the spec secures need it, public ones
   work unsigned;
3. **the acting account**: order and portfolio calls naming a ``subaccount`` act as it
   (:func:`kalshi.sim.rest.subaccounts.act_for_subaccount`);
4. **rate limits**: per-key read/write token buckets (:mod:`kalshi.sim.rest.limits`), 429 with ``Retry-After``;
5. **validation**: query parameters and JSON body against the operation's schemas in the spec
   (:mod:`kalshi.sim.rest.validation`), 400 naming the field;
6. **the handler**: mutations run through ``sim.do`` so their events reach the WebSocket subscribers (fill,
   user_orders, market_positions, order_group_updates, communications) before the response is sent.

Errors are ``{"error": {"code", "message", "details"?}}`` with the status the exchange uses (400 naming the
field, 401, 404, 409, 410 ``deprecated_v1_order_endpoint`` for the retired V1 order writes, 429, 501 for
operations the simulator does not model, naming the operation).
The knobs (forced responses, limits, counters) are :class:`~kalshi.sim.rest.controls.RestControls`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
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
from kalshi.sim.rest.retired import V1_ORDER_WRITES, answer_retired
from kalshi.sim.rest.routes import ROUTES
from kalshi.sim.rest.subaccounts import act_for_subaccount
from kalshi.sim.rest.validation import validate_body, validate_query

if TYPE_CHECKING:
    from kalshi.sim.server import Simulator

__all__ = ["add_rest_routes", "implemented_operations", "json_errors"]

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
    if forced is not None and not forced.after_serving:
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
        validate_query(op.operation_id, {name: request.query.getall(name) for name in request.query})
        if (await request.read()).strip():
            validate_body(op.operation_id, (await call.body()).data)
        reply = await handler(call)
        if forced is not None:  # served, and the answer is lost on the way back
            return forced.response()
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


def _route_order(op: Operation) -> tuple[tuple[int, str], ...]:
    # Literal segments before placeholders, so /markets/trades is matched before /markets/{ticker}.
    return tuple((1 if seg.startswith("{") else 0, seg) for seg in op.path.split("/"))


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Answer the router's own errors as the exchange does: JSON, 404 for an unknown path, 405 with ``Allow``.

    aiohttp's defaults are text/plain; a client cannot read those as API errors. Any path gets this treatment,
    including those holding characters no route can match (``\\n``, ``{``, ``}``).
    """
    try:
        return await handler(request)
    except web.HTTPMethodNotAllowed as exc:
        allowed = sorted(exc.allowed_methods)
        return error_response(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {_shown_path(request)}; this path answers {', '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
        )
    except web.HTTPNotFound:
        where = "in the trade API v2" if request.path.startswith(REST_PATH + "/") else "on this server"
        return error_response(404, "not_found", f"no endpoint {_shown_path(request)} {where}")


def _shown_path(request: web.Request) -> str:
    return repr(request.path[:100]) if any(c in request.path for c in "\r\n\t") else request.path[:100]


def add_rest_routes(app: web.Application, sim: Simulator) -> None:
    """Register every REST operation of the spec on ``app`` (501 for those missing from the route table).

    Create ``app`` with ``middlewares=[json_errors]`` so unknown paths and methods answer JSON too.

    Raises:
        RuntimeError: the route table names an operation the spec does not have (a programming error).
    """
    unknown = ROUTES.keys() - OPERATIONS.keys() - {ANNOUNCEMENTS.operation_id}
    if unknown:
        raise RuntimeError(f"handlers for operations the spec does not have: {sorted(unknown)}")
    # Literal paths first: DELETE /portfolio/orders/batched is not a cancel of the order "batched".
    for retired in sorted(V1_ORDER_WRITES, key=lambda r: "{" in r.path):
        app.router.add_route(retired.method, REST_PATH + retired.path, functools.partial(answer_retired, retired))
    for op in sorted([*OPERATIONS.values(), ANNOUNCEMENTS], key=_route_order):
        handler = ROUTES.get(op.operation_id)
        if handler is not None:
            serve = functools.partial(_serve, sim, op, handler)
        else:
            serve = functools.partial(_not_implemented, sim, op)
        app.router.add_route(op.method, REST_PATH + op.path, serve)
