"""Book messages for a runner fed by a relay (:class:`kalshi.relay.RelayFeed`) instead of a streaming session.

A relay consumer does not see the exchange's snapshots of its markets (they went out when the relay subscribed);
it rebuilds exact books from the relay's checkpoints and the entries after them (``feed.orderbook()``). This turns
those views back into what a runner applies: the first view of a market as an ``orderbook_snapshot``, then each
change as one ``orderbook_delta`` per level that moved, so the simulated exchange's queue model sees level
changes as it does live. A market whose book went stale on the relay yields nothing until it is exact again; the
deltas then bring it from the last exact view to the repaired one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec

from kalshi._fixed import format_count, format_price
from kalshi.models.markets import Orderbook
from kalshi.ws.models import OrderbookDeltaMessage, OrderbookSnapshotMessage, decode_message

__all__ = ["RelayBookMessages"]

_encode = msgspec.json.encode
_NO_SID = 0  # not a subscription of the exchange; without seq, runners apply these in order as they come


def _snapshot(ticker: str, yes: dict[int, int], no: dict[int, int]) -> Any:
    body = {
        "market_ticker": ticker,
        "yes_dollars_fp": [[format_price(p), format_count(u)] for p, u in sorted(yes.items())],
        "no_dollars_fp": [[format_price(p), format_count(u)] for p, u in sorted(no.items())],
    }
    return decode_message(_encode({"type": "orderbook_snapshot", "sid": _NO_SID, "msg": body}))


def _delta(ticker: str, side: str, price: int, change: int) -> Any:
    body = {
        "market_ticker": ticker,
        "price_dollars": format_price(price),
        "delta_fp": format_count(change),
        "side": side,
    }
    return decode_message(_encode({"type": "orderbook_delta", "sid": _NO_SID, "msg": body}))


class RelayBookMessages:
    """The snapshot, then the level changes, of every market of ``views`` (a relay feed's ``orderbook(...)``),
    as an async iterator. ``queue`` is the views' own (what a runner counts as not yet handled)."""

    def __init__(self, views: Any) -> None:
        self._views: AsyncIterator[Orderbook] = views
        self.queue = views.queue
        self._known: dict[str, tuple[dict[int, int], dict[int, int]]] = {}
        self._pending: list[OrderbookSnapshotMessage | OrderbookDeltaMessage] = []

    def __aiter__(self) -> RelayBookMessages:
        return self

    async def __anext__(self) -> OrderbookSnapshotMessage | OrderbookDeltaMessage:
        while not self._pending:
            self._pending = self._messages(await self._views.__anext__())
            self._pending.reverse()
        return self._pending.pop()

    def _messages(self, view: Orderbook) -> list[Any]:
        ticker = view.market_ticker
        yes, no = dict(view.yes_ticks), dict(view.no_ticks)
        before = self._known.get(ticker)
        self._known[ticker] = (yes, no)
        if before is None:
            return [_snapshot(ticker, yes, no)]
        out = []
        for side, old, new in (("yes", before[0], yes), ("no", before[1], no)):
            for price in sorted(old.keys() | new.keys()):
                change = new.get(price, 0) - old.get(price, 0)
                if change:
                    out.append(_delta(ticker, side, price, change))
        return out
