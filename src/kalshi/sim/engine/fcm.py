"""FCM members and their subtraders: each subtrader trades as an engine account of its own (sans-I/O).

A futures commission merchant (FCM) account creates subtraders; subtrader ``<fcm>~<suffix>`` is an engine
account (opened by the REST side) whose orders, fills and positions the FCM reads through ``/fcm/*``.
The book also keeps each subtrader's blocked categories and event-contract daily cap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from kalshi.sim.engine.types import EngineError

__all__ = ["FcmBook", "SubtraderRecord"]

_SEPARATOR: Final = "~"


@dataclass(slots=True)
class SubtraderRecord:
    """One subtrader of an FCM."""

    subtrader_id: str
    fcm: str
    blocked_categories: set[str] = field(default_factory=set)
    daily_cap_micros: int | None = None

    @property
    def account(self) -> str:
        """The engine account the subtrader trades as."""
        return self.subtrader_id


class FcmBook:
    """Subtraders by id, in creation order."""

    __slots__ = ("_subtraders",)

    def __init__(self) -> None:
        self._subtraders: dict[str, SubtraderRecord] = {}

    def create(self, fcm: str, suffix: str) -> SubtraderRecord:
        """A new subtrader ``<fcm>~<suffix>``.

        Raises:
            EngineError: ``invalid_parameters`` for an empty or odd suffix, ``subtrader_exists`` (409).
        """
        if not suffix or not suffix.replace("-", "").replace("_", "").isalnum() or len(suffix) > 40:
            raise EngineError(
                "invalid_parameters", "subtrader_suffix: 1 to 40 letters, digits, '-' or '_', like 'desk-1'"
            )
        subtrader_id = f"{fcm}{_SEPARATOR}{suffix}"
        if subtrader_id in self._subtraders:
            raise EngineError("subtrader_exists", f"subtrader {subtrader_id!r} exists", status=409)
        record = SubtraderRecord(subtrader_id, fcm)
        self._subtraders[subtrader_id] = record
        return record

    def of(self, fcm: str) -> list[SubtraderRecord]:
        """The FCM's subtraders, oldest first."""
        return [s for s in self._subtraders.values() if s.fcm == fcm]

    def get(self, fcm: str, subtrader_id: str) -> SubtraderRecord:
        """One of the FCM's subtraders.

        Raises:
            EngineError: ``subtrader_not_found`` (404).
        """
        record = self._subtraders.get(subtrader_id)
        if record is None or record.fcm != fcm:
            raise EngineError("subtrader_not_found", f"no subtrader {subtrader_id[:80]!r} of this FCM", status=404)
        return record
