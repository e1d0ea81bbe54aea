"""Consumer-side book builder (sans-I/O): a checkpoint plus the entries after it -> exact books.

:class:`BookBuilder` reads entries of the relay's ``orderbook_delta`` stream in order. It applies snapshots and
deltas with the same sequencing rules as the streaming client, so its books equal the relay's (and the
exchange's) at every entry. Whenever continuity is lost it hides the books concerned (they are absent from
:attr:`BookBuilder.books`) and publishes a :class:`~kalshi.ws.lifecycle.Gap`, until they are exact again (a fresh
snapshot in the stream, or the next checkpoint) and a :class:`~kalshi.ws.lifecycle.Repaired` follows:

* a ``seq`` jump on a sid (the relay's client repairs it with ``get_snapshot``; the snapshots follow in-stream);
* a hole in the entry ids (``trimmed``: the consumer fell behind ``MAXLEN``; or entries lost by Redis);
* a ``gap`` control entry (the relay's buffer overflowed while Redis was away, or Redis refused entries and
  stored later ones), a new relay run
  (``relay_restart``) or a new connection of a shard (``reconnect``).

No asyncio and no Redis client: the glue (:mod:`kalshi.relay.client`) feeds it and fetches checkpoints when
:attr:`BookBuilder.wants_checkpoint` names one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import msgspec

from kalshi.errors import KalshiProtocolError
from kalshi.models.markets import Orderbook
from kalshi.relay.checkpoint import Checkpoint
from kalshi.relay.layout import (
    BOOK_CHANNEL,
    FIELD_FRAME,
    FIELD_JSON,
    FIELD_KIND,
    FIELD_META,
    KIND_CHECKPOINT,
    KIND_CONNECTION,
    KIND_GAP,
    KIND_RELAY_START,
    parse_id,
    track_seq,
)
from kalshi.ws.lifecycle import Gap, LifecycleEvent, Repaired
from kalshi.ws.models import OrderbookDeltaPayload, OrderbookSnapshotMessage, decode_message
from kalshi.ws.orderbook import DeltaResult, OrderbookState

if TYPE_CHECKING:
    from kalshi.relay.subscription import RelayEntry

__all__ = ["BookBuilder", "BookBuilderStats", "Frame", "FrameFields", "decode_frame"]

_APPLIED: Final = DeltaResult.APPLIED
# Reasons of the relay's ``gap`` entries for entries it lost: its buffer overflowed while Redis was away, or
# Redis refused entries while storing later ones.
_LOST_REASONS: Final = frozenset({"buffer_overflow", "redis_refused"})
_JSON: Final = msgspec.json.Decoder()


class FrameFields(msgspec.Struct, gc=False):
    """What the relay and the book builders read of a frame's ``msg``, decoded together with its envelope (every
    other field is skipped). Loosely typed, so a frame of another channel never fails to decode because of them;
    the values are checked where they are used."""

    market_ticker: Any = None
    side: Any = None
    price_dollars: Any = None
    delta_fp: Any = None
    clock: Any = None
    price: Any = None  # legacy cents
    delta: Any = None  # legacy contracts
    sid: Any = None  # subscribed answers
    channel: Any = None


class Frame(msgspec.Struct, gc=False):
    """A frame's envelope and :class:`FrameFields`: one decode per frame (see :func:`decode_frame`)."""

    type: str | None = None
    sid: int | None = None
    seq: int | None = None
    msg: FrameFields | None = None


class _Envelope(msgspec.Struct, gc=False):
    type: str | None = None
    sid: int | None = None
    seq: int | None = None


_FRAME: Final = msgspec.json.Decoder(Frame)
_ENVELOPE: Final = msgspec.json.Decoder(_Envelope)
_NO_FRAME: Final = Frame()


def decode_frame(data: bytes) -> Frame:
    """The envelope and book fields of ``data``; never raises (what cannot be read is None)."""
    try:
        return _FRAME.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        pass
    try:  # a msg that is not an object: the envelope alone
        env = _ENVELOPE.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _NO_FRAME
    return Frame(env.type, env.sid, env.seq, None)


# Wire text -> integer, for the few distinct prices and sizes a stream repeats (validated on first sight).
_PRICES: dict[str, int] = {}
_DELTAS: dict[str, int] = {}
_CACHE_LIMIT: Final = 100_000


