"""``kalshi paper``: a strategy on live market data with simulated fills; no order is ever sent."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final
from urllib.parse import urlsplit, urlunsplit

import typer

from kalshi.cli.backtest import finish
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
from kalshi.cli.strategy_options import (
    MaxLossOpt,
    MaxOrderRateOpt,
    MaxPositionOpt,
    ParamsOpt,
    StrategyOpt,
    kill_switch_limits,
    session_recorder,
)
from kalshi.errors import KalshiError

if TYPE_CHECKING:
    from kalshi.auth import KalshiAuth
    from kalshi.backtest.market_rules import MarketRules
    from kalshi.backtest.results import BacktestResult
    from kalshi.config import KalshiConfig
    from kalshi.strategy.base import Strategy
    from kalshi.strategy.killswitch import KillSwitchLimits

__all__ = ["paper_command", "paper_trade"]

_MICROS: Final = 1_000_000


async def paper_trade(
    instance: Strategy,
    *,
    config: KalshiConfig,
    auth: KalshiAuth | None,
    markets: tuple[str, ...],
    cash_micros: int,
    duration: float | None,
    stop: asyncio.Event | None = None,
    record: Path | None = None,
    order_latency_ms: float = 0.0,
    limits: KillSwitchLimits | None = None,
    from_redis: str | None = None,
) -> tuple[BacktestResult, str | None]:
    """Paper-trade until ``duration`` or a stop signal; returns the paper results and the kill switch's reason
    if it tripped. With ``from_redis``, the market data comes from a relay (``kalshi relay``) through Redis.

    Raises:
        KalshiError: the exchange cannot be reached or the subscriptions failed.
    """
    from kalshi.strategy.paper import PaperRunner
    from kalshi.strategy.stream import FrameTap
    from kalshi.ws.client import KalshiWebSocket

    stop = stop or asyncio.Event()
    source = _without_password(from_redis) if from_redis is not None else config.ws_url
    recorder = session_recorder(record, "kalshi paper") if from_redis is None else None
    tap = FrameTap(recorder.add_frame if recorder is not None else None) if from_redis is None else None
    if from_redis is None:
        await preflight(config)
        rules = await paper_market_rules(config, markets)
    else:
        rules = {}  # only the relayed listings carry grids here (the exchange may not be reachable)
    err_console().print(f"paper trading {', '.join(markets)} on {source} (no orders are sent; Ctrl-C stops)")
    try:
        async with contextlib.AsyncExitStack() as stack:
            if from_redis is None:
                session: Any = await stack.enter_async_context(
                    KalshiWebSocket(auth=auth, config=config, on_raw_frame=tap).connect()
                )
            else:
                from kalshi.relay import RelayClient

                session = await stack.enter_async_context(RelayClient(from_redis).connect())
            runner = PaperRunner(
                instance,
                session,
                markets=markets,
                cash_micros=cash_micros,
                tap=tap,
                order_latency_ms=order_latency_ms,
                limits=limits,
                market_rules=rules,
            )
            with stop_on_signals(stop):
                result = await runner.run(stop=stop, duration=duration)
            reason = runner.kill_switch.reason
            if reason:
                err_console().print(f"[bold red]kill switch tripped[/]: {reason} (every open paper order cancelled)")
            return result, reason
    finally:
        if recorder is not None:
            recorder.close()


def _without_password(url: str) -> str:
    """``url`` for the terminal: a password in it is never printed."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    return urlunsplit(parts._replace(netloc=f"***@{host}" + (f":{parts.port}" if parts.port else "")))


async def paper_market_rules(config: KalshiConfig, markets: tuple[str, ...]) -> dict[str, MarketRules]:
    """The markets' price grids from the exchange; none (with a warning) when they cannot be read."""
    from kalshi.backtest.market_rules import rules_by_market
    from kalshi.errors import KalshiError
    from kalshi.record.universe import market_price_ranges

    try:
        rules = rules_by_market(await market_price_ranges(config, None, markets))
    except KalshiError as exc:
        rules = {}
        err_console().print(f"[yellow]warning[/]: cannot read the markets' price grids ({exc})", highlight=False)
    unknown = [t for t in markets if t not in rules]
    if unknown:
        err_console().print(
            f"[yellow]warning[/]: no price grid for {', '.join(unknown)}: paper orders there are not checked "
            "against it (the exchange would refuse prices off its grid)",
            highlight=False,
        )
    return rules


def paper_command(
    strategy: StrategyOpt,
    markets: Annotated[list[str] | None, typer.Option("--markets", "-m", help="Markets to trade.")] = None,
    params: ParamsOpt = None,
    duration: Annotated[float | None, typer.Option("--duration", "-d", help="Stop after this many seconds.")] = None,
    cash: Annotated[float, typer.Option("--cash", help="Starting paper cash in dollars.")] = 100_000.0,
    order_latency_ms: Annotated[
        float,
        typer.Option("--order-latency-ms", min=0.0, help="Delay of every order on its way to the paper exchange."),
    ] = 0.0,
    max_position: MaxPositionOpt = None,
    max_loss: MaxLossOpt = None,
    max_orders_per_second: MaxOrderRateOpt = None,
    record: Annotated[
        Path | None, typer.Option("--record", help="Also record the session here (backtest it later).")
    ] = None,
    from_redis: Annotated[
        str | None,
        typer.Option("--from-redis", metavar="URL", help="Market data from a relay (`kalshi relay`) through Redis."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write fills/orders/timeline Parquet here.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write the HTML report to this file.")] = None,
    open_report: Annotated[bool, typer.Option("--open", help="Open the HTML report in a browser.")] = False,
    env: EnvOpt = "prod",
    url: UrlOpt = None,
    key_id: KeyIdOpt = None,
    key_path: KeyPathOpt = None,
) -> None:
    """Paper-trade a strategy: live data from production, demo, a simulator or a relay; fills simulated by the
    backtest's queue model against the live book. Nothing reaches the exchange: the paper runner has no REST
    client at all (the command only reads the markets' price grids at start, a public GET). The kill switch options of `kalshi live` apply to the paper account the same way.
    """
    from kalshi.strategy.loader import load_strategy

    options = ConnectOptions(env, url, key_id, key_path)
    config = resolve_config(options)
    try:
        instance = load_strategy(strategy, params)
        limits = kill_switch_limits(max_position, max_loss, max_orders_per_second)
    except (KalshiError, ValueError) as exc:
        fail(str(exc), EXIT_USAGE)
    names = tuple(split_values(markets)) or tuple(instance.markets)
    if not names:
        fail("paper trading needs --markets TICKER[,TICKER...] (or a strategy with markets)", EXIT_USAGE)
    if from_redis is not None and record is not None:
        fail(
            "--record records a session of the exchange; a relay's data is recorded with kalshi record --from-redis",
            EXIT_USAGE,
        )
    auth = resolve_auth(options, config, required=from_redis is None)
    result, reason = run(
        lambda: paper_trade(
            instance,
            config=config,
            auth=auth,
            markets=names,
            cash_micros=round(cash * _MICROS),
            duration=duration,
            record=record,
            order_latency_ms=order_latency_ms,
            limits=limits,
            from_redis=from_redis,
        ),
        config=config,
    )
    finish(result, out, report, open_report, f"paper {strategy} on {config.ws_url}")
    if reason:
        raise typer.Exit(1)
