"""The per-frame receive path of :class:`~kalshi.ws.protocol.ClientProtocol`. No asyncio, no sockets.

:meth:`ClientProtocol.receiver <kalshi.ws.protocol.ClientProtocol.receiver>` is the closure built here, and
:class:`ReceiveParts` hands its pieces to a receive path that inlines the common case (the streaming client's
router). Both are re-exported by :mod:`kalshi.ws.protocol`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import msgspec

from kalshi.ws.models import (
    MESSAGE_TYPES,
    SEQUENCED_TYPES,
    AnyMessage,
    Cfbenchmarks5HzIndexListMessage,
    CfbenchmarksIndexListMessage,
    ErrorMessage,
    OrderbookDeltaMessage,
    PythUnderlyingListMessage,
    SubscribedMessage,
    TickerMessage,
)
from kalshi.ws.protocol_events import ReceiveResult

__all__ = ["DECODE_ERRORS", "LIST_REPLIES", "ReceiveParts", "make_receiver"]

# Replies to update_subscription list actions: data messages that also answer a command.
LIST_REPLIES: Final = frozenset(
    {CfbenchmarksIndexListMessage, Cfbenchmarks5HzIndexListMessage, PythUnderlyingListMessage}
)
# Types a tapped sid may skip decoding for: data that only advances the sid's sequence (snapshots re-base it and
# list replies answer commands, so those are always decoded).
_TAP_TYPES: Final = frozenset(
    kind
    for kind, cls in MESSAGE_TYPES.items()
    if kind != "orderbook_snapshot" and cls not in LIST_REPLIES and cls not in (SubscribedMessage, ErrorMessage)
)
DECODE_ERRORS: Final = (msgspec.MsgspecError, ValueError, RecursionError, TypeError)


class _Envelope(msgspec.Struct, gc=False):
    """What a tapped frame is read for: the body is skipped, not decoded."""

    type: str = ""
    sid: int | None = None
    seq: int | None = None
    id: int | None = None


_ENVELOPE_DECODE: Final = msgspec.json.Decoder(_Envelope).decode


@dataclass(frozen=True, slots=True)
class ReceiveParts:
    """:meth:`ClientProtocol.receive_frame` in pieces, for a receive path that inlines the common case.

    ``receive_frame(data)`` is ``decoded(data, decode(data))``, with ``undecodable(data, exc)`` for a ``decode``
    that raised one of ``decode_errors``. The common case a caller may take itself, when ``validate_book`` is
    off: a decoded ``OrderbookDeltaMessage`` whose ``seq == last_seqs[sid] + 1`` is in order (store the new seq
    in ``last_seqs``); a ``TickerMessage`` is always delivered as it is. Everything else goes to ``decoded``.
    While ``tapped_sids`` is not empty, use ``receive`` (the whole of :meth:`ClientProtocol.receiver`).
    """

    decode: Callable[[bytes | str], AnyMessage]
    decode_errors: tuple[type[BaseException], ...]
    last_seqs: dict[int, int]
    decoded: Callable[[bytes | str, AnyMessage], ReceiveResult]
    undecodable: Callable[[bytes | str, BaseException], ReceiveResult]
    tapped_sids: set[int]
    receive: Callable[[bytes | str], ReceiveResult | None]
    validate_book: bool


def make_receiver(
    decode: Callable[[bytes | str], AnyMessage],
    last_seqs: dict[int, int],
    decoded: Callable[[bytes | str, AnyMessage], ReceiveResult],
    undecodable: Callable[[bytes | str, BaseException], ReceiveResult],
    tapped: set[int],
    validate: bool,
) -> Callable[[bytes | str], ReceiveResult | None]:
    """The closure behind :meth:`ClientProtocol.receiver`, over the protocol's own state (the same pieces as
    :class:`ReceiveParts`): in-order deltas and tickers are taken here, everything else goes to ``decoded`` or
    ``undecodable``."""
    delta_class = OrderbookDeltaMessage
    ticker_class = TickerMessage
    errors = DECODE_ERRORS

    envelope = _ENVELOPE_DECODE
    tap_types = _TAP_TYPES
    sequenced = SEQUENCED_TYPES

    def receive(data: bytes | str) -> ReceiveResult | None:
        if tapped:
            try:
                head = envelope(data)
            except errors:
                head = None
            if head is not None and head.sid in tapped and head.type in tap_types and head.id is None:
                seq = head.seq
                if head.type not in sequenced:
                    return None
                if seq is not None:
                    last = last_seqs.get(head.sid)
                    if last is not None and seq == last + 1:
                        last_seqs[head.sid] = seq
                        return None
        try:
            message = decode(data)
        except errors as exc:
            return undecodable(data, exc)
        cls = message.__class__
        if cls is delta_class and not validate:
            delta: OrderbookDeltaMessage = message  # type: ignore[assignment]  # narrowed by the class check
            seq = delta.seq
            if seq is not None:
                sid = delta.sid
                last = last_seqs.get(sid)
                if last is not None and seq == last + 1:
                    last_seqs[sid] = seq
                    return delta
        elif cls is ticker_class:
            return message
        return decoded(data, message)

    return receive
