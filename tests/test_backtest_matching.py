"""The simulated exchange's fill model on small hand-built books: queue position, cancels, trades, crossing, taking."""

from __future__ import annotations

import pytest

from kalshi.backtest.fees import FeeSchedule
from kalshi.backtest.matching import SimulatedExchange
from kalshi.strategy.types import Fill, OrderState, OrderUpdate

T = "MKT"


class Harness:
    def __init__(self, *, cancel_model: str = "back", fees: FeeSchedule | None = None) -> None:
        self.now = 1_000
        self.fills: list[Fill] = []
        self.updates: list[OrderUpdate] = []
        self.own: list[tuple[str, bool, int, int]] = []
        self.ex = SimulatedExchange(
            self.emit,
            lambda: self.now,
            cancel_model=cancel_model,  # type: ignore[arg-type]
            fees=fees,
            cash=10**12,
            on_own_delta=lambda *a: self.own.append(a),
        )
        self.n = 0

    def emit(self, report: Fill | OrderUpdate) -> None:
        (self.fills if isinstance(report, Fill) else self.updates).append(report)

    def order(
        self, side: str, price: int, count: int, tif: str = "good_till_canceled", post_only: bool = False
    ) -> OrderState:
        self.n += 1
        state = OrderState(f"c{self.n}", T, side, price, count, tif, post_only, remaining=count)  # type: ignore[arg-type]
        self.ex.place(state)
        return state

    def ahead(self, state: OrderState) -> int:
        return self.ex.orders[state.client_order_id].ahead

    def status(self, state: OrderState) -> str:
        return self.ex.orders[state.client_order_id].status


def book(h: Harness, yes: list[tuple[int, int]], no: list[tuple[int, int]]) -> None:
    h.ex.snapshot(T, yes, no)


def test_a_resting_order_queues_behind_the_visible_size_and_trades_consume_the_queue_first() -> None:
    h = Harness()
    book(h, [(5000, 300)], [(4900, 500)])  # YES bid 0.50 x3, YES ask 0.51 x5
    bid = h.order("bid", 5000, 100)
    assert h.status(bid) == "resting" and h.ahead(bid) == 300
    h.ex.delta(T, True, 5000, 200, 1)  # joins behind us
    assert h.ahead(bid) == 300
    h.ex.trade(T, 5000, 200, False, 2)  # a NO taker hits the YES bids at 0.50
    assert h.ahead(bid) == 100 and h.fills == []
    h.ex.trade(T, 5000, 150, False, 3)
    assert h.ahead(bid) == 0
    assert [(f.price, f.count, f.is_taker) for f in h.fills] == [(5000, 50, False)]
    h.ex.trade(T, 5000, 100, False, 4)
    assert [f.count for f in h.fills] == [50, 50]
    assert h.status(bid) == "executed"
    assert h.ex.account.positions[T] == 100


def test_a_trade_through_a_better_priced_order_fills_it_at_its_own_price() -> None:
    h = Harness()
    book(h, [(5000, 300)], [(4800, 500)])
    bid = h.order("bid", 5100, 200)  # inside the spread: alone at its price
    assert h.ahead(bid) == 0
    h.ex.trade(T, 5000, 150, False, 1)  # the taker sold down to 0.50: it went through 0.51 first
    assert [(f.price, f.count) for f in h.fills] == [(5100, 150)]


def test_a_trade_at_a_worse_price_for_the_taker_does_not_reach_the_order() -> None:
    h = Harness()
    book(h, [(5000, 300)], [(4800, 500)])
    h.order("bid", 4900, 100)
    h.ex.trade(T, 5000, 300, False, 1)
    assert h.fills == []


