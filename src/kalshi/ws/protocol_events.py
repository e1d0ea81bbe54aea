"""What :meth:`kalshi.ws.protocol.ClientProtocol.receive_frame` returns besides messages: the protocol's events.

Plain frozen values, no I/O (a sans-I/O module like the protocol itself, which re-exports them).
"""

from __future__ import annotations

from dataclasses import dataclass

from kalshi.errors import KalshiCommandError, KalshiProtocolError, KalshiSequenceGapError
from kalshi.ws.models import (
    AnyMessage,
    ClientCommand,
    ErrorMessage,
    ListSubscriptionsMessage,
    OkMessage,
    SubscribedMessage,
    UnsubscribedMessage,
)

__all__ = [
    "AwaitingSnapshotDropped",
    "CommandResponse",
    "DuplicateDropped",
    "GapDetected",
    "ProtocolErrorEvent",
    "ProtocolEvent",
    "ProtocolStats",
    "ReceiveResult",
    "ResponseMessage",
    "ServerError",
]

ResponseMessage = SubscribedMessage | UnsubscribedMessage | OkMessage | ListSubscriptionsMessage | ErrorMessage


class ProtocolEvent:
    """Base of everything :meth:`ClientProtocol.receive_frame` returns that is not a server message."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class CommandResponse(ProtocolEvent):
    """The server answered a command: ``subscribed``, ``unsubscribed``, ``ok``, ``list_subscriptions`` or
    ``error``. ``command`` is the command sent with ``cmd_id`` (None when unknown or already finished);
    ``final`` is True when no further response to it is expected (subscribe gets one per channel)."""

    cmd_id: int | None
    message: ResponseMessage
    command: ClientCommand | None = None
    final: bool = True

    @property
    def error(self) -> KalshiCommandError | None:
        """The command's failure as an exception, or None when it succeeded."""
        if isinstance(self.message, ErrorMessage):
            return self.message.to_error()
        return None


@dataclass(frozen=True, slots=True)
class ServerError(ProtocolEvent):
    """An ``error`` not answering a command (e.g. code 25, buffer overflow, on a sid)."""

    message: ErrorMessage

    @property
    def sid(self) -> int | None:
        return self.message.sid

    @property
    def code(self) -> int:
        return self.message.msg.code

    @property
    def terminal(self) -> bool:
        """The server ended the subscription (codes 10 and 25): the protocol has forgotten the sid."""
        return self.message.terminal

    def to_error(self) -> KalshiCommandError:
        """The matching exception."""
        return self.message.to_error()


@dataclass(frozen=True, slots=True)
class GapDetected(ProtocolEvent):
    """``seq`` skipped numbers on ``sid``: state derived from the sid is stale. ``message`` (the one that
    revealed the gap) was not delivered."""

    sid: int
    expected: int
    received: int
    message: AnyMessage
    channel: str | None = None

    def to_error(self) -> KalshiSequenceGapError:
        """The matching exception, for callers that raise on gaps."""
        return KalshiSequenceGapError(self.sid, self.expected, self.received)


@dataclass(frozen=True, slots=True)
class DuplicateDropped(ProtocolEvent):
    """A data message whose ``seq`` was not new was dropped."""

    sid: int
    seq: int


@dataclass(frozen=True, slots=True)
class AwaitingSnapshotDropped(ProtocolEvent):
    """A delta arrived on a sid waiting for a snapshot (after :meth:`ClientProtocol.reset_sequence`); dropped."""

    sid: int
    seq: int | None


@dataclass(frozen=True, slots=True)
class ProtocolErrorEvent(ProtocolEvent):
    """A frame could not be used. ``raw_preview`` is its first 200 characters, escaped for logs. ``sid``/``seq``
    are set when the envelope was readable (the message's seq was not counted, so the sid also reports a gap)."""

    error: KalshiProtocolError
    raw_preview: str
    sid: int | None = None
    seq: int | None = None


ReceiveResult = AnyMessage | ProtocolEvent
"""What :meth:`ClientProtocol.receive_frame` returns."""


@dataclass(slots=True)
class ProtocolStats:
    """Counters of the rare outcomes (the hot path counts nothing)."""

    gaps: int = 0
    duplicates: int = 0
    awaiting_snapshot_drops: int = 0
    protocol_errors: int = 0
    unknown_messages: int = 0
    server_errors: int = 0
