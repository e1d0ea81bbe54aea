"""Requests for quote and quotes over REST (``/communications``), backed by the engine's RFQ book.

RFQs are visible to every account (as on the ``communications`` channel); a quote only to its creator and to
the RFQ's creator. Accepting and confirming run through ``sim.do``: a confirmed quote executes at once as a
block trade, and both sides see ``quote_executed``, their fills and positions on the WebSocket. Lists page
newest first. The current paths (``/communications/rfqs/{rfq_id}/quotes/{quote_id}/...``) and the deprecated
ones (``/communications/quotes/{quote_id}/...``) behave the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from kalshi._fixed import COUNT_SCALE
from kalshi.sim.engine import EngineError, QuoteView, RfqView
from kalshi.sim.engine.types import OutcomeSide
from kalshi.sim.rest.common import Reply, RestCall, RestError, bad_field, paginate
from kalshi.sim.rest.views import quote_json, rfq_json
from kalshi.sim.ws.feeds import user_id

if TYPE_CHECKING:
    from kalshi.sim.server import Simulator

__all__ = [
    "accept_quote",
    "communications_id",
    "confirm_quote",
    "create_quote",
    "create_rfq",
    "delete_quote",
    "delete_rfq",
    "get_quote",
    "get_quotes",
    "get_rfq",
    "get_rfqs",
]

_MICROS_PER_CENTI_CENT: Final = 100
_RFQ_STATUSES: Final = ("open", "closed")
_QUOTE_STATUSES: Final = ("open", "accepted", "confirmed", "executed", "cancelled")


def _rfq_out(sim: Simulator, r: RfqView, viewer: str) -> dict[str, Any]:
    engine = sim.engine
    return rfq_json(r, creator_comms_id=engine.communications_id(r.creator), viewer=viewer)


def _quote_out(sim: Simulator, q: QuoteView) -> dict[str, Any]:
    engine = sim.engine
    return quote_json(
        q,
        creator_comms_id=engine.communications_id(q.creator),
        rfq_creator_comms_id=engine.communications_id(q.rfq_creator),
    )


def _find_rfq(sim: Simulator, rfq_id: str) -> RfqView:
    engine = sim.engine
    try:
        return engine.rfq(rfq_id)
    except EngineError:
        raise RestError(404, "rfq_not_found", f"no RFQ {rfq_id[:60]!r}") from None


def _visible_quote(sim: Simulator, account: str, quote_id: str, rfq_id: str | None = None) -> QuoteView:
    engine = sim.engine
    try:
        quote = engine.quote(quote_id)
    except EngineError:
        quote = None
    if (
        quote is None
        or account not in (quote.creator, quote.rfq_creator)
        or (rfq_id is not None and quote.rfq_id != rfq_id)
    ):
        raise RestError(404, "quote_not_found", f"no quote {quote_id[:60]!r} for this account")
    return quote


async def communications_id(call: RestCall) -> Reply:
    engine = call.sim.engine
    return Reply({"communications_id": engine.communications_id(call.account)})


# ------------------------------------------------------------------------------ RFQs


async def get_rfqs(call: RestCall) -> Reply:
    sim = call.sim
    engine = sim.engine
    q = call.query
    q.subaccount()
    account = call.account
    limit = q.limit(default=100, hi=100)
    status = q.choice("status", _RFQ_STATUSES)
    market, event = q.text("market_ticker"), q.text("event_ticker")
    creator = q.text("creator_user_id")
    mine = q.choice("user_filter", ("self",)) == "self"
    rfqs = engine.rfqs()

    def matching() -> Iterator[tuple[tuple[int, ...], RfqView]]:
        for i in range(len(rfqs) - 1, -1, -1):
            r = rfqs[i]
            if (status is not None and r.status != status) or (market is not None and r.ticker != market):
                continue
            if event is not None and r.event_ticker != event:
                continue
            if (mine and r.creator != account) or (creator is not None and user_id(r.creator) != creator):
                continue
            yield (i,), r

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="rfqs", descending=True)
    return Reply({"rfqs": [_rfq_out(sim, r, account) for r in page], "cursor": cursor})


async def create_rfq(call: RestCall) -> Reply:
    sim = call.sim
    b = await call.body()
    if b.integer("subaccount") not in (None, 0):
        raise bad_field("subaccount", "the simulator models only the primary subaccount 0")
    ticker = b.required_text("market_ticker")
    rest_remainder = b.flag("rest_remainder")
    if rest_remainder is None:
        raise bad_field("rest_remainder", "is required (true or false)")
    contracts = b.count("contracts_fp")
    if contracts is None and b.has("contracts"):
        whole = b.integer("contracts")
        contracts = None if whole is None else whole * COUNT_SCALE
    target = b.price("target_cost_dollars")
    target_micros = target * 100 if target is not None else None
    if target_micros is None and b.has("target_cost_centi_cents"):
        centi = b.integer("target_cost_centi_cents")
        target_micros = None if centi is None else centi * _MICROS_PER_CENTI_CENT
    if (contracts is None) == (target_micros is None):
        raise bad_field("contracts_fp", "give exactly one of contracts_fp (or contracts) and target_cost_dollars")
    account, replace = call.account, bool(b.flag("replace_existing"))
    view = sim.do(
        lambda e: e.create_rfq(
            account,
            ticker,
            contracts_units=contracts,
            target_cost_micros=target_micros,
            rest_remainder=rest_remainder,
            replace_existing=replace,
        )
    )
    return Reply({"id": view.rfq_id}, status=201)


async def get_rfq(call: RestCall) -> Reply:
    sim = call.sim
    return Reply({"rfq": _rfq_out(sim, _find_rfq(sim, call.param("rfq_id")), call.account)})


async def delete_rfq(call: RestCall) -> Reply:
    sim = call.sim
    account, rfq_id = call.account, call.param("rfq_id")
    _find_rfq(sim, rfq_id)
    sim.do(lambda e: e.delete_rfq(account, rfq_id))
    return Reply(status=204)


# ------------------------------------------------------------------------------ quotes


async def get_quotes(call: RestCall) -> Reply:
    sim = call.sim
    engine = sim.engine
    q = call.query
    account = call.account
    limit = q.limit(default=500, hi=500)
    status = q.choice("status", _QUOTE_STATUSES)
    rfq_id = q.text("rfq_id")
    mine = q.choice("user_filter", ("self",)) == "self"
    on_mine = q.choice("rfq_user_filter", ("self",)) == "self"
    creator, rfq_creator = q.text("quote_creator_user_id"), q.text("rfq_creator_user_id")
    min_ts, max_ts = q.integer("min_ts"), q.integer("max_ts")
    quotes = engine.quotes(account=account, rfq_id=rfq_id)

    def matching() -> Iterator[tuple[tuple[int, ...], QuoteView]]:
        for i in range(len(quotes) - 1, -1, -1):
            x = quotes[i]
            if status is not None and x.status != status:
                continue
            if (mine and x.creator != account) or (on_mine and x.rfq_creator != account):
                continue
            if (creator is not None and user_id(x.creator) != creator) or (
                rfq_creator is not None and user_id(x.rfq_creator) != rfq_creator
            ):
                continue
            seconds = x.updated_ts_ms // 1000
            if (min_ts is not None and seconds < min_ts) or (max_ts is not None and seconds > max_ts):
                continue
            yield (i,), x

    # Positions index the filtered list: it only grows at the end, like the engine's.
    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="quotes", descending=True)
    return Reply({"quotes": [_quote_out(sim, x) for x in page], "cursor": cursor})


async def create_quote(call: RestCall) -> Reply:
    sim = call.sim
    b = await call.body()
    if b.integer("subaccount") not in (None, 0):
        raise bad_field("subaccount", "the simulator models only the primary subaccount 0")
    rfq_id = b.required_text("rfq_id")
    yes_bid, no_bid = b.price("yes_bid", required=True), b.price("no_bid", required=True)
    assert yes_bid is not None and no_bid is not None
    rest_remainder = b.flag("rest_remainder")
    if rest_remainder is None:
        raise bad_field("rest_remainder", "is required (true or false)")
    _find_rfq(sim, rfq_id)
    account = call.account
    quote = sim.do(
        lambda e: e.create_quote(
            account, rfq_id, yes_bid_ticks=yes_bid, no_bid_ticks=no_bid, rest_remainder=rest_remainder
        )
    )
    return Reply({"id": quote.quote_id}, status=201)


def _rfq_id_of(sim: Simulator, call: RestCall) -> str | None:
    return call.request.match_info.get("rfq_id")


async def get_quote(call: RestCall) -> Reply:
    sim = call.sim
    return Reply(
        {"quote": _quote_out(sim, _visible_quote(sim, call.account, call.param("quote_id"), _rfq_id_of(sim, call)))}
    )


async def delete_quote(call: RestCall) -> Reply:
    sim = call.sim
    account = call.account
    quote = _visible_quote(sim, account, call.param("quote_id"), _rfq_id_of(sim, call))
    sim.do(lambda e: e.delete_quote(account, quote.quote_id))
    return Reply(status=204)


async def accept_quote(call: RestCall) -> Reply:
    sim = call.sim
    account = call.account
    quote = _visible_quote(sim, account, call.param("quote_id"), _rfq_id_of(sim, call))
    side = (await call.body()).choice("accepted_side", ("yes", "no"), required=True)
    accepted: OutcomeSide = "yes" if side == "yes" else "no"
    sim.do(lambda e: e.accept_quote(account, quote.quote_id, accepted))
    return Reply(status=204)


async def confirm_quote(call: RestCall) -> Reply:
    sim = call.sim
    account = call.account
    quote = _visible_quote(sim, account, call.param("quote_id"), _rfq_id_of(sim, call))
    sim.do(lambda e: e.confirm_quote(account, quote.quote_id))
    return Reply(status=204)
