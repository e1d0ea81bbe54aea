"""Settle-at-close as a client sees it: REST market status and the market_lifecycle_v2 stream, and the options.

The simulator runs on 127.0.0.1 with an injected clock that the tests move; activity is driven with
``sim.step()`` (rate 0), so nothing depends on timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp

from conftest import ManualClock
from kalshi.config import REST_PATH
from kalshi.sim import Simulator
from kalshi.sim.__main__ import main as sim_main
from kalshi.sim.cli import SimOptions, serve
from simclient import SimClient, data_of

T0 = 1_700_000_000_000
HOUR = 3_600_000


async def get(http: aiohttp.ClientSession, sim: Simulator, path: str, **params: str) -> dict[str, Any]:
    async with http.get(f"{sim.url}{REST_PATH}{path}", params=params) as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


def close_of(sim: Simulator, ticker: str) -> int:
    close = sim.engine.market(ticker).close_time_ms
    assert close is not None
    return close


async def test_a_market_settles_at_its_close_and_its_series_lists_the_next_event(
    kalshi_sim_factory: Callable[..., Simulator],
) -> None:
    clock = ManualClock(T0)
    async with kalshi_sim_factory(seed=3, markets=6, quick_settle=True, clock_ms=clock, open_access=True) as sim:
        singles = [t for t in sim.tickers if not sim.engine.market(t).spec.is_multivariate]
        ticker = min(singles, key=lambda t: close_of(sim, t))
        spec = sim.engine.market(ticker).spec
        close = close_of(sim, ticker)
        async with await SimClient.connect(sim.url) as client, aiohttp.ClientSession() as http:
            subscribed = (await client.request("subscribe", {"channels": ["market_lifecycle_v2"]}))[-1]
            sid = subscribed["msg"]["sid"]
            assert (await get(http, sim, f"/markets/{ticker}"))["market"]["status"] == "active"
            clock.now = close - 1
            sim.step(20)
            market = (await get(http, sim, f"/markets/{ticker}"))["market"]
            assert market["status"] == "active" and market["result"] == ""
            clock.now = close
            sim.step()
            market = (await get(http, sim, f"/markets/{ticker}"))["market"]
            assert market["status"] == "finalized" and market["result"] in ("yes", "no")
            assert market["settlement_ts"] is not None
            events = (await get(http, sim, "/events", series_ticker=spec.series_ticker))["events"]
            assert len(events) >= 2 and events[-1]["event_ticker"] != spec.event_ticker
            live = (await get(http, sim, "/markets", status="open", limit="1000"))["markets"]
            assert len(live) == 6, "the successor event keeps the number of open markets"
            await sim.quiesce()
            messages = data_of(await client.sync())
    on_ticker = [
        m["msg"]["event_type"] for m in messages if m.get("sid") == sid and m["msg"].get("market_ticker") == ticker
    ]
    assert on_ticker == ["determined", "settled"]
    created = [m["msg"] for m in messages if m.get("sid") == sid and m["msg"].get("event_type") == "created"]
    assert created and all(c["additional_metadata"]["event_ticker"] != spec.event_ticker for c in created)
    determined = next(
        m["msg"] for m in messages if m["msg"].get("market_ticker") == ticker and m["msg"]["event_type"] == "determined"
    )
    assert determined["determination_ts"] >= close // 1000


async def test_default_simulator_lists_events_that_close_on_their_schedule(
    kalshi_sim_factory: Callable[..., Simulator],
) -> None:
    clock = ManualClock(T0)
    async with kalshi_sim_factory(seed=1, markets=8, clock_ms=clock) as sim:
        closes = [close_of(sim, t) for t in sim.tickers]
        assert min(closes) >= T0 + HOUR, "nothing closes within minutes of the start"
        sim.step(500)
        assert all(sim.engine.market(t).status == "active" for t in sim.tickers)


async def test_cli_quick_settle_option_reaches_the_simulator() -> None:
    lines: list[str] = []
    stop = asyncio.Event()
    started: asyncio.Future[Simulator] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(
            SimOptions(port=0, rate=0, markets=3, quick_settle=True),
            echo=lines.append,
            stop=stop,
            started=started.set_result,
        )
    )
    try:
        sim = await asyncio.wait_for(started, 5)
        assert sim.quick_settle
        assert max(close_of(sim, t) for t in sim.tickers) <= sim.clock_ms() + 3 * 60_000
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert any("quick settle" in line for line in lines)


def test_module_main_accepts_quick_settle() -> None:
    # An unknown flag would raise SystemExit from argparse; this returns 2 for the bad fault spec instead.
    assert sim_main(["--quick-settle", "--faults", "earthquake=1", "--port", "0"]) == 2
