"""Paper trading: live data from the simulator, fills from the backtest's model, and no order ever sent.

The guarantee is structural (the paper runner is built from a streaming session only; its modules import no REST
client; nothing reachable from it is one) and it is checked behaviourally: an authenticated session whose
account could trade runs the market maker, the paper account fills, and the exchange never sees an order.
"""

from __future__ import annotations

import ast
import asyncio
import itertools
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import kalshi.strategy.paper as paper_module
from kalshi.rest import AsyncKalshiClient, KalshiClient
from kalshi.sim import Simulator
from kalshi.strategy import Book, Context, Fill, MarketMaker, OrderUpdate, Strategy, StrategyError
from kalshi.strategy.killswitch import KillSwitchLimits
from kalshi.strategy.paper import PaperRunner
from kalshi.ws import KalshiWebSocket

PAPER_MODULES = ["strategy/paper.py", "strategy/stream.py", "strategy/context.py", "backtest/matching.py"]


async def until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    async with asyncio.timeout(limit):
        for _ in itertools.count():
            if condition():
                return
            await asyncio.sleep(0.001)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_paper_modules_import_no_rest_client() -> None:
    root = Path(paper_module.__file__).parents[1]
    for name in PAPER_MODULES:
        imports = imported_modules(root / name)
        bad = {m for m in imports if m.startswith(("kalshi.rest", "kalshi.portfolio", "httpx", "kalshi.strategy.live"))}
        assert not bad, (name, bad)


def reachable(obj: object, depth: int = 4) -> list[object]:
    """Objects reachable through attributes, dicts and lists (bounded depth)."""
    seen: dict[int, object] = {}
    frontier = [obj]
    for _ in range(depth):
        nxt = []
        for item in frontier:
            if id(item) in seen or isinstance(item, str | bytes | int | float | type):
                continue
            seen[id(item)] = item
            if isinstance(item, dict):
                nxt += list(item.values())
            elif isinstance(item, list | tuple | set | frozenset):
                nxt += list(item)
            else:
                nxt += list(getattr(item, "__dict__", {}).values())
                nxt += [getattr(item, s) for s in getattr(type(item), "__slots__", ()) if hasattr(item, s)]
        frontier = nxt
    return list(seen.values())


async def test_paper_fills_on_live_data_and_no_order_reaches_the_exchange(tmp_path: Path) -> None:
    async with Simulator(
        seed=11, markets=3, rate=0, lifecycle=False, ping_interval=0, command_rate=1e6, command_burst=1_000_000
    ) as sim:
        auth, account = sim.create_account_auth()  # an account that could trade: paper must not
        tickers = tuple(sim.tickers[:2])
        async with KalshiWebSocket(auth=auth, config=sim.config).connect() as session:
            runner = PaperRunner(MarketMaker(size=300, improve=100, markets=tickers), session)
            stop = asyncio.Event()
            task = asyncio.create_task(runner.run(stop=stop))

            async def checkpoint() -> None:
                await sim.quiesce()
                await session.list_subscriptions()
                await until(lambda: runner.caught_up() or task.done())
                assert not task.done(), task.exception()

            await until(lambda: all(t in runner.books for t in tickers))
            for _ in range(300):
                sim.step(1)
                await checkpoint()
            assert not any(
                isinstance(o, AsyncKalshiClient | KalshiClient | httpx.AsyncClient | httpx.Client)
                for o in reachable(runner)
            )
            stop.set()
            result = await task
        assert result.summary.fills > 0 and result.summary.orders > 0
        assert sim.engine.orders(account) == []  # the exchange never saw one of them
        assert sim.engine.fills(account) == []
        # Paper fills are at prices the live book offered: maker fills at the quote's own limit.
        orders = {o["client_order_id"]: o for o in result.orders.to_pylist()}
        for fill in result.fills.to_pylist():
            assert fill["price_ticks"] == orders[fill["client_order_id"]]["price_ticks"] or fill["is_taker"]
        result.write(tmp_path / "paper")
        assert (tmp_path / "paper" / "fills.parquet").exists()


