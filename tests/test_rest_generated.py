"""Generated REST code: current with the spec and the generators, complete, and exact about money."""

from __future__ import annotations

import csv
import importlib.util
import inspect
import typing
import warnings
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from kalshi.auth import KalshiAuth
from kalshi.errors import KalshiAuthError
from kalshi.rest import OPERATIONS, SPEC_VERSION, AsyncKalshiClient, KalshiClient, Model, RateLimiter
from kalshi.rest import models as rest_models
from kalshi.rest._generated_resources import RESOURCE_NAMES

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/trade-api/v2"
mi = msgspec.inspect


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_script_{name}", ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen_rest() -> ModuleType:
    return load_script("gen_rest")


@pytest.fixture(scope="module")
def gen_sync() -> ModuleType:
    return load_script("gen_sync")


@pytest.fixture(scope="module")
def rendered(gen_rest: ModuleType) -> dict[Path, str]:
    result: dict[Path, str] = gen_rest.render()
    return result


# ------------------------------------------------------------------------------------- generated = disk


def test_models_ops_and_resources_match_the_spec(rendered: dict[Path, str]) -> None:
    assert {p.name for p in rendered} == {"_generated_models.py", "_generated_ops.py", "_generated_resources.py"}
    for path, text in rendered.items():
        assert path.read_text() == text, f"{path.name} is stale: run python scripts/gen_rest.py"


def test_sync_client_matches_the_async_source(gen_sync: ModuleType, rendered: dict[Path, str]) -> None:
    sync_files: dict[Path, str] = gen_sync.render(sources=rendered)
    assert {p.name for p in sync_files} == {"_generated_sync_client.py", "_generated_sync_resources.py"}
    for path, text in sync_files.items():
        assert path.read_text() == text, f"{path.name} is stale: run python scripts/gen_sync.py"


def test_a_spec_change_shows_up_as_drift(gen_rest: ModuleType, tmp_path: Path, rendered: dict[Path, str]) -> None:
    spec = gen_rest.find_spec().read_text()
    changed = spec.replace("exchange_estimated_resume_time:", "exchange_resume_estimate:", 1)
    assert changed != spec
    (tmp_path / "openapi.yaml").write_text(changed)
    drifted: dict[Path, str] = gen_rest.render(tmp_path / "openapi.yaml")
    assert {p.name for p, text in drifted.items() if rendered[p] != text} == {
        "_generated_models.py",
        "_generated_ops.py",
        "_generated_resources.py",
    }  # every header carries the spec digest
    models = next(text for p, text in drifted.items() if p.name == "_generated_models.py")
    assert "exchange_resume_estimate: str | None = None" in models


def test_unasync_rewrites_tokens_not_lookalikes(gen_sync: ModuleType) -> None:
    source = (
        "import asyncio\n"
        "async def f(x: AsyncIterator[int], c: httpx.AsyncClient) -> None:\n"
        '    """Use ``async for`` and await x."""\n'
        "    async with c:\n"
        "        await asyncio.sleep(1)\n"
        "    async for y in x:\n"
        "        awaited = asynchronous = 1\n"
        "    await c.aclose()\n"
    )
    assert gen_sync.unasync(source) == (
        "import time\n"
        "def f(x: Iterator[int], c: httpx.Client) -> None:\n"
        '    """Use ``for`` and x."""\n'
        "    with c:\n"
        "        time.sleep(1)\n"
        "    for y in x:\n"
        "        awaited = asynchronous = 1\n"
        "    c.close()\n"
    )


# ------------------------------------------------------------------------------------------ completeness


def tsv_rows(gen_rest: ModuleType) -> list[dict[str, str]]:
    with (gen_rest.find_spec().parent / "rest_operations.tsv").open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_every_operation_of_the_spec_is_in_the_table(gen_rest: ModuleType) -> None:
    rows = tsv_rows(gen_rest)
    assert len(rows) == len(OPERATIONS) == 117
    assert SPEC_VERSION == "3.31.0"
    for row in rows:
        op = OPERATIONS[row["operationId"]]
        assert (op.tag, op.method, op.path) == (row["tag"], row["method"], row["path"])
        assert op.deprecated is (row["deprecated"] == "True")
    assert {o.operation_id for o in OPERATIONS.values() if o.deprecated} == {
        "GetQuote",
        "DeleteQuote",
        "AcceptQuote",
        "ConfirmQuote",
    }


