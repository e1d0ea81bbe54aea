"""``kalshi paper`` against a simulator in a thread (recording the session), then ``kalshi backtest`` on it;
``kalshi live`` refuses production without the explicit flag."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from kalshi.auth import ENV_KEY_ID, ENV_PRIVATE_KEY, ENV_PRIVATE_KEY_PATH
from kalshi.cli.main import app
from kalshi.record import Recording
from test_cli_support import SimThread

MM = "kalshi.strategy.market_maker:MarketMaker"
NO_KEYS = {ENV_KEY_ID: None, ENV_PRIVATE_KEY_PATH: None, ENV_PRIVATE_KEY: None}


def test_paper_records_the_session_and_the_recording_backtests(tmp_path: Path) -> None:
    runner = CliRunner(env=NO_KEYS)
    rec, out = tmp_path / "rec", tmp_path / "paper"
    with SimThread(seed=3, markets=2, rate=300.0, open_access=True, lifecycle=False) as st:
        tickers = st.call(lambda sim: sim.tickers)
        result = runner.invoke(
            app,
            ["paper", "-s", MM, "-m", ",".join(tickers), "--url", st.url, "--duration", "1.5", "--record", str(rec),
             "--out", str(out)],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "PnL" in result.stdout and (out / "fills.parquet").exists()
    assert Recording(rec).summary().frames > 10
    backtest = runner.invoke(app, ["backtest", str(rec), "-s", MM, "--out", str(tmp_path / "bt")])
    assert backtest.exit_code == 0, backtest.output
    assert "events replayed" in backtest.stdout


def test_live_needs_the_real_money_flag_on_production() -> None:
    result = CliRunner(env=NO_KEYS).invoke(app, ["live", "-s", MM, "-m", "X", "--env", "prod"])
    assert result.exit_code == 2
    assert "--i-understand-real-money" in result.output
    missing = CliRunner(env=NO_KEYS).invoke(app, ["live", "-s", MM, "--env", "demo"])
    assert missing.exit_code == 2 and "--markets" in missing.output


def test_paper_takes_the_kill_switch_limits_and_refuses_bad_ones(tmp_path: Path) -> None:
    runner = CliRunner(env=NO_KEYS)
    bad = runner.invoke(
        app, ["paper", "-s", MM, "-m", "X", "--max-orders-per-second", "0", "--url", "http://127.0.0.1:9"]
    )
    assert bad.exit_code == 2 and "max_orders_per_second must be positive" in bad.output
    with SimThread(seed=3, markets=2, rate=300.0, open_access=True, lifecycle=False) as st:
        tickers = st.call(lambda sim: sim.tickers)
        result = runner.invoke(
            app,
            ["paper", "-s", MM, "-m", ",".join(tickers), "--url", st.url, "--duration", "1.0",
             "--max-orders-per-second", "1", "--out", str(tmp_path / "paper")],
        )  # fmt: skip
    # The results are still written; the exit status says the run was stopped, as `kalshi live` does.
    assert result.exit_code == 1, result.output
    assert "kill switch tripped: order rate above 1/s" in result.output
    assert "PnL" in result.stdout and (tmp_path / "paper" / "orders.parquet").exists()
