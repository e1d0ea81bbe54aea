"""kalshi.sim.ws: the simulator's WebSocket face (``/trade-api/ws/v2``).

* :mod:`~kalshi.sim.ws.session`: one connection's command protocol (subscribe, update, list, unsubscribe), sans-I/O;
* :mod:`~kalshi.sim.ws.fanout`: subscriptions, per-connection bounded outboxes, the hub that routes frames;
* :mod:`~kalshi.sim.ws.feeds`: engine events -> channel messages; :mod:`~kalshi.sim.ws.index_feeds`: index values;
* :mod:`~kalshi.sim.ws.endpoint`: the upgrade (signature, refusals) and the registry of open connections;
* :mod:`~kalshi.sim.ws.connection`: the aiohttp glue of one connection (reader, writer, pings, faults);
* :mod:`~kalshi.sim.ws.firehose`: pre-encoded frames through the real fan-out, for benchmarks.
"""

from kalshi.sim.ws.connection import SimConnection
from kalshi.sim.ws.endpoint import WsEndpoint, WsSettings
from kalshi.sim.ws.fanout import Hub, Outbox, Subscription
from kalshi.sim.ws.feeds import Feeds
from kalshi.sim.ws.session import SessionLimits, WsSession

__all__ = [
    "Feeds",
    "Hub",
    "Outbox",
    "SessionLimits",
    "SimConnection",
    "Subscription",
    "WsEndpoint",
    "WsSession",
    "WsSettings",
]
