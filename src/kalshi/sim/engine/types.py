"""Value types of the simulated exchange: units, price grids, specs, read-only views and errors.

Units (all exact integers, never float):

* **price ticks**: $0.0001 (``5600`` = $0.56), YES prices 1..9999; a NO price is ``10000 - yes``.
* **count units**: 1/100 contract (``1250`` = 12.50 contracts).
* **money micros**: $0.000001. One price tick times one count unit is exactly one micro, so the cost of
  ``count_units`` at ``price_ticks`` is ``price_ticks * count_units`` micros, and a unit of a winning
  contract pays :data:`PAYOUT_PER_UNIT` (10 000) micros. ``format_micros`` gives the 6-decimal wire form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Final, Literal

from kalshi._fixed import PRICE_SCALE
from kalshi.errors import KalshiError

__all__ = [
    "MICROS_PER_DOLLAR",
    "ORDER_GROUP_WINDOW_MS",
    "PAYOUT_PER_UNIT",
    "PRICE_LEVEL_STRUCTURES",
    "BalanceView",
    "BookSide",
    "BookSnapshot",
    "EngineError",
    "EventSpec",
    "MarketResult",
    "MarketSpec",
    "MarketStatus",
    "MarketView",
    "MveLeg",
    "OrderGroupView",
    "OrderStatus",
    "OrderView",
    "OutcomeSide",
    "PositionView",
    "PriceRange",
    "QuoteView",
    "RfqView",
    "SelfTradePrevention",
    "SettlementView",
    "TickerState",
    "TimeInForce",
    "format_micros",
    "is_valid_price",
    "micros_to_decimal",
    "price_ranges_for",
    "valid_prices",
]

BookSide = Literal["bid", "ask"]
OutcomeSide = Literal["yes", "no"]
TimeInForce = Literal["fill_or_kill", "good_till_canceled", "immediate_or_cancel"]
SelfTradePrevention = Literal["taker_at_cross", "maker"]
MarketStatus = Literal["initialized", "active", "closed", "determined", "settled"]
OrderStatus = Literal["resting", "canceled", "executed"]
MarketResult = Literal["yes", "no", "scalar"]

MICROS_PER_DOLLAR: Final = 1_000_000
PAYOUT_PER_UNIT: Final = PRICE_SCALE  # micros paid per count unit of a $1 contract
ORDER_GROUP_WINDOW_MS: Final = 15_000  # order-group contracts limits count over a rolling 15 s window


class EngineError(KalshiError):
    """An exchange request the engine refused, shaped like a REST error body.

    Attributes:
        code: machine code such as ``"invalid_price"``, ``"insufficient_balance"``, ``"order_not_found"``.
        message: what went wrong and what to do.
        status: the HTTP status a server should answer with (400, 404, 409).
    """

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


# ---------------------------------------------------------------------------------------------- prices


@dataclass(frozen=True, slots=True)
class PriceRange:
    """A band of valid prices ``start..end`` (inclusive, ticks) on a ``step`` grid anchored at ``start``."""

    start_ticks: int
    end_ticks: int
    step_ticks: int

    def wire(self) -> dict[str, str]:
        """The ``price_ranges`` entry of REST markets and lifecycle messages."""
        return {
            "start": _dollars4(self.start_ticks),
            "end": _dollars4(self.end_ticks),
            "step": _dollars4(self.step_ticks),
        }


def _dollars4(ticks: int) -> str:
    whole, frac = divmod(ticks, PRICE_SCALE)
    return f"{whole}.{frac:04d}"


def _center_edge(center_step: int, edge_step: int) -> tuple[PriceRange, ...]:
    # Kalshi names the grids but does not publish the band edges; the sim puts them at $0.10 / $0.90.
    return (
        PriceRange(0, 1000, edge_step),
        PriceRange(1000, 9000, center_step),
        PriceRange(9000, 10000, edge_step),
    )


_CENT, _HALF, _QUINT, _DECI, _CENTI = 100, 50, 20, 10, 1
PRICE_LEVEL_STRUCTURES: Final[Mapping[str, tuple[PriceRange, ...]]] = {
    "linear_cent": (PriceRange(0, 10000, _CENT),),
    "deci_cent": (PriceRange(0, 10000, _DECI),),
    "tapered_deci_cent": _center_edge(_CENT, _DECI),
    "banded_centi_cent": (PriceRange(0, 10000, _CENTI),),
    "center_whole_edge_half_cent": _center_edge(_CENT, _HALF),
    "center_whole_edge_quint_cent": _center_edge(_CENT, _QUINT),
    "center_half_edge_half_cent": _center_edge(_HALF, _HALF),
    "center_half_edge_quint_cent": _center_edge(_HALF, _QUINT),
    "center_half_edge_deci_cent": _center_edge(_HALF, _DECI),
    "center_quint_edge_quint_cent": _center_edge(_QUINT, _QUINT),
    "center_quint_edge_deci_cent": _center_edge(_QUINT, _DECI),
    "center_centi_edge_centi_cent": _center_edge(_CENTI, _CENTI),
    "center_deci_edge_centi_cent": _center_edge(_DECI, _CENTI),
}


def price_ranges_for(structure: str) -> tuple[PriceRange, ...]:
    """The price bands of a named ``price_level_structure``.

    Raises:
        EngineError: ``invalid_price_level_structure`` for an unknown name.
    """
    try:
        return PRICE_LEVEL_STRUCTURES[structure]
    except KeyError:
        raise EngineError(
            "invalid_price_level_structure",
            f"unknown price_level_structure {structure!r}; use one of {sorted(PRICE_LEVEL_STRUCTURES)}",
        ) from None


def is_valid_price(ranges: tuple[PriceRange, ...], ticks: int) -> bool:
    """True when ``ticks`` is a tradeable YES price (1..9999) on one of the bands' grids."""
    if not 0 < ticks < PRICE_SCALE:
        return False
    return any(r.start_ticks <= ticks <= r.end_ticks and (ticks - r.start_ticks) % r.step_ticks == 0 for r in ranges)


