"""Live trading against the simulator: real orders over REST, reports from the private channels, the kill switch."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import Callable

import pytest

from kalshi.rest import AsyncKalshiClient, RateLimiter
from kalshi.sim import Simulator
from kalshi.sim.rest.controls import rest_controls
from kalshi.strategy import Book, Context, Fill, OrderUpdate, Strategy, StrategyError
from kalshi.strategy.killswitch import KillSwitch, KillSwitchLimits
from kalshi.strategy.live import LiveRunner
from kalshi.ws import KalshiWebSocket
from simclient import eventually
from test_sim_rest_schema import add_quiet_market


async def until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    async with asyncio.timeout(limit):
        for _ in itertools.count():
            if condition():
                return
            await asyncio.sleep(0.001)


class Spammer(Strategy):
    """Rests far-away bids on every book update, then (optionally) buys at the ask."""

    def __init__(self, ticker: str, *, per_book: int, take: int = 0) -> None:
        self.markets = (ticker,)
        self.per_book = per_book
        self.take = take
        self.refused: list[str] = []
        self.updates: list[OrderUpdate] = []

    async def on_book(self, ctx: Context, book: Book) -> None:
        try:
            for _ in range(self.per_book):
                ctx.place_order(book.ticker, "bid", 100, 100, post_only=True)
            if self.take and book.best_ask is not None:
                ctx.place_order(book.ticker, "bid", book.best_ask, self.take, time_in_force="immediate_or_cancel")
                self.take = 0
        except StrategyError as exc:
            self.refused.append(str(exc))

    async def on_order_update(self, ctx: Context, update: OrderUpdate) -> None:
        self.updates.append(update)


async def live(sim: Simulator, strategy: Strategy, limits: KillSwitchLimits) -> tuple[LiveRunner, str]:
    rest_controls(sim).limits.enabled = False
    auth, account = sim.create_account_auth()
    rest = AsyncKalshiClient(sim.config, auth=auth, rate_limiter=RateLimiter.unlimited(), rng=random.Random(0))
    async with rest, KalshiWebSocket(auth=auth, config=sim.config).connect() as session:
        runner = LiveRunner(strategy, session, rest, limits=limits)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop=stop))
        await until(lambda: runner.kill_switch.tripped or task.done())
        await until(lambda: (runner.cancelled_all and runner.caught_up()) or task.done())
        await sim.quiesce()
        await until(runner.caught_up)
        stop.set()
        await task
    return runner, account


@pytest.fixture
async def sim() -> Simulator:  # type: ignore[misc]
    async with Simulator(seed=4, markets=2, rate=0, lifecycle=False, ping_interval=0) as s:
        yield s


async def test_the_order_rate_limit_trips_the_kill_switch_and_everything_is_cancelled(sim: Simulator) -> None:
    ticker = sim.tickers[0]
    strategy = Spammer(ticker, per_book=4)  # four per book update: the second update crosses the limit
    runner, account = await live(sim, strategy, KillSwitchLimits(max_orders_per_second=5))
    assert runner.kill_switch.reason == "order rate above 5/s"
    assert strategy.refused and "kill switch" in strategy.refused[0]
    assert sim.engine.orders(account, "resting") == []  # cancelled on the exchange
    placed = sim.engine.orders(account)
    assert 1 <= len(placed) <= 5  # some rested before the trip; the requests past the limit never left
    assert all(o.status == "canceled" for o in placed)
    with pytest.raises(StrategyError, match="blocked"):
        runner.ctx.place_order(ticker, "bid", 100, 100)


async def test_a_position_beyond_the_limit_trips_the_kill_switch(sim: Simulator) -> None:
    ticker = sim.tickers[0]
    _, seller = sim.create_account_auth()
    sim.place_order(seller, ticker, "ask", 9900, 1_000)  # liquidity to take, whatever the seeded book holds
    strategy = Spammer(ticker, per_book=1, take=300)
    runner, account = await live(sim, strategy, KillSwitchLimits(max_position=200))
    assert runner.kill_switch.reason is not None and "position" in runner.kill_switch.reason
    assert sim.engine.position(account, ticker).position_units > 200
    assert runner.ctx.position(ticker) == sim.engine.position(account, ticker).position_units
    assert sim.engine.orders(account, "resting") == []
    assert any(u.status == "canceled" for u in strategy.updates)


def test_kill_switch_limits_by_hand() -> None:
    now = [0.0]
    switch = KillSwitch(KillSwitchLimits(max_orders_per_second=2, max_loss_micros=1_000), clock=lambda: now[0])
    assert switch.on_request() is None and switch.on_request() is None
    now[0] = 1.5  # the window moved on
    assert switch.on_request() is None and switch.on_request() is None
    assert switch.on_request() == "order rate above 2/s"
    from kalshi.strategy.context import Ledger

    other = KillSwitch(KillSwitchLimits(max_loss_micros=10_000))  # one cent
    ledger = Ledger(1_000_000)
    ledger.apply_fill("M", "bid", 5000, 100, 0)  # 1 contract at 0.50
    assert other.check(ledger, {"M": 4950}) is None  # down $0.005
    assert other.check(ledger, {"M": 4800}) is not None  # down $0.02
    with pytest.raises(ValueError):
        KillSwitchLimits(max_position=0)


async def test_a_loss_beyond_the_limit_trips_the_kill_switch(sim: Simulator) -> None:
    ticker = sim.tickers[0]
    _, other = sim.create_account_auth()
    sim.place_order(other, ticker, "ask", 9900, 1_000)
    sim.place_order(other, ticker, "bid", 100, 1_000)
    strategy = Spammer(ticker, per_book=0, take=300)  # buys 3 contracts at $0.99 with the mid near $0.50
    runner, account = await live(sim, strategy, KillSwitchLimits(max_loss_micros=500_000))
    assert runner.kill_switch.reason is not None and runner.kill_switch.reason.startswith("loss")
    assert sim.engine.position(account, ticker).position_units == 300
    assert sim.engine.orders(account, "resting") == []


class CarelessSpammer(Spammer):
    """Like Spammer, but lets the kill switch's refusal escape from its hook, as many strategies will."""

    async def on_book(self, ctx: Context, book: Book) -> None:
        for _ in range(self.per_book):
            ctx.place_order(book.ticker, "bid", 100, 100, post_only=True)


