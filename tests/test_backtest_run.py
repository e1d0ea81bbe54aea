"""Backtests end to end on a small synthetic recording: determinism, latency, settlement, outputs, CLI, errors."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from kalshi.backtest import BacktestOptions, run
from kalshi.backtest.synthetic import write_synthetic_recording
from kalshi.cli.main import main
from kalshi.record import Recorder
from kalshi.strategy import Book, Context, MarketLifecycle, MarketMaker, OrderUpdate, Strategy, StrategyError, Trade
from kalshi.strategy.loader import load_strategy


@pytest.fixture(scope="module")
def rec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_recording(tmp_path_factory.mktemp("rec"), messages=6_000, markets=3, seed=5)


def fills_of(result: object) -> list[dict[str, object]]:
    return result.fills.to_pylist()  # type: ignore[attr-defined,no-any-return]


def test_a_backtest_is_deterministic_and_settles_at_the_recorded_result(rec: Path) -> None:
    first = run(MarketMaker(), rec)
    second = run(MarketMaker(), rec)
    assert fills_of(first) == fills_of(second) and first.summary == second.summary
    s = first.summary
    assert s.fills > 0 and s.events > 6_000
    assert s.final_positions == {}  # every market settled: PnL is cash
    assert s.pnl_micros == s.end_cash_micros - s.start_cash_micros
    assert sum(f["fee_micros"] for f in fills_of(first)) == s.fees_micros  # type: ignore[misc]


def test_latency_changes_what_fills(rec: Path) -> None:
    fast = run(MarketMaker(), rec)
    slow = run(MarketMaker(), rec, order_latency_ms=50, data_latency_ms=20)
    assert fills_of(fast) != fills_of(slow)
    # With latency, an order is placed no earlier than the data it reacted to plus both delays.
    assert slow.summary.events == fast.summary.events


class ListeningMaker(MarketMaker):
    """The example strategy plus trade and ticker hooks that only count: they must not change what it does."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    async def on_trade(self, ctx: Context, trade: Trade) -> None:
        self.seen += 1

    async def on_ticker(self, ctx: Context, ticker: object) -> None:  # type: ignore[override]
        self.seen += 1


@pytest.mark.parametrize("latency", [{}, {"order_latency_ms": 3, "data_latency_ms": 2}])
def test_hooks_a_strategy_does_not_read_do_not_change_its_results(rec: Path, latency: dict[str, float]) -> None:
    # The runner skips decoding tickers and building trades nobody reads: the timeline must stay the same.
    listening = ListeningMaker()
    heard = run(listening, rec, **latency)
    plain = run(MarketMaker(), rec, **latency)
    assert listening.seen > 0
    assert fills_of(heard) == fills_of(plain)
    assert heard.orders.to_pylist() == plain.orders.to_pylist() and heard.summary == plain.summary


def test_results_are_parquet_duckdb_reads_and_an_html_report(rec: Path, tmp_path: Path) -> None:
    result = run(MarketMaker(), rec, sample_interval_s=0.05)
    out = result.write(tmp_path / "out")
    con = duckdb.connect()
    [(count, fees)] = con.execute(f"SELECT count(*), sum(fee_micros) FROM '{out}/fills.parquet'").fetchall()
    assert count == result.summary.fills and (fees or 0) == result.summary.fees_micros
    [(orders,)] = con.execute(f"SELECT count(*) FROM '{out}/orders.parquet'").fetchall()
    assert orders == result.summary.orders
    [(markets, rows)] = con.execute(f"SELECT count(DISTINCT ticker), count(*) FROM '{out}/timeline.parquet'").fetchall()
    assert markets == 3 and rows > 10
    assert json.loads((out / "summary.json").read_text())["fills"] == result.summary.fills
    page = result.report(tmp_path / "report.html").read_text()
    assert "plotly" in page.lower() and "Equity" in page and "KXSYN-00" in page
    labels = dict(result.summary_lines())
    assert labels["fills (maker / taker)"].startswith(f"{result.summary.fills:,}")


class Recorder_(Strategy):
    """Keeps what it saw, to check ordering and the clock."""

    timer_interval = 0.01

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []
        self.settled: list[MarketLifecycle] = []

    async def on_start(self, ctx: Context) -> None:
        self.seen.append(("start", ctx.now_ns))

    async def on_book(self, ctx: Context, book: Book) -> None:
        self.seen.append(("book", ctx.now_ns))

    async def on_trade(self, ctx: Context, trade: Trade) -> None:
        self.seen.append(("trade", trade.ts_ns))

    async def on_timer(self, ctx: Context, now_ns: int) -> None:
        self.seen.append(("timer", now_ns))

    async def on_lifecycle(self, ctx: Context, event: MarketLifecycle) -> None:
        self.settled.append(event)

    async def on_stop(self, ctx: Context) -> None:
        self.seen.append(("stop", ctx.now_ns))


