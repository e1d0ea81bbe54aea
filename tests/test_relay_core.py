"""The relay's sans-I/O parts: RESP packing, the relay core (streams, ids, buffer, gaps, checkpoints) and the
consumer-side book builder, with no Redis (entries are read back from the commands the core produced)."""

from __future__ import annotations

import msgspec
import pytest

from kalshi.models.markets import Orderbook
from kalshi.relay.books import BookBuilder
from kalshi.relay.checkpoint import decode_checkpoint
from kalshi.relay.core import EntryBuffer, RelayCore
from kalshi.relay.layout import StreamLayout, parse_id, parse_meta, track_seq
from kalshi.relay.resp import XaddHead, pack_command
from kalshi.relay.streams import StreamState, fields_of
from kalshi.relay.subscription import entry_from_fields
from kalshi.ws.lifecycle import Gap, Repaired
from relay_helpers import FakeRedisStore, delta, parse_commands, snapshot

EPOCH = 1_700_000_000_000
BOOKS = "kalshi:stream:orderbook_delta"


def new_core(limit: int = 1000) -> RelayCore:
    return RelayCore(StreamLayout(), epoch=EPOCH, maxlen=5000, buffer=EntryBuffer(limit))


def test_xadd_packing_round_trips() -> None:
    head = XaddHead("k:stream:x", 100)
    data = b'{"type":"ticker","sid":2,"msg":{}}'
    [args] = parse_commands(head.frame(b"5-1", data, 1234567890123456789, b"0.3", 2, 77))
    expected = [b"XADD", b"k:stream:x", b"MAXLEN", b"~", b"100", b"5-1", b"f", data]
    assert args == [*expected, b"m", b"1234567890123456789 0.3 2 77"]
    assert parse_meta(args[-1]) == (1234567890123456789, b"0.3", 2, 77)
    [bare] = parse_commands(XaddHead("k", None).frame(b"1-0", b"x", 5, b"0.0", None, None))
    assert bare == [b"XADD", b"k", b"1-0", b"f", b"x", b"m", b"5 0.0  "]
    assert parse_meta(bare[-1]) == (5, b"0.0", None, None)
    [sid_only] = parse_commands(XaddHead("k", None).frame(b"1-1", b"x", 5, b"0.0", 3, None))
    assert parse_meta(sid_only[-1]) == (5, b"0.0", 3, None)
    assert parse_meta(b"not meta") == (None, b"", None, None)
    assert parse_commands(pack_command("SET", "a", b"b", "EX", 3)) == [[b"SET", b"a", b"b", b"EX", b"3"]]


def test_frames_go_to_their_channel_stream_with_gapless_ids() -> None:
    core = new_core()
    conn = core.connection(0, 0)
    core.frame(conn, b'{"type":"subscribed","id":1,"msg":{"channel":"orderbook_delta","sid":1}}', 1)
    core.frame(conn, snapshot(1, 1, "A", [("0.4000", "10.00")], []), 2)
    core.frame(conn, delta(1, 2, "A", "0.4000", "-5.00"), 3)
    core.frame(conn, b'{"type":"ticker","sid":2,"msg":{"market_ticker":"A"}}', 4)
    core.frame(conn, b"not json", 5)
    store = FakeRedisStore()
    store.drain(core)
    book_ids = [parse_id(entry_id) for entry_id, _ in store.streams[BOOKS]]
    assert book_ids == [(EPOCH, n) for n in range(len(book_ids))]
    kinds = [msgspec.json.decode(f[b"f"])["type"] for _, f in store.streams[BOOKS] if b"f" in f]
    assert kinds == ["subscribed", "orderbook_snapshot", "orderbook_delta"]
    assert [f[b"f"] for _, f in store.streams["kalshi:stream:_other"]][-1] == b"not json"
    assert parse_meta(store.streams["kalshi:stream:ticker"][0][1][b"m"])[1] == b"0.0"
    assert core.book_source == {"A": ("0.0", 1)}
    assert core.last_ids()["orderbook_delta"] == f"{EPOCH}-{len(book_ids) - 1}"