async def test_a_refusal_the_strategy_does_not_catch_ends_the_run_and_still_cancels_everything(sim: Simulator) -> None:
    strategy = CarelessSpammer(sim.tickers[0], per_book=4)
    rest_controls(sim).limits.enabled = False
    auth, account = sim.create_account_auth()
    rest = AsyncKalshiClient(sim.config, auth=auth, rate_limiter=RateLimiter.unlimited(), rng=random.Random(0))
    async with rest, KalshiWebSocket(auth=auth, config=sim.config).connect() as session:
        runner = LiveRunner(strategy, session, rest, limits=KillSwitchLimits(max_orders_per_second=5))
        async with asyncio.timeout(30):
            await runner.run()  # ends by itself, without raising: the refusal escaped the strategy's hook
    assert runner.kill_switch.reason == "order rate above 5/s"
    assert runner.cancelled_all  # the queued cancel-all went out before the run ended
    assert sim.engine.orders(account) and sim.engine.orders(account, "resting") == []


async def test_the_kill_switch_sends_its_cancel_all_again_until_it_is_answered(sim: Simulator) -> None:
    # A DELETE without a body is not retried by the REST client after a 503 (it may have acted): the kill switch
    # itself must insist, or orders stay resting after the trip.
    rest_controls(sim).faults.fail_next(2, status=503, operation_id="CancelAllOrders")
    strategy = Spammer(sim.tickers[0], per_book=4)
    runner, account = await live(sim, strategy, KillSwitchLimits(max_orders_per_second=5))
    assert runner.kill_switch.tripped and runner.cancelled_all and runner.cancel_all_failure is None
    assert rest_controls(sim).calls["CancelAllOrders"] == 3
    assert sim.engine.orders(account) and sim.engine.orders(account, "resting") == []


async def test_cancel_everything_checks_that_nothing_rests_after_its_cancel_all(sim: Simulator) -> None:
    from kalshi.strategy.cancel_everything import cancel_everything

    # A cancel-all answered with success that did nothing (a bare 204): the resting orders are listed and
    # cancelled one by one.
    rest_controls(sim).limits.enabled = False
    auth, account = sim.create_account_auth()
    for price in (100, 200):
        sim.place_order(account, sim.tickers[0], "bid", price, 100)
    rest_controls(sim).faults.fail_next(1, status=204, operation_id="CancelAllOrders")
    async with AsyncKalshiClient(sim.config, auth=auth, rate_limiter=RateLimiter.unlimited()) as rest:
        assert await cancel_everything(rest, within_s=5.0) is None
    calls = rest_controls(sim).calls
    assert calls["CancelAllOrders"] == 1 and calls["CancelOrderV2"] == 2
    assert sim.engine.orders(account, "resting") == []


