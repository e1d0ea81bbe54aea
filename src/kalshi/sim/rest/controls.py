"""The simulator's REST knobs: forced responses (fault injection), rate limits and per-operation counters.

Each :class:`~kalshi.sim.server.Simulator` owns one :class:`RestControls` (``sim.rest_controls``), kept
across restarts. Tests and users reach it with :func:`rest_controls`::

    controls = rest_controls(sim)
    controls.faults.fail_next(2, status=503)       # the next two REST responses are 503s
    controls.limits.set_tier("prime")               # or controls.limits.enabled = False
    controls.calls["CreateOrderV2"]                 # requests seen per operation
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from aiohttp import web

from kalshi.rest._generated_ops import OPERATIONS
from kalshi.rest._model import Operation
from kalshi.sim.rest.common import JSON_CONTENT, error_body, json_bytes
from kalshi.sim.rest.limits import RateLimits

if TYPE_CHECKING:
    from kalshi.sim.server import Simulator

__all__ = ["ANNOUNCEMENTS", "ForcedResponse", "RestControls", "RestFaults", "error_response", "rest_controls"]

# Kept from the older spec (v3.13): the current one dropped it, clients still call it.
ANNOUNCEMENTS: Final = Operation(
    operation_id="GetExchangeAnnouncements",
    method="GET",
    path="/exchange/announcements",
    tag="exchange",
    requires_auth=False,
)


def error_response(status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None) -> web.Response:
    """An error body shaped like the exchange's (``{"error": {"code", "message"}}``)."""
    return web.Response(
        body=json_bytes(error_body(code, message)), status=status, content_type=JSON_CONTENT, headers=headers
    )


@dataclass(frozen=True, slots=True)
class ForcedResponse:
    """A response :class:`RestFaults` will send instead of serving a request."""

    status: int
    retry_after: float | None = None
    operation_id: str | None = None  # only requests of this operation; None: any
    after_serving: bool = False  # serve the request first (its effect happens), then send this instead

    def response(self) -> web.Response:
        """The error response to send."""
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
        self,
        n: int = 1,
        *,
        status: int = 503,
        retry_after: float | None = None,
        operation_id: str | None = None,
        after_serving: bool = False,
    ) -> None:
        """Answer the next ``n`` matching requests with ``status`` (and ``Retry-After`` if given).

        A 2xx ``status`` sends the error object with a success status (an exchange bug clients must catch).
        With ``after_serving`` the request is carried out first and only its answer is replaced: a reply lost on
        its way back (a gateway timeout after the exchange accepted the order), so the client cannot tell
        whether it took effect.

        Raises:
            ValueError: ``n`` below 1, a status outside 200..599, or an unknown ``operation_id``.
        """
        if n < 1 or not 200 <= status <= 599:
            raise ValueError("n must be >= 1 and status an HTTP status")
        if operation_id is not None and operation_id not in OPERATIONS and operation_id != ANNOUNCEMENTS.operation_id:
            raise ValueError(f"unknown operation {operation_id!r}")
        self._queue.extend([ForcedResponse(status, retry_after, operation_id, after_serving)] * n)

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


def rest_controls(sim: Simulator) -> RestControls:
    """The REST knobs of ``sim`` (the same object for the simulator's lifetime, across restarts)."""
    return sim.rest_controls
