"""Sans-I/O protocol: feed bytes, read events. No sockets anywhere."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kalshi.errors import KalshiCommandError, KalshiProtocolError, KalshiSequenceGapError, KalshiSubscriptionError
from kalshi.ws.models import (
    CfbenchmarksIndexListMessage,
    CfbenchmarksValueMessage,
    ErrorMessage,
    FillMessage,
    OkMessage,
    OrderbookDeltaMessage,
    OrderbookSnapshotMessage,
    SubscribedMessage,
    TickerMessage,
    TradeMessage,
    UnknownMessage,
)
from kalshi.ws.protocol import (
    AwaitingSnapshotDropped,
    ClientProtocol,
    CommandResponse,
    DuplicateDropped,
    GapDetected,
    ProtocolErrorEvent,
    ProtocolEvent,
    ServerError,
)

PROTOCOL_SOURCE = Path(__file__).resolve().parents[1] / "src" / "kalshi" / "ws" / "protocol.py"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ws"


def frame(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def delta(sid: int, seq: int | None, market: str = "M1", price: str = "0.5000", size: str = "1.00") -> bytes:
    env: dict[str, Any] = {
        "type": "orderbook_delta",
        "sid": sid,
        "msg": {"market_ticker": market, "price_dollars": price, "delta_fp": size, "side": "yes"},
    }
    if seq is not None:
        env["seq"] = seq
    return frame(env)


def snapshot(sid: int, seq: int, market: str = "M1") -> bytes:
    return frame(
        {
            "type": "orderbook_snapshot",
            "sid": sid,
            "seq": seq,
            "msg": {"market_ticker": market, "yes_dollars_fp": [["0.4000", "10.00"]], "no_dollars_fp": []},
        }
    )


def subscribed(cmd_id: int | None, sid: int, channel: str) -> bytes:
    env: dict[str, Any] = {"type": "subscribed", "msg": {"channel": channel, "sid": sid}}
    if cmd_id is not None:
        env["id"] = cmd_id
    return frame(env)


def trade(sid: int, seq: int | None) -> bytes:
    env: dict[str, Any] = {"type": "trade", "sid": sid, "msg": {"market_ticker": "M1", "count_fp": "1.00"}}
    if seq is not None:
        env["seq"] = seq
    return frame(env)


def book_session(sid: int = 5, *, validate_book: bool = True) -> ClientProtocol:
    proto = ClientProtocol(validate_book=validate_book)
    cmd = proto.send_subscribe(["orderbook_delta"], market_tickers=["M1", "M2"])
    proto.data_to_send()
    assert isinstance(proto.receive_frame(subscribed(cmd, sid, "orderbook_delta")), CommandResponse)
    assert isinstance(proto.receive_frame(snapshot(sid, 1)), OrderbookSnapshotMessage)
    return proto


def state(proto: ClientProtocol, sid: int = 5) -> tuple[Any, ...]:
    return (
        dict(proto.subscriptions),
        proto.last_seq(sid),
        proto.is_awaiting_snapshot(sid),
        dict(proto.pending_commands),
    )


# ----------------------------------------------------------------------------- purity


def test_protocol_imports_no_io() -> None:
    tree = ast.parse(PROTOCOL_SOURCE.read_text())
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    assert roots, "import walk found nothing"
    assert not roots & {"asyncio", "socket", "picows", "aiohttp", "httpx", "websockets", "selectors", "ssl"}


# ----------------------------------------------------------------------------- outgoing


def test_commands_get_increasing_ids_and_compact_json() -> None:
    proto = ClientProtocol()
    a = proto.send_subscribe(["orderbook_delta"], market_tickers=["M1"], send_initial_snapshot=True)
    b = proto.send_subscribe("ticker")
    c = proto.send_list_subscriptions()
    assert (a, b, c) == (1, 2, 3)
    frames = proto.data_to_send()
    assert [json.loads(f) for f in frames] == [
        {
            "cmd": "subscribe",
            "id": 1,
            "params": {"channels": ["orderbook_delta"], "market_tickers": ["M1"], "send_initial_snapshot": True},
        },
        {"cmd": "subscribe", "id": 2, "params": {"channels": ["ticker"]}},
        {"cmd": "list_subscriptions", "id": 3},
    ]
    assert proto.data_to_send() == []
    assert proto.next_command_id == 4


def test_every_subscribe_param_is_encoded() -> None:
    proto = ClientProtocol(first_command_id=10)
    proto.send_subscribe(
        ["communications", "cfbenchmarks_value"],
        market_ticker="A",
        market_id="u",
        market_ids=["u1"],
        skip_ticker_ack=True,
        use_yes_price=True,
        user_filter="self",
        shard_factor=4,
        shard_key=1,
        index_ids=["BRTI"],
        underlying_tickers=["Metal.XAU/USD"],
    )
    (sent,) = proto.data_to_send()
    params = json.loads(sent)["params"]
    assert json.loads(sent)["id"] == 10
    assert params == {
        "channels": ["communications", "cfbenchmarks_value"],
        "market_ticker": "A",
        "market_id": "u",
        "market_ids": ["u1"],
        "skip_ticker_ack": True,
        "use_yes_price": True,
        "user_filter": "self",
        "shard_factor": 4,
        "shard_key": 1,
        "index_ids": ["BRTI"],
        "underlying_tickers": ["Metal.XAU/USD"],
    }


def test_update_unsubscribe_and_snapshot_commands() -> None:
    proto = ClientProtocol()
    proto.send_update_subscription(7, "add_markets", market_tickers=["X"], send_initial_snapshot=True)
    proto.send_get_snapshot(7, ["X", "Y"])
    proto.send_update_subscription(8, "subscribe_indices", index_ids=["all"])
    proto.send_unsubscribe([7, 8])
    sent = [json.loads(f) for f in proto.data_to_send()]
    assert sent[0] == {
        "cmd": "update_subscription",
        "id": 1,
        "params": {"action": "add_markets", "sid": 7, "market_tickers": ["X"], "send_initial_snapshot": True},
    }
    assert sent[1]["params"] == {"action": "get_snapshot", "sid": 7, "market_tickers": ["X", "Y"]}
    assert sent[2]["params"] == {"action": "subscribe_indices", "sid": 8, "index_ids": ["all"]}
    assert sent[3] == {"cmd": "unsubscribe", "id": 4, "params": {"sids": [7, 8]}}


def test_bad_commands_are_refused() -> None:
    proto = ClientProtocol()
    with pytest.raises(KalshiSubscriptionError):
        proto.send_subscribe([])
    with pytest.raises(KalshiSubscriptionError):
        proto.send_unsubscribe([])
    with pytest.raises(KalshiSubscriptionError):
        proto.send_get_snapshot(1, [])
    with pytest.raises(KalshiSubscriptionError):
        proto.send_update_subscription(1, "")
    assert proto.data_to_send() == [] and proto.next_command_id == 1
    with pytest.raises(ValueError):
        ClientProtocol(first_command_id=0)


# ----------------------------------------------------------------------------- responses


def test_subscribe_responses_match_the_command_and_register_sids() -> None:
    proto = ClientProtocol()
    cmd = proto.send_subscribe(["orderbook_delta", "ticker"], market_ticker="M1")
    first = proto.receive_frame(subscribed(cmd, 1, "orderbook_delta"))
    assert isinstance(first, CommandResponse)
    assert first.cmd_id == cmd and not first.final and first.error is None
    assert first.command is not None and first.command.params.channels == ["orderbook_delta", "ticker"]
    assert isinstance(first.message, SubscribedMessage)
    second = proto.receive_frame(subscribed(cmd, 2, "ticker"))
    assert isinstance(second, CommandResponse) and second.final
    assert proto.subscriptions == {1: "orderbook_delta", 2: "ticker"}
    assert proto.channel_for(2) == "ticker"
    assert proto.pending_commands == {}
    late = proto.receive_frame(subscribed(cmd, 3, "trade"))
    assert isinstance(late, CommandResponse) and late.command is None


def test_error_response_finishes_the_command() -> None:
    proto = ClientProtocol()
    cmd = proto.send_subscribe(["fill", "ticker"])
    resp = proto.receive_frame(
        frame({"id": cmd, "type": "error", "msg": {"code": 9, "msg": "Authentication required"}})
    )
    assert isinstance(resp, CommandResponse) and resp.final and resp.cmd_id == cmd
    assert isinstance(resp.error, KalshiCommandError) and resp.error.code == 9 and resp.error.cmd_id == cmd
    assert proto.pending_commands == {}


def test_error_without_id_is_a_server_error_and_terminal_codes_drop_the_sid() -> None:
    proto = book_session()
    event = proto.receive_frame(frame({"type": "error", "sid": 5, "seq": 2, "msg": {"code": 25, "msg": "overflow"}}))
    assert isinstance(event, ServerError)
    assert (event.sid, event.code, event.terminal) == (5, 25, True)
    assert event.to_error().sid == 5
    assert proto.subscriptions == {} and proto.last_seq(5) is None
    non_terminal = proto.receive_frame(frame({"type": "error", "msg": {"code": 1, "msg": "hmm"}}))
    assert isinstance(non_terminal, ServerError) and not non_terminal.terminal
    assert proto.stats.server_errors == 2


def test_responses_without_ids() -> None:
    proto = ClientProtocol()
    resp = proto.receive_frame(subscribed(None, 9, "trade"))
    assert isinstance(resp, CommandResponse) and resp.cmd_id is None and resp.command is None
    zero = proto.receive_frame(subscribed(0, 10, "fill"))  # id 0 means no id
    assert isinstance(zero, CommandResponse) and zero.cmd_id is None
    assert proto.subscriptions == {9: "trade", 10: "fill"}


def test_list_subscriptions_reply_typed_ok() -> None:
    proto = ClientProtocol()
    cmd = proto.send_list_subscriptions()
    resp = proto.receive_frame(
        (FIXTURES / "ok_list_subscriptions.json").read_bytes().replace(b'"id": 3', f'"id": {cmd}'.encode())
    )
    assert isinstance(resp, CommandResponse) and resp.final
    assert isinstance(resp.message, OkMessage) and resp.message.subscriptions is not None
    assert len(resp.message.subscriptions) == 3


def test_unsubscribed_forgets_the_sid() -> None:
    proto = book_session()
    cmd = proto.send_unsubscribe([5])
    resp = proto.receive_frame(frame({"type": "unsubscribed", "id": cmd, "sid": 5, "seq": 2}))
    assert isinstance(resp, CommandResponse) and resp.final
    assert proto.subscriptions == {} and proto.last_seq(5) is None


def test_list_reply_is_data_and_ends_its_command() -> None:
    proto = ClientProtocol()
    proto.receive_frame(subscribed(None, 1, "cfbenchmarks_value"))
    cmd = proto.send_update_subscription(1, "indexlist")
    reply = proto.receive_frame(
        frame({"type": "cfbenchmarks_value_indexlist", "id": cmd, "sid": 1, "seq": 1, "msg": {"index_ids": ["BRTI"]}})
    )
    assert isinstance(reply, CfbenchmarksIndexListMessage) and reply.msg.index_ids == ["BRTI"]
    assert proto.pending_commands == {} and proto.last_seq(1) == 1
    value = (FIXTURES / "cfbenchmarks_value.json").read_bytes().replace(b'"seq": 42', b'"seq": 2')
    assert isinstance(proto.receive_frame(value), CfbenchmarksValueMessage)
    gap = proto.receive_frame(
        frame({"type": "cfbenchmarks_value_indexlist", "sid": 1, "seq": 9, "msg": {"index_ids": []}})
    )
    assert isinstance(gap, GapDetected)


def test_get_snapshot_reply_with_id_is_delivered_as_data() -> None:
    proto = book_session()
    cmd = proto.send_get_snapshot(5, ["M1"])
    snap = json.loads(snapshot(5, 2))
    snap["id"] = cmd
    result = proto.receive_frame(frame(snap))
    assert isinstance(result, OrderbookSnapshotMessage) and result.id == cmd
    ok = proto.receive_frame(frame({"type": "ok", "id": cmd, "sid": 5, "seq": 3}))
    assert isinstance(ok, CommandResponse) and ok.final and ok.command is not None


def test_forget_command() -> None:
    proto = ClientProtocol()
    cmd = proto.send_list_subscriptions()
    assert cmd in proto.pending_commands
    assert proto.forget_command(cmd) is not None
    assert proto.forget_command(cmd) is None


# ----------------------------------------------------------------------------- sequencing


def test_in_order_data_returns_the_message_object_itself() -> None:
    proto = book_session()
    result = proto.receive_frame(delta(5, 2))
    assert type(result) is OrderbookDeltaMessage
    assert not isinstance(result, ProtocolEvent)
    assert result.msg.price_ticks() == 5000 and proto.last_seq(5) == 2


def test_gap_is_reported_and_not_delivered_then_stream_continues() -> None:
    proto = book_session()
    assert isinstance(proto.receive_frame(delta(5, 2)), OrderbookDeltaMessage)
    gap = proto.receive_frame(delta(5, 5))
    assert isinstance(gap, GapDetected)
    assert (gap.sid, gap.expected, gap.received, gap.channel) == (5, 3, 5, "orderbook_delta")
    assert isinstance(gap.message, OrderbookDeltaMessage) and gap.message.seq == 5
    err = gap.to_error()
    assert isinstance(err, KalshiSequenceGapError) and (err.expected, err.received) == (3, 5)
    assert isinstance(proto.receive_frame(delta(5, 6)), OrderbookDeltaMessage)
    assert proto.stats.gaps == 1


def test_duplicates_are_dropped() -> None:
    proto = book_session()
    proto.receive_frame(delta(5, 2))
    proto.receive_frame(delta(5, 3))
    for seq in (3, 2, 1):
        dup = proto.receive_frame(delta(5, seq))
        assert isinstance(dup, DuplicateDropped) and (dup.sid, dup.seq) == (5, seq)
    assert proto.last_seq(5) == 3 and proto.stats.duplicates == 3


def test_control_messages_use_up_sequence_numbers() -> None:
    proto = book_session()
    proto.receive_frame(delta(5, 2))
    cmd = proto.send_update_subscription(5, "add_markets", market_tickers=["M3"])
    ok = proto.receive_frame(
        frame({"type": "ok", "id": cmd, "sid": 5, "seq": 3, "msg": {"market_tickers": ["M1", "M3"]}})
    )
    assert isinstance(ok, CommandResponse)
    assert isinstance(proto.receive_frame(delta(5, 4)), OrderbookDeltaMessage)
    err = proto.receive_frame(
        frame({"type": "error", "id": 99, "sid": 5, "seq": 5, "msg": {"code": 26, "msg": "limit"}})
    )
    assert isinstance(err, CommandResponse) and isinstance(err.message, ErrorMessage)
    assert isinstance(proto.receive_frame(delta(5, 6)), OrderbookDeltaMessage)
    assert proto.stats.gaps == 0


def test_out_of_order_control_message_is_delivered_and_the_gap_shows_next() -> None:
    proto = book_session()
    ok = proto.receive_frame(frame({"type": "ok", "sid": 5, "seq": 4}))
    assert isinstance(ok, CommandResponse)
    assert proto.last_seq(5) == 1
    gap = proto.receive_frame(delta(5, 5))
    assert isinstance(gap, GapDetected) and (gap.expected, gap.received) == (2, 5)


def test_snapshot_rebases_after_a_server_restart() -> None:
    proto = book_session()
    for seq in range(2, 10):
        proto.receive_frame(delta(5, seq))
    restart = proto.receive_frame(snapshot(5, 1))
    assert isinstance(restart, OrderbookSnapshotMessage) and proto.last_seq(5) == 1
    assert isinstance(proto.receive_frame(delta(5, 2)), OrderbookDeltaMessage)


def test_snapshot_after_a_jump_on_a_single_market_sid_is_the_reset_point() -> None:
    proto = book_session()
    jumped = proto.receive_frame(snapshot(5, 40))
    assert isinstance(jumped, OrderbookSnapshotMessage) and proto.last_seq(5) == 40
    assert proto.stats.gaps == 0


def test_snapshot_after_a_jump_on_a_multi_market_sid_is_a_gap() -> None:
    proto = book_session()
    assert isinstance(proto.receive_frame(snapshot(5, 2, market="M2")), OrderbookSnapshotMessage)
    gap = proto.receive_frame(snapshot(5, 9, market="M1"))
    assert isinstance(gap, GapDetected) and (gap.expected, gap.received) == (3, 9)
    assert isinstance(proto.receive_frame(delta(5, 10)), OrderbookDeltaMessage)


def test_reset_sequence_waits_for_a_snapshot() -> None:
    proto = book_session()
    proto.receive_frame(delta(5, 2))
    proto.receive_frame(delta(5, 7))  # gap
    proto.reset_sequence(5)
    proto.send_get_snapshot(5, ["M1"])
    assert proto.is_awaiting_snapshot(5) and proto.last_seq(5) is None
    dropped = proto.receive_frame(delta(5, 8))
    assert isinstance(dropped, AwaitingSnapshotDropped) and (dropped.sid, dropped.seq) == (5, 8)
    assert isinstance(proto.receive_frame(frame({"type": "ok", "sid": 5, "seq": 9})), CommandResponse)
    assert isinstance(proto.receive_frame(delta(5, 10)), AwaitingSnapshotDropped)
    snap = proto.receive_frame(snapshot(5, 11))
    assert isinstance(snap, OrderbookSnapshotMessage)
    assert not proto.is_awaiting_snapshot(5) and proto.last_seq(5) == 11
    assert isinstance(proto.receive_frame(delta(5, 12)), OrderbookDeltaMessage)
    assert proto.stats.awaiting_snapshot_drops == 2


def test_reset_sequence_on_a_channel_without_snapshots() -> None:
    proto = ClientProtocol()
    proto.receive_frame(subscribed(None, 3, "trade"))
    assert isinstance(proto.receive_frame(trade(3, 1)), TradeMessage)
    assert isinstance(proto.receive_frame(trade(3, 4)), GapDetected)
    proto.reset_sequence(3)
    assert isinstance(proto.receive_frame(trade(3, 17)), TradeMessage)
    assert proto.last_seq(3) == 17 and not proto.is_awaiting_snapshot(3)


def test_unsequenced_messages_pass_straight_through() -> None:
    proto = ClientProtocol()
    ticker = proto.receive_frame((FIXTURES / "ticker.json").read_bytes())
    assert isinstance(ticker, TickerMessage)
    fill = proto.receive_frame((FIXTURES / "fill.json").read_bytes())
    assert isinstance(fill, FillMessage)
    legacy_trade = proto.receive_frame((FIXTURES / "trade_legacy.json").read_bytes())
    assert isinstance(legacy_trade, TradeMessage) and legacy_trade.seq is None
    # A legacy ticker with a seq does not start tracking.
    proto.receive_frame((FIXTURES / "ticker_legacy_cents.json").read_bytes())
    assert proto.last_seq(11) is None


def test_sids_are_independent() -> None:
    proto = book_session(sid=5)
    proto.receive_frame(subscribed(None, 6, "trade"))
    assert isinstance(proto.receive_frame(trade(6, 1)), TradeMessage)
    assert isinstance(proto.receive_frame(delta(5, 2)), OrderbookDeltaMessage)
    assert isinstance(proto.receive_frame(trade(6, 2)), TradeMessage)


def test_unknown_type_is_delivered_and_counts_its_seq() -> None:
    proto = book_session()
    unknown = proto.receive_frame(frame({"type": "orderbook_checksum", "sid": 5, "seq": 2, "msg": {"x": 1}}))
    assert isinstance(unknown, UnknownMessage) and unknown.type == "orderbook_checksum"
    assert isinstance(proto.receive_frame(delta(5, 3)), OrderbookDeltaMessage)
    assert proto.stats.unknown_messages == 1


def test_reset_clears_the_session_but_not_the_id_counter() -> None:
    proto = book_session()
    proto.send_list_subscriptions()
    proto.reset()
    assert state(proto) == ({}, None, False, {})
    assert proto.data_to_send() == []
    assert proto.send_list_subscriptions() == 3
    # After reset, the first message of a sid is a new base.
    assert isinstance(proto.receive_frame(delta(5, 100)), OrderbookDeltaMessage)


def test_forget_sid() -> None:
    proto = book_session()
    proto.forget_sid(5)
    assert proto.subscriptions == {} and proto.last_seq(5) is None
    assert isinstance(proto.receive_frame(delta(5, 30)), OrderbookDeltaMessage)


def test_resubscribe_on_a_reused_sid_starts_fresh() -> None:
    proto = book_session()
    proto.receive_frame(delta(5, 2))
    proto.receive_frame(subscribed(None, 5, "orderbook_delta"))
    assert proto.last_seq(5) is None
    assert isinstance(proto.receive_frame(snapshot(5, 1)), OrderbookSnapshotMessage)


# ----------------------------------------------------------------------------- malformed input

MALFORMED = [
    b"",
    b"{",
    b"null",
    b"[]",
    b'"heartbeat"',
    b"\xff\xfe\x00garbage",
    b'{"type":"orderbook_delta","sid":5,"seq":2}',
    b'{"type":"orderbook_delta","sid":5,"seq":2,"msg":{"market_ticker":"M1","side":"up","price_dollars":"0.5","delta_fp":"1"}}',
    b'{"type":"orderbook_delta","sid":"5","seq":2,"msg":{"market_ticker":"M1","side":"yes","price_dollars":"0.5","delta_fp":"1"}}',
    b'{"type":"orderbook_delta","sid":5,"seq":2.0,"msg":{"market_ticker":"M1","side":"yes","price_dollars":"0.5","delta_fp":"1"}}',
    b'{"type":"orderbook_delta","sid":5,"seq":1e400,"msg":{"market_ticker":"M1","side":"yes"}}',
    b'{"type":"orderbook_delta","sid":5,"seq":' + b"9" * 400 + b',"msg":{"market_ticker":"M1","side":"yes"}}',
    b'{"type":"orderbook_delta","sid":5,"seq":-3,"msg":{"market_ticker":"M1","side":"yes"}}',
    b'{"type":"subscribed","id":1,"msg":{"channel":"ticker"}}',
    b'{"type":"error","msg":{"code":"25"}}',
    b'{"type":"ticker","sid":5,"msg":null}',
    b'{"type":null,"sid":5}',
    b"[" * 50_000 + b"]" * 50_000,
    b'{"type":"x","deep":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
]


@pytest.mark.parametrize("data", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_frames_become_protocol_error_events(data: bytes) -> None:
    proto = book_session()
    before = state(proto)
    event = proto.receive_frame(data)
    assert isinstance(event, ProtocolErrorEvent)
    assert isinstance(event.error, KalshiProtocolError)
    assert len(event.raw_preview) <= 200 and event.raw_preview.isprintable()
    assert state(proto) == before
    assert isinstance(proto.receive_frame(delta(5, 2)), OrderbookDeltaMessage)


def test_invalid_book_numbers_are_protocol_errors_that_leave_a_gap() -> None:
    proto = book_session()
    bad = proto.receive_frame(delta(5, 2, price="1.2345"))
    assert isinstance(bad, ProtocolErrorEvent) and (bad.sid, bad.seq) == (5, 2)
    assert proto.last_seq(5) == 1
    gap = proto.receive_frame(delta(5, 3))
    assert isinstance(gap, GapDetected) and gap.expected == 2
    bad_snapshot = frame(
        {
            "type": "orderbook_snapshot",
            "sid": 5,
            "seq": 4,
            "msg": {"market_ticker": "M1", "yes_dollars_fp": [["x", "1.00"]]},
        }
    )
    assert isinstance(proto.receive_frame(bad_snapshot), ProtocolErrorEvent)
    assert proto.last_seq(5) == 3


def test_book_validation_can_be_turned_off() -> None:
    proto = ClientProtocol(validate_book=False)
    passed = proto.receive_frame(delta(5, 2, price="1.2345"))
    assert isinstance(passed, OrderbookDeltaMessage)
    with pytest.raises(KalshiProtocolError):
        passed.msg.price_ticks()


def test_ten_megabyte_string_is_rejected_with_a_short_preview() -> None:
    proto = book_session()
    huge = (
        b'{"type":"orderbook_delta","sid":5,"seq":2,"msg":{"market_ticker":"'
        + b"A" * 10_000_000
        + b'","side":"sideways"}}'
    )
    event = proto.receive_frame(huge)
    assert isinstance(event, ProtocolErrorEvent)
    assert len(event.raw_preview) == 200 and len(str(event.error)) < 1000
    text_frame = proto.receive_frame('{"type":"ticker","sid":1,"msg":{"market_ticker":' + "9" * 10_000_000 + "}}")
    assert isinstance(text_frame, ProtocolErrorEvent)


def test_preview_escapes_control_characters() -> None:
    proto = ClientProtocol()
    event = proto.receive_frame(b"\x1b[31mboom\n\x00")
    assert isinstance(event, ProtocolErrorEvent)
    assert "\x1b" not in event.raw_preview and "\\x1b" in event.raw_preview
    assert proto.stats.protocol_errors == 1


def test_non_bytes_input_is_a_protocol_error() -> None:
    proto = ClientProtocol()
    assert isinstance(proto.receive_frame(None), ProtocolErrorEvent)  # type: ignore[arg-type]
    assert isinstance(proto.receive_frame(12), ProtocolErrorEvent)  # type: ignore[arg-type]


def test_str_bytes_and_memoryview_frames() -> None:
    proto = book_session()
    assert isinstance(proto.receive_frame(delta(5, 2).decode()), OrderbookDeltaMessage)
    assert isinstance(proto.receive_frame(memoryview(delta(5, 3))), OrderbookDeltaMessage)  # type: ignore[arg-type]
    assert isinstance(proto.receive_frame(bytearray(delta(5, 4))), OrderbookDeltaMessage)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- fuzz

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID_FRAMES = [p.read_bytes() for p in sorted(FIXTURES.glob("*.json"))]

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.floats(allow_nan=True)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
envelope_keys = st.sampled_from(["type", "sid", "seq", "id", "msg", "market_ticker", "side", "price_dollars"])
known_types = st.sampled_from(
    ["orderbook_delta", "orderbook_snapshot", "ticker", "trade", "ok", "error", "subscribed", "unsubscribed", "zzz"]
)


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_never_raise(data: bytes) -> None:
    proto = book_session()
    before = state(proto)
    result = proto.receive_frame(data)
    if isinstance(result, ProtocolErrorEvent):
        assert state(proto) == before


@FUZZ
@given(known_types, st.dictionaries(envelope_keys, json_values, max_size=6), json_values, st.booleans())
def test_fuzz_typed_envelopes_never_raise(kind: str, envelope: dict[str, Any], body: Any, validate: bool) -> None:
    proto = book_session(validate_book=validate)
    envelope = {**envelope, "type": kind, "msg": body}
    before = state(proto)
    result = proto.receive_frame(json.dumps(envelope).encode())
    if isinstance(result, ProtocolErrorEvent):
        assert state(proto) == before


@FUZZ
@given(st.sampled_from(VALID_FRAMES), st.data(), st.booleans())
def test_fuzz_mutated_valid_frames_never_raise(original: bytes, data: st.DataObject, validate: bool) -> None:
    proto = book_session(validate_book=validate)
    buf = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(buf) - 1))
        buf[index] = data.draw(st.integers(0, 255))
    before = state(proto)
    result = proto.receive_frame(bytes(buf))
    if isinstance(result, ProtocolErrorEvent):
        assert state(proto) == before


@FUZZ
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=60))
def test_fuzz_sequence_tracking_matches_a_reference_model(seqs: list[int]) -> None:
    proto = ClientProtocol()
    last: int | None = None
    for seq in seqs:
        result = proto.receive_frame(delta(8, seq))
        if last is None or seq == last + 1:
            assert isinstance(result, OrderbookDeltaMessage) and result.seq == seq
            last = seq
        elif seq <= last:
            assert isinstance(result, DuplicateDropped) and result.seq == seq
        else:
            assert isinstance(result, GapDetected) and (result.expected, result.received) == (last + 1, seq)
            last = seq
        assert proto.last_seq(8) == last


number_text = st.one_of(
    st.text(alphabet="0123456789.-+e_ \u0661", max_size=12),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
)


@FUZZ
@given(number_text, number_text, number_text, st.sampled_from(["yes", "no"]))
def test_fuzz_book_numbers_with_validation(price: str, size: str, level: str, side: str) -> None:
    proto = book_session(validate_book=True)
    result = proto.receive_frame(
        frame(
            {
                "type": "orderbook_delta",
                "sid": 5,
                "seq": 2,
                "msg": {"market_ticker": "M1", "side": side, "price_dollars": price, "delta_fp": size},
            }
        )
    )
    if isinstance(result, OrderbookDeltaMessage):
        assert 0 <= result.msg.price_ticks() <= 10_000
        assert isinstance(result.msg.delta_units(), int)
    else:
        assert isinstance(result, ProtocolErrorEvent) and proto.last_seq(5) == 1
    snap = proto.receive_frame(
        frame(
            {
                "type": "orderbook_snapshot",
                "sid": 5,
                "seq": 3,
                "msg": {"market_ticker": "M1", "yes_dollars_fp": [[price, level]], "no_dollars_fp": [[level, size]]},
            }
        )
    )
    if isinstance(snap, OrderbookSnapshotMessage):
        yes, no = snap.msg.levels_ticks()
        assert all(0 <= p <= 10_000 and u >= 0 for p, u in yes + no)
    else:
        assert isinstance(snap, ProtocolErrorEvent | GapDetected)


def test_the_receiver_closure_matches_receive_frame() -> None:
    def delta(sid: int, seq: int | None, ticker: str = "M1") -> bytes:
        envelope: dict[str, object] = {"type": "orderbook_delta", "sid": sid, "msg": {
            "market_ticker": ticker, "price_dollars": "0.5000", "delta_fp": "1.00", "side": "yes"}}  # fmt: skip
        if seq is not None:
            envelope["seq"] = seq
        return json.dumps(envelope).encode()

    snapshot = json.dumps(
        {"type": "orderbook_snapshot", "sid": 1, "seq": 7, "msg": {"market_ticker": "M1", "yes_dollars_fp": []}}
    ).encode()
    ticker = json.dumps({"type": "ticker", "sid": 9, "msg": {"market_ticker": "M1", "price_dollars": "0.5"}}).encode()
    frames = [delta(1, 1), delta(1, 2), delta(1, 2), delta(1, 5), delta(1, 6), ticker, delta(1, None), b"{bad"]
    frames += [snapshot, delta(1, 8), delta(2, 1), delta(2, 3)]
    for validate in (False, True):
        plain, fast = ClientProtocol(validate_book=validate), ClientProtocol(validate_book=validate)
        receive = fast.receiver()
        for index, frame in enumerate(frames):
            if index == 8:
                plain.reset_sequence(1)
                fast.reset_sequence(1)
            expected, got = plain.receive_frame(frame), receive(frame)
            assert type(got) is type(expected), (validate, index)
            if isinstance(got, ProtocolErrorEvent):
                assert (got.raw_preview, got.sid, got.seq) == (expected.raw_preview, expected.sid, expected.seq)
            else:
                assert got == expected, (validate, index)
        fast.reset()  # the closure stays valid across a reset
        assert type(receive(delta(3, 1))) is type(plain.receive_frame(delta(3, 1)))
