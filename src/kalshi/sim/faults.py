"""Fault injection for the simulator: the failures a real exchange connection suffers, on demand and counted.

Faults come from two places:

* a spec string (``kalshi sim --faults SPEC`` or ``Simulator(faults="...")``), comma-separated ``key=value``:

  ==========================  =========================================================================
  ``drop_every=3s``           abort every connection every 3 s (no close frame, as when a network dies)
  ``drop_one_every=3s``       abort one random connection every 3 s
  ``skip_seq=1/5000``         a sequenced data frame jumps one seq number (probability per data frame)
  ``dup=1/2000``              a data frame is sent twice
  ``reorder=1/2000``          a data frame is swapped with the next frame of its connection
  ``malformed=1/10000``       a truncated (invalid JSON) frame is sent before a data frame
  ``overflow=1/50000``        a subscription gets error 25 (buffer overflow) and ends
  ``refuse=401:2s``           refuse upgrades with 401 (or 429/503) for 2 s from start and after each
                              periodic drop; ``refuse=429:2s:1`` adds ``Retry-After: 1``
  ``delay_acks=200ms``        every command is answered 200 ms late (data keeps flowing)
  ``stall=5s:1s``             every 5 s one random connection stops writing for 1 s
  ``ignore_pings=1``          the server never answers the client's pings
  ==========================  =========================================================================

  Durations take ``ms``/``s``/``m`` suffixes (plain numbers are seconds); probabilities are ``1/N`` or a
  decimal fraction.

* the :class:`FaultController` API used by tests (``sim.faults.drop(...)``, ``sim.faults.duplicate()``, ...).

Random decisions use a RNG seeded from the simulator's seed, so a session with faults is reproducible. Each
injected fault increments ``counts[kind]`` so tests can compare what was injected with what a client survived.
The controller is sans-I/O: the server asks it what to do (per data frame, per handshake, per command) and
performs the actions it queues on the :class:`FaultTarget` (the running server).
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal, Protocol

__all__ = [
    "FRAME_FAULTS",
    "FaultController",
    "FaultSpec",
    "FaultSpecError",
    "FaultTarget",
    "Refusal",
    "parse_duration",
    "parse_fault_spec",
    "parse_probability",
]

FrameFault = Literal["skip_seq", "dup", "reorder", "malformed", "overflow"]
FRAME_FAULTS: Final[tuple[FrameFault, ...]] = ("skip_seq", "dup", "reorder", "malformed", "overflow")
REFUSAL_STATUSES: Final = frozenset({401, 403, 429, 500, 502, 503})

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m)?\s*$")


class FaultSpecError(ValueError):
    """A ``--faults`` spec string could not be parsed; the message names the bad part."""


def parse_duration(text: str) -> float:
    """``"3s"`` -> 3.0, ``"250ms"`` -> 0.25, ``"2m"`` -> 120.0, ``"1.5"`` -> 1.5 (seconds).

    Raises:
        FaultSpecError: Not a non-negative duration.
    """
    match = _DURATION.match(text)
    if not match:
        raise FaultSpecError(f"{text!r} is not a duration; write e.g. 3s, 250ms or 2m")
    value = float(match.group(1))
    unit = match.group(2) or "s"
    return value / 1000.0 if unit == "ms" else value * 60.0 if unit == "m" else value


def parse_probability(text: str) -> float:
    """``"1/5000"`` -> 0.0002, ``"0.01"`` -> 0.01.

    Raises:
        FaultSpecError: Not a probability in [0, 1].
    """
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            value = float(num) / float(den)
        else:
            value = float(text)
    except (ValueError, ZeroDivisionError):
        raise FaultSpecError(f"{text!r} is not a probability; write e.g. 1/5000 or 0.001") from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise FaultSpecError(f"probability {text!r} must be between 0 and 1")
    return value


@dataclass(frozen=True, slots=True)
class Refusal:
    """How the server answers upgrades while refusing: a status and an optional Retry-After (seconds)."""

    status: int
    duration: float
    retry_after: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSpec:
    """The periodic and random faults of a spec string (see the module docstring)."""

    drop_every: float | None = None
    drop_one_every: float | None = None
    frame_probabilities: dict[str, float] = field(default_factory=dict)
    refuse: Refusal | None = None
    delay_acks: float = 0.0
    stall_every: float | None = None
    stall_for: float = 0.0
    ignore_pings: bool = False

    @property
    def empty(self) -> bool:
        return self == FaultSpec()


def parse_fault_spec(spec: str | None) -> FaultSpec:
    """Parse ``"drop_every=3s,skip_seq=1/5000,refuse=401:2s"`` into a :class:`FaultSpec`.

    Args:
        spec: The spec string; None or empty means no faults.

    Returns:
        The parsed faults.

    Raises:
        FaultSpecError: Unknown key, missing ``=``, or a bad value (the message names it).
    """
    result = FaultSpec()
    if not spec or not spec.strip():
        return result
    probabilities: dict[str, float] = {}
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        value = value.strip()
        if not sep:
            raise FaultSpecError(f"fault {item!r} needs a value: write key=value")
        if key in FRAME_FAULTS:
            probabilities[key] = parse_probability(value)
        elif key == "drop_every":
            result = replace(result, drop_every=_positive(parse_duration(value), key))
        elif key == "drop_one_every":
            result = replace(result, drop_one_every=_positive(parse_duration(value), key))
        elif key == "refuse":
            result = replace(result, refuse=_parse_refusal(value))
        elif key == "delay_acks":
            result = replace(result, delay_acks=parse_duration(value))
        elif key == "stall":
            every, _, length = value.partition(":")
            if not length:
                raise FaultSpecError("stall needs EVERY:FOR, e.g. stall=5s:1s")
            result = replace(
                result, stall_every=_positive(parse_duration(every), key), stall_for=parse_duration(length)
            )
        elif key == "ignore_pings":
            if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise FaultSpecError("ignore_pings takes 1/0 or true/false")
            result = replace(result, ignore_pings=value.lower() in ("1", "true", "yes", "on"))
        else:
            known = ", ".join(
                (
                    "drop_every",
                    "drop_one_every",
                    *FRAME_FAULTS,
                    "refuse",
                    "delay_acks",
                    "stall",
                    "ignore_pings",
                )
            )
            raise FaultSpecError(f"unknown fault {key!r}; known: {known}")
    return replace(result, frame_probabilities=probabilities)


def _positive(value: float, key: str) -> float:
    if value <= 0:
        raise FaultSpecError(f"{key} must be a positive duration")
    return value


def _parse_refusal(value: str) -> Refusal:
    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise FaultSpecError("refuse needs STATUS:DURATION[:RETRY_AFTER], e.g. refuse=401:2s or refuse=429:2s:1")
    try:
        status = int(parts[0])
    except ValueError:
        raise FaultSpecError(f"refuse status {parts[0]!r} is not an HTTP status") from None
    if status not in REFUSAL_STATUSES:
        raise FaultSpecError(f"refuse status must be one of {sorted(REFUSAL_STATUSES)}")
    retry = parse_duration(parts[2]) if len(parts) == 3 else None
    return Refusal(status, parse_duration(parts[1]), retry)


class FaultTarget(Protocol):
    """What the controller acts on: the running server's connections."""

    def connection_ids(self) -> Sequence[int]: ...

    def drop_connection(self, conn_id: int, *, after_messages: int = 0, clean: bool = False) -> None: ...

    def stall_connection(self, conn_id: int, duration: float) -> None: ...

    def overflow_subscription(self, conn_id: int | None, sid: int | None) -> bool: ...