def test_a_full_buffer_drops_counted_entries_and_marks_the_gap() -> None:
    core = new_core(limit=3)
    conn = core.connection(0, 0)
    for seq in range(1, 6):
        core.frame(conn, delta(1, seq, "A", "0.1000", "1.00"), seq)
    assert core.counters.dropped == 2
    store = FakeRedisStore()
    store.drain(core)
    core.frame(conn, delta(1, 6, "A", "0.1000", "1.00"), 6)
    store.drain(core)
    entries = store.streams[BOOKS]
    assert [parse_id(i)[1] for i, _ in entries] == [0, 1, 2, 3, 4]  # ids stay gapless: the loss is the marker
    marker = entries[3][1]
    assert marker[b"k"] == b"gap"
    assert msgspec.json.decode(marker[b"j"]) == {
        "reason": "buffer_overflow",
        "dropped": 2,
        "channel": "orderbook_delta",
    }
    assert core.buffer.appended == 5 and core.buffer.acknowledged == 5


def test_a_new_connection_number_writes_a_connection_entry() -> None:
    core = new_core()
    core.declare(["orderbook_delta", "ticker"])
    core.connection(1, 0)
    assert len(core.buffer) == 0
    core.connection(1, 1)
    store = FakeRedisStore()
    store.drain(core)
    for key in (BOOKS, "kalshi:stream:ticker"):
        [(_, fields)] = store.streams[key]
        assert msgspec.json.decode(fields[b"j"]) == {"c": "1.1", "prev": "1.0", "shard": 1}


def test_checkpoint_commands_are_ordered_key_marker_pointer() -> None:
    core = new_core()
    conn = core.connection(0, 0)
    core.frame(conn, snapshot(1, 1, "A", [("0.4000", "10.00")], [("0.5000", "2.00")]), 1)
    view = Orderbook.from_levels("A", [(4000, 1000)], [(5000, 200)], seq=1, clock=9)
    entry_id = core.checkpoint({"A": view, "B": view})
    commands = parse_commands(b"".join(core.buffer.take(10)))
    assert [c[0] for c in commands] == [b"XADD", b"SET", b"XADD", b"SET"]
    assert commands[1][1] == f"kalshi:checkpoint:{entry_id}".encode()
    assert commands[2][5] == str(entry_id).encode()
    assert commands[3][1:] == [b"kalshi:checkpoint", str(entry_id).encode()]
    checkpoint = decode_checkpoint(commands[1][2])
    assert [b.ticker for b in checkpoint.books] == ["A"]  # B never had a snapshot on a known sid
    assert checkpoint.sids[0].seq == 1


def test_track_seq_rules() -> None:
    assert track_seq(None, 5) == 5
    assert track_seq(5, 9) == 9
    assert track_seq(5, 3) == 5
    assert track_seq(5, 3, snapshot=True) == 3
    assert track_seq(5, 7, control=True) == 5
    assert track_seq(5, 6, control=True) == 6


# ---------------------------------------------------------------------- book builder


def script() -> list[bytes]:
    """Two markets on one sid: snapshots then deltas."""
    frames = [
        b'{"type":"subscribed","id":1,"msg":{"channel":"orderbook_delta","sid":1}}',
        snapshot(1, 1, "A", [("0.4000", "10.00"), ("0.3900", "5.00")], [("0.5500", "3.00")]),
        snapshot(1, 2, "B", [("0.1000", "1.00")], []),
    ]
    seq = 3
    for i in range(40):
        ticker = "A" if i % 3 else "B"
        frames.append(delta(1, seq, ticker, f"0.2{i % 7:03d}", "2.00" if i % 2 == 0 else "1.00"))
        seq += 1
    return frames


def relay(frames: list[bytes], core: RelayCore | None = None) -> tuple[RelayCore, FakeRedisStore]:
    core = core or new_core()
    conn = core.connection(0, 0)
    store = FakeRedisStore()
    for i, data in enumerate(frames):
        core.frame(conn, data, i)
    store.drain(core)
    return core, store


def replay(entries: list[tuple[str, dict[bytes, bytes]]], builder: BookBuilder | None = None) -> BookBuilder:
    builder = builder or BookBuilder()
    for entry_id, fields in entries:
        builder.apply(entry_id, fields)
    return builder


