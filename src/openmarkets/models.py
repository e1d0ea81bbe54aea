"""OpenMarkets stream messages: msgspec Structs, one tagged union on ``type``, one reused Decoder.

Wire names are kept. Prices and sizes are exact: JSON numbers such as ``0.49`` decode straight to
``Decimal('0.49')`` (msgspec reads the number's text, never a float). Times are timezone-aware datetimes.

Shapes beyond the published ones (documented here because the client relies on them):

* ``unsubscribed`` confirms an unsubscribe: ``{"type": "unsubscribed", "channel", "contest_ids": [removed]}``.
* ``contest_state.update`` on the ``contest_state`` channel: ``{"type", "contest_id", "state", "timestamp"}``.
* A liquidity entry with ``available`` 0 means the quote is gone: it is removed from the table.
* REST ``GET {rest_url}/contests/{contest_id}/liquidity`` answers ``{"contest_id", "entries": [...], "timestamp"}``.

A message with an unknown ``type`` decodes to :class:`UnknownMessage` rather than failing, so new server
messages (the roadmap promises some) do not break old clients.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Final, TypeAlias

import msgspec

from openmarkets.errors import OpenMarketsProtocolError

__all__ = [
    "CHANNEL_CONTEST_STATE",
    "CHANNEL_LIQUIDITY",
    "ConnectedMessage",
    "ContestStateUpdate",
    "ErrorMessage",
    "LiquidityEntry",
    "LiquiditySnapshot",
    "LiquidityUpdate",
    "Message",
    "PongMessage",
    "SubscribedMessage",
    "UnknownMessage",
    "UnsubscribedMessage",
    "decode_message",
    "decode_snapshot",
    "encode_command",
]

CHANNEL_LIQUIDITY: Final = "liquidity"
CHANNEL_CONTEST_STATE: Final = "contest_state"


class LiquidityEntry(msgspec.Struct, frozen=True):
    """One partner's quote in a contest, identified by ``liquidity_hash``."""

    liquidity_hash: str
    partner_id: str
    price: Decimal
    available: Decimal


class ConnectedMessage(msgspec.Struct, frozen=True, tag_field="type", tag="connected"):
    """The greeting sent once the WebSocket opens."""

    organization_id: str
    api_key_id: str
    server_time: datetime


class SubscribedMessage(msgspec.Struct, frozen=True, tag_field="type", tag="subscribed"):
    """Confirms a subscribe; ``contest_ids`` is the connection's whole filter list for the channel."""

    channel: str
    contest_ids: list[str] = []


class UnsubscribedMessage(msgspec.Struct, frozen=True, tag_field="type", tag="unsubscribed"):
    """Confirms an unsubscribe; ``contest_ids`` are the contests removed."""

    channel: str
    contest_ids: list[str] = []


class LiquidityUpdate(msgspec.Struct, frozen=True, tag_field="type", tag="liquidity.update"):
    """Changed quotes of one contest; ``refresh_required`` means "re-fetch the whole table over REST"."""

    contest_id: str
    changed_entries: list[LiquidityEntry] = []
    refresh_required: bool = False
    timestamp: datetime | None = None


class ContestStateUpdate(msgspec.Struct, frozen=True, tag_field="type", tag="contest_state.update"):
    """A contest changed state (e.g. ``scheduled`` -> ``live`` -> ``final``)."""

    contest_id: str
    state: str
    timestamp: datetime | None = None


class PongMessage(msgspec.Struct, frozen=True, tag_field="type", tag="pong"):
    """The answer to a ``ping`` action."""

    server_time: datetime | None = None


class ErrorMessage(msgspec.Struct, frozen=True, tag_field="type", tag="error"):
    """An in-band error (``invalid_message``, ``invalid_channel``, ...)."""

    code: str
    message: str = ""


class UnknownMessage(msgspec.Struct, frozen=True):
    """A message whose ``type`` this client does not know; ``raw`` is the frame as received."""

    type: str
    raw: bytes


Message: TypeAlias = (
    ConnectedMessage
    | SubscribedMessage
    | UnsubscribedMessage
    | LiquidityUpdate
    | ContestStateUpdate
    | PongMessage
    | ErrorMessage
)


class LiquiditySnapshot(msgspec.Struct, frozen=True):
    """The REST answer with a contest's whole liquidity table."""

    contest_id: str
    entries: list[LiquidityEntry] = []
    timestamp: datetime | None = None


class _Envelope(msgspec.Struct):
    type: str | None = None


_DECODER: Final[msgspec.json.Decoder[Message]] = msgspec.json.Decoder(Message)
_ENVELOPE: Final = msgspec.json.Decoder(_Envelope)
_SNAPSHOT: Final = msgspec.json.Decoder(LiquiditySnapshot)
_KNOWN_TYPES: Final = frozenset(
    cls.__struct_config__.tag
    for cls in (
        ConnectedMessage,
        SubscribedMessage,
        UnsubscribedMessage,
        LiquidityUpdate,
        ContestStateUpdate,
        PongMessage,
        ErrorMessage,
    )
)
_ENCODER: Final = msgspec.json.Encoder()


def decode_message(data: bytes) -> Message | UnknownMessage:
    """Decode one frame.

    Args:
        data: the frame's payload.

    Returns:
        The typed message, or UnknownMessage for a ``type`` this client does not know.

    Raises:
        OpenMarketsProtocolError: not JSON, not an object with a ``type``, or a known type with bad fields.
    """
    try:
        return _DECODER.decode(data)
    except msgspec.ValidationError as exc:
        try:
            kind = _ENVELOPE.decode(data).type
        except msgspec.DecodeError:
            kind = None
        if kind is not None and kind not in _KNOWN_TYPES:
            return UnknownMessage(type=kind, raw=bytes(data))
        raise OpenMarketsProtocolError(f"malformed {kind or 'untyped'} message from the server: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise OpenMarketsProtocolError(f"the server sent a frame that is not JSON: {exc}") from exc


def decode_snapshot(data: bytes) -> LiquiditySnapshot:
    """Decode the REST liquidity answer.

    Args:
        data: the response body.

    Returns:
        The snapshot.

    Raises:
        OpenMarketsProtocolError: the body is not a valid snapshot.
    """
    try:
        return _SNAPSHOT.decode(data)
    except msgspec.DecodeError as exc:
        raise OpenMarketsProtocolError(f"malformed liquidity snapshot from the REST API: {exc}") from exc


def encode_command(action: str, channel: str | None = None, contest_ids: list[str] | None = None) -> bytes:
    """Encode a client action (``subscribe``, ``unsubscribe``, ``ping``).

    Args:
        action: the action name.
        channel: the channel, for subscribe/unsubscribe.
        contest_ids: the contests, for subscribe/unsubscribe.

    Returns:
        The JSON text as bytes.
    """
    body: dict[str, object] = {"action": action}
    if channel is not None:
        body["channel"] = channel
    if contest_ids is not None:
        body["contest_ids"] = contest_ids
    return _ENCODER.encode(body)
