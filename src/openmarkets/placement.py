"""Spreading contests over connections: at most ``limit`` contests per connection, ``max_connections`` in all.

Pure. A contest counts once per connection whatever channels it is subscribed on, so every channel of a
contest lives on the same connection. Placement is sticky: a contest stays where it is while subscribed;
new contests fill the existing connections first, in order, then new connections.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from openmarkets.errors import ContestLimitError

__all__ = ["Placement", "check_contest_ids", "place_contests"]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where new contests go.

    Attributes:
        existing: for each current connection (same order), the new contests it takes.
        new_connections: for each connection to open, its contests.
    """

    existing: list[list[str]]
    new_connections: list[list[str]]


def place_contests(
    current: Sequence[Iterable[str]],
    needed: Iterable[str],
    *,
    limit: int,
    max_connections: int,
) -> Placement:
    """Place every contest of ``needed`` that no connection carries yet.

    Args:
        current: the contests each open connection keeps (only those still needed).
        needed: every contest that must be carried after the change, over all channels.
        limit: most contests per connection.
        max_connections: most connections.

    Returns:
        The placement of the new contests.

    Raises:
        ContestLimitError: ``needed`` does not fit in ``max_connections`` x ``limit``.
    """
    loads = [len(set(contests)) for contests in current]
    carried: set[str] = set()
    for contests in current:
        carried.update(contests)
    wanted = list(dict.fromkeys(needed))
    fresh = [contest for contest in wanted if contest not in carried]
    existing: list[list[str]] = []
    position = 0
    for load in loads:
        room = max(0, limit - load)
        existing.append(fresh[position : position + room])
        position += room
    rest = fresh[position:]
    new_connections = [rest[i : i + limit] for i in range(0, len(rest), limit)]
    if len(loads) + len(new_connections) > max_connections:
        total = len(wanted)
        raise ContestLimitError(
            f"{total} contests (over all channels) do not fit in {max_connections} connections of {limit} "
            f"contests each; subscribe to fewer contests, or raise max_connections if the server allows more "
            f"connections for this API key",
            requested=total,
            limit=max_connections * limit,
        )
    return Placement(existing, new_connections)


def check_contest_ids(contest_ids: Iterable[str]) -> list[str]:
    """Validate and de-duplicate contest ids, keeping their order.

    Raises:
        TypeError: a single string was passed instead of a list, or an id is not a string.
        ValueError: an id is empty.
    """
    if isinstance(contest_ids, str | bytes):
        raise TypeError("pass a list of contest ids, not a single string: subscribe(['ct_abc123'])")
    ids: dict[str, None] = {}
    for contest_id in contest_ids:
        if not isinstance(contest_id, str):
            raise TypeError(f"contest ids are strings, got {type(contest_id).__name__}")
        if not contest_id:
            raise ValueError("a contest id cannot be empty")
        ids[contest_id] = None
    return list(ids)
