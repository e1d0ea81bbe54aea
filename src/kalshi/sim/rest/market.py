"""Public REST reads of the simulator: exchange, series, events, markets, order books and trades.

Markets and events page in creation order, trades newest first. Status filters map the spec's words to the
engine's states: ``unopened`` = initialized, ``open`` = active and trading, ``paused`` = active but
deactivated, ``closed`` = closed or determined, ``settled`` = settled.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from kalshi._fixed import format_count, format_price
from kalshi.sim.engine import EngineError, EventSpec, MarketView, TradeEvent
from kalshi.sim.engine.historical import market_archived
from kalshi.sim.market import SeriesSpec
from kalshi.sim.rest.archive import cutoff_ms
from kalshi.sim.rest.common import Reply, RestCall, RestError, bad_field, iso, paginate
from kalshi.sim.rest.views import event_json, market_json, series_json, trade_json

if TYPE_CHECKING:
    from kalshi.sim.server import Simulator

__all__ = [
    "announcements",
    "exchange_schedule",
    "exchange_status",
    "get_event",
    "get_event_fee_changes",
    "get_event_metadata",
    "get_events",
    "get_market",
    "get_markets",
    "get_multivariate_events",
    "get_orderbook",
    "get_orderbooks",
    "get_series",
    "get_series_list",
    "get_trades",
    "series_fee_changes",
    "user_data_timestamp",
]

_MARKET_STATUSES: Final = ("unopened", "open", "paused", "closed", "settled")
_EVENT_STATUSES: Final = ("unopened", "open", "closed", "settled")
_DAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_MAX_ORDERBOOKS: Final = 100


def _status_word(view: MarketView) -> str:
    if view.status == "initialized":
        return "unopened"
    if view.status == "active":
        return "paused" if view.is_deactivated else "open"
    if view.status in ("closed", "determined"):
        return "closed"
    return "settled"


def _seconds(ms: int | None) -> int | None:
    return ms // 1000 if ms is not None else None


def _in_range(value: int | None, lo: int | None, hi: int | None) -> bool:
    """``lo < value < hi`` for the bounds given; a missing value fails any bound."""
    if lo is None and hi is None:
        return True
    if value is None:
        return False
    return (lo is None or value > lo) and (hi is None or value < hi)


def _book_json(call: RestCall, ticker: str, depth: int) -> dict[str, list[list[str]]]:
    try:
        snap = call.sim.engine.book_snapshot(ticker)
    except EngineError:
        raise RestError(404, "market_not_found", f"no market {ticker[:60]!r}") from None
    yes = snap.yes[:depth] if depth > 0 else snap.yes
    no = snap.no[:depth] if depth > 0 else snap.no
    return {
        "yes_dollars": [[format_price(p), format_count(u)] for p, u in yes],
        "no_dollars": [[format_price(p), format_count(u)] for p, u in no],
    }


def _series_of(sim: Simulator, ticker: str) -> SeriesSpec:
    engine = sim.engine
    for series in sim.universe.series:
        if series.series_ticker == ticker:
            return series
    if any(e.series_ticker == ticker for e in engine.events()):
        return SeriesSpec(ticker, ticker, "Other", "custom", 1, 0)
    raise RestError(404, "series_not_found", f"no series {ticker[:60]!r}")


def _all_series(sim: Simulator) -> list[SeriesSpec]:
    engine = sim.engine
    known = list(sim.universe.series)
    tickers = {s.series_ticker for s in known}
    for event in engine.events():
        if event.series_ticker not in tickers:
            tickers.add(event.series_ticker)
            known.append(SeriesSpec(event.series_ticker, event.series_ticker, "Other", "custom", 1, 0))
    return known


def _event_markets(sim: Simulator, event_ticker: str) -> list[MarketView]:
    engine = sim.engine
    return [m for m in engine.markets() if m.spec.event_ticker == event_ticker]


def _live_markets(call: RestCall, markets: list[MarketView]) -> list[MarketView]:
    """Without the markets settled before the historical cutoff (events leave them out, says the spec)."""
    cutoff = cutoff_ms(call)
    return [m for m in markets if not market_archived(m, cutoff)]


def _event_updated(sim: Simulator, event: EventSpec, markets: list[MarketView]) -> int:
    engine = sim.engine
    return max((m.updated_ts_ms for m in markets), default=engine.now_ms)


def _event_out(call: RestCall, event: EventSpec, *, nested: bool) -> dict[str, Any]:
    sim = call.sim
    engine = sim.engine
    markets = _event_markets(sim, event.event_ticker)
    category = _series_of(sim, event.series_ticker).category
    return event_json(
        event,
        category=category,
        updated_ms=_event_updated(sim, event, markets),
        markets=[market_json(engine, m) for m in _live_markets(call, markets)] if nested else None,
    )


# ------------------------------------------------------------------------------ exchange


async def exchange_status(_call: RestCall) -> Reply:
    return Reply(
        {
            "exchange_active": True,
            "trading_active": True,
            "intra_exchange_transfers_active": False,
            "exchange_estimated_resume_time": None,
        }
    )


async def exchange_schedule(call: RestCall) -> Reply:
    engine = call.sim.engine
    # The simulator trades around the clock.
    day = [{"open_time": "00:00", "close_time": "23:59"}]
    week = {name: day for name in _DAYS}
    start = iso(0)
    end = iso(engine.now_ms + 10 * 365 * 86_400_000)
    return Reply(
        {
            "schedule": {
                "standard_hours": [{"start_time": start, "end_time": end, **week}],
                "maintenance_windows": [],
            }
        }
    )


async def user_data_timestamp(call: RestCall) -> Reply:
    sim = call.sim
    # REST and WebSocket read one engine: user data is always current.
    return Reply({"as_of_time": iso(sim.clock_ms())})


async def announcements(_call: RestCall) -> Reply:
    return Reply({"announcements": []})


async def series_fee_changes(_call: RestCall) -> Reply:
    return Reply({"series_fee_change_arr": []})


# ------------------------------------------------------------------------------ series


def _volume_of_series(sim: Simulator, series_ticker: str) -> int:
    engine = sim.engine
    return sum(
        engine.ticker_state(m.ticker).volume_units for m in engine.markets() if m.spec.series_ticker == series_ticker
    )


def _maker_fees(sim: Simulator, series_ticker: str) -> bool:
    engine = sim.engine
    return any(m.spec.maker_fee_bp for m in engine.markets() if m.spec.series_ticker == series_ticker)


async def get_series_list(call: RestCall) -> Reply:
    sim = call.sim
    q = call.query
    category = q.text("category")
    with_volume = q.flag("include_volume")
    out = [
        series_json(
            s,
            volume_units=_volume_of_series(sim, s.series_ticker) if with_volume else None,
            maker_fees=_maker_fees(sim, s.series_ticker),
        )
        for s in _all_series(sim)
        if category is None or s.category == category
    ]
    return Reply({"series": out})


async def get_series(call: RestCall) -> Reply:
    sim = call.sim
    series = _series_of(sim, call.param("series_ticker"))
    with_volume = call.query.flag("include_volume")
    return Reply(
        {
            "series": series_json(
                series,
                volume_units=_volume_of_series(sim, series.series_ticker) if with_volume else None,
                maker_fees=_maker_fees(sim, series.series_ticker),
            )
        }
    )


# ------------------------------------------------------------------------------ events


def _event_status(sim: Simulator, event: EventSpec) -> set[str]:
    return {_status_word(m) for m in _event_markets(sim, event.event_ticker)}


async def get_events(call: RestCall) -> Reply:
    sim = call.sim
    engine = sim.engine
    q = call.query
    limit = q.limit(default=200, hi=200)
    status = q.choice("status", _EVENT_STATUSES)
    series = q.text("series_ticker")
    tickers = set(q.csv("tickers"))
    nested = bool(q.flag("with_nested_markets"))
    min_close = q.integer("min_close_ts")

    def matching() -> Iterator[tuple[tuple[int, ...], EventSpec]]:
        for i, event in enumerate(engine.events()):
            if event.is_multivariate and call.op.operation_id == "GetEvents":
                continue  # combos are listed by GetMultivariateEvents
            if series is not None and event.series_ticker != series:
                continue
            if tickers and event.event_ticker not in tickers:
                continue
            if status is not None and status not in _event_status(sim, event):
                continue
            if min_close is not None and not any(
                _in_range(_seconds(m.close_time_ms), min_close, None) for m in _event_markets(sim, event.event_ticker)
            ):
                continue
            yield (i,), event

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="events")
    body: dict[str, Any] = {"events": [_event_out(call, e, nested=nested) for e in page], "cursor": cursor}
    if q.flag("with_milestones"):
        body["milestones"] = []
    return Reply(body)


async def get_multivariate_events(call: RestCall) -> Reply:
    sim = call.sim
    engine = sim.engine
    q = call.query
    limit = q.limit(default=100, hi=200)
    series = q.text("series_ticker")
    collection = q.text("collection_ticker")
    nested = bool(q.flag("with_nested_markets"))

    def matching() -> Iterator[tuple[tuple[int, ...], EventSpec]]:
        for i, event in enumerate(engine.events()):
            if not event.is_multivariate or (series is not None and event.series_ticker != series):
                continue
            markets = _event_markets(sim, event.event_ticker)
            if collection is not None and not any(m.spec.mve_collection_ticker == collection for m in markets):
                continue
            yield (i,), event

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="mve-events")
    return Reply({"events": [_event_out(call, e, nested=nested) for e in page], "cursor": cursor})


def _find_event(sim: Simulator, event_ticker: str) -> EventSpec:
    engine = sim.engine
    try:
        return engine.event(event_ticker)
    except EngineError:
        raise RestError(404, "event_not_found", f"no event {event_ticker[:60]!r}") from None


async def get_event(call: RestCall) -> Reply:
    sim = call.sim
    engine = sim.engine
    event = _find_event(sim, call.param("event_ticker"))
    nested = bool(call.query.flag("with_nested_markets"))
    markets = [market_json(engine, m) for m in _live_markets(call, _event_markets(sim, event.event_ticker))]
    out = _event_out(call, event, nested=nested)
    return Reply({"event": out, "markets": markets})


async def get_event_metadata(call: RestCall) -> Reply:
    sim = call.sim
    event = _find_event(sim, call.param("event_ticker"))
    details = [
        {"market_ticker": m.ticker, "image_url": "", "color_code": ""} for m in _event_markets(sim, event.event_ticker)
    ]
    return Reply({"image_url": "", "market_details": details, "settlement_sources": []})


async def get_event_fee_changes(call: RestCall) -> Reply:
    call.query.limit(default=100, hi=1000)
    return Reply({"event_fee_changes": [], "cursor": ""})


# ------------------------------------------------------------------------------ markets


async def get_markets(call: RestCall) -> Reply:
    engine = call.sim.engine
    q = call.query
    limit = q.limit(default=100, hi=1000, lo=0)
    status = q.choice("status", _MARKET_STATUSES)
    event = q.text("event_ticker")
    series = q.text("series_ticker")
    tickers = set(q.csv("tickers"))
    mve = q.choice("mve_filter", ("only", "exclude"))
    bounds = {
        name: q.integer(name)
        for name in (
            "min_created_ts",
            "max_created_ts",
            "min_updated_ts",
            "max_updated_ts",
            "min_close_ts",
            "max_close_ts",
            "min_settled_ts",
            "max_settled_ts",
        )
    }
    cutoff = cutoff_ms(call)  # markets settled before it are only served by GET /historical/markets

    def matching() -> Iterator[tuple[tuple[int, ...], MarketView]]:
        for i, m in enumerate(engine.markets()):
            spec = m.spec
            if market_archived(m, cutoff):
                continue
            if status is not None and _status_word(m) != status:
                continue
            if event is not None and spec.event_ticker != event:
                continue
            if series is not None and spec.series_ticker != series:
                continue
            if tickers and spec.ticker not in tickers:
                continue
            if (mve == "only" and not spec.is_multivariate) or (mve == "exclude" and spec.is_multivariate):
                continue
            if not (
                _in_range(_seconds(m.created_ts_ms), bounds["min_created_ts"], bounds["max_created_ts"])
                and _in_range(_seconds(m.updated_ts_ms), bounds["min_updated_ts"], bounds["max_updated_ts"])
                and _in_range(_seconds(m.close_time_ms), bounds["min_close_ts"], bounds["max_close_ts"])
                and _in_range(_seconds(m.settled_ts_ms), bounds["min_settled_ts"], bounds["max_settled_ts"])
            ):
                continue
            yield (i,), m

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="markets")
    return Reply({"markets": [market_json(engine, m) for m in page], "cursor": cursor})


async def get_market(call: RestCall) -> Reply:
    engine = call.sim.engine
    ticker = call.param("ticker")
    try:
        view = engine.market(ticker)
    except EngineError:
        raise RestError(404, "market_not_found", f"no market {ticker[:60]!r}") from None
    return Reply({"market": market_json(engine, view)})


async def get_orderbook(call: RestCall) -> Reply:
    # The spec's description: 0 or negative means every level.
    depth = call.query.integer("depth", default=0, hi=100) or 0
    return Reply({"orderbook_fp": _book_json(call, call.param("ticker"), depth)})


async def get_orderbooks(call: RestCall) -> Reply:
    tickers = call.query.csv("tickers")
    if not tickers:
        raise bad_field("tickers", "give at least one market ticker")
    if len(tickers) > _MAX_ORDERBOOKS:
        raise bad_field("tickers", f"at most {_MAX_ORDERBOOKS} markets per request, got {len(tickers)}")
    books = [{"ticker": t, "orderbook_fp": _book_json(call, t, 0)} for t in dict.fromkeys(tickers)]
    return Reply({"orderbooks": books})


async def get_trades(call: RestCall) -> Reply:
    engine = call.sim.engine
    q = call.query
    limit = q.limit(default=100, hi=1000, lo=0)
    ticker = q.text("ticker")
    min_ts, max_ts = q.integer("min_ts"), q.integer("max_ts")
    block = q.flag("is_block_trade")
    cutoff = cutoff_ms(call)  # older trades are only served by GET /historical/trades
    if ticker is not None:
        try:
            markets = [(0, engine.market(ticker))]
        except EngineError:
            raise RestError(404, "market_not_found", f"no market {ticker[:60]!r}") from None
    else:
        markets = list(enumerate(engine.markets()))
    keyed: list[tuple[tuple[int, ...], TradeEvent]] = []
    for m_index, m in markets:
        for t_index, trade in enumerate(engine.trades(m.ticker)):
            if trade.ts_ms <= cutoff or (block is not None and trade.is_block_trade != block):
                continue
            seconds = trade.ts_ms // 1000
            if (min_ts is not None and seconds < min_ts) or (max_ts is not None and seconds > max_ts):
                continue
            keyed.append(((trade.ts_ms, m_index, t_index), trade))
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    page, cursor = paginate(keyed, limit=limit, cursor=q.text("cursor"), scope="trades", descending=True)
    return Reply({"trades": [trade_json(t) for t in page], "cursor": cursor})
