"""The REST surface a person reads: Literal enums, documented parameters, sequence parameters, error reasons."""

from __future__ import annotations

import ast
import inspect
import re
import typing
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import httpx
import msgspec
import pytest

from kalshi.config import KalshiConfig
from kalshi.errors import KalshiAPIError, KalshiRateLimitError, KalshiUnauthorizedError
from kalshi.rest import AsyncKalshiClient, KalshiClient, RateLimiter
from kalshi.rest import _generated_resources as async_resources
from kalshi.rest import _generated_sync_resources as sync_resources
from kalshi.rest import models as rest_models
from test_rest_generated import load_script, minimal

ROOT = Path(__file__).resolve().parent.parent
mi = msgspec.inspect


@pytest.fixture(scope="module")
def gen_rest() -> ModuleType:
    return load_script("gen_rest")


@pytest.fixture(scope="module")
def spec(gen_rest: ModuleType) -> Any:
    return gen_rest.Spec(gen_rest.find_spec().read_bytes())


def resource_classes(module: ModuleType) -> list[type]:
    return [c for n, c in vars(module).items() if n.endswith("Resource") and isinstance(c, type)]


def methods_of(module: ModuleType) -> list[Any]:
    return [
        f
        for cls in resource_classes(module)
        for n, f in vars(cls).items()
        if not n.startswith("_") and inspect.isfunction(f) and f.__name__ == n  # aliases are listed once
    ]


def literal_values(hint: Any) -> tuple[Any, ...] | None:
    """The values of the Literal in ``hint`` (``Literal[...] | None`` too), None when there is none."""
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    for arg in typing.get_args(hint):
        if typing.get_origin(arg) is Literal:
            return typing.get_args(arg)
    return None


# ------------------------------------------------------------------------------------------------ enums


def resource(module: ModuleType, name: str) -> Any:
    return getattr(module, name if module is sync_resources else f"Async{name}")


@pytest.mark.parametrize("module", [async_resources, sync_resources], ids=["async", "sync"])
def test_spec_enums_are_literal_parameters(module: ModuleType) -> None:
    orders = typing.get_type_hints(resource(module, "OrdersResource").create_order_v2)
    assert orders["side"] == Literal["bid", "ask"]
    assert orders["self_trade_prevention_type"] == Literal["taker_at_cross", "maker"]
    assert orders["time_in_force"] == Literal["fill_or_kill", "good_till_canceled", "immediate_or_cancel"]
    markets = resource(module, "MarketsResource")
    assert typing.get_type_hints(markets.get_markets)["status"] == (
        Literal["unopened", "open", "paused", "closed", "settled"] | None
    )
    assert literal_values(typing.get_type_hints(markets.get_market_candlesticks)["period_interval"]) == (1, 60, 1440)


def test_every_enum_parameter_of_the_spec_is_a_literal(gen_rest: ModuleType, spec: Any) -> None:
    by_name = {f"{f.__qualname__.split('.')[0]}.{f.__name__}": f for f in methods_of(async_resources)}
    checked = 0
    for entry in spec.operations():
        op_id = entry["op"]["operationId"]
        cls = f"Async{gen_rest.camel(gen_rest.resource_for(op_id, entry['op']['tags'][0]))}Resource"
        hints = typing.get_type_hints(by_name[f"{cls}.{gen_rest.snake(op_id)}"])
        params = [(p["name"], p.get("schema")) for p in entry["params"]]
        body = gen_rest.body_schema(spec, entry["op"])
        params += list((body[1].get("properties") or {}).items()) if body else []
        for wire, schema in params:
            values = spec.resolve(schema).get("enum")
            if values:
                assert literal_values(hints[gen_rest.py_name(wire)]) == tuple(v for v in values if v is not None), (
                    op_id,
                    wire,
                )
                checked += 1
    assert checked >= 25
    # A filter the spec types as a bare string takes the values of the schema it filters on.
    get_orders = typing.get_type_hints(async_resources.AsyncOrdersResource.get_orders)
    assert literal_values(get_orders["status"]) == ("resting", "canceled", "executed")
    get_rfqs = typing.get_type_hints(async_resources.AsyncCommunicationsResource.get_rfqs)
    assert literal_values(get_rfqs["status"]) == ("open", "closed")


