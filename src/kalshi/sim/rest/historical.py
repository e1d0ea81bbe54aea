"""The ``/historical/*`` operations: what lies at or before the engine's historical cutoff.

Historical markets are markets settled at or before the cutoff; historical trades and fills were created
at or before it; historical orders are closed orders last updated at or before it; historical positions are
the account's positions in events whose every market is historical (an event's positions move together). The
live endpoints serve exactly the rest (:mod:`kalshi.sim.rest.archive`). The cutoff trails the clock (see
:class:`kalshi.sim.engine.historical.HistoricalCutoff`), so data moves here as time passes. Trades and fills
page newest first, markets and orders oldest first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from kalshi.sim.engine import EngineError, FillEvent, MarketView, OrderView, PositionView, TradeEvent
from kalshi.sim.engine.historical import market_archived, order_archived
from kalshi.sim.rest.archive import archived_event_tickers, cutoff_ms
from kalshi.sim.rest.candlesticks import historical_candle_json, market_candles_of, period_of, time_range
from kalshi.sim.rest.common import Reply, RestCall, RestError, iso, paginate
from kalshi.sim.rest.subaccounts import listed_accounts, merged
from kalshi.sim.rest.views import event_position_json, fill_json, market_json, order_json, position_json, trade_json

__all__ = [
    "get_candles",
    "get_cutoff",
    "get_fills",
    "get_market",
    "get_markets",
    "get_orders",
    "get_positions",
    "get_trades",
]

_INT64: Final = 2**63 - 1


def _between(ts_ms: int, min_ts: int | None, max_ts: int | None) -> bool:
    seconds = ts_ms // 1000
    return (min_ts is None or seconds >= min_ts) and (max_ts is None or seconds <= max_ts)


async def get_cutoff(call: RestCall) -> Reply:
    at = iso(cutoff_ms(call))
    return Reply(
        {
            "market_settled_ts": at,
            "trades_created_ts": at,
            "orders_updated_ts": at,
            "market_positions_last_updated_ts": at,
        }
    )


def _historical_market(call: RestCall, ticker: str) -> MarketView:
    try:
        view = call.sim.engine.market(ticker)
    except EngineError:
        raise RestError(404, "market_not_found", f"no market {ticker[:60]!r}") from None
    if not market_archived(view, cutoff_ms(call)):
        raise RestError(
            404,
            "market_not_found",
            f"market {ticker[:60]!r} is not historical yet (not settled before the cutoff); use GET /markets/{ticker}",
        )
    return view


async def get_markets(call: RestCall) -> Reply:
    engine = call.sim.engine
    q = call.query
    limit = q.limit(default=100, hi=1000, lo=0)
    tickers = set(q.csv("tickers"))
    event, series = q.text("event_ticker"), q.text("series_ticker")
    exclude_mve = q.choice("mve_filter", ("exclude",)) == "exclude"
    cutoff = cutoff_ms(call)

    def matching() -> Iterator[tuple[tuple[int, ...], MarketView]]:
        for i, m in enumerate(engine.markets("settled")):
            spec = m.spec
            if not market_archived(m, cutoff):
                continue
            if (tickers and spec.ticker not in tickers) or (event is not None and spec.event_ticker != event):
                continue
            if (series is not None and spec.series_ticker != series) or (exclude_mve and spec.is_multivariate):
                continue
            yield (i,), m

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="hist-markets")
    return Reply({"markets": [market_json(engine, m) for m in page], "cursor": cursor})


async def get_market(call: RestCall) -> Reply:
    view = _historical_market(call, call.param("ticker"))
    return Reply({"market": market_json(call.sim.engine, view)})


async def get_candles(call: RestCall) -> Reply:
    view = _historical_market(call, call.param("ticker"))
    start, end = time_range(call)
    candles = market_candles_of(call, view, start, end, period_of(call))
    return Reply({"ticker": view.spec.ticker, "candlesticks": [historical_candle_json(c) for c in candles]})


async def get_trades(call: RestCall) -> Reply:
    engine = call.sim.engine
    q = call.query
    limit = q.limit(default=100, hi=1000, lo=0)
    ticker = q.text("ticker")
    min_ts, max_ts = q.integer("min_ts", lo=0, hi=_INT64), q.integer("max_ts", lo=0, hi=_INT64)
    block = q.flag("is_block_trade")
    cutoff = cutoff_ms(call)
    if ticker is not None:
        try:
            markets = [(0, engine.market(ticker))]
        except EngineError:
            raise RestError(404, "market_not_found", f"no market {ticker[:60]!r}") from None
    else:
        markets = list(enumerate(engine.markets()))
    keyed: list[tuple[tuple[int, ...], TradeEvent]] = []
    for m_index, m in markets:
        for t_index, trade in enumerate(engine.trades(m.spec.ticker)):
            if trade.ts_ms > cutoff or (block is not None and trade.is_block_trade != block):
                continue
            if _between(trade.ts_ms, min_ts, max_ts):
                keyed.append(((trade.ts_ms, m_index, t_index), trade))
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    page, cursor = paginate(keyed, limit=limit, cursor=q.text("cursor"), scope="hist-trades", descending=True)
    return Reply({"trades": [trade_json(t) for t in page], "cursor": cursor})


async def get_fills(call: RestCall) -> Reply:
    engine = call.sim.engine
    q = call.query
    q.subaccount()
    limit = q.limit(default=100, hi=1000)
    ticker = q.text("ticker")
    min_ts, max_ts = q.integer("min_ts", lo=0, hi=_INT64), q.integer("max_ts", lo=0, hi=_INT64)
    cutoff = cutoff_ms(call)
    # SubaccountQuery: without a subaccount, the fills of every subaccount of the member
    fills = merged(listed_accounts(call), engine.fills, lambda f: f.ts_ms)

    def matching() -> Iterator[tuple[tuple[int, ...], FillEvent]]:
        for key, f in reversed(fills):
            if f.ts_ms <= cutoff and (ticker is None or f.ticker == ticker) and _between(f.ts_ms, min_ts, max_ts):
                yield key, f

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="hist-fills", descending=True)
    return Reply({"fills": [fill_json(f) for f in page], "cursor": cursor})


async def get_orders(call: RestCall) -> Reply:
    engine = call.sim.engine
    q = call.query
    q.subaccount()
    limit = q.limit(default=100, hi=1000)
    ticker = q.text("ticker")
    min_ts, max_ts = q.integer("min_ts", lo=0, hi=_INT64), q.integer("max_ts", lo=0, hi=_INT64)
    cutoff = cutoff_ms(call)
    # SubaccountQuery: without a subaccount, the orders of every subaccount of the member
    orders = merged(listed_accounts(call), engine.orders, lambda o: o.created_ts_ms)

    def matching() -> Iterator[tuple[tuple[int, ...], OrderView]]:
        for key, o in orders:
            if not order_archived(o, cutoff):
                continue
            if (ticker is None or o.ticker == ticker) and _between(o.created_ts_ms, min_ts, max_ts):
                yield key, o

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="hist-orders")
    return Reply({"orders": [order_json(o) for o in page], "cursor": cursor})


async def get_positions(call: RestCall) -> Reply:
    engine = call.sim.engine
    q = call.query
    q.subaccount()
    limit = q.limit(default=100, hi=1000)
    ticker, event = q.text("ticker"), q.text("event_ticker")
    archived = archived_event_tickers(call, cutoff_ms(call))

    def matching() -> Iterator[tuple[tuple[int, ...], tuple[PositionView, str]]]:
        for i, p in enumerate(engine.positions(call.account)):
            view = engine.market(p.ticker)
            if view.spec.event_ticker not in archived:
                continue
            if (ticker is None or p.ticker == ticker) and (event is None or view.spec.event_ticker == event):
                yield (i,), (p, view.spec.event_ticker)

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="hist-positions")
    by_event: dict[str, list[PositionView]] = {}
    for p, event_ticker in page:
        by_event.setdefault(event_ticker, []).append(p)
    return Reply(
        {
            "market_positions": [position_json(p) for p, _ in page],
            "event_positions": [event_position_json(e, ps) for e, ps in by_event.items()],
            "cursor": cursor,
        }
    )
