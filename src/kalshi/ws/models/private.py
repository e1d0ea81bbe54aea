"""Private (authenticated) account messages: fills, positions, orders and order groups."""

from __future__ import annotations

from decimal import Decimal

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
    "FillMessage",
    "FillPayload",
    "MarketPositionPayload",
    "MarketPositionsMessage",
    "OrderGroupMessage",
    "OrderGroupPayload",
    "UserOrderPayload",
    "UserOrdersMessage",
]

_CENTI_CENTS = -4


class FillPayload(Payload, frozen=True, kw_only=True):
    """One fill of your order. Legacy ``yes_price`` (cents), ``count`` and ``post_position`` are suffixed."""

    market_ticker: str
    trade_id: str | None = None
    order_id: str | None = None
    client_order_id: str | None = None
    exchange_index: int | None = None
    is_taker: bool | None = None
    side: str | None = None
    action: str | None = None
    purchased_side: str | None = None
    outcome_side: str | None = None
    book_side: str | None = None
    yes_price_dollars: str | None = None
    count_fp: str | None = None
    fee_cost: str | None = None
    post_position_fp: str | None = None
    subaccount: int | None = None
    ts: Timestamp | None = None
    ts_ms: int | None = None
    yes_price_cents: int | None = msgspec.field(default=None, name="yes_price")
    count_contracts: int | None = msgspec.field(default=None, name="count")
    post_position_contracts: int | None = msgspec.field(default=None, name="post_position")

    @property
    def yes_price(self) -> Decimal | None:
        """YES price of the fill in dollars (exact)."""
        return price_or_none(self.yes_price_dollars, self.yes_price_cents)

    @property
    def count(self) -> Decimal | None:
        """Contracts filled (exact)."""
        return count_or_none(self.count_fp, self.count_contracts)

    @property
    def post_position(self) -> Decimal | None:
        """Position after the fill (exact, signed)."""
        return count_or_none(self.post_position_fp, self.post_position_contracts)

    @property
    def fee(self) -> Decimal | None:
        """Exchange fee in dollars (exact, up to 6 decimals)."""
        return money_or_none(self.fee_cost)

    @property
    def timestamp_ms(self) -> int | None:
        """Epoch ms of the fill."""
        return timestamp_ms(self.ts_ms, self.ts)


class MarketPositionPayload(Payload, frozen=True, kw_only=True):
    """Your position in one market. Legacy integer fields (counts; money in centi-cents) are suffixed."""

    market_ticker: str
    user_id: str | None = None
    position_fp: str | None = None
    position_cost_dollars: str | None = None
    realized_pnl_dollars: str | None = None
    fees_paid_dollars: str | None = None
    position_fee_cost_dollars: str | None = None
    volume_fp: str | None = None
    subaccount: int | None = None
    position_contracts: int | None = msgspec.field(default=None, name="position")
    position_cost_centicents: int | None = msgspec.field(default=None, name="position_cost")
    realized_pnl_centicents: int | None = msgspec.field(default=None, name="realized_pnl")
    fees_paid_centicents: int | None = msgspec.field(default=None, name="fees_paid")
    position_fee_cost_centicents: int | None = msgspec.field(default=None, name="position_fee_cost")
    volume_contracts: int | None = msgspec.field(default=None, name="volume")

    @property
    def position(self) -> Decimal | None:
        """Net position in contracts (exact, signed)."""
        return count_or_none(self.position_fp, self.position_contracts)

    @property
    def position_cost(self) -> Decimal | None:
        """Cost basis in dollars (exact)."""
        return money_or_none(self.position_cost_dollars, self.position_cost_centicents, _CENTI_CENTS)

    @property
    def realized_pnl(self) -> Decimal | None:
        """Realized P&L in dollars (exact)."""
        return money_or_none(self.realized_pnl_dollars, self.realized_pnl_centicents, _CENTI_CENTS)

    @property
    def fees_paid(self) -> Decimal | None:
        """Fees paid in dollars (exact)."""
        return money_or_none(self.fees_paid_dollars, self.fees_paid_centicents, _CENTI_CENTS)

    @property
    def position_fee_cost(self) -> Decimal | None:
        """Position fee cost in dollars (exact)."""
        return money_or_none(self.position_fee_cost_dollars, self.position_fee_cost_centicents, _CENTI_CENTS)

    @property
    def volume(self) -> Decimal | None:
        """Contracts traded in this market (exact)."""
        return count_or_none(self.volume_fp, self.volume_contracts)


