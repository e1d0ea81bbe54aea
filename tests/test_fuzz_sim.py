"""Fuzzing the simulator's inputs (hypothesis): the WebSocket command parser and the REST handlers.

* ``WsSession.receive`` (sans-I/O) gets random and mutated commands: it never raises, and every frame it queues
  is one of the spec's messages (validated against asyncapi.yaml), errors carrying a spec error code; a command
  with a usable id is answered under that id; ``list_subscriptions`` always agrees with the acks sent.
* Every REST operation of openapi.yaml (served by a simulator on loopback) gets random path parameters, query
  strings and JSON bodies, signed and unsigned: never a 5xx other than 501 (not modelled), and every error is a
  JSON body ``{"error": {"code": ..., "message": ...}}`` that says what was wrong.

Run counts are the ``max_examples`` below (see the closing note of issue 7 for the totals).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hypothesis_profile  # derandomized unless HYPOTHESIS_PROFILE says otherwise
from asyncapi_schema import validate_message
from kalshi.auth import KalshiAuth
from kalshi.config import REST_PATH
from kalshi.errors import WS_ERROR_CODES
from kalshi.rest import OPERATIONS
from kalshi.sim import Simulator, rest_controls
from kalshi.sim.rest import implemented_operations
from kalshi.sim.rest.controls import ANNOUNCEMENTS
from kalshi.sim.rest.retired import V1_ORDER_WRITES
from kalshi.sim.ws.fanout import ALL_CHANNELS, Outbox
from kalshi.sim.ws.session import SessionLimits, WsSession

COMMAND_RUNS = 600
BYTES_RUNS = 1000
SEQUENCE_RUNS = 150
REST_RUNS = 800
FUZZ = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], database=None)

tricky_strings = st.sampled_from(
    ["", " ", "all", "orderbook_delta", "ticker", "fill", "get_snapshot", "add_markets", "delete_markets",
     "subscribe_indices", "indexlist", "self", "0.5600", "-1", "NaN", "\x00", "\u202e", "🙂", "x" * 300,
     "ticker\n", "../../etc/passwd", "%00", "{}", "[]", "true", "null"]
)  # fmt: skip
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**66), max_value=2**66)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | tricky_strings
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10) | tricky_strings, inner, max_size=4)
    ),
    max_leaves=10,
)

# -------------------------------------------------------------------------------------------- WebSocket commands

SIM = Simulator(seed=11, markets=4, rate=0.0, lifecycle=False)  # never started: its hub and feeds are sans-I/O
TICKERS = SIM.tickers
MARKET_IDS = [SIM.feeds.market_id(t) for t in TICKERS]
ACTIONS = ["add_markets", "delete_markets", "get_snapshot", "subscribe_indices", "unsubscribe_indices", "indexlist",
           "subscribe_underlyings", "unsubscribe_underlyings", "underlying_list", "resubscribe", ""]  # fmt: skip

# Weighted by repetition: hypothesis favours boundary values (0, first elements), so the odd choices come last.
MOSTLY = ["valid"] * 8 + ["odd"]
ids = st.sampled_from(MOSTLY).flatmap(
    lambda kind: st.integers(1, 50) if kind == "valid" else st.integers(-(2**40), 2**70) | json_leaf
)
channel_lists = st.lists(
    st.sampled_from([*ALL_CHANNELS, *ALL_CHANNELS, "multivariate", "nope", ""]), min_size=1, max_size=3
)
market_lists = st.lists(st.sampled_from(TICKERS) | st.text(max_size=8), max_size=5)
sid_values = st.integers(-2, 12) | json_leaf


def mostly(valid: st.SearchStrategy[Any], odd: st.SearchStrategy[Any] = json_leaf) -> st.SearchStrategy[Any]:
    """``valid`` eight times in nine, ``odd`` otherwise."""
    return st.sampled_from(MOSTLY).flatmap(lambda kind: valid if kind == "valid" else odd)


SUBSCRIBE_PARAMS: list[tuple[str, st.SearchStrategy[Any]]] = [
    ("market_tickers", mostly(st.lists(st.sampled_from(TICKERS), min_size=1, max_size=3), market_lists)),
    ("market_ticker", mostly(st.sampled_from(TICKERS))),
    ("market_ids", mostly(st.lists(st.sampled_from(MARKET_IDS), min_size=1, max_size=3))),
    ("send_initial_snapshot", mostly(st.booleans())),
    ("use_yes_price", mostly(st.booleans())),
    ("skip_ticker_ack", mostly(st.booleans())),
    ("shard_factor", mostly(st.integers(1, 100), st.integers(-2, 120) | json_leaf)),
    ("shard_key", mostly(st.integers(0, 3), st.integers(-2, 120) | json_leaf)),
    ("user_filter", mostly(st.sampled_from(["", "self"]))),
    ("index_ids", mostly(st.lists(st.sampled_from(["all", "BRTI", "ETHUSD_RTI"]), min_size=1, max_size=3))),
    ("underlying_tickers", mostly(st.lists(st.sampled_from(["all", "BTC", "ETH"]), min_size=1, max_size=3))),
]
rarely = st.sampled_from([False, False, False, True])


@st.composite
def commands(draw: st.DrawFn) -> Any:
    name = draw(st.sampled_from(["subscribe", "subscribe", "subscribe", "update_subscription", "update_subscription",
                                 "unsubscribe", "list_subscriptions", "bogus"]))  # fmt: skip
    if draw(st.sampled_from(MOSTLY)) == "odd":
        name = draw(json_leaf)
    params: dict[str, Any] = {}
    if name == "subscribe":
        params["channels"] = draw(mostly(channel_lists, json_value))
        for key, values in SUBSCRIBE_PARAMS:
            if draw(rarely):
                params[key] = draw(values)
    elif name == "update_subscription":
        params["action"] = draw(mostly(st.sampled_from(ACTIONS)))
        params["sid" if draw(st.sampled_from(MOSTLY)) == "valid" else "sids"] = draw(
            mostly(st.integers(1, 6), sid_values | st.lists(sid_values, max_size=3))
        )
        for key, values in SUBSCRIBE_PARAMS[:3] + SUBSCRIBE_PARAMS[-2:]:
            if draw(rarely):
                params[key] = draw(values)
    elif name == "unsubscribe":
        params["sids"] = draw(mostly(st.lists(st.integers(1, 6), min_size=1, max_size=3), json_value))
    command: Any = {"id": draw(ids), "cmd": name}
    if params or draw(st.booleans()):
        command["params"] = params if draw(st.sampled_from(MOSTLY)) == "valid" else draw(json_value)
    damage = draw(st.sampled_from(["none"] * 16 + ["not_an_object", "missing_key"]))
    if damage == "not_an_object":
        command = draw(json_value)
    elif damage == "missing_key":
        command.pop(draw(st.sampled_from(sorted(command))), None)
    return command


def new_session(authenticated: bool = True) -> tuple[WsSession, Outbox]:
    outbox = Outbox(1, account="acct-fuzz" if authenticated else None, limit=1_000_000)
    clock = itertools.count().__next__  # one second per command: the token bucket never runs dry
    session = WsSession(
        outbox, SIM.hub, SIM.feeds, authenticated=authenticated, limits=SessionLimits(), clock=lambda: float(clock())
    )
    return session, outbox


def take(outbox: Outbox) -> list[dict[str, Any]]:
    frames = [json.loads(frame) for frame in outbox.frames]
    outbox.frames.clear()
    for frame in frames:
        validate_message(frame)
        if frame["type"] == "error":
            code = frame["msg"]["code"]
            assert code in WS_ERROR_CODES and frame["msg"]["msg"], frame
    return frames


def _usable_id(command: Any) -> int | None:
    if not isinstance(command, dict):
        return None
    cmd_id = command.get("id")
    return cmd_id if type(cmd_id) is int and cmd_id > 0 else None


@settings(max_examples=COMMAND_RUNS, **FUZZ)
@given(commands(), st.booleans(), st.booleans())
def test_fuzz_command_parser_answers_every_command_with_spec_frames(
    command: Any, authenticated: bool, as_text: bool
) -> None:
    session, outbox = new_session(authenticated)
    try:
        encoded = json.dumps(command)
        session.receive(encoded if as_text else encoded.encode())
        frames = take(outbox)
        assert frames, "every command gets an answer"
        cmd_id = _usable_id(command)
        if cmd_id is not None and cmd_id < 2**63:
            assert any(f.get("id") == cmd_id for f in frames), (command, frames)
        SIM.step(5)  # data for whatever got subscribed, through the real fan-out
        take(outbox)
    finally:
        session.close()


@settings(max_examples=BYTES_RUNS, **FUZZ)
@given(st.binary(max_size=200))
def test_fuzz_command_parser_with_random_bytes(data: bytes) -> None:
    session, outbox = new_session()
    try:
        session.receive(data)
        frames = take(outbox)
        assert frames and all(f["type"] in ("error", "list_subscriptions", "subscribed", "ok", "unsubscribed")
                              for f in frames)  # fmt: skip
    finally:
        session.close()


@settings(max_examples=SEQUENCE_RUNS, **FUZZ)
@given(st.lists(commands(), min_size=1, max_size=12))
def test_fuzz_command_sequences_keep_subscriptions_consistent(sequence: list[Any]) -> None:
    session, outbox = new_session()
    live: dict[int, str] = {}
    try:
        for command in sequence:
            session.receive(json.dumps(command))
            for frame in take(outbox):
                if frame["type"] == "subscribed":
                    live[frame["msg"]["sid"]] = frame["msg"]["channel"]
                elif frame["type"] == "unsubscribed" or (
                    frame["type"] == "error" and frame["msg"]["code"] in (10, 25) and "sid" in frame
                ):
                    live.pop(frame["sid"], None)
        session.receive(json.dumps({"id": 999, "cmd": "list_subscriptions"}))
        (answer,) = [f for f in take(outbox) if f.get("id") == 999]
        listed = {item["sid"]: item["channel"] for item in answer["msg"]}  # "ok" (current) or "list_subscriptions"
        assert listed == live
        assert set(session.subscriptions) == set(live)
    finally:
        session.close()


# -------------------------------------------------------------------------------------------- REST handlers

_OPENAPI = Path(__file__).resolve().parents[1].parent / "shared" / "specs" / "openapi.yaml"
_LOCAL_OPENAPI = Path(__file__).resolve().parents[1] / "specs" / "openapi.yaml"


def _spec() -> dict[str, Any]:
    path = _LOCAL_OPENAPI if _LOCAL_OPENAPI.exists() else _OPENAPI
    with path.open(encoding="utf-8") as fh:
        doc: dict[str, Any] = yaml.safe_load(fh)
    return doc


def _resolve(doc: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _operation_inputs() -> dict[str, tuple[list[str], list[str]]]:
    """operationId -> (query parameter names, body property names) from openapi.yaml."""
    doc = _spec()
    out: dict[str, tuple[list[str], list[str]]] = {}
    for item in doc["paths"].values():
        for op in item.values():
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            params = [_resolve(doc, p) for p in op.get("parameters", [])]
            query = [p["name"] for p in params if p.get("in") == "query"]
            body = _resolve(doc, op.get("requestBody", {}))
            schema = _resolve(doc, body.get("content", {}).get("application/json", {}).get("schema", {}))
            out[op["operationId"]] = (query, sorted(_resolve(doc, schema).get("properties", {})))
    return out


INPUTS = _operation_inputs()
OPS = sorted(OPERATIONS.values(), key=lambda op: op.operation_id)
# The fuzzer aims at the operations the simulator models (the others answer 501 at once: checked separately).
MODELLED = [op for op in OPS if op.operation_id in implemented_operations()]


class SimThread:
    """A simulator on loopback in a thread of its own, so hypothesis can drive it with a blocking client."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.url = ""
        self.auth: KalshiAuth | None = None
        self.tickers: list[str] = []
        self.implemented: frozenset[str] = frozenset()
        self.client: httpx.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="sim-rest-fuzz")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with Simulator(seed=12, markets=3, rate=0.0, lifecycle=False) as sim:
            rest_controls(sim).limits.enabled = False  # the fuzzer is not a rate-limit test
            self.implemented = implemented_operations()
            self.auth, _ = sim.create_account_auth()
            self.url = sim.url
            self.tickers = sim.tickers
            self.ready.set()
            await self._stop.wait()

    def __enter__(self) -> SimThread:
        self._thread.start()
        assert self.ready.wait(30), "simulator thread did not start"
        self.client = httpx.Client(base_url=self.url, timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def rest_sim() -> Iterator[SimThread]:
    with SimThread() as sim:
        yield sim


# "." and ".." are left out: HTTP clients normalise them away, so the request would reach another route (unknown
# paths are covered by test_unknown_rest_paths_get_a_json_error).
path_values = st.sampled_from(["T", "0", "-1", "%20", "x" * 200, "ñ", "...", "KX-FUZZ"]) | st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#"), min_size=1, max_size=20
).filter(lambda text: text not in (".", ".."))
query_values = st.one_of(st.text(max_size=12), tricky_strings, st.integers(-(2**66), 2**66).map(str), st.just(""))


