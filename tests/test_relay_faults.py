"""The relay's proof: simulator (activity on) -> relay process -> real redis-server -> two consumer processes.

At quiescent points every consumer's books equal the simulator's, before and after a Redis kill-and-restart
(persistence on: what Redis acknowledged survives) and a relay kill-and-restart (consumers see the new run and
rebuild). Afterwards every relay run's entries in Redis are gapless: no acknowledged entry was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis as redis_sync

from kalshi.relay.layout import parse_id
from kalshi.sim import Simulator
from redis_server import RedisServer

pytestmark = pytest.mark.slow

PROCS = str(Path(__file__).with_name("relay_procs.py"))


class Proc:
    """A helper process speaking lines on stdin/stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, *args: str) -> Proc:
        process = await asyncio.create_subprocess_exec(
            sys.executable, PROCS, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        return cls(process)

    async def line(self, limit: float = 20.0) -> str:
        assert self.process.stdout is not None
        async with asyncio.timeout(limit):
            data = await self.process.stdout.readline()
        if not data:
            raise AssertionError(f"helper process ended (exit {await self.process.wait()})")
        return data.decode().strip()

    async def report(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(b"books\n")
        await self.process.stdin.drain()
        return msgspec.json.decode(await self.line())  # type: ignore[no-any-return]

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()

    async def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            async with asyncio.timeout(10):
                await self.process.wait()
        except TimeoutError:
            self.kill()
            await self.process.wait()


@contextlib.asynccontextmanager
async def helper(*args: str) -> AsyncIterator[Proc]:
    proc = await Proc.start(*args)
    try:
        yield proc
    finally:
        await proc.close()


def truth(sim: Simulator) -> dict[str, list[list[list[int]]]]:
    return {t: [[list(x) for x in sim.book(t).yes_ticks], [list(x) for x in sim.book(t).no_ticks]] for t in sim.tickers}


async def poll(proc: Proc, done: Callable[[dict[str, Any]], bool], limit: float = 30.0) -> dict[str, Any]:
    """Ask for reports until ``done(report)``; returns the last report either way (the caller asserts)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    report = await proc.report()
    while not done(report) and loop.time() < deadline:
        await asyncio.sleep(0.05)
        report = await proc.report()
    return report


async def test_books_exact_through_a_redis_restart_and_a_relay_kill(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis", persistent=True) as redis:
        async with Simulator(seed=11, markets=24, rate=400, open_access=True, lifecycle=False) as sim:
            relay = await Proc.start("relay", redis.url, sim.url, "8")
            try:
                assert await relay.line() == "ready 3"  # 24 markets, 8 per connection
                async with helper("consumer", redis.url) as first, helper("consumer", redis.url) as second:
                    consumers = [first, second]
                    for consumer in consumers:
                        assert await consumer.line() == "ready"

                    async def progressed(than: int) -> None:
                        for consumer in consumers:
                            report = await poll(consumer, lambda r: r["stats"].get("deltas", 0) > than + 200)
                            assert report["stats"]["deltas"] > than + 200, report["stats"]

                    async def exact(label: str) -> int:
                        await sim.quiesce()
                        want = truth(sim)
                        deltas = 0
                        for consumer in consumers:
                            report = await poll(consumer, lambda r: r["books"] == want)
                            wrong = sorted(t for t in want if report["books"].get(t) != want[t])
                            assert wrong == [], f"{label}: {len(wrong)} mismatched books: {wrong}"
                            assert report["missing"] == 0, f"{label}: entries lost"
                            deltas = max(deltas, report["stats"]["deltas"])
                        sim.resume_activity()
                        return deltas

                    await progressed(0)
                    seen = await exact("steady")

                    redis.restart()  # SIGKILL, then the same port and files
                    await progressed(seen)
                    seen = await exact("after a redis restart")

                    relay.kill()
                    await relay.process.wait()
                    await relay.close()
                    relay = await Proc.start("relay", redis.url, sim.url, "8")
                    assert await relay.line() == "ready 3"
                    await progressed(seen)
                    await exact("after a relay kill")
                    reports = [await consumer.report() for consumer in consumers]
                    for report in reports:
                        assert report["gaps"].get("relay_restart", 0) >= 1  # the consumers saw the new run
                        assert report["reconnects"] >= 1  # and Redis going away
            finally:
                await relay.close()
        client = redis_sync.Redis.from_url(redis.url)
        try:
            runs: dict[int, list[int]] = {}
            for key in client.scan_iter("kalshi:stream:*"):
                runs.clear()
                for entry_id, _ in client.xrange(key):
                    epoch, n = parse_id(entry_id)
                    runs.setdefault(epoch, []).append(n)
                assert len(runs) == 2, key  # two relay runs
                for epoch, numbers in runs.items():
                    assert numbers == list(range(len(numbers))), f"{key!r} run {epoch}: entries missing"
        finally:
            client.close()
