"""Milestones and structured targets over REST, derived from the listed events
(:mod:`kalshi.sim.engine.reference`): one milestone per single event, one target per series.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from kalshi.sim.engine.reference import MilestoneSpec, TargetSpec, milestones, structured_targets
from kalshi.sim.rest.common import Reply, RestCall, RestError, bad_field, iso, paginate

if TYPE_CHECKING:
    from kalshi.sim.server import Simulator

__all__ = [
    "all_milestones",
    "find_milestone",
    "get_milestone",
    "get_milestones",
    "get_target",
    "get_targets",
    "series_categories",
    "series_titles",
]

_MAX_IDS: Final = 2000


def series_categories(sim: Simulator) -> dict[str, str]:
    """Series ticker -> category, for every series of the universe and of the listed events."""
    out = {s.series_ticker: s.category for s in sim.universe.series}
    for event in sim.engine.events():
        out.setdefault(event.series_ticker, "Other")
    return out


def series_titles(sim: Simulator) -> dict[str, str]:
    """Series ticker -> title."""
    return {s.series_ticker: s.title for s in sim.universe.series}


def all_milestones(sim: Simulator) -> list[MilestoneSpec]:
    """Every milestone, in event listing order."""
    engine = sim.engine
    return milestones(engine.events(), engine.markets(), series_categories(sim))


def find_milestone(sim: Simulator, milestone_id: str) -> MilestoneSpec:
    """One milestone.

    Raises:
        RestError: 404 when there is none with this id.
    """
    for m in all_milestones(sim):
        if m.milestone_id == milestone_id:
            return m
    raise RestError(404, "milestone_not_found", f"no milestone {milestone_id[:60]!r}")


def _milestone_json(m: MilestoneSpec) -> dict[str, Any]:
    return {
        "id": m.milestone_id,
        "category": m.category,
        "type": m.type,
        "start_date": iso(m.start_ms),
        "end_date": iso(m.end_ms) if m.end_ms is not None else None,
        "related_event_tickers": [m.event_ticker],
        "title": m.title,
        "notification_message": f"{m.title}: markets are open",
        "source_id": None,
        "source_ids": {},
        "details": {"series_ticker": m.series_ticker},
        "primary_event_tickers": [m.event_ticker],
        "last_updated_ts": iso(m.updated_ms),
    }


def _date_ms(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_field(name, f"{text[:40]!r} is not an RFC 3339 date-time like 2026-01-01T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise bad_field(name, "needs a time zone (end it with Z)")
    return int(parsed.timestamp() * 1000)


async def get_milestones(call: RestCall) -> Reply:
    q = call.query
    limit = q.integer("limit", lo=1, hi=500)
    if limit is None:
        raise bad_field("limit", "is required (1..500)")
    since = _date_ms(q.text("minimum_start_date"), "minimum_start_date")
    category, competition = q.text("category"), q.text("competition")
    kind, related, source = q.text("type"), q.text("related_event_ticker"), q.text("source_id")
    min_updated = q.integer("min_updated_ts", lo=0, hi=2**63 - 1)

    def matching() -> Iterator[tuple[tuple[int, ...], MilestoneSpec]]:
        for i, m in enumerate(all_milestones(call.sim)):
            if (since is not None and m.start_ms < since) or (category is not None and m.category != category):
                continue
            if (competition is not None and m.category != competition) or (kind is not None and m.type != kind):
                continue
            if (related is not None and m.event_ticker != related) or source is not None:
                continue  # no milestone has a third-party source id
            if min_updated is not None and m.updated_ms // 1000 < min_updated:
                continue
            yield (i,), m

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="milestones")
    return Reply({"milestones": [_milestone_json(m) for m in page], "cursor": cursor})


async def get_milestone(call: RestCall) -> Reply:
    return Reply({"milestone": _milestone_json(find_milestone(call.sim, call.param("milestone_id")))})


def _targets(call: RestCall) -> list[TargetSpec]:
    sim = call.sim
    engine = sim.engine
    return structured_targets(engine.events(), series_categories(sim), series_titles(sim), now_ms=sim.clock_ms())


def _target_json(t: TargetSpec) -> dict[str, Any]:
    return {
        "id": t.target_id,
        "name": t.name,
        "type": t.type,
        "details": {"series_ticker": t.series_ticker, "competition": t.competition},
        "source_id": t.series_ticker,
        "source_ids": {"kalshi_series": t.series_ticker},
        "last_updated_ts": iso(t.updated_ms),
    }


async def get_targets(call: RestCall) -> Reply:
    q = call.query
    ids = set(q.csv("ids"))
    if len(ids) > _MAX_IDS:
        raise bad_field("ids", f"at most {_MAX_IDS} ids")
    kind, competition = q.text("type"), q.text("competition")
    size = q.integer("page_size", default=100, lo=1, hi=2000) or 100

    def matching() -> Iterator[tuple[tuple[int, ...], TargetSpec]]:
        for i, t in enumerate(_targets(call)):
            if (ids and t.target_id not in ids) or (kind is not None and t.type != kind):
                continue
            if competition is None or t.competition == competition:
                yield (i,), t

    page, cursor = paginate(matching(), limit=size, cursor=q.text("cursor"), scope="targets")
    return Reply({"structured_targets": [_target_json(t) for t in page], "cursor": cursor})


async def get_target(call: RestCall) -> Reply:
    wanted = call.param("structured_target_id")
    for t in _targets(call):
        if t.target_id == wanted:
            return Reply({"structured_target": _target_json(t)})
    raise RestError(404, "structured_target_not_found", f"no structured target {wanted[:60]!r}")
