"""Candlesticks over REST: one market, a batch of markets, every market of an event, the historical form,
and an event's forecast percentiles.

Candles come from :func:`kalshi.sim.engine.candles.build_candles` over the market's trades (the list
``GET /markets/trades`` pages through) and its quote tape. ``period_interval`` is in minutes: 1, 60 or 1440
for a market or an event, any positive number for a batch. Ranges end at the present; a period still running
is returned as it stands.
"""

from __future__ import annotations

import itertools
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from kalshi._fixed import PRICE_SCALE, format_count, format_price
from kalshi.sim.engine import EngineError, MarketView
from kalshi.sim.engine.candles import MAX_CANDLES, PERIODS_MINUTES, Candle, Ohlc, build_candles
from kalshi.sim.engine.historical import market_archived
from kalshi.sim.rest.archive import cutoff_ms
from kalshi.sim.rest.common import Reply, RestCall, RestError, bad_field

__all__ = [
    "batch_candles",
    "candle_json",
    "event_candles",
    "forecast_history",
    "historical_candle_json",
    "market_candles",
    "market_candles_of",
    "period_of",
    "time_range",
]

_MAX_BATCH: Final = 100
_MAX_PERCENTILES: Final = 10
_INT64: Final = 2**63 - 1


def _ohlc(o: Ohlc, suffix: str) -> dict[str, str]:
    return {
        f"open{suffix}": format_price(o.open),
        f"low{suffix}": format_price(o.low),
        f"high{suffix}": format_price(o.high),
        f"close{suffix}": format_price(o.close),
    }


def candle_json(c: Candle) -> dict[str, Any]:
    """A ``MarketCandlestick``."""
    price: dict[str, str] = {}
    if c.price is not None and c.mean_ticks is not None:
        price = _ohlc(c.price, "_dollars")
        price["mean_dollars"] = format_price(c.mean_ticks)
        price["min_dollars"] = price["low_dollars"]
        price["max_dollars"] = price["high_dollars"]
    if c.previous_ticks is not None:
        price["previous_dollars"] = format_price(c.previous_ticks)
    return {
        "end_period_ts": c.end_s,
        "yes_bid": _ohlc(c.yes_bid, "_dollars"),
        "yes_ask": _ohlc(c.yes_ask, "_dollars"),
        "price": price,
        "volume_fp": format_count(c.volume_units),
        "open_interest_fp": format_count(c.open_interest_units),
    }


def historical_candle_json(c: Candle) -> dict[str, Any]:
    """A ``MarketCandlestickHistorical`` (trade prices null in a period without trades)."""
    traded = c.price is not None and c.mean_ticks is not None
    return {
        "end_period_ts": c.end_s,
        "yes_bid": _ohlc(c.yes_bid, ""),
        "yes_ask": _ohlc(c.yes_ask, ""),
        "price": {
            "open": format_price(c.price.open) if c.price is not None else None,
            "low": format_price(c.price.low) if c.price is not None else None,
            "high": format_price(c.price.high) if c.price is not None else None,
            "close": format_price(c.price.close) if c.price is not None else None,
            "mean": format_price(c.mean_ticks) if traded and c.mean_ticks is not None else None,
            "previous": format_price(c.previous_ticks) if c.previous_ticks is not None else None,
        },
        "volume": format_count(c.volume_units),
        "open_interest": format_count(c.open_interest_units),
    }


def time_range(call: RestCall) -> tuple[int, int]:
    """``(start_ts, end_ts)`` in epoch seconds, both required, end not before start.

    Raises:
        RestError: 400 naming the parameter.
    """
    q = call.query
    start = q.integer("start_ts", lo=0, hi=_INT64)
    end = q.integer("end_ts", lo=0, hi=_INT64)
    if start is None:
        raise bad_field("start_ts", "is required (epoch seconds)")
    if end is None:
        raise bad_field("end_ts", "is required (epoch seconds)")
    if end < start:
        raise bad_field("end_ts", "must not be before start_ts")
    return start, end


