"""A consumer group that vanished while a :class:`~kalshi.relay.client.RelayFeed` member was reading through it.

Redis restarted without persistence, the stream was deleted (``DEL``, ``FLUSHALL``) or the group destroyed
(``XGROUP DESTROY``): the member's reads answer ``NOGROUP``. It then creates the group again (``XGROUP CREATE ...
MKSTREAM``) after the newest entry it read, so it goes on with the entries written since (another member may have
created it first: ``BUSYGROUP`` is fine). What the old group held is gone with it: entries handed to members and
not acknowledged, and entries no member had read yet. That is reported as a :class:`~kalshi.ws.lifecycle.Gap`
(``reason="trimmed"``, ``received=None``: how many is unknown) on each stream whose group was lost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from kalshi.relay.reads import StreamReads
from kalshi.relay.streams import StreamState
from kalshi.ws.lifecycle import Gap, LifecycleEvent

if TYPE_CHECKING:
    from kalshi.relay.client import RelayClient

__all__ = ["GroupRecovery"]


def _is(error: BaseException, code: str) -> bool:
    return isinstance(error, ResponseError) and str(error).startswith(code)


class GroupRecovery:
    """Makes a group member's vanished consumer group again and reports what was lost.

    Args:
        redis: the feed's redis-py client.
        client: the feed's :class:`~kalshi.relay.client.RelayClient` (its ``group``, ``consumer`` and ``start``).
        reads: the feed's reads (the newest entry id the member read per stream).
        publish: publishes a lifecycle event of the feed.
    """

    def __init__(
        self, redis: Any, client: RelayClient, reads: StreamReads, publish: Callable[[LifecycleEvent], None]
    ) -> None:
        self._redis = redis
        self._client = client
        self._reads = reads
        self._publish = publish
        self._lost = False
        self._done: set[str] = set()  # streams restored before a restore failed part way

    def noticed(self, error: BaseException) -> bool:
        """Whether ``error`` says the group is gone; if so, the next :meth:`restore` makes it again."""
        if not _is(error, "NOGROUP"):
            return False
        self._lost = True
        return True

    async def restore(self, states: Mapping[str, StreamState]) -> int:
        """After a ``NOGROUP``: create the group again on the streams of ``states`` that lost it, each reported as
        a gap; returns how many.

        Raises:
            RedisError, OSError: Redis did not answer (the next call goes on where this one stopped).
        """
        if not self._lost:
            return 0
        gaps = 0
        # NOGROUP does not always name the stream (a blocked read's does not): every stream is checked.
        for key, state in list(states.items()):
            if key in self._done:
                continue
            if await self._recreated(key):
                state.last = ">"  # nothing of this member is pending in a new group
                gaps += 1
                self._publish(Gap(state.channel, None, None, None, (), "trimmed"))
            self._done.add(key)
        self._lost = False
        self._done.clear()
        return gaps

    async def _recreated(self, key: str) -> bool:
        """Whether stream ``key``'s group was lost (and is there again now)."""
        group, consumer = self._client.group, self._client.consumer
        assert group is not None and consumer is not None
        newest = self._reads.newest.get(key)
        at = newest or ("$" if self._client.start == "latest" else "0")
        try:
            await self._redis.xgroup_create(key, group, id=at, mkstream=True)
            return True
        except ResponseError as exc:
            if not _is(exc, "BUSYGROUP"):
                raise
        if newest is None:
            return False  # nothing read from it yet: nothing of this member's to lose
        # Made again by another member first (this member is not in it), or never lost.
        names = {member.get("name") for member in await self._redis.xinfo_consumers(key, group)}
        return not names & {consumer, consumer.encode()}
