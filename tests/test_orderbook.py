"""Tests for kalshi.ws.orderbook: exact snapshot/delta application, stale handling, views, the manager."""

from __future__ import annotations

import ast
import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import kalshi.ws.orderbook as orderbook_module
from kalshi._fixed import count_units, price_ticks
from kalshi.errors import KalshiError
from kalshi.models.markets import Orderbook, PriceLevel
from kalshi.ws.orderbook import BookError, DeltaResult, OrderbookManager, OrderbookState

D = Decimal


# -- fake wire messages (the shape of kalshi.ws.models, built from wire strings) ---------------------


@dataclasses.dataclass(frozen=True)
class SnapBody:
    market_ticker: str
    yes_dollars_fp: tuple[tuple[str, str], ...] = ()
    no_dollars_fp: tuple[tuple[str, str], ...] = ()
    clock: int | None = None

    def levels_ticks(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return (
            [(price_ticks(p), count_units(c)) for p, c in self.yes_dollars_fp],
            [(price_ticks(p), count_units(c)) for p, c in self.no_dollars_fp],
        )


@dataclasses.dataclass(frozen=True)
class DeltaBody:
    market_ticker: str
    side: str
    price_dollars: str
    delta_fp: str
    clock: int | None = None

    def price_ticks(self) -> int:
        return price_ticks(self.price_dollars)

    def delta_units(self) -> int:
        return count_units(self.delta_fp)


@dataclasses.dataclass(frozen=True)
class Envelope:
    seq: int | None
    msg: SnapBody | DeltaBody


def _dollars(ticks: int) -> str:
    return f"{ticks // 10000}.{ticks % 10000:04d}"


def _count(units: int) -> str:
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 100)
    return f"{sign}{whole}.{frac:02d}"


def ready_book(yes: list[tuple[int, int]] | None = None, no: list[tuple[int, int]] | None = None) -> OrderbookState:
    book = OrderbookState("KX-T")
    book.apply_snapshot(yes or [(5600, 1000), (5500, 250)], no or [(4300, 500), (4000, 75)], seq=1)
    return book


# -- snapshots --------------------------------------------------------------------------------------


def test_snapshot_sub_penny_prices_and_fractional_counts() -> None:
    book = OrderbookState("KX-T")
    book.apply_snapshot(
        [(price_ticks("0.5612"), count_units("12.50")), (price_ticks("0.0001"), count_units("0.01"))],
        [(price_ticks("0.4300"), count_units("3.33"))],
        seq=7,
        clock=99,
    )
    view = book.view()
    assert view.yes == (PriceLevel(D("0.5612"), D("12.50")), PriceLevel(D("0.0001"), D("0.01")))
    assert view.no_ticks == ((4300, 333),)
    assert (view.seq, view.clock) == (7, 99)
    assert book.has_snapshot and not book.stale
    assert book.best_yes_bid() == (5612, 1250)
    assert book.best_no_bid() == (4300, 333)


def test_snapshot_ignores_zero_levels_and_replaces_everything() -> None:
    book = ready_book()
    book.apply_snapshot([(100, 0), (200, 5)], [], seq=9)
    assert book.view().yes_ticks == ((200, 5),)
    assert book.view().no_ticks == ()
    assert book.best_no_bid() is None
    assert book.last_seq == 9


@pytest.mark.parametrize(
    ("yes", "no", "match"),
    [
        ([(5600, -1)], [], "negative size"),
        ([(0, 5)], [], "outside"),
        ([], [(10_000, 5)], "outside"),
        ([(5600, 1), (5600, 2)], [], "twice"),
        # A repeated price is refused whatever its sizes and their order (found by the book fuzzer: a repeat of a
        # zero-size level used to pass, and (0 then 5) was accepted where (5 then 0) was refused).
        ([(5600, 0), (5600, 0)], [], "twice"),
        ([(5600, 0), (5600, 3)], [], "twice"),
        ([(5600, 3), (5600, 0)], [], "twice"),
        ([], [(100, 0), (100, 0)], "twice"),
        ([(D("0.56"), 1)], [], "integer"),
    ],
)
def test_bad_snapshot_raises_and_marks_stale(yes: list[tuple[int, int]], no: list[tuple[int, int]], match: str) -> None:
    book = ready_book()
    before = book.version
    with pytest.raises(BookError, match=match) as info:
        book.apply_snapshot(yes, no, seq=5)
    assert isinstance(info.value, KalshiError)
    assert isinstance(info.value, ValueError)
    assert book.stale and not book.has_snapshot
    assert book.version > before
    with pytest.raises(BookError, match="stale"):
        book.view()