class FirstBookBuyer(MarketMaker):
    """Sends one marketable bid on the first two-sided book and notes whether the exchange saw it at once."""

    def __init__(self, runner_ref: list[PaperRunner], markets: tuple[str, ...]) -> None:
        super().__init__(markets=markets)
        self.runner_ref = runner_ref
        self.sent: tuple[str, int, bool] | None = None

    async def on_book(self, ctx: Context, book: Book) -> None:
        if self.sent is None and book.best_ask is not None:
            cid = ctx.place_order(book.ticker, "bid", book.best_ask, 100, time_in_force="immediate_or_cancel")
            self.sent = (cid, ctx.now_ns, cid in self.runner_ref[0].exchange.orders)

    async def on_fill(self, ctx: Context, fill: Fill) -> None:
        return None

    async def on_order_update(self, ctx: Context, update: OrderUpdate) -> None:
        return None


async def paper_order(latency_ms: float) -> tuple[tuple[str, int, bool], PaperRunner]:
    async with Simulator(seed=5, markets=2, rate=0, lifecycle=False, ping_interval=0) as sim:
        tickers = tuple(sim.tickers[:1])
        auth, _ = sim.create_account_auth()
        async with KalshiWebSocket(auth=auth, config=sim.config).connect() as session:
            ref: list[PaperRunner] = []
            strategy = FirstBookBuyer(ref, tickers)
            runner = PaperRunner(strategy, session, order_latency_ms=latency_ms)
            ref.append(runner)
            stop = asyncio.Event()
            task = asyncio.create_task(runner.run(stop=stop))
            await until(lambda: tickers[0] in runner.books or task.done())
            for _ in range(500):  # activity until the book has an ask
                if strategy.sent is not None or task.done():
                    break
                sim.step(1)
                await sim.quiesce()
                await session.list_subscriptions()
                await until(lambda: runner.caught_up() or strategy.sent is not None or task.done())
            assert not task.done(), task.exception()
            assert strategy.sent is not None
            cid = strategy.sent[0]
            await until(lambda: (o := runner.ctx.order(cid)) is not None and not o.is_open)
            stop.set()
            await task
    return strategy.sent, runner


async def test_paper_orders_reach_the_exchange_after_the_order_latency() -> None:
    (cid, sent_ns, seen_at_once), runner = await paper_order(150.0)
    assert not seen_at_once  # in flight: the simulated exchange has not seen it yet
    order = runner.exchange.orders[cid]
    assert order.created_ns >= sent_ns + 150_000_000  # it arrived (and matched) a latency later
    assert runner.in_flight() == 0


async def test_paper_orders_arrive_at_once_without_latency() -> None:
    (cid, sent_ns, seen_at_once), runner = await paper_order(0.0)
    assert seen_at_once
    assert runner.exchange.orders[cid].created_ns - sent_ns < 150_000_000


def test_paper_rejects_a_negative_latency() -> None:
    with pytest.raises(ValueError, match="order_latency_ms"):
        PaperRunner(MarketMaker(markets=("X",)), object(), order_latency_ms=-1)  # type: ignore[arg-type]


class Resender(MarketMaker):
    """A post-only bid at the best ask (refused: it would cross), sent again at once after every refusal."""

    def __init__(self, markets: tuple[str, ...]) -> None:
        super().__init__(markets=markets)
        self.sent = 0

    async def on_book(self, ctx: Context, book: Book) -> None:
        if not self.sent and book.best_ask is not None:
            self.sent += 1
            ctx.place_order(book.ticker, "bid", book.best_ask, 100, post_only=True)

    async def on_order_update(self, ctx: Context, update: OrderUpdate) -> None:
        if update.status == "rejected":
            self.sent += 1
            ctx.place_order(update.ticker, "bid", update.price, 100, post_only=True)


class Stacker(MarketMaker):
    """Rests one more far-away bid on every book update, and notes the refusals."""

    refused: list[str]

    async def on_book(self, ctx: Context, book: Book) -> None:
        try:
            ctx.place_order(book.ticker, "bid", 100, 100)
        except StrategyError as exc:
            self.refused = [*getattr(self, "refused", []), str(exc)]


async def paper_until_done(
    strategy: MarketMaker, sim: Simulator, runner_options: dict[str, object], steps: int = 300
) -> tuple[PaperRunner, asyncio.Task[object]]:
    auth, _ = sim.create_account_auth()
    async with KalshiWebSocket(auth=auth, config=sim.config).connect() as session:
        runner = PaperRunner(strategy, session, **runner_options)  # type: ignore[arg-type]
        stop = asyncio.Event()
        task: asyncio.Task[object] = asyncio.create_task(runner.run(stop=stop))
        await until(lambda: all(t in runner.books for t in strategy.markets) or task.done())
        for _ in range(steps):
            if task.done() or runner.ctx.blocked is not None:
                break
            sim.step(1)
            await sim.quiesce()
            await session.list_subscriptions()
            await until(lambda: runner.caught_up() or task.done())
        if not task.done():
            stop.set()
        await asyncio.wait({task})
    return runner, task


