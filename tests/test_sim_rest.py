"""The simulator's REST server seen with plain httpx: auth, errors, rate limits, faults and cursors."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from conftest import ManualClock
from kalshi.auth import KalshiAuth, generate_private_key_pem
from kalshi.rest import BucketLimit
from kalshi.sim import Simulator
from kalshi.sim.rest import RestControls, rest_controls
from kalshi.sim.rest.limits import RateLimits
from test_sim_rest_schema import add_quiet_market, check_response

PREFIX = "/trade-api/v2"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def sim(kalshi_sim_factory: Callable[..., Simulator]) -> AsyncIterator[Simulator]:
    async with kalshi_sim_factory(seed=5, markets=5) as s:
        rest_controls(s).limits.enabled = False
        yield s


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def call(
    http: httpx.AsyncClient,
    sim: Simulator,
    method: str,
    path: str,
    *,
    auth: KalshiAuth | None = None,
    json: Any = None,
    params: Any = None,
    validate: bool = True,
) -> httpx.Response:
    """One request; signed with ``auth``; the response is checked against the spec."""
    headers = auth.headers(method, PREFIX + path) if auth is not None else {}
    response = await http.request(method, sim.url + PREFIX + path, headers=headers, json=json, params=params)
    if validate:
        check_response(method, PREFIX + path, response.status_code, response.content)
    return response


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    return error


def order_body(ticker: str, **changes: Any) -> dict[str, Any]:
    body = {
        "ticker": ticker,
        "side": "bid",
        "count": "1.00",
        "price": "0.5000",
        "time_in_force": "good_till_canceled",
        "self_trade_prevention_type": "taker_at_cross",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


# -- authentication ---------------------------------------------------------------------------------------


async def test_private_endpoints_need_a_valid_signature_public_ones_do_not(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    auth, _ = sim.create_account_auth()
    assert (await call(http, sim, "GET", "/exchange/status")).status_code == 200
    unsigned = await call(http, sim, "GET", "/portfolio/balance")
    assert unsigned.status_code == 401
    assert "signed request" in error_of(unsigned)["message"]
    stranger = KalshiAuth.from_pem("nobody", generate_private_key_pem("ed25519")[0])
    assert error_of(await call(http, sim, "GET", "/portfolio/balance", auth=stranger))["code"] == "unknown_key"
    # A signature over another path does not verify, on public endpoints too.
    wrong = auth.headers("GET", PREFIX + "/portfolio/positions")
    response = await http.get(sim.url + PREFIX + "/markets", headers=wrong)
    assert response.status_code == 401 and error_of(response)["code"] == "bad_signature"
    stale = auth.headers("GET", PREFIX + "/portfolio/balance", timestamp_ms=int(time.time() * 1000) - 600_000)
    response = await http.get(sim.url + PREFIX + "/portfolio/balance", headers=stale)
    assert error_of(response)["code"] == "stale_timestamp"
    assert sim.rejections["bad_signature"] >= 1 and sim.rejections["stale_timestamp"] >= 1
    # The query string is not signed; identical requests in one millisecond are not replays over REST.
    headers = auth.headers("GET", PREFIX + "/portfolio/balance")
    for _ in range(2):
        ok = await http.get(sim.url + PREFIX + "/portfolio/balance", headers=headers, params={"subaccount": 0})
        assert ok.status_code == 200
    rest_controls(sim).reject_replays = True
    fresh = auth.headers("GET", PREFIX + "/portfolio/balance")
    assert (await http.get(sim.url + PREFIX + "/portfolio/balance", headers=fresh)).status_code == 200
    again = await http.get(sim.url + PREFIX + "/portfolio/balance", headers=fresh)
    assert error_of(again)["code"] == "replayed"


# -- errors -----------------------------------------------------------------------------------------------


async def test_errors_name_the_field_and_use_the_exchange_statuses(sim: Simulator, http: httpx.AsyncClient) -> None:
    auth, _ = sim.create_account_auth()
    quiet = add_quiet_market(sim)
    path = "/portfolio/events/orders"
    cases = {
        "price": order_body(quiet, price="0.5x"),
        "side": order_body(quiet, side="buy"),
        "count": order_body(quiet, count="0"),
        "time_in_force": order_body(quiet, time_in_force=None),
        "orders[1].price": None,
        "orders[2].count": None,
    }
    for field, body in cases.items():
        if field == "orders[1].price":
            # A value of the wrong JSON type breaks the body's schema: the whole batch is refused.
            batch = {"orders": [order_body(quiet), order_body(quiet, price=5)]}
            response = await call(http, sim, "POST", path + "/batched", auth=auth, json=batch)
            assert response.status_code == 400
            error = error_of(response)
        elif body is None:
            # A well-typed item the exchange refuses carries its own error; the others go through.
            batch = {"orders": [order_body(quiet), order_body(quiet), order_body(quiet, count="0")]}
            response = await call(http, sim, "POST", path + "/batched", auth=auth, json=batch)
            assert response.status_code == 201
            items = response.json()["orders"]
            assert "error" not in items[0] and "error" not in items[1]
            error = items[2]["error"]
        else:
            response = await call(http, sim, "POST", path, auth=auth, json=body)
            assert response.status_code == 400, field
            error = error_of(response)
        assert error["message"].startswith(f"{field}:"), error
        assert error["details"] == f"field {field}"
    off_grid = await call(http, sim, "POST", path, auth=auth, json=order_body(quiet, price="0.5050"))
    assert error_of(off_grid)["code"] == "invalid_price"
    not_json = await http.post(sim.url + PREFIX + path, content=b"{", headers=auth.headers("POST", PREFIX + path))
    assert not_json.status_code == 400 and error_of(not_json)["code"] == "invalid_json"
    unknown_market = await call(http, sim, "POST", path, auth=auth, json=order_body("NOPE-1"))
    assert unknown_market.status_code == 404
    assert (await call(http, sim, "GET", "/markets/NOPE-1")).status_code == 404
    assert (await call(http, sim, "DELETE", path + "/not-an-order", auth=auth)).status_code == 404
    first = await call(http, sim, "POST", path, auth=auth, json=order_body(quiet, client_order_id="dup"))
    assert first.status_code == 201
    dup = await call(http, sim, "POST", path, auth=auth, json=order_body(quiet, client_order_id="dup"))
    assert dup.status_code == 409 and error_of(dup)["code"] == "duplicate_client_order_id"
    # Another account cannot see or touch the order.
    other, _ = sim.create_account_auth()
    order_id = first.json()["order_id"]
    assert (await call(http, sim, "GET", f"/portfolio/orders/{order_id}", auth=other)).status_code == 404
    assert (await call(http, sim, "GET", "/markets", params={"limit": "many"})).status_code == 400
    assert (await call(http, sim, "GET", "/markets", params={"status": "sleeping"})).status_code == 400


async def test_unknown_paths_methods_and_unmodelled_operations(sim: Simulator, http: httpx.AsyncClient) -> None:
    missing = await http.get(sim.url + PREFIX + "/no/such/thing")
    assert missing.status_code == 404 and error_of(missing)["code"] == "not_found"
    wrong_method = await http.put(sim.url + PREFIX + "/markets")
    assert wrong_method.status_code == 405 and "GET" in error_of(wrong_method)["message"]
    auth, _ = sim.create_account_auth()
    # Every operation of the spec is modelled now: none answers 501.
    assert (await call(http, sim, "GET", "/historical/cutoff")).status_code == 200
    assert (await call(http, sim, "GET", "/api_keys", auth=auth)).status_code == 200
    refused = await call(http, sim, "POST", "/communications/block-trade-proposals", auth=auth, json={})
    assert refused.status_code == 400 and "buyer_user_id" in error_of(refused)["message"]
    assert rest_controls(sim).calls["GetHistoricalCutoff"] == 1


# -- rate limits ------------------------------------------------------------------------------------------


def limited(sim: Simulator, clock: Clock, *, read: BucketLimit, write: BucketLimit) -> RestControls:
    controls = rest_controls(sim)
    controls.limits = RateLimits(clock=clock)
    controls.limits.set_limits(read=read, write=write)
    return controls


async def test_token_buckets_per_key_with_costs_and_retry_after(sim: Simulator, http: httpx.AsyncClient) -> None:
    clock = Clock()
    controls = limited(sim, clock, read=BucketLimit(10, 30), write=BucketLimit(4, 20))
    alice, _ = sim.create_account_auth()
    bob, _ = sim.create_account_auth()
    statuses = [(await call(http, sim, "GET", "/portfolio/balance", auth=alice)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = await call(http, sim, "GET", "/portfolio/balance", auth=alice)
    assert refused.headers["Retry-After"] == "1"  # 10 tokens at 10/s
    assert error_of(refused)["code"] == "too_many_requests"
    assert (await call(http, sim, "GET", "/portfolio/balance", auth=bob)).status_code == 200  # own bucket
    clock.now += 1.0
    assert (await call(http, sim, "GET", "/portfolio/balance", auth=alice)).status_code == 200
    # Reads and writes are separate lanes; a cancel costs 2 tokens, an order 10.
    quiet = add_quiet_market(sim)
    created = await call(http, sim, "POST", "/portfolio/events/orders", auth=alice, json=order_body(quiet))
    assert created.status_code == 201
    order_id = created.json()["order_id"]
    assert (await call(http, sim, "DELETE", f"/portfolio/events/orders/{order_id}", auth=alice)).status_code == 200
    second = await call(http, sim, "POST", "/portfolio/events/orders", auth=alice, json=order_body(quiet))
    assert second.status_code == 429 and second.headers["Retry-After"] == "1"  # 8 tokens left, needs 10
    # A batch pays per item; one that can never fit is a 400, not an endless 429.
    batch = {"orders": [order_body(quiet, client_order_id=f"b{i}") for i in range(3)]}
    too_big = await call(http, sim, "POST", "/portfolio/events/orders/batched", auth=bob, json=batch)
    assert too_big.status_code == 400 and "at most 2 items" in error_of(too_big)["message"]
    # Unsigned callers share a bucket per address.
    public = [(await call(http, sim, "GET", "/exchange/status")).status_code for _ in range(4)]
    assert public == [200, 200, 200, 429]
    limits = (await call(http, sim, "GET", "/account/limits", auth=bob)).json()
    assert limits["read"] == {"refill_rate": 10, "bucket_capacity": 30}
    assert limits["write"] == {"refill_rate": 4, "bucket_capacity": 20}
    assert controls.limits.rejected == 4


async def test_tiers_and_cost_overrides_are_reported(sim: Simulator, http: httpx.AsyncClient) -> None:
    controls = rest_controls(sim)
    controls.limits.set_tier("premier")
    controls.limits.set_cost("GetMarkets", 5)
    auth, _ = sim.create_account_auth()
    limits = (await call(http, sim, "GET", "/account/limits", auth=auth)).json()
    assert limits["usage_tier"] == "premier" and limits["read"]["bucket_capacity"] == 1000
    costs = (await call(http, sim, "GET", "/account/endpoint_costs")).json()
    rows = {(r["method"], r["path"]): r["cost"] for r in costs["endpoint_costs"]}
    assert costs["default_cost"] == 10
    assert rows[("GET", PREFIX + "/markets")] == 5
    assert rows[("DELETE", PREFIX + "/portfolio/events/orders/{order_id}")] == 2
    with pytest.raises(KeyError):
        controls.limits.set_tier("gold")


# -- faults -----------------------------------------------------------------------------------------------


async def test_forced_responses_come_first_and_match_operations(sim: Simulator, http: httpx.AsyncClient) -> None:
    faults = rest_controls(sim).faults
    faults.fail_next(2, status=503)
    faults.fail_next(status=429, retry_after=2, operation_id="GetMarkets")
    first = await call(http, sim, "GET", "/exchange/status")
    assert first.status_code == 503 and error_of(first)["code"] == "simulated_fault"
    assert (await call(http, sim, "GET", "/markets")).status_code == 503
    assert (await call(http, sim, "GET", "/exchange/status")).status_code == 200  # only GetMarkets is targeted
    throttled = await call(http, sim, "GET", "/markets")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    assert faults.pending == 0 and faults.injected == 3
    faults.fail_next(status=200)
    odd = await call(http, sim, "GET", "/exchange/status", validate=False)
    assert odd.status_code == 200 and odd.json()["error"]["code"] == "simulated_fault"
    with pytest.raises(ValueError):
        faults.fail_next(0)
    with pytest.raises(ValueError):
        faults.fail_next(operation_id="NoSuchOperation")


# -- cursors ----------------------------------------------------------------------------------------------


async def test_cursor_pages_cover_everything_once(sim: Simulator, http: httpx.AsyncClient) -> None:
    expected = [m.ticker for m in sim.engine.markets()]
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        page = (await call(http, sim, "GET", "/markets", params={"limit": 2, "cursor": cursor})).json()
        seen += [m["ticker"] for m in page["markets"]]
        pages += 1
        cursor = page["cursor"]
        if not cursor:
            break
        assert not any(t in base64.urlsafe_b64decode(cursor + "==").decode() for t in expected)  # opaque
    assert seen == expected and pages == (len(expected) + 1) // 2
    bad = await call(http, sim, "GET", "/markets", params={"cursor": "garbage!"})
    assert bad.status_code == 400 and error_of(bad)["message"].startswith("cursor:")
    events_cursor = (await call(http, sim, "GET", "/events", params={"limit": 1})).json()["cursor"]
    assert events_cursor
    wrong_scope = await call(http, sim, "GET", "/markets", params={"cursor": events_cursor})
    assert wrong_scope.status_code == 400


async def test_order_pages_hold_when_orders_leave_the_filter(sim: Simulator, http: httpx.AsyncClient) -> None:
    quiet = add_quiet_market(sim)
    auth, account = sim.create_account_auth()
    seller, _ = sim.create_account_auth()
    ids = []
    for i in range(5):
        body = order_body(quiet, price=f"0.{10 + i}00", client_order_id=f"o{i}")
        ids.append((await call(http, sim, "POST", "/portfolio/events/orders", auth=auth, json=body)).json()["order_id"])
    first = (
        await call(http, sim, "GET", "/portfolio/orders", auth=auth, params={"status": "resting", "limit": 2})
    ).json()
    assert [o["order_id"] for o in first["orders"]] == [ids[4], ids[3]]  # newest first
    # The newest order (on page one) fills and leaves the "resting" filter before page two is read.
    sell = order_body(quiet, side="ask", price="0.1400", client_order_id="s")
    assert (await call(http, sim, "POST", "/portfolio/events/orders", auth=seller, json=sell)).status_code == 201
    params = {"status": "resting", "limit": 2, "cursor": first["cursor"]}
    second = (await call(http, sim, "GET", "/portfolio/orders", auth=auth, params=params)).json()
    assert [o["order_id"] for o in second["orders"]] == [ids[2], ids[1]]
    assert [o.order_id for o in sim.engine.orders(account, "resting")] == ids[:4]


async def test_amend_with_expiration_time_zero_removes_the_expiry(
    kalshi_sim_factory: Callable[..., Simulator], http: httpx.AsyncClient
) -> None:
    # AmendOrderV2Request.expiration_time: "Omit to preserve the current expiry, or use 0 to remove it".
    clock = ManualClock(1_780_000_000_000)
    async with kalshi_sim_factory(seed=5, markets=1, clock_ms=clock) as sim:
        rest_controls(sim).limits.enabled = False
        quiet = add_quiet_market(sim)
        auth, _ = sim.create_account_auth()
        body = order_body(quiet, expiration_time=clock.now // 1000 + 60)
        created = await call(http, sim, "POST", "/portfolio/events/orders", auth=auth, json=body)
        order_id = created.json()["order_id"]
        amend = {"ticker": quiet, "side": "bid", "price": "0.5000", "count": "1.00"}
        path = f"/portfolio/events/orders/{order_id}/amend"
        assert (await call(http, sim, "POST", path, auth=auth, json=amend)).status_code == 200
        assert sim.engine.order(order_id).expiration_ms == clock.now + 60_000  # omitted: the expiry stays
        removed = await call(http, sim, "POST", path, auth=auth, json={**amend, "expiration_time": 0})
        assert removed.status_code == 200, removed.json()
        clock.now += 120_000
        sim.do(lambda e: e.advance_time())
        order = (await call(http, sim, "GET", f"/portfolio/orders/{order_id}", auth=auth)).json()["order"]
        assert order["expiration_time"] is None and order["status"] == "resting"


async def test_cancel_all_without_a_subaccount_cancels_in_every_subaccount(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    # CancelAllOrders: "If `subaccount` is omitted, matching orders may come from any subaccount. If it is
    # provided, only orders for that subaccount are eligible."
    quiet = add_quiet_market(sim)
    auth, account = sim.create_account_auth()
    number = sim.do(lambda e: e.create_subaccount(account))
    sim.do(lambda e: e.transfer_between_subaccounts(account, "fund", 0, number, 1_000))
    path = "/portfolio/events/orders"
    primary = await call(http, sim, "POST", path, auth=auth, json=order_body(quiet, price="0.1000"))
    sub = await call(http, sim, "POST", path, auth=auth, json=order_body(quiet, price="0.2000", subaccount=number))
    assert primary.status_code == sub.status_code == 201
    ids = [primary.json()["order_id"], sub.json()["order_id"]]
    only_sub = await call(http, sim, "DELETE", path, auth=auth, params={"subaccount": number})
    assert only_sub.status_code == 204
    assert [sim.engine.order(i).status for i in ids] == ["resting", "canceled"]
    again = await call(http, sim, "POST", path, auth=auth, json=order_body(quiet, price="0.2000", subaccount=number))
    ids[1] = again.json()["order_id"]
    assert (await call(http, sim, "DELETE", path, auth=auth)).status_code == 204
    assert [sim.engine.order(i).status for i in ids] == ["canceled", "canceled"]


async def test_order_entry_answers_write_their_never_omitted_fields_as_null(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    # The spec marks these fields `nullable` with `x-omitempty: false`: the exchange's encoder writes them on every
    # item, as null when unset (no fill, or the item failed), so a bot reading item["average_fill_price"] works.
    quiet = add_quiet_market(sim)
    auth, _ = sim.create_account_auth()
    created = await call(
        http, sim, "POST", "/portfolio/events/orders/batched", auth=auth,
        json={"orders": [order_body(quiet, price="0.1000"), order_body("KXNOSUCH-26-T1")]},
    )  # fmt: skip
    assert created.status_code == 201
    good, bad = created.json()["orders"]
    assert (good["fill_count"], good["remaining_count"], good["average_fill_price"], good["average_fee_paid"]) == (
        "0.00", "1.00", None, None,
    )  # fmt: skip
    assert isinstance(good["ts_ms"], int)
    for name in ("fill_count", "remaining_count", "average_fill_price", "average_fee_paid", "ts_ms"):
        assert name in bad and bad[name] is None, name
    assert bad["error"]["code"]

    path = f"/portfolio/events/orders/{good['order_id']}/amend"
    amended = await call(
        http, sim, "POST", path, auth=auth, json={"ticker": quiet, "side": "bid", "price": "0.1100", "count": "1.00"}
    )
    assert amended.status_code == 200
    body = amended.json()
    assert (body["fill_count"], body["remaining_count"], body["average_fill_price"], body["average_fee_paid"]) == (
        "0.00", "1.00", None, None,
    )  # fmt: skip

    cancelled = await call(
        http, sim, "DELETE", "/portfolio/events/orders/batched", auth=auth,
        json={"orders": [{"order_id": body["order_id"]}, {"order_id": "no-such-order"}]},
    )  # fmt: skip
    assert cancelled.status_code == 200
    done, missing = cancelled.json()["orders"]
    assert isinstance(done["ts_ms"], int) and done["reduced_by"] == "1.00"
    assert "ts_ms" in missing and missing["ts_ms"] is None and missing["error"]["code"] == "order_not_found"


async def test_exchange_index_minus_one_auto_routes_by_ticker_and_filters_pick_a_shard(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    # Order entry: "Exchange shard index. If omitted, auto-routes when ticker is provided; otherwise defaults to 0.
    # Use -1 to require auto-routing by ticker" (by market_ticker for decrease and cancel, which then need it).
    # Lists: "Filter results by exchange shard. Omit to return results from all exchange shards."
    quiet = add_quiet_market(sim)
    auth, _ = sim.create_account_auth()
    _, seller = sim.create_account_auth()
    path = "/portfolio/events/orders"
    created = await call(http, sim, "POST", path, auth=auth, json=order_body(quiet, count="5.00", exchange_index=-1))
    assert created.status_code == 201, created.json()
    order_id = created.json()["order_id"]
    amend = {"ticker": quiet, "side": "bid", "price": "0.5000", "count": "5.00", "exchange_index": -1}
    amended = await call(http, sim, "POST", f"{path}/{order_id}/amend", auth=auth, json=amend)
    assert amended.status_code == 200, amended.json()

    decrease = f"{path}/{order_id}/decrease"
    unrouted = await call(http, sim, "POST", decrease, auth=auth, json={"reduce_by": "1.00", "exchange_index": -1})
    assert unrouted.status_code == 400 and "market_ticker" in error_of(unrouted)["message"]
    routed = {"reduce_by": "1.00", "exchange_index": -1, "market_ticker": quiet}
    assert (await call(http, sim, "POST", decrease, auth=auth, json=routed)).status_code == 200

    sim.place_order(seller, quiet, "ask", 5000, 100)  # one fill, one position
    for name, key in (("orders", "orders"), ("fills", "fills"), ("positions", "market_positions")):
        listed = await call(http, sim, "GET", f"/portfolio/{name}", auth=auth, params={"exchange_index": 0})
        assert len(listed.json()[key]) == 1, name
        other = await call(http, sim, "GET", f"/portfolio/{name}", auth=auth, params={"exchange_index": 1})
        assert other.status_code == 200 and other.json()[key] == [], name

    cancel = f"{path}/{order_id}"
    for params in ({"exchange_index": -1}, {"exchange_index": 1}):
        refused = await call(http, sim, "DELETE", cancel, auth=auth, params=params)
        assert refused.status_code == 400, params
    assert sim.engine.order(order_id).status == "resting"
    batch = {"orders": [{"order_id": order_id, "exchange_index": -1}]}
    failed = (await call(http, sim, "DELETE", f"{path}/batched", auth=auth, json=batch)).json()["orders"][0]
    assert "market_ticker" in failed["error"]["message"]
    routed_cancel = await call(
        http, sim, "DELETE", cancel, auth=auth, params={"exchange_index": -1, "market_ticker": quiet}
    )
    assert routed_cancel.status_code == 200 and routed_cancel.json()["reduced_by"] == "3.00"
