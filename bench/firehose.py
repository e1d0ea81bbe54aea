"""A Kalshi-shaped firehose WebSocket server for benchmarks, run in its own process (picows).

It speaks just enough of the protocol for a client to subscribe: ``subscribe`` is answered with ``subscribed``
(sids are fixed by the plan: book sid ``1 + market_index // MARKETS_PER_SID``, then ``TICKER_SID``),
``list_subscriptions``/``update_subscription``/``unsubscribe`` with an ``ok``. Once the ``ticker`` subscription
arrives (clients subscribe the order books first), it pours the next run's frames:

* throughput runs: the first ``frames`` frames of the plan, pre-encoded and pre-framed, as fast as TCP takes them;
* paced runs (``rate`` > 0): the same frames at ``rate`` msg/s in ~1 ms batches, recording the monotonic send time
  of every batch, so the parent can compute send-to-iterator latency by ``(sid, seq)`` without changing the
  wire shape (``time.monotonic_ns`` is one system-wide clock on Linux).

The plan (seeded): every market's snapshot first, then 70% ``orderbook_delta``, 28% ``ticker``, 2%
``orderbook_snapshot`` of 20-90 levels, over ``MARKETS`` markets, current fixed-point fields only, ``seq``
continuous per sid. Deltas follow each market's evolving book, so a client that applies them all ends with
books equal to the generator's (sizes never go negative).

Use it through :func:`start` (returns a handle the parent controls over a pipe); ``bench/ws_throughput.py``
does. Run alone (``python bench/firehose.py``) it prints its port and serves until interrupted.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import Any

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

from kalshi._fixed import format_count, format_price

MARKETS = 40
MARKETS_PER_SID = 10
BOOK_SIDS = tuple(range(1, MARKETS // MARKETS_PER_SID + 1))
TICKER_SID = len(BOOK_SIDS) + 1
CHUNK_FRAMES = 1000
BATCH_SECONDS = 0.001


def market_ticker(index: int) -> str:
    return f"KXBTCD-26MAY{2000 + index}-T{95000 + 250 * index}.99"


TICKERS = [market_ticker(i) for i in range(MARKETS)]


class _Book:
    """One market's book as the generator moves it: price ticks -> size units per side."""

    def __init__(self, index: int, rng: random.Random) -> None:
        self.index = index
        self.sid = BOOK_SIDS[index // MARKETS_PER_SID]
        self.ticker = market_ticker(index)
        self.market_id = str(uuid.UUID(int=rng.getrandbits(128)))
        self.rng = rng
        split = rng.randrange(3000, 7000, 10)
        levels = rng.randint(20, 90)
        self.sides = {
            "yes": {p: rng.randint(100, 40_000) for p in rng.sample(range(100, split, 10), levels // 2)},
            "no": {
                p: rng.randint(100, 40_000) for p in rng.sample(range(100, 10_000 - split, 10), levels - levels // 2)
            },
        }
        self.volume = rng.randint(10_000, 9_000_000)

    def move(self) -> tuple[str, int, int]:
        """A random change that keeps every size positive and each side at 10-45 levels."""
        rng = self.rng
        side = rng.choice(("yes", "no"))
        levels = self.sides[side]
        if len(levels) < 45 and (len(levels) <= 10 or rng.random() < 0.1):
            price = rng.randrange(100, 9900, 10)
            while price in levels:
                price = rng.randrange(100, 9900, 10)
        else:
            price = rng.choice(list(levels))
        size = levels.get(price, 0)
        roll = rng.random()
        if size and len(levels) > 10 and roll < 0.1:
            change = -size
        elif size > 1 and roll < 0.55:
            change = -rng.randint(1, size - 1)
        else:
            change = rng.randint(100, 20_000)
        if size + change:
            levels[price] = size + change
        else:
            del levels[price]
        return side, price, change

    def levels(self, side: str) -> list[list[str]]:
        return [[format_price(p), format_count(u)] for p, u in sorted(self.sides[side].items())]


@dataclass
class Plan:
    """Pre-encoded frames and their (sid, seq) (seq is None for tickers)."""

    payloads: list[bytes]
    keys: list[tuple[int, int | None]]
    wire: list[bytes] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)

    @property
    def book_frames(self) -> int:
        return sum(1 for _, seq in self.keys if seq is not None)


def build_plan(count: int, seed: int = 7) -> Plan:
    """The first ``count`` frames of the seeded stream (snapshots of every market first, then the mix)."""
    rng = random.Random(seed)
    books = [_Book(i, rng) for i in range(MARKETS)]
    seqs = dict.fromkeys(BOOK_SIDS, 0)
    encode = json.JSONEncoder(separators=(",", ":")).encode
    ts_ms = 1_779_000_000_000
    payloads: list[bytes] = []
    keys: list[tuple[int, int | None]] = []

    def snapshot(book: _Book) -> None:
        seqs[book.sid] += 1
        body = {"market_ticker": book.ticker, "market_id": book.market_id}
        body["yes_dollars_fp"] = book.levels("yes")  # type: ignore[assignment]  # a JSON body
        body["no_dollars_fp"] = book.levels("no")  # type: ignore[assignment]
        envelope = {"type": "orderbook_snapshot", "sid": book.sid, "seq": seqs[book.sid], "msg": body}
        payloads.append(encode(envelope).encode())
        keys.append((book.sid, seqs[book.sid]))

    for book in books:
        snapshot(book)
    while len(payloads) < count:
        book = rng.choice(books)
        ts_ms += rng.randint(0, 2)
        roll = rng.random()
        if roll < 0.70:
            side, price, change = book.move()
            seqs[book.sid] += 1
            delta = {
                "market_ticker": book.ticker,
                "market_id": book.market_id,
                "price_dollars": format_price(price),
                "delta_fp": format_count(change),
                "side": side,
                "ts_ms": ts_ms,
            }
            envelope: dict[str, Any] = {"type": "orderbook_delta", "sid": book.sid, "seq": seqs[book.sid]}
            envelope["msg"] = delta
            payloads.append(encode(envelope).encode())
            keys.append((book.sid, seqs[book.sid]))
        elif roll < 0.98:
            bid = max(book.sides["yes"])
            ask = 10_000 - max(book.sides["no"])
            book.volume += rng.randint(0, 20_000)
            ticker = {
                "market_id": book.market_id,
                "market_ticker": book.ticker,
                "price_dollars": format_price((bid + ask) // 2),
                "yes_bid_dollars": format_price(bid),
                "yes_ask_dollars": format_price(ask),
                "volume_fp": format_count(book.volume),
                "open_interest_fp": format_count(book.volume // 3),
                "dollar_volume": book.volume // 200,
                "dollar_open_interest": book.volume // 600,
                "yes_bid_size_fp": format_count(book.sides["yes"][bid]),
                "yes_ask_size_fp": format_count(rng.randint(100, 50_000)),
                "last_trade_size_fp": format_count(rng.randint(100, 5_000)),
                "ts": ts_ms // 1000,
                "ts_ms": ts_ms,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ms // 1000)),
            }
            payloads.append(encode({"type": "ticker", "sid": TICKER_SID, "msg": ticker}).encode())
            keys.append((TICKER_SID, None))
        else:
            snapshot(book)
    plan = Plan(payloads, keys)
    plan.wire = [_frame(p) for p in payloads]
    plan.chunks = [b"".join(plan.wire[i : i + CHUNK_FRAMES]) for i in range(0, count, CHUNK_FRAMES)]
    return plan


def _frame(payload: bytes) -> bytes:
    """An unmasked final TEXT frame (server to client)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


@dataclass
class RunSettings:
    frames: int
    rate: float = 0.0  # 0: as fast as possible


@dataclass
class ServerState:
    plan: Plan
    next_run: RunSettings
    send_times: list[tuple[int, int, int]] = field(default_factory=list)  # (first index, end index, ns)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class _Firehose(WSListener):
    def __init__(self, state: ServerState) -> None:
        super().__init__()
        self.state = state
        self.writable = asyncio.Event()
        self.writable.set()
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if kind is not WSMsgType.TEXT:
            return
        command = json.loads(frame.get_payload_as_bytes())
        cmd_id = command.get("id", 0)
        params = command.get("params") or {}
        if command.get("cmd") != "subscribe":
            transport.send(WSMsgType.TEXT, json.dumps({"id": cmd_id, "type": "ok", "msg": []}).encode())
            return
        channel = params["channels"][0]
        if channel == "orderbook_delta":
            sid = BOOK_SIDS[TICKERS.index(params["market_tickers"][0]) // MARKETS_PER_SID]
        else:
            sid = TICKER_SID
        reply = {"id": cmd_id, "type": "subscribed", "msg": {"channel": channel, "sid": sid}}
        transport.send(WSMsgType.TEXT, json.dumps(reply).encode())
        if channel == "ticker":
            task = asyncio.get_running_loop().create_task(self.pour(self.state.next_run))
            self.state.tasks.add(task)
            task.add_done_callback(self.state.tasks.discard)

    async def pour(self, run: RunSettings) -> None:
        assert self.transport is not None
        raw = self.transport.underlying_transport
        plan = self.state.plan
        if run.rate <= 0:
            for chunk in plan.chunks[: run.frames // CHUNK_FRAMES]:
                if not self.writable.is_set():
                    await self.writable.wait()
                if raw.is_closing():
                    return
                raw.write(chunk)
            return
        times = self.state.send_times
        times.clear()
        start = time.monotonic_ns()
        sent = 0
        while sent < run.frames and not raw.is_closing():
            due = min(run.frames, int((time.monotonic_ns() - start) * run.rate / 1e9) + 1)
            if due > sent:
                now = time.monotonic_ns()
                raw.write(b"".join(plan.wire[sent:due]))
                times.append((sent, due, now))
                sent = due
            await asyncio.sleep(BATCH_SECONDS / 2)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


def latency_table(state: ServerState) -> dict[tuple[int, int], int]:
    """Send time (monotonic ns) of every book frame of the last paced run, by (sid, seq)."""
    keys = state.plan.keys
    out: dict[tuple[int, int], int] = {}
    for first, end, ns in state.send_times:
        for index in range(first, end):
            sid, seq = keys[index]
            if seq is not None:
                out[(sid, seq)] = ns
    return out


def _serve(pipe: Pipe, frames: int, seed: int) -> None:
    state = ServerState(build_plan(frames, seed), RunSettings(frames))

    async def serve_until_told() -> None:
        server = await ws_create_server(lambda _request: _Firehose(state), "127.0.0.1", 0)
        pipe.send(server.sockets[0].getsockname()[1])
        loop = asyncio.get_running_loop()
        while True:
            message = await loop.run_in_executor(None, pipe.recv)
            if message[0] == "stop":
                break
            if message[0] == "run":
                state.next_run = RunSettings(*message[1:])
                pipe.send("ok")
            elif message[0] == "times":
                pipe.send(latency_table(state))
        server.close()

    asyncio.run(serve_until_told())


class FirehoseProcess:
    """The server process and its control pipe."""

    def __init__(self, frames: int, seed: int = 7) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, frames, seed), daemon=True)
        self._process.start()
        self.port: int = self._pipe.recv()
        self.url = f"ws://127.0.0.1:{self.port}/trade-api/ws/v2"

    def next_run(self, frames: int, rate: float = 0.0) -> None:
        """Settings of the next pour (started by the next ticker subscription)."""
        self._pipe.send(("run", frames, rate))
        self._pipe.recv()

    def send_times(self) -> dict[tuple[int, int], int]:
        self._pipe.send(("times",))
        table: dict[tuple[int, int], int] = self._pipe.recv()
        return table

    def close(self) -> None:
        self._pipe.send(("stop",))
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.terminate()


def start(frames: int, seed: int = 7) -> FirehoseProcess:
    """Build the plan and serve it from a new process (``frames`` rounded down to whole chunks)."""
    return FirehoseProcess(frames - frames % CHUNK_FRAMES, seed)


if __name__ == "__main__":
    handle = start(100_000)
    print(f"firehose on {handle.url} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        handle.close()
