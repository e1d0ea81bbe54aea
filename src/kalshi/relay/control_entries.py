"""What a relay stream's control entries tell a consumer: the lifecycle events they carry.

The relay stores its connections' events (disconnected, reconnected, resubscribed, gap, repaired) as control
entries of each stream, and marks where messages were lost (a relay restart, its buffer overflowing, Redis
refusing entries).
:func:`publish_control_entry` turns one such entry into the :mod:`kalshi.ws.lifecycle` event a streaming session
would have published.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from kalshi.relay.layout import BOOK_CHANNEL, FIELD_JSON, FIELD_KIND, KIND_GAP, KIND_RELAY_START
from kalshi.ws.lifecycle import Connected, Disconnected, Gap, LifecycleEvent, Reconnected, Repaired, Resubscribed

__all__ = ["publish_control_entry"]

logger = logging.getLogger(__name__)

_JSON: Final = msgspec.json.Decoder()
_RELAYED_EVENTS: Final[dict[str, type[Any]]] = {
    "disconnected": Disconnected,
    "reconnected": Reconnected,
    "resubscribed": Resubscribed,
    "gap": Gap,
    "repaired": Repaired,
    "connected": Connected,
}


def publish_control_entry(
    channel: str, fields: Mapping[bytes, bytes], publish: Callable[[LifecycleEvent], None]
) -> None:
    """``publish`` the lifecycle event of control entry ``fields`` of ``channel``'s stream, if it carries one (an
    unreadable one is logged at debug level and skipped)."""
    kind = fields.get(FIELD_KIND, b"").decode(errors="replace")  # a foreign entry's: never fails
    if channel != BOOK_CHANNEL and kind in (KIND_RELAY_START, KIND_GAP):
        # Messages of this channel were lost (a relay restart, its buffer overflowing while Redis was away, or
        # Redis refusing entries while storing later ones);
        # the book builder reports its own, with the markets it hid.
        try:
            body = _JSON.decode(fields.get(FIELD_JSON, b"{}"))
        except msgspec.DecodeError:
            body = {}
        if kind == KIND_RELAY_START:
            publish(Gap(channel, None, reason="relay_restart"))
            return
        if isinstance(body, dict) and "dropped" in body:
            reason = "redis_refused" if body.get("reason") == "redis_refused" else "buffer_overflow"
            publish(Gap(channel, None, None, body.get("dropped"), (), reason))
            return
    cls = _RELAYED_EVENTS.get(kind)
    if cls is None:
        return
    try:
        body = _JSON.decode(fields.get(FIELD_JSON, b"{}"))
        body.pop("at_ms", None)
        for name, value in list(body.items()):
            if isinstance(value, list):
                body[name] = tuple(value)
        publish(cls(**body))
    except (msgspec.DecodeError, TypeError, AttributeError):
        logger.debug("unreadable relayed lifecycle entry: %r", fields)
