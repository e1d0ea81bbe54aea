"""``kalshi stream CHANNEL``: print a channel's messages, readable or as JSON lines for jq."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Annotated, Any, Final

import msgspec
import typer
from rich.console import Console
from rich.text import Text

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
    out_console,
    preflight,
    resolve_auth,
    resolve_config,
    run,
    split_values,
    stop_on_signals,
    wait_for_end,
)
from kalshi.cli.market_status import describe, not_trading
from kalshi.config import KalshiConfig
from kalshi.record.capture import subscribe_channel
from kalshi.record.schema import CONTROL_TYPES, decode_envelope
from kalshi.ws.client import KalshiWebSocket
from kalshi.ws.models import (
    CHANNELS,
    ErrorMessage,
    OrderbookDeltaMessage,
    OrderbookSnapshotMessage,
    TickerMessage,
    TradeMessage,
)

__all__ = ["describe_message", "stream_channel", "stream_command"]

_BODY_PREVIEW: Final = 160


def _price(value: object) -> str:
    return "-" if value is None else f"{value:.4f}"


def _size(value: object) -> str:
    return "-" if value is None else f"{value:,.2f}"


def describe_message(message: Any, recv_ns: int) -> Text:
    """One readable line for a message: receive time (UTC), type, market and the fields that matter."""
    when = datetime.fromtimestamp(recv_ns / 1e9, tz=UTC).strftime("%H:%M:%S.%f")[:-3]
    kind = getattr(message, "type", "?")
    body = getattr(message, "msg", None)
    ticker = getattr(body, "market_ticker", None) or ""
    if isinstance(message, TickerMessage):
        m = message.msg
        detail = f"bid {_price(m.yes_bid)}  ask {_price(m.yes_ask)}  last {_price(m.price)}  vol {_size(m.volume)}"
    elif isinstance(message, TradeMessage):
        m2 = message.msg
        side = m2.taker_outcome_side or m2.taker_side or "?"
        detail = f"{side} {_size(m2.count)} @ {_price(m2.yes_price)} yes"
    elif isinstance(message, OrderbookDeltaMessage):
        m3 = message.msg
        delta = m3.delta
        detail = f"{m3.side} {_price(m3.price)} {'-' if delta is None else f'{delta:+,.2f}'}  seq {message.seq}"
    elif isinstance(message, OrderbookSnapshotMessage):
        yes, no = message.msg.levels_ticks()
        detail = f"snapshot: {len(yes)} yes levels, {len(no)} no levels  seq {message.seq}"
    else:
        raw = msgspec.json.encode(body).decode() if body is not None else ""
        detail = raw if len(raw) <= _BODY_PREVIEW else raw[: _BODY_PREVIEW - 3] + "..."
    return Text.assemble((when, "dim"), "  ", (f"{kind:<19}", "cyan"), " ", (f"{ticker:<24}", "bold"), " ", detail)


class _JsonLines:
    """Writes frames to a binary stream, one per line; a closed pipe (``| head``) ends the stream quietly."""

    def __init__(self, stream: IO[bytes], stop: asyncio.Event, count: int | None) -> None:
        self.stream = stream
        self.stop = stop
        self.count = count
        self.written = 0
        self.broken = False
        self.interactive = stream.isatty()

    def frame(self, data: bytes, _recv_ns: int) -> None:
        if self.broken or (self.count is not None and self.written >= self.count):
            return
        envelope = decode_envelope(data)
        if envelope is None or envelope.type in CONTROL_TYPES:
            return
        try:
            self.stream.write(data)
            self.stream.write(b"\n")
            if self.interactive:
                self.stream.flush()
        except BrokenPipeError:
            self._broken()
            return
        self.written += 1
        if self.count is not None and self.written >= self.count:
            self.stop.set()

    def flush(self) -> None:
        if self.broken:
            return
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._broken()

    def _broken(self) -> None:
        self.broken = True
        self.stop.set()
        # Point stdout at /dev/null so the interpreter's final flush does not complain.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())


async def stream_channel(
    *,
    config: KalshiConfig,
    auth: KalshiAuth | None,
    channel: str,
    markets: list[str],
    as_json: bool,
    console: Console,
    binary_out: IO[bytes] | None = None,
    count: int | None = None,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Subscribe ``channel`` and print its messages until ``count``, ``duration`` or a stop signal.

    Returns:
        How many messages were printed.

    Raises:
        KalshiConnectionError: the host is unreachable or the connection was lost for good.
        KalshiHandshakeError: the credentials were refused.
        KalshiSubscriptionError: the server refused the subscription.
    """
    await preflight(config)
    stop = stop or asyncio.Event()
    errors = err_console()
    if markets:
        # A market that does not trade stays silent: say so rather than look like a dead feed.
        for ticker, note in (await not_trading(config, auth, markets)).items():
            errors.print(describe(ticker, note), markup=False, highlight=False)
    lines = _JsonLines(binary_out or sys.stdout.buffer, stop, count) if as_json else None

    async def on_error(message: ErrorMessage) -> None:
        errors.print(f"[yellow]warning:[/] {message.msg.msg} (code {message.msg.code})")

    tap: Callable[[bytes, int], None] | None = lines.frame if lines is not None else None
    ws = KalshiWebSocket(auth, config, on_error=on_error, on_raw_frame=tap)
    printed = 0

    async def pretty(subscription: Any) -> None:
        nonlocal printed
        async for message in subscription:
            console.print(describe_message(message, time.time_ns()), soft_wrap=True)
            printed += 1
            if count is not None and printed >= count:
                stop.set()
                return

    with stop_on_signals(stop):
        async with ws.connect() as session:
            subscription = await subscribe_channel(session, channel, markets, tap_only=lines is not None)
            consumer = asyncio.create_task(pretty(subscription)) if lines is None else None
            try:
                await wait_for_end(session, stop, duration=duration, every=lines.flush if lines else None)
            finally:
                if consumer is not None:
                    consumer.cancel()
                    await asyncio.gather(consumer, return_exceptions=True)
    if lines is not None:
        lines.flush()
        return lines.written
    return printed