# -- deltas -----------------------------------------------------------------------------------------


def test_delta_changes_adds_and_removes_levels() -> None:
    book = ready_book()
    assert book.apply_delta("yes", 5600, -250, seq=2, clock=11) is DeltaResult.APPLIED
    assert book.apply_delta("yes", 5612, 1250, seq=3) is DeltaResult.APPLIED  # new sub-penny level
    assert book.apply_delta("no", 4000, -75, seq=4) is DeltaResult.APPLIED  # level removed at zero
    view = book.view()
    assert view.yes_ticks == ((5612, 1250), (5600, 750), (5500, 250))
    assert view.no_ticks == ((4300, 500),)
    assert (book.last_seq, book.clock) == (4, 11)
    assert book.best_yes_bid() == (5612, 1250)


def test_delta_before_snapshot_is_reported_not_applied() -> None:
    book = OrderbookState("KX-T")
    assert book.apply_delta("yes", 5600, 100, seq=1) is DeltaResult.NO_SNAPSHOT
    assert book.apply_delta("no", 4300, 100) is DeltaResult.NO_SNAPSHOT
    assert book.version == 0 and book.last_seq is None
    assert book.best_yes_bid() is None
    with pytest.raises(BookError, match="not received a snapshot"):
        book.view()


@pytest.mark.parametrize(
    ("side", "price", "delta", "result"),
    [
        ("yes", 5600, -1001, DeltaResult.NEGATIVE_LEVEL),  # existing level driven below zero
        ("no", 4200, -1, DeltaResult.NEGATIVE_LEVEL),  # a new level cannot start negative
        ("maybe", 5600, 1, DeltaResult.BAD_SIDE),
        ("YES", 5600, 1, DeltaResult.BAD_SIDE),
        ("yes", 0, 5, DeltaResult.BAD_PRICE),
        ("no", 10_000, 5, DeltaResult.BAD_PRICE),
        ("yes", -5, 5, DeltaResult.BAD_PRICE),
    ],
)
def test_rejected_delta_changes_nothing(side: str, price: int, delta: int, result: DeltaResult) -> None:
    book = ready_book()
    before, version = book.view(), book.version
    assert book.apply_delta(side, price, delta, seq=50, clock=50) is result
    assert book.version == version
    assert (book.last_seq, book.clock) == (1, None)
    assert book.view() is before
    assert book.view().yes_ticks == ((5600, 1000), (5500, 250))


def test_zero_delta_on_missing_level_adds_nothing() -> None:
    book = ready_book()
    assert book.apply_delta("yes", 5700, 0, seq=2) is DeltaResult.APPLIED
    assert book.view().yes_ticks == ((5600, 1000), (5500, 250))
    assert book.last_seq == 2


def test_version_counts_every_applied_change() -> None:
    book = OrderbookState("KX-T")
    book.apply_snapshot([(100, 1)], [])
    v = book.version
    book.apply_delta("yes", 100, 1)
    book.apply_delta("no", 200, 1)
    book.apply_delta("no", 200, -5)  # rejected
    assert book.version == v + 2
    book.clear()
    assert book.version == v + 3


# -- use_yes_price ----------------------------------------------------------------------------------


