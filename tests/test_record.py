"""Recorder, reader and replay server: Parquet written under faults, read back with DuckDB, replayed to a client."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import kalshi.record
from kalshi.models.markets import Orderbook
from kalshi.record import Recorder, RecorderStats, Recording, RecordingError, ReplayServer, capture
from kalshi.record._writer import WriterThread
from kalshi.record.schema import SCHEMA, decode_envelope
from kalshi.sim import Simulator
from kalshi.sim.ws.firehose import firehose
from kalshi.ws import KalshiWebSocket
from kalshi.ws.models import OrderbookDeltaMessage, OrderbookSnapshotMessage, TickerMessage


def delta(seq: int, ticker: str = "MKT-A", sid: int = 1) -> bytes:
    return (
        b'{"type":"orderbook_delta","sid":%d,"seq":%d,"msg":{"market_ticker":"%s","price_dollars":"0.5100",'
        b'"delta_fp":"1.00","side":"yes","ts_ms":%d}}' % (sid, seq, ticker.encode(), 1_700_000_000_000 + seq)
    )


def sql(directory: Path, query: str) -> list[tuple[object, ...]]:
    """Run ``query`` with ``rec`` bound to every Parquet file of ``directory``."""
    con = duckdb.connect()
    con.execute(f"CREATE VIEW rec AS SELECT * FROM read_parquet('{directory}/*.parquet')")
    return con.execute(query).fetchall()


# ------------------------------------------------------------------------------------------- Recorder


def test_recorder_rows_events_rotation_and_format(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    recorder = Recorder(out, batch_rows=100, max_rows_per_file=450, metadata={"channels": "orderbook_delta"})
    with recorder:
        recorder.add_frame(b'{"type":"subscribed","id":1,"msg":{"channel":"orderbook_delta","sid":1}}', 5)
        for seq in range(1, 1001):
            if seq != 300:  # lost
                recorder.add_frame(delta(seq), 1_000 + seq)
            if seq == 600:  # sent twice
                recorder.add_frame(delta(seq), 1_000 + seq)
        recorder.add_frame(b'{"type":"ticker","sid":2,"msg":{"market_ticker":"MKT-A","ts":1700000000}}', 3000)
        recorder.add_frame(b"\xff{not json", 3001)
        deadline = time.monotonic() + 5
        while not list(out.glob("*.parquet.tmp")) and time.monotonic() < deadline:
            time.sleep(0.01)  # the writer thread opens the file when it takes the first batch of the file
        assert list(out.glob("*.parquet.tmp")), "the open file is not visible under its final name"
        recorder.new_connection({"why": "test"})
        recorder.add_frame(delta(1), 4000)
    stats = recorder.stats
    assert not list(out.glob("*.tmp"))
    assert stats.frames == 1 + 999 + 1 + 1 + 1 + 1
    assert (stats.gaps, stats.duplicates, stats.malformed, stats.reconnects) == (1, 1, 1, 1)
    assert len(stats.files) == len(list(out.glob("*.parquet"))) >= 3
    assert sorted(stats.files) == stats.files
    assert sql(out, "SELECT count(*) FROM rec WHERE kind = 'frame'") == [(stats.frames,)]
    assert sql(out, "SELECT count(*), count(DISTINCT n), min(n), max(n) FROM rec") == [
        (stats.rows_written, stats.rows_written, 0, stats.rows_written - 1)
    ]
    assert sql(out, "SELECT kind, sid, seq, detail FROM rec WHERE kind IN ('gap', 'duplicate') ORDER BY n") == [
        ("gap", 1, 301, '{"expected":300,"received":301}'),
        ("duplicate", 1, 600, '{"last":600}'),
    ]
    # The frame row keeps what the envelope said; channel comes from the subscribed message.
    assert sql(out, "SELECT channel, type, ts_ms, recv_ns FROM rec WHERE kind = 'frame' AND seq = 2 AND conn = 1") == [
        ("orderbook_delta", "orderbook_delta", 1_700_000_000_002, 1_002)
    ]
    assert sql(out, "SELECT ts_ms, channel FROM rec WHERE type = 'ticker'") == [(1_700_000_000_000, "ticker")]
    [(bad,)] = sql(out, "SELECT frame FROM rec WHERE kind = 'frame' AND type IS NULL")
    assert bad == "\ufffd{not json"
    assert sql(out, "SELECT conn, count(*) FROM rec WHERE kind = 'frame' GROUP BY conn ORDER BY conn") == [
        (1, stats.frames - 1),
        (2, 1),
    ]
    first = pq.ParquetFile(stats.files[0])
    assert first.schema_arrow.remove_metadata() == SCHEMA
    assert first.metadata.num_row_groups >= 4
    assert first.metadata.row_group(0).column(0).compression == "ZSTD"
    meta = first.schema_arrow.metadata
    assert meta[b"kalshi.format"] == b"1" and meta[b"kalshi.channels"] == b"orderbook_delta"
    start, stop = sql(out, "SELECT detail FROM rec WHERE kind IN ('start', 'stop') ORDER BY n")
    assert json.loads(str(start[0]))["channels"] == "orderbook_delta"
    assert json.loads(str(stop[0]))["frames"] == stats.frames


def test_recorder_rotates_by_time_on_tick(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, max_seconds_per_file=0.01, flush_interval=60)
    with recorder:
        recorder.add_frame(delta(1))
        time.sleep(0.02)  # the file is now older than max_seconds_per_file
        recorder.tick()
        recorder.add_frame(delta(2))
    assert len(recorder.stats.files) == 2
    assert sql(tmp_path, "SELECT count(*) FROM rec WHERE kind = 'frame'") == [(2,)]


def test_recorder_lifecycle_errors(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "r")
    with pytest.raises(RecordingError, match="not recording"):
        recorder.add_frame(delta(1))
    recorder.start()
    with pytest.raises(RecordingError, match="one session"):
        recorder.start()
    stats = recorder.close()
    assert recorder.close() is stats  # idempotent
    with pytest.raises(RecordingError):
        recorder.add_event("gap")
    with pytest.raises(ValueError):
        Recorder(tmp_path, batch_rows=0)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RecordingError, match="cannot create"):
        Recorder(blocker / "sub").start()


def test_recorder_reports_a_failed_write(tmp_path: Path) -> None:
    out = tmp_path / "gone"
    recorder = Recorder(out)
    recorder.start()
    recorder.add_frame(delta(1))
    shutil.rmtree(out)  # the writer cannot create its file any more
    with pytest.raises(RecordingError, match="failed"):
        recorder.close()


def test_envelope_decoder_tolerates_odd_frames() -> None:
    odd = decode_envelope(b'{"type":"ticker","sid":"x","seq":3,"msg":{"market_ticker":5}}')
    assert odd is not None and (odd.type, odd.sid, odd.seq) == ("ticker", None, 3)
    assert decode_envelope(b"[1, 2]") is None
    assert decode_envelope(b'{"type":') is None
    listing = decode_envelope(b'{"type":"ok","id":4,"msg":[{"channel":"ticker","sid":1}]}')
    assert listing is not None and listing.id == 4


async def wait_for_subscriber(sim: Simulator) -> None:
    for _ in range(2000):
        if any(conn.session.subscriptions for conn in sim.connections()):
            return
        await asyncio.sleep(0.005)
    raise AssertionError("nobody subscribed")


async def test_capture_keeps_up_past_the_client_queue(tmp_path: Path) -> None:
    # Nobody iterates the recorder's subscriptions: their queues must never hold back the socket.
    async with Simulator(seed=2, markets=1, rate=0.0, open_access=True) as sim:
        ticker = sim.tickers[0]
        recorder = Recorder(tmp_path, batch_rows=1000)
        recorder.start()

        async def push() -> None:
            await wait_for_subscriber(sim)
            await firehose(sim, ticker, frames=4000)

        pusher = asyncio.create_task(push())
        await capture(
            recorder,
            config=sim.config,
            auth=None,
            channels=["orderbook_delta"],
            markets=[ticker],
            max_frames=4002,
            duration=20,
        )
        await pusher
        stats = recorder.close()
    assert (stats.frames, stats.gaps) == (4002, 0)  # subscribed, snapshot, 4000 deltas
    assert sql(tmp_path, "SELECT count(*), max(seq) FROM rec WHERE type = 'orderbook_delta'") == [(4000, 4001)]


# ------------------------------------------------------------------------------------------- a faulty session


@dataclass
class Session:
    directory: Path
    stats: RecorderStats
    truth: dict[str, Orderbook]
    tickers: list[str]


async def until(predicate: Callable[[], bool], what: str, seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting: {what}")


async def record_faulty_session(out: Path) -> Session:
    """Record books and tickers while the simulator skips a seq, drops the connection and repeats a frame."""
    async with Simulator(seed=21, markets=3, rate=400.0, open_access=True, lifecycle=False) as sim:
        tickers = sim.tickers
        recorder = Recorder(out, batch_rows=64, max_rows_per_file=200)
        recorder.start()
        stop = asyncio.Event()
        stats = recorder.stats

        async def script() -> None:
            await until(lambda: stats.frames > 100, "frames flow")
            sim.faults.skip_seq()
            await until(lambda: stats.resyncs >= len(tickers), "the client repaired the gap")
            await until(lambda: stats.frames > 400, "more frames")
            sim.faults.drop()
            await until(lambda: recorder.conn == 2, "reconnected")
            mark = stats.frames
            await until(lambda: stats.frames > mark + 100, "frames after the reconnect")
            while stats.duplicates == 0:  # a repeated ticker frame has no seq to show it: repeat until a book frame
                sim.faults.duplicate()
                await until(lambda: sim.faults.pending() == 0, "the repeat was sent")
                await asyncio.sleep(0.05)
            await sim.quiesce()
            settled = -1
            while settled != stats.frames:  # everything the simulator wrote has been received
                settled = stats.frames
                await asyncio.sleep(0.1)
            stop.set()

        driver = asyncio.create_task(script())
        try:
            await capture(
                recorder,
                config=sim.config,
                auth=None,
                channels=["orderbook_delta", "ticker"],
                markets=tickers,
                stop=stop,
                duration=30,
            )
        finally:
            if not driver.done():
                driver.cancel()
            await asyncio.gather(driver, return_exceptions=True)
        driver.result()
        truth = {ticker: sim.book(ticker) for ticker in tickers}
        return Session(out, recorder.close(), truth, tickers)


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return asyncio.run(record_faulty_session(tmp_path_factory.mktemp("faulty") / "rec"))


def test_duckdb_reads_counts_back(session: Session) -> None:
    stats = session.stats
    assert sql(session.directory, "SELECT count(*) FROM rec WHERE kind = 'frame'") == [(stats.frames,)]
    assert sql(session.directory, "SELECT count(*) FROM rec") == [(stats.rows_written,)]
    assert len(stats.files) >= 2, "rotated by rows"
    assert sql(session.directory, "SELECT count(DISTINCT session) FROM rec") == [(1,)]
    # Every resync event matches a snapshot that answered the client's get_snapshot.
    [(resyncs, answered)] = sql(
        session.directory,
        "SELECT count(*) FILTER (WHERE kind = 'resync'), "
        "count(*) FILTER (WHERE kind = 'frame' AND type = 'orderbook_snapshot' AND cmd_id IS NOT NULL) FROM rec",
    )
    assert resyncs == answered == stats.resyncs >= len(session.tickers)


def test_seq_continuity_breaks_only_where_events_say(session: Session) -> None:
    breaks = sql(
        session.directory,
        "SELECT conn, sid, prev, seq FROM ("
        "  SELECT n, conn, sid, seq, lag(seq) OVER (PARTITION BY conn, sid ORDER BY n) AS prev"
        "  FROM rec WHERE kind = 'frame' AND seq IS NOT NULL"
        ") WHERE prev IS NOT NULL AND seq <> prev + 1 ORDER BY n",
    )
    events = sql(
        session.directory,
        "SELECT kind, conn, sid, seq, detail FROM rec WHERE kind IN ('gap', 'duplicate') ORDER BY n",
    )
    assert [e[0] for e in events] == ["gap", "duplicate"]
    (_, gap_conn, gap_sid, gap_seq, gap_detail), (_, dup_conn, dup_sid, dup_seq, _) = events
    expected = json.loads(str(gap_detail))["expected"]
    assert breaks == [(gap_conn, gap_sid, expected - 1, gap_seq), (dup_conn, dup_sid, dup_seq, dup_seq)]
    assert gap_seq == expected + 1 and gap_conn == 1 and dup_conn == 2


def test_reconnect_event_separates_the_connections(session: Session) -> None:
    [(last_first, reconnect_at, first_second, disconnects)] = sql(
        session.directory,
        "SELECT max(n) FILTER (WHERE kind = 'frame' AND conn = 1), "
        "min(n) FILTER (WHERE kind = 'reconnect'), "
        "min(n) FILTER (WHERE kind = 'frame' AND conn = 2), "
        "count(*) FILTER (WHERE kind = 'disconnect' AND conn = 1) FROM rec",
    )
    assert last_first < reconnect_at < first_second
    assert disconnects == 1
    assert session.stats.reconnects == 1
    # The new connection starts over: a subscribed answer, then a fresh snapshot of every market.
    first_types = sql(
        session.directory,
        f"SELECT type FROM rec WHERE kind = 'frame' AND conn = 2 AND channel = 'orderbook_delta' "
        f"ORDER BY n LIMIT {1 + len(session.tickers)}",
    )
    assert [t for (t,) in first_types] == ["subscribed"] + ["orderbook_snapshot"] * len(session.tickers)


def test_reader_rebuilds_the_final_books(session: Session) -> None:
    rec = kalshi.record.open(session.directory)
    summary = rec.summary()
    assert summary.frames == session.stats.frames and summary.connections == 2
    assert summary.end_ns is not None and summary.start_ns is not None
    assert set(summary.markets) == set(session.tickers)
    assert rec.books_at(summary.end_ns) == session.truth
    assert rec.book_at(session.tickers[0], summary.start_ns) is None  # before the first snapshot
    last = None
    for _, book in rec.iter_books([session.tickers[1]]):
        last = book
    assert last == session.truth[session.tickers[1]]


def test_reader_books_are_stale_between_gap_and_resync(session: Session) -> None:
    rec = Recording(session.directory)
    [gap] = rec.events(["gap"])
    resyncs = rec.events(["resync"])
    ticker = session.tickers[0]
    assert rec.book_at(ticker, gap.recv_ns - 1) is not None
    assert all(rec.book_at(t, gap.recv_ns) is None for t in session.tickers)
    assert all(rec.book_at(t, resyncs[-1].recv_ns) is not None for t in session.tickers)
    # Going back in time re-reads from the start and agrees with a fresh reader.
    assert rec.book_at(ticker, gap.recv_ns - 1) == Recording(session.directory).book_at(ticker, gap.recv_ns - 1)


def test_reader_messages_are_typed(session: Session) -> None:
    rec = Recording(session.directory)
    messages = list(rec.messages())
    [(data_frames,)] = sql(
        session.directory,
        "SELECT count(*) FROM rec WHERE kind = 'frame' AND type NOT IN ('subscribed', 'ok', 'error', 'unsubscribed')",
    )
    assert len(messages) == data_frames
    kinds = {type(item.message) for item in messages}
    assert {OrderbookSnapshotMessage, OrderbookDeltaMessage, TickerMessage} <= kinds
    tickers = list(rec.messages(channels=["ticker"], markets=[session.tickers[0]]))
    assert tickers and all(item.message.msg.market_ticker == session.tickers[0] for item in tickers)
    assert [item.conn for item in messages] == sorted(item.conn for item in messages)
    assert rec.to_table(["n", "kind"]).num_rows == session.stats.rows_written


def test_open_reports_a_missing_or_unfinished_recording(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="does not exist"):
        kalshi.record.open(tmp_path / "nothing")
    (tmp_path / "kalshi-x-00000.parquet.tmp").write_bytes(b"PAR1")
    with pytest.raises(RecordingError, match="unfinished"):
        kalshi.record.open(tmp_path)


# ------------------------------------------------------------------------------------------- replay


async def test_replay_rebuilds_the_same_books(session: Session) -> None:
    async with ReplayServer(session.directory, speed=None) as server:
        ws = KalshiWebSocket(None, server.config)
        async with ws.connect() as client:
            await client.orderbook(session.tickers)
            await client.subscribe_ticker()
            await server.wait_streams(2)
            listing = await client.list_subscriptions()  # answered after every replayed frame
            assert sorted(channel for channel, _ in listing) == ["orderbook_delta", "ticker"]
            assert dict(client.books) == session.truth
    assert server.connections == 1


async def test_replay_protocol_rewrites_sid_and_seq(session: Session) -> None:
    first, second = session.tickers[0], session.tickers[1]
    async with (
        ReplayServer(session.directory, speed=None) as server,
        aiohttp.ClientSession() as http,
        http.ws_connect(server.ws_url) as ws,
    ):

        async def until_answer(cmd_id: int) -> list[dict[str, object]]:
            frames = []
            while True:
                frame = await ws.receive_json(timeout=10)
                if frame.get("id") == cmd_id and frame["type"] != "orderbook_snapshot":
                    return [*frames, frame]
                frames.append(frame)

        await ws.send_json(
            {"id": 7, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"], "market_ticker": first}}
        )
        subscribed = await ws.receive_json(timeout=10)
        assert subscribed == {"type": "subscribed", "id": 7, "msg": {"channel": "orderbook_delta", "sid": 1}}
        await server.wait_streams(1)
        await ws.send_json({"id": 8, "cmd": "list_subscriptions"})
        *frames, listing = await until_answer(8)
        assert listing == {"type": "ok", "id": 8, "msg": [{"channel": "orderbook_delta", "sid": 1}]}
        # Renumbered 1, 2, 3, ... except at the recording's holes: the recorded gap skips the numbers the recorder
        # missed, the reconnect one more.
        [(gap_detail,)] = sql(session.directory, "SELECT detail FROM rec WHERE kind = 'gap'")
        gap = json.loads(str(gap_detail))
        seqs = [f["seq"] for f in frames]
        jumps = [(a, b) for a, b in itertools.pairwise(seqs) if b != a + 1]
        assert seqs[0] == 1 and len(jumps) == 2 and all(b > a for a, b in jumps)
        assert seqs[-1] == len(frames) + (gap["received"] - gap["expected"]) + 1
        assert all(f["sid"] == 1 and f["msg"]["market_ticker"] == first and "id" not in f for f in frames)  # type: ignore[index]
        # Every recorded (conn, sid, seq) of the market once: the recorded duplicate is not replayed.
        [(recorded,)] = sql(
            session.directory,
            f"SELECT count(*) FROM (SELECT DISTINCT conn, sid, seq FROM rec WHERE kind = 'frame' "
            f"AND market_ticker = '{first}' AND type IN ('orderbook_snapshot', 'orderbook_delta'))",
        )
        assert len(frames) == recorded

        await ws.send_json(
            {
                "id": 9,
                "cmd": "update_subscription",
                "params": {"sid": 1, "action": "get_snapshot", "market_tickers": [first]},
            }
        )
        snapshot = await ws.receive_json(timeout=10)
        assert (snapshot["type"], snapshot["id"], snapshot["seq"]) == ("orderbook_snapshot", 9, seqs[-1] + 1)
        levels = session.truth[first].to_dict()
        assert snapshot["msg"].get("yes_dollars_fp", []) == levels["yes"]
        assert snapshot["msg"].get("no_dollars_fp", []) == levels["no"]

        await ws.send_json(
            {
                "id": 10,
                "cmd": "update_subscription",
                "params": {"sids": [1], "action": "add_markets", "market_tickers": [second]},
            }
        )
        ok = await ws.receive_json(timeout=10)
        assert ok["type"] == "ok" and ok["msg"] == {"market_tickers": sorted([first, second])}
        added = await ws.receive_json(timeout=10)
        assert added["msg"]["market_ticker"] == second and added["seq"] == seqs[-1] + 2

        await ws.send_json({"id": 11, "cmd": "unsubscribe", "params": {"sids": [1]}})
        assert (await ws.receive_json(timeout=10))["type"] == "unsubscribed"
        await ws.send_json({"id": 12, "cmd": "shout"})
        assert (await ws.receive_json(timeout=10))["msg"]["code"] == 5
        await ws.send_str("not json")
        assert (await ws.receive_json(timeout=10))["msg"]["code"] == 1
        await ws.send_json({"id": 13, "cmd": "subscribe", "params": {}})
        assert (await ws.receive_json(timeout=10))["msg"]["code"] == 3


async def test_replay_paced_and_filtered(session: Session) -> None:
    rec = Recording(session.directory)
    summary = rec.summary()
    assert summary.end_ns is not None and summary.start_ns is not None
    # Pacing keeps the recorded spacing; at this speed the whole session takes a few milliseconds.
    async with ReplayServer(rec, speed=1000.0) as server:
        ws = KalshiWebSocket(None, server.config)
        async with ws.connect() as client:
            views = await client.orderbook([session.tickers[2]])
            await server.wait_streams(1)
            await client.list_subscriptions()
            assert client.books == {session.tickers[2]: session.truth[session.tickers[2]]}
            assert views.queue.qsize() >= 1
    with pytest.raises(ValueError):
        ReplayServer(rec, speed=0)


def snapshot(seq: int, ticker: str = "MKT-A", sid: int = 1, cmd_id: int | None = None) -> bytes:
    answer = b'"id":%d,' % cmd_id if cmd_id is not None else b""
    return (
        b'{"type":"orderbook_snapshot",%s"sid":%d,"seq":%d,"msg":{"market_ticker":"%s",'
        b'"yes_dollars_fp":[["0.5100","10.00"]]}}' % (answer, sid, seq, ticker.encode())
    )


def subscribed(sid: int = 1, channel: str = "orderbook_delta") -> bytes:
    return b'{"type":"subscribed","id":1,"msg":{"channel":"%s","sid":%d}}' % (channel.encode(), sid)


async def replayed_seqs(directory: Path, channel: str) -> list[int]:
    """The seq of every data frame the replay server sends one ``channel`` subscription."""
    async with (
        ReplayServer(directory, speed=None) as server,
        aiohttp.ClientSession() as http,
        http.ws_connect(server.ws_url) as ws,
    ):
        await ws.send_json({"id": 1, "cmd": "subscribe", "params": {"channels": [channel]}})
        assert (await ws.receive_json(timeout=10))["type"] == "subscribed"
        await server.wait_streams(1)
        await ws.send_json({"id": 2, "cmd": "list_subscriptions"})
        seqs = []
        while (frame := await ws.receive_json(timeout=10)).get("id") != 2:
            seqs.append(frame["seq"])
        return seqs


async def test_replay_keeps_a_recorded_gap_visible(tmp_path: Path) -> None:
    # seq 3 never reached the recorder: a client of the replay must see the hole (and resync), not apply
    # delta 4 to a book that lacks delta 3.
    with Recorder(tmp_path) as recorder:
        for data in (subscribed(), snapshot(1), delta(2), delta(4), snapshot(5, cmd_id=9), delta(6)):
            recorder.add_frame(data)
    assert recorder.stats.gaps == 1
    assert await replayed_seqs(tmp_path, "orderbook_delta") == [1, 2, 4, 5, 6]


async def test_replay_marks_a_recorded_reconnect_as_a_gap(tmp_path: Path) -> None:
    # Trades sent while the recorder was reconnecting are not in the recording, and no snapshot repairs that.
    def trade(seq: int) -> bytes:
        return b'{"type":"trade","sid":1,"seq":%d,"msg":{"market_ticker":"MKT-A","count_fp":"1.00"}}' % seq

    with Recorder(tmp_path) as recorder:
        for data in (subscribed(channel="trade"), trade(1), trade(2)):
            recorder.add_frame(data)
        recorder.new_connection()
        for data in (subscribed(channel="trade"), trade(1), trade(2)):
            recorder.add_frame(data)
    assert await replayed_seqs(tmp_path, "trade") == [1, 2, 4, 5]


class InterruptedPut:
    """A writer queue whose first ``put`` is interrupted by Ctrl-C (as while waiting for a busy writer)."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.interrupted = False

    def put(self, item: object) -> None:
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        self.real.put(item)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


