"""Client-side token buckets that mirror the exchange's REST rate limits.

Kalshi meters REST calls with two token buckets per user, ``read`` and ``write``: every request
costs tokens (10 by default; the spec and ``GET /account/endpoint_costs`` list cheaper or dearer
endpoints, and batch calls cost per item), and each bucket refills at ``refill_rate`` tokens per
second up to ``bucket_capacity``. The client spends tokens before it sends, so it waits instead of
collecting 429s. Defaults are the Basic tier (20 reads/s, 10 writes/s at the default cost);
``client.refresh_limits()`` loads the account's real budgets.

The limiter itself never sleeps: :meth:`RateLimiter.reserve` books the tokens and returns how long
the caller must wait (reservations queue up, so concurrent callers are served in order). That keeps
it usable from asyncio and from threads (a lock guards the arithmetic).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sized
from dataclasses import dataclass
from typing import Final

from kalshi.rest._generated_ops import DEFAULT_COST, OPERATIONS
from kalshi.rest._model import Lane, Operation

__all__ = ["BASIC_READ", "BASIC_WRITE", "BucketLimit", "RateLimiter", "costs_by_operation"]


@dataclass(frozen=True, slots=True)
class BucketLimit:
    """One bucket's budget: tokens added per second and the most it can hold."""

    refill_rate: float
    capacity: float

    def __post_init__(self) -> None:
        if self.refill_rate <= 0 or self.capacity <= 0:
            raise ValueError("refill_rate and capacity must be > 0")


BASIC_READ: Final = BucketLimit(refill_rate=20 * DEFAULT_COST, capacity=20 * DEFAULT_COST)
BASIC_WRITE: Final = BucketLimit(refill_rate=10 * DEFAULT_COST, capacity=10 * DEFAULT_COST)


class _Bucket:
    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, limit: BucketLimit, now: float) -> None:
        self.rate = limit.refill_rate
        self.capacity = limit.capacity
        self.tokens = limit.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def reserve(self, cost: float, now: float) -> float:
        self.refill(now)
        self.tokens -= cost  # may go negative: later callers wait behind this reservation
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class RateLimiter:
    """Read and write token buckets plus the cost of each operation.

    Args:
        read: the read bucket's budget (GET requests).
        write: the write bucket's budget (POST, PUT, DELETE).
        costs: per-operation overrides, operationId -> tokens.
        clock: monotonic seconds; injectable for tests.
        enabled: False turns throttling off (every reservation waits 0 s).
    """

    def __init__(
        self,
        *,
        read: BucketLimit = BASIC_READ,
        write: BucketLimit = BASIC_WRITE,
        costs: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        enabled: bool = True,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._buckets: dict[Lane, _Bucket] = {"read": _Bucket(read, now), "write": _Bucket(write, now)}
        self._costs: dict[str, int] = dict(costs or {})
        self._default_cost: int | None = None  # None: the cost the spec states per operation
        self.enabled = enabled

    @classmethod
    def unlimited(cls) -> RateLimiter:
        """A limiter that never waits (for simulators and tests)."""
        return cls(enabled=False)

    def limits(self) -> dict[Lane, BucketLimit]:
        """The current budget of each lane."""
        with self._lock:
            return {lane: BucketLimit(b.rate, b.capacity) for lane, b in self._buckets.items()}

    def set_limits(self, *, read: BucketLimit | None = None, write: BucketLimit | None = None) -> None:
        """Change budgets (tokens on hand are kept, capped at the new capacity)."""
        with self._lock:
            now = self._clock()
            changes: tuple[tuple[Lane, BucketLimit | None], ...] = (("read", read), ("write", write))
            for lane, limit in changes:
                if limit is not None:
                    bucket = self._buckets[lane]
                    bucket.refill(now)
                    bucket.rate, bucket.capacity = limit.refill_rate, limit.capacity
                    bucket.tokens = min(bucket.tokens, limit.capacity)

    def set_costs(self, costs: Mapping[str, int], *, default_cost: int | None = None) -> None:
        """Replace per-operation costs.

        ``default_cost`` then replaces the default (10) for operations not listed; costs the spec
        states for an operation (e.g. 2 for a cancel) stay unless ``costs`` names that operation.
        """
        with self._lock:
            self._costs = dict(costs)
            self._default_cost = default_cost

    def cost_of(self, op: Operation, body: object = None) -> int:
        """Tokens one call of ``op`` costs; batch calls pay per item of their list."""
        cost = self._costs.get(op.operation_id)
        if cost is None:
            cost = op.cost if self._default_cost is None or op.cost != DEFAULT_COST else self._default_cost
        if op.cost_per_item is not None and body is not None:
            items = body.get(op.cost_per_item) if isinstance(body, Mapping) else getattr(body, op.cost_per_item, None)
            if isinstance(items, Sized):
                return cost * max(1, len(items))
        return cost

    def reserve(self, lane: Lane, cost: float) -> float:
        """Book ``cost`` tokens from ``lane``; returns the seconds to wait before sending."""
        if not self.enabled:
            return 0.0
        with self._lock:
            return self._buckets[lane].reserve(cost, self._clock())


_PREFIX = re.compile(r"^(?:/trade-api/v2)?")
_PARAM = re.compile(r"\{[^}/]+\}|:[^/]+")


def _shape(path: str) -> str:
    """``/trade-api/v2/markets/{ticker}`` and ``/markets/:ticker`` -> ``/markets/{}``."""
    return _PARAM.sub("{}", _PREFIX.sub("", path.split("?", 1)[0])).rstrip("/")


def costs_by_operation(entries: Iterable[tuple[str, str, int]]) -> dict[str, int]:
    """Map ``(method, path, cost)`` rows of ``GET /account/endpoint_costs`` to operationIds."""
    index = {(op.method, _shape(op.path)): op.operation_id for op in OPERATIONS.values()}
    found: dict[str, int] = {}
    for method, path, cost in entries:
        op_id = index.get((method.upper(), _shape(path)))
        if op_id is not None:
            found[op_id] = cost
    return found
