"""Candlesticks from the engine's trades and its quote history (sans-I/O).

A candle covers one period ``(end - period, end]`` in epoch seconds, ``end`` a multiple of the period. Its
trade prices (open, high, low, close, volume-weighted mean) and volume come from the market's trades, the same
list ``GET /markets/trades`` serves; the best YES bid and ask (open, high, low, close) from the quote tape,
which records every change of a market's best bid/ask and open interest (fed by the engine's ``TickerEvent``).
A period without trades has no trade prices, only ``previous`` (the last trade price before it); bid and ask
carry the quote in force.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from kalshi._fixed import PRICE_SCALE
from kalshi.sim.engine.events import Event, TickerEvent, TradeEvent
from kalshi.sim.engine.types import EngineError

__all__ = ["MAX_CANDLES", "PERIODS_MINUTES", "Candle", "Ohlc", "QuotePoint", "QuoteTape", "build_candles"]

# The periods the spec allows for market candlesticks, in minutes (one minute, one hour, one day).
PERIODS_MINUTES: Final = (1, 60, 1440)
MAX_CANDLES: Final = 10_000


@dataclass(frozen=True, slots=True)
class QuotePoint:
    """The best YES bid/ask (ticks; empty sides 0 and 10000) and open interest (units) from ``ts_ms`` on."""

    ts_ms: int
    bid_ticks: int
    ask_ticks: int
    open_interest_units: int


@dataclass(frozen=True, slots=True)
class Ohlc:
    """Open, high, low and close, in ticks."""

    open: int
    high: int
    low: int
    close: int


@dataclass(frozen=True, slots=True)
class Candle:
    """One period of one market.

    Attributes:
        end_s: the period's end, epoch seconds (inclusive).
        yes_bid: best YES bid over the period.
        yes_ask: best YES ask over the period.
        price: trade prices, None when nothing traded in the period.
        mean_ticks: volume-weighted mean trade price (rounded half-even to a tick), None without trades.
        previous_ticks: the last trade price before the period, None if the market never traded before.
        volume_units: contracts traded in the period.
        open_interest_units: open interest at the period's end.
    """

    end_s: int
    yes_bid: Ohlc
    yes_ask: Ohlc
    price: Ohlc | None
    mean_ticks: int | None
    previous_ticks: int | None
    volume_units: int
    open_interest_units: int


class QuoteTape:
    """Per market, the history of best bid/ask and open interest, oldest first (bounded per market).

    Args:
        limit: keep at most this many points per market (None: all).
    """

    __slots__ = ("_limit", "_points")

    def __init__(self, limit: int | None = None) -> None:
        self._limit = limit
        self._points: dict[str, deque[QuotePoint]] = {}

    def observe(self, events: Iterable[Event]) -> None:
        """Record the quote changes among ``events`` (other events are ignored)."""
        for event in events:
            if not isinstance(event, TickerEvent):
                continue
            s = event.state
            points = self._points.get(s.ticker)
            if points is None:
                points = self._points[s.ticker] = deque(maxlen=self._limit)
            point = QuotePoint(event.ts_ms, s.yes_bid_ticks, s.yes_ask_ticks, s.open_interest_units)
            if points and points[-1].ts_ms == point.ts_ms:
                points.pop()  # one point per instant: the state after the call
            points.append(point)

    def points(self, ticker: str) -> list[QuotePoint]:
        """The recorded points of a market, oldest first (empty if its quote never changed)."""
        return list(self._points.get(ticker, ()))


def _quote_at(points: Sequence[QuotePoint], times: Sequence[int], ts_ms: int) -> QuotePoint:
    i = bisect_right(times, ts_ms)
    return points[i - 1] if i else QuotePoint(ts_ms, 0, PRICE_SCALE, 0)


def build_candles(
    trades: Sequence[TradeEvent],
    quotes: Sequence[QuotePoint],
    *,
    start_s: int,
    end_s: int,
    period_minutes: int,
    include_latest_before_start: bool = False,
    first_s: int | None = None,
) -> list[Candle]:
    """The candles of one market from the period holding ``start_s`` to the one holding ``end_s``.

    Args:
        trades: the market's trades, oldest first.
        quotes: the market's quote tape, oldest first.
        start_s: start of the range, epoch seconds.
        end_s: end of the range, epoch seconds (the caller caps it at the present).
        period_minutes: period length in minutes (positive).
        include_latest_before_start: also return the candle of the period before the one holding ``start_s``.
        first_s: periods ending before this time (the market's creation) are skipped.

    Raises:
        EngineError: ``invalid_parameters`` for a non-positive period, ``end_s < start_s``, or more than
            10,000 candles.
    """
    if period_minutes < 1:
        raise EngineError("invalid_parameters", "period_interval must be a positive number of minutes")
    if end_s < start_s:
        raise EngineError("invalid_parameters", "end_ts must not be before start_ts")
    period = period_minutes * 60
    first_end = -(-start_s // period) * period
    if include_latest_before_start:
        first_end -= period
    if first_s is not None:
        first_end = max(first_end, -(-first_s // period) * period)
    last_end = -(-end_s // period) * period  # the period holding end_s, in progress or not
    count = (last_end - first_end) // period + 1 if last_end >= first_end else 0
    if count > MAX_CANDLES:
        raise EngineError(
            "invalid_parameters", f"{count} candlesticks requested, at most {MAX_CANDLES}: narrow the range"
        )
    quote_times = [p.ts_ms for p in quotes]
    trade_times = [t.ts_ms for t in trades]
    out: list[Candle] = []
    for k in range(count):
        end = first_end + k * period
        lo_ms, hi_ms = (end - period) * 1000, end * 1000 + 999
        opening = _quote_at(quotes, quote_times, lo_ms + 999)
        inside = quotes[bisect_right(quote_times, lo_ms + 999) : bisect_right(quote_times, hi_ms)]
        seen = [opening, *inside]
        bid = Ohlc(
            opening.bid_ticks, max(p.bid_ticks for p in seen), min(p.bid_ticks for p in seen), seen[-1].bid_ticks
        )
        ask = Ohlc(
            opening.ask_ticks, max(p.ask_ticks for p in seen), min(p.ask_ticks for p in seen), seen[-1].ask_ticks
        )
        t_lo, t_hi = bisect_right(trade_times, lo_ms + 999), bisect_right(trade_times, hi_ms)
        period_trades = trades[t_lo:t_hi]
        previous = trades[t_lo - 1].yes_price_ticks if t_lo else None
        price: Ohlc | None = None
        mean: int | None = None
        volume = sum(t.count_units for t in period_trades)
        if period_trades:
            prices = [t.yes_price_ticks for t in period_trades]
            price = Ohlc(prices[0], max(prices), min(prices), prices[-1])
            weighted = sum(t.yes_price_ticks * t.count_units for t in period_trades)
            q, r = divmod(weighted, volume)
            mean = q + (1 if 2 * r > volume or (2 * r == volume and q % 2) else 0)
        out.append(Candle(end, bid, ask, price, mean, previous, volume, seen[-1].open_interest_units))
    return out
