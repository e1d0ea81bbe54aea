"""The book keeper of the streaming client: order book messages in, exact books and gap repair out.

One job: keep every book-keeping subscription's books (``orderbook()`` and ``keep_books=True``) exact and keep raw
order book streams consistent. It applies snapshots and deltas (:mod:`kalshi.ws.orderbook`), yields views, and
when continuity breaks (a seq gap, a delta that does not apply, a malformed frame) it hides the affected books,
publishes :class:`~kalshi.ws.lifecycle.Gap`, re-snapshots just those markets with ``get_snapshot`` and publishes
:class:`~kalshi.ws.lifecycle.Repaired` when their fresh snapshot arrived. A raw stream without books is repaired
the same way: a market's deltas are held back between its gap and its fresh snapshot.

Latest-wins and event channels cannot be replayed over the WebSocket: their gaps are delivered, counted and
reported (``on_error`` code 1002, and a Gap event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Final

from kalshi.errors import KalshiConnectionError, KalshiError, KalshiProtocolError
from kalshi.models.markets import Orderbook
from kalshi.ws.codes import ClientErrorCode
from kalshi.ws.commands import CommandChannel
from kalshi.ws.lifecycle import Gap, LifecycleBus, Repaired
from kalshi.ws.models import OrderbookDeltaMessage, OrderbookSnapshotMessage
from kalshi.ws.models._numbers import DELTA_CACHE, PRICE_CACHE
from kalshi.ws.orderbook import BookError, DeltaResult, OrderbookState
from kalshi.ws.protocol import ClientProtocol, GapDetected, ProtocolErrorEvent
from kalshi.ws.router import Route, Router
from kalshi.ws.subscription import BooksView, Chunk, SubscriptionState

__all__ = ["BookKeeper"]

logger = logging.getLogger(__name__)

_APPLIED: Final = DeltaResult.APPLIED

Report = Callable[[int, str, int | None], None]
Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]
Reissue = Callable[[SubscriptionState, Chunk], Coroutine[Any, Any, None]]


class BookKeeper:
    """Books, views and gap repair (see the module docstring).

    Args:
        proto: the session's protocol (sequence re-basing on repair).
        router: delivers messages and knows the routes.
        commands: sends ``get_snapshot``.
        bus: where Gap and Repaired go.
        report: ``(code, text, sid)`` reports a client error to ``on_error``.
        spawn: runs a repair as a kept task.
        reissue: re-subscribes a chunk whose repair failed (the subscription editor's).
        states: every live subscription state (for :attr:`books`).
    """

    def __init__(
        self,
        proto: ClientProtocol,
        router: Router,
        commands: CommandChannel,
        bus: LifecycleBus,
        report: Report,
        spawn: Spawn,
        reissue: Reissue,
        states: Iterable[SubscriptionState],
    ) -> None:
        self._proto = proto
        self._router = router
        self._commands = commands
        self._bus = bus
        self._report = report
        self._spawn = spawn
        self._reissue = reissue
        self._waiters: dict[str, list[asyncio.Future[Orderbook]]] = {}
        self._closing = False
        self._states = states
        self.view = BooksView(states)

    def __repr__(self) -> str:
        return f"BookKeeper(books={len(self.view)}, waiters={len(self._waiters)})"

    def open(self) -> None:
        self._closing = False

    # ------------------------------------------------------------------ receive path

    def delta(self, state: SubscriptionState, chunk: Chunk, message: OrderbookDeltaMessage) -> None:
        books = state.books
        if state.views and books is not None:
            # orderbook() views, the hot case: apply to the ready book and queue the book itself (conflated per
            # market; the consumer takes the view). Anything unusual takes the general path below.
            body = message.msg
            ticker = body.market_ticker
            book = books.get(ticker)
            seq = message.seq
            if book is not None and (seq is None or (book.last_seq or 0) < seq):
                # Numbers seen before come from the parse caches without a call; new ones are parsed (and
                # checked) by the payload's own methods.
                price = PRICE_CACHE.get(body.price_dollars)  # type: ignore[arg-type]  # None: a miss
                units = DELTA_CACHE.get(body.delta_fp)  # type: ignore[arg-type]  # None: a miss
                try:
                    result = book.apply_delta(
                        body.side,
                        body.price_ticks() if price is None else price,
                        body.delta_units() if units is None else units,
                        seq=seq,
                        clock=body.clock,
                    )
                except KalshiProtocolError:
                    result = None  # reported by the general path
                if result is _APPLIED:
                    state.queue.put_keyed(ticker, book)
                    if state.callbacks is not None:
                        state.callbacks.put_nowait(message)
                    if self._waiters:
                        self._wake(ticker, book)
                    return
                if result is not None:
                    self._rejected(state, chunk, ticker, result)
                    return
        if books is None:
            body = message.msg
            if state.stale and body.market_ticker in state.stale:
                return  # held back until the market's fresh snapshot
            # Numbers seen before were checked then (the parse caches hold only valid ones): new ones only.
            if body.price_dollars not in PRICE_CACHE or body.delta_fp not in DELTA_CACHE:
                try:
                    body.price_ticks()
                    body.delta_units()
                except KalshiProtocolError as exc:
                    self._broken(state, chunk, body.market_ticker, ClientErrorCode.PROTOCOL, f"bad delta: {exc}")
                    return
            self._router.deliver(state, message)
            return
        try:
            result = books.apply_delta_message(message)
        except KalshiProtocolError as exc:
            # Its seq was counted, so no gap will show: the book misses this change, repair it.
            self._broken(state, chunk, message.msg.market_ticker, ClientErrorCode.PROTOCOL, f"bad delta: {exc}")
            return
        if result is not _APPLIED:
            self._rejected(state, chunk, message.msg.market_ticker, result)
            return
        if state.views or self._waiters:
            self._updated(state, message.msg.market_ticker, message)
        else:
            self._router.deliver(state, message)

    def snapshot(self, state: SubscriptionState, chunk: Chunk, message: OrderbookSnapshotMessage) -> None:
        ticker = message.msg.market_ticker
        if message.id:
            self._commands.snapshot_arrived(message.id, ticker)
        books = state.books
        if books is None:
            if ticker in state.stale:
                state.stale.discard(ticker)
                self._bus.publish(Repaired(state.channel, chunk.sid, (ticker,)))
            self._router.deliver(state, message)
            return
        before = books.get(ticker)
        was_stale = before is not None and before.stale
        try:
            books.apply_snapshot_message(message)
        except (BookError, KalshiProtocolError) as exc:
            why = f"bad snapshot: {exc}"
            self._broken(state, chunk, ticker, ClientErrorCode.PROTOCOL, why, again=not message.id)
            return
        if was_stale:
            self._bus.publish(Repaired(state.channel, chunk.sid, (ticker,)))
        self._updated(state, ticker, message)

    def _updated(self, state: SubscriptionState, ticker: str, message: Any) -> None:
        book = state.books.get(ticker) if state.books is not None else None
        if book is None:
            return
        if not state.views:
            self._router.deliver(state, message)
        else:
            state.queue.put_nowait(book)  # CONFLATE per market; the iterator takes the view (see Subscription)
            if state.callbacks is not None:
                state.callbacks.put_nowait(message)
        if self._waiters:
            self._wake(ticker, book)

    def _wake(self, ticker: str, book: OrderbookState) -> None:
        waiters = self._waiters.get(ticker)
        if waiters:
            view = book.view()
            for future in waiters:
                if not future.done():
                    future.set_result(view)
            waiters.clear()

    def _rejected(self, state: SubscriptionState, chunk: Chunk, ticker: str, result: DeltaResult) -> None:
        if result is DeltaResult.DUPLICATE:
            return
        state.stats.stale_drops += 1
        books = state.books
        broken = books.get(ticker) if books is not None else None
        if result is DeltaResult.NO_SNAPSHOT and broken is not None and broken.stale:
            return  # repair in flight: its snapshot will rebuild the book
        # An inapplicable delta means our book disagrees with the exchange: repair it.
        self._broken(state, chunk, ticker, ClientErrorCode.GAP, f"delta not applicable ({result.name})")

    def _broken(
        self, state: SubscriptionState, chunk: Chunk, ticker: str, code: int, why: str, *, again: bool = True
    ) -> None:
        """One market's book cannot be trusted: hide it (stale) and re-snapshot that market alone."""
        self._report(code, f"{state.channel} {ticker}: {why}", chunk.sid)
        state.mark_stale([ticker])
        self._bus.publish(
            Gap(state.channel, chunk.sid, markets=(ticker,), reason="bad_book_update", subscription=state.client_id)
        )
        if again:  # never in a loop of bad answers to our own request
            self._repair(state, chunk, [ticker])

    # ------------------------------------------------------------------ gaps

    def gap(self, gap: GapDetected, route: Route | None) -> None:
        """``seq`` skipped numbers on a sid."""
        if route is None:
            return
        state, chunk = route
        state.stats.gaps += 1
        logger.info("seq gap on sid %s (%s): expected %s, got %s", gap.sid, state.channel, gap.expected, gap.received)
        markets = tuple(chunk.markets or ())
        self._bus.publish(
            Gap(
                state.channel,
                gap.sid,
                gap.expected,
                gap.received,
                markets,
                reason="seq_gap",
                subscription=state.client_id,
            )
        )
        if state.book_mode is not None:
            if chunk.markets:
                state.mark_stale(chunk.markets)
                self._repair(state, chunk, list(chunk.markets), whole_sid=True)
            return
        # Latest-wins or event channels cannot be replayed over the WebSocket: deliver, count and tell.
        lost = gap.received - gap.expected
        self._report(ClientErrorCode.GAP, f"{lost} message(s) lost on {state.channel}", gap.sid)
        self._router.deliver(state, gap.message)

    def protocol_error(self, event: ProtocolErrorEvent, route: Route | None) -> None:
        """A frame could not be used; on a book sid every market of the sid is re-snapshotted."""
        self._report(ClientErrorCode.PROTOCOL, str(event.error), event.sid)
        if route is None:
            return
        state, chunk = route
        if state.book_mode is not None and chunk.markets:
            state.mark_stale(chunk.markets)
            self._bus.publish(
                Gap(
                    state.channel,
                    chunk.sid,
                    markets=tuple(chunk.markets),
                    reason="protocol_error",
                    subscription=state.client_id,
                )
            )
            self._repair(state, chunk, list(chunk.markets), whole_sid=True)

    def reconnecting(self, state: SubscriptionState) -> None:
        """A reconnect: every book of ``state`` restarts from its new subscription's snapshots."""
        markets = state.markets
        if state.book_mode is not None and markets:
            state.mark_stale(markets)
            self._bus.publish(
                Gap(state.channel, None, markets=tuple(markets), reason="reconnect", subscription=state.client_id)
            )

    def _repair(self, state: SubscriptionState, chunk: Chunk, tickers: list[str], *, whole_sid: bool = False) -> None:
        """Re-snapshot stale markets. ``whole_sid`` (a seq gap: every market of the sid is stale) also re-bases
        the sid's sequence; a single bad market must not do that, or the healthy markets would lose deltas."""
        if chunk.sid is None or not self._commands.connected:
            return  # the reconnect path re-bootstraps every book
        tickers = [t for t in tickers if chunk.markets is None or t in chunk.markets]
        if not tickers:
            return
        if whole_sid:
            self._proto.reset_sequence(chunk.sid)
        state.stats.repairs += 1
        self._spawn(self._repair_async(state, chunk, tickers))

    async def _repair_async(self, state: SubscriptionState, chunk: Chunk, tickers: list[str]) -> None:
        sid = chunk.sid
        if sid is None or self._closing:
            return
        try:
            await self._commands.get_snapshot(sid, tickers)
        except KalshiError as exc:
            if self._closing or not self._commands.connected:
                return  # reconnecting (or closing) re-bootstraps every book anyway
            if chunk not in state.chunks or state not in self._states:
                return  # unsubscribed, or these markets removed, meanwhile: subscribing them again would revive them
            logger.warning("get_snapshot on sid %s failed (%s); resubscribing the chunk", sid, exc)
            # Unsubscribed, the chunk's other books stop following the exchange too: hidden until their snapshots.
            others = [t for t in chunk.markets or () if t not in tickers]
            if others:
                state.mark_stale(others)
                self._bus.publish(
                    Gap(state.channel, sid, markets=tuple(others), reason="resubscribe", subscription=state.client_id)
                )
            with contextlib.suppress(KalshiError):
                await self._commands.request(self._proto.send_unsubscribe([sid]))
            self._router.unbind(sid)
            chunk.sid = None
            await self._reissue(state, chunk)

    # ------------------------------------------------------------------ waiting

    async def wait_for_book(self, ticker: str, *, after_version: int | None = None) -> Orderbook:
        """Wait for the next update of a maintained book (or return it at once if newer than ``after_version``).

        Raises:
            KalshiConnectionError: the session closed while waiting.
        """
        if self._closing:
            raise KalshiConnectionError("not connected: use `async with ws.connect() as session:` first")
        if after_version is not None:
            current = self.view.get(ticker)
            if current is not None and current.version > after_version:
                return current
        future: asyncio.Future[Orderbook] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(ticker, []).append(future)
        try:
            return await future
        finally:
            waiters = self._waiters.get(ticker)
            if waiters and future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self._waiters[ticker]

    def close(self) -> None:
        """The session ended: fail every waiter."""
        self._closing = True
        for waiters in self._waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(KalshiConnectionError("the session closed while waiting for a book"))
        self._waiters.clear()