@settings(max_examples=REST_RUNS, **FUZZ)
@given(st.sampled_from(MODELLED), st.data(), st.booleans())
def test_fuzz_rest_handlers_answer_4xx_with_a_clear_json_body(
    rest_sim: SimThread, op: Any, data: Any, signed: bool
) -> None:
    query_names, body_names = INPUTS.get(op.operation_id, ([], []))
    path = op.path
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        value = data.draw(st.sampled_from(rest_sim.tickers) | path_values, label="path")
        path = path[:start] + urllib.parse.quote(value, safe="") + path[end + 1 :]
    query = {
        name: data.draw(query_values, label=name)
        for name in data.draw(st.lists(st.sampled_from([*query_names, "zzz"]), max_size=4, unique=True))
    }
    body: Any = None
    if op.method in ("POST", "PUT", "DELETE", "PATCH"):
        names = [*body_names, "zzz"]
        body = {
            name: data.draw(json_value, label=name)
            for name in data.draw(st.lists(st.sampled_from(names), max_size=6, unique=True))
        }
        if data.draw(st.integers(0, 9)) == 0:
            body = data.draw(json_value)
    full_path = REST_PATH + path
    headers = {"Content-Type": "application/json"}
    if signed:
        assert rest_sim.auth is not None
        headers.update(rest_sim.auth.headers(op.method, full_path))
    content = None if body is None else json.dumps(body).encode()
    if body is not None and data.draw(st.integers(0, 19)) == 0:
        content = data.draw(st.binary(max_size=40))  # not JSON at all
    assert rest_sim.client is not None
    response = rest_sim.client.request(op.method, full_path, params=query, content=content, headers=headers)
    status = response.status_code
    assert status < 500 or status == 501, (op.operation_id, status, response.text[:300])
    if status >= 400:
        assert response.headers.get("content-type", "").startswith("application/json"), response.text[:200]
        error = msgspec.json.decode(response.content)["error"]
        assert isinstance(error["code"], str) and error["code"], error
        assert isinstance(error["message"], str) and len(error["message"]) >= 8, error
        if status == 401:
            assert not signed or op.requires_auth is False or error["code"] != "", error
    else:
        if response.content:
            msgspec.json.decode(response.content)  # a success is JSON


