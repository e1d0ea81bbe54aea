"""Frames per second the recorder sustains to disk, and bytes per frame on disk.

1. ``synthetic``: realistic frames (orderbook deltas, tickers and trades over 50 markets, every frame different)
   are built first, then fed to ``Recorder.add_frame`` as fast as possible. Timed until ``close()`` has written
   and renamed every file, so the figure is what reaches the disk, not what was queued.
2. ``e2e``: a simulator in another process pushes orderbook deltas (``kalshi.sim.ws.firehose``) to a
   ``KalshiWebSocket`` in this process, with the recorder as its raw frame tap (``kalshi.record.capture``, as
   ``kalshi record`` runs it): transport, protocol, order book and recorder on one core. Timed from the first
   frame to the last one on disk.

Run: ``.venv/bin/python bench/record_rate.py [--frames 500000] [--e2e-frames 300000] [--mode both]``
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from kalshi._fixed import format_count, format_price


def synthetic_frames(count: int, seed: int = 1) -> list[bytes]:
    """Frames shaped like a busy feed: 80% deltas, 15% tickers, 5% trades; seq per sid, ms timestamps."""
    rng = random.Random(seed)
    markets = [f"KXSYN-{i // 5:02d}-T{4000 + 25 * (i % 5)}" for i in range(50)]
    ids = {m: f"{rng.getrandbits(128):032x}" for m in markets}
    encode = msgspec.json.encode
    seqs = {1: 0, 3: 0}
    ts = 1_760_000_000_000
    out: list[bytes] = []
    for _ in range(count):
        ts += rng.randint(0, 2)
        market = rng.choice(markets)
        roll = rng.random()
        if roll < 0.80:
            seqs[1] += 1
            body = {
                "market_ticker": market,
                "market_id": ids[market],
                "price_dollars": format_price(rng.randint(100, 9900)),
                "delta_fp": format_count(rng.choice((-1, 1)) * rng.randint(1, 50_000)),
                "side": rng.choice(("yes", "no")),
                "ts_ms": ts,
            }
            out.append(encode({"type": "orderbook_delta", "sid": 1, "seq": seqs[1], "msg": body}))
        elif roll < 0.95:
            bid = rng.randint(100, 9800)
            body = {
                "market_ticker": market,
                "market_id": ids[market],
                "price_dollars": format_price(bid + rng.randint(0, 100)),
                "yes_bid_dollars": format_price(bid),
                "yes_ask_dollars": format_price(bid + rng.randint(1, 200)),
                "volume_fp": format_count(rng.randint(0, 10**8)),
                "open_interest_fp": format_count(rng.randint(0, 10**7)),
                "ts_ms": ts,
            }
            out.append(encode({"type": "ticker", "sid": 2, "msg": body}))
        else:
            seqs[3] += 1
            price = rng.randint(100, 9900)
            body = {
                "trade_id": f"{rng.getrandbits(128):032x}",
                "market_ticker": market,
                "yes_price_dollars": format_price(price),
                "no_price_dollars": format_price(10_000 - price),
                "count_fp": format_count(rng.randint(1, 100_000)),
                "taker_side": rng.choice(("yes", "no")),
                "ts_ms": ts,
            }
            out.append(encode({"type": "trade", "sid": 3, "seq": seqs[3], "msg": body}))
    return out


def bench_synthetic(count: int) -> None:
    from kalshi.record import Recorder

    frames = synthetic_frames(count)
    raw = sum(map(len, frames))
    with tempfile.TemporaryDirectory() as tmp:
        recorder = Recorder(Path(tmp) / "rec")
        recorder.start()
        add = recorder.add_frame
        recorder.add_frame(b'{"type":"subscribed","id":1,"msg":{"channel":"orderbook_delta","sid":1}}')
        start = time.perf_counter()
        now = time.time_ns()
        for frame in frames:
            add(frame, now)
        queued = time.perf_counter() - start
        stats = recorder.close()
        total = time.perf_counter() - start
    print(f"synthetic: {count:,} frames, {raw / count:.0f} bytes/frame as received")
    print(f"  add_frame (hot path, batches handed to the writer): {count / queued:>12,.0f} frames/s")
    print(f"  sustained to disk (until close() returned):         {count / total:>12,.0f} frames/s")
    print(
        f"  on disk: {stats.file_bytes / count:.1f} bytes/frame ({raw / stats.file_bytes:.1f}x smaller), "
        f"{len(stats.files)} file(s), {stats.row_groups} row groups, zstd"
    )


SERVE = """
import asyncio, sys
from kalshi.sim import Simulator
from kalshi.sim.ws.firehose import firehose

async def main(frames):
    async with Simulator(seed=1, markets=2, rate=0.0, open_access=True) as sim:
        print(sim.url, sim.tickers[0], flush=True)
        while not any(c.session.subscriptions for c in sim.connections()):
            await asyncio.sleep(0.01)
        await firehose(sim, sim.tickers[0], frames=frames)
        await sim.quiesce(60)
        await asyncio.sleep(3600)

asyncio.run(main(int(sys.argv[1])))
"""


async def record_e2e(url: str, ticker: str, frames: int, out: Path) -> tuple[float, float, int, int, int]:
    from kalshi.config import KalshiConfig
    from kalshi.record import Recorder, capture

    recorder = Recorder(out)
    recorder.start()
    first: list[float] = []

    def progress(_: object) -> None:
        if not first and recorder.stats.frames > 2:
            first.append(time.perf_counter())

    start = time.perf_counter()
    # +2: the `subscribed` answer and the initial snapshot come before the deltas.
    await capture(
        recorder,
        config=KalshiConfig.local(url),
        auth=None,
        channels=["orderbook_delta"],
        markets=[ticker],
        max_frames=frames + 2,
        on_progress=progress,
        progress_interval=0.05,
    )
    received = time.perf_counter()
    stats = recorder.close()
    done = time.perf_counter()
    began = first[0] if first else start
    return received - began, done - began, stats.frames, stats.frame_bytes, stats.file_bytes


def bench_e2e(frames: int) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(frames)], stdout=subprocess.PIPE, text=True, stderr=subprocess.DEVNULL
    )
    try:
        assert server.stdout is not None
        url, ticker = server.stdout.readline().split()
        with tempfile.TemporaryDirectory() as tmp:
            receive_s, total_s, count, raw, on_disk = asyncio.run(record_e2e(url, ticker, frames, Path(tmp) / "rec"))
    finally:
        server.kill()
        server.wait()
    print(f"e2e (simulator firehose in another process -> KalshiWebSocket -> Recorder): {count:,} frames")
    print(f"  received and recorded:            {count / receive_s:>12,.0f} frames/s")
    print(f"  including the final flush/close:  {count / total_s:>12,.0f} frames/s")
    print(f"  on disk: {on_disk / count:.1f} bytes/frame ({raw / count:.0f} bytes/frame as received)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=500_000, help="synthetic frames")
    parser.add_argument("--e2e-frames", type=int, default=300_000, help="frames pushed by the simulator")
    parser.add_argument("--mode", choices=("synthetic", "e2e", "both"), default="both")
    args = parser.parse_args()
    if args.mode in ("synthetic", "both"):
        bench_synthetic(args.frames)
    if args.mode in ("e2e", "both"):
        bench_e2e(args.e2e_frames)


if __name__ == "__main__":
    main()
