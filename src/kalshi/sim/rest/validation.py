"""Request validation as strict as the spec: query parameters and JSON bodies checked against openapi.yaml.

The schemas come from ``_generated_schemas.py`` (``scripts/gen_sim_schemas.py``), so every operation is held to
the types, integer ranges (``int32``/``int64``), minimums, maximums, enums, lengths and object shapes its spec
declares, before its handler runs. A violation is a 400 ``invalid_parameters`` naming the field
(``min_ts: ...``, ``orders[0].market_ticker: ...``) and saying what a valid value looks like.

An empty value is held to its parameter's schema like any other: it is no integer, number, boolean, enum member
or date-time, and it is a valid plain string (which handlers then read as absent); an empty array parameter has
no items. Leniencies kept on purpose, as the exchange has them: booleans may be ``1``/``0``, unknown query
parameters and body fields are ignored, and ``null`` for an optional body field means absent.
Everything here is pure (no I/O).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from kalshi.sim.rest._generated_schemas import BODIES, QUERY_PARAMETERS
from kalshi.sim.rest.common import RestError, bad_field

__all__ = ["validate_body", "validate_query"]

_INT_RANGES: Final = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
}
_INTEGER: Final = re.compile(r"[+-]?[0-9]+")
_MAX_DIGITS: Final = 40  # far past int64; longer digit strings are out of range without parsing them
_TRUE: Final = frozenset({"true", "1"})
_FALSE: Final = frozenset({"false", "0"})
_JSON_TYPE_NAMES: Final = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
}


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_number(name: str, value: int | Decimal, schema: Mapping[str, Any]) -> None:
    if isinstance(value, int) and schema.get("type") == "integer":
        lo, hi = _INT_RANGES.get(schema.get("format", "int64"), _INT_RANGES["int64"])
        if not lo <= value <= hi:
            raise bad_field(name, f"{value} is outside the {schema.get('format', 'int64')} range {lo}..{hi}")
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    exclusive = schema.get("exclusiveMinimum") or schema.get("exclusiveMaximum")
    if minimum is not None and maximum is not None and not exclusive:
        if not minimum <= value <= maximum:
            raise bad_field(name, f"must be between {minimum} and {maximum}, got {value}")
        return
    if minimum is not None and (value <= minimum if schema.get("exclusiveMinimum") else value < minimum):
        raise bad_field(name, f"must be {'>' if schema.get('exclusiveMinimum') else '>='} {minimum}, got {value}")
    if maximum is not None and (value >= maximum if schema.get("exclusiveMaximum") else value > maximum):
        raise bad_field(name, f"must be {'<' if schema.get('exclusiveMaximum') else '<='} {maximum}, got {value}")


def _check_enum(name: str, value: object, schema: Mapping[str, Any]) -> None:
    allowed = schema.get("enum")
    if allowed is not None and value not in allowed:
        raise bad_field(name, f"{_shown(value)} is not one of {', '.join(map(str, allowed))}")


def _check_string(name: str, value: str, schema: Mapping[str, Any]) -> None:
    _check_enum(name, value, schema)
    if "minLength" in schema and len(value) < schema["minLength"]:
        raise bad_field(name, f"must hold at least {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise bad_field(name, f"must hold at most {schema['maxLength']} characters, got {len(value)}")
    if schema.get("format") == "date-time":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise bad_field(name, f"{_shown(value)} is not an RFC 3339 date-time like 2026-01-31T12:00:00Z") from None


def _check_array_size(name: str, count: int, schema: Mapping[str, Any]) -> None:
    if "minItems" in schema and count < schema["minItems"]:
        raise bad_field(name, f"give at least {schema['minItems']} value(s)")
    if "maxItems" in schema and count > schema["maxItems"]:
        raise bad_field(name, f"give at most {schema['maxItems']} values, got {count}")


# ---------------------------------------------------------------------------------------------- query


def _query_scalar(name: str, raw: str, schema: Mapping[str, Any]) -> None:
    kind = schema.get("type", "string")
    if kind == "integer":
        if not _INTEGER.fullmatch(raw):
            raise bad_field(name, f"{_shown(raw)} is not an integer")
        if len(raw) > _MAX_DIGITS:
            raise bad_field(name, f"{_shown(raw)} is outside the {schema.get('format', 'int64')} range")
        value = int(raw)
        _check_number(name, value, schema)
        _check_enum(name, value, schema)
    elif kind == "number":
        try:
            number = Decimal(raw)
        except InvalidOperation:
            raise bad_field(name, f"{_shown(raw)} is not a number") from None
        if not number.is_finite():
            raise bad_field(name, f"{_shown(raw)} is not a finite number")
        _check_number(name, number, schema)
    elif kind == "boolean":
        if raw.lower() not in _TRUE | _FALSE:
            raise bad_field(name, f"{_shown(raw)} is not true or false")
    else:
        _check_string(name, raw, schema)


def validate_query(operation_id: str, query: Mapping[str, Sequence[str]]) -> None:
    """Check the query parameters of one request against the operation's spec.

    Args:
        operation_id: the spec's operationId.
        query: every value of every parameter (``{"tickers": ["A", "B"]}``); repeated and comma-separated
            values of array parameters both count.

    Raises:
        RestError: 400 naming the first parameter that breaks its schema or a required one that is missing.
    """
    for name, spec in QUERY_PARAMETERS.get(operation_id, {}).items():
        schema: Mapping[str, Any] = spec["schema"]
        values = query.get(name, ())
        if schema.get("type") == "array":
            items = [part for value in values for part in value.split(",") if part != ""]
            if not items and not values:
                if spec["required"]:
                    raise bad_field(name, "is required")
                continue
            _check_array_size(name, len(items), schema)
            for item in items:
                _query_scalar(name, item, schema.get("items", {}))
        elif not values:
            if spec["required"]:
                raise bad_field(name, "is required")
        else:
            for value in values:
                _query_scalar(name, value, schema)


# ---------------------------------------------------------------------------------------------- body


def _json_type(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _body_value(name: str, value: object, schema: Mapping[str, Any]) -> None:
    kind = schema.get("type")
    if kind == "object" or (kind is None and "properties" in schema):
        if not isinstance(value, dict):
            raise bad_field(name, f"must be an object, got {_json_type(value)}")
        _body_object(name + ".", value, schema)
    elif kind == "array":
        if not isinstance(value, list):
            raise bad_field(name, f"must be an array, got {_json_type(value)}")
        _check_array_size(name, len(value), schema)
        item_schema = schema.get("items", {})
        for i, item in enumerate(value):
            if item is None and not item_schema.get("nullable"):
                raise bad_field(f"{name}[{i}]", "must not be null")
            if item is not None:
                _body_value(f"{name}[{i}]", item, item_schema)
    elif kind == "string":
        if not isinstance(value, str):
            raise bad_field(name, f"must be a string, got {_json_type(value)}")
        _check_string(name, value, schema)
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_field(name, f"must be an integer, got {_json_type(value)}")
        _check_number(name, value, schema)
        _check_enum(name, value, schema)
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad_field(name, f"must be a number, got {_json_type(value)}")
        _check_number(name, Decimal(str(value)), schema)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise bad_field(name, f"must be true or false, got {_json_type(value)}")
    else:
        _check_enum(name, value, schema)


def _body_object(prefix: str, data: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    for field in schema.get("required", ()):
        if data.get(field) is None:
            raise bad_field(prefix + field, "is required")
    for field, sub in schema.get("properties", {}).items():
        value = data.get(field)
        if value is not None:
            _body_value(prefix + field, value, sub)


def validate_body(operation_id: str, data: object) -> None:
    """Check a decoded JSON body against the operation's spec (operations without a body schema pass).

    Raises:
        RestError: 400 naming the first field that breaks its schema (``orders[0].market_ticker``).
    """
    spec = BODIES.get(operation_id)
    if spec is None:
        return
    schema: Mapping[str, Any] = spec["schema"]
    if schema.get("type", "object") == "object":
        if not isinstance(data, dict):
            raise RestError(400, "invalid_json", "the request body must be a JSON object")
        _body_object("", data, schema)
    else:
        _body_value("body", data, schema)
