"""The recording format: one Parquet table of frames and events, and the light envelope decoder.

A recording is a directory of zstd Parquet files named ``kalshi-<session>-<index>.parquet``; sorting the names
sorts the rows in time. Every row is either a raw WebSocket frame (``kind = 'frame'``) or an event the recorder
noticed (``connect``, ``reconnect``, ``disconnect``, ``gap``, ``duplicate``, ``resync``, ``error``,
``malformed``, ``start``, ``stop``; ``markets``: the recorded markets' price grids, ``{"price_ranges": {ticker:
[{"start", "end", "step"}, ...]}}``, written by ``kalshi record`` when it starts). One table keeps frames and events in one total order (column ``n``), so a
reconnect sits exactly between the frames of the two connections. Query it directly::

    SELECT type, count(*) FROM 'rec/*.parquet' WHERE kind = 'frame' GROUP BY type;

Columns (nullable unless noted):

=================  ==========  ==================================================================================
``n``              int64       row number within the session, from 0 (not null)
``kind``           string      ``frame`` or an event kind (not null)
``recv_ns``        int64       local receive time, epoch nanoseconds (not null)
``session``        string      the recording session (file name stem without the index; not null)
``conn``           int32       connection number within the session: 1, then 2 after the first reconnect
``type``           string      the message ``type`` (null for a malformed frame)
``channel``        string      the channel of the subscription (from ``subscribed``), or implied by ``type``
``sid``            int64       subscription id as on the wire (``msg.sid`` for ``subscribed``)
``seq``            int64       sequence number as on the wire
``cmd_id``         int64       envelope ``id`` (answers to commands, snapshots answering ``get_snapshot``)
``market_ticker``  string      ``msg.market_ticker`` when present
``ts_ms``          int64       exchange timestamp in epoch ms (``msg.ts_ms``, else integer ``msg.ts`` * 1000)
``frame``          string      the frame exactly as received (null for events)
``detail``         string      JSON describing an event (null for frames)
=================  ==========  ==================================================================================

Sids are per connection: ``(session, conn, sid)`` names a subscription.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import pyarrow as pa

__all__ = [
    "CONTROL_TYPES",
    "EVENT_KINDS",
    "FORMAT_VERSION",
    "KIND_FRAME",
    "SCHEMA",
    "TYPE_CHANNELS",
    "Envelope",
    "EnvelopeBody",
    "decode_envelope",
]

FORMAT_VERSION: Final = "1"
KIND_FRAME: Final = "frame"
EVENT_KINDS: Final = frozenset(
    {
        "start",
        "stop",
        "connect",
        "reconnect",
        "disconnect",
        "gap",
        "duplicate",
        "resync",
        "error",
        "malformed",
        "markets",
    }
)

SCHEMA: Final = pa.schema(
    [
        pa.field("n", pa.int64(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("recv_ns", pa.int64(), nullable=False),
        pa.field("session", pa.string(), nullable=False),
        pa.field("conn", pa.int32()),
        pa.field("type", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("sid", pa.int64()),
        pa.field("seq", pa.int64()),
        pa.field("cmd_id", pa.int64()),
        pa.field("market_ticker", pa.string()),
        pa.field("ts_ms", pa.int64()),
        pa.field("frame", pa.string()),
        pa.field("detail", pa.string()),
    ]
)

# Message type -> channel, for frames whose sid was subscribed before the recording saw it. Types that two
# channels share (event_lifecycle) are left to the sid map.
TYPE_CHANNELS: Final[dict[str, str]] = {
    "orderbook_snapshot": "orderbook_delta",
    "orderbook_delta": "orderbook_delta",
    "ticker": "ticker",
    "trade": "trade",
    "fill": "fill",
    "market_position": "market_positions",
    "user_order": "user_orders",
    "market_lifecycle_v2": "market_lifecycle_v2",
    "event_fee_update": "market_lifecycle_v2",
    "multivariate_market_lifecycle": "multivariate_market_lifecycle",
    "order_group_updates": "order_group_updates",
    "rfq_created": "communications",
    "rfq_deleted": "communications",
    "quote_created": "communications",
    "quote_accepted": "communications",
    "quote_executed": "communications",
    "cfbenchmarks_value": "cfbenchmarks_value",
    "cfbenchmarks_value_indexlist": "cfbenchmarks_value",
    "cfbenchmarks_value_5hz": "cfbenchmarks_value_5hz",
    "cfbenchmarks_value_5hz_indexlist": "cfbenchmarks_value_5hz",
    "pyth_value": "pyth_value",
    "pyth_value_underlying_list": "pyth_value",
    "multivariate_lookup": "multivariate",
}

CONTROL_TYPES: Final = frozenset({"subscribed", "unsubscribed", "ok", "error", "list_subscriptions"})


class EnvelopeBody(msgspec.Struct, frozen=True, gc=False):
    """The few body fields a recorder indexes; everything else in ``msg`` is skipped unparsed."""

    market_ticker: str | None = None
    ts_ms: int | None = None
    ts: int | str | None = None
    channel: str | None = None
    sid: int | None = None


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """Envelope of any server frame (``msg`` may be a list for ``list_subscriptions`` answers)."""

    type: str | None = None
    id: int | None = None
    sid: int | None = None
    seq: int | None = None
    msg: EnvelopeBody | list[Any] | None = None


_ENVELOPE_DECODER: Final = msgspec.json.Decoder(Envelope)
_ANY_DECODER: Final = msgspec.json.Decoder()


def decode_envelope(data: bytes | str) -> Envelope | None:
    """The envelope of a frame, or None when the frame is not a JSON object.

    Cheap (well under a microsecond for a delta): the body is scanned, not built. A JSON object whose fields
    have unexpected types still yields whatever envelope fields are usable.
    """
    try:
        return _ENVELOPE_DECODER.decode(data)
    except msgspec.ValidationError:
        pass
    except (msgspec.DecodeError, RecursionError):
        return None
    try:
        raw = _ANY_DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    if not isinstance(raw, dict):
        return None
    body = raw.get("msg")
    ticker = body.get("market_ticker") if isinstance(body, dict) else None
    return Envelope(
        type=_str_or_none(raw.get("type")),
        id=_int_or_none(raw.get("id")),
        sid=_int_or_none(raw.get("sid")),
        seq=_int_or_none(raw.get("seq")),
        msg=EnvelopeBody(market_ticker=_str_or_none(ticker)),
    )


def _int_or_none(value: object) -> int | None:
    return value if type(value) is int else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
