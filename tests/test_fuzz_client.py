"""Fuzzing the client's receive side: decoder, sans-I/O protocol and order books (hypothesis; no sockets).

What must hold for any input:

* ``ClientProtocol.receive_frame`` never raises, and a frame it rejects leaves the sequence state untouched;
* every public property and accessor of a message it returns either works or raises ``KalshiProtocolError``
  (a ``KalshiError``), never a bare ``ValueError``/``TypeError``/``ArithmeticError`` in the application's code;
* protocol + ``OrderbookManager`` composed as the client composes them never expose a corrupted book: noise
  frames (truncated, mutated, random), lost, duplicated and reordered frames are either rejected or detected
  as a gap and repaired, after which every book equals the server's;
* ``OrderbookManager`` fed invalid snapshots and deltas raises only ``BookError`` (snapshots) and leaves a
  book unchanged by any delta it does not apply.

Run counts are the ``max_examples`` below (see the closing note of issue 7 for the totals).
"""

from __future__ import annotations

import inspect
import json
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kalshi.errors import KalshiError
from kalshi.models.markets import Orderbook
from kalshi.ws.models import OrderbookDeltaMessage, OrderbookSnapshotMessage
from kalshi.ws.orderbook import BookError, DeltaResult, OrderbookManager
from kalshi.ws.protocol import (
    AwaitingSnapshotDropped,
    ClientProtocol,
    DuplicateDropped,
    GapDetected,
    ProtocolErrorEvent,
    ProtocolEvent,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ws"
DOCS: list[tuple[str, Any]] = [(p.stem, json.loads(p.read_text())) for p in sorted(FIXTURES.glob("*.json"))]
RAW: list[bytes] = [p.read_bytes() for p in sorted(FIXTURES.glob("*.json"))]

BYTES_RUNS = 1500
MUTATION_RUNS = 1500
STREAM_RUNS = 200
BOOK_RUNS = 500
FUZZ = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], database=None)

# Values that break parsers: wrong types, huge and negative integers, off-tick and exotic number strings.
tricky_strings = st.sampled_from(
    [
        "0.5600",
        "1.0000",
        "0.0000",
        "-0.0001",
        "0.00001",
        "1.0001",
        "0.56",
        "0.5",
        "1e-4",
        "5.6E-1",
        "NaN",
        "nan",
        "Infinity",
        "-inf",
        "",
        " ",
        " 0.5600",
        "0.5600 ",
        "\u0660.\u0665\u0666\u0660\u0660",
        "12.50",
        "-3.00",
        "0.001",
        "99999999999999999999999.00",
        "-0",
        "+1.00",
        "1_000.00",
        "0x10",
        "\x00",
        "yes",
        "no",
        "bid",
        "2022-11-22T20:44:01Z",
        "2022-13-45T99:99:99",
        "1669149841000",
    ]
)
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=16)
    | tricky_strings
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10) | tricky_strings, inner, max_size=4)
    ),
    max_leaves=12,
)


SIDS = sorted({doc.get("sid", 1) for _, doc in DOCS if isinstance(doc.get("sid"), int)} | {0, 1, 2})
PRIMING = [
    frame
    for sid in SIDS
    for frame in (
        json.dumps({"type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": sid}}).encode(),
        json.dumps({"type": "ok", "sid": sid, "seq": 1}).encode(),
    )
]


def seq_state(proto: ClientProtocol) -> list[tuple[int | None, bool, str | None]]:
    return [(proto.last_seq(s), proto.is_awaiting_snapshot(s), proto.channel_for(s)) for s in SIDS]


def primed_protocol(validate: bool) -> ClientProtocol:
    """A protocol with every fixture's sid subscribed and numbered, so data frames take the sequenced paths."""
    proto = ClientProtocol(validate_book=validate)
    for frame in PRIMING:
        proto.receive_frame(frame)
    return proto


