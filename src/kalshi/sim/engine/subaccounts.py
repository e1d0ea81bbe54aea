"""Subaccounts: numbered sub-ledgers of an account, their transfers and netting settings (sans-I/O).

Subaccount 0 is the account itself; subaccount ``n`` (1..63) is an engine account of its own, named
``"<owner>/sub<n>"``, so its orders, fills, positions and cash are separate and every engine rule applies to
it unchanged. :class:`SubaccountBook` keeps the numbering, the transfer log (idempotent on the client's
transfer id) and the netting flags; moving cash goes through the engine's ``deposit`` (see
:meth:`kalshi.sim.engine.Engine.transfer_between_subaccounts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from kalshi.sim.engine.types import EngineError

if TYPE_CHECKING:
    from kalshi.sim.engine.core import EngineCore
    from kalshi.sim.engine.lifecycle import LifecycleDesk

__all__ = [
    "MAX_SUBACCOUNT",
    "SubaccountBook",
    "SubaccountDesk",
    "SubaccountTransfer",
    "number_of",
    "owner_of",
    "subaccount_account",
]

MAX_SUBACCOUNT: Final = 63
_SEPARATOR: Final = "/sub"


def subaccount_account(owner: str, number: int) -> str:
    """The engine account of ``owner``'s subaccount ``number`` (0 is the owner itself)."""
    return owner if number == 0 else f"{owner}{_SEPARATOR}{number}"


def owner_of(account: str) -> str:
    """The account owning an engine account (itself for a primary account)."""
    owner, sep, number = account.rpartition(_SEPARATOR)
    return owner if sep and number.isdigit() else account


def number_of(account: str) -> int:
    """The subaccount number of an engine account (0 for a primary account)."""
    _, sep, number = account.rpartition(_SEPARATOR)
    return int(number) if sep and number.isdigit() else 0


@dataclass(frozen=True, slots=True)
class SubaccountTransfer:
    """One transfer of cash between two subaccounts of an owner (amount in whole cents)."""

    transfer_id: str
    client_transfer_id: str
    owner: str
    from_subaccount: int
    to_subaccount: int
    amount_cents: int
    created_ms: int


class SubaccountBook:
    """The subaccounts of every owner, their transfers and netting flags."""

    __slots__ = ("_by_client_id", "_netting", "_numbers", "_transfers")

    def __init__(self) -> None:
        self._numbers: dict[str, list[int]] = {}
        self._netting: dict[tuple[str, int], bool] = {}
        self._transfers: list[SubaccountTransfer] = []
        self._by_client_id: dict[tuple[str, str], SubaccountTransfer] = {}

    def numbers(self, owner: str) -> list[int]:
        """The owner's subaccount numbers, 0 first."""
        return [0, *self._numbers.get(owner, ())]

    def allocate(self, owner: str) -> int:
        """The next free subaccount number of ``owner`` (recorded as created).

        Raises:
            EngineError: ``subaccount_limit_reached`` past 63 subaccounts.
        """
        taken = self._numbers.setdefault(owner, [])
        number = len(taken) + 1
        if number > MAX_SUBACCOUNT:
            raise EngineError(
                "subaccount_limit_reached", f"an account has at most {MAX_SUBACCOUNT} subaccounts", status=400
            )
        taken.append(number)
        return number

    def resolve(self, owner: str, number: int) -> str:
        """The engine account of an existing subaccount.

        Raises:
            EngineError: ``subaccount_not_found`` when the owner never created it.
        """
        if number != 0 and number not in self._numbers.get(owner, ()):
            raise EngineError(
                "subaccount_not_found",
                f"subaccount {number} does not exist; create it with POST /portfolio/subaccounts",
                status=400,
            )
        return subaccount_account(owner, number)

    def netting(self, owner: str) -> list[tuple[int, bool]]:
        """``(number, enabled)`` for every subaccount (netting is on unless turned off)."""
        return [(n, self._netting.get((owner, n), True)) for n in self.numbers(owner)]

    def set_netting(self, owner: str, number: int, enabled: bool) -> None:
        """Turn netting of a subaccount on or off.

        Raises:
            EngineError: ``subaccount_not_found``.
        """
        self.resolve(owner, number)
        self._netting[(owner, number)] = enabled

    def previous_transfer(self, owner: str, client_transfer_id: str) -> SubaccountTransfer | None:
        """The transfer already made with this client transfer id (retries are idempotent)."""
        return self._by_client_id.get((owner, client_transfer_id))

    def record(self, transfer: SubaccountTransfer) -> None:
        """Log a completed transfer."""
        self._transfers.append(transfer)
        self._by_client_id[(transfer.owner, transfer.client_transfer_id)] = transfer

    def transfers(self, owner: str) -> list[SubaccountTransfer]:
        """The owner's transfers, oldest first."""
        return [t for t in self._transfers if t.owner == owner]


class SubaccountDesk:
    """Opening subaccounts and moving cash between them; :class:`~kalshi.sim.engine.Engine` forwards to it.

    Args:
        core: the engine's state and primitives.
        accounts: opens the subaccounts' engine accounts and moves their cash.
        book: the numbering and the transfer log.
    """

    __slots__ = ("_accounts", "_book", "_core")

    def __init__(self, core: EngineCore, accounts: LifecycleDesk, book: SubaccountBook) -> None:
        self._core = core
        self._accounts = accounts
        self._book = book

    def create_subaccount(self, owner: str) -> int:
        """Open the owner's next subaccount (an empty engine account); returns its number.

        Raises:
            EngineError: ``account_not_found``, ``subaccount_limit_reached``.
        """
        self._core.account(owner)
        number = self._book.allocate(owner)
        self._accounts.open_account(subaccount_account(owner, number), 0)
        return number

    def transfer_between_subaccounts(
        self, owner: str, client_transfer_id: str, from_number: int, to_number: int, amount_cents: int
    ) -> SubaccountTransfer:
        """Move available cash between two of the owner's subaccounts (a retry with the same id is a no-op).

        Raises:
            EngineError: ``subaccount_not_found``, ``invalid_parameters`` (same subaccount, non-positive
                amount), ``insufficient_balance``.
        """
        previous = self._book.previous_transfer(owner, client_transfer_id)
        if previous is not None:
            return previous
        source = self._book.resolve(owner, from_number)
        target = self._book.resolve(owner, to_number)
        if source == target:
            raise EngineError("invalid_parameters", "from_subaccount and to_subaccount must differ")
        if amount_cents <= 0:
            raise EngineError("invalid_parameters", "amount_cents must be positive")
        micros = amount_cents * 10_000
        self._accounts.deposit(source, -micros)  # raises insufficient_balance before anything moves
        self._accounts.deposit(target, micros)
        transfer = SubaccountTransfer(
            self._core.ids.new(), client_transfer_id, owner, from_number, to_number, amount_cents, self._core.now
        )
        self._book.record(transfer)
        return transfer
