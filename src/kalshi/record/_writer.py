"""The recorder's batches and its writer thread (internal to :mod:`kalshi.record.recorder`).

A :class:`Batch` keeps the columns that change every row as Python lists (appending is the cheapest thing the
hot path can do) and the rare ones sparsely: events, command ids and connection changes are ``(row, value)``
pairs expanded only when the batch becomes an Arrow table, on the writer thread.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from kalshi.record.schema import KIND_FRAME

__all__ = ["CLOSE_FILE", "STOP", "Batch", "RecorderStats", "WriterThread", "tmp_path"]

logger = logging.getLogger(__name__)

CLOSE_FILE: Final = "close"
STOP: Final = None

# Dictionary encoding and min/max statistics pay off for the small repeated columns; on the frame and
# detail texts (all different, hundreds of bytes) they cost about half of the writing time.
_DICTIONARY_COLUMNS: Final = ["kind", "session", "conn", "type", "channel", "sid", "market_ticker"]
_STATISTICS_COLUMNS: Final = [
    "n",
    "kind",
    "recv_ns",
    "session",
    "conn",
    "type",
    "channel",
    "sid",
    "seq",
    "cmd_id",
    "market_ticker",
    "ts_ms",
]


@dataclass(slots=True)
class RecorderStats:
    """Counters of one recording session (``rows_written`` and ``files`` are updated by the writer thread)."""

    frames: int = 0
    frame_bytes: int = 0
    events: int = 0
    gaps: int = 0
    duplicates: int = 0
    resyncs: int = 0
    reconnects: int = 0
    errors: int = 0
    malformed: int = 0
    rows_written: int = 0
    row_groups: int = 0
    file_bytes: int = 0
    files: list[Path] = field(default_factory=list)


class Batch:
    """Rows not yet written. Dense lists for the per-row columns, ``(row, value)`` pairs for the rare ones."""

    __slots__ = (
        "channel",
        "cmd_ids",
        "conns",
        "data",
        "events",
        "first_n",
        "lengths",
        "market_ticker",
        "path",
        "recv_ns",
        "seq",
        "sid",
        "ts_ms",
        "type",
    )

    def __init__(self, first_n: int, conn: int) -> None:
        self.path = Path()  # set when the batch is handed to the writer
        self.first_n = first_n
        self.recv_ns: list[int] = []
        self.type: list[str | None] = []
        self.channel: list[str | None] = []
        self.sid: list[int | None] = []
        self.seq: list[int | None] = []
        self.market_ticker: list[str | None] = []
        self.ts_ms: list[int | None] = []
        self.lengths: list[int] = []
        self.data = bytearray()
        self.events: list[tuple[int, str, str | None]] = []
        self.cmd_ids: list[tuple[int, int]] = []
        self.conns: list[tuple[int, int]] = [(0, conn)]

    def __len__(self) -> int:
        return len(self.recv_ns)

    def table(self, session: str, schema: pa.Schema) -> pa.Table:
        """The batch as an Arrow table of ``schema`` (run on the writer thread)."""
        count = len(self.recv_ns)
        kinds: list[str] = [KIND_FRAME] * count
        details: list[str | None] = [None] * count
        for row, kind, detail in self.events:
            kinds[row] = kind
            details[row] = detail
        ids: list[int | None] = [None] * count
        for row, cmd_id in self.cmd_ids:
            ids[row] = cmd_id
        conns: list[int] = []
        bounds = [start for start, _ in self.conns[1:]] + [count]
        for (start, conn), end in zip(self.conns, bounds, strict=True):
            conns.extend([conn] * (end - start))
        columns = [
            pa.array(range(self.first_n, self.first_n + count), type=pa.int64()),
            pa.array(kinds, type=pa.string()),
            pa.array(self.recv_ns, type=pa.int64()),
            pa.repeat(pa.scalar(session, type=pa.string()), count),
            pa.array(conns, type=pa.int32()),
            pa.array(self.type, type=pa.string()),
            pa.array(self.channel, type=pa.string()),
            pa.array(self.sid, type=pa.int64()),
            pa.array(self.seq, type=pa.int64()),
            pa.array(ids, type=pa.int64()),
            pa.array(self.market_ticker, type=pa.string()),
            pa.array(self.ts_ms, type=pa.int64()),
            self._frames(count),
            pa.array(details, type=pa.string()),
        ]
        return pa.Table.from_arrays(columns, schema=schema)

    def _frames(self, count: int) -> pa.Array:
        # Built from the concatenated bytes and their offsets: no Python object per frame.
        offsets = pa.array(list(accumulate(self.lengths, initial=0)), type=pa.int32())
        validity = None
        if self.events:
            valid = [True] * count
            for row, _kind, _detail in self.events:
                valid[row] = False
            validity = pa.array(valid, type=pa.bool_()).buffers()[1]
        frames = pa.Array.from_buffers(
            pa.string(), count, [validity, offsets.buffers()[1], pa.py_buffer(bytes(self.data))], len(self.events)
        )
        try:
            frames.validate(full=True)
        except pa.ArrowInvalid:
            # Not UTF-8 (a broken server or a binary frame): keep the row, replace the bad bytes.
            events = {row for row, _kind, _detail in self.events}
            texts: list[str | None] = []
            start = 0
            for row in range(count):
                end = start + self.lengths[row]
                texts.append(None if row in events else bytes(self.data[start:end]).decode("utf-8", "replace"))
                start = end
            frames = pa.array(texts, type=pa.string())
        return frames


def tmp_path(path: Path) -> Path:
    """Where ``path`` is written until it is complete."""
    return path.with_name(path.name + ".tmp")


class WriterThread(threading.Thread):
    """Owns the ParquetWriter: builds each batch's table, writes it as a row group, renames finished files.

    Errors are kept in :attr:`error` (the producer raises them on its next flush or close); the thread keeps
    draining its queue so a producer never blocks on a dead writer.
    """

    def __init__(
        self,
        session: str,
        schema: pa.Schema,
        stats: RecorderStats,
        *,
        maxsize: int,
        compression: str,
        compression_level: int | None,
    ) -> None:
        super().__init__(name=f"kalshi-recorder-{session}", daemon=True)
        self.queue: queue.Queue[Batch | str | None] = queue.Queue(maxsize=maxsize)
        self.error: BaseException | None = None
        self._session = session
        self._schema = schema
        self._stats = stats
        self._compression = compression
        self._compression_level = compression_level
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None
        self.last_first_n = -1  # first row number of the last batch taken (rows are numbered in order)

    def holds(self, batch: Batch) -> bool:
        """Whether ``batch`` was handed over already (taken, or waiting in the queue)."""
        if batch.first_n <= self.last_first_n:
            return True
        with self.queue.mutex:
            return any(item is batch for item in self.queue.queue)

    def run(self) -> None:
        while True:
            item = self.queue.get()
            if item is STOP:
                self._safely(self._close_file)
                return
            if self.error is not None:
                continue
            if isinstance(item, Batch):
                if item.first_n <= self.last_first_n:
                    continue  # handed over twice (a Ctrl-C right after the hand-over): its rows are written
                self.last_first_n = item.first_n
                self._safely(functools.partial(self._write, item))
            else:
                self._safely(self._close_file)

    def _safely(self, action: Callable[[], None]) -> None:
        try:
            action()
        except BaseException as exc:  # handed to the producer thread, which raises it
            if self.error is None:
                self.error = exc
            logger.error("recording writer failed: %s", exc)
            with contextlib.suppress(Exception):
                if self._writer is not None:
                    self._writer.close()
            self._writer = None

    def _write(self, batch: Batch) -> None:
        if self._path != batch.path:
            self._close_file()
        table = batch.table(self._session, self._schema)
        if self._writer is None:
            self._path = batch.path
            self._writer = pq.ParquetWriter(
                tmp_path(batch.path),
                self._schema,
                compression=self._compression,
                compression_level=self._compression_level,
                use_dictionary=_DICTIONARY_COLUMNS,
                write_statistics=_STATISTICS_COLUMNS,
            )
        self._writer.write_table(table, row_group_size=table.num_rows)
        self._stats.rows_written += table.num_rows
        self._stats.row_groups += 1

    def _close_file(self) -> None:
        writer, path = self._writer, self._path
        self._writer = None
        self._path = None
        if writer is None or path is None:
            return
        writer.close()
        os.replace(tmp_path(path), path)
        self._stats.file_bytes += path.stat().st_size
        self._stats.files.append(path)
