"""Decode speed of the WebSocket models and the sans-I/O protocol on a realistic message mix.

The mix (seeded): 70% ``orderbook_delta``, 28% ``ticker``, 2% ``orderbook_snapshot`` of 20-90 levels, over 40
markets on 4 order book subscriptions, current fixed-point fields only (``*_dollars``, ``*_fp``, ``ts_ms``), frames
encoded compactly as the server sends them. Deltas follow a consistent book (sizes never go negative) and each
sid's ``seq`` runs without gaps, so every frame takes the normal path.

Figures (best of ``--rounds``):
- ``Decoder``: ``MESSAGE_DECODER.decode`` alone (target >= 1M msg/s).
- ``ClientProtocol.receive_frame``: decode + sequencing + book-number validation (the client's hot path; the book
  then reuses the memoised snapshot conversion), and with ``validate_book=False`` (what a book-less consumer pays).
- with :mod:`kalshi.ws.orderbook` importable: ns per ``OrderbookState.apply_delta`` (target < 250 ns), raw and net
  of the loop, and the whole pipeline (receive_frame + ``OrderbookManager``) in msg/s.

    .venv/bin/python bench/decode.py [--messages 200000] [--rounds 5] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from kalshi._fixed import format_count, format_price
from kalshi.ws.models import MESSAGE_DECODER, OrderbookDeltaMessage, OrderbookSnapshotMessage
from kalshi.ws.protocol import ClientProtocol, ProtocolEvent

try:
    from kalshi.ws.orderbook import OrderbookManager, OrderbookState
except ImportError:  # the order book is another module; the decode figures do not need it
    OrderbookManager = None  # type: ignore[assignment,misc]
    OrderbookState = None  # type: ignore[assignment,misc]

BOOK_SIDS = (1, 2, 3, 4)
TICKER_SID = 9
MARKETS = 40


class Market:
    """A market's book as the generator evolves it (ticks -> units per side)."""

    def __init__(self, index: int, rng: random.Random) -> None:
        self.ticker = f"KXBTCD-26MAY{2000 + index}-T{95000 + 250 * index}.99"
        self.market_id = str(uuid.UUID(int=rng.getrandbits(128)))
        self.sid = BOOK_SIDS[index % len(BOOK_SIDS)]
        self.rng = rng
        mid = rng.randint(3000, 7000)
        total = rng.randint(20, 90)
        yes_count = total // 2
        self.yes = {p: rng.randint(1, 50_000) for p in rng.sample(range(100, mid, 10), yes_count)}
        self.no = {p: rng.randint(1, 50_000) for p in rng.sample(range(100, 10_000 - mid, 10), total - yes_count)}
        self.volume = rng.randint(1_000, 5_000_000)

    def delta(self) -> tuple[str, int, int]:
        side = "yes" if self.rng.random() < 0.5 else "no"
        levels = self.yes if side == "yes" else self.no
        rng = self.rng
        # Keep each side between 10 and 45 levels so snapshots stay at 20-90 levels.
        if len(levels) >= 45 or (len(levels) > 10 and rng.random() < 0.85):
            price = rng.choice(list(levels))
        else:
            price = rng.randrange(100, 9900, 10)
        size = levels.get(price, 0)
        roll = rng.random()
        if size and roll < 0.08 and len(levels) > 10:
            change = -size
        elif size and roll < 0.5:
            change = -rng.randint(1, size)
        else:
            change = rng.randint(1, 20_000)
        new = size + change
        if new:
            levels[price] = new
        else:
            levels.pop(price, None)
        return side, price, change

    @staticmethod
    def levels(side: dict[int, int]) -> list[list[str]]:
        return [[format_price(p), format_count(u)] for p, u in sorted(side.items())]