def _ticks(body: FrameFields) -> tuple[int, int]:
    """``(price_ticks, delta_units)`` of a delta, by :class:`~kalshi.ws.models.OrderbookDeltaPayload`'s rules.

    Raises:
        KalshiProtocolError: no price or size, or not exact.
    """
    price_text = body.price_dollars if body.price_dollars.__class__ is str else None
    delta_text = body.delta_fp if body.delta_fp.__class__ is str else None
    price = _PRICES.get(price_text) if price_text is not None else None
    units = _DELTAS.get(delta_text) if delta_text is not None else None
    if price is not None and units is not None:
        return price, units
    full = OrderbookDeltaPayload(
        market_ticker=body.market_ticker,
        side="yes",
        price_dollars=body.price_dollars,
        delta_fp=body.delta_fp,
        price_cents=body.price,
        delta_contracts=body.delta,
    )
    try:
        price, units = full.price_ticks(), full.delta_units()
    except (AttributeError, TypeError, ValueError) as exc:
        raise KalshiProtocolError(f"orderbook_delta for {body.market_ticker[:60]!r}: {exc}") from exc
    if len(_PRICES) > _CACHE_LIMIT or len(_DELTAS) > _CACHE_LIMIT:
        _PRICES.clear()
        _DELTAS.clear()
    if price_text is not None:
        _PRICES[price_text] = price
    if delta_text is not None:
        _DELTAS[delta_text] = units
    return price, units


class BookBuilderStats(msgspec.Struct):
    """Counters of one builder."""

    entries: int = 0
    snapshots: int = 0
    deltas: int = 0
    duplicates: int = 0
    seq_gaps: int = 0
    missing_entries: int = 0
    gaps: int = 0
    repairs: int = 0
    checkpoints_loaded: int = 0


class _BooksView(Mapping[str, Orderbook]):
    __slots__ = ("_builder",)

    def __init__(self, builder: BookBuilder) -> None:
        self._builder = builder

    def __getitem__(self, ticker: str) -> Orderbook:
        book = self._builder._books.get(ticker)
        if book is None or not book.has_snapshot or not self._builder.wanted(ticker):
            raise KeyError(ticker)
        return book.view()

    def __iter__(self) -> Iterator[str]:
        builder = self._builder
        return iter([t for t, b in builder._books.items() if b.has_snapshot and builder.wanted(t)])

    def __len__(self) -> int:
        return sum(1 for _ in self)


