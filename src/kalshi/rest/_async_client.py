"""The Kalshi REST client: transport, signing, rate limiting, retries, errors and pagination.

This module is the single source: ``scripts/gen_sync.py`` rewrites it into the blocking
``KalshiClient`` (``_generated_sync_client.py``); a test checks that the generated file is current.
"""

from __future__ import annotations

import asyncio
import logging
import random
import warnings
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, TypeVar

import httpx

from kalshi.config import KalshiConfig
from kalshi.errors import KalshiAuthError, KalshiConnectionError
from kalshi.rest._generated_models import GetAccountApiLimitsResponse
from kalshi.rest._generated_resources import AsyncResources
from kalshi.rest._model import Model, Operation
from kalshi.rest._retry import RetryPolicy, is_idempotent, was_never_sent
from kalshi.rest._wire import (
    AsyncSleep,
    KalshiPaginationError,
    RequestSigner,
    decode_body,
    encode_body,
    encode_query,
    error_for_response,
    error_in_success_body,
    render_path,
)
from kalshi.rest.ratelimit import BucketLimit, RateLimiter, costs_by_operation

__all__ = ["AsyncKalshiClient"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
P = TypeVar("P")
I = TypeVar("I")  # noqa: E741  # item type of a page

_USER_AGENT: Final = "kalshi-kit/0.1"
_JSON: Final = {"Content-Type": "application/json"}


def _fields_of(model: type[Any]) -> frozenset[str]:
    """Wire names of a model's fields (to tell its own ``error``/``code`` fields from an error object)."""
    return frozenset(getattr(model, "__struct_encode_fields__", ()))


class AsyncKalshiClient(AsyncResources):
    """Every REST operation of the Kalshi API, grouped by resource.

    ::

        async with AsyncKalshiClient(KalshiConfig.demo(), auth=auth) as client:
            status = await client.exchange.get_exchange_status()
            async for market in client.markets.iter_get_markets(status="open", tickers=["A", "B"]):
                print(market.ticker, market.yes_bid, market.yes_ask)  # exact Decimals
            order = await client.orders.create_order_v2(
                ticker="X", side="bid", count="1.00", price="0.5600", client_order_id=str(uuid4()),
                time_in_force="good_till_canceled", self_trade_prevention_type="taker_at_cross",
            )

    Each method is named after its operationId (``GetExchangeStatus`` -> ``get_exchange_status``)
    and documents its parameters, their allowed values and what it returns.

    Every request is signed when the client has ``auth`` (the signature covers the URL path with
    the ``/trade-api/v2`` prefix, never the query string); operations the spec marks as needing
    credentials raise KalshiAuthError on a client without auth.

    Retries: 429, 502, 503, 504 (and 500 on GET) and connection failures are retried up to
    ``config.max_retries`` times, after the server's ``Retry-After`` or full jitter
    ``uniform(0, min(retry_base_delay * 2**attempt, retry_max_delay))``, but only when the request
    is idempotent: a GET, or a body carrying ``client_order_id`` (every item, for a batch). A
    POST/PUT/DELETE without one is not retried after a failure that may have reached the exchange (the
    first attempt may have taken effect); it is retried after one that proves nothing happened: a 429
    (refused before processing) or a connection that was never made.

    Args:
        config: where the exchange is and how patiently to talk to it (default: production).
        auth: signs requests (a :class:`kalshi.auth.KalshiAuth`); None allows public endpoints only.
        transport: an httpx transport to use instead of the network (e.g. ``httpx.MockTransport``).
        rate_limiter: client-side token buckets (default: Basic tier); ``RateLimiter.unlimited()``
            turns throttling off.
        sleep: how to wait (injectable for tests).
        rng: random source for retry jitter (injectable for tests).
        max_pages: default page limit of every ``iter_*`` call (None: follow the cursor to the end).
        headers: extra headers for every request.

    Raises:
        KalshiConfigError: ``config`` is inconsistent (raised by KalshiConfig itself).
    """

    def __init__(
        self,
        config: KalshiConfig | None = None,
        *,
        auth: RequestSigner | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limiter: RateLimiter | None = None,
        sleep: AsyncSleep | None = None,
        rng: random.Random | None = None,
        max_pages: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config or KalshiConfig.production()
        self.rate_limiter = rate_limiter or RateLimiter()
        self._auth = auth
        self._sleep: AsyncSleep = sleep or asyncio.sleep
        self._retry = RetryPolicy.from_config(self.config, rng)
        self._max_pages = max_pages
        self._base_url = self.config.rest_url.rstrip("/")
        self._closed = False
        if not self.config.verify_tls:
            logger.warning(
                "TLS certificate verification is OFF for %s: use this only against a local simulator", self._base_url
            )
        self._http = httpx.AsyncClient(
            transport=transport,
            verify=self.config.verify_tls,
            timeout=httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout),
            headers={"User-Agent": _USER_AGENT, "Accept": "application/json", **(headers or {})},
            follow_redirects=False,
        )
        AsyncResources.__init__(self)

    @property
    def authenticated(self) -> bool:
        """True when the client can sign requests."""
        return self._auth is not None

    async def __aenter__(self) -> AsyncKalshiClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Calls after this raise KalshiConnectionError."""
        self._closed = True
        await self._http.aclose()

    async def refresh_limits(self, *, costs: bool = True) -> GetAccountApiLimitsResponse:
        """Load the account's rate-limit budgets (and endpoint costs) into the rate limiter.

        Args:
            costs: also read ``GET /account/endpoint_costs`` and apply the per-endpoint costs.

        Raises:
            KalshiAuthError: the client has no auth (limits are per user).
            KalshiAPIError: the exchange answered with an error.
            KalshiConnectionError: the exchange could not be reached.
        """
        limits = await self.account.get_account_api_limits()
        self.rate_limiter.set_limits(
            read=BucketLimit(limits.read.refill_rate, limits.read.bucket_capacity),
            write=BucketLimit(limits.write.refill_rate, limits.write.bucket_capacity),
        )
        if costs:
            table = await self.account.get_account_endpoint_costs()
            rows = [(row.method, row.path, row.cost) for row in table.endpoint_costs]
            self.rate_limiter.set_costs(costs_by_operation(rows), default_cost=table.default_cost)
        return limits

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, object] | None = None,
        json: object = None,
        signed: bool | None = None,
    ) -> Any:
        """Call an endpoint the generated methods do not cover; returns the decoded JSON (None if empty).

        Args:
            method: HTTP method.
            path: path below the API prefix, e.g. ``"/markets"``.
            params: query parameters.
            json: a body (a model or plain data).
            signed: force signing on (True) or off (False); default: sign when the client has auth.

        Raises:
            KalshiAuthError: ``signed=True`` on a client without auth.
            KalshiAPIError: the exchange answered with an error.
            KalshiConnectionError: the exchange could not be reached.
        """
        verb = method.upper()
        op = Operation(
            operation_id=f"{verb} {path}",
            method=verb,
            path=path,
            tag="custom",
            requires_auth=bool(signed),
            lane="read" if verb == "GET" else "write",
        )
        response = await self._send(op, None, params, json, sign=signed is not False)
        if not response.content:
            return None
        error = error_in_success_body(response.status_code, response.content, frozenset())
        if error is not None:
            raise error
        return decode_body(response.content, object, what=op.operation_id)

    # ------------------------------------------------------------------ used by the resources

    def _warn_if_deprecated(self, op: Operation) -> None:
        if op.deprecated:
            warnings.warn(
                f"{op.operation_id} ({op.method} {op.path}) is deprecated by Kalshi: {op.note}",
                DeprecationWarning,
                stacklevel=4,
            )

    async def _call(
        self,
        op: Operation,
        model: type[T],
        *,
        path: Mapping[str, object] | None = None,
        query: Mapping[str, object] | None = None,
        body: Model | None = None,
    ) -> T:
        self._warn_if_deprecated(op)
        response = await self._send(op, path, query, body)
        error = error_in_success_body(response.status_code, response.content, _fields_of(model))
        if error is not None:
            raise error
        return decode_body(response.content, model, what=op.operation_id)

    async def _call_empty(
        self,
        op: Operation,
        *,
        path: Mapping[str, object] | None = None,
        query: Mapping[str, object] | None = None,
        body: Model | None = None,
    ) -> None:
        self._warn_if_deprecated(op)
        response = await self._send(op, path, query, body)
        error = error_in_success_body(response.status_code, response.content, frozenset())
        if error is not None:
            raise error

    async def _paginate(
        self,
        op: Operation,
        model: type[P],
        items: Callable[[P], Sequence[I] | None],
        next_cursor: Callable[[P], str | None],
        *,
        path: Mapping[str, object] | None = None,
        query: Mapping[str, object] | None = None,
        max_pages: int | None = None,
    ) -> AsyncIterator[I]:
        params = dict(query or {})
        limit = max_pages if max_pages is not None else self._max_pages
        cursor = params.get("cursor")
        seen = {cursor} if isinstance(cursor, str) and cursor else set()
        pages = 0
        while limit is None or pages < limit:
            page = await self._call(op, model, path=path, query=params)
            pages += 1
            for item in items(page) or ():
                yield item
            cursor = next_cursor(page)
            if not cursor:
                return
            if cursor in seen:
                raise KalshiPaginationError(
                    f"{op.operation_id}: the server repeated cursor {cursor!r} after {pages} pages; "
                    "stopping instead of looping forever"
                )
            seen.add(cursor)
            params["cursor"] = cursor

    # --------------------------------------------------------------------------- transport

    async def _send(
        self,
        op: Operation,
        path: Mapping[str, object] | None,
        query: Mapping[str, object] | None,
        body: object,
        *,
        sign: bool = True,
    ) -> httpx.Response:
        if self._closed:
            raise KalshiConnectionError("the client is closed: make a new one")
        if op.requires_auth and self._auth is None:
            raise KalshiAuthError(
                f"{op.operation_id} ({op.method} {op.path}) needs a signed request: "
                "make the client with auth=KalshiAuth(...)"
            )
        url = self._base_url + render_path(op.path, path)
        params = encode_query(query)
        content = encode_body(body) if body is not None else None
        idempotent = is_idempotent(op.method, body)
        cost = self.rate_limiter.cost_of(op, body)
        attempt = 0
        while True:
            wait = self.rate_limiter.reserve(op.lane, cost)
            if wait > 0:
                await self._sleep(wait)
            request = self._http.build_request(
                op.method, url, params=params, content=content, headers=_JSON if content is not None else None
            )
            if sign and self._auth is not None:
                # Sign exactly the path that goes on the wire, without the query string.
                signed_path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
                request.headers.update(self._auth.headers(op.method, signed_path))
            try:
                response = await self._http.send(request)
            except httpx.HTTPError as exc:
                delay = self._retry.delay_after_transport_error(
                    attempt, idempotent=idempotent, sent=not was_never_sent(exc)
                )
                if delay is None:
                    raise KalshiConnectionError(f"{op.method} {op.path} failed: {type(exc).__name__}: {exc}") from exc
                logger.warning(
                    "%s failed (%s); retry %d in %.2fs", op.operation_id, type(exc).__name__, attempt + 1, delay
                )
            else:
                if response.is_success:
                    return response
                error = error_for_response(response.status_code, response.content, response.headers.get("Retry-After"))
                delay = self._retry.delay_after_status(
                    attempt,
                    method=op.method,
                    status=response.status_code,
                    idempotent=idempotent,
                    retry_after=getattr(error, "retry_after", None),
                )
                if delay is None:
                    raise error
                logger.warning(
                    "%s answered HTTP %d; retry %d in %.2fs", op.operation_id, response.status_code, attempt + 1, delay
                )
            await self._sleep(delay)
            attempt += 1
