"""kalshi.sim.rest: the simulator's REST face under ``/trade-api/v2``.

* :mod:`~kalshi.sim.rest.routes`: the route table (operationId -> handler), the one place to add an operation;
* :mod:`~kalshi.sim.rest.dispatch`: mounts every operation of the spec, authenticates, rate-limits, answers errors;
* :mod:`~kalshi.sim.rest.common`: what handlers share (``RestCall``, ``Reply``, ``RestError``, parameters, cursors);
* :mod:`~kalshi.sim.rest.controls`: forced responses, rate limits and counters (:func:`rest_controls`);
* handler modules by tag: :mod:`~kalshi.sim.rest.market`, :mod:`~kalshi.sim.rest.portfolio`,
  :mod:`~kalshi.sim.rest.orders`, :mod:`~kalshi.sim.rest.groups`, :mod:`~kalshi.sim.rest.rfq`,
  :mod:`~kalshi.sim.rest.limits`, :mod:`~kalshi.sim.rest.candlesticks`, :mod:`~kalshi.sim.rest.historical`,
  :mod:`~kalshi.sim.rest.subaccounts` (also picks the acting subaccount of a call),
  :mod:`~kalshi.sim.rest.instances`, :mod:`~kalshi.sim.rest.api_keys`, :mod:`~kalshi.sim.rest.multivariate`,
  :mod:`~kalshi.sim.rest.milestones`, :mod:`~kalshi.sim.rest.live_data`, :mod:`~kalshi.sim.rest.discovery`,
  :mod:`~kalshi.sim.rest.block_trades`, :mod:`~kalshi.sim.rest.fcm`;
  :mod:`~kalshi.sim.rest.views` renders engine views as the spec's JSON.
"""

from kalshi.sim.rest.controls import ForcedResponse, RestControls, RestFaults, rest_controls
from kalshi.sim.rest.dispatch import add_rest_routes, implemented_operations
from kalshi.sim.rest.limits import RateLimits
from kalshi.sim.rest.routes import ROUTES

__all__ = [
    "ROUTES",
    "ForcedResponse",
    "RateLimits",
    "RestControls",
    "RestFaults",
    "add_rest_routes",
    "implemented_operations",
    "rest_controls",
]
