"""Editing a subscription's markets across reconnects: an edit made while the connection is down, while the
reconnect's resubscribe is in progress, or in flight when the connection drops ends with the server serving
exactly the markets the user last asked for (or fails saying what the subscription holds)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from kalshi.sim import Simulator
from kalshi.ws import ConnectionState, KalshiWebSocket, Subscription
from kalshi.ws.lifecycle import Disconnected, Resubscribed
from ws_client_helpers import eventually, fast_config

pytestmark = pytest.mark.sim(seed=8, markets=6)


def server_markets(sim: Simulator) -> dict[int, list[str]]:
    """``sid -> sorted markets`` of every subscription on the simulator's one connection."""
    (conn_id,) = sim.connection_ids()
    subs = sim.connection(conn_id).session.subscriptions
    return {sid: sorted(sub.tickers or ()) for sid, sub in subs.items()}


def client_markets(*streams: Subscription[Any]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for stream in streams:
        for sid, markets in stream.server_subscriptions:
            assert sid is not None
            out[sid] = sorted(markets)
    return out


async def next_event(events: Any, kind: type, **match: Any) -> Any:
    async with asyncio.timeout(5.0):
        async for event in events:
            if isinstance(event, kind) and all(getattr(event, k) == v for k, v in match.items()):
                return event
    raise AssertionError(f"no {kind.__name__}")


class FrameGate:
    """Holds every frame the client receives while :attr:`held` is a list; :meth:`release` hands them on.

    A connection takes the frame callback when it opens: install the gate before the connection it is for."""

    def __init__(self, ws: KalshiWebSocket) -> None:
        self.held: list[bytes] | None = None
        self._deliver = ws._on_frame
        ws._on_frame = self  # type: ignore[method-assign,assignment]

    def __call__(self, data: bytes) -> None:
        if self.held is None:
            self._deliver(data)
        else:
            self.held.append(data)

    def release(self) -> None:
        frames, self.held = self.held or [], None
        for frame in frames:
            self._deliver(frame)


@pytest.mark.parametrize("edit", ["remove", "add"])
@pytest.mark.parametrize("during", ["its own resubscribe", "another's resubscribe"])
async def test_an_edit_during_the_resubscribe_is_applied_to_the_new_subscriptions(
    sim: Simulator, edit: str, during: str
) -> None:
    t = sim.tickers
    ws = KalshiWebSocket(config=fast_config(sim), markets_per_subscription=2)
    events = ws.lifecycle_events()
    async with ws.connect() as session:
        other = await session.subscribe_ticker(tickers=[t[5]])
        stream = await session.subscribe_orderbook_delta(t[:3])  # chunks [t0, t1] and [t2]
        gate = FrameGate(session)
        editor = session._editor
        reconnecting = editor.reconnecting
        edits: list[asyncio.Task[None]] = []
        target = stream if during == "its own resubscribe" else other

        def hook(state: Any) -> None:
            reconnecting(state)
            if state.client_id == target.client_id and not edits:
                # Runs once the resubscribe awaits its first answer (held here): the edit races it.
                gate.held = []
                change = stream.remove_markets([t[0], t[2]]) if edit == "remove" else stream.add_markets(t[3:5])
                edits.append(asyncio.create_task(change))

        editor.reconnecting = hook
        sim.faults.drop(sim.connection_ids()[0])
        await next_event(events, Disconnected)
        await eventually(lambda: bool(edits), what="the resubscribe reached the subscription")
        gate.release()
        await edits[0]
        await next_event(events, Resubscribed, subscription=stream.client_id)
        expected = [t[1]] if edit == "remove" else t[:5]
        assert sorted(stream.markets) == expected
        await session.list_subscriptions()
        assert server_markets(sim) == client_markets(other, stream)
        assert session.state is ConnectionState.STREAMING


@pytest.mark.parametrize("edit", ["remove", "add"])
async def test_an_edit_while_the_connection_is_down_is_what_the_reconnect_subscribes(sim: Simulator, edit: str) -> None:
    t = sim.tickers
    ws = KalshiWebSocket(config=fast_config(sim, ws_max_retries=10_000), markets_per_subscription=2)
    events = ws.lifecycle_events()
    async with ws.connect() as session:
        stream = await session.subscribe_orderbook_delta(t[:3])
        sim.faults.refuse_handshakes(503, duration=30.0, now=time.monotonic())
        sim.faults.drop(sim.connection_ids()[0])
        await next_event(events, Disconnected)
        change = stream.remove_markets([t[0], t[2]]) if edit == "remove" else stream.add_markets(t[3:5])
        editing = asyncio.create_task(change)
        if edit == "remove":
            await editing  # nothing to ask the server: the reconnect subscribes the narrowed set
            assert sorted(stream.markets) == [t[1]]
        sim.faults.stop_refusing()
        await next_event(events, Resubscribed, subscription=stream.client_id)
        await editing
        assert sorted(stream.markets) == ([t[1]] if edit == "remove" else t[:5])
        await session.list_subscriptions()
        assert server_markets(sim) == client_markets(stream)


async def test_an_add_that_outlasts_the_command_timeout_while_down_says_what_the_subscription_holds(
    sim: Simulator,
) -> None:
    from kalshi.errors import KalshiSubscriptionError

    t = sim.tickers
    ws = KalshiWebSocket(
        config=fast_config(sim, ws_max_retries=10_000), markets_per_subscription=2, command_timeout=0.2
    )
    events = ws.lifecycle_events()
    async with ws.connect() as session:
        stream = await session.subscribe_orderbook_delta(t[:2])
        sim.faults.refuse_handshakes(503, duration=30.0, now=time.monotonic())
        sim.faults.drop(sim.connection_ids()[0])
        await next_event(events, Disconnected)
        with pytest.raises(KalshiSubscriptionError, match="not added") as caught:
            await stream.add_markets([t[3]])
        assert t[0] in str(caught.value) and t[3] in str(caught.value)
        sim.faults.stop_refusing()
        await next_event(events, Resubscribed, subscription=stream.client_id)
        assert sorted(stream.markets) == t[:2]
        await session.list_subscriptions()
        assert server_markets(sim) == client_markets(stream)


@pytest.mark.parametrize("edit", ["remove", "add"])
async def test_an_edit_in_flight_when_the_connection_drops_is_applied_after_the_reconnect(
    sim: Simulator, edit: str
) -> None:
    t = sim.tickers
    ws = KalshiWebSocket(config=fast_config(sim), markets_per_subscription=2)
    events = ws.lifecycle_events()
    gate = FrameGate(ws)  # before connect(): each connection takes the frame callback when it opens
    async with ws.connect() as session:
        stream = await session.subscribe_orderbook_delta(t[:3])
        gate.held = []  # the server's answer never reaches the client
        change = stream.remove_markets([t[0], t[2]]) if edit == "remove" else stream.add_markets(t[3:5])
        editing = asyncio.create_task(change)
        await eventually(lambda: bool(session._commands.in_flight), what="the edit's command was sent")
        sim.faults.drop(sim.connection_ids()[0])
        gate.held = None  # frames of the dead connection are lost; the new one's pass
        await next_event(events, Resubscribed, subscription=stream.client_id)
        await editing
        assert sorted(stream.markets) == ([t[1]] if edit == "remove" else t[:5])
        await session.list_subscriptions()
        assert server_markets(sim) == client_markets(stream)
