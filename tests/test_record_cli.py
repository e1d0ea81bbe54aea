"""``kalshi record`` and ``kalshi replay`` as a user runs them: against a faulty simulator, then served back."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import kalshi.record
from kalshi.auth import ENV_KEY_ID, ENV_PRIVATE_KEY, ENV_PRIVATE_KEY_PATH
from kalshi.cli.main import app
from kalshi.config import KalshiConfig
from kalshi.models.markets import Orderbook
from kalshi.ws import KalshiWebSocket
from test_cli_support import SimThread


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[str]]:
    """``kalshi record`` for 2.5 s while the simulator drops every connection every 0.8 s."""
    out = tmp_path_factory.mktemp("cli") / "rec"
    runner = CliRunner(env={ENV_KEY_ID: None, ENV_PRIVATE_KEY_PATH: None, ENV_PRIVATE_KEY: None})
    with SimThread(seed=5, markets=3, rate=300.0, open_access=True, lifecycle=False, faults="drop_every=0.8s") as st:
        tickers = st.call(lambda sim: sim.tickers)
        grids = st.call(lambda sim: {t: [r.wire() for r in sim.engine.market(t).spec.ranges()] for t in sim.tickers})
        result = runner.invoke(
            app,
            [
                "record",
                "--channels",
                "orderbook_delta,ticker",
                "-c",
                "trade",
                "--markets",
                ",".join(tickers),
                "--url",
                st.url,
                "--out",
                str(out),
                "--duration",
                "2.5",
                "--progress-every",
                "0.5",
                "--batch-rows",
                "100",
            ],
        )
    assert result.exit_code == 0, result.output
    (out.parent / "grids.json").write_text(json.dumps(grids))  # the exchange's truth, for the test below
    return out, result.stderr, tickers


def test_record_writes_the_markets_price_grids_a_backtest_holds_orders_to(
    recorded: tuple[Path, str, list[str]],
) -> None:
    from kalshi.backtest.replay import recorded_price_ranges

    out, _, tickers = recorded
    truth = json.loads((out.parent / "grids.json").read_text())
    assert recorded_price_ranges(out) == {t: truth[t] for t in tickers}


def test_record_command_survives_reconnects(recorded: tuple[Path, str, list[str]]) -> None:
    out, stderr, tickers = recorded
    lines = stderr.splitlines()
    assert lines[0].startswith("recording orderbook_delta, ticker, trade from ws://127.0.0.1:")
    assert any(re.search(r"\d+ frames\s+[\d,]+/s .* reconnects \d+", line) for line in lines[1:-1])
    summary = re.search(r"recorded ([\d,]+) frames .* reconnects (\d+)", lines[-1])
    assert summary, lines[-1]
    frames, reconnects = int(summary.group(1).replace(",", "")), int(summary.group(2))
    assert reconnects >= 1
    con = duckdb.connect()
    con.execute(f"CREATE VIEW rec AS SELECT * FROM read_parquet('{out}/*.parquet')")
    assert con.execute("SELECT count(*) FROM rec WHERE kind = 'frame'").fetchone() == (frames,)
    assert con.execute("SELECT count(*) FROM rec WHERE kind = 'reconnect'").fetchone() == (reconnects,)
    assert con.execute("SELECT count(DISTINCT conn) FROM rec WHERE kind = 'frame'").fetchone() == (reconnects + 1,)
    # Dropped connections lose no numbers within a connection: seq is continuous per (conn, sid).
    assert con.execute(
        "SELECT count(*) FROM (SELECT seq - lag(seq) OVER (PARTITION BY conn, sid ORDER BY n) AS step "
        "FROM rec WHERE kind = 'frame' AND seq IS NOT NULL) WHERE step <> 1"
    ).fetchone() == (0,)
    channels = {row[0] for row in con.execute("SELECT DISTINCT channel FROM rec WHERE kind = 'frame'").fetchall()}
    assert channels == {"orderbook_delta", "ticker", "trade"}
    markets = {
        row[0]
        for row in con.execute("SELECT DISTINCT market_ticker FROM rec WHERE market_ticker IS NOT NULL").fetchall()
    }
    assert markets == set(tickers)
    start = con.execute("SELECT detail FROM rec WHERE kind = 'start'").fetchone()
    assert start is not None and json.loads(start[0])["channels"] == "orderbook_delta,ticker,trade"


async def books_from(config: KalshiConfig, tickers: list[str], expected: dict[str, Orderbook]) -> dict[str, Orderbook]:
    ws = KalshiWebSocket(None, config)
    async with ws.connect() as client:
        await client.orderbook(tickers)
        for _ in range(750):  # up to 15 s
            if dict(client.books) == expected:
                break
            await asyncio.sleep(0.02)
        return dict(client.books)


def test_replay_command_serves_the_recording(recorded: tuple[Path, str, list[str]]) -> None:
    out, _stderr, tickers = recorded
    rec = kalshi.record.open(out)
    end = rec.summary().end_ns
    assert end is not None
    expected = rec.books_at(end)
    assert set(expected) == set(tickers)
    process = subprocess.Popen(
        [sys.executable, "-m", "kalshi.cli.main", "replay", str(out), "--port", "0", "--as-fast-as-possible"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith(f"replaying {out}:")
        serving = process.stdout.readline()
        match = re.match(r"serving ws://127\.0\.0\.1:(\d+)/trade-api/ws/v2 as fast as clients read", serving)
        assert match, serving
        config = KalshiConfig.local(f"http://127.0.0.1:{match.group(1)}")
        assert asyncio.run(books_from(config, tickers, expected)) == expected
    finally:
        process.send_signal(signal.SIGTERM)  # a clean stop, like Ctrl-C
        _rest, err = process.communicate(timeout=10)
    assert process.returncode == 0, err


def test_replay_command_rejects_a_non_recording(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["replay", str(tmp_path)])
    assert result.exit_code == 2
    assert "no recording files" in result.stderr
    assert CliRunner().invoke(app, ["replay", str(tmp_path), "--speed", "0"]).exit_code == 2
