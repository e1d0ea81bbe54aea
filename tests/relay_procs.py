"""Processes of the relay fault test: ``python tests/relay_procs.py relay|consumer ...``.

* ``relay REDIS_URL SIM_URL``: a Relay against the simulator; prints ``ready`` once every shard is subscribed,
  runs until stdin closes (or it is killed).
* ``consumer REDIS_URL``: a fan-out RelayClient keeping every book; answers each ``books`` line on stdin with one
  JSON line: its stream position, books (``{ticker: [yes_ticks, no_ticks]}``) and counters.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import msgspec

from kalshi.config import KalshiConfig
from kalshi.relay import Relay, RelayClient
from kalshi.ws.lifecycle import Gap

FAST = {"retry_base_delay": 0.01, "retry_max_delay": 0.1, "ws_max_retries": 100, "timeout": 5.0}


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def relay(redis_url: str, sim_url: str, per_connection: int) -> None:
    config = KalshiConfig.local(sim_url).with_options(**FAST)
    relay = Relay(redis_url, config=config, markets_per_connection=per_connection, checkpoint_interval=0.3, maxlen=None)
    async with relay.running():
        say(f"ready {len(relay.shards)}")
        while await asyncio.to_thread(sys.stdin.readline):
            pass


async def consumer(redis_url: str) -> None:
    async with RelayClient(redis_url, block_ms=50).connect() as feed:
        events = feed.lifecycle_events()
        reasons: dict[str, int] = {}

        async def count() -> None:
            async for event in events:
                if isinstance(event, Gap):
                    reasons[event.reason] = reasons.get(event.reason, 0) + 1

        counting = asyncio.create_task(count())
        await feed.orderbook(None)
        say("ready")
        while line := await asyncio.to_thread(sys.stdin.readline):
            if line.strip() != "books":
                continue
            books = {t: [list(b.yes_ticks), list(b.no_ticks)] for t, b in feed.books.items()}
            builder = feed.builder
            report: dict[str, Any] = {
                "position": feed.position("orderbook_delta"),
                "books": books,
                "missing": feed.missing_entries,
                "reconnects": feed.reconnects,
                "gaps": reasons,
                "stats": msgspec.structs.asdict(builder.stats) if builder else {},
            }
            say(msgspec.json.encode(report).decode())
        counting.cancel()


def main() -> None:
    role = sys.argv[1]
    if role == "relay":
        asyncio.run(relay(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    elif role == "consumer":
        asyncio.run(consumer(sys.argv[2]))
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main()
