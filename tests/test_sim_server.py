"""The simulator server: signed upgrades, heartbeats, REST, activity loop, lifecycle, fixtures and CLI."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from kalshi.auth import KalshiAuth, generate_private_key_pem
from kalshi.config import KalshiConfig
from kalshi.sim import Simulator
from kalshi.sim.__main__ import main as sim_main
from kalshi.sim.cli import DEMO_KEY_ID, SimOptions, prepare_demo_key, serve
from simclient import WS_PATH, SimClient, data_of, eventually, ticks, units


@pytest.fixture
async def sim(kalshi_sim_factory: Callable[..., Simulator]) -> AsyncIterator[Simulator]:
    async with kalshi_sim_factory(seed=2, markets=4) as s:
        yield s


async def handshake_status(sim: Simulator, headers: dict[str, str]) -> int:
    """The HTTP status of an upgrade attempt (101 when accepted)."""
    try:
        client = await SimClient.connect(sim.url, headers=headers)
    except aiohttp.WSServerHandshakeError as exc:
        return exc.status
    await client.close()
    return 101


# -- authentication ---------------------------------------------------------------------------------------


async def test_upgrade_needs_a_valid_fresh_signature(sim: Simulator) -> None:
    auth, _ = sim.create_account_auth()
    stranger = KalshiAuth.from_pem("not-registered", generate_private_key_pem("ed25519")[0])
    now = int(time.time() * 1000)
    bad_path = auth.headers("GET", "/trade-api/ws/v3")
    tampered = auth.headers("GET", WS_PATH)
    tampered["KALSHI-ACCESS-SIGNATURE"] = auth.headers("GET", WS_PATH, timestamp_ms=now - 1)["KALSHI-ACCESS-SIGNATURE"]
    replayed = auth.headers("GET", WS_PATH)
    cases = {
        "missing_header": {},
        "unknown_key": stranger.headers("GET", WS_PATH),
        "bad_signature": bad_path,
        "stale_timestamp": auth.headers("GET", WS_PATH, timestamp_ms=now - 600_000),
        "bad_timestamp": {**auth.headers("GET", WS_PATH), "KALSHI-ACCESS-TIMESTAMP": "soon"},
    }
    for code, headers in cases.items():
        assert await handshake_status(sim, headers) == 401, code
        assert sim.rejections[code] >= 1, code
    assert await handshake_status(sim, tampered) == 401
    assert await handshake_status(sim, replayed) == 101
    assert await handshake_status(sim, replayed) == 401
    assert sim.rejections["replayed"] == 1
    assert sim.connection_ids() == []


async def test_rejection_has_a_json_body_and_no_upgrade(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.get(sim.url + WS_PATH, headers={"Upgrade": "websocket", "Connection": "Upgrade"})
        assert resp.status == 401
        body = await resp.json()
    assert body["error"]["code"] == "missing_header" and "KalshiAuth" in body["error"]["message"]


async def test_rsa_keys_and_shared_accounts(sim: Simulator) -> None:
    rsa_auth, account = sim.create_account_auth("rsa")
    private_pem, public_pem = generate_private_key_pem("ed25519")
    assert sim.register_key("second-key", public_pem, account=account) == account
    second = KalshiAuth.from_pem("second-key", private_pem)
    async with await SimClient.connect(sim.url, auth=rsa_auth) as a, await SimClient.connect(sim.url, auth=second) as b:
        for c in (a, b):
            await c.request("subscribe", {"channels": ["user_orders"]})
        sim.place_order(account, sim.tickers[0], "bid", 500, 100)
        for c in (a, b):
            await sim.quiesce()
            orders = [m for m in data_of(await c.sync()) if m["type"] == "user_order"]
            assert len(orders) == 1 and orders[0]["msg"]["status"] == "resting"


async def test_open_access_accepts_unsigned_but_still_checks_signatures(
    kalshi_sim_factory: Callable[..., Simulator],
) -> None:
    async with kalshi_sim_factory(open_access=True) as sim:
        assert await handshake_status(sim, {}) == 101
        auth, _ = sim.create_account_auth()
        assert await handshake_status(sim, auth.headers("GET", WS_PATH, timestamp_ms=1)) == 401
        async with await SimClient.connect(sim.url, auth=auth) as client:
            reply = (await client.request("subscribe", {"channels": ["fill"]}))[-1]
            assert reply["type"] == "subscribed"


# -- heartbeat ----------------------------------------------------------------------------------------------


async def test_pings_carry_heartbeat_and_silence_is_closed(kalshi_sim_factory: Callable[..., Simulator]) -> None:
    async with kalshi_sim_factory(ping_interval=0.05, ping_timeout=0.2) as sim:
        auth, _ = sim.create_account_auth()
        client = await SimClient.connect(sim.url, auth=auth, autopong=False)
        try:
            await asyncio.wait_for(client.closed.wait(), 5)
            assert client.pings and set(client.pings) == {b"heartbeat"}
            assert client.close_code == 1011
        finally:
            await client.close()
        await eventually(lambda: not sim.connection_ids())


async def test_answering_client_stays_connected(kalshi_sim_factory: Callable[..., Simulator]) -> None:
    async with kalshi_sim_factory(ping_interval=0.03, ping_timeout=0.2) as sim:
        auth, _ = sim.create_account_auth()
        async with await SimClient.connect(sim.url, auth=auth) as client:
            conn = sim.connection(sim.connection_ids()[0])
            await eventually(lambda: conn.pongs_received >= 10)
            assert (await client.request("list_subscriptions"))[-1]["type"] == "ok"
            assert conn.pings_sent >= 10 and not client.closed.is_set()


async def test_server_answers_client_pings(sim: Simulator) -> None:
    auth, _ = sim.create_account_auth()
    async with await SimClient.connect(sim.url, auth=auth, autopong=False) as client:
        await client.ws.ping(b"are-you-there")
        await client.sync()
        assert client.pongs == [b"are-you-there"]


# -- REST ---------------------------------------------------------------------------------------------------


async def test_rest_exchange_status_and_orderbook(sim: Simulator) -> None:
    sim.step(300)
    ticker = sim.tickers[0]
    async with aiohttp.ClientSession() as http:
        status = await (await http.get(f"{sim.config.rest_url}/exchange/status")).json()
        assert status["exchange_active"] is True and status["trading_active"] is True
        resp = await http.get(f"{sim.config.rest_url}/markets/{ticker}/orderbook")
        book = (await resp.json())["orderbook_fp"]
        top = (await (await http.get(f"{sim.config.rest_url}/markets/{ticker}/orderbook?depth=1")).json())[
            "orderbook_fp"
        ]
        missing = await http.get(f"{sim.config.rest_url}/markets/NOPE-1/orderbook")
        bad_depth = await http.get(f"{sim.config.rest_url}/markets/{ticker}/orderbook?depth=500")
    truth = sim.book(ticker)
    assert [(ticks(p), units(s)) for p, s in book["yes_dollars"]] == list(truth.yes_ticks)
    assert [(ticks(p), units(s)) for p, s in book["no_dollars"]] == list(truth.no_ticks)
    assert top["yes_dollars"] == book["yes_dollars"][:1] and top["no_dollars"] == book["no_dollars"][:1]
    assert missing.status == 404 and bad_depth.status == 400


def test_config_points_at_the_simulator() -> None:
    sim = Simulator(port=9999, markets=1)
    assert sim.config == KalshiConfig.local("http://127.0.0.1:9999")
    assert sim.config.ws_url == "ws://127.0.0.1:9999/trade-api/ws/v2"


# -- activity and lifecycle ---------------------------------------------------------------------------------


async def test_activity_loop_runs_pauses_and_leaves_no_tasks(kalshi_sim_factory: Callable[..., Simulator]) -> None:
    async with kalshi_sim_factory(rate=2000, markets=3) as sim:
        auth, _ = sim.create_account_auth()
        async with await SimClient.connect(sim.url, auth=auth) as client:
            await client.request("subscribe", {"channels": ["orderbook_delta"], "market_tickers": sim.tickers})
            await eventually(lambda: sim.activity.steps >= 200)
            await sim.quiesce()
            paused_at = sim.activity.steps
            frames = data_of(await client.sync())
            await asyncio.sleep(0.05)
            assert sim.activity.steps == paused_at
            assert any(m["type"] == "orderbook_delta" for m in frames)
            sim.resume_activity()
            await eventually(lambda: sim.activity.steps > paused_at)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("sim-")]


async def test_stop_closes_clients_with_1001(kalshi_sim_factory: Callable[..., Simulator]) -> None:
    sim = kalshi_sim_factory()
    await sim.start()
    auth, _ = sim.create_account_auth()
    client = await SimClient.connect(sim.url, auth=auth)
    try:
        await sim.stop()
        await asyncio.wait_for(client.closed.wait(), 5)
        assert client.close_code == 1001
    finally:
        await client.close()
    with pytest.raises(aiohttp.ClientConnectorError):
        await SimClient.connect(sim.url, auth=auth)


async def test_start_twice_is_refused(sim: Simulator) -> None:
    with pytest.raises(RuntimeError):
        await sim.start()


# -- pytest plugin and CLI ----------------------------------------------------------------------------------


async def test_kalshi_sim_fixture(kalshi_sim: Simulator) -> None:
    assert len(kalshi_sim.tickers) == 4 and kalshi_sim.rate == 0
    auth, _ = kalshi_sim.create_account_auth()
    async with await SimClient.connect(kalshi_sim.url, auth=auth) as client:
        reply = (await client.request("subscribe", {"channels": ["ticker"]}))[-1]
        assert reply["type"] == "subscribed"


async def test_cli_serve_with_demo_key(tmp_path: Path) -> None:
    lines: list[str] = []
    stop = asyncio.Event()
    started: asyncio.Future[Simulator] = asyncio.get_running_loop().create_future()
    options = SimOptions(port=0, rate=0, markets=2, write_demo_key=tmp_path, faults="dup=1/1000000")
    task = asyncio.create_task(serve(options, echo=lines.append, stop=stop, started=started.set_result))
    try:
        sim = await asyncio.wait_for(started, 5)
        auth = KalshiAuth.from_key_path(DEMO_KEY_ID, tmp_path / f"{DEMO_KEY_ID}.key.pem")
        async with await SimClient.connect(sim.url, auth=auth) as client:
            reply = (await client.request("subscribe", {"channels": ["fill"]}))[-1]
            assert reply["type"] == "subscribed"
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert any(sim.url in line for line in lines) and any(DEMO_KEY_ID in line for line in lines)
    first = (tmp_path / f"{DEMO_KEY_ID}.pub.pem").read_bytes()
    prepare_demo_key(tmp_path)
    assert (tmp_path / f"{DEMO_KEY_ID}.pub.pem").read_bytes() == first  # reused, not overwritten


def test_module_main_rejects_bad_faults(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_main(["--faults", "earthquake=1", "--port", "0"]) == 2
    assert "unknown fault" in capsys.readouterr().err


async def test_key_dir_is_loaded_at_start(tmp_path: Path, kalshi_sim_factory: Callable[..., Simulator]) -> None:
    prepare_demo_key(tmp_path)
    async with kalshi_sim_factory(key_dir=tmp_path) as sim:
        assert sim.account_of(DEMO_KEY_ID) == DEMO_KEY_ID
        auth = KalshiAuth.from_key_path(DEMO_KEY_ID, tmp_path / f"{DEMO_KEY_ID}.key.pem")
        with contextlib.suppress(aiohttp.WSServerHandshakeError):
            async with await SimClient.connect(sim.url, auth=auth) as client:
                assert (await client.request("list_subscriptions"))[-1]["msg"] == []
                return
        raise AssertionError("the key directory's key was not accepted")