def test_yes_price_terms_converts_no_side_on_input() -> None:
    plain = OrderbookState("KX-T")
    yes_terms = OrderbookState("KX-T", yes_price_terms=True)
    assert yes_terms.yes_price_terms and not plain.yes_price_terms
    plain.apply_snapshot([(5600, 100)], [(4300, 500), (4000, 75)])
    # The same NO bids quoted as YES prices: NO 0.43 is YES 0.57, NO 0.40 is YES 0.60.
    yes_terms.apply_snapshot([(5600, 100)], [(5700, 500), (6000, 75)])
    assert yes_terms.view() == plain.view()
    assert yes_terms.best_no_bid() == (4300, 500)

    assert plain.apply_delta("no", 4312, 150) is DeltaResult.APPLIED
    assert yes_terms.apply_delta("no", 5688, 150) is DeltaResult.APPLIED
    assert plain.apply_delta("no", 4000, -75) is DeltaResult.APPLIED
    assert yes_terms.apply_delta("no", 6000, -75) is DeltaResult.APPLIED
    assert yes_terms.apply_delta("yes", 5600, 5) is DeltaResult.APPLIED  # YES side untouched by the flag
    assert plain.apply_delta("yes", 5600, 5) is DeltaResult.APPLIED
    assert yes_terms.view() == plain.view()
    assert yes_terms.view().no_ticks == ((4312, 150), (4300, 500))
    assert yes_terms.view().best_yes_ask == PriceLevel(D("0.5688"), D("1.50"))
    assert yes_terms.apply_delta("no", 0, 5) is DeltaResult.BAD_PRICE  # YES 0 is NO $1
    assert yes_terms.apply_delta("no", 10_000, 5) is DeltaResult.BAD_PRICE


# -- stale, clear, views ----------------------------------------------------------------------------


def test_mark_stale_hides_book_until_next_snapshot() -> None:
    book = ready_book()
    book.mark_stale()
    assert book.stale and not book.has_snapshot
    assert book.best_yes_bid() is None
    assert book.apply_delta("yes", 5600, 1) is DeltaResult.NO_SNAPSHOT
    with pytest.raises(BookError, match="stale"):
        book.view()
    book.apply_snapshot([(5000, 100)], [], seq=30)
    assert not book.stale and book.has_snapshot
    assert book.view().yes_ticks == ((5000, 100),)
    assert book.apply_delta("yes", 5000, 1, seq=31) is DeltaResult.APPLIED


def test_clear_returns_to_initial_state() -> None:
    book = ready_book()
    book.clear()
    assert not book.stale and not book.has_snapshot
    assert (book.last_seq, book.clock) == (None, None)
    assert book.apply_delta("yes", 5600, 1) is DeltaResult.NO_SNAPSHOT


def test_view_is_immutable_and_unaffected_by_later_changes() -> None:
    book = ready_book()
    view = book.view()
    yes_before, no_before, levels_before = view.yes_ticks, view.no_ticks, view.yes
    book.apply_delta("yes", 5600, -1000)
    book.apply_delta("yes", 5800, 5)
    book.apply_delta("no", 4300, 7)
    book.apply_snapshot([(1, 1)], [(2, 2)])
    book.mark_stale()
    assert view.yes_ticks == yes_before == ((5600, 1000), (5500, 250))
    assert view.no_ticks == no_before
    assert view.yes == levels_before
    assert view.best_yes_bid == PriceLevel(D("0.5600"), D("10.00"))
    with pytest.raises(AttributeError):
        view.seq = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        view.market_ticker = "X"  # type: ignore[misc]


def test_view_is_reused_until_a_change_and_shares_the_unchanged_side() -> None:
    book = ready_book()
    first = book.view()
    assert book.view() is first
    book.apply_delta("yes", 5600, 1)
    second = book.view()
    assert second is not first and second.version == first.version + 1
    # Only the YES side changed: the NO ladder (and its sorted/Decimal caches) is shared.
    assert second._no_side is first._no_side
    assert second._yes_side is not first._yes_side
    assert first.yes_ticks[0] == (5600, 1000) and second.yes_ticks[0] == (5600, 1001)


def test_best_bid_uses_current_ladder_after_view() -> None:
    book = ready_book()
    book.view()
    assert book.best_yes_bid() == (5600, 1000)
    book.apply_delta("yes", 5600, -1000)
    assert book.best_yes_bid() == (5500, 250)  # the view's ladder is outdated: not used
    assert book.best_no_bid() == (4300, 500)


def test_derived_asks_and_spread_from_live_book() -> None:
    book = ready_book()
    view = book.view()
    assert view.best_yes_ask == PriceLevel(D("0.5700"), D("5.00"))
    assert view.best_no_ask == PriceLevel(D("0.4400"), D("10.00"))
    assert view.spread == D("0.0100")
    assert view.mid == D("0.5650")
    book.apply_delta("no", 4350, 100)  # YES ask 0.5650: half a cent spread
    assert book.view().spread == D("0.0050")
    assert book.view().mid == D("0.5625")


def test_repr_of_state() -> None:
    assert repr(ready_book()) == (
        "OrderbookState('KX-T', yes=2 levels, no=2 levels, has_snapshot=True, stale=False, version=1)"
    )


