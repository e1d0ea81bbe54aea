"""Engine events to wire messages: each event's ``msg`` JSON is encoded once and handed to the :class:`Hub`.

Shapes are built from asyncapi.yaml as plain JSON (never from the client's models), so the simulator's
fidelity does not rest on our own decoding. Prices are ``*_dollars`` strings with 4 decimals, counts ``*_fp``
with 2, money amounts (costs, fees, P&L) up to 6 decimals as the spec allows; times are epoch ms in ``ts_ms``
and, where the spec still requires the deprecated forms, epoch seconds in ``ts`` and RFC 3339 in ``time``.

The hot path (``orderbook_delta``) formats bytes directly with pre-escaped tickers and memoised price strings.
"""

from __future__ import annotations

import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, Final, Protocol

import msgspec

from kalshi._fixed import PRICE_SCALE, format_count, format_price
from kalshi.errors import KalshiError
from kalshi.sim.engine.events import (
    BookDelta,
    EventLifecycleEvent,
    FillEvent,
    MarketLifecycleEvent,
    OrderGroupEvent,
    OrderUpdate,
    PositionUpdate,
    QuoteEvent,
    RfqEvent,
    TickerEvent,
    TradeEvent,
)
from kalshi.sim.engine.subaccounts import number_of, owner_of
from kalshi.sim.engine.types import BookSnapshot, TickerState, format_micros
from kalshi.sim.ws.fanout import Hub

__all__ = ["FeedSource", "Feeds", "rfc3339", "user_id"]

_USER_NS: Final = uuid.UUID("6f1d3c8e-4a2b-5c7d-8e9f-0a1b2c3d4e5f")
_encoder = msgspec.json.Encoder(decimal_format="number")
_encode = _encoder.encode
_plain_encode = msgspec.json.encode


class FeedSource(Protocol):
    """What the feeds read from the engine (implemented by ``kalshi.sim.engine.Engine``)."""

    def book_snapshot(self, ticker: str) -> BookSnapshot: ...

    def ticker_state(self, ticker: str) -> TickerState: ...

    def communications_id(self, account: str) -> str: ...


@lru_cache(maxsize=4096)
def user_id(account: str) -> str:
    """The stable user UUID shown for an account (``user_order.user_id``, ``market_position.user_id``)."""
    return str(uuid.uuid5(_USER_NS, account))


