"""The receive path of the streaming client: every frame to the subscription it arrived on, by sid.

One job. The transport calls :meth:`Router.receive` synchronously for every text frame; the router runs the
sans-I/O protocol on it and hands the result on:

* a data message goes to the subscription that owns its ``sid`` (and to the ``@ws.on`` callbacks of *that
  subscription's* channel: ``event_lifecycle`` on a ``multivariate_market_lifecycle`` subscription reaches the
  ``multivariate_market_lifecycle`` callbacks); order book messages of a book-keeping subscription go through the
  :class:`~kalshi.ws.books.BookKeeper` first;
* a data message on no known sid (late after an unsubscribe) reaches only the callbacks of its type's channel
  (:data:`kalshi.ws.codes.TYPE_CHANNEL`);
* command answers go to the :class:`~kalshi.ws.commands.CommandChannel`, gaps and malformed frames to the book
  keeper, server errors ending a subscription to the subscription editor.

No task per frame and no await. Pressure on lossless queues is signalled by the queues themselves (watermarks,
see :mod:`kalshi.ws.flow`), so the hot path does no flow-control check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from kalshi.errors import KalshiBackpressureError
from kalshi.ws.backpressure import MessageQueue, OverflowStrategy
from kalshi.ws.codes import TYPE_CHANNEL
from kalshi.ws.flow import FlowControl
from kalshi.ws.models import ErrorMessage, OrderbookDeltaMessage, OrderbookSnapshotMessage, TickerMessage
from kalshi.ws.models._numbers import PRICE_CACHE
from kalshi.ws.protocol import (
    AwaitingSnapshotDropped,
    ClientProtocol,
    CommandResponse,
    DuplicateDropped,
    GapDetected,
    ProtocolErrorEvent,
    ProtocolEvent,
    ServerError,
)
from kalshi.ws.subscription import Chunk, SubscriptionState

if TYPE_CHECKING:
    from kalshi.ws.books import BookKeeper
    from kalshi.ws.commands import CommandChannel
    from kalshi.ws.editing import SubscriptionEditor

__all__ = ["Route", "Router"]

logger = logging.getLogger(__name__)

Route = tuple[SubscriptionState, Chunk]
_Bound = tuple[SubscriptionState, Chunk, Callable[[Any], bool], Callable[[Any, Any], bool] | None]
_BLOCK: Final = OverflowStrategy.BLOCK
_DROP_OLDEST: Final = OverflowStrategy.DROP_OLDEST


class Router:
    """Routes decoded frames by sid (see the module docstring).

    Args:
        proto: the session's protocol (its :meth:`~kalshi.ws.protocol.ClientProtocol.receiver` runs here).
        flow: held by BLOCK queues at their high watermark.
        on_fatal: called with the error when an ERROR-strategy queue overflows (the session ends).
        emit_error: hands a server ``error`` that answers no command to ``on_error``.
        tap: ``fn(frame, receive_ns)`` called first for every frame (recorders), or None.
    """

    def __init__(
        self,
        proto: ClientProtocol,
        flow: FlowControl,
        on_fatal: Callable[[BaseException], None],
        emit_error: Callable[[ErrorMessage], None],
        tap: Callable[[bytes, int], None] | None = None,
    ) -> None:
        self._proto = proto
        self._parts = proto.receive_parts()
        self._emit_error = emit_error
        self._flow = flow
        self._on_fatal = on_fatal
        self._tap = tap
        # sid -> (state, chunk, the queue's put_nowait, its put_keyed for a CONFLATE queue else None)
        self._routes: dict[int, _Bound] = {}
        self._callback_queues: dict[str, MessageQueue[Any]] = {}
        self._states: dict[int, SubscriptionState] = {}
        self._books: BookKeeper | None = None
        self._commands: CommandChannel | None = None
        self._editor: SubscriptionEditor | None = None
        self._book_delta: Callable[[SubscriptionState, Chunk, Any], None] = self._no_books
        self.receive, self._count = self._build_receive(0)
        """Process one frame (the transport's frame callback)."""

    def __repr__(self) -> str:
        return f"Router(routes={sorted(self._routes)}, frames={self._count()})"

    def wire(self, *, books: BookKeeper, commands: CommandChannel, editor: SubscriptionEditor) -> None:
        """Connect the collaborators that take what is not plain data."""
        self._books = books
        self._commands = commands
        self._editor = editor
        self._book_delta = books.delta
        self.receive, self._count = self._build_receive(self._count())

    # ------------------------------------------------------------------ routes

    def route(self, sid: int | None) -> Route | None:
        bound = self._routes.get(sid) if sid is not None else None
        return None if bound is None else (bound[0], bound[1])

    @property
    def tapping(self) -> bool:
        """Whether an ``on_raw_frame`` tap sees every frame (``tap_only`` subscriptions need one)."""
        return self._tap is not None

    def bind(self, sid: int, state: SubscriptionState, chunk: Chunk) -> None:
        chunk.sid = sid
        queue = state.queue
        keyed = queue.put_keyed if queue.overflow is OverflowStrategy.CONFLATE and not state.views else None
        self._routes[sid] = (state, chunk, queue.put_nowait, keyed)
        if state.tap_only:
            self._proto.tapped_sids.add(sid)

    def unbind(self, sid: int | None) -> Route | None:
        if sid is None:
            return None
        self._proto.tapped_sids.discard(sid)
        bound = self._routes.pop(sid, None)
        return None if bound is None else (bound[0], bound[1])

    def clear(self) -> None:
        """Forget every sid (a new connection has new ones)."""
        self._routes.clear()
        self._proto.tapped_sids.clear()

    def adopt(self, state: SubscriptionState) -> None:
        """A new subscription: give it its channel's callbacks and watch its lossless queue."""
        self._states[state.client_id] = state
        if state.tap_only:
            return  # nothing decoded, nothing for callbacks
        state.callbacks = self._callback_queues.get(state.channel)
        queue = state.queue
        if queue.overflow is _BLOCK:
            queue.watch_pressure(lambda: self._pressure(state), lambda: self._flow.release(queue))

    def forget(self, state: SubscriptionState) -> None:
        self._states.pop(state.client_id, None)
        for chunk in state.chunks:
            route = self._routes.get(chunk.sid) if chunk.sid is not None else None
            if route is not None and route[0] is state:
                self.unbind(route[1].sid)
        self._flow.release(state.queue)

    def attach_callbacks(self, channel: str, queue: MessageQueue[Any]) -> None:
        """``@ws.on(channel)`` callbacks exist: copy that channel's messages to ``queue`` (lossless)."""
        self._callback_queues[channel] = queue
        queue.watch_pressure(lambda: self._flow.hold(queue), lambda: self._flow.release(queue))
        for state in self._states.values():
            if state.channel == channel and not state.tap_only:
                state.callbacks = queue

    def detach_callbacks(self) -> None:
        """The callback runners stopped (session end)."""
        self._callback_queues.clear()
        for state in self._states.values():
            state.callbacks = None

    # ------------------------------------------------------------------ receive path (hot)

    @property
    def frames_received(self) -> int:
        """Frames received over every connection."""
        return self._count()

    def _build_receive(self, frames: int) -> tuple[Callable[[bytes], None], Callable[[], int]]:
        """The frame callback, built as one closure: the protocol's common case (an in-order delta, a ticker;
        see :class:`~kalshi.ws.protocol.ReceiveParts`), the route and the queue, in one Python call per frame.
        Its state lives in local cells, not instance attributes: this runs once per frame."""
        parts = self._parts
        decode = parts.decode
        errors = parts.decode_errors
        last_seqs = parts.last_seqs
        decoded = parts.decoded
        undecodable = parts.undecodable
        tapped = parts.tapped_sids
        receive_whole = parts.receive
        fast_deltas = not parts.validate_book
        routes = self._routes
        tap = self._tap
        other = self._other
        fatal = self._on_fatal
        delta_class = OrderbookDeltaMessage
        ticker_class = TickerMessage
        prices = PRICE_CACHE
        now_ns = time.time_ns
        book_delta = self._book_delta

        def receive(data: bytes) -> None:
            # Class identity checks: a failing isinstance() on a msgspec Struct is slow.
            nonlocal frames
            frames += 1
            if tap is not None:
                tap(data, now_ns())
                if tapped:
                    return other(receive_whole(data))
            try:
                result: Any = decode(data)
            except errors as exc:
                return other(undecodable(data, exc))
            cls = result.__class__
            if cls is delta_class:
                sid = result.sid
                seq = result.seq
                try:
                    route = routes[sid]
                    in_order = seq == last_seqs[sid] + 1  # False for a missing seq
                except KeyError:  # no route, or no seq base yet: the protocol decides
                    in_order = False
                if not in_order or not fast_deltas:
                    return other(decoded(data, result))
                last_seqs[sid] = seq
                state = route[0]
                # Straight to the queue only for a raw stream without books, nothing held back, and a price seen
                # (so checked) before; everything else goes through the book keeper. The size is not looked up
                # here: its parse cache is large (a lookup that misses the CPU cache costs more than the rest of
                # this function); a raw consumer's own delta_units() checks it, and a book-keeping stream's
                # book does.
                if not state.plain or state.stale or result.msg.price_dollars not in prices:
                    return book_delta(state, route[1], result)
                put = route[2]
            elif cls is ticker_class:
                try:
                    route = routes[result.sid]
                except KeyError:
                    return other(result)
                state = route[0]
                keyed = route[3]
                if keyed is not None:
                    keyed(result.msg.market_ticker, result)  # CONFLATE: never raises
                    callbacks = state.callbacks
                    if callbacks is not None:
                        callbacks.put_nowait(result)
                    return None
                put = route[2]
            else:
                return other(decoded(data, result))
            try:
                put(result)
            except KalshiBackpressureError as exc:
                return fatal(exc)
            callbacks = state.callbacks
            if callbacks is not None:
                callbacks.put_nowait(result)
            return None

        def count() -> int:
            return frames

        return receive, count

    @staticmethod
    def _no_books(state: SubscriptionState, chunk: Chunk, message: Any) -> None:
        raise AssertionError("Router.wire() was not called")

    def deliver(self, state: SubscriptionState, message: Any) -> None:
        """Hand one message to a subscription's queue and its channel's callbacks."""
        try:
            state.queue.put_nowait(message)
        except KalshiBackpressureError as exc:
            self._on_fatal(exc)
            return
        callbacks = state.callbacks
        if callbacks is not None:
            callbacks.put_nowait(message)

    def _other(self, result: Any) -> None:
        if result is None:
            return  # an in-order frame of a tap_only subscription: the tap had it
        if isinstance(result, ProtocolEvent):
            self._event(result)
            return
        route = self._routes.get(result.sid) if result.sid is not None else None
        if route is None:
            # A data message for a sid we no longer route (e.g. late after unsubscribe): callbacks only.
            channel = TYPE_CHANNEL.get(getattr(result, "type", ""), "")
            queue = self._callback_queues.get(channel)
            if queue is not None:
                queue.put_nowait(result)
            return
        cls = result.__class__
        if cls is OrderbookSnapshotMessage or cls is OrderbookDeltaMessage:
            books = self._books
            assert books is not None
            if cls is OrderbookSnapshotMessage:
                books.snapshot(route[0], route[1], result)
            else:
                books.delta(route[0], route[1], result)
        else:
            self.deliver(route[0], result)

    def _event(self, event: ProtocolEvent) -> None:
        cls = event.__class__
        if cls is DuplicateDropped or cls is AwaitingSnapshotDropped:
            return
        books, commands, editor = self._books, self._commands, self._editor
        assert books is not None and commands is not None and editor is not None
        if cls is CommandResponse:
            commands.answer(event)  # type: ignore[arg-type]  # narrowed by the class check
        elif cls is GapDetected:
            books.gap(event, self.route(event.sid))  # type: ignore[attr-defined, arg-type]
        elif cls is ServerError:
            self._emit_error(event.message)  # type: ignore[attr-defined]
            editor.server_error(event)  # type: ignore[arg-type]
        elif cls is ProtocolErrorEvent:
            books.protocol_error(event, self.route(event.sid))  # type: ignore[attr-defined, arg-type]

    # ------------------------------------------------------------------ pressure

    def _pressure(self, state: SubscriptionState) -> None:
        """A BLOCK subscription queue reached its high watermark."""
        if state.consumed or state.callbacks is None:
            self._flow.hold(state.queue)
            return
        # Callback-style use (seed 000): the subscription was made only to start the feed and nobody iterates it.
        # Never stall the socket for it; its callbacks still get every message, its iterator sheds the oldest.
        if not state.warned_unconsumed:
            state.warned_unconsumed = True
            logger.warning(
                "subscription %s (%s) is not being iterated and its queue is full: its iterator now drops the "
                "oldest messages (callbacks still get every one)",
                state.client_id,
                state.channel,
            )
        state.queue.set_overflow(_DROP_OLDEST)
