"""Off-book execution: two orders agreed outside the book (a confirmed RFQ quote, a block trade) traded at once.

Both sides get an executed fill-or-kill order, a fill and a position update like any trade; the trade is
flagged ``is_block_trade``. The taker's order is drawn its id before the maker's, so ids stay deterministic.
"""

from __future__ import annotations

from kalshi.sim.engine.book import OrderRecord
from kalshi.sim.engine.core import EngineCore, MarketState, required_reserve
from kalshi.sim.engine.types import BookSide, EngineError

__all__ = ["OffBookDesk"]


class OffBookDesk:
    """Builds and executes off-book trades for :class:`~kalshi.sim.engine.rfq.RfqDesk` and the block trades.

    Args:
        core: the engine's state and primitives.
    """

    __slots__ = ("_core",)

    def __init__(self, core: EngineCore) -> None:
        self._core = core

    def order(self, account: str, m: MarketState, side: BookSide, price: int, units: int) -> OrderRecord:
        """A not yet registered fill-or-kill order of ``account`` for an off-book trade.

        Raises:
            EngineError: ``account_not_found``.
        """
        self._core.account(account)
        now = self._core.now
        return OrderRecord(
            order_id="",
            account=account,
            ticker=m.spec.ticker,
            market_id=m.market_id,
            side=side,
            price=price,
            initial=units,
            remaining=units,
            time_in_force="fill_or_kill",
            stp="taker_at_cross",
            post_only=False,
            reduce_only=False,
            cancel_on_pause=False,
            client_order_id=None,
            group_id=None,
            expiration_ms=None,
            created_ms=now,
            updated_ms=now,
        )

    def execute(
        self, m: MarketState, taker: OrderRecord, maker: OrderRecord, *, who: tuple[str, str], what: str
    ) -> None:
        """Check both sides can pay, then register both orders and trade them in full as one block trade.

        ``who`` names the taker and the maker and ``what`` the deal in the error message.

        Raises:
            EngineError: ``insufficient_balance`` (nothing changed).
        """
        core = self._core
        price, units = taker.price, taker.remaining
        for order, taker_phase, name in ((taker, True, who[0]), (maker, False, who[1])):
            need = required_reserve(
                m.spec, order.side, price, units, taker_fee_acc=0, maker_fee_acc=0, taker_phase=taker_phase
            )
            acct = core.accounts[order.account]
            if need > acct.cash - acct.reserved:
                raise EngineError("insufficient_balance", f"the {name} lacks the balance to execute this {what}")
        for order, taker_phase in ((taker, True), (maker, False)):
            order.order_id = core.ids.new()
            core.orders[order.order_id] = order
            core.accounts[order.account].order_ids[order.order_id] = None
            core.set_reserve(order, core.required(m, order, taker_phase=taker_phase))
        core.fill(m, taker, maker, units, price, block=True)
        core.close_order(taker, "executed", "Trade")