def test_ctrl_c_while_handing_over_a_batch_keeps_it(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, batch_rows=10)
    with pytest.raises(KeyboardInterrupt), recorder:
        assert recorder._writer is not None
        recorder._writer.queue = InterruptedPut(recorder._writer.queue)  # type: ignore[assignment]
        for seq in range(1, 31):
            recorder.add_frame(delta(seq))
    # The first batch (start, connect and 8 frames) filled up at frame 8, where Ctrl-C hit: every frame up to
    # the interrupt is in the file, none dropped.
    assert sql(tmp_path, "SELECT count(*), max(seq) FROM rec WHERE kind = 'frame'") == [(8, 8)]
    assert sql(tmp_path, "SELECT count(*), count(DISTINCT n), max(n) FROM rec") == [
        (recorder.stats.rows_written, recorder.stats.rows_written, recorder.stats.rows_written - 1)
    ]


class InterruptedAfterPut(InterruptedPut):
    """A writer queue whose first ``put`` takes the item, then Ctrl-C hits (before the caller moves on)."""

    def put(self, item: object) -> None:
        self.real.put(item)  # type: ignore[attr-defined]
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt


def test_ctrl_c_right_after_handing_over_a_batch_writes_it_once(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path, batch_rows=10)
    with pytest.raises(KeyboardInterrupt), recorder:
        assert recorder._writer is not None
        recorder._writer.queue = InterruptedAfterPut(recorder._writer.queue)  # type: ignore[assignment]
        for seq in range(1, 31):
            recorder.add_frame(delta(seq))
    # Before, close() handed the same batch over again (and added the stop event to it): every row twice.
    assert sql(tmp_path, "SELECT count(*), max(seq) FROM rec WHERE kind = 'frame'") == [(8, 8)]
    assert sql(tmp_path, "SELECT count(*), count(DISTINCT n) FROM rec") == [(11, 11)]  # start, connect, 8, stop
    assert sql(tmp_path, "SELECT count(*) FROM rec WHERE kind = 'stop'") == [(1,)]


