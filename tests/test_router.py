"""The receive path without sockets: frames fed as bytes reach the subscription (and callbacks) of their sid."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kalshi.ws.backpressure import MessageQueue, OverflowStrategy
from kalshi.ws.flow import FlowControl
from kalshi.ws.models import ErrorMessage, EventLifecycleMessage, TickerMessage, TradeMessage
from kalshi.ws.protocol import ClientProtocol, CommandResponse, GapDetected, ProtocolErrorEvent, ServerError
from kalshi.ws.router import Route, Router
from kalshi.ws.subscription import Chunk, SubscriptionState


class Collaborators:
    """What the router hands on that is not plain data, recorded."""

    def __init__(self) -> None:
        self.answers: list[CommandResponse] = []
        self.gaps: list[tuple[GapDetected, Route | None]] = []
        self.protocol_errors: list[ProtocolErrorEvent] = []
        self.server_errors: list[ServerError] = []
        self.delivered: list[Any] = []

    def answer(self, event: CommandResponse) -> None:
        self.answers.append(event)

    def gap(self, event: GapDetected, route: Route | None) -> None:
        self.gaps.append((event, route))

    def protocol_error(self, event: ProtocolErrorEvent, route: Route | None) -> None:
        self.protocol_errors.append(event)

    def server_error(self, event: ServerError) -> None:
        self.server_errors.append(event)

    def delta(self, state: SubscriptionState, chunk: Chunk, message: Any) -> None:
        self.delivered.append(message)

    def snapshot(self, state: SubscriptionState, chunk: Chunk, message: Any) -> None:
        self.delivered.append(message)


def frame(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def lifecycle(sid: int, seq: int) -> bytes:
    return frame(type="event_lifecycle", sid=sid, seq=seq, msg={"event_ticker": "EV", "title": "t", "subtitle": ""})


@pytest.fixture
def wired() -> tuple[Router, Collaborators, list[BaseException], list[ErrorMessage]]:
    fatal: list[BaseException] = []
    errors: list[ErrorMessage] = []
    router = Router(ClientProtocol(validate_book=False), FlowControl(), fatal.append, errors.append)
    seen = Collaborators()
    router.wire(books=seen, commands=seen, editor=seen)  # type: ignore[arg-type]
    return router, seen, fatal, errors


def state(router: Router, client_id: int, channel: str, sid: int, **queue: Any) -> SubscriptionState:
    subscription = SubscriptionState(client_id, channel, {}, MessageQueue(**{"maxsize": 100, **queue}))
    subscription.chunks = [Chunk(None)]
    router.adopt(subscription)
    router.bind(sid, subscription, subscription.chunks[0])
    return subscription


def pending(queue: MessageQueue[Any]) -> list[Any]:
    return queue.take_all()


def test_a_type_shared_by_two_channels_goes_to_the_subscription_of_its_sid(wired: Any) -> None:
    router, _, _, _ = wired
    v2 = state(router, 1, "market_lifecycle_v2", sid=11)
    mv = state(router, 2, "multivariate_market_lifecycle", sid=12)
    callbacks: dict[str, MessageQueue[Any]] = {
        name: MessageQueue(100, OverflowStrategy.BLOCK)
        for name in ("market_lifecycle_v2", "multivariate_market_lifecycle")
    }
    for name, queue in callbacks.items():
        router.attach_callbacks(name, queue)
    router.receive(lifecycle(12, 1))
    router.receive(lifecycle(11, 1))
    router.receive(lifecycle(12, 2))
    assert [m.sid for m in pending(mv.queue)] == [12, 12] and [m.sid for m in pending(v2.queue)] == [11]
    on_mv = pending(callbacks["multivariate_market_lifecycle"])
    assert [type(m) for m in on_mv] == [EventLifecycleMessage, EventLifecycleMessage] and {m.sid for m in on_mv} == {12}
    assert [m.sid for m in pending(callbacks["market_lifecycle_v2"])] == [11]


def test_an_unrouted_data_frame_reaches_only_its_types_channel_callbacks(wired: Any) -> None:
    router, _, _, _ = wired
    trades = state(router, 1, "trade", sid=5)
    on_trade: MessageQueue[Any] = MessageQueue(10, OverflowStrategy.BLOCK)
    router.attach_callbacks("trade", on_trade)
    late = frame(type="trade", sid=99, seq=1, msg={"market_ticker": "M", "yes_price_dollars": "0.5", "count_fp": "1"})
    router.receive(late)
    assert pending(trades.queue) == [] and [type(m) for m in pending(on_trade)] == [TradeMessage]


def test_ticker_fast_path_and_events_are_handed_on(wired: Any) -> None:
    router, seen, fatal, errors = wired
    ticks = state(router, 1, "ticker", sid=3)
    trades = state(router, 2, "trade", sid=4)
    router.receive(frame(type="ticker", sid=3, msg={"market_ticker": "M", "price_dollars": "0.5"}))
    assert [type(m) for m in pending(ticks.queue)] == [TickerMessage]
    router.receive(
        frame(type="trade", sid=4, seq=1, msg={"market_ticker": "M", "yes_price_dollars": "0.5", "count_fp": "1"})
    )
    router.receive(
        frame(type="trade", sid=4, seq=5, msg={"market_ticker": "M", "yes_price_dollars": "0.5", "count_fp": "1"})
    )
    [(gap, route)] = seen.gaps
    assert (gap.sid, gap.expected, gap.received) == (4, 2, 5) and route is not None and route[0] is trades
    router.receive(b"{not json")
    assert len(seen.protocol_errors) == 1
    router.receive(frame(type="error", sid=4, msg={"code": 25, "msg": "buffer overflow"}))
    assert [e.code for e in seen.server_errors] == [25] and [e.msg.code for e in errors] == [25]
    router.receive(frame(type="ok", id=7, msg={}))
    assert [a.cmd_id for a in seen.answers] == [7]
    assert fatal == [] and router.frames_received == 6


def test_an_error_strategy_overflow_is_fatal(wired: Any) -> None:
    router, _, fatal, _ = wired
    state(router, 1, "ticker", sid=3, maxsize=1, overflow=OverflowStrategy.ERROR)
    for _ in range(2):
        router.receive(frame(type="ticker", sid=3, msg={"market_ticker": "M", "price_dollars": "0.5"}))
    assert len(fatal) == 1


async def test_a_full_block_queue_holds_the_flow_only_if_someone_reads_it(wired: Any) -> None:
    router, _, _, _ = wired
    read = state(router, 1, "trade", sid=4, maxsize=2, overflow=OverflowStrategy.BLOCK)
    read.start_consuming()
    unread = state(router, 2, "fill", sid=6, maxsize=2, overflow=OverflowStrategy.BLOCK)
    router.attach_callbacks("fill", MessageQueue(100, OverflowStrategy.BLOCK))
    for seq in range(1, 5):
        router.receive(
            frame(type="trade", sid=4, seq=seq, msg={"market_ticker": "M", "yes_price_dollars": "0.5", "count_fp": "1"})
        )
    assert read.queue.pressed and read.queue.dropped == 0 and read.queue.qsize() == 4
    for n in range(4):
        router.receive(frame(type="fill", sid=6, msg={"market_ticker": "M", "trade_id": str(n), "order_id": "o"}))
    # Nobody iterates it, but callbacks see every fill: it sheds its oldest instead of stalling the socket.
    assert unread.queue.overflow is OverflowStrategy.DROP_OLDEST and unread.queue.dropped >= 1