def test_hooks_run_in_time_order_with_timers(rec: Path) -> None:
    strategy = Recorder_()
    run(strategy, rec)
    times = [t for _, t in strategy.seen]
    assert times == sorted(times)
    kinds = {k for k, _ in strategy.seen}
    assert kinds == {"start", "book", "trade", "timer", "stop"}
    assert {e.event_type for e in strategy.settled} == {"determined", "settled"}


def test_a_failing_hook_stops_the_backtest_with_the_replay_time(rec: Path) -> None:
    class Broken(Strategy):
        async def on_trade(self, ctx: Context, trade: Trade) -> None:
            raise RuntimeError("boom")

    with pytest.raises(StrategyError, match=r"backtest stopped at t=\d+ ns .*boom"):
        run(Broken(), rec)


def test_context_validates_orders(rec: Path) -> None:
    errors: list[str] = []

    class Bad(Strategy):
        async def on_book(self, ctx: Context, book: Book) -> None:
            if errors:
                return
            for args in [("bid", 0, 100), ("bid", 10_000, 100), ("bid", 5000, 0), ("up", 5000, 100)]:
                try:
                    ctx.place_order(book.ticker, *args)  # type: ignore[arg-type]
                except StrategyError as exc:
                    errors.append(str(exc))
            cid = ctx.place_order(book.ticker, "bid", 100, 100, client_order_id="mine")
            try:
                ctx.place_order(book.ticker, "bid", 100, 100, client_order_id=cid)
            except StrategyError as exc:
                errors.append(str(exc))
            with pytest.raises(StrategyError):
                ctx.cancel_order("nope")

    run(Bad(), rec)
    assert len(errors) == 5 and "already used" in errors[-1]


def test_options_and_loader_errors() -> None:
    with pytest.raises(ValueError):
        BacktestOptions(order_latency_ms=-1)
    with pytest.raises(StrategyError, match=r"pkg\.module:Class"):
        load_strategy("nocolon")
    with pytest.raises(StrategyError, match="cannot import"):
        load_strategy("no_such_module_xyz:Thing")
    with pytest.raises(StrategyError, match=r"not a kalshi\.strategy\.Strategy"):
        load_strategy("kalshi.strategy.book:Book")
    with pytest.raises(StrategyError, match=r"has no 'MarketMakr'; its strategies: MarketMaker$"):
        load_strategy("kalshi.strategy.market_maker:MarketMakr")  # a typo: say what is there
    with pytest.raises(StrategyError, match="cannot create"):
        load_strategy("kalshi.strategy.market_maker:MarketMaker", '{"nope": 1}')
    assert load_strategy("kalshi.strategy.market_maker:MarketMaker", '{"size": 200}').size == 200  # type: ignore[attr-defined]