def test_model_enum_fields_are_literal_for_type_checkers(spec: Any) -> None:
    """Read the generated module as a type checker does: the TYPE_CHECKING aliases are the spec's Literals."""
    tree = ast.parse((ROOT / "src/kalshi/rest/_generated_models.py").read_text())
    guarded = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    aliases = {
        a.target.id: ast.literal_eval(a.value.slice) if isinstance(a.value, ast.Subscript) else None
        for a in guarded.body
        if isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name)
    }
    aliases = {k: v if isinstance(v, tuple) else (v,) for k, v in aliases.items()}
    fields = {
        (c.name, f.target.id): ast.unparse(f.annotation)
        for c in tree.body
        if isinstance(c, ast.ClassDef)
        for f in c.body
        if isinstance(f, ast.AnnAssign) and isinstance(f.target, ast.Name)
    }
    checked = 0
    for name, schema in spec.schemas.items():
        for wire, prop in (schema.get("properties") or {}).items():
            values = spec.resolve(prop).get("enum")
            if not values:
                continue
            annotation = fields[name, wire].removesuffix(" | None")
            assert aliases[annotation] == tuple(values), (name, wire, annotation)
            checked += 1
    assert checked >= 30
    assert fields["Order", "side"] == "OutcomeSide | None" and aliases["OutcomeSide"] == ("yes", "no")
    assert fields["Market", "status"] == "MarketStatus"
    assert fields["Order", "self_trade_prevention_type"] == "SelfTradePreventionType | None"


def test_enum_values_newer_than_the_spec_still_decode() -> None:
    body = minimal(mi.type_info(rest_models.Order)) | {"status": "paused_by_a_new_rule", "book_side": "bid"}
    order = msgspec.json.decode(msgspec.json.encode(body), type=rest_models.Order)
    assert order.status == "paused_by_a_new_rule"


# ------------------------------------------------------------------------------------------- docstrings


def args_section(doc: str) -> dict[str, str]:
    """``name -> text`` of a Google-style Args section."""
    match = re.search(r"^Args:\n((?:    .*\n?)+)", doc, re.MULTILINE)
    assert match, doc
    out: dict[str, str] = {}
    name = ""
    for line in match.group(1).splitlines():
        if line.startswith("        "):
            out[name] += " " + line.strip()
        else:
            name, _, text = line.strip().partition(": ")
            out[name] = text
    return out


def test_every_parameter_is_documented() -> None:
    methods = methods_of(async_resources)
    assert len(methods) > 117
    for method in methods:
        doc = inspect.getdoc(method) or ""
        params = [p for p in inspect.signature(method).parameters if p != "self"]
        if params:
            documented = args_section(doc)
            assert list(documented) == params, method.__qualname__
            assert all(documented.values()), method.__qualname__
        returns_nothing = typing.get_type_hints(method)["return"] is type(None)
        assert "Raises:" in doc and ("Returns:" in doc or "Yields:" in doc or returns_nothing), method.__qualname__


def test_docstrings_carry_the_spec_descriptions_and_allowed_values() -> None:
    markets = args_section(inspect.getdoc(async_resources.AsyncMarketsResource.get_markets) or "")
    assert markets["status"].startswith("Filter by market status.")
    assert 'One of ``"unopened"``, ``"open"``, ``"paused"``, ``"closed"``, ``"settled"``.' in markets["status"]
    assert "joined with commas" in markets["tickers"]
    order = args_section(inspect.getdoc(async_resources.AsyncOrdersResource.create_order_v2) or "")
    assert "cancels the taker order" in order["self_trade_prevention_type"]
    assert order["self_trade_prevention_type"].endswith('One of ``"taker_at_cross"``, ``"maker"``.')
    assert order["side"].endswith('One of ``"bid"``, ``"ask"``.')
    assert "retried safely" in order["client_order_id"]
    sync_doc = inspect.getdoc(sync_resources.OrdersResource.create_order_v2) or ""
    assert args_section(sync_doc) == order


# ---------------------------------------------------------------------------------- sequence parameters


class Recorder:
    """Answers every request with the minimal body of the expected response, keeping the requests."""

    def __init__(self, response: type) -> None:
        self.body = minimal(mi.type_info(response))
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json=self.body)