def test_ctrl_c_while_closing_still_finishes_the_last_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A second Ctrl-C while close() waits for the writer: the process would exit with the last file still .tmp
    # (no footer, every row of it unreadable), since the writer thread is a daemon.
    release = threading.Event()
    close_file = WriterThread._close_file

    def slow_close_file(self: WriterThread) -> None:
        release.wait()
        close_file(self)

    monkeypatch.setattr(WriterThread, "_close_file", slow_close_file)
    recorder = Recorder(tmp_path)
    recorder.start()
    recorder.add_frame(delta(1))
    writer = recorder._writer
    assert writer is not None
    join = writer.join
    interrupts = iter([KeyboardInterrupt()])

    def interrupted_join(timeout: float | None = None) -> None:
        if (interrupt := next(interrupts, None)) is not None:
            raise interrupt
        release.set()
        join(timeout)

    monkeypatch.setattr(writer, "join", interrupted_join)
    try:
        with pytest.raises(KeyboardInterrupt):
            recorder.close()
        alive = writer.is_alive()
    finally:
        release.set()
        join()
    assert not alive, "close() gave up on the writer before the last file was complete"
    assert [path.name for path in tmp_path.iterdir()] == [recorder.stats.files[0].name]
    assert sql(tmp_path, "SELECT count(*) FROM rec WHERE kind = 'frame'") == [(1,)]


