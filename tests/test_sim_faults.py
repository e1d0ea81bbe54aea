"""Fault injection: every kind, from the API and from spec strings, counted and observed by a real client."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from kalshi.sim import FaultController, FaultSpecError, Simulator, parse_fault_spec
from kalshi.sim.faults import Refusal, parse_duration, parse_probability
from simclient import BookReplica, SimClient, check_seq, data_of, eventually

FIXED_CLOCK = 1_700_000_000_000


@pytest.fixture
async def sim(kalshi_sim_factory: Callable[..., Simulator]) -> AsyncIterator[Simulator]:
    async with kalshi_sim_factory(seed=9, markets=4, lifecycle=False) as s:
        yield s


async def book_client(sim: Simulator, **options: Any) -> tuple[SimClient, int, int]:
    """A client subscribed to every market's book, settled; returns (client, connection id, sid)."""
    auth, _ = sim.create_account_auth()
    client = await SimClient.connect(sim.url, auth=auth, **options)
    reply = await client.request("subscribe", {"channels": ["orderbook_delta"], "market_tickers": sim.tickers})
    await sim.quiesce()
    await client.sync()
    return client, sim.connection_ids()[-1], reply[-1]["msg"]["sid"]


async def settled(sim: Simulator, client: SimClient) -> list[dict[str, Any]]:
    await sim.quiesce()
    return data_of(await client.sync())


def seqs(messages: list[dict[str, Any]], sid: int) -> list[int]:
    return [m["seq"] for m in messages if m.get("sid") == sid and "seq" in m]


# -- spec strings -------------------------------------------------------------------------------------------