@lru_cache(maxsize=64)
def valid_prices(ranges: tuple[PriceRange, ...]) -> tuple[int, ...]:
    """Every tradeable YES price of a grid, ascending."""
    prices: set[int] = set()
    for r in ranges:
        prices.update(p for p in range(r.start_ticks, r.end_ticks + 1, r.step_ticks) if 0 < p < PRICE_SCALE)
    return tuple(sorted(prices))


def format_micros(micros: int) -> str:
    """Money micros -> 6-decimal dollar string (``10000`` -> ``"0.010000"``)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_DOLLAR)
    return f"{sign}{whole}.{frac:06d}"


def micros_to_decimal(micros: int) -> Decimal:
    """Money micros -> exact Decimal dollars."""
    return Decimal(micros).scaleb(-6)


# ---------------------------------------------------------------------------------------------- specs


@dataclass(frozen=True, slots=True)
class MveLeg:
    """One selected leg of a multivariate (combo) market."""

    event_ticker: str
    market_ticker: str
    side: OutcomeSide


@dataclass(frozen=True, slots=True)
class EventSpec:
    """An event: a set of related markets. Emitted as ``event_lifecycle`` when added."""

    event_ticker: str
    series_ticker: str
    title: str
    subtitle: str = ""
    collateral_return_type: Literal["MECNET", "DIRECNET", ""] = ""
    strike_date_ms: int | None = None
    strike_period: str | None = None
    is_multivariate: bool = False
    mutually_exclusive: bool = False


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """Static description of a binary market. Times are epoch milliseconds.

    ``price_ranges`` defaults to the bands of ``price_level_structure``. ``status`` is the status at
    creation: ``"initialized"`` markets activate at ``open_time_ms``; ``close_time_ms`` (if set) closes
    the market automatically. Fees follow Kalshi's quadratic formula ``rate * C * P * (1 - P)``, rounded
    up to the cent per order, with ``taker_fee_bp``/``maker_fee_bp`` the rate in basis points.
    """

    ticker: str
    event_ticker: str
    series_ticker: str
    title: str
    yes_sub_title: str = ""
    no_sub_title: str = ""
    rules_primary: str = ""
    rules_secondary: str = ""
    market_type: Literal["binary", "scalar"] = "binary"
    price_level_structure: str = "linear_cent"
    price_ranges: tuple[PriceRange, ...] | None = None
    status: Literal["initialized", "active"] = "active"
    open_time_ms: int = 0
    close_time_ms: int | None = None
    expected_expiration_ms: int | None = None
    can_close_early: bool = True
    settlement_timer_seconds: int = 0
    is_multivariate: bool = False
    mve_collection_ticker: str | None = None
    mve_selected_legs: tuple[MveLeg, ...] = ()
    strike_type: str | None = None
    floor_strike: Decimal | None = None
    cap_strike: Decimal | None = None
    custom_strike: Mapping[str, str] | None = None
    fractional_trading_enabled: bool = True
    taker_fee_bp: int = 700
    maker_fee_bp: int = 0
    notional_ticks: int = PRICE_SCALE
    exchange_index: int = 0
    market_id: str | None = None

    def ranges(self) -> tuple[PriceRange, ...]:
        """The effective price bands (explicit ``price_ranges`` or those of the named structure).

        Raises:
            EngineError: ``invalid_price_level_structure`` for an unknown structure without explicit ranges.
        """
        return self.price_ranges if self.price_ranges is not None else price_ranges_for(self.price_level_structure)


# ---------------------------------------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class MarketView:
    """A market's current state (the spec plus what changed since)."""

    spec: MarketSpec
    market_id: str
    status: MarketStatus
    is_deactivated: bool
    close_time_ms: int | None
    result: MarketResult | None
    settlement_value_ticks: int | None
    determination_ts_ms: int | None
    settled_ts_ms: int | None
    created_ts_ms: int
    updated_ts_ms: int
    price_ranges: tuple[PriceRange, ...]

    @property
    def ticker(self) -> str:
        """The market ticker."""
        return self.spec.ticker


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order as the exchange reports it (REST ``Order`` / WS ``user_order``). Money in micros.

    ``initial_units`` is the order's total size (after amends); ``fill_units + remaining_units`` equals
    it while the order rests, and ``remaining_units`` is 0 once it is canceled or executed.
    """

    order_id: str
    account: str
    ticker: str
    market_id: str
    client_order_id: str | None
    book_side: BookSide
    yes_price_ticks: int
    status: OrderStatus
    initial_units: int
    fill_units: int
    remaining_units: int
    taker_fill_cost_micros: int
    maker_fill_cost_micros: int
    taker_fees_micros: int
    maker_fees_micros: int
    time_in_force: TimeInForce
    self_trade_prevention: SelfTradePrevention
    post_only: bool
    reduce_only: bool
    cancel_order_on_pause: bool
    order_group_id: str | None
    expiration_ms: int | None
    created_ts_ms: int
    last_updated_ts_ms: int
    last_update_reason: str | None
    exchange_index: int = 0

    @property
    def outcome_side(self) -> OutcomeSide:
        """``"yes"`` for bids (buy YES), ``"no"`` for asks (sell YES = buy NO)."""
        return "yes" if self.book_side == "bid" else "no"

    @property
    def no_price_ticks(self) -> int:
        """The order's price in NO terms."""
        return PRICE_SCALE - self.yes_price_ticks


