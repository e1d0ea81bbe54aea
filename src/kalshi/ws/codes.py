"""The WebSocket protocol's facts in one place: error codes (and, beside them, channels and message types).

``ErrorCode`` is the IntEnum the client, the simulator and the replay server all use; the details of each code
(retryable, terminal for the subscription, what to do) are in :data:`kalshi.errors.WS_ERROR_CODES`.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ClientErrorCode", "ErrorCode"]


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
