"""Options shared by the strategy commands (``kalshi backtest``, ``kalshi paper``, ``kalshi live``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

if TYPE_CHECKING:
    from kalshi.record.recorder import Recorder
    from kalshi.strategy.killswitch import KillSwitchLimits

__all__ = [
    "MaxLossOpt",
    "MaxOrderRateOpt",
    "MaxPositionOpt",
    "ParamsOpt",
    "StrategyOpt",
    "kill_switch_limits",
    "session_recorder",
]

_MICROS: Final = 1_000_000

StrategyOpt = Annotated[
    str,
    typer.Option(
        "--strategy",
        "-s",
        help="The strategy class, pkg.module:Class (e.g. kalshi.strategy.market_maker:MarketMaker).",
    ),
]
ParamsOpt = Annotated[
    str | None, typer.Option("--params", "-p", help="Keyword arguments of the class as JSON, e.g. '{\"size\": 200}'.")
]
MaxPositionOpt = Annotated[
    float | None, typer.Option("--max-position", help="Kill switch: largest |position| per market, contracts.")
]
MaxLossOpt = Annotated[float | None, typer.Option("--max-loss", help="Kill switch: largest loss, dollars.")]
MaxOrderRateOpt = Annotated[
    int | None, typer.Option("--max-orders-per-second", help="Kill switch: order requests per second.")
]


def kill_switch_limits(
    max_position: float | None, max_loss: float | None, max_orders_per_second: int | None
) -> KillSwitchLimits:
    """The kill switch limits of the command line's units (contracts, dollars).

    Raises:
        ValueError: a limit that is not positive.
    """
    from kalshi.strategy.killswitch import KillSwitchLimits

    return KillSwitchLimits(
        max_position=round(max_position * 100) if max_position is not None else None,
        max_loss_micros=round(max_loss * _MICROS) if max_loss is not None else None,
        max_orders_per_second=max_orders_per_second,
    )


def session_recorder(path: Path | None, source: str) -> Recorder | None:
    """A started recorder of a strategy session's frames (``source``: the command, for the metadata), or None."""
    from kalshi.record.recorder import Recorder

    if path is None:
        return None
    recorder = Recorder(path, metadata={"source": source})
    recorder.start()
    return recorder
