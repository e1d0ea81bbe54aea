"""AsyncKalshiClient over httpx.MockTransport: signing, errors, retries, deprecation, encoding."""

from __future__ import annotations

import base64
import json
import logging
import random
from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from kalshi.auth import KalshiAuth
from kalshi.config import KalshiConfig
from kalshi.errors import (
    KalshiAPIError,
    KalshiAuthError,
    KalshiBadRequestError,
    KalshiConflictError,
    KalshiConnectionError,
    KalshiForbiddenError,
    KalshiNotFoundError,
    KalshiProtocolError,
    KalshiRateLimitError,
    KalshiServerError,
    KalshiUnauthorizedError,
)
from kalshi.rest import AsyncKalshiClient, RateLimiter, is_idempotent
from kalshi.rest._wire import parse_retry_after
from kalshi.rest.models import CreateOrderV2Request

NOW_MS = 1_767_225_600_000
PREFIX = "/trade-api/v2"
BALANCE = {"balance": 1234, "portfolio_value": 5678, "updated_ts": 1}
ORDER_CREATED = {
    "order_id": "o-1",
    "client_order_id": "c-1",
    "fill_count": "0.00",
    "remaining_count": "1.00",
    "ts_ms": 1,
}

Handler = Callable[[httpx.Request], httpx.Response]