@pytest.fixture
def small_recording(tmp_path: Path) -> Path:
    out = tmp_path / "rec"
    with Recorder(out, batch_rows=10, max_rows_per_file=20) as recorder:
        for seq in range(1, 50):
            recorder.add_frame(delta(seq))
    return out


def test_open_names_a_file_cut_short(small_recording: Path) -> None:
    middle = sorted(small_recording.glob("*.parquet"))[1]
    data = middle.read_bytes()
    middle.write_bytes(data[: len(data) // 2])  # e.g. copied while the disk filled up
    with pytest.raises(RecordingError, match=rf"{middle.name} is not a complete Parquet file.*move it out"):
        kalshi.record.open(small_recording)


def test_open_names_a_file_that_is_not_a_recording(small_recording: Path) -> None:
    pq.write_table(pa.table({"ticker": ["MKT-A"], "pnl": ["1.00"]}), small_recording / "notes.parquet")
    with pytest.raises(RecordingError, match=r"notes.parquet is not a kalshi recording file \(no column n, kind"):
        kalshi.record.open(small_recording)


def test_open_refuses_a_newer_recording_format(small_recording: Path) -> None:
    first = sorted(small_recording.glob("*.parquet"))[0]
    table = pq.read_table(first)
    newer = small_recording / "kalshi-newer-00000.parquet"
    pq.write_table(table.replace_schema_metadata({b"kalshi.format": b"2"}), newer)
    with pytest.raises(RecordingError, match=r"kalshi-newer-00000.parquet is recording format 2.*reads format 1"):
        kalshi.record.open(small_recording)


def test_reader_takes_files_rewritten_with_other_column_types(small_recording: Path) -> None:
    # pandas and polars write int64 and large strings: still the same recording.
    files = sorted(small_recording.glob("*.parquet"))
    expected = list(Recording(small_recording).rows())
    table = pq.read_table(files[0])
    table = table.cast(pa.schema([pa.field(f.name, pa.int64() if f.name == "conn" else f.type) for f in table.schema]))
    table = table.set_column(1, "kind", table.column("kind").cast(pa.large_string()))
    pq.write_table(table, files[0])
    rec = Recording(small_recording)
    assert list(rec.rows()) == expected
    assert rec.to_table().num_rows == len(expected)
    assert rec.summary().frames == 49


def test_open_warns_of_unfinished_files_beside_finished_ones(
    small_recording: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (small_recording / "kalshi-crashed-00003.parquet.tmp").write_bytes(b"PAR1")  # a recorder killed mid-file
    with caplog.at_level("WARNING", logger="kalshi.record.reader"):
        rec = kalshi.record.open(small_recording)
    assert rec.summary().frames == 49
    assert "not reading 1 unfinished file(s)" in caplog.text and "kalshi-crashed-00003.parquet.tmp" in caplog.text


def test_from_redis_closes_every_shard_when_one_fails(tmp_path: Path) -> None:
    from kalshi.record.from_redis import _ShardRecorders

    shards = _ShardRecorders(tmp_path, Recorder)
    shards.frame("0.1", delta(1), None)
    shards.frame("1.1", delta(1), None)
    shutil.rmtree(tmp_path / "shard-0")  # shard 0 cannot write any more
    with pytest.raises(RecordingError, match="shard-0"):
        shards.close()
    # Shard 1's buffered rows are written all the same.
    assert sql(tmp_path / "shard-1", "SELECT count(*) FROM rec WHERE kind = 'frame'") == [(1,)]


async def test_capture_stops_at_the_first_failed_write(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Disk full: the frame tap raised into the client, which dropped the connection and reconnected, again and
    # again, with nothing written any more, until the next timed flush noticed.
    def disk_full(self: WriterThread, batch: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(WriterThread, "_write", disk_full)
    async with Simulator(seed=2, markets=1, rate=0.0, open_access=True) as sim:
        ticker = sim.tickers[0]
        recorder = Recorder(tmp_path, batch_rows=10, flush_interval=3600)
        recorder.start()

        async def push() -> None:
            await wait_for_subscriber(sim)
            await firehose(sim, ticker, frames=200)

        pusher = asyncio.create_task(push())
        with pytest.raises(RecordingError, match="No space left"):
            await capture(
                recorder, config=sim.config, auth=None, channels=["orderbook_delta"], markets=[ticker], duration=20
            )
        pusher.cancel()
        await asyncio.gather(pusher, return_exceptions=True)
        assert recorder.stats.reconnects == 0
        with pytest.raises(RecordingError):
            recorder.close()


def test_files_are_read_in_session_order_even_past_ten_sessions_in_one_second(tmp_path: Path) -> None:
    from kalshi.record.reader import recording_order

    source = tmp_path / "one"
    with Recorder(source) as recorder:
        recorder.add_frame(b'{"type":"ticker","sid":1,"msg":{"market_ticker":"A"}}', 1_000)
    [made] = sorted(source.glob("*.parquet"))
    names = [
        "kalshi-20261203T093922Z-00000.parquet",
        "kalshi-20261203T093922Z.2-00000.parquet",
        "kalshi-20261203T093922Z.10-00000.parquet",  # text order would put it before .2
        "kalshi-20261203T093922Z.10-100000.parquet",  # past five digits of file index
        "kalshi-20261203T093923Z-00000.parquet",
    ]
    together = tmp_path / "rec"
    together.mkdir()
    for name in reversed(names):
        (together / name).write_bytes(made.read_bytes())
    assert [p.name for p in Recording(together).files] == names
    assert sorted([Path("zzz.parquet"), Path(names[0])], key=recording_order) == [Path(names[0]), Path("zzz.parquet")]


def cut_short(path: Path) -> None:
    """Truncate a finished file (a disk fault after the replay server checked it)."""
    path.write_bytes(path.read_bytes()[:40])


async def test_replay_ends_the_connection_when_a_file_turns_unreadable(tmp_path: Path) -> None:
    with Recorder(tmp_path, max_rows_per_file=4) as recorder:
        for data in (subscribed(), snapshot(1), *(delta(seq) for seq in range(2, 12))):
            recorder.add_frame(data)
    async with (
        ReplayServer(tmp_path, speed=None) as server,
        aiohttp.ClientSession() as http,
        http.ws_connect(server.ws_url) as ws,
    ):
        await asyncio.to_thread(cut_short, sorted(tmp_path.glob("*.parquet"))[-1])  # noqa: ASYNC240
        await ws.send_json({"id": 1, "cmd": "subscribe", "params": {"channels": ["orderbook_delta"]}})
        while (message := await ws.receive(timeout=10)).type is aiohttp.WSMsgType.TEXT:
            pass  # the frames of the readable files
        # Before, the stream stopped without a word and the client waited for ever.
        assert message.type is aiohttp.WSMsgType.CLOSE and ws.close_code == 1011