@dataclass(frozen=True, slots=True)
class PositionView:
    """An account's position in one market (``market_positions`` / REST ``MarketPosition``).

    ``position_units`` is signed: positive = YES contracts, negative = NO contracts. ``position_cost_micros``
    is what the held contracts cost; ``total_traded_micros`` what was ever spent in the market.
    """

    account: str
    ticker: str
    position_units: int
    position_cost_micros: int
    realized_pnl_micros: int
    fees_paid_micros: int
    position_fee_cost_micros: int
    volume_units: int
    total_traded_micros: int
    last_updated_ts_ms: int


@dataclass(frozen=True, slots=True)
class BalanceView:
    """Cash of an account. ``available`` = ``cash`` - ``reserved`` (resting-order collateral and fees)."""

    account: str
    cash_micros: int
    reserved_micros: int
    portfolio_value_micros: int
    updated_ts_ms: int

    @property
    def available_micros(self) -> int:
        """Cash free for new orders (what Kalshi reports as ``balance``)."""
        return self.cash_micros - self.reserved_micros


@dataclass(frozen=True, slots=True)
class SettlementView:
    """One account's payout when a market settled (REST ``Settlement``)."""

    account: str
    ticker: str
    event_ticker: str
    market_result: MarketResult
    yes_count_units: int
    yes_total_cost_micros: int
    no_count_units: int
    no_total_cost_micros: int
    revenue_micros: int
    fee_cost_micros: int
    value_ticks: int
    settled_ts_ms: int


