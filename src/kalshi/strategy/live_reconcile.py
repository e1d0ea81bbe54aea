"""What a live run missed while its private channels were down, read back over REST.

``fill`` and ``user_orders`` carry no sequence numbers, so the fills and order changes sent while a connection
was down (or after the server ended one of those subscriptions) are simply never delivered. Once the channels
flow again (:class:`~kalshi.ws.disruptions.DisruptionTracker`), :class:`MissedReports` reads the run's fills since
the last look (``GET /portfolio/fills``) and the state of its open orders (``GET /portfolio/orders``, then
``GET /portfolio/orders/{id}`` for those no longer resting), and returns what the strategy did not see, as the
same :class:`~kalshi.strategy.types.Fill` and :class:`~kalshi.strategy.types.OrderUpdate` reports the channels
would have delivered. Fills are told apart by the exchange's trade id, so one that also arrives over the
WebSocket later is not counted twice.

Only the run's own orders are looked at (its context knows them); the account as a whole is the
:class:`~kalshi.portfolio.Portfolio`'s business.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

from kalshi.strategy.context import Context
from kalshi.strategy.feed import book_side_of, money_micros, order_status_of, price_of, units_of
from kalshi.strategy.types import Fill, OrderState, OrderUpdate

__all__ = ["MissedReports", "rejected"]

_MARGIN_S: Final = 5  # REST timestamps are whole seconds, and clocks differ: look back a little further
_MEMORY: Final = 100_000  # trade ids remembered (oldest forgotten first)


class MissedReports:
    """The fills and order changes of a live run that its streams did not deliver.

    Args:
        rest: an authenticated ``AsyncKalshiClient``.
        ctx: the run's context (its orders).
        clock_s: wall-clock seconds (injectable for tests).
    """

    def __init__(self, rest: Any, ctx: Context, clock_s: Any = time.time) -> None:
        self._rest = rest
        self._ctx = ctx
        self._clock_s = clock_s
        self._trades: dict[str, None] = {}
        self.since_s = int(clock_s()) - _MARGIN_S
        self.recovered_fills = 0
        self.recovered_updates = 0

    def first_sight(self, fill: Fill) -> bool:
        """Note a fill's trade id; False if it was seen before (a fill without one always counts)."""
        trade = fill.trade_id
        if not trade:
            return True
        if trade in self._trades:
            return False
        self._trades[trade] = None
        if len(self._trades) > _MEMORY:
            del self._trades[next(iter(self._trades))]
        return True

    async def fetch(
        self, order_ids: Mapping[str, str], unknown: Mapping[str, str] | None = None
    ) -> list[Fill | OrderUpdate]:
        """What was missed, oldest first: the orders of ``unknown`` as found, fills, then the open orders whose
        state changed.

        Args:
            order_ids: exchange order id by client order id, for orders whose id the context does not hold yet.
            unknown: orders whose placing failed without an answer that says whether the exchange has them (a
                lost reply, a server error after retries), by client order id, with the failure. Each is looked
                up among the exchange's orders of its market: found, it is reported as it is there; not found,
                it is reported ``rejected`` with that failure.

        Raises:
            KalshiError: a REST call failed (nothing is marked as seen; call again).
        """
        started = int(self._clock_s())
        now_ns = time.time_ns()
        ctx = self._ctx
        exchange_ids = dict(order_ids)
        for order in ctx.orders():
            if order.order_id is not None:
                exchange_ids[order.client_order_id] = order.order_id
        found: list[OrderUpdate] = []
        for cid, failure in (unknown or {}).items():
            state = ctx.order(cid)
            if state is None or cid in exchange_ids:
                continue  # a report already said where it is
            remote_order = await self._find(state)
            if remote_order is None:
                found.append(rejected(state, f"not on the exchange after: {failure}", now_ns))
            else:
                exchange_ids[cid] = remote_order.order_id
                found.append(_report_of(state, remote_order.order_id, remote_order, now_ns))
        client_ids = {order_id: cid for cid, order_id in exchange_ids.items()}
        fills: list[tuple[int, Fill]] = []
        async for remote in self._rest.portfolio.iter_get_fills(min_ts=self.since_s, limit=1000):
            owner = client_ids.get(remote.order_id)
            trade = remote.trade_id or remote.fill_id
            if owner is None or trade in self._trades:
                continue  # another program's order, or a fill the run saw
            price = price_of(remote.yes_price_dollars)
            count = units_of(remote.count_fp)
            if price is None or count is None:
                continue
            fill = Fill(
                client_order_id=owner,
                order_id=remote.order_id,
                ticker=remote.ticker,
                side=book_side_of(remote.book_side, remote.outcome_side),
                price=price,
                count=count,
                fee=money_micros(remote.fee_cost),
                is_taker=bool(remote.is_taker),
                ts_ns=now_ns,
                trade_id=trade,
            )
            fills.append((remote.ts or 0, fill))
        fills.sort(key=lambda pair: pair[0])  # the exchange lists the newest first
        updates: list[OrderUpdate] = []
        open_orders = [o for o in ctx.open_orders() if exchange_ids.get(o.client_order_id)]
        if open_orders:
            resting = {o.order_id: o async for o in self._rest.orders.iter_get_orders(status="resting", limit=1000)}
            for order in open_orders:
                order_id = exchange_ids[order.client_order_id]
                remote_order = resting.get(order_id)
                if remote_order is None:
                    remote_order = (await self._rest.orders.get_order(order_id)).order
                update = _update_of(order, order_id, remote_order, now_ns)
                if update is not None:
                    updates.append(update)
        for _, fill in fills:
            self.first_sight(fill)
        self.since_s = started - _MARGIN_S
        self.recovered_fills += len(fills)
        self.recovered_updates += len(updates) + len(found)
        return [*found, *(fill for _, fill in fills), *updates]

    async def _find(self, order: OrderState) -> Any:
        """The exchange's order with ``order``'s client order id, or None."""
        since = order.created_ns // 1_000_000_000 - _MARGIN_S
        async for remote in self._rest.orders.iter_get_orders(ticker=order.ticker, min_ts=since, limit=1000):
            if remote.client_order_id == order.client_order_id:
                return remote
        return None


def _update_of(order: OrderState, order_id: str, remote: Any, now_ns: int) -> OrderUpdate | None:
    """The exchange's state of ``order`` as a report, or None when the context already has it."""
    update = _report_of(order, order_id, remote, now_ns)
    if update.status == order.status and update.remaining == order.remaining:
        return None
    return update


def rejected(order: OrderState, reason: str, now_ns: int) -> OrderUpdate:
    """The report that ``order`` never reached the book, for ``reason``."""
    return OrderUpdate(
        client_order_id=order.client_order_id,
        order_id=None,
        ticker=order.ticker,
        side=order.side,
        price=order.price,
        status="rejected",
        remaining=0,
        filled=0,
        reason=reason,
        ts_ns=now_ns,
    )


def _report_of(order: OrderState, order_id: str, remote: Any, now_ns: int) -> OrderUpdate:
    status = order_status_of(str(remote.status))
    remaining = units_of(remote.remaining_count_fp) or 0
    filled = units_of(remote.fill_count_fp) or 0
    return OrderUpdate(
        client_order_id=order.client_order_id,
        order_id=order_id,
        ticker=order.ticker,
        side=order.side,
        price=price_of(remote.yes_price_dollars) or order.price,
        status=status,
        remaining=remaining,
        filled=filled,
        reason="as the exchange has it (reconciled over REST)",
        ts_ns=now_ns,
    )