def period_of(call: RestCall, *, any_positive: bool = False) -> int:
    """``period_interval`` in minutes: 1, 60 or 1440 (any positive number with ``any_positive``).

    Raises:
        RestError: 400 naming the parameter.
    """
    value = call.query.integer("period_interval", lo=1, hi=2**31 - 1)
    if value is None:
        raise bad_field("period_interval", "is required (minutes: 1, 60 or 1440)")
    if not any_positive and value not in PERIODS_MINUTES:
        raise bad_field("period_interval", f"must be one of {', '.join(map(str, PERIODS_MINUTES))} minutes")
    return value


def _market(call: RestCall, ticker: str, series: str | None = None) -> MarketView:
    try:
        view = call.sim.engine.market(ticker)
    except EngineError:
        raise RestError(404, "market_not_found", f"no market {ticker[:60]!r}") from None
    if series is not None and view.spec.series_ticker != series:
        raise RestError(404, "market_not_found", f"market {ticker[:60]!r} is not in series {series[:60]!r}")
    if market_archived(view, cutoff_ms(call)):
        raise RestError(
            404,
            "market_not_found",
            f"market {ticker[:60]!r} settled before the historical cutoff: its candlesticks are only available via "
            "GET /historical/markets/{ticker}/candlesticks",
        )
    return view


def market_candles_of(
    call: RestCall, view: MarketView, start: int, end: int, period: int, *, before: bool = False
) -> list[Candle]:
    """The candles of one market over ``[start, end]`` (capped at the present), 400 when too many."""
    engine = call.sim.engine
    ticker = view.spec.ticker
    now_s = call.sim.clock_ms() // 1000
    try:
        return build_candles(
            engine.trades(ticker),
            engine.quote_tape.points(ticker),
            start_s=start,
            end_s=max(min(end, now_s), start),
            period_minutes=period,
            include_latest_before_start=before,
            first_s=view.created_ts_ms // 1000,
        )
    except EngineError as exc:
        raise bad_field("start_ts", exc.message) from None


async def market_candles(call: RestCall) -> Reply:
    view = _market(call, call.param("ticker"), call.param("series_ticker"))
    start, end = time_range(call)
    before = bool(call.query.flag("include_latest_before_start"))
    candles = market_candles_of(call, view, start, end, period_of(call), before=before)
    return Reply({"ticker": view.spec.ticker, "candlesticks": [candle_json(c) for c in candles]})


