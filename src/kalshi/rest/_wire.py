"""What goes on the wire and comes back: paths, queries, bodies, decoding, and error bodies.

Pure functions shared by the async client and its generated sync twin.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from kalshi.errors import KalshiAPIError, KalshiError, KalshiProtocolError, api_error_for_status

__all__ = [
    "AsyncSleep",
    "KalshiPaginationError",
    "RequestSigner",
    "Sleep",
    "decode_body",
    "encode_body",
    "encode_query",
    "error_for_response",
    "error_in_success_body",
    "join_csv",
    "parse_retry_after",
    "render_path",
]

T = TypeVar("T")

AsyncSleep = Callable[[float], Awaitable[None]]
Sleep = Callable[[float], None]
Clock = Callable[[], float]

_ENCODER = msgspec.json.Encoder(decimal_format="number")  # Decimal fields are spec `number`s
_SNIPPET = 200


class KalshiPaginationError(KalshiError):
    """The server sent a cursor it had sent before: following it would loop forever."""


class RequestSigner(Protocol):
    """What the client needs from :class:`kalshi.auth.KalshiAuth`."""

    def headers(self, method: str, path: str) -> dict[str, str]:
        """The ``KALSHI-ACCESS-*`` headers for ``method`` on ``path`` (no query string)."""
        ...


def render_path(template: str, params: Mapping[str, object] | None) -> str:
    """Fill ``{name}`` placeholders with percent-encoded values.

    Raises:
        KeyError: a placeholder has no value.
    """
    if not params:
        return template
    return template.format_map({k: quote(str(v), safe="") for k, v in params.items()})


def _query_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        # Floats never carry money here; refuse non-finite values rather than send "nan".
        raise ValueError(f"query value {value!r} is not finite")
    return str(value)


def encode_query(query: Mapping[str, object] | None) -> httpx.QueryParams:
    """Query pairs: ``None`` dropped, booleans as ``true``/``false``, sequences repeated (form, explode)."""
    pairs: list[tuple[str, str]] = []
    for name, value in (query or {}).items():
        if value is None:
            continue
        if isinstance(value, Sequence) and not isinstance(value, str | bytes):
            pairs.extend((name, _query_value(v)) for v in value)
        else:
            pairs.append((name, _query_value(value)))
    return httpx.QueryParams(tuple(pairs))


def join_csv(value: str | Sequence[str] | None, name: str) -> str | None:
    """The wire form of a comma-separated list parameter: ``["A", "B"]`` -> ``"A,B"``; a string passes as is.

    Args:
        value: the items, one string (sent unchanged), or None (parameter omitted).
        name: the parameter, for the error message.

    Raises:
        ValueError: the sequence is empty, or an item is empty or holds a comma (it would split on the wire).
    """
    if value is None or isinstance(value, str):
        return value
    items = list(value)
    if not items:
        raise ValueError(f"{name} is an empty list: pass None to leave the filter out")
    for item in items:
        if not isinstance(item, str) or not item or "," in item:
            raise ValueError(f"{name}: {item!r} is not a usable list item (a non-empty string without commas)")
    return ",".join(items)


def encode_body(body: object) -> bytes:
    """JSON bytes of a model (optional fields left at None are omitted) or a plain mapping.

    Fixed-point text fields (prices ``"0.5600"``, counts ``"10.00"``) also take a ``Decimal`` or an ``int``, sent
    as their exact text (the caller's model is left as it is).

    Raises:
        TypeError: a float in a fixed-point field (binary floats are inexact for money).
    """
    return _ENCODER.encode(_with_exact_text(body))


_TEXT_FIELDS: dict[type, frozenset[str]] = {}


def _text_fields(cls: type[msgspec.Struct]) -> frozenset[str]:
    """The fields of ``cls`` typed as text (``str`` or ``str | None``): where the spec wants fixed-point strings."""
    names = _TEXT_FIELDS.get(cls)
    if names is None:
        names = frozenset(f.name for f in msgspec.structs.fields(cls) if f.type is str or f.type == (str | None))
        _TEXT_FIELDS[cls] = names
    return names


def _with_exact_text(body: object) -> object:
    """``body`` with the Decimal and int values of its models' text fields as their exact text (nested models and
    lists of them included); ``body`` itself when there is nothing to change."""
    if isinstance(body, list):
        items = [_with_exact_text(item) for item in body]
        return items if any(new is not old for new, old in zip(items, body, strict=True)) else body
    if not isinstance(body, msgspec.Struct):
        return body
    text = _text_fields(type(body))
    changes: dict[str, object] = {}
    for name in body.__struct_fields__:
        value = getattr(body, name)
        cls = value.__class__
        if value is None or cls is str or cls is bool:
            continue
        if name in text:
            exact = _exact_text(value, f"{type(body).__name__}.{name}")
        elif cls is list or isinstance(value, msgspec.Struct):
            exact = _with_exact_text(value)
        else:
            continue
        if exact is not value:
            changes[name] = exact
    return msgspec.structs.replace(body, **changes) if changes else body


def _exact_text(value: object, where: str) -> object:
    if isinstance(value, float):
        raise TypeError(
            f"{where} is the float {value!r}: binary floats are inexact for money; pass a string such as "
            f"'0.5600' or a Decimal"
        )
    if isinstance(value, Decimal) and value.is_finite():
        return format(value, "f")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value  # something else: the exchange says what is wrong with it


_DECODERS: dict[object, msgspec.json.Decoder[Any]] = {}


def _decoder(model: object) -> msgspec.json.Decoder[Any]:
    decoder = _DECODERS.get(model)
    if decoder is None:
        decoder = _DECODERS[model] = msgspec.json.Decoder(model)
    return decoder


def decode_body(content: bytes, model: type[T], *, what: str) -> T:
    """Decode a response body into ``model``.

    Raises:
        KalshiProtocolError: the body is not JSON of the expected shape.
    """
    try:
        result: T = _decoder(model).decode(content or b"{}")
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise KalshiProtocolError(f"{what}: could not decode the response as {model.__name__}: {exc}") from exc
    return result


class _ErrorProbe(msgspec.Struct):
    error: Any = None
    code: Any = None
    message: Any = None


def _reason(data: object) -> tuple[str | None, str | None, str | None]:
    """``(code, message, details)`` from ``{"error": {...}}``, ``{"error": "..."}`` or ``{"code", "message"}``."""
    if not isinstance(data, dict):
        return None, None, None
    inner = data.get("error")
    if isinstance(inner, dict):
        data = inner
    elif isinstance(inner, str):
        return None, inner, None
    code, message, details = (data.get(k) for k in ("code", "message", "details"))
    text = message or details  # some answers carry only details
    return (
        str(code) if code is not None else None,
        str(text) if text is not None else None,
        str(details) if details and message else None,
    )


def error_for_response(status: int, content: bytes, retry_after: str | None) -> KalshiAPIError:
    """The KalshiAPIError subclass for a non-2xx response, with the body's code, message and details."""
    body: object
    try:
        body = msgspec.json.decode(content) if content else None
    except msgspec.DecodeError:
        body = content[:_SNIPPET].decode("utf-8", "replace")
    code, message, details = _reason(body)
    if message is None:
        message = body if isinstance(body, str) and body else "no error message in the response"
    return api_error_for_status(
        status, code, message, body=body, details=details, retry_after=parse_retry_after(retry_after)
    )


def error_in_success_body(status: int, content: bytes, fields: frozenset[str]) -> KalshiAPIError | None:
    """An error object inside a 2xx body (the exchange has answered so), unless the model owns those fields.

    Args:
        status: the HTTP status, kept on the error.
        content: the body.
        fields: the wire field names of the expected response model.
    """
    # Cheap scan first: most bodies mention neither key, and then nothing is parsed twice.
    if b'"error"' not in content and b'"message"' not in content:
        return None
    try:
        probe = msgspec.json.decode(content, type=_ErrorProbe)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    wrapped = isinstance(probe.error, dict | str) and "error" not in fields
    bare = (
        isinstance(probe.code, str)
        and isinstance(probe.message, str)
        and "code" not in fields
        and "message" not in fields
    )
    if not (wrapped or bare):
        return None
    body = msgspec.json.decode(content)
    code, message, details = _reason(body)
    return api_error_for_status(
        status, code, message or "error object in a successful response", body=body, details=details
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); None if absent or bad."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(Decimal(text))
    except ArithmeticError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