@dataclass(slots=True)
class _Pending:
    kind: FrameFault
    conn_id: int | None


class FaultController:
    """Injects faults and counts them (``counts[kind]``).

    Kinds counted: ``drop``, ``skip_seq``, ``dup``, ``reorder``, ``malformed``, ``overflow``, ``refuse``,
    ``delay_ack``, ``ignore_ping``, ``stall``. ``drop`` and ``stall`` count when they happen (a deferred drop
    counts once its message budget is used up).
    """

    def __init__(self, spec: FaultSpec | str | None = None, *, seed: int = 0) -> None:
        """Create a controller.

        Args:
            spec: Periodic/random faults (a :class:`FaultSpec` or a spec string).
            seed: Seeds the RNG that picks victims and places random faults.

        Raises:
            FaultSpecError: ``spec`` is a string that does not parse.
        """
        self.spec = parse_fault_spec(spec) if isinstance(spec, str) or spec is None else spec
        self.rng = random.Random(f"faults:{seed}")
        self.counts: Counter[str] = Counter()
        self._target: FaultTarget | None = None
        self._pending: list[_Pending] = []
        self._probabilities = {k: p for k, p in self.spec.frame_probabilities.items() if p > 0}
        self._total_probability = min(1.0, sum(self._probabilities.values()))
        self._countdown = self._draw_gap()
        self.delay_acks_s = self.spec.delay_acks
        self.ignoring_pings = self.spec.ignore_pings
        self._refusal: Refusal | None = None
        self._refuse_until = -math.inf
        self.frame_faults_enabled = False
        self._update_enabled()

    # -- wiring -----------------------------------------------------------------------------------------------

    def attach(self, target: FaultTarget | None) -> None:
        """Connect the controller to a running server (the Simulator does this)."""
        self._target = target

    def _require_target(self) -> FaultTarget:
        if self._target is None:
            raise RuntimeError("the simulator is not running: enter 'async with Simulator(...)' first")
        return self._target

    # -- frame faults -----------------------------------------------------------------------------------------

    def _draw_gap(self) -> int:
        """Frames until the next random frame fault (geometric), or -1 when none are configured."""
        p = self._total_probability
        if p <= 0:
            return -1
        if p >= 1:
            return 1
        u = 1.0 - self.rng.random()  # (0, 1]
        return int(math.log(u) / math.log1p(-p)) + 1

    def _update_enabled(self) -> None:
        self.frame_faults_enabled = bool(self._pending) or self._countdown > 0

    def next_frame_fault(self, conn_id: int, sequenced: bool) -> FrameFault | None:
        """The fault to apply to this data frame, if any (called by the hub per data frame while enabled)."""
        pending = self._pending
        if pending:
            for i, item in enumerate(pending):
                if item.conn_id is not None and item.conn_id != conn_id:
                    continue
                if item.kind == "skip_seq" and not sequenced:
                    continue
                del pending[i]
                self.counts[item.kind] += 1
                self._update_enabled()
                return item.kind
        if self._countdown > 0:
            self._countdown -= 1
            if self._countdown == 0:
                self._countdown = self._draw_gap()
                kind = self._pick_kind()
                if kind == "skip_seq" and not sequenced:
                    # Keep it for the next sequenced frame rather than losing it.
                    pending.append(_Pending(kind, None))
                    self._update_enabled()
                    return None
                self.counts[kind] += 1
                return kind
        return None

    def _pick_kind(self) -> FrameFault:
        x = self.rng.random() * self._total_probability
        acc = 0.0
        kinds = [k for k in FRAME_FAULTS if k in self._probabilities]
        for kind in kinds:
            acc += self._probabilities[kind]
            if x < acc:
                return kind
        return kinds[-1]

    def _queue(self, kind: FrameFault, n: int, connection: int | None) -> None:
        if n < 1:
            raise ValueError("n must be >= 1")
        self._pending.extend(_Pending(kind, connection) for _ in range(n))
        self._update_enabled()

    def skip_seq(self, n: int = 1, *, connection: int | None = None) -> None:
        """The next ``n`` sequenced data frames (of ``connection``, or any) each skip one seq number."""
        self._queue("skip_seq", n, connection)

    def duplicate(self, n: int = 1, *, connection: int | None = None) -> None:
        """The next ``n`` data frames are each sent twice."""
        self._queue("dup", n, connection)

    def reorder(self, n: int = 1, *, connection: int | None = None) -> None:
        """The next ``n`` data frames are each swapped with the frame that follows them."""
        self._queue("reorder", n, connection)

    def malformed(self, n: int = 1, *, connection: int | None = None) -> None:
        """A truncated, unparsable frame is sent before each of the next ``n`` data frames."""
        self._queue("malformed", n, connection)

    def overflow_next(self, n: int = 1, *, connection: int | None = None) -> None:
        """The subscriptions of the next ``n`` data frames get error 25 instead and end."""
        self._queue("overflow", n, connection)

    def pending(self) -> int:
        """One-shot frame faults queued and not yet applied."""
        return len(self._pending)

    # -- connection faults ------------------------------------------------------------------------------------

    def drop(self, connection: int | None = None, *, after_messages: int = 0, clean: bool = False) -> int:
        """Drop one connection (``connection`` id, or a random one), now or after it is sent N more frames.

        Args:
            connection: Connection id (see ``Simulator.connection_ids()``); None picks one at random.
            after_messages: Frames to write first; 0 drops now.
            clean: Send a close frame (1001) instead of aborting the TCP connection.

        Returns:
            The id of the connection that will be dropped.

        Raises:
            RuntimeError: The simulator is not running, or has no connection.
        """
        target = self._require_target()
        ids = list(target.connection_ids())
        if connection is None:
            if not ids:
                raise RuntimeError("no connection to drop")
            connection = self.rng.choice(ids)
        target.drop_connection(connection, after_messages=after_messages, clean=clean)
        return connection

    def drop_all(self, *, after_messages: int = 0, clean: bool = False) -> list[int]:
        """Drop every connection, now or after each is sent ``after_messages`` more frames.

        Raises:
            RuntimeError: The simulator is not running.
        """
        target = self._require_target()
        ids = list(target.connection_ids())
        for conn_id in ids:
            target.drop_connection(conn_id, after_messages=after_messages, clean=clean)
        return ids

    def stall(self, duration: float, connection: int | None = None) -> int:
        """Stop writing to one connection (or a random one) for ``duration`` seconds; frames queue up meanwhile.

        Raises:
            RuntimeError: The simulator is not running, or has no connection.
        """
        target = self._require_target()
        ids = list(target.connection_ids())
        if connection is None:
            if not ids:
                raise RuntimeError("no connection to stall")
            connection = self.rng.choice(ids)
        target.stall_connection(connection, duration)
        return connection

    def overflow(self, *, connection: int | None = None, sid: int | None = None) -> bool:
        """Send error 25 on a subscription now and end it (a random one unless ``connection``/``sid`` say).

        Returns:
            True if a subscription was ended.

        Raises:
            RuntimeError: The simulator is not running.
        """
        return self._require_target().overflow_subscription(connection, sid)

    def note(self, kind: str) -> None:
        """Count a fault that the server performed (drop, stall, refuse, ...)."""
        self.counts[kind] += 1

    # -- handshake, command and ping faults -------------------------------------------------------------------

    def refuse_handshakes(
        self, status: int = 401, duration: float = 1.0, *, retry_after: float | None = None, now: float
    ) -> None:
        """Answer every upgrade with ``status`` for ``duration`` seconds (monotonic ``now``).

        Raises:
            ValueError: ``status`` is not one of 401, 403, 429, 500, 502, 503.
        """
        if status not in REFUSAL_STATUSES:
            raise ValueError(f"status must be one of {sorted(REFUSAL_STATUSES)}")
        self._refusal = Refusal(status, duration, retry_after)
        self._refuse_until = now + duration

    def stop_refusing(self) -> None:
        self._refuse_until = -math.inf

    def handshake_refusal(self, now: float) -> Refusal | None:
        """The refusal to answer an upgrade with at monotonic ``now``, counted, or None to accept it."""
        if now < self._refuse_until and self._refusal is not None:
            self.counts["refuse"] += 1
            return self._refusal
        return None

    def delay_acks(self, seconds: float) -> None:
        """Answer commands ``seconds`` late from now on (0 turns it off).

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        self.delay_acks_s = seconds

    def ignore_pings(self, on: bool = True) -> None:
        """Stop (or resume) answering the client's pings."""
        self.ignoring_pings = on
