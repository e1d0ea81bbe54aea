"""Helpers shared by the tests/test_ws_client_*.py modules (KalshiWebSocket against the simulator).

``settle()`` is the quiescent checkpoint: the simulator writes everything it queued, a ``list_subscriptions``
round trip proves the client's receive path has processed every earlier frame (the server answers in order and
the client handles frames synchronously), and the drains empty their subscriptions' queues.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

from conftest import FAST_RETRIES, eventually, fast_config
from kalshi.models.markets import Orderbook
from kalshi.sim import Simulator
from kalshi.ws import ConnectionState, KalshiWebSocket, Subscription
from kalshi.ws.models import ErrorMessage, OrderbookDeltaMessage, OrderbookSnapshotMessage
from kalshi.ws.orderbook import DeltaResult, OrderbookManager

__all__ = ["FAST_RETRIES", "Drain", "Recorder", "eventually", "fast_config", "session_for", "settle", "until"]

T = TypeVar("T")

until = eventually


class Drain(Generic[T]):
    """Consume a subscription in a background task, optionally slowly, keeping every item."""

    def __init__(self, stream: Subscription[T], *, delay: float = 0.0) -> None:
        self.stream = stream
        self.items: list[T] = []
        self.delay = delay
        self.error: BaseException | None = None
        self.finished = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for item in self.stream:
                self.items.append(item)
                if self.delay:
                    await asyncio.sleep(self.delay)
        except Exception as exc:  # kept for the test to assert on
            self.error = exc
        finally:
            self.finished.set()

    async def wait_for(self, count: int) -> list[T]:
        """Wait until at least ``count`` items arrived."""
        await until(lambda: len(self.items) >= count)
        return self.items

    async def idle(self) -> None:
        """Wait until the subscription's queue is empty and the consumer took the last item."""
        await until(lambda: not self.stream.queue.qsize() or self.finished.is_set())
        await asyncio.sleep(0)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def settle(sim: Simulator, session: KalshiWebSocket, *drains: Drain[Any]) -> None:
    """Quiescent checkpoint: the sim wrote everything and the client processed and delivered it."""
    await sim.quiesce()
    await session.list_subscriptions()
    for drain in drains:
        await drain.idle()


def mismatched_books(sim: Simulator, books: dict[str, Orderbook] | Any, tickers: list[str]) -> list[str]:
    """Tickers whose client book is missing or differs from the simulator's truth.

    Uses ``==`` only: ``Orderbook.__ne__`` is not derived from its ``__eq__`` (see the report).
    """
    bad = []
    for ticker in tickers:
        book = books.get(ticker)
        same = book is not None and book == sim.book(ticker)
        if not same:
            bad.append(ticker)
    return bad


def replay(messages: list[Any]) -> dict[str, Orderbook]:
    """The books a raw consumer builds from an iterator's snapshots and deltas; every delta must apply."""
    manager = OrderbookManager()
    for message in messages:
        if isinstance(message, OrderbookSnapshotMessage):
            manager.apply_snapshot_message(message)
        elif isinstance(message, OrderbookDeltaMessage):
            result = manager.apply_delta_message(message)
            assert result is DeltaResult.APPLIED, (result, message)
    return {ticker: state.view() for ticker, state in manager.books.items() if state.has_snapshot}


def latest_views(views: list[Orderbook]) -> dict[str, Orderbook]:
    out: dict[str, Orderbook] = {}
    for view in views:
        out[view.market_ticker] = view
    return out


class Recorder:
    """on_state_change and on_error hooks that keep what they saw and let tests await a state."""

    def __init__(self) -> None:
        self.transitions: list[tuple[ConnectionState, ConnectionState]] = []
        self.errors: list[ErrorMessage] = []
        self._changed = asyncio.Event()

    async def on_state_change(self, old: ConnectionState, new: ConnectionState) -> None:
        self.transitions.append((old, new))
        self._changed.set()

    async def on_error(self, err: ErrorMessage) -> None:
        self.errors.append(err)
        self._changed.set()

    @property
    def states(self) -> list[ConnectionState]:
        return [new for _, new in self.transitions]

    def codes(self) -> list[int]:
        return [err.msg.code for err in self.errors]

    async def wait_state(self, state: ConnectionState, *, count: int = 1) -> None:
        async with asyncio.timeout(5.0):
            while self.states.count(state) < count:
                self._changed.clear()
                await self._changed.wait()

    async def wait_error(self, code: int) -> ErrorMessage:
        async with asyncio.timeout(5.0):
            while True:
                for err in self.errors:
                    if err.msg.code == code:
                        return err
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def session_for(
    sim: Simulator, *, private: bool = True, **options: Any
) -> AsyncIterator[tuple[KalshiWebSocket, str | None]]:
    """A connected client (signed with a fresh funded account unless ``private`` is False)."""
    auth, account = sim.create_account_auth() if private else (None, None)
    config = options.pop("config", None) or fast_config(sim)
    ws = KalshiWebSocket(auth=auth, config=config, **options)
    async with ws.connect() as session:
        yield session, account
