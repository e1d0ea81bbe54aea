"""The chaos run's fault scheduler: one fault every 1-5 s, picked at random (seeded), never two at once.

Frame faults (skipped seq, duplicated, reordered and malformed frames) are random per frame inside the simulator
(its ``faults=`` spec); this scheduler adds the connection-level ones: drops, error 25 on a subscription,
handshake refusals (401 once, 429, 503) followed by a drop, delayed acks around a drop, short stalls, and dead
links (a stall with pings ignored, which only the client's heartbeat can detect).

A checkpoint takes :attr:`FaultScheduler.lock`: the fault in progress finishes first, none starts meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from typing import Final

from bench.chaos_remote import RemoteSim

__all__ = ["FAULT_KINDS", "FaultScheduler"]

log = logging.getLogger("bench.chaos")

# Harness-level kinds (label for the table) and their weights when picking the next fault.
FAULT_KINDS: Final[dict[str, str]] = {
    "drop": "connection drop (abort)",
    "drop_all": "all connections dropped",
    "dead_link": "dead link (stall, pings ignored)",
    "stall": "stalled link (0.3-1.5 s)",
    "overflow": "error 25 on a subscription",
    "refuse_401": "handshake refused 401 (once)",
    "refuse_429": "handshake refused 429 + Retry-After",
    "refuse_503": "handshake refused 503",
    "delay_acks": "delayed acks (around a drop)",
}
_WEIGHTS: Final[dict[str, int]] = {
    "drop": 40,
    "drop_all": 8,
    "dead_link": 4,
    "stall": 10,
    "overflow": 12,
    "refuse_429": 6,
    "refuse_503": 6,
    "delay_acks": 6,
}


class FaultScheduler:
    """Injects one connection-level fault at a time and counts what it injected.

    Args:
        remote: The simulator process.
        rng: Seeded randomness (which fault, when, how long).
        every: Range of seconds between two faults.
        heartbeat: ``(interval, timeout)`` of the client, to size dead links.
        refuse_401_after: Seconds into the run after which the one 401 refusal window is injected (None: never).
    """

    def __init__(
        self,
        remote: RemoteSim,
        rng: random.Random,
        *,
        every: tuple[float, float] = (1.0, 5.0),
        heartbeat: tuple[float, float] = (1.0, 2.0),
        refuse_401_after: float | None = None,
    ) -> None:
        self.remote = remote
        self.rng = rng
        self.every = every
        self.heartbeat = heartbeat
        self.refuse_401_after = refuse_401_after
        self.lock = asyncio.Lock()
        self.injected: Counter[str] = Counter()
        self.refused_handshakes: Counter[str] = Counter()
        self.dead_links_undetected = 0
        self._started = time.monotonic()

    async def run(self) -> None:
        kinds = list(_WEIGHTS)
        weights = [_WEIGHTS[k] for k in kinds]
        # Every kind once first (in random order), so that even a short run covers them all; then by weight.
        first_round = self.rng.sample(kinds, len(kinds))
        while True:
            await asyncio.sleep(self.rng.uniform(*self.every))
            async with self.lock:
                kind = first_round[-1] if first_round else self.rng.choices(kinds, weights)[0]
                if (
                    self.refuse_401_after is not None
                    and not self.injected["refuse_401"]
                    and time.monotonic() - self._started >= self.refuse_401_after
                ):
                    kind = "refuse_401"
                if await self._inject(kind) and first_round and kind == first_round[-1]:
                    first_round.pop()  # consumed once injected (none to break at that moment: try again)

    async def calm(self) -> None:
        """Undo lasting faults (refusals, delayed acks, ignored pings); call while holding :attr:`lock`."""
        await self.remote.fault("stop_refusing")
        await self.remote.fault("delay_acks", 0.0)
        await self.remote.fault("ignore_pings", False)

    async def _connections(self) -> list[int]:
        ids: list[int] = await self.remote.call("connection_ids")
        return ids

    async def _inject(self, kind: str) -> bool:
        """Inject one fault; False when there was nothing to inject it into at that moment."""
        remote = self.remote
        rng = self.rng
        if not await self._connections():
            return False  # nothing connected right now (every client is reconnecting): nothing to break
        if kind == "drop":
            await remote.fault("drop")
        elif kind == "drop_all":
            await remote.fault("drop_all")
        elif kind == "stall":
            await remote.fault("stall", rng.uniform(0.3, 1.5))
        elif kind == "overflow":
            if not await remote.fault("overflow"):
                return False
        elif kind == "dead_link":
            if not await self._dead_link():
                return False
        elif kind.startswith("refuse_"):
            await self._refusal(int(kind.removeprefix("refuse_")))
        elif kind == "delay_acks":
            await remote.fault("delay_acks", rng.uniform(0.1, 0.5))
            await remote.fault("drop")
            await asyncio.sleep(3.0)  # resubscribes and repairs wait for their acks meanwhile
            await remote.fault("delay_acks", 0.0)
        self.injected[kind] += 1
        log.info("injected %s", kind)
        return True

    async def _refused(self) -> int:
        counts: dict[str, int] = await self.remote.call("counts")
        return counts.get("refuse", 0)

    async def _refusal(self, status: int) -> None:
        before = await self._refused()
        if status == 401:
            # Exactly one refused handshake: refuse until the dropped client has tried once (a client whose
            # reading is paused by its slow consumer only notices the drop when it resumes).
            await self.remote.fault("refuse_handshakes", 401, 10.0)
            await self.remote.fault("drop")
            deadline = time.monotonic() + 10.0
            while await self._refused() == before and time.monotonic() < deadline:  # noqa: ASYNC110 - remote count
                await asyncio.sleep(0.005)
            await self.remote.fault("stop_refusing")
        else:
            duration = self.rng.uniform(1.0, 3.0)
            retry_after = 1.0 if status == 429 else None
            await self.remote.fault("refuse_handshakes", status, duration, retry_after=retry_after)
            await self.remote.fault("drop")
            await asyncio.sleep(duration + 0.2)
        self.refused_handshakes[str(status)] += await self._refused() - before

    async def _dead_link(self) -> bool:
        """Stall one connection with pings ignored until the client's heartbeat gives up on it."""
        victim = self.rng.choice(await self._connections())
        interval, timeout = self.heartbeat
        await self.remote.fault("ignore_pings", True)
        await self.remote.fault("stall", 60.0, victim)
        deadline = time.monotonic() + interval + timeout + 5.0
        try:
            while victim in await self._connections():
                if time.monotonic() > deadline:
                    self.dead_links_undetected += 1
                    await self.remote.fault("drop", victim)  # unblock the run; counted as a drop
                    return False
                await asyncio.sleep(0.05)
        finally:
            await self.remote.fault("ignore_pings", False)
        return True
