"""The generated blocking KalshiClient behaves like the async one."""

from __future__ import annotations

import base64
import json
import random

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from kalshi.auth import KalshiAuth
from kalshi.config import KalshiConfig
from kalshi.errors import (
    KalshiAPIError,
    KalshiAuthError,
    KalshiConnectionError,
    KalshiRateLimitError,
    KalshiServerError,
)
from kalshi.rest import BucketLimit, KalshiClient, RateLimiter

PREFIX = "/trade-api/v2"
STATUS = {"exchange_active": True, "trading_active": True}
CREATED = {"order_id": "o-1", "client_order_id": "c-1", "fill_count": "0.00", "remaining_count": "1.00", "ts_ms": 1}
ORDER = {
    "ticker": "KXTEST-1",
    "side": "ask",
    "count": "3.00",
    "price": "0.4200",
    "time_in_force": "immediate_or_cancel",
    "self_trade_prevention_type": "maker",
}


class Exchange:
    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def client_for(
    exchange: Exchange, *, auth: KalshiAuth | None = None, sleeps: list[float] | None = None, retries: int = 3
) -> KalshiClient:
    record = sleeps if sleeps is not None else []
    return KalshiClient(
        KalshiConfig.demo(max_retries=retries),
        auth=auth,
        transport=httpx.MockTransport(exchange),
        rate_limiter=RateLimiter.unlimited(),
        sleep=record.append,
        rng=random.Random(3),
    )


def test_sync_client_signs_and_verifies() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    exchange = Exchange(httpx.Response(201, json=CREATED))
    with client_for(exchange, auth=KalshiAuth("key-9", key, clock=lambda: 1_700_000_000_000)) as client:
        created = client.orders.create_order_v2(**ORDER, client_order_id="c-1")
    assert created.order_id == "o-1"
    request = exchange.requests[0]
    assert str(request.url).startswith("https://external-api.demo.kalshi.co/trade-api/v2/portfolio/events/orders")
    assert json.loads(request.content) == {**ORDER, "client_order_id": "c-1"}
    signature = base64.b64decode(request.headers["KALSHI-ACCESS-SIGNATURE"])
    key.public_key().verify(signature, f"1700000000000POST{PREFIX}/portfolio/events/orders".encode())


def test_sync_auth_required() -> None:
    exchange = Exchange(httpx.Response(200, json={}))
    with client_for(exchange) as client, pytest.raises(KalshiAuthError):
        client.portfolio.get_positions()
    assert exchange.requests == []


def test_sync_retries_429_with_retry_after_and_5xx_with_jitter() -> None:
    sleeps: list[float] = []
    exchange = Exchange(
        httpx.Response(429, headers={"Retry-After": "1.5"}), httpx.Response(503), httpx.Response(200, json=STATUS)
    )
    with client_for(exchange, sleeps=sleeps) as client:
        assert client.exchange.get_exchange_status().trading_active
    rng = random.Random(3)
    assert sleeps == [1.5, rng.uniform(0, min(0.5 * 2**1, 30.0))]


def test_sync_never_retries_an_unidentified_order() -> None:
    sleeps: list[float] = []
    exchange = Exchange(httpx.Response(502), httpx.Response(502), httpx.Response(201, json=CREATED))
    key = ed25519.Ed25519PrivateKey.generate()
    with client_for(exchange, auth=KalshiAuth("k", key), sleeps=sleeps) as client:
        with pytest.raises(KalshiServerError):
            client.orders.create_order_v2(**ORDER)
        assert client.orders.create_order_v2(**ORDER, client_order_id="c-1").client_order_id == "c-1"
    assert len(exchange.requests) == 3 and len(sleeps) == 1


def test_sync_errors_and_error_bodies() -> None:
    exchange = Exchange(
        httpx.Response(429, json={"error": {"code": "rate_limited", "message": "slow down"}}),
        httpx.Response(200, json={"error": {"code": "gone", "message": "deprecated call"}}),
    )
    with client_for(exchange, retries=0) as client:
        with pytest.raises(KalshiRateLimitError, match="slow down"):
            client.exchange.get_exchange_status()
        with pytest.raises(KalshiAPIError, match="deprecated call") as caught:
            client.exchange.get_exchange_status()
    assert caught.value.code == "gone"


def test_sync_transport_errors_and_close() -> None:
    sleeps: list[float] = []
    exchange = Exchange(httpx.ConnectTimeout("t"))
    client = client_for(exchange, sleeps=sleeps, retries=1)
    with pytest.raises(KalshiConnectionError) as caught:
        client.exchange.get_exchange_status()
    assert isinstance(caught.value.__cause__, httpx.ConnectTimeout)
    assert len(exchange.requests) == 2
    client.close()
    with pytest.raises(KalshiConnectionError, match="closed"):
        client.exchange.get_exchange_status()


def test_sync_deprecated_operation_warns() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    exchange = Exchange(httpx.Response(204))
    client = client_for(exchange, auth=KalshiAuth("k", key))
    with client, pytest.warns(DeprecationWarning, match="ConfirmQuote"):
        client.communications.confirm_quote("q-1")
    assert exchange.requests[0].method == "PUT"
    assert exchange.requests[0].url.path == f"{PREFIX}/communications/quotes/q-1/confirm"


def test_sync_rate_limiter_sleeps_with_the_injected_sleep() -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(delay: float) -> None:
        sleeps.append(delay)
        now[0] += delay

    limiter = RateLimiter(read=BucketLimit(refill_rate=5, capacity=10), clock=lambda: now[0])
    exchange = Exchange(httpx.Response(200, json=STATUS))
    with KalshiClient(transport=httpx.MockTransport(exchange), rate_limiter=limiter, sleep=sleep) as client:
        client.exchange.get_exchange_status()
        client.exchange.get_exchange_status()
    assert sleeps == [pytest.approx(2.0)]
