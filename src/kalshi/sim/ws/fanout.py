"""Fan-out: engine events to subscriptions, one encoded payload per event, the envelope spliced per subscriber.

Sans-I/O. An :class:`Outbox` is one connection's ordered queue of frames (the server's writer drains it); a
:class:`Subscription` is one ``sid`` of one connection; the :class:`Hub` indexes subscriptions by channel, market
and account so that publishing an event touches only the subscriptions that want it.

The payload (the JSON of ``msg``) is encoded once per event by :mod:`kalshi.sim.ws.feeds`. Each subscriber gets
``{"type":..,"sid":..,"seq":..,"msg":<payload>}`` built by bytes formatting, so the per-subscriber cost is one
small ``%`` operation. ``seq`` is per subscription and only on sequenced channels.

When an outbox is full the subscription that overflowed gets error 25 and ends, as on the exchange.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final, Protocol

from kalshi.ws.codes import ErrorCode

if TYPE_CHECKING:
    from kalshi.sim.faults import FaultController

__all__ = [
    "ALL_CHANNELS",
    "INDEX_CHANNELS",
    "MARKET_FILTER_CHANNELS",
    "PRIVATE_CHANNELS",
    "SEQUENCED_CHANNELS",
    "Hub",
    "Outbox",
    "Subscription",
    "SubscriptionOwner",
]

# Spec order (asyncapi.yaml subscribeCommandPayload.params.channels.enum).
ALL_CHANNELS: Final = (
    "orderbook_delta",
    "ticker",
    "trade",
    "fill",
    "market_positions",
    "market_lifecycle_v2",
    "multivariate_market_lifecycle",
    "communications",
    "order_group_updates",
    "user_orders",
    "cfbenchmarks_value",
    "cfbenchmarks_value_5hz",
    "pyth_value",
)
PRIVATE_CHANNELS: Final = frozenset(
    {"fill", "user_orders", "market_positions", "order_group_updates", "communications"}
)
# ticker, fill, market_positions and user_orders carry no seq; everything else does.
SEQUENCED_CHANNELS: Final = frozenset(ALL_CHANNELS) - {"ticker", "fill", "market_positions", "user_orders"}
# Channels whose subscriptions may name markets (orderbook_delta must).
MARKET_FILTER_CHANNELS: Final = frozenset(
    {"orderbook_delta", "ticker", "trade", "fill", "market_positions", "user_orders"}
)
# Public channels indexed by market for fast lookup.
_BY_MARKET: Final = frozenset({"orderbook_delta", "ticker", "trade"})
INDEX_CHANNELS: Final = frozenset({"cfbenchmarks_value", "cfbenchmarks_value_5hz", "pyth_value"})
ALL_MARKER: Final = "all"


class SubscriptionOwner(Protocol):
    """Who ends a subscription when the hub cannot deliver to it (the connection's session)."""

    def terminate(self, sub: Subscription, code: ErrorCode) -> None: ...


class Outbox:
    """The ordered frames waiting to be written to one connection.

    ``push`` refuses a data frame once ``limit`` frames are queued (the caller then ends the subscription with
    error 25); ``push_control`` always accepts, so acks and errors are never lost to backpressure.
    """

    __slots__ = ("_held", "_wakeup", "account", "closed", "conn_id", "frames", "limit")

    def __init__(
        self,
        conn_id: int,
        *,
        account: str | None = None,
        limit: int = 100_000,
        wakeup: Callable[[], None] | None = None,
    ) -> None:
        """Create an empty outbox.

        Args:
            conn_id: The connection's id (fault targeting, logs).
            account: The authenticated account, or None on an open connection.
            limit: Most data frames queued before a subscription overflows.
            wakeup: Called when the queue turns non-empty (the writer's event).
        """
        self.conn_id = conn_id
        self.account = account
        self.limit = limit
        self.frames: deque[bytes] = deque()
        self._wakeup = wakeup
        self._held: bytes | None = None
        self.closed = False

    def set_wakeup(self, wakeup: Callable[[], None] | None) -> None:
        """Install the callback run when frames arrive in an empty queue."""
        self._wakeup = wakeup

    def push(self, frame: bytes) -> bool:
        """Queue a data frame; False when the queue is full (nothing queued)."""
        if self.closed:
            return True
        frames = self.frames
        queued = len(frames)
        if queued >= self.limit:
            return False
        frames.append(frame)
        if self._held is not None:
            frames.append(self._held)
            self._held = None
        # The writer waits only on an empty queue, so only that transition needs a wake-up.
        if not queued and self._wakeup is not None:
            self._wakeup()
        return True

    def push_control(self, frame: bytes) -> None:
        """Queue a command response or error regardless of the limit."""
        if self.closed:
            return
        frames = self.frames
        queued = len(frames)
        frames.append(frame)
        if self._held is not None:
            frames.append(self._held)
            self._held = None
        if not queued and self._wakeup is not None:
            self._wakeup()

    def hold(self, frame: bytes) -> None:
        """Keep a frame back until the next one is queued (the reorder fault)."""
        previous, self._held = self._held, frame
        if previous is not None:
            # Two reorders in a row: the first held frame goes out now, the new one waits.
            queued = len(self.frames)
            self.frames.append(previous)
            if not queued and self._wakeup is not None:
                self._wakeup()

    def release_held(self) -> None:
        """Queue a frame kept back by :meth:`hold` (no later frame came)."""
        if self._held is not None:
            held, self._held = self._held, None
            self.push_control(held)

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing held back."""
        return not self.frames and self._held is None


class Subscription:
    """One ``sid`` on one connection, with its filters and its seq counter."""

    __slots__ = (
        "account",
        "all_indices",
        "by_market_id",
        "channel",
        "conn_id",
        "indices",
        "outbox",
        "owner",
        "seq",
        "sequenced",
        "shard_factor",
        "shard_key",
        "sid",
        "skip_ticker_ack",
        "templates",
        "tickers",
        "use_yes_price",
        "user_filter_self",
    )

    def __init__(
        self,
        sid: int,
        channel: str,
        outbox: Outbox,
        owner: SubscriptionOwner,
        *,
        tickers: set[str] | None = None,
        by_market_id: bool = False,
        use_yes_price: bool = False,
        skip_ticker_ack: bool = False,
        user_filter_self: bool = False,
        shard_factor: int | None = None,
        shard_key: int | None = None,
        indices: set[str] | None = None,
        all_indices: bool = False,
    ) -> None:
        self.sid = sid
        self.channel = channel
        self.outbox = outbox
        self.owner = owner
        self.conn_id = outbox.conn_id
        self.account = outbox.account
        self.sequenced = channel in SEQUENCED_CHANNELS
        self.seq = 0
        # None: every market (no filter). A set, possibly empty: only these markets.
        self.tickers = tickers
        self.by_market_id = by_market_id
        self.use_yes_price = use_yes_price
        self.skip_ticker_ack = skip_ticker_ack
        self.user_filter_self = user_filter_self
        self.shard_factor = shard_factor
        self.shard_key = shard_key
        self.indices: set[str] = indices if indices is not None else set()
        self.all_indices = all_indices
        # Per message type, the envelope with this sid baked in: only seq and msg are formatted per frame.
        self.templates: dict[bytes, bytes] = {}

    def template(self, typ: bytes) -> bytes:
        """The envelope of a ``typ`` data frame: ``%d`` for seq (sequenced channels only) and ``%b`` for msg."""
        tmpl = self.templates.get(typ)
        if tmpl is None:
            if self.sequenced:
                tmpl = b'{"type":"%b","sid":%d,"seq":%%d,"msg":%%b}' % (typ, self.sid)
            else:
                tmpl = b'{"type":"%b","sid":%d,"msg":%%b}' % (typ, self.sid)
            self.templates[typ] = tmpl
        return tmpl

    def next_seq(self) -> int:
        """Use up one seq number (data frames of sequenced channels, and ok/unsubscribed/error)."""
        self.seq += 1
        return self.seq

    def wants_index(self, index_id: str) -> bool:
        return self.all_indices or index_id in self.indices

    def wants_market(self, ticker: str) -> bool:
        tickers = self.tickers
        return tickers is None or ticker in tickers

    def __repr__(self) -> str:
        return f"Subscription(sid={self.sid}, channel={self.channel!r}, conn={self.conn_id})"


VariantFn = Callable[[bool, bool], bytes]


class Hub:
    """Every live subscription of every connection, indexed for publishing.

    Index tuples are rebuilt when subscriptions change (rare) so publishing (frequent) iterates a stable
    snapshot even when a delivery ends a subscription.
    """

    def __init__(self, faults: FaultController | None = None) -> None:
        self.faults = faults
        self._by_market: dict[str, dict[str, tuple[Subscription, ...]]] = {ch: {} for ch in _BY_MARKET}
        self._broadcast: dict[str, tuple[Subscription, ...]] = {ch: () for ch in ALL_CHANNELS}
        self._private: dict[str, dict[str, tuple[Subscription, ...]]] = {ch: {} for ch in PRIVATE_CHANNELS}
        # Markets with at least one orderbook_delta subscriber (feeds skip encoding the others' deltas).
        self.book_tickers: dict[str, tuple[Subscription, ...]] = self._by_market["orderbook_delta"]
        self.delivered = 0

    # -- membership -------------------------------------------------------------------------------------------

    def add(self, sub: Subscription) -> None:
        """Start delivering to ``sub``."""
        channel = sub.channel
        if channel in _BY_MARKET and sub.tickers is not None:
            self._add_markets(sub, sub.tickers)
        elif channel in PRIVATE_CHANNELS and channel != "communications":
            accounts = self._private[channel]
            key = sub.account or ""
            accounts[key] = (*accounts.get(key, ()), sub)
        else:
            self._broadcast[channel] = (*self._broadcast[channel], sub)

    def remove(self, sub: Subscription) -> None:
        """Stop delivering to ``sub`` (idempotent)."""
        channel = sub.channel
        if channel in _BY_MARKET and sub.tickers is not None:
            self._remove_markets(sub, sub.tickers)
        elif channel in PRIVATE_CHANNELS and channel != "communications":
            accounts = self._private[channel]
            key = sub.account or ""
            left = tuple(s for s in accounts.get(key, ()) if s is not sub)
            if left:
                accounts[key] = left
            else:
                accounts.pop(key, None)
        else:
            self._broadcast[channel] = tuple(s for s in self._broadcast[channel] if s is not sub)

    def update_markets(self, sub: Subscription, added: Iterable[str], removed: Iterable[str]) -> None:
        """Apply add_markets/delete_markets to a market-filtered subscription (``sub.tickers`` already updated)."""
        if sub.channel in _BY_MARKET:
            self._add_markets(sub, added)
            self._remove_markets(sub, removed)

    def _add_markets(self, sub: Subscription, tickers: Iterable[str]) -> None:
        index = self._by_market[sub.channel]
        for ticker in sorted(tickers):
            subs = index.get(ticker, ())
            if sub not in subs:
                index[ticker] = (*subs, sub)

    def _remove_markets(self, sub: Subscription, tickers: Iterable[str]) -> None:
        index = self._by_market[sub.channel]
        for ticker in tickers:
            left = tuple(s for s in index.get(ticker, ()) if s is not sub)
            if left:
                index[ticker] = left
            else:
                index.pop(ticker, None)

    def subscriber_count(self, channel: str) -> int:
        """Live subscriptions on a channel (for tests and stats)."""
        seen: set[int] = set()
        if channel in _BY_MARKET:
            for subs in self._by_market[channel].values():
                seen.update(id(s) for s in subs)
        if channel in self._private:
            for subs in self._private[channel].values():
                seen.update(id(s) for s in subs)
        seen.update(id(s) for s in self._broadcast[channel])
        return len(seen)

    def has_market_subscribers(self, channel: str, ticker: str) -> bool:
        """Whether anyone would receive a ``channel`` event of ``ticker`` (lets feeds skip encoding)."""
        return bool(self._broadcast[channel]) or ticker in self._by_market.get(channel, {})

    # -- delivery ---------------------------------------------------------------------------------------------

    def deliver(self, sub: Subscription, typ: bytes, payload: bytes) -> None:
        """Frame ``payload`` for one subscription and queue it (error 25 and the end of ``sub`` when full)."""
        faults = self.faults
        if faults is not None and faults.frame_faults_enabled:
            self._deliver_with_faults(sub, typ, payload, faults)
            return
        self._fanout((sub,), typ, payload)

    def _fanout(self, subs: Iterable[Subscription], typ: bytes, payload: bytes) -> None:
        """The hot loop: one payload to many subscriptions (no faults active)."""
        n = 0
        for sub in subs:
            tmpl = sub.templates.get(typ) or sub.template(typ)
            if sub.sequenced:
                seq = sub.seq + 1
                sub.seq = seq
                frame = tmpl % (seq, payload)
            else:
                frame = tmpl % payload
            n += 1
            outbox = sub.outbox
            frames = outbox.frames
            queued = len(frames)
            # Inlined Outbox.push for the common case (open, nothing held back, room left).
            if queued < outbox.limit and outbox._held is None and not outbox.closed:
                frames.append(frame)
                if not queued and outbox._wakeup is not None:
                    outbox._wakeup()
            elif not outbox.push(frame):
                if sub.sequenced:
                    sub.seq -= 1  # the frame was never sent: the error takes its seq
                sub.owner.terminate(sub, ErrorCode.BUFFER_OVERFLOW)
        self.delivered += n

    def _deliver_with_faults(self, sub: Subscription, typ: bytes, payload: bytes, faults: FaultController) -> None:
        kind = faults.next_frame_fault(sub.conn_id, sub.sequenced)
        if kind == "overflow":
            sub.owner.terminate(sub, ErrorCode.BUFFER_OVERFLOW)
            return
        tmpl = sub.template(typ)
        if sub.sequenced:
            seq = sub.seq + 1
            if kind == "skip_seq":
                seq += 1
            sub.seq = seq
            frame = tmpl % (seq, payload)
        else:
            frame = tmpl % payload
        self.delivered += 1
        outbox = sub.outbox
        if kind == "reorder":
            outbox.hold(frame)
            return
        if kind == "malformed":
            # Truncated JSON: what a broken proxy or a cut frame looks like.
            outbox.push_control(frame[: max(1, len(frame) // 2)])
        if not outbox.push(frame):
            if sub.sequenced:
                sub.seq -= 1
            sub.owner.terminate(sub, ErrorCode.BUFFER_OVERFLOW)
            return
        if kind == "dup":
            outbox.push_control(frame)

    def publish_market(self, channel: str, typ: bytes, ticker: str, payload: bytes) -> None:
        """A public per-market event (ticker, trade) to the market's and the unfiltered subscribers."""
        by_market = self._by_market[channel].get(ticker, ())
        broadcast = self._broadcast[channel]
        subs = by_market + broadcast if by_market and broadcast else by_market or broadcast
        self._publish(subs, typ, payload)

    def _publish(self, subs: tuple[Subscription, ...], typ: bytes, payload: bytes) -> None:
        if not subs:
            return
        faults = self.faults
        if faults is not None and faults.frame_faults_enabled:
            for sub in subs:
                self.deliver(sub, typ, payload)
        else:
            self._fanout(subs, typ, payload)

    def publish_book(
        self,
        typ: bytes,
        ticker: str,
        payload: bytes,
        variant: VariantFn | None = None,
        account: str | None = None,
    ) -> None:
        """An orderbook_delta of one market.

        Args:
            typ: ``b"orderbook_delta"``.
            ticker: The market.
            payload: The default encoding (no-side in no-leg prices, no client_order_id).
            variant: ``variant(use_yes_price, own)`` gives the encoding for a subscriber that asked for yes-leg
                prices and/or caused the change; None when every variant equals ``payload``.
            account: The account whose order caused the change (it alone sees client_order_id).
        """
        subs = self.book_tickers.get(ticker)
        if not subs:
            return
        if variant is None:
            self._publish(subs, typ, payload)
            return
        for sub in subs:
            own = account is not None and sub.account == account
            body = variant(sub.use_yes_price, own) if own or sub.use_yes_price else payload
            self.deliver(sub, typ, body)

    def publish_broadcast(self, channel: str, typ: bytes, payload: bytes) -> None:
        """An event every subscriber of ``channel`` receives (lifecycle channels)."""
        self._publish(self._broadcast[channel], typ, payload)

    def publish_index(self, channel: str, typ: bytes, index_id: str, payload: bytes) -> None:
        """A cfbenchmarks or pyth value to the subscriptions tracking ``index_id``."""
        subs = tuple(s for s in self._broadcast[channel] if s.all_indices or index_id in s.indices)
        self._publish(subs, typ, payload)

    def has_private_subscribers(self, channel: str, account: str) -> bool:
        """Whether ``account`` has a subscription on a private ``channel`` (lets feeds skip encoding)."""
        return account in self._private[channel]

    def publish_private(self, channel: str, typ: bytes, account: str, ticker: str | None, payload: bytes) -> None:
        """An account's fill, user_order, market_position or order-group event to that account's subscriptions."""
        subs = self._private[channel].get(account, ())
        if ticker is not None:
            subs = tuple(s for s in subs if s.tickers is None or ticker in s.tickers)
        self._publish(subs, typ, payload)

    def publish_communications(
        self,
        typ: bytes,
        payload: bytes,
        *,
        audience: frozenset[str] | None,
        rfq_creator: str | None,
        shard: int,
    ) -> None:
        """An RFQ or quote event.

        Args:
            typ: Message type (rfq_created, quote_created, ...).
            payload: Encoded ``msg``.
            audience: Accounts allowed to see it (quote events: quote and RFQ creators); None for everyone
                (RFQ events).
            rfq_creator: The RFQ's creator, for ``user_filter: "self"``.
            shard: A stable hash of the RFQ id, reduced modulo each subscription's ``shard_factor``.
        """
        chosen = []
        for sub in self._broadcast["communications"]:
            if audience is not None:
                if sub.account not in audience:
                    continue
            elif sub.user_filter_self and sub.account != rfq_creator:
                continue
            if sub.shard_factor is not None and shard % sub.shard_factor != (sub.shard_key or 0):
                continue
            chosen.append(sub)
        self._publish(tuple(chosen), typ, payload)