async def batch_candles(call: RestCall) -> Reply:
    tickers = list(dict.fromkeys(call.query.csv("market_tickers")))
    if not tickers:
        raise bad_field("market_tickers", "give at least one market ticker (comma separated)")
    if len(tickers) > _MAX_BATCH:
        raise bad_field("market_tickers", f"at most {_MAX_BATCH} markets per request, got {len(tickers)}")
    start, end = time_range(call)
    period = period_of(call, any_positive=True)
    before = bool(call.query.flag("include_latest_before_start"))
    views = [_market(call, t) for t in tickers]
    span = max(min(end, call.sim.clock_ms() // 1000), start) - start
    if (span // (period * 60) + 2) * len(views) > MAX_CANDLES:
        raise bad_field("start_ts", f"a batch returns at most {MAX_CANDLES} candlesticks in all: narrow the range")
    out = [
        {
            "market_ticker": v.spec.ticker,
            "candlesticks": [candle_json(c) for c in market_candles_of(call, v, start, end, period, before=before)],
        }
        for v in views
    ]
    return Reply({"markets": out})


def _event_markets(call: RestCall) -> list[MarketView]:
    engine = call.sim.engine
    event_ticker, series = call.param("ticker"), call.param("series_ticker")
    # The spec lists 400 (not 404) for these event operations.
    try:
        event = engine.event(event_ticker)
    except EngineError:
        raise RestError(400, "event_not_found", f"no event {event_ticker[:60]!r}") from None
    if event.series_ticker != series:
        raise RestError(400, "event_not_found", f"event {event_ticker[:60]!r} is not in series {series[:60]!r}")
    return [m for m in engine.markets() if m.spec.event_ticker == event_ticker]


async def event_candles(call: RestCall) -> Reply:
    markets = _event_markets(call)
    start, end = time_range(call)
    period = period_of(call)
    now_s = call.sim.clock_ms() // 1000
    series = [market_candles_of(call, m, start, end, period) for m in markets]
    adjusted = -(-max(min(end, now_s), start) // (period * 60)) * period * 60
    return Reply(
        {
            "market_tickers": [m.spec.ticker for m in markets],
            "market_candlesticks": [[candle_json(c) for c in candles] for candles in series],
            "adjusted_end_ts": adjusted,
        }
    )


# ---------------------------------------------------------------------------------------------- forecasts


def _percentiles(call: RestCall) -> list[int]:
    raw = call.query.csv("percentiles")
    if not raw:
        raise bad_field("percentiles", "give 1 to 10 percentiles in hundredths of a percent (0..9999)")
    if len(raw) > _MAX_PERCENTILES:
        raise bad_field("percentiles", f"at most {_MAX_PERCENTILES} percentiles")
    out = []
    for text in raw:
        if not text.isdigit() or not 0 <= int(text) <= 9999:
            raise bad_field("percentiles", f"{text[:20]!r} is not an integer 0..9999")
        out.append(int(text))
    return out


def _forecast(strikes: list[tuple[Decimal, int]], percentile: int) -> Decimal | None:
    """The value at ``percentile`` (hundredths of a percent) of the distribution the ``greater`` markets price.

    Each ``(strike, price)`` says P(X > strike) = price; the CDF between strikes is linear.
    """
    if not strikes:
        return None
    target = Decimal(percentile) / 10_000
    points: list[tuple[Decimal, Decimal]] = []
    cdf_so_far = Decimal(0)
    for strike, price in sorted(strikes):
        cdf_so_far = max(cdf_so_far, 1 - Decimal(price) / PRICE_SCALE)  # a CDF never falls
        points.append((strike, cdf_so_far))
    if target <= points[0][1]:
        return points[0][0]
    for (x0, c0), (x1, c1) in itertools.pairwise(points):
        if c0 <= target <= c1:
            return x0 if c1 == c0 else x0 + (x1 - x0) * (target - c0) / (c1 - c0)
    return points[-1][0]


def _implied_price(c: Candle) -> int | None:
    """The market's price at a candle's end: its last trade, else the mid of a two-sided quote."""
    if c.price is not None:
        return c.price.close
    if c.yes_bid.close > 0 and c.yes_ask.close < PRICE_SCALE:
        return (c.yes_bid.close + c.yes_ask.close) // 2
    return c.previous_ticks


async def forecast_history(call: RestCall) -> Reply:
    _ = call.account
    markets = _event_markets(call)
    percentiles = _percentiles(call)
    start, end = time_range(call)
    period = call.query.integer("period_interval", lo=0, hi=1440)
    if period is None or period not in (0, *PERIODS_MINUTES):
        raise bad_field("period_interval", "must be 0 (every change), 1, 60 or 1440 minutes")
    event_ticker = call.param("ticker")
    greater = [
        m for m in markets if m.spec.strike_type in ("greater", "greater_or_equal") and m.spec.floor_strike is not None
    ]
    series = [(m, market_candles_of(call, m, start, end, period or 1)) for m in greater]
    ends = sorted({c.end_s for _, candles in series for c in candles})
    history = []
    for end_s in ends:
        strikes = []
        for m, candles in series:
            last = next((c for c in reversed(candles) if c.end_s <= end_s), None)
            price = _implied_price(last) if last is not None else None
            if price is not None and m.spec.floor_strike is not None:
                strikes.append((m.spec.floor_strike, price))
        points = []
        for p in percentiles:
            value = _forecast(strikes, p)
            if value is None:
                continue
            rounded = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
            points.append(
                {
                    "percentile": p,
                    "raw_numerical_forecast": value,
                    "numerical_forecast": rounded,
                    "formatted_forecast": f"{rounded:,}",
                }
            )
        if points:
            history.append(
                {
                    "event_ticker": event_ticker,
                    "end_period_ts": end_s,
                    "period_interval": period,
                    "percentile_points": points,
                }
            )
    return Reply({"forecast_history": history})
