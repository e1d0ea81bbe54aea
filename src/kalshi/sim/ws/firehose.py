"""Firehose mode for benchmarks: pre-encoded book deltas pushed through the real fan-out and writers.

The engine and the JSON encoding are skipped (two payloads are encoded once); what remains is the per-frame
cost of the server: seq splicing per subscription, queueing, framing and socket writes. The deltas alternate
``+1.00`` and ``-1.00`` contracts at one price, so after an even number of frames a client's book equals the
engine's again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgspec

from kalshi._fixed import format_price

if TYPE_CHECKING:
    from kalshi.sim.server import Simulator

__all__ = ["firehose"]


async def firehose(
    sim: Simulator,
    ticker: str,
    *,
    frames: int,
    batch: int = 4096,
    max_queued: int = 32_768,
    price_ticks: int = 100,
) -> int:
    """Publish ``frames`` orderbook deltas of ``ticker`` as fast as the connections drain them.

    Args:
        sim: A running simulator.
        ticker: The market whose ``orderbook_delta`` subscribers receive the frames.
        frames: How many deltas to publish (rounded up to even).
        batch: Deltas published between two yields to the event loop.
        max_queued: Publishing pauses while any connection has more frames than this queued.
        price_ticks: The YES price the deltas move.

    Returns:
        The number of deltas published.

    Raises:
        ValueError: ``frames`` or ``batch`` is below 1, or the market is unknown.
    """
    if frames < 1 or batch < 1:
        raise ValueError("frames and batch must be >= 1")
    market_id = sim.feeds.market_id(ticker)
    if market_id is None:
        raise ValueError(f"unknown market {ticker!r}")
    frames += frames % 2
    payloads = [
        msgspec.json.encode(
            {
                "market_ticker": ticker,
                "market_id": market_id,
                "price_dollars": format_price(price_ticks),
                "delta_fp": delta,
                "side": "yes",
                "ts_ms": 0,
            }
        )
        for delta in ("1.00", "-1.00")
    ]
    publish = sim.hub.publish_book
    typ = b"orderbook_delta"
    connections = sim.connections
    sent = 0
    while sent < frames:
        while True:  # backpressure: let the writers catch up
            if all(len(c.outbox.frames) <= max_queued for c in connections()):
                break
            await asyncio.sleep(0.0005)
        n = min(batch, frames - sent)
        for i in range(sent, sent + n):
            publish(typ, ticker, payloads[i & 1])
        sent += n
        await asyncio.sleep(0)
    return sent
