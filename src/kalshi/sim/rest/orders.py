"""Order entry and order reads over REST: the V2 endpoints under ``/portfolio/events/orders`` and
``/portfolio/orders``.

Every mutation runs through ``sim.do`` so the engine's events (fill, user_order, market_position, book
deltas) are published to WebSocket subscribers before the response leaves. Batches are processed item by
item in order; a failing item carries its ``error`` and does not stop the others. Orders page newest first.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Final

from kalshi._fixed import PRICE_SCALE, format_count, format_price
from kalshi.sim.engine import KEEP, BookSide, Engine, EngineError, OrderView
from kalshi.sim.engine.historical import order_archived
from kalshi.sim.engine.orders import Keep
from kalshi.sim.engine.types import SelfTradePrevention, TimeInForce
from kalshi.sim.rest.archive import cutoff_ms
from kalshi.sim.rest.common import Body, Reply, RestCall, RestError, bad_field, paginate
from kalshi.sim.rest.subaccounts import listed_accounts, merged
from kalshi.sim.rest.views import order_json

if TYPE_CHECKING:
    from kalshi.sim.server import Simulator

__all__ = [
    "amend_order",
    "batch_cancel",
    "batch_create",
    "cancel_all",
    "cancel_order",
    "create_order",
    "decrease_order",
    "dollars",
    "get_order",
    "get_orders",
    "get_queue_position",
    "get_queue_positions",
]

_SIDES: Final = ("bid", "ask")
_TIFS: Final[tuple[TimeInForce, ...]] = ("fill_or_kill", "good_till_canceled", "immediate_or_cancel")
_STPS: Final[tuple[SelfTradePrevention, ...]] = ("taker_at_cross", "maker")
_STATUSES: Final = ("resting", "canceled", "executed")
_MICRO: Final = Decimal("0.000001")
_MAX_EVENT_FILTER: Final = 10
# Batch-create item fields the spec marks ``nullable`` + ``x-omitempty: false``: always written, null when unset.
_BATCH_CREATED_FIELDS: Final = ("fill_count", "remaining_count", "average_fill_price", "average_fee_paid", "ts_ms")


def dollars(value: Decimal) -> str:
    """A Decimal dollar amount as ``FixedPointDollars``: 4 decimals when exact to the tick, else 6."""
    ticks = value * PRICE_SCALE
    if ticks == ticks.to_integral_value():
        return format_price(int(ticks))
    return str(value.quantize(_MICRO, rounding=ROUND_HALF_EVEN))


def _route(index: int | None, ticker: str | None, *, name: str, ticker_name: str) -> None:
    """``exchange_index``: omitted or 0 is the one shard; -1 requires auto-routing by the market ticker, so it
    needs one (which routes to shard 0); any other shard is a 400."""
    if index == -1:
        if not ticker:
            raise bad_field(ticker_name, "is required for auto-routing (exchange_index -1)")
    elif index not in (None, 0):
        raise bad_field(name, "the simulator has one exchange shard, 0 (or -1 to auto-route by market ticker)")


def _shard(body: Body, ticker_field: str = "ticker") -> None:
    _route(
        body.integer("exchange_index"),
        body.text(ticker_field),
        name=body.prefix + "exchange_index",
        ticker_name=body.prefix + ticker_field,
    )
    # ``subaccount`` is resolved to the acting account by the dispatcher (kalshi.sim.rest.subaccounts).


def _tif(body: Body) -> TimeInForce:
    value = body.choice("time_in_force", _TIFS, required=True)
    return next(tif for tif in _TIFS if tif == value)


def _stp(body: Body) -> SelfTradePrevention:
    value = body.choice("self_trade_prevention_type", _STPS, required=True)
    return "maker" if value == "maker" else "taker_at_cross"


def _error_item(exc: RestError | EngineError) -> dict[str, Any]:
    item: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if isinstance(exc, RestError) and exc.details is not None:
        item["details"] = exc.details
    return item


def _own_order(sim: Simulator, account: str, order_id: str) -> OrderView:
    engine = sim.engine
    try:
        order = engine.order(order_id)
    except EngineError:
        order = None
    if order is None or order.account != account:
        raise RestError(404, "order_not_found", f"no order {order_id[:60]!r} for this account")
    return order


def _place(sim: Simulator, account: str, b: Body) -> dict[str, Any]:
    _shard(b)
    ticker = b.required_text("ticker")
    side: BookSide = "bid" if b.choice("side", _SIDES, required=True) == "bid" else "ask"
    count = b.count("count", required=True)
    price = b.price("price", required=True)
    assert count is not None and price is not None
    if count == 0:
        raise bad_field(b.prefix + "count", "must be a positive number of contracts")
    tif, stp = _tif(b), _stp(b)
    expiration = b.integer("expiration_time")
    client_order_id = b.text("client_order_id")
    group_id = b.text("order_group_id")
    post_only, reduce_only = bool(b.flag("post_only")), bool(b.flag("reduce_only"))
    on_pause = bool(b.flag("cancel_order_on_pause"))
    result = sim.do(
        lambda e: e.place_order(
            account,
            ticker,
            side,
            price,
            count,
            time_in_force=tif,
            client_order_id=client_order_id,
            post_only=post_only,
            reduce_only=reduce_only,
            self_trade_prevention=stp,
            order_group_id=group_id,
            expiration_ms=expiration * 1000 if expiration is not None else None,
            cancel_order_on_pause=on_pause,
        )
    )
    out: dict[str, Any] = {"order_id": result.order_id}
    if result.order.client_order_id:
        out["client_order_id"] = result.order.client_order_id
    out["fill_count"] = format_count(result.fill_units)
    out["remaining_count"] = format_count(result.remaining_units)
    if result.average_fill_price is not None:
        out["average_fill_price"] = dollars(result.average_fill_price)
    if result.average_fee_paid is not None:
        out["average_fee_paid"] = dollars(result.average_fee_paid)
    out["ts_ms"] = result.ts_ms
    return out


# ------------------------------------------------------------------------------ reads


async def get_orders(call: RestCall) -> Reply:
    engine = call.sim.engine
    q = call.query
    q.subaccount()
    limit = q.limit(default=100, hi=1000)
    status = q.choice("status", _STATUSES)
    ticker = q.text("ticker")
    events = set(q.csv("event_ticker"))
    if len(events) > _MAX_EVENT_FILTER:
        raise bad_field("event_ticker", f"at most {_MAX_EVENT_FILTER} event tickers")
    min_ts, max_ts = q.integer("min_ts"), q.integer("max_ts")
    # SubaccountQuery: without a subaccount, the orders of every subaccount of the member
    orders = merged(listed_accounts(call), engine.orders, lambda o: o.created_ts_ms) if q.in_shard() else []
    cutoff = cutoff_ms(call)  # orders closed before it are only served by GET /historical/orders

    def matching() -> Iterator[tuple[tuple[int, ...], OrderView]]:
        for key, o in reversed(orders):
            if order_archived(o, cutoff):
                continue
            if (status is not None and o.status != status) or (ticker is not None and o.ticker != ticker):
                continue
            if events and engine.market(o.ticker).spec.event_ticker not in events:
                continue
            seconds = o.created_ts_ms // 1000
            if (min_ts is not None and seconds < min_ts) or (max_ts is not None and seconds > max_ts):
                continue
            yield key, o

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="orders", descending=True)
    return Reply({"orders": [order_json(o) for o in page], "cursor": cursor})


async def get_order(call: RestCall) -> Reply:
    sim = call.sim
    return Reply({"order": order_json(_own_order(sim, call.account, call.param("order_id")))})


async def get_queue_positions(call: RestCall) -> Reply:
    engine = call.sim.engine
    q = call.query
    q.subaccount()
    tickers = set(q.csv("market_tickers"))
    event = q.text("event_ticker")
    if not tickers and event is None:
        raise bad_field("market_tickers", "give market_tickers or event_ticker")
    out = []
    for o in engine.orders(call.account, "resting"):
        if tickers and o.ticker not in tickers:
            continue
        if event is not None and engine.market(o.ticker).spec.event_ticker != event:
            continue
        out.append(
            {
                "order_id": o.order_id,
                "market_ticker": o.ticker,
                "queue_position_fp": format_count(engine.queue_position(o.order_id)),
            }
        )
    return Reply({"queue_positions": out})


async def get_queue_position(call: RestCall) -> Reply:
    sim = call.sim
    engine = sim.engine
    order = _own_order(sim, call.account, call.param("order_id"))
    return Reply({"queue_position_fp": format_count(engine.queue_position(order.order_id))})


# ------------------------------------------------------------------------------ order entry


async def create_order(call: RestCall) -> Reply:
    sim = call.sim
    return Reply(_place(sim, call.account, await call.body()), status=201)


async def batch_create(call: RestCall) -> Reply:
    sim = call.sim
    items = (await call.body()).objects("orders")
    account = call.account
    out: list[dict[str, Any]] = []
    for item in items:
        try:
            placed = _place(sim, account, item)
        except (RestError, EngineError) as exc:
            failed: dict[str, Any] = {"client_order_id": item.data.get("client_order_id")}
            failed.update(dict.fromkeys(_BATCH_CREATED_FIELDS))
            failed["error"] = _error_item(exc)
            out.append(failed)
        else:
            item_out: dict[str, Any] = {k: placed[k] for k in ("order_id", "client_order_id") if k in placed}
            item_out.update((k, placed.get(k)) for k in _BATCH_CREATED_FIELDS)
            out.append(item_out)
    return Reply({"orders": out}, status=201)


def _cancel(sim: Simulator, account: str, order_id: str) -> dict[str, Any]:
    _own_order(sim, account, order_id)
    result = sim.do(lambda e: e.cancel_order(account, order_id))
    out: dict[str, Any] = {"order_id": order_id}
    if result.order.client_order_id:
        out["client_order_id"] = result.order.client_order_id
    out["reduced_by"] = format_count(result.reduced_by_units)
    out["ts_ms"] = result.ts_ms
    return out


async def cancel_order(call: RestCall) -> Reply:
    sim = call.sim
    q = call.query
    q.subaccount()
    _route(q.integer("exchange_index"), q.text("market_ticker"), name="exchange_index", ticker_name="market_ticker")
    return Reply(_cancel(sim, call.account, call.param("order_id")))


async def batch_cancel(call: RestCall) -> Reply:
    sim = call.sim
    items = (await call.body()).objects("orders")
    account = call.account
    out: list[dict[str, Any]] = []
    for item in items:
        order_id = item.data.get("order_id")
        try:
            _shard(item, "market_ticker")
            order_id = item.required_text("order_id")
            out.append(_cancel(sim, account, order_id))
        except (RestError, EngineError) as exc:
            out.append(
                {
                    "order_id": order_id if isinstance(order_id, str) else "",
                    "reduced_by": format_count(0),
                    "ts_ms": None,  # nullable, x-omitempty: false: written as null
                    "error": _error_item(exc),
                }
            )
    return Reply({"orders": out})


async def cancel_all(call: RestCall) -> Reply:
    sim = call.sim
    call.query.subaccount()
    accounts = listed_accounts(call)  # SubaccountQuery: an omitted subaccount means every subaccount

    def cancel_everywhere(engine: Engine) -> None:
        for account in accounts:
            engine.cancel_all(account)

    sim.do(cancel_everywhere)
    return Reply(status=204)


def _amended_expiry(seconds: int | None) -> int | Keep | None:
    """Amend's ``expiration_time``: omitted keeps the expiry, 0 removes it (good-till-canceled)."""
    if seconds is None:
        return KEEP
    return None if seconds == 0 else seconds * 1000


