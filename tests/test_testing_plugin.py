"""The pytest plugin (kalshi.testing): the fixtures work in plain and async tests, against real sockets."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kalshi import KalshiAuth, KalshiClient, KalshiWebSocket
from kalshi.rest import AsyncKalshiClient
from kalshi.sim import Simulator
from kalshi.testing import DEFAULT_SIM_OPTIONS, BookWaitTimeout, SimulatorThread, wait_for_book

# ------------------------------------------------------------------------------------------- plain tests


def test_plain_test_gets_a_simulator_on_its_own_thread(kalshi_sim: SimulatorThread) -> None:
    assert isinstance(kalshi_sim, SimulatorThread)
    assert kalshi_sim.running
    # A blocking client gets its answers while the test thread waits (the simulator is not on this thread).
    with KalshiClient(kalshi_sim.config) as client:
        listed = client.markets.get_markets(limit=100)
    assert sorted(market.ticker for market in listed.markets) == sorted(kalshi_sim.tickers)
    assert len(kalshi_sim.tickers) == DEFAULT_SIM_OPTIONS["markets"]


def test_plain_test_signs_with_an_account_of_the_simulator(kalshi_sim: SimulatorThread) -> None:
    auth, account = kalshi_sim.create_account_auth()
    assert isinstance(auth, KalshiAuth) and isinstance(account, str)
    assert kalshi_sim.account_of(auth.key_id) == account
    with KalshiClient(kalshi_sim.config, auth=auth) as client:
        balance = client.portfolio.get_balance()
    assert balance.balance == kalshi_sim.balance_micros // 10_000  # cents


def test_plain_test_drives_the_simulator_on_its_loop(kalshi_sim: SimulatorThread) -> None:
    ticker = kalshi_sim.tickers[0]
    _auth, account = kalshi_sim.create_account_auth()
    before = kalshi_sim.book(ticker)
    kalshi_sim.place_order(account, ticker, "bid", 100, 700)  # 0.01 dollars, 7 contracts
    after = kalshi_sim.book(ticker)
    assert after != before
    assert kalshi_sim.step(3) >= 0
    # Objects of the simulator (its fault controller) are used through the loop as well.
    assert kalshi_sim.faults.pending() == 0
    kalshi_sim.faults.skip_seq(1)
    assert kalshi_sim.faults.pending() == 1
    assert kalshi_sim.call(lambda sim: sim.faults.pending()) == 1


def test_plain_factory_makes_simulators_with_options(kalshi_sim_factory: Callable[..., SimulatorThread]) -> None:
    with kalshi_sim_factory(markets=2, seed=5) as sim:
        assert len(sim.tickers) == 2
        with KalshiClient(sim.config) as client:
            assert len(client.markets.get_markets(limit=10).markets) == 2
    left_running = kalshi_sim_factory(markets=1).start()
    assert left_running.running  # stopped by the fixture's teardown


def test_simulator_thread_stops_listening() -> None:
    import socket

    with SimulatorThread(markets=1) as sim:
        port = int(sim.url.rsplit(":", 1)[1])
        assert repr(sim).startswith("SimulatorThread(http://127.0.0.1:")
    assert not sim.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises(RuntimeError, match="not running"):
        _ = sim.url


# ------------------------------------------------------------------------------------------- async tests


async def test_async_test_gets_a_simulator_on_the_test_loop(kalshi_sim: Simulator) -> None:
    assert isinstance(kalshi_sim, Simulator)
    auth, account = kalshi_sim.create_account_auth()
    async with AsyncKalshiClient(kalshi_sim.config, auth=auth) as client:
        balance = await client.portfolio.get_balance()
    assert balance.balance == kalshi_sim.balance_micros // 10_000
    assert kalshi_sim.account_of(auth.key_id) == account


async def test_wait_for_book_returns_the_book_of_a_quiet_simulator(kalshi_sim: Simulator) -> None:
    ticker = kalshi_sim.tickers[0]
    auth, _account = kalshi_sim.create_account_auth()
    async with KalshiWebSocket(auth, kalshi_sim.config).connect() as session:
        await session.orderbook([ticker])
        first = await wait_for_book(session, ticker, within=10)
        # Nothing moves on the fixture's simulator (rate 0), and the book is there at once all the same.
        again = await wait_for_book(session, ticker, within=10)
    truth = kalshi_sim.book(ticker)
    assert first.market_ticker == again.market_ticker == ticker
    assert first == again == truth  # the exchange's own book, level for level


async def test_wait_for_book_fails_clearly_when_no_book_comes(kalshi_sim: Simulator) -> None:
    auth, _account = kalshi_sim.create_account_auth()
    async with KalshiWebSocket(auth, kalshi_sim.config).connect() as session:
        await session.orderbook([kalshi_sim.tickers[0]])
        await wait_for_book(session, kalshi_sim.tickers[0], within=10)
        with pytest.raises(BookWaitTimeout, match=r"no order book for NOT-SUBSCRIBED within 0\.2 s") as caught:
            await wait_for_book(session, "NOT-SUBSCRIBED", within=0.2)
    assert kalshi_sim.tickers[0] in str(caught.value)  # names the books it does hold
    assert isinstance(caught.value, TimeoutError)


async def test_async_factory(kalshi_sim_factory: Callable[..., Simulator]) -> None:
    async with kalshi_sim_factory(markets=3, rate=0) as sim:
        assert isinstance(sim, Simulator)
        assert len(sim.tickers) == 3
        async with AsyncKalshiClient(sim.config) as client:
            page = await client.markets.get_markets(limit=10)
    assert {m.ticker for m in page.markets} == set(sim.tickers)
    assert Decimal(page.markets[0].yes_ask_dollars or "0") >= 0


# ------------------------------------------------------------------------------------------- as a user runs it

USER_TESTS = """
from kalshi import KalshiClient, KalshiWebSocket
from kalshi.testing import wait_for_book


def test_plain(kalshi_sim):
    with KalshiClient(kalshi_sim.config) as client:
        assert len(client.markets.get_markets(limit=10).markets) == len(kalshi_sim.tickers)


async def test_async(kalshi_sim):
    auth, _account = kalshi_sim.create_account_auth()
    async with KalshiWebSocket(auth, kalshi_sim.config).connect() as session:
        await session.orderbook([kalshi_sim.tickers[0]])
        book = await wait_for_book(session, kalshi_sim.tickers[0])
    assert book.market_ticker == kalshi_sim.tickers[0]
"""


def test_the_installed_plugin_serves_a_users_project(tmp_path: Path) -> None:
    """A project of its own (no conftest of ours) gets the fixtures from the entry point alone."""
    (tmp_path / "test_bot.py").write_text(textwrap.dedent(USER_TESTS))
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\nfilterwarnings = error\n"
    )
    env: dict[str, Any] = {**os.environ, "PYTHONPATH": ""}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
