"""``kalshi book TICKER...``: live order books, as ladders or JSON lines."""

from __future__ import annotations

import asyncio
import sys
from typing import IO, Annotated

import msgspec
import typer
from rich.columns import Columns
from rich.console import Console, RenderableType
from rich.live import Live

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
from kalshi.cli.demo import render_book
from kalshi.cli.market_status import describe, follow_status, not_trading
from kalshi.config import KalshiConfig
from kalshi.models.markets import Orderbook
from kalshi.ws.client import KalshiWebSocket
from kalshi.ws.subscription import Subscription

__all__ = ["book_command", "render_books", "watch_books"]

_encode = msgspec.json.Encoder().encode


def render_books(
    tickers: list[str], books: dict[str, Orderbook], depth: int, notes: dict[str, str] | None = None
) -> RenderableType:
    """Every requested book side by side (a placeholder until a book's first snapshot; a note if it does not trade)."""
    notes = notes or {}
    return Columns(
        [render_book(ticker, books.get(ticker), depth, notes.get(ticker)) for ticker in tickers], padding=(0, 1)
    )


async def watch_books(
    *,
    config: KalshiConfig,
    auth: KalshiAuth | None,
    tickers: list[str],
    console: Console,
    depth: int = 10,
    as_json: bool = False,
    once: bool = False,
    count: int | None = None,
    duration: float | None = None,
    live: bool | None = None,
    interval: float = 2.0,
    binary_out: IO[bytes] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Keep ``tickers``' books and show them until a limit or a stop signal.

    Args:
        config: where to connect.
        auth: credentials (None for an open simulator or a replay).
        tickers: markets.
        console: where ladders go.
        depth: levels per side shown.
        as_json: one JSON line per book update (``Orderbook.to_dict()``) instead of ladders.
        once: show each book once, as soon as all have arrived, then stop.
        count: stop after this many updates.
        duration: stop after this many seconds.
        live: redraw in place (default: when the console is a terminal); else print every ``interval``.
        interval: seconds between printed frames when not live.
        binary_out: where JSON lines go (default stdout).
        stop: ends the command when set.

    Returns:
        How many book updates were received.

    Raises:
        KalshiConnectionError: the host is unreachable or the connection was lost for good.
        KalshiHandshakeError: the credentials were refused.
        KalshiSubscriptionError: the server refused the subscription.
    """
    await preflight(config)
    stop = stop or asyncio.Event()
    live = console.is_terminal if live is None else live
    out = binary_out or sys.stdout.buffer
    books: dict[str, Orderbook] = {}
    updates = 0
    limit = len(tickers) if once and count is None else count
    # Markets that do not trade are said so (an empty book for good looks like a broken feed otherwise).
    notes = await not_trading(config, auth, tickers)
    errors = err_console()
    for ticker, note in notes.items():
        errors.print(describe(ticker, note), markup=False, highlight=False)

    def all_shown() -> bool:
        return all(ticker in books or ticker in notes for ticker in tickers)

    async def consume(views: Subscription[Orderbook]) -> None:
        nonlocal updates
        async for book in views:
            books[book.market_ticker] = book
            updates += 1
            if as_json:
                out.write(_encode(book.to_dict()) + b"\n")
            done = limit is not None and (updates >= limit if not once else all_shown())
            if done:
                stop.set()
                return

    ws = KalshiWebSocket(auth, config)
    loop = asyncio.get_running_loop()
    with stop_on_signals(stop):
        async with ws.connect() as session:
            # Subscribe before waiting: run_forever() refuses a session with nothing subscribed.
            consumer = asyncio.create_task(consume(await session.orderbook(tickers)))
            status = asyncio.create_task(follow_status(session, tickers, notes))
            if once and all_shown():
                stop.set()
            try:
                if as_json:
                    await wait_for_end(session, stop, duration=duration, every=out.flush)
                elif live and not once:
                    with Live(render_books(tickers, books, depth, notes), console=console, auto_refresh=False) as view:
                        await wait_for_end(
                            session,
                            stop,
                            duration=duration,
                            every=lambda: view.update(render_books(tickers, books, depth, notes), refresh=True),
                            interval=0.25,
                        )
                        view.update(render_books(tickers, books, depth, notes), refresh=True)
                else:
                    next_frame = loop.time() + interval

                    def maybe_print() -> None:
                        nonlocal next_frame
                        if not once and loop.time() >= next_frame:
                            console.print(render_books(tickers, books, depth, notes))
                            next_frame = loop.time() + interval

                    await wait_for_end(session, stop, duration=duration, every=maybe_print, interval=0.25)
                    console.print(render_books(tickers, books, depth, notes))
            finally:
                consumer.cancel()
                status.cancel()
                await asyncio.gather(consumer, status, return_exceptions=True)
    if as_json:
        out.flush()
    return updates


def book_command(
    tickers: Annotated[list[str], typer.Argument(help="Market tickers.", show_default=False)],
    depth: Annotated[int, typer.Option("--depth", help="Levels per side to show.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per book update.")] = False,
    once: Annotated[bool, typer.Option("--once", help="Print each book once, then exit.")] = False,
    count: Annotated[int | None, typer.Option("--count", "-n", help="Stop after this many updates.")] = None,
    duration: Annotated[float | None, typer.Option("--duration", "-d", help="Stop after this many seconds.")] = None,
    env: EnvOpt = "prod",
    url: UrlOpt = None,
    key_id: KeyIdOpt = None,
    key_path: KeyPathOpt = None,
) -> None:
    """Watch live order books: YES bids and asks with sizes, spread and mid, kept from snapshots and deltas.

    Runs until Ctrl-C, --once, --count or --duration.
    """
    options = ConnectOptions(env, url, key_id, key_path)
    config = resolve_config(options)
    names = split_values(tickers)
    if not names:
        fail("name at least one market ticker", EXIT_USAGE)
    if depth < 1 or (count is not None and count < 1):
        fail("--depth and --count must be >= 1", EXIT_USAGE)
    auth = resolve_auth(options, config, required=True)
    console = out_console()
    run(
        lambda: watch_books(
            config=config,
            auth=auth,
            tickers=names,
            console=console,
            depth=depth,
            as_json=as_json,
            once=once,
            count=count,
            duration=duration,
        ),
        config=config,
    )