def rfc3339(ts_ms: int) -> str:
    """Epoch ms -> ``2024-12-01T10:00:00Z`` (second precision, as the exchange's deprecated fields)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ms // 1000))


def _money(micros: int) -> str:
    """Money with 4 decimals when exact, else 6 (the spec emits up to 6)."""
    if micros % 100 == 0:
        return format_price(micros // 100)
    return format_micros(micros)


class Feeds:
    """Publishes engine events to the hub and answers the sessions' market questions.

    Markets become known through their ``created`` lifecycle event (or :meth:`register_market`).
    """

    def __init__(self, engine: FeedSource, hub: Hub) -> None:
        self.engine = engine
        self.hub = hub
        self._market_ids: dict[str, str] = {}
        self._tickers_by_id: dict[str, str] = {}
        self._ticker_json: dict[str, bytes] = {}
        self._id_json: dict[str, bytes] = {}
        self._prices: dict[int, bytes] = {}
        self._indices: dict[str, tuple[str, ...]] = {
            "cfbenchmarks_value": (),
            "cfbenchmarks_value_5hz": (),
            "pyth_value": (),
        }
        self._handlers: dict[type, Callable[[Any], None]] = {
            BookDelta: self._book_delta,
            TradeEvent: self._trade,
            TickerEvent: self._ticker,
            FillEvent: self._fill,
            OrderUpdate: self._order,
            PositionUpdate: self._position,
            OrderGroupEvent: self._order_group,
            MarketLifecycleEvent: self._market_lifecycle,
            EventLifecycleEvent: self._event_lifecycle,
            RfqEvent: self._rfq,
            QuoteEvent: self._quote,
        }
        self.published = 0

    # -- directory (MarketDirectory protocol) -----------------------------------------------------------------

    def register_market(self, ticker: str, market_id: str) -> None:
        """Make a market known to subscriptions."""
        if ticker not in self._market_ids:
            self._market_ids[ticker] = market_id
            self._tickers_by_id[market_id] = ticker
            self._ticker_json[ticker] = _plain_encode(ticker)
            self._id_json[ticker] = _plain_encode(market_id)

    def market_id(self, ticker: str) -> str | None:
        return self._market_ids.get(ticker)

    def ticker_of(self, market_id: str) -> str | None:
        return self._tickers_by_id.get(market_id.lower())

    def all_tickers(self) -> Sequence[str]:
        return list(self._market_ids)

    def set_indices(self, channel: str, ids: Iterable[str]) -> None:
        """Declare the index ids (or pyth underlyings) that stream on ``channel``."""
        self._indices[channel] = tuple(sorted(set(ids)))

    def available_indices(self, channel: str) -> Sequence[str]:
        return self._indices.get(channel, ())

    def snapshot_payload(self, ticker: str, *, use_yes_price: bool) -> bytes:
        return self.encode_snapshot(self.engine.book_snapshot(ticker), use_yes_price=use_yes_price)

    def encode_snapshot(self, book: BookSnapshot, *, use_yes_price: bool) -> bytes:
        """The ``orderbook_snapshot`` msg: levels ascending by price, an empty side omitted."""
        msg: dict[str, Any] = {"market_ticker": book.ticker, "market_id": book.market_id}
        if book.yes:
            msg["yes_dollars_fp"] = [[format_price(p), format_count(u)] for p, u in sorted(book.yes)]
        if book.no:
            levels = sorted((PRICE_SCALE - p, u) for p, u in book.no) if use_yes_price else sorted(book.no)
            msg["no_dollars_fp"] = [[format_price(p), format_count(u)] for p, u in levels]
        msg["clock"] = book.clock
        return _plain_encode(msg)

    def ticker_payload(self, ticker: str) -> bytes:
        return self.encode_ticker(self.engine.ticker_state(ticker))

    @staticmethod
    def encode_ticker(s: TickerState) -> bytes:
        """The ``ticker`` msg with every field the spec requires."""
        return _plain_encode(
            {
                "market_id": s.market_id,
                "market_ticker": s.ticker,
                "price_dollars": format_price(s.last_price_ticks),
                "yes_bid_dollars": format_price(s.yes_bid_ticks),
                "yes_ask_dollars": format_price(s.yes_ask_ticks),
                "volume_fp": format_count(s.volume_units),
                "open_interest_fp": format_count(s.open_interest_units),
                "dollar_volume": s.dollar_volume,
                "dollar_open_interest": s.dollar_open_interest,
                "yes_bid_size_fp": format_count(s.yes_bid_size_units),
                "yes_ask_size_fp": format_count(s.yes_ask_size_units),
                "last_trade_size_fp": format_count(s.last_trade_size_units),
                "ts": s.ts_ms // 1000,
                "ts_ms": s.ts_ms,
                "time": rfc3339(s.ts_ms),
            }
        )

    # -- publishing -------------------------------------------------------------------------------------------

    def publish(self, events: Iterable[object]) -> int:
        """Publish engine events in order; returns how many were handled."""
        handlers = self._handlers
        n = 0
        for event in events:
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)
                n += 1
        self.published += n
        return n

    def _comms_id(self, account: str) -> str:
        try:
            return self.engine.communications_id(account)
        except KalshiError:
            return "0"

    def _price(self, ticks: int) -> bytes:
        cached = self._prices.get(ticks)
        if cached is None:
            cached = self._prices[ticks] = format_price(ticks).encode()
        return cached

    def _book_delta(self, ev: BookDelta) -> None:
        ticker = ev.ticker
        if ticker not in self.hub.book_tickers:
            return
        tj = self._ticker_json.get(ticker)
        if tj is None:
            self.register_market(ticker, ev.market_id)
            tj = self._ticker_json[ticker]
        side = ev.side.encode()
        head = b'{"market_ticker":%b,"market_id":%b,"price_dollars":"' % (tj, self._id_json[ticker])
        tail = b'","delta_fp":"%b","side":"%b","ts_ms":%d,"clock":%d' % (
            format_count(ev.delta_units).encode(),
            side,
            ev.ts_ms,
            ev.clock,
        )
        payload = head + self._price(ev.price_ticks) + tail + b"}"
        variant = None
        if ev.side == "no" or ev.client_order_id:
            cache: dict[tuple[bool, bool], bytes] = {}

            def variant(use_yes_price: bool, own: bool) -> bytes:
                key = (use_yes_price and ev.side == "no", own and bool(ev.client_order_id))
                out = cache.get(key)
                if out is None:
                    price = PRICE_SCALE - ev.price_ticks if key[0] else ev.price_ticks
                    extra = b',"client_order_id":%b' % _plain_encode(ev.client_order_id) if key[1] else b""
                    out = cache[key] = head + self._price(price) + tail + extra + b"}"
                return out

        self.hub.publish_book(b"orderbook_delta", ticker, payload, variant, ev.account)

    def _trade(self, ev: TradeEvent) -> None:
        if not self.hub.has_market_subscribers("trade", ev.ticker):
            return
        side = ev.taker_outcome_side
        payload = _plain_encode(
            {
                "trade_id": ev.trade_id,
                "market_ticker": ev.ticker,
                "yes_price_dollars": format_price(ev.yes_price_ticks),
                "no_price_dollars": format_price(PRICE_SCALE - ev.yes_price_ticks),
                "count_fp": format_count(ev.count_units),
                "taker_side": side,
                "taker_outcome_side": side,
                "taker_book_side": ev.taker_book_side,
                "is_block_trade": ev.is_block_trade,
                "ts": ev.ts_ms // 1000,
                "ts_ms": ev.ts_ms,
            }
        )
        self.hub.publish_market("trade", b"trade", ev.ticker, payload)

    def _ticker(self, ev: TickerEvent) -> None:
        if self.hub.has_market_subscribers("ticker", ev.state.ticker):
            self.hub.publish_market("ticker", b"ticker", ev.state.ticker, self.encode_ticker(ev.state))

    def _fill(self, ev: FillEvent) -> None:
        # A subaccount's events reach its owner's subscriptions, tagged with the subaccount number.
        owner, number = owner_of(ev.account), number_of(ev.account)
        if not self.hub.has_private_subscribers("fill", owner):
            return
        outcome = ev.outcome_side
        msg: dict[str, Any] = {
            "trade_id": ev.trade_id,
            "order_id": ev.order_id,
        }
        if ev.client_order_id:
            msg["client_order_id"] = ev.client_order_id
        msg.update(
            market_ticker=ev.ticker,
            exchange_index=ev.exchange_index,
            is_taker=ev.is_taker,
            side=outcome,
            yes_price_dollars=format_price(ev.yes_price_ticks),
            count_fp=format_count(ev.count_units),
            fee_cost=format_micros(ev.fee_micros),
            action="buy",
            ts=ev.ts_ms // 1000,
            ts_ms=ev.ts_ms,
            post_position_fp=format_count(ev.post_position_units),
            purchased_side=outcome,
            outcome_side=outcome,
            book_side=ev.book_side,
        )
        if number:
            msg["subaccount"] = number
        self.hub.publish_private("fill", b"fill", owner, ev.ticker, _plain_encode(msg))

    def _order(self, ev: OrderUpdate) -> None:
        o = ev.order
        owner, number = owner_of(o.account), number_of(o.account)
        if not self.hub.has_private_subscribers("user_orders", owner):
            return
        outcome = o.outcome_side
        msg: dict[str, Any] = {
            "order_id": o.order_id,
            "user_id": user_id(owner),
            "ticker": o.ticker,
            "exchange_index": o.exchange_index,
            "status": o.status,
            "side": outcome,
            "is_yes": outcome == "yes",
            "outcome_side": outcome,
            "book_side": o.book_side,
            "yes_price_dollars": format_price(o.yes_price_ticks),
            "fill_count_fp": format_count(o.fill_units),
            "remaining_count_fp": format_count(o.remaining_units),
            "initial_count_fp": format_count(o.initial_units),
            "taker_fill_cost_dollars": format_micros(o.taker_fill_cost_micros),
            "maker_fill_cost_dollars": format_micros(o.maker_fill_cost_micros),
            "taker_fees_dollars": format_micros(o.taker_fees_micros),
            "maker_fees_dollars": format_micros(o.maker_fees_micros),
            "client_order_id": o.client_order_id or "",
        }
        if o.order_group_id is not None:
            msg["order_group_id"] = o.order_group_id
        msg["self_trade_prevention_type"] = o.self_trade_prevention
        msg["created_time"] = rfc3339(o.created_ts_ms)
        msg["created_ts_ms"] = o.created_ts_ms
        msg["last_update_time"] = rfc3339(o.last_updated_ts_ms)
        msg["last_updated_ts_ms"] = o.last_updated_ts_ms
        if o.last_update_reason:
            msg["last_update_reason"] = o.last_update_reason
        if o.expiration_ms is not None:
            msg["expiration_time"] = rfc3339(o.expiration_ms)
            msg["expiration_ts_ms"] = o.expiration_ms
        if number:
            msg["subaccount_number"] = number
        self.hub.publish_private("user_orders", b"user_order", owner, o.ticker, _plain_encode(msg))

    def _position(self, ev: PositionUpdate) -> None:
        p = ev.position
        owner, number = owner_of(p.account), number_of(p.account)
        if not self.hub.has_private_subscribers("market_positions", owner):
            return
        payload = _plain_encode(
            {
                "user_id": user_id(owner),
                "market_ticker": p.ticker,
                "position_fp": format_count(p.position_units),
                "position_cost_dollars": _money(p.position_cost_micros),
                "realized_pnl_dollars": _money(p.realized_pnl_micros),
                "fees_paid_dollars": _money(p.fees_paid_micros),
                "position_fee_cost_dollars": _money(p.position_fee_cost_micros),
                "volume_fp": format_count(p.volume_units),
                **({"subaccount": number} if number else {}),
            }
        )
        self.hub.publish_private("market_positions", b"market_position", owner, p.ticker, payload)

    def _order_group(self, ev: OrderGroupEvent) -> None:
        if not self.hub.has_private_subscribers("order_group_updates", ev.account):
            return
        msg: dict[str, Any] = {"event_type": ev.event_type, "order_group_id": ev.order_group_id}
        if ev.contracts_limit_units is not None:
            msg["contracts_limit_fp"] = format_count(ev.contracts_limit_units)
        msg["ts_ms"] = ev.ts_ms
        self.hub.publish_private("order_group_updates", b"order_group_updates", ev.account, None, _plain_encode(msg))

    def _market_lifecycle(self, ev: MarketLifecycleEvent) -> None:
        self.register_market(ev.ticker, ev.market_id)
        msg: dict[str, Any] = {"market_ticker": ev.ticker, "event_type": ev.event_type}
        spec = ev.spec
        if ev.event_type == "created" and spec is not None:
            msg["exchange_index"] = spec.exchange_index
            if ev.open_time_ms is not None:
                msg["open_ts"] = ev.open_time_ms // 1000
            if ev.close_time_ms is not None:
                msg["close_ts"] = ev.close_time_ms // 1000
            meta: dict[str, Any] = {
                "name": spec.title,
                "title": spec.title,
                "yes_sub_title": spec.yes_sub_title,
                "no_sub_title": spec.no_sub_title,
                "rules_primary": spec.rules_primary,
                "rules_secondary": spec.rules_secondary,
                "can_close_early": spec.can_close_early,
                "event_ticker": spec.event_ticker,
                "expected_expiration_ts": (spec.expected_expiration_ms or spec.close_time_ms or ev.ts_ms) // 1000,
            }
            if spec.strike_type is not None:
                meta["strike_type"] = spec.strike_type
            if spec.floor_strike is not None:
                meta["floor_strike"] = spec.floor_strike
            if spec.cap_strike is not None:
                meta["cap_strike"] = spec.cap_strike
            if spec.custom_strike is not None:
                meta["custom_strike"] = dict(spec.custom_strike)
            msg["additional_metadata"] = meta
        elif ev.close_time_ms is not None:
            msg["close_ts"] = ev.close_time_ms // 1000
        if ev.determination_ts_ms is not None:
            msg["determination_ts"] = ev.determination_ts_ms // 1000
        if ev.result is not None:
            msg["result"] = ev.result
        if ev.settlement_value_ticks is not None:
            msg["settlement_value"] = format_price(ev.settlement_value_ticks)
        if ev.settled_ts_ms is not None:
            msg["settled_ts"] = ev.settled_ts_ms // 1000
        if ev.is_deactivated is not None:
            msg["is_deactivated"] = ev.is_deactivated
        if ev.price_level_structure is not None:
            msg["price_level_structure"] = ev.price_level_structure
        if ev.price_ranges is not None and not ev.is_multivariate:
            msg["price_ranges"] = [r.wire() for r in ev.price_ranges]
        if ev.is_multivariate:
            self.hub.publish_broadcast("multivariate_market_lifecycle", b"multivariate_market_lifecycle", _encode(msg))
        else:
            self.hub.publish_broadcast("market_lifecycle_v2", b"market_lifecycle_v2", _encode(msg))

    def _event_lifecycle(self, ev: EventLifecycleEvent) -> None:
        e = ev.event
        msg: dict[str, Any] = {
            "event_ticker": e.event_ticker,
            "exchange_index": 0,
            "title": e.title,
            "subtitle": e.subtitle,
            "collateral_return_type": e.collateral_return_type,
            "series_ticker": e.series_ticker,
        }
        if e.strike_date_ms is not None:
            msg["strike_date"] = e.strike_date_ms // 1000
        if e.strike_period is not None:
            msg["strike_period"] = e.strike_period
        payload = _plain_encode(msg)
        self.hub.publish_broadcast("market_lifecycle_v2", b"event_lifecycle", payload)
        self.hub.publish_broadcast("multivariate_market_lifecycle", b"event_lifecycle", payload)

    def _rfq(self, ev: RfqEvent) -> None:
        r = ev.rfq
        msg: dict[str, Any] = {
            "id": r.rfq_id,
            "creator_id": self._comms_id(r.creator),
            "market_ticker": r.ticker,
            "event_ticker": r.event_ticker,
        }
        if r.contracts_units is not None:
            msg["contracts_fp"] = format_count(r.contracts_units)
        if r.target_cost_micros is not None:
            msg["target_cost_dollars"] = _money(r.target_cost_micros)
        if ev.kind == "rfq_created":
            msg["created_ts"] = rfc3339(r.created_ts_ms)
            if r.mve_collection_ticker is not None:
                msg["mve_collection_ticker"] = r.mve_collection_ticker
            if r.mve_selected_legs:
                msg["mve_selected_legs"] = [
                    {"event_ticker": leg.event_ticker, "market_ticker": leg.market_ticker, "side": leg.side}
                    for leg in r.mve_selected_legs
                ]
        else:
            msg["deleted_ts"] = rfc3339(r.cancelled_ts_ms if r.cancelled_ts_ms is not None else ev.ts_ms)
        self.hub.publish_communications(
            ev.kind.encode(), _plain_encode(msg), audience=None, rfq_creator=r.creator, shard=_shard(r.rfq_id)
        )

    def _quote(self, ev: QuoteEvent) -> None:
        q = ev.quote
        if ev.kind == "quote_deleted":
            return  # not a message of the spec
        msg: dict[str, Any] = {
            "quote_id": q.quote_id,
            "rfq_id": q.rfq_id,
            "quote_creator_id": self._comms_id(q.creator),
            "rfq_creator_id": self._comms_id(q.rfq_creator),
        }
        if ev.kind == "quote_executed":
            msg["order_id"] = ev.order_id or ""
            msg["client_order_id"] = ev.client_order_id or ""
            msg["market_ticker"] = q.ticker
            msg["executed_ts"] = rfc3339(q.executed_ts_ms if q.executed_ts_ms is not None else ev.ts_ms)
            audience = frozenset({ev.recipient}) if ev.recipient else frozenset()
        else:
            msg.update(
                market_ticker=q.ticker,
                event_ticker=q.event_ticker,
                yes_bid_dollars=format_price(q.yes_bid_ticks),
                no_bid_dollars=format_price(q.no_bid_ticks),
                yes_contracts_offered_fp=format_count(q.yes_contracts_units),
                no_contracts_offered_fp=format_count(q.no_contracts_units),
            )
            if q.rfq_target_cost_micros is not None:
                msg["rfq_target_cost_dollars"] = _money(q.rfq_target_cost_micros)
            if ev.kind == "quote_created":
                msg["created_ts"] = rfc3339(q.created_ts_ms)
            else:
                if q.accepted_side is not None:
                    msg["accepted_side"] = q.accepted_side
                if q.contracts_accepted_units is not None:
                    msg["contracts_accepted_fp"] = format_count(q.contracts_accepted_units)
            audience = frozenset({q.creator, q.rfq_creator})
        self.hub.publish_communications(
            ev.kind.encode(), _plain_encode(msg), audience=audience, rfq_creator=q.rfq_creator, shard=_shard(q.rfq_id)
        )


def _shard(key: str) -> int:
    """A stable shard number for communications fan-out (same id, same shard, every run)."""
    return zlib.crc32(key.encode())
