"""Subaccounts over REST: create, transfer, balances, netting; and which account a call acts for.

:func:`act_for_subaccount` runs in the dispatcher before the handler: for the order and portfolio
operations that take a ``subaccount`` (query parameter, body field, or the same one on every item of a batch),
the call then acts as that subaccount's engine account, so its orders, fills, positions and balance are the
subaccount's. Without one they act as the primary: cancel, amend and decrease included (their ``subaccount`` is
``SubaccountQueryDefaultPrimary``, "Defaults to 0"), so another subaccount's order is a 404 there. The two calls
on one order by id that take no ``subaccount`` (GetOrder, GetOrderQueuePosition) act as the subaccount holding
it. A key created for a subaccount acts for it only: "If supplied, `subaccount` must match the key's
restriction", else a 400, and it sees no other subaccount's order by id. Subaccount numbers the account never
created are a 400.

The list operations whose ``subaccount`` is the spec's ``SubaccountQuery`` ("If omitted, defaults to all
subaccounts": orders, fills, settlements, their historical lists, cancel-all) read every subaccount of the member
when the call names none (:func:`listed_accounts`), merged in time order (:func:`merged`); those with
``SubaccountQueryDefaultPrimary`` ("Defaults to 0": balance, positions, queue positions) read the primary.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from kalshi.sim.engine import EngineError
from kalshi.sim.engine.subaccounts import SubaccountTransfer, number_of, owner_of
from kalshi.sim.rest.common import Body, Reply, RestCall, RestError, bad_field, money, paginate

__all__ = [
    "ORDER_SCOPED",
    "SUBACCOUNT_SCOPED",
    "act_for_subaccount",
    "create_subaccount",
    "get_balances",
    "get_netting",
    "get_transfers",
    "listed_accounts",
    "merged",
    "transfer",
    "update_netting",
]

# Operations whose ``subaccount`` selects the acting account (the spec's order and portfolio calls).
SUBACCOUNT_SCOPED: Final = frozenset(
    {
        "GetOrders", "GetOrderQueuePositions", "CancelAllOrders", "CancelOrderV2", "AmendOrderV2",
        "DecreaseOrderV2", "CreateOrderV2", "BatchCreateOrdersV2", "BatchCancelOrdersV2", "GetBalance",
        "GetPositions", "GetSettlements", "GetFills", "GetFillsHistorical", "GetHistoricalOrders",
        "GetHistoricalPositions",
    }
)  # fmt: skip


def _number(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 63:
        raise bad_field(name, f"must be a subaccount number 0..63, got {value!r}"[:120])
    return value


async def _requested(call: RestCall, default: int) -> int | None:
    """The subaccount the call names; ``default`` is the one an item naming none belongs to."""
    number = call.query.integer("subaccount", lo=0, hi=63)
    if number is not None or not call.request.can_read_body:
        return number
    body = await call.body(optional=True)
    number = _number(body.data.get("subaccount"), "subaccount")
    items = body.data.get("orders")
    if isinstance(items, list):
        found = {
            _number(item.get("subaccount"), f"orders[{i}].subaccount")
            for i, item in enumerate(items)
            if isinstance(item, dict)
        }
        named = found - {None}
        if named and len(named | ({default} if None in found else set())) > 1:
            # An item naming no subaccount is the default's (the primary's): it must not go with its neighbours.
            raise bad_field("orders", "every order of one batch must use the same subaccount")
        if named:
            number = named.pop()
    return number


# Operations on one order by id without a ``subaccount`` parameter: they act as the subaccount holding the order.
# (CancelOrderV2, AmendOrderV2 and DecreaseOrderV2 have one, defaulting to the primary: SUBACCOUNT_SCOPED.)
ORDER_SCOPED: Final = frozenset({"GetOrder", "GetOrderQueuePosition"})


def _order_holder(call: RestCall, owner: str) -> str | None:
    order_id = call.request.match_info.get("order_id")
    if order_id is None:
        return None
    try:
        holder = call.sim.engine.order(order_id).account
    except EngineError:
        return None  # the handler answers the 404
    return holder if owner_of(holder) == owner else None


async def act_for_subaccount(call: RestCall) -> None:
    """Make a signed call of a subaccount-scoped operation act as the subaccount it names.

    Raises:
        RestError: 400 for a malformed subaccount number.
        EngineError: ``subaccount_not_found`` (400) for one the account never created.
    """
    if call.account_id is None:
        return
    engine = call.sim.engine
    owner = owner_of(call.account_id)
    record = engine.api_keys.get(call.key_id) if call.key_id is not None else None
    bound = record.subaccount if record is not None else None  # the key's restriction, if any
    operation = call.op.operation_id
    if operation in ORDER_SCOPED and bound is None:
        holder = _order_holder(call, owner)
        if holder is not None:
            call.account_id = holder
            call.subaccount = number_of(holder)
            return
    if operation not in SUBACCOUNT_SCOPED and operation not in ORDER_SCOPED:
        return
    number = await _requested(call, 0 if bound is None else bound) if operation in SUBACCOUNT_SCOPED else None
    if bound is not None:
        if number is not None and number != bound:
            raise bad_field("subaccount", f"this API key is restricted to subaccount {bound}; omit it or pass {bound}")
        number = bound
    if number is None:
        return
    call.account_id = engine.subaccounts.resolve(owner, number)
    call.subaccount = number


T = TypeVar("T")


def listed_accounts(call: RestCall) -> list[str]:
    """The engine accounts a ``SubaccountQuery`` operation reads: the one the call acts for when it names a
    subaccount (or its key is bound to one), else every subaccount of the member, the primary first.

    Raises:
        RestError: 401 for an unsigned call.
    """
    account = call.account
    if call.subaccount is not None:
        return [account]
    owner = owner_of(account)
    subaccounts = call.sim.engine.subaccounts
    return [subaccounts.resolve(owner, number) for number in subaccounts.numbers(owner)]


def merged(
    accounts: Sequence[str], rows_of: Callable[[str], Sequence[T]], ts_ms: Callable[[T], int]
) -> list[tuple[tuple[int, ...], T]]:
    """The rows of several accounts, oldest first, each keyed for :func:`~kalshi.sim.rest.common.paginate` by
    ``(ts_ms, subaccount number, index in its account)``: same-millisecond rows of two subaccounts come in
    subaccount order, as do one account's rows of the same millisecond."""
    out: list[tuple[tuple[int, ...], T]] = [
        ((ts_ms(row), number_of(a), i), row) for a in accounts for i, row in enumerate(rows_of(a))
    ]
    out.sort(key=lambda pair: pair[0])
    return out


