"""``kalshi demo``: a simulator in-process and a live terminal view of its markets.

The view is a pure function of a :class:`DemoState` (:func:`render_demo`), so tests render a state into rich's
recording console and compare text. In a terminal the view refreshes in place (rich ``Live``) until Ctrl-C;
elsewhere (pipes, CI) it prints a frame every few seconds and stops by itself only with ``--duration``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Final

import typer
from rich.columns import Columns
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from kalshi.cli.common import EXIT_USAGE, fail, out_console, run, stop_on_signals
from kalshi.models.markets import Orderbook
from kalshi.ws.client import KalshiWebSocket
from kalshi.ws.connection import ConnectionState

__all__ = [
    "DemoState",
    "RateMeter",
    "TickerRow",
    "TradeRow",
    "demo_command",
    "render_book",
    "render_demo",
    "run_demo",
]

_ONE: Final = Decimal("1.0000")
_TICK: Final = Decimal("0.0001")
_STATE_STYLES: Final = {"streaming": "bold green", "connected": "green", "reconnecting": "bold yellow"}
_REFRESH_SECONDS: Final = 0.25


@dataclass(frozen=True, slots=True)
class TickerRow:
    """The last ticker message of a market (exact dollars and contracts)."""

    yes_bid: Decimal | None
    yes_ask: Decimal | None
    last_price: Decimal | None
    volume: Decimal | None


@dataclass(frozen=True, slots=True)
class TradeRow:
    """One public trade of the tape."""

    ts_ms: int | None
    market_ticker: str
    taker_side: str | None
    yes_price: Decimal | None
    count: Decimal | None


@dataclass(slots=True)
class DemoState:
    """Everything the view shows; the consumers update it, :func:`render_demo` reads it."""

    source: str = ""
    connection: str = ConnectionState.DISCONNECTED.value
    markets: list[str] = field(default_factory=list)
    books: dict[str, Orderbook] = field(default_factory=dict)
    tickers: dict[str, TickerRow] = field(default_factory=dict)
    trades: deque[TradeRow] = field(default_factory=lambda: deque(maxlen=10))
    messages: int = 0
    rate: float = 0.0
    reconnects: int = 0
    elapsed: float = 0.0
    depth: int = 5
    hint: str = "Ctrl-C to quit"


class RateMeter:
    """Messages per second over the last ``window`` seconds (monotonic clock)."""

    def __init__(self, window: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()

    def rate(self, total: int) -> float:
        """Record the running ``total`` now and return the rate over the window."""
        now = self._clock()
        samples = self._samples
        samples.append((now, total))
        while len(samples) > 2 and now - samples[0][0] > self._window:
            samples.popleft()
        first_time, first_total = samples[0]
        return (total - first_total) / (now - first_time) if now > first_time else 0.0


# ---------------------------------------------------------------------------------------------- rendering


def _price(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _size(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _mid(value: Decimal | None) -> str:
    # The mid is exact: a half tick needs a fifth decimal, anything else shows like a price.
    if value is None:
        return "-"
    return f"{value:.4f}" if value == value.quantize(_TICK) else f"{value:.5f}"


def render_book(ticker: str, book: Orderbook | None, depth: int = 5, note: str | None = None) -> Panel:
    """One market's ladder in YES terms: bids (YES bids) left, asks (from NO bids: $1 - price) right.

    ``note`` (e.g. ``settled, result yes``) replaces the spread line: the market does not trade.
    """
    table = Table(box=None, pad_edge=False, show_edge=False, expand=False, padding=(0, 1))
    # Minimum widths keep every panel the same size, empty or not.
    table.add_column("Bid size", justify="right", style="green", min_width=8)
    table.add_column("Bid", justify="right", style="bold green", min_width=6)
    table.add_column("Ask", justify="right", style="bold red", min_width=6)
    table.add_column("Ask size", justify="right", style="red", min_width=8)
    if book is None:
        table.add_row("-" if note else "waiting", "", "", "")
        return Panel(
            table,
            title=ticker,
            title_align="left",
            subtitle=note or "no snapshot yet",
            subtitle_align="right",
            expand=False,
        )
    bids = book.yes[:depth]
    asks = book.no[:depth]
    for i in range(max(len(bids), len(asks), 1)):
        bid = bids[i] if i < len(bids) else None
        ask = asks[i] if i < len(asks) else None
        table.add_row(
            _size(bid.size) if bid else "",
            _price(bid.price) if bid else "",
            _price(_ONE - ask.price) if ask else "",
            _size(ask.size) if ask else "",
        )
    subtitle = note or f"spread {_price(book.spread)}  mid {_mid(book.mid)}"
    return Panel(table, title=ticker, title_align="left", subtitle=subtitle, subtitle_align="right", expand=False)


def _tickers_table(state: DemoState) -> Table:
    table = Table(title="Tickers", title_justify="left", expand=False, padding=(0, 1))
    for name, justify in (
        ("Market", "left"),
        ("Bid", "right"),
        ("Ask", "right"),
        ("Last", "right"),
        ("Volume", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]  # literal justify values
    for ticker in sorted(state.tickers)[:8]:
        row = state.tickers[ticker]
        table.add_row(ticker, _price(row.yes_bid), _price(row.yes_ask), _price(row.last_price), _size(row.volume))
    return table


def _trades_table(state: DemoState) -> Table:
    table = Table(title="Trades", title_justify="left", expand=False, padding=(0, 1))
    for name, justify in (("Time", "left"), ("Market", "left"), ("Taker", "left"), ("Yes", "right"), ("Size", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]  # literal justify values
    for trade in state.trades:
        when = (
            datetime.fromtimestamp(trade.ts_ms / 1000, tz=UTC).strftime("%H:%M:%S")
            if trade.ts_ms is not None
            else "--:--:--"
        )
        side = trade.taker_side or "-"
        style = "green" if side == "yes" else "red" if side == "no" else ""
        table.add_row(when, trade.market_ticker, Text(side, style=style), _price(trade.yes_price), _size(trade.count))
    return table


def render_demo(state: DemoState) -> RenderableType:
    """The whole view for one moment: header, book ladders, tickers and the trade tape. Pure."""
    header = Text.assemble(
        ("kalshi demo", "bold"),
        "  ",
        state.source,
        "  ",
        (state.connection.upper(), _STATE_STYLES.get(state.connection, "bold red")),
        f"  {state.messages:,} msgs  {state.rate:,.0f} msg/s  reconnects {state.reconnects}  {state.elapsed:,.0f} s",
    )
    books = Columns(
        [render_book(ticker, state.books.get(ticker), state.depth) for ticker in state.markets],
        padding=(0, 1),
    )
    bottom = Columns([_tickers_table(state), _trades_table(state)], padding=(0, 2))
    parts: list[RenderableType] = [header, books, bottom]
    if state.hint:
        parts.append(Text(state.hint, style="dim"))
    return Group(*parts)


# ---------------------------------------------------------------------------------------------- running


async def _consume_books(session: KalshiWebSocket, state: DemoState) -> None:
    async for book in session.orderbook(state.markets):
        state.books[book.market_ticker] = book


async def _consume_tickers(session: KalshiWebSocket, state: DemoState) -> None:
    async for message in session.subscribe_ticker():
        body = message.msg
        state.tickers[body.market_ticker] = TickerRow(body.yes_bid, body.yes_ask, body.price, body.volume)


async def _consume_trades(session: KalshiWebSocket, state: DemoState) -> None:
    async for message in session.subscribe_trade():
        body = message.msg
        side = body.taker_outcome_side or body.taker_side
        state.trades.appendleft(TradeRow(body.timestamp_ms, body.market_ticker, side, body.yes_price, body.count))


async def run_demo(
    *,
    console: Console,
    duration: float | None = None,
    markets: int = 6,
    books: int = 4,
    seed: int = 0,
    rate: float = 40.0,
    live: bool | None = None,
    interval: float = 2.0,
    stop: asyncio.Event | None = None,
) -> DemoState:
    """Run a simulator and the view until ``duration`` passes or ``stop`` is set (Ctrl-C sets it).

    Args:
        console: where to draw.
        duration: seconds to run (None: until stopped).
        markets: markets in the simulator.
        books: order books shown.
        seed: the simulator's seed.
        rate: simulator actions per second.
        live: redraw in place (default: when the console is a terminal); else print a frame per ``interval``.
        interval: seconds between printed frames when not live.
        stop: an event that ends the demo.

    Returns:
        The final state.

    Raises:
        KalshiConnectionError: the client could not connect to its own simulator.
        OSError: no port could be bound.
    """
    from kalshi.sim import Simulator  # the simulator is heavy; only the demo and `kalshi sim` need it

    stop = stop or asyncio.Event()
    live = console.is_terminal if live is None else live
    loop = asyncio.get_running_loop()
    async with Simulator(seed=seed, markets=markets, rate=rate, lifecycle=False) as sim:
        auth, _account = sim.create_account_auth()
        state = DemoState(source=f"simulator {sim.url} (seed {seed})", markets=sim.tickers[:books])
        meter = RateMeter()

        def tap(_data: bytes, _recv_ns: int) -> None:
            state.messages += 1

        async def on_state(_old: ConnectionState, new: ConnectionState) -> None:
            state.connection = new.value

        ws = KalshiWebSocket(auth, sim.config, on_state_change=on_state, on_raw_frame=tap)
        started = loop.time()
        deadline = None if duration is None else started + duration

        def refresh() -> DemoState:
            state.elapsed = loop.time() - started
            state.rate = meter.rate(state.messages)
            state.reconnects = ws.reconnects
            state.connection = ws.state.value
            return state

        with stop_on_signals(stop):
            async with ws.connect() as session:
                consumers: list[Callable[[KalshiWebSocket, DemoState], Coroutine[Any, Any, None]]] = [
                    _consume_books,
                    _consume_tickers,
                    _consume_trades,
                ]
                tasks = [asyncio.create_task(consume(session, state)) for consume in consumers]
                try:
                    if live:
                        with Live(render_demo(refresh()), console=console, auto_refresh=False) as view:
                            while await _tick(stop, deadline, loop, _REFRESH_SECONDS):
                                view.update(render_demo(refresh()), refresh=True)
                            view.update(render_demo(refresh()), refresh=True)
                    else:
                        state.hint = ""
                        await _print_frames(console, state, refresh, stop, deadline, loop, interval)
                finally:
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
    return state


async def _tick(stop: asyncio.Event, deadline: float | None, loop: asyncio.AbstractEventLoop, step: float) -> bool:
    """Sleep one step (or until stop/deadline); False when it is time to finish."""
    if stop.is_set():
        return False
    wait = step if deadline is None else min(step, deadline - loop.time())
    if wait <= 0:
        return False
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait):
            await stop.wait()
    return not stop.is_set() and (deadline is None or loop.time() < deadline)


async def _print_frames(
    console: Console,
    state: DemoState,
    refresh: Callable[[], DemoState],
    stop: asyncio.Event,
    deadline: float | None,
    loop: asyncio.AbstractEventLoop,
    interval: float,
) -> None:
    # The first frame waits (briefly) for the books, so even a short run shows a real ladder.
    next_frame = loop.time() + min(interval, 1.0)
    while await _tick(stop, deadline, loop, _REFRESH_SECONDS):
        refresh()
        ready = all(ticker in state.books for ticker in state.markets)
        if loop.time() >= next_frame and (ready or loop.time() >= next_frame + interval):
            console.print(render_demo(state))
            next_frame = loop.time() + interval
    console.print(render_demo(refresh()))


def demo_command(
    duration: Annotated[
        float | None, typer.Option("--duration", "-d", help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
    markets: Annotated[int, typer.Option("--markets", help="Markets in the simulator.")] = 6,
    books: Annotated[int, typer.Option("--books", help="Order books to show.")] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Simulator seed (same seed, same markets).")] = 0,
    rate: Annotated[float, typer.Option("--rate", help="Simulated actions per second.")] = 40.0,
    plain: Annotated[
        bool, typer.Option("--plain", help="Print frames instead of redrawing (automatic when not a terminal).")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between printed frames (--plain).")] = 2.0,
) -> None:
    """Run a local simulated exchange and watch its markets live. No account, no setup.

    Shows order book ladders (best bid/ask, spread), tickers, the trade tape, the message rate and the
    connection state, all streamed over a real WebSocket from the simulator started in this process.
    """
    if duration is not None and duration <= 0:
        fail("--duration must be > 0", EXIT_USAGE)
    if markets < 1 or books < 1 or rate <= 0 or interval <= 0:
        fail("--markets and --books must be >= 1, --rate and --interval > 0", EXIT_USAGE)
    console = out_console()
    run(
        lambda: run_demo(
            console=console,
            duration=duration,
            markets=markets,
            books=min(books, markets),
            seed=seed,
            rate=rate,
            live=False if plain else None,
            interval=interval,
        )
    )