def test_parse_the_documented_example() -> None:
    spec = parse_fault_spec("drop_every=3s,skip_seq=1/5000,dup=1/2000,reorder=1/2000,malformed=1/10000,refuse=401:2s")
    assert spec.drop_every == 3.0
    assert spec.frame_probabilities == {
        "skip_seq": 1 / 5000,
        "dup": 1 / 2000,
        "reorder": 1 / 2000,
        "malformed": 1 / 10000,
    }
    assert spec.refuse == Refusal(401, 2.0, None)
    full = parse_fault_spec(
        "refuse=429:500ms:1, delay_acks=250ms, stall=5s:1s, ignore_pings=true, overflow=0.01, drop_one_every=2m"
    )
    assert full.refuse == Refusal(429, 0.5, 1.0)
    assert (full.delay_acks, full.stall_every, full.stall_for, full.ignore_pings) == (0.25, 5.0, 1.0, True)
    assert full.frame_probabilities == {"overflow": 0.01} and full.drop_one_every == 120.0
    assert parse_fault_spec(None).empty and parse_fault_spec(" ").empty
    assert parse_duration("1.5") == 1.5 and parse_probability("0") == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        "earthquake=1",
        "dup",
        "dup=2",
        "dup=1/0",
        "drop_every=soon",
        "drop_every=0s",
        "refuse=200:1s",
        "refuse=401",
        "stall=5s",
        "ignore_pings=maybe",
    ],
)
def test_bad_specs_say_what_is_wrong(bad: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_fault_spec(bad)


def test_controller_needs_a_running_simulator() -> None:
    faults = FaultController("dup=1/10", seed=1)
    with pytest.raises(RuntimeError):
        faults.drop()
    with pytest.raises(ValueError):
        faults.refuse_handshakes(200, 1.0, now=0.0)


# -- dropping -----------------------------------------------------------------------------------------------


async def test_drop_now_aborts_without_close_frame(sim: Simulator) -> None:
    client, conn_id, _ = await book_client(sim)
    try:
        assert sim.faults.drop(conn_id) == conn_id
        await asyncio.wait_for(client.closed.wait(), 5)
        assert client.close_code not in (1000, 1001)
        assert sim.faults.counts["drop"] == 1
    finally:
        await client.close()


async def test_drop_after_n_messages(sim: Simulator) -> None:
    client, conn_id, _ = await book_client(sim)
    try:
        sim.faults.drop(conn_id, after_messages=7)
        sim.step(300)
        await asyncio.wait_for(client.closed.wait(), 5)
        assert len(client.drain_nowait()) == 7
        assert sim.faults.counts["drop"] == 1
    finally:
        await client.close()


async def test_drop_all_cleanly_and_drop_one_at_random(sim: Simulator) -> None:
    clients = [(await book_client(sim))[0] for _ in range(3)]
    try:
        victim = sim.faults.drop()
        await eventually(lambda: victim not in sim.connection_ids())
        assert len(sim.connection_ids()) == 2 and sum(c.closed.is_set() for c in clients) <= 1
        assert len(sim.faults.drop_all(clean=True)) == 2
        for c in clients:
            await asyncio.wait_for(c.closed.wait(), 5)
        survivors = [c for cid, c in zip((1, 2, 3), clients, strict=True) if cid != victim]
        assert [c.close_code for c in survivors] == [1001, 1001]
        assert sim.faults.counts["drop"] == 3
    finally:
        for c in clients:
            await c.close()


# -- frame faults -------------------------------------------------------------------------------------------


async def test_skip_seq_leaves_exactly_one_gap(sim: Simulator) -> None:
    client, conn_id, sid = await book_client(sim)
    async with client:
        sim.faults.skip_seq(connection=conn_id)
        sim.step(200)
        got = seqs(await settled(sim, client), sid)
    start = len([f for f in client.log if (f.data or {}).get("type") == "orderbook_snapshot"])
    assert sorted(set(range(start + 1, got[-1] + 1)) - set(got)) == [start + 1]
    assert sim.faults.counts["skip_seq"] == 1


async def test_duplicate_reorder_malformed(sim: Simulator) -> None:
    client, conn_id, sid = await book_client(sim)
    async with client:
        sim.faults.duplicate(connection=conn_id)
        sim.step(100)
        await sim.quiesce()
        frames = await client.sync()
        raws = [f.raw for f in frames]
        assert any(a == b for a, b in itertools.pairwise(raws))
        assert len(seqs(data_of(frames), sid)) == len(set(seqs(data_of(frames), sid))) + 1

        sim.faults.reorder(connection=conn_id)
        sim.step(100)
        got = seqs(await settled(sim, client), sid)
        inversions = [i for i in range(1, len(got)) if got[i] < got[i - 1]]
        assert len(inversions) == 1
        assert sorted(got) == list(range(min(got), min(got) + len(got)))

        sim.faults.malformed(connection=conn_id)
        sim.step(100)
        await sim.quiesce()
        frames = await client.sync()
        bad = [f for f in frames if f.data is None]
        assert len(bad) == 1
        with pytest.raises(json.JSONDecodeError):
            json.loads(bad[0].raw)
    assert {k: sim.faults.counts[k] for k in ("dup", "reorder", "malformed")} == {
        "dup": 1,
        "reorder": 1,
        "malformed": 1,
    }


async def test_book_survives_reorder_once_resorted(sim: Simulator) -> None:
    client, conn_id, sid = await book_client(sim)
    async with client:
        replica = BookReplica()
        replica.apply_all([f.data for f in client.log if f.data is not None])
        sim.faults.reorder(2, connection=conn_id)
        sim.step(300)
        messages = await settled(sim, client)
    ordered = sorted((m for m in messages if m.get("sid") == sid), key=lambda m: m["seq"])
    assert [m["seq"] for m in ordered] == list(range(len(sim.tickers) + 1, len(sim.tickers) + 1 + len(ordered)))
    replica.apply_all(ordered)
    for ticker in sim.tickers:
        assert replica.orderbook(ticker) == sim.book(ticker)


async def test_random_frame_faults_are_seeded_and_counted(kalshi_sim_factory: Callable[..., Simulator]) -> None:
    observed = []
    for _ in range(2):
        async with kalshi_sim_factory(
            seed=3,
            markets=4,
            clock_ms=lambda: FIXED_CLOCK,
            faults="skip_seq=1/40,dup=1/40,reorder=1/40,malformed=1/40",
        ) as sim:
            client, _, sid = await book_client(sim)
            async with client:
                for _ in range(6):
                    sim.step(200)
                await sim.quiesce()
                await client.sync()
            data = [f.data for f in client.log if f.data is not None]
            got = seqs(data, sid)
            counts = sim.faults.counts
            assert len(got) - len(set(got)) == counts["dup"] > 0
            assert len(set(range(1, max(got) + 1)) - set(got)) == counts["skip_seq"] > 0
            assert sum(1 for f in client.log if f.data is None) == counts["malformed"] > 0
            assert counts["reorder"] > 0 and any(b < a for a, b in itertools.pairwise(got))
            observed.append((dict(counts), [f.raw for f in client.log]))
    assert observed[0] == observed[1]


# -- subscription errors ------------------------------------------------------------------------------------


async def test_overflow_sends_error_25_and_ends_the_subscription(sim: Simulator) -> None:
    client, conn_id, sid = await book_client(sim)
    async with client:
        trade = (await client.request("subscribe", {"channels": ["trade"]}))[-1]["msg"]["sid"]
        assert sim.faults.overflow(connection=conn_id, sid=sid)
        sim.step(300)
        messages = await settled(sim, client)
        error = next(m for m in messages if m["type"] == "error")
        assert error["msg"]["code"] == 25 and error["sid"] == sid and "seq" in error
        assert all(m.get("sid") != sid for m in messages[messages.index(error) + 1 :])
        listed = (await client.request("list_subscriptions"))[-1]["msg"]
        assert [s["sid"] for s in listed] == [trade]
    assert sim.faults.counts["overflow"] == 1
    assert not sim.faults.overflow(connection=999)


async def test_slow_consumer_overflows_its_outbox(kalshi_sim_factory: Callable[..., Simulator]) -> None:
    async with kalshi_sim_factory(markets=4, outbox_limit=30) as sim:
        client, _, sid = await book_client(sim)
        async with client:
            sim.step(1000)  # synchronous: the writer cannot run, the outbox fills
            messages = await settled(sim, client)
            errors = [m for m in messages if m["type"] == "error"]
            assert [(e["msg"]["code"], e["sid"]) for e in errors] == [(25, sid)]
            # No gap before the error: the frame that did not fit gave its seq to the error.
            check_seq([f.data for f in client.log if f.data is not None], {sid})
            assert (await client.request("list_subscriptions"))[-1]["msg"] == []


# -- handshakes, commands, heartbeats, stalls ---------------------------------------------------------------


async def test_refused_handshakes(sim: Simulator) -> None:
    auth, _ = sim.create_account_auth()
    loop = asyncio.get_running_loop()
    for status, retry in ((401, None), (429, 2.0), (503, None)):
        sim.faults.refuse_handshakes(status, 30.0, retry_after=retry, now=loop.time())
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await SimClient.connect(sim.url, auth=auth)
        assert info.value.status == status
        if retry is not None:
            assert info.value.headers is not None and info.value.headers["Retry-After"] == "2"
    sim.faults.stop_refusing()
    async with await SimClient.connect(sim.url, auth=auth):
        pass
    sim.faults.refuse_handshakes(503, 0.05, now=loop.time())
    await asyncio.sleep(0.06)
    async with await SimClient.connect(sim.url, auth=auth):
        pass
    assert sim.faults.counts["refuse"] == 3


async def test_delayed_acks_let_data_through_first(sim: Simulator) -> None:
    client, _, sid = await book_client(sim)
    async with client:
        sim.faults.delay_acks(0.3)
        cid = await client.cmd("subscribe", {"channels": ["ticker"]})
        sim.step(100)
        messages = await client.recv_until(lambda m: m.get("id") == cid)
        sim.faults.delay_acks(0)
        assert messages[-1]["type"] == "subscribed"
        assert any(m.get("sid") == sid and m["type"] == "orderbook_delta" for m in messages[:-1])
    assert sim.faults.counts["delay_ack"] == 1


async def test_ignored_pings_get_no_pong(sim: Simulator) -> None:
    auth, _ = sim.create_account_auth()
    async with await SimClient.connect(sim.url, auth=auth, autopong=False) as client:
        sim.faults.ignore_pings()
        await client.ws.ping(b"one")
        await client.sync()
        assert client.pongs == []
        sim.faults.ignore_pings(False)
        await client.ws.ping(b"two")
        await client.sync()
        assert client.pongs == [b"two"]
    assert sim.faults.counts["ignore_ping"] == 1


async def test_stall_holds_frames_then_delivers_them(sim: Simulator) -> None:
    client, conn_id, _ = await book_client(sim)
    async with client:
        replica = BookReplica()
        replica.apply_all([f.data for f in client.log if f.data is not None])
        assert sim.faults.stall(0.2, conn_id) == conn_id
        sim.step(200)
        await asyncio.sleep(0.02)
        conn = sim.connection(conn_id)
        assert conn.outbox.frames and not conn.idle
        replica.apply_all(await settled(sim, client))
        for ticker in sim.tickers:
            assert replica.orderbook(ticker) == sim.book(ticker)
    assert sim.faults.counts["stall"] == 1


async def test_periodic_drops_with_refusal_window(kalshi_sim_factory: Callable[..., Simulator]) -> None:
    async with kalshi_sim_factory(faults="drop_every=500ms,refuse=503:200ms") as sim:
        auth, _ = sim.create_account_auth()
        statuses: Counter[int] = Counter()
        client = None
        for _ in range(200):
            try:
                client = await SimClient.connect(sim.url, auth=auth)
                break
            except aiohttp.WSServerHandshakeError as exc:
                statuses[exc.status] += 1
                await asyncio.sleep(0.02)
        assert client is not None and statuses[503] >= 1
        async with client:
            await asyncio.wait_for(client.closed.wait(), 5)
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await SimClient.connect(sim.url, auth=auth)
        assert info.value.status == 503
        assert sim.faults.counts["drop"] >= 1 and sim.faults.counts["refuse"] >= 2
