"""``kalshi relay``: the exchange's streams into Redis Streams for consumers on any machine."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

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

if TYPE_CHECKING:
    from kalshi.relay import RelayProgress

__all__ = ["RELAY_EXAMPLES", "record_relay", "relay_command", "relay_to"]

RELAY_EXAMPLES = [
    "kalshi relay --redis redis://127.0.0.1:6379/0 --env demo",
    "kalshi relay --redis redis://10.0.0.5:6379/0 --url http://127.0.0.1:8765 --maxlen 2000000",
    "kalshi record --from-redis redis://10.0.0.5:6379/0 --out rec/",
]

_DEFAULT_CHANNELS = "orderbook_delta,ticker,trade,market_lifecycle_v2"


async def relay_to(
    redis_url: str,
    *,
    config: KalshiConfig,
    auth: KalshiAuth | None,
    channels: list[str],
    markets: list[str] | None,
    maxlen: int | None,
    prefix: str,
    markets_per_connection: int,
    checkpoint_interval: float,
    duration: float | None,
    progress_every: float,
    stop: asyncio.Event | None = None,
) -> None:
    """Relay until a stop signal (SIGINT/SIGTERM) or ``duration``; print a progress line meanwhile.

    Raises:
        KalshiConnectionError: the exchange or Redis is unreachable.
        KalshiSubscriptionError: a channel could not be subscribed.
    """
    from kalshi.relay import Relay

    await preflight(config)
    stop = stop or asyncio.Event()
    console = err_console()
    relay = Relay(
        redis_url,
        config=config,
        auth=auth,
        channels=channels,
        markets=markets,
        maxlen=maxlen,
        prefix=prefix,
        markets_per_connection=markets_per_connection,
        checkpoint_interval=checkpoint_interval,
    )

    def show(progress: RelayProgress) -> None:
        line = progress.line()
        if console.is_terminal:
            console.file.write("\r\x1b[2K" + line)
            console.file.flush()
        else:
            console.print(line, highlight=False, markup=False)

    console.print(f"relaying {', '.join(channels)} from {config.ws_url} into {redis_url}  (Ctrl-C to stop)")
    with stop_on_signals(stop):
        final = await relay.run(stop, on_progress=show, progress_every=progress_every, duration=duration)
    if console.is_terminal:
        console.file.write("\n")
    console.print(
        f"relayed {final.frames:,} frames over {final.connections} connection(s) for {final.markets} market(s); "
        f"dropped {final.dropped:,}, checkpoints {final.checkpoints}",
        highlight=False,
    )


def relay_command(
    redis: Annotated[str, typer.Option("--redis", help="Redis URL, e.g. redis://127.0.0.1:6379/0.")],
    channels: Annotated[
        list[str] | None,
        typer.Option("--channels", "-c", help=f"Channels, comma-separated or repeated (default: {_DEFAULT_CHANNELS})."),
    ] = None,
    markets: Annotated[
        list[str] | None,
        typer.Option("--markets", "-m", help="Market tickers (default: every open market, following new ones)."),
    ] = None,
    maxlen: Annotated[
        int, typer.Option("--maxlen", help="Approximate length of each stream (MAXLEN ~); 0 keeps everything.")
    ] = 1_000_000,
    prefix: Annotated[str, typer.Option("--prefix", help="Key prefix in Redis.")] = "kalshi",
    per_connection: Annotated[
        int, typer.Option("--markets-per-connection", help="Markets per connection (lowered on error 26).")
    ] = 500,
    checkpoint_every: Annotated[
        float, typer.Option("--checkpoint-every", help="Seconds between book checkpoints.")
    ] = 5.0,
    duration: Annotated[float | None, typer.Option("--duration", "-d", help="Stop after this many seconds.")] = None,
    progress_every: Annotated[float, typer.Option("--progress-every", help="Seconds between progress lines.")] = 1.0,
    env: EnvOpt = "prod",
    url: UrlOpt = None,
    key_id: KeyIdOpt = None,
    key_path: KeyPathOpt = None,
) -> None:
    """Relay every message of the exchange into Redis Streams (one stream per channel), with book checkpoints.

    Consumers on any machine read it with `kalshi.relay.RelayClient(redis_url)` (exact books, fan-out or consumer
    groups) or record it with `kalshi record --from-redis`. Survives Redis restarts (bounded buffer) and
    reconnects; Ctrl-C or SIGTERM stops cleanly after writing everything.
    """
    options = ConnectOptions(env, url, key_id, key_path)
    config = resolve_config(options)
    names = split_values(channels) or _DEFAULT_CHANNELS.split(",")
    tickers = split_values(markets) or None
    if maxlen < 0 or per_connection < 1 or checkpoint_every <= 0:
        fail("--maxlen must be >= 0, --markets-per-connection >= 1 and --checkpoint-every > 0", EXIT_USAGE)
    if not redis.startswith(("redis://", "rediss://", "unix://")):
        fail("--redis must be a URL such as redis://127.0.0.1:6379/0", EXIT_USAGE)
    try:
        import kalshi.relay  # noqa: F401  (the relay extra: redis-py)
    except ImportError as exc:
        fail(f"kalshi relay needs the relay extra: pip install 'kalshi-kit[relay]' ({exc})", EXIT_USAGE)
    auth = resolve_auth(options, config, required=True)
    run(
        lambda: relay_to(
            redis,
            config=config,
            auth=auth,
            channels=names,
            markets=tickers,
            maxlen=maxlen or None,
            prefix=prefix,
            markets_per_connection=per_connection,
            checkpoint_interval=checkpoint_every,
            duration=duration,
            progress_every=progress_every,
        ),
        config=config,
    )


def record_relay(redis_url: str, out: Path, channels: list[str], duration: float | None, count: int | None) -> None:
    """``kalshi record --from-redis``: record a relay's streams (the Parquet layout of ``kalshi record``).

    Raises:
        typer.Exit: a bad URL, a missing relay extra, or an unreachable Redis.
    """
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        fail("--from-redis must be a URL such as redis://127.0.0.1:6379/0", EXIT_USAGE)
    try:
        from kalshi.record.from_redis import record_from_redis
    except ImportError as exc:
        fail(f"--from-redis needs the relay extra: pip install 'kalshi-kit[relay]' ({exc})", EXIT_USAGE)

    async def main() -> None:
        console = err_console()
        stop = asyncio.Event()
        console.print(f"recording {', '.join(channels)} from the relay at {redis_url} into {out}  (Ctrl-C to stop)")
        with stop_on_signals(stop):
            stats = await record_from_redis(
                out, redis_url, channels=channels, duration=duration, count=count, stop=stop
            )
        console.print(
            f"recorded {stats.frames:,} frames from {len(stats.shards)} relay connection(s) in {len(stats.files)} "
            f"file(s) in {out}; gaps {stats.gaps}",
            highlight=False,
        )

    run(main)