def test_unsigned_private_operations_get_401_json(rest_sim: SimThread) -> None:
    private = [
        op
        for op in OPS
        if op.requires_auth and "{" not in op.path and op.method == "GET" and op.operation_id in rest_sim.implemented
    ]
    assert len(private) >= 5
    with httpx.Client(base_url=rest_sim.url, timeout=10) as client:
        for op in private:
            response = client.get(REST_PATH + op.path)
            assert response.status_code == 401, op.operation_id
            assert msgspec.json.decode(response.content)["error"]["code"]


def test_unknown_rest_paths_get_a_json_error(rest_sim: SimThread) -> None:
    """An unknown path or a wrong method is an error like any other: JSON ``{"error": {"code", "message"}}``
    (aiohttp's default is a text/plain "404: Not Found", which a client cannot parse as an API error)."""
    cases = [
        ("GET", REST_PATH + "/no/such/operation", 404, None),
        ("DELETE", REST_PATH + "/exchange/status", 405, "GET"),
        ("GET", REST_PATH + "/exchange/status\n", 404, None),
        ("GET", REST_PATH + "/markets/{", 404, None),
        ("POST", REST_PATH + "/markets/}x{", 404, None),
        ("PUT", REST_PATH + "/portfolio/orders/{x}", 404, None),
        ("PATCH", REST_PATH + "/portfolio/orders/o-1", 405, "DELETE, GET"),
        ("POST", "/trade-api/ws/v2", 405, "GET"),
        ("GET", "/", 404, None),
        ("GET", "/favicon.ico\n", 404, None),
    ]
    with httpx.Client(base_url=rest_sim.url, timeout=10) as client:
        for method, path, status, allow in cases:
            response = client.request(method, urllib.parse.quote(path))
            assert response.status_code == status, (method, path, response.text)
            assert response.headers.get("content-type", "").startswith("application/json"), response.text
            error = msgspec.json.decode(response.content)["error"]
            assert error["code"] in ("not_found", "method_not_allowed") and len(error["message"]) > 10
            assert response.headers.get("Allow") == allow, (method, path)
            if allow is not None:
                assert method not in allow and allow in error["message"]


