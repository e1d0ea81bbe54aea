"""A consumer's position in one relay stream, and the continuity of what it reads (sans-I/O).

Entry ids are ``<epoch>-<n>`` with ``n`` counting a relay run's entries without holes (see
:mod:`kalshi.relay.layout`), so a reader knows from the ids alone whether it missed entries. :class:`StreamState`
keeps the last id read and checks each read: :meth:`StreamState.follows_on` in one step for a whole read that
continues where the last one ended (the usual case), :meth:`StreamState.advance` entry by entry otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kalshi.relay.layout import parse_id

if TYPE_CHECKING:
    from kalshi.relay.subscription import RelaySubscription

__all__ = ["StreamState", "fields_of"]


class StreamState:
    """Where a consumer is in stream ``key`` (of ``channel``), and the subscriptions fed from it.

    Args:
        key: the stream key.
        channel: its channel.
        last: the id to read after (``"0-0"``: from the start; ``"0"`` or ``">"``: a consumer group's).
    """

    __slots__ = ("channel", "epoch_prefix", "key", "last", "last_pos", "subs")

    def __init__(self, key: str, channel: str, last: str) -> None:
        self.key = key
        self.channel = channel
        self.last = last
        # ``last`` parsed, for the continuity check (None: read from the start, nothing to compare with).
        self.last_pos: tuple[int, int] | None = None
        self.epoch_prefix = "-"
        self.restart(last)
        self.subs: list[RelaySubscription[Any]] = []

    def restart(self, last: str) -> None:
        """Read on after ``last`` (a checkpoint's entry, say), forgetting what was read before."""
        self.last = last
        self.last_pos = None if last in ("0-0", "0", ">") else parse_id(last)
        self.epoch_prefix = "-" if self.last_pos is None else f"{self.last_pos[0]}-"

    def follows_on(self, entries: list[Any]) -> bool:
        """Whether a read (``[[id, fields], ...]``) continues right after the last entry read, without a hole:
        ids only grow, so its first and last ids tell. If so, the read is the new position."""
        last = self.last_pos
        if last is None or not entries:
            return False
        prefix = self.epoch_prefix
        first_id = entries[0][0].decode()
        last_id = entries[-1][0].decode()
        if not (first_id.startswith(prefix) and last_id.startswith(prefix)):
            return False
        first_n = int(first_id[len(prefix) :])
        last_n = int(last_id[len(prefix) :])
        if first_n != last[1] + 1 or last_n - first_n != len(entries) - 1:
            return False
        self.last_pos = (last[0], last_n)
        self.last = last_id
        return True

    def advance(self, entry_id: str) -> tuple[int, int] | None:
        """Move to ``entry_id``; returns ``(first missing n, n of entry_id)`` when entries of its relay run were
        skipped (trimmed away, or lost by Redis), else None. A run's entries count from 0, so the first one read
        of a new run tells how many of its entries came before."""
        last = self.last_pos
        if last is not None and entry_id.startswith(self.epoch_prefix):  # same relay run: parse the count only
            now = (last[0], int(entry_id[len(self.epoch_prefix) :]))
        else:
            now = parse_id(entry_id)
            self.epoch_prefix = f"{now[0]}-"
        self.last_pos = now
        self.last = entry_id
        if last is None:
            return None
        if now[0] == last[0]:
            return (last[1] + 1, now[1]) if now[1] > last[1] + 1 else None
        # A new relay run read after the last one: its first entries (its relay_start among them) were trimmed
        # before this consumer got to them.
        return (0, now[1]) if now[1] > 0 else None


def fields_of(stored: Any) -> dict[bytes, bytes]:
    """An entry's fields as a dict, from hiredis's flat ``[name, value, ...]`` (or a dict already)."""
    if stored.__class__ is not list:
        return stored  # type: ignore[no-any-return]
    if len(stored) == 4:  # data and control entries both have two fields
        return {stored[0]: stored[1], stored[2]: stored[3]}
    return dict(zip(stored[::2], stored[1::2], strict=False))
