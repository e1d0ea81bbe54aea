"""The simulator: a local Kalshi exchange on one port (HTTP REST + WebSocket), driven by the matching engine.

Example::

    async with Simulator(seed=7, markets=5, rate=0) as sim:
        auth, account = sim.create_account_auth()
        ...connect a client to sim.config with auth...
        sim.step(100)            # drive seeded market activity deterministically
        await sim.quiesce()      # every queued frame is written
        assert client_book == sim.book(ticker)

Every engine call goes through the simulator (:meth:`Simulator.step`, :meth:`Simulator.do`,
:meth:`Simulator.place_order`, the activity loop, REST handlers), which publishes the engine's events to the
subscriptions before returning. Commands are handled between those calls, so a snapshot always reflects
exactly the deltas already queued before it. The activity loop paces itself with the monotonic clock and is
one kept task, cancelled on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from aiohttp import web

from kalshi.auth import KalshiAuth, generate_private_key_pem
from kalshi.config import WS_PATH, KalshiConfig
from kalshi.models.markets import Orderbook
from kalshi.sim.engine import MICROS_PER_DOLLAR, BookSide, Engine, OrderResult
from kalshi.sim.faults import FaultController, FaultSpec
from kalshi.sim.keys import KeyRegistry
from kalshi.sim.market import ActivityGenerator, IndexWalk, MarketUniverse
from kalshi.sim.rest.controls import RestControls
from kalshi.sim.rest.dispatch import add_rest_routes, json_errors
from kalshi.sim.ws.connection import SimConnection
from kalshi.sim.ws.endpoint import WsEndpoint, WsSettings
from kalshi.sim.ws.fanout import Hub
from kalshi.sim.ws.feeds import Feeds
from kalshi.sim.ws.index_feeds import CFB_5HZ_INDICES, CFB_INDEX_IDS, PYTH_UNDERLYINGS, IndexFeeds
from kalshi.sim.ws.session import SessionLimits

__all__ = ["DEFAULT_BALANCE_MICROS", "Simulator"]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_BALANCE_MICROS: Final = 100_000 * MICROS_PER_DOLLAR
_MAX_ACTIONS_PER_TICK: Final = 200  # bounds how long one tick holds the event loop
_CFB_INTERVAL: Final = 1.0
_CFB_5HZ_INTERVAL: Final = 0.2


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Simulator:
    """A running local exchange. Use as ``async with Simulator(...) as sim``.

    Args:
        seed: Seeds the market universe, the order flow, ids and random faults.
        markets: How many markets to generate.
        rate: Engine actions per second of background activity; 0 leaves the market still (drive it with
            :meth:`step`).
        open_access: Accept unsigned WebSocket connections (they cannot use private channels).
        faults: Fault spec string or :class:`FaultSpec` (see :mod:`kalshi.sim.faults`).
        host: Interface to bind; only loopback makes sense.
        port: TCP port; 0 picks a free one (read :attr:`url`).
        ping_interval: Seconds between server pings (body ``heartbeat``); 0 disables them.
        ping_timeout: Seconds a ping may stay unanswered before the connection is closed (default
            ``2 * ping_interval``).
        max_markets_per_subscription: Error 26 beyond this many markets on one subscription.
        command_rate: Commands per second per connection (token bucket refill); error 27 beyond.
        command_burst: Commands a connection may send back to back.
        outbox_limit: Frames queued per connection before the overflowing subscription gets error 25.
        clock_ms: Epoch-ms clock of the engine and of message timestamps (inject a fixed one for
            byte-identical sessions); signature checks always use the real clock.
        key_dir: Directory of ``<key_id>.pub.pem`` files to register at start.
        auth_window_ms: Accepted distance between a signature's timestamp and the real clock.
        balance_micros: Starting cash of accounts opened for keys.
        lifecycle: Settle markets at their close time and list the next event of their series, as a live
            exchange does (checked at every activity step); False leaves closed markets unsettled.
        quick_settle: Close (and so settle) events every 30 to 90 seconds instead of hourly, daily, weekly or
            monthly, for testing settlement; the rule is the same, only the close times are near.
        history_limit: Closed orders, and fills/trades per account and market, the engine keeps (older ones
            are forgotten so a long session's memory stays bounded); None keeps everything.

    Raises:
        ValueError: ``rate`` is negative or not finite, or ``ping_interval`` is negative.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        markets: int = 8,
        rate: float = 0.0,
        open_access: bool = False,
        faults: FaultSpec | str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        ping_interval: float = 10.0,
        ping_timeout: float | None = None,
        max_markets_per_subscription: int = 1000,
        command_rate: float = 50.0,
        command_burst: int = 100,
        outbox_limit: int = 100_000,
        clock_ms: Callable[[], int] | None = None,
        key_dir: str | Path | None = None,
        auth_window_ms: int = 30_000,
        balance_micros: int = DEFAULT_BALANCE_MICROS,
        lifecycle: bool = True,
        quick_settle: bool = False,
        history_limit: int | None = 50_000,
    ) -> None:
        if rate < 0 or not math.isfinite(rate):
            raise ValueError("rate must be a finite number >= 0")
        if ping_interval < 0:
            raise ValueError("ping_interval must be >= 0")
        self.seed = seed
        self.rate = rate
        self.host = host
        self.port = port
        self.limits = SessionLimits(
            max_markets_per_subscription=max_markets_per_subscription,
            command_rate=command_rate,
            command_burst=command_burst,
        )
        self.balance_micros = balance_micros
        self.faults = FaultController(faults, seed=seed)
        self.hub = Hub(self.faults)
        self.clock_ms = clock_ms or _wall_ms
        self.engine = Engine(self.clock_ms, seed=seed, history_limit=history_limit)
        self.feeds = Feeds(self.engine, self.hub)
        self.index_feeds = IndexFeeds(self.hub)
        self.keys = KeyRegistry(window_ms=auth_window_ms)
        self.rejections: Counter[str] = Counter()
        self.rest_controls = RestControls()
        self.ws = WsEndpoint(
            WsSettings(
                open_access=open_access,
                limits=self.limits,
                outbox_limit=outbox_limit,
                ping_interval=ping_interval,
                ping_timeout=ping_timeout if ping_timeout is not None else max(2 * ping_interval, 0.1),
            ),
            hub=self.hub,
            feeds=self.feeds,
            keys=self.keys,
            faults=self.faults,
            account_of=self.account_of,
            before_command=self.flush,
            rejections=self.rejections,
        )
        self._key_accounts: dict[str, str] = {}
        self._accounts: set[str] = set()
        self._key_counter = itertools.count(1)
        self._key_dir = Path(key_dir) if key_dir is not None else None
        self.quick_settle = quick_settle
        self.universe = MarketUniverse.generate(
            seed, markets, now_ms=self.clock_ms(), engine=self.engine, quick=quick_settle
        )
        self.activity = ActivityGenerator(self.engine, seed, universe=self.universe, lifecycle=lifecycle)
        self.cfbenchmarks = IndexWalk(seed + 1, CFB_INDEX_IDS)
        self.pyth = IndexWalk(seed + 2, PYTH_UNDERLYINGS)
        self.flush()
        self.feeds.set_indices("cfbenchmarks_value", CFB_INDEX_IDS)
        self.feeds.set_indices("cfbenchmarks_value_5hz", CFB_5HZ_INDICES)
        self.feeds.set_indices("pyth_value", PYTH_UNDERLYINGS)
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running = asyncio.Event()
        self._running.set()
        self._next_cfb = 0.0
        self._next_5hz = 0.0

    # -- lifecycle --------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind the port and start serving (and the activity loop when ``rate > 0``).

        Raises:
            RuntimeError: Already started.
            OSError: The port cannot be bound.
            KalshiAuthError: ``key_dir`` is missing or holds an unusable key.
        """
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        if self._key_dir is not None:
            for key_id in self.keys.load_directory(self._key_dir):
                self._bind_key(key_id, key_id, self.balance_micros)
        app = web.Application(middlewares=[json_errors])
        app.router.add_route("GET", WS_PATH, self.ws.handle)
        add_rest_routes(app, self)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self.faults.attach(self)
        if self.rate > 0:
            self._tasks.append(asyncio.create_task(self._activity_loop(), name="sim-activity"))
        spec = self.faults.spec
        if spec.refuse is not None:
            self.faults.refuse_handshakes(
                spec.refuse.status, spec.refuse.duration, retry_after=spec.refuse.retry_after, now=time.monotonic()
            )
        if spec.drop_every or spec.drop_one_every or spec.stall_every:
            self._tasks.append(asyncio.create_task(self._fault_loop(), name="sim-faults"))
        log.info("simulator listening on %s (%d markets)", self.url, len(self.tickers))

    async def stop(self) -> None:
        """Stop background tasks, close every connection (1001) and release the port."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.ws.close_all()
        self.faults.attach(None)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # -- addresses --------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the REST and WebSocket base."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}{WS_PATH}"

    @property
    def config(self) -> KalshiConfig:
        """A client configuration pointing at this simulator."""
        return KalshiConfig.local(self.url)

    @property
    def open_access(self) -> bool:
        """Whether unsigned WebSocket connections are accepted (public channels only)."""
        return self.ws.settings.open_access

    @property
    def ping_interval(self) -> float:
        """Seconds between server pings."""
        return self.ws.settings.ping_interval

    @property
    def tickers(self) -> list[str]:
        """Every market ticker, in creation order."""
        return list(self.feeds.all_tickers())

    # -- keys and accounts ------------------------------------------------------------------------------------

    def register_key(
        self,
        key_id: str,
        public_pem: str | bytes,
        *,
        account: str | None = None,
        balance_micros: int | None = None,
    ) -> str:
        """Accept connections signed by this key; they act as ``account`` (default: the key id).

        The account is opened (funded with ``balance_micros``) if it does not exist yet.

        Returns:
            The account id.

        Raises:
            KalshiAuthError: Empty key id or unusable public key.
        """
        self.keys.register(key_id, public_pem)
        return self._bind_key(
            key_id, account or key_id, self.balance_micros if balance_micros is None else balance_micros
        )

    def _bind_key(self, key_id: str, account: str, balance_micros: int) -> str:
        self._key_accounts[key_id] = account
        self.ensure_account(account, balance_micros)
        return account

    def ensure_account(self, account: str, balance_micros: int | None = None) -> None:
        """Open ``account`` in the engine unless it exists."""
        if account not in self._accounts and account not in self.engine.accounts():
            self.do(
                lambda e: e.open_account(account, self.balance_micros if balance_micros is None else balance_micros)
            )
        self._accounts.add(account)

    def create_account_auth(
        self, kind: str = "ed25519", *, balance_micros: int | None = None
    ) -> tuple[KalshiAuth, str]:
        """A fresh key pair registered with the simulator and a funded account behind it.

        Args:
            kind: ``"ed25519"`` (fast) or ``"rsa"``.
            balance_micros: Starting cash (default ``balance_micros`` of the simulator).

        Returns:
            ``(auth, account_id)``: sign with ``auth``; private feeds show ``account_id``'s activity.

        Raises:
            ValueError: Unknown ``kind``.
        """
        if kind not in ("ed25519", "rsa"):
            raise ValueError("kind must be 'ed25519' or 'rsa'")
        n = next(self._key_counter)
        key_id = f"sim-key-{n}"
        private_pem, public_pem = generate_private_key_pem("rsa" if kind == "rsa" else "ed25519")
        auth = KalshiAuth.from_pem(key_id, private_pem)
        account = self.register_key(key_id, public_pem, account=f"account-{n}", balance_micros=balance_micros)
        return auth, account

    def account_of(self, key_id: str) -> str | None:
        """The account a key acts as."""
        return self._key_accounts.get(key_id)

    # -- driving the engine -----------------------------------------------------------------------------------

    def flush(self) -> int:
        """Publish every pending engine event to the subscriptions; returns how many."""
        events = self.engine.drain_events()
        return self.feeds.publish(events) if events else 0

    def do(self, action: Callable[[Engine], T]) -> T:
        """Run ``action(engine)`` and publish what it caused (for RFQs, lifecycle, order groups, ...).

        Raises:
            EngineError: Whatever the engine call raises (its events are published all the same).
        """
        try:
            return action(self.engine)
        finally:
            self.flush()

    def place_order(
        self, account: str, ticker: str, side: BookSide, price_ticks: int, count_units: int, **options: Any
    ) -> OrderResult:
        """Place an order for ``account`` (``side`` ``"bid"``/``"ask"``, YES price ticks, count units).

        ``options`` are the engine's: ``time_in_force``, ``client_order_id``, ``post_only``, ``reduce_only``,
        ``self_trade_prevention``, ``order_group_id``, ``expiration_ms``, ``cancel_order_on_pause``.

        Raises:
            EngineError: The engine refused the order.
        """
        return self.do(lambda e: e.place_order(account, ticker, side, price_ticks, count_units, **options))

    def cancel_order(self, account: str, order_id: str) -> object:
        """Cancel one of ``account``'s orders.

        Raises:
            EngineError: ``order_not_found`` or ``order_not_resting``.
        """
        return self.do(lambda e: e.cancel_order(account, order_id))

    def step(self, n: int = 1) -> int:
        """Run ``n`` actions of seeded market activity now and publish them; returns events published."""
        for _ in range(n):
            self.activity.step()
        return self.flush()

    def tick_indices(self, n: int = 1) -> None:
        """Publish ``n`` rounds of index values (cfbenchmarks, 5 Hz, pyth) from the seeded random walk."""
        for _ in range(n):
            self._publish_indices(five_hz_only=False)

    def book(self, ticker: str) -> Orderbook:
        """The engine's true book now, comparable with ``==`` to a client's view.

        Raises:
            EngineError: ``market_not_found``.
        """
        snap = self.engine.book_snapshot(ticker)
        return Orderbook.from_levels(ticker, snap.yes, snap.no, clock=snap.clock)

    def pause_activity(self) -> None:
        """Stop background activity (no effect on :meth:`step`)."""
        self._running.clear()

    def resume_activity(self) -> None:
        self._running.set()

    async def quiesce(self, max_wait: float = 10.0) -> None:
        """Pause activity and wait until every connection has written all it has queued.

        Clients must keep reading meanwhile (the test client does, in a background task).

        Raises:
            TimeoutError: Still writing after ``max_wait`` seconds (a client that does not read, or a stall).
        """
        self.pause_activity()
        self.flush()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        self.ws.release_held()
        while not self.ws.all_idle():
            if loop.time() > deadline:
                raise TimeoutError("connections still have frames to write; is every client reading?")
            await asyncio.sleep(0.002)

    # -- background loops -------------------------------------------------------------------------------------

    async def _activity_loop(self) -> None:
        rate = self.rate
        while True:
            await self._running.wait()
            start = time.monotonic()
            done = 0
            while self._running.is_set():
                now = time.monotonic()
                due = int((now - start) * rate) - done
                if due > rate:
                    # More than a second behind: drop the backlog instead of bursting to catch up.
                    done += due - int(rate)
                    due = int(rate)
                if due > 0:
                    n = min(due, _MAX_ACTIONS_PER_TICK)
                    for _ in range(n):
                        self.activity.step()
                    self.flush()
                    done += n
                self._indices_if_due(now)
                wait = (done + 1) / rate - (time.monotonic() - start)
                await asyncio.sleep(max(0.0, min(wait, _CFB_5HZ_INTERVAL)))

    def _indices_if_due(self, now: float) -> None:
        if now >= self._next_5hz:
            self._next_5hz = now + _CFB_5HZ_INTERVAL
            # Order expiries and scheduled market opens/closes happen on time even in a quiet market.
            self.do(lambda e: e.advance_time())
            full = now >= self._next_cfb
            if full:
                self._next_cfb = now + _CFB_INTERVAL
            self._publish_indices(five_hz_only=not full)

    def _publish_indices(self, *, five_hz_only: bool) -> None:
        ts = self.clock_ms()
        feeds = self.index_feeds
        for tick in self.cfbenchmarks.step(ts):
            feeds.publish_index(
                tick.index_id, tick.value, tick.source_ts_ms, tick.received_at_ms, per_second=not five_hz_only
            )
        if not five_hz_only:
            for tick in self.pyth.step(ts):
                feeds.publish_pyth(tick.index_id, tick.value, tick.source_ts_ms, tick.received_at_ms)

    async def _fault_loop(self) -> None:
        spec = self.faults.spec
        periods = {
            "drop_all": spec.drop_every,
            "drop_one": spec.drop_one_every,
            "stall": spec.stall_every,
        }
        due = {kind: time.monotonic() + p for kind, p in periods.items() if p}
        while due:
            kind, when = min(due.items(), key=lambda kv: kv[1])
            await asyncio.sleep(max(0.0, when - time.monotonic()))
            due[kind] = time.monotonic() + float(periods[kind] or 0)
            ids = self.connection_ids()
            if kind == "stall":
                if ids:
                    self.faults.stall(spec.stall_for)
                continue
            if ids:
                if kind == "drop_all":
                    self.faults.drop_all()
                else:
                    self.faults.drop()
            if spec.refuse is not None:
                self.faults.refuse_handshakes(
                    spec.refuse.status, spec.refuse.duration, retry_after=spec.refuse.retry_after, now=time.monotonic()
                )

    # -- connections (FaultTarget) ----------------------------------------------------------------------------

    def connection_ids(self) -> Sequence[int]:
        """Ids of the open connections, oldest first."""
        return self.ws.connection_ids()

    def connections(self) -> list[SimConnection]:
        """The open connections, oldest first."""
        return self.ws.connections()

    def connection(self, conn_id: int) -> SimConnection:
        """One open connection.

        Raises:
            KeyError: No such connection.
        """
        return self.ws.connection(conn_id)

    def drop_connection(self, conn_id: int, *, after_messages: int = 0, clean: bool = False) -> None:
        self.connection(conn_id).drop(after_messages=after_messages, clean=clean)

    def stall_connection(self, conn_id: int, duration: float) -> None:
        self.connection(conn_id).stall(duration)

    def overflow_subscription(self, conn_id: int | None, sid: int | None) -> bool:
        return self.ws.overflow_subscription(conn_id, sid)
