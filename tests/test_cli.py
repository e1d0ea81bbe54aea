"""The ``kalshi`` command: every command driven through typer's CliRunner against a real simulator."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console
from typer.testing import CliRunner

import kalshi.cli.markets as markets_module
from kalshi.auth import ENV_KEY_ID, ENV_PRIVATE_KEY, ENV_PRIVATE_KEY_PATH, generate_private_key_pem
from kalshi.cli.common import ConnectOptions, resolve_auth, resolve_config, split_values
from kalshi.cli.demo import DemoState, RateMeter, TickerRow, TradeRow, render_demo
from kalshi.cli.main import app, main
from kalshi.config import KalshiConfig
from kalshi.models.markets import Orderbook
from kalshi.sim import Simulator
from kalshi.sim.ws.firehose import firehose
from test_cli_support import SimThread

COMMANDS = ["demo", "book", "stream", "markets", "sim", "record", "replay"]
NO_CREDENTIALS: dict[str, str | None] = {ENV_KEY_ID: None, ENV_PRIVATE_KEY_PATH: None, ENV_PRIVATE_KEY: None}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "120", **NO_CREDENTIALS})


@pytest.fixture(scope="module")
def live_sim() -> Any:
    """A busy open simulator shared by the read-only command tests."""
    with SimThread(seed=11, markets=4, rate=300.0, open_access=True, lifecycle=False) as st:
        yield st


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------- help, version


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_examples(runner: CliRunner, command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: kalshi " + command in result.output
    assert "Examples" in result.output
    assert f"$ kalshi {command}" in result.output


def test_top_level_help_lists_commands_and_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output
    assert "kalshi demo" in result.output
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("kalshi-kit ")


def test_main_returns_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert main(["stream", "ticker", "--env", "nowhere"]) == 2
    assert "unknown --env 'nowhere'" in capsys.readouterr().err
    assert main(["no-such-command"]) == 2


# ------------------------------------------------------------------------------------------- rendering

EXPECTED_FRAME = """\
kalshi demo  simulator http://127.0.0.1:8765 (seed 7)  STREAMING  12,345 msgs  678 msg/s  reconnects 1  42 s
╭─ KXFED-25DEC-T4.00 ────────────────╮ ╭─ KXFED-25DEC-T4.25 ────────────────╮
│ Bid size     Bid     Ask  Ask size │ │ Bid size     Bid     Ask  Ask size │
│    10.00  0.4500  0.4695      7.00 │ │  waiting                           │
│     2.50  0.4400  0.4800     12.50 │ ╰────────────────── no snapshot yet ─╯
│    50.00  0.4300                   │
╰─────── spread 0.0195  mid 0.45975 ─╯
Tickers                                                      Trades
┏━━━━━━━━━━━━━━━━━━━┳━━━━━━━━┳━━━━━━━━┳━━━━━━━━┳━━━━━━━━━━┓  ┏━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━┳━━━━━━━━┳━━━━━━┓
┃ Market            ┃    Bid ┃    Ask ┃   Last ┃   Volume ┃  ┃ Time     ┃ Market            ┃ Taker ┃    Yes ┃ Size ┃
┡━━━━━━━━━━━━━━━━━━━╇━━━━━━━━╇━━━━━━━━╇━━━━━━━━╇━━━━━━━━━━┩  ┡━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━╇━━━━━━━━╇━━━━━━┩
│ KXFED-25DEC-T4.00 │ 0.4500 │ 0.4700 │ 0.4600 │ 1,234.50 │  │ 22:13:20 │ KXFED-25DEC-T4.00 │ yes   │ 0.4700 │ 3.00 │
└───────────────────┴────────┴────────┴────────┴──────────┘  │ --:--:-- │ KXFED-25DEC-T4.25 │ -     │      - │    - │
                                                             └──────────┴───────────────────┴───────┴────────┴──────┘
