"""REST latency and throughput against the local simulator: our AsyncKalshiClient versus plain httpx.

The simulator runs in its own process (seeded activity gives the book some depth; rate limits off). In this
process two clients take turns on the same keep-alive connection setup:

* ``AsyncKalshiClient``: signing, rate limiter (unlimited), retry policy, error checks, typed msgspec decoding;
* ``httpx + hand signing``: ``httpx.AsyncClient`` with Ed25519 signing written out here (no kalshi.auth) and
  ``response.json()``.

Operations: ``GET /markets/{ticker}/orderbook`` and ``POST /portfolio/events/orders`` (a 1-contract bid at
$0.01 that rests, with a fresh client_order_id). Each cell runs sequential requests (one in flight:
p50/p99 latency and requests/s) and then a concurrent burst (``--concurrency`` in flight: requests/s). Cells
alternate between the two clients over several rounds so drift hits both alike.

Run: ``.venv/bin/python bench/rest_latency.py [--requests 1000] [--rounds 3] [--concurrency 16]``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import multiprocessing as mp
import statistics
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

KEY_ID = "bench-key"
PREFIX = "/trade-api/v2"
QUIET = "KXBENCH-26-T1"


# -- the simulator (child process) --------------------------------------------------------------------------


async def _serve(public_pem: str, pipe: Connection) -> None:
    from kalshi.sim import Simulator, rest_controls
    from kalshi.sim.engine import EventSpec, MarketSpec

    async with Simulator(seed=1, markets=8, rate=0) as sim:
        rest_controls(sim).limits.enabled = False
        sim.step(3000)
        sim.register_key(KEY_ID, public_pem, account="bench")
        sim.do(lambda e: e.add_event(EventSpec(event_ticker="KXBENCH-26", series_ticker="KXBENCH", title="Bench")))
        sim.do(
            lambda e: e.add_market(
                MarketSpec(ticker=QUIET, event_ticker="KXBENCH-26", series_ticker="KXBENCH", title="Bench market")
            )
        )
        busy = max(sim.tickers, key=lambda t: sum(len(side) for side in sim.engine.book_levels(t)))
        levels = sum(len(side) for side in sim.engine.book_levels(busy))
        pipe.send((sim.url, busy, levels))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, pipe.recv)  # any message: stop


def _child(public_pem: str, pipe: Connection) -> None:
    asyncio.run(_serve(public_pem, pipe))


# -- hand-built signing (the baseline) ----------------------------------------------------------------------


class HandSigner:
    """Kalshi request signing written out with ``cryptography`` alone: Ed25519 over ``{ts}{METHOD}{path}``."""

    def __init__(self, private_pem: bytes) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        key = load_pem_private_key(private_pem, password=None)
        assert isinstance(key, Ed25519PrivateKey)
        self._key = key

    def headers(self, method: str, path: str) -> dict[str, str]:
        ts = str(time.time_ns() // 1_000_000)
        signature = self._key.sign(f"{ts}{method}{path}".encode())
        return {
            "KALSHI-ACCESS-KEY": KEY_ID,
            "KALSHI-ACCESS-TIMESTAMP": ts,
            "KALSHI-ACCESS-SIGNATURE": base64.b64encode(signature).decode(),
        }


# -- measuring ----------------------------------------------------------------------------------------------

Call = Callable[[], Awaitable[object]]


async def sequential(call: Call, n: int) -> tuple[list[float], float]:
    """Latencies (seconds) of ``n`` calls made one after another, and the elapsed time."""
    samples = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - t0)
    return samples, time.perf_counter() - start


async def concurrent(call: Call, n: int, width: int) -> float:
    """Elapsed seconds for ``n`` calls with ``width`` in flight."""
    counter = itertools.count()

    async def worker() -> None:
        while next(counter) < n:
            await call()

    start = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(width):
            tg.create_task(worker())
    return time.perf_counter() - start


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(
    url: str, busy: str, private_pem: bytes, args: argparse.Namespace
) -> dict[tuple[str, str], dict[str, Any]]:
    import httpx

    from kalshi.auth import KalshiAuth
    from kalshi.config import KalshiConfig
    from kalshi.rest import AsyncKalshiClient, RateLimiter

    ids = itertools.count()
    config = KalshiConfig.local(url)
    ours = AsyncKalshiClient(
        config, auth=KalshiAuth.from_pem(KEY_ID, private_pem), rate_limiter=RateLimiter.unlimited()
    )
    signer = HandSigner(private_pem)
    plain = httpx.AsyncClient(headers={"Accept": "application/json"})
    book_path = f"{PREFIX}/markets/{busy}/orderbook"
    order_path = f"{PREFIX}/portfolio/events/orders"

    def order_body() -> dict[str, Any]:
        return {
            "ticker": QUIET,
            "side": "bid",
            "count": "1.00",
            "price": "0.0100",
            "time_in_force": "good_till_canceled",
            "self_trade_prevention_type": "taker_at_cross",
            "client_order_id": f"bench-{next(ids)}",
        }

    async def ours_book() -> object:
        return await ours.markets.get_market_orderbook(busy)

    async def plain_book() -> object:
        response = await plain.get(url + book_path, headers=signer.headers("GET", book_path))
        response.raise_for_status()
        return response.json()

    async def ours_order() -> object:
        return await ours.orders.create_order_v2(**order_body())

    async def plain_order() -> object:
        body = json.dumps(order_body()).encode()
        headers = {**signer.headers("POST", order_path), "Content-Type": "application/json"}
        response = await plain.post(url + order_path, content=body, headers=headers)
        response.raise_for_status()
        return response.json()

    cells: dict[tuple[str, str], Call] = {
        ("GET orderbook", "AsyncKalshiClient"): ours_book,
        ("GET orderbook", "httpx + hand signing"): plain_book,
        ("POST order", "AsyncKalshiClient"): ours_order,
        ("POST order", "httpx + hand signing"): plain_order,
    }
    results: dict[tuple[str, str], dict[str, Any]] = {k: {"lat": [], "seq_s": 0.0, "conc_s": 0.0} for k in cells}
    try:
        for call in cells.values():  # warm up connections, caches, code paths
            for _ in range(50):
                await call()
        for _ in range(args.rounds):
            for key, call in cells.items():
                samples, elapsed = await sequential(call, args.requests)
                results[key]["lat"] += samples
                results[key]["seq_s"] += elapsed
                results[key]["conc_s"] += await concurrent(call, args.requests, args.concurrency)
    finally:
        await ours.aclose()
        await plain.aclose()
    return results


def report(results: dict[tuple[str, str], dict[str, Any]], args: argparse.Namespace, busy: str, levels: int) -> None:
    n = args.requests * args.rounds
    print(f"REST against the local simulator (separate process); orderbook of {busy} ({levels} levels)")
    print(f"{n} sequential requests per row, then {n} with {args.concurrency} in flight\n")
    header = f"{'operation':<14} {'client':<22} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'req/s @' + str(args.concurrency):>10}"
    print(header)
    print("-" * len(header))
    for (op, client), r in results.items():
        lat = r["lat"]
        print(
            f"{op:<14} {client:<22} {n / r['seq_s']:>8.0f} {percentile(lat, 0.5) * 1e3:>8.3f} "
            f"{percentile(lat, 0.99) * 1e3:>8.3f} {n / r['conc_s']:>10.0f}"
        )
    print()
    for op in ("GET orderbook", "POST order"):
        ours = results[(op, "AsyncKalshiClient")]["lat"]
        plain = results[(op, "httpx + hand signing")]["lat"]
        delta = (statistics.median(ours) - statistics.median(plain)) * 1e6
        print(f"{op}: our layers add {delta:+.0f} µs at p50 ({delta / (statistics.median(plain) * 1e6):+.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per cell per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    from kalshi.auth import generate_private_key_pem

    private_pem, public_pem = generate_private_key_pem("ed25519")
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=_child, args=(public_pem, child), daemon=True)
    process.start()
    try:
        url, busy, levels = parent.recv()
        private = private_pem.encode() if isinstance(private_pem, str) else private_pem
        results = asyncio.run(run(url, busy, private, args))
        report(results, args, busy, levels)
    finally:
        parent.send("stop")
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()


if __name__ == "__main__":
    main()