def test_auth_requirements_follow_the_spec_security() -> None:
    assert not OPERATIONS["GetMarkets"].requires_auth
    assert not OPERATIONS["GetAccountEndpointCosts"].requires_auth
    assert OPERATIONS["GetBalance"].requires_auth
    assert OPERATIONS["GetFills"].requires_auth  # key signature or an OAuth token: still needs credentials
    assert sum(o.requires_auth for o in OPERATIONS.values()) == 76


def _public_names(resource: object) -> set[str]:
    return {n for n in dir(resource) if not n.startswith("_") and callable(getattr(resource, n))}


def test_one_name_per_operation(gen_rest: ModuleType) -> None:
    """Each operation is one method named after its operationId (plus its iter_* twin); no second names
    except the few compatibility aliases the generator lists."""
    client = KalshiClient(rate_limiter=RateLimiter.unlimited())
    expected: dict[str, set[str]] = {}
    for op_id, op in OPERATIONS.items():
        expected.setdefault(gen_rest.resource_for(op_id, op.tag), set()).add(gen_rest.snake(op_id))
    iterators = 0
    for resource_name in RESOURCE_NAMES:
        resource = getattr(client, resource_name)
        names = _public_names(resource)
        compat = set(gen_rest.COMPAT_ALIASES.get(resource_name, {}))
        iters = {n for n in names if n.startswith("iter_")}
        iterators += len(iters)
        assert names - iters - compat == expected[resource_name], resource_name
        assert {n.removeprefix("iter_") for n in iters} <= expected[resource_name]
        for alias, op_id in gen_rest.COMPAT_ALIASES.get(resource_name, {}).items():
            assert getattr(type(resource), alias) is getattr(type(resource), gen_rest.snake(op_id))
    functions = {
        id(getattr(type(getattr(client, r)), n)) for r in RESOURCE_NAMES for n in _public_names(getattr(client, r))
    }
    assert len(functions) == len(OPERATIONS) + iterators  # aliases add no function
    assert client.markets.get_market.__name__ == "get_market"
    assert not hasattr(client.markets, "list") and not hasattr(client.orders, "create")
    client.close()


# --------------------------------------------------------------------------------------------- models


def _walk(t: mi.Type, seen: set[type]) -> typing.Iterator[tuple[str, mi.Type]]:
    if isinstance(t, mi.StructType):
        if t.cls in seen:
            return
        seen.add(t.cls)
        for f in t.fields:
            yield f.encode_name, f.type
            yield from _walk(f.type, seen)
    elif isinstance(t, mi.UnionType):
        for member in t.types:
            yield from _walk(member, seen)
    elif isinstance(t, mi.ListType | mi.DictType):
        inner = t.item_type if isinstance(t, mi.ListType) else t.value_type
        yield "", inner
        yield from _walk(inner, seen)


def _leaf(t: mi.Type) -> mi.Type:
    if isinstance(t, mi.UnionType):
        return _leaf(next(m for m in t.types if not isinstance(m, mi.NoneType)))
    if isinstance(t, mi.ListType):
        return _leaf(t.item_type)
    return t


def test_no_float_anywhere_and_money_stays_a_string() -> None:
    structs = [getattr(rest_models, n) for n in rest_models.__all__]
    structs = [s for s in structs if isinstance(s, type) and issubclass(s, Model)]
    assert len(structs) > 190
    money = 0
    seen: set[type] = set()
    for struct in structs:
        for name, t in _walk(mi.type_info(struct), seen):
            assert not isinstance(t, mi.FloatType), f"{struct.__name__}.{name} is a float"
            if name.endswith(("_dollars", "_fp")):
                money += 1
                # a wire string, or a container of them (orderbook_fp holds [price, count] string pairs)
                assert isinstance(_leaf(t), mi.StrType | mi.StructType), f"{name} should be a wire string, is {t}"
    assert money > 80


def test_model_decimal_helper() -> None:
    fill = rest_models.CreateOrderV2Response(order_id="o", fill_count="2.50", remaining_count="0.00", ts_ms=1)
    assert fill.decimal("fill_count") == Decimal("2.50")
    assert str(fill.decimal("fill_count")) == "2.50"
    assert fill.decimal("average_fill_price") is None
    with pytest.raises(ValueError, match="order_id"):
        fill.decimal("order_id")
    with pytest.raises(AttributeError):
        fill.decimal("no_such_field")


