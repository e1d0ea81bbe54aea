"""Per-account settings the exchange keeps outside the ledger (sans-I/O): API usage level, the target
balance allocation across exchange instances, and the log of intra-exchange instance transfers.

The simulator runs one exchange instance for event contracts; the ``margined`` instance is a cash bucket of
the account, so moving money there and back is exact and visible in the ``event_contract`` balance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = ["LEVEL_GOALS_UNITS", "USAGE_LEVELS", "AccountSettings", "InstanceTransfer", "SettingsBook"]

Instance = Literal["event_contract", "margined"]
USAGE_LEVELS: Final = ("basic", "advanced", "premier", "prime")
# 30-day traded contracts (units of 1/100) to earn and keep each level above basic (scaled down for a simulator).
LEVEL_GOALS_UNITS: Final = {
    "advanced": (100_00, 50_00),
    "premier": (10_000_00, 5_000_00),
    "prime": (100_000_00, 50_000_00),
}


@dataclass(frozen=True, slots=True)
class InstanceTransfer:
    """Cash moved between two exchange instances of one account."""

    transfer_id: str
    account: str
    source: Instance
    destination: Instance
    amount_micros: int
    created_ms: int


@dataclass(slots=True)
class AccountSettings:
    """One account's settings."""

    usage_level: str = "basic"
    allocations: dict[int, int] = field(default_factory=lambda: {0: 100})
    resting_margin_reservation: Literal["none", "max", "sum"] = "none"
    margined_micros: int = 0


class SettingsBook:
    """Settings and instance transfers of every account."""

    __slots__ = ("_settings", "_transfers")

    def __init__(self) -> None:
        self._settings: dict[str, AccountSettings] = {}
        self._transfers: list[InstanceTransfer] = []

    def of(self, account: str) -> AccountSettings:
        """The account's settings (defaults until changed)."""
        found = self._settings.get(account)
        if found is None:
            found = self._settings[account] = AccountSettings()
        return found

    def record_transfer(self, transfer: InstanceTransfer) -> None:
        """Log an instance transfer."""
        self._transfers.append(transfer)

    def transfers(self, account: str) -> list[InstanceTransfer]:
        """The account's instance transfers, oldest first."""
        return [t for t in self._transfers if t.account == account]
