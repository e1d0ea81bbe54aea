"""The HTML report of a backtest: equity curve and inventory per market, drawn with plotly (one file, offline)."""

from __future__ import annotations

import html
import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from kalshi.strategy.types import StrategyError

if TYPE_CHECKING:
    from kalshi.backtest.results import BacktestResult

__all__ = ["write_report"]


def write_report(result: BacktestResult, path: Path, *, title: str) -> Path:
    """Write ``path`` (an ``.html`` file with plotly embedded, so it opens without a network).

    Raises:
        StrategyError: plotly is not installed (``pip install 'kalshi-kit[backtest]'``).
    """
    try:
        go = importlib.import_module("plotly.graph_objects")
        pio = importlib.import_module("plotly.io")
        make_subplots = importlib.import_module("plotly.subplots").make_subplots
    except ImportError as exc:
        raise StrategyError("the HTML report needs plotly: pip install 'kalshi-kit[backtest]'") from exc

    timeline = result.timeline.to_pydict()
    tickers = sorted(set(timeline["ticker"]))
    fig = make_subplots(
        rows=1 + max(len(tickers), 1),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        subplot_titles=["Equity (USD)"] + [f"Inventory {t} (contracts)" for t in tickers],
    )
    seen: dict[int, float] = {}
    for ts, equity in zip(timeline["ts_ns"], timeline["equity_usd"], strict=True):
        seen[ts] = equity  # one equity point per sample time (rows repeat it per market)
    times = sorted(seen)
    fig.add_trace(
        go.Scatter(x=[_iso(t) for t in times], y=[seen[t] for t in times], mode="lines", name="equity"), row=1, col=1
    )
    for i, ticker in enumerate(tickers, start=2):
        xs = [_iso(ts) for ts, tk in zip(timeline["ts_ns"], timeline["ticker"], strict=True) if tk == ticker]
        ys = [u / 100 for u, tk in zip(timeline["position_units"], timeline["ticker"], strict=True) if tk == ticker]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line_shape="hv", name=ticker), row=i, col=1)
    fig.update_layout(title=title, height=320 + 220 * len(tickers), showlegend=True)
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in result.summary_lines())
    body = pio.to_html(fig, include_plotlyjs=True, full_html=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:2em}</style>"
        f"</head><body><h1>{html.escape(title)}</h1><table>{rows}</table>{body}</body></html>",
        encoding="utf-8",
    )
    return path


def _iso(ts_ns: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).isoformat()
