"""The example market maker's requote rules: a threshold in ticks and a minimum quote life."""

from __future__ import annotations

import asyncio

from kalshi.strategy import Book, Context, MarketMaker, OrderUpdate
from kalshi.strategy.types import OrderState


class Sink:
    """Collects the context's requests (the order sink a runner provides)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, OrderState]] = []

    def place(self, order: OrderState) -> None:
        self.sent.append(("place", order))

    def amend(self, order: OrderState, price: int, count: int) -> None:
        self.sent.append(("amend", order))

    def cancel(self, order: OrderState) -> None:
        self.sent.append(("cancel", order))


def setup(**params: object) -> tuple[MarketMaker, Context, Sink, Book, list[int]]:
    now = [1_000_000_000]
    book = Book("M")
    book.set_levels([(4000, 500)], [(5000, 500)])  # bid 0.40, ask 0.50
    sink = Sink()
    ctx = Context(sink, lambda: now[0], {"M": book}, cash=10**12)
    return MarketMaker(**params), ctx, sink, book, now  # type: ignore[arg-type]


def rest_all(ctx: Context, sink: Sink) -> None:
    for op, order in sink.sent:
        if op == "place" and order.status == "pending":
            ctx.apply_update(
                OrderUpdate(
                    order.client_order_id, "x", order.ticker, order.side, order.price, "resting", 100, 0, None, 0
                )
            )


def cancels(sink: Sink) -> list[int]:
    return [order.price for op, order in sink.sent if op == "cancel"]


def test_a_young_quote_is_moved_only_after_its_minimum_life() -> None:
    mm, ctx, sink, book, now = setup(min_quote_life_s=0.25)
    asyncio.run(mm.on_book(ctx, book))
    assert sorted(o.price for _, o in sink.sent) == [4000, 5000]
    rest_all(ctx, sink)
    now[0] += 100_000_000  # 0.1 s later the others' bid rises a cent
    book.apply(True, 4100, 200)
    asyncio.run(mm.on_book(ctx, book))
    assert cancels(sink) == []  # too young to move
    now[0] += 200_000_000  # 0.3 s old: the next change of the others' prices moves it
    book.apply(True, 4200, 200)
    asyncio.run(mm.on_book(ctx, book))
    assert cancels(sink) == [4000]


def test_a_move_below_the_threshold_keeps_the_quote() -> None:
    mm, ctx, sink, book, _ = setup(requote_ticks=200, min_quote_life_s=0)
    asyncio.run(mm.on_book(ctx, book))
    rest_all(ctx, sink)
    book.apply(True, 4100, 200)  # one cent: under the two-cent threshold
    asyncio.run(mm.on_book(ctx, book))
    assert cancels(sink) == []
    book.apply(True, 4200, 200)  # two cents from the quote
    asyncio.run(mm.on_book(ctx, book))
    assert cancels(sink) == [4000]


def test_deltas_that_leave_the_others_prices_alone_do_nothing() -> None:
    mm, ctx, sink, book, _ = setup(min_quote_life_s=0)
    asyncio.run(mm.on_book(ctx, book))
    rest_all(ctx, sink)
    sent = len(sink.sent)
    version = book.quote_version
    book.apply(True, 3900, 300)  # below the best bid
    book.apply(True, 4000, -100)  # size at the best bid, which stays
    assert book.quote_version == version
    asyncio.run(mm.on_book(ctx, book))
    assert len(sink.sent) == sent


def places(sink: Sink) -> list[tuple[str, int]]:
    return [(order.side, order.price) for op, order in sink.sent if op == "place"]


def test_a_refused_quote_is_sent_again_on_the_next_change_not_at_once() -> None:
    mm, ctx, sink, book, _ = setup(min_quote_life_s=0)
    asyncio.run(mm.on_book(ctx, book))
    bid = next(order for op, order in sink.sent if op == "place" and order.side == "bid")
    refused = OrderUpdate(bid.client_order_id, None, "M", "bid", bid.price, "rejected", 0, 0, "post_only_cross", 0)
    ctx.apply_update(refused)
    asyncio.run(mm.on_order_update(ctx, refused))
    assert places(sink) == [("bid", 4000), ("ask", 5000)]  # not re-sent into the same refusal
    book.apply(True, 4100, 200)  # the others' bid moves: quote again
    asyncio.run(mm.on_book(ctx, book))
    assert places(sink)[2:] == [("bid", 4100)]


def test_a_reducing_order_that_found_nothing_is_not_repeated_at_once() -> None:
    mm, ctx, sink, book, _ = setup(min_quote_life_s=0, max_position=100, hard_limit=100)
    ctx.ledger.positions["M"] = 500  # over the hard limit: reduce with an IOC at the others' bid
    asyncio.run(mm.on_book(ctx, book))
    ioc = next(order for op, order in sink.sent if op == "place" and order.time_in_force == "immediate_or_cancel")
    nothing = OrderUpdate(ioc.client_order_id, None, "M", "ask", ioc.price, "canceled", 0, 0, None, 0)
    ctx.apply_update(nothing)
    asyncio.run(mm.on_order_update(ctx, nothing))
    iocs = [order for op, order in sink.sent if op == "place" and order.time_in_force == "immediate_or_cancel"]
    assert len(iocs) == 1  # the same book would cancel the same IOC again


def test_a_failed_cancel_is_sent_again_on_the_next_change() -> None:
    mm, ctx, sink, book, _ = setup(min_quote_life_s=0)
    asyncio.run(mm.on_book(ctx, book))
    rest_all(ctx, sink)
    book.apply(True, 4200, 200)  # the others' bid rises two cents: the bid quote must move
    asyncio.run(mm.on_book(ctx, book))
    assert cancels(sink) == [4000]
    bid = next(order for op, order in sink.sent if op == "cancel")
    book.apply(True, 4200, 100)  # more size at the same prices: nothing to do while the cancel is on its way
    asyncio.run(mm.on_book(ctx, book))
    assert cancels(sink) == [4000]
    failed = OrderUpdate(bid.client_order_id, "x", "M", "bid", 4000, "resting", 100, 0, "cancel failed: HTTP 503", 0)
    asyncio.run(mm.on_order_update(ctx, failed))
    assert cancels(sink) == [4000]  # not at once ...
    book.apply(True, 4300, 100)  # ... but on the next change of the others' prices
    asyncio.run(mm.on_book(ctx, book))
    assert cancels(sink) == [4000, 4000]