Ctrl-C to quit
"""


def demo_state() -> DemoState:
    book = Orderbook.from_levels(
        "KXFED-25DEC-T4.00", yes=[(4500, 1000), (4400, 250), (4300, 5000)], no=[(5305, 700), (5200, 1250)]
    )
    return DemoState(
        source="simulator http://127.0.0.1:8765 (seed 7)",
        connection="streaming",
        markets=["KXFED-25DEC-T4.00", "KXFED-25DEC-T4.25"],
        books={"KXFED-25DEC-T4.00": book},
        tickers={
            "KXFED-25DEC-T4.00": TickerRow(Decimal("0.4500"), Decimal("0.4700"), Decimal("0.4600"), Decimal("1234.50"))
        },
        trades=deque(
            [
                TradeRow(1_700_000_000_000, "KXFED-25DEC-T4.00", "yes", Decimal("0.4700"), Decimal("3.00")),
                TradeRow(None, "KXFED-25DEC-T4.25", None, None, None),
            ]
        ),
        messages=12_345,
        rate=678.4,
        reconnects=1,
        elapsed=42.4,
    )


def test_render_demo_frame_snapshot() -> None:
    # Ask = $1 - best NO bid (0.5305 -> 0.4695); the half-tick mid keeps its fifth decimal; a market
    # without a snapshot shows a placeholder; a trade without a timestamp shows dashes.
    console = Console(record=True, width=120, color_system=None, force_terminal=False)
    console.print(render_demo(demo_state()))
    assert [line.rstrip() for line in console.export_text().splitlines()] == EXPECTED_FRAME.splitlines()


def test_render_demo_is_pure() -> None:
    state = demo_state()
    before = (dict(state.books), dict(state.tickers), list(state.trades), state.messages)
    first = Console(record=True, width=120, color_system=None)
    second = Console(record=True, width=120, color_system=None)
    first.print(render_demo(state))
    second.print(render_demo(state))
    assert first.export_text() == second.export_text()
    assert (dict(state.books), dict(state.tickers), list(state.trades), state.messages) == before


def test_rate_meter_reports_messages_per_second_over_its_window() -> None:
    now = [100.0]
    meter = RateMeter(window=2.0, clock=lambda: now[0])
    assert meter.rate(0) == 0.0
    now[0] = 101.0
    assert meter.rate(500) == 500.0
    now[0] = 102.0
    assert meter.rate(1500) == 750.0
    now[0] = 104.5  # the samples older than the window are dropped
    assert meter.rate(2000) == pytest.approx(500 / 2.5)


# ------------------------------------------------------------------------------------------- demo


def test_demo_runs_for_two_seconds_and_shows_books(runner: CliRunner) -> None:
    result = runner.invoke(app, ["demo", "--duration", "2", "--markets", "3", "--seed", "4", "--rate", "80"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "kalshi demo" in out and "STREAMING" in out
    assert out.count("Bid size") >= 3  # three ladders in each printed frame
    assert re.search(r"\d+\.\d\d\s+0\.\d{4}\s+0\.\d{4}\s+\d+\.\d\d", out), "a ladder row with bid and ask"
    assert re.search(r"spread 0\.\d{4}", out)
    assert "Trades" in out and "Tickers" in out


# ------------------------------------------------------------------------------------------- stream, book


def test_stream_json_lines_are_the_wire_messages(runner: CliRunner, live_sim: SimThread) -> None:
    tickers = live_sim.call(lambda sim: sim.tickers)
    result = runner.invoke(app, ["stream", "ticker", "--url", live_sim.url, "--json", "--count", "5"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    for line in lines:
        message = json.loads(line)
        assert message["type"] == "ticker"
        assert message["msg"]["market_ticker"] in tickers
        assert Decimal(message["msg"]["yes_bid_dollars"]) >= 0


def test_stream_json_keeps_up_past_the_client_queue(runner: CliRunner) -> None:
    # --json reads the raw frame tap; the subscription nobody iterates must not stall the socket when full.
    with SimThread(seed=2, markets=1, rate=0.0, open_access=True) as st:
        ticker = st.call(lambda sim: sim.tickers[0])

        async def push(sim: Simulator) -> None:
            for _ in range(2000):
                if any(conn.session.subscriptions for conn in sim.connections()):
                    break
                await asyncio.sleep(0.005)
            await firehose(sim, ticker, frames=2500)

        assert st.sim is not None and st.loop is not None
        pushed = asyncio.run_coroutine_threadsafe(push(st.sim), st.loop)
        result = runner.invoke(
            app, ["stream", "orderbook_delta", "-m", ticker, "--url", st.url, "--json", "-n", "2501", "-d", "15"]
        )
        pushed.result(10)
    assert result.exit_code == 0, result.output
    seqs = [json.loads(line)["seq"] for line in result.stdout.splitlines()]
    assert seqs == list(range(1, 2502))  # the snapshot, then 2500 deltas


def test_stream_orderbook_readable_lines(runner: CliRunner, live_sim: SimThread) -> None:
    ticker = live_sim.call(lambda sim: sim.tickers[0])
    result = runner.invoke(app, ["stream", "orderbook_delta", "-m", ticker, "--url", live_sim.url, "-n", "3"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert "orderbook_snapshot" in lines[0] and ticker in lines[0]
    assert all("orderbook_delta" in line and "seq" in line for line in lines[1:])


def test_stream_orderbook_needs_a_market(runner: CliRunner) -> None:
    result = runner.invoke(app, ["stream", "orderbook_delta", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "--market" in result.stderr


def test_stream_an_unknown_channel_is_refused_before_connecting(runner: CliRunner) -> None:
    result = runner.invoke(app, ["stream", "tickr", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "unknown channel 'tickr': did you mean 'ticker'?" in result.stderr


def test_book_json_matches_the_exchange(runner: CliRunner) -> None:
    with SimThread(seed=3, markets=2, rate=0.0, open_access=True, lifecycle=False) as st:
        st.call(lambda sim: sim.step(300))
        truth = st.call(lambda sim: max((sim.book(t) for t in sim.tickers), key=lambda b: len(b.yes) + len(b.no)))
        ticker = truth.market_ticker
        result = runner.invoke(app, ["book", ticker, "--url", st.url, "--json", "--count", "1"])
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    book = json.loads(line)
    assert book["market_ticker"] == ticker
    assert book["yes"] == truth.to_dict()["yes"] and book["no"] == truth.to_dict()["no"]
    assert truth.to_dict()["yes"], "the stepped market has resting bids"


def test_book_once_prints_every_ladder(runner: CliRunner, live_sim: SimThread) -> None:
    tickers = live_sim.call(lambda sim: sim.tickers[:2])
    result = runner.invoke(app, ["book", *tickers, "--url", live_sim.url, "--once", "--depth", "3"])
    assert result.exit_code == 0, result.output
    assert all(ticker in result.stdout for ticker in tickers)
    assert result.stdout.count("Bid size") == 2


# ------------------------------------------------------------------------------------------- markets


def market_json(ticker: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ticker": ticker,
        "event_ticker": ticker.rsplit("-", 1)[0],
        "market_type": "binary",
        "title": f"Will {ticker} happen?",
        "yes_sub_title": "Yes",
        "no_sub_title": "No",
        "created_time": "2025-01-01T00:00:00Z",
        "updated_time": "2025-01-01T00:00:00Z",
        "open_time": "2025-01-01T00:00:00Z",
        "close_time": "2025-12-31T20:00:00Z",
        "latest_expiration_time": "2026-01-01T00:00:00Z",
        "settlement_timer_seconds": 60,
        "status": "active",
        "yes_bid_dollars": "0.4500",
        "yes_bid_size_fp": "10.00",
        "yes_ask_dollars": "0.4700",
        "yes_ask_size_fp": "5.00",
        "no_bid_dollars": "0.5300",
        "no_ask_dollars": "0.5500",
        "last_price_dollars": "0.4600",
        "volume_fp": "1234.50",
        "volume_24h_fp": "10.00",
        "result": "",
        "can_close_early": True,
        "open_interest_fp": "100.00",
        "notional_value_dollars": "1.0000",
        "previous_yes_bid_dollars": "0.4400",
        "previous_yes_ask_dollars": "0.4800",
        "previous_price_dollars": "0.4500",
        "settlement_bounds_type": "inclusive",
        "expiration_value": "",
        "rules_primary": "rules",
        "rules_secondary": "",
        "price_level_structure": "linear_cent",
        "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
    }
    base.update(overrides)
    return base


@pytest.fixture
def markets_api(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """The REST markets endpoint as an httpx.MockTransport: two pages joined by a cursor."""
    seen: list[httpx.Request] = []
    pages = {
        "": {"markets": [market_json("KXFED-25DEC-T4.00"), market_json("KXFED-25DEC-T4.25")], "cursor": "page2"},
        "page2": {"markets": [market_json("KXFED-25DEC-T4.50", yes_bid_dollars="0.0100")], "cursor": ""},
    }

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        assert request.url.path == "/trade-api/v2/markets"
        return httpx.Response(200, json=pages[request.url.params.get("cursor", "")])

    monkeypatch.setattr(markets_module, "rest_transport", lambda: httpx.MockTransport(handle))
    return seen


def test_markets_table_follows_pages(runner: CliRunner, markets_api: list[httpx.Request]) -> None:
    result = runner.invoke(app, ["markets", "--series", "KXFED", "--env", "demo"])
    assert result.exit_code == 0, result.output
    for ticker in ("KXFED-25DEC-T4.00", "KXFED-25DEC-T4.25", "KXFED-25DEC-T4.50"):
        assert ticker in result.stdout
    assert "1,234.50" in result.stdout and "0.0100" in result.stdout
    assert "3 market(s)" in result.stdout
    assert len(markets_api) == 2
    assert markets_api[0].url.params["status"] == "open"
    assert markets_api[0].url.params["series_ticker"] == "KXFED"
    assert markets_api[1].url.params["cursor"] == "page2"
    assert "KALSHI-ACCESS-KEY" not in markets_api[0].headers  # public endpoint, no credentials given


def test_markets_json_lines_and_limit(runner: CliRunner, markets_api: list[httpx.Request]) -> None:
    result = runner.invoke(app, ["markets", "--json", "--limit", "2", "--status", "", "--env", "demo"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["ticker"] for row in rows] == ["KXFED-25DEC-T4.00", "KXFED-25DEC-T4.25"]
    assert rows[0]["yes_bid_dollars"] == "0.4500"
    assert len(markets_api) == 1 and "status" not in markets_api[0].url.params


def test_markets_api_error_is_one_line(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"code": "unauthorized", "message": "bad signature"}})

    monkeypatch.setattr(markets_module, "rest_transport", lambda: httpx.MockTransport(handle))
    result = runner.invoke(app, ["markets", "--env", "demo"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "credentials refused" in result.stderr


# ------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "args",
    [
        ["stream", "ticker", "--env", "demo"],
        ["book", "KXFED-25DEC-T4.00", "--env", "prod"],
        ["record", "-c", "ticker", "--out", "unused", "--env", "demo"],
    ],
)
def test_missing_credentials_name_the_variables(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert ENV_KEY_ID in result.stderr and ENV_PRIVATE_KEY_PATH in result.stderr
    assert "--key-id" in result.stderr
    assert "Traceback" not in result.output


def test_missing_key_file_is_reported(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["stream", "ticker", "--env", "demo", "--key-id", "abc", "--key-path", str(tmp_path / "none.pem")]
    )
    assert result.exit_code == 2
    assert "private key file not found" in result.stderr


def test_unreachable_host_is_one_clear_line(runner: CliRunner) -> None:
    port = closed_port()
    for args in (["stream", "ticker"], ["book", "X"], ["record", "-c", "ticker", "--out", "unused"]):
        result = runner.invoke(app, [*args, "--url", f"http://127.0.0.1:{port}"])
        assert result.exit_code == 1, result.output
        assert result.stderr == f"error: cannot reach 127.0.0.1:{port}: Connection refused (is the server running?)\n"
    assert not Path("unused").exists()


def test_refused_credentials_are_one_clear_line(runner: CliRunner, tmp_path: Path) -> None:
    with SimThread(seed=1, markets=2, rate=0.0, open_access=False) as st:
        result = runner.invoke(app, ["stream", "ticker", "--url", st.url])
        record = runner.invoke(app, ["record", "-c", "ticker", "--url", st.url, "--out", str(tmp_path / "rec")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "credentials refused (HTTP 401)" in result.stderr and "--open" in result.stderr
    assert record.exit_code == 2 and "credentials refused (HTTP 401)" in record.stderr
    assert not list((tmp_path / "rec").glob("*.parquet*")), "no empty recording left behind"


def test_refusals_show_the_servers_reason(runner: CliRunner, tmp_path: Path) -> None:
    key_file = tmp_path / "stranger.pem"
    key_file.write_bytes(generate_private_key_pem("ed25519")[0])
    with SimThread(seed=1, markets=2, rate=0.0, open_access=False) as st:
        result = runner.invoke(
            app, ["stream", "ticker", "--url", st.url, "--key-id", "stranger", "--key-path", str(key_file)]
        )
    assert result.exit_code == 2
    assert "credentials refused (HTTP 401)" in result.stderr
    assert "the server says unknown_key" in result.stderr  # not a 401 like every other


@pytest.mark.parametrize("command", [*COMMANDS, None])
def test_flags_take_no_value_placeholder(runner: CliRunner, command: str | None) -> None:
    result = runner.invoke(app, [command, "--help"] if command else ["--help"])
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    assert not re.search(r"--verbose\s+-v\s+<", result.output)


def test_a_flag_is_a_bare_switch(runner: CliRunner) -> None:
    refused = runner.invoke(app, ["stream", "ticker", "--json", "true", "--url", "http://127.0.0.1:1"])
    assert refused.exit_code == 2 and "true" in refused.output  # no value after a flag (click convention)


def test_sim_demo_key_export_lines_sign_the_other_commands(runner: CliRunner, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    command = ["-m", "kalshi", "sim", "--port", "0", "--markets", "2", "--rate", "50", "--write-demo-key", str(keys)]
    process = subprocess.Popen(
        [sys.executable, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(8)]
        url = re.search(r"(http://127\.0\.0\.1:\d+)", lines[0])
        assert url, lines
        exports = dict(re.findall(r"^\s*export (\w+)=(\S+)$", "".join(lines), flags=re.M))
        assert set(exports) == {ENV_KEY_ID, ENV_PRIVATE_KEY_PATH}
        assert Path(exports[ENV_PRIVATE_KEY_PATH]).is_file()
        assert any(f"--url {url.group(1)} --key-id {exports[ENV_KEY_ID]} --key-path" in line for line in lines)
        # What a shell user does next: paste the two lines, then run a command with --url.
        signed = CliRunner(env={**NO_CREDENTIALS, **exports, "COLUMNS": "120"})
        result = signed.invoke(app, ["stream", "ticker", "--url", url.group(1), "--count", "2"])
        assert result.exit_code == 0, result.output
        assert len(result.stdout.splitlines()) == 2
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=10)
    assert process.returncode == 130, err


def test_missing_extra_is_named(tmp_path: Path) -> None:
    """Without the cli extra the command says what to install instead of a traceback."""
    script = "import sys; sys.modules['typer'] = None\nfrom kalshi.cli import main\nraise SystemExit(main(['--help']))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "pip install 'kalshi-kit[cli]'" in result.stderr and "Traceback" not in result.stderr
    blocked = "import sys; sys.modules['aiohttp'] = None\nfrom kalshi.cli import main\nraise SystemExit(main(['sim']))"
    result = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1 and "'sim' extra" in result.stderr, result.stderr


def test_replay_has_its_own_port_beside_the_simulator() -> None:
    from kalshi.cli.replay import DEFAULT_REPLAY_PORT
    from kalshi.sim.cli import SimOptions

    assert SimOptions().port != DEFAULT_REPLAY_PORT


def test_unknown_env_and_bad_options(runner: CliRunner) -> None:
    assert runner.invoke(app, ["stream", "ticker", "--env", "staging"]).exit_code == 2
    assert runner.invoke(app, ["demo", "--duration", "0"]).exit_code == 2
    bad = runner.invoke(app, ["sim", "--faults", "drop_every=soon"])
    assert bad.exit_code == 2 and "--faults" in bad.stderr


# ------------------------------------------------------------------------------------------- common


def test_split_values_accepts_repeats_and_commas() -> None:
    assert split_values(["a,b", " c ", "a", ""]) == ["a", "b", "c"]
    assert split_values(None) == []


def test_resolve_auth_precedence(tmp_path: Path) -> None:
    private_pem, _public = generate_private_key_pem("ed25519")
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(private_pem)
    local = resolve_config(ConnectOptions(url="http://127.0.0.1:8765"))
    demo = resolve_config(ConnectOptions(env="demo"))
    assert local == KalshiConfig.local("http://127.0.0.1:8765") and demo == KalshiConfig.demo()
    # No credentials: fine for a local simulator, not for the exchange's WebSocket.
    assert resolve_auth(ConnectOptions(), local, required=True, environ={}) is None
    assert resolve_auth(ConnectOptions(), demo, required=False, environ={}) is None
    # Environment variables, then flags over them.
    from_env = resolve_auth(
        ConnectOptions(), demo, required=True, environ={ENV_KEY_ID: "env-key", ENV_PRIVATE_KEY_PATH: str(key_file)}
    )
    assert from_env is not None and from_env.key_id == "env-key"
    from_flags = resolve_auth(
        ConnectOptions(key_id="flag-key", key_path=str(key_file)),
        demo,
        required=True,
        environ={ENV_KEY_ID: "env-key", ENV_PRIVATE_KEY: "not a pem"},
    )
    assert from_flags is not None and from_flags.key_id == "flag-key"


# ------------------------------------------------------------------------------------------- kalshi sim


def test_sim_command_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "kalshi.cli.main", "sim", "--port", "0", "--open", "--markets", "2", "--rate", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", first)
        assert match, first
        with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=5):
            pass
        assert "open access" in "".join(process.stdout.readline() for _ in range(2))
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=10)
    assert process.returncode == 130, err  # the shell's convention for Ctrl-C


def test_markets_json_against_the_simulator(runner: CliRunner, live_sim: SimThread) -> None:
    tickers = live_sim.call(lambda sim: sorted(sim.tickers))
    result = runner.invoke(app, ["markets", "--url", live_sim.url, "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    listed = sorted(row["ticker"] for row in rows)
    assert listed == tickers
    for row in rows:
        assert (
            Decimal(row["yes_bid_dollars"]) <= Decimal(row["yes_ask_dollars"]) or Decimal(row["yes_ask_dollars"]) == 0
        )


def test_server_reason_reads_what_the_server_said() -> None:
    from kalshi.cli.common import server_reason
    from kalshi.errors import KalshiHandshakeError, api_error_for_status

    body = '{"error": {"code": "stale_timestamp", "message": "timestamp is 45 s old"}}'
    handshake = KalshiHandshakeError(
        f"ws://x refused the WebSocket upgrade with HTTP 401 ({body}): check the API key id", status=401
    )
    assert server_reason(handshake) == "stale_timestamp: timestamp is 45 s old"
    plain = KalshiHandshakeError("ws://x refused the WebSocket upgrade with HTTP 403 (forbidden)", status=403)
    assert server_reason(plain) == "forbidden"
    silent = KalshiHandshakeError("ws://x refused the WebSocket upgrade with HTTP 401: check the key", status=401)
    assert server_reason(silent) is None
    rest = api_error_for_status(401, "unknown_key", "no such key")
    assert server_reason(rest) == "unknown_key: no such key"


# ------------------------------------------------------------------------------------------- markets that do not trade


def test_status_notes() -> None:
    from kalshi.cli.market_status import status_note

    assert status_note("active") is None and status_note("open") is None
    assert status_note("finalized", "yes") == "settled, result yes"
    assert status_note("closed") == "closed"
    assert status_note("initialized") == "not open yet"
    assert status_note("inactive") == "paused"


def test_book_and_stream_say_a_market_is_settled(runner: CliRunner) -> None:
    with SimThread(seed=3, markets=2, rate=0.0, open_access=True, lifecycle=False) as st:
        settled, trading = st.call(lambda sim: sorted(sim.tickers))

        def settle(sim: Simulator) -> None:
            sim.do(lambda engine: engine.determine_market(settled, "yes", 10_000))
            sim.do(lambda engine: engine.settle_market(settled))

        st.call(settle)
        book = runner.invoke(app, ["book", settled, trading, "--url", st.url, "--once"])
        stream = runner.invoke(app, ["stream", "trade", "-m", settled, "--url", st.url, "--duration", "0.5"])
    assert book.exit_code == 0, book.output
    assert f"note: {settled} is settled, result yes: its book stays empty" in book.stderr
    assert trading not in book.stderr  # the open market gets no note
    assert "settled, result yes" in book.stdout  # in its box too
    assert stream.exit_code == 0, stream.output
    assert f"note: {settled} is settled, result yes" in stream.stderr


def test_lifecycle_notes() -> None:
    import msgspec

    from kalshi.cli.market_status import lifecycle_note
    from kalshi.ws.models import MESSAGE_DECODER

    def event(kind: str, **extra: object) -> Any:
        body = {"market_ticker": "M", "event_type": kind, **extra}
        return MESSAGE_DECODER.decode(msgspec.json.encode({"type": "market_lifecycle_v2", "sid": 1, "msg": body}))

    assert lifecycle_note(event("settled", result="no")) == ("M", "settled, result no")
    assert lifecycle_note(event("determined", result="yes")) == ("M", "determined, result yes")
    assert lifecycle_note(event("deactivated", is_deactivated=True)) == ("M", "paused")
    assert lifecycle_note(event("activated")) == ("M", None)
    assert lifecycle_note(event("close_date_updated")) is None