def stream_command(
    channel: Annotated[str, typer.Argument(help=f"Channel: {', '.join(CHANNELS)}.", show_default=False)],
    market: Annotated[
        list[str] | None,
        typer.Option("--market", "-m", help="Market ticker (repeat, or comma-separate); default: every market."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per message, exactly as received.")] = False,
    count: Annotated[int | None, typer.Option("--count", "-n", help="Stop after this many messages.")] = None,
    duration: Annotated[float | None, typer.Option("--duration", "-d", help="Stop after this many seconds.")] = None,
    env: EnvOpt = "prod",
    url: UrlOpt = None,
    key_id: KeyIdOpt = None,
    key_path: KeyPathOpt = None,
) -> None:
    """Stream one channel's messages to the terminal, or as JSON lines (--json) for jq and files.

    Runs until Ctrl-C, --count or --duration. Credentials come from --key-id/--key-path or
    KALSHI_API_KEY_ID/KALSHI_PRIVATE_KEY_PATH (a local simulator started with --open needs none).
    """
    options = ConnectOptions(env, url, key_id, key_path)
    config = resolve_config(options)
    markets = split_values(market)
    if channel not in CHANNELS:
        close = difflib.get_close_matches(channel, CHANNELS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        fail(f"unknown channel {channel!r}: {hint}channels are {', '.join(CHANNELS)}", EXIT_USAGE)
    if channel == "orderbook_delta" and not markets:
        fail("orderbook_delta needs at least one --market TICKER", EXIT_USAGE)
    if count is not None and count < 1:
        fail("--count must be >= 1", EXIT_USAGE)
    auth = resolve_auth(options, config, required=True)
    console = out_console()
    run(
        lambda: stream_channel(
            config=config,
            auth=auth,
            channel=channel,
            markets=markets,
            as_json=as_json,
            console=console,
            count=count,
            duration=duration,
        ),
        config=config,
    )
