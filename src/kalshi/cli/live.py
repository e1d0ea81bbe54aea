"""``kalshi live``: a strategy trading for real through REST, with a kill switch."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

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
    from kalshi.config import KalshiConfig
    from kalshi.strategy.base import Strategy
    from kalshi.strategy.killswitch import KillSwitchLimits

__all__ = ["live_command", "live_trade"]


async def live_trade(
    instance: Strategy,
    *,
    config: KalshiConfig,
    auth: KalshiAuth,
    markets: tuple[str, ...],
    limits: KillSwitchLimits,
    duration: float | None,
    stop: asyncio.Event | None = None,
    record: Path | None = None,
) -> str | None:
    """Trade until ``duration`` or a stop signal; returns the kill switch's reason if it tripped.

    Raises:
        KalshiError: the exchange cannot be reached, the credentials were refused, a subscription failed.
    """
    from kalshi.portfolio import Portfolio
    from kalshi.rest import AsyncKalshiClient
    from kalshi.strategy.live import LiveRunner
    from kalshi.strategy.stream import FrameTap
    from kalshi.ws.client import KalshiWebSocket

    await preflight(config)
    await preflight(config, rest=True)
    stop = stop or asyncio.Event()
    console = err_console()
    console.print(f"LIVE trading {', '.join(markets)} on {config.rest_url} (Ctrl-C stops; resting orders stay)")
    recorder = session_recorder(record, "kalshi live")
    tap = FrameTap(recorder.add_frame if recorder is not None else None)  # wire order, as a backtest replays
    async with (
        AsyncKalshiClient(config, auth=auth, rng=random.Random()) as rest,
        KalshiWebSocket(auth=auth, config=config, on_raw_frame=tap).connect() as session,
        KalshiWebSocket(auth=auth, config=config).connect() as portfolio_session,
        Portfolio(rest, portfolio_session) as portfolio,
    ):
        runner = LiveRunner(instance, session, rest, limits=limits, portfolio=portfolio, markets=markets, tap=tap)
        try:
            with stop_on_signals(stop):
                await runner.run(stop=stop, duration=duration)
        finally:
            if recorder is not None:
                recorder.close()
        positions = {t: p.position for t, p in portfolio.positions.items() if p.position}
        console.print(f"balance ${portfolio.balance}; positions {positions or 'none'}", highlight=False)
        if runner.kill_switch.reason:
            console.print(f"[bold red]kill switch tripped[/]: {runner.kill_switch.reason}")
        if runner.cancel_all_failure is not None:
            console.print(
                f"[bold red]ORDERS MAY STILL REST ON THE EXCHANGE[/]: cancelling them failed "
                f"({runner.cancel_all_failure}); cancel them yourself now (DELETE /portfolio/events/orders, "
                "or the exchange's website)",
                highlight=False,
            )
        return runner.kill_switch.reason


def live_command(
    strategy: StrategyOpt,
    markets: Annotated[list[str] | None, typer.Option("--markets", "-m", help="Markets to trade.")] = None,
    params: ParamsOpt = None,
    max_position: MaxPositionOpt = None,
    max_loss: MaxLossOpt = None,
    max_orders_per_second: MaxOrderRateOpt = None,
    duration: Annotated[float | None, typer.Option("--duration", "-d", help="Stop after this many seconds.")] = None,
    record: Annotated[
        Path | None, typer.Option("--record", help="Also record the session here (backtest it later).")
    ] = None,
    confirm: Annotated[
        bool, typer.Option("--i-understand-real-money", help="Required to trade on production.")
    ] = False,
    env: EnvOpt = "demo",
    url: UrlOpt = None,
    key_id: KeyIdOpt = None,
    key_path: KeyPathOpt = None,
) -> None:
    """Trade a strategy live: real orders through the REST client, fills from the private channels, a Portfolio
    reconciled after reconnects, and a kill switch (max position, max loss, max order rate) that cancels every
    resting order when hit. Defaults to the demo exchange.
    """
    from kalshi.strategy.loader import load_strategy

    options = ConnectOptions(env, url, key_id, key_path)
    config = resolve_config(options)
    if config.environment == "production" and not confirm:
        fail("live trading on production needs --i-understand-real-money (try --env demo first)", EXIT_USAGE)
    try:
        instance = load_strategy(strategy, params)
        limits = kill_switch_limits(max_position, max_loss, max_orders_per_second)
    except (KalshiError, ValueError) as exc:
        fail(str(exc), EXIT_USAGE)
    names = tuple(split_values(markets)) or tuple(instance.markets)
    if not names:
        fail("live trading needs --markets TICKER[,TICKER...] (or a strategy with markets)", EXIT_USAGE)
    auth = resolve_auth(options, config, required=True)
    if auth is None:
        fail("live trading needs credentials: --key-id and --key-path (or the simulator's demo key)", EXIT_USAGE)
    reason = run(
        lambda: live_trade(instance, config=config, auth=auth, markets=names, limits=limits, duration=duration),
        config=config,
    )
    if reason:
        raise typer.Exit(1)
