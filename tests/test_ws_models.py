"""WebSocket wire models: every spec example, every fixture, legacy shapes, exact accessors, tolerance."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from kalshi.errors import KalshiCommandError, KalshiProtocolError
from kalshi.ws import models as m
from kalshi.ws.models import (
    CHANNEL_MESSAGES,
    CHANNELS,
    COMMAND_DECODER,
    COMMAND_ENCODER,
    CONTROL_TYPES,
    MESSAGE_DECODER,
    MESSAGE_ENCODER,
    MESSAGE_TYPES,
    SEQUENCED_TYPES,
    CommunicationsMessage,
    ErrorMessage,
    OkMessage,
    OrderbookDeltaMessage,
    OrderbookSnapshotMessage,
    SubscribeCommand,
    SubscribeParams,
    TickerMessage,
    UnknownMessage,
    decode_message,
    message_market,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "ws"
# The spec lives in the repository's specs/ when vendored there, else in the shared workspace.
SPECS = next(
    (p for p in (ROOT / "specs", Path("/work/shared/specs")) if (p / "asyncapi.yaml").exists()), ROOT / "specs"
)
CURRENT_SPEC = SPECS / "asyncapi.yaml"
OLDER_SPECS = sorted((SPECS / "older").glob("asyncapi.*.yaml"))


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 scalars: ``yes``/``no``/``on``/``off`` stay strings and timestamps stay strings."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _load_spec(path: Path) -> dict[str, Any]:
    with path.open() as fh:
        loaded: dict[str, Any] = yaml.load(fh, _Yaml12Loader)  # a SafeLoader subclass
    return loaded


def _examples(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for name, message in spec["components"]["messages"].items():
        for example in message.get("examples") or []:
            payload = example.get("payload")
            if isinstance(payload, dict):
                found.append((name, example.get("name", "?"), payload))
    return found


SPEC = _load_spec(CURRENT_SPEC) if CURRENT_SPEC.exists() else {"components": {"messages": {}, "schemas": {}}}
SERVER_EXAMPLES = [e for e in _examples(SPEC) if "type" in e[2]]
COMMAND_EXAMPLES = [e for e in _examples(SPEC) if "cmd" in e[2]]
OLDER_EXAMPLES = [
    (path.name, name, example, payload)
    for path in OLDER_SPECS
    for name, example, payload in _examples(_load_spec(path))
    if "type" in payload
]


def _frame(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


# ----------------------------------------------------------------------------- the spec, all of it


def test_spec_is_present_and_rich() -> None:
    assert len(SERVER_EXAMPLES) >= 35
    assert len(COMMAND_EXAMPLES) >= 15
    assert OLDER_EXAMPLES


@pytest.mark.parametrize(
    ("name", "example", "payload"), SERVER_EXAMPLES, ids=[f"{n}-{e}" for n, e, _ in SERVER_EXAMPLES]
)
def test_every_spec_example_decodes_to_its_class(name: str, example: str, payload: dict[str, Any]) -> None:
    decoded = MESSAGE_DECODER.decode(_frame(payload))
    assert type(decoded) is MESSAGE_TYPES[payload["type"]]
    assert decoded.type == payload["type"]
    if "sid" in payload:
        assert decoded.sid == payload["sid"]
    if "seq" in payload:
        assert decoded.seq == payload["seq"]


@pytest.mark.parametrize(
    ("spec", "name", "example", "payload"), OLDER_EXAMPLES, ids=[f"{s}-{n}-{e}" for s, n, e, _ in OLDER_EXAMPLES]
)
def test_every_older_spec_example_decodes(spec: str, name: str, example: str, payload: dict[str, Any]) -> None:
    decoded = decode_message(_frame(payload))
    assert type(decoded) is MESSAGE_TYPES[payload["type"]]


def _schema(ref: str) -> dict[str, Any]:
    node: Any = SPEC
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


def _server_payload_schemas() -> dict[str, list[dict[str, Any]]]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for message in SPEC["components"]["messages"].values():
        ref = message.get("payload", {}).get("$ref")
        if not ref:
            continue
        schema = _schema(ref)
        const = schema.get("properties", {}).get("type", {}).get("const")
        if const:
            by_type.setdefault(const, []).append(schema)
    return by_type


def test_every_spec_message_type_has_a_class() -> None:
    spec_types = set(_server_payload_schemas())
    assert spec_types, "no server message schemas found"
    assert spec_types <= set(MESSAGE_TYPES)
    # The catalogue's list reply type, and the retired lookup, are known too.
    assert {"list_subscriptions", "multivariate_lookup"} <= set(MESSAGE_TYPES)


def test_sequenced_types_match_the_spec() -> None:
    with_seq = {
        kind
        for kind, schemas in _server_payload_schemas().items()
        if all("seq" in s.get("required", []) for s in schemas)
    }
    assert with_seq - CONTROL_TYPES == SEQUENCED_TYPES - {"multivariate_lookup"}
    for kind in ("ticker", "fill", "market_position", "user_order"):
        assert kind not in SEQUENCED_TYPES


def test_channels_match_the_spec_enum() -> None:
    enum = _schema("#/components/schemas/subscribeCommandPayload")["properties"]["params"]["properties"]["channels"][
        "items"
    ]["enum"]
    assert set(CHANNELS) == set(enum)
    assert set(CHANNEL_MESSAGES) == set(CHANNELS) | {"multivariate"}


def test_channel_map_covers_every_data_class() -> None:
    mapped = {cls for classes in CHANNEL_MESSAGES.values() for cls in classes}
    data_classes = {cls for kind, cls in MESSAGE_TYPES.items() if kind not in CONTROL_TYPES}
    assert mapped == data_classes


def test_class_type_attribute_is_the_wire_tag() -> None:
    for kind, cls in MESSAGE_TYPES.items():
        assert cls.type == kind
        assert cls.__struct_config__.tag == kind


@pytest.mark.parametrize(
    ("name", "example", "payload"), COMMAND_EXAMPLES, ids=[f"{n}-{e}" for n, e, _ in COMMAND_EXAMPLES]
)
def test_every_command_example_round_trips(name: str, example: str, payload: dict[str, Any]) -> None:
    command = COMMAND_DECODER.decode(_frame(payload))
    assert command.cmd == payload["cmd"]
    assert json.loads(COMMAND_ENCODER.encode(command)) == payload


def test_command_encoding_omits_unset_params() -> None:
    cmd = SubscribeCommand(id=4, params=SubscribeParams(channels=["ticker"], market_tickers=["A"]))
    assert (
        COMMAND_ENCODER.encode(cmd)
        == b'{"cmd":"subscribe","id":4,"params":{"channels":["ticker"],"market_tickers":["A"]}}'
    )


# ----------------------------------------------------------------------------- fixtures

FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


def test_one_fixture_per_message_type() -> None:
    names = {p.stem for p in FIXTURE_FILES}
    assert set(MESSAGE_TYPES) <= names


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=[p.stem for p in FIXTURE_FILES])
def test_fixture_decodes_and_re_encodes(path: Path) -> None:
    data = path.read_bytes()
    payload = json.loads(data)
    decoded = decode_message(data)
    assert type(decoded) is MESSAGE_TYPES[payload["type"]]
    # Encoding gives back wire names (legacy fields included) and decodes to the same value.
    encoded = MESSAGE_ENCODER.encode(decoded)
    assert decode_message(encoded) == decoded
    body = json.loads(encoded).get("msg")
    if isinstance(body, dict):
        # Every field of the fixtures is modelled: nothing is lost on a decode/encode round trip.
        assert set(body) == {key for key, value in payload["msg"].items() if value is not None}


def _fixture(name: str) -> Any:
    return decode_message((FIXTURES / f"{name}.json").read_bytes())


# ----------------------------------------------------------------------------- exact accessors, current and legacy


def test_ticker_current_accessors_are_exact_decimals() -> None:
    t = _fixture("ticker")
    assert isinstance(t, TickerMessage)
    p = t.msg
    assert p.yes_bid == Decimal("0.4500") and isinstance(p.yes_bid, Decimal)
    assert p.yes_ask == Decimal("0.5300")
    assert p.price == Decimal("0.4800")
    assert p.volume == Decimal("33896.00")
    assert p.open_interest == Decimal("20422.00")
    assert p.yes_bid_size == Decimal("300.00")
    assert p.last_trade_size == Decimal("25.00")
    assert p.dollar_volume == 16948
    assert p.timestamp_ms == 1669149841000
    assert p.yes_bid_cents is None


def test_ticker_legacy_cents_read_through_the_same_names() -> None:
    p = _fixture("ticker_legacy_cents").msg
    assert p.yes_bid_dollars is None
    assert p.yes_bid_cents == 45
    assert p.yes_bid == Decimal("0.45")
    assert p.yes_ask == Decimal("0.53")
    assert p.price == Decimal("0.48")
    assert p.volume == Decimal(33896)
    assert p.open_interest == Decimal(20422)
    assert p.timestamp_ms == 1669149841 * 1000
    assert _fixture("ticker_legacy_cents").seq == 100


def test_ticker_prefers_dollars_over_legacy_cents() -> None:
    p = decode_message(
        b'{"type":"ticker","sid":1,"msg":{"market_ticker":"A","yes_bid":45,"yes_bid_dollars":"0.4567"}}'
    ).msg
    assert p.yes_bid == Decimal("0.4567")


def test_snapshot_levels_current_fixed_point() -> None:
    snap = _fixture("orderbook_snapshot")
    assert isinstance(snap, OrderbookSnapshotMessage)
    yes, no = snap.msg.levels_ticks()
    assert yes == [(800, 30000), (2200, 33300)]
    assert no == [(5400, 2000), (5600, 14600)]


def test_snapshot_levels_legacy_shapes() -> None:
    yes, no = _fixture("orderbook_snapshot_legacy_cents").msg.levels_ticks()
    assert yes == [(800, 30000), (2200, 33300)]
    assert no == [(5400, 2000), (5600, 14600)]
    # Both shapes present: the fixed-point one wins.
    yes_fp, _ = _fixture("orderbook_snapshot_legacy").msg.levels_ticks()
    assert yes_fp == [(800, 30000), (2200, 33300)]


def test_snapshot_legacy_cents_only() -> None:
    snap = decode_message(b'{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"market_ticker":"A","yes":[[8,3]]}}')
    assert snap.msg.levels_ticks() == ([(800, 300)], [])


def test_snapshot_absent_sides_are_empty() -> None:
    snap = decode_message(b'{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"market_ticker":"A"}}')
    assert snap.msg.levels_ticks() == ([], [])


@pytest.mark.parametrize(
    "levels",
    [
        '[["0.12345","1.00"]]',  # sub-tick price
        '[["1.5000","1.00"]]',  # above $1
        '[["0.5000","-1.00"]]',  # negative size
        '[["abc","1.00"]]',
        '[["0.5000","1.001"]]',  # sub-unit count
    ],
)
def test_snapshot_bad_levels_raise_protocol_error(levels: str) -> None:
    frame = f'{{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{{"market_ticker":"A","yes_dollars_fp":{levels}}}}}'
    snap = decode_message(frame)
    with pytest.raises(KalshiProtocolError):
        snap.msg.levels_ticks()


@pytest.mark.parametrize("levels", ['[["0.5000"]]', '[["0.5000", 3]]', '{"a": 1}', '"x"', "[[[1]]]"])
def test_snapshot_level_structure_is_checked_on_access(levels: str) -> None:
    # Levels stay undecoded (msgspec.Raw) until read: the structure is checked then.
    frame = f'{{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{{"market_ticker":"A","no_dollars_fp":{levels}}}}}'
    snap = decode_message(frame)
    with pytest.raises(KalshiProtocolError):
        snap.msg.levels_ticks()
    with pytest.raises(KalshiProtocolError):
        _ = snap.msg.no_dollars_fp
    assert snap.msg.yes_dollars_fp is None


def test_snapshot_levels_decode_on_access_and_null_means_absent() -> None:
    snap = _fixture("orderbook_snapshot")
    assert snap.msg.yes_dollars_fp == [("0.0800", "300.00"), ("0.2200", "333.00")]
    null = decode_message(
        b'{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"market_ticker":"A","yes_dollars_fp":null}}'
    )
    assert null.msg.yes_dollars_fp is None and null.msg.levels_ticks() == ([], [])


def test_levels_ticks_returns_fresh_lists() -> None:
    snap = _fixture("orderbook_snapshot")
    first, _ = snap.msg.levels_ticks()
    first.clear()
    again, _ = snap.msg.levels_ticks()
    assert again == [(800, 30000), (2200, 33300)]


def test_delta_current_and_legacy_ticks() -> None:
    d = _fixture("orderbook_delta")
    assert isinstance(d, OrderbookDeltaMessage)
    assert (d.msg.side, d.msg.price_ticks(), d.msg.delta_units()) == ("yes", 9600, -5400)
    assert d.msg.price == Decimal("0.9600") and d.msg.delta == Decimal("-54.00")
    legacy = _fixture("orderbook_delta_legacy_cents").msg
    assert (legacy.price_ticks(), legacy.delta_units()) == (9600, -5400)
    cents_only = decode_message(
        b'{"type":"orderbook_delta","sid":1,"seq":2,"msg":{"market_ticker":"A","price":7,"delta":3,"side":"no"}}'
    ).msg
    assert (cents_only.price_ticks(), cents_only.delta_units(), cents_only.side) == (700, 300, "no")


def test_delta_repeated_calls_agree_with_cache() -> None:
    d = decode_message(
        b'{"type":"orderbook_delta","sid":1,"seq":2,"msg":{"market_ticker":"A","price_dollars":"0.1234","delta_fp":"7.25","side":"no"}}'
    ).msg
    assert [d.price_ticks() for _ in range(3)] == [1234] * 3
    assert [d.delta_units() for _ in range(3)] == [725] * 3


@pytest.mark.parametrize(
    "body",
    [
        '"price_dollars":"0.00001","delta_fp":"1.00"',
        '"price_dollars":"2.0000","delta_fp":"1.00"',
        '"price_dollars":"x","delta_fp":"1.00"',
        '"price_dollars":"0.5000","delta_fp":"1.005"',
        '"delta_fp":"1.00"',
        '"price_dollars":"0.5000"',
        '"price":250,"delta":1',
    ],
)
def test_delta_bad_numbers_raise_protocol_error(body: str) -> None:
    d = decode_message(
        f'{{"type":"orderbook_delta","sid":1,"seq":2,"msg":{{"market_ticker":"A","side":"yes",{body}}}}}'
    )
    with pytest.raises(KalshiProtocolError):
        d.msg.price_ticks()
        d.msg.delta_units()


def test_delta_side_must_be_yes_or_no() -> None:
    with pytest.raises(KalshiProtocolError):
        decode_message(b'{"type":"orderbook_delta","sid":1,"seq":2,"msg":{"market_ticker":"A","side":"maybe"}}')


def test_trade_fill_position_accessors() -> None:
    trade = _fixture("trade").msg
    assert (trade.yes_price, trade.no_price, trade.count) == (Decimal("0.36"), Decimal("0.64"), Decimal("136"))
    legacy_trade = _fixture("trade_legacy")
    assert legacy_trade.seq is None and legacy_trade.msg.count_contracts == 136
    fill = _fixture("fill").msg
    assert fill.fee == Decimal("0.010000") and str(fill.fee) == "0.010000"
    assert fill.post_position == Decimal("500.00")
    assert _fixture("fill_legacy").msg.yes_price == Decimal("0.75")
    pos = _fixture("market_position").msg
    assert (pos.position, pos.position_cost, pos.realized_pnl) == (Decimal(100), Decimal("50"), Decimal("10"))
    legacy = _fixture("market_position_legacy").msg
    # Legacy money was centi-cents: 500000 -> $50.0000.
    assert (legacy.position_cost, legacy.fees_paid, legacy.position_fee_cost) == (
        Decimal("50.0000"),
        Decimal("1.0000"),
        Decimal("0.5000"),
    )
    assert legacy.position == Decimal(100)


def test_comms_are_communications_messages_with_exact_fields() -> None:
    for kind in ("rfq_created", "rfq_deleted", "quote_created", "quote_accepted", "quote_executed"):
        msg = _fixture(kind)
        assert isinstance(msg, CommunicationsMessage)
        assert msg.msg.market_ticker
    quote = _fixture("quote_created_legacy").msg
    assert quote.yes_bid == Decimal("0.35") and quote.yes_contracts_offered == Decimal(100)
    assert quote.rfq_target_cost == Decimal("0.35")
    rfq = _fixture("rfq_created_legacy").msg
    assert rfq.target_cost == Decimal("0.35") and rfq.contracts == Decimal(100)
    assert _fixture("rfq_created_mve").msg.mve_selected_legs[1].side == "no"
    assert _fixture("quote_accepted").msg.contracts_accepted == Decimal("50.00")


def test_lifecycle_strikes_are_exact_never_float() -> None:
    created = _fixture("market_lifecycle_v2").msg
    assert created.additional_metadata.floor_strike == Decimal(4487)
    assert created.price_level_structure == "linear_cent"
    string_strike = _fixture("market_lifecycle_v2_legacy_string_strike").msg
    assert string_strike.additional_metadata.floor_strike == Decimal("4487.5")
    frac = decode_message(
        b'{"type":"market_lifecycle_v2","sid":1,"seq":1,"msg":{"market_ticker":"A","event_type":"metadata_updated","floor_strike":114999.99,"cap_strike":0.1}}'
    ).msg
    assert frac.floor_strike == Decimal("114999.99") and frac.cap_strike == Decimal("0.1")
    fee = _fixture("event_fee_update").msg
    assert fee.fee_multiplier_override == Decimal(1)
    assert _fixture("event_fee_update_cleared").msg.fee_type_override is None
    assert _fixture("market_lifecycle_v2_metadata").msg.cap_strike == Decimal(95250)


def test_float_where_an_integer_belongs_is_rejected() -> None:
    with pytest.raises(KalshiProtocolError):
        decode_message(b'{"type":"ticker","sid":1,"msg":{"market_ticker":"A","dollar_volume":1.5}}')
    with pytest.raises(KalshiProtocolError):
        decode_message(b'{"type":"ticker","sid":1,"msg":{"market_ticker":"A","yes_bid":45.5}}')


def test_ts_int_and_rfc3339_string_both_decode() -> None:
    as_string = decode_message(
        b'{"type":"orderbook_delta","sid":1,"seq":2,"msg":{"market_ticker":"A","side":"yes","price_dollars":"0.5","delta_fp":"1","ts":"2022-11-22T20:44:01Z"}}'
    ).msg
    assert as_string.ts == "2022-11-22T20:44:01Z"
    assert as_string.timestamp_ms == 1669149841000
    as_int = decode_message(b'{"type":"trade","sid":1,"seq":1,"msg":{"market_ticker":"A","ts":1669149841}}').msg
    assert as_int.ts == 1669149841 and as_int.timestamp_ms == 1669149841000
    with_millis = decode_message(
        b'{"type":"trade","sid":1,"seq":1,"msg":{"market_ticker":"A","ts":"2022-11-22T20:44:01.250+00:00"}}'
    ).msg
    assert with_millis.timestamp_ms == 1669149841250
    bad = decode_message(b'{"type":"trade","sid":1,"seq":1,"msg":{"market_ticker":"A","ts":"yesterday"}}').msg
    with pytest.raises(KalshiProtocolError):
        _ = bad.timestamp_ms


def test_money_accessor_rejects_non_finite() -> None:
    fill = decode_message(b'{"type":"fill","sid":1,"msg":{"market_ticker":"A","fee_cost":"NaN"}}').msg
    with pytest.raises(KalshiProtocolError):
        _ = fill.fee
    ticker = decode_message(b'{"type":"ticker","sid":1,"msg":{"market_ticker":"A","yes_bid_dollars":"0.12345"}}')
    with pytest.raises(KalshiProtocolError):
        _ = ticker.msg.yes_bid


# ----------------------------------------------------------------------------- tolerance


def test_unknown_fields_are_ignored() -> None:
    msg = decode_message(
        b'{"type":"ticker","sid":1,"future":{"x":[1,2]},"msg":{"market_ticker":"A","new_field":1.5,"yes_bid_dollars":"0.1000"}}'
    )
    assert isinstance(msg, TickerMessage) and msg.msg.yes_bid == Decimal("0.1")


def test_unknown_type_becomes_unknown_message() -> None:
    msg = decode_message(b'{"type":"ticker_v3","sid":4,"seq":9,"id":2,"msg":{"market_ticker":"A","x":1}}')
    assert isinstance(msg, UnknownMessage)
    assert (msg.type, msg.sid, msg.seq, msg.id) == ("ticker_v3", 4, 9, 2)
    assert msg.raw["msg"]["x"] == 1
    assert message_market(msg) == "A"


def test_unknown_type_with_odd_envelope_values() -> None:
    msg = decode_message(b'{"type":"new","sid":"7","seq":true,"msg":[1]}')
    assert isinstance(msg, UnknownMessage) and msg.sid is None and msg.seq is None and msg.msg == [1]


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"not json",
        b"[1,2,3]",
        b'{"type":5}',
        b'{"sid":1}',
        b'{"type":"ticker","sid":1}',
        b'{"type":"ticker","sid":"1","msg":{"market_ticker":"A"}}',
        b'{"type":"ticker","sid":-1,"msg":{"market_ticker":"A"}}',
        b'{"type":"orderbook_delta","sid":1,"seq":99999999999999999999,"msg":{"market_ticker":"A","side":"yes"}}',
        b'{"type":"ticker","msg":{"market_ticker":"A"}}',
        b'{"type":"error","msg":{"msg":"no code"}}',
        b"\xff\xfe",
    ],
)
def test_malformed_frames_raise_protocol_error(frame: bytes) -> None:
    with pytest.raises(KalshiProtocolError):
        decode_message(frame)


def test_protocol_error_text_is_bounded() -> None:
    huge = "x" * 1_000_000
    with pytest.raises(KalshiProtocolError) as info:
        decode_message(f'{{"type":"orderbook_delta","sid":1,"seq":1,"msg":{{"market_ticker":"A","side":"{huge}"}}}}')
    assert len(str(info.value)) < 400


def test_deep_nesting_is_a_protocol_error() -> None:
    deep = b'{"type":"nope","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(KalshiProtocolError):
        decode_message(deep)


def test_str_and_bytes_frames_both_decode() -> None:
    text = (FIXTURES / "ticker.json").read_text()
    assert decode_message(text) == decode_message(text.encode())


# ----------------------------------------------------------------------------- control and helpers


def test_ok_with_list_body_is_the_list_subscriptions_reply() -> None:
    ok = _fixture("ok_list_subscriptions")
    assert isinstance(ok, OkMessage)
    assert ok.subscriptions is not None
    assert [(s.channel, s.sid) for s in ok.subscriptions] == [("orderbook_delta", 1), ("ticker", 2), ("fill", 3)]
    update = _fixture("ok")
    assert update.subscriptions is None and update.msg.market_tickers == ["MARKET-1", "MARKET-2", "MARKET-3"]
    assert _fixture("ok_index_ids").msg.index_ids == ["BRTI"]
    assert _fixture("list_subscriptions").subscriptions[0].sid == 1


def test_error_message_helpers() -> None:
    err = _fixture("error")
    assert isinstance(err, ErrorMessage)
    assert (err.code, err.msg.message, err.terminal) == (7, "Unknown subscription ID", False)
    exc = err.to_error()
    assert isinstance(exc, KalshiCommandError) and exc.cmd_id == 123 and exc.code == 7
    overflow = _fixture("error_subscription")
    assert overflow.terminal and overflow.to_error().sid == 7


def test_message_market() -> None:
    assert message_market(_fixture("ticker")) == "FED-23DEC-T3.00"
    assert message_market(_fixture("orderbook_delta")) == "FED-23DEC-T3.00"
    assert message_market(_fixture("user_order")) == "FED-23DEC-T3.00"
    assert message_market(_fixture("quote_executed")) == "FED-23DEC-T3.00"
    assert message_market(_fixture("event_lifecycle")) is None
    assert message_market(_fixture("cfbenchmarks_value")) is None
    assert message_market(_fixture("subscribed")) is None
    assert message_market(object()) is None


def test_index_feed_values_are_exact() -> None:
    assert _fixture("pyth_value").msg.value == Decimal("82.12345000")
    assert _fixture("cfbenchmarks_value_5hz").msg.value == Decimal("68000.12000000")
    avg = _fixture("cfbenchmarks_value").msg.avg_60s_data
    assert avg is not None and avg.average == Decimal("68000.12") and avg.window_size == 3


def test_user_order_accessors() -> None:
    order = _fixture("user_order").msg
    assert order.market_ticker == order.ticker == "FED-23DEC-T3.00"
    assert (order.yes_price, order.remaining_count, order.taker_fees) == (
        Decimal("0.35"),
        Decimal("10"),
        Decimal("0"),
    )


def test_messages_are_immutable() -> None:
    msg = _fixture("ticker")
    with pytest.raises(AttributeError):
        msg.sid = 3


def test_one_shared_decoder() -> None:
    assert isinstance(m.MESSAGE_DECODER, msgspec.json.Decoder)
    assert m.MESSAGE_DECODER is MESSAGE_DECODER


def test_levels_memo_eviction_keeps_results_right() -> None:
    snaps = [
        decode_message(
            f'{{"type":"orderbook_snapshot","sid":1,"seq":{i},"msg":{{"market_ticker":"M{i}","yes_dollars_fp":[["0.{i:04d}","{i}.00"]]}}}}'
        )
        for i in range(1, 101)
    ]
    first = [s.msg.levels_ticks() for s in snaps]
    again = [s.msg.levels_ticks() for s in reversed(snaps)][::-1]
    assert first == again
    assert first[41] == ([(42, 4200)], [])
