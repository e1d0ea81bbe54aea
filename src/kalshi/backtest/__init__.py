"""kalshi.backtest: run a strategy on a recording with the exchange's matching rules, fees and settlement.

::

    from kalshi.backtest import run
    from kalshi.strategy import MarketMaker

    result = run(MarketMaker(), "rec", order_latency_ms=20, data_latency_ms=5)
    print(result.summary.pnl_micros, result.summary.fills)
    result.write("out")            # fills/orders/timeline Parquet + summary.json
    result.report("out/report.html")

The fill model (queue position, cancels "from the back" or pro-rata, no market impact) is described in
:mod:`kalshi.backtest.matching`; the fee arithmetic in :mod:`kalshi.backtest.fees`; timing in
:mod:`kalshi.backtest.runner`.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from kalshi.backtest.fees import FeeSchedule, fee_for_fill, fee_numerator, fee_total
from kalshi.backtest.matching import CancelModel, SimulatedExchange
from kalshi.backtest.results import BacktestResult, BacktestSummary
from kalshi.backtest.runner import BacktestOptions, BacktestRunner
from kalshi.record.reader import Recording
from kalshi.strategy.base import Strategy

__all__ = [
    "BacktestOptions",
    "BacktestResult",
    "BacktestRunner",
    "BacktestSummary",
    "CancelModel",
    "FeeSchedule",
    "SimulatedExchange",
    "fee_for_fill",
    "fee_numerator",
    "fee_total",
    "run",
    "run_async",
]


async def run_async(
    strategy: Strategy,
    recording: str | os.PathLike[str] | Recording,
    options: BacktestOptions | None = None,
    **option_values: Any,
) -> BacktestResult:
    """Backtest ``strategy`` on ``recording`` inside a running event loop (see :func:`run`).

    Raises:
        RecordingError: the recording cannot be read.
        StrategyError: a strategy hook raised.
        TypeError: an unknown option.
    """
    opts = options or BacktestOptions(**option_values)
    return await BacktestRunner(strategy, recording, opts).run()


def run(
    strategy: Strategy,
    recording: str | os.PathLike[str] | Recording,
    options: BacktestOptions | None = None,
    **option_values: Any,
) -> BacktestResult:
    """Backtest ``strategy`` on a recording (a ``kalshi record`` directory) and return the results.

    Args:
        strategy: the strategy instance (its hooks are awaited in order; a fresh instance per run).
        recording: the recording directory, one of its files, or an open :class:`~kalshi.record.Recording`.
        options: a :class:`BacktestOptions`, or give its fields as keywords (``order_latency_ms=20``).

    Raises:
        RecordingError: the recording cannot be read.
        StrategyError: a strategy hook raised.
        TypeError: an unknown option.
    """
    return asyncio.run(run_async(strategy, recording, options, **option_values))
