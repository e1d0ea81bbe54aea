"""Connection lifecycle policy: states, close classification and reconnect backoff.

This module is pure (no sockets, no asyncio): it holds the decisions the streaming client makes
about a connection. The I/O itself lives in :mod:`kalshi.ws.transport`, which reports every end
of a connection as a :class:`CloseInfo`.

Reconnect policy in one place:

* ``CloseInfo.reconnectable`` is False when we closed on purpose (``close()`` with no error) or
  when the server's close code is permanent (:func:`is_permanent_close`); otherwise reconnect.
* Wait :func:`backoff_delay` seconds before attempt ``n`` (full jitter, capped).
* A refused upgrade raises ``KalshiHandshakeError``: 401/403 are permanent (``is_permanent``),
  429 carries ``retry_after`` which should replace the backoff delay when it is longer.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Final

__all__ = [
    "PERMANENT_CLOSE_CODES",
    "REASON_CALLBACK_ERROR",
    "REASON_CLIENT_CLOSE",
    "REASON_CONNECTION_LOST",
    "REASON_HEARTBEAT_TIMEOUT",
    "REASON_PROTOCOL_ERROR",
    "CloseInfo",
    "ConnectionState",
    "backoff_delay",
    "is_permanent_close",
    "parse_retry_after",
]


class ConnectionState(Enum):
    """WebSocket connection lifecycle states."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


# CloseInfo.reason for ends that this side detected or started. When the server sends a CLOSE
# frame, reason is the server's own reason text instead (often empty).
REASON_CLIENT_CLOSE: Final = "client_close"
REASON_HEARTBEAT_TIMEOUT: Final = "heartbeat_timeout"
REASON_CONNECTION_LOST: Final = "connection_lost"
REASON_PROTOCOL_ERROR: Final = "protocol_error"
REASON_CALLBACK_ERROR: Final = "callback_error"

# Close codes after which reconnecting cannot help:
#   1002 protocol error, 1003 unsupported data, 1007 invalid payload: the server says our frames are
#     wrong; a new connection would send the same frames.
#   1008 policy violation, 1010 mandatory extension: the server refuses this client as configured.
#   3000 unauthorized, 3003 forbidden (IANA-registered): credentials, not the network.
# Not permanent: 1000 (a normal close by the server is how deployments and idle cuts end a session;
# the client reconnects), 1001 going away, 1006 abnormal, 1009 too big (one message), 1011-1014
# server trouble, and 4000-4999: Kalshi documents no application codes, so an unknown one is
# treated as transient and left to the bounded, jittered reconnect loop.
PERMANENT_CLOSE_CODES: Final[frozenset[int]] = frozenset({1002, 1003, 1007, 1008, 1010, 3000, 3003})


def is_permanent_close(code: int | None) -> bool:
    """Whether a close code from the server means "do not reconnect".

    Args:
        code: the status code of the server's CLOSE frame, or None when there was none.

    Returns:
        True for the codes in :data:`PERMANENT_CLOSE_CODES`; False otherwise (including None: a
        connection lost without a close frame is worth reconnecting).
    """
    return code is not None and code in PERMANENT_CLOSE_CODES


@dataclass(frozen=True, slots=True)
class CloseInfo:
    """How and why a connection ended.

    Attributes:
        code: the status code in the server's CLOSE frame; None if the server sent none (connection
            lost, our heartbeat gave up, or the server never answered our close).
        reason: the server's reason text when the server closed; otherwise one of the ``REASON_*``
            constants naming what this side detected or did.
        error: what went wrong, or None for a clean close. A ``KalshiConnectionError`` for a lost
            connection or heartbeat timeout, a ``KalshiProtocolError`` for a malformed stream, or the
            exception the frame callback raised (``REASON_CALLBACK_ERROR``).
        initiated_by_us: True when this side started the close (``close()``, heartbeat timeout,
            protocol or callback error).
    """

    code: int | None
    reason: str
    error: BaseException | None
    initiated_by_us: bool

    @property
    def reconnectable(self) -> bool:
        """False after a deliberate ``close()`` or a permanent server close code, else True."""
        if self.initiated_by_us and self.error is None:
            return False
        return not is_permanent_close(self.code)


# 2.0 ** 1024 overflows a float; past this exponent the cap always wins for any sane base.
_MAX_EXPONENT: Final = 62


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (0-based): full jitter.

    ``uniform(0, min(base * 2 ** attempt, cap))``, the formula of the REST and WebSocket retry
    loops. Overflow-safe for any attempt number.

    Args:
        attempt: how many attempts have failed so far (0 for the first retry).
        base: the delay scale in seconds (``KalshiConfig.retry_base_delay``).
        cap: the largest possible delay in seconds (``KalshiConfig.retry_max_delay``).
        rng: the random source; the module-level generator when None (tests pass a seeded one).

    Returns:
        A delay in ``[0, min(base * 2 ** attempt, cap)]``.

    Raises:
        ValueError: attempt is negative, or base or cap is negative.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    if base < 0 or cap < 0:
        raise ValueError("base and cap must be >= 0")
    ceiling = cap if attempt > _MAX_EXPONENT else min(base * float(1 << attempt), cap)
    if rng is None:
        return random.uniform(0.0, ceiling)
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Args:
        value: the header value, or None when the header is absent.
        now: the current time for HTTP dates (tests pin it); the wall clock when None.

    Returns:
        Non-negative seconds (a date in the past gives 0.0), or None when absent or unparsable.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds
