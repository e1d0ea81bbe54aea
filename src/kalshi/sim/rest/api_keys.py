"""API keys over REST: list, create (bring a public key), generate (the simulator makes the pair), delete;
and the account's API usage level (volume progress, upgrade).

A key created or generated here signs the very next request: it is registered with the simulator's
:class:`~kalshi.sim.keys.KeyRegistry` and bound to the caller's account at once; deleting it makes the next
request signed with it a 401. The generated private key is returned once and never logged or kept.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from kalshi._fixed import format_count
from kalshi.auth import generate_private_key_pem
from kalshi.errors import KalshiAuthError
from kalshi.sim.engine.api_keys import SCOPES, ApiKeyRecord
from kalshi.sim.engine.settings import LEVEL_GOALS_UNITS, USAGE_LEVELS
from kalshi.sim.engine.subaccounts import owner_of
from kalshi.sim.rest.common import Body, Reply, RestCall, RestError, bad_field

__all__ = ["create_key", "delete_key", "generate_key", "get_keys", "upgrade_usage_level", "volume_progress"]

_KEY_TYPES: Final = ("rsa", "ed25519")
_MONTH_MS: Final = 30 * 86_400_000


def _key_json(k: ApiKeyRecord) -> dict[str, Any]:
    return {
        "api_key_id": k.api_key_id,
        "name": k.name,
        "scopes": list(k.scopes),
        "subaccount": k.subaccount,
        "fcm_subtrader_id": k.fcm_subtrader_id,
    }


async def get_keys(call: RestCall) -> Reply:
    owner = owner_of(call.account)
    engine = call.sim.engine
    subtrader = call.query.text("fcm_subtrader_id")
    keys = engine.api_keys.owned(owner)
    if call.key_id is not None and engine.api_keys.get(call.key_id) is None:
        # The key this request is signed with was registered outside the API (the simulator's own keys).
        keys.insert(0, ApiKeyRecord(call.key_id, owner, "simulator key", ("read", "write"), None, None, 0))
    if subtrader is not None:
        keys = [k for k in keys if k.fcm_subtrader_id == subtrader]
    return Reply({"api_keys": [_key_json(k) for k in keys], "api_key_region_expiration_ts": None})


def _scopes(body: Body) -> tuple[str, ...]:
    raw = body.data.get("scopes")
    if raw is None:
        return ("read", "write")
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
        raise bad_field("scopes", f"must be a non-empty array of scopes ({', '.join(SCOPES)})")
    unknown = [s for s in raw if s not in SCOPES]
    if unknown:
        raise bad_field("scopes", f"{unknown[0][:40]!r} is not one of {', '.join(SCOPES)}")
    return tuple(dict.fromkeys(raw))


def _record(call: RestCall, body: Body, key_id: str) -> ApiKeyRecord:
    owner = owner_of(call.account)
    engine = call.sim.engine
    name = body.required_text("name")
    if len(name) > 100:
        raise bad_field("name", "at most 100 characters")
    subaccount = body.integer("subaccount")
    if subaccount is not None:
        engine.subaccounts.resolve(owner, subaccount)  # subaccount_not_found for one never created
    subtrader = body.text("fcm_subtrader_id")
    if subtrader is not None and subtrader not in {s.subtrader_id for s in engine.fcm.of(owner)}:
        raise bad_field("fcm_subtrader_id", "is not a subtrader of this account (create it with POST /fcm/subtraders)")
    return ApiKeyRecord(key_id, owner, name, _scopes(body), subaccount, subtrader, call.sim.clock_ms())


def _install(call: RestCall, record: ApiKeyRecord, public_pem: str | bytes) -> None:
    sim = call.sim
    try:
        sim.register_key(record.api_key_id, public_pem, account=record.fcm_subtrader_id or record.owner)
    except KalshiAuthError as exc:
        raise bad_field("public_key", f"not a usable RSA or Ed25519 public key in PEM form ({exc})") from None
    sim.engine.api_keys.add(record)


async def create_key(call: RestCall) -> Reply:
    body = await call.body()
    public_pem = body.required_text("public_key")
    record = _record(call, body, call.sim.engine.new_id())
    _install(call, record, public_pem)
    return Reply({"api_key_id": record.api_key_id, "warning": None}, status=201)


async def generate_key(call: RestCall) -> Reply:
    body = await call.body()
    kind = body.choice("key_type", _KEY_TYPES) or "rsa"
    key_type: Literal["rsa", "ed25519"] = "ed25519" if kind == "ed25519" else "rsa"
    record = _record(call, body, call.sim.engine.new_id())
    private_pem, public_pem = generate_private_key_pem(key_type)
    _install(call, record, public_pem)
    return Reply(
        {"api_key_id": record.api_key_id, "key_type": key_type, "private_key": private_pem.decode(), "warning": None},
        status=201,
    )


async def delete_key(call: RestCall) -> Reply:
    sim = call.sim
    key_id = call.param("api_key")
    sim.engine.api_keys.remove(owner_of(call.account), key_id)
    sim.keys.unregister(key_id)
    return Reply(None, status=204)


def _trailing_volume(call: RestCall, account: str) -> int:
    engine = call.sim.engine
    since = call.sim.clock_ms() - _MONTH_MS
    return sum(f.count_units for f in engine.fills(account) if f.ts_ms >= since)


async def volume_progress(call: RestCall) -> Reply:
    account = owner_of(call.account)
    goals = [
        {"level": level, "earn_volume_goal_fp": format_count(earn), "keep_volume_goal_fp": format_count(keep)}
        for level, (earn, keep) in LEVEL_GOALS_UNITS.items()
    ]
    return Reply(
        {
            "volume_progress": [
                {
                    "computed_ts": call.sim.clock_ms() // 1000,
                    "trailing_30d_volume_fp": format_count(_trailing_volume(call, account)),
                    "goals": goals,
                }
            ]
        }
    )


async def upgrade_usage_level(call: RestCall) -> Reply:
    account = owner_of(call.account)
    settings = call.sim.engine.settings.of(account)
    current = USAGE_LEVELS.index(settings.usage_level)
    if current + 1 >= len(USAGE_LEVELS):
        raise RestError(403, "already_highest_level", f"the account is on {settings.usage_level}, the highest level")
    target = USAGE_LEVELS[current + 1]
    earn, _keep = LEVEL_GOALS_UNITS[target]
    volume = _trailing_volume(call, account)
    if volume < earn:
        raise RestError(
            403,
            "volume_goal_not_met",
            f"{target} needs {format_count(earn)} contracts traded in 30 days, the account has {format_count(volume)}",
        )
    settings.usage_level = target
    return Reply(None, status=201)
