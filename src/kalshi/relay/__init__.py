"""kalshi.relay: the whole exchange relayed through Redis Streams, exact books on any consumer machine.

* :class:`Relay` (``kalshi relay``): streaming connections (sharded by the market limit) -> Redis Streams, one
  stream per channel, the raw frames with receive time, sid and seq, typed control entries (reconnects, gaps,
  repairs) and periodic book checkpoints.
* :class:`RelayClient`: the consumer side, shaped like a streaming session (``subscribe_ticker``,
  ``subscribe_trade``, ``orderbook``, ``books``, ``lifecycle_events``), in fan-out or consumer-group mode.

Needs the ``relay`` extra (``pip install 'kalshi-kit[relay]'``: redis-py with hiredis). The stream layout is
described in :mod:`kalshi.relay.layout`.
"""

from __future__ import annotations

from kalshi.relay.books import BookBuilder, BookBuilderStats
from kalshi.relay.client import RelayClient, RelayEntry, RelayFeed, RelaySubscription
from kalshi.relay.core import EntryBuffer, RelayCore
from kalshi.relay.layout import StreamLayout
from kalshi.relay.relay import DEFAULT_RELAY_CHANNELS, Relay, RelayProgress

__all__ = [
    "DEFAULT_RELAY_CHANNELS",
    "BookBuilder",
    "BookBuilderStats",
    "EntryBuffer",
    "Relay",
    "RelayClient",
    "RelayCore",
    "RelayEntry",
    "RelayFeed",
    "RelayProgress",
    "RelaySubscription",
    "StreamLayout",
]