def exercise(obj: Any, depth: int = 0) -> None:
    """Read every public attribute and property (and call the zero-argument accessors) of a message."""
    if depth > 3 or obj is None or isinstance(obj, str | bytes | int | float | bool):
        return
    if isinstance(obj, list | tuple):
        for item in obj[:8]:
            exercise(item, depth + 1)
        return
    if isinstance(obj, dict):
        for item in list(obj.values())[:8]:
            exercise(item, depth + 1)
        return
    for name, call in _accessors(type(obj)):
        try:
            value = getattr(obj, name)() if call else getattr(obj, name)
        except KalshiError:
            continue  # documented: an inexact or malformed number/timestamp in the frame
        exercise(value, depth + 1)


_ACCESSORS: dict[type, list[tuple[str, bool]]] = {}


def _accessors(cls: type) -> list[tuple[str, bool]]:
    """Public attributes/properties (False) and zero-argument methods (True) of a class, cached."""
    found = _ACCESSORS.get(cls)
    if found is None:
        found = []
        for name, member in inspect.getmembers(cls):
            if name.startswith("_"):
                continue
            if isinstance(member, property) or inspect.ismemberdescriptor(member) or inspect.isgetsetdescriptor(member):
                found.append((name, False))
            elif inspect.isfunction(member) and _zero_arg(member):
                found.append((name, True))
        _ACCESSORS[cls] = found
    return found


def _zero_arg(function: Any) -> bool:
    params = list(inspect.signature(function).parameters.values())[1:]
    return all(p.default is not inspect.Parameter.empty or p.kind is p.VAR_KEYWORD for p in params) and (
        function.__name__ not in {"to_builtins", "replace"}
    )


def check_one_frame(proto: ClientProtocol, data: bytes) -> None:
    before = seq_state(proto)
    result = proto.receive_frame(data)
    if isinstance(result, ProtocolErrorEvent):
        assert seq_state(proto) == before, "a rejected frame changed the sequence state"
        assert len(result.raw_preview) <= 200 and result.raw_preview.isprintable()
        return
    assert isinstance(result, ProtocolEvent | msgspec.Struct)
    message = getattr(result, "message", result)
    exercise(message)
    if isinstance(result, OrderbookDeltaMessage) and proto_validates(proto):
        # Validated on receipt: the book's own conversions cannot fail later.
        assert isinstance(result.msg.price_ticks(), int) and isinstance(result.msg.delta_units(), int)
    if isinstance(result, OrderbookSnapshotMessage) and proto_validates(proto):
        yes, no = result.msg.levels_ticks()
        assert all(isinstance(p, int) and isinstance(u, int) and u >= 0 for p, u in [*yes, *no])


def proto_validates(proto: ClientProtocol) -> bool:
    return bool(proto._validate)


# ----------------------------------------------------------------------------------------------- raw bytes


@settings(max_examples=BYTES_RUNS, **FUZZ)
@given(
    st.sampled_from(RAW),
    st.lists(st.tuples(st.integers(0, 10_000), st.binary(min_size=0, max_size=6)), max_size=4),
    st.integers(0, 10_000),
    st.booleans(),
)
def test_fuzz_spliced_and_truncated_fixture_bytes(
    original: bytes, edits: list[tuple[int, bytes]], cut: int, validate: bool
) -> None:
    buf = bytearray(original)
    for at, chunk in edits:
        at %= len(buf) + 1
        buf[at : at + len(chunk)] = chunk  # overwrite, insert at the end, or delete (empty chunk)
    data = bytes(buf[: max(1, cut % (len(buf) + 1))]) if cut % 3 == 0 else bytes(buf)
    check_one_frame(primed_protocol(validate), data)


def test_pathological_frames_are_rejected_not_raised() -> None:
    proto = primed_protocol(True)
    for data in [
        b"[" * 100_000 + b"]" * 100_000,  # nesting deeper than any recursion limit
        b'{"type":"orderbook_delta","sid":1,"seq":' + b"9" * 5000 + b"}",
        b'{"type":"orderbook_delta","sid":1,"seq":2,"msg":' + b'{"a":' * 20_000 + b"1" + b"}" * 20_000 + b"}",
        b"\xff\xfe\x00\x00",
        b'{"type":"ok","sid":1,"seq":2}' + b"\x00" * 100,
        b"",
        '{"type":"trade","msg":{"market_ticker":"\ud800"}}'.encode("utf-8", "surrogatepass"),
    ]:
        check_one_frame(proto, data)


# ----------------------------------------------------------------------------------------------- JSON mutations


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


