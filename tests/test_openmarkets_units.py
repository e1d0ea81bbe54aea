"""The pure parts of openmarkets: message decoding, the liquidity table, contest placement, redaction."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import openmarkets
from kalshi.errors import KalshiAuthError, KalshiError
from openmarkets._redact import install_log_filter, redact_text, redact_url, with_api_key
from openmarkets.errors import (
    ContestLimitError,
    InvalidChannelError,
    InvalidMessageError,
    OpenMarketsAuthError,
    OpenMarketsProtocolError,
    OpenMarketsServerError,
    RefreshError,
    error_for_code,
)
from openmarkets.models import (
    ConnectedMessage,
    ContestStateUpdate,
    LiquidityEntry,
    LiquidityUpdate,
    UnknownMessage,
    decode_message,
    decode_snapshot,
    encode_command,
)
from openmarkets.placement import check_contest_ids, place_contests
from openmarkets.rest import rest_url_for
from openmarkets.table import ContestTable, LiquidityView

SEED_UPDATE = b"""{
  "type": "liquidity.update",
  "contest_id": "ct_abc123",
  "changed_entries": [
    {"liquidity_hash": "kalshi:ct_abc123:mk_ml:side_home:var_0:p_kc:tf_full",
     "partner_id": "kalshi", "price": 0.49, "available": 5400}
  ],
  "refresh_required": false,
  "timestamp": "2026-04-17T22:00:01.234Z"
}"""


def entry(key: str, price: str = "0.50", available: str = "100", partner: str = "kalshi") -> LiquidityEntry:
    return LiquidityEntry(key, partner, Decimal(price), Decimal(available))


# ---------------------------------------------------------------------------- public API


def test_public_api_is_locked() -> None:
    assert sorted(openmarkets.__all__) == sorted(
        [
            "CHANNEL_CONTEST_STATE",
            "CHANNEL_LIQUIDITY",
            "DEFAULT_MAX_CONNECTIONS",
            "DEFAULT_URL",
            "MAX_CONTESTS_PER_CONNECTION",
            "ConnectedMessage",
            "ConnectionInfo",
            "ConnectionLimitError",
            "ConnectionState",
            "ContestLimitError",
            "ContestStateUpdate",
            "ContestStateView",
            "ErrorMessage",
            "Feed",
            "InvalidChannelError",
            "InvalidMessageError",
            "LiquidityEntry",
            "LiquiditySnapshot",
            "LiquidityStream",
            "LiquidityUpdate",
            "LiquidityView",
            "OpenMarketsAuthError",
            "OpenMarketsConnectionError",
            "OpenMarketsError",
            "OpenMarketsProtocolError",
            "OpenMarketsServerError",
            "OverflowStrategy",
            "PongMessage",
            "RefreshError",
            "StreamUpdate",
            "SubscribedMessage",
            "UnknownMessage",
            "UnsubscribedMessage",
        ]
    )
    for name in openmarkets.__all__:
        assert hasattr(openmarkets, name)


# ---------------------------------------------------------------------------- models


def test_seed_update_decodes_prices_and_sizes_exactly() -> None:
    message = decode_message(SEED_UPDATE)
    assert isinstance(message, LiquidityUpdate)
    (change,) = message.changed_entries
    assert change.price == Decimal("0.49") and isinstance(change.price, Decimal)
    assert change.available == Decimal(5400)
    assert message.timestamp is not None and message.timestamp.microsecond == 234_000


def test_number_text_is_kept_exactly_not_through_float() -> None:
    raw = b'{"type":"liquidity.update","contest_id":"c","changed_entries":[{"liquidity_hash":"h","partner_id":"p","price":0.1,"available":1234.56}]}'
    message = decode_message(raw)
    assert isinstance(message, LiquidityUpdate)
    assert str(message.changed_entries[0].price) == "0.1"
    assert message.changed_entries[0].available == Decimal("1234.56")


def test_greeting_is_parsed() -> None:
    message = decode_message(
        b'{"type":"connected","organization_id":"org_1","api_key_id":"key_2","server_time":"2026-04-17T22:00:00Z"}'
    )
    assert isinstance(message, ConnectedMessage)
    assert (message.organization_id, message.api_key_id) == ("org_1", "key_2")
    assert message.server_time.year == 2026 and message.server_time.utcoffset() is not None


def test_contest_state_update_decodes() -> None:
    message = decode_message(b'{"type":"contest_state.update","contest_id":"c","state":"live"}')
    assert message == ContestStateUpdate(contest_id="c", state="live")


def test_unknown_type_is_kept_raw_not_an_error() -> None:
    raw = b'{"type":"opportunity.update","x":1}'
    message = decode_message(raw)
    assert message == UnknownMessage(type="opportunity.update", raw=raw)


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1,2]", b'{"type":"liquidity.update","contest_id":5}', b'{"no_type":1}', b'"text"'],
)
def test_malformed_frames_raise_protocol_errors(raw: bytes) -> None:
    with pytest.raises(OpenMarketsProtocolError):
        decode_message(raw)


def test_snapshot_decodes_and_rejects_garbage() -> None:
    snapshot = decode_snapshot(
        b'{"contest_id":"c","entries":[{"liquidity_hash":"h","partner_id":"p","price":0.5,"available":3}]}'
    )
    assert snapshot.entries[0].price == Decimal("0.5")
    with pytest.raises(OpenMarketsProtocolError):
        decode_snapshot(b'{"entries":[]}')


def test_commands_encode_as_in_the_seed() -> None:
    assert encode_command("subscribe", "liquidity", ["ct_abc123", "ct_def456"]) == (
        b'{"action":"subscribe","channel":"liquidity","contest_ids":["ct_abc123","ct_def456"]}'
    )
    assert encode_command("ping") == b'{"action":"ping"}'


def test_error_codes_map_to_typed_errors() -> None:
    assert isinstance(error_for_code("invalid_message", "x"), InvalidMessageError)
    assert isinstance(error_for_code("invalid_channel", "x"), InvalidChannelError)
    assert isinstance(error_for_code("contest_limit_exceeded", "x"), ContestLimitError)
    other = error_for_code("rate_limited", "slow down")
    assert type(other) is OpenMarketsServerError and other.code == "rate_limited"
    auth = OpenMarketsAuthError("no", status=401)
    assert isinstance(auth, KalshiAuthError) and isinstance(auth, KalshiError)
    assert RefreshError("x", contest_id="c", status=503).retryable
    assert not RefreshError("x", contest_id="c", status=404).retryable


# ---------------------------------------------------------------------------- table


def ready_table(*entries: LiquidityEntry) -> ContestTable:
    table = ContestTable("ct")
    assert table.rebuild(table.invalidate(), entries)
    return table


def test_no_view_before_the_first_snapshot() -> None:
    table = ContestTable("ct")
    assert table.view() is None
    assert not table.apply([entry("a")])  # buffered, not visible
    assert table.view() is None


def test_apply_upserts_and_zero_available_removes() -> None:
    table = ready_table(entry("a"), entry("b"))
    assert table.apply([entry("a", "0.55", "10"), entry("c", "0.20", "5"), entry("b", available="0")])
    view = table.view()
    assert view is not None
    assert dict(view) == {"a": entry("a", "0.55", "10"), "c": entry("c", "0.20", "5")}


def test_refresh_keeps_the_last_complete_table_visible_then_replays_buffered_updates() -> None:
    table = ready_table(entry("a"), entry("b"))
    before = table.view()
    assert before is not None and not before.stale
    generation = table.invalidate()
    assert not table.apply([entry("a", "0.60"), entry("z", "0.30")])  # arrives during the re-fetch
    during = table.view()
    assert during is not None and during.stale
    assert dict(during) == dict(before)  # never half-built
    snapshot = [entry("a", "0.58"), entry("b", "0.40"), entry("y", "0.10")]
    assert table.rebuild(generation, snapshot)
    after = table.view()
    assert after is not None and not after.stale
    assert dict(after) == {
        "a": entry("a", "0.60"),
        "b": entry("b", "0.40"),
        "y": entry("y", "0.10"),
        "z": entry("z", "0.30"),
    }
    assert after.version > before.version


def test_a_snapshot_for_an_older_generation_is_refused() -> None:
    table = ready_table(entry("a"))
    old = table.invalidate()
    newer = table.invalidate()  # a second refresh_required while the first fetch was in flight
    assert not table.rebuild(old, [entry("x")])
    assert table.refreshing
    assert table.rebuild(newer, [entry("y")])
    view = table.view()
    assert view is not None and set(view) == {"y"}


def test_buffer_overflow_starts_a_new_generation() -> None:
    table = ContestTable("ct", max_buffered=3)
    generation = table.invalidate()
    table.apply([entry("a"), entry("b")])
    table.apply([entry("c"), entry("d")])
    assert table.generation == generation + 1 and table.buffered == 0
    assert not table.rebuild(generation, [])


def test_views_are_immutable_and_cached() -> None:
    table = ready_table(entry("a"))
    view = table.view()
    assert view is not None
    assert table.view() is view
    with pytest.raises(TypeError):
        view["a"] = entry("b")  # type: ignore[index]
    table.apply([entry("b")])
    assert "b" not in view  # the old snapshot did not change
    newer = table.view()
    assert newer is not view and "b" in newer
    assert newer.by_partner("kalshi") == [entry("a"), entry("b")]
    assert newer.partners == frozenset({"kalshi"})
    assert "entries=2" in repr(newer)


hashes = st.sampled_from(["h1", "h2", "h3", "h4"])
entries_st = st.builds(
    entry,
    hashes,
    st.sampled_from(["0.10", "0.49", "0.5", "0.99"]),
    st.sampled_from(["0", "1", "5400", "12.5"]),
)


@settings(max_examples=150, deadline=None)
@given(
    start=st.lists(entries_st, max_size=6),
    snapshot=st.lists(entries_st, max_size=6),
    during=st.lists(st.lists(entries_st, min_size=1, max_size=3), max_size=5),
)
def test_rebuild_equals_snapshot_then_buffered_updates(
    start: list[LiquidityEntry], snapshot: list[LiquidityEntry], during: list[list[LiquidityEntry]]
) -> None:
    table = ready_table(*start)
    generation = table.invalidate()
    for batch in during:
        table.apply(batch)
    assert table.rebuild(generation, snapshot)
    model: dict[str, LiquidityEntry] = {}
    for item in [*snapshot, *(e for batch in during for e in batch)]:
        if item.available == 0:
            model.pop(item.liquidity_hash, None)
        else:
            model[item.liquidity_hash] = item
    view = table.view()
    assert view is not None and dict(view) == model


def test_views_compare_by_contents() -> None:
    a = LiquidityView("c", 1, {"h": entry("h")}, stale=False)
    b = LiquidityView("c", 7, {"h": entry("h")}, stale=True)
    assert a == b and a != LiquidityView("d", 1, {"h": entry("h")}, stale=False)


# ---------------------------------------------------------------------------- placement


def ids(n: int, prefix: str = "ct") -> list[str]:
    return [f"{prefix}_{i:04d}" for i in range(n)]


def test_new_contests_fill_existing_connections_first() -> None:
    placement = place_contests(
        [ids(150), ids(10, "x")], [*ids(150), *ids(10, "x"), *ids(100, "n")], limit=200, max_connections=3
    )
    assert [len(p) for p in placement.existing] == [50, 50]
    assert placement.new_connections == []


def test_contests_spread_over_new_connections_up_to_the_limit() -> None:
    placement = place_contests([[]], ids(600), limit=200, max_connections=3)
    assert [len(p) for p in placement.existing] == [200]
    assert [len(p) for p in placement.new_connections] == [200, 200]
    with pytest.raises(ContestLimitError) as caught:
        place_contests([[]], ids(601), limit=200, max_connections=3)
    assert caught.value.requested == 601 and caught.value.limit == 600
    assert "601 contests" in str(caught.value)


def test_contest_ids_are_checked() -> None:
    assert check_contest_ids(["a", "b", "a"]) == ["a", "b"]
    with pytest.raises(TypeError):
        check_contest_ids("ct_abc")
    with pytest.raises(TypeError):
        check_contest_ids([1])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        check_contest_ids([""])


# ---------------------------------------------------------------------------- urls and redaction

KEY = "om_data_live_S3CRET"


def test_key_goes_into_the_query_and_is_redacted_for_display() -> None:
    url = with_api_key("wss://api.openmarkets.ai/flow/v1/stream?x=1&api_key=old", KEY)
    assert url.endswith(f"api_key={KEY}") and "old" not in url and "x=1" in url
    shown = redact_url(url)
    assert KEY not in shown and "api_key=***" in shown and "x=1" in shown
    assert redact_text(f"GET /flow/v1/stream?api_key={KEY} HTTP/1.1") == "GET /flow/v1/stream?api_key=*** HTTP/1.1"
    assert KEY not in redact_text(f"key is {KEY}", KEY)


def test_rest_url_is_derived_from_the_stream_url() -> None:
    assert rest_url_for("wss://api.openmarkets.ai/flow/v1/stream") == "https://api.openmarkets.ai/flow/v1"
    assert rest_url_for("ws://127.0.0.1:9/flow/v1/stream/?api_key=x") == "http://127.0.0.1:9/flow/v1"


def test_lower_layer_logs_cannot_show_the_key(caplog: pytest.LogCaptureFixture) -> None:
    install_log_filter()
    install_log_filter()  # idempotent
    caplog.set_level(1)
    client = logging.getLogger("picows.client")
    assert not client.isEnabledFor(9)  # picows' raw upgrade-request trace stays off
    client.info("redirected to %s", f"wss://h/flow/v1/stream?api_key={KEY}")
    assert caplog.records and KEY not in caplog.text and "api_key=***" in caplog.text
