"""Control responses (subscribed, unsubscribed, ok, error, list_subscriptions) and the unknown-type fallback."""

from __future__ import annotations

from typing import Any

import msgspec

from kalshi.errors import WS_ERROR_CODES, KalshiCommandError
from kalshi.ws.models._base import MAX_INT64, Message, Payload, Sid

__all__ = [
    "ErrorMessage",
    "ErrorPayload",
    "ListSubscriptionsMessage",
    "OkMessage",
    "OkPayload",
    "SubscribedMessage",
    "SubscriptionInfo",
    "UnknownMessage",
    "UnsubscribedMessage",
]


class SubscriptionInfo(Payload, frozen=True, kw_only=True):
    """A subscription: its channel and server-assigned ``sid`` (body of ``subscribed``, items of the list)."""

    channel: str
    sid: Sid


class OkPayload(Payload, frozen=True, kw_only=True):
    """Body of ``ok`` after update_subscription: the subscription's full filter after the update."""

    market_tickers: list[str] | None = None
    market_ids: list[str] | None = None
    index_ids: list[str] | None = None
    underlying_tickers: list[str] | None = None


class ErrorPayload(Payload, frozen=True, kw_only=True):
    """Body of ``error``: ``code`` (1-28, see :data:`kalshi.errors.WS_ERROR_CODES`) and text ``msg``."""

    code: int
    msg: str = ""
    market_ticker: str | None = None
    market_tickers: list[str] | None = None

    @property
    def message(self) -> str:
        """The human-readable text (wire field ``msg``)."""
        return self.msg


class SubscribedMessage(Message, tag="subscribed", frozen=True, kw_only=True):
    """``subscribed``: the server assigned ``msg.sid`` to ``msg.channel``."""

    type = "subscribed"
    msg: SubscriptionInfo


class UnsubscribedMessage(Message, tag="unsubscribed", frozen=True, kw_only=True):
    """``unsubscribed``: envelope ``sid`` ended; its ``seq`` counts in the sid's sequence."""

    type = "unsubscribed"
    msg: dict[str, Any] | None = None


class OkMessage(Message, tag="ok", frozen=True, kw_only=True):
    """``ok``: an update succeeded. The list_subscriptions reply also arrives as ``ok`` with a list body."""

    type = "ok"
    msg: OkPayload | list[SubscriptionInfo] | None = None

    @property
    def subscriptions(self) -> list[SubscriptionInfo] | None:
        """The active subscriptions when this ``ok`` answers ``list_subscriptions``, else None."""
        return self.msg if isinstance(self.msg, list) else None


class ListSubscriptionsMessage(Message, tag="list_subscriptions", frozen=True, kw_only=True):
    """``list_subscriptions`` reply (the spec also shows it typed ``ok``, see :class:`OkMessage`)."""

    type = "list_subscriptions"
    msg: list[SubscriptionInfo]

    @property
    def subscriptions(self) -> list[SubscriptionInfo]:
        """The active subscriptions."""
        return self.msg


class ErrorMessage(Message, tag="error", frozen=True, kw_only=True):
    """``error``: a command failed (``id`` set) or a subscription failed (``sid`` set, e.g. code 25)."""

    type = "error"
    msg: ErrorPayload

    @property
    def code(self) -> int:
        """The error code."""
        return self.msg.code

    @property
    def terminal(self) -> bool:
        """True when the server ended the subscription (codes 10 and 25): resubscribe to continue."""
        info = WS_ERROR_CODES.get(self.msg.code)
        return info.terminal_for_subscription if info else False

    def to_error(self) -> KalshiCommandError:
        """The matching exception, for callers that raise it."""
        return KalshiCommandError(self.msg.code, self.msg.msg, sid=self.sid, cmd_id=self.id or None)


class UnknownMessage(msgspec.Struct, frozen=True, gc=False, kw_only=True):
    """A well-formed message whose ``type`` this version does not know; kept whole in ``raw``.

    ``sid``/``seq``/``id`` are lifted from the envelope when they are integers, so sequence tracking still
    counts the message.
    """

    type: str
    raw: dict[str, Any]
    msg: Any = None
    id: int | None = None
    sid: int | None = None
    seq: int | None = None

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> UnknownMessage:
        """Build from a decoded JSON object whose ``type`` is a string.

        Raises:
            ValueError: ``raw["type"]`` is not a string.
        """
        kind = raw.get("type")
        if not isinstance(kind, str):
            raise ValueError("message has no string 'type'")
        return cls(
            type=kind,
            raw=raw,
            msg=raw.get("msg"),
            id=_envelope_int(raw.get("id")),
            sid=_envelope_int(raw.get("sid")),
            seq=_envelope_int(raw.get("seq")),
        )


def _envelope_int(value: object) -> int | None:
    # bool is an int subclass; a JSON true is not an id.
    if type(value) is int and 0 <= value <= MAX_INT64:
        return value
    return None
