"""The ``updates()`` feeds of a :class:`~openmarkets.stream.LiquidityStream` and the backpressure they apply.

Every update goes to each feed whose filter takes it. When a BLOCK feed is full, the connection the update came
on stops reading until every full feed has drained to half (the shared transport's watermarks); a lost or
closed connection drops its pending resume.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Final

from kalshi.ws.backpressure import MessageQueue, OverflowStrategy
from openmarkets.feeds import Feed, contest_filter
from openmarkets.link import Link
from openmarkets.models import CHANNEL_CONTEST_STATE, CHANNEL_LIQUIDITY, ContestStateUpdate, LiquidityUpdate

__all__ = ["UpdateFanout"]

_CHANNEL_KINDS: Final[dict[str, tuple[type, ...]]] = {
    CHANNEL_LIQUIDITY: (LiquidityUpdate,),
    CHANNEL_CONTEST_STATE: (ContestStateUpdate,),
}

Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


class UpdateFanout:
    """The open update feeds, and the links paused for them.

    Args:
        spawn: starts a kept task (the stream's hook runner); a resume waits in one.
    """

    def __init__(self, spawn: Spawn) -> None:
        self._spawn = spawn
        self.feeds: tuple[Feed[Any], ...] = ()
        self._resumes: dict[int, asyncio.Task[Any]] = {}

    def open(
        self, channel: str | None, contest_ids: Iterable[str] | None, maxsize: int, overflow: OverflowStrategy
    ) -> Feed[Any]:
        """A new feed of ``channel``'s updates (None: all, unknown types too) about ``contest_ids`` (None: all)."""
        kinds = _CHANNEL_KINDS.get(channel, ()) if channel is not None else None
        queue: MessageQueue[Any] = MessageQueue(maxsize, overflow)
        accept = contest_filter(None if contest_ids is None else set(contest_ids), kinds)
        feed: Feed[Any] = Feed(queue, accept, self._detach)
        self.feeds = (*self.feeds, feed)
        return feed

    def offer(self, link: Link, message: Any) -> None:
        """Hand ``message`` (received on ``link``) to every feed; pause ``link`` if a BLOCK feed is now full."""
        pause = False
        for feed in self.feeds:
            if feed.offer(message):
                pause = True
        if pause:
            self._pause(link)

    def link_lost(self, link: Link) -> None:
        """``link`` dropped: its pending resume is moot (a new connection starts reading)."""
        task = self._resumes.pop(link.number, None)
        if task is not None:
            task.cancel()

    def fail(self, error: BaseException) -> None:
        """End every feed with ``error`` after what it holds."""
        for feed in self.feeds:
            feed.fail(error)

    def close(self) -> None:
        """End every feed after what it holds; cancel every pending resume."""
        for feed in self.feeds:
            feed.close()
        for task in self._resumes.values():
            task.cancel()
        self._resumes.clear()

    def _detach(self, feed: Feed[Any]) -> None:
        self.feeds = tuple(f for f in self.feeds if f is not feed)

    def _pause(self, link: Link) -> None:
        if link.paused:
            return
        link.pause_reading()
        full = [f.queue for f in self.feeds if f.queue.is_full and f.queue.overflow is OverflowStrategy.BLOCK]

        async def resume_when_drained() -> None:
            for queue in full:
                await queue.wait_for_space()
            link.resume_reading()
            self._resumes.pop(link.number, None)

        self._resumes[link.number] = self._spawn(resume_when_drained())