# Every (method, path template) the simulator routes: the spec's operations, the older announcements and the
# retired V1 order writes (410). A placeholder matches one segment holding neither "{" nor "}" (aiohttp's rule).
ROUTED = [(op.method, op.path) for op in [*OPERATIONS.values(), ANNOUNCEMENTS]] + [
    (r.method, r.path) for r in V1_ORDER_WRITES
]


def methods_routed(path: str) -> set[str]:
    """The methods some route accepts on ``path`` (below the REST prefix)."""
    segments = path.split("/")
    found = set()
    for method, template in ROUTED:
        parts = template.split("/")
        if len(parts) == len(segments) and all(
            (p.startswith("{") and s != "" and "{" not in s and "}" not in s) or p == s
            for p, s in zip(parts, segments, strict=True)
        ):
            found.add(method)
    return found


# Segments as a client sends them: "%" is left out (it would decode into another segment), "." and ".." too.
segment = st.one_of(
    st.sampled_from(["markets", "portfolio", "orders", "events", "batched", "{", "}", "{x}", "\n", "a\nb", "T"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/?#%"), min_size=1, max_size=8),
).filter(lambda text: text not in (".", ".."))
spec_like = st.sampled_from(sorted({t for _, t in ROUTED})).flatmap(
    lambda template: st.tuples(*[st.just(p) if not p.startswith("{") else segment for p in template.split("/")[1:]])
)


@settings(max_examples=300, **FUZZ)
@given(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
    st.one_of(spec_like, st.lists(segment, min_size=1, max_size=4).map(tuple)),
)
def test_fuzz_every_path_answers_json_404_or_405_with_allow(
    rest_sim: SimThread, method: str, segments: tuple[str, ...]
) -> None:
    path = "/" + "/".join(segments)
    assert rest_sim.client is not None
    # Percent-encoded on the wire (as any client sends "\n", "{" or "ñ"); the server matches the decoded path.
    response = rest_sim.client.request(
        method, REST_PATH + "/" + "/".join(urllib.parse.quote(s, safe="") for s in segments)
    )
    status = response.status_code
    assert status < 500 or status == 501, (method, path, status, response.text[:200])
    if response.content or status >= 400:
        assert response.headers.get("content-type", "").startswith("application/json"), (method, path)
    routed = methods_routed(path)
    if status >= 400:
        code = msgspec.json.decode(response.content)["error"]["code"]
    if not routed:
        assert status == 404 and code == "not_found", (method, path, status)
    elif method not in routed:
        assert status == 405 and code == "method_not_allowed", (method, path, status)
        assert set(response.headers["Allow"].split(", ")) == routed
    else:
        assert status not in (405,) and response.headers.get("Allow") is None, (method, path, status)
        assert status < 400 or code not in ("not_found", "method_not_allowed"), (method, path, code)


def test_operations_not_modelled_answer_501_naming_the_operation(rest_sim: SimThread) -> None:
    missing = [op for op in OPS if op.operation_id not in rest_sim.implemented and "{" not in op.path]
    assert rest_sim.auth is not None and rest_sim.client is not None
    for op in missing[:20]:
        headers = rest_sim.auth.headers(op.method, REST_PATH + op.path)
        response = rest_sim.client.request(op.method, REST_PATH + op.path, headers=headers, json={})
        assert response.status_code == 501, op.operation_id
        assert op.operation_id in msgspec.json.decode(response.content)["error"]["message"]


def test_hypothesis_is_derandomized_unless_exploring() -> None:
    """The suite's examples are the same on every run (issue 12): the ``ci`` profile is the default."""
    active = settings.default
    if hypothesis_profile.ACTIVE == "ci":
        assert active.derandomize and active.database is None
    else:
        assert not active.derandomize
    derandomized = settings.get_profile("ci")
    assert derandomized.derandomize and derandomized.deadline is None
