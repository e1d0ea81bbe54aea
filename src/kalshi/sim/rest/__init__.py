"""kalshi.sim.rest: the simulator's REST face under ``/trade-api/v2`` (see :mod:`kalshi.sim.rest.dispatch`)."""