@pytest.mark.parametrize(("model", "expected"), [("back", 300), ("pro_rata", 240)])
def test_cancels_ahead_follow_the_named_model(model: str, expected: int) -> None:
    h = Harness(cancel_model=model)
    book(h, [(5000, 300)], [(4900, 500)])
    bid = h.order("bid", 5000, 100)
    h.ex.delta(T, True, 5000, 200, 1)  # level 500: 300 ahead, 200 behind
    h.ex.delta(T, True, 5000, -100, 2)  # a cancel somewhere in the level
    h.ex.delta(T, True, 5100, 100, 3)  # the next exchange timestamp settles the window
    # back: the cancel came from behind us (ahead unchanged); pro-rata: 100 * 300 / 500 = 60 of it was ahead.
    assert h.ahead(bid) == expected


def test_cancels_from_the_back_shrink_the_queue_only_when_the_level_gets_smaller_than_it() -> None:
    h = Harness()
    book(h, [(5000, 300)], [(4900, 500)])
    bid = h.order("bid", 5000, 100)
    h.ex.delta(T, True, 5000, -250, 1)
    h.ex.delta(T, True, 5100, 100, 2)
    assert h.ahead(bid) == 50


@pytest.mark.parametrize("delta_first", [True, False])
def test_a_trade_and_its_delta_count_once_in_either_order(delta_first: bool) -> None:
    h = Harness()
    book(h, [(5000, 300)], [(4900, 500)])
    bid = h.order("bid", 5000, 100)
    if delta_first:
        h.ex.delta(T, True, 5000, -120, 7)
        h.ex.trade(T, 5000, 120, False, 7)
    else:
        h.ex.trade(T, 5000, 120, False, 7)
        h.ex.delta(T, True, 5000, -120, 7)
    h.ex.delta(T, False, 4000, 100, 8)  # next timestamp
    assert h.ahead(bid) == 180 and h.fills == []


def test_new_opposite_size_that_crosses_a_resting_order_fills_it_as_maker() -> None:
    h = Harness()
    book(h, [(5000, 300)], [(4700, 500)])  # ask 0.53
    ask = h.order("ask", 5200, 300)  # sell YES at 0.52: rests on the NO side at 4800
    assert h.status(ask) == "resting"
    h.ex.delta(T, True, 5300, 200, 1)  # someone bids 0.53 for YES: would have traded with our 0.52 offer
    assert [(f.side, f.price, f.count, f.is_taker) for f in h.fills] == [("ask", 5200, 200, False)]
    assert h.ex.account.positions[T] == -200


def test_taking_walks_the_levels_at_their_prices_and_ioc_cancels_the_rest() -> None:
    h = Harness()
    book(h, [(5000, 300)], [(4900, 100), (4800, 200)])  # asks 0.51 x1, 0.52 x2
    ioc = h.order("bid", 5200, 500, "immediate_or_cancel")
    assert [(f.price, f.count, f.is_taker) for f in h.fills] == [(5100, 100, True), (5200, 200, True)]
    assert h.status(ioc) == "canceled"
    # No market impact: the recorded book is what the recording says it is.
    assert h.ex.book(T).asks() == [(5100, 100), (5200, 200)]  # type: ignore[union-attr]


def test_fill_or_kill_and_post_only() -> None:
    h = Harness()
    book(h, [(5000, 300)], [(4900, 100)])
    fok = h.order("bid", 5100, 200, "fill_or_kill")
    assert h.status(fok) == "canceled" and h.fills == []
    post = h.order("bid", 5100, 100, post_only=True)
    assert h.status(post) == "rejected" and "post_only" in (h.updates[-1].reason or "")
    fine = h.order("bid", 5000, 100, post_only=True)
    assert h.status(fine) == "resting"
    unknown = OrderState("x", "NOPE", "bid", 5000, 100, "good_till_canceled", False, remaining=100)
    h.ex.place(unknown)
    assert h.ex.orders["x"].status == "rejected"


