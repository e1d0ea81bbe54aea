"""tap_only subscriptions: frames only for the on_raw_frame tap, in-order data not decoded, gaps still repaired."""

from __future__ import annotations

import asyncio
import json

import pytest

from conftest import eventually, fast_config
from kalshi.errors import KalshiSubscriptionError
from kalshi.models.markets import Orderbook
from kalshi.sim import Simulator
from kalshi.ws import KalshiWebSocket
from kalshi.ws.lifecycle import Gap, Repaired
from kalshi.ws.models import MESSAGE_DECODER, OrderbookDeltaMessage, OrderbookSnapshotMessage
from kalshi.ws.orderbook import OrderbookManager
from kalshi.ws.protocol import AwaitingSnapshotDropped, ClientProtocol, GapDetected, ProtocolErrorEvent

# ------------------------------------------------------------------------------------------- sans-I/O protocol


def frame(kind: str, sid: int, seq: int | None, **body: object) -> bytes:
    message: dict[str, object] = {"type": kind, "sid": sid, "msg": {"market_ticker": "M", **body}}
    if seq is not None:
        message["seq"] = seq
    return json.dumps(message).encode()


def delta(sid: int, seq: int | None) -> bytes:
    return frame("orderbook_delta", sid, seq, market_id="x", price_dollars="0.5000", delta_fp="1.00", side="yes")


def snapshot(sid: int, seq: int) -> bytes:
    return frame("orderbook_snapshot", sid, seq, market_id="x", yes_dollars_fp=[["0.5000", "3.00"]], no_dollars_fp=[])


def test_a_tapped_sid_skips_in_order_data_and_still_sees_everything_else() -> None:
    proto = ClientProtocol()
    receive = proto.receiver()
    proto.tapped_sids.add(1)
    assert isinstance(receive(snapshot(1, 1)), OrderbookSnapshotMessage)  # snapshots are always decoded
    assert receive(delta(1, 2)) is None
    assert receive(delta(1, 3)) is None
    gap = receive(delta(1, 5))
    assert isinstance(gap, GapDetected) and (gap.expected, gap.received) == (4, 5)
    assert isinstance(receive(delta(1, None)), ProtocolErrorEvent), "a delta without seq stays a protocol error"
    assert isinstance(receive(b'{"type": "orderbook_delta", "sid": 1, "seq": 6'), ProtocolErrorEvent)
    proto.reset_sequence(1)
    assert isinstance(receive(delta(1, 6)), AwaitingSnapshotDropped), "after a reset: nothing before a snapshot"
    assert isinstance(receive(snapshot(1, 7)), OrderbookSnapshotMessage)
    assert receive(delta(1, 8)) is None
    # Another sid is untouched by the tap.
    assert isinstance(receive(snapshot(2, 1)), OrderbookSnapshotMessage)
    assert isinstance(receive(delta(2, 2)), OrderbookDeltaMessage)
    proto.reset()
    assert not proto.tapped_sids, "a new session has new sids"


# ------------------------------------------------------------------------------------------- end to end


async def test_tap_only_needs_a_tap(sim: Simulator) -> None:
    async with KalshiWebSocket(config=fast_config(sim)).connect() as session:
        with pytest.raises(KalshiSubscriptionError, match="on_raw_frame"):
            await session.subscribe_orderbook_delta(sim.tickers[:2], tap_only=True)
        with pytest.raises(KalshiSubscriptionError, match="keep_books"):
            await session.subscribe_orderbook_delta(sim.tickers[:2], tap_only=True, keep_books=True)


class TapBooks:
    """Books rebuilt from tapped bytes alone, the way a relay consumer does: a gap hides the sid's books until
    each market's next snapshot."""

    def __init__(self) -> None:
        self.frames = 0
        self.books = OrderbookManager()
        self.last: dict[int, int] = {}

    def __call__(self, data: bytes, receive_ns: int) -> None:
        self.frames += 1
        message = MESSAGE_DECODER.decode(data)
        if isinstance(message, OrderbookSnapshotMessage):
            self.books.apply_snapshot_message(message)
            self.last[message.sid] = message.seq  # type: ignore[index, assignment]
        elif isinstance(message, OrderbookDeltaMessage):
            last = self.last.get(message.sid)  # type: ignore[arg-type]
            if last is not None and message.seq != last + 1:
                self.books.mark_all_stale()
            self.last[message.sid] = message.seq  # type: ignore[index, assignment]
            book = self.books.get(message.msg.market_ticker)
            if book is not None and not book.stale:
                self.books.apply_delta_message(message)

    def view(self, ticker: str) -> Orderbook | None:
        book = self.books.get(ticker)
        return None if book is None or book.stale else book.view()


@pytest.mark.sim(rate=300.0, markets=4)
async def test_tapped_frames_rebuild_exact_books_across_a_repaired_gap(sim: Simulator) -> None:
    tap = TapBooks()
    tickers = sim.tickers
    ws = KalshiWebSocket(config=fast_config(sim), on_raw_frame=tap)
    async with ws.connect() as session:
        events = session.lifecycle_events()
        sub = await session.subscribe_orderbook_delta(tickers, tap_only=True)
        await eventually(lambda: tap.frames > 200, what="frames flow")
        sim.faults.skip_seq()
        seen: list[object] = []
        async with asyncio.timeout(10):
            async for event in events:
                seen.append(event)
                if isinstance(event, Repaired) and any(isinstance(e, Gap) for e in seen):
                    repaired = {t for e in seen if isinstance(e, Repaired) for t in e.markets}
                    if repaired >= set(tickers):
                        break
        await sim.quiesce()
        await eventually(lambda: all(tap.view(t) == sim.book(t) for t in tickers), what="tapped books equal")
        assert sub.stats.gaps == 1 and sub.stats.repairs == 1
        assert sub.stats.delivered_frames == 0, "a tap_only subscription queues nothing"
        assert sub.queue.qsize() == 0