def test_cli_backtest_prints_the_summary_and_writes_results(
    rec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bt"
    code = main(
        ["backtest", str(rec), "-s", "kalshi.strategy.market_maker:MarketMaker", "-p", '{"size": 200}', "--out", str(out),
         "--report", str(tmp_path / "r.html"), "--order-latency-ms", "2"]
    )  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "PnL" in text and "max drawdown" in text and "inventory peaks" in text
    # The synthetic recording carries no price grids: the user is told orders there were not checked.
    assert "no price grid known for KXSYN-00" in " ".join(captured.err.split())
    assert (out / "fills.parquet").exists() and (tmp_path / "r.html").exists()
    assert main(["backtest", str(rec), "-s", "nocolon"]) == 2
    assert main(["backtest", str(rec), "-s", "kalshi.strategy.market_maker:MarketMaker", "--cancel-model", "x"]) == 2
    assert main(["backtest", str(tmp_path / "missing"), "-s", "kalshi.strategy.market_maker:MarketMaker"]) == 1


def test_a_gap_makes_the_book_stale_until_the_next_snapshot(tmp_path: Path) -> None:
    def delta(seq: int, price: str, delta: str) -> bytes:
        return (
            b'{"type":"orderbook_delta","sid":1,"seq":%d,"msg":{"market_ticker":"G","price_dollars":"%s",'
            b'"delta_fp":"%s","side":"yes","ts_ms":%d}}' % (seq, price.encode(), delta.encode(), seq)
        )

    snap = (
        b'{"type":"orderbook_snapshot","sid":1,"seq":%d,"msg":{"market_ticker":"G","yes_dollars_fp":[["0.4000","5.00"]],'
        b'"no_dollars_fp":[["0.5000","5.00"]]}}'
    )
    with Recorder(tmp_path) as recorder:
        recorder.add_frame(snap % 1, 1_000)
        recorder.add_frame(delta(2, "0.4100", "1.00"), 2_000)
        recorder.add_frame(delta(4, "0.4200", "1.00"), 3_000)  # seq 3 lost
        recorder.add_frame(delta(5, "0.4300", "1.00"), 4_000)
        recorder.add_frame(snap % 6, 5_000)

    class Tops(Strategy):
        def __init__(self) -> None:
            self.bids: list[int | None] = []

        async def on_book(self, ctx: Context, book: Book) -> None:
            self.bids.append(book.best_bid)

    strategy = Tops()
    run(strategy, tmp_path)
    assert strategy.bids == [4000, 4100, 4000]  # the deltas after the gap are not applied; the resync is


class Resender(Strategy):
    """A post-only bid at the best ask (always refused: it would cross), sent again at once after each refusal."""

    def __init__(self) -> None:
        self.sent = 0
        self.started = False

    async def on_book(self, ctx: Context, book: Book) -> None:
        if not self.started and book.best_ask is not None:
            self.started = True
            self._send(ctx, book.ticker, book.best_ask)

    def _send(self, ctx: Context, ticker: str, price: int) -> None:
        self.sent += 1
        ctx.place_order(ticker, "bid", price, 100, post_only=True)

    async def on_order_update(self, ctx: Context, update: object) -> None:  # type: ignore[override]
        if update.status == "rejected":  # type: ignore[attr-defined]
            self._send(ctx, update.ticker, update.price)  # type: ignore[attr-defined]


def test_a_strategy_that_resends_refused_orders_at_once_stops_with_a_clear_error(rec: Path) -> None:
    # Without latency the refusal comes back at the same instant: without the guard this would never end.
    strategy = Resender()
    with pytest.raises(StrategyError, match="order requests at one event") as caught:
        run(strategy, rec)
    assert "max_requests_per_event" in str(caught.value)
    assert strategy.sent == 10_001


def test_the_request_limit_per_event_counts_each_instant_afresh(rec: Path) -> None:
    # With order latency every refusal arrives at a later instant, so the same strategy only loops slowly, each
    # instant within the limit: the run ends with the recording.
    strategy = Resender()
    result = run(strategy, rec, order_latency_ms=1.0)
    assert strategy.sent > 100 and result.summary.events > 6_000


@pytest.mark.parametrize("source", ["lifecycle", "record"])
def test_a_recorded_price_grid_refuses_orders_off_it(tmp_path: Path, source: str) -> None:
    # A market that trades in whole cents: the exchange refuses $0.405, so the backtest must too (it would
    # otherwise fill a half-cent-improving quote at the head of a queue no one else can join). The grid comes
    # from a recorded listing (market_lifecycle_v2 created) or from the markets event kalshi record writes.
    created = (
        b'{"type":"market_lifecycle_v2","sid":2,"msg":{"market_ticker":"G","event_type":"created",'
        b'"price_level_structure":"linear_cent","price_ranges":[{"start":"0.0000","end":"1.0000","step":"0.0100"}]}}'
    )
    snap = (
        b'{"type":"orderbook_snapshot","sid":1,"seq":1,"msg":{"market_ticker":"G","yes_dollars_fp":[["0.4000","5.00"]],'
        b'"no_dollars_fp":[["0.5000","5.00"]]}}'
    )
    with Recorder(tmp_path) as recorder:
        if source == "lifecycle":
            recorder.add_frame(created, 1_000)
        else:
            cents = [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]
            recorder.add_event("markets", detail={"price_ranges": {"G": cents}})
        recorder.add_frame(snap, 2_000)

    class Improver(Strategy):
        def __init__(self) -> None:
            self.reasons: dict[int, str | None] = {}

        async def on_book(self, ctx: Context, book: Book) -> None:
            if not ctx.open_orders() and not self.reasons:
                ctx.place_order("G", "bid", 4050, 100)
                ctx.place_order("G", "bid", 4100, 100)

        async def on_order_update(self, ctx: Context, update: OrderUpdate) -> None:
            self.reasons[update.price] = update.reason if update.status == "rejected" else update.status

    strategy = Improver()
    result = run(strategy, tmp_path)
    assert result.markets_without_grid == []
    assert strategy.reasons[4100] == "resting"
    assert (strategy.reasons[4050] or "").startswith("invalid_price: 4050 ticks is not on G's price grid")
