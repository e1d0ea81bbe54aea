"""Block trades over REST: propose, list, accept (executes once buyer and seller both accepted).

Parties are named by their user ids (the ``user_id`` orders and fills show); prices are in centi-cents
(ticks of $0.0001) and counts in centi-contracts (units of 1/100), the engine's own units.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Final

from kalshi.sim.engine.block_trades import BlockTradeProposal
from kalshi.sim.engine.subaccounts import owner_of
from kalshi.sim.rest.common import Body, Reply, RestCall, bad_field, iso, paginate
from kalshi.sim.ws.feeds import user_id

__all__ = ["accept_proposal", "get_proposals", "propose"]

_INT64: Final = 2**63 - 1


def _account_of_user(call: RestCall, name: str, uid: str) -> str:
    for account in call.sim.engine.accounts():
        if owner_of(account) == account and user_id(account) == uid:
            return account
    raise bad_field(name, f"no user {uid[:60]!r} (use the user_id shown on that user's orders)")


def _timestamp_ms(body: Body, name: str) -> int:
    text = body.required_text(name)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_field(name, f"{text[:40]!r} is not an RFC 3339 date-time like 2026-01-01T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise bad_field(name, "needs a time zone (end it with Z)")
    return int(parsed.timestamp() * 1000)


def _positive(body: Body, name: str) -> int:
    value = body.integer(name)
    if value is None:
        raise bad_field(name, "is required")
    if not 0 < value <= _INT64:
        raise bad_field(name, f"must be positive, got {value}")
    return value


def _proposal_json(p: BlockTradeProposal, now_ms: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": p.proposal_id,
        "proposer_user_id": user_id(p.proposer),
        "buyer_user_id": user_id(p.buyer),
        "seller_user_id": user_id(p.seller),
        "market_ticker": p.ticker,
        "price_centi_cents": p.price_ticks,
        "centicount": p.count_units,
        "maker_side": p.maker_side,
        "expiration_ts": iso(p.expiration_ms),
        "status": p.status(now_ms),
        "created_ts": iso(p.created_ms),
        "updated_ts": iso(p.updated_ms),
        "buyer_accepted": p.buyer_accepted_ms is not None,
        "seller_accepted": p.seller_accepted_ms is not None,
    }
    for name, ts in (
        ("buyer_accepted_ts", p.buyer_accepted_ms),
        ("seller_accepted_ts", p.seller_accepted_ms),
        ("executed_ts", p.executed_ms),
    ):
        if ts is not None:
            out[name] = iso(ts)
    if p.buyer_order_id is not None:
        out["buyer_order_id"] = p.buyer_order_id
    if p.seller_order_id is not None:
        out["seller_order_id"] = p.seller_order_id
    return out


async def propose(call: RestCall) -> Reply:
    proposer = owner_of(call.account)
    body = await call.body()
    buyer = _account_of_user(call, "buyer_user_id", body.required_text("buyer_user_id"))
    seller = _account_of_user(call, "seller_user_id", body.required_text("seller_user_id"))
    for name in ("buyer_subaccount", "seller_subaccount"):
        if body.integer(name) not in (None, 0):
            raise bad_field(name, "block trades settle in the primary subaccount (0) in the simulator")
    ticker = body.required_text("market_ticker")
    price, count = _positive(body, "price_centi_cents"), _positive(body, "centicount")
    maker = body.choice("maker_side", ("yes", "no"), required=True)
    expiration = _timestamp_ms(body, "expiration_ts")
    p = call.sim.do(
        lambda e: e.propose_block_trade(
            proposer, buyer=buyer, seller=seller, ticker=ticker, price_ticks=price, count_units=count,
            maker_side="yes" if maker == "yes" else "no", expiration_ms=expiration,
        )
    )  # fmt: skip
    return Reply({"block_trade_proposal_id": p.proposal_id}, status=201)


async def get_proposals(call: RestCall) -> Reply:
    engine = call.sim.engine
    account = owner_of(call.account)
    q = call.query
    limit = q.limit(default=100, hi=100)
    ticker, status = q.text("market_ticker"), q.text("status")
    proposals = engine.block_trade_proposals(account)

    def matching() -> Iterator[tuple[tuple[int, ...], BlockTradeProposal]]:
        for i, p in enumerate(proposals):
            if (ticker is None or p.ticker == ticker) and (status is None or p.status(call.sim.clock_ms()) == status):
                yield (i,), p

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="block-trades")
    return Reply({"block_trade_proposals": [_proposal_json(p, call.sim.clock_ms()) for p in page], "cursor": cursor})


async def accept_proposal(call: RestCall) -> Reply:
    account = owner_of(call.account)
    body = await call.body(optional=True)
    if body.integer("subaccount") not in (None, 0):
        raise bad_field("subaccount", "block trades settle in the primary subaccount (0) in the simulator")
    proposal_id = call.param("block_trade_proposal_id")
    call.sim.do(lambda e: e.accept_block_trade(account, proposal_id))
    return Reply(None, status=204)
