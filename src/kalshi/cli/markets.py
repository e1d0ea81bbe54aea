"""``kalshi markets``: list markets over REST (every page), as a table or JSON lines."""

from __future__ import annotations

import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import IO, Annotated, Any, cast

import httpx
import msgspec
import typer
from rich.console import Console
from rich.table import Table

from kalshi.auth import KalshiAuth
from kalshi.cli.common import (
    EXIT_USAGE,
    ConnectOptions,
    EnvOpt,
    KeyIdOpt,
    KeyPathOpt,
    UrlOpt,
    fail,
    out_console,
    preflight,
    resolve_auth,
    resolve_config,
    run,
)
from kalshi.config import KalshiConfig
from kalshi.rest import AsyncKalshiClient
from kalshi.rest.models import Market

__all__ = ["list_markets", "markets_command", "markets_table", "rest_transport"]

_PAGE_MAX = 1000

rest_transport: Callable[[], httpx.AsyncBaseTransport | None] = lambda: None  # noqa: E731
"""Factory of the httpx transport (None: the network). Tests put an ``httpx.MockTransport`` here."""


def _dollars(text: str | None) -> str:
    if not text:
        return "-"
    try:
        return f"{Decimal(text):.4f}"
    except InvalidOperation:
        return text


def _count(text: str | None) -> str:
    if not text:
        return "-"
    try:
        return f"{Decimal(text):,.2f}"
    except InvalidOperation:
        return text


def markets_table(markets: list[Market]) -> Table:
    """A table of markets: ticker, title, status, bid/ask/last in dollars, volume, close time."""
    table = Table(expand=False, padding=(0, 1))
    table.add_column("Ticker", style="bold", no_wrap=True, min_width=12)
    # Numbers never wrap or truncate; only the title gives up width on narrow terminals.
    table.add_column("Title", ratio=1, min_width=8, overflow="ellipsis", no_wrap=True)
    table.add_column("Status", no_wrap=True, min_width=6)
    table.add_column("Bid", justify="right", no_wrap=True, min_width=6)
    table.add_column("Ask", justify="right", no_wrap=True, min_width=6)
    table.add_column("Last", justify="right", no_wrap=True, min_width=6)
    table.add_column("Volume", justify="right", no_wrap=True, min_width=6)
    table.add_column("Closes", no_wrap=True, min_width=16)
    for market in markets:
        table.add_row(
            market.ticker,
            market.title or market.yes_sub_title or "",
            market.status,
            _dollars(market.yes_bid_dollars),
            _dollars(market.yes_ask_dollars),
            _dollars(market.last_price_dollars),
            _count(market.volume_fp),
            market.close_time[:16].replace("T", " "),
        )
    return table


async def list_markets(
    *,
    config: KalshiConfig,
    auth: KalshiAuth | None,
    status: str | None,
    series: str | None,
    event: str | None,
    limit: int,
    as_json: bool,
    console: Console,
    binary_out: IO[bytes] | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Fetch up to ``limit`` markets (following the cursor) and print them.

    Returns:
        How many markets were printed.

    Raises:
        KalshiAPIError: the exchange answered with an error.
        KalshiConnectionError: the exchange could not be reached.
    """
    if transport is None:
        await preflight(config, rest=True)
    found: list[Market] = []
    out = binary_out or sys.stdout.buffer
    async with AsyncKalshiClient(config, auth=auth, transport=transport) as client:
        pages = client.markets.iter_get_markets(
            # --status is free text: the exchange answers 400 naming an unknown value.
            status=cast(Any, status),
            series_ticker=series,
            event_ticker=event,
            limit=min(limit, _PAGE_MAX),
        )
        async for market in pages:
            if as_json:
                out.write(msgspec.json.encode(market) + b"\n")
            found.append(market)
            if len(found) >= limit:
                break
    if as_json:
        out.flush()
    elif found:
        console.print(markets_table(found))
        console.print(f"{len(found)} market(s)", style="dim")
    else:
        console.print("no markets match", style="dim")
    return len(found)


def markets_command(
    status: Annotated[
        str | None, typer.Option("--status", help="unopened, open, paused, closed or settled (empty: any).")
    ] = "open",
    series: Annotated[str | None, typer.Option("--series", help="Only this series ticker.")] = None,
    event: Annotated[str | None, typer.Option("--event", help="Only this event ticker.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many markets (pages are followed).")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per market (the API's fields).")] = False,
    env: EnvOpt = "prod",
    url: UrlOpt = None,
    key_id: KeyIdOpt = None,
    key_path: KeyPathOpt = None,
) -> None:
    """List markets from the REST API, following pagination. Public data: credentials are optional."""
    options = ConnectOptions(env, url, key_id, key_path)
    config = resolve_config(options)
    if limit < 1:
        fail("--limit must be >= 1", EXIT_USAGE)
    auth = resolve_auth(options, config, required=False)
    console = out_console()
    run(
        lambda: list_markets(
            config=config,
            auth=auth,
            status=status or None,
            series=series,
            event=event,
            limit=limit,
            as_json=as_json,
            console=console,
            transport=rest_transport(),
        ),
        config=config,
    )