# -- manager ----------------------------------------------------------------------------------------


def snap(
    seq: int, ticker: str, yes: list[tuple[str, str]], no: list[tuple[str, str]], clock: int | None = None
) -> Envelope:
    return Envelope(seq, SnapBody(ticker, tuple(yes), tuple(no), clock))


def delta(seq: int, ticker: str, side: str, price: str, amount: str, clock: int | None = None) -> Envelope:
    return Envelope(seq, DeltaBody(ticker, side, price, amount, clock))


def test_manager_routes_messages_by_ticker() -> None:
    manager = OrderbookManager()
    assert manager.apply_delta_message(delta(1, "A", "yes", "0.5000", "1.00")) is DeltaResult.NO_SNAPSHOT
    book_a = manager.apply_snapshot_message(snap(2, "A", [("0.5000", "10.00")], [("0.4000", "2.50")], clock=70))
    manager.apply_snapshot_message(snap(3, "B", [], [("0.0100", "1.00")]))
    assert manager.get("A") is book_a and "A" in manager and len(manager) == 2
    assert sorted(manager) == ["A", "B"]
    assert book_a.clock == 70 and book_a.last_seq == 2
    assert manager.apply_delta_message(delta(4, "A", "yes", "0.5000", "-2.25", clock=71)) is DeltaResult.APPLIED
    assert manager.apply_delta_message(delta(5, "B", "no", "0.0100", "-1.00")) is DeltaResult.APPLIED
    view = book_a.view()
    assert view.yes[0] == (D("0.5000"), D("7.75"))
    assert (view.seq, view.clock) == (4, 71)
    assert manager.get("B") is not None and manager.get("B").view().no == ()  # type: ignore[union-attr]
    assert manager.get("C") is None
    assert manager.apply_delta_message(delta(6, "C", "yes", "0.5000", "1.00")) is DeltaResult.NO_SNAPSHOT


def test_manager_drops_duplicates_by_seq() -> None:
    manager = OrderbookManager()
    manager.apply_snapshot_message(snap(10, "A", [("0.5000", "10.00")], []))
    assert manager.apply_delta_message(delta(10, "A", "yes", "0.5000", "1.00")) is DeltaResult.DUPLICATE
    assert manager.apply_delta_message(delta(11, "A", "yes", "0.5000", "1.00")) is DeltaResult.APPLIED
    assert manager.apply_delta_message(delta(11, "A", "yes", "0.5000", "1.00")) is DeltaResult.DUPLICATE
    assert manager.apply_delta_message(delta(9, "A", "yes", "0.5000", "1.00")) is DeltaResult.DUPLICATE
    assert manager.books["A"].view().yes_ticks == ((5000, 1100),)


def test_manager_stale_remove_clear_and_read_only_books() -> None:
    manager = OrderbookManager(yes_price_terms=True)
    manager.apply_snapshot_message(snap(1, "A", [], [("0.6000", "1.00")]))
    manager.apply_snapshot_message(snap(2, "B", [("0.1000", "1.00")], []))
    assert manager.books["A"].view().no_ticks == ((4000, 100),)  # YES terms converted
    manager.mark_stale("A")
    manager.mark_stale("unknown")  # ignored
    assert manager.books["A"].stale and not manager.books["B"].stale
    manager.mark_all_stale()
    assert all(book.stale for book in manager.books.values())
    with pytest.raises(TypeError):
        manager.books["X"] = OrderbookState("X")  # type: ignore[index]
    assert manager.remove("A") is not None and manager.remove("A") is None
    manager.clear()
    assert len(manager) == 0 and dict(manager.books) == {}


def test_manager_bad_snapshot_keeps_no_new_book_and_stales_old_one() -> None:
    manager = OrderbookManager()
    with pytest.raises(BookError):
        manager.apply_snapshot_message(snap(1, "A", [("0.5000", "1.00"), ("0.5000", "2.00")], []))
    assert manager.get("A") is None
    manager.apply_snapshot_message(snap(2, "A", [("0.5000", "1.00")], []))
    with pytest.raises(BookError):
        manager.apply_snapshot_message(snap(3, "A", [("0.0000", "1.00")], []))
    assert manager.books["A"].stale


