"""The recorder as a relay consumer: ``kalshi record --from-redis redis://...``.

Capture (``kalshi relay``) and storage then run on different machines. The files have the layout of
``kalshi record`` (:mod:`kalshi.record.schema`), written by the same :class:`~kalshi.record.recorder.Recorder`. Sids
are per exchange connection, so each relay shard (one connection) is its own recording directory, ``OUT/shard-<N>``,
each readable with ``kalshi.record.open(OUT / "shard-0")`` or ``kalshi replay``, all of them at once with DuckDB
(``'OUT/*/*.parquet'``). A new connection of the shard is a ``reconnect`` row, and
a relay restart, a gap marker or entries trimmed before they were read are ``gap``/``reconnect`` rows. Frames keep
their original receive time (``recv_ns``) from the relay machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kalshi.record.recorder import Recorder, RecorderStats, RecordingError

__all__ = ["FromRedisStats", "record_from_redis"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class FromRedisStats:
    """What a ``--from-redis`` recording wrote: one :class:`RecorderStats` per relay shard."""

    entries: int = 0
    frames: int = 0
    gaps: int = 0
    shards: dict[int, RecorderStats] = field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        return [path for stats in self.shards.values() for path in stats.files]


class _ShardRecorders:
    def __init__(self, out: Path, make: Callable[[Path], Recorder]) -> None:
        self.out = out
        self.make = make
        self.recorders: dict[int, Recorder] = {}
        self.conns: dict[int, int] = {}
        self.epoch: object = None

    def get(self, shard: int) -> Recorder:
        recorder = self.recorders.get(shard)
        if recorder is None:
            recorder = self.recorders[shard] = self.make(self.out / f"shard-{shard}")
            recorder.start({"source": "relay", "shard": shard})
        return recorder

    def frame(self, conn: str, data: bytes, recv_ns: int | None) -> None:
        shard_text, _, number_text = conn.partition(".")
        shard = int(shard_text) if shard_text.isdigit() else 0
        number = int(number_text) if number_text.isdigit() else 0
        recorder = self.get(shard)
        current = self.conns.get(shard)
        # Streams are read one batch at a time, so a few frames of the old connection may follow the first of the
        # new one (from another channel's stream): only a higher number starts a connection.
        if current is None or number > current:
            if current is not None:
                recorder.new_connection({"relay_conn": conn})
            self.conns[shard] = number
        recorder.add_frame(data, recv_ns)

    def event(self, kind: str, detail: dict[str, Any]) -> None:
        for recorder in self.recorders.values():
            recorder.add_event(kind, detail=detail)

    def restart(self, detail: dict[str, Any]) -> None:
        """A new relay run (announced once in every stream: acted on once): every shard's sids restart."""
        epoch = detail.get("epoch")
        if epoch == self.epoch:
            return
        first = self.epoch is None
        self.epoch = epoch
        if first:
            return
        for shard, recorder in self.recorders.items():
            recorder.new_connection(detail)
            self.conns.pop(shard, None)

    def tick(self) -> None:
        for recorder in self.recorders.values():
            recorder.tick()

    def close(self) -> dict[int, RecorderStats]:
        """Close every shard's recorder, even after one failed (its rows would be lost); then raise the first error."""
        stats: dict[int, RecorderStats] = {}
        failure: RecordingError | KeyboardInterrupt | None = None
        for shard, recorder in self.recorders.items():
            try:
                stats[shard] = recorder.close()
            except (RecordingError, KeyboardInterrupt) as exc:
                failure = failure or exc
                stats[shard] = recorder.stats
        if failure is not None:
            raise failure
        return stats


async def record_from_redis(
    out: Path,
    redis_url: str,
    *,
    channels: Sequence[str],
    prefix: str = "kalshi",
    start: str = "latest",
    duration: float | None = None,
    count: int | None = None,
    rotate_rows: int = 1_000_000,
    rotate_seconds: float = 3600.0,
    batch_rows: int = 65_536,
    stop: asyncio.Event | None = None,
    ready: asyncio.Event | None = None,
    stats: FromRedisStats | None = None,
) -> FromRedisStats:
    """Record the relay's streams of ``channels`` until ``stop``, ``duration`` s or ``count`` frames.

    Args:
        out: directory of the recording.
        redis_url: the relay's Redis.
        channels: channels to record.
        prefix: the relay's key prefix.
        start: ``"latest"`` (from now) or ``"earliest"`` (everything still in the streams).
        ready: set once reading has started (tests wait for it).
        stats: counters to update as it goes (default: new ones, returned).

    Raises:
        KalshiConnectionError: Redis cannot be reached.
        RecordingError: the files could not be written.
    """
    from kalshi.relay.client import RelayClient
    from kalshi.relay.layout import KIND_DISCONNECTED, KIND_GAP, KIND_RELAY_START
    from kalshi.ws.lifecycle import Gap

    stop = stop or asyncio.Event()
    stats = stats if stats is not None else FromRedisStats()
    metadata = {"channels": ",".join(channels), "relay": redis_url.rsplit("@", 1)[-1]}
    shards = _ShardRecorders(
        out,
        lambda directory: Recorder(
            directory,
            max_rows_per_file=rotate_rows,
            max_seconds_per_file=rotate_seconds,
            batch_rows=batch_rows,
            metadata=metadata,
        ),
    )
    client = RelayClient(redis_url, prefix=prefix, start=start)
    try:
        async with client.connect() as feed:
            events = feed.lifecycle_events()
            entries = await feed.subscribe_raw(list(channels))

            async def gaps() -> None:
                async for event in events:
                    if isinstance(event, Gap) and event.reason == "trimmed":
                        stats.gaps += 1
                        shards.event("gap", {"reason": "trimmed", "channel": event.channel, "missing": event.received})

            async def ticks() -> None:
                while True:
                    await asyncio.sleep(1.0)
                    shards.tick()

            async def consume() -> None:
                async for entry in entries:
                    stats.entries += 1
                    if entry.frame is not None:
                        shards.frame(entry.conn or "0.0", entry.frame, entry.recv_ns)
                        stats.frames += 1
                        if count is not None and stats.frames >= count:
                            return
                    elif entry.kind == KIND_RELAY_START:
                        shards.restart(entry.body or {})
                    elif entry.kind == KIND_GAP:
                        stats.gaps += 1
                        shards.event("gap", entry.body or {})
                    elif entry.kind == KIND_DISCONNECTED:
                        shards.event("disconnect", entry.body or {})
                    # KIND_CONNECTION needs nothing: the shard's next frame carries the new connection tag.

            tasks = [asyncio.create_task(consume()), asyncio.create_task(stop.wait())]
            watchers = [asyncio.create_task(gaps()), asyncio.create_task(ticks())]
            if ready is not None:
                ready.set()
            try:
                done, _ = await asyncio.wait(tasks, timeout=duration, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()  # a recording error surfaces here
            finally:
                for task in (*tasks, *watchers):
                    task.cancel()
                for task in (*tasks, *watchers):
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    finally:
        stats.shards = shards.close()
    return stats
