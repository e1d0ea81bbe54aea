"""``kalshi replay DIR``: serve a recording over the WebSocket protocol, as if it were live."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console

from kalshi.cli.common import EXIT_USAGE, fail, out_console, run, stop_on_signals
from kalshi.record.reader import Recording
from kalshi.record.recorder import RecordingError
from kalshi.record.replay_server import ReplayServer

__all__ = ["DEFAULT_REPLAY_PORT", "replay_command", "serve_replay"]

# Not the simulator's 8765: a replay runs beside a simulator without a port clash.
DEFAULT_REPLAY_PORT: Final = 8766


async def serve_replay(
    recording: Recording,
    *,
    console: Console,
    speed: float | None,
    host: str = "127.0.0.1",
    port: int = DEFAULT_REPLAY_PORT,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
) -> ReplayServer:
    """Serve ``recording`` until ``duration`` passes or a stop signal.

    Raises:
        OSError: the port cannot be bound.
    """
    stop = stop or asyncio.Event()
    summary = recording.summary()
    span = (summary.end_ns - summary.start_ns) / 1e9 if summary.start_ns is not None and summary.end_ns else 0.0
    async with ReplayServer(recording, speed=speed, host=host, port=port) as server:
        pace = "as fast as clients read" if speed is None else f"at {speed:g}x"
        console.print(
            f"replaying {recording.path}: {summary.frames:,} frames over {span:,.1f} s, "
            f"{len(summary.markets)} markets, channels {', '.join(sorted(summary.channels)) or '-'}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(f"serving {server.ws_url} {pace}  (Ctrl-C to stop)", highlight=False, soft_wrap=True)
        ticker = summary.markets[0] if summary.markets else "TICKER"
        console.print(f"try: kalshi book {ticker} --url {server.url}", style="dim", highlight=False, soft_wrap=True)
        with stop_on_signals(stop), contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                await stop.wait()
    return server


def replay_command(
    directory: Annotated[Path, typer.Argument(help="A recording directory (from kalshi record).", show_default=False)],
    speed: Annotated[
        float, typer.Option("--speed", help="Replay speed: 1 = as recorded, 10 = ten times faster.")
    ] = 1.0,
    as_fast_as_possible: Annotated[
        bool, typer.Option("--as-fast-as-possible", help="Send frames as fast as each client reads.")
    ] = False,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="TCP port (the simulator uses 8765; 0 picks a free one and prints it).")
    ] = DEFAULT_REPLAY_PORT,
    duration: Annotated[float | None, typer.Option("--duration", "-d", help="Stop serving after this long.")] = None,
) -> None:
    """Serve a recording at ws://HOST:PORT/trade-api/ws/v2 so any client consumes it as if live.

    Each subscription replays its channel's frames (of its markets) from the start, with sids rewritten and
    seq renumbered continuously. Connect with --url http://HOST:PORT (no credentials needed).
    """
    if not speed > 0:
        fail("--speed must be > 0", EXIT_USAGE)
    try:
        recording = Recording(directory)
    except RecordingError as exc:
        fail(str(exc), EXIT_USAGE)
    console = out_console()
    run(
        lambda: serve_replay(
            recording,
            console=console,
            speed=None if as_fast_as_possible else speed,
            host=host,
            port=port,
            duration=duration,
        )
    )