class UserOrderPayload(Payload, frozen=True, kw_only=True):
    """One of your orders after a create or update. The market is ``ticker`` on the wire (also
    :attr:`market_ticker`)."""

    order_id: str
    ticker: str
    user_id: str | None = None
    client_order_id: str | None = None
    exchange_index: int | None = None
    status: str | None = None
    side: str | None = None
    is_yes: bool | None = None
    outcome_side: str | None = None
    book_side: str | None = None
    yes_price_dollars: str | None = None
    fill_count_fp: str | None = None
    remaining_count_fp: str | None = None
    initial_count_fp: str | None = None
    taker_fill_cost_dollars: str | None = None
    maker_fill_cost_dollars: str | None = None
    taker_fees_dollars: str | None = None
    maker_fees_dollars: str | None = None
    order_group_id: str | None = None
    self_trade_prevention_type: str | None = None
    created_time: str | None = None
    last_update_time: str | None = None
    expiration_time: str | None = None
    created_ts_ms: int | None = None
    last_updated_ts_ms: int | None = None
    expiration_ts_ms: int | None = None
    last_update_reason: str | None = None
    subaccount_number: int | None = None

    @property
    def market_ticker(self) -> str:
        """The order's market (wire field ``ticker``)."""
        return self.ticker

    @property
    def yes_price(self) -> Decimal | None:
        """Limit price in YES dollars (exact)."""
        return price_or_none(self.yes_price_dollars)

    @property
    def fill_count(self) -> Decimal | None:
        """Contracts filled so far."""
        return count_or_none(self.fill_count_fp)

    @property
    def remaining_count(self) -> Decimal | None:
        """Contracts still resting."""
        return count_or_none(self.remaining_count_fp)

    @property
    def initial_count(self) -> Decimal | None:
        """Contracts ordered."""
        return count_or_none(self.initial_count_fp)

    @property
    def taker_fill_cost(self) -> Decimal | None:
        """Taker fill cost in dollars (6 decimals)."""
        return money_or_none(self.taker_fill_cost_dollars)

    @property
    def maker_fill_cost(self) -> Decimal | None:
        """Maker fill cost in dollars (6 decimals)."""
        return money_or_none(self.maker_fill_cost_dollars)

    @property
    def taker_fees(self) -> Decimal | None:
        """Taker fees in dollars (6 decimals)."""
        return money_or_none(self.taker_fees_dollars)

    @property
    def maker_fees(self) -> Decimal | None:
        """Maker fees in dollars (6 decimals)."""
        return money_or_none(self.maker_fees_dollars)


class OrderGroupPayload(Payload, frozen=True, kw_only=True):
    """An order group was created, triggered, reset, deleted or had its limit updated."""

    event_type: str
    order_group_id: str
    contracts_limit_fp: str | None = None
    ts_ms: int | None = None

    @property
    def contracts_limit(self) -> Decimal | None:
        """The group's contract limit (created and limit_updated events)."""
        return count_or_none(self.contracts_limit_fp)


class FillMessage(DataMessage, tag="fill", frozen=True, kw_only=True):
    """``fill`` on channel ``fill`` (no ``seq``)."""

    type = "fill"
    msg: FillPayload


class MarketPositionsMessage(DataMessage, tag="market_position", frozen=True, kw_only=True):
    """``market_position`` (singular) on channel ``market_positions`` (no ``seq``)."""

    type = "market_position"
    msg: MarketPositionPayload


class UserOrdersMessage(DataMessage, tag="user_order", frozen=True, kw_only=True):
    """``user_order`` (singular) on channel ``user_orders`` (no ``seq``)."""

    type = "user_order"
    msg: UserOrderPayload


class OrderGroupMessage(DataMessage, tag="order_group_updates", frozen=True, kw_only=True):
    """``order_group_updates`` on channel ``order_group_updates`` (sequenced)."""

    type = "order_group_updates"
    msg: OrderGroupPayload
