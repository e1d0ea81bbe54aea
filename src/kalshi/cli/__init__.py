"""The ``kalshi`` command. :func:`main` is the console script; the typer app lives in :mod:`kalshi.cli.main`.

The command needs the ``cli`` extra (typer, rich, and the ``sim`` and ``record`` extras it builds on). Without
them :func:`main` says which extra to install instead of printing a traceback.
"""

from __future__ import annotations

import sys
from typing import Final

__all__ = ["EXTRA_OF_MODULE", "main", "missing_extra_message"]

# Optional dependency (top-level module) -> the extra that installs it.
EXTRA_OF_MODULE: Final[dict[str, str]] = {
    "typer": "cli",
    "rich": "cli",
    "click": "cli",
    "aiohttp": "sim",
    "pyarrow": "record",
    "plotly": "backtest",
    "redis": "relay",
}

_EXIT_FAILURE: Final = 1
_EXIT_INTERRUPTED: Final = 130


def missing_extra_message(exc: ModuleNotFoundError) -> str | None:
    """The one-line advice for an optional dependency that is not installed, or None for any other module."""
    top = (exc.name or "").partition(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    return (
        f"kalshi: this needs {top!r}, which comes with the {extra!r} extra of kalshi-kit: "
        f"pip install 'kalshi-kit[{extra}]'  (or 'kalshi-kit[cli]' for every command)"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the ``kalshi`` command; returns the exit status (130 after Ctrl-C)."""
    try:
        from kalshi.cli.main import main as run_command

        return run_command(argv)
    except ModuleNotFoundError as exc:
        message = missing_extra_message(exc)
        if message is None:
            raise
        sys.stderr.write(message + "\n")
        return _EXIT_FAILURE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return _EXIT_INTERRUPTED
