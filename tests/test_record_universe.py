"""Recording every market: the open ones at the start, and each one listed while the recording runs."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import msgspec
from typer.testing import CliRunner

import kalshi.record
from kalshi.auth import ENV_KEY_ID, ENV_PRIVATE_KEY, ENV_PRIVATE_KEY_PATH
from kalshi.cli.main import app
from kalshi.record import Recorder, capture
from kalshi.record.universe import NewListings, follow_new_listings, open_market_tickers
from kalshi.sim import Simulator
from kalshi.testing import SimulatorThread
from kalshi.ws.client import KalshiWebSocket
from kalshi.ws.models import MESSAGE_DECODER, MarketLifecycleMessage

NEW_TICKER = "KXNEWLY-LISTED-T1"


def lifecycle(event_type: str, ticker: str) -> MarketLifecycleMessage:
    frame = {
        "type": "market_lifecycle_v2",
        "sid": 1,
        "seq": 1,
        "msg": {"market_ticker": ticker, "event_type": event_type},
    }
    message = MESSAGE_DECODER.decode(msgspec.json.encode(frame))
    assert isinstance(message, MarketLifecycleMessage)
    return message


def test_new_listings_picks_markets_once() -> None:
    listings = NewListings(["A"])
    assert listings.new_ticker(lifecycle("created", "A")) is None  # already recorded
    assert listings.new_ticker(lifecycle("created", "B")) == "B"
    assert listings.new_ticker(lifecycle("activated", "B")) is None  # once
    assert listings.new_ticker(lifecycle("activated", "C")) == "C"
    assert listings.new_ticker(lifecycle("settled", "D")) is None  # not a listing
    assert listings.known == {"A", "B", "C"}


def list_a_market(sim: Simulator) -> None:
    """List one more market on the running simulator (a copy of the first one's terms)."""
    spec = dataclasses.replace(sim.universe.markets[0], ticker=NEW_TICKER, market_id=None)
    sim.do(lambda engine: engine.add_market(spec))


class WatchingRecorder(Recorder):
    """A Recorder that also tells the test when a frame names a market."""

    def __init__(self, out: Path, marker: bytes) -> None:
        super().__init__(out)
        self.marker = marker
        self.seen = asyncio.Event()

    def add_frame(self, data: bytes, recv_ns: int) -> Any:
        if self.marker in data and b"orderbook_snapshot" in data:
            self.seen.set()
        return super().add_frame(data, recv_ns)


def test_every_market_includes_the_ones_listed_later(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    with SimulatorThread(seed=4, markets=3, rate=0.0, open_access=True, lifecycle=False) as sim:

        async def record() -> list[str]:
            config = sim.config
            tickers = await open_market_tickers(config, None)
            listings = NewListings(tickers)
            subscribed = asyncio.Event()
            added: list[str] = []
            stop = asyncio.Event()
            recorder = WatchingRecorder(out, NEW_TICKER.encode())
            recorder.start()

            async def follow(session: KalshiWebSocket) -> None:
                await follow_new_listings(session, listings, on_subscribed=subscribed.set, on_added=added.append)

            task = asyncio.create_task(
                capture(
                    recorder,
                    config=config,
                    auth=None,
                    channels=["orderbook_delta"],
                    markets=tickers,
                    stop=stop,
                    alongside=follow,
                )
            )
            try:
                async with asyncio.timeout(20):
                    await subscribed.wait()
                    sim.call(list_a_market)
                    await recorder.seen.wait()  # the new market's snapshot is in the recording
            finally:
                stop.set()
                await task
                recorder.close()
            assert added == [NEW_TICKER]
            return tickers

        tickers = asyncio.run(record())
        assert sorted(tickers) == sorted(t for t in sim.tickers if t != NEW_TICKER)
    summary = kalshi.record.open(out).summary()
    assert set(summary.markets) == {*tickers, NEW_TICKER}
    assert "orderbook_delta" in summary.channels


def test_record_command_without_markets_records_every_market(tmp_path: Path) -> None:
    out = tmp_path / "rec"
    runner = CliRunner(env={ENV_KEY_ID: None, ENV_PRIVATE_KEY_PATH: None, ENV_PRIVATE_KEY: None})
    with SimulatorThread(seed=6, markets=4, rate=0.0, open_access=True, lifecycle=False) as sim:
        result = runner.invoke(
            app,
            ["record", "--url", sim.url, "--channels", "orderbook_delta,trade", "--out", str(out), "--duration", "1.5"],
        )
        tickers = sim.tickers
    assert result.exit_code == 0, result.output
    assert "every market: 4 open now, new ones added as they list" in result.stderr
    assert set(kalshi.record.open(out).summary().markets) == set(tickers)