def test_manager_accepts_the_real_wire_models() -> None:
    from kalshi.ws.models import MESSAGE_DECODER, OrderbookDeltaMessage, OrderbookSnapshotMessage

    manager = OrderbookManager()
    # Built from wire JSON, as the client receives it.
    snapshot = MESSAGE_DECODER.decode(
        b'{"type":"orderbook_snapshot","sid":2,"seq":2,"msg":{"market_ticker":"FED-23DEC-T3.00",'
        b'"yes_dollars_fp":[["0.0800","300.00"],["0.2200","333.00"]],'
        b'"no_dollars_fp":[["0.5400","20.00"],["0.5600","146.00"]]}}'
    )
    update = MESSAGE_DECODER.decode(
        b'{"type":"orderbook_delta","sid":2,"seq":3,"msg":{"market_ticker":"FED-23DEC-T3.00","side":"yes",'
        b'"price_dollars":"0.2200","delta_fp":"-54.00"}}'
    )
    assert isinstance(snapshot, OrderbookSnapshotMessage)
    assert isinstance(update, OrderbookDeltaMessage)
    manager.apply_snapshot_message(snapshot)
    assert manager.apply_delta_message(update) is DeltaResult.APPLIED
    view = manager.books["FED-23DEC-T3.00"].view()
    assert view == Orderbook.from_dollars(
        "FED-23DEC-T3.00", [("0.2200", "279.00"), ("0.0800", "300.00")], [("0.5600", "146.00"), ("0.5400", "20.00")]
    )
    assert view.yes[0] == (D("0.2200"), D("279.00"))
    assert view.best_yes_ask == (D("0.4400"), D("146.00"))


_WIRE_PRICES = st.sampled_from(["0.0000", "0.0001", "0.0800", "0.5000", "0.9999", "1.0000", "0.08", "0.5", "x"])
_WIRE_COUNTS = st.sampled_from(["0.00", "1.00", "300.00", "12.5", "-1.00", "7.77", "1e3"])


@settings(max_examples=300)
@given(
    yes=st.lists(st.tuples(_WIRE_PRICES, _WIRE_COUNTS), max_size=6),
    no=st.lists(st.tuples(_WIRE_PRICES, _WIRE_COUNTS), max_size=6),
)
def test_a_wire_snapshot_builds_the_book_the_level_by_level_path_builds(
    yes: list[tuple[str, str]], no: list[tuple[str, str]]
) -> None:
    # The manager's one-pass path for wire snapshots must build (or refuse) exactly what the checked
    # level-by-level path does, whatever the numbers, repeats and zero sizes.
    import json

    from kalshi.ws.models import MESSAGE_DECODER

    body = {"market_ticker": "M", "yes_dollars_fp": [list(level) for level in yes]}
    body["no_dollars_fp"] = [list(level) for level in no]
    frame = json.dumps({"type": "orderbook_snapshot", "sid": 1, "seq": 1, "msg": body}).encode()
    expected: OrderbookState | None = OrderbookState("M")
    try:
        want_yes, want_no = MESSAGE_DECODER.decode(frame).msg.levels_ticks()
        assert expected is not None
        expected.apply_snapshot(want_yes, want_no, seq=1)
    except (BookError, KalshiError):
        expected = None
    manager = OrderbookManager()
    try:
        got: OrderbookState | None = manager.apply_snapshot_message(MESSAGE_DECODER.decode(frame))
    except (BookError, KalshiError):
        got = None
    if expected is None:
        assert got is None and manager.get("M") is None
    else:
        assert got is not None and got.view() == expected.view() and got.last_seq == 1