async def test_cancel_everything_cancels_what_rests_in_a_subaccount_too(sim: Simulator) -> None:
    from kalshi.strategy.cancel_everything import cancel_everything

    # The cancel-all did nothing (a bare 204) and one order rests in subaccount 1: it is listed with the rest
    # (GetOrders without a subaccount covers them all) and must be cancelled in its own subaccount.
    rest_controls(sim).limits.enabled = False
    auth, account = sim.create_account_auth()
    async with AsyncKalshiClient(sim.config, auth=auth, rate_limiter=RateLimiter.unlimited()) as rest:
        number = (await rest.portfolio.create_subaccount()).subaccount_number
        await rest.portfolio.apply_subaccount_transfer(
            client_transfer_id=str(uuid.uuid4()), from_subaccount=0, to_subaccount=number, amount_cents=1_000
        )
        await rest.orders.create_order_v2(
            ticker=sim.tickers[0], side="bid", price="0.0100", count="1.00", client_order_id=str(uuid.uuid4()),
            time_in_force="good_till_canceled", self_trade_prevention_type="taker_at_cross", subaccount=number,
        )  # fmt: skip
        sim.place_order(account, sim.tickers[0], "bid", 200, 100)
        rest_controls(sim).faults.fail_next(1, status=204, operation_id="CancelAllOrders")
        assert await cancel_everything(rest, within_s=5.0) is None
    assert sim.engine.orders(account, "resting") == []
    assert all(o.status != "resting" for o in sim.engine.orders(account))


async def test_cancel_everything_says_why_when_it_cannot_make_sure(sim: Simulator) -> None:
    from kalshi.strategy.cancel_everything import cancel_everything

    rest_controls(sim).limits.enabled = False
    auth, account = sim.create_account_auth()
    sim.place_order(account, sim.tickers[0], "bid", 100, 100)
    rest_controls(sim).faults.fail_next(1_000, status=503, operation_id="CancelAllOrders")
    async with AsyncKalshiClient(sim.config, auth=auth, rate_limiter=RateLimiter.unlimited()) as rest:
        failure = await cancel_everything(rest, within_s=0.2)
    assert failure is not None and "503" in failure
    assert len(sim.engine.orders(account, "resting")) == 1  # told, not hidden: the caller must say so loudly


class RestingBid(Strategy):
    """Rests one bid on the first book and notes every fill and order report it is given."""

    def __init__(self, ticker: str, price: int, count: int) -> None:
        self.markets = (ticker,)
        self.price, self.count = price, count
        self.cid: str | None = None
        self.fills: list[Fill] = []
        self.updates: list[OrderUpdate] = []

    async def on_book(self, ctx: Context, book: Book) -> None:
        if self.cid is None:
            self.cid = ctx.place_order(book.ticker, "bid", self.price, self.count)

    async def on_fill(self, ctx: Context, fill: Fill) -> None:
        self.fills.append(fill)

    async def on_order_update(self, ctx: Context, update: OrderUpdate) -> None:
        self.updates.append(update)


class CancelsOnceResting(RestingBid):
    """Rests one bid, cancels it once it rests, and cancels again when told the cancel failed."""

    async def on_order_update(self, ctx: Context, update: OrderUpdate) -> None:
        await super().on_order_update(ctx, update)
        if update.status == "resting" and (update.reason is None or "cancel failed" in update.reason):
            ctx.cancel_order(update.client_order_id)


async def test_a_cancel_that_failed_is_reported_to_the_strategy(sim: Simulator) -> None:
    # The cancel's 503 is not retried by the REST client (it may have acted): without a report the strategy would
    # wait for ever for a cancel that never happened, its quote resting at a price it no longer wants.
    quiet = add_quiet_market(sim)
    rest_controls(sim).limits.enabled = False
    rest_controls(sim).faults.fail_next(1, status=503, operation_id="CancelOrderV2")
    auth, account = sim.create_account_auth()
    strategy = CancelsOnceResting(quiet, 4000, 100)
    rest = AsyncKalshiClient(sim.config, auth=auth, rate_limiter=RateLimiter.unlimited(), rng=random.Random(0))
    async with rest, KalshiWebSocket(auth=auth, config=sim.config).connect() as session:
        runner = LiveRunner(strategy, session, rest)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop=stop))
        await eventually(lambda: any(u.status == "canceled" for u in strategy.updates) or task.done(), within=10)
        assert not task.done(), task.exception()
        stop.set()
        await task
    failed = [u for u in strategy.updates if u.reason is not None and u.reason.startswith("cancel failed")]
    assert len(failed) == 1 and failed[0].status == "resting" and "503" in failed[0].reason
    assert failed[0].remaining == 100 and failed[0].client_order_id == strategy.cid
    assert rest_controls(sim).calls["CancelOrderV2"] == 2
    assert sim.engine.orders(account, "resting") == [] and runner.ctx.open_orders() == []


