"""Helpers for the CLI tests: a simulator on its own thread and event loop.

The commands run ``asyncio.run`` themselves (typer's CliRunner calls them synchronously), so a simulator they
talk to must live on another loop. ``SimThread`` runs one on a background thread; ``call`` runs code on that
loop (the simulator is not thread-safe).
"""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from kalshi.sim import Simulator
from kalshi.testing import SimulatorThread


class SimThread(SimulatorThread):
    """``with SimThread(seed=1, rate=100, open_access=True) as st:`` -> ``st.url``, ``st.call(fn)``.

    The plugin's :class:`~kalshi.testing.SimulatorThread`, plus the simulator and its loop for tests that
    schedule their own coroutines there.
    """

    @property
    def sim(self) -> Simulator:
        return self.simulator

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop


def test_sim_thread_serves_then_stops_listening() -> None:
    with SimThread(seed=1, markets=2) as st:
        tickers = st.call(lambda sim: sim.tickers)
        port = int(st.url.rsplit(":", 1)[1])
        # A whole request and answer: the server has finished with the connection before it stops.
        status = httpx.get(f"{st.url}/trade-api/v2/exchange/status", timeout=5)
    assert status.json()["exchange_active"] is True
    assert len(tickers) == 2
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