def test_amend_keeps_the_place_only_for_a_smaller_size_at_the_same_price() -> None:
    h = Harness()
    book(h, [(5000, 300)], [(4900, 500)])
    bid = h.order("bid", 5000, 200)
    h.ex.delta(T, True, 5000, 100, 1)
    h.ex.amend(bid, 5000, 100)
    assert h.ahead(bid) == 300 and h.ex.orders[bid.client_order_id].remaining == 100
    bid.status = "resting"
    h.ex.amend(bid, 4900, 100)
    assert h.ahead(bid) == 0  # a new level of its own
    h.ex.cancel(bid)
    assert h.status(bid) == "canceled"
    # The strategy's own size moved with it: +200, -100, -100 at 5000, +100 at 4900, -100 at 4900.
    assert h.own == [
        (T, True, 5000, 200),
        (T, True, 5000, -100),
        (T, True, 5000, -100),
        (T, True, 4900, 100),
        (T, True, 4900, -100),
    ]


def test_settlement_pays_the_position_and_cancels_resting_orders() -> None:
    h = Harness()
    book(h, [(5000, 300)], [(4900, 500)])
    h.order("bid", 5100, 300, "immediate_or_cancel")  # buys 3 YES at 0.51
    rest = h.order("bid", 4000, 100)
    cash = h.ex.account.cash
    payout = h.ex.settle(T, 10_000)
    assert payout == 300 * 10_000 and h.ex.account.cash == cash + payout
    assert h.status(rest) == "canceled" and h.ex.account.positions[T] == 0


def test_the_strategy_s_own_taker_trades_in_the_recording_are_not_counted_twice() -> None:
    h = Harness()
    book(h, [(5000, 300)], [(4900, 500)])
    ask = h.order("ask", 5000, 100)  # sells into the 0.50 bid (taker), rests nothing
    assert h.status(ask) == "executed"
    bid = h.order("bid", 5000, 100)  # now bids at 0.50 behind 300
    h.ex.trade(T, 5000, 100, False, 1)  # the recording's echo of our own sale: not somebody else's flow
    assert h.ahead(bid) == 300


def test_a_crowd_cancel_recorded_before_a_trade_at_one_timestamp_moves_the_queue_before_the_trade() -> None:
    # Live: 25 contracts ahead of us at 0.63; over time 1 is cancelled and 13 trade, leaving 11 ahead. Then, in one
    # exchange timestamp, the crowd cancels those 11 (delta -11) and a taker sells 3 into the level: our order is
    # now first and fills (the recording shows that delta with our client_order_id, then the trade).
    h = Harness()
    book(h, [(6330, 2500)], [(3000, 500)])
    bid = h.order("bid", 6330, 300)
    assert h.ahead(bid) == 2500
    h.ex.delta(T, True, 6330, -100, 1)  # a cancel: nobody is behind us, so it was ahead
    h.ex.delta(T, True, 6330, -1300, 2)
    h.ex.trade(T, 6330, 1300, False, 2)
    h.ex.delta(T, True, 6340, 100, 3)  # next timestamp
    assert h.ahead(bid) == 1100
    h.ex.delta(T, True, 6330, -1100, 4)  # the crowd cancel
    h.ex.recorded_own_delta(T, True, 6330, -300, 4)  # the recording account's order leaves the level: the trade's
    h.ex.trade(T, 6330, 300, False, 4)
    assert [(f.price, f.count, f.is_taker) for f in h.fills] == [(6330, 300, False)]
    assert h.status(bid) == "executed"


def test_without_own_deltas_the_latest_decrease_before_a_trade_is_its_own_and_earlier_ones_are_cancels() -> None:
    # One timestamp: a cancel of 200 (only ahead of us: nobody is behind), then the trade's delta of 250 and the trade.
    h = Harness()
    book(h, [(5000, 300)], [(4900, 500)])
    bid = h.order("bid", 5000, 100)
    h.ex.delta(T, True, 5000, -200, 9)
    h.ex.delta(T, True, 5000, -50, 9)
    h.ex.trade(T, 5000, 50, False, 9)
    # The cancel happened first: 100 left ahead, which the 50 traded consume down to 50; nothing filled.
    assert h.ahead(bid) == 50 and h.fills == []
    h.ex.delta(T, True, 5000, -100, 10)
    h.ex.trade(T, 5000, 100, False, 10)
    assert [(f.price, f.count) for f in h.fills] == [(5000, 50)]


