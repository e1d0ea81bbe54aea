"""Client-side token buckets: costs per operation, lanes, waiting, and refresh from /account/limits."""

from __future__ import annotations

import json

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from kalshi.auth import KalshiAuth
from kalshi.config import KalshiConfig
from kalshi.rest import BASIC_READ, BASIC_WRITE, OPERATIONS, AsyncKalshiClient, BucketLimit, RateLimiter
from kalshi.rest.models import BatchCancelOrdersV2Request, BatchCancelOrdersV2RequestOrdersItem
from kalshi.rest.ratelimit import costs_by_operation


class FakeTime:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay


def test_bucket_spends_then_makes_callers_wait_in_turn() -> None:
    clock = FakeTime()
    limiter = RateLimiter(read=BucketLimit(refill_rate=10, capacity=20), clock=clock)
    assert limiter.reserve("read", 10) == 0.0
    assert limiter.reserve("read", 10) == 0.0
    assert limiter.reserve("read", 10) == pytest.approx(1.0)
    assert limiter.reserve("read", 10) == pytest.approx(2.0)  # queued behind the previous reservation
    clock.now += 3.0
    assert limiter.reserve("read", 10) == pytest.approx(0.0)
    assert limiter.reserve("write", 100) == 0.0  # lanes are independent


def test_refill_is_capped_at_capacity() -> None:
    clock = FakeTime()
    limiter = RateLimiter(write=BucketLimit(refill_rate=10, capacity=20), clock=clock)
    clock.now += 1000
    assert limiter.reserve("write", 20) == 0.0
    assert limiter.reserve("write", 10) == pytest.approx(1.0)


def test_unlimited_never_waits() -> None:
    limiter = RateLimiter.unlimited()
    assert all(limiter.reserve("write", 10_000) == 0.0 for _ in range(5))


def test_defaults_are_the_basic_tier() -> None:
    assert RateLimiter().limits() == {"read": BASIC_READ, "write": BASIC_WRITE}
    assert (BASIC_READ.refill_rate, BASIC_READ.capacity) == (200, 200)
    assert (BASIC_WRITE.refill_rate, BASIC_WRITE.capacity) == (100, 100)
    with pytest.raises(ValueError):
        BucketLimit(0, 10)


def test_costs_come_from_the_spec_and_batches_pay_per_item() -> None:
    limiter = RateLimiter()
    assert limiter.cost_of(OPERATIONS["GetMarkets"]) == 10
    assert limiter.cost_of(OPERATIONS["GetOrder"]) == 2
    assert limiter.cost_of(OPERATIONS["CancelOrderV2"]) == 2
    assert limiter.cost_of(OPERATIONS["UpgradeAccountApiUsageLevel"]) == 30
    batch = BatchCancelOrdersV2Request(orders=[BatchCancelOrdersV2RequestOrdersItem(order_id=str(i)) for i in range(4)])
    assert limiter.cost_of(OPERATIONS["BatchCancelOrdersV2"], batch) == 8
    assert limiter.cost_of(OPERATIONS["BatchCreateOrdersV2"], {"orders": [{}, {}, {}]}) == 30
    assert OPERATIONS["GetMarkets"].lane == "read"
    assert OPERATIONS["CreateOrderV2"].lane == "write" and OPERATIONS["CancelOrderV2"].lane == "write"


def test_overrides_and_server_default_cost() -> None:
    limiter = RateLimiter(costs={"GetMarkets": 1})
    assert limiter.cost_of(OPERATIONS["GetMarkets"]) == 1
    limiter.set_costs({"GetTrades": 3}, default_cost=5)
    assert limiter.cost_of(OPERATIONS["GetTrades"]) == 3
    assert limiter.cost_of(OPERATIONS["GetMarkets"]) == 5  # overrides replaced; server default applies
    assert limiter.cost_of(OPERATIONS["GetOrder"]) == 2  # the spec-stated cost stays


def test_endpoint_cost_rows_map_to_operations() -> None:
    rows = [
        ("GET", "/trade-api/v2/markets", 1),
        ("delete", "/trade-api/v2/portfolio/events/orders/{order_id}", 4),
        ("GET", "/markets/:ticker/orderbook", 6),
        ("GET", "/not/in/the/spec", 9),
    ]
    assert costs_by_operation(rows) == {"GetMarkets": 1, "CancelOrderV2": 4, "GetMarketOrderbook": 6}


async def test_client_waits_for_tokens_before_sending() -> None:
    clock = FakeTime()
    limiter = RateLimiter(read=BucketLimit(refill_rate=10, capacity=10), clock=clock)
    sent_at: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(clock.now)
        return httpx.Response(200, json={"exchange_active": True, "trading_active": True})

    async with AsyncKalshiClient(transport=httpx.MockTransport(handler), rate_limiter=limiter, sleep=clock.sleep) as c:
        for _ in range(3):
            await c.exchange.get_exchange_status()
    assert clock.sleeps == [pytest.approx(1.0), pytest.approx(1.0)]
    assert sent_at == [100.0, pytest.approx(101.0), pytest.approx(102.0)]


async def test_refresh_limits_loads_budgets_and_costs() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/account/limits"):
            assert "KALSHI-ACCESS-SIGNATURE" in request.headers
            return httpx.Response(
                200,
                json={
                    "usage_tier": "advanced",
                    "read": {"refill_rate": 300, "bucket_capacity": 300},
                    "write": {"refill_rate": 300, "bucket_capacity": 600},
                    "grants": [],
                },
            )
        assert request.url.path.endswith("/account/endpoint_costs")
        body = {"default_cost": 10, "endpoint_costs": [{"method": "GET", "path": "/trade-api/v2/markets", "cost": 1}]}
        return httpx.Response(200, content=json.dumps(body).encode())

    auth = KalshiAuth("k", ed25519.Ed25519PrivateKey.generate())
    limiter = RateLimiter()
    async with AsyncKalshiClient(
        KalshiConfig.demo(), auth=auth, transport=httpx.MockTransport(handler), rate_limiter=limiter
    ) as client:
        limits = await client.refresh_limits()
    assert limits.usage_tier == "advanced"
    assert limiter.limits() == {"read": BucketLimit(300, 300), "write": BucketLimit(300, 600)}
    assert limiter.cost_of(OPERATIONS["GetMarkets"]) == 1
    assert limiter.cost_of(OPERATIONS["GetEvents"]) == 10
