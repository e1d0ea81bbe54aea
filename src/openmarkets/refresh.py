"""Rebuilding liquidity tables from REST snapshots: one kept task per contest, bounded concurrency, backoff.

A refresh runs only while its table is ``live`` (the subscription is confirmed on a connected link) and
``refreshing``. Each round notes the table's generation, fetches, and offers the snapshot to
:meth:`~openmarkets.table.ContestTable.rebuild`; a snapshot from an older generation is refused and the round
repeats, so a table never goes live from a snapshot that predates a ``refresh_required`` or a reconnect.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from kalshi.ws.connection import backoff_delay
from kalshi.ws.hooks import HookRunner
from openmarkets.errors import (
    OpenMarketsAuthError,
    OpenMarketsConnectionError,
    OpenMarketsError,
    OpenMarketsProtocolError,
    RefreshError,
)
from openmarkets.link import LinkSettings
from openmarkets.rest import LiquidityRest
from openmarkets.table import ContestTable

__all__ = ["RefreshOwner", "Refresher"]

logger = logging.getLogger(__name__)


class RefreshOwner(Protocol):
    """What the refresher needs from the stream."""

    @property
    def is_closing(self) -> bool: ...

    def table_for(self, contest_id: str) -> ContestTable | None: ...

    def table_rebuilt(self, table: ContestTable) -> None: ...

    def report(self, error: OpenMarketsError) -> None: ...


class Refresher:
    """Runs the REST rebuilds of a stream's tables."""

    def __init__(
        self,
        owner: RefreshOwner,
        rest: LiquidityRest,
        hooks: HookRunner,
        settings: LinkSettings,
        *,
        max_concurrent: int,
    ) -> None:
        self._owner = owner
        self._rest = rest
        self._hooks = hooks
        self._settings = settings
        self._slots = asyncio.Semaphore(max(1, max_concurrent))
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self.rebuilds = 0
        self.failures = 0

    def ensure(self, contest_id: str) -> None:
        """Start a rebuild of the contest's table unless one is running or none is needed."""
        task = self._tasks.get(contest_id)
        if task is not None and not task.done():
            return  # it re-checks the generation after every fetch
        table = self._owner.table_for(contest_id)
        if table is None or not table.live or not table.refreshing or self._owner.is_closing:
            return
        self._tasks[contest_id] = self._hooks.spawn(self._run(contest_id))

    def forget(self, contest_id: str) -> None:
        """The contest was unsubscribed: stop its rebuild."""
        task = self._tasks.pop(contest_id, None)
        if task is not None:
            task.cancel()

    async def wait_idle(self) -> None:
        """Wait until no rebuild is running (including ones started meanwhile)."""
        while True:
            running = [task for task in self._tasks.values() if not task.done()]
            if not running:
                return
            await asyncio.wait(running)

    async def aclose(self) -> None:
        await self._rest.aclose()

    async def _run(self, contest_id: str) -> None:
        settings = self._settings
        attempt = 0
        try:
            while not self._owner.is_closing:
                table = self._owner.table_for(contest_id)
                if table is None or not table.live or not table.refreshing:
                    return
                generation = table.generation
                try:
                    async with self._slots:
                        snapshot = await self._rest.fetch(contest_id)
                except OpenMarketsAuthError as exc:
                    self.failures += 1
                    self._owner.report(exc)
                    return
                except (RefreshError, OpenMarketsConnectionError, OpenMarketsProtocolError) as exc:
                    retryable = exc.retryable if isinstance(exc, RefreshError) else True
                    if not retryable or attempt >= settings.max_reconnect_attempts:
                        self.failures += 1
                        self._owner.report(_as_refresh_error(exc, contest_id))
                        return
                    delay = backoff_delay(
                        attempt, settings.reconnect_base_delay, settings.reconnect_max_delay, settings.rng
                    )
                    logger.info("liquidity of %s: %s; retrying in %.2f s", contest_id, exc, delay)
                    attempt += 1
                    await asyncio.sleep(delay)
                    continue
                current = self._owner.table_for(contest_id)
                if current is not table:
                    continue  # unsubscribed and subscribed again meanwhile: start over with the new table
                if table.rebuild(generation, snapshot.entries):
                    self.rebuilds += 1
                    self._owner.table_rebuilt(table)
                    return
                logger.debug("liquidity of %s: snapshot superseded (generation moved on); fetching again", contest_id)
        finally:
            if self._tasks.get(contest_id) is asyncio.current_task():
                del self._tasks[contest_id]


def _as_refresh_error(exc: OpenMarketsError, contest_id: str) -> RefreshError:
    if isinstance(exc, RefreshError):
        return exc
    return RefreshError(f"could not fetch the liquidity of {contest_id}: {exc}", contest_id=contest_id)