@dataclass(frozen=True, slots=True)
class TickerState:
    """The ``ticker`` feed view of a market. Empty sides read as bid 0 / ask 10000 ticks, size 0.

    ``dollar_volume`` and ``dollar_open_interest`` are whole dollars (the wire integers): traded notional at
    the YES price, and open interest valued at the last price.
    """

    ticker: str
    market_id: str
    last_price_ticks: int
    yes_bid_ticks: int
    yes_ask_ticks: int
    yes_bid_size_units: int
    yes_ask_size_units: int
    last_trade_size_units: int
    volume_units: int
    open_interest_units: int
    dollar_volume: int
    dollar_open_interest: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """Both sides of a book, best first, with the market's book ``clock`` (bumped on every delta)."""

    ticker: str
    market_id: str
    yes: tuple[tuple[int, int], ...]
    no: tuple[tuple[int, int], ...]
    clock: int
    ts_ms: int


@dataclass(frozen=True, slots=True)
class OrderGroupView:
    """An order group: ``contracts_limit_units`` matched per rolling 15 s window, then it triggers."""

    order_group_id: str
    account: str
    contracts_limit_units: int
    is_triggered: bool
    matched_in_window_units: int
    order_ids: tuple[str, ...]
    is_auto_cancel_enabled: bool = True


@dataclass(frozen=True, slots=True)
class RfqView:
    """A request for quote. Exactly one of ``contracts_units`` / ``target_cost_micros`` is set."""

    rfq_id: str
    creator: str
    ticker: str
    event_ticker: str
    contracts_units: int | None
    target_cost_micros: int | None
    rest_remainder: bool
    status: Literal["open", "closed"]
    created_ts_ms: int
    updated_ts_ms: int
    cancelled_ts_ms: int | None = None
    cancellation_reason: str = ""
    mve_collection_ticker: str | None = None
    mve_selected_legs: tuple[MveLeg, ...] = ()


@dataclass(frozen=True, slots=True)
class QuoteView:
    """A quote on an RFQ: the quoter bids ``yes_bid_ticks`` for YES and ``no_bid_ticks`` for NO (0 = no bid).

    ``accepted_side`` is the side the RFQ creator takes: accepting ``"yes"`` makes the creator buy YES from
    the quoter's NO bid (YES price ``10000 - no_bid``); accepting ``"no"`` sells YES into the quoter's YES bid.
    """

    quote_id: str
    rfq_id: str
    creator: str
    rfq_creator: str
    ticker: str
    event_ticker: str
    yes_bid_ticks: int
    no_bid_ticks: int
    yes_contracts_units: int
    no_contracts_units: int
    rfq_target_cost_micros: int | None
    rest_remainder: bool
    status: Literal["open", "accepted", "confirmed", "executed", "cancelled"]
    created_ts_ms: int
    updated_ts_ms: int
    accepted_side: OutcomeSide | None = None
    contracts_accepted_units: int | None = None
    accepted_ts_ms: int | None = None
    confirmed_ts_ms: int | None = None
    executed_ts_ms: int | None = None
    cancelled_ts_ms: int | None = None
    creator_order_id: str | None = None
    rfq_creator_order_id: str | None = None
