"""When state kept from channels without sequence numbers must be re-read over REST (sans-I/O).

``fill``, ``user_orders`` and ``market_positions`` carry no ``seq``: a lost connection, or the server ending one of
these subscriptions (error 25, and the client re-subscribes), is the only sign that updates were lost. A
reconciliation must wait until every affected subscription flows again, or what happens before a channel is
back would be missed and nothing would reveal it. :class:`DisruptionTracker` follows the session's lifecycle
events and says when that moment has come; :class:`~kalshi.portfolio.Portfolio` and the live strategy runner
use it.
"""

from __future__ import annotations

from collections.abc import Iterable

from kalshi.ws.lifecycle import Closed, Disconnected, Gap, LifecycleEvent, Reconnected, Resubscribed

__all__ = ["DisruptionTracker"]


class DisruptionTracker:
    """Which of ``subscriptions`` (``Subscription.client_id`` values) were disrupted, and whether a
    reconciliation is due.

    Feed it every lifecycle event with :meth:`observe`; reconcile when :attr:`due` is true, then call
    :meth:`reconciled`.
    """

    __slots__ = ("_awaiting", "_due", "_mine", "closed")

    def __init__(self, subscriptions: Iterable[int] = ()) -> None:
        self._mine = set(subscriptions)
        self._awaiting: set[int] = set()
        self._due = False
        self.closed = False

    def watch(self, subscription: int) -> None:
        """Also track ``subscription``."""
        self._mine.add(subscription)

    def observe(self, event: LifecycleEvent | object) -> None:
        """Take one lifecycle event into account (anything else is ignored)."""
        if isinstance(event, Closed):
            self.closed = True
        elif isinstance(event, (Disconnected, Reconnected)):
            # Pending from the moment the link drops (updates are lost from then on), not only once it is back.
            self._awaiting.update(self._mine)
            self._due = True
        elif isinstance(event, Gap) and event.subscription in self._mine:
            self._awaiting.add(event.subscription)
            self._due = True
        elif isinstance(event, Resubscribed) and event.subscription is not None:
            self._awaiting.discard(event.subscription)

    def request(self) -> None:
        """Ask for a reconciliation without a disruption (e.g. a request whose outcome is unknown)."""
        self._due = True

    @property
    def due(self) -> bool:
        """A disruption was seen and every disrupted subscription is live again: reconcile now."""
        return self._due and not self._awaiting

    @property
    def pending(self) -> bool:
        """A disruption was seen and not reconciled yet (its subscriptions may still be coming back)."""
        return self._due or bool(self._awaiting)

    def reconciled(self) -> None:
        """A reconciliation that started after the last disruption finished."""
        self._due = False
