"""Lean decoding of the hot recorded frames (book deltas and trades) for the backtest loop.

A backtest reads millions of deltas and needs five of their fields; decoding them into these small Structs
costs about half of decoding the full :mod:`kalshi.ws.models` classes. Other market-data types decode as
markers and are then decoded in full with :func:`kalshi.ws.models.decode_message`, so their handling is the
streaming client's. Legacy shapes (cent prices, integer counts) fall back to the full models too.
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = ["LEAN_DECODER", "LEAN_TICKER", "FullFrame", "LeanDelta", "LeanDeltaBody", "LeanTrade", "LeanTradeBody"]


class LeanDeltaBody(msgspec.Struct, frozen=True, gc=False):
    """The fields of an ``orderbook_delta`` body a backtest uses."""

    market_ticker: str
    side: str
    price_dollars: str | None = None
    delta_fp: str | None = None
    client_order_id: str | None = None
    ts_ms: int | None = None


class LeanDelta(msgspec.Struct, frozen=True, gc=False, tag="orderbook_delta", tag_field="type"):
    """An ``orderbook_delta`` frame."""

    msg: LeanDeltaBody
    sid: int | None = None
    seq: int | None = None


class LeanTradeBody(msgspec.Struct, frozen=True, gc=False):
    """The fields of a ``trade`` body a backtest uses."""

    market_ticker: str
    yes_price_dollars: str | None = None
    count_fp: str | None = None
    taker_side: str | None = None
    taker_outcome_side: str | None = None
    ts_ms: int | None = None


class LeanTrade(msgspec.Struct, frozen=True, gc=False, tag="trade", tag_field="type"):
    """A ``trade`` frame."""

    msg: LeanTradeBody


class FullFrame(msgspec.Struct, frozen=True, gc=False, tag_field="type"):
    """Marker: a frame to decode in full (snapshot, ticker, lifecycle)."""


class _Snapshot(FullFrame, frozen=True, gc=False, tag="orderbook_snapshot"):
    pass


class _Ticker(FullFrame, frozen=True, gc=False, tag="ticker"):
    pass


class _Lifecycle(FullFrame, frozen=True, gc=False, tag="market_lifecycle_v2"):
    pass


LEAN_TICKER: Final = _Ticker

LEAN_DECODER: Final[msgspec.json.Decoder[LeanDelta | LeanTrade | _Snapshot | _Ticker | _Lifecycle]] = (
    msgspec.json.Decoder(LeanDelta | LeanTrade | _Snapshot | _Ticker | _Lifecycle)
)
