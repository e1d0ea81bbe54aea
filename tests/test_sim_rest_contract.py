"""Contract: every REST operation the simulator implements answers what openapi.yaml says, through our client.

Each response passes :class:`ValidatingTransport` (jsonschema against the spec) and then the client's own
typed decoding; the test fails if an implemented operation was never exercised with a 2xx answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from kalshi.rest import OPERATIONS, AsyncKalshiClient
from kalshi.rest.models import BatchCancelOrdersV2RequestOrdersItem, CreateOrderV2Request
from kalshi.sim import Simulator, rest_controls
from kalshi.sim.rest import implemented_operations
from sim_ops_tour import tour_operations
from test_sim_rest_schema import ValidatingTransport, add_quiet_market, rest_client

GTC = "good_till_canceled"
STP = "taker_at_cross"


@pytest.fixture
async def sim(kalshi_sim_factory: Callable[..., Simulator]) -> AsyncIterator[Simulator]:
    async with kalshi_sim_factory(seed=11, markets=9) as s:
        rest_controls(s).limits.enabled = False
        s.step(400)
        yield s


def _order(ticker: str, side: str, price: str, count: str, cid: str) -> CreateOrderV2Request:
    return CreateOrderV2Request(
        ticker=ticker,
        side=side,
        price=price,
        count=count,
        client_order_id=cid,
        time_in_force=GTC,
        self_trade_prevention_type=STP,
    )


async def _public_reads(p: AsyncKalshiClient, sim: Simulator, quiet: str) -> None:
    assert (await p.exchange.status()).trading_active
    assert len((await p.exchange.schedule()).schedule.standard_hours) == 1
    assert (await p.exchange.user_data_timestamp()).as_of_time
    assert (await p.exchange.get_series_fee_changes()).series_fee_change_arr == []
    assert await p.request("GET", "/exchange/announcements") == {"announcements": []}
    series = (await p.series.get_series_list(include_volume=True)).series
    assert {s.ticker for s in series} >= {e.series_ticker for e in sim.engine.events()}
    assert (await p.series.get_series("KXQUIET")).series.ticker == "KXQUIET"
    events = (await p.events.get_events(with_nested_markets=True, with_milestones=True, limit=2)).events
    assert events and events[0].markets
    quiet_event = sim.engine.market(quiet).spec.event_ticker
    event = await p.events.get_event(quiet_event, with_nested_markets=True)
    assert [m.ticker for m in event.markets] == [quiet]
    assert (await p.events.get_event_metadata(quiet_event)).market_details[0].market_ticker == quiet
    multivariate = (await p.events.get_multivariate_events(with_nested_markets=True)).events
    assert multivariate and all(m.mve_collection_ticker for e in multivariate for m in e.markets or [])
    assert (await p.events.get_event_fee_changes()).event_fee_changes == []
    markets = await p.markets.get_markets(status="open", limit=5, mve_filter="exclude")
    assert markets.markets and all(m.status == "active" for m in markets.markets)
    assert (await p.markets.get_market(quiet)).market.yes_ask_dollars == "1.0000"
    busy = sim.tickers[0]
    book = await p.markets.get_market_orderbook(busy, depth=3)
    assert len(book.orderbook_fp.yes_dollars) <= 3
    books = await p.markets.get_market_orderbooks(tickers=[busy, quiet])
    assert [b.ticker for b in books.orderbooks] == [busy, quiet]
    trades = await p.markets.get_trades(limit=5)
    assert trades.trades and trades.cursor
    costs = await p.account.get_account_endpoint_costs()
    assert {(c.method, c.cost) for c in costs.endpoint_costs} >= {("DELETE", 2)}


async def _orders_and_portfolio(a: AsyncKalshiClient, b: AsyncKalshiClient, quiet: str) -> None:
    limits = await a.account.get_account_api_limits()
    assert limits.usage_tier == "basic" and limits.write.bucket_capacity == 100
    assert (await a.portfolio.get_balance()).balance_dollars == "100000.0000"
    created = await a.orders.create_order_v2(
        ticker=quiet, side="bid", count="10.00", price="0.4000", client_order_id="c-1", time_in_force=GTC,
        self_trade_prevention_type=STP,
    )  # fmt: skip
    order_id = created.order_id
    assert (await a.orders.get_order(order_id)).order.remaining_count_fp == "10.00"
    assert (await a.orders.get_orders(ticker=quiet, status="resting")).orders[0].order_id == order_id
    queue = await a.orders.get_order_queue_positions(market_tickers=quiet)
    assert queue.queue_positions[0].queue_position_fp == "0.00"
    assert (await a.orders.get_order_queue_position(order_id)).queue_position_fp == "0.00"
    amended = await a.orders.amend_order_v2(order_id, ticker=quiet, side="bid", price="0.4100", count="12.00")
    assert amended.remaining_count == "12.00"
    decreased = await a.orders.decrease_order_v2(order_id, reduce_by="2.00")
    assert decreased.remaining_count == "10.00"
    sold = await b.orders.create_order_v2(
        ticker=quiet, side="ask", count="4.00", price="0.4100", client_order_id="s-1", time_in_force=GTC,
        self_trade_prevention_type=STP,
    )  # fmt: skip
    assert sold.fill_count == "4.00" and sold.average_fill_price == "0.4100"
    positions = await a.portfolio.get_positions(count_filter="position")
    assert [(p.ticker, p.position_fp) for p in positions.market_positions] == [(quiet, "4.00")]
    assert positions.event_positions[0].total_cost_shares_fp == "4.00"
    fills = await a.portfolio.get_fills(ticker=quiet)
    assert [f.count_fp for f in fills.fills] == ["4.00"]
    resting_value = await a.portfolio.get_portfolio_resting_order_total_value()
    assert resting_value.total_resting_order_value == 246  # 6 contracts at $0.41
    batch = await a.orders.batch_create_orders_v2(
        orders=[_order(quiet, "bid", "0.3000", "1.00", "b-1"), _order(quiet, "bid", "0.3050", "1.00", "b-2")]
    )
    assert batch.orders[0].order_id and batch.orders[1].error is not None
    assert batch.orders[1].error.message and "price" in batch.orders[1].error.message
    assert batch.orders[0].order_id is not None
    cancelled = await a.orders.batch_cancel_orders_v2(
        orders=[BatchCancelOrdersV2RequestOrdersItem(order_id=batch.orders[0].order_id)]
    )
    assert cancelled.orders[0].reduced_by == "1.00"
    assert (await a.orders.cancel_order_v2(order_id)).reduced_by == "6.00"
    await a.orders.create_order_v2(
        ticker=quiet, side="bid", count="1.00", price="0.0100", client_order_id="c-2", time_in_force=GTC,
        self_trade_prevention_type=STP,
    )  # fmt: skip
    await a.orders.cancel_all_orders()
    assert (await a.orders.get_orders(status="resting")).orders == []
    assert (await a.portfolio.get_deposits()).deposits == []
    assert (await a.portfolio.get_withdrawals()).withdrawals == []


async def _order_groups(a: AsyncKalshiClient, quiet: str) -> None:
    group_id = (await a.order_groups.create_order_group(contracts_limit_fp="5.00")).order_group_id
    await a.orders.create_order_v2(
        ticker=quiet, side="bid", count="1.00", price="0.0200", client_order_id="g-1", time_in_force=GTC,
        self_trade_prevention_type=STP, order_group_id=group_id,
    )  # fmt: skip
    listed = (await a.order_groups.get_order_groups()).order_groups or []
    assert [g.id for g in listed] == [group_id]
    assert len((await a.order_groups.get_order_group(group_id)).orders) == 1
    await a.order_groups.update_order_group_limit(group_id, contracts_limit_fp="7.00")
    assert (await a.order_groups.get_order_group(group_id)).contracts_limit_fp == "7.00"
    await a.order_groups.trigger_order_group(group_id)
    await a.order_groups.reset_order_group(group_id)
    await a.order_groups.delete_order_group(group_id)
    assert (await a.order_groups.get_order_groups()).order_groups == []


async def _rfqs(a: AsyncKalshiClient, b: AsyncKalshiClient, quiet: str) -> None:
    assert (await a.communications.get_communications_id()).communications_id
    rfq_id = (await a.communications.create_rfq(market_ticker=quiet, contracts_fp="5.00", rest_remainder=False)).id
    assert [r.id for r in (await b.communications.get_rfqs(status="open")).rfqs] == [rfq_id]
    assert (await a.communications.get_rfq(rfq_id)).rfq.contracts_fp == "5.00"
    quote_id = (
        await b.communications.create_quote(rfq_id=rfq_id, yes_bid="0.3500", no_bid="0.6000", rest_remainder=False)
    ).id
    assert [q.id for q in (await a.communications.get_quotes(rfq_id=rfq_id)).quotes] == [quote_id]
    assert (await a.communications.get_rfq_quote(rfq_id, quote_id)).quote.status == "open"
    await a.communications.accept_rfq_quote(rfq_id, quote_id, accepted_side="yes")
    await b.communications.confirm_rfq_quote(rfq_id, quote_id)
    assert (await b.communications.get_rfq_quote(rfq_id, quote_id)).quote.status == "executed"
    # The deprecated paths behave the same (and warn).
    rfq2 = (await a.communications.create_rfq(market_ticker=quiet, target_cost_dollars="20.00", rest_remainder=True)).id
    q2 = (await b.communications.create_quote(rfq_id=rfq2, yes_bid="0.3000", no_bid="0.6000", rest_remainder=False)).id
    with pytest.warns(DeprecationWarning):
        assert (await a.communications.get_quote(q2)).quote.yes_contracts_fp == "50.00"
    with pytest.warns(DeprecationWarning):
        await a.communications.accept_quote(q2, accepted_side="no")
    with pytest.warns(DeprecationWarning):
        await b.communications.confirm_quote(q2)
    rfq3 = (await a.communications.create_rfq(market_ticker=quiet, contracts_fp="1.00", rest_remainder=False)).id
    q3 = (await b.communications.create_quote(rfq_id=rfq3, yes_bid="0.3000", no_bid="0.6000", rest_remainder=False)).id
    await b.communications.delete_rfq_quote(rfq3, q3)
    q4 = (await b.communications.create_quote(rfq_id=rfq3, yes_bid="0.3100", no_bid="0.6000", rest_remainder=False)).id
    with pytest.warns(DeprecationWarning):
        await b.communications.delete_quote(q4)
    await a.communications.delete_rfq(rfq3)
    assert (await a.communications.get_rfq(rfq3)).rfq.status == "closed"


async def test_every_implemented_operation_matches_the_spec(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    alice_auth, alice = sim.create_account_auth()
    bob_auth, bob = sim.create_account_auth()
    transports = [ValidatingTransport() for _ in range(3)]
    async with (
        rest_client(sim, transport=transports[0]) as p,
        rest_client(sim, alice_auth, transport=transports[1]) as a,
        rest_client(sim, bob_auth, transport=transports[2]) as b,
    ):
        await _public_reads(p, sim, quiet)
        await _orders_and_portfolio(a, b, quiet)
        await _order_groups(a, quiet)
        await _rfqs(a, b, quiet)
        sim.do(lambda e: e.close_market(quiet))
        sim.do(lambda e: e.determine_market(quiet, "yes"))
        sim.do(lambda e: e.settle_market(quiet))
        settlements = (await a.portfolio.get_settlements()).settlements
        assert [(s.ticker, s.market_result) for s in settlements] == [(quiet, "yes")]
        assert (await p.markets.get_markets(status="settled")).markets[-1].status == "finalized"
        await tour_operations(p, a, b, sim, alice, bob)
    covered = set().union(*(t.operations for t in transports))
    expected = implemented_operations() - {"GetExchangeAnnouncements"}
    assert expected <= set(OPERATIONS)
    assert expected - covered == set()
    assert alice in sim.engine.accounts()
