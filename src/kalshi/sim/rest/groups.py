"""Order groups over REST (``/portfolio/order_groups``): create, list, read, limit, reset, trigger, delete.

A group caps the contracts its orders may match per rolling 15 s; reaching the cap triggers it (its orders
are cancelled and new ones refused until reset). Changes run through ``sim.do`` and so reach the
``order_group_updates`` WebSocket channel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kalshi._fixed import COUNT_SCALE, format_count
from kalshi.sim.rest.common import Body, Reply, RestCall, bad_field
from kalshi.sim.rest.views import group_json

if TYPE_CHECKING:
    pass

__all__ = [
    "create_group",
    "delete_group",
    "get_group",
    "get_groups",
    "reset_group",
    "trigger_group",
    "update_limit",
]


def _limit_units(body: Body) -> int:
    """``contracts_limit_fp`` (preferred) or the legacy whole-contract ``contracts_limit``, as count units.

    Raises:
        RestError: 400 when neither is given or the value is not positive.
    """
    units = body.count("contracts_limit_fp")
    if units is None:
        whole = body.integer("contracts_limit")
        if whole is None:
            raise bad_field("contracts_limit_fp", "give contracts_limit_fp (or contracts_limit)")
        units = whole * COUNT_SCALE
    if units <= 0:
        raise bad_field("contracts_limit_fp", "must be a positive number of contracts")
    return units


async def get_groups(call: RestCall) -> Reply:
    engine = call.sim.engine
    call.query.subaccount()
    return Reply({"order_groups": [group_json(g) for g in engine.order_groups(call.account)]})


async def create_group(call: RestCall) -> Reply:
    sim = call.sim
    body = await call.body()
    if body.integer("subaccount") not in (None, 0):
        raise bad_field("subaccount", "the simulator models only the primary subaccount 0")
    units = _limit_units(body)
    account = call.account
    group = sim.do(lambda e: e.create_order_group(account, units))
    return Reply({"order_group_id": group.order_group_id, "subaccount": 0, "exchange_index": 0}, status=201)


async def get_group(call: RestCall) -> Reply:
    engine = call.sim.engine
    call.query.subaccount()
    g = engine.order_group(call.account, call.param("order_group_id"))
    return Reply(
        {
            "is_auto_cancel_enabled": g.is_auto_cancel_enabled,
            "contracts_limit_fp": format_count(g.contracts_limit_units),
            "orders": list(g.order_ids),
            "exchange_index": 0,
        }
    )


async def delete_group(call: RestCall) -> Reply:
    sim = call.sim
    call.query.subaccount()
    account, group_id = call.account, call.param("order_group_id")
    sim.do(lambda e: e.delete_order_group(account, group_id))
    return Reply({})


async def reset_group(call: RestCall) -> Reply:
    sim = call.sim
    call.query.subaccount()
    account, group_id = call.account, call.param("order_group_id")
    sim.do(lambda e: e.reset_order_group(account, group_id))
    return Reply({})


async def trigger_group(call: RestCall) -> Reply:
    sim = call.sim
    call.query.subaccount()
    account, group_id = call.account, call.param("order_group_id")
    sim.do(lambda e: e.trigger_order_group(account, group_id))
    return Reply({})


async def update_limit(call: RestCall) -> Reply:
    sim = call.sim
    call.query.subaccount()
    units = _limit_units(await call.body())
    account, group_id = call.account, call.param("order_group_id")
    sim.do(lambda e: e.update_order_group_limit(account, group_id, units))
    return Reply({})
