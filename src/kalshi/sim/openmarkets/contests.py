"""The OpenMarkets server's synthetic contests and their liquidity tables, sans-I/O and seeded.

A :class:`ContestBoard` holds every contest: its quote slots (partner, market, side) and the current table
keyed by ``liquidity_hash``. :meth:`ContestBoard.change` moves one quote (or removes it) and returns the wire
entry; the server streams those entries in the order the table changed. The same ``random.Random`` drives the
board and the server's activity, so a seed gives the same contests and the same changes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final, NamedTuple

__all__ = ["CONTEST_STATES", "DEFAULT_PARTNERS", "Contest", "ContestBoard", "LiquidityRow", "wire_entry"]

DEFAULT_PARTNERS: Final = ("kalshi", "polymarket", "novig", "prophetx")
CONTEST_STATES: Final = ("scheduled", "live", "suspended", "live", "final")
_MARKETS: Final = (("mk_ml", ("side_home", "side_away")), ("mk_sp", ("side_home", "side_away")))
_MARKETS_TOTAL: Final = (("mk_tot", ("side_over", "side_under")),)
_CENT: Final = Decimal("0.01")
_MILLI: Final = Decimal("0.001")
_QUOTED_AT_START: Final = 0.8  # share of slots holding a quote when the board is made
_REMOVAL: Final = 0.15  # chance a change removes a standing quote


class LiquidityRow(NamedTuple):
    """One quote in the server's table (the key is its liquidity_hash)."""

    partner_id: str
    price: Decimal
    available: Decimal


def wire_entry(liquidity_hash: str, row: LiquidityRow) -> dict[str, Any]:
    """A ``changed_entries`` / REST ``entries`` item; ``available`` 0 is a removed quote."""
    return {
        "liquidity_hash": liquidity_hash,
        "partner_id": row.partner_id,
        "price": row.price,
        "available": row.available,
    }


class Contest:
    """One synthetic contest: its possible quotes (``slots``) and the current ``table``."""

    def __init__(self, contest_id: str, partners: Sequence[str], rng: random.Random) -> None:
        self.contest_id = contest_id
        self.state = "scheduled"
        home, away = (f"p_{rng.choice('abcdefghijklmnopqrstuvwxyz')}{rng.choice('abcdefghij')}" for _ in range(2))
        self.slots: list[tuple[str, str]] = []  # (hash, partner)
        for partner in partners:
            for market, sides in (*_MARKETS, *_MARKETS_TOTAL):
                for side in sides:
                    team = home if side == "side_home" else away if side == "side_away" else "p_total"
                    self.slots.append((f"{partner}:{contest_id}:{market}:{side}:var_0:{team}:tf_full", partner))
        self.table: dict[str, LiquidityRow] = {}


class ContestBoard:
    """Every contest of a server, with seeded quotes.

    Args:
        rng: the seeded generator (shared with the server's activity, so one seed fixes everything).
        contests: how many contests to make up, or their ids.
        partners: the partners quoting each contest.
    """

    def __init__(self, rng: random.Random, contests: int | Sequence[str], partners: Sequence[str]) -> None:
        self.rng = rng
        if isinstance(contests, int):
            ids: list[str] = []
            while len(ids) < contests:
                candidate = f"ct_{rng.getrandbits(28):07x}"
                if candidate not in ids:
                    ids.append(candidate)
        else:
            ids = list(dict.fromkeys(contests))
        self.contests: dict[str, Contest] = {cid: Contest(cid, partners, rng) for cid in ids}
        for contest in self.contests.values():
            for liquidity_hash, partner in contest.slots:
                if rng.random() < _QUOTED_AT_START:
                    contest.table[liquidity_hash] = self.quote(partner, None)

    def change(self, contest: Contest) -> dict[str, Any]:
        """Move (or remove) one quote of ``contest`` in its table; the wire entry of the change."""
        liquidity_hash, partner = self.rng.choice(contest.slots)
        current = contest.table.get(liquidity_hash)
        if current is not None and self.rng.random() < _REMOVAL:
            del contest.table[liquidity_hash]
            return wire_entry(liquidity_hash, LiquidityRow(partner, current.price, Decimal(0)))
        row = self.quote(partner, current)
        contest.table[liquidity_hash] = row
        return wire_entry(liquidity_hash, row)

    def quote(self, partner: str, current: LiquidityRow | None) -> LiquidityRow:
        """A new quote near ``current`` (anywhere when None), on the partner's tick and size grid."""
        rng = self.rng
        tick = _MILLI if partner == "polymarket" else _CENT
        start = Decimal(rng.randint(5, 95)) * _CENT if current is None else current.price
        price = start + tick * rng.randint(-3, 3)
        price = min(max(price, Decimal("0.01")), Decimal("0.99")).quantize(tick)
        if partner == "polymarket":  # fractional shares
            available = (Decimal(rng.randint(1_000, 2_000_000)) * _CENT).quantize(_CENT)
        else:
            available = Decimal(rng.randint(10, 20_000))
        return LiquidityRow(partner, price, available)
