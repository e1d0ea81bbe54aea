"""REST side of the simulator under ``/trade-api/v2``: every operation of openapi.yaml, backed by the engine.

:func:`add_rest_routes` (called by :class:`~kalshi.sim.server.Simulator` at start) registers one route per
operation of the spec. Each request goes through the same steps:

1. **faults**: a response forced with :meth:`RestFaults.fail_next` is answered at once (tests of retries);
2. **authentication**: a request carrying ``KALSHI-ACCESS-*`` headers is verified like the WebSocket upgrade
   (401 JSON error otherwise) and acts as the key's account; operations the spec secures need it, public ones
   work unsigned;
3. **rate limits**: per-key read/write token buckets (:mod:`kalshi.sim.rest.limits`), 429 with ``Retry-After``;
4. **the handler** (:mod:`~kalshi.sim.rest.market`, :mod:`~kalshi.sim.rest.portfolio`,
   :mod:`~kalshi.sim.rest.orders`, :mod:`~kalshi.sim.rest.rfq`): mutations run through ``sim.do`` so their
   events reach the WebSocket subscribers (fill, user_orders, market_positions, order_group_updates,
   communications) before the response is sent.

Errors are ``{"error": {"code", "message", "details"?}}`` with the status the exchange uses (400 naming the
field, 401, 404, 409, 429, 501 for operations the simulator does not model, naming the operation).

Tests and users reach the knobs with :func:`rest_controls`::

    controls = rest_controls(sim)
    controls.faults.fail_next(2, status=503)       # the next two REST responses are 503s
    controls.limits.set_tier("prime")               # or controls.limits.enabled = False
    controls.calls["CreateOrderV2"]                 # requests seen per operation
"""

from __future__ import annotations

import logging
import re
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from kalshi.auth import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP
from kalshi.config import REST_PATH
from kalshi.rest._generated_ops import OPERATIONS
from kalshi.rest._model import Operation
from kalshi.sim.engine import EngineError
from kalshi.sim.keys import SignatureRejected
from kalshi.sim.rest.common import JSON_CONTENT, Handler, Reply, RestCall, RestError, error_body, json_bytes
from kalshi.sim.rest.limits import RateLimits, limits_routes
from kalshi.sim.rest.market import market_routes
from kalshi.sim.rest.orders import order_routes
from kalshi.sim.rest.portfolio import portfolio_routes
from kalshi.sim.rest.rfq import rfq_routes

if TYPE_CHECKING:
    from kalshi.sim.server import Simulator

__all__ = [
    "ANNOUNCEMENTS",
    "ForcedResponse",
    "RestControls",
    "RestFaults",
    "add_rest_routes",
    "error_response",
    "implemented_operations",
    "rest_controls",
]

log = logging.getLogger(__name__)

# Kept from the older spec (v3.13): the current one dropped it, clients still call it.
ANNOUNCEMENTS: Final = Operation(
    operation_id="GetExchangeAnnouncements",
    method="GET",
    path="/exchange/announcements",
    tag="exchange",
    requires_auth=False,
)
_AUTH_HEADERS: Final = (HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE)


def error_response(status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None) -> web.Response:
    """An error body shaped like the exchange's (``{"error": {"code", "message"}}``)."""
    return web.Response(
        body=json_bytes(error_body(code, message)), status=status, content_type=JSON_CONTENT, headers=headers
    )


# ---------------------------------------------------------------------------------------------- controls


@dataclass(frozen=True, slots=True)
class ForcedResponse:
    """A response :class:`RestFaults` will send instead of serving a request."""

    status: int
    retry_after: float | None = None
    operation_id: str | None = None  # only requests of this operation; None: any

    def response(self) -> web.Response:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = f"{self.retry_after:g}"
        return error_response(
            self.status, "simulated_fault", f"simulated HTTP {self.status} (REST fault injection)", headers=headers
        )


