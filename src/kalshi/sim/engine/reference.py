"""Reference content derived from the listed events (sans-I/O): milestones, structured targets, incentive
programs, search tags and sport filters, and the live data of each milestone.

Everything is computed from the engine's events and markets, with stable ids (UUID5 of a ticker), so the
same listing always yields the same content and a new event brings its milestone and target with it. Live
data reads the markets of the milestone's event: ``scheduled`` before they open, ``live`` while one trades,
``final`` once every one is determined or settled, with the last traded prices as the "score".
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from kalshi._fixed import format_price
from kalshi.sim.engine.types import EventSpec, MarketView

__all__ = [
    "SPORT_FILTERS",
    "IncentiveSpec",
    "MilestoneSpec",
    "TargetSpec",
    "incentive_programs",
    "live_details",
    "milestones",
    "structured_targets",
    "tags_by_category",
    "temperature_f",
    "weather_cities",
]

_NS: Final = uuid.UUID("5b3c1f0e-7a51-4d6b-9a40-3c2f8e1d0a77")
_DAY_MS: Final = 86_400_000
_TYPES: Final = {
    "Climate and Weather": "weather_day",
    "Crypto": "crypto_price",
    "Financials": "index_close",
    "Economics": "economic_release",
    "Sports": "game",
}
# Sports the search filters know, with their competitions and the scopes markets are listed under.
SPORT_FILTERS: Final[Mapping[str, Mapping[str, Sequence[str]]]] = {
    "Football": {"Pro Football": ("Game", "Season"), "College Football": ("Game",)},
    "Basketball": {"Pro Basketball": ("Game", "Series", "Season")},
    "Baseball": {"Pro Baseball": ("Game", "Series")},
}
# Weather series -> (city code, mean daily high in degrees F).
_CITIES: Final = {"KXHIGHNY": ("NY", 62), "KXHIGHCHI": ("CHI", 58), "KXHIGHMIA": ("MIA", 84)}


def stable_id(kind: str, key: str) -> str:
    """A UUID that is the same for the same ``kind`` and ``key`` in every run."""
    return str(uuid.uuid5(_NS, f"{kind}:{key}"))


@dataclass(frozen=True, slots=True)
class MilestoneSpec:
    """A real-world occurrence markets resolve on (one per single event)."""

    milestone_id: str
    event_ticker: str
    series_ticker: str
    category: str
    type: str
    title: str
    start_ms: int
    end_ms: int | None
    updated_ms: int


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A structured target: the subject a series' markets are about."""

    target_id: str
    name: str
    type: str
    competition: str
    series_ticker: str
    updated_ms: int


@dataclass(frozen=True, slots=True)
class IncentiveSpec:
    """A liquidity or volume incentive on one market (reward in whole cents per period)."""

    program_id: str
    market_id: str
    ticker: str
    incentive_type: str
    description: str
    start_ms: int
    end_ms: int
    period_reward_cents: int
    target_size_units: int | None


def _category(categories: Mapping[str, str], series: str) -> str:
    return categories.get(series, "Other")


def milestones(
    events: Sequence[EventSpec], markets: Sequence[MarketView], categories: Mapping[str, str]
) -> list[MilestoneSpec]:
    """One milestone per single (not multivariate) event that has markets, in listing order."""
    by_event: dict[str, list[MarketView]] = {}
    for m in markets:
        by_event.setdefault(m.spec.event_ticker, []).append(m)
    out = []
    for event in events:
        listed = by_event.get(event.event_ticker)
        if event.is_multivariate or not listed:
            continue
        category = _category(categories, event.series_ticker)
        start = min(m.spec.open_time_ms or m.created_ts_ms for m in listed)
        closes = [m.close_time_ms for m in listed if m.close_time_ms is not None]
        out.append(
            MilestoneSpec(
                milestone_id=stable_id("milestone", event.event_ticker),
                event_ticker=event.event_ticker,
                series_ticker=event.series_ticker,
                category=category,
                type=_TYPES.get(category, "occurrence"),
                title=event.title,
                start_ms=start,
                end_ms=event.strike_date_ms or (max(closes) if closes else None),
                updated_ms=max(m.updated_ts_ms for m in listed),
            )
        )
    return out