class Exchange:
    """A scripted exchange: answers requests from a list (the last answer repeats) and records them."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def auth(key: ed25519.Ed25519PrivateKey) -> KalshiAuth:
    return KalshiAuth("key-123", key, clock=lambda: NOW_MS)


def make_client(
    handler: Handler,
    *,
    auth: KalshiAuth | None = None,
    sleeps: Sleeps | None = None,
    config: KalshiConfig | None = None,
    seed: int = 7,
) -> AsyncKalshiClient:
    return AsyncKalshiClient(
        config or KalshiConfig.production(),
        auth=auth,
        transport=httpx.MockTransport(handler),
        rate_limiter=RateLimiter.unlimited(),
        sleep=sleeps or Sleeps(),
        rng=random.Random(seed),
    )


def ok(body: object, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def verify(key: ed25519.Ed25519PrivateKey, request: httpx.Request, path: str) -> None:
    ts = request.headers["KALSHI-ACCESS-TIMESTAMP"]
    signature = base64.b64decode(request.headers["KALSHI-ACCESS-SIGNATURE"])
    key.public_key().verify(signature, f"{ts}{request.method}{path}".encode())


# ---------------------------------------------------------------------------------------------- signing


async def test_signed_request_carries_verifiable_headers_without_query(
    key: ed25519.Ed25519PrivateKey, auth: KalshiAuth
) -> None:
    exchange = Exchange(ok({"orders": [], "cursor": ""}))
    async with make_client(exchange, auth=auth) as client:
        await client.orders.get_orders(limit=5, status="resting")
    request = exchange.requests[0]
    assert request.url.path == f"{PREFIX}/portfolio/orders"
    assert request.url.params["limit"] == "5"
    assert request.headers["KALSHI-ACCESS-KEY"] == "key-123"
    assert request.headers["KALSHI-ACCESS-TIMESTAMP"] == str(NOW_MS)
    verify(key, request, f"{PREFIX}/portfolio/orders")
    with pytest.raises(InvalidSignature):
        verify(key, request, f"{PREFIX}/portfolio/orders?limit=5&status=resting")


async def test_post_is_signed_with_its_method(key: ed25519.Ed25519PrivateKey, auth: KalshiAuth) -> None:
    exchange = Exchange(ok(ORDER_CREATED, 201))
    async with make_client(exchange, auth=auth) as client:
        await client.orders.create_order_v2(
            ticker="KXTEST-1",
            side="bid",
            count="1.00",
            price="0.5600",
            time_in_force="good_till_canceled",
            self_trade_prevention_type="taker_at_cross",
        )
    verify(key, exchange.requests[0], f"{PREFIX}/portfolio/events/orders")


async def test_public_call_without_auth_sends_no_signature() -> None:
    exchange = Exchange(ok({"exchange_active": True, "trading_active": False}))
    async with make_client(exchange) as client:
        status = await client.exchange.get_exchange_status()
    assert status.exchange_active is True and status.trading_active is False
    assert not any(h.lower().startswith("kalshi-access") for h in exchange.requests[0].headers)


async def test_authenticated_operation_without_auth_raises_before_sending() -> None:
    exchange = Exchange(ok(BALANCE))
    async with make_client(exchange) as client:
        with pytest.raises(KalshiAuthError, match="GetBalance"):
            await client.portfolio.get_balance()
    assert exchange.requests == []


# --------------------------------------------------------------------------------------------- encoding


async def test_order_body_is_exact_json_without_unset_fields(auth: KalshiAuth) -> None:
    exchange = Exchange(ok(ORDER_CREATED, 201))
    async with make_client(exchange, auth=auth) as client:
        created = await client.orders.create_order_v2(
            ticker="KXTEST-1",
            side="bid",
            count="12.50",
            price="0.5601",
            time_in_force="good_till_canceled",
            self_trade_prevention_type="taker_at_cross",
            client_order_id="c-1",
        )
    request = exchange.requests[0]
    assert request.method == "POST"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "ticker": "KXTEST-1",
        "client_order_id": "c-1",
        "side": "bid",
        "count": "12.50",
        "price": "0.5601",
        "time_in_force": "good_till_canceled",
        "self_trade_prevention_type": "taker_at_cross",
    }
    assert created.order_id == "o-1"
    assert created.remaining_count == "1.00"
    assert created.decimal("remaining_count") == Decimal("1.00")


async def test_decimal_and_int_amounts_go_out_as_their_exact_text(auth: KalshiAuth) -> None:
    exchange = Exchange(ok(ORDER_CREATED, 201), ok({"orders": []}, 201))
    async with make_client(exchange, auth=auth) as client:
        await client.orders.create_order_v2(
            ticker="KXTEST-1",
            side="bid",
            count=Decimal("12.50"),  # type: ignore[arg-type]
            price=Decimal("0.5601"),  # type: ignore[arg-type]
            time_in_force="good_till_canceled",
            self_trade_prevention_type="taker_at_cross",
        )
        item = CreateOrderV2Request(
            ticker="KXTEST-2",
            side="ask",
            count=3,  # type: ignore[arg-type]
            price=Decimal("0.07"),  # type: ignore[arg-type]
            time_in_force="good_till_canceled",
            self_trade_prevention_type="taker_at_cross",
            client_order_id="c-2",
        )
        await client.orders.batch_create_orders_v2(orders=[item])
    first = json.loads(exchange.requests[0].content)
    assert (first["count"], first["price"]) == ("12.50", "0.5601")
    [batched] = json.loads(exchange.requests[1].content)["orders"]
    assert (batched["count"], batched["price"]) == ("3", "0.07")
    assert (item.count, item.price) == (3, Decimal("0.07"))  # the caller's model is left as it was


async def test_a_float_amount_is_refused_before_anything_is_sent(auth: KalshiAuth) -> None:
    exchange = Exchange(ok(ORDER_CREATED, 201))
    async with make_client(exchange, auth=auth) as client:
        with pytest.raises(TypeError, match=r"CreateOrderV2Request.price is the float 0.30000000000000004"):
            await client.orders.create_order_v2(
                ticker="KXTEST-1",
                side="bid",
                count="1.00",
                price=0.1 + 0.2,  # type: ignore[arg-type]
                time_in_force="good_till_canceled",
                self_trade_prevention_type="taker_at_cross",
            )
    assert exchange.requests == []


async def test_query_encoding_booleans_lists_renamed_and_none() -> None:
    weather = {"city": "NYC", "units": "F", "timeseries": []}
    exchange = Exchange(ok({"orderbooks": []}), ok(weather), ok({"series": []}))
    async with make_client(exchange) as client:
        await client.markets.get_market_orderbooks(tickers=["A-1", "B-2"])
        await client.live_data.get_weather_index("NYC", from_=1700000000, to=None)
        await client.series.get_series_list(include_volume=True, category=None)
    assert exchange.requests[0].url.params.get_list("tickers") == ["A-1", "B-2"]
    assert dict(exchange.requests[1].url.params) == {"from": "1700000000"}
    assert exchange.requests[1].url.path == f"{PREFIX}/live_data/weather/NYC"
    assert dict(exchange.requests[2].url.params) == {"include_volume": "true"}


async def test_path_parameters_are_percent_encoded(key: ed25519.Ed25519PrivateKey, auth: KalshiAuth) -> None:
    exchange = Exchange(ok({"order": None}, 404))
    async with make_client(exchange, auth=auth) as client:
        with pytest.raises(KalshiNotFoundError):
            await client.orders.get_order("a/b c")
    request = exchange.requests[0]
    assert request.url.raw_path == f"{PREFIX}/portfolio/orders/a%2Fb%20c".encode()
    verify(key, request, f"{PREFIX}/portfolio/orders/a%2Fb%20c")


# ---------------------------------------------------------------------------------------------- decoding


async def test_decoding_ignores_unknown_fields_and_keeps_numbers_exact() -> None:
    body = {
        "city": "NYC",
        "units": "F",
        "timeseries": [
            {"t": 1, "v": 72.15, "status": "final", "brand_new_field": {"x": 1}},
            {"t": 2, "status": "incomplete"},
        ],
        "unknown_top_level": [1, 2, 3],
    }
    async with make_client(Exchange(ok(body))) as client:
        index = await client.live_data.get_weather_index("NYC")
    first, second = index.timeseries
    assert first.v == Decimal("72.15")
    assert isinstance(first.v, Decimal)
    assert second.v is None and second.stations is None
    assert index.config_version is None


async def test_body_of_wrong_shape_is_a_protocol_error() -> None:
    async with make_client(Exchange(ok({"exchange_active": "maybe", "trading_active": True}))) as client:
        with pytest.raises(KalshiProtocolError, match="ExchangeStatus"):
            await client.exchange.get_exchange_status()
    async with make_client(Exchange(httpx.Response(200, content=b"<html>"))) as client:
        with pytest.raises(KalshiProtocolError):
            await client.exchange.get_exchange_status()


async def test_raw_request_returns_plain_json(auth: KalshiAuth) -> None:
    exchange = Exchange(ok({"anything": [1, "2"]}))
    async with make_client(exchange, auth=auth) as client:
        assert await client.request("GET", "/new/thing", params={"a": 1}) == {"anything": [1, "2"]}
    assert exchange.requests[0].url.path == f"{PREFIX}/new/thing"
    assert "KALSHI-ACCESS-SIGNATURE" in exchange.requests[0].headers


# ------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, KalshiBadRequestError),
        (401, KalshiUnauthorizedError),
        (403, KalshiForbiddenError),
        (404, KalshiNotFoundError),
        (409, KalshiConflictError),
        (418, KalshiAPIError),
        (429, KalshiRateLimitError),
        (500, KalshiServerError),
        (503, KalshiServerError),
    ],
)
@pytest.mark.parametrize("nested", [True, False])
async def test_http_errors_map_to_the_error_tree(
    status: int, error_type: type[KalshiAPIError], nested: bool, auth: KalshiAuth
) -> None:
    error = {"code": "some_code", "message": "what went wrong", "details": "d"}
    exchange = Exchange(ok({"error": error} if nested else error, status))
    async with make_client(exchange, auth=auth, config=KalshiConfig.production(max_retries=0)) as client:
        with pytest.raises(error_type) as caught:
            await client.portfolio.get_balance()
    assert type(caught.value) is error_type
    assert caught.value.status == status
    assert caught.value.code == "some_code"
    assert caught.value.message == "what went wrong"


async def test_non_json_error_body_keeps_a_snippet() -> None:
    exchange = Exchange(httpx.Response(404, content=b"<html>gateway says no</html>"))
    async with make_client(exchange) as client:
        with pytest.raises(KalshiNotFoundError, match="gateway says no") as caught:
            await client.markets.get_market("X")
    assert caught.value.code is None


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": "order_endpoint_deprecated", "message": "use /portfolio/events/orders"}},
        {"code": "order_endpoint_deprecated", "message": "use /portfolio/events/orders"},
    ],
)
async def test_success_status_with_error_body_raises(body: dict[str, object], auth: KalshiAuth) -> None:
    async with make_client(Exchange(ok(body, 201)), auth=auth) as client:
        with pytest.raises(KalshiAPIError, match="use /portfolio/events/orders") as caught:
            await client.orders.create_order_v2(
                ticker="T",
                side="bid",
                count="1",
                price="0.5",
                time_in_force="good_till_canceled",
                self_trade_prevention_type="maker",
            )
    assert caught.value.code == "order_endpoint_deprecated"
    assert caught.value.status == 201


async def test_success_body_with_own_error_field_is_not_an_error(auth: KalshiAuth) -> None:
    # Batch results carry a per-item "error"; only a top-level error object means failure.
    body = {"orders": [{"order_id": "o", "error": {"code": "c", "message": "m"}}]}
    async with make_client(Exchange(ok(body, 201)), auth=auth) as client:
        result = await client.orders.batch_create_orders_v2(orders=[])
    assert result.orders[0].error is not None
    assert result.orders[0].error.message == "m"


async def test_empty_response_operation_raises_on_error_body(auth: KalshiAuth) -> None:
    async with make_client(Exchange(ok({"error": "nope"}, 200)), auth=auth) as client:
        with pytest.raises(KalshiAPIError, match="nope"):
            await client.orders.cancel_all_orders()
    async with make_client(Exchange(httpx.Response(204)), auth=auth) as client:
        assert await client.orders.cancel_all_orders() is None


# ------------------------------------------------------------------------------------------------ retries


async def test_429_waits_for_retry_after() -> None:
    sleeps = Sleeps()
    exchange = Exchange(
        ok({"error": {"code": "too_many", "message": "slow"}}, 429, {"Retry-After": "2"}),
        ok({"exchange_active": True, "trading_active": True}),
    )
    async with make_client(exchange, sleeps=sleeps) as client:
        await client.exchange.get_exchange_status()
    assert sleeps.delays == [2.0]
    assert len(exchange.requests) == 2


async def test_retry_after_longer_than_the_cap_is_raised_to_the_caller() -> None:
    sleeps = Sleeps()
    exchange = Exchange(ok({"code": "x", "message": "later"}, 429, {"Retry-After": "3600"}))
    async with make_client(exchange, sleeps=sleeps) as client:
        with pytest.raises(KalshiRateLimitError) as caught:
            await client.exchange.get_exchange_status()
    assert caught.value.retry_after == 3600.0
    assert sleeps.delays == [] and len(exchange.requests) == 1


async def test_5xx_on_get_is_retried_with_full_jitter() -> None:
    sleeps = Sleeps()
    exchange = Exchange(
        httpx.Response(503),
        httpx.Response(502),
        httpx.Response(500),
        ok({"exchange_active": True, "trading_active": True}),
    )
    config = KalshiConfig.production(retry_base_delay=0.5, retry_max_delay=1.5, max_retries=3)
    async with make_client(exchange, sleeps=sleeps, config=config, seed=42) as client:
        await client.exchange.get_exchange_status()
    rng = random.Random(42)
    expected = [rng.uniform(0, min(0.5 * 2**n, 1.5)) for n in range(3)]
    assert sleeps.delays == expected
    assert len(exchange.requests) == 4


async def test_retries_stop_after_max_retries() -> None:
    sleeps = Sleeps()
    exchange = Exchange(httpx.Response(504))
    config = KalshiConfig.production(max_retries=2)
    async with make_client(exchange, sleeps=sleeps, config=config) as client:
        with pytest.raises(KalshiServerError):
            await client.exchange.get_exchange_status()
    assert len(exchange.requests) == 3 and len(sleeps.delays) == 2


async def test_post_without_client_order_id_is_never_retried(auth: KalshiAuth) -> None:
    exchange = Exchange(httpx.Response(503), ok(ORDER_CREATED, 201))
    async with make_client(exchange, auth=auth) as client:
        with pytest.raises(KalshiServerError):
            await client.orders.create_order_v2(
                ticker="T",
                side="bid",
                count="1.00",
                price="0.5000",
                time_in_force="good_till_canceled",
                self_trade_prevention_type="maker",
            )
    assert len(exchange.requests) == 1


async def test_post_with_client_order_id_is_retried_and_signed_again(
    key: ed25519.Ed25519PrivateKey,
) -> None:
    stamps: Iterator[int] = iter(range(NOW_MS, NOW_MS + 10))
    auth = KalshiAuth("key-123", key, clock=lambda: next(stamps))
    exchange = Exchange(httpx.Response(503), ok(ORDER_CREATED, 201))
    async with make_client(exchange, auth=auth) as client:
        created = await client.orders.create_order_v2(
            ticker="T",
            side="bid",
            count="1.00",
            price="0.5000",
            time_in_force="good_till_canceled",
            self_trade_prevention_type="maker",
            client_order_id="c-1",
        )
    assert created.client_order_id == "c-1"
    first, second = exchange.requests
    assert first.content == second.content
    assert first.headers["KALSHI-ACCESS-TIMESTAMP"] != second.headers["KALSHI-ACCESS-TIMESTAMP"]
    verify(key, second, f"{PREFIX}/portfolio/events/orders")


async def test_500_is_not_retried_for_post_even_with_client_order_id(auth: KalshiAuth) -> None:
    exchange = Exchange(httpx.Response(500))
    async with make_client(exchange, auth=auth) as client:
        with pytest.raises(KalshiServerError):
            await client.orders.create_order_v2(
                ticker="T",
                side="bid",
                count="1.00",
                price="0.5000",
                time_in_force="good_till_canceled",
                self_trade_prevention_type="maker",
                client_order_id="c-1",
            )
    assert len(exchange.requests) == 1


async def test_transport_error_becomes_connection_error_after_retries() -> None:
    sleeps = Sleeps()
    exchange = Exchange(httpx.ConnectError("refused"))
    async with make_client(exchange, sleeps=sleeps) as client:
        with pytest.raises(KalshiConnectionError, match="ConnectError") as caught:
            await client.exchange.get_exchange_status()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(exchange.requests) == 4 and len(sleeps.delays) == 3


CANCELLED = {"order_id": "o-1", "reduced_by": "1.00", "ts_ms": 1}


async def test_429_on_a_non_idempotent_request_is_retried(auth: KalshiAuth) -> None:
    # A 429 is refused before processing: even a cancel (no client_order_id) is safe to send again.
    sleeps = Sleeps()
    exchange = Exchange(
        ok({"error": {"code": "too_many_requests", "message": "slow"}}, 429, {"Retry-After": "0.5"}),
        ok(CANCELLED),
    )
    async with make_client(exchange, auth=auth, sleeps=sleeps) as client:
        cancelled = await client.orders.cancel_order_v2("o-1")
    assert cancelled.order_id == "o-1"
    assert [r.method for r in exchange.requests] == ["DELETE", "DELETE"] and sleeps.delays == [0.5]


async def test_connection_never_made_retries_a_non_idempotent_request(auth: KalshiAuth) -> None:
    # Nothing left the machine (refused, connect timeout, no pooled connection): the cancel is sent again.
    for never_sent in (httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), httpx.PoolTimeout("busy")):
        sleeps = Sleeps()
        exchange = Exchange(never_sent, ok(CANCELLED))
        async with make_client(exchange, auth=auth, sleeps=sleeps) as client:
            await client.orders.cancel_order_v2("o-1")
        assert len(exchange.requests) == 2 and len(sleeps.delays) == 1, never_sent


async def test_server_errors_on_a_non_idempotent_request_are_raised_at_once(auth: KalshiAuth) -> None:
    # A 503 may come after the exchange acted: a decrease sent twice would reduce twice.
    for status in (500, 502, 503, 504):
        exchange = Exchange(ok({"code": "unavailable", "message": "later"}, status), ok(CANCELLED))
        async with make_client(exchange, auth=auth) as client:
            with pytest.raises(KalshiServerError):
                await client.orders.decrease_order_v2("o-1", reduce_by="1.00")
        assert len(exchange.requests) == 1, status


async def test_transport_error_on_non_idempotent_request_is_raised_at_once(auth: KalshiAuth) -> None:
    exchange = Exchange(httpx.ReadTimeout("slow"))
    async with make_client(exchange, auth=auth) as client:
        with pytest.raises(KalshiConnectionError) as caught:
            await client.orders.cancel_order_v2("o-1")
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert len(exchange.requests) == 1


def test_idempotency_rule() -> None:
    order = CreateOrderV2Request(
        ticker="T", side="bid", count="1", price="0.5", time_in_force="x", self_trade_prevention_type="maker"
    )
    assert is_idempotent("GET", None)
    assert not is_idempotent("POST", order)
    assert is_idempotent("POST", {"client_order_id": "c"})
    assert not is_idempotent("DELETE", None)
    assert not is_idempotent("PUT", {"client_order_id": ""})
    identified = CreateOrderV2Request(
        ticker="T",
        side="bid",
        count="1",
        price="0.5",
        time_in_force="x",
        self_trade_prevention_type="maker",
        client_order_id="c",
    )
    assert is_idempotent("POST", identified)
    assert is_idempotent("POST", {"orders": [{"client_order_id": "a"}, {"client_order_id": "b"}]})
    assert not is_idempotent("POST", {"orders": [{"client_order_id": "a"}, {"ticker": "b"}]})


def test_retry_after_parsing() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:05 GMT", now=now) == 5.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after(None) is None


# ------------------------------------------------------------------------------------- misc behaviour


async def test_deprecated_operation_warns(auth: KalshiAuth) -> None:
    exchange = Exchange(httpx.Response(204))
    async with make_client(exchange, auth=auth) as client:
        with pytest.warns(DeprecationWarning, match=r"DeleteQuote.*Use DELETE /communications/rfqs"):
            await client.communications.delete_quote("q-1")
        await client.communications.delete_rfq_quote("r-1", "q-1")  # the replacement does not warn
    assert [r.url.path for r in exchange.requests] == [
        f"{PREFIX}/communications/quotes/q-1",
        f"{PREFIX}/communications/rfqs/r-1/quotes/q-1",
    ]


async def test_turning_tls_verification_off_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    config = KalshiConfig.local("https://127.0.0.1:9999", verify_tls=False)
    with caplog.at_level(logging.WARNING, logger="kalshi.rest"):
        client = make_client(Exchange(ok({})), config=config)
    await client.aclose()
    assert any("TLS certificate verification is OFF" in r.getMessage() for r in caplog.records)
    with caplog.at_level(logging.WARNING, logger="kalshi.rest"):
        caplog.clear()
        await make_client(Exchange(ok({}))).aclose()
    assert caplog.records == []


async def test_closed_client_refuses_calls() -> None:
    client = make_client(Exchange(ok({"exchange_active": True, "trading_active": True})))
    await client.aclose()
    with pytest.raises(KalshiConnectionError, match="closed"):
        await client.exchange.get_exchange_status()


async def test_base_url_follows_the_config() -> None:
    exchange = Exchange(ok({"exchange_active": True, "trading_active": True}))
    async with make_client(exchange, config=KalshiConfig.local("http://127.0.0.1:8765")) as client:
        await client.exchange.get_exchange_status()
    assert str(exchange.requests[0].url) == "http://127.0.0.1:8765/trade-api/v2/exchange/status"