async def test_paper_stops_a_strategy_that_resends_refused_orders_at_once() -> None:
    async with Simulator(seed=5, markets=2, rate=0, lifecycle=False, ping_interval=0) as sim:
        strategy = Resender(tuple(sim.tickers[:1]))
        _, task = await paper_until_done(strategy, sim, {})
    with pytest.raises(StrategyError, match="order requests at one event"):
        task.result()
    assert strategy.sent == 10_001


async def test_the_paper_kill_switch_blocks_orders_and_cancels_every_open_one() -> None:
    async with Simulator(seed=5, markets=2, rate=0, lifecycle=False, ping_interval=0) as sim:
        strategy = Stacker(markets=tuple(sim.tickers[:1]))
        runner, task = await paper_until_done(strategy, sim, {"limits": KillSwitchLimits(max_orders_per_second=3)})
        result = task.result()
    assert runner.kill_switch.reason == "order rate above 3/s"
    assert runner.ctx.blocked == "order rate above 3/s"
    assert strategy.refused and "kill switch" in strategy.refused[0]
    assert runner.ctx.open_orders() == [] and runner.exchange.open_orders() == []
    orders = result.orders.to_pylist()  # type: ignore[attr-defined]
    assert 1 <= len(orders) <= 3  # the request past the limit never became an order
    assert all(o["status"] == "canceled" for o in orders)
    with pytest.raises(StrategyError, match="blocked"):
        runner.ctx.place_order(sim.tickers[0], "bid", 100, 100)


class GridProbe(Strategy):
    """On the first book, bids half a cent and a whole cent under the best bid; keeps the order reports."""

    def __init__(self, ticker: str) -> None:
        self.markets = (ticker,)
        self.updates: dict[str, OrderUpdate] = {}
        self.sent: dict[str, int] = {}

    async def on_book(self, ctx: Context, book: Book) -> None:
        if not self.sent and book.best_bid is not None and book.best_bid > 200:
            for price in (book.best_bid - 50, book.best_bid - 100):
                self.sent[ctx.place_order(book.ticker, "bid", price, 100)] = price

    async def on_order_update(self, ctx: Context, update: OrderUpdate) -> None:
        self.updates[update.client_order_id] = update


async def test_paper_orders_off_the_market_s_price_grid_are_refused() -> None:
    from kalshi.backtest.market_rules import rules_by_market
    from kalshi.record.universe import market_price_ranges
    from kalshi.sim.rest.controls import rest_controls

    async with Simulator(seed=11, markets=3, rate=0, lifecycle=False, ping_interval=0) as sim:
        rest_controls(sim).limits.enabled = False
        ticker = next(t for t in sim.tickers if sim.engine.market(t).spec.price_level_structure == "linear_cent")
        rules = rules_by_market(await market_price_ranges(sim.config, None, [ticker]))  # what kalshi paper reads
        assert rules[ticker].bands == ((0, 10000, 100),)
        auth, _ = sim.create_account_auth()
        _, crowd = sim.create_account_auth()
        sim.place_order(crowd, ticker, "bid", 4000, 500)  # a two-sided book on whole cents
        sim.place_order(crowd, ticker, "ask", 6000, 500)
        strategy = GridProbe(ticker)
        async with KalshiWebSocket(auth=auth, config=sim.config).connect() as session:
            runner = PaperRunner(strategy, session, market_rules=rules)
            stop = asyncio.Event()
            task = asyncio.create_task(runner.run(stop=stop))
            await until(lambda: len(strategy.updates) == 2 or task.done())
            stop.set()
            await task
    status = {strategy.sent[cid]: (u.status, u.reason) for cid, u in strategy.updates.items()}
    on, off = sorted(status)  # a whole cent under the best bid, and half a cent under it
    assert status[on] == ("resting", None)
    assert status[off][0] == "rejected" and (status[off][1] or "").startswith(f"invalid_price: {off} ticks")
