"""Chaos run: the client against a simulator that misbehaves in every way production does, with proof that
nothing is lost.

Run: ``python -m bench.chaos --minutes 10 --seed 1`` (the test suite runs a short form, tests/test_chaos.py).

Setup: the simulator runs in its own process (:mod:`bench.chaos_remote`) with 50 markets of seeded activity and
random frame faults (skipped seq, duplicated, reordered and malformed frames). Two client sessions read it:

* ``private``: ``orderbook()`` of every market plus ``fill``, ``user_orders`` and ``market_positions``, while
  orders for its account are placed over REST (resting and immediate-or-cancel, near the touch);
* ``public``: raw ``orderbook_delta`` of every market (BLOCK, read by a slow consumer that pauses at random, so
  the socket is paused under TCP backpressure), ``ticker`` and ``trade``.

:mod:`bench.chaos_faults` injects one connection fault every 1-5 s. Every ``--checkpoint`` seconds the run goes
quiescent (faults, orders and activity paused, every frame written and processed) and checks that every local
book equals ``sim.book()`` and that every fill the simulator produced for the account was delivered over the
fill channel or recovered by the REST reconciliation that follows each disruption.

It prints one table and exits 1 when a must-be-0 figure is not 0 (book mismatches, fills lost, unknown fills,
drops on BLOCK subscriptions, unhandled exceptions, undetected dead links, checkpoints that did not converge),
when reconnects + session restarts differ from the drops injected, or when peak RSS exceeds ``--rss-limit-mb``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.chaos_consumers import Consumer, FillKey, FillLedger, OrderFlow, Reconciler
from bench.chaos_faults import FAULT_KINDS, FaultScheduler
from bench.chaos_remote import RemoteSim, SimOptions
from kalshi.auth import KalshiAuth, generate_private_key_pem
from kalshi.config import KalshiConfig
from kalshi.errors import KalshiAPIError
from kalshi.models.markets import Orderbook
from kalshi.rest import AsyncKalshiClient, RateLimiter

__all__ = ["ChaosConfig", "ChaosResult", "main", "run_chaos"]

log = logging.getLogger("bench.chaos")

DEFAULT_RATE = 8000.0  # engine actions per second asked of the simulator (it reports what it reached)
_WIDTH = 78
FRAME_FAULTS = "skip_seq=1/5000,dup=1/5000,reorder=1/5000,malformed=1/10000"
_FRAME_KINDS = {
    "skip_seq": "skipped seq (1 in 5000 frames)",
    "dup": "duplicated frame",
    "reorder": "reordered frames",
    "malformed": "malformed frame",
}


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    """Settings of one chaos run."""

    seconds: float = 120.0
    seed: int = 1
    markets: int = 50
    rate: float = DEFAULT_RATE
    checkpoint_every: float = 20.0
    order_rate: float = 10.0
    fault_every: tuple[float, float] = (1.0, 5.0)
    frame_faults: str = FRAME_FAULTS
    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 2.0
    rss_limit_mb: float = 1024.0
    converge_timeout: float = 20.0


@dataclass
class ChaosResult:
    """Everything the table shows, and why the run failed (empty when it passed)."""

    config: ChaosConfig
    elapsed: float = 0.0
    injected: dict[str, int] = field(default_factory=dict)
    survived: dict[str, int] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def table(self) -> str:
        """The one table of the run."""
        c = self.config
        f = self.figures
        lines = [
            f"chaos run: {self.elapsed:.0f} s, seed {c.seed}, {c.markets} markets, "
            f"{f.get('checkpoints', 0)} quiescent checkpoints",
            "",
            f"{'fault kind':56} {'injected':>10} {'survived':>10}",
            "-" * _WIDTH,
        ]
        for kind, label in {**FAULT_KINDS, **_FRAME_KINDS, "slow_consumer": "slow consumer pauses"}.items():
            lines.append(f"{label:56} {self.injected.get(kind, 0):>10,} {self.survived.get(kind, 0):>10,}")
        lines += [
            "survived: injected before the last checkpoint at which every book matched and no fill was missing.",
            "A 401 while reconnecting ends a session by client design (KalshiHandshakeError.is_permanent);",
            "the application opens a new one (counted as a session restart).",
            "",
            f"{'figure':62} {'value':>15}",
            "-" * _WIDTH,
        ]
        for label, value in f["rows"]:
            lines.append(f"{label:62} {value:>15}" if len(value) <= 15 else f"{label:46} {value:>31}")
        lines.append("")
        lines.append("RESULT: " + ("PASS" if self.ok else "FAIL"))
        lines += [f"  - {failure}" for failure in self.failures]
        return "\n".join(lines)


class _Run:
    def __init__(self, config: ChaosConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.result = ChaosResult(config)
        self.unhandled: list[str] = []
        self.mismatches = 0
        self.portfolio_mismatches = 0
        self.converge_failures = 0
        self.checkpoints = 0
        self.peak_rss = 0
        self.checkpoint_rss: list[int] = []
        self.frame_counts: dict[str, int] = {}
        self.last_good: dict[str, int] = {}
        self.fill_verdict: dict[str, int] = {}
        self.reconcile_source = "REST GET /portfolio/fills"

    async def run(self) -> ChaosResult:
        config = self.config
        loop = asyncio.get_running_loop()
        previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(lambda _loop, ctx: self.unhandled.append(str(ctx.get("exception") or ctx)))
        options = SimOptions(seed=config.seed, markets=config.markets, rate=config.rate, faults=config.frame_faults)
        try:
            async with RemoteSim(options) as remote:
                await self._with_sim(remote)
        finally:
            loop.set_exception_handler(previous_handler)
        return self.result

    async def _with_sim(self, remote: RemoteSim) -> None:
        config = self.config
        tickers: list[str] = await remote.call("tickers")
        private_pem, public_pem = generate_private_key_pem("rsa")  # RSA-PSS: what Kalshi issues
        auth = KalshiAuth.from_pem("chaos-key", private_pem)
        account = await remote.call(
            "register_key", key_id="chaos-key", public_pem=public_pem.decode(), account="chaos-account"
        )
        client_config = KalshiConfig.local(remote.url).with_options(
            retry_base_delay=0.05,
            retry_max_delay=0.5,
            ws_max_retries=50,
            timeout=10.0,
            connect_timeout=5.0,
            heartbeat_interval=config.heartbeat_interval,
        )
        async with AsyncKalshiClient(client_config, auth=auth, rate_limiter=RateLimiter.unlimited()) as rest:
            fetch = await self._fill_source(rest, remote, account)
            ledger = FillLedger()
            ledger.source = self.reconcile_source
            private = Consumer(
                "private",
                client_config,
                auth,
                tickers,
                random.Random(self.rng.random()),
                private=True,
                slow=False,
                heartbeat_timeout=config.heartbeat_timeout,
                on_fill=ledger.on_fill,
                rest=rest,
            )
            reconciler = Reconciler(ledger, fetch, private.ready)
            private.on_disruption = reconciler.disrupted
            public = Consumer(
                "public",
                client_config,
                auth,
                tickers,
                random.Random(self.rng.random()),
                private=False,
                slow=True,
                heartbeat_timeout=config.heartbeat_timeout,
            )
            consumers = [private, public]
            orders = OrderFlow(
                remote, rest, account, private.books, tickers, random.Random(self.rng.random()), config.order_rate
            )
            faults = FaultScheduler(
                remote,
                random.Random(self.rng.random()),
                every=config.fault_every,
                heartbeat=(config.heartbeat_interval, config.heartbeat_timeout),
                refuse_401_after=config.seconds * 0.4,
            )
            started = time.monotonic()
            tasks = {
                asyncio.create_task(private.run(), name="consumer-private"),
                asyncio.create_task(public.run(), name="consumer-public"),
            }
            try:
                await self._wait_ready(consumers, 30.0)
                tasks |= {
                    asyncio.create_task(reconciler.run(), name="reconciler"),
                    asyncio.create_task(orders.run(), name="orders"),
                    asyncio.create_task(faults.run(), name="faults"),
                    asyncio.create_task(self._sample_rss(), name="rss"),
                }
                deadline = started + config.seconds
                next_checkpoint = started + config.checkpoint_every
                while time.monotonic() < deadline:
                    await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
                    self._check_tasks(tasks)
                    if self.unhandled:
                        break
                    if time.monotonic() >= next_checkpoint and deadline - time.monotonic() > 5.0:
                        await self._checkpoint(remote, consumers, faults, orders, reconciler, ledger, account, tickers)
                        next_checkpoint = time.monotonic() + config.checkpoint_every
                if not self.unhandled:
                    await self._checkpoint(remote, consumers, faults, orders, reconciler, ledger, account, tickers)
            finally:
                self.result.elapsed = time.monotonic() - started
                for consumer in consumers:
                    consumer.stop()
                for task in tasks:
                    if not task.get_name().startswith("consumer"):
                        task.cancel()
                done, _ = await asyncio.wait(tasks, timeout=30.0)
                for task in done:
                    if not task.cancelled() and task.exception() is not None:
                        self.unhandled.append(f"{task.get_name()}: {task.exception()!r}")
            stats = await remote.call("stats")
            stats["pauses"] = await remote.call("pauses")
            counts: dict[str, int] = await remote.call("counts")
        self._summarize(consumers, faults, orders, reconciler, ledger, counts, stats)

    async def _fill_source(self, rest: AsyncKalshiClient, remote: RemoteSim, account: str) -> Any:
        async def over_rest(since_s: int) -> list[FillKey]:
            return [(f.trade_id, f.order_id) async for f in rest.portfolio.iter_get_fills(min_ts=since_s, limit=1000)]

        async def from_ledger(_since_s: int) -> list[FillKey]:
            return [(t, o) for t, o, *_ in await remote.call("fills", account=account)]

        try:
            await rest.portfolio.get_fills(limit=1)
        except KalshiAPIError as exc:
            if exc.status != 404:
                raise
            self.reconcile_source = "simulator ledger: GET /portfolio/fills is not served by the simulator yet"
            return from_ledger
        return over_rest

    def _check_tasks(self, tasks: set[asyncio.Task[Any]]) -> None:
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                message = f"{task.get_name()}: {task.exception()!r}"
                if message not in self.unhandled:
                    self.unhandled.append(message)

    async def _wait_ready(self, consumers: list[Consumer], limit: float) -> bool:
        try:
            async with asyncio.timeout(limit):
                while not all(c.ready() for c in consumers):  # noqa: ASYNC110 - polls plain client state
                    await asyncio.sleep(0.02)
        except TimeoutError:
            return False
        return True

    async def _sample_rss(self) -> None:
        process = psutil.Process()
        while True:
            rss = process.memory_info().rss
            self.peak_rss = max(self.peak_rss, rss)
            await asyncio.sleep(0.25)

    async def _checkpoint(
        self,
        remote: RemoteSim,
        consumers: list[Consumer],
        faults: FaultScheduler,
        orders: OrderFlow,
        reconciler: Reconciler,
        ledger: FillLedger,
        account: str,
        tickers: list[str],
    ) -> None:
        """Quiesce, then require every book to equal the simulator's and every fill to be accounted for."""
        limit = self.config.converge_timeout
        async with faults.lock:
            await orders.pause()
            await faults.calm()
            await remote.call("pause")
            try:
                converged = await self._wait_ready(consumers, limit)
                await remote.call("quiesce", max_wait=limit)
                converged = converged and await reconciler.settle(limit)
                truth = {t: Orderbook.from_levels(t, yes, no) for t, (yes, no) in (await remote.call("books")).items()}
                bad = await self._converge(consumers, truth, tickers, limit)
                for consumer in consumers:
                    while not consumer.fill_queue_empty():  # noqa: ASYNC110 - polls queue sizes
                        await asyncio.sleep(0.01)
                produced = [(t, o) for t, o, *_ in await remote.call("fills", account=account)]
                verdict = ledger.verdict(produced)
                portfolio_bad = await self._portfolio_mismatches(remote, consumers[0], account, limit)
            finally:
                await remote.call("resume")
                orders.resume()
        self.checkpoints += 1
        self.checkpoint_rss.append(psutil.Process().memory_info().rss)
        self.mismatches += bad
        self.portfolio_mismatches += portfolio_bad
        self.fill_verdict = verdict
        if not converged:
            self.converge_failures += 1
        counts = await remote.call("counts")
        # Frame faults keep firing inside the simulator until it stops; the run's figures are those verified at
        # the final checkpoint.
        self.frame_counts = {k: counts.get(k, 0) for k in _FRAME_KINDS}
        if bad == 0 and portfolio_bad == 0 and converged and verdict["lost"] == 0 and verdict["unknown"] == 0:
            self.last_good = {
                **{k: counts.get(k, 0) for k in _FRAME_KINDS},
                **faults.injected,
                "slow_consumer": sum(c.slow_pauses for c in consumers),
            }
        log.info("checkpoint %d: mismatches %d, portfolio %d, fills %s", self.checkpoints, bad, portfolio_bad, verdict)

    async def _portfolio_mismatches(self, remote: RemoteSim, consumer: Consumer, account: str, limit: float) -> int:
        """Positions and resting orders of the application's Portfolio against the engine's (bounded wait)."""
        deadline = time.monotonic() + limit
        while True:
            portfolio = consumer.portfolio
            bad = 0
            if portfolio is not None and consumer.portfolio_settled():
                positions: dict[str, int] = await remote.call("positions", account=account)
                resting: dict[str, int] = await remote.call("resting", account=account)
                mine = {t: int(p.position * 100) for t, p in portfolio.positions.items()}
                bad += sum(1 for t in set(mine) | set(positions) if mine.get(t, 0) != positions.get(t, 0))
                held = {o: int(order.remaining * 100) for o, order in portfolio.orders.items()}
                bad += sum(1 for o in set(held) | set(resting) if held.get(o, 0) != resting.get(o, 0))
                if bad == 0:
                    return 0
            elif portfolio is None:
                bad = 1
            if time.monotonic() > deadline:
                log.warning("portfolio differs from the simulator in %d position(s)/order(s)", bad)
                return bad
            await asyncio.sleep(0.05)

    async def _converge(
        self, consumers: list[Consumer], truth: dict[str, Orderbook], tickers: list[str], limit: float
    ) -> int:
        """Wait (bounded) until every set of books equals the truth; return the mismatches left."""
        deadline = time.monotonic() + limit
        while True:
            bad = 0
            for consumer in consumers:
                for _label, books in consumer.book_sources():
                    bad += len(_differences(books, truth, tickers)[1])
            if bad == 0 or time.monotonic() > deadline:
                for consumer in consumers:
                    for label, books in consumer.book_sources() if bad else ():
                        missing, wrong = _differences(books, truth, tickers)
                        if wrong:
                            log.warning(
                                "%s: %d book(s) missing, %d differ from the simulator after %.0f s (e.g. %s); %s",
                                label, len(missing), len(wrong), limit, wrong[:2], consumer.describe(),
                            )  # fmt: skip
                return bad
            await asyncio.sleep(0.05)

    def _summarize(
        self,
        consumers: list[Consumer],
        faults: FaultScheduler,
        orders: OrderFlow,
        reconciler: Reconciler,
        ledger: FillLedger,
        counts: dict[str, int],
        stats: dict[str, Any],
    ) -> None:
        result = self.result
        frames = sum(c.frames for c in consumers)
        reconnects = sum(c.reconnects for c in consumers)
        restarts = sum(c.restarts for c in consumers)
        totals = [c.totals for c in consumers]
        injected = {
            **(self.frame_counts or {k: counts.get(k, 0) for k in _FRAME_KINDS}),
            **faults.injected,
            "slow_consumer": sum(c.slow_pauses for c in consumers),
        }
        result.injected = injected
        result.survived = {k: min(v, self.last_good.get(k, 0)) for k, v in injected.items()}
        # Heartbeat timeouts are injected dead links, or the simulator process itself stopped serving for longer
        # than the heartbeat timeout (a stall of its event loop, e.g. a long garbage collection): then every
        # client rightly gave up on its connection. Anything else is unexplained.
        dead_links = faults.injected.get("dead_link", 0)
        stalls = [(start, length) for start, length in stats["pauses"]["stalls"]]
        window = self.config.heartbeat_interval + self.config.heartbeat_timeout + 0.5
        heartbeat_losses = [t for c in consumers for t in c.heartbeat_losses]
        during_stalls = sum(1 for t in heartbeat_losses if any(s <= t and s + n >= t - window for s, n in stalls))
        stall_losses = min(during_stalls, max(0, len(heartbeat_losses) - dead_links))
        unexplained = len(heartbeat_losses) - dead_links - stall_losses
        drops = counts.get("drop", 0) + dead_links + stall_losses
        verdict = self.fill_verdict
        errors: Counter[int] = Counter()
        for consumer in consumers:
            errors.update(consumer.error_codes)
        restart_reasons: Counter[str] = Counter()
        lost_because: Counter[str] = Counter()
        for consumer in consumers:
            restart_reasons.update(consumer.restart_reasons)
            lost_because.update(consumer.lost_because)
        elapsed = max(result.elapsed, 1e-9)
        rss_first = self.checkpoint_rss[0] if self.checkpoint_rss else 0
        rss_last = self.checkpoint_rss[-1] if self.checkpoint_rss else 0
        must = {
            "book mismatches at checkpoints": self.mismatches,
            "portfolio mismatches (positions, orders)": self.portfolio_mismatches,
            "fills lost": verdict.get("lost", 0),
            "fills unknown to the simulator": verdict.get("unknown", 0),
            "messages dropped on BLOCK subscriptions": sum(t.dropped_block for t in totals),
            "raw deltas not applicable to the consumer's book": sum(c.raw_inapplicable for c in consumers),
            "unhandled exceptions": len(self.unhandled),
            "dead links not detected by heartbeat": faults.dead_links_undetected,
            "heartbeat timeouts not explained by a fault": max(0, unexplained),
            "checkpoints that did not converge": self.converge_failures,
        }
        rows: list[tuple[str, str]] = [
            ("messages received (client)", f"{frames:,}"),
            ("  per second", f"{frames / elapsed:,.0f}"),
            ("frames sent by the simulator", f"{stats['delivered']:,}"),
            ("engine actions (per second)", f"{stats['steps']:,} ({stats['steps'] / elapsed:,.0f})"),
            (
                "gaps detected / repairs / resubscribes",
                f"{sum(t.gaps for t in totals):,} / {sum(t.repairs for t in totals):,} / "
                f"{sum(t.resubscribes for t in totals):,}",
            ),
            ("reconnects + session restarts", f"{reconnects} + {restarts}"),
            (
                "drops injected (+ dead links + simulator stalls)",
                f"{drops - dead_links - stall_losses} + {dead_links} + {stall_losses}",
            ),
            (
                "simulator stalls > 0.5 s (longest) / GCs > 0.2 s (longest)",
                f"{len(stalls)} ({max((n for _, n in stalls), default=0):.1f} s) / {len(stats['pauses']['gc'])} "
                f"({max((n for _, n, _ in stats['pauses']['gc']), default=0):.1f} s)",
            ),
            (
                "handshakes refused 401/429/503",
                "/".join(str(faults.refused_handshakes.get(s, 0)) for s in ("401", "429", "503")),
            ),
            ("session restarts by reason", ", ".join(f"{k}: {v}" for k, v in restart_reasons.items()) or "-"),
            ("connections lost, by cause", ", ".join(f"{k}: {v}" for k, v in sorted(lost_because.items())) or "-"),
            ("orders placed (refused)", f"{orders.placed:,} ({orders.refused:,})"),
            ("  via " + orders.via, ""),
            (
                "fills produced / over WS / recovered",
                f"{verdict.get('produced', 0):,} / {verdict.get('delivered', 0):,} / {verdict.get('recovered', 0):,}",
            ),
            ("duplicate fill frames (deduplicated)", f"{ledger.duplicate_frames:,}"),
            ("reconciliations (source below)", f"{ledger.reconciliations:,}"),
            ("  " + ledger.source, ""),
            ("lossy-channel drops (ticker/trade, by design)", f"{sum(t.dropped_lossy for t in totals):,}"),
            ("on_error codes", ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "-"),
            ("peak RSS client / simulator (MB)", f"{self.peak_rss / 2**20:,.0f} / {stats['rss'] / 2**20:,.0f}"),
            ("client RSS at first / last checkpoint (MB)", f"{rss_first / 2**20:,.0f} / {rss_last / 2**20:,.0f}"),
        ]
        rows += [(f"{label} (must be 0)", f"{value:,}") for label, value in must.items()]
        result.figures = {
            "rows": rows,
            "checkpoints": self.checkpoints,
            "frames": frames,
            "reconnects": reconnects,
            "restarts": restarts,
            "drops": drops,
            "must": must,
            "fills": verdict,
            "peak_rss": self.peak_rss,
        }
        for label, value in must.items():
            if value:
                result.failures.append(f"{label}: {value}")
        for message in self.unhandled[:5]:
            result.failures.append(f"unhandled: {message}")
        if reconnects + restarts != drops:
            result.failures.append(f"reconnects + restarts ({reconnects} + {restarts}) != drops injected ({drops})")
        if self.peak_rss > self.config.rss_limit_mb * 2**20:
            result.failures.append(f"peak RSS {self.peak_rss / 2**20:.0f} MB > {self.config.rss_limit_mb:.0f} MB")
        if self.checkpoints == 0:
            result.failures.append("no checkpoint completed")


def _differences(books: Any, truth: dict[str, Orderbook], tickers: list[str]) -> tuple[list[str], list[str]]:
    """(missing, wrong) tickers; wrong includes missing."""
    missing = [t for t in tickers if books.get(t) is None]
    wrong = [t for t in tickers if t in missing or books.get(t) != truth[t]]
    return missing, wrong


async def run_chaos(config: ChaosConfig) -> ChaosResult:
    """Run the chaos scenario and return its figures (see the module docstring)."""
    return await _Run(config).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--markets", type=int, default=50)
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="engine actions/s to ask for")
    parser.add_argument("--checkpoint", type=float, default=20.0, help="seconds between quiescent checkpoints")
    parser.add_argument("--orders", type=float, default=10.0, help="orders per second")
    parser.add_argument("--rss-limit-mb", type=float, default=1024.0)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    config = ChaosConfig(
        seconds=args.minutes * 60,
        seed=args.seed,
        markets=args.markets,
        rate=args.rate,
        checkpoint_every=args.checkpoint,
        order_rate=args.orders,
        rss_limit_mb=args.rss_limit_mb,
    )
    result = asyncio.run(run_chaos(config))
    print(result.table(), flush=True)
    return 0 if result.ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