def _mutate(doc: Any, data: st.DataObject) -> Any:
    paths = _paths(doc)[1:]
    if not paths:
        return data.draw(json_value)
    path = data.draw(st.sampled_from(paths))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    op = data.draw(st.sampled_from(["replace", "delete", "retype", "wrap", "add", "duplicate"]))
    if op == "replace":
        parent[last] = data.draw(json_value)
    elif op == "delete":
        del parent[last]
    elif op == "retype":
        value = parent[last]
        parent[last] = str(value) if not isinstance(value, str) else data.draw(json_leaf)
    elif op == "wrap":
        parent[last] = [parent[last]] if data.draw(st.booleans()) else {"v": parent[last]}
    elif op == "add" and isinstance(parent, dict):
        parent[data.draw(st.text(max_size=8) | tricky_strings)] = data.draw(json_value)
    elif op == "duplicate" and isinstance(parent, list):
        parent.append(parent[last])
    return doc


@settings(max_examples=MUTATION_RUNS, **FUZZ)
@given(st.sampled_from(range(len(DOCS))), st.data(), st.booleans())
def test_fuzz_structured_mutations_of_every_fixture(index: int, data: st.DataObject, validate: bool) -> None:
    doc = json.loads(json.dumps(DOCS[index][1]))
    for _ in range(data.draw(st.integers(1, 3))):
        doc = _mutate(doc, data)
    check_one_frame(primed_protocol(validate), json.dumps(doc).encode())


# ----------------------------------------------------------------------------------------------- protocol + books


class Exchange:
    """The server side of one orderbook_delta subscription: true books, seq numbering, frames."""

    def __init__(self, rng: random.Random, markets: int) -> None:
        self.rng = rng
        self.sid = 3
        self.seq = 0
        self.books: dict[str, dict[str, dict[int, int]]] = {f"M{i}": {"yes": {}, "no": {}} for i in range(markets)}

    def _frame(self, kind: str, msg: dict[str, Any]) -> bytes:
        self.seq += 1
        return json.dumps({"type": kind, "sid": self.sid, "seq": self.seq, "msg": msg}).encode()

    def snapshot(self, ticker: str) -> bytes:
        book = self.books[ticker]
        levels = {
            f"{side}_dollars_fp": [[f"0.{p:04d}", f"{u // 100}.{u % 100:02d}"] for p, u in sorted(book[side].items())]
            for side in ("yes", "no")
        }
        return self._frame("orderbook_snapshot", {"market_ticker": ticker, **levels})

    def delta(self) -> bytes:
        rng = self.rng
        ticker = rng.choice(sorted(self.books))
        side = rng.choice(("yes", "no"))
        levels = self.books[ticker][side]
        price = rng.choice(sorted(levels)) if levels and rng.random() < 0.6 else rng.randint(1, 9999)
        size = levels.get(price, 0)
        change = rng.randint(-size, 50_000) if size else rng.randint(1, 50_000)
        change = change or 1
        if size + change:
            levels[price] = size + change
        else:
            del levels[price]
        sign = "-" if change < 0 else ""
        magnitude = abs(change)
        return self._frame(
            "orderbook_delta",
            {
                "market_ticker": ticker,
                "price_dollars": f"0.{price:04d}",
                "delta_fp": f"{sign}{magnitude // 100}.{magnitude % 100:02d}",
                "side": side,
            },
        )

    def truth(self, ticker: str) -> Orderbook:
        book = self.books[ticker]
        return Orderbook.from_levels(ticker, book["yes"].items(), book["no"].items())


