"""Shared plumbing of the simulator's REST handlers: errors, replies, parameters, bodies, cursors, wire formats.

Every handler receives a :class:`RestCall` (the aiohttp request, the simulator, the operation and the signed-in
account) and returns a :class:`Reply`. Bad input raises :class:`RestError`, which the dispatcher in
:mod:`kalshi.sim.rest.dispatch` turns into ``{"error": {"code", "message", "details"}}`` with its status; the
message names the offending field.

Cursors are opaque to clients (URL-safe base64) and hold the position of the last item returned in the
underlying append-only list, so a page boundary survives items leaving a filter between pages (an order that
fills while a client pages through resting orders).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

import msgspec
from aiohttp import web

from kalshi._fixed import count_units, format_price, price_ticks
from kalshi.rest._model import Operation
from kalshi.sim.engine.types import format_micros

if TYPE_CHECKING:
    from kalshi.sim.server import Simulator

__all__ = [
    "JSON_CONTENT",
    "Body",
    "Handler",
    "Query",
    "Reply",
    "RestCall",
    "RestError",
    "cents",
    "iso",
    "json_bytes",
    "money",
    "paginate",
]

T = TypeVar("T")

JSON_CONTENT: Final = "application/json"
_ENCODER: Final = msgspec.json.Encoder(decimal_format="number")  # spec `number` fields (strikes) stay exact
_CURSOR_VERSION: Final = "c1"


class RestError(Exception):
    """A request the simulator refuses; becomes a JSON error response.

    Attributes:
        status: HTTP status.
        code: machine-readable code (``invalid_parameters``, ``not_found``, ...).
        message: what was wrong and what to do.
        details: optional extra text (e.g. the field name).
        headers: extra response headers (``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def bad_field(name: str, message: str) -> RestError:
    """A 400 naming the field (``message`` should say what a valid value looks like)."""
    return RestError(400, "invalid_parameters", f"{name}: {message}", details=f"field {name}")


def json_bytes(payload: object) -> bytes:
    """Encode a response payload."""
    return _ENCODER.encode(payload)


@dataclass(frozen=True, slots=True)
class Reply:
    """What a handler answers: a JSON payload (None for an empty body) and the status."""

    payload: object = None
    status: int = 200

    def response(self) -> web.Response:
        """The aiohttp response."""
        if self.payload is None:
            return web.Response(status=self.status)
        return web.Response(body=json_bytes(self.payload), status=self.status, content_type=JSON_CONTENT)


def error_body(code: str, message: str, details: str | None = None) -> dict[str, Any]:
    """The exchange's error shape."""
    inner: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        inner["details"] = details
    return {"error": inner}


# ---------------------------------------------------------------------------------------------- time & money


def iso(ts_ms: int) -> str:
    """Epoch ms -> RFC 3339 UTC with milliseconds (``2026-01-01T00:00:00.250Z``), exact."""
    seconds, ms = divmod(ts_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def money(micros: int) -> str:
    """Money micros -> dollar string: 4 decimals when exact, else 6 (the spec emits up to 6)."""
    if micros % 100 == 0:
        return format_price(micros // 100)
    return format_micros(micros)


def cents(micros: int) -> int:
    """Money micros -> whole cents (floored), for the integer-cent fields the spec still has."""
    return micros // 10_000


# ---------------------------------------------------------------------------------------------- parameters


class Query:
    """Typed access to query parameters; every failure is a 400 naming the parameter."""

    __slots__ = ("_q", "_scoped")

    def __init__(self, request: web.Request, *, scoped: bool = False) -> None:
        self._q = request.query
        self._scoped = scoped  # the dispatcher already resolved ``subaccount`` to the acting account

    def text(self, name: str) -> str | None:
        """The parameter, or None when absent or empty."""
        value = self._q.get(name)
        return value if value else None

    def integer(
        self, name: str, *, default: int | None = None, lo: int | None = None, hi: int | None = None
    ) -> int | None:
        """An integer parameter within ``lo..hi``.

        Raises:
            RestError: 400 when it is not an integer in range.
        """
        raw = self._q.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise bad_field(name, f"{raw[:40]!r} is not an integer") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise bad_field(name, f"must be between {lo} and {hi}, got {value}")
        return value

    def limit(self, *, default: int = 100, hi: int = 1000, lo: int = 1) -> int:
        """The page size (``limit``); 0 means the default where the spec allows it (``lo=0``).

        Raises:
            RestError: 400 when out of range.
        """
        value = self.integer("limit", default=default, lo=lo, hi=hi)
        return value or default

    def flag(self, name: str) -> bool | None:
        """``true``/``false`` (any case), or None when absent.

        Raises:
            RestError: 400 for anything else.
        """
        raw = self._q.get(name)
        if raw is None or raw == "":
            return None
        lowered = raw.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise bad_field(name, f"{raw[:40]!r} is not true or false")

    def choice(self, name: str, choices: Sequence[str]) -> str | None:
        """One of ``choices``, or None when absent.

        Raises:
            RestError: 400 for any other value.
        """
        raw = self.text(name)
        if raw is not None and raw not in choices:
            raise bad_field(name, f"{raw[:40]!r} is not one of {', '.join(choices)}")
        return raw

    def csv(self, name: str) -> list[str]:
        """Every value of a repeated and/or comma-separated parameter, blanks dropped."""
        out: list[str] = []
        for raw in self._q.getall(name, []):
            out.extend(part.strip() for part in raw.split(",") if part.strip())
        return out

    def in_shard(self) -> bool:
        """The list filter ``exchange_index`` ("Filter results by exchange shard"): False when it names a shard
        other than the simulator's one (0), which holds nothing.

        Raises:
            RestError: 400 for a negative one.
        """
        return self.integer("exchange_index", lo=0) in (None, 0)

    def subaccount(self) -> None:
        """Check ``subaccount``: any one the dispatcher resolved, else only the primary subaccount (0).

        Raises:
            RestError: 400 for another subaccount.
        """
        value = self.integer("subaccount", lo=0, hi=63)
        if value not in (None, 0) and not self._scoped:
            raise bad_field("subaccount", "the simulator models only the primary subaccount 0")


class Body:
    """Typed access to a JSON object body; every failure is a 400 naming the field."""

    __slots__ = ("data", "prefix")

    def __init__(self, data: dict[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def _name(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def has(self, name: str) -> bool:
        """True when the field is present and not null."""
        return self.data.get(name) is not None

    def text(self, name: str, *, required: bool = False) -> str | None:
        """A string field.

        Raises:
            RestError: 400 when missing (if required) or not a string.
        """
        value = self.data.get(name)
        if value is None:
            if required:
                raise bad_field(self._name(name), "is required")
            return None
        if not isinstance(value, str):
            raise bad_field(self._name(name), f"must be a string, got {type(value).__name__}")
        if required and not value:
            raise bad_field(self._name(name), "must not be empty")
        return value

    def required_text(self, name: str) -> str:
        """A required, non-empty string field.

        Raises:
            RestError: 400 when missing or not a string.
        """
        value = self.text(name, required=True)
        assert value is not None
        return value

    def choice(self, name: str, choices: Sequence[str], *, required: bool = False) -> str | None:
        """A string field restricted to ``choices``.

        Raises:
            RestError: 400 when missing (if required) or not one of ``choices``.
        """
        value = self.text(name, required=required)
        if value is not None and value not in choices:
            raise bad_field(self._name(name), f"{value[:40]!r} is not one of {', '.join(choices)}")
        return value

    def flag(self, name: str) -> bool | None:
        """A boolean field, or None when absent.

        Raises:
            RestError: 400 when not a boolean.
        """
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise bad_field(self._name(name), f"must be true or false, got {value!r}"[:120])
        return value

    def integer(self, name: str) -> int | None:
        """An integer field, or None when absent.

        Raises:
            RestError: 400 when not an integer.
        """
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_field(self._name(name), f"must be an integer, got {value!r}"[:120])
        return value

    def price(self, name: str, *, required: bool = False) -> int | None:
        """A ``FixedPointDollars`` field as price ticks.

        Raises:
            RestError: 400 when missing (if required) or not a dollar string with at most 4 decimals.
        """
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            return price_ticks(value)
        except ValueError:
            raise bad_field(
                self._name(name), f"{value[:40]!r} is not a dollar amount with at most 4 decimals, like '0.5600'"
            ) from None

    def count(self, name: str, *, required: bool = False) -> int | None:
        """A ``FixedPointCount`` field as count units.

        Raises:
            RestError: 400 when missing (if required) or not a contract count with at most 2 decimals.
        """
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            units = count_units(value)
        except ValueError:
            raise bad_field(
                self._name(name), f"{value[:40]!r} is not a contract count with at most 2 decimals, like '10.00'"
            ) from None
        if units < 0:
            raise bad_field(self._name(name), "must not be negative")
        return units

    def objects(self, name: str) -> list[Body]:
        """A required array of objects, each wrapped as a Body whose errors name ``name[i].field``.

        Raises:
            RestError: 400 when missing, empty, or holding something else than objects.
        """
        value = self.data.get(name)
        if not isinstance(value, list) or not value:
            raise bad_field(self._name(name), "must be a non-empty array")
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise bad_field(f"{self._name(name)}[{i}]", "must be an object")
            out.append(Body(item, prefix=f"{self._name(name)}[{i}]."))
        return out


# ---------------------------------------------------------------------------------------------- the call


@dataclass(slots=True)
class RestCall:
    """One REST request as a handler sees it."""

    request: web.Request
    sim: Simulator
    op: Operation
    key_id: str | None = None
    account_id: str | None = None
    subaccount: int | None = None  # set when the call acts for a subaccount (see rest.subaccounts)
    _body: Body | None = field(default=None, repr=False)

    @property
    def query(self) -> Query:
        """The query parameters."""
        return Query(self.request, scoped=self.subaccount is not None)

    def param(self, name: str) -> str:
        """A path parameter."""
        return self.request.match_info[name]

    @property
    def account(self) -> str:
        """The signed-in account.

        Raises:
            RestError: 401 when the request was not signed.
        """
        if self.account_id is None:
            raise RestError(
                401, "unauthorized", f"{self.op.operation_id} needs a signed request (KALSHI-ACCESS-* headers)"
            )
        return self.account_id

    async def body(self, *, optional: bool = False) -> Body:
        """The JSON object body (read once).

        Args:
            optional: an empty body reads as ``{}``.

        Raises:
            RestError: 400 when the body is missing (unless optional), not JSON, or not an object.
        """
        if self._body is not None:
            return self._body
        raw = await self.request.read()
        if not raw.strip():
            if not optional:
                raise RestError(400, "invalid_parameters", f"{self.op.operation_id} needs a JSON object body")
            data: object = {}
        else:
            try:
                data = msgspec.json.decode(raw)
            except msgspec.DecodeError as exc:
                raise RestError(400, "invalid_json", f"the request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise RestError(400, "invalid_json", "the request body must be a JSON object")
        self._body = Body(data)
        return self._body


Handler = Callable[[RestCall], Awaitable[Reply]]


# ---------------------------------------------------------------------------------------------- pagination


def _encode_cursor(scope: str, position: tuple[int, ...]) -> str:
    text = f"{_CURSOR_VERSION}|{scope}|{'.'.join(map(str, position))}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, scope: str) -> tuple[int, ...]:
    problem = bad_field("cursor", "is not a cursor this endpoint returned; start again without a cursor")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise problem from None
    version, _, rest = text.partition("|")
    found_scope, _, digits = rest.partition("|")
    if version != _CURSOR_VERSION or found_scope != scope:
        raise problem
    try:
        return tuple(int(part) for part in digits.split("."))
    except ValueError:
        raise problem from None


def paginate(
    items: Iterable[tuple[tuple[int, ...], T]],
    *,
    limit: int,
    cursor: str | None,
    scope: str,
    descending: bool = False,
) -> tuple[list[T], str]:
    """One page of ``(position, item)`` pairs, given in output order, and the cursor of the next page.

    Args:
        items: the (filtered) items with their position in the underlying append-only list.
        limit: page size.
        cursor: the ``cursor`` query parameter (None or empty: first page).
        scope: names the list, so a cursor of one endpoint is refused by another.
        descending: the output runs from the newest position down.

    Returns:
        ``(page, next_cursor)``; ``next_cursor`` is ``""`` on the last page.

    Raises:
        RestError: 400 for a cursor this scope did not issue.
    """
    after = _decode_cursor(cursor, scope) if cursor else None
    page: list[T] = []
    last: tuple[int, ...] | None = None
    more = False
    for position, item in items:
        if after is not None and (position >= after if descending else position <= after):
            continue
        if len(page) == limit:
            more = True
            break
        page.append(item)
        last = position
    return page, (_encode_cursor(scope, last) if more and last is not None else "")
