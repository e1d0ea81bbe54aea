"""The simulator follows the exchange's 2026 rules: retired V1 order writes, signed WebSockets, strict requests."""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import httpx
import pytest

from kalshi.config import WS_PATH
from kalshi.rest import OPERATIONS
from kalshi.sim import Simulator, rest_controls
from kalshi.sim.rest import ROUTES
from kalshi.sim.rest.common import RestError
from kalshi.sim.rest.retired import V1_ORDER_WRITES
from kalshi.sim.rest.validation import validate_body, validate_query
from simclient import SimClient
from test_sim_rest import call, error_of, order_body
from test_sim_rest_schema import add_quiet_market

ROOT = Path(__file__).resolve().parents[1]
INT64_MAX = 2**63 - 1


@pytest.fixture
async def sim(kalshi_sim_factory: Callable[..., Simulator]) -> AsyncIterator[Simulator]:
    async with kalshi_sim_factory(seed=8, markets=3) as s:
        rest_controls(s).limits.enabled = False
        yield s


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def field_of(response: httpx.Response) -> str:
    """The field a 400 names (``details`` is ``field <name>``)."""
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "invalid_parameters", error
    details: str = error["details"]
    assert details.startswith("field ")
    assert error["message"].startswith(details.removeprefix("field ") + ": ")
    return details.removeprefix("field ")


# -- V1 order writes ------------------------------------------------------------------------------------------


def test_the_retired_endpoints_are_the_v1_order_writes_the_older_spec_had() -> None:
    import yaml

    older = yaml.safe_load((ROOT / "specs" / "older" / "openapi.v3.13.0.2026-04-20.TexasCoding.yaml").read_text())
    writes = {
        (op["operationId"], method.upper(), path)
        for path, ops in older["paths"].items()
        if path.startswith("/portfolio/orders")
        for method, op in ops.items()
        if method in ("post", "put", "delete")
    }
    assert {(r.operation_id, r.method, r.path) for r in V1_ORDER_WRITES} == writes
    current = {(op.method, op.path) for op in OPERATIONS.values()}
    assert not {(r.method, r.path) for r in V1_ORDER_WRITES} & current, "a retired path is a current operation"


@pytest.mark.parametrize("retired", V1_ORDER_WRITES, ids=lambda r: r.operation_id)
async def test_v1_order_writes_answer_410_deprecated_v1_order_endpoint(
    sim: Simulator, http: httpx.AsyncClient, retired: Any
) -> None:
    auth, account = sim.create_account_auth()
    quiet = add_quiet_market(sim)
    path = retired.path.replace("{order_id}", "some-order")
    body = {"ticker": quiet, "action": "buy", "side": "yes", "count": 1, "yes_price": 50, "type": "limit"}
    response = await call(http, sim, retired.method, path, auth=auth, json=body, validate=False)
    assert response.status_code == 410
    error = error_of(response)
    assert error["code"] == "deprecated_v1_order_endpoint"
    assert "V2" in error["message"] and retired.replacement in error["message"]
    assert error["details"].startswith("https://docs.kalshi.com/")
    assert sim.engine.orders(account) == [], "a retired endpoint must not place or change anything"


async def test_v1_reads_and_v2_writes_still_work(sim: Simulator, http: httpx.AsyncClient) -> None:
    auth, _ = sim.create_account_auth()
    quiet = add_quiet_market(sim)
    created = await call(http, sim, "POST", "/portfolio/events/orders", auth=auth, json=order_body(quiet))
    assert created.status_code == 201
    order_id = created.json()["order_id"]
    listed = await call(http, sim, "GET", "/portfolio/orders", auth=auth)
    assert [o["order_id"] for o in listed.json()["orders"]] == [order_id]
    assert (await call(http, sim, "GET", f"/portfolio/orders/{order_id}", auth=auth)).status_code == 200
    # DELETE /portfolio/orders/batched is the retired batch cancel, not a cancel of an order called "batched".
    batched = await call(http, sim, "DELETE", "/portfolio/orders/batched", auth=auth, json={}, validate=False)
    assert error_of(batched)["code"] == "deprecated_v1_order_endpoint"
    cancelled = await call(http, sim, "DELETE", f"/portfolio/events/orders/{order_id}", auth=auth)
    assert cancelled.status_code == 200


