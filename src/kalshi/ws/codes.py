"""The WebSocket protocol's facts in one place: channels <-> message types, each channel's loss policy, and the
error codes.

* :data:`CHANNEL_TABLE`: one :class:`ChannelSpec` per channel: the wire ``type`` of every message it delivers,
  whether it is private, and the client's default :class:`~kalshi.ws.backpressure.OverflowStrategy` with the
  reason. :data:`CHANNEL_TYPES` and :data:`TYPE_CHANNEL` are views of it; nothing else keeps a copy.
* ``ErrorCode``: the IntEnum the client, the simulator and the replay server all use; the details of each code
  (retryable, terminal for the subscription, what to do) are in :data:`kalshi.errors.WS_ERROR_CODES`.
  ``ClientErrorCode``: the codes the client synthesizes for ``on_error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Final

from kalshi.ws.backpressure import OverflowStrategy

__all__ = [
    "CHANNEL_TABLE",
    "CHANNEL_TYPES",
    "TYPE_CHANNEL",
    "ChannelSpec",
    "ClientErrorCode",
    "ErrorCode",
    "channel_spec",
    "default_overflow",
    "defaults_table",
]

_BLOCK: Final = OverflowStrategy.BLOCK
_CONFLATE: Final = OverflowStrategy.CONFLATE
_DROP: Final = OverflowStrategy.DROP_OLDEST


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One channel: the wire types it delivers, whether it needs auth, its default overflow and why."""

    name: str
    types: tuple[str, ...]
    private: bool
    overflow: OverflowStrategy
    why: str
    retired: bool = False


CHANNEL_TABLE: Final[tuple[ChannelSpec, ...]] = (
    ChannelSpec(
        "orderbook_delta",
        ("orderbook_snapshot", "orderbook_delta"),
        False,
        _BLOCK,
        "every delta changes the book: one lost corrupts it until the next snapshot",
    ),
    ChannelSpec("ticker", ("ticker",), False, _CONFLATE, "latest wins: a newer ticker supersedes the older one"),
    ChannelSpec("trade", ("trade",), False, _BLOCK, "sequenced prints; volume and VWAP need every one"),
    ChannelSpec("fill", ("fill",), True, _BLOCK, "your executions: money; never dropped"),
    ChannelSpec("market_positions", ("market_position",), True, _BLOCK, "your positions: money; never dropped"),
    ChannelSpec("user_orders", ("user_order",), True, _BLOCK, "your order updates: money; never dropped"),
    ChannelSpec("order_group_updates", ("order_group_updates",), True, _BLOCK, "your order groups: sequenced, money"),
    ChannelSpec(
        "communications",
        ("rfq_created", "rfq_deleted", "quote_created", "quote_accepted", "quote_executed"),
        True,
        _BLOCK,
        "RFQs and quotes addressed to you: a lost quote is a lost trade",
    ),
    ChannelSpec(
        "market_lifecycle_v2",
        ("market_lifecycle_v2", "event_lifecycle", "event_fee_update"),
        False,
        _BLOCK,
        "state changes (open, closed, settled, fees): each one matters",
    ),
    ChannelSpec(
        "multivariate_market_lifecycle",
        ("multivariate_market_lifecycle", "event_lifecycle"),
        False,
        _BLOCK,
        "state changes of multivariate markets: each one matters",
    ),
    ChannelSpec(
        "cfbenchmarks_value",
        ("cfbenchmarks_value", "cfbenchmarks_value_indexlist"),
        False,
        _DROP,
        "a stream of index values: the newest matters most",
    ),
    ChannelSpec(
        "cfbenchmarks_value_5hz",
        ("cfbenchmarks_value_5hz", "cfbenchmarks_value_5hz_indexlist"),
        False,
        _DROP,
        "5 Hz index values: the newest matters most",
    ),
    ChannelSpec(
        "pyth_value",
        ("pyth_value", "pyth_value_underlying_list"),
        False,
        _DROP,
        "a stream of prices: the newest matters most",
    ),
    ChannelSpec("multivariate", ("multivariate_lookup",), False, _DROP, "retired (2026-08); kept for recordings", True),
)
"""Every channel, once (the README table of defaults mirrors it: see :func:`defaults_table`)."""

_BY_NAME: Final = {spec.name: spec for spec in CHANNEL_TABLE}

CHANNEL_TYPES: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {spec.name: spec.types for spec in CHANNEL_TABLE}
)
"""Channel -> the wire types it delivers."""

TYPE_CHANNEL: Final[Mapping[str, str]] = MappingProxyType(
    {kind: spec.name for spec in reversed(CHANNEL_TABLE) for kind in spec.types}
)
"""Wire type -> its first channel in the table (``event_lifecycle`` -> ``market_lifecycle_v2``). Only for frames
that arrive on no known subscription: a frame on a subscription belongs to that subscription's channel."""


def channel_spec(channel: str) -> ChannelSpec | None:
    """The table's entry for ``channel`` (None for a channel it does not know)."""
    return _BY_NAME.get(channel)


def default_overflow(channel: str) -> OverflowStrategy:
    """The client's default overflow strategy for ``channel`` (DROP_OLDEST for an unknown channel)."""
    spec = _BY_NAME.get(channel)
    return spec.overflow if spec is not None else _DROP


class ErrorCode(IntEnum):
    """Error codes of the ``error`` message (asyncapi.yaml ``x-error-codes``)."""

    UNABLE_TO_PROCESS = 1
    PARAMS_REQUIRED = 2
    CHANNELS_REQUIRED = 3
    SIDS_REQUIRED = 4
    UNKNOWN_COMMAND = 5
    ALREADY_SUBSCRIBED = 6  # retired
    UNKNOWN_SID = 7
    UNKNOWN_CHANNEL = 8
    AUTH_REQUIRED = 9
    CHANNEL_ERROR = 10
    INVALID_PARAMETER = 11
    EXACTLY_ONE_SID = 12
    UNSUPPORTED_ACTION = 13
    MARKET_TICKER_REQUIRED = 14
    ACTION_REQUIRED = 15
    RETIRED_16 = 16
    RETIRED_17 = 17
    COMMAND_TIMEOUT = 18
    SHARD_FACTOR_POSITIVE = 19
    SHARD_FACTOR_REQUIRED = 20
    SHARD_KEY_RANGE = 21
    SHARD_FACTOR_MAX = 22
    MATCH_IDS_REQUIRED = 23
    INDEX_IDS_REQUIRED = 24
    BUFFER_OVERFLOW = 25
    MARKET_LIMIT_EXCEEDED = 26
    TOO_MANY_REQUESTS = 27
    UNDERLYING_TICKERS_REQUIRED = 28


class ClientErrorCode(IntEnum):
    """Codes of the ``error`` messages the client synthesizes for ``on_error`` (outside the server's range)."""

    PROTOCOL = 1001
    """A frame could not be used (malformed, or a book update that does not fit): the book is repaired."""
    GAP = 1002
    """Messages were lost (a seq gap on a channel that cannot be replayed, or an inapplicable delta)."""
    CALLBACK = 1003
    """A user callback raised (or an ERROR-strategy queue overflowed and ended the session)."""
    RESUBSCRIBE = 1004
    """A subscription could not be restored (after a reconnect or a server-ended subscription)."""


def defaults_table() -> str:
    """The channels' default overflow strategies and why, as a Markdown table (for the README)."""
    rows = ["| channel | default overflow | why |", "|---|---|---|"]
    rows += [f"| `{spec.name}` | {spec.overflow.name} | {spec.why} |" for spec in CHANNEL_TABLE]
    return "\n".join(rows)
