"""Exchange instances over REST: intra-exchange instance transfers and the target balance allocation.

The simulator runs the ``event_contract`` instance; ``margined`` is a cash bucket of the account (see
:mod:`kalshi.sim.engine.settings`). A transfer to ``margined`` takes available cash from the event-contract
balance and one back returns it, so ``GET /portfolio/balance`` shows every transfer at once.
"""

from __future__ import annotations

from typing import Any, Final

from kalshi.sim.engine.settings import InstanceTransfer
from kalshi.sim.engine.subaccounts import owner_of
from kalshi.sim.rest.common import Reply, RestCall, RestError, bad_field, money, paginate

__all__ = ["get_allocation", "get_transfer", "get_transfers", "set_allocation", "transfer"]

_INSTANCES: Final = ("event_contract", "margined")
_RESERVATIONS: Final = ("none", "max", "sum")


def _transfer_json(t: InstanceTransfer) -> dict[str, Any]:
    return {
        "transfer_id": t.transfer_id,
        "source": t.source,
        "destination": t.destination,
        "source_exchange_shard": 0,
        "destination_exchange_shard": 0,
        "amount": money(t.amount_micros),
        "status": "complete",
        "created_ts": t.created_ms // 1000,
    }


async def transfer(call: RestCall) -> Reply:
    body = await call.body()
    source = body.choice("source", _INSTANCES, required=True)
    destination = body.choice("destination", _INSTANCES, required=True)
    if source == destination:
        raise bad_field("destination", "must differ from source")
    amount = body.integer("amount")
    if amount is None or amount <= 0 or amount > 10**15:
        raise bad_field("amount", "must be a positive number of cents")
    for name in ("source_exchange_shard", "destination_exchange_shard", "source_subaccount", "destination_subaccount"):
        if body.integer(name) not in (None, 0):
            raise bad_field(name, "the simulator has one shard and moves the primary subaccount (0) only")
    account = owner_of(call.account)
    engine = call.sim.engine
    settings = engine.settings.of(account)
    micros = amount * 10_000
    if source == "margined":
        if micros > settings.margined_micros:
            raise RestError(400, "insufficient_balance", "the margined instance holds less than amount")
        call.sim.do(lambda e: e.deposit(account, micros))
        settings.margined_micros -= micros
    else:
        call.sim.do(lambda e: e.deposit(account, -micros))  # insufficient_balance if it is not available
        settings.margined_micros += micros
    to_margined = source == "event_contract"
    record = InstanceTransfer(
        engine.new_id(),
        account,
        "event_contract" if to_margined else "margined",
        "margined" if to_margined else "event_contract",
        micros,
        call.sim.clock_ms(),
    )
    engine.settings.record_transfer(record)
    return Reply({"transfer_id": record.transfer_id})


async def get_transfers(call: RestCall) -> Reply:
    q = call.query
    limit = q.limit(default=100, hi=500)
    transfers = call.sim.engine.settings.transfers(owner_of(call.account))
    newest_first = [((i,), transfers[i]) for i in range(len(transfers) - 1, -1, -1)]
    page, cursor = paginate(
        newest_first, limit=limit, cursor=q.text("cursor"), scope="instance-transfers", descending=True
    )
    return Reply({"transfers": [_transfer_json(t) for t in page], "cursor": cursor})


async def get_transfer(call: RestCall) -> Reply:
    wanted = call.param("transfer_id")
    for t in call.sim.engine.settings.transfers(owner_of(call.account)):
        if t.transfer_id == wanted:
            return Reply({"transfer": _transfer_json(t)})
    raise RestError(404, "transfer_not_found", f"no transfer {wanted[:60]!r} for this account")


async def get_allocation(call: RestCall) -> Reply:
    settings = call.sim.engine.settings.of(owner_of(call.account))
    return Reply(
        {
            "allocations": [{"exchange_index": i, "percent": p} for i, p in sorted(settings.allocations.items())],
            "resting_margin_reservation": settings.resting_margin_reservation,
        }
    )


async def set_allocation(call: RestCall) -> Reply:
    body = await call.body()
    items = body.objects("allocations")
    allocations: dict[int, int] = {}
    for item in items:
        index, percent = item.integer("exchange_index"), item.integer("percent")
        if index != 0:
            raise bad_field(item.prefix + "exchange_index", "the simulator has one exchange shard, 0")
        if percent is None or not 0 <= percent <= 100:
            raise bad_field(item.prefix + "percent", "must be a whole percentage 0..100")
        allocations[index] = percent
    if sum(allocations.values()) != 100:
        raise bad_field("allocations", f"percentages must add up to 100, got {sum(allocations.values())}")
    reservation = body.choice("resting_margin_reservation", _RESERVATIONS)
    settings = call.sim.engine.settings.of(owner_of(call.account))
    settings.allocations = allocations
    if reservation is not None:
        settings.resting_margin_reservation = (
            "max" if reservation == "max" else "sum" if reservation == "sum" else "none"
        )
    return Reply({})