class Client:
    """ClientProtocol + OrderbookManager composed as KalshiWebSocket composes them (gap -> re-snapshot)."""

    def __init__(self, exchange: Exchange) -> None:
        self.exchange = exchange
        self.proto = ClientProtocol()
        self.books = OrderbookManager()
        self.gaps = 0
        self.proto.receive_frame(json.dumps({"type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": 3}}))

    def receive(self, data: bytes) -> None:
        result = self.proto.receive_frame(data)
        if isinstance(result, OrderbookSnapshotMessage):
            self.books.apply_snapshot_message(result)
        elif isinstance(result, OrderbookDeltaMessage):
            applied = self.books.apply_delta_message(result)
            if applied is not DeltaResult.APPLIED and applied is not DeltaResult.DUPLICATE:
                assert self.books.get(result.msg.market_ticker) is None or not self.ready(result.msg.market_ticker)
        elif isinstance(result, GapDetected):
            self.gaps += 1
            self.repair()
        else:
            assert isinstance(result, ProtocolErrorEvent | DuplicateDropped | AwaitingSnapshotDropped), result

    def repair(self) -> None:
        self.books.mark_all_stale()
        self.proto.reset_sequence(3)
        for ticker in sorted(self.exchange.books):
            self.receive(self.exchange.snapshot(ticker))

    def ready(self, ticker: str) -> bool:
        state = self.books.get(ticker)
        return state is not None and state.has_snapshot

    def check(self) -> None:
        for ticker in self.exchange.books:
            if self.ready(ticker):
                state = self.books.get(ticker)
                assert state is not None
                assert state.view() == self.exchange.truth(ticker), f"{ticker} diverged silently"


def _noise(rng: random.Random, real: bytes) -> bytes:
    choice = rng.randrange(4)
    if choice == 0:
        return real[: rng.randint(1, len(real) - 1)]  # truncated copy (the simulator's malformed fault)
    if choice == 1:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    doc = json.loads(real)
    if choice == 2:
        doc["msg"]["price_dollars" if doc["type"] == "orderbook_delta" else "market_ticker"] = rng.choice(
            ["0.00001", "abc", 5, None, "1.0001"]
        )
    else:
        doc["seq"] = rng.choice(["7", -1, 2**80, 1.5, 0])
    return json.dumps(doc).encode()


@settings(max_examples=STREAM_RUNS, **FUZZ)
@given(st.integers(0, 2**32), st.integers(1, 4), st.integers(20, 250))
def test_fuzz_noisy_stream_never_corrupts_a_book(seed: int, markets: int, length: int) -> None:
    rng = random.Random(seed)
    exchange = Exchange(rng, markets)
    client = Client(exchange)
    for ticker in sorted(exchange.books):
        client.receive(exchange.snapshot(ticker))
    held: bytes | None = None
    lost = 0
    for _ in range(length):
        real = exchange.delta()
        roll = rng.random()
        if roll < 0.08:
            client.receive(_noise(rng, real))  # garbage before the real frame
            client.receive(real)
        elif roll < 0.12:
            lost += 1
            client.receive(_noise(rng, real))  # the real frame arrives corrupted: its change is lost
            continue  # the next real frame reveals the gap
        elif roll < 0.15:
            client.receive(real)
            client.receive(real)  # duplicated
        elif roll < 0.18 and held is None:
            held = real  # reordered: sent after the next one
            continue
        else:
            client.receive(real)
        if held is not None:
            client.receive(held)
            held = None
        client.check()
    if held is not None:
        client.receive(held)
    client.receive(exchange.delta())  # one clean frame reveals any trailing loss
    client.check()
    for ticker in exchange.books:
        assert client.ready(ticker), "every book is rebuilt after a repair"
    if lost:
        assert client.gaps >= 1


# ----------------------------------------------------------------------------------------------- OrderbookManager

prices = st.integers(-5, 10_005) | st.sampled_from([1, 2, 5000, 9998, 9999])
sizes = st.integers(-(10**6), 10**9)
book_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("snapshot"),
            st.lists(st.tuples(prices, sizes), max_size=6),
            st.lists(st.tuples(prices, sizes), max_size=6),
        ),
        st.tuples(st.just("delta"), st.sampled_from(["yes", "no", "YES", "", "maybe"]), prices, sizes),
        st.tuples(st.just("stale")),
    ),
    max_size=40,
)


class _Delta:
    __slots__ = ("msg", "seq")

    def __init__(self, seq: int | None, side: str, price: int, units: int) -> None:
        self.seq = seq
        self.msg = _DeltaBody(side, price, units)


class _DeltaBody:
    market_ticker = "M"
    clock = None

    def __init__(self, side: str, price: int, units: int) -> None:
        self.side = side
        self._price = price
        self._units = units

    def price_ticks(self) -> int:
        return self._price

    def delta_units(self) -> int:
        return self._units


