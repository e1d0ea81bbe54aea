"""Backtest results: fills, orders and a PnL/inventory timeline as Arrow tables, Parquet files and a summary.

Money in the tables is exact integer micros (``*_micros`` columns) next to float dollars for plotting
(``*_usd``); prices are ticks and counts units, as everywhere in kalshi-kit. Files written by
:meth:`BacktestResult.write`: ``fills.parquet``, ``orders.parquet``, ``timeline.parquet``, ``summary.json``
(read them with DuckDB, pandas or polars).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from kalshi.strategy.types import PRICE_SCALE, Fill

if TYPE_CHECKING:
    from kalshi.backtest.matching import SimulatedExchange
    from kalshi.strategy.context import Context

__all__ = ["BacktestResult", "BacktestSummary", "ResultCollector"]

_MICROS: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class BacktestSummary:
    """Headline figures of a run (money in micros; ``*_usd`` properties give dollars)."""

    events: int
    pnl_micros: int
    fees_micros: int
    fills: int
    maker_fills: int
    taker_fills: int
    orders: int
    turnover_micros: int
    volume_units: int
    max_drawdown_micros: int
    inventory_peaks: dict[str, int]
    final_positions: dict[str, int]
    start_cash_micros: int
    end_cash_micros: int

    @property
    def pnl_usd(self) -> float:
        """PnL in dollars (for display)."""
        return self.pnl_micros / _MICROS


class ResultCollector:
    """Collects fills and timeline samples while a backtest (or paper run) goes on."""

    def __init__(self, exchange: SimulatedExchange, sample_interval_s: float) -> None:
        self.exchange = exchange
        self._interval = int(sample_interval_s * 1e9)
        self.next_sample_ns = 0
        self._rows: dict[str, list[Any]] = {
            k: [] for k in ("ts_ns", "ticker", "position_units", "mark_ticks", "cash_micros", "equity_micros")
        }
        self._marks: dict[str, int] = {}
        self.orders_sent = 0
        self.peaks: dict[str, int] = {}

    def on_fill(self, fill: Fill) -> None:
        """Called when a fill reaches the strategy: sample now."""
        self._marks[fill.ticker] = fill.price
        self.sample(fill.ts_ns, force=True)

    def maybe_sample(self, now_ns: int) -> None:
        """Sample if the interval has passed."""
        if now_ns >= self.next_sample_ns:
            self.sample(now_ns)

    def sample(self, now_ns: int, *, force: bool = False) -> None:
        """Append one row per market traded: position, mark, cash and total equity."""
        if not force and now_ns < self.next_sample_ns:
            return
        self.next_sample_ns = now_ns + self._interval
        account = self.exchange.account
        positions = account.positions
        if not positions:
            return
        # Called on every fill: one pass marks the markets and values the positions (as Ledger.equity does).
        marks = self._marks
        markets = self.exchange.markets
        cash = account.cash
        equity = cash
        for ticker, held in positions.items():
            market = markets.get(ticker)
            mid2 = market.book.others_mid2 if market is not None else None
            mark: int | None
            if mid2 is not None:
                mark = marks[ticker] = mid2 // 2
            else:
                mark = marks.get(ticker)
            if held and mark is not None:
                equity += held * mark if held > 0 else -held * (PRICE_SCALE - mark)
        rows = self._rows
        count = len(positions)
        rows["ts_ns"].extend([now_ns] * count)
        rows["ticker"].extend(positions)
        rows["position_units"].extend(positions.values())
        rows["mark_ticks"].extend([marks.get(ticker) for ticker in positions])
        rows["cash_micros"].extend([cash] * count)
        rows["equity_micros"].extend([equity] * count)
        peaks = self.peaks
        for ticker, held in positions.items():
            size = held if held >= 0 else -held
            if size > peaks.get(ticker, 0):
                peaks[ticker] = size

    def result(self, events: int, ctx: Context) -> BacktestResult:
        """The final result."""
        result = BacktestResult.build(self.exchange, self._rows, events, self.peaks, ctx)
        traded = {order.ticker for order in self.exchange.orders.values()}
        result.markets_without_grid = sorted(traded - self.exchange.rules.keys())
        return result


class BacktestResult:
    """What a backtest produced: :attr:`summary`, Arrow tables :attr:`fills`, :attr:`orders`,
    :attr:`timeline`, and :meth:`write` / :meth:`report`."""

    def __init__(self, summary: BacktestSummary, fills: pa.Table, orders: pa.Table, timeline: pa.Table) -> None:
        self.summary = summary
        self.fills = fills
        self.orders = orders
        self.timeline = timeline
        self.markets_without_grid: list[str] = []
        """Markets the strategy ordered in whose price grid was not known: orders there took any tick, where the
        exchange refuses prices off its grid (see ``BacktestOptions.market_rules``)."""

    def __repr__(self) -> str:
        s = self.summary
        return f"BacktestResult(pnl={_usd(s.pnl_micros)}, fills={s.fills}, events={s.events})"

    @classmethod
    def build(
        cls,
        exchange: SimulatedExchange,
        rows: dict[str, list[Any]],
        events: int,
        peaks: dict[str, int],
        ctx: Context,
    ) -> BacktestResult:
        """Assemble the tables and the summary from a finished exchange."""
        fills = exchange.fills
        fills_table = pa.table(
            {
                "ts_ns": pa.array([f.ts_ns for f in fills], pa.int64()),
                "ticker": pa.array([f.ticker for f in fills], pa.string()),
                "client_order_id": pa.array([f.client_order_id for f in fills], pa.string()),
                "order_id": pa.array([f.order_id for f in fills], pa.string()),
                "side": pa.array([f.side for f in fills], pa.string()),
                "price_ticks": pa.array([f.price for f in fills], pa.int64()),
                "count_units": pa.array([f.count for f in fills], pa.int64()),
                "fee_micros": pa.array([f.fee for f in fills], pa.int64()),
                "is_taker": pa.array([f.is_taker for f in fills], pa.bool_()),
            }
        )
        orders = sorted(exchange.orders.values(), key=lambda o: o.seq)
        orders_table = pa.table(
            {
                "created_ns": pa.array([o.created_ns for o in orders], pa.int64()),
                "ticker": pa.array([o.ticker for o in orders], pa.string()),
                "client_order_id": pa.array([o.client_order_id for o in orders], pa.string()),
                "order_id": pa.array([o.order_id for o in orders], pa.string()),
                "side": pa.array([o.side for o in orders], pa.string()),
                "price_ticks": pa.array([o.price for o in orders], pa.int64()),
                "time_in_force": pa.array([o.time_in_force for o in orders], pa.string()),
                "post_only": pa.array([o.post_only for o in orders], pa.bool_()),
                "status": pa.array([o.status for o in orders], pa.string()),
                "filled_units": pa.array([o.filled for o in orders], pa.int64()),
                "fees_micros": pa.array([o.fees for o in orders], pa.int64()),
                "reason": pa.array([o.reason for o in orders], pa.string()),
            }
        )
        equity = rows["equity_micros"]
        timeline = pa.table(
            {
                "ts_ns": pa.array(rows["ts_ns"], pa.int64()),
                "ticker": pa.array(rows["ticker"], pa.string()),
                "position_units": pa.array(rows["position_units"], pa.int64()),
                "mark_ticks": pa.array(rows["mark_ticks"], pa.int64()),
                "cash_micros": pa.array(rows["cash_micros"], pa.int64()),
                "equity_micros": pa.array(equity, pa.int64()),
                "equity_usd": pa.array([e / _MICROS for e in equity], pa.float64()),
            }
        )
        account = exchange.account
        peak = account.start_cash
        drawdown = 0
        for value in equity:
            peak = max(peak, value)
            drawdown = max(drawdown, peak - value)
        marks = {}
        for ticker in account.positions:
            book = exchange.book(ticker)
            mid2 = book.others_mid2 if book is not None else None
            if mid2 is not None:
                marks[ticker] = mid2 // 2
        summary = BacktestSummary(
            events=events,
            pnl_micros=account.equity(marks) - account.start_cash,
            fees_micros=account.fees,
            fills=len(fills),
            maker_fills=sum(1 for f in fills if not f.is_taker),
            taker_fills=sum(1 for f in fills if f.is_taker),
            orders=len(orders),
            turnover_micros=sum(f.count * (f.price if f.side == "bid" else PRICE_SCALE - f.price) for f in fills),
            volume_units=account.volume,
            max_drawdown_micros=drawdown,
            inventory_peaks=dict(peaks),
            final_positions={t: u for t, u in account.positions.items() if u},
            start_cash_micros=account.start_cash,
            end_cash_micros=account.cash,
        )
        return cls(summary, fills_table, orders_table, timeline)

    def write(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write ``fills.parquet``, ``orders.parquet``, ``timeline.parquet`` and ``summary.json``.

        Returns:
            The directory.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(self.fills, out / "fills.parquet")
        pq.write_table(self.orders, out / "orders.parquet")
        pq.write_table(self.timeline, out / "timeline.parquet")
        (out / "summary.json").write_text(json.dumps(asdict(self.summary), indent=2, sort_keys=True) + "\n")
        return out

    def summary_lines(self) -> list[tuple[str, str]]:
        """The terminal summary as ``(label, value)`` rows."""
        s = self.summary
        peaks = ", ".join(f"{t} {u / 100:g}" for t, u in sorted(s.inventory_peaks.items())) or "-"
        return [
            ("events replayed", f"{s.events:,}"),
            ("PnL", _usd(s.pnl_micros)),
            ("fees", _usd(s.fees_micros)),
            ("fills (maker / taker)", f"{s.fills:,} ({s.maker_fills:,} / {s.taker_fills:,})"),
            ("orders", f"{s.orders:,}"),
            ("turnover", _usd(s.turnover_micros)),
            ("contracts traded", f"{s.volume_units / 100:,.2f}"),
            ("max drawdown", _usd(s.max_drawdown_micros)),
            ("inventory peaks (contracts)", peaks),
        ]

    def report(self, path: str | os.PathLike[str], *, title: str = "kalshi-kit backtest") -> Path:
        """Write the HTML report (equity curve, inventory per market). Needs the ``backtest`` extra (plotly).

        Raises:
            StrategyError: plotly is not installed.
        """
        from kalshi.backtest.report import write_report

        return write_report(self, Path(path), title=title)


def _usd(micros: int) -> str:
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), _MICROS)
    return f"{sign}${whole:,}.{frac // 10_000:02d}"
