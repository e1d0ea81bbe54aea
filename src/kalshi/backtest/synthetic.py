"""A synthetic recording: seeded random order flow written in the recorder's format (benchmarks, demos, tests).

The flow per market: orders join levels near a drifting fair value, some are cancelled, takers hit the best
level (a ``trade`` and the level's ``orderbook_delta`` with the same ``ts_ms``, delta first as the exchange
sends them), ``ticker`` updates follow trades, and every market is determined and settled at the end. Frames
are the exchange's wire format, so a backtest cannot tell them from a real recording.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import msgspec

from kalshi._fixed import format_count, format_price
from kalshi.record.recorder import Recorder

__all__ = ["write_synthetic_recording"]

_ENC = msgspec.json.Encoder()


def write_synthetic_recording(
    out_dir: str | os.PathLike[str],
    *,
    messages: int,
    markets: int = 4,
    seed: int = 1,
    start_ns: int = 1_767_000_000_000_000_000,
    step_ns: int = 200_000,
) -> Path:
    """Write about ``messages`` market-data frames into ``out_dir`` (a ``kalshi record`` directory).

    Args:
        out_dir: the recording directory (created).
        messages: frames to write (approximately: a few snapshot and lifecycle frames are added).
        markets: how many markets.
        seed: the random seed (the same seed writes the same frames).
        start_ns: receive time of the first frame, epoch ns.
        step_ns: receive-time spacing of frames.

    Returns:
        The directory.

    Raises:
        RecordingError: the files cannot be written.
    """
    rng = random.Random(seed)
    tickers = [f"KXSYN-{i:02d}" for i in range(markets)]
    fair = {t: rng.randint(3000, 7000) for t in tickers}
    books: dict[str, tuple[dict[int, int], dict[int, int]]] = {t: ({}, {}) for t in tickers}
    now = start_ns
    seq = {"orderbook_delta": 0, "trade": 0}
    sids = {"orderbook_delta": 1, "trade": 2, "ticker": 3, "market_lifecycle_v2": 4}
    out = Path(out_dir)
    with Recorder(out, metadata={"synthetic": f"seed={seed}"}) as recorder:

        def emit(typ: str, channel: str, msg: dict[str, object]) -> None:
            nonlocal now
            frame: dict[str, object] = {"type": typ, "sid": sids[channel], "msg": msg}
            if channel in seq:
                seq[channel] += 1
                frame["seq"] = seq[channel]
            recorder.add_frame(_ENC.encode(frame), now)
            now += step_ns

        for channel, sid in sids.items():
            recorder.add_frame(
                _ENC.encode({"type": "subscribed", "id": sid, "msg": {"channel": channel, "sid": sid}}), now
            )
        for ticker in tickers:
            yes, no = books[ticker]
            f = fair[ticker]
            for k in range(1, 6):
                yes[f - 100 * k] = 100 * rng.randint(1, 20)
                no[10000 - f - 100 * k] = 100 * rng.randint(1, 20)
            emit(
                "orderbook_snapshot",
                "orderbook_delta",
                {
                    "market_ticker": ticker,
                    "yes_dollars_fp": [[format_price(p), format_count(u)] for p, u in sorted(yes.items())],
                    "no_dollars_fp": [[format_price(p), format_count(u)] for p, u in sorted(no.items())],
                },
            )
        written = 0
        while written < messages:
            ticker = tickers[rng.randrange(markets)]
            yes, no = books[ticker]
            ts_ms = now // 1_000_000
            roll = rng.random()
            if roll < 0.02:
                fair[ticker] = min(8500, max(1500, fair[ticker] + rng.choice((-100, 100))))
                continue
            if roll < 0.12 and yes and no:
                # A taker hits the best level of one side.
                taker_yes = rng.random() < 0.5
                levels, is_yes = (no, False) if taker_yes else (yes, True)
                best = max(levels)
                units = min(levels[best], 100 * rng.randint(1, 5))
                levels[best] -= units
                if not levels[best]:
                    del levels[best]
                price = 10000 - best if taker_yes else best
                delta = {"price_dollars": format_price(best), "delta_fp": format_count(-units)}
                emit(
                    "orderbook_delta",
                    "orderbook_delta",
                    {"market_ticker": ticker, **delta, "side": "yes" if is_yes else "no", "ts_ms": ts_ms},
                )
                side = "yes" if taker_yes else "no"
                emit(
                    "trade",
                    "trade",
                    {
                        "market_ticker": ticker,
                        "yes_price_dollars": format_price(price),
                        "no_price_dollars": format_price(10000 - price),
                        "count_fp": format_count(units),
                        "taker_side": side,
                        "taker_outcome_side": side,
                        "ts_ms": ts_ms,
                    },
                )
                bid = max(yes, default=0)
                ask = 10000 - max(no, default=0)
                emit(
                    "ticker",
                    "ticker",
                    {
                        "market_ticker": ticker,
                        "price_dollars": format_price(price),
                        "yes_bid_dollars": format_price(bid),
                        "yes_ask_dollars": format_price(ask),
                        "ts_ms": ts_ms,
                    },
                )
                written += 3
                continue
            is_yes = rng.random() < 0.5
            levels = yes if is_yes else no
            anchor = fair[ticker] if is_yes else 10000 - fair[ticker]
            if roll < 0.55 or not levels:
                price = anchor - 100 * rng.randint(1, 6)
                other = no if is_yes else yes
                if other and price + max(other) >= 10000:
                    continue  # would cross
                units = 100 * rng.randint(1, 10)
            else:
                price = rng.choice(list(levels))
                units = -min(levels[price], 100 * rng.randint(1, 10))
            if not 0 < price < 10000:
                continue
            size = levels.get(price, 0) + units
            if size:
                levels[price] = size
            else:
                levels.pop(price, None)
            emit(
                "orderbook_delta",
                "orderbook_delta",
                {
                    "market_ticker": ticker,
                    "price_dollars": format_price(price),
                    "delta_fp": format_count(units),
                    "side": "yes" if is_yes else "no",
                    "ts_ms": ts_ms,
                },
            )
            written += 1
        for ticker in tickers:
            result = "yes" if rng.random() < fair[ticker] / 10000 else "no"
            value = "1.0000" if result == "yes" else "0.0000"
            for event in ("determined", "settled"):
                emit(
                    "market_lifecycle_v2",
                    "market_lifecycle_v2",
                    {"market_ticker": ticker, "event_type": event, "result": result, "settlement_value": value},
                )
    return out
