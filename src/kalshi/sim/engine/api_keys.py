"""API key records of accounts: names, scopes and the subaccount a key acts for (sans-I/O).

The signature check itself lives in :class:`kalshi.sim.keys.KeyRegistry` (it needs cryptography); this book
only remembers what the exchange shows about each key (``GET /api_keys``) and who owns it, so a key can be
listed and deleted by its owner only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from kalshi.sim.engine.types import EngineError

__all__ = ["SCOPES", "ApiKeyBook", "ApiKeyRecord"]

SCOPES: Final = (
    "read",
    "write",
    "read::block_trade_accept",
    "read::portfolio_balance",
    "write::trade",
    "write::transfer",
    "write::fcm_risk",
    "write::block_trade_accept",
)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """One API key as its owner sees it (never the key material)."""

    api_key_id: str
    owner: str
    name: str
    scopes: tuple[str, ...]
    subaccount: int | None
    fcm_subtrader_id: str | None
    created_ms: int


class ApiKeyBook:
    """Every API key the exchange issued or accepted, by id, in creation order."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: dict[str, ApiKeyRecord] = {}

    def add(self, record: ApiKeyRecord) -> None:
        """Record a key.

        Raises:
            EngineError: ``api_key_exists`` (409) when the id is taken.
        """
        if record.api_key_id in self._keys:
            raise EngineError("api_key_exists", f"an API key {record.api_key_id!r} already exists", status=409)
        self._keys[record.api_key_id] = record

    def owned(self, owner: str) -> list[ApiKeyRecord]:
        """The keys of ``owner``, oldest first."""
        return [k for k in self._keys.values() if k.owner == owner]

    def get(self, api_key_id: str) -> ApiKeyRecord | None:
        """One key's record, None when unknown."""
        return self._keys.get(api_key_id)

    def remove(self, owner: str, api_key_id: str) -> ApiKeyRecord:
        """Forget one of ``owner``'s keys.

        Raises:
            EngineError: ``api_key_not_found`` (404) when ``owner`` has no such key.
        """
        record = self._keys.get(api_key_id)
        if record is None or record.owner != owner:
            raise EngineError("api_key_not_found", f"no API key {api_key_id[:60]!r} for this account", status=404)
        del self._keys[api_key_id]
        return record