def test_checkpoint_plus_entries_equals_reading_from_the_start() -> None:
    frames = script()
    core = new_core()
    store = FakeRedisStore()
    conn = core.connection(0, 0)
    truth = BookBuilder()  # what the relay's client holds: every frame applied
    for i, data in enumerate(frames):
        core.frame(conn, data, i)
        store.drain(core)
        truth.apply(*store.streams[BOOKS][-1])
        if i == 20:
            core.checkpoint(truth.books)
            store.drain(core)
            truth.apply(*store.streams[BOOKS][-1])  # the checkpoint entry
    full = replay(store.streams[BOOKS])
    latest = store.keys["kalshi:checkpoint"].decode()
    late = BookBuilder()
    late.load_checkpoint(decode_checkpoint(store.keys[f"kalshi:checkpoint:{latest}"]), start=True)
    after = [(i, f) for i, f in store.streams[BOOKS] if parse_id(i) > parse_id(latest)]
    replay(after, late)
    assert dict(full.books) == dict(late.books) == dict(truth.books)
    assert set(full.books) == {"A", "B"}


def test_the_core_keeps_its_own_books_for_checkpoints() -> None:
    frames = script()
    core, store = relay(frames[:20])
    entry_id = core.checkpoint()  # no books given: the core's own, kept from the frames it relayed
    core, store2 = relay(frames[20:], core)
    truth = replay([*store.streams[BOOKS], *store2.streams[BOOKS]])
    checkpoint = decode_checkpoint(store2.keys[f"kalshi:checkpoint:{entry_id}"])  # drained with the rest
    late = BookBuilder()
    late.load_checkpoint(checkpoint, start=True)
    replay([(i, f) for i, f in store2.streams[BOOKS] if parse_id(i) > parse_id(entry_id)], late)
    assert dict(core.books.books) == dict(truth.books) == dict(late.books)
    assert set(truth.books) == {"A", "B"}
    # A seq gap makes the sid's books stale on the relay too: the next checkpoint leaves them out.
    core, _ = relay([delta(1, 99, "A", "0.2000", "1.00")], core)
    assert dict(core.books.books) == {}
    core.buffer.take(len(core.buffer))
    gapped = core.checkpoint()
    assert gapped is not None
    [set_command] = [c for c in parse_commands(b"".join(core.buffer.take(10))) if c[1].endswith(gapped.encode())]
    assert decode_checkpoint(set_command[2]).books == []
    core, _ = relay([snapshot(1, 100, "B", [("0.1500", "4.00")], [])], core)
    assert dict(core.books.books) == {"B": Orderbook.from_levels("B", [(1500, 400)], seq=100)}
    # A new connection of the shard: its books restart from their new snapshots.
    core.connection(0, 1)
    assert dict(core.books.books) == {}


def test_apply_entries_equals_apply_one_by_one() -> None:
    frames = script()
    frames.insert(25, delta(1, 90, "A", "0.2000", "1.00"))  # a seq gap: the sid's books go stale
    frames.append(snapshot(1, 91, "A", [("0.3000", "1.00")], []))
    _, store = relay(frames)
    entries = [entry_from_fields("orderbook_delta", i, f) for i, f in store.streams[BOOKS]]
    del entries[30]  # a hole: trimmed
    one = BookBuilder()
    for entry in entries:
        one.apply(entry.id, entry.stored)
    batched = BookBuilder()
    changed = [batched.apply_entries(entries[i : i + 7]) for i in range(0, len(entries), 7)]
    assert dict(batched.books) == dict(one.books)

    def described(events: list[object]) -> list[tuple[object, ...]]:  # at_ms differs: when each was made
        return [
            (type(e).__name__, *(getattr(e, n) for n in ("sid", "markets", "reason") if hasattr(e, n))) for e in events
        ]

    assert described(batched.events()) == described(one.events())
    assert batched.stats == one.stats
    assert batched.position == one.position
    assert changed[0] == ["A", "B"]  # each changed ticker once per read
    assert batched.apply_entries(entries[-3:]) == []  # re-read: already applied


