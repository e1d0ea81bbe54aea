"""Recorder: raw WebSocket frames and stream events into rotating zstd Parquet files.

The hot path (:meth:`Recorder.add_frame`, fast enough to be a ``KalshiWebSocket(on_raw_frame=...)`` tap) decodes
only the envelope and appends to column lists. A full batch (``batch_rows`` rows or ``batch_bytes`` of frames)
goes to one writer thread through a bounded queue; the thread builds the Arrow columns and writes one row
group. When the writer falls behind, the queue fills and ``add_frame`` blocks: the event loop then stops
reading the socket, which is TCP backpressure towards the exchange instead of unbounded memory.

Files are written as ``<name>.parquet.tmp`` and renamed to ``<name>.parquet`` when complete, so a reader (or a
DuckDB glob) never sees a file without its footer. :meth:`Recorder.close` flushes everything; a file cut short
by a crash stays ``.tmp`` (rotate often, ``max_seconds_per_file``, to bound what a crash can cost).

Example::

    with Recorder("rec") as recorder:
        ws = KalshiWebSocket(auth, config, on_raw_frame=recorder.add_frame)
        ...
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from kalshi.errors import KalshiError
from kalshi.record.schema import (
    FORMAT_VERSION,
    KIND_FRAME,
    SCHEMA,
    TYPE_CHANNELS,
    EnvelopeBody,
    decode_envelope,
)

__all__ = ["Recorder", "RecorderStats", "RecordingError"]

logger = logging.getLogger(__name__)

_MAX_BATCH_BYTES: Final = 1 << 30  # int32 string offsets
_STOP: Final = None


class RecordingError(KalshiError):
    """The recording could not be written (disk full, permissions, a closed recorder)."""


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


@dataclass(slots=True)
class _Batch:
    """Column lists of rows not yet written (owned by the writer once handed over)."""

    path: Path
    first_n: int
    kind: list[str]
    recv_ns: list[int]
    conn: list[int]
    type: list[str | None]
    channel: list[str | None]
    sid: list[int | None]
    seq: list[int | None]
    cmd_id: list[int | None]
    market_ticker: list[str | None]
    ts_ms: list[int | None]
    lengths: list[int]
    data: bytearray
    null_frames: list[int]
    detail: list[str | None]

    def table(self, session: str, schema: pa.Schema) -> pa.Table:
        count = len(self.kind)
        offsets = pa.array(list(accumulate(self.lengths, initial=0)), type=pa.int32())
        validity = None
        if self.null_frames:
            nulls = set(self.null_frames)
            validity = pa.array([i not in nulls for i in range(count)], type=pa.bool_()).buffers()[1]
        frames = pa.Array.from_buffers(
            pa.string(), count, [validity, offsets.buffers()[1], pa.py_buffer(bytes(self.data))], len(self.null_frames)
        )
        try:
            frames.validate(full=True)
        except pa.ArrowInvalid:
            frames = self._replaced_frames(count)
        columns = [
            pa.array(range(self.first_n, self.first_n + count), type=pa.int64()),
            pa.array(self.kind, type=pa.string()),
            pa.array(self.recv_ns, type=pa.int64()),
            pa.repeat(pa.scalar(session, type=pa.string()), count),
            pa.array(self.conn, type=pa.int32()),
            pa.array(self.type, type=pa.string()),
            pa.array(self.channel, type=pa.string()),
            pa.array(self.sid, type=pa.int64()),
            pa.array(self.seq, type=pa.int64()),
            pa.array(self.cmd_id, type=pa.int64()),
            pa.array(self.market_ticker, type=pa.string()),
            pa.array(self.ts_ms, type=pa.int64()),
            frames,
            pa.array(self.detail, type=pa.string()),
        ]
        return pa.Table.from_arrays(columns, schema=schema)

    def _replaced_frames(self, count: int) -> pa.Array:
        # Not UTF-8 (a broken server or a binary frame): keep the row, replace the bad bytes.
        nulls = set(self.null_frames)
        out: list[str | None] = []
        start = 0
        for i in range(count):
            end = start + self.lengths[i]
            out.append(None if i in nulls else bytes(self.data[start:end]).decode("utf-8", "replace"))
            start = end
        return pa.array(out, type=pa.string())


class _WriterThread(threading.Thread):
    """Owns the ParquetWriter: builds each batch's table, writes it as a row group, renames finished files."""

    def __init__(self, recorder: Recorder, schema: pa.Schema, maxsize: int) -> None:
        super().__init__(name=f"kalshi-recorder-{recorder.session}", daemon=True)
        self.queue: queue.Queue[_Batch | str | None] = queue.Queue(maxsize=maxsize)
        self.error: BaseException | None = None
        self._recorder = recorder
        self._schema = schema
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None

    def run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _STOP:
                self._safely(self._close_file)
                return
            if self.error is not None:
                continue  # keep draining so producers never block on a dead writer
            if isinstance(item, _Batch):
                self._safely(lambda batch=item: self._write(batch))
            else:
                self._safely(self._close_file)

    def _safely(self, action: Any) -> None:
        try:
            action()
        except BaseException as exc:  # reported to the producer on its next flush or close
            if self.error is None:
                self.error = exc
            logger.error("recording writer failed: %s", exc)
            with contextlib.suppress(Exception):
                if self._writer is not None:
                    self._writer.close()
            self._writer = None

    def _write(self, batch: _Batch) -> None:
        recorder = self._recorder
        if self._path != batch.path:
            self._close_file()
        table = batch.table(recorder.session, self._schema)
        if self._writer is None:
            self._path = batch.path
            self._writer = pq.ParquetWriter(
                _tmp(batch.path),
                self._schema,
                compression=recorder.compression,
                compression_level=recorder.compression_level,
            )
        self._writer.write_table(table, row_group_size=table.num_rows)
        stats = recorder.stats
        stats.rows_written += table.num_rows
        stats.row_groups += 1

    def _close_file(self) -> None:
        writer, path = self._writer, self._path
        self._writer = None
        self._path = None
        if writer is None or path is None:
            return
        writer.close()
        os.replace(_tmp(path), path)
        stats = self._recorder.stats
        stats.file_bytes += path.stat().st_size
        stats.files.append(path)


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


