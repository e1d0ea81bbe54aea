"""The strategy context's order state from reports that come on two channels, in either order."""

from __future__ import annotations

from kalshi.strategy import Context, Fill, OrderUpdate
from kalshi.strategy.types import OrderState


class Sink:
    def __init__(self) -> None:
        self.placed: list[OrderState] = []

    def place(self, order: OrderState) -> None:
        self.placed.append(order)

    def amend(self, order: OrderState, price: int, count: int) -> None:
        raise AssertionError("not used")

    def cancel(self, order: OrderState) -> None:
        raise AssertionError("not used")


def fill(cid: str, count: int, trade: str) -> Fill:
    return Fill(cid, "o1", "M", "bid", 5000, count, 0, False, 0, trade)


def update(cid: str, status: str, remaining: int, filled: int) -> OrderUpdate:
    return OrderUpdate(cid, "o1", "M", "bid", 5000, status, remaining, filled, None, 0)  # type: ignore[arg-type]


def test_a_fill_counted_by_an_earlier_order_report_is_not_counted_again() -> None:
    for reports in (
        [
            fill("c", 100, "t1"),
            update("c", "resting", 900, 100),
            fill("c", 200, "t2"),
            update("c", "resting", 700, 300),
        ],
        [
            update("c", "resting", 900, 100),
            fill("c", 100, "t1"),
            update("c", "resting", 700, 300),
            fill("c", 200, "t2"),
        ],
        [update("c", "resting", 700, 300), fill("c", 100, "t1"), fill("c", 200, "t2")],
    ):
        ctx = Context(Sink(), lambda: 0, {}, cash=10**9)
        cid = ctx.place_order("M", "bid", 5000, 1000, client_order_id="c")
        for report in reports:
            if isinstance(report, Fill):
                ctx.apply_fill(report)
            else:
                ctx.apply_update(report)
        order = ctx.order(cid)
        assert order is not None
        assert (order.filled, order.remaining, order.status) == (300, 700, "resting"), reports
        assert ctx.position("M") == 300  # the ledger counts fills only, once each
