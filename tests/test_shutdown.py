"""Shutdown and leaks: a session cancelled at random points, a thousand times, leaves nothing behind.

Each round opens a KalshiWebSocket session against a live simulator (seeded activity) and cancels its task at a
chosen point: before it starts, or once it reached a chosen phase (connecting, subscribing, streaming books,
closing the ``connect()`` block) plus a seeded number of event-loop steps, so the cancellation lands anywhere
inside that phase. The points are driven by the session's own progress (events), not by wall-clock delays, so
what the test checks does not depend on the machine's load. Afterwards: no task is
left pending, no socket is left unclosed (ResourceWarning is an error in this suite; ``gc.collect()`` makes any
unclosed one speak up), the simulator sees every connection closed, and the process holds no more file
descriptors than before.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import random
from collections import Counter
from collections.abc import Callable

import psutil
import pytest

from conftest import FAST_RETRIES
from kalshi.auth import KalshiAuth
from kalshi.config import KalshiConfig
from kalshi.sim import Simulator
from kalshi.ws import KalshiWebSocket
from kalshi.ws.transport import open_connection

ROUNDS = 1000


PHASES = ("connecting", "subscribing", "streaming", "closing")


class Stages:
    """The phases a session reached, in order, with an event per phase for the test to cancel on."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.events = {phase: asyncio.Event() for phase in (*PHASES, "closed")}

    def enter(self, phase: str) -> None:
        self.seen.append(phase)
        self.events[phase].set()

    @property
    def last(self) -> str:
        return self.seen[-1] if self.seen else "not started"


async def one_session(config: KalshiConfig, auth: KalshiAuth | None, tickers: list[str], stages: Stages) -> None:
    """What an application does: connect, subscribe, read some books, ask the server something, leave."""
    stages.enter("connecting")
    ws = KalshiWebSocket(auth=auth, config=config, rng=random.Random(1))
    async with ws.connect() as session:
        stages.enter("subscribing")
        books = await session.orderbook(tickers)
        await session.subscribe_ticker(tickers=tickers)
        if auth is not None:
            await session.subscribe_fill()
        stages.enter("streaming")
        received = 0
        async for _ in books:
            received += 1
            if received >= 10:
                break
        await session.list_subscriptions()
        stages.enter("closing")
    stages.enter("closed")


async def reach(stages: Stages, phase: str, task: asyncio.Task[None]) -> None:
    """Wait (bounded) until the session entered ``phase``; a session that failed before it fails the test."""
    entered = asyncio.ensure_future(stages.events[phase].wait())
    try:
        done, _ = await asyncio.wait({entered, task}, timeout=30.0, return_when=asyncio.FIRST_COMPLETED)
    finally:
        entered.cancel()
    if task in done and not stages.events[phase].is_set():
        task.result()  # raises what the session raised
        raise AssertionError(f"the session ended without entering {phase}: {stages.seen}")
    assert done, f"the session did not enter {phase} within 30 s: {stages.seen}"


