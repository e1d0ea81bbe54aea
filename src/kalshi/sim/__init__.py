"""kalshi.sim: a local Kalshi exchange (matching engine, seeded activity, WebSocket + REST, fault injection).

Start one from Python with ``async with Simulator(seed=..., markets=..., rate=...) as sim`` (see
:class:`Simulator`), from the shell with ``python -m kalshi.sim`` (or ``kalshi sim``), or in tests with the
``kalshi_sim`` pytest fixture of :mod:`kalshi.testing`.
"""

from kalshi.sim.faults import FaultController, FaultSpec, FaultSpecError, parse_fault_spec
from kalshi.sim.rest_api import rest_controls
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
