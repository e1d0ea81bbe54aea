"""When a failed request may be sent again, and how long to wait first.

The rule:

- Retried statuses: 429, 502, 503, 504, and 500 for GET only; also transport failures (connection
  refused, timeouts) for idempotent requests.
- Only idempotent requests are retried after a failure that may have reached the exchange: GET, and any
  POST/PUT/DELETE whose JSON body carries a ``client_order_id`` (for a batch: every item carries one). The
  exchange rejects a repeated ``client_order_id``, so a retry cannot place an order twice. Anything else is
  raised at once, because the first attempt may have taken effect.
- Every request, idempotent or not (a cancel, a decrease), is retried after a failure that proves the
  exchange did nothing: HTTP 429 (the rate limiter refuses a request before it is processed) and a
  connection that was never made (``httpx.ConnectError``, ``ConnectTimeout``, ``PoolTimeout``: nothing was
  sent). A kill switch's cancels then go through a burst of rate limiting instead of failing on it.
- Delay: the server's ``Retry-After`` when given (when it exceeds ``retry_max_delay`` the error is
  raised instead, with ``retry_after`` set, so the caller decides); otherwise full jitter,
  ``uniform(0, min(retry_base_delay * 2**attempt, retry_max_delay))``.
- At most ``max_retries`` retries after the first attempt.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import httpx

from kalshi.config import KalshiConfig

__all__ = ["RETRY_STATUSES", "RetryPolicy", "is_idempotent", "was_never_sent"]

RETRY_STATUSES: Final = frozenset({429, 502, 503, 504})
# Failures after which the request certainly had no effect, so any request may be sent again.
_REFUSED_UNPROCESSED: Final = 429
_NEVER_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_ID_FIELD: Final = "client_order_id"


def _carries_id(item: object) -> bool:
    value = item.get(_ID_FIELD) if isinstance(item, Mapping) else getattr(item, _ID_FIELD, None)
    return isinstance(value, str) and bool(value)


def is_idempotent(method: str, body: object) -> bool:
    """True when sending the request twice cannot do anything twice (see the module docstring)."""
    if method.upper() in _SAFE_METHODS:
        return True
    if body is None:
        return False
    if _carries_id(body):
        return True
    # A batch: the body holds one list of items; idempotent only if every item is identified.
    fields = body.keys() if isinstance(body, Mapping) else getattr(body, "__struct_fields__", ())
    for name in fields:
        value = body[name] if isinstance(body, Mapping) else getattr(body, name)
        if isinstance(value, Sequence) and not isinstance(value, str | bytes) and value:
            return all(_carries_id(item) for item in value)
    return False


def was_never_sent(exc: BaseException) -> bool:
    """True when a transport failure happened before any byte of the request left: no connection was made."""
    return isinstance(exc, _NEVER_SENT)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff settings (from :class:`KalshiConfig`) plus the random source for jitter."""

    base_delay: float
    max_delay: float
    max_retries: int
    rng: random.Random = field(default_factory=random.Random, compare=False)

    @classmethod
    def from_config(cls, config: KalshiConfig, rng: random.Random | None = None) -> RetryPolicy:
        return cls(config.retry_base_delay, config.retry_max_delay, config.max_retries, rng or random.Random())

    def backoff(self, attempt: int) -> float:
        """Full jitter for retry number ``attempt`` (0 for the first retry)."""
        return self.rng.uniform(0.0, min(self.base_delay * 2**attempt, self.max_delay))

    def delay_after_status(
        self, attempt: int, *, method: str, status: int, idempotent: bool, retry_after: float | None
    ) -> float | None:
        """Seconds to wait before retrying after an HTTP error, or None to raise it."""
        if attempt >= self.max_retries or not (idempotent or status == _REFUSED_UNPROCESSED):
            return None
        if status not in RETRY_STATUSES and not (status == 500 and method.upper() == "GET"):
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_delay else None
        return self.backoff(attempt)

    def delay_after_transport_error(self, attempt: int, *, idempotent: bool, sent: bool = True) -> float | None:
        """Seconds to wait before retrying after a connection failure, or None to raise it.

        ``sent=False`` (see :func:`was_never_sent`): the request never left, so it is retried even when not
        idempotent.
        """
        if attempt >= self.max_retries or not (idempotent or not sent):
            return None
        return self.backoff(attempt)