async def settle(sim: Simulator, baseline: set[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    """Wait (bounded) until the simulator saw every connection close and only the baseline tasks remain."""
    current = asyncio.current_task()
    leftover: set[asyncio.Task[object]] = set()
    for _ in range(500):
        leftover = {t for t in asyncio.all_tasks() if t is not current and t not in baseline and not t.done()}
        if not sim.connection_ids() and not leftover:
            break
        await asyncio.sleep(0.01)
    return leftover


@pytest.mark.slow
async def test_cancelling_a_session_anywhere_leaves_no_task_socket_or_fd(
    kalshi_sim_factory: Callable[..., Simulator],
) -> None:
    async with kalshi_sim_factory(seed=31, markets=4, rate=2000.0, open_access=True, lifecycle=False) as sim:
        auth, _ = sim.create_account_auth()
        config = sim.config.with_options(**FAST_RETRIES)
        tickers = sim.tickers
        process = psutil.Process()
        baseline = set(asyncio.all_tasks())
        # Warm up lazily created things (SSL contexts, import-time caches) before counting descriptors.
        for _ in range(5):
            await one_session(config, auth, tickers, Stages())
        assert not await settle(sim, baseline)
        gc.collect()
        fds_before = process.num_fds()
        rng = random.Random(31)
        reached: Counter[str] = Counter()
        outcomes: Counter[str] = Counter()
        for round_number in range(ROUNDS):
            stages = Stages()
            signer = auth if round_number % 4 == 0 else None  # a quarter signed (RSA-free Ed25519 keys: fast)
            task = asyncio.create_task(one_session(config, signer, tickers, stages))
            target = "not started" if round_number % 20 == 0 else PHASES[round_number % len(PHASES)]
            # Every other round cancels on entering the phase; the rest a seeded number of loop steps later, so
            # the cancellations also land deeper inside each phase (at whatever await it has reached).
            steps = 0 if rng.random() < 0.5 else rng.randrange(1, 40)
            certain = target == "not started" or (steps == 0 and target != "closing")
            outcomes["certain"] += certain
            if target != "not started":
                await reach(stages, target, task)
                for _ in range(steps):
                    await asyncio.sleep(0)
            task.cancel()
            try:
                await task
                outcomes["finished"] += 1
            except asyncio.CancelledError:
                outcomes["cancelled"] += 1
                if certain and target != "not started":
                    # Cancelled in the same loop step it entered the phase: it cannot have left it (each phase
                    # waits for the network) and the cancellation must not be swallowed.
                    assert stages.last == target, (round_number, target, stages.seen)
            else:
                # Only a cancellation landing after the last await may let a session finish.
                assert not certain, (round_number, target, stages.seen)
            reached[stages.last] += 1
            if round_number % 100 == 99:
                leftover = await settle(sim, baseline)
                # A connection the simulator still serves is a client socket nobody closed (its tasks are the
                # simulator's writer/ping/request tasks); check it first, it names the real problem.
                assert not sim.connection_ids(), (
                    f"after {round_number + 1} rounds the simulator still serves {len(sim.connection_ids())} "
                    f"connection(s) of cancelled sessions: their client sockets were never closed ({reached})"
                )
                assert not leftover, f"round {round_number}: tasks left pending: {leftover}"
        leftover = await settle(sim, baseline)
        assert sim.connection_ids() == [], "the simulator still sees open connections"
        assert not leftover, f"tasks left pending: {leftover}"
        gc.collect()
        fds_after = process.num_fds()
    assert fds_after <= fds_before + 3, f"file descriptors grew from {fds_before} to {fds_after}"
    # Rounds cancelled before starting, and on entering connecting/subscribing/streaming, are cancelled for sure.
    assert outcomes["cancelled"] >= outcomes["certain"] >= ROUNDS // 3, outcomes
    assert reached["not started"] == ROUNDS // 20, reached
    # The cancellations landed in every phase of a session.
    for phase in PHASES:
        assert reached[phase] >= 20, reached


async def test_cancelled_during_the_upgrade_the_socket_is_closed_when_the_answer_comes() -> None:
    """Deterministic form of what the random rounds find: the caller is cancelled after the upgrade request went
    out and before the 101 answer arrived. When the answer does arrive, nobody owns the connection: it must be
    closed, not left open (picows completes the handshake behind asyncio.shield and then calls
    on_ws_connected on the abandoned listener, which starts the heartbeat and keeps the socket alive)."""
    request_seen = asyncio.Event()
    answer = asyncio.Event()
    client_gone = asyncio.Event()

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key")
        )
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        request_seen.set()
        await answer.wait()
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await writer.drain()
        try:
            while await reader.read(1024):
                pass  # the client's close frame or pings; EOF when its socket closes
        except ConnectionError:
            pass
        client_gone.set()
        writer.close()

    listening = await asyncio.start_server(server, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    async with listening:
        connecting = asyncio.create_task(
            open_connection(
                f"ws://127.0.0.1:{port}/trade-api/ws/v2",
                headers={},
                on_frame=lambda _data: None,
                on_close=lambda _info: None,
                connect_timeout=30.0,  # picows' own handshake timer must not be what closes it
                heartbeat_interval=0.2,
                heartbeat_timeout=30.0,
            )
        )
        await asyncio.wait_for(request_seen.wait(), 5)
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connecting
        answer.set()
        await asyncio.wait_for(client_gone.wait(), 3)  # fails while the abandoned connection stays open
        gc.collect()
