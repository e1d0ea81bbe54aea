"""Async iterators over a stream's updates and table views, each backed by a bounded MessageQueue.

A feed is registered when it is created (not on its first ``__anext__``), so nothing that arrives in between is
missed. The stream offers every item to every feed; the feed keeps those its filter accepts. Overflow follows
the feed's :class:`~kalshi.ws.backpressure.OverflowStrategy`: BLOCK (the default for updates) makes the stream
stop reading the connection until the consumer catches up (except while a subscribe, unsubscribe or ping awaits
its answer, which comes on the same connection: the feed then holds more than its maxsize), CONFLATE (table views) keeps the newest view per
contest, DROP_OLDEST counts what it evicts, ERROR ends this feed with KalshiBackpressureError.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from types import TracebackType
from typing import Any, Generic, TypeVar

from kalshi.errors import KalshiBackpressureError
from kalshi.ws.backpressure import MessageQueue, OverflowStrategy

__all__ = ["Feed"]

T = TypeVar("T")


class Feed(Generic[T]):
    """Items of a :class:`~openmarkets.LiquidityStream`, as an async iterator.

    Iteration ends when the feed or the stream is closed (after the pending items), or raises the stream's
    terminal error (e.g. OpenMarketsAuthError when a reconnect was refused). Use it as an async context
    manager, or call :meth:`close`, to stop receiving.
    """

    __slots__ = ("_accept", "_detach", "queue")

    def __init__(
        self,
        queue: MessageQueue[T],
        accept: Callable[[Any], bool] | None,
        detach: Callable[[Feed[Any]], None],
    ) -> None:
        self.queue = queue
        self._accept = accept
        self._detach = detach

    def __repr__(self) -> str:
        return f"Feed({self.queue!r})"

    # ------------------------------------------------------------------ consumer

    def __aiter__(self) -> Feed[T]:
        return self

    async def __anext__(self) -> T:
        return await self.queue.__anext__()

    async def __aenter__(self) -> Feed[T]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop receiving; pending items are still delivered, then iteration ends. Idempotent."""
        self.queue.close()
        self._detach(self)

    @property
    def closed(self) -> bool:
        return self.queue.closed

    @property
    def pending(self) -> int:
        """Items waiting to be consumed."""
        return self.queue.qsize()

    @property
    def delivered(self) -> int:
        return self.queue.delivered

    @property
    def dropped(self) -> int:
        """Items lost to overflow (DROP_OLDEST, CONFLATE eviction, ERROR)."""
        return self.queue.dropped

    @property
    def conflated(self) -> int:
        """Items replaced by a newer one with the same key (CONFLATE)."""
        return self.queue.conflated

    # ------------------------------------------------------------------ producer (the stream)

    def offer(self, item: Any) -> bool:
        """Queue ``item`` if the filter accepts it.

        Returns:
            True when the producer should pause reading (a BLOCK feed is full).
        """
        accept = self._accept
        if accept is not None and not accept(item):
            return False
        queue = self.queue
        try:
            queue.put_nowait(item)
        except KalshiBackpressureError as exc:
            self.fail(exc)
            return False
        return queue.is_full and queue.overflow is OverflowStrategy.BLOCK

    def fail(self, exc: BaseException) -> None:
        """End the feed with ``exc`` (raised to the consumer after the pending items)."""
        self.queue.fail(exc)
        self._detach(self)


def contest_filter(contest_ids: Collection[str] | None, kinds: tuple[type, ...] | None) -> Callable[[Any], bool] | None:
    """A feed filter on message class and ``contest_id`` (None: no filter)."""
    if contest_ids is None and kinds is None:
        return None
    wanted = frozenset(contest_ids) if contest_ids is not None else None

    def accept(item: Any) -> bool:
        if kinds is not None and not isinstance(item, kinds):
            return False
        return wanted is None or getattr(item, "contest_id", None) in wanted

    return accept