class RestFaults:
    """Forced REST responses, consumed in order by the requests they match (FIFO)."""

    def __init__(self) -> None:
        self._queue: deque[ForcedResponse] = deque()
        self.injected = 0

    def fail_next(
        self, n: int = 1, *, status: int = 503, retry_after: float | None = None, operation_id: str | None = None
    ) -> None:
        """Answer the next ``n`` matching requests with ``status`` (and ``Retry-After`` if given).

        A 2xx ``status`` sends the error object with a success status (an exchange bug clients must catch).

        Raises:
            ValueError: ``n`` below 1, a status outside 200..599, or an unknown ``operation_id``.
        """
        if n < 1 or not 200 <= status <= 599:
            raise ValueError("n must be >= 1 and status an HTTP status")
        if operation_id is not None and operation_id not in OPERATIONS and operation_id != ANNOUNCEMENTS.operation_id:
            raise ValueError(f"unknown operation {operation_id!r}")
        self._queue.extend([ForcedResponse(status, retry_after, operation_id)] * n)

    @property
    def pending(self) -> int:
        """Forced responses not yet sent."""
        return len(self._queue)

    def clear(self) -> None:
        """Drop every pending forced response."""
        self._queue.clear()

    def take(self, operation_id: str) -> ForcedResponse | None:
        """The forced response for a request of ``operation_id``, removed from the queue, or None."""
        for i, forced in enumerate(self._queue):
            if forced.operation_id is None or forced.operation_id == operation_id:
                del self._queue[i]
                self.injected += 1
                return forced
        return None


class RestControls:
    """Per-simulator REST state: fault injection, rate limits, counters.

    Attributes:
        faults: forced responses.
        limits: the per-key token buckets (``limits.enabled = False`` switches them off; assign a new
            :class:`RateLimits` to change its clock).
        calls: requests received per operationId (forced faults included).
        reject_replays: refuse a REST signature seen before. Off by default: Ed25519 signatures are
            deterministic, so two identical requests signed in the same millisecond (concurrent GETs of one
            path) would collide; the WebSocket upgrade keeps its own replay check.
    """

    def __init__(self) -> None:
        self.faults = RestFaults()
        self.limits = RateLimits()
        self.calls: Counter[str] = Counter()
        self.reject_replays = False


_CONTROLS: weakref.WeakKeyDictionary[Simulator, RestControls] = weakref.WeakKeyDictionary()


def rest_controls(sim: Simulator) -> RestControls:
    """The REST knobs of ``sim`` (created on first use, kept across restarts)."""
    controls = _CONTROLS.get(sim)
    if controls is None:
        controls = _CONTROLS[sim] = RestControls()
    return controls


# ---------------------------------------------------------------------------------------------- dispatch


def _all_handlers(sim: Simulator, controls: RestControls) -> dict[str, Handler]:
    handlers: dict[str, Handler] = {}
    for group in (
        market_routes(sim),
        portfolio_routes(sim),
        order_routes(sim),
        rfq_routes(sim),
        limits_routes(lambda: controls.limits),
    ):
        overlap = handlers.keys() & group.keys()
        if overlap:
            raise RuntimeError(f"REST operations registered twice: {sorted(overlap)}")
        handlers.update(group)
    return handlers


def implemented_operations(sim: Simulator) -> frozenset[str]:
    """OperationIds the simulator serves (the rest answer 501)."""
    return frozenset(_all_handlers(sim, rest_controls(sim)))


