"""Client commands (subscribe, unsubscribe, update_subscription, list_subscriptions) as msgspec Structs.

Commands are a tagged union on ``cmd``; encoding omits every parameter left as None, so the wire carries only
what was set. The simulator decodes them with :data:`COMMAND_DECODER`.
"""

from __future__ import annotations

from typing import ClassVar, Final

import msgspec

from kalshi.ws.models._base import CmdId, Sid

__all__ = [
    "COMMAND_DECODER",
    "COMMAND_ENCODER",
    "UPDATE_ACTIONS",
    "ClientCommand",
    "Command",
    "ListSubscriptionsCommand",
    "SubscribeCommand",
    "SubscribeParams",
    "UnsubscribeCommand",
    "UnsubscribeParams",
    "UpdateSubscriptionCommand",
    "UpdateSubscriptionParams",
]

UPDATE_ACTIONS: Final = (
    "add_markets",
    "delete_markets",
    "get_snapshot",
    "subscribe_indices",
    "unsubscribe_indices",
    "indexlist",
    "subscribe_underlyings",
    "unsubscribe_underlyings",
    "underlying_list",
)


class _Params(msgspec.Struct, frozen=True, gc=False, kw_only=True, omit_defaults=True):
    pass


class SubscribeParams(_Params, frozen=True, kw_only=True):
    """Every parameter of ``subscribe``. Which ones a channel accepts is the server's call (see the spec)."""

    channels: list[str]
    market_ticker: str | None = None
    market_tickers: list[str] | None = None
    market_id: str | None = None
    market_ids: list[str] | None = None
    send_initial_snapshot: bool | None = None
    skip_ticker_ack: bool | None = None
    use_yes_price: bool | None = None
    user_filter: str | None = None
    shard_factor: int | None = None
    shard_key: int | None = None
    index_ids: list[str] | None = None
    underlying_tickers: list[str] | None = None


class UnsubscribeParams(_Params, frozen=True, kw_only=True):
    """Parameters of ``unsubscribe``."""

    sids: list[Sid]


class UpdateSubscriptionParams(_Params, frozen=True, kw_only=True):
    """Parameters of ``update_subscription``: ``sid`` or a one-element ``sids``, and an ``action``
    (:data:`UPDATE_ACTIONS`) with the markets, index ids or underlyings it applies to."""

    action: str
    sid: Sid | None = None
    sids: list[Sid] | None = None
    market_ticker: str | None = None
    market_tickers: list[str] | None = None
    market_id: str | None = None
    market_ids: list[str] | None = None
    send_initial_snapshot: bool | None = None
    index_ids: list[str] | None = None
    underlying_tickers: list[str] | None = None


class Command(msgspec.Struct, tag_field="cmd", frozen=True, gc=False, kw_only=True, omit_defaults=True):
    """Base of client commands. ``id`` 0 means "not assigned yet": the protocol assigns ids when sending."""

    cmd: ClassVar[str]
    id: CmdId = 0


class SubscribeCommand(Command, tag="subscribe", frozen=True, kw_only=True):
    """``{"cmd": "subscribe", "id": n, "params": {...}}``."""

    cmd = "subscribe"
    params: SubscribeParams


class UnsubscribeCommand(Command, tag="unsubscribe", frozen=True, kw_only=True):
    """``{"cmd": "unsubscribe", "id": n, "params": {"sids": [...]}}``."""

    cmd = "unsubscribe"
    params: UnsubscribeParams


class UpdateSubscriptionCommand(Command, tag="update_subscription", frozen=True, kw_only=True):
    """``{"cmd": "update_subscription", "id": n, "params": {...}}``."""

    cmd = "update_subscription"
    params: UpdateSubscriptionParams


class ListSubscriptionsCommand(Command, tag="list_subscriptions", frozen=True, kw_only=True):
    """``{"cmd": "list_subscriptions", "id": n}``."""

    cmd = "list_subscriptions"


ClientCommand = SubscribeCommand | UnsubscribeCommand | UpdateSubscriptionCommand | ListSubscriptionsCommand

COMMAND_ENCODER: Final = msgspec.json.Encoder()
COMMAND_DECODER: Final[msgspec.json.Decoder[ClientCommand]] = msgspec.json.Decoder(ClientCommand)
