"""Reading recordings back: rows, typed messages, and order books at any moment (backtesting).

::

    rec = kalshi.record.open("rec")
    for item in rec.messages(channels=["trade"]):
        print(item.recv_ns, item.message.msg.yes_price)
    book = rec.book_at("KXFED-25DEC-T4.00", ts_ns)      # Orderbook or None

Books are rebuilt exactly as the live client keeps them: a new connection (or session) makes every book
stale until its fresh snapshot; a sequence gap makes the books of that subscription stale until the resync
snapshots the recording client asked for; duplicates are skipped. A stale or never-seen book is ``None``.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kalshi.errors import KalshiProtocolError
from kalshi.models.markets import Orderbook
from kalshi.record.recorder import RecordingError
from kalshi.record.schema import CONTROL_TYPES, FORMAT_VERSION, KIND_FRAME, SCHEMA
from kalshi.ws.models import AnyMessage, OrderbookDeltaMessage, OrderbookSnapshotMessage, decode_message
from kalshi.ws.orderbook import BookError, DeltaResult, OrderbookManager

__all__ = ["BookReplayer", "RecordedMessage", "RecordedRow", "Recording", "RecordingSummary", "open_recording"]

logger = logging.getLogger(__name__)

_BOOK_TYPES = frozenset({"orderbook_snapshot", "orderbook_delta"})
_COLUMNS = tuple(SCHEMA.names)


class RecordedRow(NamedTuple):
    """One row of a recording (see :mod:`kalshi.record.schema` for the columns)."""

    n: int
    kind: str
    recv_ns: int
    session: str
    conn: int | None
    type: str | None
    channel: str | None
    sid: int | None
    seq: int | None
    cmd_id: int | None
    market_ticker: str | None
    ts_ms: int | None
    frame: str | None
    detail: str | None


class RecordedMessage(NamedTuple):
    """A recorded frame decoded into its typed message (``kalshi.ws.models``)."""

    recv_ns: int
    session: str
    conn: int
    message: AnyMessage


@dataclass(frozen=True, slots=True)
class RecordingSummary:
    """What a recording holds."""

    sessions: list[str]
    frames: int
    events: Counter[str]
    channels: Counter[str]
    markets: list[str]
    start_ns: int | None
    end_ns: int | None
    connections: int = 0
    files: list[Path] = field(default_factory=list)


class BookReplayer:
    """Rebuilds order books from recorded ``orderbook_delta`` channel rows, in recording order.

    Feed every row (or every row of the channel) to :meth:`apply`; read books with :meth:`book`.
    """

    __slots__ = ("_connection", "_last_seq", "_manager", "_sid_markets")

    def __init__(self) -> None:
        self._manager = OrderbookManager()
        self._connection: tuple[str, int | None] | None = None
        self._last_seq: dict[int, int] = {}
        self._sid_markets: dict[int, set[str]] = {}

    @property
    def tickers(self) -> list[str]:
        """Markets with a current (non-stale) book."""
        return [t for t, state in self._manager.books.items() if state.has_snapshot]

    def apply(self, row: RecordedRow) -> str | None:
        """Apply one row; returns the ticker whose book changed, or None."""
        connection = (row.session, row.conn)
        if connection != self._connection:
            # Sids and seqs restart with a connection; books wait for their fresh snapshots, as in the client.
            self._connection = connection
            self._last_seq.clear()
            self._sid_markets.clear()
            self._manager.mark_all_stale()
        if row.type not in _BOOK_TYPES or row.frame is None:
            return None
        try:
            message = decode_message(row.frame)
        except KalshiProtocolError:
            return None
        if not isinstance(message, OrderbookSnapshotMessage | OrderbookDeltaMessage):
            return None
        return self.apply_message(message)

    def apply_message(self, message: OrderbookSnapshotMessage | OrderbookDeltaMessage) -> str | None:
        """Apply a decoded snapshot or delta (sequence checks per sid); returns the ticker changed, or None."""
        sid, seq = message.sid, message.seq
        ticker = message.msg.market_ticker
        manager = self._manager
        markets = self._sid_markets.setdefault(sid, set())
        snapshot = isinstance(message, OrderbookSnapshotMessage)
        if seq is not None:
            last = self._last_seq.get(sid)
            if last is not None and seq <= last:
                return None  # duplicate
            self._last_seq[sid] = seq
            if last is not None and seq > last + 1:
                # Lost numbers may have been deltas of any market of the sid.
                for other in markets:
                    if not (snapshot and other == ticker):
                        manager.mark_stale(other)
                if not snapshot:
                    markets.add(ticker)
                    manager.mark_stale(ticker)
                    return None
        markets.add(ticker)
        try:
            if isinstance(message, OrderbookSnapshotMessage):
                manager.apply_snapshot_message(message)
                return ticker
            result = manager.apply_delta_message(message)
        except (BookError, KalshiProtocolError):
            manager.mark_stale(ticker)
            return None
        if result is DeltaResult.APPLIED:
            return ticker
        if result is not DeltaResult.DUPLICATE:
            manager.mark_stale(ticker)
        return None

    def book(self, ticker: str) -> Orderbook | None:
        """The current book of ``ticker``, or None when unknown or stale."""
        state = self._manager.get(ticker)
        if state is None or not state.has_snapshot:
            return None
        return state.view()


class _BookCursor:
    """A forward-only position in the order book rows of a recording."""

    def __init__(self, rows: Iterator[RecordedRow]) -> None:
        self.rows = rows
        self.pending: RecordedRow | None = None
        self.replayer = BookReplayer()
        self.position_ns = -1

    def advance_to(self, ts_ns: int) -> None:
        while True:
            row = self.pending if self.pending is not None else next(self.rows, None)
            self.pending = None
            if row is None:
                break
            if row.recv_ns > ts_ns:
                self.pending = row
                break
            self.replayer.apply(row)
        self.position_ns = ts_ns


class Recording:
    """A recording directory (or one file) opened for reading.

    Args:
        path: the directory given to ``kalshi record --out`` (or one of its ``.parquet`` files).
        batch_size: rows read per Parquet batch.

    Raises:
        RecordingError: no recording files there.
    """

    def __init__(self, path: str | os.PathLike[str], *, batch_size: int = 16_384) -> None:
        self.path = Path(path)
        if self.path.is_file():
            files = [self.path]
        elif self.path.is_dir():
            files = sorted((p for p in self.path.glob("*.parquet") if p.is_file()), key=recording_order)
        else:
            raise RecordingError(f"no recording at {self.path}: the path does not exist")
        partial = sorted(self.path.glob("*.parquet.tmp")) if self.path.is_dir() else []
        if not files:
            hint = " (only unfinished .tmp files: the recorder did not close cleanly)" if partial else ""
            raise RecordingError(f"no recording files (*.parquet) in {self.path}{hint}")
        if partial:
            logger.warning(
                "%s: not reading %d unfinished file(s), still being written or left by a recorder that did not "
                "close cleanly: %s",
                self.path,
                len(partial),
                ", ".join(p.name for p in partial),
            )
        for file in files:
            _check_file(file)
        self.files = files
        self.batch_size = batch_size
        self._cursor: _BookCursor | None = None

    def __repr__(self) -> str:
        return f"Recording({str(self.path)!r}, files={len(self.files)})"

    # ------------------------------------------------------------------ rows

    def rows(
        self,
        *,
        kinds: Collection[str] | None = None,
        channels: Collection[str] | None = None,
        markets: Collection[str] | None = None,
        types: Collection[str] | None = None,
    ) -> Iterator[RecordedRow]:
        """Every row in recording order, optionally only some kinds, channels, markets or message types.

        Raises:
            RecordingError: a file cannot be read.
        """
        filters = [
            (name, list(values))
            for name, values in (("kind", kinds), ("channel", channels), ("market_ticker", markets), ("type", types))
            if values is not None
        ]
        for table in self._batches():
            for name, values in filters:
                table = table.filter(pc.is_in(table.column(name), value_set=pa.array(values, type=pa.string())))
            if table.num_rows == 0:
                continue
            columns = [table.column(name).to_pylist() for name in _COLUMNS]
            for row in zip(*columns, strict=True):
                yield RecordedRow._make(row)

    def frames(
        self,
        *,
        channels: Collection[str] | None = None,
        markets: Collection[str] | None = None,
        types: Collection[str] | None = None,
    ) -> Iterator[RecordedRow]:
        """The frame rows (no events).

        Raises:
            RecordingError: a file cannot be read.
        """
        return self.rows(kinds=(KIND_FRAME,), channels=channels, markets=markets, types=types)

    def events(self, kinds: Collection[str] | None = None) -> list[RecordedRow]:
        """The event rows (``connect``, ``reconnect``, ``gap``, ``resync``, ...), optionally of some kinds.

        Raises:
            RecordingError: a file cannot be read.
        """
        return [row for row in self.rows() if row.kind != KIND_FRAME and (kinds is None or row.kind in kinds)]

    def messages(
        self,
        *,
        channels: Collection[str] | None = None,
        markets: Collection[str] | None = None,
        include_control: bool = False,
    ) -> Iterator[RecordedMessage]:
        """Recorded frames decoded into typed messages (malformed frames are skipped).

        Args:
            channels: only these channels.
            markets: only frames about these market tickers.
            include_control: also yield ``subscribed``/``ok``/``error``/... responses.

        Raises:
            RecordingError: a file cannot be read.
        """
        for row in self.frames(channels=channels, markets=markets):
            if row.frame is None or (not include_control and row.type in CONTROL_TYPES):
                continue
            try:
                message = decode_message(row.frame)
            except KalshiProtocolError:
                continue
            yield RecordedMessage(row.recv_ns, row.session, row.conn or 0, message)

    def to_table(self, columns: Iterable[str] | None = None) -> pa.Table:
        """The whole recording as one Arrow table (``.to_pandas()``, ``polars.from_arrow``).

        Raises:
            RecordingError: a file cannot be read.
        """
        names = list(columns) if columns is not None else list(_COLUMNS)
        tables = []
        for path in self.files:
            try:
                table = pq.read_table(path, columns=names)
                # One schema for all: a file rewritten by pandas or polars may use other integer or string types.
                tables.append(table.cast(pa.schema([SCHEMA.field(name) for name in names]), safe=True))
            except (OSError, pa.ArrowException, KeyError) as exc:
                raise RecordingError(f"cannot read {path}: {exc}") from exc
        return pa.concat_tables(tables)

    def summary(self) -> RecordingSummary:
        """Counts, time span, channels and markets (reads only the small columns).

        Raises:
            RecordingError: a file cannot be read.
        """
        table = self.to_table(["kind", "recv_ns", "session", "conn", "channel", "market_ticker"])
        kinds = Counter(table.column("kind").to_pylist())
        frames_only = table.filter(pc.equal(table.column("kind"), KIND_FRAME))
        channels = Counter(c for c in frames_only.column("channel").to_pylist() if c is not None)
        markets = sorted({t for t in frames_only.column("market_ticker").to_pylist() if t is not None})
        recv = table.column("recv_ns")
        sessions = list(dict.fromkeys(table.column("session").to_pylist()))
        pairs = {
            (s, c) for s, c in zip(table.column("session").to_pylist(), table.column("conn").to_pylist(), strict=True)
        }
        frames = kinds.pop(KIND_FRAME, 0)
        return RecordingSummary(
            sessions=sessions,
            frames=frames,
            events=kinds,
            channels=channels,
            markets=markets,
            start_ns=pc.min(recv).as_py() if len(recv) else None,
            end_ns=pc.max(recv).as_py() if len(recv) else None,
            connections=len({pair for pair in pairs if pair[1]}),
            files=list(self.files),
        )

    # ------------------------------------------------------------------ books

    def book_at(self, ticker: str, ts_ns: int) -> Orderbook | None:
        """The order book of ``ticker`` as the recording client held it at ``ts_ns`` (epoch ns, local receive
        time), or None when there was no valid book then (not subscribed yet, or stale after a gap or
        reconnect). Moving forward in time reuses the previous position; going back re-reads from the start.

        Raises:
            RecordingError: a file cannot be read.
        """
        cursor = self._cursor
        if cursor is None or ts_ns < cursor.position_ns:
            cursor = self._cursor = _BookCursor(self.rows(channels=("orderbook_delta",)))
        cursor.advance_to(ts_ns)
        return cursor.replayer.book(ticker)

    def books_at(self, ts_ns: int, tickers: Collection[str] | None = None) -> dict[str, Orderbook]:
        """Every valid book at ``ts_ns`` (or those of ``tickers``).

        Raises:
            RecordingError: a file cannot be read.
        """
        self.book_at("", ts_ns)
        assert self._cursor is not None
        replayer = self._cursor.replayer
        names = replayer.tickers if tickers is None else list(tickers)
        out: dict[str, Orderbook] = {}
        for name in names:
            book = replayer.book(name)
            if book is not None:
                out[name] = book
        return out

    def iter_books(self, tickers: Collection[str] | None = None) -> Iterator[tuple[int, Orderbook]]:
        """``(recv_ns, book)`` after every change of a book (of ``tickers``), in recording order.

        Raises:
            RecordingError: a file cannot be read.
        """
        wanted = None if tickers is None else set(tickers)
        replayer = BookReplayer()
        for row in self.rows(channels=("orderbook_delta",)):
            ticker = replayer.apply(row)
            if ticker is None or (wanted is not None and ticker not in wanted):
                continue
            book = replayer.book(ticker)
            if book is not None:
                yield row.recv_ns, book

    # ------------------------------------------------------------------ internals

    def _batches(self) -> Iterator[pa.Table]:
        for path in self.files:
            try:
                parquet = pq.ParquetFile(path)
                batches = parquet.iter_batches(batch_size=self.batch_size, columns=list(_COLUMNS))
                for batch in batches:
                    yield pa.Table.from_batches([batch])
            except (OSError, pa.ArrowException) as exc:
                raise RecordingError(f"cannot read {path}: {exc}") from exc


_FILE_NAME: Final = re.compile(r"^(?P<prefix>.*)-(?P<stamp>\d{8}T\d{6}Z)(?:\.(?P<again>\d+))?-(?P<index>\d+)\.parquet$")


def recording_order(path: Path) -> tuple[int, str, int, str, int, str]:
    """The sort key of a recording file: the session's start time, its number among the sessions started in the
    same second (``.2``, ..., ``.10``: numbers, not text), then the file's index (more than 99,999 files too).
    Names the recorder did not make sort after its own, by name."""
    found = _FILE_NAME.match(path.name)
    if found is None:
        return (1, "", 0, "", 0, path.name)
    again = int(found["again"] or 1)
    return (0, found["stamp"], again, found["prefix"], int(found["index"]), path.name)


def _check_file(path: Path) -> None:
    """Refuse, naming the file and what to do, what would otherwise fail deep in pyarrow mid-read."""
    where = path.parent
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise RecordingError(
            f"{path.name} is not a complete Parquet file ({exc}): it was cut short (a copy in progress, a full "
            f"disk?); move it out of {where} to read the rest of the recording"
        ) from exc
    missing = [name for name in _COLUMNS if name not in schema.names]
    if missing:
        raise RecordingError(
            f"{path.name} is not a kalshi recording file (no column {', '.join(missing)}); move it out of {where}"
        )
    version = (schema.metadata or {}).get(b"kalshi.format")
    if version is not None and version.decode(errors="replace") != FORMAT_VERSION:
        raise RecordingError(
            f"{path.name} is recording format {version.decode(errors='replace')}; this kalshi-kit reads format "
            f"{FORMAT_VERSION}: upgrade kalshi-kit, or open the files of each format from their own directory"
        )
    for name in _COLUMNS:
        found, wanted = schema.field(name).type, SCHEMA.field(name).type
        if _type_family(found) != _type_family(wanted):
            raise RecordingError(
                f"{path.name}: column {name} is {found}, not {wanted} as in a kalshi recording; move it out of {where}"
            )


def _type_family(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return "string"
    return str(kind)


def open_recording(path: str | os.PathLike[str]) -> Recording:
    """Open a recording directory for reading (``kalshi.record.open``).

    Raises:
        RecordingError: no recording files there.
    """
    return Recording(path)