# -------------------------------------------------------------- every operation, over a mock transport


def minimal(t: mi.Type) -> Any:
    """The smallest JSON value a type accepts (required struct fields only)."""
    if isinstance(t, mi.StructType):
        return {f.encode_name: minimal(f.type) for f in t.fields if f.required}
    if isinstance(t, mi.LiteralType):
        return t.values[0]
    if isinstance(t, mi.UnionType):
        return minimal(next(m for m in t.types if not isinstance(m, mi.NoneType)))
    if isinstance(t, mi.StrType):
        return "1"
    if isinstance(t, mi.IntType):
        return 1
    if isinstance(t, mi.BoolType):
        return True
    if isinstance(t, mi.DecimalType):
        return "1.5"
    if isinstance(t, mi.ListType):
        return []
    if isinstance(t, mi.DictType):
        return {}
    if isinstance(t, mi.AnyType):
        return None
    raise TypeError(f"no minimal value for {t}")


class AnyOperation:
    """Answers every request with a minimal valid body for the operation under test."""

    def __init__(self) -> None:
        self.body: Any = None
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.body is None:
            return httpx.Response(204)
        return httpx.Response(200, json=self.body)


def prepare(method: Any) -> tuple[dict[str, Any], Any]:
    """Arguments for every required parameter, and the minimal response body for the return type."""
    hints = typing.get_type_hints(method)
    kwargs = {
        name: msgspec.convert(minimal(mi.type_info(hints[name])), hints[name])
        for name, param in inspect.signature(method).parameters.items()
        if param.default is inspect.Parameter.empty
    }
    returned = hints["return"]
    return kwargs, (None if returned is type(None) else minimal(mi.type_info(returned)))


def method_for(client: object, gen_rest: ModuleType, op_id: str) -> Any:
    resource = getattr(client, gen_rest.resource_for(op_id, OPERATIONS[op_id].tag))
    return getattr(resource, gen_rest.snake(op_id))


def expected_path(op_id: str, kwargs: dict[str, Any]) -> str:
    path = OPERATIONS[op_id].path
    for name, value in kwargs.items():
        path = path.replace("{" + name + "}", str(value))
    return PREFIX + path


async def test_every_operation_is_callable_async(gen_rest: ModuleType) -> None:
    assert set(RESOURCE_NAMES) == {gen_rest.resource_for(i, op.tag) for i, op in OPERATIONS.items()}
    assert "series" in RESOURCE_NAMES
    assert {"markets", "orders", "portfolio", "exchange", "account", "order_groups"} <= set(RESOURCE_NAMES)
    exchange = AnyOperation()
    auth = KalshiAuth("k", ed25519.Ed25519PrivateKey.generate())
    async with AsyncKalshiClient(
        auth=auth, transport=httpx.MockTransport(exchange), rate_limiter=RateLimiter.unlimited()
    ) as client:
        for op_id, op in OPERATIONS.items():
            method = method_for(client, gen_rest, op_id)
            kwargs, exchange.body = prepare(method)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = await method(**kwargs)
            assert [w.category for w in caught] == ([DeprecationWarning] if op.deprecated else []), op_id
            request = exchange.requests[-1]
            assert (request.method, request.url.path) == (op.method, expected_path(op_id, kwargs)), op_id
            assert "KALSHI-ACCESS-SIGNATURE" in request.headers
            assert (result is None) is (exchange.body is None), op_id
    assert len(exchange.requests) == 117


def test_every_operation_is_callable_sync_and_auth_is_enforced(gen_rest: ModuleType) -> None:
    exchange = AnyOperation()
    with KalshiClient(transport=httpx.MockTransport(exchange), rate_limiter=RateLimiter.unlimited()) as client:
        for op_id, op in OPERATIONS.items():
            method = method_for(client, gen_rest, op_id)
            kwargs, exchange.body = prepare(method)
            sent = len(exchange.requests)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                if op.requires_auth:
                    with pytest.raises(KalshiAuthError, match=op_id):
                        method(**kwargs)
                    assert len(exchange.requests) == sent, op_id
                    continue
                method(**kwargs)
            request = exchange.requests[-1]
            assert (request.method, request.url.path) == (op.method, expected_path(op_id, kwargs)), op_id
            assert "KALSHI-ACCESS-SIGNATURE" not in request.headers
    assert len(exchange.requests) == 117 - 76