def build_frames(count: int, seed: int) -> list[bytes]:
    """The message stream: snapshots of every market first, then the mix."""
    rng = random.Random(seed)
    markets = [Market(i, rng) for i in range(MARKETS)]
    seqs = dict.fromkeys(BOOK_SIDS, 0)
    encode = msgspec.json.encode
    ts_ms = 1_779_000_000_000
    frames: list[bytes] = []

    def snapshot(market: Market) -> bytes:
        seqs[market.sid] += 1
        return encode(
            {
                "type": "orderbook_snapshot",
                "sid": market.sid,
                "seq": seqs[market.sid],
                "msg": {
                    "market_ticker": market.ticker,
                    "market_id": market.market_id,
                    "yes_dollars_fp": Market.levels(market.yes),
                    "no_dollars_fp": Market.levels(market.no),
                },
            }
        )

    frames.extend(snapshot(market) for market in markets)
    while len(frames) < count:
        market = rng.choice(markets)
        ts_ms += rng.randint(0, 3)
        roll = rng.random()
        if roll < 0.70:
            side, price, change = market.delta()
            seqs[market.sid] += 1
            frames.append(
                encode(
                    {
                        "type": "orderbook_delta",
                        "sid": market.sid,
                        "seq": seqs[market.sid],
                        "msg": {
                            "market_ticker": market.ticker,
                            "market_id": market.market_id,
                            "price_dollars": format_price(price),
                            "delta_fp": format_count(change),
                            "side": side,
                            "ts_ms": ts_ms,
                        },
                    }
                )
            )
        elif roll < 0.98:
            bid = max(market.yes, default=100)
            ask = 10_000 - max(market.no, default=100)
            market.volume += rng.randint(0, 5_000)
            frames.append(
                encode(
                    {
                        "type": "ticker",
                        "sid": TICKER_SID,
                        "msg": {
                            "market_id": market.market_id,
                            "market_ticker": market.ticker,
                            "price_dollars": format_price((bid + ask) // 2),
                            "yes_bid_dollars": format_price(bid),
                            "yes_ask_dollars": format_price(ask),
                            "volume_fp": format_count(market.volume),
                            "open_interest_fp": format_count(market.volume // 3),
                            "dollar_volume": market.volume // 200,
                            "dollar_open_interest": market.volume // 600,
                            "yes_bid_size_fp": format_count(market.yes.get(bid, 100)),
                            "yes_ask_size_fp": format_count(rng.randint(1, 50_000)),
                            "last_trade_size_fp": format_count(rng.randint(1, 5_000)),
                            "ts": ts_ms // 1000,
                            "ts_ms": ts_ms,
                            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ms // 1000)),
                        },
                    }
                )
            )
        else:
            frames.append(snapshot(market))
    return frames


def best_of(rounds: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(rounds))


def time_decoder(frames: list[bytes]) -> float:
    decode = MESSAGE_DECODER.decode
    start = time.perf_counter()
    for data in frames:
        decode(data)
    return time.perf_counter() - start


def time_protocol(frames: list[bytes], *, validate: bool) -> float:
    proto = ClientProtocol(validate_book=validate)
    receive = proto.receive_frame
    start = time.perf_counter()
    for data in frames:
        receive(data)
    elapsed = time.perf_counter() - start
    stats = proto.stats
    if stats.gaps or stats.duplicates or stats.protocol_errors:
        raise SystemExit(f"generator bug: the stream is not clean: {stats}")
    return elapsed


def book_figures(frames: list[bytes], rounds: int) -> list[str]:
    """ns per apply_delta (raw and net of the loop) and the full pipeline rate."""
    assert OrderbookState is not None and OrderbookManager is not None
    decoded = [MESSAGE_DECODER.decode(f) for f in frames]
    snapshots = [m for m in decoded if isinstance(m, OrderbookSnapshotMessage)]
    deltas = [m for m in decoded if isinstance(m, OrderbookDeltaMessage)]

    def fresh_books() -> dict[str, Any]:
        books: dict[str, Any] = {}
        for snap in snapshots[:MARKETS]:
            book = OrderbookState(snap.msg.market_ticker)
            yes, no = snap.msg.levels_ticks()
            book.apply_snapshot(yes, no)
            books[snap.msg.market_ticker] = book
        return books

    def ops_for(books: dict[str, Any]) -> list[tuple[Callable[[str, int, int], object], str, int, int]]:
        return [
            (books[d.msg.market_ticker].apply_delta, d.msg.side, d.msg.price_ticks(), d.msg.delta_units())
            for d in deltas
        ]

    def run_apply() -> float:
        ops = ops_for(fresh_books())
        start = time.perf_counter()
        for apply, side, price, change in ops:
            apply(side, price, change)
        return time.perf_counter() - start

    def run_empty() -> float:
        ops = ops_for(fresh_books())

        def noop(side: str, price: int, change: int) -> None:
            return None

        ops = [(noop, side, price, change) for _, side, price, change in ops]
        start = time.perf_counter()
        for apply, side, price, change in ops:
            apply(side, price, change)
        return time.perf_counter() - start

    def run_pipeline() -> float:
        proto = ClientProtocol()
        manager = OrderbookManager()
        receive = proto.receive_frame
        apply_delta = manager.apply_delta_message
        apply_snapshot = manager.apply_snapshot_message
        start = time.perf_counter()
        for data in frames:
            message = receive(data)
            if message.__class__ is OrderbookDeltaMessage:
                apply_delta(message)  # type: ignore[arg-type]
            elif message.__class__ is OrderbookSnapshotMessage:
                apply_snapshot(message)  # type: ignore[arg-type]
            elif isinstance(message, ProtocolEvent):
                raise SystemExit(f"unexpected event {message!r}")
        return time.perf_counter() - start

    per_delta = best_of(rounds, run_apply) / len(deltas) * 1e9
    loop = best_of(rounds, run_empty) / len(deltas) * 1e9
    pipeline = best_of(rounds, run_pipeline)
    return [
        f"book apply_delta:            {per_delta:8.0f} ns/delta measured, {per_delta - loop:6.0f} ns net of the "
        f"loop and call ({len(deltas):,} deltas; target < 250 ns)",
        f"pipeline frame -> book:      {len(frames) / pipeline / 1e6:8.2f} M msg/s "
        "(receive_frame + OrderbookManager for deltas and snapshots)",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    frames = build_frames(args.messages, args.seed)
    kinds: dict[str, int] = {}
    for message in map(MESSAGE_DECODER.decode, frames):
        kinds[message.type] = kinds.get(message.type, 0) + 1
    levels = [
        len(m.msg.yes_dollars_fp or []) + len(m.msg.no_dollars_fp or [])
        for m in map(MESSAGE_DECODER.decode, frames)
        if isinstance(m, OrderbookSnapshotMessage)
    ]
    n = len(frames)
    mix = ", ".join(f"{k} {v / n:.1%}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
    print(f"mix: {n:,} frames, {sum(map(len, frames)) / n:.0f} bytes avg: {mix}")
    print(f"snapshots: {min(levels)}-{max(levels)} levels; best of {args.rounds} rounds")

    decoder = best_of(args.rounds, lambda: time_decoder(frames))
    print(
        f"Decoder (MESSAGE_DECODER):   {n / decoder / 1e6:8.2f} M msg/s  ({decoder / n * 1e9:.0f} ns/msg; target >= 1M)"
    )
    protocol = best_of(args.rounds, lambda: time_protocol(frames, validate=True))
    print(f"ClientProtocol.receive_frame:{n / protocol / 1e6:8.2f} M msg/s  ({protocol / n * 1e9:.0f} ns/msg)")
    bare = best_of(args.rounds, lambda: time_protocol(frames, validate=False))
    print(f"  with validate_book=False:  {n / bare / 1e6:8.2f} M msg/s  ({bare / n * 1e9:.0f} ns/msg)")
    if OrderbookState is None:
        print("book: kalshi.ws.orderbook not importable, skipped")
        return
    for line in book_figures(frames, args.rounds):
        print(line)


if __name__ == "__main__":
    main()
