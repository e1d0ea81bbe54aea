"""``kalshi backtest``: run a strategy on a recording; print the summary, write Parquet results and a report."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from kalshi.cli.common import EXIT_USAGE, err_console, fail, out_console, split_values
from kalshi.cli.strategy_options import ParamsOpt, StrategyOpt
from kalshi.errors import KalshiError

if TYPE_CHECKING:
    from kalshi.backtest.results import BacktestResult

__all__ = ["backtest_command", "finish", "print_summary"]

_MICROS: Final = 1_000_000


def print_summary(result: BacktestResult, title: str) -> None:
    """The terminal summary (a rich table on stdout)."""
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    for label, value in result.summary_lines():
        table.add_row(label, value)
    out_console().print(table)


def finish(result: BacktestResult, out: Path | None, report: Path | None, open_report: bool, title: str) -> None:
    """Print the summary, write the Parquet results and the HTML report, open it if asked."""
    print_summary(result, title)
    unchecked = result.markets_without_grid
    if unchecked:
        shown = ", ".join(unchecked[:5]) + (f" and {len(unchecked) - 5} more" if len(unchecked) > 5 else "")
        err_console().print(
            f"note: no price grid known for {shown}: orders there took any tick, where the exchange refuses prices "
            "off its grid (recordings by `kalshi record` carry the grids)",
            highlight=False,
        )
    if out is not None:
        result.write(out)
        err_console().print(f"results in {out}/ (fills, orders, timeline .parquet; summary.json)", highlight=False)
    if open_report and report is None:
        report = (out or Path(".")) / "report.html"
    if report is not None:
        path = result.report(report, title=title)
        err_console().print(f"report: {path}", highlight=False)
        if open_report:
            webbrowser.open(path.resolve().as_uri())


def backtest_command(
    recording: Annotated[Path, typer.Argument(help="The recording directory (from `kalshi record`).")],
    strategy: StrategyOpt,
    params: ParamsOpt = None,
    markets: Annotated[
        list[str] | None,
        typer.Option("--markets", "-m", help="Only these markets (default: the strategy's, else all)."),
    ] = None,
    order_latency_ms: Annotated[
        float, typer.Option("--order-latency-ms", help="Strategy -> exchange delay of orders, amends, cancels.")
    ] = 0.0,
    data_latency_ms: Annotated[
        float, typer.Option("--data-latency-ms", help="Exchange -> strategy delay of market data and reports.")
    ] = 0.0,
    cancel_model: Annotated[
        str, typer.Option("--cancel-model", help="Queue model for cancels ahead: back (conservative) or pro_rata.")
    ] = "back",
    taker_fee_bp: Annotated[int, typer.Option("--taker-fee-bp", help="Taker fee rate (700 = 0.07).")] = 700,
    maker_fee_bp: Annotated[int, typer.Option("--maker-fee-bp", help="Maker fee rate (175 on maker-fee markets).")] = 0,
    cash: Annotated[float, typer.Option("--cash", help="Starting cash in dollars.")] = 100_000.0,
    settle: Annotated[
        list[str] | None,
        typer.Option("--settle", help="TICKER=yes|no|PRICE for markets the recording does not settle (repeatable)."),
    ] = None,
    include_own: Annotated[
        bool, typer.Option("--include-own", help="Keep recorded deltas of the recording account's own orders.")
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write fills/orders/timeline Parquet here.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write the HTML report to this file.")] = None,
    open_report: Annotated[bool, typer.Option("--open", help="Open the HTML report in a browser.")] = False,
) -> None:
    """Backtest a strategy on a recording with the exchange's rules: price-time priority with a queue-position
    model, latencies, Kalshi's fees and settlement at the recorded result. Deterministic.

    The same strategy class runs unchanged in `kalshi paper` and `kalshi live`.
    """
    from kalshi.backtest import BacktestOptions, FeeSchedule, run
    from kalshi.strategy.loader import load_strategy

    if cancel_model not in ("back", "pro_rata"):
        fail("--cancel-model must be back or pro_rata", EXIT_USAGE)
    try:
        instance = load_strategy(strategy, params)
        options = BacktestOptions(
            order_latency_ms=order_latency_ms,
            data_latency_ms=data_latency_ms,
            fees=FeeSchedule(taker_fee_bp=taker_fee_bp, maker_fee_bp=maker_fee_bp),
            cancel_model=cancel_model,  # type: ignore[arg-type]
            cash_micros=round(cash * _MICROS),
            markets=tuple(split_values(markets)) or None,
            exclude_own=not include_own,
            settlements=_settlements(settle),
        )
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    except KalshiError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        result = run(instance, recording, options)
    except KalshiError as exc:
        fail(str(exc))
    finish(result, out, report, open_report, f"backtest {strategy} on {recording}")


def _settlements(values: list[str] | None) -> dict[str, int] | None:
    from kalshi._fixed import price_ticks

    out: dict[str, int] = {}
    for item in split_values(values):
        ticker, sep, value = item.partition("=")
        if not sep or not ticker:
            raise ValueError(f"--settle takes TICKER=yes|no|PRICE, not {item!r}")
        if value.lower() in ("yes", "no"):
            out[ticker] = 10_000 if value.lower() == "yes" else 0
        else:
            out[ticker] = price_ticks(value)
    return out or None
