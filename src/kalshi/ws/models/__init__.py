"""Every Kalshi WebSocket message as a msgspec Struct: one tagged union on ``type``, one reused Decoder.

Attribute access follows the wire: ``msg.type``, ``msg.sid``, ``msg.seq``, ``msg.id`` on the envelope and the
body in ``msg.msg`` (``msg.msg.market_ticker``). Wire field names are kept, except the legacy integer fields of
the pre-2026-03 protocol, which are stored with a unit suffix (``yes_bid`` cents -> ``yes_bid_cents``) so that
the bare name can be an exact Decimal property that reads the current ``*_dollars``/``*_fp`` string and falls
back to the legacy integer: ``msg.msg.yes_bid`` works on both protocols. Money and counts stay as wire strings in
the Structs (fast to decode) and are turned into Decimal or integer ticks only when asked. Floats never appear:
JSON numbers that may carry decimals (strikes, fee multipliers) decode straight into Decimal.

Decoding is tolerant: unknown fields are ignored; optional fields default to None; an unknown ``type`` decodes to
:class:`UnknownMessage`. Anything else malformed raises :class:`~kalshi.errors.KalshiProtocolError` from
:func:`decode_message` (the sans-I/O protocol turns it into an event).
"""

from __future__ import annotations

from typing import Any, Final, get_args

import msgspec

from kalshi.errors import KalshiProtocolError
from kalshi.ws.codes import CHANNEL_TABLE, CHANNEL_TYPES
from kalshi.ws.models._base import DataMessage, Message, Payload
from kalshi.ws.models.book import (
    BookSide,
    OrderbookDeltaMessage,
    OrderbookDeltaPayload,
    OrderbookSnapshotMessage,
    OrderbookSnapshotPayload,
)
from kalshi.ws.models.commands import (
    COMMAND_DECODER,
    COMMAND_ENCODER,
    UPDATE_ACTIONS,
    ClientCommand,
    Command,
    ListSubscriptionsCommand,
    SubscribeCommand,
    SubscribeParams,
    UnsubscribeCommand,
    UnsubscribeParams,
    UpdateSubscriptionCommand,
    UpdateSubscriptionParams,
)
from kalshi.ws.models.comms import (
    CommunicationsMessage,
    CommunicationsPayload,
    MveSelectedLeg,
    QuoteAcceptedMessage,
    QuoteAcceptedPayload,
    QuoteCreatedMessage,
    QuoteCreatedPayload,
    QuoteExecutedMessage,
    QuoteExecutedPayload,
    RfqCreatedMessage,
    RfqCreatedPayload,
    RfqDeletedMessage,
    RfqDeletedPayload,
)
from kalshi.ws.models.control import (
    ErrorMessage,
    ErrorPayload,
    ListSubscriptionsMessage,
    OkMessage,
    OkPayload,
    SubscribedMessage,
    SubscriptionInfo,
    UnknownMessage,
    UnsubscribedMessage,
)
from kalshi.ws.models.indices import (
    Cfbenchmarks5HzIndexListMessage,
    CfbenchmarksAverage,
    CfbenchmarksIndexListMessage,
    CfbenchmarksValue5HzMessage,
    CfbenchmarksValue5HzPayload,
    CfbenchmarksValueMessage,
    CfbenchmarksValuePayload,
    IndexListPayload,
    PythUnderlyingListMessage,
    PythValueMessage,
    PythValuePayload,
    UnderlyingListPayload,
)
from kalshi.ws.models.market import (
    EventFeeUpdateMessage,
    EventFeeUpdatePayload,
    EventLifecycleMessage,
    EventLifecyclePayload,
    LifecycleAdditionalMetadata,
    MarketLifecycleMessage,
    MarketLifecyclePayload,
    MultivariateLifecycleMessage,
    MultivariateLookupPayload,
    MultivariateMessage,
    PriceRange,
    SelectedMarket,
    TickerMessage,
    TickerPayload,
    TradeMessage,
    TradePayload,
)
from kalshi.ws.models.private import (
    FillMessage,
    FillPayload,
    MarketPositionPayload,
    MarketPositionsMessage,
    OrderGroupMessage,
    OrderGroupPayload,
    UserOrderPayload,
    UserOrdersMessage,
)

