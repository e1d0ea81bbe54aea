"""LiquidityStream against the local OpenMarkets server, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import random
import traceback
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conftest import eventually
from kalshi.sim.openmarkets import OpenMarketsServer
from kalshi.ws.lifecycle import Closed, Connected, Disconnected, Reconnected
from openmarkets import (
    ConnectionLimitError,
    ConnectionState,
    ContestLimitError,
    Feed,
    InvalidChannelError,
    InvalidMessageError,
    LiquidityStream,
    LiquidityUpdate,
    LiquidityView,
    OpenMarketsAuthError,
    OpenMarketsError,
    OpenMarketsProtocolError,
    RefreshError,
    UnknownMessage,
)

KEY = "om_data_live_Xy9SECRETkey42"
FAST: dict[str, Any] = {
    "reconnect_base_delay": 0.01,
    "reconnect_max_delay": 0.05,
    "max_reconnect_attempts": 5,
    "connect_timeout": 3.0,
    "command_timeout": 3.0,
}


@pytest.fixture
async def server() -> AsyncIterator[OpenMarketsServer]:
    async with OpenMarketsServer(seed=7, contests=6, rate=0, api_keys={KEY: "org_test"}) as srv:
        yield srv


def stream_for(server: OpenMarketsServer, **options: Any) -> LiquidityStream:
    return LiquidityStream(
        api_key=KEY, url=server.url, rest_url=server.rest_url, rng=random.Random(3), **{**FAST, **options}
    )


def rows(view: LiquidityView | None) -> dict[str, tuple[Any, ...]]:
    assert view is not None
    return {h: (e.partner_id, e.price, e.available) for h, e in view.items()}


def assert_tables_match(stream: LiquidityStream, server: OpenMarketsServer, contests: list[str]) -> None:
    for contest in contests:
        view = stream.table(contest)
        assert view is not None and not view.stale, contest
        assert rows(view) == server.truth(contest), contest


def pending(feed: Feed[Any]) -> list[Any]:
    items = []
    while not feed.queue.empty():
        items.append(feed.queue.get_nowait())
    return items


class Errors:
    def __init__(self) -> None:
        self.seen: list[OpenMarketsError] = []

    async def __call__(self, error: OpenMarketsError) -> None:
        self.seen.append(error)

    def of(self, kind: type[OpenMarketsError]) -> list[OpenMarketsError]:
        return [e for e in self.seen if isinstance(e, kind)]


# ---------------------------------------------------------------------------- connecting


async def test_greeting_is_parsed(server: OpenMarketsServer) -> None:
    async with stream_for(server) as stream:
        greeting = stream.greeting
        assert greeting is not None
        assert greeting.organization_id == "org_test"
        assert greeting.api_key_id == server.connections[0].api_key_id
        assert greeting.api_key_id.startswith("key_") and KEY not in greeting.api_key_id
        assert greeting.server_time.utcoffset() is not None
        assert stream.state is ConnectionState.STREAMING
    assert stream.state is ConnectionState.CLOSED


async def test_401_at_upgrade_is_an_auth_error_without_retries(server: OpenMarketsServer) -> None:
    wrong = "om_data_live_WRONGkey77"
    bad = LiquidityStream(api_key=wrong, url=server.url, **FAST)
    with pytest.raises(OpenMarketsAuthError) as caught:
        async with bad:
            pass
    assert caught.value.status == 401
    assert server.handshakes[401] == 1  # no retry storm
    shown = "".join(traceback.format_exception(caught.value)) + repr(bad)
    assert wrong not in shown and "api_key=***" in shown


async def test_a_revoked_key_ends_the_stream_after_one_reconnect_attempt(server: OpenMarketsServer) -> None:
    errors = Errors()
    async with stream_for(server, on_error=errors) as stream:
        await stream.subscribe(server.contest_ids[:1])
        await stream.sync()
        feed = stream.updates()
        server.revoke_key(KEY)
        await server.drop_connections()
        with pytest.raises(OpenMarketsAuthError):
            async with asyncio.timeout(5):
                async for _ in feed:
                    pass
        assert isinstance(stream.error, OpenMarketsAuthError)
        await eventually(lambda: bool(errors.of(OpenMarketsAuthError)))
        await asyncio.sleep(0.05)  # time enough for a retry storm to show
        assert server.handshakes[401] == 1
        assert stream.state is ConnectionState.CLOSED
        with pytest.raises(OpenMarketsAuthError):
            await stream.subscribe(["ct_other"])


# ---------------------------------------------------------------------------- subscriptions


async def test_subscribe_unsubscribe_and_filter_replacement(server: OpenMarketsServer) -> None:
    a, b, c, d = server.contest_ids[:4]
    async with stream_for(server, maintain_tables=False) as stream:
        await stream.subscribe([a, b])
        assert server.connections[0].filters == {"liquidity": [a, b]}
        await stream.subscribe([b, c])  # re-subscribing replaces the list
        assert server.connections[0].filters == {"liquidity": [b, c]}
        await stream.subscribe([])  # an empty array is a no-op, as on the wire: it does not clear the list
        assert server.connections[0].filters == {"liquidity": [b, c]} and stream.contests() == [b, c]
        await stream.subscribe([d], replace=False)
        assert stream.contests() == [b, c, d]
        await stream.subscribe([a], channel="contest_state")
        await stream.unsubscribe([c])
        assert server.connections[0].filters == {"liquidity": [b, d], "contest_state": [a]}
        await stream.unsubscribe(channel="contest_state")
        assert server.connections[0].filters == {"liquidity": [b, d]}
        assert stream.contest_count == 2

        feed = stream.updates()
        server.step(40, contest_ids=[a, b])
        server.set_contest_state(a, "live")
        await stream.sync()
        got = pending(feed)
        assert got and {u.contest_id for u in got} == {b}  # a was replaced away on both channels
        assert stream.contest_state(a) is None


async def test_contest_state_channel(server: OpenMarketsServer) -> None:
    contest = server.contest_ids[0]
    async with stream_for(server, maintain_tables=False) as stream:
        await stream.subscribe([contest], channel="contest_state")
        feed = stream.updates(channel="contest_state")
        server.set_contest_state(contest, "live")
        server.step(10)  # liquidity is not subscribed: nothing else arrives
        await stream.sync()
        (update,) = pending(feed)
        assert (update.contest_id, update.state) == (contest, "live")
        assert stream.contest_state(contest) == "live"


async def test_a_contest_state_from_before_an_outage_is_not_shown_as_current(server: OpenMarketsServer) -> None:
    contest, other = server.contest_ids[:2]
    async with stream_for(server, maintain_tables=False) as stream:
        await stream.subscribe([contest, other], channel="contest_state")
        server.set_contest_state(contest, "live")
        await stream.sync()
        assert stream.contest_state(contest) == "live"
        seen = stream.contest_state_view(contest)
        assert seen is not None and (seen.contest_id, seen.state, seen.stale) == (contest, "live", False)

        await server.drop_connections()
        server.set_contest_state(contest, "suspended")  # while the client is away: never streamed to it
        await eventually(lambda: stream.reconnects == 1)
        await stream.sync()
        assert server.connections[0].filters == {"contest_state": [contest, other]}
        # The server sends no state on (re)subscribe: what was seen before the outage may be out of date.
        assert stream.contest_state(contest) is None
        stale = stream.contest_state_view(contest)
        assert stale is not None and (stale.state, stale.stale) == ("live", True)
        assert stream.contest_state_view(other) is None  # never seen

        server.set_contest_state(contest, "final")  # the first state after the outage is current again
        await stream.sync()
        assert stream.contest_state(contest) == "final"
        fresh = stream.contest_state_view(contest)
        assert fresh is not None and (fresh.state, fresh.stale) == ("final", False)
        assert [v.state for v in stream.contest_states.values()] == ["final"]

        await stream.unsubscribe([contest], channel="contest_state")  # no longer followed: no state
        assert stream.contest_state(contest) is None and stream.contest_state_view(contest) is None


# ---------------------------------------------------------------------------- tables


async def test_tables_equal_the_server_after_random_updates_and_refresh_required(server: OpenMarketsServer) -> None:
    contests = server.contest_ids[:4]
    async with stream_for(server) as stream:
        await stream.subscribe(contests)
        await stream.sync()
        assert_tables_match(stream, server, contests)
        for _ in range(3):
            server.step(60)
            server.refresh_burst(contests[:2], changes=30)
            server.step(40)
            await stream.sync()
            assert_tables_match(stream, server, contests)
        assert set(stream.views) == set(contests)


async def test_a_refresh_never_exposes_a_half_built_table(server: OpenMarketsServer) -> None:
    contest = server.contest_ids[0]
    async with stream_for(server) as stream:
        await stream.subscribe([contest])
        before = await stream.wait_for_table(contest)
        server.hold_rest()
        server.refresh_burst([contest], changes=40)
        server.step(20, contest_ids=[contest])  # these arrive while the re-fetch is held
        await stream.ping()  # answered after the updates above: the client has processed them
        during = stream.table(contest)
        assert during is not None and during.stale
        assert dict(during) == dict(before)  # the last complete table, not a partial one
        assert rows(during) != server.truth(contest)
        server.release_rest()
        after = await stream.wait_for_table(contest, after_version=before.version)
        await stream.sync()
        assert not after.stale
        assert_tables_match(stream, server, [contest])


async def test_table_feed_starts_with_current_views_then_conflates(server: OpenMarketsServer) -> None:
    contests = server.contest_ids[:2]
    async with stream_for(server) as stream:
        await stream.subscribe(contests)
        await stream.sync()
        async with stream.tables() as feed:
            assert {v.contest_id for v in pending(feed)} == set(contests)
            server.step(30, contest_ids=contests[:1])
            await stream.sync()
            (latest,) = pending(feed)  # one view per contest, the newest
            assert latest.contest_id == contests[0] and latest == stream.table(contests[0])
            assert feed.conflated > 0


async def test_refresh_retries_rest_failures_and_reports_unknown_contests(server: OpenMarketsServer) -> None:
    errors = Errors()
    contest = server.contest_ids[0]
    async with stream_for(server, on_error=errors) as stream:
        server.fail_rest(503, times=2)
        await stream.subscribe([contest, "ct_missing"])
        waiting = asyncio.create_task(stream.wait_for_table("ct_missing"))
        await stream.sync()
        assert_tables_match(stream, server, [contest])
        assert stream.table("ct_missing") is None
        await eventually(lambda: bool(errors.of(RefreshError)))
        (failure,) = errors.of(RefreshError)
        assert isinstance(failure, RefreshError)
        assert (failure.contest_id, failure.status) == ("ct_missing", 404)
        # Waiting for a table that cannot be fetched ends with the error, for a waiter before it and after it.
        with pytest.raises(RefreshError, match="ct_missing"):
            await asyncio.wait_for(waiting, 5)
        with pytest.raises(RefreshError, match="ct_missing"):
            await asyncio.wait_for(stream.wait_for_table("ct_missing"), 5)


async def test_updates_feed_loses_nothing_under_backpressure(server: OpenMarketsServer) -> None:
    async with stream_for(server, maintain_tables=False) as stream:
        await stream.subscribe(server.contest_ids)
        feed = stream.updates(channel="liquidity", maxsize=4)
        server.step(300)
        received: list[LiquidityUpdate] = []
        async with asyncio.timeout(10):
            async for update in feed:
                assert isinstance(update, LiquidityUpdate)
                received.append(update)
                if len(received) == server.events_sent:
                    break
                await asyncio.sleep(0)  # a slow consumer
        assert feed.dropped == 0
        await stream.sync()
        assert pending(feed) == []


# ---------------------------------------------------------------------------- limits


def made_up(n: int, prefix: str = "ct_x") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]


async def test_200_contests_per_connection_spread_over_connections(server: OpenMarketsServer) -> None:
    many = made_up(450)
    async with stream_for(server, maintain_tables=False) as stream:
        await stream.subscribe(many, channel="contest_state")
        assert [c.contests for c in stream.connections] == [200, 200, 50]
        assert sorted(len(p.filters["contest_state"]) for p in server.connections) == [50, 200, 200]

        with pytest.raises(ContestLimitError) as caught:
            await stream.subscribe([*many, *made_up(151, "ct_y")], channel="contest_state")
        assert caught.value.requested == 601
        assert stream.contests("contest_state") == many  # nothing changed
        assert len(server.connections) == 3

        await stream.subscribe(many[:100], channel="liquidity")  # the same contests count once
        assert [c.contests for c in stream.connections] == [200, 200, 50]

        await stream.subscribe(many[:10], channel="contest_state")
        assert [c.contests for c in stream.connections] == [100]  # idle connections are closed
        await eventually(lambda: len(server.connections) == 1)


async def test_max_connections_is_configurable(server: OpenMarketsServer) -> None:
    async with stream_for(server, maintain_tables=False, max_connections=2) as stream:
        with pytest.raises(ContestLimitError):
            await stream.subscribe(made_up(401), channel="contest_state")
        assert len(server.connections) == 1 and stream.contest_count == 0


async def test_the_server_refuses_a_201st_contest(server: OpenMarketsServer) -> None:
    async with stream_for(server, maintain_tables=False, max_contests_per_connection=250) as stream:
        with pytest.raises(ContestLimitError):
            await stream.subscribe(made_up(201), channel="contest_state")
        assert stream.contests("contest_state") == []
        assert server.connections[0].filters == {}


async def test_three_connections_per_key(server: OpenMarketsServer) -> None:
    many = made_up(401)
    async with stream_for(server, maintain_tables=False) as first:
        await first.subscribe(many, channel="contest_state")
        assert len(server.connections) == 3
        with pytest.raises(ConnectionLimitError):
            async with stream_for(server):
                pass
        assert server.handshakes[429] == 1
        await first.subscribe(many[:5], channel="contest_state")
        await eventually(lambda: len(server.connections) == 1)
        async with stream_for(server) as second:
            assert second.greeting is not None


# ---------------------------------------------------------------------------- heartbeat and reconnect


async def test_ping_pong_and_answering_server_pings() -> None:
    srv = OpenMarketsServer(seed=1, contests=2, rate=0, api_keys=[KEY], ping_interval=0.05)
    async with srv, stream_for(srv) as stream:
        pong = await stream.ping()
        assert pong.server_time is not None
        await eventually(lambda: bool(srv.connections) and srv.connections[0].pongs_received >= 3)
        assert stream.reconnects == 0 and stream.state is ConnectionState.STREAMING


async def test_reconnect_resubscribes_and_rebuilds_tables(server: OpenMarketsServer) -> None:
    states: list[ConnectionState] = []

    async def on_state(old: ConnectionState, new: ConnectionState) -> None:
        states.append(new)

    contests = server.contest_ids[:3]
    async with stream_for(server, on_state_change=on_state) as stream:
        await stream.subscribe(contests)
        await stream.subscribe(contests[:2], channel="contest_state")
        await stream.sync()
        for round_, clean in enumerate((False, True), start=1):
            await server.drop_connections(clean=clean)
            server.step(50)  # changes the client never sees streamed
            await eventually(lambda round_=round_: stream.reconnects == round_)  # type: ignore[misc]
            await stream.sync()
            assert_tables_match(stream, server, contests)
            assert server.connections[0].filters == {"liquidity": contests, "contest_state": contests[:2]}
        await eventually(lambda: bool(states) and states[-1] is ConnectionState.STREAMING)
        assert ConnectionState.RECONNECTING in states


async def test_lifecycle_events_come_from_the_shared_supervisor(server: OpenMarketsServer) -> None:
    stream = stream_for(server)
    events = stream.lifecycle_events()
    seen: list[Any] = []
    async with stream:
        await stream.subscribe(server.contest_ids[:2])
        await stream.sync()
        await server.drop_connections()
        async with asyncio.timeout(5):
            async for event in events:
                seen.append(event)
                if isinstance(event, Reconnected):
                    break
    async with asyncio.timeout(5):
        seen.extend([event async for event in events])
    kinds = [type(e) for e in seen]
    assert kinds[:3] == [Connected, Disconnected, Reconnected] and kinds[-1] is Closed
    assert all(KEY not in repr(e) for e in seen)  # the URL in the events never carries the key
    assert isinstance(seen[1], Disconnected) and seen[1].will_reconnect


# ---------------------------------------------------------------------------- errors


async def test_malformed_messages_and_typed_errors(server: OpenMarketsServer) -> None:
    errors = Errors()
    contest = server.contest_ids[0]
    async with stream_for(server, on_error=errors) as stream:
        await stream.subscribe([contest])
        await stream.sync()
        feed = stream.updates()
        server.send_raw("{not json")
        server.send_raw('{"type":"liquidity.update","contest_id":5}')
        server.send_raw('{"type":"opportunity.update","id":"op_1"}')
        server.send_error("invalid_message", "message is not valid JSON")
        server.step(5, contest_ids=[contest])
        await stream.sync()
        await eventually(lambda: len(errors.seen) >= 3)
        assert len(errors.of(OpenMarketsProtocolError)) == 2 and stream.protocol_errors == 2
        assert len(errors.of(InvalidMessageError)) == 1
        assert stream.reconnects == 0 and stream.state is ConnectionState.STREAMING
        items = pending(feed)
        assert isinstance(items[0], UnknownMessage) and items[0].type == "opportunity.update"
        assert items[1:] and all(isinstance(u, LiquidityUpdate) for u in items[1:])
        assert_tables_match(stream, server, [contest])

        with pytest.raises(InvalidChannelError):
            await stream.subscribe(["ct_a"], channel="orderbook")
        await eventually(lambda: bool(errors.of(InvalidChannelError)))
        assert stream.contests("orderbook") == []
        assert server.connections[0].filters == {"liquidity": [contest]}


async def test_the_api_key_never_shows(server: OpenMarketsServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(1)  # everything, every logger, below DEBUG too
    errors = Errors()
    shown: list[str] = []
    contests = server.contest_ids[:2]
    async with stream_for(server, on_error=errors) as stream:
        await stream.subscribe(contests)
        server.refresh_burst(contests[:1])
        await stream.sync()
        await server.drop_connections()
        await eventually(lambda: stream.reconnects == 1)
        await stream.sync()
        server.send_raw("{bad")
        feed = stream.updates()
        shown += [repr(stream), repr(stream.connections), repr(feed), repr(stream.views)]
        await stream.ping()
    other_secret = "om_data_live_OTHERsecret99"
    with pytest.raises(OpenMarketsAuthError) as caught:
        async with LiquidityStream(api_key=other_secret, url=server.url, **FAST):
            pass
    shown.append("".join(traceback.format_exception(caught.value)))
    shown += [str(e) for e in errors.seen]
    assert caplog.records
    for record in caplog.records:
        shown.append(record.getMessage())
        if record.exc_info and record.exc_info[1] is not None:
            shown.append("".join(traceback.format_exception(record.exc_info[1])))
    text = "\n".join(shown)
    assert KEY not in text and other_secret not in text
    assert "api_key=***" in text


async def test_commands_are_answered_while_a_full_feed_pauses_reading(server: OpenMarketsServer) -> None:
    # A consumer that subscribes, pings or syncs from its own loop while its BLOCK feed is full: the answers
    # arrive on the paused socket, so reading must resume for them (the feed overshoots; nothing is lost).
    first, second = server.contest_ids[:2]
    async with stream_for(server, command_timeout=60.0) as stream:
        await stream.subscribe([first])
        await stream.sync()
        feed = stream.updates(channel="liquidity", maxsize=4)
        server.step(60, contest_ids=[first])
        await eventually(lambda: feed.pending >= 4)  # full: the connection stops reading
        async with asyncio.timeout(10):  # a stalled answer would wait for command_timeout
            await stream.ping()
            await stream.subscribe([second], replace=False)
        assert stream.contests() == [first, second]
        server.step(20, contest_ids=[second])
        received: list[LiquidityUpdate] = []
        async with asyncio.timeout(10):
            async for update in feed:
                assert isinstance(update, LiquidityUpdate)
                received.append(update)
                if len(received) == server.events_sent:
                    break
        assert feed.dropped == 0
        await stream.sync()
        assert_tables_match(stream, server, [first, second])


async def test_a_subscribe_left_unanswered_is_restored_on_a_new_connection(server: OpenMarketsServer) -> None:
    # Without command ids a late answer would be taken for the next command's, and the server's filter is
    # unknown: the stalled connection is replaced and the subscriptions restored, so the table gets built.
    contest = server.contest_ids[0]
    async with stream_for(server, command_timeout=0.2) as stream:
        server.withhold_replies("subscribed")
        async with asyncio.timeout(10):
            await stream.subscribe([contest])
            await stream.sync()
        assert stream.reconnects == 1
        assert server.connections[0].filters == {"liquidity": [contest]}
        assert_tables_match(stream, server, [contest])


async def test_a_resubscribe_left_unanswered_after_a_reconnect_is_retried(server: OpenMarketsServer) -> None:
    contests = server.contest_ids[:2]
    async with stream_for(server, command_timeout=0.2) as stream:
        await stream.subscribe(contests)
        await stream.sync()
        server.withhold_replies("subscribed")
        await server.drop_connections()
        server.step(30, contest_ids=contests)
        async with asyncio.timeout(10):
            await eventually(lambda: stream.reconnects == 2)
            await stream.sync()
        assert_tables_match(stream, server, contests)
