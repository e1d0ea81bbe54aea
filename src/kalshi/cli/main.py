"""Entry point of the ``kalshi`` command (console script ``kalshi = "kalshi.cli.main:main"``).

Each command lives in its own module; this one assembles the typer app, adds ``kalshi sim`` and the global
options, and turns typer's exits into a return status for :func:`main`.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import typer
from typer.core import TyperCommand, TyperGroup

from kalshi import __version__
from kalshi.cli.backtest import backtest_command
from kalshi.cli.book import book_command
from kalshi.cli.common import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, configure_logging, err_console, fail
from kalshi.cli.demo import demo_command
from kalshi.cli.live import live_command
from kalshi.cli.markets import markets_command
from kalshi.cli.paper import paper_command
from kalshi.cli.record import record_command
from kalshi.cli.relay import RELAY_EXAMPLES, relay_command
from kalshi.cli.replay import replay_command
from kalshi.cli.stream import stream_command
from kalshi.errors import KalshiError

__all__ = ["app", "main"]

_EXAMPLES: Final = {
    "demo": ["kalshi demo", "kalshi demo --duration 10 --markets 8 --seed 7"],
    "book": [
        "kalshi book KXFED-25DEC-T4.00 --env demo",
        "kalshi book KXINXD-S0001-T5450 --url http://127.0.0.1:8765 --json --count 5",
    ],
    "stream": [
        "kalshi stream ticker --env demo",
        "kalshi stream trade --json | jq -r .msg.yes_price_dollars",
        "kalshi stream orderbook_delta -m KXINXD-S0001-T5450 --url http://127.0.0.1:8765 --count 20",
    ],
    "markets": ["kalshi markets --status open --series KXFED", "kalshi markets --json --limit 500 | jq -r .ticker"],
    "sim": [
        "kalshi sim --open",
        "kalshi sim --write-demo-key ~/.kalshi/sim",
        "kalshi sim --port 9000 --faults drop_every=10s,skip_seq=1/5000 --write-demo-key ./keys",
    ],
    "record": [
        "kalshi record -c ticker,trade --env demo --out rec/",
        "kalshi record -c orderbook_delta -m KXFED-25DEC-T4.00 --out rec/ --duration 3600",
        "duckdb -c \"SELECT type, count(*) FROM 'rec/*.parquet' WHERE kind='frame' GROUP BY type\"",
    ],
    "replay": ["kalshi replay rec/ --speed 10", "kalshi replay rec/ --as-fast-as-possible --port 0"],
    "backtest": [
        "kalshi backtest rec/ --strategy kalshi.strategy.market_maker:MarketMaker --out bt/ --open",
        "kalshi backtest rec/ -s mybot:Bot --order-latency-ms 25 --data-latency-ms 5 --cancel-model pro_rata",
    ],
    "paper": ["kalshi paper -s kalshi.strategy.market_maker:MarketMaker -m KXFED-25DEC-T4.00 --env demo"],
    "live": ["kalshi live -s mybot:Bot -m KXFED-25DEC-T4.00 --env demo --max-position 10 --max-loss 50"],
    "relay": RELAY_EXAMPLES,
}


def _epilog(name: str) -> str:
    # A fenced block: markdown mode would otherwise join the lines and eat the `*` of SQL globs.
    lines = "\n".join(f"$ {line}" for line in _EXAMPLES[name])
    return f"**Examples**\n\n```\n{lines}\n```"


def _without_flag_placeholders(params: list[Any]) -> list[Any]:
    # Typer's rich help shows a value placeholder (`--json <bool>`) for flags, which take no value; click's
    # convention is a bare `--json`. An empty metavar leaves the type column blank for flags and counters.
    for param in params:
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            param.metavar = ""
    return params


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_placeholders(super().get_params(ctx))


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_placeholders(super().get_params(ctx))


app = typer.Typer(
    name="kalshi",
    cls=_Group,
    help=(
        "kalshi-kit: live order books, streams, recording and replay for the Kalshi exchange, "
        "and a local simulator.\n\nStart with **kalshi demo**: no account needed."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,  # locals may hold key material
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kalshi-kit {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logs on stderr (-vv: debug).")] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Global options."""
    configure_logging(verbose)


def sim_command(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0 picks a free one).")] = 8765,
    seed: Annotated[int, typer.Option("--seed", help="Seeds markets, activity and faults.")] = 0,
    markets: Annotated[int, typer.Option("--markets", help="Number of markets.")] = 8,
    rate: Annotated[float, typer.Option("--rate", help="Simulated actions per second.")] = 20.0,
    faults: Annotated[
        str | None, typer.Option("--faults", help="Fault spec, e.g. drop_every=3s,skip_seq=1/5000,refuse=401:2s.")
    ] = None,
    open_access: Annotated[bool, typer.Option("--open", help="Accept unsigned connections (public channels).")] = False,
    write_demo_key: Annotated[
        str | None, typer.Option("--write-demo-key", metavar="DIR", help="Write (or reuse) a demo key pair in DIR.")
    ] = None,
    key_dir: Annotated[
        str | None, typer.Option("--key-dir", metavar="DIR", help="Accept every <key_id>.pub.pem of DIR.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", "-d", help="Stop after this many seconds (default: until Ctrl-C).")
    ] = None,
    quick_settle: Annotated[
        bool,
        typer.Option("--quick-settle", help="Close and settle events every 30-90 s (to test settlement)."),
    ] = False,
) -> None:
    """Run a local Kalshi exchange (REST + WebSocket on one port) until Ctrl-C.

    Connect the other commands to it with --url http://HOST:PORT (or --env local for the default port).
    With --write-demo-key DIR it prints the `export KALSHI_API_KEY_ID=...` and
    `export KALSHI_PRIVATE_KEY_PATH=...` lines that sign the other commands' connections.
    """
    from kalshi.sim.cli import run_sim
    from kalshi.sim.faults import FaultSpecError

    if duration is not None and duration <= 0:
        fail("--duration must be > 0", EXIT_USAGE)
    try:
        run_sim(
            host,
            port,
            seed,
            markets,
            rate,
            faults,
            open_access,
            write_demo_key,
            key_dir,
            duration,
            quick_settle=quick_settle,
            echo=typer.echo,
        )
    except KeyboardInterrupt:
        err_console().print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except FaultSpecError as exc:
        fail(f"--faults: {exc}", EXIT_USAGE)
    except KalshiError as exc:
        fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}", EXIT_FAILURE)


for _name, _command in (
    ("demo", demo_command),
    ("book", book_command),
    ("stream", stream_command),
    ("markets", markets_command),
    ("sim", sim_command),
    ("record", record_command),
    ("replay", replay_command),
    ("backtest", backtest_command),
    ("paper", paper_command),
    ("live", live_command),
    ("relay", relay_command),
):
    app.command(_name, cls=_Command, epilog=_epilog(_name))(_command)


def main(argv: list[str] | None = None) -> int:
    """Run the ``kalshi`` command with ``argv`` (default: the process arguments); returns the exit status."""
    try:
        app(args=argv, prog_name="kalshi")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        return code if isinstance(code, int) else EXIT_FAILURE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
