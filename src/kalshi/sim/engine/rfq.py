"""Requests for quote: create/delete RFQs, quote them, accept and confirm, and execute off the book.

Convention (documented on :class:`~kalshi.sim.engine.types.QuoteView`): a quote bids ``yes_bid`` for YES
and ``no_bid`` for NO; the RFQ creator's ``accepted_side`` is the side the creator buys. Accepting
``"yes"`` trades at YES price ``10000 - no_bid`` (the quoter buys NO at its bid); accepting ``"no"``
trades at YES price ``yes_bid``. Confirming executes at once as a block trade: the RFQ creator is the
taker, the quoter the maker, and each gets an executed order, a fill and a ``quote_executed`` event.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from kalshi._fixed import COUNT_SCALE, PRICE_SCALE
from kalshi.sim.engine.core import EngineCore
from kalshi.sim.engine.events import QuoteEvent, RfqEvent
from kalshi.sim.engine.off_book import OffBookDesk
from kalshi.sim.engine.types import (
    BookSide,
    EngineError,
    OutcomeSide,
    QuoteView,
    RfqView,
    is_valid_price,
)

__all__ = ["RfqDesk", "RfqRecord"]


@dataclass(slots=True, eq=False)
class RfqRecord:
    """Mutable state of an RFQ; :attr:`view` is replaced on each change."""

    view: RfqView
    quote_ids: list[str] = field(default_factory=list)


class RfqDesk:
    """RFQs and quotes (it owns them); :class:`~kalshi.sim.engine.Engine` forwards to it.

    Args:
        core: the engine's state and primitives.
        off_book: executes a confirmed quote as a block trade.
    """

    __slots__ = ("_core", "_off_book", "_quotes", "_rfqs")

    def __init__(self, core: EngineCore, off_book: OffBookDesk) -> None:
        self._core = core
        self._off_book = off_book
        self._rfqs: dict[str, RfqRecord] = {}
        self._quotes: dict[str, QuoteView] = {}

    def _emit_rfq(self, kind: Literal["rfq_created", "rfq_deleted"], rfq: RfqView) -> None:
        self._core.outbox.append(RfqEvent(kind=kind, rfq=rfq, ts_ms=self._core.now))

    def _emit_quote(
        self,
        kind: Literal["quote_created", "quote_accepted", "quote_executed", "quote_deleted"],
        quote: QuoteView,
        *,
        recipient: str | None = None,
        order_id: str | None = None,
        client_order_id: str | None = None,
    ) -> None:
        self._core.outbox.append(
            QuoteEvent(
                kind=kind,
                quote=quote,
                ts_ms=self._core.now,
                recipient=recipient,
                order_id=order_id,
                client_order_id=client_order_id,
            )
        )

    def _rfq(self, rfq_id: str) -> RfqRecord:
        rec = self._rfqs.get(rfq_id)
        if rec is None:
            raise EngineError("rfq_not_found", f"no RFQ {rfq_id!r}", status=404)
        return rec

    def _quote(self, quote_id: str) -> QuoteView:
        quote = self._quotes.get(quote_id)
        if quote is None:
            raise EngineError("quote_not_found", f"no quote {quote_id!r}", status=404)
        return quote

    def _set_quote(self, quote: QuoteView, **changes: Any) -> QuoteView:
        new = dataclasses.replace(quote, updated_ts_ms=self._core.now, **changes)
        self._quotes[quote.quote_id] = new
        return new

    def _close_rfq(self, rec: RfqRecord, reason: str) -> None:
        rec.view = dataclasses.replace(
            rec.view,
            status="closed",
            updated_ts_ms=self._core.now,
            cancelled_ts_ms=self._core.now,
            cancellation_reason=reason,
        )
        for quote_id in rec.quote_ids:
            quote = self._quotes[quote_id]
            if quote.status in ("open", "accepted"):
                self._cancel_quote(quote)

    def _cancel_quote(self, quote: QuoteView) -> QuoteView:
        quote = self._set_quote(quote, status="cancelled", cancelled_ts_ms=self._core.now)
        self._emit_quote("quote_deleted", quote)
        return quote

    def create_rfq(
        self,
        account: str,
        ticker: str,
        *,
        contracts_units: int | None = None,
        target_cost_micros: int | None = None,
        rest_remainder: bool = False,
        replace_existing: bool = False,
    ) -> RfqView:
        """Ask for quotes on ``ticker`` for a size (``contracts_units``) or a budget (``target_cost_micros``).

        Raises:
            EngineError: ``account_not_found``, ``market_not_found``, ``market_closed``, ``invalid_parameters``.
        """
        core = self._core
        now = core.begin()
        try:
            core.account(account)
            m = core.market(ticker)
            if not m.is_trading():
                raise EngineError("market_closed", f"market {ticker} is not trading", status=409)
            if (contracts_units is None) == (target_cost_micros is None):
                raise EngineError("invalid_parameters", "give exactly one of contracts or target_cost")
            size = contracts_units if contracts_units is not None else target_cost_micros
            if size is None or size <= 0:
                raise EngineError("invalid_parameters", "the RFQ size must be positive")
            if replace_existing:
                for rec in self._rfqs.values():
                    if rec.view.creator == account and rec.view.status == "open":
                        self._close_rfq(rec, "replaced")
                        self._emit_rfq("rfq_deleted", rec.view)
            view = RfqView(
                rfq_id=core.ids.new(),
                creator=account,
                ticker=ticker,
                event_ticker=m.spec.event_ticker,
                contracts_units=contracts_units,
                target_cost_micros=target_cost_micros,
                rest_remainder=rest_remainder,
                status="open",
                created_ts_ms=now,
                updated_ts_ms=now,
                mve_collection_ticker=m.spec.mve_collection_ticker,
                mve_selected_legs=m.spec.mve_selected_legs,
            )
            self._rfqs[view.rfq_id] = RfqRecord(view=view)
            self._emit_rfq("rfq_created", view)
            return view
        finally:
            core.end()

    def delete_rfq(self, account: str, rfq_id: str) -> RfqView:
        """Withdraw an open RFQ (its open quotes are cancelled).

        Raises:
            EngineError: ``rfq_not_found``, ``rfq_closed``.
        """
        self._core.begin()
        try:
            rec = self._rfq(rfq_id)
            if rec.view.creator != account:
                raise EngineError("rfq_not_found", f"no RFQ {rfq_id!r} for this account", status=404)
            if rec.view.status != "open":
                raise EngineError("rfq_closed", f"RFQ {rfq_id} is closed", status=409)
            self._close_rfq(rec, "deleted")
            self._emit_rfq("rfq_deleted", rec.view)
            return rec.view
        finally:
            self._core.end()

    def create_quote(
        self,
        account: str,
        rfq_id: str,
        *,
        yes_bid_ticks: int,
        no_bid_ticks: int,
        rest_remainder: bool = False,
    ) -> QuoteView:
        """Quote an open RFQ; 0 declines a side. Replaces this account's earlier quote on the RFQ.

        Raises:
            EngineError: ``account_not_found``, ``rfq_not_found``, ``rfq_closed``, ``self_quote``,
                ``market_closed``, ``invalid_price``.
        """
        core = self._core
        now = core.begin()
        try:
            core.account(account)
            rec = self._rfq(rfq_id)
            rfq = rec.view
            if rfq.status != "open":
                raise EngineError("rfq_closed", f"RFQ {rfq_id} is closed", status=409)
            if rfq.creator == account:
                raise EngineError("self_quote", "an account cannot quote its own RFQ")
            m = core.market(rfq.ticker)
            if not m.is_trading():
                raise EngineError("market_closed", f"market {rfq.ticker} is not trading", status=409)
            for bid in (yes_bid_ticks, no_bid_ticks):
                if bid != 0 and not is_valid_price(m.ranges, bid):
                    raise EngineError("invalid_price", f"bid {bid} ticks is not on the market's price grid")
            if not (yes_bid_ticks or no_bid_ticks):
                raise EngineError("invalid_price", "quote at least one side (yes_bid or no_bid above 0)")
            if rfq.contracts_units is not None:
                yes_units = no_units = rfq.contracts_units
            else:
                assert rfq.target_cost_micros is not None
                # A budget buys whole contracts at the price the creator would pay on each side.
                yes_units = self._budget_units(rfq.target_cost_micros, PRICE_SCALE - no_bid_ticks, no_bid_ticks)
                no_units = self._budget_units(rfq.target_cost_micros, PRICE_SCALE - yes_bid_ticks, yes_bid_ticks)
            for quote_id in rec.quote_ids:
                old = self._quotes[quote_id]
                if old.creator == account and old.status == "open":
                    self._cancel_quote(old)
            quote = QuoteView(
                quote_id=core.ids.new(),
                rfq_id=rfq_id,
                creator=account,
                rfq_creator=rfq.creator,
                ticker=rfq.ticker,
                event_ticker=rfq.event_ticker,
                yes_bid_ticks=yes_bid_ticks,
                no_bid_ticks=no_bid_ticks,
                yes_contracts_units=yes_units,
                no_contracts_units=no_units,
                rfq_target_cost_micros=rfq.target_cost_micros,
                rest_remainder=rest_remainder,
                status="open",
                created_ts_ms=now,
                updated_ts_ms=now,
            )
            self._quotes[quote.quote_id] = quote
            rec.quote_ids.append(quote.quote_id)
            self._emit_quote("quote_created", quote)
            return quote
        finally:
            core.end()

    @staticmethod
    def _budget_units(budget_micros: int, unit_price: int, quoter_bid: int) -> int:
        if quoter_bid == 0:
            return 0
        return budget_micros // unit_price // COUNT_SCALE * COUNT_SCALE

    def delete_quote(self, account: str, quote_id: str) -> QuoteView:
        """Withdraw an open or accepted (not yet confirmed) quote.

        Raises:
            EngineError: ``quote_not_found``, ``quote_not_open``.
        """
        self._core.begin()
        try:
            quote = self._quote(quote_id)
            if quote.creator != account:
                raise EngineError("quote_not_found", f"no quote {quote_id!r} for this account", status=404)
            if quote.status not in ("open", "accepted"):
                raise EngineError("quote_not_open", f"quote {quote_id} is {quote.status}", status=409)
            return self._cancel_quote(quote)
        finally:
            self._core.end()

    def accept_quote(self, account: str, quote_id: str, accepted_side: OutcomeSide) -> QuoteView:
        """The RFQ creator takes one side of a quote; the quoter must then confirm.

        Raises:
            EngineError: ``quote_not_found``, ``quote_not_open``, ``rfq_closed``, ``invalid_parameters``.
        """
        now = self._core.begin()
        try:
            quote = self._quote(quote_id)
            if quote.rfq_creator != account:
                raise EngineError("quote_not_found", f"no quote {quote_id!r} on this account's RFQs", status=404)
            if quote.status != "open":
                raise EngineError("quote_not_open", f"quote {quote_id} is {quote.status}", status=409)
            if self._rfqs[quote.rfq_id].view.status != "open":
                raise EngineError("rfq_closed", f"RFQ {quote.rfq_id} is closed", status=409)
            if accepted_side not in ("yes", "no"):
                raise EngineError("invalid_parameters", "accepted_side must be yes or no")
            units = quote.yes_contracts_units if accepted_side == "yes" else quote.no_contracts_units
            bid = quote.no_bid_ticks if accepted_side == "yes" else quote.yes_bid_ticks
            if not bid or not units:
                raise EngineError("invalid_parameters", f"the quote does not offer the {accepted_side} side")
            quote = self._set_quote(
                quote,
                status="accepted",
                accepted_side=accepted_side,
                contracts_accepted_units=units,
                accepted_ts_ms=now,
            )
            self._emit_quote("quote_accepted", quote)
            return quote
        finally:
            self._core.end()

    def confirm_quote(self, account: str, quote_id: str) -> QuoteView:
        """The quoter confirms an accepted quote: it executes now as a block trade.

        Raises:
            EngineError: ``quote_not_found``, ``quote_not_accepted``, ``market_closed``,
                ``insufficient_balance``.
        """
        core = self._core
        now = core.begin()
        try:
            quote = self._quote(quote_id)
            if quote.creator != account:
                raise EngineError("quote_not_found", f"no quote {quote_id!r} for this account", status=404)
            if quote.status != "accepted" or quote.accepted_side is None or not quote.contracts_accepted_units:
                raise EngineError("quote_not_accepted", f"quote {quote_id} is {quote.status}", status=409)
            m = core.market(quote.ticker)
            if not m.is_trading():
                raise EngineError("market_closed", f"market {quote.ticker} is not trading", status=409)
            units = quote.contracts_accepted_units
            creator_side: BookSide
            if quote.accepted_side == "yes":
                price, creator_side = PRICE_SCALE - quote.no_bid_ticks, "bid"
            else:
                price, creator_side = quote.yes_bid_ticks, "ask"
            quoter_side: BookSide = "ask" if creator_side == "bid" else "bid"
            taker = self._off_book.order(quote.rfq_creator, m, creator_side, price, units)
            maker = self._off_book.order(account, m, quoter_side, price, units)
            self._off_book.execute(m, taker, maker, who=("RFQ creator", "quoter"), what="quote")
            quote = self._set_quote(
                quote,
                status="executed",
                confirmed_ts_ms=now,
                executed_ts_ms=now,
                creator_order_id=maker.order_id,
                rfq_creator_order_id=taker.order_id,
            )
            rec = self._rfqs[quote.rfq_id]
            self._close_rfq(rec, "executed")
            self._emit_quote("quote_executed", quote, recipient=quote.rfq_creator, order_id=taker.order_id)
            self._emit_quote("quote_executed", quote, recipient=account, order_id=maker.order_id)
            return quote
        finally:
            core.end()

    # ------------------------------------------------------------------------------------ queries

    def rfq(self, rfq_id: str) -> RfqView:
        """One RFQ.

        Raises:
            EngineError: ``rfq_not_found``.
        """
        return self._rfq(rfq_id).view

    def rfqs(self, *, status: Literal["open", "closed"] | None = None, creator: str | None = None) -> list[RfqView]:
        """RFQs, oldest first, optionally filtered."""
        return [
            r.view
            for r in self._rfqs.values()
            if (status is None or r.view.status == status) and (creator is None or r.view.creator == creator)
        ]

    def quote(self, quote_id: str) -> QuoteView:
        """One quote.

        Raises:
            EngineError: ``quote_not_found``.
        """
        return self._quote(quote_id)

    def quotes(self, *, account: str | None = None, rfq_id: str | None = None) -> list[QuoteView]:
        """Quotes, oldest first: those ``account`` made or received, and/or those on ``rfq_id``."""
        return [
            q
            for q in self._quotes.values()
            if (account is None or account in (q.creator, q.rfq_creator)) and (rfq_id is None or q.rfq_id == rfq_id)
        ]
