"""Bounded per-subscription message queues and what they do when the consumer falls behind.

:class:`MessageQueue` sits between the receive loop (producer) and one subscription's iterator (consumer). It is
on the hot path, so it is built from a :class:`collections.deque` and at most one future per waiting side: a
message put while the consumer is busy costs an append and no allocation; a future is created only when the
consumer (or a BLOCK producer) actually has to wait.

Overflow strategies (:class:`OverflowStrategy`), applied when ``maxsize`` messages are pending:

* ``DROP_OLDEST``: evict the oldest pending message, keep the new one (latest-wins channels such as ticker).
* ``ERROR``: refuse the new message with :class:`~kalshi.errors.KalshiBackpressureError`.
* ``CONFLATE``: every message has a key (``conflate_key``, e.g. its market ticker). A new message replaces the
  pending one with the same key *in place*, at any fill level, keeping that key's position in the queue; the
  consumer sees the newest value per key and the queue never holds more messages than there are keys. When the
  queue is full of distinct keys, the oldest is evicted as in ``DROP_OLDEST``.
* ``BLOCK``: nothing is ever lost. ``put_nowait`` always accepts (so a synchronous frame callback can hand over
  what it already holds); the producer pauses its source instead. Two watermarks drive that, so a full queue does
  not toggle per message: a put into a queue holding ``maxsize`` (the high watermark) calls the ``on_high`` hook of
  :meth:`MessageQueue.watch_pressure` once; when the consumer has drained it to ``low_water`` (half by default)
  ``on_low`` is called once. ``await put()`` and :meth:`MessageQueue.wait_for_space` wait the same way. Used for
  channels where a missing message costs money or corrupts a book. The overshoot past ``maxsize`` is bounded by
  what the producer had in hand when it was told to pause.

Consumers take one message per ``async for`` step, or everything pending at once with :meth:`MessageQueue.batches`.

Closing is graceful: after :meth:`MessageQueue.close` the pending messages are still delivered, then iteration
stops. :meth:`MessageQueue.fail` does the same but ends the iteration by raising the given exception.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, Final, Generic, NoReturn, TypeVar

from kalshi.errors import KalshiBackpressureError, KalshiConfigError, KalshiError

__all__ = ["BatchIterator", "DiscardQueue", "MessageQueue", "OverflowStrategy", "QueueClosed"]

T = TypeVar("T")

DEFAULT_MAXSIZE: Final = 1000


class OverflowStrategy(enum.Enum):
    """What a full :class:`MessageQueue` does with a new message."""

    DROP_OLDEST = "drop_oldest"
    """Evict the oldest pending message (ring buffer)."""
    ERROR = "error"
    """Raise :class:`~kalshi.errors.KalshiBackpressureError` from the producer."""
    CONFLATE = "conflate"
    """Replace the pending message with the same key; evict the oldest when all keys differ."""
    BLOCK = "block"
    """Never drop: the producer pauses at the high watermark until the consumer has drained to the low one."""


def _no_key(item: object) -> Hashable:
    raise AssertionError("conflate_key called outside CONFLATE")


# Module constants: an enum member looked up on its class costs more than a global, on the per-message path.
_BLOCK: Final = OverflowStrategy.BLOCK
_DROP_OLDEST: Final = OverflowStrategy.DROP_OLDEST


class QueueClosed(KalshiError):
    """``get()`` was called on a closed queue with nothing left to deliver."""


class MessageQueue(Generic[T]):
    """A bounded async queue with an overflow strategy; also an async iterator over its messages.

    One consumer is the intended use, but several concurrent consumers are safe (each message goes to one).

    Example::

        queue: MessageQueue[TickerMessage] = MessageQueue(maxsize=1000)
        queue.put_nowait(msg)          # producer (sync, e.g. from a frame callback)
        async for msg in queue:        # consumer; ends after close() once drained
            ...
    """

    __slots__ = (
        "_closed",
        "_failure",
        "_getter",
        "_index",
        "_items",
        "_key",
        "_low_water",
        "_maxsize",
        "_on_high",
        "_on_low",
        "_overflow",
        "_pressed",
        "_putter",
        "conflated",
        "delivered",
        "dropped",
    )

    def __init__(
        self,
        maxsize: int = DEFAULT_MAXSIZE,
        overflow: OverflowStrategy = OverflowStrategy.DROP_OLDEST,
        conflate_key: Callable[[T], Hashable] | None = None,
    ) -> None:
        """Create an empty queue.

        Args:
            maxsize: Most messages held before the overflow strategy applies (>= 1).
            overflow: What to do when full, see :class:`OverflowStrategy`.
            conflate_key: Key of a message for ``CONFLATE`` (required there, refused otherwise).

        Raises:
            KalshiConfigError: ``maxsize`` < 1, an unknown strategy, or ``conflate_key`` missing for CONFLATE
                or given for another strategy.
        """
        if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 1:
            raise KalshiConfigError(f"maxsize must be an int >= 1, got {maxsize!r}")
        if not isinstance(overflow, OverflowStrategy):
            raise KalshiConfigError(f"overflow must be an OverflowStrategy, got {overflow!r}")
        if overflow is OverflowStrategy.CONFLATE and conflate_key is None:
            raise KalshiConfigError("OverflowStrategy.CONFLATE needs conflate_key=, e.g. lambda m: m.msg.market_ticker")
        if overflow is not OverflowStrategy.CONFLATE and conflate_key is not None:
            raise KalshiConfigError("conflate_key is only used with OverflowStrategy.CONFLATE")
        self._maxsize = maxsize
        self._overflow = overflow
        self._key: Callable[[T], Hashable] = conflate_key if conflate_key is not None else _no_key
        # CONFLATE keeps keys in _items and the newest message per key in _index, so a replacement is a dict
        # store that leaves the key's queue position alone. Other strategies keep messages in _items.
        self._items: deque[Any] = deque()
        self._index: dict[Hashable, T] | None = {} if conflate_key is not None else None
        # A paused BLOCK producer resumes at half capacity, not at the first free slot, so it resumes for a
        # batch instead of flapping pause/resume on every message.
        self._low_water = maxsize // 2
        self._on_high: Callable[[], None] | None = None
        self._on_low: Callable[[], None] | None = None
        self._pressed = False  # on_high was called and on_low not yet
        self._getter: asyncio.Future[None] | None = None
        self._putter: asyncio.Future[None] | None = None
        self._closed = False
        self._failure: BaseException | None = None
        self.dropped = 0
        """Messages lost: evicted, refused under ERROR, or put after close."""
        self.conflated = 0
        """Messages superseded in place by a newer one with the same key (CONFLATE)."""
        self.delivered = 0
        """Messages handed to a consumer."""

    # -- introspection -------------------------------------------------------------------------------------

    @property
    def maxsize(self) -> int:
        """The capacity at which the overflow strategy applies."""
        return self._maxsize

    @property
    def overflow(self) -> OverflowStrategy:
        """The overflow strategy."""
        return self._overflow

    @property
    def is_full(self) -> bool:
        """True when ``maxsize`` or more messages are pending (BLOCK producers must pause)."""
        return len(self._items) >= self._maxsize

    @property
    def closed(self) -> bool:
        """True after :meth:`close` or :meth:`fail` (pending messages may still be delivered)."""
        return self._closed

    @property
    def low_water(self) -> int:
        """The fill level at which a paused BLOCK producer resumes."""
        return self._low_water

    @property
    def pressed(self) -> bool:
        """True between the high-watermark signal and the low one (the producer should be paused)."""
        return self._pressed

    def watch_pressure(
        self, on_high: Callable[[], None], on_low: Callable[[], None], *, low_water: int | None = None
    ) -> None:
        """Be told when a BLOCK producer must pause (``on_high``, once, when a put finds ``maxsize`` pending) and
        when it may resume (``on_low``, once, when the consumer drained to ``low_water`` or the queue closed).

        Raises:
            KalshiConfigError: not a BLOCK queue, or ``low_water`` not in ``[0, maxsize)``.
        """
        if self._overflow is not OverflowStrategy.BLOCK:
            raise KalshiConfigError("watermarks apply to OverflowStrategy.BLOCK queues")
        if low_water is not None:
            if not 0 <= low_water < self._maxsize:
                raise KalshiConfigError(f"low_water must be in [0, {self._maxsize}), got {low_water}")
            self._low_water = low_water
        self._on_high = on_high
        self._on_low = on_low

    def set_overflow(self, overflow: OverflowStrategy) -> None:
        """Switch between BLOCK, DROP_OLDEST and ERROR (a consumer that stopped reading may not stall its
        producer). Switching away from BLOCK first trims the overshoot, counting it as dropped.

        Raises:
            KalshiConfigError: to or from CONFLATE (its keyed storage cannot change).
        """
        if OverflowStrategy.CONFLATE in (overflow, self._overflow) and overflow is not self._overflow:
            raise KalshiConfigError("a CONFLATE queue cannot change strategy (and no queue can become one)")
        self._overflow = overflow
        if overflow is not OverflowStrategy.BLOCK:
            items = self._items
            while len(items) > self._maxsize:
                items.popleft()
                self.dropped += 1
            self._release()

    def qsize(self) -> int:
        """Number of pending messages."""
        return len(self._items)

    def empty(self) -> bool:
        """True when no message is pending."""
        return not self._items

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"MessageQueue({state}, {len(self._items)}/{self._maxsize}, {self._overflow.name}, "
            f"delivered={self.delivered}, dropped={self.dropped}, conflated={self.conflated})"
        )

    # -- producer ------------------------------------------------------------------------------------------

    def put_nowait(self, item: T) -> bool:
        """Add a message without waiting, applying the overflow strategy if full.

        Args:
            item: The message.

        Returns:
            False if a message was lost (the oldest evicted, or ``item`` itself because the queue is closed);
            True otherwise, including when CONFLATE replaced a pending message with the same key (counted in
            :attr:`conflated`). Under BLOCK it always accepts: check :attr:`is_full` afterwards.

        Raises:
            KalshiBackpressureError: Under ERROR when the queue is full (``item`` is not added).
        """
        items = self._items
        if self._index is None and not self._closed:
            # Unkeyed and open: the hot case. Room, or BLOCK past maxsize (the producer was told once to pause;
            # what it already read keeps arriving): an append and, if the consumer waits, one wakeup.
            kept = True
            if len(items) >= self._maxsize:
                overflow = self._overflow
                if overflow is _BLOCK:
                    if not self._pressed and self._on_high is not None:
                        self._pressed = True
                        self._on_high()
                elif overflow is _DROP_OLDEST:
                    items.popleft()
                    self.dropped += 1
                    kept = False
                else:
                    self.dropped += 1
                    raise KalshiBackpressureError(
                        f"message queue full ({self._maxsize} pending): the consumer is too slow; consume faster, "
                        "raise maxsize, or choose another OverflowStrategy"
                    )
            items.append(item)
            getter = self._getter
            if getter is not None:
                self._getter = None
                if not getter.done():
                    getter.set_result(None)
            return kept
        if self._closed:
            self.dropped += 1
            return False
        return self._put_keyed(self._key(item), item)

    def _put_keyed(self, key: Hashable, item: T) -> bool:
        index = self._index
        assert index is not None  # CONFLATE queues only
        if key in index:
            index[key] = item
            self.conflated += 1
            return True
        kept = True
        items = self._items
        if len(items) >= self._maxsize:
            del index[items.popleft()]
            self.dropped += 1
            kept = False
        items.append(key)
        index[key] = item
        self._wake_getter()
        return kept

    def put_keyed(self, key: Hashable, item: T) -> bool:
        """:meth:`put_nowait` for a CONFLATE queue when the caller already knows the item's key (no key call).

        Raises:
            KalshiConfigError: not a CONFLATE queue.
        """
        index = self._index
        if index is not None and key in index and not self._closed:
            # The pending message of this key is replaced in place: the usual case of a busy market.
            index[key] = item
            self.conflated += 1
            return True
        if index is None:
            raise KalshiConfigError("put_keyed() is for OverflowStrategy.CONFLATE queues")
        if self._closed:
            self.dropped += 1
            return False
        return self._put_keyed(key, item)

    async def put(self, item: T) -> bool:
        """Add a message; under BLOCK, first wait while the queue is full.

        Args:
            item: The message.

        Returns:
            As :meth:`put_nowait`.

        Raises:
            KalshiBackpressureError: Under ERROR when the queue is full.
        """
        if self._overflow is OverflowStrategy.BLOCK:
            while len(self._items) >= self._maxsize and not self._closed:
                await self.wait_for_space()
        return self.put_nowait(item)

    async def wait_for_space(self) -> None:
        """Wait until a full queue has drained to half its capacity, or is closed.

        Returns at once if the queue is not full. Cancelling the wait leaves nothing behind.
        """
        if len(self._items) < self._maxsize or self._closed:
            return
        while len(self._items) > self._low_water and not self._closed:
            putter = self._putter
            if putter is None or putter.done():
                putter = self._putter = asyncio.get_running_loop().create_future()
            await self._await_shared(putter, is_getter=False)

    # -- consumer ------------------------------------------------------------------------------------------

    def get_nowait(self) -> T:
        """Take the oldest pending message without waiting.

        Returns:
            The message.

        Raises:
            asyncio.QueueEmpty: Nothing is pending and the queue is open.
            QueueClosed: Nothing is pending and the queue was closed.
            BaseException: The exception given to :meth:`fail`, once nothing is pending.
        """
        if self._items:
            return self._pop()
        if self._closed:
            self._raise_closed()
        raise asyncio.QueueEmpty

    async def get(self) -> T:
        """Take the oldest pending message, waiting for one if needed.

        Returns:
            The message.

        Raises:
            QueueClosed: The queue was closed and everything was delivered.
            BaseException: The exception given to :meth:`fail`, once everything was delivered.
        """
        while not self._items:
            if self._closed:
                self._raise_closed()
            await self._wait_for_item()
        return self._pop()

    def __aiter__(self) -> MessageQueue[T]:
        return self

    async def __anext__(self) -> T:
        items = self._items
        while not items:
            if self._closed:
                if self._failure is not None:
                    raise self._failure
                raise StopAsyncIteration
            await self._wait_for_item()
        # _pop() inlined: this runs once per message.
        head = items.popleft()
        index = self._index
        item: T = head if index is None else index.pop(head)
        self.delivered += 1
        # Nobody waits for room in the common case: test that first, the length only then.
        if (self._pressed or self._putter is not None) and len(items) <= self._low_water:
            self._drained()
        return item

    def batches(self) -> BatchIterator[T]:
        """An async iterator of lists: each holds every message pending when it is taken (at least one), oldest
        first. Same ordering and loss rules as one-by-one iteration, one wakeup per batch instead of per message.
        """
        return BatchIterator(self)

    def take_all(self) -> list[T]:
        """Take every pending message at once (possibly none), oldest first."""
        items = self._items
        index = self._index
        if index is None:
            batch: list[T] = list(items)
        else:
            # CONFLATE keeps _index in queue order: a replaced key keeps its slot in both.
            batch = list(index.values())
            index.clear()
        items.clear()
        self.delivered += len(batch)
        if self._pressed or self._putter is not None:
            self._drained()
        return batch

    # -- shutdown ------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop accepting messages; consumers get the pending ones, then the iteration ends.

        Wakes a waiting consumer and a waiting BLOCK producer. Idempotent.
        """
        if self._closed:
            return
        self._closed = True
        self._wake_getter()
        self._wake_putter()
        self._release()

    def fail(self, exc: BaseException) -> None:
        """Close with a terminal error: after the pending messages, consumers get ``exc`` raised.

        Ignored if the queue is already closed (the first ending wins).

        Args:
            exc: The exception to raise from the iterator and from ``get()``.
        """
        if self._closed:
            return
        self._failure = exc
        self.close()

    # -- internals -----------------------------------------------------------------------------------------

    def _pop(self) -> T:
        items = self._items
        head = items.popleft()
        index = self._index
        item: T = head if index is None else index.pop(head)
        self.delivered += 1
        if (self._pressed or self._putter is not None) and len(items) <= self._low_water:
            self._drained()
        return item

    def _drained(self) -> None:
        """The consumer reached the low watermark: wake a waiting producer and release the pause."""
        self._wake_putter()
        self._release()

    def _release(self) -> None:
        if self._pressed:
            self._pressed = False
            on_low = self._on_low
            if on_low is not None:
                on_low()

    def _raise_closed(self) -> NoReturn:
        if self._failure is not None:
            raise self._failure
        raise QueueClosed("the message queue is closed and fully delivered")

    def _wake_getter(self) -> None:
        getter = self._getter
        if getter is not None:
            self._getter = None
            if not getter.done():
                getter.set_result(None)

    def _wake_putter(self) -> None:
        putter = self._putter
        if putter is not None:
            self._putter = None
            if not putter.done():
                putter.set_result(None)

    async def _wait_for_item(self) -> None:
        getter = self._getter
        # A done future here was cancelled without passing our handler; awaiting it again would spin.
        if getter is None or getter.done():
            getter = self._getter = asyncio.get_running_loop().create_future()
        await self._await_shared(getter, is_getter=True)

    async def _await_shared(self, future: asyncio.Future[None], *, is_getter: bool) -> None:
        """Await a future shared by every waiter on one side, surviving another waiter's cancellation."""
        try:
            await future
        except asyncio.CancelledError:
            # Cancelling a task cancels the future it awaits, which is shared: drop it so the next waiter makes
            # a fresh one, and leave no pending future behind.
            if is_getter:
                if self._getter is future:
                    self._getter = None
            elif self._putter is future:
                self._putter = None
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise
            # This task was not cancelled: the shared future was cancelled on behalf of another waiter.
            # Return; the caller re-checks its condition and waits again if needed.


class DiscardQueue(MessageQueue[T]):
    """A queue that takes nothing: the queue of a ``tap_only`` subscription, whose frames only the session's
    ``on_raw_frame`` tap reads. Iterating it yields nothing and ends when the session closes."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(maxsize=1, overflow=OverflowStrategy.DROP_OLDEST)

    def put_nowait(self, item: T) -> bool:
        return True

    def put_keyed(self, key: Hashable, item: T) -> bool:
        return True


class BatchIterator(Generic[T]):
    """``async for batch in queue.batches():`` lists of every message pending at that moment (at least one)."""

    __slots__ = ("_queue",)

    def __init__(self, queue: MessageQueue[T]) -> None:
        self._queue = queue

    def __aiter__(self) -> BatchIterator[T]:
        return self

    async def __anext__(self) -> list[T]:
        queue = self._queue
        while not queue._items:
            if queue._closed:
                if queue._failure is not None:
                    raise queue._failure
                raise StopAsyncIteration
            await queue._wait_for_item()
        return queue.take_all()
