"""Engine views -> REST wire objects of openapi.yaml (``Market``, ``EventData``, ``Series``, ``Order``, ``Fill``,
``MarketPosition``, ``Settlement``, ``Trade``, ``OrderGroup``, ``RFQ``, ``Quote``).

Every field the spec marks required is present; prices are ``*_dollars`` strings (4 decimals), counts ``*_fp``
strings (2 decimals), money 4 or 6 decimals, times RFC 3339 with milliseconds. Fields the simulator does not
model get the neutral value the spec allows (empty string or list, zero).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from kalshi._fixed import PRICE_SCALE, format_count, format_price
from kalshi.sim.engine import (
    Engine,
    EventSpec,
    FillEvent,
    MarketView,
    OrderGroupView,
    OrderView,
    PositionView,
    QuoteView,
    RfqView,
    SettlementView,
    TradeEvent,
)
from kalshi.sim.engine.subaccounts import number_of, owner_of
from kalshi.sim.market import SeriesSpec
from kalshi.sim.rest.common import cents, iso, money
from kalshi.sim.ws.feeds import user_id

__all__ = [
    "event_json",
    "event_position_json",
    "fill_json",
    "group_json",
    "market_json",
    "market_status",
    "order_json",
    "position_json",
    "quote_json",
    "rfq_json",
    "series_json",
    "settlement_json",
    "trade_json",
]

_YEAR_MS: Final = 365 * 86_400_000
_ZERO_PRICE: Final = format_price(0)
# Engine status -> the spec's Market.status (a paused active market reads "inactive"; settled is "finalized").
_STATUS: Final = {
    "initialized": "initialized",
    "active": "active",
    "closed": "closed",
    "determined": "determined",
    "settled": "finalized",
}


def market_status(view: MarketView) -> str:
    """The spec's ``Market.status`` of a market."""
    if view.status == "active" and view.is_deactivated:
        return "inactive"
    return _STATUS[view.status]


def market_json(engine: Engine, view: MarketView) -> dict[str, Any]:
    """A ``Market``."""
    spec = view.spec
    state = engine.ticker_state(spec.ticker)
    close_ms = view.close_time_ms or spec.expected_expiration_ms or view.created_ts_ms + _YEAR_MS
    expiration_ms = spec.expected_expiration_ms or close_ms
    bid, ask = state.yes_bid_ticks, state.yes_ask_ticks
    out: dict[str, Any] = {
        "ticker": spec.ticker,
        "event_ticker": spec.event_ticker,
        "market_type": spec.market_type,
        "title": spec.title,
        "subtitle": "",
        "yes_sub_title": spec.yes_sub_title,
        "no_sub_title": spec.no_sub_title,
        "created_time": iso(view.created_ts_ms),
        "updated_time": iso(view.updated_ts_ms),
        "open_time": iso(spec.open_time_ms),
        "close_time": iso(close_ms),
        "expected_expiration_time": iso(spec.expected_expiration_ms) if spec.expected_expiration_ms else None,
        "expiration_time": iso(expiration_ms),
        "latest_expiration_time": iso(max(expiration_ms, close_ms)),
        "settlement_timer_seconds": spec.settlement_timer_seconds,
        "status": market_status(view),
        "yes_bid_dollars": format_price(bid),
        "yes_bid_size_fp": format_count(state.yes_bid_size_units),
        "yes_ask_dollars": format_price(ask),
        "yes_ask_size_fp": format_count(state.yes_ask_size_units),
        "no_bid_dollars": format_price(PRICE_SCALE - ask),
        "no_ask_dollars": format_price(PRICE_SCALE - bid),
        "last_price_dollars": format_price(state.last_price_ticks),
        "volume_fp": format_count(state.volume_units),
        "volume_24h_fp": format_count(state.volume_units),
        "result": view.result or "",
        "can_close_early": spec.can_close_early,
        "open_interest_fp": format_count(state.open_interest_units),
        "notional_value_dollars": format_price(spec.notional_ticks),
        # The simulator keeps no day-before snapshot: "previous" values read as zero.
        "previous_yes_bid_dollars": _ZERO_PRICE,
        "previous_yes_ask_dollars": _ZERO_PRICE,
        "previous_price_dollars": _ZERO_PRICE,
        "settlement_value_dollars": (
            format_price(view.settlement_value_ticks) if view.settlement_value_ticks is not None else None
        ),
        "settlement_ts": iso(view.settled_ts_ms) if view.settled_ts_ms is not None else None,
        "settlement_bounds_type": "default",
        "expiration_value": format_price(view.settlement_value_ticks)
        if view.settlement_value_ticks is not None
        else "",
        "rules_primary": spec.rules_primary,
        "rules_secondary": spec.rules_secondary,
        "price_level_structure": spec.price_level_structure,
        "price_ranges": [r.wire() for r in view.price_ranges],
        "is_provisional": False,
        "exchange_index": spec.exchange_index,
        # Dropped from the current spec but still sent by the exchange, and required by clients of the
        # v3.13 spec (kalshi-sdk): deprecated, always "0.0000".
        "liquidity_dollars": _ZERO_PRICE,
    }
    if spec.strike_type is not None:
        out["strike_type"] = spec.strike_type
    if spec.floor_strike is not None:
        out["floor_strike"] = spec.floor_strike
    if spec.cap_strike is not None:
        out["cap_strike"] = spec.cap_strike
    if spec.custom_strike is not None:
        out["custom_strike"] = dict(spec.custom_strike)
    if spec.mve_collection_ticker is not None:
        out["mve_collection_ticker"] = spec.mve_collection_ticker
    if spec.mve_selected_legs:
        out["mve_selected_legs"] = [
            {"event_ticker": leg.event_ticker, "market_ticker": leg.market_ticker, "side": leg.side}
            for leg in spec.mve_selected_legs
        ]
    return out


