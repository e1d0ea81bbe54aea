"""Messages per second one simulator process sustains to one consumer in another process.

Two modes, each with a picows consumer in a separate process that counts the text frames it receives:

* ``firehose``: pre-encoded orderbook deltas pushed through the real fan-out (seq spliced per subscription),
  outbox and writer (``kalshi.sim.ws.firehose``); the consumer times a fixed number of frames.
* ``engine``: seeded market activity as fast as the engine runs (``sim.step``), every public market feed
  (orderbook_delta, ticker, trade) of every market to the consumer; counted for a fixed time.

Run: ``.venv/bin/python bench/sim_rate.py [--frames 2000000] [--seconds 3] [--mode both]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

FIREHOSE_TARGET = 100_000


# -- consumer (child process) -------------------------------------------------------------------------------


async def consume(url: str, subscribe: dict[str, Any], expect: int, seconds: float) -> dict[str, float]:
    """Connect, subscribe, count frames until ``expect`` arrived or ``seconds`` passed since the first one."""
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    done = asyncio.get_running_loop().create_future()

    class Counter(WSListener):
        def __init__(self) -> None:
            self.frames = 0
            self.bytes = 0
            self.first = 0.0
            self.bad = 0

        def on_ws_connected(self, transport: WSTransport) -> None:
            transport.send(WSMsgType.TEXT, json.dumps({"id": 1, "cmd": "subscribe", "params": subscribe}).encode())

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type is not WSMsgType.TEXT:
                return
            payload = frame.get_payload_as_memoryview()
            if not self.frames:
                self.first = time.perf_counter()
            self.frames += 1
            self.bytes += len(payload)
            if self.frames % 50_000 == 1:
                try:
                    json.loads(bytes(payload))
                except ValueError:
                    self.bad += 1
            elapsed = time.perf_counter() - self.first
            if (self.frames >= expect or elapsed >= seconds) and not done.done():
                done.set_result(elapsed)

    transport, listener = await ws_connect(Counter, url, max_frame_size=1 << 24)
    elapsed = await done
    transport.disconnect()
    return {"frames": listener.frames, "seconds": elapsed, "bytes": listener.bytes, "bad": listener.bad}


def consumer_main(argv: list[str]) -> None:
    url, params, expect, seconds = argv[0], json.loads(argv[1]), int(argv[2]), float(argv[3])
    result = asyncio.run(consume(url, params, expect, seconds))
    sys.stdout.write(json.dumps(result) + "\n")


# -- server (parent process) --------------------------------------------------------------------------------


async def run_mode(mode: str, frames: int, seconds: float) -> dict[str, float]:
    from kalshi.sim import Simulator
    from kalshi.sim.ws.firehose import firehose

    async with Simulator(seed=1, markets=8, open_access=True, lifecycle=False, outbox_limit=1_000_000) as sim:
        if mode == "firehose":
            params: dict[str, Any] = {"channels": ["orderbook_delta"], "market_ticker": sim.tickers[0]}
            expect, limit = frames + 1, 600.0  # +1: the snapshot
        else:
            params = {"channels": ["orderbook_delta", "ticker", "trade"], "market_tickers": sim.tickers}
            expect, limit = 1 << 62, seconds
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--consume",
            sim.ws_url,
            json.dumps(params),
            str(expect),
            str(limit),
            stdout=asyncio.subprocess.PIPE,
        )
        while True:  # until the consumer has subscribed
            if sim.hub.subscriber_count("orderbook_delta"):
                break
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        actions = 0
        if mode == "firehose":
            await firehose(sim, sim.tickers[0], frames=frames)
        else:
            while child.returncode is None and time.perf_counter() - started < seconds + 5:
                # Bounded by the consumer: keep the outbox from growing without limit.
                if all(len(c.outbox.frames) < 50_000 for c in sim.connections()):
                    sim.step(200)
                    actions += 200
                await asyncio.sleep(0)
                if child.stdout is not None and child.stdout.at_eof():
                    break
        out, _ = await child.communicate()
        result: dict[str, float] = json.loads(out)
        result["server_seconds"] = time.perf_counter() - started
        result["actions"] = actions
        return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--consume":
        consumer_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("firehose", "engine", "both"), default="both")
    parser.add_argument("--frames", type=int, default=2_000_000, help="firehose frames")
    parser.add_argument("--seconds", type=float, default=3.0, help="engine-mode duration")
    args = parser.parse_args()
    modes = ("firehose", "engine") if args.mode == "both" else (args.mode,)
    print(f"{'mode':<10}{'frames':>12}{'seconds':>10}{'msg/s':>12}{'MB/s':>8}  notes")
    for mode in modes:
        r = asyncio.run(run_mode(mode, args.frames, args.seconds))
        rate = r["frames"] / r["seconds"] if r["seconds"] else 0.0
        notes = f"avg {r['bytes'] / max(r['frames'], 1):.0f} B/frame"
        if mode == "engine":
            notes += f", {r['actions'] / r['server_seconds']:,.0f} engine actions/s"
        else:
            notes += f", target {FIREHOSE_TARGET:,} msg/s: {'met' if rate >= FIREHOSE_TARGET else 'NOT met'}"
        if r["bad"]:
            notes += f", {r['bad']:.0f} unparsable sampled frames"
        print(
            f"{mode:<10}{r['frames']:>12,.0f}{r['seconds']:>10.2f}{rate:>12,.0f}{r['bytes'] / r['seconds'] / 1e6:>8.1f}  {notes}"
        )


if __name__ == "__main__":
    main()
