"""Signed REST reads of an account: balance, positions, fills, settlements, resting order value, transfers.

Fills and settlements page newest first; positions in the order the account first traded each market. The
simulator has no bank: deposits and withdrawals are always empty lists.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from kalshi.sim.engine import FillEvent, PositionView, SettlementView
from kalshi.sim.rest.archive import archived_event_tickers, cutoff_ms
from kalshi.sim.rest.common import Reply, RestCall, bad_field, cents, money, paginate
from kalshi.sim.rest.subaccounts import listed_accounts, merged
from kalshi.sim.rest.views import event_position_json, fill_json, position_json, settlement_json

if TYPE_CHECKING:
    from kalshi.sim.server import Simulator

__all__ = [
    "get_balance",
    "get_deposits",
    "get_fills",
    "get_positions",
    "get_resting_value",
    "get_settlements",
    "get_withdrawals",
]


def _between(ts_ms: int, min_ts: int | None, max_ts: int | None) -> bool:
    seconds = ts_ms // 1000
    return (min_ts is None or seconds >= min_ts) and (max_ts is None or seconds <= max_ts)


def _event_of(sim: Simulator, ticker: str) -> str:
    engine = sim.engine
    return engine.market(ticker).spec.event_ticker


async def get_balance(call: RestCall) -> Reply:
    engine = call.sim.engine
    call.query.subaccount()
    b = engine.balance(call.account)
    available = b.available_micros
    return Reply(
        {
            "balance": cents(available),
            "balance_dollars": money(available),
            "portfolio_value": cents(b.portfolio_value_micros),
            "updated_ts": b.updated_ts_ms // 1000,
            "balance_breakdown": [{"exchange_index": 0, "balance": money(available)}],
        }
    )


async def get_positions(call: RestCall) -> Reply:
    sim = call.sim
    engine = sim.engine
    q = call.query
    q.subaccount()
    limit = q.limit(default=100, hi=1000)
    ticker = q.text("ticker")
    event = q.text("event_ticker")
    wanted = q.csv("count_filter")
    for name in wanted:
        if name not in ("position", "total_traded"):
            raise bad_field("count_filter", f"{name[:40]!r} is not one of position, total_traded")
    archived = archived_event_tickers(call, cutoff_ms(call))  # whole settled events: GET /historical/positions
    positions = engine.positions(call.account) if q.in_shard() else []

    def matching() -> Iterator[tuple[tuple[int, ...], PositionView]]:
        for i, p in enumerate(positions):
            if ticker is not None and p.ticker != ticker:
                continue
            event_ticker = _event_of(sim, p.ticker)
            if event_ticker in archived or (event is not None and event_ticker != event):
                continue
            if wanted and not (
                ("position" in wanted and p.position_units) or ("total_traded" in wanted and p.total_traded_micros)
            ):
                continue
            yield (i,), p

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="positions")
    by_event: dict[str, list[PositionView]] = {}
    for p in page:
        by_event.setdefault(_event_of(sim, p.ticker), []).append(p)
    return Reply(
        {
            "market_positions": [position_json(p) for p in page],
            "event_positions": [event_position_json(e, ps) for e, ps in by_event.items()],
            "cursor": cursor,
        }
    )


async def get_fills(call: RestCall) -> Reply:
    engine = call.sim.engine
    q = call.query
    q.subaccount()
    limit = q.limit(default=100, hi=1000)
    ticker, order_id = q.text("ticker"), q.text("order_id")
    min_ts, max_ts = q.integer("min_ts"), q.integer("max_ts")
    # SubaccountQuery: without a subaccount, the fills of every subaccount of the member
    fills = merged(listed_accounts(call), engine.fills, lambda f: f.ts_ms) if q.in_shard() else []
    cutoff = cutoff_ms(call)  # older fills are only served by GET /historical/fills

    def matching() -> Iterator[tuple[tuple[int, ...], FillEvent]]:
        for key, f in reversed(fills):
            if f.ts_ms <= cutoff or (ticker is not None and f.ticker != ticker):
                continue
            if order_id is not None and f.order_id != order_id:
                continue
            if _between(f.ts_ms, min_ts, max_ts):
                yield key, f

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="fills", descending=True)
    return Reply({"fills": [fill_json(f) for f in page], "cursor": cursor})


async def get_settlements(call: RestCall) -> Reply:
    engine = call.sim.engine
    q = call.query
    q.subaccount()
    limit = q.limit(default=100, hi=1000)
    ticker, event = q.text("ticker"), q.text("event_ticker")
    min_ts, max_ts = q.integer("min_ts"), q.integer("max_ts")
    # SubaccountQuery: without a subaccount, the settlements of every subaccount of the member
    settlements = merged(listed_accounts(call), engine.settlements, lambda s: s.settled_ts_ms)

    def matching() -> Iterator[tuple[tuple[int, ...], SettlementView]]:
        for key, s in reversed(settlements):
            if (ticker is not None and s.ticker != ticker) or (event is not None and s.event_ticker != event):
                continue
            if _between(s.settled_ts_ms, min_ts, max_ts):
                yield key, s

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="settlements", descending=True)
    return Reply({"settlements": [settlement_json(s) for s in page], "cursor": cursor})


async def get_resting_value(call: RestCall) -> Reply:
    engine = call.sim.engine
    # What the resting orders would cost if they all filled at their limit prices.
    total = sum(
        (o.yes_price_ticks if o.book_side == "bid" else o.no_price_ticks) * o.remaining_units
        for o in engine.orders(call.account, "resting")
    )
    return Reply(
        {
            "total_resting_order_value": cents(total),
            "resting_order_value_breakdown": [{"exchange_index": 0, "balance": money(total)}],
        }
    )


async def get_deposits(call: RestCall) -> Reply:
    call.query.limit(default=100, hi=500)
    _ = call.account
    return Reply({"deposits": [], "cursor": ""})


async def get_withdrawals(call: RestCall) -> Reply:
    call.query.limit(default=100, hi=500)
    _ = call.account
    return Reply({"withdrawals": [], "cursor": ""})
