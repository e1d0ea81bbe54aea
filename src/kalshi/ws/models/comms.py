"""Messages of the ``communications`` channel: RFQs and quotes (all sequenced).

:class:`CommunicationsMessage` is the common base of the five message classes, so
``isinstance(msg, CommunicationsMessage)`` selects them all. Legacy integer fields of the pre-2026-03 protocol
(counts; money in centi-cents) are stored with an ``_int``/``_centicents`` suffix and read through exact
Decimal properties.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from kalshi.ws.models._base import DataMessage, Payload, count_or_none, money_or_none, price_or_none

__all__ = [
    "CommunicationsMessage",
    "CommunicationsPayload",
    "MveSelectedLeg",
    "QuoteAcceptedMessage",
    "QuoteAcceptedPayload",
    "QuoteCreatedMessage",
    "QuoteCreatedPayload",
    "QuoteExecutedMessage",
    "QuoteExecutedPayload",
    "RfqCreatedMessage",
    "RfqCreatedPayload",
    "RfqDeletedMessage",
    "RfqDeletedPayload",
]

_CENTI_CENTS = -4


class CommunicationsPayload(Payload, frozen=True, kw_only=True):
    """Fields every communications body has."""

    market_ticker: str
    event_ticker: str | None = None


class MveSelectedLeg(Payload, frozen=True, kw_only=True):
    """One leg of a multivariate (combo) RFQ."""

    market_ticker: str
    event_ticker: str | None = None
    side: str | None = None
    yes_settlement_value_dollars: str | None = None


class _RfqPayload(CommunicationsPayload, frozen=True, kw_only=True):
    id: str
    creator_id: str | None = None
    contracts_fp: str | None = None
    target_cost_dollars: str | None = None
    contracts_int: int | None = msgspec.field(default=None, name="contracts")
    target_cost_centicents: int | None = msgspec.field(default=None, name="target_cost")

    @property
    def contracts(self) -> Decimal | None:
        """Contracts requested (exact)."""
        return count_or_none(self.contracts_fp, self.contracts_int)

    @property
    def target_cost(self) -> Decimal | None:
        """Target cost in dollars (exact)."""
        return money_or_none(self.target_cost_dollars, self.target_cost_centicents, _CENTI_CENTS)


class RfqCreatedPayload(_RfqPayload, frozen=True, kw_only=True):
    """An RFQ was created (``id`` is the RFQ id)."""

    created_ts: str | None = None
    mve_collection_ticker: str | None = None
    mve_selected_legs: list[MveSelectedLeg] | None = None


class RfqDeletedPayload(_RfqPayload, frozen=True, kw_only=True):
    """An RFQ was deleted."""

    deleted_ts: str | None = None


class _QuotePayload(CommunicationsPayload, frozen=True, kw_only=True):
    quote_id: str
    rfq_id: str | None = None
    quote_creator_id: str | None = None
    rfq_creator_id: str | None = None
    subaccount: int | None = None


class _PricedQuotePayload(_QuotePayload, frozen=True, kw_only=True):
    yes_bid_dollars: str | None = None
    no_bid_dollars: str | None = None
    yes_contracts_offered_fp: str | None = None
    no_contracts_offered_fp: str | None = None
    rfq_target_cost_dollars: str | None = None
    yes_bid_cents: int | None = msgspec.field(default=None, name="yes_bid")
    no_bid_cents: int | None = msgspec.field(default=None, name="no_bid")
    yes_contracts_offered_int: int | None = msgspec.field(default=None, name="yes_contracts_offered")
    no_contracts_offered_int: int | None = msgspec.field(default=None, name="no_contracts_offered")
    rfq_target_cost_centicents: int | None = msgspec.field(default=None, name="rfq_target_cost")

    @property
    def yes_bid(self) -> Decimal | None:
        """YES bid in dollars (exact)."""
        return price_or_none(self.yes_bid_dollars, self.yes_bid_cents)

    @property
    def no_bid(self) -> Decimal | None:
        """NO bid in dollars (exact)."""
        return price_or_none(self.no_bid_dollars, self.no_bid_cents)

    @property
    def yes_contracts_offered(self) -> Decimal | None:
        """YES contracts offered (exact)."""
        return count_or_none(self.yes_contracts_offered_fp, self.yes_contracts_offered_int)

    @property
    def no_contracts_offered(self) -> Decimal | None:
        """NO contracts offered (exact)."""
        return count_or_none(self.no_contracts_offered_fp, self.no_contracts_offered_int)

    @property
    def rfq_target_cost(self) -> Decimal | None:
        """The RFQ's target cost in dollars (exact)."""
        return money_or_none(self.rfq_target_cost_dollars, self.rfq_target_cost_centicents, _CENTI_CENTS)


class QuoteCreatedPayload(_PricedQuotePayload, frozen=True, kw_only=True):
    """A quote was made on an RFQ."""

    created_ts: str | None = None


class QuoteAcceptedPayload(_PricedQuotePayload, frozen=True, kw_only=True):
    """A quote was accepted."""

    accepted_side: str | None = None
    contracts_accepted_fp: str | None = None
    contracts_accepted_int: int | None = msgspec.field(default=None, name="contracts_accepted")

    @property
    def contracts_accepted(self) -> Decimal | None:
        """Contracts accepted (exact)."""
        return count_or_none(self.contracts_accepted_fp, self.contracts_accepted_int)


class QuoteExecutedPayload(_QuotePayload, frozen=True, kw_only=True):
    """A quote was executed: your resulting ``order_id``/``client_order_id`` correlate with fills."""

    order_id: str | None = None
    client_order_id: str | None = None
    executed_ts: str | None = None


class CommunicationsMessage(DataMessage, frozen=True, kw_only=True):
    """Base of the five ``communications`` messages (rfq_created, rfq_deleted, quote_created, quote_accepted,
    quote_executed)."""

    msg: CommunicationsPayload


class RfqCreatedMessage(CommunicationsMessage, tag="rfq_created", frozen=True, kw_only=True):
    """``rfq_created``."""

    type = "rfq_created"
    msg: RfqCreatedPayload


class RfqDeletedMessage(CommunicationsMessage, tag="rfq_deleted", frozen=True, kw_only=True):
    """``rfq_deleted``."""

    type = "rfq_deleted"
    msg: RfqDeletedPayload


class QuoteCreatedMessage(CommunicationsMessage, tag="quote_created", frozen=True, kw_only=True):
    """``quote_created``."""

    type = "quote_created"
    msg: QuoteCreatedPayload


class QuoteAcceptedMessage(CommunicationsMessage, tag="quote_accepted", frozen=True, kw_only=True):
    """``quote_accepted``."""

    type = "quote_accepted"
    msg: QuoteAcceptedPayload


class QuoteExecutedMessage(CommunicationsMessage, tag="quote_executed", frozen=True, kw_only=True):
    """``quote_executed``."""

    type = "quote_executed"
    msg: QuoteExecutedPayload
