"""The chaos run's simulator in a process of its own, driven over a small line-JSON control channel.

Why a separate process: the matching engine and the client would otherwise share one core and one event loop,
which halves the message rate and hides timing problems (a client callback could never race the server). With
two processes the client's RSS is also measured alone.

The child runs :class:`kalshi.sim.Simulator` and a control server on ``127.0.0.1:0``; :class:`RemoteSim` in the
parent calls it (``await remote.call("books")``). Operations are the few the chaos run needs: register a key,
pause/resume/quiesce, read the true books, inject faults, read fault counts and an account's fills, place an
order (fallback when the simulator has no REST order endpoint), and stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import Any, Final

import msgspec

__all__ = ["RemoteError", "RemoteSim", "SimOptions"]

_START_TIMEOUT: Final = 60.0
_LINE_LIMIT: Final = 256 * 1024 * 1024
_encode = msgspec.json.encode
_decode = msgspec.json.decode
# Faults the parent may call by name on sim.faults (refuse_handshakes gets the child's monotonic clock).
_FAULTS: Final = frozenset(
    {
        "drop",
        "drop_all",
        "stall",
        "overflow",
        "refuse_handshakes",
        "stop_refusing",
        "delay_acks",
        "ignore_pings",
        "skip_seq",
        "duplicate",
        "reorder",
        "malformed",
    }
)


@dataclass(frozen=True, slots=True)
class SimOptions:
    """How the child builds its simulator (see :class:`kalshi.sim.Simulator`)."""

    seed: int
    markets: int
    rate: float
    faults: str
    ping_interval: float = 5.0
    ping_timeout: float = 30.0
    outbox_limit: int = 200_000


class RemoteError(RuntimeError):
    """The child answered a call with an error (its message says which)."""


# -- child ----------------------------------------------------------------------------------------------------


def serve(options: dict[str, Any], conn: Connection) -> None:
    """Child entry point: run the simulator until told to stop; sends ``(sim_url, control_port)`` on ``conn``."""
    try:
        asyncio.run(_serve(SimOptions(**options), conn))
    finally:
        conn.close()


async def _serve(options: SimOptions, conn: Connection) -> None:
    from kalshi.sim import Simulator

    async with Simulator(
        seed=options.seed,
        markets=options.markets,
        rate=options.rate,
        faults=options.faults or None,
        lifecycle=False,
        ping_interval=options.ping_interval,
        ping_timeout=options.ping_timeout,
        outbox_limit=options.outbox_limit,
        command_rate=1000.0,
        command_burst=1000,
    ) as sim:
        stop = asyncio.Event()
        pauses = _Pauses()
        handler = _Handler(sim, stop, pauses)
        server = await asyncio.start_server(handler.client, "127.0.0.1", 0, limit=_LINE_LIMIT)
        port = server.sockets[0].getsockname()[1]
        conn.send((sim.url, port))
        gc.callbacks.append(pauses.on_gc)
        watcher = asyncio.create_task(pauses.watch(), name="chaos-sim-pauses")
        try:
            async with server:
                await stop.wait()
                handler.close_clients()
        finally:
            gc.callbacks.remove(pauses.on_gc)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


class _Pauses:
    """When the simulator process stopped serving: event-loop stalls and the garbage collections behind them.

    A stall longer than a client's heartbeat timeout silences every connection at once, which the clients
    rightly treat as dead links; the harness needs the times to tell those from injected faults.
    """

    _TICK: Final = 0.05

    def __init__(self) -> None:
        self.stalls: list[tuple[float, float]] = []  # (monotonic start, seconds) of stalls over 0.5 s
        self.gc: list[tuple[float, float, int]] = []  # (monotonic start, seconds, generation) of GCs over 0.2 s
        self._gc_started = 0.0

    async def watch(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.sleep(self._TICK)
            late = time.monotonic() - started - self._TICK
            if late > 0.5:
                self.stalls.append((started, late))

    def on_gc(self, phase: str, info: dict[str, int]) -> None:
        now = time.monotonic()
        if phase == "start":
            self._gc_started = now
        elif now - self._gc_started > 0.2:
            self.gc.append((self._gc_started, now - self._gc_started, info.get("generation", -1)))


class _Handler:
    def __init__(self, sim: Any, stop: asyncio.Event, pauses: _Pauses) -> None:
        self.sim = sim
        self.stop = stop
        self.pauses = pauses
        self._writers: list[asyncio.StreamWriter] = []

    def close_clients(self) -> None:
        for writer in self._writers:
            writer.close()

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                request = _decode(line)
                try:
                    reply = {"ok": True, "result": await self.dispatch(request["op"], request.get("args") or {})}
                except Exception as exc:
                    reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                writer.write(_encode(reply) + b"\n")
                await writer.drain()

    async def dispatch(self, op: str, args: dict[str, Any]) -> Any:
        sim = self.sim
        if op == "register_key":
            return sim.register_key(args["key_id"], args["public_pem"], account=args["account"])
        if op == "tickers":
            return sim.tickers
        if op == "books":
            out = {}
            for ticker in sim.tickers:
                snap = sim.engine.book_snapshot(ticker)
                out[ticker] = [list(snap.yes), list(snap.no)]
            return out
        if op == "pause":
            sim.pause_activity()
            return None
        if op == "resume":
            sim.resume_activity()
            return None
        if op == "quiesce":
            await sim.quiesce(max_wait=float(args.get("max_wait", 10.0)))
            return None
        if op == "fault":
            return self._fault(args["name"], list(args.get("args") or []), dict(args.get("kwargs") or {}))
        if op == "counts":
            return dict(sim.faults.counts)
        if op == "connection_ids":
            return list(sim.connection_ids())
        if op == "fills":
            return [
                [f.trade_id, f.order_id, f.fill_id, f.ticker, f.count_units] for f in sim.engine.fills(args["account"])
            ]
        if op == "positions":
            return {p.ticker: p.position_units for p in sim.engine.positions(args["account"]) if p.position_units}
        if op == "resting":
            return {o.order_id: o.remaining_units for o in sim.engine.orders(args["account"], "resting")}
        if op == "place_order":
            result = sim.place_order(
                args["account"],
                args["ticker"],
                args["side"],
                int(args["price_ticks"]),
                int(args["count_units"]),
                time_in_force=args.get("time_in_force", "good_till_canceled"),
            )
            return {"order_id": result.order_id, "fills": len(result.fills)}
        if op == "stats":
            return {"delivered": sim.hub.delivered, "steps": sim.activity.steps, "rss": _rss(), "pid": os.getpid()}
        if op == "pauses":
            return {"stalls": self.pauses.stalls, "gc": self.pauses.gc}
        if op == "stop":
            self.stop.set()
            return None
        raise ValueError(f"unknown op {op!r}")

    def _fault(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if name not in _FAULTS:
            raise ValueError(f"unknown fault {name!r}")
        if name == "refuse_handshakes":
            kwargs["now"] = time.monotonic()
        result = getattr(self.sim.faults, name)(*args, **kwargs)
        return result if isinstance(result, int | bool | list | type(None)) else None


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


# -- parent ---------------------------------------------------------------------------------------------------


class RemoteSim:
    """Handle on the simulator process. Use ``async with RemoteSim.start(options) as remote``."""

    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.url = ""
        self.pid: int | None = None
        self._process: Any = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> RemoteSim:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Spawn the child and connect the control channel.

        Raises:
            RemoteError: The child did not come up within a minute.
        """
        ctx = multiprocessing.get_context("spawn")
        parent_end, child_end = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=serve, args=(asdict(self.options), child_end), name="chaos-sim")
        self._process.start()
        child_end.close()
        try:
            deadline = time.monotonic() + _START_TIMEOUT
            while not parent_end.poll():
                if time.monotonic() > deadline or not self._process.is_alive():
                    raise RemoteError("the simulator process did not start")
                await asyncio.sleep(0.02)
            url, port = parent_end.recv()
        except EOFError:
            raise RemoteError("the simulator process exited before it was ready") from None
        finally:
            parent_end.close()
        self.url = url
        self.pid = self._process.pid
        # Replies such as every book or a long fill ledger are single lines far beyond the default 64 KiB.
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", port, limit=_LINE_LIMIT)

    async def call(self, op: str, **args: Any) -> Any:
        """Run one operation in the child and return its result.

        Raises:
            RemoteError: The operation failed in the child, or the channel is closed.
        """
        if self._reader is None or self._writer is None:
            raise RemoteError("not connected")
        async with self._lock:
            self._writer.write(_encode({"op": op, "args": args}) + b"\n")
            await self._writer.drain()
            line = await self._reader.readline()
        if not line:
            raise RemoteError(f"the simulator process closed the channel during {op!r}")
        reply = _decode(line)
        if not reply["ok"]:
            raise RemoteError(f"{op}: {reply['error']}")
        return reply["result"]

    async def fault(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``sim.faults.<name>(*args, **kwargs)`` in the child."""
        return await self.call("fault", name=name, args=list(args), kwargs=kwargs)

    async def stop(self) -> None:
        """Stop the simulator and wait for the process to exit (killed after 10 s)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(ConnectionError, RemoteError):
                writer.write(_encode({"op": "stop", "args": {}}) + b"\n")
                await writer.drain()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        self._reader = None
        process, self._process = self._process, None
        if process is None:
            return
        deadline = time.monotonic() + 10.0
        while process.is_alive() and time.monotonic() < deadline:  # noqa: ASYNC110 - a process, no event
            await asyncio.sleep(0.05)
        if process.is_alive():
            process.kill()
        process.join()
        process.close()
