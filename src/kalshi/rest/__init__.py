"""REST clients for every operation of the Kalshi API v2.

``AsyncKalshiClient`` (asyncio) and ``KalshiClient`` (blocking) share one code base: the sync client
is generated from the async one. Operations are grouped by resource, one method per operation named
after its operationId in the Kalshi API reference (``GetMarkets`` -> ``client.markets.get_markets()``,
``CreateOrderV2`` -> ``client.orders.create_order_v2(...)``, ``GetBalance`` ->
``client.portfolio.get_balance()``); every list with a cursor has an ``iter_*`` twin that follows the
pages (``client.markets.iter_get_markets(status="open")``). Parameters are typed from the spec (enums
as ``Literal``, list parameters as sequences) and documented in each method's docstring. Response
models keep the wire strings for money and counts and add exact Decimal properties
(``market.yes_bid``). Requests are signed when the client has auth, throttled by client-side token
buckets, and retried (idempotent ones only) with full jitter.
"""

from kalshi.rest._async_client import AsyncKalshiClient
from kalshi.rest._generated_ops import OPERATIONS, SPEC_VERSION
from kalshi.rest._generated_sync_client import KalshiClient
from kalshi.rest._model import Model, Operation
from kalshi.rest._retry import RETRY_STATUSES, is_idempotent
from kalshi.rest._wire import KalshiPaginationError, RequestSigner
from kalshi.rest.ratelimit import BASIC_READ, BASIC_WRITE, BucketLimit, RateLimiter

__all__ = [
    "BASIC_READ",
    "BASIC_WRITE",
    "OPERATIONS",
    "RETRY_STATUSES",
    "SPEC_VERSION",
    "AsyncKalshiClient",
    "BucketLimit",
    "KalshiClient",
    "KalshiPaginationError",
    "Model",
    "Operation",
    "RateLimiter",
    "RequestSigner",
    "is_idempotent",
]
