"""The simulator's markets: recurring series of events, each with one latent value its markets price off.

:class:`MarketUniverse` generates N binary markets in series and events (strike ladders "above K", range
buckets, some sub-penny price grids, some multivariate combos) and installs them in an
:class:`~kalshi.sim.engine.Engine`. Each event has one latent value (:mod:`kalshi.sim.fair`) that every market
of the event prices off, so ladders stay coherent. Events close on their series' schedule (hourly, daily,
weekly, monthly; every 30 to 90 s with ``quick=True``), and :meth:`MarketUniverse.roll` replaces a settled
event with the next one of its series, so the set of live markets stays stable.

Everything draws from the ``random.Random`` given and uses integer or fixed-context Decimal arithmetic.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from kalshi._fixed import PRICE_SCALE
from kalshi.sim.engine import Engine
from kalshi.sim.engine.types import EventSpec, MarketResult, MarketSpec, MveLeg, PriceRange, valid_prices
from kalshi.sim.fair import UNIT, Interval, LatentValue

__all__ = ["MarketUniverse", "SeriesSpec", "snap_to_grid"]

_MINUTE_MS: Final = 60_000
_HOUR_MS: Final = 3_600_000
_DAY_MS: Final = 86_400_000
_MIN_LEAD_MS: Final = 10_000  # no event is listed closer than this to its close
# Cycled so every universe of 3+ markets has sub-penny grids next to the usual cent grid.
_STRUCTURES: Final = ("linear_cent", "deci_cent", "linear_cent", "tapered_deci_cent", "linear_cent")


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    """A series: the template its recurring events share.

    ``period_ms`` is the time between two events' closes (``quick_period_ms`` under quick settle);
    ``ranges`` series list mutually exclusive buckets ("60° to 61°") instead of an "above K" ladder.
    """

    series_ticker: str
    title: str
    category: str
    frequency: str
    strike_unit: int  # spacing of strikes of the markets in its events
    strike_base: int
    period_ms: int = _DAY_MS
    quick_period_ms: int = _MINUTE_MS
    ranges: bool = False


_SERIES: Final = (
    SeriesSpec("KXHIGHNY", "Highest temperature in NYC", "Climate and Weather", "daily", 2, 60, ranges=True),
    SeriesSpec("KXBTCD", "Bitcoin price at the hour", "Crypto", "hourly", 1000, 68000, _HOUR_MS, 30_000),
    SeriesSpec("KXETHD", "Ethereum price at the hour", "Crypto", "hourly", 50, 3500, _HOUR_MS, 30_000),
    SeriesSpec("KXINXD", "S&P 500 close", "Financials", "daily", 25, 5500),
    SeriesSpec("KXFEDRATE", "Fed funds upper bound", "Economics", "custom", 25, 425, 7 * _DAY_MS, 90_000),
    SeriesSpec("KXCPIYOY", "CPI year over year", "Economics", "monthly", 1, 30, 30 * _DAY_MS, 90_000),
)
_MVE_SERIES: Final = SeriesSpec("KXMVECROSSCATEGORY", "Cross-category combos", "Combos", "custom", 1, 0)


@dataclass(frozen=True, slots=True)
class _Slot:
    """What an event is replaced with when it settles: the same series and shape, ``stride`` periods later."""

    series: SeriesSpec
    count: int
    stride: int


@dataclass(slots=True)
class MarketUniverse:
    """Generated series, events and markets, their latent values, and the schedule of their closes.

    ``fair_values`` holds each market's starting fair value (YES ticks, on its grid).
    """

    seed: int
    now_ms: int
    quick: bool = False
    series: list[SeriesSpec] = field(default_factory=list)
    events: list[EventSpec] = field(default_factory=list)
    markets: list[MarketSpec] = field(default_factory=list)
    fair_values: dict[str, int] = field(default_factory=dict)
    latents: dict[str, LatentValue] = field(default_factory=dict)  # event ticker -> its latent value
    intervals: dict[str, Interval] = field(default_factory=dict)  # market ticker -> its YES outcomes
    _serial: int = 0
    _slots: dict[str, _Slot] = field(default_factory=dict)
    _event_markets: dict[str, list[str]] = field(default_factory=dict)
    _closing: list[tuple[int, int, str]] = field(default_factory=list)  # heap of (close, serial, event)
    _specs: dict[str, MarketSpec] = field(default_factory=dict)

    @classmethod
    def generate(
        cls,
        seed: int,
        n_markets: int,
        *,
        now_ms: int | None = None,
        engine: Engine | None = None,
        quick: bool = False,
    ) -> MarketUniverse:
        """Generate ``n_markets`` markets (about one in eight multivariate once there are 4+).

        Args:
            seed: the only source of randomness.
            n_markets: how many markets; at least 1.
            now_ms: markets open an hour before this time (default: the engine's clock, or 0 without an
                engine); each series' events close one period apart, the first one to two periods after it
                (within one period with ``quick``).
            engine: if given, the universe is installed in it (:meth:`install`).
            quick: close events every 30 to 90 seconds instead of hourly, daily, weekly or monthly.

        Raises:
            ValueError: ``n_markets`` below 1.
        """
        if n_markets < 1:
            raise ValueError("n_markets must be at least 1")
        rng = random.Random(seed)
        if now_ms is None:
            now_ms = engine.now_ms if engine is not None else 0
        universe = cls(seed=seed, now_ms=now_ms, quick=quick)
        n_mve = n_markets // 8 if n_markets >= 4 else 0
        plan: list[tuple[SeriesSpec, int]] = []
        planned = 0
        order = rng.sample(_SERIES, len(_SERIES))  # every series once before any repeats
        while planned < n_markets - n_mve:
            left = n_markets - n_mve - planned
            series = order[len(plan) % len(order)]
            count = min(rng.randint(1, 4), left)
            if series.ranges:
                if left < 3:
                    series = next(s for s in order if not s.ranges)
                else:
                    count = max(count, 3)  # a range event has a bottom, a middle and a top bucket
            plan.append((series, count))
            planned += count
        strides = {s: sum(1 for p, _ in plan if p == s) for s, _ in plan}
        seen: dict[SeriesSpec, int] = {}
        for series, count in plan:
            nth = seen[series] = seen.get(series, -1) + 1
            period = universe._period(series)
            # Live events are an hour to two periods away; quick ones start closing within one period.
            close = (now_ms // period + (1 if quick else 2) + nth) * period
            if close - now_ms < _MIN_LEAD_MS:
                close += period
            universe._new_event(rng, _Slot(series, count, strides[series]), close, now_ms - _HOUR_MS)
        singles = [m.ticker for m in universe.markets]
        for _ in range(n_mve):
            universe._new_combo(rng, singles, now_ms - _HOUR_MS)
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

    # ------------------------------------------------------------------------------------ queries

    def event_markets(self, event_ticker: str) -> list[str]:
        """The tickers of one of the universe's events (empty for an event it did not create)."""
        return list(self._event_markets.get(event_ticker, ()))

    def knows(self, ticker: str) -> bool:
        """Whether ``ticker`` is one of the universe's markets."""
        return ticker in self._specs

    def fair_ticks(self, ticker: str, rng: random.Random, now_ms: int) -> int:
        """The market's fair YES price now (its event's latent value walked to ``now_ms`` first).

        A combo's fair value is the product of its legs' (as if they were independent).

        Raises:
            KeyError: a market the universe did not create.
        """
        spec = self._specs[ticker]
        if spec.is_multivariate:
            value = PRICE_SCALE
            for leg in spec.mve_selected_legs:
                p = self.fair_ticks(leg.market_ticker, rng, now_ms)
                value = value * (p if leg.side == "yes" else PRICE_SCALE - p) // PRICE_SCALE
            return value
        latent = self.latents[spec.event_ticker]
        latent.advance(rng, now_ms)
        return latent.fair_ticks(self.intervals[ticker], now_ms)

    def outcome(self, ticker: str, rng: random.Random, leg_results: Mapping[str, str | None]) -> MarketResult:
        """How a market resolves: its event's latent value at the close against the market's interval.

        A combo is YES when every leg resolved on its selected side (``leg_results`` gives the exchange's
        results of legs already determined; the others are resolved from their latent values).

        Raises:
            KeyError: a market the universe did not create.
        """
        spec = self._specs[ticker]
        if spec.is_multivariate:
            hits = all(
                (leg_results.get(leg.market_ticker) or self.outcome(leg.market_ticker, rng, {})) == leg.side
                for leg in spec.mve_selected_legs
            )
            return "yes" if hits else "no"
        latent = self.latents[spec.event_ticker]
        latent.advance(rng, latent.close_ms)
        return "yes" if self.intervals[ticker].contains(latent.value) else "no"

    # ------------------------------------------------------------------------------------ schedule

    def due(self, now_ms: int) -> list[str]:
        """Pop the events whose scheduled close is at or before ``now_ms``, earliest first."""
        due = []
        while self._closing and self._closing[0][0] <= now_ms:
            due.append(heapq.heappop(self._closing)[2])
        return due

    def next_close_ms(self) -> int | None:
        """The earliest scheduled close of an event not yet settled."""
        return self._closing[0][0] if self._closing else None

    def reschedule(self, event_ticker: str, close_ms: int) -> None:
        """Look at ``event_ticker`` again at ``close_ms`` (its close was moved)."""
        self._serial += 1
        heapq.heappush(self._closing, (close_ms, self._serial, event_ticker))

    def roll(
        self, event_ticker: str, rng: random.Random, now_ms: int, engine: Engine, live: Sequence[str]
    ) -> list[MarketSpec]:
        """List the successor of a settled event in ``engine`` and return its markets.

        The successor has the same series and shape and closes ``stride`` periods after its predecessor (the
        first such time after ``now_ms``). A combo's successor picks legs among ``live`` tickers; none is
        listed without a live single market.

        Raises:
            KeyError: an event the universe did not create.
            EngineError: if a generated ticker already exists in the engine.
        """
        slot = self._slots[event_ticker]
        self.now_ms = now_ms
        before = len(self.markets)
        if slot.series is _MVE_SERIES:
            singles = [t for t in live if t in self._specs and not self._specs[t].is_multivariate]
            if not singles:
                return []
            event = self._new_combo(rng, singles, now_ms)
        else:
            step = slot.stride * self._period(slot.series)
            close = self.latents[event_ticker].close_ms + step
            if close <= now_ms:
                close += (now_ms - close) // step * step + step
            event = self._new_event(rng, slot, close, now_ms)
        engine.add_event(event)
        added = self.markets[before:]
        for market in added:
            engine.add_market(market)
        return added

    # ------------------------------------------------------------------------------------ generation

    def _period(self, series: SeriesSpec) -> int:
        return series.quick_period_ms if self.quick else series.period_ms

    def _structure(self) -> str:
        return _STRUCTURES[len(self.markets) % len(_STRUCTURES)]

    def _add(self, spec: MarketSpec, fair: int) -> None:
        self.markets.append(spec)
        self._specs[spec.ticker] = spec
        self._event_markets.setdefault(spec.event_ticker, []).append(spec.ticker)
        self.fair_values[spec.ticker] = snap_to_grid(spec, fair)

    def _new_event(self, rng: random.Random, slot: _Slot, close_ms: int, open_ms: int) -> EventSpec:
        series, count = slot.series, slot.count
        if series not in self.series:
            self.series.append(series)
        self._serial += 1
        event_ticker = f"{series.series_ticker}-S{self._serial:04d}"
        ranges = series.ranges
        event = EventSpec(
            event_ticker=event_ticker,
            series_ticker=series.series_ticker,
            title=f"{series.title} #{self._serial}",
            subtitle=f"Round {self._serial}",
            strike_date_ms=close_ms,
            strike_period=series.frequency,
            mutually_exclusive=ranges,
        )
        self.events.append(event)
        self._slots[event_ticker] = slot
        unit = series.strike_unit
        centre = series.strike_base * UNIT + (unit * UNIT // 2 if ranges else 0)
        spread = unit * UNIT // 2
        latent = LatentValue(
            value=centre + rng.randint(-spread, spread),
            sigma=unit * UNIT * 6 // 5,
            period_ms=self._period(series),
            close_ms=close_ms,
            updated_ms=self.now_ms,
        )
        self.latents[event_ticker] = latent
        heapq.heappush(self._closing, (close_ms, self._serial, event_ticker))
        maker_fee_bp = 175 if series.category == "Financials" else 0
        legs = _range_buckets(series, count) if ranges else _above_ladder(series, count)
        for leg in legs:
            ticker = f"{event_ticker}-{leg.suffix}"
            self.intervals[ticker] = leg.interval
            spec = MarketSpec(
                ticker=ticker,
                event_ticker=event_ticker,
                series_ticker=series.series_ticker,
                title=f"{series.title}: {leg.yes_title}?",
                yes_sub_title=leg.yes_title,
                no_sub_title=leg.no_title,
                rules_primary=f"Resolves Yes if the {series.title.lower()} is {leg.yes_title.lower()}.",
                price_level_structure=self._structure(),
                open_time_ms=open_ms,
                close_time_ms=close_ms,
                expected_expiration_ms=close_ms,
                fractional_trading_enabled=len(self.markets) % 4 != 3,  # every fourth trades whole contracts
                maker_fee_bp=maker_fee_bp,
                strike_type=leg.strike_type,
                floor_strike=None if leg.floor is None else Decimal(leg.floor),
                cap_strike=None if leg.cap is None else Decimal(leg.cap),
            )
            self._add(spec, latent.fair_ticks(leg.interval, self.now_ms))
        return event

    def _new_combo(self, rng: random.Random, singles: Sequence[str], open_ms: int) -> EventSpec:
        legs = [self._specs[t] for t in rng.sample(list(singles), min(2, len(singles)))]
        if _MVE_SERIES not in self.series:
            self.series.append(_MVE_SERIES)
        self._serial += 1
        event_ticker = f"{_MVE_SERIES.series_ticker}-S{self._serial:04d}"
        event = EventSpec(
            event_ticker=event_ticker,
            series_ticker=_MVE_SERIES.series_ticker,
            title=f"Combo #{self._serial}",
            is_multivariate=True,
        )
        self.events.append(event)
        self._slots[event_ticker] = _Slot(_MVE_SERIES, 1, 1)
        sides = tuple(rng.choice(("yes", "no")) for _ in legs)
        ticker = f"{event_ticker}-M1"
        # The combo closes with its last leg, so every leg is decided when it settles.
        close_ms = max(m.close_time_ms or self.now_ms for m in legs)
        heapq.heappush(self._closing, (close_ms, self._serial, event_ticker))
        spec = MarketSpec(
            ticker=ticker,
            event_ticker=event_ticker,
            series_ticker=_MVE_SERIES.series_ticker,
            title=" and ".join(
                f"{m.yes_sub_title if s == 'yes' else m.no_sub_title}" for m, s in zip(legs, sides, strict=True)
            ),
            price_level_structure=self._structure(),
            open_time_ms=open_ms,
            close_time_ms=close_ms,
            expected_expiration_ms=close_ms,
            is_multivariate=True,
            mve_collection_ticker=_MVE_SERIES.series_ticker,
            mve_selected_legs=tuple(
                MveLeg(event_ticker=m.event_ticker, market_ticker=m.ticker, side="yes" if s == "yes" else "no")
                for m, s in zip(legs, sides, strict=True)
            ),
            strike_type="custom",
            custom_strike={m.ticker: s for m, s in zip(legs, sides, strict=True)},
        )
        self._specs[ticker] = spec
        self._add(spec, self.fair_ticks(ticker, rng, self.now_ms))
        return event


@dataclass(frozen=True, slots=True)
class _Leg:
    """One market of a generated event: ticker suffix, YES outcomes, titles and strike fields."""

    suffix: str
    interval: Interval
    yes_title: str
    no_title: str
    strike_type: str
    floor: int | None = None
    cap: int | None = None


def _above_ladder(series: SeriesSpec, count: int) -> list[_Leg]:
    """``count`` "above K" markets, strikes one unit apart around the series' base."""
    strikes = [series.strike_base + (k - count // 2) * series.strike_unit for k in range(count)]
    return [_Leg(f"T{k}", Interval.above(k), f"Above {k}", f"{k} or below", "greater", floor=k) for k in strikes]


def _range_buckets(series: SeriesSpec, count: int) -> list[_Leg]:
    """``count`` (3+) buckets that partition the outcomes: below, ``count - 2`` one unit wide, above."""
    unit = series.strike_unit
    edges = [series.strike_base + (j - count // 2) * unit for j in range(1, count)]
    low = edges[0]
    legs = [_Leg(f"L{low}", Interval.below(low), f"Below {low}", f"{low} or above", "less", cap=low)]
    for floor, above in itertools.pairwise(edges):
        cap = above - 1
        legs.append(
            _Leg(
                f"B{floor}",
                Interval.between(floor, cap),
                f"{floor} to {cap}",
                f"Not {floor} to {cap}",
                "between",
                floor,
                cap,
            )
        )
    top = edges[-1] - 1
    legs.append(_Leg(f"T{top}", Interval.above(top), f"Above {top}", f"{top} or below", "greater", floor=top))
    return legs


@functools.lru_cache(maxsize=64)
def _grid(ranges: tuple[PriceRange, ...]) -> tuple[int, ...]:
    return valid_prices(ranges)


def snap_to_grid(spec: MarketSpec, ticks: int, direction: int = 0) -> int:
    """The grid price nearest ``ticks`` (below if ``direction < 0``, above if ``> 0``), clamped to the grid."""
    grid = _grid(spec.ranges())
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
