"""Multivariate event collections over REST: list, read, and create a combo market in one.

Creating a market lists (and opens for trading) the combo of the selected legs, or returns the one already
listed for the same legs; it then shows in ``GET /markets`` (``mve_filter=only``) and
``GET /events/multivariate``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from kalshi.sim.engine import MveLeg
from kalshi.sim.engine.multivariate import CollectionSpec
from kalshi.sim.rest.common import Reply, RestCall, RestError, iso, paginate
from kalshi.sim.rest.views import market_json

__all__ = ["create_market", "get_collection", "get_collections"]

_STATUSES: Final = ("unopened", "open", "closed")


def _status(c: CollectionSpec, now_ms: int) -> str:
    if now_ms < c.open_ms:
        return "unopened"
    return "open" if now_ms < c.close_ms else "closed"


def _collection_json(c: CollectionSpec) -> dict[str, Any]:
    return {
        "collection_ticker": c.collection_ticker,
        "series_ticker": c.series_ticker,
        "exchange_index": 0,
        "title": c.title,
        "description": f"Combine {c.size_min} to {c.size_max} markets of different events into one contract.",
        "open_date": iso(c.open_ms),
        "close_date": iso(c.close_ms),
        "associated_events": [
            {"ticker": e, "is_yes_only": False, "size_max": None, "size_min": None, "active_quoters": []}
            for e in c.associated_event_tickers
        ],
        "associated_event_tickers": list(c.associated_event_tickers),
        "is_ordered": False,
        "is_single_market_per_event": True,
        "is_all_yes": False,
        "size_min": c.size_min,
        "size_max": c.size_max,
        "functional_description": "Pays $1 if every selected leg resolves to its selected side.",
    }


def _find(call: RestCall, ticker: str, *, status: int = 404) -> CollectionSpec:
    for c in call.sim.engine.multivariate_collections():
        if c.collection_ticker == ticker:
            return c
    raise RestError(status, "collection_not_found", f"no multivariate collection {ticker[:60]!r}")


async def get_collections(call: RestCall) -> Reply:
    engine = call.sim.engine
    q = call.query
    limit = q.limit(default=100, hi=200)
    status = q.choice("status", _STATUSES)
    event, series = q.text("associated_event_ticker"), q.text("series_ticker")

    def matching() -> Iterator[tuple[tuple[int, ...], CollectionSpec]]:
        for i, c in enumerate(engine.multivariate_collections()):
            if status is not None and _status(c, call.sim.clock_ms()) != status:
                continue
            if (event is not None and event not in c.associated_event_tickers) or (
                series is not None and c.series_ticker != series
            ):
                continue
            yield (i,), c

    page, cursor = paginate(matching(), limit=limit, cursor=q.text("cursor"), scope="collections")
    return Reply({"multivariate_contracts": [_collection_json(c) for c in page], "cursor": cursor})


async def get_collection(call: RestCall) -> Reply:
    return Reply({"multivariate_contract": _collection_json(_find(call, call.param("collection_ticker")))})


async def create_market(call: RestCall) -> Reply:
    _ = call.account
    collection = _find(call, call.param("collection_ticker"), status=400)  # the spec lists 400 here, not 404
    body = await call.body()
    legs = []
    for item in body.objects("selected_markets"):
        side = item.choice("side", ("yes", "no"), required=True)
        legs.append(
            MveLeg(
                event_ticker=item.required_text("event_ticker"),
                market_ticker=item.required_text("market_ticker"),
                side="yes" if side == "yes" else "no",
            )
        )
    with_payload = bool(body.flag("with_market_payload"))
    sim = call.sim
    view = sim.do(lambda e: e.create_multivariate_market(collection.collection_ticker, legs))
    out: dict[str, Any] = {"event_ticker": view.spec.event_ticker, "market_ticker": view.spec.ticker}
    if with_payload:
        out["market"] = market_json(sim.engine, view)
    return Reply(out)
