"""Sans-I/O Kalshi WebSocket session: commands out, frames in, typed results back. No asyncio, no sockets.

The asyncio client is thin glue around :class:`ClientProtocol`::

    proto = ClientProtocol()
    cmd_id = proto.send_subscribe(["orderbook_delta"], market_tickers=["FED-23DEC-T3.00"])
    for frame in proto.data_to_send():
        transport.send(frame)                     # the I/O layer's job
    result = proto.receive_frame(frame_bytes)     # for every text frame received
    if isinstance(result, ProtocolEvent):
        ...                                       # command responses, gaps, errors
    else:
        dispatch(result)                          # a decoded message, in order

:meth:`ClientProtocol.receive_frame` returns an in-order data message itself (no wrapper: the hot path; an
:class:`~kalshi.ws.models.UnknownMessage` for a well-formed frame of an unknown type), or a small event:
:class:`CommandResponse` (``subscribed``/``unsubscribed``/``ok``/``list_subscriptions``, and ``error`` answering a
command id), :class:`ServerError` (``error`` without an id, e.g. code 25 on a sid), :class:`GapDetected`,
:class:`DuplicateDropped`, :class:`AwaitingSnapshotDropped` or :class:`ProtocolErrorEvent` (anything malformed,
including, with ``validate_book``, an inexact book number). It never raises for bad input, and a bad frame never
touches the subscription or sequence state.

Sequencing is per ``sid`` (``seq`` belongs to the subscription, not the market):

* The first numbered message of a sid sets the base; then each data message must be ``last + 1``.
  ``ok``/``unsubscribed``/``error`` with ``sid`` and ``seq`` use up numbers too: in order they advance the tracker;
  out of order they are still delivered and leave it alone, so the next data message reports the gap.
* ``seq > last + 1``: :class:`GapDetected` carries the message, which is not delivered (a book must not apply it;
  latest-wins channels may use ``GapDetected.message``). The tracker re-bases at the received seq so the stream
  continues; the caller repairs, for a book with :meth:`ClientProtocol.reset_sequence` + :meth:`send_get_snapshot`.
  ``seq <= last``: :class:`DuplicateDropped`.
* ``orderbook_snapshot`` restarts its market and re-bases the tracker: in order, after a server restart of the
  numbering (lower seq), or after a forward jump on a sid that only ever carried that market. A forward jump on a
  sid carrying other markets is a :class:`GapDetected` (the lost numbers may be their deltas).
* After :meth:`ClientProtocol.reset_sequence` deltas are dropped (:class:`AwaitingSnapshotDropped`) until a
  snapshot, accepted at any seq. The protocol knows sids, not which markets were repaired: the book drops deltas
  of markets without a snapshot.

``subscribed`` registers ``sid -> channel``; ``unsubscribed`` and the terminal errors 10 and 25 remove the sid and its
tracker. Responses are matched to the commands sent by ``id``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import msgspec

from kalshi.errors import KalshiProtocolError, KalshiSubscriptionError
from kalshi.ws.models import (
    COMMAND_ENCODER,
    MESSAGE_DECODER,
    MESSAGE_TYPES,
    SEQUENCED_TYPES,
    AnyMessage,
    ClientCommand,
    ErrorMessage,
    ListSubscriptionsCommand,
    ListSubscriptionsMessage,
    OkMessage,
    OrderbookDeltaMessage,
    OrderbookSnapshotMessage,
    SubscribeCommand,
    SubscribedMessage,
    SubscribeParams,
    TickerMessage,
    UnsubscribeCommand,
    UnsubscribedMessage,
    UnsubscribeParams,
    UpdateSubscriptionCommand,
    UpdateSubscriptionParams,
    decode_fallback,
)
from kalshi.ws.models._numbers import DELTA_CACHE, PRICE_CACHE
from kalshi.ws.protocol_events import (
    AwaitingSnapshotDropped,
    CommandResponse,
    DuplicateDropped,
    GapDetected,
    ProtocolErrorEvent,
    ProtocolEvent,
    ProtocolStats,
    ReceiveResult,
    ResponseMessage,
    ServerError,
)
from kalshi.ws.protocol_receive import DECODE_ERRORS, LIST_REPLIES, ReceiveParts, make_receiver

__all__ = [
    "AwaitingSnapshotDropped",
    "ClientProtocol",
    "CommandResponse",
    "DuplicateDropped",
    "GapDetected",
    "ProtocolErrorEvent",
    "ProtocolEvent",
    "ProtocolStats",
    "ReceiveParts",
    "ReceiveResult",
    "ServerError",
]

logger = logging.getLogger(__name__)

_PREVIEW_CHARS: Final = 200

# Data classes that take the fast sequenced path (the snapshot has its own path, deltas are checked first).
_SEQUENCED_DATA: Final = frozenset(
    cls for kind, cls in MESSAGE_TYPES.items() if kind in SEQUENCED_TYPES and kind != "orderbook_snapshot"
)
_RESPONSE_CLASSES: Final = (SubscribedMessage, UnsubscribedMessage, OkMessage, ListSubscriptionsMessage, ErrorMessage)


@dataclass(slots=True)
class _Pending:
    command: ClientCommand
    remaining: int


def _preview(data: object) -> str:
    if isinstance(data, str):
        head = data[:_PREVIEW_CHARS]
    elif isinstance(data, bytes | bytearray | memoryview):
        head = bytes(data[:_PREVIEW_CHARS]).decode("utf-8", "replace")
    else:
        head = f"<{type(data).__name__}>"
    safe = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in head)
    return safe[:_PREVIEW_CHARS]


class ClientProtocol:
    """One WebSocket session's protocol state, without I/O.

    Args:
        validate_book: convert each delta's and snapshot's numbers before delivering it, so a bad one becomes
            a ProtocolErrorEvent (its seq uncounted: a gap follows) instead of an exception in the book. It costs
            a book consumer nothing (the snapshot conversion is memoised and the book's own lookups get cheaper);
            consumers that keep no book (recorders, relays) may turn it off to skip converting snapshots.
        first_command_id: the first id to allocate; ids keep increasing across :meth:`reset`.
    """

    __slots__ = (
        "_awaiting",
        "_book_markets",
        "_channels",
        "_decode",
        "_last",
        "_next_id",
        "_outbox",
        "_pending",
        "_validate",
        "stats",
        "tapped_sids",
    )

    def __init__(self, *, validate_book: bool = True, first_command_id: int = 1) -> None:
        if first_command_id < 1:
            raise ValueError("command ids start at 1 (0 means 'no id' to the server)")
        self._decode = MESSAGE_DECODER.decode
        self._validate = validate_book
        self._next_id = first_command_id
        self._outbox: list[bytes] = []
        self._pending: dict[int, _Pending] = {}
        self._channels: dict[int, str] = {}
        self._last: dict[int, int] = {}
        self._awaiting: set[int] = set()
        self._book_markets: dict[int, set[str]] = {}
        self.stats = ProtocolStats()
        self.tapped_sids: set[int] = set()
        """Sids whose in-order data frames are only sequence-checked: :meth:`receiver` returns None for them
        without decoding the body (the frame's consumer reads the bytes itself, e.g. a relay). Anything else on
        such a sid (a snapshot, a gap, a malformed frame, a delta without seq) is decoded and handled as usual."""

    # -- outgoing
    def send_subscribe(
        self,
        channels: Sequence[str],
        *,
        market_ticker: str | None = None,
        market_tickers: Sequence[str] | None = None,
        market_id: str | None = None,
        market_ids: Sequence[str] | None = None,
        send_initial_snapshot: bool | None = None,
        skip_ticker_ack: bool | None = None,
        use_yes_price: bool | None = None,
        user_filter: str | None = None,
        shard_factor: int | None = None,
        shard_key: int | None = None,
        index_ids: Sequence[str] | None = None,
        underlying_tickers: Sequence[str] | None = None,
    ) -> int:
        """Queue a ``subscribe`` command; parameters left None are not sent.

        Returns:
            The command id; the server answers with one ``subscribed`` (or ``error``) per channel.

        Raises:
            KalshiSubscriptionError: no channel given.
        """
        names = [channels] if isinstance(channels, str) else list(channels)
        if not names:
            raise KalshiSubscriptionError("subscribe needs at least one channel")
        params = SubscribeParams(
            channels=names,
            market_ticker=market_ticker,
            market_tickers=_opt_list(market_tickers),
            market_id=market_id,
            market_ids=_opt_list(market_ids),
            send_initial_snapshot=send_initial_snapshot,
            skip_ticker_ack=skip_ticker_ack,
            use_yes_price=use_yes_price,
            user_filter=user_filter,
            shard_factor=shard_factor,
            shard_key=shard_key,
            index_ids=_opt_list(index_ids),
            underlying_tickers=_opt_list(underlying_tickers),
        )
        return self.send_command(SubscribeCommand(params=params))

    def send_unsubscribe(self, sids: Sequence[int]) -> int:
        """Queue an ``unsubscribe`` of ``sids``.

        Raises:
            KalshiSubscriptionError: no sid given.
        """
        if not sids:
            raise KalshiSubscriptionError("unsubscribe needs at least one sid")
        return self.send_command(UnsubscribeCommand(params=UnsubscribeParams(sids=list(sids))))

    def send_update_subscription(
        self,
        sid: int,
        action: str,
        *,
        market_ticker: str | None = None,
        market_tickers: Sequence[str] | None = None,
        market_id: str | None = None,
        market_ids: Sequence[str] | None = None,
        send_initial_snapshot: bool | None = None,
        index_ids: Sequence[str] | None = None,
        underlying_tickers: Sequence[str] | None = None,
    ) -> int:
        """Queue an ``update_subscription`` of ``sid`` with ``action`` (see ``UPDATE_ACTIONS``).

        Raises:
            KalshiSubscriptionError: ``action`` is empty.
        """
        if not action:
            raise KalshiSubscriptionError("update_subscription needs an action")
        params = UpdateSubscriptionParams(
            action=action,
            sid=sid,
            market_ticker=market_ticker,
            market_tickers=_opt_list(market_tickers),
            market_id=market_id,
            market_ids=_opt_list(market_ids),
            send_initial_snapshot=send_initial_snapshot,
            index_ids=_opt_list(index_ids),
            underlying_tickers=_opt_list(underlying_tickers),
        )
        return self.send_command(UpdateSubscriptionCommand(params=params))

    def send_get_snapshot(self, sid: int, market_tickers: Sequence[str]) -> int:
        """Queue ``update_subscription`` ``get_snapshot``: fresh ``orderbook_snapshot`` messages for the markets.

        Raises:
            KalshiSubscriptionError: no market given.
        """
        if not market_tickers:
            raise KalshiSubscriptionError("get_snapshot needs at least one market ticker")
        return self.send_update_subscription(sid, "get_snapshot", market_tickers=market_tickers)

    def send_list_subscriptions(self) -> int:
        """Queue ``list_subscriptions``."""
        return self.send_command(ListSubscriptionsCommand())

    def send_command(self, command: ClientCommand) -> int:
        """Queue any command under a freshly allocated id (the command's own ``id`` is replaced).

        Returns:
            The id the server will echo in its response(s).
        """
        cmd_id = self._next_id
        self._next_id = cmd_id + 1
        command = msgspec.structs.replace(command, id=cmd_id)
        self._outbox.append(COMMAND_ENCODER.encode(command))
        expected = 1
        if isinstance(command, SubscribeCommand):
            expected = len(command.params.channels)
        elif isinstance(command, UnsubscribeCommand):
            expected = len(command.params.sids)
        self._pending[cmd_id] = _Pending(command, max(expected, 1))
        return cmd_id

    def data_to_send(self) -> list[bytes]:
        """Take the encoded commands queued since the last call (text frames, in order)."""
        out = self._outbox
        self._outbox = []
        return out

    # -- incoming
    def receive_frame(self, data: bytes | str) -> ReceiveResult:
        """Process one text frame from the server. Never raises for malformed input.

        Returns:
            The decoded message when it is an in-order (or unnumbered) data message, else a ProtocolEvent.
        """
        try:
            message = self._decode(data)
        except DECODE_ERRORS as exc:
            return self._undecodable(data, exc)
        return self._decoded(data, message)

    def receive_parts(self) -> ReceiveParts:
        """The pieces of :meth:`receive_frame` for a receive path that takes the common case itself (see
        :class:`ReceiveParts`). Stays valid across :meth:`reset`."""
        return ReceiveParts(
            self._decode,
            DECODE_ERRORS,
            self._last,
            self._decoded,
            self._undecodable,
            self.tapped_sids,
            self.receiver(),
            self._validate,
        )

    def receiver(self) -> Callable[[bytes | str], ReceiveResult | None]:
        """:meth:`receive_frame` as a closure over this protocol's state: the same results, less work per frame
        for the two message types that make up most traffic (in-order deltas, tickers), and None for an in-order
        data frame on a sid in :attr:`tapped_sids`. Stays valid across :meth:`reset`."""
        return make_receiver(
            self._decode, self._last, self._decoded, self._undecodable, self.tapped_sids, self._validate
        )

    def _decoded(self, data: bytes | str, message: AnyMessage) -> ReceiveResult:
        # Identity checks on the class: a failing isinstance() on a Struct class costs ~10x more.
        cls = message.__class__
        if cls is OrderbookDeltaMessage:
            delta: OrderbookDeltaMessage = message  # type: ignore[assignment]  # narrowed by the class check
            if self._validate:
                payload = delta.msg
                # Strings already in the parse caches were validated; only new ones are parsed here.
                if payload.price_dollars not in PRICE_CACHE or payload.delta_fp not in DELTA_CACHE:
                    try:
                        payload.price_ticks()
                        payload.delta_units()
                    except KalshiProtocolError as exc:
                        return self._invalid(data, exc, delta.sid, delta.seq)
            seq = delta.seq
            if seq is None:
                # Deltas are only meaningful in sequence: without seq, continuity cannot be checked.
                error = KalshiProtocolError("orderbook_delta without seq: the book cannot be kept in sequence")
                return self._invalid(data, error, delta.sid, None)
            sid = delta.sid
            last_seqs = self._last
            last = last_seqs.get(sid)
            if last is not None and seq == last + 1:
                last_seqs[sid] = seq
                return delta
            return self._out_of_order(delta, sid, seq, last)
        if cls is TickerMessage:
            return message
        if cls in _SEQUENCED_DATA:
            if message.id and cls in LIST_REPLIES:
                # The reply to an indexlist/underlying_list action ends that command; it is delivered as data.
                self._pending.pop(message.id, None)
            number = message.seq
            owner = message.sid
            if number is None or owner is None:
                return message
            last_seqs = self._last
            previous = last_seqs.get(owner)
            if previous is not None and number == previous + 1:
                last_seqs[owner] = number
                return message
            return self._out_of_order(message, owner, number, previous)
        if cls is OrderbookSnapshotMessage:
            return self._snapshot(data, message)  # type: ignore[arg-type]  # narrowed by the class check
        if isinstance(message, _RESPONSE_CLASSES):
            return self._response(message)
        return message  # fill, market_position, user_order: no seq

    def _undecodable(self, data: bytes | str, exc: BaseException) -> ReceiveResult:
        if isinstance(exc, msgspec.ValidationError):
            try:
                unknown = decode_fallback(data, exc)
            except KalshiProtocolError as bad:
                return self._invalid(data, bad, None, None)
            self.stats.unknown_messages += 1
            self._consume(unknown.sid, unknown.seq)
            return unknown
        text = str(exc)[:_PREVIEW_CHARS]
        error = KalshiProtocolError(f"malformed frame: {text}")
        error.__cause__ = exc
        return self._invalid(data, error, None, None)

    def _invalid(
        self, data: object, error: KalshiProtocolError, sid: int | None, seq: int | None
    ) -> ProtocolErrorEvent:
        self.stats.protocol_errors += 1
        preview = _preview(data)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("dropped malformed frame: %s; %s", error, preview)
        return ProtocolErrorEvent(error, preview, sid, seq)

    def _out_of_order(self, message: AnyMessage, sid: int, seq: int, last: int | None) -> ReceiveResult:
        if sid in self._awaiting:
            if message.__class__ is OrderbookDeltaMessage:
                self.stats.awaiting_snapshot_drops += 1
                return AwaitingSnapshotDropped(sid, seq)
            # Not an order book sid: any message is a valid restart point after reset_sequence.
            self._awaiting.discard(sid)
            self._last[sid] = seq
            return message
        if last is None:
            self._last[sid] = seq
            return message
        if seq <= last:
            self.stats.duplicates += 1
            return DuplicateDropped(sid, seq)
        self._last[sid] = seq
        self.stats.gaps += 1
        return GapDetected(sid, last + 1, seq, message, self._channels.get(sid))

    def _snapshot(self, data: bytes | str, message: OrderbookSnapshotMessage) -> ReceiveResult:
        sid = message.sid
        seq = message.seq
        if self._validate:
            try:
                message.msg.levels_ticks()
            except KalshiProtocolError as exc:
                return self._invalid(data, exc, sid, seq)
        ticker = message.msg.market_ticker
        markets = self._book_markets.get(sid)
        if markets is None:
            markets = self._book_markets[sid] = set()
        last = self._last.get(sid)
        awaiting = sid in self._awaiting
        self._awaiting.discard(sid)
        if seq is None:
            markets.add(ticker)
            return message
        self._last[sid] = seq
        if last is not None and seq > last + 1 and not awaiting and not markets <= {ticker}:
            # Numbers were lost, possibly deltas of the sid's other markets: this snapshot cannot cover them.
            markets.add(ticker)
            self.stats.gaps += 1
            return GapDetected(sid, last + 1, seq, message, self._channels.get(sid))
        markets.add(ticker)
        return message

    def _consume(self, sid: int | None, seq: int | None) -> None:
        if sid is None or seq is None or sid in self._awaiting:
            return
        last = self._last.get(sid)
        if last is None or seq == last + 1:
            self._last[sid] = seq
        # Otherwise leave the tracker: a duplicate changes nothing, and a jump shows up as a gap on the
        # next data message (control responses are always delivered).

    def _response(self, message: ResponseMessage) -> ProtocolEvent:
        self._consume(message.sid, message.seq)
        if isinstance(message, SubscribedMessage):
            sid = message.msg.sid
            self._drop_sid_state(sid)
            self._channels[sid] = message.msg.channel
        elif isinstance(message, UnsubscribedMessage):
            if message.sid is not None:
                self.forget_sid(message.sid)
        elif isinstance(message, ErrorMessage):
            if message.sid is not None and message.terminal:
                self.forget_sid(message.sid)
            if not message.id:
                self.stats.server_errors += 1
                return ServerError(message)
        cmd_id = message.id or None
        if cmd_id is None:
            return CommandResponse(None, message)
        pending = self._pending.get(cmd_id)
        if pending is None:
            return CommandResponse(cmd_id, message)
        pending.remaining -= 1
        final = pending.remaining <= 0 or isinstance(message, ErrorMessage)
        if final:
            del self._pending[cmd_id]
        return CommandResponse(cmd_id, message, pending.command, final)

    # -- state
    @property
    def subscriptions(self) -> Mapping[int, str]:
        """Live ``sid -> channel`` (read-only view)."""
        return MappingProxyType(self._channels)

    @property
    def pending_commands(self) -> Mapping[int, ClientCommand]:
        """Commands sent and not fully answered, by id."""
        return {cmd_id: p.command for cmd_id, p in self._pending.items()}

    @property
    def next_command_id(self) -> int:
        """The id the next command will get."""
        return self._next_id

    def channel_for(self, sid: int) -> str | None:
        """The channel of a subscription, if ``subscribed`` was seen for it."""
        return self._channels.get(sid)

    def last_seq(self, sid: int) -> int | None:
        """The last counted ``seq`` of a sid (None before the first, or while awaiting a snapshot)."""
        return self._last.get(sid)

    def is_awaiting_snapshot(self, sid: int) -> bool:
        """True between :meth:`reset_sequence` and the sid's next snapshot."""
        return sid in self._awaiting

    def reset_sequence(self, sid: int) -> None:
        """Re-base a sid: its next snapshot is accepted at any seq, deltas before it are dropped.

        Call it when requesting snapshots to repair a gap. On a sid without snapshots (e.g. trade), the next
        message of any kind is the new base.
        """
        self._last.pop(sid, None)
        self._book_markets.pop(sid, None)
        self._awaiting.add(sid)

    def forget_sid(self, sid: int) -> None:
        """Drop everything known about a sid (its channel and sequence state)."""
        self._channels.pop(sid, None)
        self._drop_sid_state(sid)

    def forget_command(self, cmd_id: int) -> ClientCommand | None:
        """Stop waiting for responses to a command (e.g. after a timeout); returns it if it was pending."""
        pending = self._pending.pop(cmd_id, None)
        return pending.command if pending else None

    def reset(self) -> None:
        """Forget the session (for a reconnect): sids, trackers, pending commands and unsent frames.

        Command ids keep increasing, so a late response of the old session cannot match a new command.
        """
        self._outbox.clear()
        self._pending.clear()
        self._channels.clear()
        self._last.clear()
        self._awaiting.clear()
        self._book_markets.clear()
        self.tapped_sids.clear()

    def _drop_sid_state(self, sid: int) -> None:
        self.tapped_sids.discard(sid)
        self._last.pop(sid, None)
        self._awaiting.discard(sid)
        self._book_markets.pop(sid, None)


def _opt_list(values: Sequence[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [values] if isinstance(values, str) else list(values)