# -- signed WebSocket connections -----------------------------------------------------------------------------


async def test_unsigned_websocket_is_refused_for_public_channels_too(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(sim.url + WS_PATH)
        assert refused.value.status == 401
        response = await session.get(sim.url + WS_PATH, headers={"Upgrade": "websocket", "Connection": "Upgrade"})
        error = (await response.json())["error"]
    assert error["code"] == "missing_header"
    assert "public channels too" in error["message"] and "--open" in error["message"]
    assert sim.rejections["missing_header"] >= 2
    auth, _ = sim.create_account_auth()
    async with await SimClient.connect(sim.url, auth=auth) as client:
        reply = (await client.request("subscribe", {"channels": ["ticker"]}))[-1]
        assert reply["type"] == "subscribed"


async def test_open_simulator_accepts_unsigned_public_subscriptions(
    kalshi_sim_factory: Callable[..., Simulator],
) -> None:
    async with kalshi_sim_factory(open_access=True) as sim, await SimClient.connect(sim.url) as client:
        public = (await client.request("subscribe", {"channels": ["ticker"]}))[-1]
        assert public["type"] == "subscribed"
        private = (await client.request("subscribe", {"channels": ["fill"]}))[-1]
        assert private["type"] == "error" and private["msg"]["code"] == 9


def test_sim_websocket_errors_come_from_the_shared_code_table() -> None:
    """No bare integers where an error code is meant: every code is an ``ErrorCode`` member."""
    offenders = []
    for path in sorted((ROOT / "src" / "kalshi" / "sim" / "ws").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in ("_CommandError", "_error", "terminate", "_change_indices"):
                continue
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if isinstance(arg, ast.Constant) and type(arg.value) is int:
                    offenders.append(f"{path.name}:{node.lineno} {name}(... {arg.value} ...)")
    assert not offenders, offenders


# -- strict requests ------------------------------------------------------------------------------------------


async def test_integer_ranges_minimums_and_shapes_are_checked(sim: Simulator, http: httpx.AsyncClient) -> None:
    auth, _ = sim.create_account_auth()
    ticker = sim.tickers[0]
    overflow = await call(http, sim, "GET", "/markets/trades", params={"min_ts": str(INT64_MAX + 1)})
    assert field_of(overflow) == "min_ts" and "int64" in error_of(overflow)["message"]
    at_max = await call(http, sim, "GET", "/markets/trades", params={"min_ts": str(INT64_MAX)})
    assert at_max.status_code == 200 and at_max.json()["trades"] == []
    negative_depth = await call(http, sim, "GET", f"/markets/{ticker}/orderbook", params={"depth": "-1"})
    assert field_of(negative_depth) == "depth" and "between 0 and 100" in error_of(negative_depth)["message"]
    shape = {"orders": [{"order_id": "o-1", "market_ticker": {}}]}
    bad_shape = await call(http, sim, "DELETE", "/portfolio/events/orders/batched", auth=auth, json=shape)
    assert field_of(bad_shape) == "orders[0].market_ticker" and "got object" in error_of(bad_shape)["message"]
    bad_enum = await call(http, sim, "GET", "/markets", params={"status": "active"})
    assert field_of(bad_enum) == "status"
    bad_bool = await call(http, sim, "GET", "/series", params={"include_volume": "yes"})
    assert field_of(bad_bool) == "include_volume"
    too_many = await call(http, sim, "GET", "/markets/orderbooks", params={"tickers": ",".join(["T"] * 101)})
    assert field_of(too_many) == "tickers"
    missing = await call(http, sim, "GET", "/markets/orderbooks")
    assert field_of(missing) == "tickers" and "required" in error_of(missing)["message"]


@pytest.mark.parametrize(
    ("operation_id", "query", "field"),
    [
        ("GetTrades", {"min_ts": ["9223372036854775808"]}, "min_ts"),
        ("GetTrades", {"max_ts": ["-9223372036854775809"]}, "max_ts"),
        ("GetTrades", {"limit": ["1_000"]}, "limit"),
        ("GetTrades", {"limit": [" 5"]}, "limit"),
        ("GetTrades", {"limit": ["1001"]}, "limit"),
        ("GetTrades", {"min_ts": ["9" * 5000]}, "min_ts"),
        ("GetMarketOrderbook", {"depth": ["-1"]}, "depth"),
        ("GetMarkets", {"status": ["active"]}, "status"),
        ("GetMarketOrderbooks", {}, "tickers"),
        ("GetMilestones", {"limit": ["5"], "min_updated_ts": [""]}, "min_updated_ts"),  # an empty integer is no integer
        ("GetSeriesList", {"include_volume": [""]}, "include_volume"),
        ("GetMultivariateEventCollections", {"status": [""]}, "status"),  # "" is no member of the enum
        ("GetMilestones", {"limit": ["5"], "minimum_start_date": [""]}, "minimum_start_date"),
    ],
)
def test_query_validation_names_the_parameter(operation_id: str, query: dict[str, list[str]], field: str) -> None:
    with pytest.raises(RestError) as refused:
        validate_query(operation_id, query)
    assert refused.value.status == 400 and refused.value.details == f"field {field}"


def test_query_validation_accepts_what_the_spec_allows() -> None:
    validate_query("GetTrades", {"min_ts": [str(INT64_MAX)], "limit": ["1000"], "is_block_trade": ["TRUE"]})
    validate_query("GetTrades", {"cursor": [""], "unknown": ["whatever"]})  # empty string = absent; unknown ignored
    validate_query("GetMarketOrderbooks", {"tickers": ["A,B", "C"]})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"orders": [{"order_id": "o", "market_ticker": {}}]}, "orders[0].market_ticker"),
        ({"orders": [{"order_id": "o"}, {"market_ticker": "T"}]}, "orders[1].order_id"),
        ({"orders": [{"order_id": "o", "subaccount": -1}]}, "orders[0].subaccount"),
        ({"orders": [{"order_id": "o", "subaccount": 1.5}]}, "orders[0].subaccount"),
        ({"orders": [{"order_id": "o", "subaccount": True}]}, "orders[0].subaccount"),
        ({"orders": {"order_id": "o"}}, "orders"),
        ({}, "orders"),
    ],
)
def test_body_validation_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(RestError) as refused:
        validate_body("BatchCancelOrdersV2", body)
    assert refused.value.status == 400 and refused.value.details == f"field {field}"