__all__ = [
    "CHANNELS",
    "CHANNEL_MESSAGES",
    "COMMAND_DECODER",
    "COMMAND_ENCODER",
    "CONTROL_TYPES",
    "MESSAGE_DECODER",
    "MESSAGE_ENCODER",
    "MESSAGE_TYPES",
    "RETIRED_CHANNELS",
    "SEQUENCED_CHANNELS",
    "SEQUENCED_TYPES",
    "SEQ_CONSUMING_CONTROL_TYPES",
    "UPDATE_ACTIONS",
    "AnyMessage",
    "BookSide",
    "Cfbenchmarks5HzIndexListMessage",
    "CfbenchmarksAverage",
    "CfbenchmarksIndexListMessage",
    "CfbenchmarksValue5HzMessage",
    "CfbenchmarksValue5HzPayload",
    "CfbenchmarksValueMessage",
    "CfbenchmarksValuePayload",
    "ClientCommand",
    "Command",
    "CommunicationsMessage",
    "CommunicationsPayload",
    "DataMessage",
    "ErrorMessage",
    "ErrorPayload",
    "EventFeeUpdateMessage",
    "EventFeeUpdatePayload",
    "EventLifecycleMessage",
    "EventLifecyclePayload",
    "FillMessage",
    "FillPayload",
    "IndexListPayload",
    "LifecycleAdditionalMetadata",
    "ListSubscriptionsCommand",
    "ListSubscriptionsMessage",
    "MarketLifecycleMessage",
    "MarketLifecyclePayload",
    "MarketPositionPayload",
    "MarketPositionsMessage",
    "Message",
    "MultivariateLifecycleMessage",
    "MultivariateLookupPayload",
    "MultivariateMessage",
    "MveSelectedLeg",
    "OkMessage",
    "OkPayload",
    "OrderGroupMessage",
    "OrderGroupPayload",
    "OrderbookDeltaMessage",
    "OrderbookDeltaPayload",
    "OrderbookSnapshotMessage",
    "OrderbookSnapshotPayload",
    "Payload",
    "PriceRange",
    "PythUnderlyingListMessage",
    "PythValueMessage",
    "PythValuePayload",
    "QuoteAcceptedMessage",
    "QuoteAcceptedPayload",
    "QuoteCreatedMessage",
    "QuoteCreatedPayload",
    "QuoteExecutedMessage",
    "QuoteExecutedPayload",
    "RfqCreatedMessage",
    "RfqCreatedPayload",
    "RfqDeletedMessage",
    "RfqDeletedPayload",
    "SelectedMarket",
    "ServerMessage",
    "SubscribeCommand",
    "SubscribeParams",
    "SubscribedMessage",
    "SubscriptionInfo",
    "TickerMessage",
    "TickerPayload",
    "TradeMessage",
    "TradePayload",
    "UnderlyingListPayload",
    "UnknownMessage",
    "UnsubscribeCommand",
    "UnsubscribeParams",
    "UnsubscribedMessage",
    "UpdateSubscriptionCommand",
    "UpdateSubscriptionParams",
    "UserOrderPayload",
    "UserOrdersMessage",
    "decode_fallback",
    "decode_message",
    "message_market",
]

ServerMessage = (
    OrderbookDeltaMessage
    | TickerMessage
    | OrderbookSnapshotMessage
    | TradeMessage
    | FillMessage
    | MarketPositionsMessage
    | UserOrdersMessage
    | OrderGroupMessage
    | MarketLifecycleMessage
    | MultivariateLifecycleMessage
    | EventLifecycleMessage
    | EventFeeUpdateMessage
    | MultivariateMessage
    | RfqCreatedMessage
    | RfqDeletedMessage
    | QuoteCreatedMessage
    | QuoteAcceptedMessage
    | QuoteExecutedMessage
    | CfbenchmarksValueMessage
    | CfbenchmarksIndexListMessage
    | CfbenchmarksValue5HzMessage
    | Cfbenchmarks5HzIndexListMessage
    | PythValueMessage
    | PythUnderlyingListMessage
    | SubscribedMessage
    | UnsubscribedMessage
    | OkMessage
    | ErrorMessage
    | ListSubscriptionsMessage
)
"""Every message type this version knows (the tagged union)."""

AnyMessage = ServerMessage | UnknownMessage
"""What decoding a well-formed frame yields."""

MESSAGE_DECODER: Final[msgspec.json.Decoder[ServerMessage]] = msgspec.json.Decoder(ServerMessage)
"""The one Decoder of server frames (reuse it: building a Decoder is the expensive part)."""
MESSAGE_ENCODER: Final = msgspec.json.Encoder()

MESSAGE_TYPES: Final[dict[str, type[Message]]] = {cls.type: cls for cls in get_args(ServerMessage)}
"""Wire ``type`` -> message class."""

