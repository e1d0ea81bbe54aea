"""DisruptionTracker: when state kept from the unsequenced private channels must be reconciled (no sockets)."""

from __future__ import annotations

from kalshi.ws.disruptions import DisruptionTracker
from kalshi.ws.lifecycle import Closed, Connected, Disconnected, Gap, Reconnected, Resubscribed


def test_a_reconnect_is_due_only_once_every_tracked_subscription_is_back() -> None:
    tracker = DisruptionTracker([1, 2])
    tracker.observe(Connected("ws://x"))
    assert not tracker.due and not tracker.pending
    tracker.observe(Reconnected("ws://x", 1, 0.1))
    assert tracker.pending and not tracker.due
    tracker.observe(Resubscribed("fill", (7,), subscription=1))
    tracker.observe(Resubscribed("ticker", (8,), subscription=99))  # not ours
    assert not tracker.due
    tracker.observe(Resubscribed("user_orders", (9,), subscription=2))
    assert tracker.due
    tracker.reconciled()
    assert not tracker.due and not tracker.pending


def test_a_gap_on_one_tracked_subscription_waits_for_that_one_only() -> None:
    tracker = DisruptionTracker([1])
    tracker.watch(2)
    tracker.observe(Gap("orderbook_delta", 5, subscription=3))  # another subscription's gap
    assert not tracker.pending
    tracker.observe(Gap("fill", 4, reason="subscription_error", subscription=2))
    assert tracker.pending and not tracker.due
    tracker.observe(Resubscribed("fill", (10,), subscription=2))
    assert tracker.due


def test_a_second_reconnect_before_reconciling_waits_for_the_second_resubscription() -> None:
    tracker = DisruptionTracker([1])
    tracker.observe(Reconnected("ws://x", 1, 0.1))
    tracker.observe(Resubscribed("fill", (1,), subscription=1))
    assert tracker.due
    tracker.observe(Reconnected("ws://x", 1, 0.1))  # again, before anyone reconciled
    assert not tracker.due and tracker.pending
    tracker.observe(Resubscribed("fill", (2,), subscription=1))
    assert tracker.due
    tracker.observe(Closed("done"))
    assert tracker.closed


def test_a_lost_connection_is_pending_at_once_not_only_once_reconnected() -> None:
    tracker = DisruptionTracker([1])
    tracker.observe(Disconnected("connection_lost"))
    assert tracker.pending and not tracker.due  # updates are being lost from now on
    tracker.observe(Reconnected("ws://x", 3, 2.0))
    tracker.observe(Resubscribed("fill", (4,), subscription=1))
    assert tracker.due
    tracker.reconciled()
    assert not tracker.pending
