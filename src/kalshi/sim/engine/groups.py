"""Order groups: a contracts limit per rolling 15 s window; hitting it cancels the group's orders."""

from __future__ import annotations

from kalshi.sim.engine.core import EngineCore, GroupRecord
from kalshi.sim.engine.events import GroupEventType, OrderGroupEvent
from kalshi.sim.engine.types import EngineError, OrderGroupView

__all__ = ["GroupDesk"]


class GroupDesk:
    """Order-group management; :class:`~kalshi.sim.engine.Engine` forwards to it.

    The groups live in the core (:attr:`EngineCore.groups`) because every fill counts against its orders'
    groups; this desk creates, changes, resets, triggers and deletes them.

    Args:
        core: the engine's state and primitives.
    """

    __slots__ = ("_core",)

    def __init__(self, core: EngineCore) -> None:
        self._core = core

    def _own_group(self, account: str, group_id: str) -> GroupRecord:
        group = self._core.groups.get(group_id)
        if group is None or group.account != account:
            raise EngineError("order_group_not_found", f"no order group {group_id!r} for this account", status=404)
        return group

    def _group_view(self, group: GroupRecord) -> OrderGroupView:
        return OrderGroupView(
            order_group_id=group.group_id,
            account=group.account,
            contracts_limit_units=group.limit,
            is_triggered=group.triggered,
            matched_in_window_units=group.matched(max(self._core.now, self._core.clock_ms())),
            order_ids=tuple(group.order_ids),
        )

    def _group_event(self, group: GroupRecord, event_type: GroupEventType, limit: int | None = None) -> None:
        self._core.outbox.append(
            OrderGroupEvent(
                account=group.account,
                order_group_id=group.group_id,
                event_type=event_type,
                contracts_limit_units=limit,
                ts_ms=self._core.now,
            )
        )

    @staticmethod
    def _check_limit(contracts_limit_units: int) -> None:
        if not isinstance(contracts_limit_units, int) or contracts_limit_units <= 0:
            raise EngineError("invalid_parameters", "contracts_limit must be a positive count")

    def create_order_group(self, account: str, contracts_limit_units: int) -> OrderGroupView:
        """Create an order group matching at most ``contracts_limit_units`` per rolling 15 s.

        Raises:
            EngineError: ``account_not_found``, ``invalid_parameters``.
        """
        core = self._core
        core.begin()
        try:
            core.account(account)
            self._check_limit(contracts_limit_units)
            group = GroupRecord(group_id=core.ids.new(), account=account, limit=contracts_limit_units)
            core.groups[group.group_id] = group
            self._group_event(group, "created", contracts_limit_units)
            return self._group_view(group)
        finally:
            core.end()

    def order_group(self, account: str, group_id: str) -> OrderGroupView:
        """One order group of ``account``.

        Raises:
            EngineError: ``order_group_not_found``.
        """
        return self._group_view(self._own_group(account, group_id))

    def order_groups(self, account: str) -> list[OrderGroupView]:
        """Every order group of ``account``, oldest first."""
        return [self._group_view(g) for g in self._core.groups.values() if g.account == account]

    def update_order_group_limit(self, account: str, group_id: str, contracts_limit_units: int) -> OrderGroupView:
        """Change the limit; if the window already holds that much the group triggers at once.

        Raises:
            EngineError: ``order_group_not_found``, ``invalid_parameters``.
        """
        core = self._core
        now = core.begin()
        try:
            group = self._own_group(account, group_id)
            self._check_limit(contracts_limit_units)
            group.limit = contracts_limit_units
            self._group_event(group, "limit_updated", contracts_limit_units)
            if not group.triggered and group.matched(now) >= group.limit:
                core.trigger_group(group)
            return self._group_view(group)
        finally:
            core.end()

    def reset_order_group(self, account: str, group_id: str) -> OrderGroupView:
        """Zero the matched counter and accept orders again after a trigger.

        Raises:
            EngineError: ``order_group_not_found``.
        """
        self._core.begin()
        try:
            group = self._own_group(account, group_id)
            group.window.clear()
            group.triggered = False
            self._group_event(group, "reset")
            return self._group_view(group)
        finally:
            self._core.end()

    def trigger_order_group(self, account: str, group_id: str) -> OrderGroupView:
        """Trigger by hand: cancel the group's orders and refuse new ones until reset.

        Raises:
            EngineError: ``order_group_not_found``.
        """
        core = self._core
        core.begin()
        try:
            group = self._own_group(account, group_id)
            core.trigger_group(group)
            return self._group_view(group)
        finally:
            core.end()

    def delete_order_group(self, account: str, group_id: str) -> None:
        """Cancel the group's orders and delete it.

        Raises:
            EngineError: ``order_group_not_found``.
        """
        core = self._core
        core.begin()
        try:
            group = self._own_group(account, group_id)
            core.cancel_group_orders(group)
            del core.groups[group_id]
            self._group_event(group, "deleted")
        finally:
            core.end()