async def amend_order(call: RestCall) -> Reply:
    sim = call.sim
    call.query.subaccount()
    account = call.account
    order = _own_order(sim, account, call.param("order_id"))
    b = await call.body()
    _shard(b)
    ticker = b.required_text("ticker")
    if ticker != order.ticker:
        raise bad_field("ticker", f"order {order.order_id} is in {order.ticker}, not {ticker[:60]}")
    if b.choice("side", _SIDES, required=True) != order.book_side:
        raise bad_field("side", f"order {order.order_id} is a {order.book_side}; the side cannot be amended")
    price = b.price("price", required=True)
    count = b.count("count", required=True)
    assert price is not None and count is not None
    client_order_id = b.text("client_order_id")
    if client_order_id is not None and client_order_id != (order.client_order_id or ""):
        raise bad_field("client_order_id", "does not match the order's client_order_id")
    expiration = b.integer("expiration_time")
    new_client_order_id = b.text("updated_client_order_id")
    result = sim.do(
        lambda e: e.amend_order(
            account,
            order.order_id,
            price_ticks=price,
            count_units=count,
            updated_client_order_id=new_client_order_id,
            expiration_ms=_amended_expiry(expiration),
        )
    )
    new = result.order
    out: dict[str, Any] = {"order_id": new.order_id}
    if new.client_order_id:
        out["client_order_id"] = new.client_order_id
    out["remaining_count"] = format_count(new.remaining_units)
    out["fill_count"] = format_count(new.fill_units)
    out["average_fill_price"] = out["average_fee_paid"] = None  # nullable, x-omitempty: false: null without fills
    if result.fills:
        units = result.fill_units
        price_sum = sum(f.yes_price_ticks * f.count_units for f in result.fills)
        fee_sum = sum(f.fee_micros for f in result.fills)
        out["average_fill_price"] = dollars(Decimal(price_sum) / (units * PRICE_SCALE))
        out["average_fee_paid"] = dollars(Decimal(fee_sum * 100) / (units * 1_000_000))
    out["ts_ms"] = result.ts_ms
    return Reply(out)


async def decrease_order(call: RestCall) -> Reply:
    sim = call.sim
    call.query.subaccount()
    account = call.account
    order = _own_order(sim, account, call.param("order_id"))
    b = await call.body()
    _shard(b, "market_ticker")
    reduce_by, reduce_to = b.count("reduce_by"), b.count("reduce_to")
    if (reduce_by is None) == (reduce_to is None):
        raise bad_field("reduce_by", "give exactly one of reduce_by or reduce_to")
    view = sim.do(lambda e: e.decrease_order(account, order.order_id, reduce_by=reduce_by, reduce_to=reduce_to))
    out: dict[str, Any] = {"order_id": view.order_id}
    if view.client_order_id:
        out["client_order_id"] = view.client_order_id
    out["remaining_count"] = format_count(view.remaining_units)
    out["ts_ms"] = view.last_updated_ts_ms
    return Reply(out)
