"""The shared connection supervisor without sockets: states, lifecycle events and backoff, with an injected
clock, sleep and random source."""

from __future__ import annotations

import asyncio
import random

import pytest

from conftest import eventually
from kalshi.errors import KalshiConnectionError, KalshiHandshakeError
from kalshi.ws.connection import REASON_CONNECTION_LOST, REASON_HEARTBEAT_TIMEOUT, CloseInfo, ConnectionState
from kalshi.ws.lifecycle import Closed, Connected, Disconnected, LifecycleBus, LifecycleEvent, Reconnected
from kalshi.ws.supervisor import Attempt, RetryPolicy, Supervisor, disconnect_cause

S = ConnectionState


class Harness:
    """A supervisor over a scripted connect: each attempt pops the next outcome (None succeeds)."""

    def __init__(self, outcomes: list[BaseException | None], *, retries: int = 5, seed: int = 1) -> None:
        self.outcomes = outcomes
        self.ended: list[BaseException | None] = []
        self.delays: list[float] = []
        self.states: list[ConnectionState] = []
        self.restores = 0
        self.now = 100.0
        self.bus = LifecycleBus()
        self.events = self.bus.listen()
        self.supervisor = Supervisor(
            url="ws://test/",
            connect=self.connect,
            restore=self.restore,
            classify=self.classify,
            retry_on=(KalshiConnectionError,),
            policy=RetryPolicy(base_delay=0.5, max_delay=4.0, max_retries=retries),
            bus=self.bus,
            on_state=lambda old, new: self.states.append(new),
            on_end=self.on_end,
            rng=random.Random(seed),
            clock=lambda: self.now,
            sleep=self.sleep,
        )

    async def connect(self) -> None:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if outcome is not None:
            raise outcome

    async def restore(self) -> None:
        self.restores += 1

    async def on_end(self, error: BaseException | None) -> None:
        self.ended.append(error)

    @staticmethod
    def classify(exc: BaseException, first: bool) -> Attempt:
        if isinstance(exc, KalshiHandshakeError):
            return Attempt(retry=not exc.is_permanent, not_before=exc.retry_after or 0.0)
        return Attempt(retry=True)

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds  # the injected clock moves with the backoff
        await asyncio.sleep(0)

    def taken(self) -> list[LifecycleEvent]:
        return self.events.take_nowait()


def refused(status: int, retry_after: float | None = None) -> KalshiHandshakeError:
    return KalshiHandshakeError(f"refused with {status}", status=status, retry_after=retry_after)


async def test_first_connect_retries_transient_failures_with_capped_full_jitter() -> None:
    failures: list[BaseException | None] = [KalshiConnectionError("refused")] * 4
    harness = Harness(failures, seed=3)
    await harness.supervisor.start()
    expected_rng = random.Random(3)
    expected = [expected_rng.uniform(0.0, min(0.5 * 2**n, 4.0)) for n in range(1, 5)]
    assert harness.delays == pytest.approx(expected)  # no wait before the first attempt
    assert all(0.0 <= d <= 4.0 for d in harness.delays)
    [connected] = harness.taken()
    assert isinstance(connected, Connected) and connected.attempt == 5 and connected.url == "ws://test/"
    assert harness.states[-1] is S.CONNECTED and harness.states[0] is S.CONNECTING
    harness.supervisor.streaming()
    assert harness.supervisor.state is S.STREAMING
    await harness.supervisor.close()
    assert [type(e) for e in harness.taken()] == [Closed] and harness.supervisor.state is S.CLOSED


async def test_a_permanent_refusal_is_not_retried_and_closes() -> None:
    harness = Harness([refused(401)])
    with pytest.raises(KalshiHandshakeError):
        await harness.supervisor.start()
    assert harness.delays == [] and harness.supervisor.state is S.CLOSED
    [closed] = harness.taken()
    assert (
        isinstance(closed, Closed)
        and closed.cause == "connect_failed"
        and isinstance(closed.error, KalshiHandshakeError)
    )


async def test_retry_after_is_a_floor_under_the_jitter_but_never_above_the_cap() -> None:
    harness = Harness([refused(429, retry_after=3.0), refused(429, retry_after=60.0)])
    await harness.supervisor.start()
    assert harness.delays[0] >= 3.0 and harness.delays[1] == 4.0
    await harness.supervisor.close()


async def test_giving_up_after_max_retries() -> None:
    harness = Harness([KalshiConnectionError("down")] * 10, retries=2)
    with pytest.raises(KalshiConnectionError, match="down"):
        await harness.supervisor.start()
    assert len(harness.delays) == 2


async def test_a_lost_connection_is_reconnected_restored_and_reported() -> None:
    harness = Harness([])
    await harness.supervisor.start()
    harness.supervisor.streaming()
    harness.taken()
    harness.outcomes[:] = [KalshiConnectionError("still down"), None]
    harness.states.clear()
    lost = CloseInfo(None, REASON_HEARTBEAT_TIMEOUT, KalshiConnectionError("silent"), True)
    harness.supervisor.connection_lost(lost)
    await eventually(lambda: harness.supervisor.state is S.STREAMING and harness.restores == 1)
    disconnected, reconnected = harness.taken()
    assert disconnected == Disconnected(REASON_HEARTBEAT_TIMEOUT, None, True, at_ms=disconnected.at_ms)
    assert isinstance(reconnected, Reconnected) and reconnected.attempt == 2
    assert reconnected.downtime_s == pytest.approx(sum(harness.delays))  # measured on the injected clock
    assert harness.states == [S.RECONNECTING, S.CONNECTING, S.RECONNECTING, S.CONNECTING, S.CONNECTED, S.STREAMING]
    assert harness.supervisor.reconnects == 1 and harness.restores == 1
    await harness.supervisor.close()


async def test_a_permanent_server_close_ends_the_session() -> None:
    harness = Harness([])
    await harness.supervisor.start()
    harness.taken()
    harness.supervisor.connection_lost(CloseInfo(1008, "policy", None, False))
    await asyncio.wait_for(harness.supervisor.done.wait(), 5)
    disconnected, closed = harness.taken()
    assert isinstance(disconnected, Disconnected) and not disconnected.will_reconnect and disconnected.code == 1008
    assert isinstance(closed, Closed) and closed.cause == "server_close" and closed.error is not None
    assert harness.ended == [closed.error]
    assert harness.supervisor.state is S.CLOSED and harness.restores == 0


async def test_fail_ends_the_session_with_the_error() -> None:
    harness = Harness([])
    await harness.supervisor.start()
    harness.taken()
    error = KalshiConnectionError("fatal")
    harness.supervisor.fail(error)
    await asyncio.wait_for(harness.supervisor.done.wait(), 5)
    assert harness.supervisor.error is error
    [closed] = harness.taken()
    assert isinstance(closed, Closed) and closed.error is error


def test_disconnect_causes() -> None:
    assert disconnect_cause(CloseInfo(None, REASON_CONNECTION_LOST, None, False)) == "connection_lost"
    assert disconnect_cause(CloseInfo(1001, "", None, False)) == "server_close"
    assert disconnect_cause(CloseInfo(1001, "going away", None, False)) == "going away"
    assert disconnect_cause(CloseInfo(None, REASON_HEARTBEAT_TIMEOUT, None, True)) == "heartbeat_timeout"


def test_retry_policy_refuses_negative_values() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(base_delay=-1.0, max_delay=1.0, max_retries=1)
