"""Server side of one WebSocket connection, sans-I/O: command frames in, response frames out, subscriptions kept.

:meth:`WsSession.receive` takes one text frame from the client and queues every response (``subscribed``,
``ok``, ``unsubscribed``, ``error``, snapshots, list results) on the connection's :class:`Outbox`, in order.
The subscriptions it creates are registered with the :class:`Hub`, which then queues data frames on the same
outbox, so a snapshot and the deltas that follow it are always in order.

Shapes follow asyncapi.yaml: ``subscribed`` carries no seq; ``ok``, ``unsubscribed`` and subscription-scoped
``error`` use up a seq number of their subscription (errors show it only on sequenced channels); a command
``id`` of 0 or none is not echoed. Every invalid command gets the spec's error code.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import msgspec

from kalshi.errors import WS_ERROR_CODES
from kalshi.sim.ws.fanout import (
    ALL_CHANNELS,
    ALL_MARKER,
    INDEX_CHANNELS,
    MARKET_FILTER_CHANNELS,
    PRIVATE_CHANNELS,
    Hub,
    Outbox,
    Subscription,
)
from kalshi.ws.codes import ErrorCode

__all__ = ["MarketDirectory", "SessionLimits", "WsSession"]


_KNOWN_CHANNELS: Final = frozenset(ALL_CHANNELS)
_MARKET_ACTIONS: Final = frozenset({"add_markets", "delete_markets", "get_snapshot"})
_INDEX_ACTIONS: Final = frozenset({"subscribe_indices", "unsubscribe_indices", "indexlist"})
_UNDERLYING_ACTIONS: Final = frozenset({"subscribe_underlyings", "unsubscribe_underlyings", "underlying_list"})
_LIST_TYPES: Final = {
    "cfbenchmarks_value": b"cfbenchmarks_value_indexlist",
    "cfbenchmarks_value_5hz": b"cfbenchmarks_value_5hz_indexlist",
    "pyth_value": b"pyth_value_underlying_list",
}
_encode = msgspec.json.encode
_decode = msgspec.json.decode


class MarketDirectory(Protocol):
    """What a session needs to know about markets and feeds (implemented by :class:`kalshi.sim.ws.feeds.Feeds`)."""

    def market_id(self, ticker: str) -> str | None:
        """The market's UUID, or None for an unknown ticker."""
        ...

    def ticker_of(self, market_id: str) -> str | None:
        """The ticker of a market UUID, or None."""
        ...

    def all_tickers(self) -> Sequence[str]: ...

    def snapshot_payload(self, ticker: str, *, use_yes_price: bool) -> bytes:
        """The ``msg`` JSON of an ``orderbook_snapshot`` of the current book."""
        ...

    def ticker_payload(self, ticker: str) -> bytes:
        """The ``msg`` JSON of a ``ticker`` message with the market's current state."""
        ...

    def available_indices(self, channel: str) -> Sequence[str]:
        """Index ids (cfbenchmarks) or underlying tickers (pyth) streaming on ``channel``."""
        ...


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Per-connection limits.

    Attributes:
        max_markets_per_subscription: Markets one subscription may name (error 26 beyond).
        command_rate: Commands per second the token bucket refills (error 27 when empty).
        command_burst: Bucket size: commands accepted back to back.
    """

    max_markets_per_subscription: int = 1000
    command_rate: float = 50.0
    command_burst: int = 100


class _CommandError(Exception):
    """Internal: abort a command with an error frame."""

    def __init__(
        self, code: ErrorCode, detail: str | None = None, *, sub: Subscription | None = None, **extra: Any
    ) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail
        self.sub = sub
        self.extra = extra


class WsSession:
    """The subscriptions and command handling of one connection."""

    def __init__(
        self,
        outbox: Outbox,
        hub: Hub,
        directory: MarketDirectory,
        *,
        authenticated: bool,
        limits: SessionLimits | None = None,
        clock: Callable[[], float],
        on_terminated: Callable[[Subscription, ErrorCode], None] | None = None,
    ) -> None:
        """Create the session of a newly accepted connection.

        Args:
            outbox: The connection's frame queue.
            hub: Where subscriptions are registered for data.
            directory: Markets, snapshots and index lists.
            authenticated: Whether the upgrade was signed (private channels need it).
            limits: Market and command-rate limits.
            clock: Monotonic seconds, for the command token bucket.
            on_terminated: Called when a subscription ends with an error (25, 10), e.g. for counting.
        """
        self.outbox = outbox
        self.hub = hub
        self.directory = directory
        self.authenticated = authenticated
        self.limits = limits or SessionLimits()
        self._clock = clock
        self._on_terminated = on_terminated
        self.subscriptions: dict[int, Subscription] = {}
        self._next_sid = 1
        self._tokens = float(self.limits.command_burst)
        self._refilled_at = clock()
        self.commands = 0

    # -- entry points -----------------------------------------------------------------------------------------

    def receive(self, data: str | bytes) -> None:
        """Handle one client text frame; every response is queued on the outbox."""
        self.commands += 1
        try:
            command = _decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError):
            self._error(None, ErrorCode.UNABLE_TO_PROCESS, "message is not valid JSON")
            return
        if not isinstance(command, dict):
            self._error(None, ErrorCode.UNABLE_TO_PROCESS, "a command must be a JSON object")
            return
        cmd_id = command.get("id")
        if cmd_id is None:
            cmd_id = 0
        if type(cmd_id) is not int or cmd_id < 0:
            self._error(None, ErrorCode.UNABLE_TO_PROCESS, "id must be a non-negative integer")
            return
        if not self._take_token():
            self._error(cmd_id, ErrorCode.TOO_MANY_REQUESTS)
            return
        name = command.get("cmd")
        params = command.get("params")
        try:
            if name == "subscribe":
                self._subscribe(cmd_id, params)
            elif name == "unsubscribe":
                self._unsubscribe(cmd_id, params)
            elif name == "update_subscription":
                self._update(cmd_id, params)
            elif name == "list_subscriptions":
                self._list(cmd_id)
            else:
                raise _CommandError(ErrorCode.UNKNOWN_COMMAND, f"unknown command {str(name)[:40]!r}")
        except _CommandError as exc:
            self._error(cmd_id, exc.code, exc.detail, sub=exc.sub, **exc.extra)

    def terminate(self, sub: Subscription, code: ErrorCode) -> None:
        """End a subscription with a terminal error (25 buffer overflow, 10 channel error)."""
        if self.subscriptions.pop(sub.sid, None) is None:
            return
        self.hub.remove(sub)
        self._error(None, code, sub=sub)
        if self._on_terminated is not None:
            self._on_terminated(sub, code)

    def close(self) -> None:
        """The connection is gone: stop every delivery."""
        for sub in self.subscriptions.values():
            self.hub.remove(sub)
        self.subscriptions.clear()
        self.outbox.closed = True

    # -- responses --------------------------------------------------------------------------------------------

    def _send(self, obj: dict[str, Any]) -> None:
        self.outbox.push_control(_encode(obj))

    def _error(
        self,
        cmd_id: int | None,
        code: ErrorCode,
        detail: str | None = None,
        *,
        sub: Subscription | None = None,
        **extra: Any,
    ) -> None:
        frame: dict[str, Any] = {"type": "error"}
        if cmd_id:
            frame["id"] = cmd_id
        if sub is not None:
            frame["sid"] = sub.sid
            if sub.sequenced:
                frame["seq"] = sub.next_seq()
        text = WS_ERROR_CODES[code].name
        msg: dict[str, Any] = {"code": code, "msg": f"{text}: {detail}" if detail else text}
        msg.update(extra)
        frame["msg"] = msg
        self._send(frame)

    def _ack(self, typ: str, cmd_id: int, sub: Subscription, msg: dict[str, Any] | None) -> None:
        frame: dict[str, Any] = {"type": typ}
        if cmd_id:
            frame["id"] = cmd_id
        frame["sid"] = sub.sid
        frame["seq"] = sub.next_seq()
        if msg is not None:
            frame["msg"] = msg
        self._send(frame)

    def _send_snapshot(self, sub: Subscription, ticker: str, cmd_id: int = 0) -> None:
        payload = self.directory.snapshot_payload(ticker, use_yes_price=sub.use_yes_price)
        seq = sub.next_seq()
        if cmd_id:
            frame = b'{"type":"orderbook_snapshot","id":%d,"sid":%d,"seq":%d,"msg":%b}' % (
                cmd_id,
                sub.sid,
                seq,
                payload,
            )
        else:
            frame = b'{"type":"orderbook_snapshot","sid":%d,"seq":%d,"msg":%b}' % (sub.sid, seq, payload)
        self.outbox.push_control(frame)

    def _send_ticker(self, sub: Subscription, ticker: str) -> None:
        payload = self.directory.ticker_payload(ticker)
        self.outbox.push_control(b'{"type":"ticker","sid":%d,"msg":%b}' % (sub.sid, payload))

    # -- rate limit -------------------------------------------------------------------------------------------

    def _take_token(self) -> bool:
        now = self._clock()
        limits = self.limits
        self._tokens = min(float(limits.command_burst), self._tokens + (now - self._refilled_at) * limits.command_rate)
        self._refilled_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    # -- subscribe --------------------------------------------------------------------------------------------

    def _subscribe(self, cmd_id: int, params: Any) -> None:
        if not isinstance(params, dict):
            raise _CommandError(ErrorCode.PARAMS_REQUIRED)
        channels = params.get("channels")
        if channels is None or channels == []:
            raise _CommandError(ErrorCode.CHANNELS_REQUIRED)
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise _CommandError(ErrorCode.INVALID_PARAMETER, "channels must be an array of channel names")
        unknown = [c for c in channels if c not in _KNOWN_CHANNELS]
        if unknown:
            raise _CommandError(ErrorCode.UNKNOWN_CHANNEL, f"unknown channel {unknown[0][:40]!r}")
        channels = list(dict.fromkeys(channels))
        if not self.authenticated and any(c in PRIVATE_CHANNELS for c in channels):
            raise _CommandError(ErrorCode.AUTH_REQUIRED, "private channels need a signed connection")
        flags = {
            name: _bool_param(params, name) for name in ("send_initial_snapshot", "skip_ticker_ack", "use_yes_price")
        }
        user_filter = params.get("user_filter", "")
        if user_filter not in ("", "self", None):
            raise _CommandError(ErrorCode.INVALID_PARAMETER, "user_filter must be '' or 'self'")
        shard_factor, shard_key = _shard_params(params)
        tickers, by_id = self._market_params(params, channels)
        if "orderbook_delta" in channels and tickers is None:
            raise _CommandError(
                ErrorCode.MARKET_TICKER_REQUIRED, "orderbook_delta needs market_ticker or market_tickers"
            )
        if tickers is not None and len(tickers) > self.limits.max_markets_per_subscription:
            raise _CommandError(
                ErrorCode.MARKET_LIMIT_EXCEEDED,
                f"at most {self.limits.max_markets_per_subscription} markets per subscription",
            )
        index_ids = _string_list(params, "index_ids")
        underlyings = _string_list(params, "underlying_tickers")
        for channel in channels:
            filtered = tickers is not None and channel in MARKET_FILTER_CHANNELS
            seeds = underlyings if channel == "pyth_value" else index_ids if channel in INDEX_CHANNELS else None
            seed_set = set(seeds or ())
            sub = Subscription(
                self._next_sid,
                channel,
                self.outbox,
                self,
                tickers=set(tickers) if filtered and tickers is not None else None,
                by_market_id=by_id and channel == "ticker",
                use_yes_price=flags["use_yes_price"],
                skip_ticker_ack=flags["skip_ticker_ack"],
                user_filter_self=user_filter == "self",
                shard_factor=shard_factor,
                shard_key=shard_key,
                indices=seed_set - {ALL_MARKER},
                all_indices=ALL_MARKER in seed_set,
            )
            self._next_sid += 1
            self.subscriptions[sub.sid] = sub
            frame: dict[str, Any] = {"type": "subscribed"}
            if cmd_id:
                frame["id"] = cmd_id
            frame["msg"] = {"channel": channel, "sid": sub.sid}
            self._send(frame)
            if channel == "orderbook_delta" and sub.tickers is not None:
                for ticker in _ordered(tickers or (), sub.tickers):
                    self._send_snapshot(sub, ticker)
            elif channel == "ticker" and flags["send_initial_snapshot"]:
                wanted = sub.tickers if sub.tickers is not None else self.directory.all_tickers()
                for ticker in _ordered(tickers or self.directory.all_tickers(), wanted):
                    self._send_ticker(sub, ticker)
            self.hub.add(sub)

    def _market_params(self, params: dict[str, Any], channels: Sequence[str]) -> tuple[list[str] | None, bool]:
        """Markets named by a command (tickers, in order, deduplicated) and whether they came as market ids."""
        single = params.get("market_ticker")
        many = params.get("market_tickers")
        single_id = params.get("market_id")
        many_ids = params.get("market_ids")
        given = [
            name
            for name, v in (
                ("market_ticker", single),
                ("market_tickers", many),
                ("market_id", single_id),
                ("market_ids", many_ids),
            )
            if v is not None
        ]
        if not given:
            return None, False
        if len(given) > 1:
            raise _CommandError(ErrorCode.INVALID_PARAMETER, f"{' and '.join(given)} are mutually exclusive")
        by_id = single_id is not None or many_ids is not None
        if by_id:
            refuse = [c for c in channels if c in MARKET_FILTER_CHANNELS and c != "ticker"]
            if refuse:
                raise _CommandError(
                    ErrorCode.INVALID_PARAMETER, f"market_id/market_ids are not supported on {refuse[0]}"
                )
            ids = _names(single_id, many_ids, "market_id")
            tickers = []
            unknown_ids = []
            for market_id in ids:
                ticker = self.directory.ticker_of(market_id) if _is_uuid(market_id) else None
                if ticker is None:
                    unknown_ids.append(market_id)
                else:
                    tickers.append(ticker)
            if unknown_ids:
                raise _CommandError(ErrorCode.INVALID_PARAMETER, "unknown market_id", market_tickers=unknown_ids)
            return list(dict.fromkeys(tickers)), True
        tickers = _names(single, many, "market_ticker")
        unknown = [t for t in tickers if self.directory.market_id(t) is None]
        if unknown:
            raise _CommandError(ErrorCode.INVALID_PARAMETER, "unknown market ticker", market_tickers=unknown)
        return list(dict.fromkeys(tickers)), False

    # -- unsubscribe / list -----------------------------------------------------------------------------------

    def _unsubscribe(self, cmd_id: int, params: Any) -> None:
        if not isinstance(params, dict):
            raise _CommandError(ErrorCode.PARAMS_REQUIRED)
        sids = params.get("sids")
        if sids is None or sids == []:
            raise _CommandError(ErrorCode.SIDS_REQUIRED)
        if not isinstance(sids, list) or not all(type(s) is int for s in sids):
            raise _CommandError(ErrorCode.INVALID_PARAMETER, "sids must be an array of integers")
        for sid in dict.fromkeys(sids):
            sub = self.subscriptions.pop(sid, None)
            if sub is None:
                self._error(cmd_id, ErrorCode.UNKNOWN_SID, f"no subscription {sid}")
                continue
            self.hub.remove(sub)
            self._ack("unsubscribed", cmd_id, sub, None)

    def _list(self, cmd_id: int) -> None:
        frame: dict[str, Any] = {"type": "ok"}
        if cmd_id:
            frame["id"] = cmd_id
        frame["msg"] = [
            {"channel": s.channel, "sid": s.sid} for s in sorted(self.subscriptions.values(), key=lambda s: s.sid)
        ]
        self._send(frame)

    # -- update_subscription ----------------------------------------------------------------------------------

    def _update(self, cmd_id: int, params: Any) -> None:
        if not isinstance(params, dict):
            raise _CommandError(ErrorCode.PARAMS_REQUIRED)
        action = params.get("action")
        if action is None or action == "":
            raise _CommandError(ErrorCode.ACTION_REQUIRED)
        sid = params.get("sid")
        sids = params.get("sids")
        if (sid is None) == (sids is None):
            raise _CommandError(ErrorCode.EXACTLY_ONE_SID, "give either sid or sids")
        if sids is not None:
            if not isinstance(sids, list) or len(sids) != 1:
                raise _CommandError(ErrorCode.EXACTLY_ONE_SID, "sids must hold exactly one subscription ID")
            sid = sids[0]
        if type(sid) is not int:
            raise _CommandError(ErrorCode.INVALID_PARAMETER, "sid must be an integer")
        sub = self.subscriptions.get(sid)
        if sub is None:
            raise _CommandError(ErrorCode.UNKNOWN_SID, f"no subscription {sid}")
        if not isinstance(action, str):
            raise _CommandError(ErrorCode.UNSUPPORTED_ACTION, sub=sub)
        channel = sub.channel
        if action in _MARKET_ACTIONS and channel in MARKET_FILTER_CHANNELS:
            if action == "get_snapshot":
                self._get_snapshot(cmd_id, sub, params)
            else:
                self._change_markets(cmd_id, sub, params, add=action == "add_markets")
        elif action in _INDEX_ACTIONS and channel in INDEX_CHANNELS and channel != "pyth_value":
            self._change_indices(cmd_id, sub, params, action, "index_ids", ErrorCode.INDEX_IDS_REQUIRED)
        elif action in _UNDERLYING_ACTIONS and channel == "pyth_value":
            self._change_indices(
                cmd_id, sub, params, action, "underlying_tickers", ErrorCode.UNDERLYING_TICKERS_REQUIRED
            )
        else:
            raise _CommandError(ErrorCode.UNSUPPORTED_ACTION, f"{action[:40]!r} is not supported on {channel}", sub=sub)

    def _change_markets(self, cmd_id: int, sub: Subscription, params: dict[str, Any], *, add: bool) -> None:
        if sub.tickers is None:
            raise _CommandError(
                ErrorCode.UNSUPPORTED_ACTION,
                "the subscription has no market filter (it receives every market)",
                sub=sub,
            )
        try:
            named, by_id = self._market_params(params, [sub.channel])
        except _CommandError as exc:
            exc.sub = sub
            raise
        if named is None:
            raise _CommandError(ErrorCode.MARKET_TICKER_REQUIRED, sub=sub)
        send_snapshot = _bool_param(params, "send_initial_snapshot", sub=sub)
        if add:
            new = [t for t in named if t not in sub.tickers]
            if len(sub.tickers) + len(new) > self.limits.max_markets_per_subscription:
                raise _CommandError(
                    ErrorCode.MARKET_LIMIT_EXCEEDED,
                    f"at most {self.limits.max_markets_per_subscription} markets per subscription",
                    sub=sub,
                )
            sub.tickers.update(new)
            sub.by_market_id = sub.by_market_id or by_id
            self.hub.update_markets(sub, new, ())
        else:
            new = []
            gone = [t for t in named if t in sub.tickers]
            sub.tickers.difference_update(gone)
            self.hub.update_markets(sub, (), gone)
        msg: dict[str, Any] = {}
        if not sub.skip_ticker_ack:
            ordered = sorted(sub.tickers)
            msg["market_tickers"] = ordered
            if sub.by_market_id:
                msg["market_ids"] = [self.directory.market_id(t) for t in ordered]
        self._ack("ok", cmd_id, sub, msg)
        if sub.channel == "orderbook_delta":
            for ticker in new:
                self._send_snapshot(sub, ticker)
        elif sub.channel == "ticker" and send_snapshot:
            for ticker in new:
                self._send_ticker(sub, ticker)

    def _get_snapshot(self, cmd_id: int, sub: Subscription, params: dict[str, Any]) -> None:
        if sub.channel != "orderbook_delta":
            raise _CommandError(
                ErrorCode.UNSUPPORTED_ACTION, "get_snapshot is only supported on orderbook_delta", sub=sub
            )
        try:
            named, _ = self._market_params(params, [sub.channel])
        except _CommandError as exc:
            exc.sub = sub
            raise
        if named is None:
            raise _CommandError(ErrorCode.MARKET_TICKER_REQUIRED, sub=sub)
        assert sub.tickers is not None  # orderbook_delta subscriptions always name markets
        outside = [t for t in named if t not in sub.tickers]
        if outside:
            raise _CommandError(
                ErrorCode.INVALID_PARAMETER, "market not in this subscription", sub=sub, market_tickers=outside
            )
        for ticker in named:
            self._send_snapshot(sub, ticker, cmd_id)

    def _change_indices(
        self, cmd_id: int, sub: Subscription, params: dict[str, Any], action: str, key: str, missing_code: ErrorCode
    ) -> None:
        if action in ("indexlist", "underlying_list"):
            seq = sub.next_seq()
            frame: dict[str, Any] = {"type": _LIST_TYPES[sub.channel].decode()}
            if cmd_id:
                frame["id"] = cmd_id
            frame.update(sid=sub.sid, seq=seq, msg={key: sorted(self.directory.available_indices(sub.channel))})
            self._send(frame)
            return
        values = params.get(key)
        if values is None or values == []:
            raise _CommandError(missing_code, sub=sub)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise _CommandError(ErrorCode.INVALID_PARAMETER, f"{key} must be an array of strings", sub=sub)
        names = set(values)
        if action.startswith("subscribe"):
            if ALL_MARKER in names:
                sub.all_indices = True
            sub.indices.update(names - {ALL_MARKER})
        else:
            if ALL_MARKER in names:
                sub.all_indices = False
            sub.indices.difference_update(names)
        current = [ALL_MARKER] if sub.all_indices else sorted(sub.indices)
        self._ack("ok", cmd_id, sub, {key: current})


# -- parameter helpers ----------------------------------------------------------------------------------------


def _bool_param(params: dict[str, Any], name: str, *, sub: Subscription | None = None) -> bool:
    value = params.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _CommandError(ErrorCode.INVALID_PARAMETER, f"{name} must be true or false", sub=sub)
    return value


def _shard_params(params: dict[str, Any]) -> tuple[int | None, int | None]:
    factor = params.get("shard_factor")
    key = params.get("shard_key")
    for name, value in (("shard_factor", factor), ("shard_key", key)):
        if value is not None and type(value) is not int:
            raise _CommandError(ErrorCode.INVALID_PARAMETER, f"{name} must be an integer")
    if key is not None and factor is None:
        raise _CommandError(ErrorCode.SHARD_FACTOR_REQUIRED)
    if factor is not None:
        if factor <= 0:
            raise _CommandError(ErrorCode.SHARD_FACTOR_POSITIVE)
        if factor > 100:
            raise _CommandError(ErrorCode.SHARD_FACTOR_MAX)
        if key is not None and not 0 <= key < factor:
            raise _CommandError(ErrorCode.SHARD_KEY_RANGE)
    return factor, key


def _string_list(params: dict[str, Any], name: str) -> list[str] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _CommandError(ErrorCode.INVALID_PARAMETER, f"{name} must be a non-empty array of strings")
    return value


def _names(single: Any, many: Any, what: str) -> list[str]:
    if single is not None:
        if not isinstance(single, str) or not single:
            raise _CommandError(ErrorCode.INVALID_PARAMETER, f"{what} must be a non-empty string")
        return [single]
    if not isinstance(many, list) or not many or not all(isinstance(v, str) and v for v in many):
        raise _CommandError(ErrorCode.INVALID_PARAMETER, f"{what}s must be a non-empty array of strings")
    return list(many)


def _ordered(requested: Sequence[str], wanted: set[str] | Sequence[str]) -> list[str]:
    """The requested markets in request order, restricted to ``wanted``."""
    allowed = wanted if isinstance(wanted, set) else set(wanted)
    return [t for t in dict.fromkeys(requested) if t in allowed]


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
