"""openmarkets: the OpenMarkets liquidity stream client, built on kalshi-kit's streaming core.

::

    from openmarkets import LiquidityStream

    async with LiquidityStream(api_key="om_data_live_...") as stream:
        print(stream.greeting.organization_id)
        await stream.subscribe(["ct_abc123"])                          # liquidity channel
        await stream.subscribe(["ct_abc123"], channel="contest_state")
        async for update in stream.updates():                          # raw updates
            ...
        async for view in stream.tables():                              # maintained tables
            ...

A local server for offline use and tests: :class:`kalshi.sim.openmarkets.OpenMarketsServer`.
"""

from kalshi.ws.backpressure import OverflowStrategy
from kalshi.ws.connection import ConnectionState
from openmarkets.errors import (
    ConnectionLimitError,
    ContestLimitError,
    InvalidChannelError,
    InvalidMessageError,
    OpenMarketsAuthError,
    OpenMarketsConnectionError,
    OpenMarketsError,
    OpenMarketsProtocolError,
    OpenMarketsServerError,
    RefreshError,
)
from openmarkets.feeds import Feed
from openmarkets.models import (
    CHANNEL_CONTEST_STATE,
    CHANNEL_LIQUIDITY,
    ConnectedMessage,
    ContestStateUpdate,
    ErrorMessage,
    LiquidityEntry,
    LiquiditySnapshot,
    LiquidityUpdate,
    PongMessage,
    SubscribedMessage,
    UnknownMessage,
    UnsubscribedMessage,
)
from openmarkets.states import ContestStateView
from openmarkets.stream import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_URL,
    MAX_CONTESTS_PER_CONNECTION,
    ConnectionInfo,
    LiquidityStream,
    StreamUpdate,
)
from openmarkets.table import LiquidityView

__all__ = [
    "CHANNEL_CONTEST_STATE",
    "CHANNEL_LIQUIDITY",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_URL",
    "MAX_CONTESTS_PER_CONNECTION",
    "ConnectedMessage",
    "ConnectionInfo",
    "ConnectionLimitError",
    "ConnectionState",
    "ContestLimitError",
    "ContestStateUpdate",
    "ContestStateView",
    "ErrorMessage",
    "Feed",
    "InvalidChannelError",
    "InvalidMessageError",
    "LiquidityEntry",
    "LiquiditySnapshot",
    "LiquidityStream",
    "LiquidityUpdate",
    "LiquidityView",
    "OpenMarketsAuthError",
    "OpenMarketsConnectionError",
    "OpenMarketsError",
    "OpenMarketsProtocolError",
    "OpenMarketsServerError",
    "OverflowStrategy",
    "PongMessage",
    "RefreshError",
    "StreamUpdate",
    "SubscribedMessage",
    "UnknownMessage",
    "UnsubscribedMessage",
]
