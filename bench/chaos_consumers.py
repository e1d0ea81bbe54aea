"""The chaos run's consumers: client sessions that restart like an application would, the fill ledger with its
REST reconciliation, and the order flow.

A :class:`Consumer` is one :class:`~kalshi.ws.KalshiWebSocket` used the way an application uses it: subscribe,
read every stream in its own task, and when the session ends for good (a 401 while reconnecting, retries
exhausted) open a new one. Everything it counts survives those restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from bench.chaos_remote import RemoteSim
from kalshi.auth import KalshiAuth
from kalshi.config import KalshiConfig
from kalshi.errors import KalshiAPIError, KalshiConnectionError, KalshiError
from kalshi.portfolio import Portfolio
from kalshi.ws import ConnectionState, KalshiWebSocket, Subscription
from kalshi.ws.connection import REASON_HEARTBEAT_TIMEOUT
from kalshi.ws.lifecycle import Gap, LifecycleListener, Reconnected
from kalshi.ws.models import ErrorMessage, FillMessage, OrderbookDeltaMessage, OrderbookSnapshotMessage
from kalshi.ws.orderbook import DeltaResult, OrderbookManager

__all__ = ["Consumer", "FillKey", "FillLedger", "OrderFlow", "Reconciler", "SubscriptionTotals"]

log = logging.getLogger("bench.chaos")

FillKey = tuple[str, str]  # (trade_id, order_id): one account's side of one trade
_RESTART_PAUSE: Final = 0.2
_RESTART_GIVE_UP: Final = 60.0
_PRIVATE_CHANNELS: Final = frozenset({"fill", "user_orders", "market_positions"})


class SubscriptionTotals:
    """Figures summed over every subscription of every session of a consumer."""

    def __init__(self) -> None:
        self.gaps = 0
        self.repairs = 0
        self.resubscribes = 0
        self.stale_drops = 0
        self.dropped_block = 0  # must stay 0: BLOCK subscriptions never drop
        self.dropped_lossy = 0  # DROP_OLDEST/CONFLATE channels may drop by design (counted, not an error)
        self.delivered = 0

    def add(self, subs: list[Subscription[Any]]) -> None:
        for sub in subs:
            stats = sub.stats
            self.gaps += stats.gaps
            self.repairs += stats.repairs
            self.resubscribes += stats.resubscribes
            self.stale_drops += stats.stale_drops
            self.delivered += stats.delivered_frames
            if sub.queue.overflow.name == "BLOCK":
                self.dropped_block += sub.dropped
            else:
                self.dropped_lossy += sub.dropped


class FillLedger:
    """Every fill delivered over the WebSocket (deduplicated by trade and order id) and every fill recovered by
    reconciliation over REST after a disruption."""

    def __init__(self) -> None:
        self.ws: dict[FillKey, int] = {}
        self.duplicate_frames = 0
        self.recovered: set[FillKey] = set()
        self.reconciliations = 0
        self.source = "REST GET /portfolio/fills"

    def on_fill(self, message: FillMessage) -> None:
        body = message.msg
        key = (body.trade_id or "", body.order_id or "")
        seen = self.ws.get(key, 0)
        if seen:
            self.duplicate_frames += 1  # the application deduplicates: a fill counts once
        self.ws[key] = seen + 1

    def verdict(self, produced: list[FillKey]) -> dict[str, int]:
        """Compare with the simulator's ledger: delivered once, recovered, lost, unknown."""
        expected = set(produced)
        delivered = sum(1 for key in expected if self.ws.get(key, 0) > 0)
        recovered = sum(1 for key in expected if not self.ws.get(key, 0) and key in self.recovered)
        lost = len(expected) - delivered - recovered
        unknown = sum(1 for key in self.ws if key not in expected)
        return {
            "produced": len(expected),
            "delivered": delivered,
            "recovered": recovered,
            "lost": lost,
            "unknown": unknown,
        }


