"""Helpers for the CLI tests: a simulator on its own thread and event loop.

The commands run ``asyncio.run`` themselves (typer's CliRunner calls them synchronously), so a simulator they
talk to must live on another loop. ``SimThread`` runs one on a background thread; ``call`` runs code on that
loop (the simulator is not thread-safe).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pytest

from kalshi.sim import Simulator

T = TypeVar("T")


class SimThread:
    """``with SimThread(seed=1, rate=100, open_access=True) as st:`` -> ``st.url``, ``st.call(fn)``."""

    def __init__(self, **options: Any) -> None:
        self.options = {"port": 0, **options}
        self.sim: Simulator | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sim-thread", daemon=True)

    def __enter__(self) -> SimThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the simulator thread did not start")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive(), "the simulator thread did not stop"

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to the test thread
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with Simulator(**self.options) as sim:
            self.sim = sim
            self.loop = asyncio.get_running_loop()
            self._ready.set()
            await self._stop.wait()

    @property
    def url(self) -> str:
        assert self.sim is not None
        return self.sim.url

    def call(self, fn: Callable[[Simulator], T]) -> T:
        """Run ``fn(sim)`` on the simulator's loop and return its result."""
        assert self.loop is not None and self.sim is not None
        sim = self.sim

        async def run() -> T:
            return fn(sim)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)


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
