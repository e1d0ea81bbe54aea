"""Entry point of the ``kalshi`` command."""

from __future__ import annotations

import sys

from kalshi import __version__

SUBCOMMANDS = ("demo", "sim", "book", "stream", "markets", "record", "replay")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    sys.stdout.write(f"kalshi-kit {__version__}\nsubcommands: {', '.join(SUBCOMMANDS)}\n")
    if args and args[0] not in SUBCOMMANDS and args[0] not in ("-h", "--help"):
        sys.stderr.write(f"unknown subcommand {args[0]!r}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
