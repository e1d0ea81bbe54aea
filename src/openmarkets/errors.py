"""Errors of the OpenMarkets client, rooted in kalshi-kit's tree so one ``except KalshiError`` catches all.

::

    KalshiError
    └── OpenMarketsError
        ├── OpenMarketsAuthError         (also a KalshiAuthError) 401/403 at upgrade or on REST
        ├── OpenMarketsConnectionError   (also a KalshiConnectionError) could not connect, or lost
        │   └── ConnectionLimitError     the key already holds its maximum of connections (HTTP 429)
        ├── OpenMarketsProtocolError     (also a KalshiProtocolError) a frame we could not decode
        ├── ContestLimitError            more contests than the connections can carry (also ValueError)
        ├── RefreshError                 the REST re-fetch of a contest's liquidity failed
        └── OpenMarketsServerError       an in-band ``error`` message (``code``, ``message``)
            ├── InvalidMessageError      code ``invalid_message``: the server could not parse what we sent
            └── InvalidChannelError      code ``invalid_channel``: no such channel

No message ever contains the API key: URLs are shown redacted (``api_key=***``).
"""

from __future__ import annotations

from typing import Final

from kalshi.errors import KalshiAuthError, KalshiConnectionError, KalshiError, KalshiProtocolError

__all__ = [
    "CODE_CONTEST_LIMIT",
    "CODE_INVALID_CHANNEL",
    "CODE_INVALID_MESSAGE",
    "ConnectionLimitError",
    "ContestLimitError",
    "InvalidChannelError",
    "InvalidMessageError",
    "OpenMarketsAuthError",
    "OpenMarketsConnectionError",
    "OpenMarketsError",
    "OpenMarketsProtocolError",
    "OpenMarketsServerError",
    "RefreshError",
    "error_for_code",
]

CODE_INVALID_MESSAGE: Final = "invalid_message"
CODE_INVALID_CHANNEL: Final = "invalid_channel"
# Not in the published list of codes: the local server's answer to a subscribe that would exceed 200 contests.
CODE_CONTEST_LIMIT: Final = "contest_limit_exceeded"


class OpenMarketsError(KalshiError):
    """Root of every error the OpenMarkets client raises."""


class OpenMarketsAuthError(KalshiAuthError, OpenMarketsError):
    """The API key was refused (HTTP 401/403 at the WebSocket upgrade or on REST). Retrying cannot help."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class OpenMarketsConnectionError(KalshiConnectionError, OpenMarketsError):
    """A connection could not be opened, was lost, or a command got no answer in time."""


class ConnectionLimitError(OpenMarketsConnectionError):
    """The server refused another connection for this API key: it already holds its maximum (3 by default)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OpenMarketsProtocolError(KalshiProtocolError, OpenMarketsError):
    """The server sent a frame that is not a valid OpenMarkets message (the stream continues)."""


class ContestLimitError(OpenMarketsError, ValueError):
    """More contests were requested than the connections allow (200 per connection, 3 connections per key).

    Raised before anything is sent when the client can tell, or mapped from the server's
    ``contest_limit_exceeded`` error; in both cases the subscriptions are left as they were.
    """

    def __init__(self, message: str, *, requested: int | None = None, limit: int | None = None) -> None:
        super().__init__(message)
        self.requested = requested
        self.limit = limit


class RefreshError(OpenMarketsError):
    """Re-fetching a contest's liquidity over REST failed; its table stays at the last complete version."""

    def __init__(self, message: str, *, contest_id: str, status: int | None = None) -> None:
        super().__init__(message)
        self.contest_id = contest_id
        self.status = status

    @property
    def retryable(self) -> bool:
        """True for network failures, 429 and 5xx; False for 4xx such as an unknown contest (404)."""
        return self.status is None or self.status == 429 or self.status >= 500


class OpenMarketsServerError(OpenMarketsError):
    """The server sent an ``error`` message."""

    def __init__(self, code: str, message: str) -> None:
        hint = _WHAT_TO_DO.get(code)
        text = f"OpenMarkets error {code}: {message}" if message else f"OpenMarkets error {code}"
        if hint:
            text += f"; {hint}"
        super().__init__(text)
        self.code = code
        self.message = message


class InvalidMessageError(OpenMarketsServerError):
    """``invalid_message``: the server could not parse a message this client sent."""


class InvalidChannelError(OpenMarketsServerError):
    """``invalid_channel``: the channel named in a subscribe/unsubscribe does not exist."""


_WHAT_TO_DO: Final[dict[str, str]] = {
    CODE_INVALID_MESSAGE: "the server could not parse a message we sent (a client bug: please report it)",
    CODE_INVALID_CHANNEL: "use one of the channels 'liquidity' or 'contest_state'",
}


def error_for_code(code: str, message: str) -> OpenMarketsError:
    """The typed exception for an in-band ``error`` message.

    Args:
        code: the message's ``code``.
        message: the message's ``message`` text.

    Returns:
        InvalidMessageError, InvalidChannelError, ContestLimitError, or OpenMarketsServerError for other codes.
    """
    if code == CODE_INVALID_MESSAGE:
        return InvalidMessageError(code, message)
    if code == CODE_INVALID_CHANNEL:
        return InvalidChannelError(code, message)
    if code == CODE_CONTEST_LIMIT:
        return ContestLimitError(f"the server refused the subscription: {message}")
    return OpenMarketsServerError(code, message)
