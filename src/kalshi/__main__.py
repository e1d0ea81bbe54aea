"""``python -m kalshi``: the ``kalshi`` command (same commands and options)."""

from __future__ import annotations

from kalshi.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
