"""Running the simulator as a program: ``kalshi sim`` (typer, elsewhere) and ``python -m kalshi.sim``.

:func:`run_sim` takes plain arguments (no argument parser here) so any command-line front end can call it;
:func:`serve` is its asyncio core, usable from programs that already run a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kalshi.auth import ENV_KEY_ID, ENV_PRIVATE_KEY_PATH
from kalshi.sim.faults import parse_fault_spec
from kalshi.sim.keys import PRIVATE_KEY_SUFFIX, PUBLIC_KEY_SUFFIX, write_demo_key
from kalshi.sim.server import Simulator

__all__ = ["DEMO_KEY_ID", "SimOptions", "demo_key_lines", "prepare_demo_key", "run_sim", "serve"]

DEMO_KEY_ID = "sim-demo-key"


@dataclass(frozen=True, slots=True, kw_only=True)
class SimOptions:
    """Options of ``kalshi sim`` (the defaults are the command's)."""

    host: str = "127.0.0.1"
    port: int = 8765
    seed: int = 0
    markets: int = 8
    rate: float = 20.0
    faults: str | None = None
    open_access: bool = False
    write_demo_key: Path | None = None
    key_dir: Path | None = None
    quick_settle: bool = False
    duration: float | None = None


def prepare_demo_key(directory: Path) -> tuple[Path, Path]:
    """Write the demo key pair into ``directory`` unless it is already there.

    Returns:
        ``(private_key_path, public_key_path)``.

    Raises:
        KalshiAuthError: The files cannot be written.
    """
    private = directory / f"{DEMO_KEY_ID}{PRIVATE_KEY_SUFFIX}"
    public = directory / f"{DEMO_KEY_ID}{PUBLIC_KEY_SUFFIX}"
    if private.exists() and public.exists():
        return private, public
    return write_demo_key(directory, DEMO_KEY_ID, overwrite=True)


def demo_key_lines(url: str, private_key: Path) -> list[str]:
    """How to use the demo key: shell ``export`` lines, the equivalent flags, and the Python call.

    The ``export`` lines are what the other ``kalshi`` commands (and :meth:`KalshiAuth.from_env`) read.
    """
    path = shlex.quote(str(private_key))
    return [
        "  demo key: use it from a shell (paste these two lines):",
        f"    export {ENV_KEY_ID}={DEMO_KEY_ID}",
        f"    export {ENV_PRIVATE_KEY_PATH}={path}",
        f"  then: kalshi stream ticker --url {url}",
        f"  or pass the flags: --url {url} --key-id {DEMO_KEY_ID} --key-path {path}",
        f"  from Python: KalshiAuth.from_key_path({DEMO_KEY_ID!r}, {str(private_key)!r})",
    ]


async def serve(
    options: SimOptions,
    *,
    echo: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
    started: Callable[[Simulator], None] | None = None,
) -> None:
    """Run a simulator until ``stop`` is set, ``options.duration`` passes (or forever), printing how to connect.

    Raises:
        FaultSpecError: ``options.faults`` does not parse.
        KalshiAuthError: The key directory or demo key cannot be used.
        OSError: The port cannot be bound.
    """
    spec = parse_fault_spec(options.faults)
    key_dir = options.key_dir
    demo: tuple[Path, Path] | None = None
    if options.write_demo_key is not None:
        demo = prepare_demo_key(options.write_demo_key)
        key_dir = key_dir or options.write_demo_key
    sim = Simulator(
        seed=options.seed,
        markets=options.markets,
        rate=options.rate,
        open_access=options.open_access,
        faults=spec,
        host=options.host,
        port=options.port,
        key_dir=key_dir,
        quick_settle=options.quick_settle,
    )
    async with sim:
        echo(f"Kalshi simulator on {sim.url}  (WebSocket {sim.ws_url})")
        echo(f"  {len(sim.tickers)} markets, seed {options.seed}, {options.rate:g} actions/s")
        if demo is not None:
            for line in demo_key_lines(sim.url, demo[0]):
                echo(line)
        if options.open_access:
            echo("  open access: unsigned connections accepted (public channels only)")
        if not spec.empty:
            echo(f"  faults: {options.faults}")
        if options.quick_settle:
            echo("  quick settle: events close and settle every 30 to 90 seconds")
        if started is not None:
            started(sim)
        waiter = stop or asyncio.Event()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(options.duration):
                await waiter.wait()


def run_sim(
    host: str = "127.0.0.1",
    port: int = 8765,
    seed: int = 0,
    markets: int = 8,
    rate: float = 20.0,
    faults: str | None = None,
    open_: bool = False,
    write_demo_key: str | Path | None = None,
    key_dir: str | Path | None = None,
    duration: float | None = None,
    *,
    quick_settle: bool = False,
    echo: Callable[[str], None] = print,
) -> None:
    """Run the simulator in the foreground until Ctrl-C (or for ``duration`` seconds).

    Args:
        host: Interface to bind (loopback).
        port: TCP port (0 picks one).
        seed: Seeds markets, activity and faults.
        markets: Number of markets.
        rate: Engine actions per second.
        faults: Fault spec string (see :mod:`kalshi.sim.faults`).
        open_: Accept unsigned connections (``--open``).
        write_demo_key: Write (or reuse) a demo key pair in this directory and accept it.
        key_dir: Accept every ``<key_id>.pub.pem`` of this directory.
        quick_settle: Close and settle events every 30 to 90 seconds (``--quick-settle``) instead of on
            their hourly, daily, weekly or monthly schedule.
        duration: Stop by itself after this many seconds (None: run until Ctrl-C).
        echo: Where the startup lines go.

    Raises:
        FaultSpecError: ``faults`` does not parse.
        KalshiAuthError: The key directory or demo key cannot be used.
        OSError: The port cannot be bound.
        KeyboardInterrupt: Ctrl-C, after the simulator has shut down (callers exit with status 130).
    """
    options = SimOptions(
        host=host,
        port=port,
        seed=seed,
        markets=markets,
        rate=rate,
        faults=faults,
        open_access=open_,
        write_demo_key=Path(write_demo_key).expanduser() if write_demo_key is not None else None,
        key_dir=Path(key_dir).expanduser() if key_dir is not None else None,
        quick_settle=quick_settle,
        duration=duration,
    )
    asyncio.run(serve(options, echo=echo))
