"""Helpers for the relay tests: read back the RESP commands a RelayCore produced, as Redis would run them."""

from __future__ import annotations

import asyncio
from typing import Any

from kalshi.relay.core import RelayCore
from kalshi.relay.publisher import Publisher


def parse_commands(data: bytes) -> list[list[bytes]]:
    """RESP arrays of bulk strings -> argument lists."""
    commands = []
    pos = 0
    while pos < len(data):
        assert data[pos : pos + 1] == b"*", data[pos : pos + 20]
        end = data.index(b"\r\n", pos)
        count = int(data[pos + 1 : end])
        pos = end + 2
        args = []
        for _ in range(count):
            assert data[pos : pos + 1] == b"$"
            end = data.index(b"\r\n", pos)
            size = int(data[pos + 1 : end])
            args.append(data[end + 2 : end + 2 + size])
            assert data[end + 2 + size : end + 4 + size] == b"\r\n"
            pos = end + 4 + size
        commands.append(args)
    return commands


class FakeRedisStore:
    """What the commands would leave in Redis: streams as lists of (id, fields), plain keys. Only for reading
    a sans-I/O core's output in unit tests; the end-to-end tests use a real redis-server."""

    def __init__(self) -> None:
        self.streams: dict[str, list[tuple[str, dict[bytes, bytes]]]] = {}
        self.keys: dict[str, bytes] = {}

    def run(self, commands: list[bytes]) -> None:
        for args in parse_commands(b"".join(commands)):
            name = args[0].upper()
            if name == b"XADD":
                key = args[1].decode()
                rest = args[2:]
                if rest[0].upper() == b"MAXLEN":
                    rest = rest[3:]
                entry_id = rest[0].decode()
                fields = {rest[i]: rest[i + 1] for i in range(1, len(rest), 2)}
                self.streams.setdefault(key, []).append((entry_id, fields))
            elif name == b"SET":
                self.keys[args[1].decode()] = args[2]

    def drain(self, core: RelayCore) -> None:
        items = core.buffer.take(len(core.buffer))
        self.run(items)
        core.buffer.ack(len(items))


def frame(kind: str, sid: int, seq: int | None, **msg: Any) -> bytes:
    import msgspec

    body: dict[str, Any] = {"type": kind, "sid": sid, "msg": msg}
    if seq is not None:
        body["seq"] = seq
    return msgspec.json.encode(body)


def snapshot(sid: int, seq: int, ticker: str, yes: list[tuple[str, str]], no: list[tuple[str, str]]) -> bytes:
    return frame(
        "orderbook_snapshot",
        sid,
        seq,
        market_ticker=ticker,
        market_id="m-" + ticker,
        yes_dollars_fp=[list(level) for level in yes],
        no_dollars_fp=[list(level) for level in no],
    )


def delta(sid: int, seq: int, ticker: str, price: str, change: str, side: str = "yes") -> bytes:
    return frame(
        "orderbook_delta",
        sid,
        seq,
        market_ticker=ticker,
        market_id="m-" + ticker,
        price_dollars=price,
        delta_fp=change,
        side=side,
    )


async def write_out(url: str, core: RelayCore) -> None:
    """Everything ``core`` holds, written to the Redis at ``url`` and acknowledged by it."""
    publisher = Publisher(url, core.buffer, batch=64)
    task = asyncio.create_task(publisher.run())
    try:
        publisher.wake()
        assert await publisher.drained(10.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await publisher.aclose()