def test_self_trade_prevention_cancels_a_taker_that_reaches_the_strategy_s_own_order() -> None:
    h = Harness()
    book(h, [(5000, 300)], [(4800, 500), (4700, 200)])  # asks 0.52 x5, 0.53 x2
    ask = h.order("ask", 5200, 100)  # joins 0.52 behind 500
    assert h.status(ask) == "resting" and h.ahead(ask) == 500
    ioc = h.order("bid", 5300, 800, "immediate_or_cancel")
    # It takes the 500 ahead of our offer, then would trade with it: cancelled there (0.53 is never reached).
    assert [(f.price, f.count, f.is_taker) for f in h.fills] == [(5200, 500, True)]
    assert h.status(ioc) == "canceled" and "SelfTrade" in (h.updates[-1].reason or "")
    assert h.status(ask) == "resting"
    inside = h.order("ask", 5100, 100)  # alone at 0.51, better than everyone
    h.fills.clear()
    gtc = h.order("bid", 5300, 100)
    assert h.fills == [] and h.status(gtc) == "canceled"
    assert h.status(h.order("bid", 5100, 100, post_only=True)) == "rejected"  # it would cross our own offer
    assert h.status(inside) == "resting"


def test_own_sizes_in_a_shared_book_are_not_others_liquidity() -> None:
    # Without data latency the runner shows the strategy the exchange's own book with its orders added.
    h = Harness()
    book(h, [(5000, 300)], [(4900, 100)])
    shared = h.ex.book(T)
    assert shared is not None
    first = h.order("bid", 5000, 200)
    shared.apply_own(True, 5000, 200)  # as the runner delivers the exchange's own-size report
    second = h.order("bid", 5000, 100)
    assert h.ahead(first) == 300 and h.ahead(second) == 300  # our first order is not ahead of us as others are
    assert shared.others_size(True, 5000) == 300 and shared.others_mid2 == 5000 + 5100


def test_orders_off_the_market_s_price_grid_or_fractional_where_whole_are_refused_as_the_exchange_does() -> None:
    from kalshi.backtest.market_rules import MarketRules

    h = Harness()
    book(h, [(4000, 300)], [(5000, 300)])  # YES bid 0.40, YES ask 0.50
    # Tapered: tenths of a cent below $0.10 and above $0.90, whole cents between (a wire price_ranges list).
    ranges = [
        {"start": "0.0000", "end": "0.1000", "step": "0.0010"},
        {"start": "0.1000", "end": "0.9000", "step": "0.0100"},
        {"start": "0.9000", "end": "1.0000", "step": "0.0010"},
    ]
    rules = MarketRules.from_wire(ranges, fractional=False)
    assert rules is not None
    h.ex.rules[T] = rules
    inside = h.order("bid", 4050, 100)  # half a cent inside the spread: not on the whole-cent grid
    assert h.status(inside) == "rejected"
    assert h.updates[-1].reason is not None and h.updates[-1].reason.startswith("invalid_price: 4050 ticks")
    assert h.status(h.order("bid", 4100, 100)) == "resting"  # a whole cent inside: fine
    assert h.status(h.order("bid", 930, 100)) == "resting"  # $0.093: tenths of a cent in the lower band
    assert h.status(h.order("ask", 9050, 100)) == "resting"  # $0.905 in the upper band
    fraction = h.order("bid", 3900, 150)  # 1.5 contracts in a whole-contract market
    assert h.status(fraction) == "rejected" and "whole contracts only" in (h.updates[-1].reason or "")
    resting = h.order("bid", 3800, 100)
    h.ex.amend(resting, 3850, 100)  # an amend off the grid is refused and the order keeps resting as it was
    assert h.updates[-1].reason is not None and h.updates[-1].reason.startswith("invalid_price")
    assert h.status(resting) == "resting" and h.ex.orders[resting.client_order_id].price == 3800
    assert MarketRules.from_wire(None) is None and MarketRules.from_wire([{"start": "x"}]) is None
