"""Wire messages (:mod:`kalshi.ws.models`) to the strategy's exact-integer events, for every mode.

One place turns trades, tickers, lifecycle messages and the private ``fill``/``user_order`` messages into
:mod:`kalshi.strategy.types`, so a backtest (recorded frames), paper and live (the streaming client) see the
same values.
"""

from __future__ import annotations

from typing import Literal

from kalshi._fixed import cents_to_ticks, contracts_to_units
from kalshi.errors import KalshiProtocolError
from kalshi.strategy.types import (
    PRICE_SCALE,
    Fill,
    MarketLifecycle,
    OrderStatus,
    OrderUpdate,
    Side,
    Ticker,
    Trade,
)
from kalshi.ws.models import (
    FillMessage,
    MarketLifecycleMessage,
    TickerMessage,
    TradeMessage,
    UserOrdersMessage,
)
from kalshi.ws.models._numbers import COUNT_CACHE, PRICE_CACHE, parse_count, parse_price

__all__ = [
    "SETTLING_EVENTS",
    "book_side_of",
    "fill_of",
    "lifecycle_of",
    "money_micros",
    "order_status_of",
    "order_update_of",
    "price_of",
    "ticker_of",
    "trade_of",
    "units_of",
]

SETTLING_EVENTS = frozenset({"determined", "settled"})


def price_of(dollars: str | None, cents: int | None = None) -> int | None:
    """``"0.5600"`` (or legacy cents) -> ticks, or None when absent.

    Raises:
        KalshiProtocolError: not an exact price in $0-$1.
    """
    if dollars is not None:
        ticks = PRICE_CACHE.get(dollars)
        if ticks is not None:
            return ticks
        try:
            return parse_price(dollars)
        except ValueError as exc:
            raise KalshiProtocolError(f"bad price {dollars[:40]!r}: {exc}") from exc
    return cents_to_ticks(cents) if cents is not None else None


def units_of(fp: str | None, contracts: int | None = None) -> int | None:
    """``"12.50"`` (or legacy whole contracts) -> units, or None when absent.

    Raises:
        KalshiProtocolError: not an exact non-negative count.
    """
    if fp is not None:
        units = COUNT_CACHE.get(fp)
        if units is not None:
            return units
        try:
            return parse_count(fp, signed=False)
        except ValueError as exc:
            raise KalshiProtocolError(f"bad count {fp[:40]!r}: {exc}") from exc
    return contracts_to_units(contracts) if contracts is not None else None


def trade_of(message: TradeMessage, ts_ns: int) -> Trade | None:
    """The trade, or None when it lacks a price, count or taker side."""
    m = message.msg
    price = price_of(m.yes_price_dollars, m.yes_price_cents)
    count = units_of(m.count_fp, m.count_contracts)
    side = m.taker_outcome_side or m.taker_side
    if price is None or count is None or side not in ("yes", "no"):
        return None
    taker: Literal["yes", "no"] = "yes" if side == "yes" else "no"
    return Trade(ticker=m.market_ticker, price=price, count=count, taker_side=taker, ts_ns=ts_ns)


def ticker_of(message: TickerMessage, ts_ns: int) -> Ticker:
    """The ticker update (an empty side reads as None, as $0 bid / $1 ask do on the wire)."""
    m = message.msg
    bid = price_of(m.yes_bid_dollars, m.yes_bid_cents)
    ask = price_of(m.yes_ask_dollars, m.yes_ask_cents)
    return Ticker(
        ticker=m.market_ticker,
        bid=bid or None,
        ask=ask if ask is not None and ask < PRICE_SCALE else None,
        last=price_of(m.price_dollars, m.price_cents),
        ts_ns=ts_ns,
    )


def lifecycle_of(message: MarketLifecycleMessage, ts_ns: int) -> MarketLifecycle:
    """The lifecycle event; ``settlement_value`` in ticks (from the value, else from a yes/no result)."""
    m = message.msg
    value: int | None = None
    raw = m.settlement_value
    if isinstance(raw, str):
        value = price_of(raw)
    elif isinstance(raw, int):
        value = cents_to_ticks(raw)
    elif m.result == "yes":
        value = PRICE_SCALE
    elif m.result == "no":
        value = 0
    return MarketLifecycle(
        ticker=m.market_ticker, event_type=m.event_type, result=m.result, settlement_value=value, ts_ns=ts_ns
    )


def book_side_of(book_side: str | None, outcome: str | None) -> Side:
    """The order's side in book terms, from ``book_side`` or else the outcome side (``"no"``: an ask)."""
    if book_side in ("bid", "ask"):
        return "bid" if book_side == "bid" else "ask"
    return "bid" if outcome != "no" else "ask"


def fill_of(message: FillMessage, ts_ns: int) -> Fill | None:
    """One of our fills from the private ``fill`` channel, or None when it lacks a price or count."""
    m = message.msg
    price = price_of(m.yes_price_dollars, m.yes_price_cents)
    count = units_of(m.count_fp, m.count_contracts)
    if price is None or count is None:
        return None
    return Fill(
        client_order_id=m.client_order_id or "",
        order_id=m.order_id or "",
        ticker=m.market_ticker,
        side=book_side_of(m.book_side, m.outcome_side or m.side),
        price=price,
        count=count,
        fee=money_micros(m.fee_cost) if m.fee_cost else 0,
        is_taker=bool(m.is_taker),
        ts_ns=ts_ns,
        trade_id=m.trade_id or "",
    )


def money_micros(dollars: str) -> int:
    """``"0.0175"`` dollars -> micros (exact)."""
    whole, _, frac = dollars.strip().partition(".")
    negative = whole.startswith("-")
    digits = int((whole.lstrip("+-") or "0") + (frac + "000000")[:6])
    return -digits if negative else digits


_STATUSES: dict[str, OrderStatus] = {
    "resting": "resting",
    "canceled": "canceled",
    "cancelled": "canceled",
    "executed": "executed",
    "expired": "canceled",
    "pending": "pending",
}


def order_status_of(status: str | None) -> OrderStatus:
    """The exchange's order status (WebSocket or REST) as the strategy's (unknown: ``"pending"``)."""
    return _STATUSES.get(status or "", "pending")


def order_update_of(message: UserOrdersMessage, ts_ns: int) -> OrderUpdate:
    """One of our order updates from the private ``user_orders`` channel."""
    m = message.msg
    return OrderUpdate(
        client_order_id=m.client_order_id or "",
        order_id=m.order_id,
        ticker=m.ticker,
        side=book_side_of(m.book_side, m.outcome_side or m.side),
        price=price_of(m.yes_price_dollars) or 0,
        status=order_status_of(m.status),
        remaining=units_of(m.remaining_count_fp) or 0,
        filled=units_of(m.fill_count_fp) or 0,
        reason=m.last_update_reason,
        ts_ns=ts_ns,
    )
