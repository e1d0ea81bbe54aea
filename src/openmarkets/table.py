"""The maintained liquidity table of one contest, and its immutable views. Pure: no asyncio, no I/O.

A table is keyed by ``liquidity_hash``. ``liquidity.update`` entries carry absolute values (partner, price,
available), so applying one is an upsert, and ``available == 0`` removes the quote.

Rebuilding without a half-built table: when the table needs a fresh snapshot (first subscribe, reconnect,
``refresh_required``), :meth:`ContestTable.invalidate` starts a new *generation*. From then on updates are
buffered, not applied, and readers keep seeing the last complete version (its view says ``stale=True``). The
snapshot, fetched after the invalidation, goes through :meth:`ContestTable.rebuild`: a new dict is built from it,
the buffered updates are replayed on top in arrival order, and only then is it swapped in. Replaying updates the
snapshot already contains is harmless because each one sets absolute values and later ones win.

A snapshot fetched for an older generation is refused (another ``refresh_required`` or a reconnect happened
meanwhile: it might predate changes the stream no longer carries). If too many updates pile up while waiting,
the buffer is dropped and a new generation begins: the next snapshot covers what was dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Final

from openmarkets.models import LiquidityEntry

__all__ = ["DEFAULT_MAX_BUFFERED", "ContestTable", "LiquidityView"]

DEFAULT_MAX_BUFFERED: Final = 50_000
_ZERO: Final = 0


class LiquidityView(Mapping[str, LiquidityEntry]):
    """An immutable snapshot of one contest's table: a read-only mapping ``liquidity_hash -> LiquidityEntry``.

    Attributes:
        contest_id: the contest.
        version: increases with every change applied to the table (and every rebuild).
        stale: True while a newer snapshot is being fetched (after ``refresh_required`` or a reconnect);
            the entries are then the last complete table, not a partial one.
    """

    __slots__ = ("_entries", "contest_id", "stale", "version")

    def __init__(self, contest_id: str, version: int, entries: Mapping[str, LiquidityEntry], *, stale: bool) -> None:
        self.contest_id = contest_id
        self.version = version
        self.stale = stale
        self._entries: Mapping[str, LiquidityEntry] = MappingProxyType(dict(entries))

    def __getitem__(self, liquidity_hash: str) -> LiquidityEntry:
        return self._entries[liquidity_hash]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        flag = ", stale" if self.stale else ""
        return f"LiquidityView({self.contest_id!r}, version={self.version}, entries={len(self._entries)}{flag})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LiquidityView):
            return self.contest_id == other.contest_id and dict(self._entries) == dict(other._entries)
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # a mapping is unhashable, as Mapping.__eq__ implies

    @property
    def partners(self) -> frozenset[str]:
        """The partners quoting this contest."""
        return frozenset(entry.partner_id for entry in self._entries.values())

    def by_partner(self, partner_id: str) -> list[LiquidityEntry]:
        """The entries of one partner, in table order."""
        return [entry for entry in self._entries.values() if entry.partner_id == partner_id]


class ContestTable:
    """One contest's liquidity table with generation-checked rebuilds (see the module docstring)."""

    __slots__ = (
        "_buffer",
        "_entries",
        "_view",
        "built",
        "contest_id",
        "generation",
        "live",
        "max_buffered",
        "refreshing",
        "version",
    )

    def __init__(self, contest_id: str, *, max_buffered: int = DEFAULT_MAX_BUFFERED) -> None:
        self.contest_id = contest_id
        self.max_buffered = max_buffered
        self._entries: dict[str, LiquidityEntry] = {}
        self._buffer: list[LiquidityEntry] = []
        self._view: LiquidityView | None = None
        self.version = 0
        self.generation = 0
        self.built = False  # a complete table exists
        self.refreshing = True  # waiting for a snapshot; starts so: there is no table before the first one
        self.live = False  # the subscription is confirmed on a connected link (set by the stream)

    def __repr__(self) -> str:
        return (
            f"ContestTable({self.contest_id!r}, version={self.version}, entries={len(self._entries)}, "
            f"refreshing={self.refreshing}, buffered={len(self._buffer)})"
        )

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def buffered(self) -> int:
        """Updates held until the next rebuild."""
        return len(self._buffer)

    def invalidate(self) -> int:
        """Start a new generation: buffer updates from now on and wait for a snapshot fetched after this call.

        Returns:
            The new generation, to pass to :meth:`rebuild` with the snapshot.
        """
        self.generation += 1
        self.refreshing = True
        self._buffer.clear()
        self._view = None
        return self.generation

    def apply(self, changes: Iterable[LiquidityEntry]) -> bool:
        """Apply the entries of one ``liquidity.update`` (or buffer them during a refresh).

        Args:
            changes: the message's ``changed_entries``.

        Returns:
            True when the visible table changed; False when buffered (or when the buffer overflowed and a new
            generation began).
        """
        if self.refreshing:
            buffer = self._buffer
            buffer.extend(changes)
            if len(buffer) > self.max_buffered:
                self.invalidate()
            return False
        entries = self._entries
        changed = False
        for entry in changes:
            changed = True
            if entry.available == _ZERO:
                entries.pop(entry.liquidity_hash, None)
            else:
                entries[entry.liquidity_hash] = entry
        if changed:
            self.version += 1
            self._view = None
        return changed

    def rebuild(self, generation: int, snapshot: Iterable[LiquidityEntry]) -> bool:
        """Swap in a table built from a REST snapshot plus the updates buffered since :meth:`invalidate`.

        Args:
            generation: what :meth:`invalidate` returned before the snapshot was requested.
            snapshot: the snapshot's entries.

        Returns:
            True when swapped in; False when the snapshot is for an older generation (fetch again).
        """
        if generation != self.generation or not self.refreshing:
            return False
        fresh: dict[str, LiquidityEntry] = {}
        for entry in itertools.chain(snapshot, self._buffer):
            if entry.available == _ZERO:
                fresh.pop(entry.liquidity_hash, None)
            else:
                fresh[entry.liquidity_hash] = entry
        self._buffer.clear()
        self._entries = fresh
        self.refreshing = False
        self.built = True
        self.version += 1
        self._view = None
        return True

    def view(self) -> LiquidityView | None:
        """The current immutable view (cached until the table changes); None before the first rebuild."""
        if not self.built:
            return None
        view = self._view
        if view is None:
            view = self._view = LiquidityView(self.contest_id, self.version, self._entries, stale=self.refreshing)
        return view