def test_body_validation_accepts_optional_nulls_and_unknown_fields() -> None:
    validate_body("BatchCancelOrdersV2", {"orders": [{"order_id": "o", "market_ticker": None, "extra": 1}]})
    with pytest.raises(RestError, match="JSON object"):
        validate_body("BatchCancelOrdersV2", ["not", "an", "object"])


def test_every_served_operation_with_parameters_is_validated_from_the_spec() -> None:
    from kalshi.sim.rest._generated_schemas import BODIES, QUERY_PARAMETERS

    assert set(QUERY_PARAMETERS) | set(BODIES) <= set(OPERATIONS)
    served = set(ROUTES) & set(OPERATIONS)
    assert {"GetTrades", "GetMarkets", "GetMarketOrderbook"} <= served & set(QUERY_PARAMETERS)
    assert {"CreateOrderV2", "BatchCancelOrdersV2", "AmendOrderV2"} <= served & set(BODIES)


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_sim_schemas", ROOT / "scripts" / "gen_sim_schemas.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rendered(gen: ModuleType) -> str:
    text: str = gen.render()
    return text


def test_generated_schemas_match_the_spec(gen: ModuleType, rendered: str) -> None:
    assert gen.OUT.read_text() == rendered, "stale: run python scripts/gen_sim_schemas.py"


def test_a_spec_change_shows_up_in_the_generated_schemas(gen: ModuleType, rendered: str, tmp_path: Path) -> None:
    spec = gen.find_spec().read_text()
    assert spec.count("maximum: 100\n") >= 1
    changed = tmp_path / "openapi.yaml"
    changed.write_text(spec.replace("maximum: 100\n", "maximum: 75\n", 1))
    assert gen.render(changed) != rendered
