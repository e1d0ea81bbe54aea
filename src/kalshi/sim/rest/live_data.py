"""Live data over REST: the state of each milestone (from its event's markets), game stats, event live data,
and the weather index of the cities the weather series settle on.

Weather readings are a smooth deterministic curve per city (:func:`kalshi.sim.engine.reference.temperature_f`),
one point a minute; three stations contribute with fixed weights.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from kalshi.sim.engine import EngineError
from kalshi.sim.engine.reference import MilestoneSpec, live_details, temperature_f, weather_cities
from kalshi.sim.rest.common import Reply, RestCall, RestError, bad_field
from kalshi.sim.rest.milestones import all_milestones, find_milestone

__all__ = [
    "get_event_live_data",
    "get_game_stats",
    "get_live_data",
    "get_live_data_by_milestone",
    "get_live_datas",
    "get_weather",
    "get_weather_calibrations",
]

_MAX_BATCH: Final = 100
_MAX_POINTS: Final = 1440
_STATIONS: Final = (
    ("A", Decimal("0.5"), Decimal("0.0")),
    ("B", Decimal("0.3"), Decimal("-0.4")),
    ("C", Decimal("0.2"), Decimal("0.3")),
)
_RANGES: Final = ("1h", "1d", "1w")


def _live(call: RestCall, m: MilestoneSpec) -> dict[str, Any]:
    engine = call.sim.engine
    markets = [v for v in engine.markets() if v.spec.event_ticker == m.event_ticker]
    prices = {v.spec.ticker: engine.ticker_state(v.spec.ticker).last_price_ticks for v in markets}
    return {"type": m.type, "details": live_details(m, markets, prices), "milestone_id": m.milestone_id}


async def get_live_data_by_milestone(call: RestCall) -> Reply:
    call.query.flag("include_player_stats")
    return Reply({"live_data": _live(call, find_milestone(call.sim, call.param("milestone_id")))})


async def get_live_data(call: RestCall) -> Reply:
    call.query.flag("include_player_stats")
    m = find_milestone(call.sim, call.param("milestone_id"))
    kind = call.param("type")
    if kind != m.type:
        raise RestError(
            404,
            "live_data_not_found",
            f"milestone {m.milestone_id} has live data of type {m.type!r}, not {kind[:40]!r}",
        )
    return Reply({"live_data": _live(call, m)})


async def get_live_datas(call: RestCall) -> Reply:
    ids = list(dict.fromkeys(call.query.csv("milestone_ids")))
    if len(ids) > _MAX_BATCH:
        raise bad_field("milestone_ids", f"at most {_MAX_BATCH} ids per request")
    call.query.flag("include_player_stats")
    by_id = {m.milestone_id: m for m in all_milestones(call.sim)}
    return Reply({"live_datas": [_live(call, by_id[i]) for i in ids if i in by_id]})


async def get_game_stats(call: RestCall) -> Reply:
    m = find_milestone(call.sim, call.param("milestone_id"))
    engine = call.sim.engine
    periods: dict[int, list[dict[str, Any]]] = {}
    for v in engine.markets():
        if v.spec.event_ticker != m.event_ticker:
            continue
        for t in engine.trades(v.spec.ticker)[-50:]:
            periods.setdefault(t.ts_ms // 3_600_000, []).append(
                {"type": "trade", "ticker": t.ticker, "ts": t.ts_ms // 1000, "yes_price_ticks": t.yes_price_ticks}
            )
    return Reply(
        {"pbp": {"periods": [{"events": sorted(e, key=lambda x: x["ts"])} for _, e in sorted(periods.items())]}}
    )


async def get_event_live_data(call: RestCall) -> Reply:
    event_ticker = call.param("event_ticker")
    engine = call.sim.engine
    try:
        engine.event(event_ticker)
    except EngineError:
        raise RestError(404, "event_not_found", f"no event {event_ticker[:60]!r}") from None
    chosen = call.query.choice("range", _RANGES) or "1d"
    milestone = next((m for m in all_milestones(call.sim) if m.event_ticker == event_ticker), None)
    if milestone is None:
        raise RestError(404, "live_data_not_found", f"event {event_ticker[:60]!r} has no live data")
    live = _live(call, milestone)
    return Reply(
        {
            "live_data": {
                "type": live["type"],
                "details": live["details"],
                "is_historical": live["details"]["status"] == "final",
                "default_range": chosen,
                "range_options": list(_RANGES),
            }
        }
    )


def _city(call: RestCall) -> tuple[str, int]:
    city = call.param("city").upper()
    cities = weather_cities()
    if city not in cities:
        known = ", ".join(sorted(cities)) or "none"
        raise bad_field("city", f"{city[:20]!r} has no weather index; known cities: {known}")
    return city, cities[city][1]


async def get_weather(call: RestCall) -> Reply:
    city, mean = _city(call)
    q = call.query
    now_s = call.sim.clock_ms() // 1000
    last = q.integer("last_sec", lo=1, hi=86_400)
    end = q.integer("to", lo=0, hi=2**63 - 1)
    end = min(end if end is not None else now_s, now_s)
    start = q.integer("from", lo=0, hi=2**63 - 1)
    start = end - (last or 3600) if start is None else start
    if start > end:
        raise bad_field("from", "must not be after to")
    first = -(-start // 60) * 60
    if (end - first) // 60 + 1 > _MAX_POINTS:
        raise bad_field("from", f"at most {_MAX_POINTS} one-minute points per request: narrow the range")
    detailed = bool(q.flag("detailed"))
    points = []
    for t in range(first, end + 1, 60):
        value = temperature_f(mean, t * 1000)
        point: dict[str, Any] = {"t": t, "v": value, "status": "final", "contributors": len(_STATIONS)}
        if detailed:
            point["stations"] = [
                {
                    "station_id": f"{city}-{sid}",
                    "code": f"K{city}{sid}",
                    "temp_f": value + offset * 9 / 5,
                    "obs_time_ms": t * 1000,
                }
                for sid, _w, offset in _STATIONS
            ]
        points.append(point)
    return Reply({"city": city, "config_version": "v1", "units": "fahrenheit", "timeseries": points})


async def get_weather_calibrations(call: RestCall) -> Reply:
    city, mean = _city(call)
    return Reply(
        {
            "city": city,
            "units": "celsius",
            "calibrations": [
                {
                    "config_version": "v1",
                    "effective_at_ms": 0,
                    "city_reference_c": ((Decimal(mean) - 32) * 5 / 9).quantize(Decimal("0.01")),
                    "stations": [
                        {"station_id": f"{city}-{sid}", "weight": weight, "offset_c": offset}
                        for sid, weight, offset in _STATIONS
                    ],
                }
            ],
        }
    )