async def test_comma_separated_parameters_take_a_sequence() -> None:
    recorder = Recorder(rest_models.GetMarketsResponse)
    async with AsyncKalshiClient(transport=httpx.MockTransport(recorder), rate_limiter=RateLimiter.unlimited()) as c:
        await c.markets.get_markets(tickers=["KX-A", "KX-B"], status="open")
        await c.markets.get_markets(tickers=("KX-A",))
        await c.markets.get_markets(tickers="KX-A,KX-B")  # a plain string goes as it is
        for bad in ([], ["KX-A", ""], ["KX-A,KX-B"]):
            with pytest.raises(ValueError, match="tickers"):
                await c.markets.get_markets(tickers=bad)
    sent = [r.url.params.get_list("tickers") for r in recorder.requests]
    assert sent == [["KX-A,KX-B"], ["KX-A"], ["KX-A,KX-B"]]  # nothing went out for the bad ones
    assert recorder.requests[0].url.params["status"] == "open"
    hints = typing.get_type_hints(async_resources.AsyncMarketsResource.get_markets)
    assert hints["tickers"] == str | Sequence[str] | None


def test_array_parameters_repeat_and_take_a_plain_string() -> None:
    recorder = Recorder(rest_models.GetMarketOrderbooksResponse)
    with KalshiClient(transport=httpx.MockTransport(recorder), rate_limiter=RateLimiter.unlimited()) as c:
        c.markets.get_market_orderbooks(tickers=["KX-A", "KX-B"])
        c.markets.get_market_orderbooks(tickers="KX-A")
    assert [r.url.params.get_list("tickers") for r in recorder.requests] == [["KX-A", "KX-B"], ["KX-A"]]


# ---------------------------------------------------------------------------------------- error reasons


async def test_error_messages_carry_the_servers_code_message_and_details() -> None:
    bodies = iter(
        [
            (
                401,
                {"error": {"code": "stale_timestamp", "message": "timestamp is 600000 ms behind", "details": "sync"}},
            ),
            (401, {"error": {"code": "unknown_key", "message": "unknown API key id"}}),
            (429, {"code": "too_many_requests", "details": "only details here"}),
        ]
    )

    def answer(request: httpx.Request) -> httpx.Response:
        status, body = next(bodies)
        return httpx.Response(status, json=body)

    no_retries = KalshiConfig.production().with_options(max_retries=0)
    async with AsyncKalshiClient(
        no_retries, transport=httpx.MockTransport(answer), rate_limiter=RateLimiter.unlimited()
    ) as client:
        with pytest.raises(KalshiUnauthorizedError) as stale:
            await client.request("GET", "/portfolio/balance")
        with pytest.raises(KalshiUnauthorizedError) as unknown:
            await client.request("GET", "/portfolio/balance")
        with pytest.raises(KalshiRateLimitError) as limited:
            await client.markets.get_markets()
    assert str(stale.value) == "HTTP 401 stale_timestamp: timestamp is 600000 ms behind (sync)"
    assert (stale.value.code, stale.value.message, stale.value.details) == (
        "stale_timestamp",
        "timestamp is 600000 ms behind",
        "sync",
    )
    assert str(unknown.value) == "HTTP 401 unknown_key: unknown API key id" and unknown.value.details is None
    assert str(limited.value) == "HTTP 429 too_many_requests: only details here"
    assert isinstance(limited.value, KalshiAPIError)


def test_models_document_fields_values_and_decimal_accessors() -> None:
    doc = " ".join((inspect.getdoc(rest_models.Market) or "").split())
    assert "status: The current status of the market in its lifecycle." in doc
    assert 'One of ``"initialized"``, ``"inactive"``, ``"active"``' in doc
    assert "yes_bid_dollars: Price for the highest YES buy offer on this market in dollars." in doc
    assert "As an exact Decimal: ``yes_bid``." in doc
    order = " ".join((inspect.getdoc(rest_models.Order) or "").split())
    assert "self_trade_prevention_type: The self-trade prevention type for orders." in order
    assert "fill_count_fp:" in order and "``fill_count``" in order
    assert rest_models.Market.yes_bid.__doc__ == "``yes_bid_dollars`` as an exact Decimal (dollars)."