@pytest.mark.parametrize("rest_down", [False, True], ids=["rest-up", "rest-down-at-first"])
async def test_fills_and_order_changes_lost_with_the_connection_are_recovered_once(
    sim: Simulator, rest_down: bool
) -> None:
    quiet = add_quiet_market(sim)
    rest_controls(sim).limits.enabled = False
    auth, account = sim.create_account_auth()
    _, seller = sim.create_account_auth()
    strategy = RestingBid(quiet, 5000, 1000)
    rest = AsyncKalshiClient(sim.config, auth=auth, rate_limiter=RateLimiter.unlimited(), rng=random.Random(0))
    config = sim.config.with_options(retry_base_delay=0.02, retry_max_delay=0.1)
    async with rest, KalshiWebSocket(auth=auth, config=config).connect() as session:
        runner = LiveRunner(strategy, session, rest)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop=stop))
        await eventually(lambda: bool(sim.engine.orders(account, "resting")) or task.done())
        sim.place_order(seller, quiet, "ask", 5000, 100)
        await eventually(lambda: runner.ctx.position(quiet) == 100 or task.done())
        reconnects = session.reconnects
        # The socket dies one frame into the next fill: the rest of it and the next two fills are never sent, and
        # the private channels carry no seq to reveal it.
        if rest_down:  # the first reconciliation fails (every retry of its first call): it is tried again
            rest_controls(sim).faults.fail_next(4, status=503, operation_id="GetFills")
        sim.faults.drop_all(after_messages=1)
        sim.place_order(seller, quiet, "ask", 5000, 200)
        sim.place_order(seller, quiet, "ask", 5000, 300)
        sim.place_order(seller, quiet, "ask", 5000, 400)  # the order is now executed
        await eventually(lambda: session.reconnects > reconnects or task.done(), within=10)
        await eventually(lambda: runner.ctx.position(quiet) == 1000 or task.done(), within=10)
        assert not task.done(), task.exception()
        stop.set()
        await task
    assert sim.engine.position(account, quiet).position_units == 1000
    assert sorted(f.count for f in strategy.fills) == [100, 200, 300, 400]  # each fill once, WS or REST
    assert len({f.trade_id for f in strategy.fills}) == 4
    assert runner.missed.recovered_fills >= 2
    assert rest_controls(sim).faults.pending == 0
    assert strategy.cid is not None
    order = runner.ctx.order(strategy.cid)
    assert order is not None and order.status == "executed" and order.remaining == 0 and order.filled == 1000
    assert runner.ctx.open_orders() == []
    fees = sum(f.fee for f in strategy.fills)
    assert runner.ctx.ledger.fees == fees


async def run_resting_bid(sim: Simulator, quiet: str, auth: object, strategy: RestingBid) -> tuple[LiveRunner, str]:
    """Run until the strategy's bid is settled (resting or rejected), then stop."""
    config = sim.config.with_options(retry_base_delay=0.01, retry_max_delay=0.02, max_retries=2)
    rest = AsyncKalshiClient(config, auth=auth, rate_limiter=RateLimiter.unlimited(), rng=random.Random(0))  # type: ignore[arg-type]
    async with rest, KalshiWebSocket(auth=auth, config=config).connect() as session:  # type: ignore[arg-type]
        runner = LiveRunner(strategy, session, rest)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop=stop))

        def settled() -> bool:
            order = runner.ctx.order(strategy.cid) if strategy.cid else None
            return task.done() or (order is not None and order.status != "pending" and runner.caught_up())

        await eventually(settled, within=10)
        assert not task.done(), task.exception()
        stop.set()
        await task
    assert strategy.cid is not None
    return runner, strategy.cid


async def test_an_order_whose_reply_was_lost_is_found_on_the_exchange_not_reported_rejected(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    rest_controls(sim).limits.enabled = False
    # The exchange places the order, the reply is lost (503); the client's retry then finds the id taken (409).
    rest_controls(sim).faults.fail_next(1, status=503, operation_id="CreateOrderV2", after_serving=True)
    auth, account = sim.create_account_auth()
    strategy = RestingBid(quiet, 5000, 1000)
    runner, cid = await run_resting_bid(sim, quiet, auth, strategy)
    [resting] = sim.engine.orders(account, "resting")
    order = runner.ctx.order(cid)
    assert order is not None and order.status == "resting" and order.order_id == resting.order_id
    assert [u.status for u in strategy.updates if u.status == "rejected"] == []
    assert runner.ctx.open_orders() == [order]


async def test_an_order_the_exchange_never_got_is_reported_rejected_with_the_failure(sim: Simulator) -> None:
    quiet = add_quiet_market(sim)
    rest_controls(sim).limits.enabled = False
    rest_controls(sim).faults.fail_next(3, status=503, operation_id="CreateOrderV2")  # every attempt
    auth, account = sim.create_account_auth()
    strategy = RestingBid(quiet, 5000, 1000)
    runner, cid = await run_resting_bid(sim, quiet, auth, strategy)
    assert sim.engine.orders(account) == []
    order = runner.ctx.order(cid)
    assert order is not None and order.status == "rejected" and runner.ctx.open_orders() == []
    [rejected] = [u for u in strategy.updates if u.status == "rejected"]
    assert rejected.reason is not None and "not on the exchange" in rejected.reason and "503" in rejected.reason
