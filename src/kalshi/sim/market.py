"""Seeded market activity for the simulator: a universe of markets, a crowd that trades them, index walks.

* :class:`MarketUniverse` generates N binary markets in series and events (some on sub-penny price grids,
  some multivariate combos, with strike info) and installs them in an :class:`~kalshi.sim.engine.Engine`.
* :class:`ActivityGenerator` performs one random action per :meth:`~ActivityGenerator.step` from a few
  "crowd" accounts: limit orders near a drifting fair value, cancels, decreases, marketable orders, and
  (when enabled) lifecycle actions: close-date updates, determination and settlement, new markets.
* :class:`IndexWalk` random-walks index values for ``cfbenchmarks_value`` and ``pyth_value``.

Everything draws from ``random.Random(seed)`` only and uses integer arithmetic, so the same seed and clock
give the same engine event sequence.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from kalshi._fixed import COUNT_SCALE, PRICE_SCALE
from kalshi.sim.engine import Engine
from kalshi.sim.engine.types import (
    MICROS_PER_DOLLAR,
    BookSide,
    EngineError,
    EventSpec,
    MarketSpec,
    MveLeg,
    valid_prices,
)

__all__ = [
    "CROWD_ACCOUNTS",
    "ActivityGenerator",
    "IndexTick",
    "IndexWalk",
    "MarketUniverse",
    "SeriesSpec",
]

CROWD_ACCOUNTS: Final = ("crowd-1", "crowd-2", "crowd-3", "crowd-4")
_DAY_MS: Final = 86_400_000
_HOUR_MS: Final = 3_600_000
# Cycled so every universe of 3+ markets has sub-penny grids next to the usual cent grid.
_STRUCTURES: Final = ("linear_cent", "deci_cent", "linear_cent", "tapered_deci_cent", "linear_cent")


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    """A series: the template recurring events share."""

    series_ticker: str
    title: str
    category: str
    frequency: str
    strike_unit: int  # spacing of strikes of the markets in its events
    strike_base: int


_SERIES: Final = (
    SeriesSpec("KXHIGHNY", "Highest temperature in NYC", "Climate and Weather", "daily", 2, 60),
    SeriesSpec("KXBTCD", "Bitcoin price at 5pm EDT", "Crypto", "daily", 1000, 68000),
    SeriesSpec("KXETHD", "Ethereum price at 5pm EDT", "Crypto", "daily", 50, 3500),
    SeriesSpec("KXINXD", "S&P 500 close", "Financials", "daily", 25, 5500),
    SeriesSpec("KXFEDRATE", "Fed funds upper bound", "Economics", "custom", 25, 425),
    SeriesSpec("KXCPIYOY", "CPI year over year", "Economics", "monthly", 1, 30),
)
_MVE_SERIES: Final = SeriesSpec("KXMVECROSSCATEGORY", "Cross-category combos", "Combos", "custom", 1, 0)


@dataclass(slots=True)
class MarketUniverse:
    """Generated series, events and markets, with each market's starting fair value (YES ticks)."""

    seed: int
    now_ms: int
    series: list[SeriesSpec] = field(default_factory=list)
    events: list[EventSpec] = field(default_factory=list)
    markets: list[MarketSpec] = field(default_factory=list)
    fair_values: dict[str, int] = field(default_factory=dict)
    _serial: int = 0

    @classmethod
    def generate(
        cls, seed: int, n_markets: int, *, now_ms: int | None = None, engine: Engine | None = None
    ) -> MarketUniverse:
        """Generate ``n_markets`` markets (about one in eight multivariate once there are 4+).

        Args:
            seed: the only source of randomness.
            n_markets: how many markets; at least 1.
            now_ms: markets open an hour before and close days after this time (default: the engine's
                clock, or 0 without an engine).
            engine: if given, the universe is installed in it (:meth:`install`).

        Raises:
            ValueError: ``n_markets`` below 1.
        """
        if n_markets < 1:
            raise ValueError("n_markets must be at least 1")
        rng = random.Random(seed)
        if now_ms is None:
            now_ms = engine.now_ms if engine is not None else 0
        universe = cls(seed=seed, now_ms=now_ms)
        n_mve = n_markets // 8 if n_markets >= 4 else 0
        while len(universe.markets) < n_markets - n_mve:
            universe._new_event(rng, min(rng.randint(1, 4), n_markets - n_mve - len(universe.markets)))
        for _ in range(n_mve):
            universe._new_combo(rng)
        if engine is not None:
            universe.install(engine)
        return universe

    def install(self, engine: Engine) -> None:
        """Add every event and market to ``engine`` (emits their lifecycle events).

        Raises:
            EngineError: if a ticker already exists in the engine.
        """
        for event in self.events:
            engine.add_event(event)
        for market in self.markets:
            engine.add_market(market)

    def new_event(self, rng: random.Random, now_ms: int, engine: Engine) -> list[MarketSpec]:
        """Create one more event of 1-3 markets, register it in ``engine``, and return its markets.

        Raises:
            EngineError: if a generated ticker already exists in the engine.
        """
        self.now_ms = now_ms
        before = len(self.markets)
        event = self._new_event(rng, rng.randint(1, 3))
        engine.add_event(event)
        added = self.markets[before:]
        for market in added:
            engine.add_market(market)
        return added

    def _structure(self) -> str:
        return _STRUCTURES[len(self.markets) % len(_STRUCTURES)]

    def _new_event(self, rng: random.Random, count: int) -> EventSpec:
        series = rng.choice(_SERIES)
        if series not in self.series:
            self.series.append(series)
        self._serial += 1
        close_ms = self.now_ms + rng.randint(1, 30) * _DAY_MS
        event_ticker = f"{series.series_ticker}-S{self._serial:04d}"
        event = EventSpec(
            event_ticker=event_ticker,
            series_ticker=series.series_ticker,
            title=f"{series.title} #{self._serial}",
            subtitle=f"Round {self._serial}",
            strike_date_ms=close_ms,
            strike_period=series.frequency,
            mutually_exclusive=False,
        )
        self.events.append(event)
        maker_fee_bp = 175 if series.category == "Financials" else 0
        for k in range(count):
            strike = series.strike_base + (k - count // 2) * series.strike_unit
            structure = self._structure()
            ticker = f"{event_ticker}-T{strike}"
            self.markets.append(
                MarketSpec(
                    ticker=ticker,
                    event_ticker=event_ticker,
                    series_ticker=series.series_ticker,
                    title=f"{series.title} above {strike}?",
                    yes_sub_title=f"Above {strike}",
                    no_sub_title=f"{strike} or below",
                    rules_primary=f"Resolves Yes if the {series.title.lower()} is above {strike}.",
                    price_level_structure=structure,
                    open_time_ms=self.now_ms - _HOUR_MS,
                    close_time_ms=close_ms,
                    expected_expiration_ms=close_ms + _HOUR_MS,
                    strike_type="greater",
                    floor_strike=Decimal(strike),
                    fractional_trading_enabled=rng.randrange(4) != 0,
                    maker_fee_bp=maker_fee_bp,
                )
            )
            self.fair_values[ticker] = _snap(self.markets[-1], rng.randint(1500, 8500))
        return event

    def _new_combo(self, rng: random.Random) -> None:
        singles = [m for m in self.markets if not m.is_multivariate]
        legs = rng.sample(singles, min(2, len(singles)))
        if _MVE_SERIES not in self.series:
            self.series.append(_MVE_SERIES)
        self._serial += 1
        event_ticker = f"{_MVE_SERIES.series_ticker}-S{self._serial:04d}"
        self.events.append(
            EventSpec(
                event_ticker=event_ticker,
                series_ticker=_MVE_SERIES.series_ticker,
                title=f"Combo #{self._serial}",
                is_multivariate=True,
            )
        )
        sides = tuple(rng.choice(("yes", "no")) for _ in legs)
        ticker = f"{event_ticker}-M1"
        close_ms = min((m.close_time_ms or self.now_ms + _DAY_MS) for m in legs)
        self.markets.append(
            MarketSpec(
                ticker=ticker,
                event_ticker=event_ticker,
                series_ticker=_MVE_SERIES.series_ticker,
                title=" and ".join(
                    f"{m.yes_sub_title if s == 'yes' else m.no_sub_title}" for m, s in zip(legs, sides, strict=True)
                ),
                price_level_structure=self._structure(),
                open_time_ms=self.now_ms - _HOUR_MS,
                close_time_ms=close_ms,
                is_multivariate=True,
                mve_collection_ticker=_MVE_SERIES.series_ticker,
                mve_selected_legs=tuple(
                    MveLeg(event_ticker=m.event_ticker, market_ticker=m.ticker, side="yes" if s == "yes" else "no")
                    for m, s in zip(legs, sides, strict=True)
                ),
                strike_type="custom",
                custom_strike={m.ticker: s for m, s in zip(legs, sides, strict=True)},
            )
        )
        self.fair_values[ticker] = _snap(self.markets[-1], rng.randint(500, 3000))


def _snap(spec: MarketSpec, ticks: int, direction: int = 0) -> int:
    """The grid price nearest ``ticks`` (below if ``direction < 0``, above if ``> 0``), clamped to the grid."""
    grid = valid_prices(spec.ranges())
    i = bisect.bisect_left(grid, ticks)
    if i < len(grid) and grid[i] == ticks:
        return ticks
    if direction < 0:
        return grid[max(i - 1, 0)]
    if direction > 0:
        return grid[min(i, len(grid) - 1)]
    below = grid[max(i - 1, 0)]
    above = grid[min(i, len(grid) - 1)]
    return below if ticks - below <= above - ticks else above


class ActivityGenerator:
    """A crowd trading the engine's markets, one random action per :meth:`step`.

    Args:
        engine: the exchange to act on.
        seed: the only source of randomness.
        universe: the markets' fair values come from it (else the mid price); required for ``lifecycle``.
        accounts: crowd account ids; opened with ``balance_micros`` if not open yet.
        balance_micros: starting cash of each crowd account.
        lifecycle: also update close dates, determine and settle markets and create new ones.
        lifecycle_every: steps between lifecycle actions.
    """

    def __init__(
        self,
        engine: Engine,
        seed: int,
        *,
        universe: MarketUniverse | None = None,
        accounts: Sequence[str] = CROWD_ACCOUNTS,
        balance_micros: int = 10_000_000 * MICROS_PER_DOLLAR,
        lifecycle: bool = False,
        lifecycle_every: int = 250,
    ) -> None:
        if lifecycle and universe is None:
            raise ValueError("lifecycle actions need the universe to create new markets")
        self._engine = engine
        self._rng = random.Random(seed)
        self._universe = universe
        self._accounts = tuple(accounts)
        self._lifecycle = lifecycle
        self._lifecycle_every = max(lifecycle_every, 1)
        self._fair: dict[str, int] = dict(universe.fair_values) if universe is not None else {}
        self._resting: dict[str, list[str]] = {}
        self.steps = 0
        known = set(engine.accounts())
        for account in self._accounts:
            if account not in known:
                engine.open_account(account, balance_micros)

    def step(self) -> None:
        """Perform one action; refusals by the engine (a closed market, a spent balance) are skipped."""
        self.steps += 1
        rng = self._rng
        if self._lifecycle and self.steps % self._lifecycle_every == 0:
            self._lifecycle_action()
            return
        tickers = self._engine.trading_tickers()
        if not tickers:
            return
        spec = self._engine.market(rng.choice(tickers)).spec
        fair = self._drift(spec)
        account = rng.choice(self._accounts)
        roll = rng.randrange(100)
        try:
            if roll < 55:
                self._limit(spec, account, fair)
            elif roll < 72:
                self._cancel(spec.ticker)
            elif roll < 77:
                self._decrease(spec.ticker)
            else:
                self._marketable(spec, account, fair)
        except EngineError:
            pass

    # ------------------------------------------------------------------------------------ actions

    def _drift(self, spec: MarketSpec) -> int:
        fair = self._fair.get(spec.ticker)
        if fair is None:
            state = self._engine.ticker_state(spec.ticker)
            fair = (state.yes_bid_ticks + state.yes_ask_ticks) // 2
        fair = min(max(fair + self._rng.randint(-60, 60), 300), PRICE_SCALE - 300)
        self._fair[spec.ticker] = fair
        return fair

    def _count(self, spec: MarketSpec) -> int:
        rng = self._rng
        if spec.fractional_trading_enabled and rng.randrange(3) == 0:
            return rng.randint(1, 40) * 25
        return rng.choice((1, 2, 3, 5, 10, 25)) * COUNT_SCALE

    def _limit(self, spec: MarketSpec, account: str, fair: int) -> None:
        resting = self._resting.setdefault(spec.ticker, [])
        if len(resting) > 40:
            self._prune(spec.ticker)
            if len(resting) > 30:
                self._cancel(spec.ticker)
                return
        rng = self._rng
        side: BookSide = "bid" if rng.randrange(2) == 0 else "ask"
        offset = rng.randint(1, 12) * 50
        price = _snap(spec, fair - offset, -1) if side == "bid" else _snap(spec, fair + offset, 1)
        result = self._engine.place_order(
            account,
            spec.ticker,
            side,
            price,
            self._count(spec),
            self_trade_prevention="maker" if rng.randrange(4) == 0 else "taker_at_cross",
        )
        if result.status == "resting":
            resting.append(result.order_id)

    def _marketable(self, spec: MarketSpec, account: str, fair: int) -> None:
        rng = self._rng
        side: BookSide = "bid" if rng.randrange(2) == 0 else "ask"
        slack = rng.randint(0, 4) * 100
        price = _snap(spec, fair + slack, 1) if side == "bid" else _snap(spec, fair - slack, -1)
        self._engine.place_order(
            account,
            spec.ticker,
            side,
            price,
            self._count(spec),
            time_in_force="immediate_or_cancel" if rng.randrange(5) else "fill_or_kill",
        )

    def _pick_resting(self, ticker: str) -> str | None:
        resting = self._resting.get(ticker)
        while resting:
            order_id = resting[self._rng.randrange(len(resting))]
            try:
                if self._engine.order(order_id).status == "resting":
                    return order_id
            except EngineError:
                pass
            resting.remove(order_id)
        return None

    def _prune(self, ticker: str) -> None:
        resting = self._resting.get(ticker, [])
        alive = []
        for order_id in resting:
            try:
                if self._engine.order(order_id).status == "resting":
                    alive.append(order_id)
            except EngineError:
                continue
        resting[:] = alive

    def _cancel(self, ticker: str) -> None:
        order_id = self._pick_resting(ticker)
        if order_id is not None:
            self._engine.cancel_order(self._engine.order(order_id).account, order_id)

    def _decrease(self, ticker: str) -> None:
        order_id = self._pick_resting(ticker)
        if order_id is not None:
            order = self._engine.order(order_id)
            if order.remaining_units > COUNT_SCALE:
                self._engine.decrease_order(order.account, order_id, reduce_by=COUNT_SCALE)

    def _lifecycle_action(self) -> None:
        rng = self._rng
        engine = self._engine
        markets = [m for m in engine.markets("active") if not m.spec.is_multivariate]
        if not markets or self._universe is None:
            return
        spec = rng.choice(markets).spec
        now = engine.now_ms
        if rng.randrange(3) == 0:
            engine.update_close_time(spec.ticker, now + rng.randint(1, 30) * _DAY_MS)
            return
        fair = self._fair.get(spec.ticker, PRICE_SCALE // 2)
        engine.determine_market(spec.ticker, "yes" if rng.randrange(PRICE_SCALE) < fair else "no")
        engine.settle_market(spec.ticker)
        self._resting.pop(spec.ticker, None)
        for new in self._universe.new_event(rng, now, engine):
            self._fair[new.ticker] = self._universe.fair_values[new.ticker]


@dataclass(frozen=True, slots=True)
class IndexTick:
    """One index value: ``value`` has 8 decimals; ``source_ts_ms`` is a little before ``received_at_ms``."""

    index_id: str
    value: Decimal
    source_ts_ms: int
    received_at_ms: int

    @property
    def value_usd(self) -> str:
        """The wire form with exactly 8 decimals."""
        return f"{self.value:.8f}"


_START_VALUES: Final[Mapping[str, str]] = {
    "BRTI": "68000",
    "ETHUSD_RTI": "3500",
    "SOLUSD_RTI": "150",
    "XRPUSD_RTI": "0.6",
    "DOGEUSD_RTI": "0.15",
    "BTC": "68000",
    "ETH": "3500",
    "SOL": "150",
    "Metal.XAU/USD": "2400",
    "Commodities.Index.PYTHOIL/USD": "82",
}
_EIGHT_DP: Final = 10**8


class IndexWalk:
    """Deterministic random walks of index values (CF Benchmarks ids like ``BRTI``, Pyth underlyings).

    Each :meth:`step` moves every id by up to +-0.05% in exact integer units of 1e-8.
    """

    def __init__(self, seed: int, ids: Sequence[str], *, start_values: Mapping[str, Decimal] | None = None) -> None:
        self._rng = random.Random(seed)
        self._values: dict[str, int] = {}
        for index_id in ids:
            start = (start_values or {}).get(index_id)
            if start is None:
                start = Decimal(_START_VALUES.get(index_id, "100"))
            self._values[index_id] = int(start * _EIGHT_DP)

    @property
    def ids(self) -> tuple[str, ...]:
        """The walked ids, in the order given."""
        return tuple(self._values)

    def value(self, index_id: str) -> Decimal:
        """The current value of ``index_id``.

        Raises:
            KeyError: unknown id.
        """
        return Decimal(self._values[index_id]).scaleb(-8)

    def step(self, now_ms: int) -> list[IndexTick]:
        """Move every value once and return the ticks, received at ``now_ms``."""
        rng = self._rng
        ticks = []
        for index_id, units in self._values.items():
            units = max(units + units * rng.randint(-50, 50) // 100_000, 1)
            self._values[index_id] = units
            ticks.append(
                IndexTick(
                    index_id=index_id,
                    value=Decimal(units).scaleb(-8),
                    source_ts_ms=now_ms - rng.randint(5, 40),
                    received_at_ms=now_ms,
                )
            )
        return ticks
