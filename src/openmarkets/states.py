"""The state of each ``contest_state`` contest as last seen, and whether it is still current.

The same rule as the liquidity tables: when a contest's connection drops, what was seen before goes stale (an
update sent while the connection was down is lost), and it stays stale until the stream tells the state again.
Unlike a table, a state has no REST snapshot and the server sends none on (re)subscribe, so it is current again
only with the first ``contest_state.update`` after the reconnect. Unsubscribed contests are forgotten.
All of it runs on the event loop; the update path is synchronous.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from openmarkets.models import ContestStateUpdate

__all__ = ["ContestStateView", "ContestStates"]


@dataclass(frozen=True, slots=True)
class ContestStateView:
    """A contest's state as last seen on the ``contest_state`` channel.

    Attributes:
        contest_id: the contest.
        state: the state of its last ``contest_state.update`` (e.g. ``"live"``).
        timestamp: that update's ``timestamp`` (None when it carried none).
        stale: True from the moment the contest's connection dropped until the first update after the
            reconnect: the contest may have changed state meanwhile.
    """

    contest_id: str
    state: str
    timestamp: datetime | None
    stale: bool = False


class ContestStates:
    """The :class:`ContestStateView` of every contest a stream has seen a state for."""

    __slots__ = ("_views",)

    def __init__(self) -> None:
        self._views: dict[str, ContestStateView] = {}

    def __repr__(self) -> str:
        return f"ContestStates(contests={len(self._views)})"

    def on_update(self, message: ContestStateUpdate) -> None:
        """Apply one ``contest_state.update`` (receive path): the state is current."""
        self._views[message.contest_id] = ContestStateView(message.contest_id, message.state, message.timestamp)

    def lost(self, contests: Iterable[str]) -> None:
        """Their connection dropped: their states go stale until their next update."""
        views = self._views
        for contest in contests:
            view = views.get(contest)
            if view is not None and not view.stale:
                views[contest] = replace(view, stale=True)

    def keep_only(self, subscribed: Iterable[str]) -> None:
        """Forget the contests no longer subscribed on ``contest_state``."""
        keep = set(subscribed)
        for contest in [c for c in self._views if c not in keep]:
            del self._views[contest]

    def view(self, contest_id: str) -> ContestStateView | None:
        """The last state seen (flagged stale when it may be out of date), or None."""
        return self._views.get(contest_id)

    def current(self, contest_id: str) -> str | None:
        """The state while it is current; None when none was seen or it is stale."""
        view = self._views.get(contest_id)
        return None if view is None or view.stale else view.state

    @property
    def views(self) -> Mapping[str, ContestStateView]:
        """Every contest's last seen state, by contest id (a copy)."""
        return dict(self._views)