class Consumer:
    """One application session (restarted when it ends for good) with its streams and counters.

    Args:
        name: Label for logs and the table.
        config: Client configuration.
        auth: Signing key (None: public channels only).
        tickers: Markets to keep books for.
        rng: Seeded randomness (jitter, slow-consumer pauses).
        private: Also subscribe fill, user_orders and market_positions.
        slow: Consume the raw orderbook_delta stream (BLOCK) with random pauses: TCP backpressure.
        heartbeat_timeout: Client heartbeat deadline.
        on_fill: Called for every fill message.
        on_disruption: Called when private streams may have missed messages (reconnect, restart, error 25).
        rest: REST client for a :class:`~kalshi.portfolio.Portfolio` kept on the private session (None: none).
    """

    def __init__(
        self,
        name: str,
        config: KalshiConfig,
        auth: KalshiAuth | None,
        tickers: list[str],
        rng: random.Random,
        *,
        private: bool,
        slow: bool,
        heartbeat_timeout: float,
        on_fill: Callable[[FillMessage], None] | None = None,
        on_disruption: Callable[[], None] | None = None,
        rest: Any = None,
    ) -> None:
        self.name = name
        self.config = config
        self.auth = auth
        self.tickers = tickers
        self.rng = rng
        self.private = private
        self.slow = slow
        self.heartbeat_timeout = heartbeat_timeout
        self.on_fill = on_fill
        self.on_disruption = on_disruption
        self.rest = rest
        self.portfolio: Portfolio | None = None
        self._events: LifecycleListener | None = None
        self.session: KalshiWebSocket | None = None
        self.subs: list[Subscription[Any]] = []
        self.totals = SubscriptionTotals()
        self.frames = 0
        self.reconnects = 0
        self.restarts = 0
        self.restart_reasons: Counter[str] = Counter()
        self.error_codes: Counter[int] = Counter()
        self.lost_because: Counter[str] = Counter()  # why each connection ended (CloseInfo), before reconnecting
        self.heartbeat_losses: list[float] = []  # monotonic times our heartbeat declared a connection dead
        self.slow_pauses = 0
        # The public consumer also builds books itself from the raw stream, as a raw consumer would.
        self.raw_books: OrderbookManager | None = None
        self.raw_inapplicable = 0  # deltas of the raw stream that did not apply to the consumer's book
        self.unexpected: list[str] = []
        self._stop = asyncio.Event()
        self._drains: list[asyncio.Task[None]] = []

    # -- status -----------------------------------------------------------------------------------------------

    def ready(self) -> bool:
        """Streaming, every subscription bound to a server sid, and every disruption so far reported to
        ``on_disruption`` (a reconnect or an error 25 seen by the session but not yet by the watcher would let a
        checkpoint count a fill as lost before its reconciliation was even asked for)."""
        session = self.session
        if session is None or session.state is not ConnectionState.STREAMING or len(self.subs) != self._expected:
            return False
        if self._events is not None and self._events.backlog:
            return False
        return all(
            all(sid is not None for sid, _ in sub.server_subscriptions) and sub.active for sub in session.subscriptions
        )

    @property
    def _expected(self) -> int:
        return 4 if self.private else 3

    def books(self) -> Any:
        return self.session.books if self.session is not None else {}

    def book_sources(self) -> list[tuple[str, Any]]:
        """Every set of books to check: the client's (``session.books``) and, for the raw consumer, its own."""
        sources: list[tuple[str, Any]] = [(f"{self.name} session.books", self.books())]
        if self.raw_books is not None:
            sources.append((f"{self.name} books built from the raw stream", _RawBooks(self.raw_books)))
        return sources

    def fill_queue_empty(self) -> bool:
        subs = self.session.subscriptions if self.session is not None else self.subs
        return all(sub.queue.qsize() == 0 for sub in subs)

    def describe(self) -> str:
        """The session's state and subscriptions, for diagnosing a checkpoint that did not converge."""
        session = self.session
        if session is None:
            return "no session"
        return f"{session.diagnostics()}"

    def portfolio_settled(self) -> bool:
        """No reconciliation running or due (reconnects already seen by the portfolio)."""
        portfolio = self.portfolio
        session = self.session
        if portfolio is None or session is None:
            return True
        return portfolio.settled

    # -- running ----------------------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Keep a session open until :meth:`stop`; a session that ends for good is replaced."""
        first = True
        ended_at = time.monotonic()
        while not self._stop.is_set():
            ws = KalshiWebSocket(
                auth=self.auth,
                config=self.config,
                heartbeat_timeout=self.heartbeat_timeout,
                on_state_change=self._on_state,
                on_error=self._on_error,
                rng=random.Random(self.rng.random()),
            )
            try:
                await self._one_session(ws)
            except KalshiConnectionError as exc:
                # The session ended for good (401/403 while reconnecting, retries exhausted), or a restart
                # attempt was refused: open a new one, as an application would.
                reason = f"{type(exc).__name__}" + (f" {exc.status}" if hasattr(exc, "status") else "")
                if first and self.session is not ws:
                    raise  # never connected at all: the setup is wrong, not the network
                if self.session is ws:
                    self.restarts += 1
                    self.restart_reasons[reason] += 1
                    ended_at = time.monotonic()
                    log.info("%s: session ended (%s); restarting", self.name, exc)
                elif time.monotonic() - ended_at > _RESTART_GIVE_UP:
                    raise
                await asyncio.sleep(_RESTART_PAUSE)
            finally:
                self._retire(ws)
            first = False

    def _retire(self, ws: KalshiWebSocket) -> None:
        if self.session is ws:
            self.frames += ws.frames_received
            self.reconnects += ws.reconnects
            self.totals.add(self.subs)
            self.session = None
            self.subs = []
            if self._events is not None:
                self._events.close()
                self._events = None

    async def _one_session(self, ws: KalshiWebSocket) -> None:
        async with ws.connect() as session:
            self.session = session
            # Before subscribing: no disruption may go unseen (the events are published synchronously).
            self._events = session.lifecycle_events() if self.on_disruption is not None else None
            subs: list[Subscription[Any]] = []
            if self.private:
                subs.append(await session.orderbook(self.tickers))
                subs.append(await session.subscribe_fill(maxsize=10_000))
                subs.append(await session.subscribe_user_orders(maxsize=10_000))
                subs.append(await session.subscribe_market_positions(maxsize=10_000))
            else:
                subs.append(await session.subscribe_orderbook_delta(self.tickers, keep_books=True))
                self.raw_books = OrderbookManager()
                subs.append(await session.subscribe_ticker())
                subs.append(await session.subscribe_trade())
            self.subs = subs
            if self.private and self.rest is not None:
                # The application's portfolio: REST snapshot, WebSocket updates, REST reconciliation.
                self.portfolio = Portfolio(self.rest, session)
                await self.portfolio.start()
            self._drains = [
                asyncio.create_task(self._drain(sub, slow=self.slow and i == 0)) for i, sub in enumerate(subs)
            ]
            if self.on_disruption is not None and self._events is not None:
                self.on_disruption()  # a fresh session: anything before it may be missing
                private = [sub.client_id for sub in subs if sub.channel in _PRIVATE_CHANNELS]
                self._drains.append(asyncio.create_task(self._watch_disruptions(self._events, private)))
            ended = asyncio.create_task(session.run_forever())
            stopper = asyncio.create_task(self._stop.wait())
            try:
                await asyncio.wait({ended, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (ended, stopper):
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stopper
                portfolio, self.portfolio = self.portfolio, None
                if portfolio is not None:
                    await portfolio.stop()
                drains, self._drains = self._drains, []
                for task in drains:
                    task.cancel()
                for task in drains:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if ended.done() and not ended.cancelled():
                ended.result()  # re-raises why the session ended
            with contextlib.suppress(asyncio.CancelledError):
                await ended

    async def _watch_disruptions(self, events: LifecycleListener, private: list[int]) -> None:
        """Report every disruption of the private channels (a reconnect, the server ending one: error 25) to
        ``on_disruption`` as soon as it is published (not through the session's hooks, which may lag)."""
        assert self.on_disruption is not None
        async for event in events:
            if isinstance(event, Reconnected) or (isinstance(event, Gap) and event.subscription in private):
                self.on_disruption()

    async def _drain(self, sub: Subscription[Any], *, slow: bool) -> None:
        rng = self.rng
        next_pause = time.monotonic() + rng.uniform(3.0, 8.0)
        is_fill = sub.channel == "fill"
        raw = self.raw_books if sub.channel == "orderbook_delta" and not self.private else None
        async for message in sub:
            if is_fill and self.on_fill is not None:
                self.on_fill(message)
            elif raw is not None:
                if isinstance(message, OrderbookSnapshotMessage):
                    raw.apply_snapshot_message(message)
                elif isinstance(message, OrderbookDeltaMessage):
                    result = raw.apply_delta_message(message)
                    if result is not DeltaResult.APPLIED:
                        self.raw_inapplicable += 1
                        log.warning("%s: raw delta not applicable to the consumer's book: %s", self.name, result.name)
            if slow and time.monotonic() >= next_pause:
                # A slow consumer: stop reading for a while; the BLOCK queue fills and the socket pauses.
                self.slow_pauses += 1
                await asyncio.sleep(rng.uniform(0.2, 1.0))
                next_pause = time.monotonic() + rng.uniform(3.0, 8.0)

    async def _on_state(self, old: ConnectionState, new: ConnectionState) -> None:
        if new is ConnectionState.RECONNECTING and old in (ConnectionState.STREAMING, ConnectionState.CONNECTED):
            info = self.session.last_close if self.session is not None else None
            cause = "unknown" if info is None else f"{info.reason}" + (f" {info.code}" if info.code else "")
            self.lost_because[cause] += 1
            if info is not None and info.reason == REASON_HEARTBEAT_TIMEOUT:
                self.heartbeat_losses.append(time.monotonic())
            log.info("%s: connection lost (%s)", self.name, cause)

    async def _on_error(self, err: ErrorMessage) -> None:
        self.error_codes[err.msg.code] += 1


class _RawBooks:
    """``get(ticker)`` over an OrderbookManager: the ready book's view, else None."""

    def __init__(self, manager: OrderbookManager) -> None:
        self._manager = manager

    def get(self, ticker: str) -> Any:
        state = self._manager.get(ticker)
        return state.view() if state is not None and state.has_snapshot else None


class Reconciler:
    """After each disruption of the private streams, fetch the account's fills over REST (or, when the simulator
    does not serve that endpoint yet, from its ledger) and record those the WebSocket did not deliver."""

    def __init__(self, ledger: FillLedger, fetch: Callable[[int], Any], ready: Callable[[], bool]) -> None:
        self.ledger = ledger
        self._fetch = fetch
        self._ready = ready
        self._dirty = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._since_s = int(time.time()) - 5
        self.failures = 0

    def disrupted(self) -> None:
        self._dirty.set()
        self._idle.clear()

    async def settle(self, limit: float) -> bool:
        """Wait until no reconciliation is due or running; False after ``limit`` seconds."""
        try:
            async with asyncio.timeout(limit):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        while True:
            await self._dirty.wait()
            # Reconcile once the streams are back: fills after that point arrive over the WebSocket.
            while not self._ready():  # noqa: ASYNC110 - polls the client's subscription state
                await asyncio.sleep(0.02)
            self._dirty.clear()
            started = int(time.time())
            try:
                keys: list[FillKey] = await self._fetch(self._since_s)
            except (KalshiError, OSError) as exc:
                self.failures += 1
                log.warning("reconciliation failed (%s); retrying", exc)
                self._dirty.set()
                await asyncio.sleep(0.2)
                continue
            self._since_s = started - 5
            self.ledger.reconciliations += 1
            for key in keys:
                if key not in self.ledger.ws:
                    self.ledger.recovered.add(key)
            if not self._dirty.is_set():
                self._idle.set()


class OrderFlow:
    """Places orders for the account near the touch (resting and immediate-or-cancel), over REST when the
    simulator serves ``POST /portfolio/events/orders``, otherwise through the simulator process."""

    def __init__(
        self,
        remote: RemoteSim,
        rest: Any,
        account: str,
        books: Callable[[], Any],
        tickers: list[str],
        rng: random.Random,
        rate: float,
    ) -> None:
        self.remote = remote
        self.rest = rest
        self.account = account
        self.books = books
        self.tickers = tickers
        self.rng = rng
        self.rate = rate
        self.placed = 0
        self.refused = 0
        self.via = "REST POST /portfolio/events/orders"
        self.paused = asyncio.Event()
        self.running = asyncio.Event()
        self.running.set()

    async def run(self) -> None:
        rng = self.rng
        while True:
            if not self.running.is_set():
                self.paused.set()
                await self.running.wait()
                self.paused.clear()
            await asyncio.sleep(rng.expovariate(self.rate))
            ticker = rng.choice(self.tickers)
            book = self.books().get(ticker)
            if book is None:
                continue
            side = rng.choice(("bid", "ask"))
            immediate = rng.random() < 0.3
            price = _order_price(book, side, immediate)
            if price is None:
                continue
            units = 100 * rng.randint(1, 5)
            tif = "immediate_or_cancel" if immediate else "good_till_canceled"
            try:
                await self._place(ticker, side, price, units, tif)
                self.placed += 1
            except (KalshiError, RuntimeError) as exc:
                self.refused += 1
                log.debug("order refused: %s", exc)

    async def pause(self) -> None:
        """Stop placing orders (returns once the loop is idle)."""
        self.running.clear()
        await self.paused.wait()

    def resume(self) -> None:
        self.running.set()

    async def _place(self, ticker: str, side: str, price: int, units: int, tif: str) -> None:
        if self.rest is not None:
            from kalshi._fixed import format_count, format_price

            try:
                # A client_order_id makes the POST idempotent, so the REST client may retry a 429/503.
                await self.rest.orders.create_order_v2(
                    ticker=ticker,
                    side=side,
                    count=format_count(units),
                    price=format_price(price),
                    time_in_force=tif,
                    self_trade_prevention_type="taker_at_cross",
                    client_order_id=str(uuid.uuid4()),
                )
                return
            except KalshiAPIError as exc:
                if getattr(exc, "status", None) != 404:
                    raise
                self.rest = None
                self.via = "simulator process (sim.place_order): the simulator serves no REST order endpoint yet"
        await self.remote.call(
            "place_order",
            account=self.account,
            ticker=ticker,
            side=side,
            price_ticks=price,
            count_units=units,
            time_in_force=tif,
        )


def _order_price(book: Any, side: str, immediate: bool) -> int | None:
    """Join the touch (resting) or take it (immediate); YES price ticks."""
    yes: tuple[int, int] | None = book.best_bid_ticks("yes")
    no: tuple[int, int] | None = book.best_bid_ticks("no")
    best_bid = yes[0] if yes else None
    best_ask = 10_000 - no[0] if no else None
    take = immediate == (side == "bid")  # a buyer taking, or a seller resting, prices at the ask
    price: int | None = best_ask if take else best_bid
    if price is None or not 1 <= price <= 9_999:
        return None
    return price