CHANNELS: Final = tuple(spec.name for spec in CHANNEL_TABLE if not spec.retired)
"""The channels a subscribe command may name today."""

RETIRED_CHANNELS: Final = ("multivariate", "ticker_v2")

CHANNEL_MESSAGES: Final[dict[str, tuple[type[Message], ...]]] = {
    channel: tuple(MESSAGE_TYPES[kind] for kind in kinds) for channel, kinds in CHANNEL_TYPES.items()
}
"""Channel -> the message classes it delivers (``multivariate`` is retired, kept for recordings); built from
:data:`kalshi.ws.codes.CHANNEL_TABLE`."""

CONTROL_TYPES: Final = frozenset({"subscribed", "unsubscribed", "ok", "error", "list_subscriptions"})

SEQUENCED_TYPES: Final = frozenset(
    {
        "orderbook_snapshot",
        "orderbook_delta",
        "trade",
        "order_group_updates",
        "market_lifecycle_v2",
        "multivariate_market_lifecycle",
        "event_lifecycle",
        "event_fee_update",
        "rfq_created",
        "rfq_deleted",
        "quote_created",
        "quote_accepted",
        "quote_executed",
        "cfbenchmarks_value",
        "cfbenchmarks_value_indexlist",
        "cfbenchmarks_value_5hz",
        "cfbenchmarks_value_5hz_indexlist",
        "pyth_value",
        "pyth_value_underlying_list",
        "multivariate_lookup",
    }
)
"""Data message types whose envelope carries ``seq`` (required in the spec; ``multivariate_lookup`` is retired).
``ticker``, ``fill``, ``market_position`` and ``user_order`` carry none."""

SEQ_CONSUMING_CONTROL_TYPES: Final = frozenset({"ok", "unsubscribed", "error"})
"""Control responses that, when they carry ``sid`` and ``seq``, use up a number of that sid's sequence."""

SEQUENCED_CHANNELS: Final = frozenset(
    channel for channel, classes in CHANNEL_MESSAGES.items() if any(cls.type in SEQUENCED_TYPES for cls in classes)
)

_RAW_DECODER: Final = msgspec.json.Decoder(dict[str, Any])
_ERROR_TEXT_LIMIT: Final = 200


def _protocol_error(what: str, exc: BaseException) -> KalshiProtocolError:
    text = str(exc)
    if len(text) > _ERROR_TEXT_LIMIT:
        # msgspec echoes offending values; a 10 MB string must not end up in a log line.
        text = text[:_ERROR_TEXT_LIMIT] + "..."
    return KalshiProtocolError(f"{what}: {text}")


def decode_fallback(data: bytes | str, exc: msgspec.ValidationError) -> UnknownMessage:
    """Second chance for a frame the typed Decoder rejected: an unknown ``type`` becomes an UnknownMessage.

    Args:
        data: the frame.
        exc: the Decoder's error, re-raised (as KalshiProtocolError) when the type is known.

    Raises:
        KalshiProtocolError: the frame is a known type with bad fields, or not a JSON object with a string type.
    """
    try:
        raw = _RAW_DECODER.decode(data)
    except (msgspec.MsgspecError, RecursionError, ValueError) as inner:
        raise _protocol_error("malformed frame", inner) from exc
    kind = raw.get("type")
    if isinstance(kind, str) and kind not in MESSAGE_TYPES:
        return UnknownMessage.from_raw(raw)
    shown = kind[:60] if isinstance(kind, str) else None
    raise _protocol_error(f"malformed {shown or 'untyped'} message", exc) from exc


def decode_message(data: bytes | str) -> ServerMessage | UnknownMessage:
    """Decode one text frame.

    Raises:
        KalshiProtocolError: the frame is not JSON, or a known message type with missing or mistyped fields.
    """
    try:
        return MESSAGE_DECODER.decode(data)
    except msgspec.ValidationError as exc:
        return decode_fallback(data, exc)
    except (msgspec.MsgspecError, RecursionError, ValueError, TypeError) as exc:
        raise _protocol_error("malformed frame", exc) from exc


def message_market(message: object) -> str | None:
    """The market ticker a message is about (conflation key), or None (events, indices, control).

    Works for every message class (``user_order`` names its market ``ticker``) and for UnknownMessage.
    """
    payload = getattr(message, "msg", None)
    ticker = payload.get("market_ticker") if isinstance(payload, dict) else getattr(payload, "market_ticker", None)
    return ticker if isinstance(ticker, str) else None
