"""The live kill switch: position, loss and order-rate limits that stop trading and cancel everything.

Sans-I/O: :class:`KillSwitch` only decides. The live runner asks it before every order request
(:meth:`KillSwitch.on_request`) and after every fill or book change (:meth:`KillSwitch.check`); once it trips
it stays tripped, the context refuses new orders, and the runner cancels every resting order of the account.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kalshi.strategy.book import Book
from kalshi.strategy.context import Ledger

__all__ = ["KillSwitch", "KillSwitchLimits", "book_marks"]


def book_marks(books: Mapping[str, Book]) -> dict[str, int]:
    """Each book's mid in YES ticks (rounded down), the marks of :meth:`KillSwitch.check`; books without
    both sides are left out."""
    marks = {}
    for ticker, book in books.items():
        mid2 = book.mid2
        if mid2 is not None:
            marks[ticker] = mid2 // 2
    return marks


@dataclass(frozen=True, slots=True)
class KillSwitchLimits:
    """Limits of a live run (None: no limit).

    Args:
        max_position: the largest absolute position in any market, in units (100 = one contract).
        max_loss_micros: the largest loss from the start, cash plus positions marked at the mid.
        max_orders_per_second: order requests (places, amends, cancels) in any one-second window.

    Raises:
        ValueError: a limit that is not positive.
    """

    max_position: int | None = None
    max_loss_micros: int | None = None
    max_orders_per_second: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_position", "max_loss_micros", "max_orders_per_second"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive (or None for no limit)")


class KillSwitch:
    """Decides when a live run must stop.

    Args:
        limits: the limits.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, limits: KillSwitchLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._requests: deque[float] = deque()
        self.reason: str | None = None

    @property
    def tripped(self) -> bool:
        """True once any limit was hit."""
        return self.reason is not None

    def on_request(self) -> str | None:
        """Count one order request; returns the reason if this trips the switch (or it already was)."""
        limit = self.limits.max_orders_per_second
        if limit is not None and self.reason is None:
            now = self._clock()
            window = self._requests
            window.append(now)
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) > limit:
                self.reason = f"order rate above {limit}/s"
        return self.reason

    def check(self, ledger: Ledger, marks: Mapping[str, int]) -> str | None:
        """Check positions and loss; returns the reason if the switch is (now) tripped."""
        if self.reason is not None:
            return self.reason
        max_position = self.limits.max_position
        if max_position is not None:
            for ticker, held in ledger.positions.items():
                if abs(held) > max_position:
                    self.reason = f"position {held} units in {ticker} beyond {max_position}"
                    return self.reason
        max_loss = self.limits.max_loss_micros
        if max_loss is not None:
            loss = ledger.start_cash - ledger.equity(marks)
            if loss > max_loss:
                self.reason = f"loss {loss} micros beyond {max_loss}"
        return self.reason