class _Snapshot:
    def __init__(self, seq: int | None, yes: list[tuple[int, int]], no: list[tuple[int, int]]) -> None:
        self.seq = seq
        self.msg = _SnapshotBody(yes, no)


class _SnapshotBody:
    market_ticker = "M"
    clock = None

    def __init__(self, yes: list[tuple[int, int]], no: list[tuple[int, int]]) -> None:
        self._levels = (yes, no)

    def levels_ticks(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return self._levels


def _valid_snapshot(levels: list[tuple[int, int]]) -> dict[int, int] | None:
    prices_seen = [p for p, _ in levels]
    if any(not 1 <= p <= 9999 or u < 0 for p, u in levels) or len(set(prices_seen)) != len(prices_seen):
        return None
    return {p: u for p, u in levels if u}


@settings(max_examples=BOOK_RUNS, **FUZZ)
@given(book_ops, st.booleans())
# Found by this fuzzer: a snapshot repeating a zero-size level was accepted (a repeat is refused, whatever sizes).
@example(ops=[("snapshot", [], [(1, 0), (1, 0)])], with_seq=False)
@example(ops=[("snapshot", [(5, 0), (5, 7)], [])], with_seq=True)
def test_fuzz_book_manager_against_a_reference_model(ops: list[tuple[Any, ...]], with_seq: bool) -> None:
    manager = OrderbookManager()
    model: dict[str, dict[int, int]] | None = None
    for seq, op in enumerate(ops, start=1):
        number = seq if with_seq else None
        state = manager.get("M")
        before = state.view() if state is not None and state.has_snapshot else None
        earlier = None if before is None else Orderbook.from_levels("M", before.yes_ticks, before.no_ticks)
        if op[0] == "snapshot":
            yes, no = _valid_snapshot(op[1]), _valid_snapshot(op[2])
            try:
                manager.apply_snapshot_message(_Snapshot(number, op[1], op[2]))
            except BookError:
                assert yes is None or no is None, "a valid snapshot was refused"
                model = None  # a refused snapshot supersedes the old book: it must not be shown
            else:
                assert yes is not None and no is not None, "an invalid snapshot was accepted"
                model = {"yes": yes, "no": no}
        elif op[0] == "delta":
            _, side, price, units = op
            result = manager.apply_delta_message(_Delta(number, side, price, units))
            if result is DeltaResult.APPLIED:
                assert model is not None and side in ("yes", "no") and 1 <= price <= 9999
                level = model[side].get(price, 0) + units
                assert level >= 0
                if level:
                    model[side][price] = level
                else:
                    model[side].pop(price, None)
            else:
                after = manager.get("M")
                now = after.view() if after is not None and after.has_snapshot else None
                assert now == before or (now is None and before is None), "a refused delta changed the book"
        else:
            manager.mark_stale("M")
            model = None
        state = manager.get("M")
        if model is None:
            assert state is None or not state.has_snapshot
            if state is not None:
                try:
                    state.view()
                except BookError:
                    pass
                else:
                    raise AssertionError("a stale book produced a view")
        else:
            assert state is not None and state.has_snapshot
            view = state.view()
            assert view == Orderbook.from_levels("M", model["yes"].items(), model["no"].items())
            if before is not None and before is not view:
                assert before == earlier, "an earlier view changed after the book moved on"


# ----------------------------------------------------------------------------------------------- regressions


def test_snapshot_levels_with_invalid_utf8_are_a_protocol_error() -> None:
    """Found by the byte fuzzer: the levels are kept as msgspec.Raw, so invalid UTF-8 inside them surfaced as a
    bare UnicodeDecodeError from receive_frame (validate_book) or from levels_ticks() in the application."""
    data = (
        b'{"type":"orderbook_snapshot","sid":2,"seq":2,"msg":{"market_ticker":"M",'
        b'"yes_dollars_fp":[["0.0800","\x80300.00"]]}}'
    )
    for validate in (True, False):
        proto = primed_protocol(validate)
        result = proto.receive_frame(data)
        if validate:
            assert isinstance(result, ProtocolErrorEvent)
        else:
            assert isinstance(result, OrderbookSnapshotMessage)
            with pytest.raises(KalshiError):
                result.msg.levels_ticks()
