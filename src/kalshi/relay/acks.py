"""What a consumer-group member of a :class:`~kalshi.relay.client.RelayFeed` acknowledges (``XACK``), and when.

An entry is acknowledged once every subscription of the member that got it has taken it: a subscription takes
an entry when its iterator is asked for the item after it (or at :meth:`RelayFeed.ack
<kalshi.relay.client.RelayFeed.ack>`). Only entries several subscriptions got are counted; one that a single
subscription got (the usual case) is acknowledged as soon as it is taken.

Until Redis has the acknowledgement, the member holds the entry: ``XAUTOCLAIM`` gives a member its own idle
entries too, and one it holds (queued for a slow consumer, say) must not be handed out a second time.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GroupAcks"]


class GroupAcks:
    """The acknowledgements of one group member: those due (sent by :meth:`flush`), and the entries several of
    its subscriptions got, with how many of them have yet to take each, and the entries it holds (got and not
    acknowledged in Redis yet)."""

    def __init__(self) -> None:
        self._due: dict[str, list[str]] = {}
        self._shared: dict[str, dict[str, int]] = {}  # stream key -> entry id -> subscriptions yet to take it
        self._held: dict[str, set[str]] = {}  # stream key -> ids got and not acknowledged in Redis yet

    def hold(self, key: str, entries: list[Any]) -> None:
        """The member got ``entries`` (``[[id, fields], ...]``, ids as bytes) of stream ``key``: it holds them
        until their acknowledgement is sent."""
        if entries:
            self._held.setdefault(key, set()).update(entry[0].decode() for entry in entries)

    def holds(self, key: str, entry_id: str) -> bool:
        """Whether the member holds entry ``entry_id`` of stream ``key`` (got it, not acknowledged yet)."""
        held = self._held.get(key)
        return held is not None and entry_id in held

    def share(self, key: str, entry_id: str, takers: int) -> None:
        """``takers`` (more than one) subscriptions got entry ``entry_id`` of stream ``key``: acknowledge it once
        they all took it. Called before any of them can take it."""
        counts = self._shared.setdefault(key, {})
        counts[entry_id] = counts.get(entry_id, 0) + takers  # got again (claimed back) before taken: both count

    def taken(self, key: str, entry_id: str | list[str]) -> None:
        """One subscription took these entries of stream ``key`` (or no subscription wants them): acknowledge
        those no other subscription still has to take."""
        due = self._due.setdefault(key, [])
        counts = self._shared.get(key) if self._shared else None
        if counts is None:
            if isinstance(entry_id, list):
                due.extend(entry_id)
            else:
                due.append(entry_id)
            return
        for one in [entry_id] if isinstance(entry_id, str) else entry_id:
            left = counts.get(one)
            if left is not None and left > 1:
                counts[one] = left - 1
                continue
            if left is not None:
                del counts[one]
            due.append(one)
        if not counts:
            del self._shared[key]  # nothing shared left: back to the cheap path

    async def flush(self, redis: Any, group: str) -> None:
        """Send the acknowledgements due; those a failing ``XACK`` did not take stay due."""
        due, self._due = self._due, {}
        pending = list(due.items())
        while pending:
            key, ids = pending[0]
            if ids:
                try:
                    await redis.xack(key, group, *ids)
                except BaseException:
                    for key, ids in pending:  # this stream's and the ones after it
                        self._due.setdefault(key, []).extend(ids)
                    raise
                if (held := self._held.get(key)) is not None:
                    held.difference_update(ids)
            del pending[0]
