"""The maintained liquidity tables of one stream: tables per contest, their REST rebuilds, views and waiters.

The stream tells the book what happened (contests subscribed, confirmed, lost, updates received); the book
keeps each :class:`~openmarkets.table.ContestTable` consistent, asks its
:class:`~openmarkets.refresh.Refresher` for snapshots when a table needs one, and publishes immutable
:class:`~openmarkets.table.LiquidityView` objects to table feeds and :meth:`LiquidityBook.wait_for` callers.
All of it runs on the event loop; the update path is synchronous.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kalshi.ws.backpressure import MessageQueue, OverflowStrategy
from openmarkets.errors import OpenMarketsError, RefreshError
from openmarkets.feeds import Feed, contest_filter
from openmarkets.models import LiquidityUpdate
from openmarkets.refresh import Refresher
from openmarkets.table import ContestTable, LiquidityView

__all__ = ["LiquidityBook"]


class LiquidityBook:
    """Tables of the ``liquidity`` contests of a stream.

    Args:
        report: where errors of rebuilds go (the stream's ``on_error`` path).
    """

    def __init__(self, report: Callable[[OpenMarketsError], None]) -> None:
        self._report = report
        self._tables: dict[str, ContestTable] = {}
        self._feeds: tuple[Feed[Any], ...] = ()
        self._waiters: dict[str, list[tuple[int, asyncio.Future[LiquidityView]]]] = {}
        self._gave_up: dict[str, RefreshError] = {}  # contests whose rebuild failed for good, until rebuilt
        self.refresher: Refresher | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"LiquidityBook(tables={len(self._tables)})"

    # ------------------------------------------------------------------ the refresher's view (RefreshOwner)

    @property
    def is_closing(self) -> bool:
        return self._closed

    def table_for(self, contest_id: str) -> ContestTable | None:
        return self._tables.get(contest_id)

    def table_rebuilt(self, table: ContestTable) -> None:
        self._gave_up.pop(table.contest_id, None)
        if self._tables.get(table.contest_id) is table:
            self._publish(table)

    def report(self, error: OpenMarketsError) -> None:
        self._report(error)
        if isinstance(error, RefreshError):
            # The rebuild gave up (an unknown contest, retries spent): whoever waits for this table would wait
            # for ever. They get the error (so do later waiters, until a rebuild succeeds); the table stays at its
            # last complete version.
            self._gave_up[error.contest_id] = error
            for _, future in self._waiters.get(error.contest_id, ()):
                if not future.done():
                    future.set_exception(error)

    # ------------------------------------------------------------------ subscription events

    def add(self, contests: Iterable[str]) -> None:
        """Contests about to be subscribed: new tables, buffering until their first snapshot."""
        for contest in contests:
            if contest not in self._tables:
                self._tables[contest] = ContestTable(contest)
                self._gave_up.pop(contest, None)  # subscribed anew: its rebuild is tried again

    def keep_only(self, subscribed: Iterable[str]) -> None:
        """Drop the tables (and rebuilds) of contests no longer subscribed."""
        keep = set(subscribed)
        for contest in [c for c in self._tables if c not in keep]:
            del self._tables[contest]
            if self.refresher is not None:
                self.refresher.forget(contest)

    def confirmed(self, contests: Iterable[str]) -> None:
        """The server confirmed these contests: snapshots may be fetched now (never earlier, or changes
        between the snapshot and the start of the stream would be missed)."""
        for contest in contests:
            table = self._tables.get(contest)
            if table is not None:
                table.live = True
                self._ensure_refresh(contest)

    def lost(self, contests: Iterable[str]) -> None:
        """Their connection dropped: the tables go stale until a snapshot taken after the resubscribe."""
        for contest in contests:
            table = self._tables.get(contest)
            if table is not None:
                table.live = False
                table.invalidate()
                self._publish(table)

    def on_update(self, message: LiquidityUpdate) -> None:
        """Apply one ``liquidity.update`` (receive path)."""
        table = self._tables.get(message.contest_id)
        if table is None:
            return
        if message.refresh_required:
            table.invalidate()
            self._publish(table)
            self._ensure_refresh(table.contest_id)
        elif table.apply(message.changed_entries):
            self._publish(table)
        elif table.refreshing:
            self._ensure_refresh(table.contest_id)  # the buffer may have overflowed into a new generation

    def _ensure_refresh(self, contest_id: str) -> None:
        if self.refresher is not None:
            self.refresher.ensure(contest_id)

    # ------------------------------------------------------------------ reading

    def view(self, contest_id: str) -> LiquidityView | None:
        table = self._tables.get(contest_id)
        return table.view() if table is not None else None

    @property
    def views(self) -> Mapping[str, LiquidityView]:
        out: dict[str, LiquidityView] = {}
        for contest, table in self._tables.items():
            view = table.view()
            if view is not None:
                out[contest] = view
        return out

    async def wait_for(self, contest_id: str, after_version: int) -> LiquidityView:
        current = self.view(contest_id)
        if current is not None and not current.stale and current.version > after_version:
            return current
        failed = self._gave_up.get(contest_id)
        if failed is not None:
            raise failed
        future: asyncio.Future[LiquidityView] = asyncio.get_running_loop().create_future()
        entry = (after_version, future)
        self._waiters.setdefault(contest_id, []).append(entry)
        try:
            return await future
        finally:
            waiters = self._waiters.get(contest_id)
            if waiters is not None and entry in waiters:
                waiters.remove(entry)
                if not waiters:
                    del self._waiters[contest_id]

    def feed(self, contest_ids: Iterable[str] | None, maxsize: int) -> Feed[LiquidityView]:
        """A conflating feed of views (newest per contest), starting with the current ones."""
        wanted = None if contest_ids is None else set(contest_ids)
        queue: MessageQueue[LiquidityView] = MessageQueue(
            maxsize, OverflowStrategy.CONFLATE, conflate_key=lambda view: view.contest_id
        )
        feed: Feed[LiquidityView] = Feed(queue, contest_filter(wanted, None), self._detach)
        for view in self.views.values():
            feed.offer(view)
        self._feeds = (*self._feeds, feed)
        return feed

    def _detach(self, feed: Feed[Any]) -> None:
        self._feeds = tuple(f for f in self._feeds if f is not feed)

    def _publish(self, table: ContestTable) -> None:
        if not self._feeds and not self._waiters:
            return
        view = table.view()
        if view is None:
            return
        for feed in self._feeds:
            feed.offer(view)
        waiters = self._waiters.get(table.contest_id)
        if waiters and not view.stale:
            for after, future in waiters:
                if view.version > after and not future.done():
                    future.set_result(view)

    # ------------------------------------------------------------------ ending

    def close(self, error: OpenMarketsError | None = None) -> None:
        """End feeds (with ``error`` when given) and waiters; stop starting rebuilds. Idempotent."""
        self._closed = True
        for feed in self._feeds:
            if error is None:
                feed.close()
            else:
                feed.fail(error)
        for waiters in self._waiters.values():
            for _, future in waiters:
                if future.done():
                    continue
                if error is None:
                    future.cancel()
                else:
                    future.set_exception(error)
        self._waiters.clear()

    async def aclose(self) -> None:
        self.close()
        if self.refresher is not None:
            await self.refresher.aclose()