@pytest.mark.parametrize(
    "body",
    [
        b'"not an object"',
        b'{"market_ticker":7,"side":"yes","price_dollars":"0.2000","delta_fp":"1.00"}',
        b'{"market_ticker":"A","side":"yes","price_dollars":"0.2000","delta_fp":"1.00","clock":"soon"}',
    ],
)
def test_a_malformed_delta_hides_the_sids_books_on_the_relay_and_consumers(body: bytes) -> None:
    frames = script()[:6]
    frames.append(b'{"type":"orderbook_delta","sid":1,"seq":6,"msg":%b}' % body)
    core, store = relay(frames)
    consumer = replay(store.streams[BOOKS])
    assert dict(core.books.books) == dict(consumer.books) == {}
    [gap] = [e for e in consumer.events() if isinstance(e, Gap)]
    assert gap.reason == "bad_delta_malformed" and set(gap.markets) == {"A", "B"}


def test_a_delta_with_a_bad_price_hides_only_its_market() -> None:
    frames = [*script()[:6], delta(1, 6, "A", "1.5000", "1.00")]  # above $1
    core, store = relay(frames)
    consumer = replay(store.streams[BOOKS])
    assert set(core.books.books) == set(consumer.books) == {"B"}


def test_seq_gap_hides_the_sids_books_until_their_snapshots() -> None:
    frames = script()[:10]
    frames.append(delta(1, 12, "A", "0.2000", "1.00"))  # seq 10 and 11 never came
    frames.append(delta(1, 13, "A", "0.2000", "1.00"))
    _, store = relay(frames)
    builder = replay(store.streams[BOOKS])
    assert dict(builder.books) == {}
    [gap] = [e for e in builder.events() if isinstance(e, Gap)]
    assert gap.reason == "seq_gap" and set(gap.markets) == {"A", "B"} and (gap.expected, gap.received) == (10, 12)
    _, store2 = relay([snapshot(1, 14, "A", [("0.3000", "1.00")], [])])
    [(_, repair)] = [e for e in store2.streams[BOOKS] if b"f" in e[1]]
    builder.apply(f"{EPOCH}-{parse_id(store.streams[BOOKS][-1][0])[1] + 1}", repair)
    assert list(builder.books) == ["A"]
    assert builder.books["A"] == Orderbook.from_levels("A", [(3000, 100)])
    assert any(isinstance(e, Repaired) and e.markets == ("A",) for e in builder.events())


def test_trimmed_entries_hide_books_until_the_next_checkpoint() -> None:
    frames = script()
    core = new_core()
    store = FakeRedisStore()
    conn = core.connection(0, 0)
    truth = BookBuilder()
    for i, data in enumerate(frames):
        core.frame(conn, data, i)
        store.drain(core)
        truth.apply(*store.streams[BOOKS][-1])
    core.checkpoint(truth.books)
    store.drain(core)
    entries = store.streams[BOOKS]
    reader = BookBuilder()
    replay(entries[:8], reader)
    replay(entries[12:], reader)  # four entries trimmed away before this reader got them
    gaps = [e for e in reader.events() if isinstance(e, Gap)]
    assert gaps[0].reason == "trimmed" and gaps[0].received == 4
    assert reader.stats.missing_entries == 4
    assert reader.wants_checkpoint is not None
    reader.load_checkpoint(decode_checkpoint(store.keys[reader.wants_checkpoint]))
    assert dict(reader.books) == dict(truth.books)


def test_a_new_relay_run_or_connection_makes_books_stale() -> None:
    _, store = relay(script()[:5])
    builder = replay(store.streams[BOOKS])
    assert set(builder.books) == {"A", "B"}
    fields = {b"k": b"connection", b"j": b'{"c":"0.1","prev":"0.0","shard":0}'}
    builder.apply(f"{EPOCH}-99", fields)  # also an id hole
    assert dict(builder.books) == {}
    builder2 = replay(store.streams[BOOKS])
    builder2.apply(f"{EPOCH + 5}-0", {b"k": b"relay_start", b"j": b"{}"})
    assert dict(builder2.books) == {}


