"""Flow control without sockets: BLOCK queues signal their high and low watermarks once each (no per-message
toggling), and FlowControl pauses the connection while any queue holds it and never while a command waits."""

from __future__ import annotations

import asyncio

import pytest

from kalshi.errors import KalshiConfigError
from kalshi.ws.backpressure import MessageQueue, OverflowStrategy
from kalshi.ws.flow import FlowControl


class FakeConnection:
    """The part of kalshi.ws.transport.Connection that FlowControl uses."""

    def __init__(self) -> None:
        self.paused = False
        self.closed = False
        self.pauses = 0
        self.resumes = 0

    def pause_reading(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        self.paused = False
        self.resumes += 1


class Signals:
    def __init__(self, queue: MessageQueue[int]) -> None:
        self.events: list[tuple[str, int]] = []
        queue.watch_pressure(
            lambda: self.events.append(("high", queue.qsize())), lambda: self.events.append(("low", queue.qsize()))
        )


def test_high_once_at_maxsize_low_once_at_the_low_watermark() -> None:
    queue: MessageQueue[int] = MessageQueue(10, OverflowStrategy.BLOCK)
    signals = Signals(queue)
    for n in range(10):
        queue.put_nowait(n)
    assert signals.events == []  # full, but nobody put into a full queue yet
    for n in range(10, 40):
        assert queue.put_nowait(n)  # BLOCK never refuses: the overshoot is the producer's to bound
    assert signals.events == [("high", 10)]
    taken = [queue.get_nowait() for _ in range(34)]
    assert taken == list(range(34)) and signals.events == [("high", 10)]  # 6 left: above the low watermark
    queue.get_nowait()
    assert signals.events == [("high", 10), ("low", 5)]
    assert not queue.pressed and queue.dropped == 0


def test_a_consumer_at_the_edge_does_not_toggle_per_message() -> None:
    queue: MessageQueue[int] = MessageQueue(100, OverflowStrategy.BLOCK)
    signals = Signals(queue)
    for n in range(150):
        queue.put_nowait(n)
    for n in range(10_000):  # one in, one out, hovering around the high watermark
        queue.get_nowait()
        queue.put_nowait(n)
    assert signals.events == [("high", 100)]


def test_close_releases_and_low_water_is_configurable() -> None:
    queue: MessageQueue[int] = MessageQueue(4, OverflowStrategy.BLOCK)
    events: list[str] = []
    queue.watch_pressure(lambda: events.append("high"), lambda: events.append("low"), low_water=3)
    for n in range(5):
        queue.put_nowait(n)
    queue.get_nowait()
    assert events == ["high"]
    queue.get_nowait()
    assert events == ["high", "low"]
    for n in range(5):
        queue.put_nowait(n)
    queue.close()
    assert events == ["high", "low", "high", "low"]
    with pytest.raises(KalshiConfigError):
        MessageQueue(4, OverflowStrategy.DROP_OLDEST).watch_pressure(lambda: None, lambda: None)
    with pytest.raises(KalshiConfigError):
        MessageQueue(4, OverflowStrategy.BLOCK).watch_pressure(lambda: None, lambda: None, low_water=4)


def test_shedding_a_block_queue_counts_what_it_drops() -> None:
    queue: MessageQueue[int] = MessageQueue(3, OverflowStrategy.BLOCK)
    for n in range(6):
        queue.put_nowait(n)
    queue.set_overflow(OverflowStrategy.DROP_OLDEST)
    assert queue.dropped == 3 and [queue.get_nowait() for _ in range(3)] == [3, 4, 5]


def test_batches_take_everything_pending_once() -> None:
    queue: MessageQueue[int] = MessageQueue(10, OverflowStrategy.BLOCK)
    events: list[str] = []
    queue.watch_pressure(lambda: events.append("high"), lambda: events.append("low"))
    for n in range(12):
        queue.put_nowait(n)
    assert queue.take_all() == list(range(12)) and events == ["high", "low"] and queue.delivered == 12


async def test_flow_pauses_after_the_current_read_and_resumes_when_released() -> None:
    flow = FlowControl()
    conn = FakeConnection()
    flow.use(conn)  # type: ignore[arg-type]
    flow.hold("a")
    flow.hold("b")
    assert not conn.paused  # not in the middle of a read: after the frames already read
    await asyncio.sleep(0)
    assert conn.paused and flow.pauses == 1
    flow.release("a")
    assert conn.paused  # b still holds it
    flow.release("b")
    assert not conn.paused and conn.resumes == 1


async def test_flow_never_pauses_while_a_command_waits() -> None:
    flow = FlowControl()
    conn = FakeConnection()
    flow.use(conn)  # type: ignore[arg-type]
    flow.hold("queue")
    await asyncio.sleep(0)
    assert conn.paused
    flow.command_started()
    assert not conn.paused  # the answer arrives on this socket
    await asyncio.sleep(0)
    assert not conn.paused
    flow.command_finished()
    await asyncio.sleep(0)
    assert conn.paused  # re-applied: the queue still holds it
    flow.clear()
    assert not conn.paused


async def test_a_new_connection_is_paused_again_while_held() -> None:
    flow = FlowControl()
    first, second = FakeConnection(), FakeConnection()
    flow.use(first)  # type: ignore[arg-type]
    flow.hold("queue")
    await asyncio.sleep(0)
    flow.use(second)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert second.paused


def test_put_keyed_conflates_like_put_nowait() -> None:
    queue: MessageQueue[tuple[str, int]] = MessageQueue(2, OverflowStrategy.CONFLATE, conflate_key=lambda item: item[0])
    for item in (("a", 1), ("b", 1), ("a", 2)):
        queue.put_keyed(item[0], item)
    queue.put_keyed("c", ("c", 1))  # full of distinct keys: the oldest is evicted
    assert queue.take_all() == [("b", 1), ("c", 1)] and queue.conflated == 1 and queue.dropped == 1
    with pytest.raises(KalshiConfigError):
        MessageQueue(2).put_keyed("a", 1)
