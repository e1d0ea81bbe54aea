"""``python -m kalshi.sim.openmarkets``: the local OpenMarkets server until Ctrl-C (prints its URLs and key)."""

from __future__ import annotations

import argparse

from kalshi.sim.openmarkets.serve import run_openmarkets_server


def main(argv: list[str] | None = None) -> None:
    """Parse the options and serve until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m kalshi.sim.openmarkets", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8766, help="TCP port (0 picks a free one)")
    parser.add_argument("--seed", type=int, default=0, help="seeds contests and activity")
    parser.add_argument("--contests", type=int, default=8, help="number of contests")
    parser.add_argument("--rate", type=float, default=5.0, help="liquidity changes per second")
    args = parser.parse_args(argv)
    run_openmarkets_server(args.host, args.port, args.seed, contests=args.contests, rate=args.rate)


if __name__ == "__main__":
    main()