def test_duplicates_and_re_reads_change_nothing() -> None:
    _, store = relay(script())
    builder = replay(store.streams[BOOKS])
    before = dict(builder.books)
    replay(store.streams[BOOKS][-5:], builder)  # a re-read after reconnecting
    assert dict(builder.books) == before
    assert builder.stats.gaps == 0


def test_tickers_filter_what_books_shows() -> None:
    _, store = relay(script())
    builder = replay(store.streams[BOOKS], BookBuilder(["B"]))
    assert list(builder.books) == ["B"]
    with pytest.raises(KeyError):
        builder.books["A"]


@pytest.mark.parametrize("module", ["core.py", "books.py", "resp.py", "layout.py", "checkpoint.py"])
def test_relay_cores_import_no_io(module: str) -> None:
    import ast
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "src" / "kalshi" / "relay" / module
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    assert not roots & {"asyncio", "socket", "redis", "picows", "aiohttp", "httpx", "selectors", "ssl"}


def test_stream_state_finds_holes_by_the_ids() -> None:
    state = StreamState("k", "ticker", f"{EPOCH}-4")
    read = [[f"{EPOCH}-{n}".encode(), []] for n in (5, 6, 7)]
    assert state.follows_on(read) and state.last == f"{EPOCH}-7"
    assert not state.follows_on([[f"{EPOCH}-9".encode(), []]])  # entry 8 is missing: entry by entry
    assert state.advance(f"{EPOCH}-9") == (8, 9)
    assert state.advance(f"{EPOCH}-10") is None
    assert state.advance(f"{EPOCH + 1}-0") is None  # a new relay run: not a hole (its start entry tells)
    assert not state.follows_on([[f"{EPOCH + 1}-1".encode(), []], [f"{EPOCH + 1}-3".encode(), []]])
    assert fields_of([b"f", b"x", b"m", b"1 0.0  "]) == {b"f": b"x", b"m": b"1 0.0  "}


def test_a_bad_update_asks_for_a_snapshot_of_that_market_and_a_seq_gap_does_not() -> None:
    # The relay re-snapshots what needs_snapshot names (the streaming client repairs seq gaps by itself).
    core, _ = relay([*script()[:6], delta(1, 6, "A", "1.5000", "1.00")])
    assert core.books.needs_snapshot == {"A"}
    relay([snapshot(1, 7, "A", [("0.3000", "1.00")], [])], core)
    assert core.books.needs_snapshot == set()
    assert core.books.books["A"] == Orderbook.from_levels("A", [(3000, 100)])
    gapped, _ = relay([*script()[:10], delta(1, 12, "A", "0.2000", "1.00")])
    assert gapped.books.needs_snapshot == set()


def test_books_are_hidden_at_the_gap_of_entries_redis_refused() -> None:
    core = new_core()
    conn = core.connection(0, 0)
    core.frame(conn, b'{"type":"subscribed","id":1,"msg":{"channel":"orderbook_delta","sid":1}}', 1)
    core.frame(conn, snapshot(1, 1, "A", [("0.4000", "10.00")], []), 2)
    store = FakeRedisStore()
    store.drain(core)
    core.refused(BOOKS, 3)  # the publisher saw 3 entries refused, and later ones stored: lost for good
    core.mark_gaps()
    store.drain(core)
    entries = [entry_from_fields("orderbook_delta", i, f) for i, f in store.streams[BOOKS]]
    assert entries[-1].kind == "gap"
    assert entries[-1].body == {"reason": "redis_refused", "dropped": 3, "channel": "orderbook_delta"}
    assert core.counters.gaps_marked == 1
    for batched in (True, False):
        builder = BookBuilder()
        if batched:
            builder.apply_entries(entries[:-1])
        else:
            for entry in entries[:-1]:
                builder.apply(entry.id, entry.stored)
        assert "A" in builder.books
        if batched:
            builder.apply_entries(entries[-1:])
        else:
            builder.apply(entries[-1].id, entries[-1].stored)
        assert "A" not in builder.books  # until repaired
        assert [e.reason for e in builder.events() if isinstance(e, Gap)] == ["redis_refused"]