def series_json(series: SeriesSpec, *, volume_units: int | None = None, maker_fees: bool = False) -> dict[str, Any]:
    """A ``Series``."""
    out: dict[str, Any] = {
        "ticker": series.series_ticker,
        "frequency": series.frequency,
        "title": series.title,
        "category": series.category,
        "categories": [series.category],
        "tags": [],
        "settlement_sources": [],
        "contract_url": "",
        "contract_terms_url": "",
        "fee_type": "quadratic_with_maker_fees" if maker_fees else "quadratic",
        "fee_multiplier": Decimal(1),
        "additional_prohibitions": [],
        "exchange_index": 0,
    }
    if volume_units is not None:
        out["volume_fp"] = format_count(volume_units)
    return out


def event_json(
    event: EventSpec, *, category: str, updated_ms: int, markets: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An ``EventData`` (``markets`` nested when given)."""
    out: dict[str, Any] = {
        "event_ticker": event.event_ticker,
        "series_ticker": event.series_ticker,
        "sub_title": event.subtitle,
        "title": event.title,
        "collateral_return_type": event.collateral_return_type,
        "mutually_exclusive": event.mutually_exclusive,
        "category": category,
        "strike_date": iso(event.strike_date_ms) if event.strike_date_ms is not None else None,
        "strike_period": event.strike_period,
        "settlement_sources": [],
        "last_updated_ts": iso(updated_ms),
        "exchange_index": 0,
    }
    if markets is not None:
        out["markets"] = markets
    return out


def order_json(o: OrderView) -> dict[str, Any]:
    """An ``Order``."""
    return {
        "order_id": o.order_id,
        "user_id": user_id(owner_of(o.account)),
        "client_order_id": o.client_order_id or "",
        "ticker": o.ticker,
        "side": o.outcome_side,
        "action": "buy",
        "outcome_side": o.outcome_side,
        "book_side": o.book_side,
        "type": "limit",
        "status": o.status,
        "yes_price_dollars": format_price(o.yes_price_ticks),
        "no_price_dollars": format_price(o.no_price_ticks),
        "fill_count_fp": format_count(o.fill_units),
        "remaining_count_fp": format_count(o.remaining_units),
        "initial_count_fp": format_count(o.initial_units),
        "taker_fill_cost_dollars": money(o.taker_fill_cost_micros),
        "maker_fill_cost_dollars": money(o.maker_fill_cost_micros),
        "taker_fees_dollars": money(o.taker_fees_micros),
        "maker_fees_dollars": money(o.maker_fees_micros),
        "expiration_time": iso(o.expiration_ms) if o.expiration_ms is not None else None,
        "created_time": iso(o.created_ts_ms),
        "last_update_time": iso(o.last_updated_ts_ms),
        "self_trade_prevention_type": o.self_trade_prevention,
        "order_group_id": o.order_group_id,
        "cancel_order_on_pause": o.cancel_order_on_pause,
        "subaccount_number": number_of(o.account),
        "exchange_index": o.exchange_index,
    }


def fill_json(f: FillEvent) -> dict[str, Any]:
    """A ``Fill``."""
    return {
        "fill_id": f.fill_id,
        "exchange_index": f.exchange_index,
        "trade_id": f.trade_id,
        "order_id": f.order_id,
        "ticker": f.ticker,
        "market_ticker": f.ticker,
        "side": f.outcome_side,
        "action": "buy",
        "outcome_side": f.outcome_side,
        "book_side": f.book_side,
        "count_fp": format_count(f.count_units),
        "yes_price_dollars": format_price(f.yes_price_ticks),
        "no_price_dollars": format_price(f.no_price_ticks),
        "is_taker": f.is_taker,
        "created_time": iso(f.ts_ms),
        "fee_cost": money(f.fee_micros),
        "subaccount_number": number_of(f.account),
        "ts": f.ts_ms // 1000,
    }


def trade_json(t: TradeEvent) -> dict[str, Any]:
    """A public ``Trade``."""
    return {
        "trade_id": t.trade_id,
        "ticker": t.ticker,
        "count_fp": format_count(t.count_units),
        "yes_price_dollars": format_price(t.yes_price_ticks),
        "no_price_dollars": format_price(t.no_price_ticks),
        "taker_side": t.taker_outcome_side,
        "taker_outcome_side": t.taker_outcome_side,
        "taker_book_side": t.taker_book_side,
        "created_time": iso(t.ts_ms),
        "is_block_trade": t.is_block_trade,
    }


def position_json(p: PositionView) -> dict[str, Any]:
    """A ``MarketPosition``."""
    return {
        "ticker": p.ticker,
        "exchange_index": 0,
        "total_traded_dollars": money(p.total_traded_micros),
        "position_fp": format_count(p.position_units),
        "market_exposure_dollars": money(p.position_cost_micros),
        "realized_pnl_dollars": money(p.realized_pnl_micros),
        "fees_paid_dollars": money(p.fees_paid_micros),
        "last_updated_ts": iso(p.last_updated_ts_ms),
    }


def event_position_json(event_ticker: str, positions: list[PositionView]) -> dict[str, Any]:
    """An ``EventPosition``: the sums over the event's market positions."""
    return {
        "event_ticker": event_ticker,
        "total_cost_dollars": money(sum(p.total_traded_micros for p in positions)),
        "total_cost_shares_fp": format_count(sum(p.volume_units for p in positions)),
        "event_exposure_dollars": money(sum(p.position_cost_micros for p in positions)),
        "realized_pnl_dollars": money(sum(p.realized_pnl_micros for p in positions)),
        "fees_paid_dollars": money(sum(p.fees_paid_micros for p in positions)),
    }


def settlement_json(s: SettlementView) -> dict[str, Any]:
    """A ``Settlement``."""
    return {
        "ticker": s.ticker,
        "exchange_index": 0,
        "event_ticker": s.event_ticker,
        "market_result": s.market_result,
        "yes_count_fp": format_count(s.yes_count_units),
        "yes_total_cost_dollars": money(s.yes_total_cost_micros),
        "no_count_fp": format_count(s.no_count_units),
        "no_total_cost_dollars": money(s.no_total_cost_micros),
        "revenue": cents(s.revenue_micros),
        "settled_time": iso(s.settled_ts_ms),
        "fee_cost": money(s.fee_cost_micros),
        "value": s.value_ticks // 100,
    }


def group_json(g: OrderGroupView) -> dict[str, Any]:
    """An ``OrderGroup`` list entry."""
    return {
        "id": g.order_group_id,
        "contracts_limit_fp": format_count(g.contracts_limit_units),
        "is_auto_cancel_enabled": g.is_auto_cancel_enabled,
        "exchange_index": 0,
    }


def rfq_json(r: RfqView, *, creator_comms_id: str, viewer: str | None) -> dict[str, Any]:
    """An ``RFQ``; the creator's user id is shown to the creator only."""
    out: dict[str, Any] = {
        "id": r.rfq_id,
        "creator_id": creator_comms_id,
        "market_ticker": r.ticker,
        "contracts_fp": format_count(r.contracts_units or 0),
        "status": r.status,
        "created_ts": iso(r.created_ts_ms),
        "rest_remainder": r.rest_remainder,
        "updated_ts": iso(r.updated_ts_ms),
    }
    if r.target_cost_micros is not None:
        out["target_cost_dollars"] = money(r.target_cost_micros)
        out["target_cost_excludes_fees"] = False
    if r.mve_collection_ticker is not None:
        out["mve_collection_ticker"] = r.mve_collection_ticker
    if r.mve_selected_legs:
        out["mve_selected_legs"] = [
            {"event_ticker": leg.event_ticker, "market_ticker": leg.market_ticker, "side": leg.side}
            for leg in r.mve_selected_legs
        ]
    if r.cancellation_reason:
        out["cancellation_reason"] = r.cancellation_reason
    if r.cancelled_ts_ms is not None:
        out["cancelled_ts"] = iso(r.cancelled_ts_ms)
    if viewer == r.creator:
        out["creator_user_id"] = user_id(r.creator)
        out["creator_subaccount"] = 0
    return out


def quote_json(q: QuoteView, *, creator_comms_id: str, rfq_creator_comms_id: str) -> dict[str, Any]:
    """A ``Quote``."""
    contracts = q.contracts_accepted_units
    if contracts is None:
        contracts = max(q.yes_contracts_units, q.no_contracts_units)
    out: dict[str, Any] = {
        "id": q.quote_id,
        "rfq_id": q.rfq_id,
        "creator_id": creator_comms_id,
        "rfq_creator_id": rfq_creator_comms_id,
        "market_ticker": q.ticker,
        "contracts_fp": format_count(contracts),
        "yes_bid_dollars": format_price(q.yes_bid_ticks),
        "no_bid_dollars": format_price(q.no_bid_ticks),
        "created_ts": iso(q.created_ts_ms),
        "updated_ts": iso(q.updated_ts_ms),
        "status": q.status,
        "rest_remainder": q.rest_remainder,
        "yes_contracts_fp": format_count(q.yes_contracts_units),
        "no_contracts_fp": format_count(q.no_contracts_units),
    }
    if q.rfq_target_cost_micros is not None:
        out["rfq_target_cost_dollars"] = money(q.rfq_target_cost_micros)
    if q.accepted_side is not None:
        out["accepted_side"] = q.accepted_side
    for name, ts in (
        ("accepted_ts", q.accepted_ts_ms),
        ("confirmed_ts", q.confirmed_ts_ms),
        ("executed_ts", q.executed_ts_ms),
        ("cancelled_ts", q.cancelled_ts_ms),
    ):
        if ts is not None:
            out[name] = iso(ts)
    if q.creator_order_id is not None:
        out["creator_order_id"] = q.creator_order_id
    if q.rfq_creator_order_id is not None:
        out["rfq_creator_order_id"] = q.rfq_creator_order_id
    return out
