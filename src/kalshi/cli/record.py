"""``kalshi record``: every raw frame of some channels into rotating zstd Parquet files."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console

from kalshi.auth import KalshiAuth
from kalshi.cli.common import (
    EXIT_USAGE,
    ConnectOptions,
    EnvOpt,
    KeyIdOpt,
    KeyPathOpt,
    UrlOpt,
    err_console,
    fail,
    preflight,
    resolve_auth,
    resolve_config,
    run,
    split_values,
    stop_on_signals,
)
from kalshi.config import KalshiConfig
from kalshi.errors import KalshiError, KalshiSubscriptionError
from kalshi.record.capture import CaptureProgress, capture
from kalshi.record.recorder import Recorder, RecorderStats
from kalshi.record.universe import NewListings, follow_new_listings, market_price_ranges, open_market_tickers
from kalshi.ws.client import KalshiWebSocket

__all__ = ["DEFAULT_CHANNELS", "record_command", "record_to"]

DEFAULT_CHANNELS: Final = ("orderbook_delta", "ticker", "trade")


class _ProgressLine:
    """The progress line on stderr: redrawn in place on a terminal, one line every ``every`` s otherwise."""

    def __init__(self, console: Console, every: float) -> None:
        self.console = console
        self.every = every
        self.last = 0.0

    def __call__(self, progress: CaptureProgress) -> None:
        if self.console.is_terminal:
            self.console.file.write("\r\x1b[2K" + progress.line())
            self.console.file.flush()
        elif progress.elapsed - self.last >= self.every:
            self.last = progress.elapsed
            self.console.print(progress.line(), highlight=False, markup=False)

    def done(self) -> None:
        if self.console.is_terminal:
            self.console.file.write("\n")


async def _record_price_grids(
    recorder: Recorder, config: KalshiConfig, auth: KalshiAuth | None, markets: list[str], console: Console
) -> None:
    """Write the markets' price grids into the recording (a ``markets`` event): a backtest of it then refuses
    orders off a market's grid, as the exchange does. Markets listed later carry theirs in their lifecycle frame."""
    try:
        ranges = await market_price_ranges(config, auth, markets)
    except KalshiError as exc:
        console.print(f"[yellow]warning[/]: cannot read the markets' price grids ({exc}); recording without them")
        return
    if ranges:
        recorder.add_event("markets", detail={"price_ranges": ranges})


async def record_to(
    out: Path,
    *,
    config: KalshiConfig,
    auth: KalshiAuth | None,
    channels: list[str],
    markets: list[str],
    duration: float | None = None,
    count: int | None = None,
    rotate_rows: int = 1_000_000,
    rotate_seconds: float = 3600.0,
    batch_rows: int = 65_536,
    progress_every: float = 10.0,
    stop: asyncio.Event | None = None,
) -> RecorderStats:
    """Record until ``duration``, ``count`` frames or a stop signal (SIGINT/SIGTERM); flush and close.

    Without ``markets``, records every market: ``ticker`` and ``trade`` subscribe to all markets; with
    ``orderbook_delta`` the open markets of the REST listing are subscribed, and each market listed later
    (``market_lifecycle_v2``) is added while the recording runs.

    Raises:
        KalshiConnectionError: the host is unreachable, or reconnecting gave up.
        KalshiHandshakeError: the credentials were refused.
        KalshiSubscriptionError: a channel could not be subscribed.
        RecordingError: the files could not be written.
    """
    await preflight(config)
    stop = stop or asyncio.Event()
    console = err_console()
    progress = _ProgressLine(console, progress_every)
    follow = None
    if not markets and "orderbook_delta" in channels:
        markets = await open_market_tickers(config, auth)
        if not markets:
            raise KalshiSubscriptionError(f"{config.rest_url} lists no open market to record; name some with --markets")
        listings = NewListings(markets)
        console.print(f"every market: {len(markets):,} open now, new ones added as they list", highlight=False)

        async def relist() -> list[str]:
            return await open_market_tickers(config, auth)

        async def follow(session: KalshiWebSocket) -> None:
            await follow_new_listings(session, listings, relist=relist)

    recorder = Recorder(
        out,
        max_rows_per_file=rotate_rows,
        max_seconds_per_file=rotate_seconds,
        batch_rows=batch_rows,
        metadata={
            "channels": ",".join(channels),
            "markets": "*" if follow is not None else ",".join(markets),
            "url": config.ws_url,
        },
    )
    recorder.start()
    if markets:
        await _record_price_grids(recorder, config, auth, markets, console)
    console.print(f"recording {', '.join(channels)} from {config.ws_url} into {out}  (Ctrl-C to stop)")
    try:
        with stop_on_signals(stop):
            await capture(
                recorder,
                config=config,
                auth=auth,
                channels=channels,
                markets=markets or None,
                duration=duration,
                max_frames=count,
                stop=stop,
                on_progress=progress,
                alongside=follow,
            )
    finally:
        progress.done()
        stats = recorder.close()
        if stats.frames == 0:
            # Nothing but the start/stop events (e.g. the credentials were refused): leave no empty session.
            for path in stats.files:
                path.unlink(missing_ok=True)
            stats.files.clear()
        console.print(
            f"recorded {stats.frames:,} frames ({stats.frame_bytes / 1e6:,.1f} MB) in {len(stats.files)} file(s) "
            f"({stats.file_bytes / 1e6:,.2f} MB) in {out}; gaps {stats.gaps}, resyncs {stats.resyncs}, "
            f"reconnects {stats.reconnects}",
            highlight=False,
        )
    return stats


