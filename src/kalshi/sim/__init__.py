"""kalshi.sim: a local Kalshi exchange (matching engine, seeded activity, WebSocket + REST, fault injection).

Start one from Python with ``async with Simulator(seed=..., markets=..., rate=...) as sim`` (see
:class:`Simulator`), from the shell with ``python -m kalshi.sim`` (or ``kalshi sim``), or in tests with the
``kalshi_sim`` pytest fixture of :mod:`kalshi.testing`.

Layout:

* :mod:`kalshi.sim.engine`: the exchange's rules, sans-I/O (importable without the server's dependencies);
* :mod:`kalshi.sim.ws` and :mod:`kalshi.sim.rest`: the exchange's two faces on one aiohttp app;
* :mod:`kalshi.sim.market`: seeded market activity; :mod:`kalshi.sim.faults`: fault injection;
  :mod:`kalshi.sim.keys`: API keys and signature checks;
* :mod:`kalshi.sim.server`: :class:`Simulator`, which wires them together;
* :mod:`kalshi.sim.openmarkets`: a local OpenMarkets stream.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kalshi.sim.faults import FaultController, FaultSpec, FaultSpecError, parse_fault_spec
    from kalshi.sim.rest.controls import rest_controls
    from kalshi.sim.server import DEFAULT_BALANCE_MICROS, Simulator

__all__ = [
    "DEFAULT_BALANCE_MICROS",
    "FaultController",
    "FaultSpec",
    "FaultSpecError",
    "Simulator",
    "parse_fault_spec",
    "rest_controls",
]

# Loaded on first use, so ``import kalshi.sim.engine`` (backtests) does not pull in the HTTP server.
_HOMES = {
    "DEFAULT_BALANCE_MICROS": "kalshi.sim.server",
    "Simulator": "kalshi.sim.server",
    "FaultController": "kalshi.sim.faults",
    "FaultSpec": "kalshi.sim.faults",
    "FaultSpecError": "kalshi.sim.faults",
    "parse_fault_spec": "kalshi.sim.faults",
    "rest_controls": "kalshi.sim.rest.controls",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kalshi.sim' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