# -- purity -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["kalshi/ws/orderbook.py", "kalshi/models/markets.py"])
def test_pure_module_imports_no_io(module: str) -> None:
    src = Path(orderbook_module.__file__).parents[2] / module
    forbidden = {"asyncio", "socket", "picows", "aiohttp", "httpx", "websockets", "ssl", "selectors"}
    imported: set[str] = set()
    for node in ast.walk(ast.parse(src.read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported, "no imports found: the parse is broken"
    assert not imported & forbidden


# -- model-based test -------------------------------------------------------------------------------

TICKERS = ("A", "B")
# Sub-penny and edge prices, few enough that deltas collide on levels often.
PRICES = (1, 99, 4300, 4312, 5600, 5612, 5613, 9999)
sides = st.sampled_from(("yes", "no"))
tickers = st.sampled_from(TICKERS)
prices = st.sampled_from(PRICES)
units = st.integers(min_value=1, max_value=250_000)  # up to 2500 contracts, fractional
snapshot_side = st.dictionaries(prices, st.integers(min_value=0, max_value=250_000), max_size=6)


@dataclasses.dataclass
class ModelBook:
    sides: dict[str, dict[int, int]]
    ready: bool = False
    stale: bool = False
    seq: int | None = None
    clock: int | None = None


class BookMachine(RuleBasedStateMachine):
    """One subscription carrying two markets. The test plays the protocol layer: it numbers messages,
    drops duplicates (seq <= last seen), and on a gap drops the message and marks every book stale."""

    yes_price_terms = False

    def __init__(self) -> None:
        super().__init__()
        self.manager = OrderbookManager(yes_price_terms=self.yes_price_terms)
        self.model = {t: ModelBook({"yes": {}, "no": {}}) for t in TICKERS}
        self.next_seq = 1
        self.last_seen: int | None = None
        self.sent: list[Envelope] = []
        self.held_views: list[tuple[Orderbook, tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]] = []

    @initialize(yes_a=snapshot_side, no_a=snapshot_side, yes_b=snapshot_side, no_b=snapshot_side)
    def first_snapshots(
        self, yes_a: dict[int, int], no_a: dict[int, int], yes_b: dict[int, int], no_b: dict[int, int]
    ) -> None:
        self.snapshot("A", yes_a, no_a, None)
        self.snapshot("B", yes_b, no_b, 1)

    def wire_price(self, side: str, ticks: int) -> str:
        if side == "no" and self.yes_price_terms:
            ticks = 10_000 - ticks
        return _dollars(ticks)

    def deliver(self, envelope: Envelope) -> DeltaResult | None:
        """The protocol layer's sequencing, then the manager."""
        self.sent.append(envelope)
        seq = envelope.seq
        assert seq is not None
        if self.last_seen is not None and seq <= self.last_seen:
            return None
        if self.last_seen is not None and seq > self.last_seen + 1:
            self.manager.mark_all_stale()
            for model in self.model.values():
                if model.ready or model.stale:
                    model.sides = {"yes": {}, "no": {}}
                    model.ready, model.stale, model.seq = False, True, None
            self.last_seen = None  # the tracker restarts; the next snapshot rebuilds
            return None
        self.last_seen = seq
        if isinstance(envelope.msg, SnapBody):
            self.manager.apply_snapshot_message(envelope)
            return None
        return self.manager.apply_delta_message(envelope)

    def take_seq(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        return seq

    @rule(ticker=tickers, yes=snapshot_side, no=snapshot_side, clock=st.none() | st.integers(0, 10**9))
    def snapshot(self, ticker: str, yes: dict[int, int], no: dict[int, int], clock: int | None) -> None:
        seq = self.take_seq()
        envelope = snap(
            seq,
            ticker,
            [(_dollars(p), _count(u)) for p, u in yes.items()],
            [(self.wire_price("no", p), _count(u)) for p, u in no.items()],
            clock,
        )
        gap_pending = self.last_seen is not None and seq > self.last_seen + 1
        self.deliver(envelope)
        if not gap_pending:
            model = self.model[ticker]
            model.sides = {"yes": {p: u for p, u in yes.items() if u}, "no": {p: u for p, u in no.items() if u}}
            model.ready, model.stale, model.seq, model.clock = True, False, seq, clock

    def _delta(self, ticker: str, side: str, price: int, amount: int, clock: int | None = None) -> None:
        seq = self.take_seq()
        envelope = delta(seq, ticker, side, self.wire_price(side, price), _count(amount), clock)
        gap_pending = self.last_seen is not None and seq > self.last_seen + 1
        result = self.deliver(envelope)
        if gap_pending:
            assert result is None
            return
        model = self.model[ticker]
        if not model.ready:
            assert result is DeltaResult.NO_SNAPSHOT
            return
        level = model.sides[side]
        new = level.get(price, 0) + amount
        if new < 0:
            assert result is DeltaResult.NEGATIVE_LEVEL
            return
        assert result is DeltaResult.APPLIED
        if new:
            level[price] = new
        else:
            level.pop(price, None)
        model.seq = seq
        if clock is not None:
            model.clock = clock

    @rule(ticker=tickers, side=sides, price=prices, amount=units, clock=st.none() | st.integers(0, 10**9))
    def add(self, ticker: str, side: str, price: int, amount: int, clock: int | None) -> None:
        self._delta(ticker, side, price, amount, clock)

    @rule(ticker=tickers, side=sides, price=prices, amount=units)
    def reduce(self, ticker: str, side: str, price: int, amount: int) -> None:
        self._delta(ticker, side, price, -amount)

    @rule(data=st.data(), overdraw=st.booleans())
    def remove_level(self, data: st.DataObject, overdraw: bool) -> None:
        """Take a level exactly to zero, or one unit past it (which must be refused)."""
        choices = [(t, s, p, u) for t, m in self.model.items() for s in ("yes", "no") for p, u in m.sides[s].items()]
        if not choices:
            return
        ticker, side, price, size = data.draw(st.sampled_from(choices))
        self._delta(ticker, side, price, -(size + 1 if overdraw else size))

    @precondition(lambda self: self.last_seen is not None)
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        """Re-send an old message: the caller drops it, and the manager alone would not change a book.

        (Only while the caller's tracker is running: right after a gap it accepts any next seq.)"""
        old = data.draw(st.sampled_from(self.sent))
        before_seen = self.last_seen
        assert self.deliver(old) is None
        assert self.last_seen == before_seen
        if isinstance(old.msg, DeltaBody):
            before = {t: b.view() for t, b in self.manager.books.items() if b.has_snapshot}
            self.manager.apply_delta_message(old)
            after = {t: b.view() for t, b in self.manager.books.items() if b.has_snapshot}
            assert after.keys() == before.keys()
            for ticker, view in before.items():
                assert after[ticker] is view

    @rule(skip=st.integers(min_value=1, max_value=3), rare=st.integers(min_value=0, max_value=2))
    def gap(self, skip: int, rare: int) -> None:
        """Lose messages (a third of the times this rule runs): the next delivered message reveals the gap."""
        if rare == 0:
            self.next_seq += skip

    @rule()
    def hold_view(self) -> None:
        for book in self.manager.books.values():
            if book.has_snapshot:
                view = book.view()
                self.held_views.append((view, view.yes_ticks, view.no_ticks))
        del self.held_views[:-6]

    @invariant()
    def books_match_model(self) -> None:
        for ticker, model in self.model.items():
            book = self.manager.get(ticker)
            if not model.ready:
                if book is not None:
                    assert not book.has_snapshot
                    assert book.stale == model.stale
                    with pytest.raises(BookError):
                        book.view()
                continue
            assert book is not None and book.has_snapshot and not book.stale
            view = book.view()
            yes = tuple(sorted(model.sides["yes"].items(), reverse=True))
            no = tuple(sorted(model.sides["no"].items(), reverse=True))
            assert view.yes_ticks == yes and view.no_ticks == no
            assert view == Orderbook.from_levels(ticker, yes, no)
            assert view.seq == model.seq == book.last_seq
            assert view.clock == model.clock
            assert book.best_yes_bid() == (yes[0] if yes else None)
            assert book.best_no_bid() == (no[0] if no else None)
            assert view.yes == tuple(PriceLevel(D(p) / 10_000, D(u) / 100) for p, u in yes)
            if no:
                assert view.best_yes_ask == PriceLevel(D(10_000 - no[0][0]) / 10_000, D(no[0][1]) / 100)
            else:
                assert view.best_yes_ask is None
            if yes and no:
                assert view.spread == D(10_000 - no[0][0] - yes[0][0]) / 10_000
            else:
                assert view.spread is None
            assert view.depth_units("yes") == sum(model.sides["yes"].values())

    @invariant()
    def held_views_never_change(self) -> None:
        for view, yes, no in self.held_views:
            assert view.yes_ticks == yes and view.no_ticks == no


class BookMachineYesPriceTerms(BookMachine):
    yes_price_terms = True


TestBookMachine = BookMachine.TestCase
TestBookMachine.settings = settings(max_examples=80, stateful_step_count=50, deadline=None)
TestBookMachineYesPriceTerms = BookMachineYesPriceTerms.TestCase
TestBookMachineYesPriceTerms.settings = settings(max_examples=50, stateful_step_count=50, deadline=None)
