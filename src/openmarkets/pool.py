"""A stream's connections and what each carries: subscribe/unsubscribe reconciled over links, limits enforced.

Each channel's contest list lives on the links (``Link.desired``), split by :func:`~openmarkets.placement.
place_contests`. A change to a channel is computed for every link, then sent concurrently: a link gains
contests with ``subscribe`` and its *whole* list (the server replaces the filter), loses them with
``unsubscribe``. A link that is down only records the change; its supervisor restores ``desired`` after
reconnecting (:meth:`LinkPool.restore`). Connections left with nothing to carry are closed (the first stays,
for the greeting and pings). One lock serialises changes and restores.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from kalshi.ws.lifecycle import LifecycleBus
from openmarkets.book import LiquidityBook
from openmarkets.errors import OpenMarketsConnectionError, OpenMarketsError
from openmarkets.link import Link, LinkOwner, LinkSettings
from openmarkets.models import CHANNEL_LIQUIDITY
from openmarkets.placement import place_contests

__all__ = ["LinkPool"]

logger = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, Any]], "asyncio.Task[Any]"]


class LinkPool:
    """The links of one stream.

    Args:
        owner: receives the links' frames and events.
        settings: connection settings for every link.
        max_connections: most links.
        per_connection: most contests per link.
        book: the tables to keep in step with ``liquidity`` subscriptions (None: no tables).
        spawn: runs a kept background task (the link supervisors).
        report: where errors found while restoring subscriptions go.
        changed: called when links are added or removed.
        bus: where every link's supervisor publishes its lifecycle events (the stream's).
    """

    def __init__(
        self,
        owner: LinkOwner,
        settings: LinkSettings,
        *,
        max_connections: int,
        per_connection: int,
        book: LiquidityBook | None,
        spawn: Spawn,
        report: Callable[[OpenMarketsError], None],
        changed: Callable[[], None],
        bus: LifecycleBus | None = None,
    ) -> None:
        self.links: list[Link] = []
        self.lock = asyncio.Lock()
        self._owner = owner
        self._settings = settings
        self._max_connections = max_connections
        self._per_connection = per_connection
        self._book = book
        self._spawn = spawn
        self._report = report
        self._changed = changed
        self._bus = bus
        self._next_number = 0

    def __repr__(self) -> str:
        return f"LinkPool({self.links!r})"

    def contests(self, channel: str) -> list[str]:
        """The contests subscribed on ``channel``, over all links."""
        return [contest for link in self.links for contest in link.desired.get(channel, {})]

    @property
    def contest_count(self) -> int:
        return sum(link.contest_count for link in self.links)

    # ------------------------------------------------------------------ links

    async def add_link(self) -> Link:
        """Open one more link (no retry after 401/403/429) and start its supervisor.

        Raises:
            OpenMarketsAuthError: the key was refused.
            ConnectionLimitError: the key holds its maximum of connections.
            OpenMarketsConnectionError: the server could not be reached.
        """
        link = Link(self._owner, self._settings, self._next_number, self._bus)
        self._next_number += 1
        self.links.append(link)
        try:
            await link.open()
        except BaseException:
            self.links.remove(link)
            self._changed()
            raise
        link.supervisor = self._spawn(link.supervise())
        link.set_streaming()
        return link

    async def close_idle(self) -> None:
        for link in self.links[1:]:
            if not link.desired:
                self.links.remove(link)
                await link.close()
        self._changed()

    async def close_all(self) -> None:
        for link in list(self.links):
            await link.close()

    # ------------------------------------------------------------------ changes (lock held by the caller)

    async def reconcile(self, channel: str, target: dict[str, None]) -> None:
        """Make ``channel``'s contests exactly ``target``, spread over links.

        Raises:
            ContestLimitError: ``target`` and the other channels' contests do not fit (nothing changed).
            OpenMarketsError: a new link could not open, or the server refused the change (that link's list
                is restored: the server keeps its filter when it answers with an error).
        """
        others: dict[str, None] = {}
        for link in self.links:
            for name, ids in link.desired.items():
                if name != channel:
                    others.update(ids)
        needed = {**target, **others}
        placement = place_contests(
            [[c for c in link.contests if c in needed] for link in self.links],
            needed,
            limit=self._per_connection,
            max_connections=self._max_connections,
        )
        where: dict[str, Link] = {c: link for link in self.links for c in link.contests if c in needed}
        for link, fresh in zip(self.links, placement.existing, strict=True):
            where.update(dict.fromkeys(fresh, link))
        book = self._book if channel == CHANNEL_LIQUIDITY else None
        try:
            for contests in placement.new_connections:
                link = await self.add_link()
                where.update(dict.fromkeys(contests, link))
            lists: dict[Link, dict[str, None]] = {link: {} for link in self.links}
            for contest in target:
                lists[where[contest]][contest] = None
            if book is not None:
                book.add(target)
            changes = [
                (link, dict(link.desired.get(channel, {})), new)
                for link, new in lists.items()
                if new != link.desired.get(channel, {})
            ]
            results = await asyncio.gather(
                *(self._apply(link, channel, old, new) for link, old, new in changes), return_exceptions=True
            )
            errors = [result for result in results if isinstance(result, BaseException)]
            if errors:
                raise errors[0]
        finally:
            if book is not None:
                book.keep_only(self.contests(CHANNEL_LIQUIDITY))
            await self.close_idle()

    async def _apply(self, link: Link, channel: str, old: dict[str, None], new: dict[str, None]) -> None:
        """Send one link's change for a channel; a link that is down gets it when it reconnects."""
        if new:
            link.desired[channel] = new
        else:
            link.desired.pop(channel, None)
        added = [c for c in new if c not in old]
        removed = [c for c in old if c not in new]
        if not link.connected:
            return
        try:
            if added:
                await link.command("subscribe", channel, list(new))
            elif removed:
                await link.command("unsubscribe", channel, removed)
        except OpenMarketsConnectionError:
            if link.connected:
                raise  # a live connection that did not answer: report it
            return  # the connection dropped: its supervisor restores `desired` after reconnecting
        except BaseException:
            if old:
                link.desired[channel] = old
            else:
                link.desired.pop(channel, None)
            raise
        if channel == CHANNEL_LIQUIDITY and self._book is not None:
            self._book.confirmed(added)

    async def restore(self, link: Link) -> None:
        """Resubscribe a reconnected link to everything in its ``desired``, then mark it streaming."""
        async with self.lock:
            for channel, ids in list(link.desired.items()):
                if link.closing or not link.connected:
                    return  # dropped again: the supervisor goes round once more
                try:
                    await link.command("subscribe", channel, list(ids))
                except OpenMarketsConnectionError:
                    return
                except OpenMarketsError as exc:
                    self._report(exc)
                    continue
                if channel == CHANNEL_LIQUIDITY and self._book is not None:
                    self._book.confirmed(ids)
            link.set_streaming()
            logger.info("connection %d restored %d contests", link.number, link.contest_count)