def structured_targets(
    events: Sequence[EventSpec], categories: Mapping[str, str], titles: Mapping[str, str], *, now_ms: int
) -> list[TargetSpec]:
    """One target per series with single events, in listing order (competition = the series' category)."""
    out: dict[str, TargetSpec] = {}
    for event in events:
        series = event.series_ticker
        if event.is_multivariate or series in out:
            continue
        category = _category(categories, series)
        out[series] = TargetSpec(
            target_id=stable_id("target", series),
            name=titles.get(series, series),
            type=_TYPES.get(category, "occurrence"),
            competition=category,
            series_ticker=series,
            updated_ms=now_ms,
        )
    return list(out.values())


def incentive_programs(markets: Sequence[MarketView]) -> list[IncentiveSpec]:
    """A liquidity program on every third single market and a volume program on every fifth."""
    out = []
    singles = [m for m in markets if not m.spec.is_multivariate]
    for i, m in enumerate(singles):
        start = m.created_ts_ms
        end = m.close_time_ms or start + 30 * _DAY_MS
        if i % 3 == 0:
            out.append(
                IncentiveSpec(
                    stable_id("liquidity", m.spec.ticker), m.market_id, m.spec.ticker, "liquidity",
                    f"Liquidity incentive on {m.spec.ticker}", start, end, 5_000, 100_00,
                )
            )  # fmt: skip
        if i % 5 == 0:
            out.append(
                IncentiveSpec(
                    stable_id("volume", m.spec.ticker), m.market_id, m.spec.ticker, "volume",
                    f"Volume incentive on {m.spec.ticker}", start, end, 2_500, None,
                )
            )  # fmt: skip
    return out


def tags_by_category(categories: Mapping[str, str], titles: Mapping[str, str]) -> dict[str, list[str]]:
    """Category -> the tags of its series (the first word of each series title), sorted."""
    out: dict[str, set[str]] = {}
    for series, category in categories.items():
        words = titles.get(series, series).split()
        out.setdefault(category, set()).add(words[0] if words else series)
    return {category: sorted(tags) for category, tags in sorted(out.items())}


def live_details(
    milestone: MilestoneSpec, markets: Sequence[MarketView], last_prices: Mapping[str, int]
) -> dict[str, Any]:
    """The live state of a milestone from its event's markets."""
    statuses = {m.status for m in markets}
    if statuses <= {"initialized"}:
        status = "scheduled"
    elif statuses <= {"determined", "settled"}:
        status = "final"
    else:
        status = "live"
    return {
        "status": status,
        "event_ticker": milestone.event_ticker,
        "title": milestone.title,
        "markets": [
            {
                "ticker": m.spec.ticker,
                "status": m.status,
                "last_price_dollars": format_price(last_prices.get(m.spec.ticker, 0)),
                "result": m.result or "",
            }
            for m in markets
        ],
    }


def weather_cities() -> dict[str, tuple[str, int]]:
    """City code -> (its weather series, mean daily high in F), for every city with a weather index."""
    return {city: (series, mean) for series, (city, mean) in _CITIES.items()}


def temperature_f(mean_high: int, ts_ms: int) -> Decimal:
    """A smooth, deterministic temperature in F (one decimal): warmest mid-afternoon UTC, 10 F daily swing."""
    minute_of_day = (ts_ms // 60_000) % 1440
    # A triangle wave peaking at 20:00 UTC (mid-afternoon in the US), exact in Decimal.
    distance = abs(minute_of_day - 1200)
    distance = min(distance, 1440 - distance)
    return (Decimal(mean_high) - Decimal(distance) / 72).quantize(Decimal("0.1"))
