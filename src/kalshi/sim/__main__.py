"""``python -m kalshi.sim``: run the local exchange simulator (same options as ``kalshi sim``)."""

from __future__ import annotations

import argparse
import sys

from kalshi.errors import KalshiError
from kalshi.sim.cli import run_sim
from kalshi.sim.faults import FaultSpecError


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run until Ctrl-C or --duration; returns the exit status (130 after Ctrl-C)."""
    parser = argparse.ArgumentParser(prog="python -m kalshi.sim", description="Run a local Kalshi exchange simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markets", type=int, default=8)
    parser.add_argument("--rate", type=float, default=20.0, help="engine actions per second")
    parser.add_argument("--faults", default=None, help='e.g. "drop_every=3s,skip_seq=1/5000,refuse=401:2s"')
    parser.add_argument("--open", action="store_true", help="accept unsigned connections")
    parser.add_argument("--write-demo-key", metavar="DIR", default=None)
    parser.add_argument("--key-dir", metavar="DIR", default=None)
    parser.add_argument(
        "--quick-settle", action="store_true", help="close and settle events every 30-90 s (to test settlement)"
    )
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args(argv)
    try:
        run_sim(
            args.host,
            args.port,
            args.seed,
            args.markets,
            args.rate,
            args.faults,
            args.open,
            args.write_demo_key,
            args.key_dir,
            args.duration,
            quick_settle=args.quick_settle,
        )
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except (FaultSpecError, KalshiError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
