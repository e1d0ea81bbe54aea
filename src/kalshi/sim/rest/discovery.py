"""Discovery over REST: incentive programs on markets, and the search filters (tags by category, sports).

Incentive programs are seeded from the listed markets (:func:`kalshi.sim.engine.reference.incentive_programs`):
a program is ``active`` while its market trades, ``closed`` after, ``paid_out`` once the market settled.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from kalshi._fixed import format_count
from kalshi.sim.engine.reference import SPORT_FILTERS, IncentiveSpec, incentive_programs, tags_by_category
from kalshi.sim.rest.common import Reply, RestCall, iso, paginate
from kalshi.sim.rest.milestones import series_categories, series_titles

__all__ = ["get_incentive_programs", "get_sport_filters", "get_tags_by_categories"]

_STATUSES: Final = ("all", "active", "upcoming", "closed", "paid_out")
_TYPES: Final = ("all", "liquidity", "volume", "margin_maker_volume", "margin_taker_volume")


def _program_status(call: RestCall, p: IncentiveSpec) -> str:
    engine = call.sim.engine
    view = engine.market(p.ticker)
    if view.status == "settled":
        return "paid_out"
    if call.sim.clock_ms() < p.start_ms:
        return "upcoming"
    return "active" if view.status == "active" and call.sim.clock_ms() < p.end_ms else "closed"


def _program_json(call: RestCall, p: IncentiveSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": p.program_id,
        "market_id": p.market_id,
        "market_ticker": p.ticker,
        "incentive_type": p.incentive_type,
        "incentive_description": p.description,
        "start_date": iso(p.start_ms),
        "end_date": iso(p.end_ms),
        "period_reward": p.period_reward_cents,
        "paid_out": _program_status(call, p) == "paid_out",
        "discount_factor_bps": None,
        "max_reward_per_account": None,
    }
    if p.target_size_units is not None:
        out["target_size_fp"] = format_count(p.target_size_units)
    return out


async def get_incentive_programs(call: RestCall) -> Reply:
    q = call.query
    status = q.choice("status", _STATUSES) or "all"
    kind = q.choice("type", _TYPES) or "all"
    described = q.text("incentive_description")
    limit = q.integer("limit", default=100, lo=1, hi=10_000) or 100

    def matching() -> Iterator[tuple[tuple[int, ...], IncentiveSpec]]:
        for i, p in enumerate(incentive_programs(call.sim.engine.markets())):
            if kind != "all" and p.incentive_type != kind:
                continue
            if described is not None and described.lower() not in p.description.lower():
                continue
            if status == "all" or _program_status(call, p) == status:
                yield (i,), p

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="incentives")
    return Reply({"incentive_programs": [_program_json(call, p) for p in page], "next_cursor": cursor})


async def get_tags_by_categories(call: RestCall) -> Reply:
    sim = call.sim
    return Reply({"tags_by_categories": tags_by_category(series_categories(sim), series_titles(sim))})


async def get_sport_filters(_call: RestCall) -> Reply:
    return Reply(
        {
            "filters_by_sports": {
                sport: {
                    "scopes": sorted({s for scopes in competitions.values() for s in scopes}),
                    "competitions": {name: {"scopes": list(scopes)} for name, scopes in competitions.items()},
                }
                for sport, competitions in SPORT_FILTERS.items()
            },
            "sport_ordering": list(SPORT_FILTERS),
        }
    )
