"""FCM operations over REST: subtraders, their orders, fills and positions, blocked categories and daily caps.

Every signed account may act as an FCM: its subtraders are engine accounts of their own
(:mod:`kalshi.sim.engine.fcm`), funded like any new simulator account; a key created with ``fcm_subtrader_id`` trades as that
subtrader. The FCM reads what its subtraders did here; filters narrow by subtrader, market and time.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Final

from kalshi._fixed import format_count, format_price
from kalshi.sim.engine import FillEvent, OrderView, PositionView
from kalshi.sim.engine.fcm import SubtraderRecord
from kalshi.sim.engine.subaccounts import owner_of
from kalshi.sim.rest.common import Reply, RestCall, bad_field, iso, money, paginate
from kalshi.sim.rest.views import event_position_json, order_json, position_json

__all__ = [
    "create_subtrader",
    "delete_daily_cap",
    "get_blocked_categories",
    "get_daily_cap",
    "get_fills",
    "get_orders",
    "get_positions",
    "list_subtraders",
    "update_blocked_categories",
    "update_daily_cap",
]

_INT64: Final = 2**63 - 1
_ORDER_STATUSES: Final = ("resting", "canceled", "executed")


def _fcm(call: RestCall) -> str:
    return owner_of(call.account)


def _subtraders(call: RestCall, wanted: str | None) -> list[SubtraderRecord]:
    book = call.sim.engine.fcm
    fcm = _fcm(call)
    return [book.get(fcm, wanted)] if wanted is not None else book.of(fcm)


def _between(ts_ms: int, min_ts: int | None, max_ts: int | None) -> bool:
    seconds = ts_ms // 1000
    return (min_ts is None or seconds >= min_ts) and (max_ts is None or seconds <= max_ts)


async def list_subtraders(call: RestCall) -> Reply:
    out = [
        {
            "subtrader_id": s.subtrader_id,
            "exchange_indices": [0],
            "trading_blocked": False,
            "fcm_trading_blocked": False,
            "propagation_pending": False,
        }
        for s in _subtraders(call, None)
    ]
    return Reply({"subtraders": out})


async def create_subtrader(call: RestCall) -> Reply:
    body = await call.body()
    suffix = body.required_text("subtrader_suffix")
    sim = call.sim
    record = sim.engine.fcm.create(_fcm(call), suffix)
    sim.ensure_account(record.account)  # funded like any new simulator account
    return Reply({"subtrader_id": record.subtrader_id}, status=201)


async def get_orders(call: RestCall) -> Reply:
    engine = call.sim.engine
    q = call.query
    limit = q.integer("limit", default=100, lo=1, hi=1000) or 100
    subs = _subtraders(call, q.text("subtrader_id"))
    client_ids = set(q.csv("client_order_ids"))
    event, ticker = q.text("event_ticker"), q.text("ticker")
    min_ts, max_ts = q.integer("min_ts", lo=0, hi=_INT64), q.integer("max_ts", lo=0, hi=_INT64)
    status = q.choice("status", _ORDER_STATUSES)

    def matching() -> Iterator[tuple[tuple[int, ...], OrderView]]:
        for s_index, sub in enumerate(subs):
            for o_index, o in enumerate(engine.orders(sub.account)):
                if (status is not None and o.status != status) or (ticker is not None and o.ticker != ticker):
                    continue
                if client_ids and o.client_order_id not in client_ids:
                    continue
                if event is not None and engine.market(o.ticker).spec.event_ticker != event:
                    continue
                if _between(o.created_ts_ms, min_ts, max_ts):
                    yield (s_index, o_index), o

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="fcm-orders")
    return Reply({"orders": [order_json(o) for o in page], "cursor": cursor})


def _fill_json(f: FillEvent, subtrader: str) -> dict[str, Any]:
    taker_side = f.outcome_side if f.is_taker else ("no" if f.outcome_side == "yes" else "yes")
    out: dict[str, Any] = {
        "fill_id": f.fill_id,
        "exchange_index": f.exchange_index,
        "ticker": f.ticker,
        "taker_outcome_side": taker_side,
        "count_fp": format_count(f.count_units),
        "yes_price_dollars": format_price(f.yes_price_ticks),
        "created_time": iso(f.ts_ms),
    }
    role = "taker" if f.is_taker else "maker"
    out[f"{role}_order_id"] = f.order_id
    out[f"{role}_subtrader_id"] = subtrader
    out[f"{role}_fee_cost"] = money(f.fee_micros)
    return out


async def get_fills(call: RestCall) -> Reply:
    engine = call.sim.engine
    q = call.query
    min_ts, max_ts = q.integer("min_ts", lo=0, hi=_INT64), q.integer("max_ts", lo=0, hi=_INT64)
    rows: list[tuple[tuple[int, ...], tuple[FillEvent, str]]] = []
    for s_index, sub in enumerate(_subtraders(call, None)):
        for f_index, f in enumerate(engine.fills(sub.account)):
            if _between(f.ts_ms, min_ts, max_ts):
                rows.append(((f.ts_ms, s_index, f_index), (f, sub.subtrader_id)))
    rows.sort(key=lambda row: row[0], reverse=True)
    page, cursor = paginate(rows, limit=100, cursor=q.text("cursor"), scope="fcm-fills", descending=True)
    return Reply({"fills": [_fill_json(f, s) for f, s in page], "cursor": cursor})


async def get_positions(call: RestCall) -> Reply:
    engine = call.sim.engine
    q = call.query
    limit = q.integer("limit", default=100, lo=1, hi=1000) or 100
    subs = _subtraders(call, q.text("subtrader_id"))
    ticker, event = q.text("ticker"), q.text("event_ticker")
    wanted = q.csv("count_filter")
    for name in wanted:
        if name not in ("position", "total_traded"):
            raise bad_field("count_filter", f"{name[:40]!r} is not one of position, total_traded")
    settlement = q.choice("settlement_status", ("all", "unsettled", "settled")) or "unsettled"

    def matching() -> Iterator[tuple[tuple[int, ...], tuple[PositionView, str]]]:
        for s_index, sub in enumerate(subs):
            for p_index, p in enumerate(engine.positions(sub.account)):
                view = engine.market(p.ticker)
                settled = view.status == "settled"
                if (settlement == "settled" and not settled) or (settlement == "unsettled" and settled):
                    continue
                if (ticker is not None and p.ticker != ticker) or (
                    event is not None and view.spec.event_ticker != event
                ):
                    continue
                if wanted and not (
                    ("position" in wanted and p.position_units) or ("total_traded" in wanted and p.total_traded_micros)
                ):
                    continue
                yield (s_index, p_index), (p, view.spec.event_ticker)

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="fcm-positions")
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


def _one(call: RestCall, subtrader_id: str | None) -> SubtraderRecord:
    if subtrader_id is None:
        raise bad_field("subtrader_id", "is required")
    return call.sim.engine.fcm.get(_fcm(call), subtrader_id)


async def get_blocked_categories(call: RestCall) -> Reply:
    wanted = call.query.text("subtrader_id")
    if wanted is not None and wanted not in {s.subtrader_id for s in call.sim.engine.fcm.of(_fcm(call))}:
        raise bad_field("subtrader_id", "is not a subtrader of this FCM")  # the spec lists 400, not 404, here
    sub = _one(call, wanted)
    return Reply({"categories": sorted(sub.blocked_categories)})


async def update_blocked_categories(call: RestCall) -> Reply:
    body = await call.body()
    sub = _one(call, body.required_text("subtrader_id"))
    category = body.required_text("category")
    blocked = body.flag("blocked")
    if blocked is None:
        raise bad_field("blocked", "is required (true or false)")
    if blocked:
        sub.blocked_categories.add(category)
    else:
        sub.blocked_categories.discard(category)
    return Reply({"categories": sorted(sub.blocked_categories)})


def _utilization(call: RestCall, sub: SubtraderRecord) -> tuple[int, int]:
    engine = call.sim.engine
    now = call.sim.clock_ms()
    day_start = now - now % 86_400_000
    executed = sum(f.count_units * (f.yes_price_ticks if f.book_side == "bid" else 10_000 - f.yes_price_ticks)
                   for f in engine.fills(sub.account) if f.ts_ms >= day_start)  # fmt: skip
    resting = sum(
        o.remaining_units * (o.yes_price_ticks if o.book_side == "bid" else o.no_price_ticks)
        for o in engine.orders(sub.account, "resting")
    )
    return executed, resting


async def get_daily_cap(call: RestCall) -> Reply:
    sub = _one(call, call.query.text("subtrader_id"))
    executed, resting = _utilization(call, sub)
    day = iso(call.sim.clock_ms())[:10]
    return Reply(
        {
            "subtrader_id": sub.subtrader_id,
            "limit": money(sub.daily_cap_micros) if sub.daily_cap_micros is not None else "0.0000",
            "executed_utilization": money(executed),
            "resting_order_utilization": money(resting),
            "pending_order_utilization": "0.0000",
            "cap_date": day,
        }
    )


async def update_daily_cap(call: RestCall) -> Reply:
    body = await call.body()
    sub = _one(call, body.required_text("subtrader_id"))
    text = body.required_text("limit")
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise bad_field("limit", f"{text[:40]!r} is not a dollar amount like '2500.00'") from None
    micros = value * 1_000_000 if value.is_finite() else Decimal(-1)
    if micros < 0 or micros != micros.to_integral_value():
        raise bad_field("limit", "must be a non-negative dollar amount with at most 6 decimals")
    sub.daily_cap_micros = int(micros)
    return Reply({})


async def delete_daily_cap(call: RestCall) -> Reply:
    sub = _one(call, call.query.text("subtrader_id"))
    sub.daily_cap_micros = None
    return Reply({})