def _authenticate(request: web.Request, sim: Simulator, controls: RestControls) -> str | None:
    """The key id of a signed request, None for an unsigned one.

    Raises:
        RestError: 401 when the headers are present but do not verify.
    """
    headers = request.headers
    if not any(name in headers for name in _AUTH_HEADERS):
        return None
    keys = sim.keys
    saved = keys.reject_replays
    keys.reject_replays = controls.reject_replays
    try:
        # Signed path: the raw path on the wire, without the query string, as the client signs it.
        return keys.verify(headers, request.method, request.rel_url.raw_path, now_ms=time.time_ns() // 1_000_000)
    except SignatureRejected as exc:
        sim.rejections[exc.code] += 1
        raise RestError(401, exc.code, exc.reason) from None
    finally:
        keys.reject_replays = saved


def _endpoint(sim: Simulator, controls: RestControls, op: Operation, handler: Handler) -> Callable[..., Any]:
    async def serve(request: web.Request) -> web.StreamResponse:
        controls.calls[op.operation_id] += 1
        forced = controls.faults.take(op.operation_id)
        if forced is not None:
            return forced.response()
        try:
            key_id = _authenticate(request, sim, controls)
            account = sim.account_of(key_id) if key_id is not None else None
            if op.requires_auth and account is None:
                raise RestError(
                    401,
                    "missing_header",
                    f"{op.operation_id} needs a signed request: send KALSHI-ACCESS-KEY, -TIMESTAMP and -SIGNATURE "
                    "(make the client with auth=KalshiAuth(...))",
                )
            call = RestCall(request, sim, op, key_id, account)
            items = 1
            if op.cost_per_item:
                listed = (await call.body()).data.get(op.cost_per_item)
                items = len(listed) if isinstance(listed, list) else 1
            remote = request.remote or "local"
            controls.limits.charge(key_id if key_id is not None else f"anon:{remote}", op, items)
            reply: Reply = await handler(call)
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

    return serve


def _not_implemented(controls: RestControls, op: Operation) -> Callable[..., Any]:
    async def serve(_request: web.Request) -> web.StreamResponse:
        controls.calls[op.operation_id] += 1
        forced = controls.faults.take(op.operation_id)
        if forced is not None:
            return forced.response()
        return error_response(
            501,
            "not_implemented",
            f"{op.operation_id} ({op.method} {op.path}) is not modelled by the simulator; use the demo exchange for it",
        )

    return serve


def _path_pattern(path: str) -> re.Pattern[str]:
    segments = ("[^/]+" if seg.startswith("{") else re.escape(seg) for seg in path.split("/"))
    return re.compile("^" + "/".join(segments) + "$")


def _route_order(op: Operation) -> tuple[tuple[int, str], ...]:
    # Literal segments before placeholders, so /markets/trades is matched before /markets/{ticker}.
    return tuple((1 if seg.startswith("{") else 0, seg) for seg in op.path.split("/"))


def add_rest_routes(app: web.Application, sim: Simulator) -> None:
    """Register every REST operation of the spec on ``app`` (501 for those the simulator does not model).

    Raises:
        RuntimeError: two handler modules claim one operation (a programming error).
    """
    controls = rest_controls(sim)
    handlers = _all_handlers(sim, controls)
    announcements = handlers.pop(ANNOUNCEMENTS.operation_id)
    unknown = handlers.keys() - OPERATIONS.keys()
    if unknown:
        raise RuntimeError(f"handlers for operations the spec does not have: {sorted(unknown)}")
    ops = sorted([*OPERATIONS.values(), ANNOUNCEMENTS], key=_route_order)
    templates = []
    for op in ops:
        if op is ANNOUNCEMENTS:
            serve = _endpoint(sim, controls, op, announcements)
        elif op.operation_id in handlers:
            serve = _endpoint(sim, controls, op, handlers[op.operation_id])
        else:
            serve = _not_implemented(controls, op)
        app.router.add_route(op.method, REST_PATH + op.path, serve)
        templates.append((op.method, _path_pattern(op.path)))

    async def unknown_path(request: web.Request) -> web.StreamResponse:
        tail = request.path[len(REST_PATH) :]
        allowed = sorted({method for method, pattern in templates if pattern.match(tail)})
        if allowed:
            return error_response(
                405, "method_not_allowed", f"{request.method} is not allowed on {tail}; use {', '.join(allowed)}"
            )
        return error_response(404, "not_found", f"no REST endpoint {tail[:100]!r} in the trade API v2")

    app.router.add_route("*", REST_PATH + "/{tail:.*}", unknown_path)
