"""Contract helper and shared helpers of the simulator REST tests.

Validates simulator REST responses against openapi.yaml's schemas (not against our own models).

The spec is OpenAPI 3.0: ``nullable: true`` becomes ``anyOf [schema, null]`` and ``$ref`` pointers are rewritten
into ``$defs`` of one JSON Schema (draft 2020-12), validated with ``jsonschema`` and a ``date-time`` format check.
:class:`ValidatingTransport` wraps the client's HTTP transport so every response a test receives is checked;
``seen`` records which operations were validated (the contract test requires all implemented ones).

:func:`rest_client` makes an AsyncKalshiClient on such a transport; :func:`add_quiet_market` adds a market with an
empty book (call it after ``sim.step``: then the test alone decides what trades there). The tests at the bottom
check the helper itself.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from kalshi.auth import KalshiAuth
from kalshi.rest import AsyncKalshiClient, RateLimiter
from kalshi.sim import Simulator
from kalshi.sim.engine import EventSpec, MarketSpec

_ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = (_ROOT / "specs" / "openapi.yaml", _ROOT.parent / "shared" / "specs" / "openapi.yaml")
PREFIX = "/trade-api/v2"


@cache
def spec() -> dict[str, Any]:
    """openapi.yaml, parsed (the repo's specs/ first, then ../shared/specs/)."""
    for path in _CANDIDATES:
        if path.exists():
            with path.open(encoding="utf-8") as fh:
                doc = yaml.safe_load(fh)
            assert isinstance(doc, dict)
            return doc
    raise FileNotFoundError(f"openapi.yaml not found in {[str(p) for p in _CANDIDATES]}")


def _convert(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema 2020-12 (refs into ``$defs``, nullable as a null alternative)."""
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _convert(value) for key, value in node.items() if key not in ("nullable", "example", "$ref")}
    if "$ref" in node:
        out["$ref"] = "#/$defs/" + node["$ref"].rsplit("/", 1)[-1]
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


_FORMATS = jsonschema.FormatChecker()


@_FORMATS.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    if "T" not in value or parsed.tzinfo is None:
        raise ValueError(f"{value!r} is not an RFC 3339 date-time with a zone")
    return True


@cache
def _defs() -> dict[str, Any]:
    return {name: _convert(schema) for name, schema in spec()["components"]["schemas"].items()}


@cache
def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    """A validator of ``components.schemas.<schema_name>``."""
    root = {"$defs": _defs(), "$ref": f"#/$defs/{schema_name}"}
    return jsonschema.Draft202012Validator(root, format_checker=_FORMATS)


def _resolve_response(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref:
        resolved = spec()["components"]["responses"][ref.rsplit("/", 1)[-1]]
        assert isinstance(resolved, dict)
        return resolved
    return node


@cache
def _templates() -> list[tuple[str, re.Pattern[str], str, dict[str, Any]]]:
    rows = []
    for path, item in spec()["paths"].items():
        segments = ["[^/]+" if seg.startswith("{") else re.escape(seg) for seg in path.split("/")]
        literal_first = tuple(seg.startswith("{") for seg in path.split("/"))
        for method, op in item.items():
            if isinstance(op, dict) and "operationId" in op:
                rows.append((literal_first, method.upper(), re.compile("^" + "/".join(segments) + "$"), op))
    rows.sort(key=lambda row: row[0])
    return [(method, pattern, op["operationId"], op) for _, method, pattern, op in rows]


def operation_of(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The operationId and spec entry serving ``method path`` (path with or without the API prefix).

    Raises:
        LookupError: the spec has no such operation.
    """
    tail = path.removeprefix(PREFIX)
    for op_method, pattern, op_id, op in _templates():
        if op_method == method.upper() and pattern.match(tail):
            return op_id, op
    raise LookupError(f"{method} {path} is not an operation of openapi.yaml")


def schema_name_of(op: dict[str, Any], status: int) -> str | None:
    """The response schema name for ``status`` (None when the spec declares no body).

    Raises:
        AssertionError: the spec does not list ``status`` for the operation.
    """
    responses = op.get("responses", {})
    entry = responses.get(str(status))
    assert entry is not None, (
        f"{op['operationId']} answered {status}, which the spec does not list ({sorted(responses)})"
    )
    schema = _resolve_response(entry).get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return None
    ref = schema.get("$ref")
    assert ref, f"{op['operationId']} {status}: inline schema not supported by this helper"
    return str(ref.rsplit("/", 1)[-1])


def check_response(method: str, path: str, status: int, content: bytes) -> str:
    """Validate one simulator response against the spec; returns its operationId.

    Errors must carry the exchange's ``{"error": {"code", "message"}}`` shape.

    Raises:
        AssertionError: the response breaks the contract (the message says where).
    """
    op_id, op = operation_of(method, path)
    if status >= 400:
        body = json.loads(content)
        assert isinstance(body.get("error"), dict), f"{op_id} {status}: error body {body!r}"
        assert isinstance(body["error"].get("code"), str) and isinstance(body["error"].get("message"), str)
        return op_id
    name = schema_name_of(op, status)
    if name is None:
        assert not content.strip(), f"{op_id} {status}: the spec declares no body, got {content[:200]!r}"
        return op_id
    body = json.loads(content)
    errors = sorted(validator(name).iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:300]}" for e in errors[:10]]
        raise AssertionError(f"{op_id} {status} does not match {name}:\n" + "\n".join(lines))
    return op_id


# Served by the simulator but absent from the current spec (kept from v3.13): not validated here.
EXTRA_PATHS = frozenset({PREFIX + "/exchange/announcements"})


def _forced_fault(content: bytes) -> bool:
    """A response forced by ``RestFaults`` (a 2xx one breaks the contract on purpose)."""
    if b"simulated_fault" not in content:
        return False
    error = json.loads(content).get("error")
    return isinstance(error, dict) and error.get("code") == "simulated_fault"


class ValidatingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks every response against the spec before the client sees it."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.seen: Counter[tuple[str, int]] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        content = await response.aread()
        if request.url.path not in EXTRA_PATHS and not _forced_fault(content):
            op_id = check_response(request.method, request.url.path, response.status_code, content)
            self.seen[(op_id, response.status_code)] += 1
        return httpx.Response(response.status_code, headers=response.headers, content=content, request=request)

    @property
    def operations(self) -> set[str]:
        """OperationIds validated with a 2xx response."""
        return {op for op, status in self.seen if status < 300}

    async def aclose(self) -> None:
        await self._inner.aclose()


def rest_client(
    sim: Simulator,
    auth: KalshiAuth | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    rate_limiter: RateLimiter | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    **options: Any,
) -> AsyncKalshiClient:
    """A client of ``sim`` whose responses are validated (client-side throttling off unless given).

    ``options`` change the client's :class:`KalshiConfig` (e.g. ``max_retries``).
    """
    config = sim.config.with_options(**options) if options else sim.config
    return AsyncKalshiClient(
        config,
        auth=auth,
        transport=transport if transport is not None else ValidatingTransport(),
        rate_limiter=rate_limiter or RateLimiter.unlimited(),
        sleep=sleep,
        rng=random.Random(0),
    )


def add_quiet_market(sim: Simulator, ticker: str = "KXQUIET-26-T1", *, structure: str = "linear_cent") -> str:
    """Add an event and an active market with an empty book (quiet until the test steps activity again)."""
    event_ticker = ticker.rsplit("-", 1)[0]
    series = event_ticker.split("-", 1)[0]
    if event_ticker not in {e.event_ticker for e in sim.engine.events()}:
        sim.do(lambda e: e.add_event(EventSpec(event_ticker=event_ticker, series_ticker=series, title="Quiet")))
    sim.do(
        lambda e: e.add_market(
            MarketSpec(
                ticker=ticker,
                event_ticker=event_ticker,
                series_ticker=series,
                title=f"Quiet market {ticker}",
                price_level_structure=structure,
                close_time_ms=sim.clock_ms() + 86_400_000,
            )
        )
    )
    return ticker


# ---------------------------------------------------------------------------------------------- the helper


def test_nullable_becomes_a_null_alternative() -> None:
    converted = _convert({"type": "string", "nullable": True, "$ref": "#/components/schemas/X"})
    assert converted == {"anyOf": [{"type": "string", "$ref": "#/$defs/X"}, {"type": "null"}]}


def test_validator_rejects_a_missing_required_field_and_a_bad_datetime() -> None:
    good = {"as_of_time": "2026-01-01T00:00:00.250Z"}
    check = validator("GetUserDataTimestampResponse")
    assert not list(check.iter_errors(good))
    assert list(check.iter_errors({}))
    assert list(check.iter_errors({"as_of_time": "yesterday"}))
    assert list(check.iter_errors({"as_of_time": "2026-01-01 00:00:00"}))


def test_operation_lookup_prefers_literal_segments() -> None:
    assert operation_of("GET", "/trade-api/v2/markets/trades")[0] == "GetTrades"
    assert operation_of("GET", "/trade-api/v2/markets/ABC-1")[0] == "GetMarket"
    assert operation_of("DELETE", "/trade-api/v2/portfolio/events/orders/batched")[0] == "BatchCancelOrdersV2"
    with pytest.raises(LookupError):
        operation_of("PATCH", "/trade-api/v2/markets")


def test_check_response_catches_wrong_status_and_shape() -> None:
    path = "/trade-api/v2/exchange/user_data_timestamp"
    assert check_response("GET", path, 200, b'{"as_of_time": "2026-01-01T00:00:00Z"}') == "GetUserDataTimestamp"
    with pytest.raises(AssertionError, match="does not match"):
        check_response("GET", path, 200, b'{"as_of": 1}')
    with pytest.raises(AssertionError, match="does not list"):
        check_response("POST", "/trade-api/v2/portfolio/events/orders", 200, b"{}")
    with pytest.raises(AssertionError):
        check_response("GET", path, 500, b'{"message": "flat"}')
