"""Multivariate event collections: the combos a user may build from single markets (sans-I/O).

A collection names the events whose markets may be combined, how many legs a combo has, and the series its
combo markets belong to. Creating a market in a collection with a set of legs always yields the same tickers
(a hash of the legs), so asking twice returns the existing combo instead of a duplicate, as on the exchange.
The engine seeds one collection per series of combo markets already listed (see
:meth:`kalshi.sim.engine.Engine.multivariate_collections`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kalshi.sim.engine.types import EngineError, EventSpec, MarketSpec, MarketView, MveLeg

if TYPE_CHECKING:
    from kalshi.sim.engine.core import EngineCore
    from kalshi.sim.engine.lifecycle import LifecycleDesk

__all__ = ["CollectionSpec", "ComboDesk", "combo_specs"]


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    """A multivariate event collection.

    Attributes:
        collection_ticker: the collection's ticker (also the series of its combo markets).
        title: human title.
        associated_event_tickers: events whose markets may be legs.
        size_min: fewest legs of a combo.
        size_max: most legs of a combo.
        open_ms: when combos can first be created.
        close_ms: when the collection closes.
    """

    collection_ticker: str
    title: str
    associated_event_tickers: tuple[str, ...]
    size_min: int
    size_max: int
    open_ms: int
    close_ms: int

    @property
    def series_ticker(self) -> str:
        """The series of the collection's combo markets."""
        return self.collection_ticker


def _digest(collection: str, legs: Sequence[MveLeg]) -> str:
    key = "|".join(f"{leg.market_ticker}:{leg.side}" for leg in sorted(legs, key=lambda leg: leg.market_ticker))
    return hashlib.sha256(f"{collection}|{key}".encode()).hexdigest()[:10].upper()


def combo_specs(
    collection: CollectionSpec, legs: Sequence[MveLeg], leg_markets: Sequence[MarketSpec], *, now_ms: int
) -> tuple[EventSpec, MarketSpec]:
    """The event and market a combo of ``legs`` is listed as (``leg_markets`` in the same order).

    Raises:
        EngineError: ``invalid_parameters`` when the legs break the collection's rules (size, one leg per
            event, events outside the collection, a leg naming another event than its market's).
    """
    if not collection.size_min <= len(legs) <= collection.size_max:
        raise EngineError(
            "invalid_parameters",
            f"selected_markets: a combo of {collection.collection_ticker} has "
            f"{collection.size_min} to {collection.size_max} legs, got {len(legs)}",
        )
    events = [leg.event_ticker for leg in legs]
    if len(set(events)) != len(events):
        raise EngineError("invalid_parameters", "selected_markets: at most one leg per event")
    allowed = set(collection.associated_event_tickers)
    for leg, market in zip(legs, leg_markets, strict=True):
        if leg.event_ticker not in allowed:
            raise EngineError(
                "invalid_parameters",
                f"selected_markets: event {leg.event_ticker!r} is not part of {collection.collection_ticker}",
            )
        if market.event_ticker != leg.event_ticker:
            raise EngineError(
                "invalid_parameters", f"selected_markets: {leg.market_ticker} is not a market of {leg.event_ticker}"
            )
    digest = _digest(collection.collection_ticker, legs)
    event_ticker = f"{collection.collection_ticker}-{digest}"
    event = EventSpec(
        event_ticker=event_ticker,
        series_ticker=collection.series_ticker,
        title=f"{collection.title}: {len(legs)}-leg combo",
        is_multivariate=True,
    )
    closes = [m.close_time_ms for m in leg_markets if m.close_time_ms is not None]
    market = MarketSpec(
        ticker=f"{event_ticker}-M1",
        event_ticker=event_ticker,
        series_ticker=collection.series_ticker,
        title=" and ".join(
            (m.yes_sub_title or m.title) if leg.side == "yes" else (m.no_sub_title or f"not {m.title}")
            for leg, m in zip(legs, leg_markets, strict=True)
        ),
        open_time_ms=now_ms,
        close_time_ms=min(closes) if closes else collection.close_ms,
        is_multivariate=True,
        mve_collection_ticker=collection.collection_ticker,
        mve_selected_legs=tuple(legs),
        strike_type="custom",
        custom_strike={leg.market_ticker: leg.side for leg in legs},
    )
    return event, market


class ComboDesk:
    """Multivariate collections and their combo markets; :class:`~kalshi.sim.engine.Engine` forwards to it.

    Args:
        core: the engine's state and primitives.
        lifecycle: lists the combo events and markets.
    """

    __slots__ = ("_collections", "_core", "_lifecycle")

    def __init__(self, core: EngineCore, lifecycle: LifecycleDesk) -> None:
        self._core = core
        self._lifecycle = lifecycle
        self._collections: dict[str, CollectionSpec] = {}

    def collections(self) -> list[CollectionSpec]:
        """Every collection: one per series of listed combo markets, plus those added explicitly."""
        core = self._core
        singles = tuple(e.event_ticker for e in core.event_specs.values() if not e.is_multivariate)
        found: dict[str, CollectionSpec] = {}
        for m in core.markets.values():
            ticker = m.spec.mve_collection_ticker
            if ticker is None or ticker in found or ticker in self._collections:
                continue
            members = [x for x in core.markets.values() if x.spec.mve_collection_ticker == ticker]
            found[ticker] = CollectionSpec(
                collection_ticker=ticker,
                title=f"{ticker} combos",
                associated_event_tickers=singles,
                size_min=2,
                size_max=max(2, min(4, len(singles))),
                open_ms=min(x.created_ms for x in members),
                close_ms=max((x.close_ms or x.created_ms) for x in members),
            )
        return [*found.values(), *self._collections.values()]

    def add(self, collection: CollectionSpec) -> None:
        """List a multivariate collection."""
        self._collections[collection.collection_ticker] = collection

    def create_market(self, collection_ticker: str, legs: list[MveLeg]) -> MarketView:
        """The combo market of ``legs`` in a collection, listed (and activated) if new.

        Raises:
            EngineError: ``collection_not_found``, ``market_not_found`` (a leg), ``invalid_parameters``.
        """
        core = self._core
        collection = next((c for c in self.collections() if c.collection_ticker == collection_ticker), None)
        if collection is None:
            raise EngineError("collection_not_found", f"no multivariate collection {collection_ticker!r}", status=404)
        leg_specs = [core.market(leg.market_ticker).spec for leg in legs]
        event, market = combo_specs(collection, legs, leg_specs, now_ms=core.now)
        if market.ticker in core.markets:
            return core.markets[market.ticker].view()
        if event.event_ticker not in core.event_specs:
            self._lifecycle.add_event(event)
        return self._lifecycle.add_market(market)