def _owner(call: RestCall) -> str:
    return owner_of(call.account)


def _exchange_index(body: Body) -> None:
    if body.integer("exchange_index") not in (None, 0):
        raise bad_field("exchange_index", "the simulator has one exchange shard, 0")


async def create_subaccount(call: RestCall) -> Reply:
    body = await call.body(optional=True)
    _exchange_index(body)
    sim = call.sim
    number = sim.do(lambda e: e.create_subaccount(_owner(call)))
    return Reply({"subaccount_number": number}, status=201)


def _cents(body: Body, name: str) -> int:
    value = body.integer(name)
    if value is None:
        raise bad_field(name, "is required")
    if value <= 0 or value > 10**15:
        raise bad_field(name, f"must be a positive number of cents, got {value}")
    return value


def _required_number(body: Body, name: str) -> int:
    value = _number(body.data.get(name), name)
    if value is None:
        raise bad_field(name, "is required")
    return value


async def transfer(call: RestCall) -> Reply:
    body = await call.body()
    _exchange_index(body)
    client_id = body.required_text("client_transfer_id")
    source, target = _required_number(body, "from_subaccount"), _required_number(body, "to_subaccount")
    amount = _cents(body, "amount_cents")
    owner = _owner(call)
    done = call.sim.do(lambda e: e.transfer_between_subaccounts(owner, client_id, source, target, amount))
    if (done.from_subaccount, done.to_subaccount, done.amount_cents) != (source, target, amount):
        raise RestError(
            409,
            "duplicate_client_transfer_id",
            "client_transfer_id was already used for another transfer; use a new one",
        )
    return Reply({})


async def get_balances(call: RestCall) -> Reply:
    engine = call.sim.engine
    owner = _owner(call)
    out = []
    for number in engine.subaccounts.numbers(owner):
        b = engine.balance(engine.subaccounts.resolve(owner, number))
        out.append(
            {
                "subaccount_number": number,
                "exchange_index": 0,
                "balance": money(b.available_micros),
                "updated_ts": b.updated_ts_ms // 1000,
            }
        )
    return Reply({"subaccount_balances": out})


def _transfer_json(t: SubaccountTransfer) -> dict[str, object]:
    return {
        "transfer_id": t.transfer_id,
        "from_subaccount": t.from_subaccount,
        "to_subaccount": t.to_subaccount,
        "amount_cents": t.amount_cents,
        "created_ts": t.created_ms // 1000,
        "exchange_index": 0,
    }


async def get_transfers(call: RestCall) -> Reply:
    q = call.query
    limit = q.limit(default=100, hi=1000)
    transfers = call.sim.engine.subaccounts.transfers(_owner(call))
    newest_first = [((i,), transfers[i]) for i in range(len(transfers) - 1, -1, -1)]
    page, cursor = paginate(newest_first, limit=limit, cursor=q.text("cursor"), scope="sub-transfers", descending=True)
    return Reply({"transfers": [_transfer_json(t) for t in page], "cursor": cursor})


async def get_netting(call: RestCall) -> Reply:
    configs = call.sim.engine.subaccounts.netting(_owner(call))
    return Reply(
        {"netting_configs": [{"subaccount_number": n, "enabled": on, "exchange_index": 0} for n, on in configs]}
    )


async def update_netting(call: RestCall) -> Reply:
    body = await call.body()
    number = _required_number(body, "subaccount_number")
    enabled = body.flag("enabled")
    if enabled is None:
        raise bad_field("enabled", "is required (true or false)")
    owner = _owner(call)
    call.sim.do(lambda e: e.subaccounts.set_netting(owner, number, enabled))
    return Reply(None)
