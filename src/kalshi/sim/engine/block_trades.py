"""Block trades: a trade two accounts agree off the book, executed once both accept (sans-I/O).

Anyone party to it proposes a block trade (buyer of YES, seller of YES, market, price in ticks, count in units,
which side is the maker, an expiry); the proposer's side counts as accepted. When the other side accepts, it
executes at once as one trade flagged ``is_block_trade`` (public trades, fills, positions and cash as any
trade). A proposal past its expiry can no longer be accepted.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from kalshi.sim.engine.core import EngineCore
from kalshi.sim.engine.off_book import OffBookDesk
from kalshi.sim.engine.types import EngineError, OutcomeSide, is_valid_price

__all__ = ["BlockTradeDesk", "BlockTradeProposal"]

ProposalStatus = Literal["proposed", "executed", "expired"]


@dataclass(frozen=True, slots=True)
class BlockTradeProposal:
    """One block trade proposal: buyer buys YES from seller at ``price_ticks`` for ``count_units``."""

    proposal_id: str
    proposer: str
    buyer: str
    seller: str
    ticker: str
    price_ticks: int
    count_units: int
    maker_side: OutcomeSide
    expiration_ms: int
    created_ms: int
    updated_ms: int
    buyer_accepted_ms: int | None = None
    seller_accepted_ms: int | None = None
    executed_ms: int | None = None
    buyer_order_id: str | None = None
    seller_order_id: str | None = None

    def status(self, now_ms: int) -> ProposalStatus:
        """``executed``, ``expired`` (past its expiry unexecuted) or ``proposed``."""
        if self.executed_ms is not None:
            return "executed"
        return "expired" if now_ms >= self.expiration_ms else "proposed"


class BlockTradeDesk:
    """Block trade proposals (it owns them) and their execution; :class:`~kalshi.sim.engine.Engine` forwards to it.

    Args:
        core: the engine's state and primitives.
        off_book: executes an accepted proposal as one block trade.
    """

    __slots__ = ("_core", "_off_book", "_proposals")

    def __init__(self, core: EngineCore, off_book: OffBookDesk) -> None:
        self._core = core
        self._off_book = off_book
        self._proposals: dict[str, BlockTradeProposal] = {}

    def propose_block_trade(
        self,
        proposer: str,
        *,
        buyer: str,
        seller: str,
        ticker: str,
        price_ticks: int,
        count_units: int,
        maker_side: OutcomeSide,
        expiration_ms: int,
    ) -> BlockTradeProposal:
        """Propose a block trade; the proposer must be the buyer or the seller.

        Raises:
            EngineError: ``account_not_found``, ``market_not_found``, ``invalid_parameters`` (self trade,
                proposer not a party, price off the grid, non-positive count, expiry in the past).
        """
        core = self._core
        now = core.begin()
        try:
            core.account(buyer)
            core.account(seller)
            m = core.market(ticker)
            if buyer == seller:
                raise EngineError("invalid_parameters", "buyer_user_id and seller_user_id must differ")
            if proposer not in (buyer, seller):
                raise EngineError("invalid_parameters", "the proposer must be the buyer or the seller", status=403)
            if not is_valid_price(m.ranges, price_ticks):
                raise EngineError("invalid_parameters", f"price_centi_cents {price_ticks} is not on the market's grid")
            if count_units <= 0:
                raise EngineError("invalid_parameters", "centicount must be positive")
            if expiration_ms <= now:
                raise EngineError("invalid_parameters", "expiration_ts must be in the future")
            proposal = BlockTradeProposal(
                proposal_id=core.ids.new(),
                proposer=proposer,
                buyer=buyer,
                seller=seller,
                ticker=ticker,
                price_ticks=price_ticks,
                count_units=count_units,
                maker_side=maker_side,
                expiration_ms=expiration_ms,
                created_ms=now,
                updated_ms=now,
                buyer_accepted_ms=now if proposer == buyer else None,
                seller_accepted_ms=now if proposer == seller else None,
            )
            self._proposals[proposal.proposal_id] = proposal
            return proposal
        finally:
            core.end()

    def accept_block_trade(self, account: str, proposal_id: str) -> BlockTradeProposal:
        """Accept a proposal as its buyer or seller; executes it once both sides accepted.

        Raises:
            EngineError: ``block_trade_not_found``, ``block_trade_expired``, ``block_trade_executed``,
                ``market_closed``, ``insufficient_balance``.
        """
        now = self._core.begin()
        try:
            store = self._proposals
            p = store.get(proposal_id)
            if p is None or account not in (p.buyer, p.seller):
                raise EngineError("block_trade_not_found", f"no block trade proposal {proposal_id!r}", status=404)
            if p.executed_ms is not None:
                raise EngineError("block_trade_executed", "this block trade already executed", status=409)
            if now >= p.expiration_ms:
                raise EngineError("block_trade_expired", "this block trade proposal expired", status=409)
            if account == p.buyer and p.buyer_accepted_ms is None:
                p = dataclasses.replace(p, buyer_accepted_ms=now, updated_ms=now)
            if account == p.seller and p.seller_accepted_ms is None:
                p = dataclasses.replace(p, seller_accepted_ms=now, updated_ms=now)
            if p.buyer_accepted_ms is not None and p.seller_accepted_ms is not None:
                p = self._execute_block(p)
            store[proposal_id] = p
            return p
        finally:
            self._core.end()

    def _execute_block(self, p: BlockTradeProposal) -> BlockTradeProposal:
        core = self._core
        m = core.market(p.ticker)
        if not m.is_trading():
            raise EngineError("market_closed", f"market {p.ticker} is not trading", status=409)
        buy = self._off_book.order(p.buyer, m, "bid", p.price_ticks, p.count_units)
        sell = self._off_book.order(p.seller, m, "ask", p.price_ticks, p.count_units)
        if p.maker_side == "yes":  # the buyer is the maker
            self._off_book.execute(m, sell, buy, who=("seller", "buyer"), what="block trade")
        else:
            self._off_book.execute(m, buy, sell, who=("buyer", "seller"), what="block trade")
        return dataclasses.replace(
            p,
            executed_ms=core.now,
            updated_ms=core.now,
            buyer_order_id=buy.order_id,
            seller_order_id=sell.order_id,
        )

    def block_trade_proposals(self, account: str) -> list[BlockTradeProposal]:
        """The proposals ``account`` is party to, oldest first."""
        return [p for p in self._proposals.values() if account in (p.buyer, p.seller)]
