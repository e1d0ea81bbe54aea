"""Public market-data messages: ticker, trade, market/event lifecycle and the retired multivariate lookup."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from kalshi.ws.models._base import (
    DataMessage,
    Payload,
    Timestamp,
    count_or_none,
    money_or_none,
    price_or_none,
    timestamp_ms,
)

__all__ = [
    "EventFeeUpdateMessage",
    "EventFeeUpdatePayload",
    "EventLifecycleMessage",
    "EventLifecyclePayload",
    "LifecycleAdditionalMetadata",
    "MarketLifecycleMessage",
    "MarketLifecyclePayload",
    "MultivariateLifecycleMessage",
    "MultivariateLookupPayload",
    "MultivariateMessage",
    "PriceRange",
    "SelectedMarket",
    "TickerMessage",
    "TickerPayload",
    "TradeMessage",
    "TradePayload",
]


class TickerPayload(Payload, frozen=True, kw_only=True):
    """Top of book, last price, volume and open interest of one market.

    The current protocol sends only ``*_dollars``/``*_fp`` strings. The legacy integer fields ``price``,
    ``yes_bid``, ``yes_ask`` (cents) and ``volume``, ``open_interest`` (contracts) are stored as ``price_cents``,
    ``yes_bid_cents``, ``yes_ask_cents``, ``volume_contracts`` and ``open_interest_contracts``, so that the bare
    names can be exact views that work on both protocols: ``msg.msg.yes_bid`` is ``Decimal("0.4500")`` dollars
    whether the wire said ``"yes_bid_dollars": "0.4500"`` or ``"yes_bid": 45``.
    """

    market_ticker: str
    market_id: str | None = None
    price_dollars: str | None = None
    yes_bid_dollars: str | None = None
    yes_ask_dollars: str | None = None
    volume_fp: str | None = None
    open_interest_fp: str | None = None
    dollar_volume: int | None = None
    dollar_open_interest: int | None = None
    yes_bid_size_fp: str | None = None
    yes_ask_size_fp: str | None = None
    last_trade_size_fp: str | None = None
    ts: Timestamp | None = None
    ts_ms: int | None = None
    time: str | None = None
    price_cents: int | None = msgspec.field(default=None, name="price")
    yes_bid_cents: int | None = msgspec.field(default=None, name="yes_bid")
    yes_ask_cents: int | None = msgspec.field(default=None, name="yes_ask")
    volume_contracts: int | None = msgspec.field(default=None, name="volume")
    open_interest_contracts: int | None = msgspec.field(default=None, name="open_interest")

    @property
    def price(self) -> Decimal | None:
        """Last traded price in dollars (exact)."""
        return price_or_none(self.price_dollars, self.price_cents)

    @property
    def yes_bid(self) -> Decimal | None:
        """Best YES bid in dollars (exact): ``yes_bid_dollars``, else legacy ``yes_bid`` cents / 100."""
        return price_or_none(self.yes_bid_dollars, self.yes_bid_cents)

    @property
    def yes_ask(self) -> Decimal | None:
        """Best YES ask in dollars (exact): ``yes_ask_dollars``, else legacy ``yes_ask`` cents / 100."""
        return price_or_none(self.yes_ask_dollars, self.yes_ask_cents)

    @property
    def volume(self) -> Decimal | None:
        """Contracts traded (exact, 2 decimals)."""
        return count_or_none(self.volume_fp, self.volume_contracts)

    @property
    def open_interest(self) -> Decimal | None:
        """Open interest in contracts (exact, 2 decimals)."""
        return count_or_none(self.open_interest_fp, self.open_interest_contracts)

    @property
    def yes_bid_size(self) -> Decimal | None:
        """Contracts at the best bid."""
        return count_or_none(self.yes_bid_size_fp)

    @property
    def yes_ask_size(self) -> Decimal | None:
        """Contracts at the best ask."""
        return count_or_none(self.yes_ask_size_fp)

    @property
    def last_trade_size(self) -> Decimal | None:
        """Contracts in the last trade."""
        return count_or_none(self.last_trade_size_fp)

    @property
    def timestamp_ms(self) -> int | None:
        """Epoch ms of the update: ``ts_ms``, else the deprecated ``ts`` (seconds)."""
        return timestamp_ms(self.ts_ms, self.ts)


class TradePayload(Payload, frozen=True, kw_only=True):
    """One public trade. Legacy ``yes_price``/``no_price`` (cents) and ``count`` are stored with suffixes."""

    market_ticker: str
    trade_id: str | None = None
    yes_price_dollars: str | None = None
    no_price_dollars: str | None = None
    count_fp: str | None = None
    taker_side: str | None = None
    taker_outcome_side: str | None = None
    taker_book_side: str | None = None
    is_block_trade: bool | None = None
    ts: Timestamp | None = None
    ts_ms: int | None = None
    yes_price_cents: int | None = msgspec.field(default=None, name="yes_price")
    no_price_cents: int | None = msgspec.field(default=None, name="no_price")
    count_contracts: int | None = msgspec.field(default=None, name="count")

    @property
    def yes_price(self) -> Decimal | None:
        """YES price in dollars (exact)."""
        return price_or_none(self.yes_price_dollars, self.yes_price_cents)

    @property
    def no_price(self) -> Decimal | None:
        """NO price in dollars (exact)."""
        return price_or_none(self.no_price_dollars, self.no_price_cents)

    @property
    def count(self) -> Decimal | None:
        """Contracts traded (exact)."""
        return count_or_none(self.count_fp, self.count_contracts)

    @property
    def timestamp_ms(self) -> int | None:
        """Epoch ms of the trade."""
        return timestamp_ms(self.ts_ms, self.ts)


class PriceRange(Payload, frozen=True, kw_only=True):
    """One band of valid prices: from ``start`` to ``end`` in steps of ``step`` (dollar strings)."""

    start: str
    end: str
    step: str


class LifecycleAdditionalMetadata(Payload, frozen=True, kw_only=True):
    """Market description sent with a ``created`` lifecycle event. Strikes are exact Decimals."""

    name: str | None = None
    title: str | None = None
    yes_sub_title: str | None = None
    no_sub_title: str | None = None
    rules_primary: str | None = None
    rules_secondary: str | None = None
    can_close_early: bool | None = None
    event_ticker: str | None = None
    expected_expiration_ts: int | None = None
    strike_type: str | None = None
    floor_strike: Decimal | None = None
    cap_strike: Decimal | None = None
    custom_strike: dict[str, Any] | None = None


class MarketLifecyclePayload(Payload, frozen=True, kw_only=True):
    """A market state change (``event_type``: created, activated, deactivated, close_date_updated, determined,
    settled, price_level_structure_updated, metadata_updated). Fields are present only for the event types
    that carry them."""

    market_ticker: str
    event_type: str
    exchange_index: int | None = None
    open_ts: int | None = None
    close_ts: int | None = None
    determination_ts: int | None = None
    settled_ts: int | None = None
    result: str | None = None
    settlement_value: str | int | None = None
    is_deactivated: bool | None = None
    additional_metadata: LifecycleAdditionalMetadata | None = None
    price_level_structure: str | None = None
    price_ranges: list[PriceRange] | None = None
    strike_type: str | None = None
    floor_strike: Decimal | None = None
    cap_strike: Decimal | None = None
    custom_strike: dict[str, Any] | None = None
    yes_sub_title: str | None = None

    @property
    def settlement(self) -> Decimal | None:
        """Settlement value in dollars (exact); a legacy integer is read as cents."""
        if isinstance(self.settlement_value, int):
            return money_or_none(None, self.settlement_value)
        return money_or_none(self.settlement_value)


class EventLifecyclePayload(Payload, frozen=True, kw_only=True):
    """An event was created (``sub_title`` is the spelling of some old recordings)."""

    event_ticker: str
    exchange_index: int | None = None
    title: str | None = None
    subtitle: str | None = None
    sub_title: str | None = None
    collateral_return_type: str | None = None
    series_ticker: str | None = None
    strike_date: int | None = None
    strike_period: str | None = None


class EventFeeUpdatePayload(Payload, frozen=True, kw_only=True):
    """An event-level fee override was set (values) or cleared (both None)."""

    event_ticker: str
    fee_type_override: str | None = None
    fee_multiplier_override: Decimal | None = None


class SelectedMarket(Payload, frozen=True, kw_only=True):
    """One leg of a multivariate combination."""

    market_ticker: str
    event_ticker: str | None = None
    side: str | None = None


class MultivariateLookupPayload(Payload, frozen=True, kw_only=True):
    """Retired ``multivariate_lookup`` body (channel ``multivariate``, retired 2026-08), for old recordings."""

    market_ticker: str
    collection_ticker: str | None = None
    event_ticker: str | None = None
    selected_markets: list[SelectedMarket] | None = None


class TickerMessage(DataMessage, tag="ticker", frozen=True, kw_only=True):
    """``ticker`` (no ``seq``)."""

    type = "ticker"
    msg: TickerPayload


class TradeMessage(DataMessage, tag="trade", frozen=True, kw_only=True):
    """``trade``: a public trade (sequenced)."""

    type = "trade"
    msg: TradePayload


class MarketLifecycleMessage(DataMessage, tag="market_lifecycle_v2", frozen=True, kw_only=True):
    """``market_lifecycle_v2`` on channel ``market_lifecycle_v2`` (sequenced)."""

    type = "market_lifecycle_v2"
    msg: MarketLifecyclePayload


class MultivariateLifecycleMessage(DataMessage, tag="multivariate_market_lifecycle", frozen=True, kw_only=True):
    """``multivariate_market_lifecycle`` on channel ``multivariate_market_lifecycle`` (sequenced)."""

    type = "multivariate_market_lifecycle"
    msg: MarketLifecyclePayload


class EventLifecycleMessage(DataMessage, tag="event_lifecycle", frozen=True, kw_only=True):
    """``event_lifecycle`` on the lifecycle channels (sequenced)."""

    type = "event_lifecycle"
    msg: EventLifecyclePayload


class EventFeeUpdateMessage(DataMessage, tag="event_fee_update", frozen=True, kw_only=True):
    """``event_fee_update`` on channel ``market_lifecycle_v2`` (sequenced)."""

    type = "event_fee_update"
    msg: EventFeeUpdatePayload


class MultivariateMessage(DataMessage, tag="multivariate_lookup", frozen=True, kw_only=True):
    """Retired ``multivariate_lookup`` (channel ``multivariate``), decoded for old recordings."""

    type = "multivariate_lookup"
    msg: MultivariateLookupPayload
