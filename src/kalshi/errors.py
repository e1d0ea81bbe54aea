"""The kalshi-kit error tree.

Every exception the library raises derives from :class:`KalshiError`. Lower-layer
exceptions (picows, httpx, msgspec, cryptography) are converted with ``raise ... from``.

::

    KalshiError
    ├── KalshiAuthError                 bad key, key id, signature input
    ├── KalshiConfigError               inconsistent URLs or settings
    ├── KalshiConnectionError           socket could not be opened / was lost
    │   └── KalshiHandshakeError        upgrade refused (status 401/403/429/5xx)
    ├── KalshiProtocolError             a frame the client could not decode
    ├── KalshiSubscriptionError         subscription failed, or none exists
    │   └── KalshiCommandError          server answered a command with ``error`` (code 1-28)
    ├── KalshiSequenceGapError          seq jumped on a sequenced subscription
    ├── KalshiBackpressureError         a bounded queue overflowed under OverflowStrategy.ERROR
    └── KalshiAPIError                  REST error (status, code, message)
        ├── KalshiBadRequestError       400
        ├── KalshiUnauthorizedError     401
        ├── KalshiForbiddenError        403
        ├── KalshiNotFoundError         404
        ├── KalshiConflictError         409
        ├── KalshiRateLimitError        429 (retry_after seconds)
        └── KalshiServerError           5xx
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "WS_ERROR_CODES",
    "KalshiAPIError",
    "KalshiAuthError",
    "KalshiBackpressureError",
    "KalshiBadRequestError",
    "KalshiCommandError",
    "KalshiConfigError",
    "KalshiConflictError",
    "KalshiConnectionError",
    "KalshiError",
    "KalshiForbiddenError",
    "KalshiHandshakeError",
    "KalshiNotFoundError",
    "KalshiProtocolError",
    "KalshiRateLimitError",
    "KalshiSequenceGapError",
    "KalshiServerError",
    "KalshiSubscriptionError",
    "KalshiUnauthorizedError",
    "WsErrorCode",
    "api_error_for_status",
]


class KalshiError(Exception):
    """Root of every error raised by kalshi-kit."""


class KalshiAuthError(KalshiError):
    """A key, key id or signing input is unusable. Never carries key material."""


class KalshiConfigError(KalshiError, ValueError):
    """A configuration is inconsistent (e.g. production REST with demo WebSocket)."""


class KalshiConnectionError(KalshiError):
    """The connection could not be opened or was lost."""


class KalshiHandshakeError(KalshiConnectionError):
    """The server refused the WebSocket upgrade with an HTTP status."""

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def is_permanent(self) -> bool:
        """401 and 403 will not fix themselves: retrying only hammers the server."""
        return self.status in (401, 403)


class KalshiProtocolError(KalshiError):
    """A frame from the server could not be decoded into a known message."""


class KalshiSubscriptionError(KalshiError):
    """A subscription could not be made or used (also: run_forever with nothing subscribed)."""


@dataclass(frozen=True, slots=True)
class WsErrorCode:
    """One WebSocket error code of the spec (asyncapi.yaml ``x-error-codes``)."""

    code: int
    name: str
    retryable: bool
    terminal_for_subscription: bool
    retired: bool = False


# Retryable: sending the same command again later may succeed. Terminal: the subscription is gone.
WS_ERROR_CODES: Final[dict[int, WsErrorCode]] = {
    e.code: e
    for e in (
        WsErrorCode(1, "Unable to process message", retryable=True, terminal_for_subscription=False),
        WsErrorCode(2, "Params required", retryable=False, terminal_for_subscription=False),
        WsErrorCode(3, "Channels required", retryable=False, terminal_for_subscription=False),
        WsErrorCode(4, "Subscription IDs required", retryable=False, terminal_for_subscription=False),
        WsErrorCode(5, "Unknown command", retryable=False, terminal_for_subscription=False),
        WsErrorCode(6, "Already subscribed (retired)", False, False, retired=True),
        WsErrorCode(7, "Unknown subscription ID", retryable=False, terminal_for_subscription=False),
        WsErrorCode(8, "Unknown channel name", retryable=False, terminal_for_subscription=False),
        WsErrorCode(9, "Authentication required", retryable=False, terminal_for_subscription=False),
        WsErrorCode(10, "Channel error", retryable=True, terminal_for_subscription=True),
        WsErrorCode(11, "Invalid parameter", retryable=False, terminal_for_subscription=False),
        WsErrorCode(12, "Exactly one subscription ID is required", False, False),
        WsErrorCode(13, "Unsupported action", retryable=False, terminal_for_subscription=False),
        WsErrorCode(14, "Market Ticker required", retryable=False, terminal_for_subscription=False),
        WsErrorCode(15, "Action required", retryable=False, terminal_for_subscription=False),
        WsErrorCode(16, "Retired code 16", False, False, retired=True),
        WsErrorCode(17, "Retired code 17", False, False, retired=True),
        WsErrorCode(18, "Command timeout", retryable=True, terminal_for_subscription=False),
        WsErrorCode(19, "shard_factor must be > 0", retryable=False, terminal_for_subscription=False),
        WsErrorCode(20, "shard_factor is required when shard_key is set", False, False),
        WsErrorCode(21, "shard_key must be >= 0 and < shard_factor", False, False),
        WsErrorCode(22, "shard_factor must be <= 100", retryable=False, terminal_for_subscription=False),
        WsErrorCode(23, "Match IDs required", retryable=False, terminal_for_subscription=False),
        WsErrorCode(24, "Index IDs required", retryable=False, terminal_for_subscription=False),
        WsErrorCode(25, "Subscription buffer overflow", retryable=True, terminal_for_subscription=True),
        WsErrorCode(26, "Subscription market limit exceeded", False, False),
        WsErrorCode(27, "Too many requests", retryable=True, terminal_for_subscription=False),
        WsErrorCode(28, "Underlying tickers required", False, False),
    )
}

_WHAT_TO_DO: Final[dict[int, str]] = {
    9: "connect with a KalshiAuth to use private channels",
    10: "resubscribe the channel",
    25: "the subscription was dropped by the server; consume faster or subscribe to fewer markets",
    26: "split the markets over several subscriptions",
    27: "slow down: send fewer commands per second",
}


class KalshiCommandError(KalshiSubscriptionError):
    """The server answered a WebSocket command with an ``error`` message."""

    def __init__(self, code: int, message: str, *, sid: int | None = None, cmd_id: int | None = None) -> None:
        info = WS_ERROR_CODES.get(code)
        name = info.name if info else "Unknown error code"
        hint = _WHAT_TO_DO.get(code)
        text = f"WebSocket error {code} ({name}): {message}"
        if hint:
            text += f"; {hint}"
        super().__init__(text)
        self.code = code
        self.message = message
        self.sid = sid
        self.cmd_id = cmd_id

    @property
    def retryable(self) -> bool:
        info = WS_ERROR_CODES.get(self.code)
        return info.retryable if info else False

    @property
    def terminal(self) -> bool:
        """True when the server has ended the subscription this error belongs to."""
        info = WS_ERROR_CODES.get(self.code)
        return info.terminal_for_subscription if info else False


class KalshiSequenceGapError(KalshiError):
    """A sequenced subscription skipped seq numbers: local state derived from it is stale."""

    def __init__(self, sid: int, expected: int, received: int) -> None:
        super().__init__(f"sequence gap on sid {sid}: expected seq {expected}, received {received}")
        self.sid = sid
        self.expected = expected
        self.received = received


class KalshiBackpressureError(KalshiError):
    """A bounded queue with OverflowStrategy.ERROR was full."""


class KalshiAPIError(KalshiError):
    """The REST API answered with an error.

    ``str(error)`` carries the server's reason: ``HTTP 401 unknown_key: <message> (<details>)``.

    Attributes:
        status: the HTTP status.
        code: the server's error code (``unknown_key``, ``stale_timestamp``...), None if it sent none.
        message: the server's human-readable message.
        details: the server's additional details, None if it sent none.
        body: the decoded error body.
    """

    def __init__(
        self, status: int, code: str | None, message: str, *, body: object = None, details: str | None = None
    ) -> None:
        label = f"HTTP {status}"
        if code:
            label += f" {code}"
        text = f"{label}: {message}"
        if details and details != message:
            text += f" ({details})"
        super().__init__(text)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.body = body


class KalshiBadRequestError(KalshiAPIError):
    """400: the request was malformed; fix the parameters named in the message."""


class KalshiUnauthorizedError(KalshiAPIError):
    """401: missing or invalid signature; check the key id, the key and the clock."""


class KalshiForbiddenError(KalshiAPIError):
    """403: the key may not do this."""


class KalshiNotFoundError(KalshiAPIError):
    """404: no such resource."""


class KalshiConflictError(KalshiAPIError):
    """409: conflicts with current state (e.g. duplicate client_order_id)."""


class KalshiRateLimitError(KalshiAPIError):
    """429: over the rate limit; wait ``retry_after`` seconds."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        body: object = None,
        details: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, message, body=body, details=details)
        self.retry_after = retry_after


class KalshiServerError(KalshiAPIError):
    """5xx: the exchange failed; safe to retry idempotent requests."""


_STATUS_CLASSES: Final[dict[int, type[KalshiAPIError]]] = {
    400: KalshiBadRequestError,
    401: KalshiUnauthorizedError,
    403: KalshiForbiddenError,
    404: KalshiNotFoundError,
    409: KalshiConflictError,
}


def api_error_for_status(
    status: int,
    code: str | None,
    message: str,
    *,
    body: object = None,
    details: str | None = None,
    retry_after: float | None = None,
) -> KalshiAPIError:
    """Build the KalshiAPIError subclass that matches an HTTP status."""
    if status == 429:
        return KalshiRateLimitError(status, code, message, body=body, details=details, retry_after=retry_after)
    if status >= 500:
        return KalshiServerError(status, code, message, body=body, details=details)
    cls = _STATUS_CLASSES.get(status, KalshiAPIError)
    return cls(status, code, message, body=body, details=details)
