"""The local OpenMarkets server on the wire, with a plain aiohttp client (independent of openmarkets' code)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from kalshi.sim.openmarkets import DEMO_API_KEY, OpenMarketsServer, serve_openmarkets

KEY = "om_data_test_server"


@pytest.fixture
async def server() -> AsyncIterator[OpenMarketsServer]:
    async with OpenMarketsServer(seed=3, contests=4, rate=0, api_keys=[KEY]) as srv:
        yield srv


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def connect(
    session: aiohttp.ClientSession, server: OpenMarketsServer, key: str = KEY, **options: Any
) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(f"{server.url}?api_key={key}", **options)
    greeting = await receive(ws)
    assert greeting["type"] == "connected"
    return ws


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    async with asyncio.timeout(3):
        data: dict[str, Any] = json.loads(await ws.receive_str(), parse_float=Decimal)
    return data


async def command(ws: aiohttp.ClientWebSocketResponse, payload: Any) -> dict[str, Any]:
    await ws.send_str(payload if isinstance(payload, str) else json.dumps(payload))
    return await receive(ws)


def sub(channel: str, ids: list[str], action: str = "subscribe") -> dict[str, Any]:
    return {"action": action, "channel": channel, "contest_ids": ids}


async def test_greeting_fields(server: OpenMarketsServer, session: aiohttp.ClientSession) -> None:
    ws = await session.ws_connect(f"{server.url}?api_key={KEY}")
    greeting = await receive(ws)
    assert set(greeting) == {"type", "organization_id", "api_key_id", "server_time"}
    assert greeting["organization_id"] == "org_local" and KEY not in greeting["api_key_id"]
    assert greeting["server_time"].endswith("Z")
    await ws.close()


async def test_subscribe_replaces_the_filter_and_unsubscribe_removes(
    server: OpenMarketsServer, session: aiohttp.ClientSession
) -> None:
    a, b, c = server.contest_ids[:3]
    ws = await connect(session, server)
    assert await command(ws, sub("liquidity", [a, b])) == {
        "type": "subscribed",
        "channel": "liquidity",
        "contest_ids": [a, b],
    }
    assert (await command(ws, sub("liquidity", [c])))["contest_ids"] == [c]
    assert (await command(ws, sub("liquidity", [])))["contest_ids"] == [c]  # an empty array is a no-op
    reply = await command(ws, sub("liquidity", [c, "ct_none"], "unsubscribe"))
    assert reply == {"type": "unsubscribed", "channel": "liquidity", "contest_ids": [c]}
    assert server.connections[0].filters == {}
    pong = await command(ws, {"action": "ping"})
    assert pong["type"] == "pong" and pong["server_time"]
    await ws.close()


async def test_bad_messages_get_typed_errors(server: OpenMarketsServer, session: aiohttp.ClientSession) -> None:
    ws = await connect(session, server)
    cases = [
        ("{not json", "invalid_message"),
        ("[1]", "invalid_message"),
        ({"action": "dance"}, "invalid_message"),
        (sub("orderbook", ["x"]), "invalid_channel"),
        ({"action": "subscribe", "channel": "liquidity", "contest_ids": "x"}, "invalid_message"),
    ]
    for payload, code in cases:
        reply = await command(ws, payload)
        assert (reply["type"], reply["code"]) == ("error", code), payload
        assert reply["message"]
    await ws.close()


async def test_200_contests_per_connection(server: OpenMarketsServer, session: aiohttp.ClientSession) -> None:
    ids = [f"ct_{i:03d}" for i in range(201)]
    ws = await connect(session, server)
    assert len((await command(ws, sub("liquidity", ids[:200])))["contest_ids"]) == 200
    assert (await command(ws, sub("contest_state", ids[:5])))["type"] == "subscribed"  # same contests: still 200
    reply = await command(ws, sub("contest_state", ids[195:201]))
    assert (reply["type"], reply["code"]) == ("error", "contest_limit_exceeded")
    assert server.connections[0].filters["contest_state"] == ids[:5]  # unchanged
    await ws.close()


async def test_upgrade_refusals(server: OpenMarketsServer, session: aiohttp.ClientSession) -> None:
    for url in (server.url, f"{server.url}?api_key=wrong"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await session.ws_connect(url)
        assert caught.value.status == 401
    open_ = [await connect(session, server) for _ in range(3)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await session.ws_connect(f"{server.url}?api_key={KEY}")
    assert caught.value.status == 429
    assert server.handshakes[401] == 2 and server.handshakes[429] == 1
    await open_[0].close()
    async with asyncio.timeout(3):
        while len(server.connections) > 2:  # noqa: ASYNC110 - the server frees the slot in its handler
            await asyncio.sleep(0.005)
    open_.append(await connect(session, server))
    for ws in open_[1:]:
        await ws.close()


async def test_updates_go_only_to_subscribers(server: OpenMarketsServer, session: aiohttp.ClientSession) -> None:
    a, b = server.contest_ids[:2]
    first, second = await connect(session, server), await connect(session, server)
    await command(first, sub("liquidity", [a]))
    await command(second, sub("liquidity", [b]))
    await command(second, sub("contest_state", [b]))
    server.step(20, contest_ids=[a, b])
    server.refresh_burst([b], changes=5)
    server.set_contest_state(b, "live")
    marker = {"action": "ping"}
    for ws, mine in ((first, a), (second, b)):
        await ws.send_str(json.dumps(marker))
        seen = []
        while (message := await receive(ws))["type"] != "pong":
            seen.append(message)
        assert seen and {m["contest_id"] for m in seen} == {mine}
    updates = [m for m in seen if m["type"] == "liquidity.update"]
    refresh = [m for m in updates if m["refresh_required"]]
    assert len(refresh) == 1 and refresh[0]["changed_entries"] == []
    assert seen[-1] == {
        "type": "contest_state.update",
        "contest_id": b,
        "state": "live",
        "timestamp": seen[-1]["timestamp"],
    }
    entry = updates[0]["changed_entries"][0]
    assert set(entry) == {"liquidity_hash", "partner_id", "price", "available"}
    assert isinstance(entry["price"], Decimal)  # a JSON number, not a string
    assert entry["liquidity_hash"].startswith(f"{entry['partner_id']}:{b}:")
    await first.close()
    await second.close()


async def test_rest_liquidity_endpoint(server: OpenMarketsServer, session: aiohttp.ClientSession) -> None:
    contest = server.contest_ids[0]
    url = f"{server.rest_url}/contests/{contest}/liquidity"
    async with session.get(url) as response:
        assert response.status == 401
    headers = {"X-API-Key": KEY}
    async with session.get(f"{server.rest_url}/contests/ct_nope/liquidity", headers=headers) as response:
        assert response.status == 404
    async with session.get(url, headers=headers) as response:
        assert response.status == 200
        text = await response.text()
    body = json.loads(text, parse_float=Decimal)
    assert body["contest_id"] == contest
    table = {
        e["liquidity_hash"]: (e["partner_id"], Decimal(e["price"]), Decimal(e["available"])) for e in body["entries"]
    }
    assert table == server.truth(contest) and table
    assert '"price":"' not in text  # numbers, as in the seed
    server.fail_rest(503)
    async with session.get(url, headers=headers) as response:
        assert response.status == 503
    async with session.get(f"{server.rest_url}/contests", headers=headers) as response:
        listed = await response.json()
    assert [c["contest_id"] for c in listed["contests"]] == server.contest_ids


async def test_a_client_that_does_not_pong_is_terminated(session: aiohttp.ClientSession) -> None:
    async with OpenMarketsServer(seed=1, contests=1, rate=0, api_keys=[KEY], ping_interval=0.05) as srv:
        ws = await connect(session, srv, autoping=False)
        async with asyncio.timeout(3):
            while (message := await ws.receive()).type is not aiohttp.WSMsgType.CLOSE:
                assert message.type is aiohttp.WSMsgType.PING
        assert ws.close_code == 4000


async def test_activity_and_the_serve_entry_point() -> None:
    lines: list[str] = []
    stop = asyncio.Event()
    started: list[OpenMarketsServer] = []
    task = asyncio.create_task(
        serve_openmarkets(
            "127.0.0.1", 0, 5, contests=3, rate=200.0, echo=lines.append, stop=stop, started=started.append
        )
    )
    async with asyncio.timeout(5):
        while not started:  # noqa: ASYNC110 - filled by the started callback
            await asyncio.sleep(0.005)
        server = started[0]
        async with aiohttp.ClientSession() as client:
            ws = await connect(client, server, key=DEMO_API_KEY)
            await command(ws, sub("liquidity", server.contest_ids))
            assert (await receive(ws))["type"] == "liquidity.update"  # the activity loop runs
            await ws.close()
    stop.set()
    await task
    assert any(server.url in line for line in lines) and any(DEMO_API_KEY in line for line in lines)


def test_python_m_kalshi_sim_openmarkets_serves_until_interrupted() -> None:
    import signal
    import subprocess
    import sys

    with subprocess.Popen(
        [sys.executable, "-m", "kalshi.sim.openmarkets", "--port", "0", "--contests", "2", "--seed", "3"],
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first.startswith("OpenMarkets server: ws://127.0.0.1:")
            assert first.rstrip().endswith("/flow/v1/stream")
            assert DEMO_API_KEY in "".join(proc.stdout.readline() for _ in range(2))
        finally:
            proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean exit
            assert proc.wait(timeout=20) == 0