def record_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the Parquet files (created if missing).")],
    channels: Annotated[
        list[str] | None,
        typer.Option(
            "--channels", "-c", help=f"Channels, comma-separated or repeated (default: {','.join(DEFAULT_CHANNELS)})."
        ),
    ] = None,
    markets: Annotated[
        list[str] | None,
        typer.Option(
            "--markets",
            "-m",
            help="Market tickers, comma-separated or repeated (default: every market, new ones as they list).",
        ),
    ] = None,
    duration: Annotated[float | None, typer.Option("--duration", "-d", help="Stop after this many seconds.")] = None,
    count: Annotated[int | None, typer.Option("--count", "-n", help="Stop after this many frames.")] = None,
    rotate_rows: Annotated[
        int, typer.Option("--rotate-rows", help="Start a new file after this many rows.")
    ] = 1_000_000,
    rotate_seconds: Annotated[
        float, typer.Option("--rotate-seconds", help="Start a new file after this many seconds.")
    ] = 3600.0,
    batch_rows: Annotated[int, typer.Option("--batch-rows", help="Rows per Parquet row group.")] = 65_536,
    progress_every: Annotated[
        float, typer.Option("--progress-every", help="Seconds between progress lines when stderr is not a terminal.")
    ] = 10.0,
    env: EnvOpt = "prod",
    url: UrlOpt = None,
    key_id: KeyIdOpt = None,
    key_path: KeyPathOpt = None,
    from_redis: Annotated[
        str | None, typer.Option("--from-redis", help="Record a `kalshi relay` from its Redis (redis://...).")
    ] = None,
) -> None:
    """Record raw WebSocket frames to zstd Parquet: receive time (ns), exchange time, sid/seq, type, channel.

    Without --markets it records every market, and adds markets listed while it runs.
    Gaps, resyncs and reconnects are recorded as events. Survives reconnects; Ctrl-C or SIGTERM stops cleanly
    and writes everything. Read the files with DuckDB, pandas or polars, with `kalshi.record.open(DIR)`,
    or serve them with `kalshi replay DIR`.
    """
    if from_redis is not None:
        from kalshi.cli.relay import record_relay

        return record_relay(from_redis, out, split_values(channels) or list(DEFAULT_CHANNELS), duration, count)
    options = ConnectOptions(env, url, key_id, key_path)
    config = resolve_config(options)
    names = split_values(channels) or list(DEFAULT_CHANNELS)
    tickers = split_values(markets)
    if min(rotate_rows, batch_rows) < 1 or rotate_seconds <= 0 or (count is not None and count < 1):
        fail("--rotate-rows, --batch-rows and --count must be >= 1, --rotate-seconds > 0", EXIT_USAGE)
    auth = resolve_auth(options, config, required=True)
    run(
        lambda: record_to(
            out,
            config=config,
            auth=auth,
            channels=names,
            markets=tickers,
            duration=duration,
            count=count,
            rotate_rows=rotate_rows,
            rotate_seconds=rotate_seconds,
            batch_rows=batch_rows,
            progress_every=progress_every,
        ),
        config=config,
    )
