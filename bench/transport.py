"""Receive throughput of kalshi.ws.transport against a firehose server in another process.

The server (picows, in a separate process so it does not share our CPU time slice) writes N
pre-encoded WebSocket frames of a ~150-byte ticker JSON as fast as the socket takes them. The
client counts frames through ``open_connection`` (on_frame gets a ``bytes`` copy of each
payload) and, as the ceiling, through a bare picows listener that does the same copy and nothing
else. Rounds alternate between the two so load from other processes hits both alike. Last, the
CPU cost of each listener's on_ws_frame alone is timed on a synthetic frame (no socket).

    .venv/bin/python bench/transport.py [--frames 1000000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from multiprocessing.connection import Connection as Pipe

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect, ws_create_server

from kalshi.ws.transport import _Listener, open_connection

CHUNK_FRAMES = 1_000
TICKER = (
    b'{"type":"ticker","sid":1,"msg":{"market_ticker":"KXBTCD-25DEC31-T100000","price_dollars":"0.5600",'
    b'"yes_bid_dollars":"0.5500","ts_ms":1767225600000}}'
)


def encode_frame(payload: bytes) -> bytes:
    """A server-to-client (unmasked) final TEXT frame."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


class Firehose(WSListener):
    """On a TEXT ``go <n>`` from the client, write n frames, respecting TCP flow control."""

    def __init__(self, chunk: bytes) -> None:
        super().__init__()
        self.chunk = chunk
        self.writable = asyncio.Event()
        self.writable.set()
        self.task: asyncio.Task[None] | None = None

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT and frame.get_payload_as_bytes().startswith(b"go "):
            count = int(frame.get_payload_as_bytes()[3:])
            self.task = asyncio.get_running_loop().create_task(self.pour(transport, count))
        elif frame.msg_type is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    async def pour(self, transport: WSTransport, count: int) -> None:
        raw = transport.underlying_transport
        for _ in range(count // CHUNK_FRAMES):
            if not self.writable.is_set():
                await self.writable.wait()
            raw.write(self.chunk)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


def serve(pipe: Pipe) -> None:
    chunk = encode_frame(TICKER) * CHUNK_FRAMES

    async def serve_until_told() -> None:
        server = await ws_create_server(lambda _request: Firehose(chunk), "127.0.0.1", 0)
        pipe.send(server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        server.close()

    asyncio.run(serve_until_told())


class BareCounter(WSListener):
    def __init__(self, target: int, done: asyncio.Future[float]) -> None:
        super().__init__()
        self.count = 0
        self.target = target
        self.done = done

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            frame.get_payload_as_bytes()
            self.count += 1
            if self.count == self.target:
                self.done.set_result(time.perf_counter())


async def round_bare(url: str, frames: int) -> float:
    done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    transport, _ = await ws_connect(lambda: BareCounter(frames, done), url)
    start = time.perf_counter()
    transport.send(WSMsgType.TEXT, f"go {frames}".encode())
    end = await done
    transport.disconnect()
    await transport.wait_disconnected()
    return frames / (end - start)


async def round_kalshi(url: str, frames: int) -> float:
    done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    count = 0

    def on_frame(payload: bytes) -> None:
        nonlocal count
        count += 1
        if count == frames:
            done.set_result(time.perf_counter())

    conn = await open_connection(
        url,
        headers={},
        on_frame=on_frame,
        on_close=lambda info: None,
        connect_timeout=5.0,
        heartbeat_interval=10.0,
        heartbeat_timeout=30.0,
    )
    start = time.perf_counter()
    conn.send(f"go {frames}".encode())
    end = await done
    await conn.close()
    return frames / (end - start)


async def run(url: str, frames: int, rounds: int) -> None:
    print(f"{frames:,} frames of {len(TICKER)} bytes per round, {rounds} rounds, server in another process")
    modes = (("bare picows listener", round_bare), ("kalshi.ws.transport", round_kalshi))
    rates: dict[str, list[float]] = {name: [] for name, _ in modes}
    for _ in range(rounds):
        for name, one_round in modes:
            rates[name].append(await one_round(url, frames))
    for name, got in rates.items():
        print(f"  {name:22s} best {max(got) / 1e6:5.2f}M frames/s   median {statistics.median(got) / 1e6:5.2f}M")


def callback_cost(repeat: int = 1_000_000) -> None:
    """CPU per frame of each listener's on_ws_frame alone, on a synthetic frame."""
    from picows.picows import _make_test_ws_frame  # picows' own test helper

    frame = _make_test_ws_frame(WSMsgType.TEXT, TICKER, True, False)
    sink: list[bytes] = []
    loop = asyncio.new_event_loop()
    try:
        ours = _Listener(
            loop,
            sink.append,
            lambda info: None,
            heartbeat_interval=10.0,
            heartbeat_timeout=30.0,
            max_message_size=1 << 20,
            close_timeout=1.0,
        )
        bare = BareCounter(-1, loop.create_future())
        print("on_ws_frame alone (synthetic frame, no socket):")
        for name, listener in (("bare picows listener", bare), ("kalshi.ws.transport", ours)):
            handler = listener.on_ws_frame
            best = float("inf")
            for _ in range(5):
                sink.clear()
                start = time.perf_counter()
                for _ in range(repeat):
                    handler(None, frame)  # type: ignore[arg-type]  # the transport is unused on this path
                best = min(best, time.perf_counter() - start)
            print(f"  {name:22s} {best / repeat * 1e9:6.0f} ns/frame")
    finally:
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    frames = max(CHUNK_FRAMES, args.frames // CHUNK_FRAMES * CHUNK_FRAMES)

    spawn = multiprocessing.get_context("spawn")
    parent, child = spawn.Pipe()
    server = spawn.Process(target=serve, args=(child,), daemon=True)
    server.start()
    try:
        port = parent.recv()
        asyncio.run(run(f"ws://127.0.0.1:{port}/", frames, args.rounds))
    finally:
        parent.send("stop")
        server.join(timeout=5)
        if server.is_alive():
            server.terminate()
    callback_cost()


if __name__ == "__main__":
    main()