class Recorder:
    """Write raw frames and events into rotating zstd Parquet files (see :mod:`kalshi.record.schema`).

    Use as a context manager, or call :meth:`start` and :meth:`close`. Not thread-safe: call it from one
    thread (the event loop's).

    Args:
        out_dir: directory of the recording (created if missing).
        prefix: file name prefix.
        max_rows_per_file: rotate after about this many rows.
        max_seconds_per_file: rotate after this long (checked by :meth:`tick`).
        batch_rows: rows per row group (the in-memory batch bound).
        batch_bytes: frame bytes per row group (the other bound).
        flush_interval: seconds a partial batch may wait before :meth:`tick` writes it.
        compression: Parquet codec (``zstd``).
        compression_level: codec level (None: the codec's default).
        queue_batches: batches waiting for the writer before ``add_frame`` blocks.
        metadata: extra key/values for the files' Parquet metadata (e.g. channels and markets).

    Raises:
        ValueError: a bound is not positive.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        *,
        prefix: str = "kalshi",
        max_rows_per_file: int = 1_000_000,
        max_seconds_per_file: float = 3600.0,
        batch_rows: int = 65_536,
        batch_bytes: int = 32 << 20,
        flush_interval: float = 5.0,
        compression: str = "zstd",
        compression_level: int | None = None,
        queue_batches: int = 4,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        if min(max_rows_per_file, batch_rows, batch_bytes, queue_batches) < 1:
            raise ValueError("max_rows_per_file, batch_rows, batch_bytes and queue_batches must be >= 1")
        if max_seconds_per_file <= 0 or flush_interval <= 0:
            raise ValueError("max_seconds_per_file and flush_interval must be > 0")
        self.out_dir = Path(out_dir)
        self.prefix = prefix
        self.max_rows_per_file = max_rows_per_file
        self.max_seconds_per_file = max_seconds_per_file
        self.batch_rows = batch_rows
        self.batch_bytes = min(batch_bytes, _MAX_BATCH_BYTES)
        self.flush_interval = flush_interval
        self.compression = compression
        self.compression_level = compression_level
        self.queue_batches = queue_batches
        self.metadata = dict(metadata or {})
        self.session = ""
        self.stats = RecorderStats()
        self._writer: _WriterThread | None = None
        self._closed = False
        self._n = 0
        self._conn = 0
        self._file_index = 0
        self._file_rows = 0
        self._file_started = 0.0
        self._batch_started = 0.0
        self._flush_at = batch_rows
        self._last_seq: dict[int, int] = {}
        self._sid_channel: dict[int, str] = {}
        self._new_batch()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def started(self) -> bool:
        """True between :meth:`start` and :meth:`close`."""
        return self._writer is not None and not self._closed

    @property
    def conn(self) -> int:
        """The current connection number (0 before the first frame or :meth:`new_connection`)."""
        return self._conn

    @property
    def files(self) -> list[Path]:
        """Finished files so far (the current one is added when it is closed)."""
        return list(self.stats.files)

    def start(self, detail: Mapping[str, Any] | None = None) -> None:
        """Create the directory, start the writer thread and record a ``start`` event.

        Raises:
            RecordingError: already started or closed, or the directory cannot be created.
        """
        if self._writer is not None or self._closed:
            raise RecordingError("a Recorder records one session: make a new one")
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordingError(f"cannot create the recording directory {self.out_dir}: {exc}") from exc
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        session = f"{self.prefix}-{stamp}"
        suffix = 1
        while any(self.out_dir.glob(f"{session}-*.parquet*")):
            suffix += 1
            session = f"{self.prefix}-{stamp}.{suffix}"
        self.session = session
        meta = {"kalshi.format": FORMAT_VERSION, "kalshi.session": session}
        meta.update({f"kalshi.{key}": value for key, value in self.metadata.items()})
        schema = SCHEMA.with_metadata(meta)
        self._writer = _WriterThread(self, schema, self.queue_batches)
        self._writer.start()
        self._file_started = time.monotonic()
        self._batch_started = self._file_started
        self._new_batch()
        self.add_event("start", detail={"format": FORMAT_VERSION, **(detail or {}), **self.metadata})

    def close(self, detail: Mapping[str, Any] | None = None) -> RecorderStats:
        """Record a ``stop`` event, write everything, close the last file and stop the writer thread.

        Idempotent. Returns the final counters.

        Raises:
            RecordingError: a write failed at any time during the session.
        """
        writer = self._writer
        if self._closed or writer is None:
            self._closed = True
            return self.stats
        stop = {
            "frames": self.stats.frames,
            "gaps": self.stats.gaps,
            "reconnects": self.stats.reconnects,
            **(detail or {}),
        }
        self.add_event("stop", detail=stop)
        self._hand_over()
        writer.queue.put("close")
        writer.queue.put(_STOP)
        writer.join()
        self._closed = True
        if writer.error is not None:
            raise RecordingError(f"writing the recording in {self.out_dir} failed: {writer.error}") from writer.error
        return self.stats

    # ------------------------------------------------------------------ recording (hot path)

    def add_frame(self, data: bytes, recv_ns: int | None = None) -> None:
        """Record one frame as received (``recv_ns``: epoch ns, default now). Fit for ``on_raw_frame``.

        Raises:
            RecordingError: the recorder is not started, or the writer failed.
        """
        if self._conn == 0 or self._closed:
            self.new_connection()  # raises when not recording
        if recv_ns is None:
            recv_ns = time.time_ns()
        env = decode_envelope(data)
        stats = self.stats
        if env is None:
            stats.malformed += 1
            self.add_event("malformed", detail={"bytes": len(data)}, recv_ns=recv_ns)
            kind = sid = seq = cmd_id = ticker = ts_ms = channel = None
        else:
            kind = env.type
            sid = env.sid
            seq = env.seq
            cmd_id = env.id
            body = env.msg
            ticker = ts_ms = None
            if isinstance(body, EnvelopeBody):
                ticker = body.market_ticker
                ts_ms = body.ts_ms
                if ts_ms is None and type(body.ts) is int:
                    ts_ms = body.ts * 1000
                if kind == "subscribed":
                    sid = body.sid
                    if sid is not None and body.channel is not None:
                        self._sid_channel[sid] = body.channel
            channel = self._sid_channel.get(sid) if sid is not None else None
            if channel is None and kind is not None:
                channel = TYPE_CHANNELS.get(kind)
            if seq is not None and sid is not None and kind != "subscribed":
                last = self._last_seq.get(sid)
                if last is None or seq == last + 1:
                    self._last_seq[sid] = seq
                elif seq > last:
                    self._last_seq[sid] = seq
                    stats.gaps += 1
                    self.add_event(
                        "gap",
                        detail={"expected": last + 1, "received": seq},
                        sid=sid,
                        seq=seq,
                        channel=channel,
                        market_ticker=ticker,
                        recv_ns=recv_ns,
                    )
                else:
                    stats.duplicates += 1
                    self.add_event(
                        "duplicate", detail={"last": last}, sid=sid, seq=seq, channel=channel, recv_ns=recv_ns
                    )
            if cmd_id and kind == "orderbook_snapshot":
                stats.resyncs += 1
                self.add_event(
                    "resync", detail={"cmd_id": cmd_id}, sid=sid, seq=seq, channel=channel, market_ticker=ticker
                )
        stats.frames += 1
        stats.frame_bytes += len(data)
        self._n += 1
        self._kind.append(KIND_FRAME)
        self._recv_ns.append(recv_ns)
        self._conns.append(self._conn)
        self._type.append(kind)
        self._channel.append(channel)
        self._sid.append(sid)
        self._seq.append(seq)
        self._cmd_id.append(cmd_id)
        self._ticker.append(ticker)
        self._ts_ms.append(ts_ms)
        self._lengths.append(len(data))
        self._data += data
        self._detail.append(None)
        if len(self._kind) >= self._flush_at or len(self._data) >= self.batch_bytes:
            self.flush()

    def new_connection(self, detail: Mapping[str, Any] | None = None) -> int:
        """Start the next connection number: sids and sequence tracking restart. Returns the new number.

        The first call records ``connect``, later ones ``reconnect``.
        """
        if self._writer is None or self._closed:
            raise RecordingError("the recorder is not recording: use it inside `with Recorder(...)`")
        self._conn += 1
        self._last_seq.clear()
        self._sid_channel.clear()
        if self._conn > 1:
            self.stats.reconnects += 1
        self.add_event("connect" if self._conn == 1 else "reconnect", detail={"conn": self._conn, **(detail or {})})
        return self._conn

    def add_event(
        self,
        kind: str,
        *,
        detail: Mapping[str, Any] | None = None,
        sid: int | None = None,
        seq: int | None = None,
        channel: str | None = None,
        market_ticker: str | None = None,
        recv_ns: int | None = None,
    ) -> None:
        """Record an event row (``detail`` is stored as JSON).

        Raises:
            RecordingError: the recorder is not started or is closed.
        """
        if self._writer is None or self._closed:
            raise RecordingError("the recorder is not recording: use it inside `with Recorder(...)`")
        if kind == "error":
            self.stats.errors += 1
        self.stats.events += 1
        self._n += 1
        self._null_frames.append(len(self._kind))
        self._kind.append(kind)
        self._recv_ns.append(time.time_ns() if recv_ns is None else recv_ns)
        self._conns.append(self._conn)
        self._type.append(None)
        self._channel.append(channel)
        self._sid.append(sid)
        self._seq.append(seq)
        self._cmd_id.append(None)
        self._ticker.append(market_ticker)
        self._ts_ms.append(None)
        self._lengths.append(0)
        self._detail.append(json.dumps(detail, separators=(",", ":"), default=str) if detail is not None else None)

    # ------------------------------------------------------------------ batches and files

    def tick(self) -> None:
        """Write a partial batch older than ``flush_interval`` and rotate a file older than
        ``max_seconds_per_file``. Call it about once a second (the capture loop does).

        Raises:
            RecordingError: the writer failed.
        """
        now = time.monotonic()
        if now - self._file_started >= self.max_seconds_per_file:
            self.rotate()
        elif self._kind and now - self._batch_started >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        """Hand the current batch to the writer (blocks while ``queue_batches`` batches are waiting).

        Raises:
            RecordingError: the writer failed, or the recorder is closed.
        """
        if not self._kind:
            return
        self._hand_over()
        if self._file_rows >= self.max_rows_per_file:
            self.rotate()

    def rotate(self) -> None:
        """Write the current batch, close the current file and start the next one.

        Raises:
            RecordingError: the writer failed, or the recorder is closed.
        """
        self._hand_over()
        writer = self._writer
        if writer is not None and self._file_rows:
            writer.queue.put("close")
            self._file_index += 1
            self._file_rows = 0
        self._file_started = time.monotonic()
        self._flush_at = max(1, min(self.batch_rows, self.max_rows_per_file))

    def _hand_over(self) -> None:
        writer = self._writer
        if writer is None or self._closed:
            raise RecordingError("the recorder is not recording: use it inside `with Recorder(...)`")
        if writer.error is not None:
            raise RecordingError(f"writing the recording in {self.out_dir} failed: {writer.error}") from writer.error
        if not self._kind:
            return
        batch = _Batch(
            path=self.out_dir / f"{self.session}-{self._file_index:05d}.parquet",
            first_n=self._n - len(self._kind),
            kind=self._kind,
            recv_ns=self._recv_ns,
            conn=self._conns,
            type=self._type,
            channel=self._channel,
            sid=self._sid,
            seq=self._seq,
            cmd_id=self._cmd_id,
            market_ticker=self._ticker,
            ts_ms=self._ts_ms,
            lengths=self._lengths,
            data=self._data,
            null_frames=self._null_frames,
            detail=self._detail,
        )
        self._file_rows += len(batch.kind)
        self._new_batch()
        writer.queue.put(batch)  # blocks when the writer is behind: backpressure, by design

    def _new_batch(self) -> None:
        self._kind: list[str] = []
        self._recv_ns: list[int] = []
        self._conns: list[int] = []
        self._type: list[str | None] = []
        self._channel: list[str | None] = []
        self._sid: list[int | None] = []
        self._seq: list[int | None] = []
        self._cmd_id: list[int | None] = []
        self._ticker: list[str | None] = []
        self._ts_ms: list[int | None] = []
        self._lengths: list[int] = []
        self._data = bytearray()
        self._null_frames: list[int] = []
        self._detail: list[str | None] = []
        self._batch_started = time.monotonic()
        # A batch never crosses a file boundary by more than one row group.
        self._flush_at = max(1, min(self.batch_rows, self.max_rows_per_file - self._file_rows))
