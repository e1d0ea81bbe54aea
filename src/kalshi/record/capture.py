"""Capture: run a KalshiWebSocket into a :class:`~kalshi.record.Recorder` until told to stop.

:func:`capture` is what ``kalshi record`` runs. The client's raw frame tap feeds the recorder synchronously, so
every frame is recorded in arrival order before the client even decodes it. The client keeps the order books of
``orderbook_delta`` subscriptions, so it repairs gaps itself (``get_snapshot``) and resubscribes after a
reconnect; the recording then holds the resync snapshots and the fresh ones, marked by ``resync`` and
``reconnect`` events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from kalshi.auth import KalshiAuth
from kalshi.config import KalshiConfig
from kalshi.errors import KalshiSubscriptionError
from kalshi.record.recorder import Recorder, RecorderStats, RecordingError
from kalshi.ws.backpressure import OverflowStrategy
from kalshi.ws.client import KalshiWebSocket
from kalshi.ws.connection import ConnectionState
from kalshi.ws.lifecycle import Disconnected, LifecycleEvent, Reconnected
from kalshi.ws.models import ErrorMessage
from kalshi.ws.subscription import Subscription

__all__ = ["CaptureProgress", "capture", "subscribe_channel"]

# Server error codes are also frames in the recording (type 'error'); only the client's own findings
# (codes >= 1000: gaps it could not repair, failed resubscribes) become events.
_CLIENT_CODES_FROM = 1000


@dataclass(frozen=True, slots=True)
class CaptureProgress:
    """A progress report: totals so far and the frame rate since the previous report."""

    elapsed: float
    frames: int
    rate: float
    frame_bytes: int
    gaps: int
    resyncs: int
    reconnects: int
    rows_written: int
    files: int
    state: str

    def line(self) -> str:
        """One human line: ``12.0 s  48,210 frames  4,017/s  6.1 MB  gaps 1  resyncs 4  reconnects 1``."""
        return (
            f"{self.elapsed:6.1f} s  {self.frames:,} frames  {self.rate:,.0f}/s  "
            f"{self.frame_bytes / 1e6:,.1f} MB  gaps {self.gaps}  resyncs {self.resyncs}  "
            f"reconnects {self.reconnects}  files {self.files}  [{self.state}]"
        )


async def subscribe_channel(
    ws: KalshiWebSocket, channel: str, markets: Sequence[str] | None, *, tap_only: bool = False
) -> Subscription[Any]:
    """Subscribe ``channel`` for ``markets`` (every market when None or empty).

    Args:
        ws: a connected client.
        channel: the channel name.
        markets: market tickers, or None for every market (where the channel allows it).
        tap_only: nobody will iterate the subscription (the frames are read from the raw frame tap): its
            queue keeps only the latest message, so it never holds back the socket.

    Raises:
        KalshiSubscriptionError: orderbook_delta without markets, or the server refused.
    """
    params: dict[str, Any] = {}
    if markets:
        params["market_tickers"] = list(markets)
    elif channel == "orderbook_delta":
        raise KalshiSubscriptionError("orderbook_delta needs market tickers: pass --markets TICKER[,TICKER...]")
    if tap_only:
        # An unread BLOCK queue would pause the socket once full: the recording would stall.
        return await ws.subscribe(channel, params, overflow=OverflowStrategy.DROP_OLDEST, maxsize=1)
    return await ws.subscribe(channel, params)


async def capture(
    recorder: Recorder,
    *,
    config: KalshiConfig,
    auth: KalshiAuth | None,
    channels: Sequence[str],
    markets: Sequence[str] | None = None,
    duration: float | None = None,
    max_frames: int | None = None,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[CaptureProgress], None] | None = None,
    progress_interval: float = 1.0,
    heartbeat_timeout: float = 30.0,
    alongside: Callable[[KalshiWebSocket], Coroutine[Any, Any, None]] | None = None,
) -> RecorderStats:
    """Record ``channels`` (for ``markets``) into a started ``recorder`` until a limit or ``stop``.

    Survives reconnects (the client reconnects and resubscribes; the recorder starts a new connection number).
    Stops at the first failed write (a full disk), raising it. Leaves the recorder open: the caller closes it,
    which writes everything.

    Args:
        recorder: a started Recorder.
        config: where to connect.
        auth: signs the connection (None for an open simulator).
        channels: channel names (``orderbook_delta``, ``ticker``, ``trade``, ...).
        markets: market tickers; None records every market where the channel allows it.
        duration: stop after this many seconds.
        max_frames: stop after this many frames.
        stop: stop when this event is set (signal handlers set it).
        on_progress: called every ``progress_interval`` seconds.
        progress_interval: seconds between progress reports and recorder ticks.
        heartbeat_timeout: seconds of silence before the client declares the link dead.
        alongside: run ``alongside(session)`` as a task once the channels are subscribed (e.g.
            :func:`kalshi.record.universe.follow_new_listings`); cancelled when the capture ends.

    Returns:
        The recorder's counters.

    Raises:
        KalshiHandshakeError: the server refused the credentials.
        KalshiConnectionError: the server could not be reached, or reconnecting gave up.
        KalshiSubscriptionError: a channel could not be subscribed.
        RecordingError: writing failed.
    """
    if not channels:
        raise KalshiSubscriptionError("nothing to record: name at least one channel")
    stop = stop or asyncio.Event()
    ws: KalshiWebSocket

    reconnects = 0
    failure: RecordingError | None = None

    def tap(data: bytes, recv_ns: int) -> None:
        nonlocal reconnects, failure
        if failure is not None:
            return  # stopping: the error is raised below
        try:
            # Lifecycle events are published synchronously, before the new connection's first frame: taking them
            # here puts the connection boundary exactly between the frames of the two connections.
            for event in events.take_nowait():
                if isinstance(event, Reconnected):
                    reconnects += 1
                    recorder.new_connection({"reconnects": reconnects, "attempt": event.attempt})
            recorder.add_frame(data, recv_ns)
        except RecordingError as exc:
            # Raised into the client, it would drop the connection and reconnect, over and over, writing nothing.
            failure = exc
            stop.set()
            return
        if max_frames is not None and recorder.stats.frames >= max_frames:
            stop.set()

    async def on_error(message: ErrorMessage) -> None:
        code = message.msg.code
        if code >= _CLIENT_CODES_FROM and recorder.started:
            # Gaps are already events (the recorder sees every seq); this adds what the client made of it.
            recorder.add_event("error", detail={"code": code, "msg": message.msg.msg, "client": True}, sid=message.sid)

    ws = KalshiWebSocket(
        auth,
        config,
        heartbeat_timeout=heartbeat_timeout,
        on_error=on_error,
        on_raw_frame=tap,
    )
    events = ws.lifecycle_events()

    @ws.on_lifecycle
    async def on_disconnect(event: LifecycleEvent) -> None:
        if isinstance(event, Disconnected) and recorder.started:
            recorder.add_event("disconnect", detail={"cause": event.cause, "code": event.code})

    loop = asyncio.get_running_loop()
    started = time.monotonic()
    deadline = None if duration is None else loop.time() + duration
    async with ws.connect() as session:
        if recorder.conn == 0:
            recorder.new_connection({"url": config.ws_url})
        for channel in channels:
            await subscribe_channel(session, channel, markets, tap_only=True)
        ended = asyncio.create_task(session.run_forever(), name="kalshi-capture-session")
        stopped = asyncio.create_task(stop.wait(), name="kalshi-capture-stop")
        helper = asyncio.create_task(alongside(session), name="kalshi-capture-alongside") if alongside else None
        last_frames, last_time = recorder.stats.frames, time.monotonic()
        try:
            while not stop.is_set() and not ended.done():
                wait = progress_interval
                if deadline is not None:
                    wait = min(wait, deadline - loop.time())
                    if wait <= 0:
                        break
                await asyncio.wait({ended, stopped}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                recorder.tick()
                now = time.monotonic()
                stats = recorder.stats
                if on_progress is not None and now > last_time:
                    rate = (stats.frames - last_frames) / (now - last_time)
                    on_progress(_progress(stats, now - started, rate, session.state))
                last_frames, last_time = stats.frames, now
        finally:
            for task in (ended, stopped, helper):
                if task is not None and not task.done():
                    task.cancel()
            await asyncio.gather(ended, stopped, *([helper] if helper else []), return_exceptions=True)
        if failure is not None:
            raise failure
        error = None if ended.cancelled() else ended.exception()
        if error is None and helper is not None and not helper.cancelled():
            error = helper.exception()
        if error is not None:
            raise error
    return recorder.stats


def _progress(stats: RecorderStats, elapsed: float, rate: float, state: ConnectionState) -> CaptureProgress:
    return CaptureProgress(
        elapsed=elapsed,
        frames=stats.frames,
        rate=rate,
        frame_bytes=stats.frame_bytes,
        gaps=stats.gaps,
        resyncs=stats.resyncs,
        reconnects=stats.reconnects,
        rows_written=stats.rows_written,
        files=len(stats.files),
        state=state.value,
    )