class BookBuilder:
    """Exact books from the ``orderbook_delta`` stream (see the module docstring).

    Args:
        tickers: the markets to expose (None: every market in the stream). Other markets are still tracked
            cheaply (their books are built too: a market added later is then ready at once).
    """

    def __init__(self, tickers: Collection[str] | None = None) -> None:
        self._wanted: set[str] | None = None if tickers is None else set(tickers)
        self._books: dict[str, OrderbookState] = {}
        self._source: dict[str, tuple[str, int]] = {}
        self._seq: dict[tuple[str, int], int] = {}
        self.needs_snapshot: set[str] = set()
        """Markets whose book a bad update broke (not a seq gap: the streaming client repairs those itself):
        only a fresh snapshot mends them. The relay asks the exchange for one; a consumer waits for it."""
        self._last_id: tuple[int, int] | None = None
        self._epoch_prefix = "-"  # "<epoch>-" of the last id applied
        self._events: list[LifecycleEvent] = []
        self.stats = BookBuilderStats()
        self.wants_checkpoint: str | None = None
        """The checkpoint key to load (:meth:`load_checkpoint`) before the next entry, when books are stale."""
        self.books: Mapping[str, Orderbook] = _BooksView(self)
        """Exact books by ticker; stale and unbuilt ones are absent."""

    # ------------------------------------------------------------------ state

    def wanted(self, ticker: str) -> bool:
        return self._wanted is None or ticker in self._wanted

    def want(self, tickers: Collection[str]) -> None:
        """Also expose ``tickers``."""
        if self._wanted is not None:
            self._wanted.update(tickers)

    @property
    def position(self) -> str | None:
        """The id of the last entry applied (read on from here)."""
        return None if self._last_id is None else f"{self._last_id[0]}-{self._last_id[1]}"

    def stale(self) -> list[str]:
        """Tickers known but not exact now."""
        return [t for t, book in self._books.items() if not book.has_snapshot and self.wanted(t)]

    def events(self) -> list[LifecycleEvent]:
        """The lifecycle events since the last call."""
        events, self._events = self._events, []
        return events

    # ------------------------------------------------------------------ checkpoints

    def load_checkpoint(self, checkpoint: Checkpoint, *, start: bool = False) -> list[str]:
        """Take the books of ``checkpoint``: all of them when ``start`` (the builder then reads on from
        ``checkpoint.entry_id``), else only the stale or missing ones. Returns the tickers loaded.
        """
        self.wants_checkpoint = None
        loaded = []
        for entry in checkpoint.books:
            book = self._books.get(entry.ticker)
            if not start and book is not None and book.has_snapshot:
                continue
            state = OrderbookState(entry.ticker)
            state.apply_snapshot(
                [(p, s) for p, s in entry.yes], [(p, s) for p, s in entry.no], seq=entry.seq, clock=entry.clock
            )
            was_stale = book is not None
            self._books[entry.ticker] = state
            self._source[entry.ticker] = (entry.c, entry.sid)
            loaded.append(entry.ticker)
            if was_stale and not start:
                self.stats.repairs += 1
        self._seq = {(s.c, s.sid): s.seq for s in checkpoint.sids}
        if start:
            self._last_id = parse_id(checkpoint.entry_id)
            self._epoch_prefix = f"{self._last_id[0]}-"
        self.stats.checkpoints_loaded += 1
        repaired = tuple(t for t in loaded if self.wanted(t))
        if repaired and not start:
            self._events.append(Repaired(BOOK_CHANNEL, None, repaired))
        return loaded

    # ------------------------------------------------------------------ entries

    def apply(self, entry_id: bytes | str, fields: Mapping[bytes, bytes]) -> str | None:
        """Apply one entry; returns the ticker whose book changed (and is exact), if any."""
        self.stats.entries += 1
        last = self._last_id
        text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        prefix = self._epoch_prefix
        if last is not None and text.startswith(prefix):  # same relay run (almost always): parse the count only
            position = (last[0], int(text[len(prefix) :]))
        else:
            position = parse_id(text)
        if last is not None:
            if position[0] != last[0]:
                if position[0] < last[0]:
                    return None  # an earlier relay run's: before this builder's checkpoint (ids only grow)
                self._all_stale("relay_restart", None)
            elif position[1] > last[1] + 1:
                missing = position[1] - last[1] - 1
                self.stats.missing_entries += missing
                self._all_stale("trimmed", missing)
            elif position[1] <= last[1]:
                return None  # already applied (a re-read after reconnecting)
        if last is None or position[0] != last[0]:
            self._epoch_prefix = f"{position[0]}-"
        self._last_id = position
        frame = fields.get(FIELD_FRAME)
        if frame is None:
            self._control(fields)
            return None
        meta = fields.get(FIELD_META)
        parts = meta.split(b" ") if meta is not None else ()
        return self.apply_frame(frame, parts[1].decode(errors="replace") if len(parts) == 4 else "")

    def apply_entries(self, entries: Sequence[RelayEntry]) -> list[str]:
        """Apply one read's entries in order (an item of :meth:`RelayFeed.subscribe_raw_batches
        <kalshi.relay.RelayFeed.subscribe_raw_batches>`); returns the tickers whose book changed (and is exact),
        each once. Same result as :meth:`apply` on each entry, cheaper: continuity is checked once for the read
        when its ids follow on without a hole (as they almost always do)."""
        if not entries:
            return []
        last = self._last_id
        prefix = self._epoch_prefix
        first_id = entries[0].id
        last_id = entries[-1].id
        if last is None or not (first_id.startswith(prefix) and last_id.startswith(prefix)):
            return self._apply_each(entries)
        start = len(prefix)
        first_n = int(first_id[start:])
        last_n = int(last_id[start:])
        if first_n != last[1] + 1 or last_n - first_n != len(entries) - 1:
            return self._apply_each(entries)  # a hole, a re-read or a new relay run: entry by entry
        self.stats.entries += len(entries)
        self._last_id = (last[0], last_n)
        changed: dict[str, None] = {}
        decode = _FRAME.decode
        key: tuple[str, int] = ("", -1)
        for entry in entries:
            frame = entry.frame
            if frame is None:
                self._control(entry.stored)
                continue
            try:
                decoded = decode(frame)
            except (msgspec.DecodeError, msgspec.ValidationError):
                decoded = decode_frame(frame)
            sid = decoded.sid
            if sid is None:
                continue
            conn = entry.conn or ""
            if sid != key[1] or conn != key[0]:
                key = (conn, sid)  # one key per run of entries of a sid
            if decoded.type == "orderbook_delta":
                ticker = self._delta(decoded.msg, key, decoded.seq)
            else:
                ticker = self.apply_decoded(decoded, frame, conn)
            if ticker is not None:
                changed[ticker] = None
        return list(changed)

    def _apply_each(self, entries: Sequence[RelayEntry]) -> list[str]:
        changed: dict[str, None] = {}
        for entry in entries:
            ticker = self.apply(entry.id, entry.stored)
            if ticker is not None:
                changed[ticker] = None
        return list(changed)

    def _control(self, fields: Mapping[bytes, bytes]) -> None:
        kind = fields.get(FIELD_KIND, b"").decode(errors="replace")
        try:
            body = _JSON.decode(fields.get(FIELD_JSON, b"{}"))
        except msgspec.DecodeError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if kind == KIND_RELAY_START:
            self._all_stale("relay_restart", None)
        elif kind == KIND_CONNECTION:
            self.connection_replaced(str(body.get("prev", "")))
        elif kind == KIND_GAP and body.get("reason") in _LOST_REASONS:
            self._all_stale(str(body["reason"]), None)
        elif kind == KIND_CHECKPOINT and self.stale():
            key = body.get("key")
            if isinstance(key, str):
                self.wants_checkpoint = key

    def apply_frame(self, frame: bytes, conn: str) -> str | None:
        """Apply one frame received on connection ``conn`` (its tag, e.g. ``"0.1"``) with no entry id: how the
        relay keeps its own books for checkpoints. Returns the ticker whose book changed (and is exact), if any."""
        return self.apply_decoded(decode_frame(frame), frame, conn)

    def apply_decoded(self, decoded: Frame, frame: bytes, conn: str) -> str | None:
        """:meth:`apply_frame` with the frame already decoded (:func:`decode_frame`)."""
        sid = decoded.sid
        if sid is None:
            return None
        kind = decoded.type
        seq = decoded.seq
        key = (conn, sid)
        if kind == "orderbook_delta":
            return self._delta(decoded.msg, key, seq)
        if kind == "orderbook_snapshot":
            return self._snapshot(frame, key, seq)
        if kind == "subscribed":
            self._seq.pop(key, None)
        elif seq is not None:
            self._seq[key] = track_seq(self._seq.get(key), seq, control=True)
            if kind == "error":
                # A subscription-scoped error ends the sid: the relay resubscribes, fresh snapshots follow.
                self._mark_stale(self._markets_of(key), "subscription_error", sid)
        elif kind == "error":
            self._mark_stale(self._markets_of(key), "subscription_error", sid)
        return None

    def _markets_of(self, key: tuple[str, int]) -> list[str]:
        return [t for t, source in self._source.items() if source == key]

    def _delta(self, body: FrameFields | None, key: tuple[str, int], seq: int | None) -> str | None:
        # The usual delta: in seq order, for a book built from this sid, a price and size seen before. Anything else, or a rejected apply_delta (which changes nothing), takes the full checks.
        if seq is not None and body is not None and self._seq.get(key, seq - 1) == seq - 1:
            ticker = body.market_ticker
            if ticker.__class__ is str and self._source.get(ticker) == key:
                book = self._books.get(ticker)
                price_text = body.price_dollars
                size_text = body.delta_fp
                clock = body.clock
                if (
                    book is not None
                    and book.has_snapshot
                    and price_text.__class__ is str
                    and (price := _PRICES.get(price_text)) is not None
                    and size_text.__class__ is str
                    and (units := _DELTAS.get(size_text)) is not None
                    and (clock is None or clock.__class__ is int)
                    and book.apply_delta(body.side, price, units, seq=seq, clock=clock) is _APPLIED
                ):
                    self._seq[key] = seq
                    self.stats.deltas += 1
                    return ticker
        return self._checked_delta(body, key, seq)

    def _checked_delta(self, body: FrameFields | None, key: tuple[str, int], seq: int | None) -> str | None:
        if seq is not None:
            last = self._seq.get(key)
            if last is not None and seq != last + 1:
                if seq <= last:
                    self.stats.duplicates += 1
                    return None
                self._seq[key] = seq
                self.stats.seq_gaps += 1
                self._mark_stale(self._markets_of(key), "seq_gap", key[1], expected=last + 1, received=seq)
                return None
            self._seq[key] = seq
        if (
            body is None
            or body.market_ticker.__class__ is not str
            or not (body.clock is None or body.clock.__class__ is int)
        ):
            # Which book it was for is unknown: every book of the sid is in doubt until repaired.
            self._mark_stale(self._markets_of(key), "bad_delta_malformed", key[1])
            return None
        ticker = body.market_ticker
        book = self._books.get(ticker)
        if book is None or not book.has_snapshot or self._source.get(ticker) != key:
            return None
        try:
            price, units = _ticks(body)
        except KalshiProtocolError:
            result = DeltaResult.BAD_PRICE
        else:
            result = book.apply_delta(body.side, price, units, seq=seq, clock=body.clock)
        if result is not _APPLIED:
            self._mark_stale([ticker], f"bad_delta_{result.name.lower()}", key[1])
            return None
        self.stats.deltas += 1
        return ticker

    def _snapshot(self, frame: bytes, key: tuple[str, int], seq: int | None) -> str | None:
        message = decode_message(frame)
        if message.__class__ is not OrderbookSnapshotMessage:
            return None
        body = message.msg
        ticker = body.market_ticker
        if seq is not None:
            last = self._seq.get(key)
            self._seq[key] = track_seq(last, seq, snapshot=True)
            others = [t for t in self._markets_of(key) if t != ticker]
            if last is not None and seq > last + 1 and others:
                # Numbers were lost, maybe deltas of the sid's other markets: this snapshot cannot cover them.
                self.stats.seq_gaps += 1
                self._mark_stale([*others, ticker], "seq_gap", key[1], expected=last + 1, received=seq)
                return None
        book = self._books.get(ticker)
        was_stale = book is not None and not book.has_snapshot
        if book is None:
            book = self._books[ticker] = OrderbookState(ticker)
        yes, no = body.levels_ticks()
        try:
            book.apply_snapshot(yes, no, seq=seq, clock=body.clock)
        except ValueError:
            self._mark_stale([ticker], "bad_snapshot", key[1])
            return None
        self._source[ticker] = key
        self.needs_snapshot.discard(ticker)
        self.stats.snapshots += 1
        if was_stale:
            self.stats.repairs += 1
            if self.wanted(ticker):
                self._events.append(Repaired(BOOK_CHANNEL, key[1], (ticker,)))
        return ticker

    def connection_replaced(self, prev: str) -> None:
        """Frames of a shard now come on a new connection: the books of ``prev`` are stale until resnapshotted."""
        self._mark_stale([t for t, (c, _) in self._source.items() if c == prev], "reconnect", None)

    # ------------------------------------------------------------------ gaps

    def _all_stale(self, reason: str, missing: int | None) -> None:
        self._mark_stale(list(self._books), reason, None, received=missing)

    def _mark_stale(
        self,
        tickers: list[str],
        reason: str,
        sid: int | None,
        *,
        expected: int | None = None,
        received: int | None = None,
    ) -> None:
        hit = []
        for ticker in tickers:
            book = self._books.get(ticker)
            if book is not None and book.has_snapshot:
                book.mark_stale()
                hit.append(ticker)
        self.stats.gaps += 1
        if reason.startswith("bad_"):
            self.needs_snapshot.update(hit)
        shown = tuple(t for t in hit if self.wanted(t))
        if shown or reason == "trimmed":
            self._events.append(Gap(BOOK_CHANNEL, sid, expected, received, shown, reason))
