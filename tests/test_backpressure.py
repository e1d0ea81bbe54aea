"""Tests for kalshi.ws.backpressure: MessageQueue and its overflow strategies."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kalshi.errors import KalshiBackpressureError, KalshiConfigError, KalshiError
from kalshi.ws.backpressure import MessageQueue, OverflowStrategy, QueueClosed


@dataclass(frozen=True)
class Tick:
    market: str
    value: int


def by_market(tick: Tick) -> str:
    return tick.market


def conflating(maxsize: int = 10) -> MessageQueue[Tick]:
    return MessageQueue(maxsize, OverflowStrategy.CONFLATE, conflate_key=by_market)


def drain(queue: MessageQueue[object]) -> list[object]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


async def settle() -> None:
    """Let every ready callback and task step run."""
    for _ in range(5):
        await asyncio.sleep(0)


# -- construction --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"maxsize": 0}, "maxsize"),
        ({"maxsize": -3}, "maxsize"),
        ({"maxsize": True}, "maxsize"),
        ({"maxsize": 1.5}, "maxsize"),
        ({"overflow": "drop_oldest"}, "OverflowStrategy"),
        ({"overflow": OverflowStrategy.CONFLATE}, "needs conflate_key"),
        ({"overflow": OverflowStrategy.DROP_OLDEST, "conflate_key": by_market}, "only used with"),
    ],
)
def test_bad_construction(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(KalshiConfigError, match=match):
        MessageQueue(**kwargs)  # type: ignore[arg-type]


def test_defaults() -> None:
    queue: MessageQueue[int] = MessageQueue()
    assert queue.maxsize == 1000
    assert queue.overflow is OverflowStrategy.DROP_OLDEST
    assert (queue.qsize(), queue.empty(), queue.is_full, queue.closed) == (0, True, False, False)
    assert (queue.delivered, queue.dropped, queue.conflated) == (0, 0, 0)
    assert repr(queue) == "MessageQueue(open, 0/1000, DROP_OLDEST, delivered=0, dropped=0, conflated=0)"


# -- strategies ----------------------------------------------------------------------------------------------


def test_drop_oldest_keeps_newest() -> None:
    queue: MessageQueue[int] = MessageQueue(3)
    assert [queue.put_nowait(i) for i in range(5)] == [True, True, True, False, False]
    assert queue.is_full
    assert queue.dropped == 2
    assert drain(queue) == [2, 3, 4]  # type: ignore[arg-type]
    assert queue.delivered == 3


def test_error_strategy_refuses_when_full() -> None:
    queue: MessageQueue[int] = MessageQueue(2, OverflowStrategy.ERROR)
    assert queue.put_nowait(1) and queue.put_nowait(2)
    with pytest.raises(KalshiBackpressureError, match="consumer is too slow"):
        queue.put_nowait(3)
    assert queue.dropped == 1
    assert queue.qsize() == 2
    assert queue.get_nowait() == 1
    assert queue.put_nowait(4)
    assert drain(queue) == [2, 4]  # type: ignore[arg-type]


def test_conflate_replaces_in_place_at_any_fill_level() -> None:
    queue = conflating(10)
    for tick in [Tick("A", 1), Tick("B", 1), Tick("A", 2), Tick("C", 1), Tick("B", 2), Tick("A", 3)]:
        assert queue.put_nowait(tick)
    # A keeps the first position, with its newest value; the queue holds one message per key.
    assert queue.qsize() == 3
    assert queue.conflated == 3
    assert drain(queue) == [Tick("A", 3), Tick("B", 2), Tick("C", 1)]  # type: ignore[arg-type]
    # Once delivered, a key starts a fresh entry at the back.
    queue.put_nowait(Tick("C", 2))
    queue.put_nowait(Tick("A", 4))
    assert drain(queue) == [Tick("C", 2), Tick("A", 4)]  # type: ignore[arg-type]
    assert queue.dropped == 0
    assert queue.delivered == 5


def test_conflate_full_of_distinct_keys_drops_oldest() -> None:
    queue = conflating(2)
    assert queue.put_nowait(Tick("A", 1))
    assert queue.put_nowait(Tick("B", 1))
    assert not queue.put_nowait(Tick("C", 1))
    assert queue.put_nowait(Tick("B", 2))  # full, but B is pending: replaced, nothing lost
    assert (queue.dropped, queue.conflated, queue.qsize()) == (1, 1, 2)
    assert drain(queue) == [Tick("B", 2), Tick("C", 1)]  # type: ignore[arg-type]


def test_block_accepts_past_maxsize_and_signals_full() -> None:
    queue: MessageQueue[int] = MessageQueue(2, OverflowStrategy.BLOCK)
    assert all(queue.put_nowait(i) for i in range(5))
    assert queue.is_full
    assert queue.qsize() == 5
    assert queue.dropped == 0
    assert drain(queue) == [0, 1, 2, 3, 4]  # type: ignore[arg-type]


async def test_wait_for_space_returns_at_once_when_not_full() -> None:
    queue: MessageQueue[int] = MessageQueue(4, OverflowStrategy.BLOCK)
    queue.put_nowait(1)
    await queue.wait_for_space()
    assert queue._putter is None


async def test_wait_for_space_waits_until_half_drained() -> None:
    queue: MessageQueue[int] = MessageQueue(4, OverflowStrategy.BLOCK)
    for i in range(5):
        queue.put_nowait(i)
    waiter = asyncio.create_task(queue.wait_for_space())
    await settle()
    assert not waiter.done()
    for expected_done in (False, False, True):  # 4 pending, 3 pending, then 2 = half of maxsize
        queue.get_nowait()
        await settle()
        assert waiter.done() is expected_done
    await waiter
    assert queue.qsize() == 2


async def test_block_put_never_loses_with_a_slow_consumer() -> None:
    queue: MessageQueue[int] = MessageQueue(8, OverflowStrategy.BLOCK)
    total = 2000
    peak = 0

    async def produce() -> None:
        nonlocal peak
        for i in range(total):
            await queue.put(i)
            peak = max(peak, queue.qsize())
        queue.close()

    async def consume() -> list[int]:
        got = []
        async for item in queue:
            got.append(item)
            if item % 7 == 0:
                await asyncio.sleep(0)
        return got

    async with asyncio.TaskGroup() as tg:
        tg.create_task(produce())
        consumer = tg.create_task(consume())
    assert consumer.result() == list(range(total))
    assert peak <= queue.maxsize
    assert queue.dropped == 0
    assert queue.delivered == total


async def test_drop_oldest_with_a_slow_consumer_keeps_order_and_accounts_for_everything() -> None:
    queue: MessageQueue[int] = MessageQueue(16)
    total = 5000

    async def produce() -> None:
        for i in range(total):
            queue.put_nowait(i)
            if i % 100 == 0:
                await asyncio.sleep(0)
        queue.close()

    async def consume() -> list[int]:
        got = []
        async for item in queue:
            got.append(item)
            await asyncio.sleep(0)  # slower than the producer
        return got

    async with asyncio.TaskGroup() as tg:
        tg.create_task(produce())
        consumer = tg.create_task(consume())
    got = consumer.result()
    assert got == sorted(got)
    assert got[-1] == total - 1
    assert queue.dropped > 0
    assert len(got) + queue.dropped == total
    assert queue.delivered == len(got)


async def test_conflate_with_a_slow_consumer_sees_latest_per_key() -> None:
    queue = conflating(100)
    markets = ["A", "B", "C"]

    async def produce() -> None:
        for i in range(3000):
            queue.put_nowait(Tick(markets[i % 3], i))
            if i % 50 == 0:
                await asyncio.sleep(0)
        queue.close()

    async def consume() -> list[Tick]:
        got = []
        async for tick in queue:
            assert queue.qsize() <= len(markets)
            got.append(tick)
            await asyncio.sleep(0)
        return got

    async with asyncio.TaskGroup() as tg:
        tg.create_task(produce())
        consumer = tg.create_task(consume())
    got = consumer.result()
    last = {m: max(t.value for t in got if t.market == m) for m in markets}
    assert last == {"A": 2997, "B": 2998, "C": 2999}
    for m in markets:
        values = [t.value for t in got if t.market == m]
        assert values == sorted(values)
    assert len(got) + queue.conflated == 3000
    assert queue.dropped == 0


# -- consumer side -------------------------------------------------------------------------------------------


async def test_get_waits_for_put() -> None:
    queue: MessageQueue[str] = MessageQueue()
    getter = asyncio.create_task(queue.get())
    await settle()
    assert not getter.done()
    queue.put_nowait("x")
    assert await getter == "x"
    assert queue._getter is None


def test_get_nowait_empty_and_closed() -> None:
    queue: MessageQueue[int] = MessageQueue()
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
    queue.put_nowait(1)
    queue.close()
    assert queue.get_nowait() == 1
    with pytest.raises(QueueClosed):
        queue.get_nowait()
    assert issubclass(QueueClosed, KalshiError)


async def test_close_wakes_a_waiting_getter() -> None:
    queue: MessageQueue[int] = MessageQueue()
    getter = asyncio.create_task(queue.get())
    iterator = asyncio.create_task(anext(queue))
    await settle()
    queue.close()
    with pytest.raises(QueueClosed):
        await getter
    with pytest.raises(StopAsyncIteration):
        await iterator


async def test_close_delivers_pending_then_stops() -> None:
    queue: MessageQueue[int] = MessageQueue()
    for i in range(3):
        queue.put_nowait(i)
    queue.close()
    queue.close()  # idempotent
    assert queue.closed
    assert not queue.put_nowait(99)
    assert queue.dropped == 1
    assert [item async for item in queue] == [0, 1, 2]
    assert [item async for item in queue] == []
    with pytest.raises(QueueClosed):
        await queue.get()


async def test_fail_raises_after_pending_items() -> None:
    queue: MessageQueue[int] = MessageQueue()
    queue.put_nowait(1)
    queue.put_nowait(2)
    boom = KalshiBackpressureError("terminal")
    queue.fail(boom)
    queue.fail(RuntimeError("ignored, the first ending wins"))
    got = []
    with pytest.raises(KalshiBackpressureError) as info:
        async for item in queue:
            got.append(item)
    assert info.value is boom
    assert got == [1, 2]
    with pytest.raises(KalshiBackpressureError):
        await queue.get()
    with pytest.raises(KalshiBackpressureError):
        queue.get_nowait()


async def test_fail_wakes_a_waiting_iterator() -> None:
    queue: MessageQueue[int] = MessageQueue()
    iterator = asyncio.create_task(anext(queue))
    await settle()
    queue.fail(ConnectionResetError("gone"))
    with pytest.raises(ConnectionResetError):
        await iterator


def test_fail_after_close_is_ignored() -> None:
    queue: MessageQueue[int] = MessageQueue()
    queue.close()
    queue.fail(RuntimeError("late"))
    with pytest.raises(QueueClosed):
        queue.get_nowait()


async def test_cancelled_getter_leaves_no_pending_future() -> None:
    queue: MessageQueue[int] = MessageQueue()
    getter = asyncio.create_task(queue.get())
    await settle()
    assert queue._getter is not None
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    assert queue._getter is None
    queue.put_nowait(7)
    assert queue.qsize() == 1  # the item was not handed to the dead getter
    assert await queue.get() == 7


async def test_cancelling_one_of_two_getters_leaves_the_other_waiting() -> None:
    queue: MessageQueue[int] = MessageQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await settle()
    first.cancel()
    await settle()
    assert first.cancelled()
    assert not second.done()
    queue.put_nowait(5)
    assert await second == 5
    assert queue._getter is None


async def test_getter_cancelled_after_being_woken_loses_nothing() -> None:
    queue: MessageQueue[int] = MessageQueue()
    getter = asyncio.create_task(queue.get())
    await settle()
    queue.put_nowait(1)  # wakes the getter ...
    getter.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await getter
    assert queue.get_nowait() == 1


async def test_timeout_on_get() -> None:
    queue: MessageQueue[int] = MessageQueue()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):
            await queue.get()
    assert queue._getter is None


async def test_cancelled_space_waiter_leaves_no_pending_future() -> None:
    queue: MessageQueue[int] = MessageQueue(2, OverflowStrategy.BLOCK)
    queue.put_nowait(1)
    queue.put_nowait(2)
    putter = asyncio.create_task(queue.put(3))
    await settle()
    assert queue._putter is not None
    putter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await putter
    assert queue._putter is None
    assert queue.qsize() == 2


async def test_close_wakes_a_blocked_producer() -> None:
    queue: MessageQueue[int] = MessageQueue(1, OverflowStrategy.BLOCK)
    queue.put_nowait(1)
    putter = asyncio.create_task(queue.put(2))
    space = asyncio.create_task(queue.wait_for_space())
    await settle()
    assert not putter.done()
    queue.close()
    assert await putter is False  # put after close: refused and counted
    await space
    assert queue.dropped == 1


async def test_no_future_is_created_while_the_consumer_keeps_up_with_a_backlog() -> None:
    queue: MessageQueue[int] = MessageQueue(100)
    for i in range(50):
        queue.put_nowait(i)
    assert [await queue.get() for _ in range(50)] == list(range(50))
    assert queue._getter is None


# -- model-based ---------------------------------------------------------------------------------------------


operations = st.lists(
    st.one_of(st.tuples(st.just("put"), st.integers(0, 4)), st.tuples(st.just("get"), st.just(0))),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops=operations, maxsize=st.integers(1, 5))
def test_drop_oldest_matches_a_ring_buffer(ops: list[tuple[str, int]], maxsize: int) -> None:
    queue: MessageQueue[int] = MessageQueue(maxsize)
    model: deque[int] = deque(maxlen=maxsize)
    dropped = 0
    for n, (op, _) in enumerate(ops):
        if op == "put":
            full = len(model) == maxsize
            assert queue.put_nowait(n) is not full
            dropped += full
            model.append(n)
        elif model:
            assert queue.get_nowait() == model.popleft()
        else:
            with pytest.raises(asyncio.QueueEmpty):
                queue.get_nowait()
        assert queue.qsize() == len(model)
    assert queue.dropped == dropped


@settings(max_examples=150, deadline=None)
@given(ops=operations, maxsize=st.integers(1, 5))
def test_conflate_matches_a_latest_per_key_model(ops: list[tuple[str, int]], maxsize: int) -> None:
    queue = conflating(maxsize)
    model: dict[str, Tick] = {}  # insertion-ordered: position of each key
    for n, (op, value) in enumerate(ops):
        if op == "put":
            tick = Tick(str(value), n)
            if tick.market not in model and len(model) == maxsize:
                del model[next(iter(model))]
            model[tick.market] = tick
            queue.put_nowait(tick)
        elif model:
            key = next(iter(model))
            assert queue.get_nowait() == model.pop(key)
        assert queue.qsize() == len(model)
