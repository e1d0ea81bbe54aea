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

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from kalshi.errors import KalshiError
from kalshi.record._writer import CLOSE_FILE, STOP, Batch, RecorderStats, WriterThread
from kalshi.record.schema import FORMAT_VERSION, SCHEMA, TYPE_CHANNELS, EnvelopeBody, decode_envelope

__all__ = ["Recorder", "RecorderStats", "RecordingError"]

logger = logging.getLogger(__name__)

_MAX_BATCH_BYTES: Final = 1 << 30  # int32 string offsets


class RecordingError(KalshiError):
    """The recording could not be written (disk full, permissions, a closed recorder)."""


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
        self._writer: WriterThread | None = None
        self._closed = False
        self._n = 0
        self._conn = 0
        self._file_index = 0
        self._file_rows = 0
        self._file_started = 0.0
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
        self._writer = WriterThread(
            session,
            SCHEMA.with_metadata(meta),
            self.stats,
            maxsize=self.queue_batches,
            compression=self.compression,
            compression_level=self.compression_level,
        )
        self._writer.start()
        self._file_started = time.monotonic()
        self._new_batch()
        self.add_event("start", detail={"format": FORMAT_VERSION, **(detail or {}), **self.metadata})

    def close(self, detail: Mapping[str, Any] | None = None) -> RecorderStats:
        """Record a ``stop`` event, write everything, close the last file and stop the writer thread.

        Idempotent. Returns the final counters. A Ctrl-C (KeyboardInterrupt) while it runs does not cut it
        short: the last file is completed first, then the interrupt is raised.

        Raises:
            RecordingError: a write failed at any time during the session.
        """
        writer = self._writer
        if self._closed or writer is None:
            self._closed = True
            return self.stats
        stats = self.stats
        if writer.holds(self._batch):
            # A Ctrl-C hit right after the hand-over, before a new batch was begun: that one is the writer's now.
            self._new_batch()
        self.add_event(
            "stop",
            detail={"frames": stats.frames, "gaps": stats.gaps, "reconnects": stats.reconnects, **(detail or {})},
        )
        batch = self._batch
        batch.path = self.out_dir / f"{self.session}-{self._file_index:05d}.parquet"
        interrupted = self._stop_writer(writer, [batch, CLOSE_FILE, STOP])
        self._closed = True
        if writer.error is not None:
            raise RecordingError(f"writing the recording in {self.out_dir} failed: {writer.error}") from writer.error
        if interrupted is not None:
            raise interrupted
        return stats

    def _stop_writer(self, writer: WriterThread, items: list[Batch | str | None]) -> KeyboardInterrupt | None:
        # The writer is a daemon thread: given up on, it dies at exit with the last file still .tmp (no footer,
        # every row of it unreadable). So an interrupt here waits for it, and is handed back to be raised after.
        interrupted: KeyboardInterrupt | None = None
        while True:
            try:
                while items:
                    writer.queue.put(items[0])
                    del items[0]
                writer.join()
                return interrupted
            except KeyboardInterrupt as exc:
                interrupted = exc
                logger.warning("interrupted: completing the last file of the recording in %s first", self.out_dir)

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
        if env is None:
            self._add_malformed(data, recv_ns)
            return
        kind = env.type
        sid = env.sid
        seq = env.seq
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
        if seq is not None and sid is not None:
            last = self._last_seq.get(sid)
            if last is not None and seq == last + 1:
                self._last_seq[sid] = seq
            elif kind != "subscribed":
                self._out_of_order(sid, seq, last, channel, ticker, recv_ns)
        if env.id:
            if kind == "orderbook_snapshot":
                self.stats.resyncs += 1
                self.add_event(
                    "resync", detail={"cmd_id": env.id}, sid=sid, seq=seq, channel=channel, market_ticker=ticker
                )
            self._batch.cmd_ids.append((len(self._batch), env.id))  # the row this frame is about to take
        # _append() written out: this is the per-frame path.
        a_recv, a_type, a_channel, a_sid, a_seq, a_ticker, a_ts, a_len = self._appenders
        a_recv(recv_ns)
        a_type(kind)
        a_channel(channel)
        a_sid(sid)
        a_seq(seq)
        a_ticker(ticker)
        a_ts(ts_ms)
        size = len(data)
        a_len(size)
        batch_data = self._batch.data
        batch_data += data
        self._n += 1
        stats = self.stats
        stats.frames += 1
        stats.frame_bytes += size
        if len(batch_data) >= self.batch_bytes or len(self._batch) >= self._flush_at:
            self.flush()

    def _append(
        self,
        recv_ns: int,
        kind: str | None,
        channel: str | None,
        sid: int | None,
        seq: int | None,
        ticker: str | None,
        ts_ms: int | None,
        data: bytes,
    ) -> None:
        a_recv, a_type, a_channel, a_sid, a_seq, a_ticker, a_ts, a_len = self._appenders
        a_recv(recv_ns)
        a_type(kind)
        a_channel(channel)
        a_sid(sid)
        a_seq(seq)
        a_ticker(ticker)
        a_ts(ts_ms)
        a_len(len(data))
        batch_data = self._batch.data
        batch_data += data
        self._n += 1
        stats = self.stats
        stats.frames += 1
        stats.frame_bytes += len(data)
        if len(self._batch) >= self._flush_at or len(batch_data) >= self.batch_bytes:
            self.flush()

    def _out_of_order(
        self, sid: int, seq: int, last: int | None, channel: str | None, ticker: str | None, recv_ns: int
    ) -> None:
        if last is None:
            self._last_seq[sid] = seq
        elif seq > last:
            self._last_seq[sid] = seq
            self.stats.gaps += 1
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
            self.stats.duplicates += 1
            self.add_event("duplicate", detail={"last": last}, sid=sid, seq=seq, channel=channel, recv_ns=recv_ns)

    def _add_malformed(self, data: bytes, recv_ns: int) -> None:
        self.stats.malformed += 1
        self.add_event("malformed", detail={"bytes": len(data)}, recv_ns=recv_ns)
        self._append(recv_ns, None, None, None, None, None, None, data)

    def new_connection(self, detail: Mapping[str, Any] | None = None) -> int:
        """Start the next connection number: sids and sequence tracking restart. Returns the new number.

        The first call records ``connect``, later ones ``reconnect``.

        Raises:
            RecordingError: the recorder is not started or is closed.
        """
        if self._writer is None or self._closed:
            raise RecordingError("the recorder is not recording: use it inside `with Recorder(...)`")
        self._conn += 1
        self._last_seq.clear()
        self._sid_channel.clear()
        self._batch.conns.append((len(self._batch), self._conn))
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
        stats = self.stats
        if kind == "error":
            stats.errors += 1
        stats.events += 1
        batch = self._batch
        text = json.dumps(detail, separators=(",", ":"), default=str) if detail is not None else None
        batch.events.append((len(batch), kind, text))
        self._n += 1
        a_recv, a_type, a_channel, a_sid, a_seq, a_ticker, a_ts, a_len = self._appenders
        a_recv(time.time_ns() if recv_ns is None else recv_ns)
        a_type(None)
        a_channel(channel)
        a_sid(sid)
        a_seq(seq)
        a_ticker(market_ticker)
        a_ts(None)
        a_len(0)

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
        elif len(self._batch) and now - self._batch_started >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        """Hand the current batch to the writer (blocks while ``queue_batches`` batches are waiting).

        Raises:
            RecordingError: the writer failed, or the recorder is closed.
        """
        if not len(self._batch):
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
            writer.queue.put(CLOSE_FILE)
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
        batch = self._batch
        if not len(batch):
            return
        # The file is decided now, not when the batch was started: a rotation may have happened since.
        batch.path = self.out_dir / f"{self.session}-{self._file_index:05d}.parquet"
        # Blocks when the writer is behind (backpressure, by design). The batch stays the current one until
        # the queue has it: a Ctrl-C while waiting leaves it for close() to write, not dropped.
        writer.queue.put(batch)
        self._file_rows += len(batch)
        self._new_batch()

    def _new_batch(self) -> None:
        batch = self._batch = Batch(self._n, self._conn)
        self._appenders = (
            batch.recv_ns.append,
            batch.type.append,
            batch.channel.append,
            batch.sid.append,
            batch.seq.append,
            batch.market_ticker.append,
            batch.ts_ms.append,
            batch.lengths.append,
        )
        self._batch_started = time.monotonic()
        # A batch never crosses a file boundary by more than one row group.
        self._flush_at = max(1, min(self.batch_rows, self.max_rows_per_file - self._file_rows))
