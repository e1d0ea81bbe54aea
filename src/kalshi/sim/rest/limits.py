"""Server-side REST rate limits of the simulator: per-key read and write token buckets, as the exchange meters.

Each API key (unsigned callers share one bucket per client address) has a ``read`` bucket (GET) and a
``write`` bucket (everything else). A request costs the tokens the spec states for its operation (10 by
default, 2 for cancels, per item for batches); when the bucket holds fewer, the request is answered 429 with
``Retry-After`` (whole seconds, rounded up) and nothing is deducted. Buckets refill continuously at
``refill_rate`` tokens per second up to ``bucket_capacity``. ``GET /account/limits`` and
``GET /account/endpoint_costs`` report exactly what is enforced.

The tiers are Kalshi's published ones (requests per second at the default cost of 10 tokens).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from kalshi.rest._generated_ops import DEFAULT_COST, OPERATIONS
from kalshi.rest._model import Lane, Operation
from kalshi.rest.ratelimit import BucketLimit
from kalshi.sim.rest.common import Reply, RestCall, RestError

__all__ = ["TIERS", "RateLimits", "Tier", "get_costs", "get_limits"]


@dataclass(frozen=True, slots=True)
class Tier:
    """A usage tier: the read and write budgets of every key on it."""

    name: str
    read: BucketLimit
    write: BucketLimit


def _tier(name: str, reads_per_second: int, writes_per_second: int) -> Tier:
    return Tier(
        name,
        BucketLimit(reads_per_second * DEFAULT_COST, reads_per_second * DEFAULT_COST),
        BucketLimit(writes_per_second * DEFAULT_COST, writes_per_second * DEFAULT_COST),
    )


TIERS: Final[Mapping[str, Tier]] = {
    t.name: t
    for t in (
        _tier("basic", 20, 10),
        _tier("advanced", 30, 30),
        _tier("premier", 100, 100),
        _tier("prime", 400, 400),
    )
}


class _Bucket:
    __slots__ = ("capacity", "rate", "stamp", "tokens")

    def __init__(self, limit: BucketLimit, now: float) -> None:
        self.rate = limit.refill_rate
        self.capacity = limit.capacity
        self.tokens = limit.capacity
        self.stamp = now

    def take(self, cost: float, now: float) -> float:
        """Deduct ``cost`` and return 0, or deduct nothing and return the seconds until it would fit."""
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class RateLimits:
    """The simulator's REST rate limiter.

    Args:
        tier: the tier every key starts on (see :data:`TIERS`).
        enabled: False lets every request through (benchmarks); limits are still reported.
        clock: monotonic seconds (injectable for tests).

    Raises:
        KeyError: unknown ``tier``.
    """

    def __init__(
        self, tier: str = "basic", *, enabled: bool = True, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.enabled = enabled
        self._clock = clock
        self._tier = TIERS[tier]
        self._read = self._tier.read
        self._write = self._tier.write
        self._costs: dict[str, int] = {}
        self._buckets: dict[tuple[str, Lane], _Bucket] = {}
        self.rejected = 0

    @property
    def tier(self) -> str:
        """The usage tier name reported by ``/account/limits``."""
        return self._tier.name

    def set_tier(self, name: str) -> None:
        """Put every key on tier ``name`` (buckets start full).

        Raises:
            KeyError: unknown tier.
        """
        self._tier = TIERS[name]
        self.set_limits(read=self._tier.read, write=self._tier.write)

    def set_limits(self, *, read: BucketLimit | None = None, write: BucketLimit | None = None) -> None:
        """Custom budgets for every key (buckets start full); the tier name is kept."""
        if read is not None:
            self._read = read
        if write is not None:
            self._write = write
        self._buckets.clear()

    def set_cost(self, operation_id: str, cost: int) -> None:
        """Override the token cost of one operation (reported by ``/account/endpoint_costs``).

        Raises:
            KeyError: unknown operation id.
            ValueError: cost below 1.
        """
        if operation_id not in OPERATIONS:
            raise KeyError(operation_id)
        if cost < 1:
            raise ValueError("cost must be >= 1")
        self._costs[operation_id] = cost

    def limit(self, lane: Lane) -> BucketLimit:
        """The budget of a lane."""
        return self._read if lane == "read" else self._write

    def cost(self, op: Operation, items: int = 1) -> int:
        """Tokens one call of ``op`` costs (``items`` for batch operations)."""
        unit = self._costs.get(op.operation_id, op.cost)
        return unit * max(1, items) if op.cost_per_item else unit

    def endpoint_costs(self) -> list[tuple[str, str, int]]:
        """``(method, path, cost)`` of every operation whose cost differs from the default."""
        rows = []
        for op in OPERATIONS.values():
            cost = self._costs.get(op.operation_id, op.cost)
            if cost != DEFAULT_COST:
                rows.append((op.method, f"/trade-api/v2{op.path}", cost))
        return rows

    def charge(self, key: str, op: Operation, items: int = 1) -> None:
        """Spend the tokens of one call for ``key``.

        Raises:
            RestError: 429 with ``Retry-After`` when the bucket is short; 400 when a batch costs more than the
                bucket can ever hold.
        """
        if not self.enabled:
            return
        cost = self.cost(op, items)
        limit = self.limit(op.lane)
        if cost > limit.capacity:
            raise RestError(
                400,
                "batch_too_large",
                f"{op.operation_id} costs {cost} tokens but the {op.lane} bucket holds at most "
                f"{limit.capacity:g}; send at most {int(limit.capacity // (cost // max(1, items)))} items per call",
            )
        now = self._clock()
        bucket = self._buckets.get((key, op.lane))
        if bucket is None:
            bucket = self._buckets[(key, op.lane)] = _Bucket(limit, now)
        wait = bucket.take(cost, now)
        if wait > 0:
            self.rejected += 1
            seconds = max(1, math.ceil(wait))
            raise RestError(
                429,
                "too_many_requests",
                f"{op.lane} rate limit exceeded ({op.operation_id} costs {cost} tokens, refill "
                f"{limit.refill_rate:g}/s, capacity {limit.capacity:g}); retry after {seconds} s",
                headers={"Retry-After": str(seconds)},
            )


# ---------------------------------------------------------------------------------------------- handlers


async def get_limits(call: RestCall) -> Reply:
    """``GetAccountApiLimits``: the signed-in user's tier and bucket sizes."""
    _ = call.account  # limits are per user: a signed request is required
    limits = call.sim.rest_controls.limits

    def bucket(lane: Lane) -> dict[str, int]:
        lim = limits.limit(lane)
        return {"refill_rate": int(lim.refill_rate), "bucket_capacity": int(lim.capacity)}

    return Reply(
        {
            "usage_tier": limits.tier,
            "read": bucket("read"),
            "write": bucket("write"),
            "grants": [],
        }
    )


async def get_costs(call: RestCall) -> Reply:
    """``GetAccountEndpointCosts``: the token cost of every operation that is not the default."""
    rows = [{"method": m, "path": p, "cost": c} for m, p, c in call.sim.rest_controls.limits.endpoint_costs()]
    return Reply({"default_cost": DEFAULT_COST, "endpoint_costs": rows})
