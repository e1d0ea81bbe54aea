"""Recording WebSocket streams to Parquet, reading them back, and replaying them as a live endpoint.

* :class:`Recorder`: raw frames and events into rotating zstd Parquet files (``on_raw_frame=recorder.add_frame``).
* :func:`capture`: run a KalshiWebSocket into a Recorder (what ``kalshi record`` does).
* :func:`open` (``kalshi.record.open(dir)``): a :class:`Recording` to iterate typed messages and rebuild books
  at any moment (``book_at``).
* :class:`ReplayServer`: serve a recording over the WebSocket protocol (``kalshi replay``).

The file format is described in :mod:`kalshi.record.schema`.
"""

from __future__ import annotations

from kalshi.record.capture import CaptureProgress, capture, subscribe_channel
from kalshi.record.reader import (
    BookReplayer,
    RecordedMessage,
    RecordedRow,
    Recording,
    RecordingSummary,
    open_recording,
)
from kalshi.record.recorder import Recorder, RecorderStats, RecordingError
from kalshi.record.replay_server import ReplayServer
from kalshi.record.schema import SCHEMA

open = open_recording  # `kalshi.record.open(dir)` reads like `open(file)` on purpose

__all__ = [
    "SCHEMA",
    "BookReplayer",
    "CaptureProgress",
    "RecordedMessage",
    "RecordedRow",
    "Recorder",
    "RecorderStats",
    "Recording",
    "RecordingError",
    "RecordingSummary",
    "ReplayServer",
    "capture",
    "open",
    "open_recording",
    "subscribe_channel",
]
