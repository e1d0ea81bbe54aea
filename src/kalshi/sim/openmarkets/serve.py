"""Running the local OpenMarkets server as a program (``python -m kalshi.sim.openmarkets``) or a task."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from kalshi.sim.openmarkets.server import DEMO_API_KEY, OpenMarketsServer

__all__ = ["run_openmarkets_server", "serve_openmarkets"]


async def serve_openmarkets(
    host: str = "127.0.0.1",
    port: int = 8766,
    seed: int = 0,
    *,
    contests: int = 8,
    rate: float = 5.0,
    echo: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
    started: Callable[[OpenMarketsServer], None] | None = None,
) -> None:
    """Run a server until ``stop`` is set (or forever), printing how to connect.

    Raises:
        OSError: the port cannot be bound.
    """
    async with OpenMarketsServer(seed=seed, contests=contests, rate=rate, host=host, port=port) as server:
        echo(f"OpenMarkets server: {server.url}")
        echo(f"REST base:          {server.rest_url}")
        echo(f"demo api key:       {DEMO_API_KEY} (the simulator's public key)")
        echo(f"contests:           {', '.join(server.contest_ids)}")
        if started is not None:
            started(server)
        await (stop or asyncio.Event()).wait()


def run_openmarkets_server(host: str = "127.0.0.1", port: int = 8766, seed: int = 0, **options: Any) -> None:
    """Run the local OpenMarkets server until Ctrl-C (``python -m kalshi.sim.openmarkets``).

    Args:
        host: interface to bind.
        port: TCP port.
        seed: seeds contests and activity.
        **options: passed to :func:`serve_openmarkets` (``contests``, ``rate``, ``echo``).

    Raises:
        OSError: the port cannot be bound.
    """
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_openmarkets(host, port, seed, **options))
