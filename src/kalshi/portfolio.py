"""A live portfolio: REST snapshot at start, WebSocket updates after, REST reconciliation after every disruption.

The architecture of seed 002. Private WebSocket channels (``fill``, ``user_orders``, ``market_positions``) carry no
``seq``: a message lost while a connection was down cannot be detected from the stream. So the portfolio follows the
session's lifecycle events: after every reconnect, and after the server ends one of its subscriptions (error 25,
which the client re-subscribes), once its channels are resubscribed (:class:`~kalshi.ws.lifecycle.Resubscribed`) and
on request, it re-reads balance, positions and resting orders over REST, replaces its state, and reports each
difference it corrected as a :class:`Correction`. Nothing polls.
Stream updates that arrive during a reconciliation are applied after its snapshot, so none is overwritten; updates
received before it started and still queued are dropped, as its snapshot already has them.

Usage::

    async with AsyncKalshiClient(config, auth=auth) as rest, ws.connect() as session:
        async with Portfolio(rest, session) as portfolio:
            ...
            portfolio.positions["KXFED-25DEC-T4.00"].position   # Decimal contracts, + YES / - NO
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Final

from kalshi.errors import KalshiConnectionError, KalshiError
from kalshi.ws.client import KalshiWebSocket
from kalshi.ws.disruptions import DisruptionTracker
from kalshi.ws.lifecycle import Closed, LifecycleListener
from kalshi.ws.models import FillMessage, MarketPositionsMessage, UserOrdersMessage
from kalshi.ws.subscription import Subscription

__all__ = ["Correction", "OrderState", "Portfolio", "PositionState"]

logger = logging.getLogger(__name__)

_ZERO: Final = Decimal(0)
_DONE_STATUSES: Final = frozenset({"canceled", "cancelled", "executed", "expired"})
_RETRY_SECONDS: Final = 1.0
_FILL_MEMORY: Final = 100_000


@dataclass(frozen=True, slots=True)
class PositionState:
    """One market's position. ``position`` > 0 is YES contracts, < 0 NO contracts."""

    ticker: str
    position: Decimal
    realized_pnl: Decimal = _ZERO
    fees_paid: Decimal = _ZERO


@dataclass(frozen=True, slots=True)
class OrderState:
    """One resting order as the portfolio knows it."""

    order_id: str
    ticker: str
    status: str
    remaining: Decimal
    yes_price: Decimal | None = None
    book_side: str | None = None
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class Correction:
    """A difference between local state and the exchange's, found and fixed by reconciliation."""

    kind: str  # "position", "order_missing", "order_gone", "order_changed"
    key: str
    local: object
    remote: object


class Portfolio:
    """Positions and resting orders, kept live from the WebSocket and reconciled over REST.

    ``balance`` is as of the last reconciliation: no WebSocket channel carries it (fills change it); call
    :meth:`reconcile` for a fresh one. Trust the state only while :attr:`settled` is true.

    A portfolio follows one subaccount, the primary (0) unless told otherwise: the member's private channels also
    carry its other subaccounts' fills, orders and positions (tagged with their number), and ``GET
    /portfolio/orders`` without a subaccount lists every subaccount's orders; those are left out.

    Args:
        rest: an ``AsyncKalshiClient`` with auth.
        ws: a connected ``KalshiWebSocket`` session (with auth: private channels).
        on_correction: ``async fn(list[Correction])`` called after each reconciliation that changed something
            (an exception it raises is logged and does not stop the portfolio).
        subaccount: the subaccount to follow (0: the primary account; 1-63: a numbered subaccount). With an API key
            bound to a subaccount, pass its number (Kalshi refuses a ``subaccount`` that does not match the key).
    """

    def __init__(
        self,
        rest: Any,
        ws: KalshiWebSocket,
        *,
        on_correction: Callable[[list[Correction]], Awaitable[None]] | None = None,
        subaccount: int = 0,
    ) -> None:
        self._rest = rest
        self.subaccount = subaccount
        self._ws = ws
        self._on_correction = on_correction
        self.positions: dict[str, PositionState] = {}
        self.orders: dict[str, OrderState] = {}
        self.balance: Decimal | None = None
        self.fills_seen = 0
        self.reconciliations = 0
        self.corrections: list[Correction] = []
        self._fill_ids: dict[tuple[str, str], None] = {}
        # Per subscription (client_id): messages taken from it so far, and the number of the last one received
        # before the latest reconciliation's snapshot began (older than that snapshot: not applied).
        self._taken: dict[int, int] = {}
        self._older_than_snapshot: dict[int, int] = {}
        self._subs: list[Subscription[Any]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._reconcile_lock = asyncio.Lock()
        self._events: LifecycleListener | None = None
        # By subscription, not channel: other code may subscribe the same channels.
        self._tracker = DisruptionTracker()
        self._changed = asyncio.Condition()
        self._closed: Closed | None = None  # the session ended for good: the state is no longer followed

    async def __aenter__(self) -> Portfolio:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Subscribe first, then take the REST snapshot, so no update falls between the two.

        Raises:
            KalshiError: subscribing or the REST snapshot failed.
        """
        self._events = self._ws.lifecycle_events()  # before subscribing: no disruption may go unseen
        fills = await self._ws.subscribe_fill(maxsize=10_000)
        orders = await self._ws.subscribe_user_orders(maxsize=10_000)
        positions = await self._ws.subscribe_market_positions(maxsize=10_000)
        self._subs = [fills, orders, positions]
        await self.reconcile(report=False)
        self._tasks = [
            asyncio.create_task(self._consume(fills, self._apply_fill), name="portfolio-fills"),
            asyncio.create_task(self._consume(orders, self._apply_order), name="portfolio-orders"),
            asyncio.create_task(self._consume(positions, self._apply_position), name="portfolio-positions"),
            asyncio.create_task(self._watch_lifecycle(self._events), name="portfolio-lifecycle"),
        ]

    async def stop(self) -> None:
        """Cancel the portfolio's tasks and unsubscribe (if the session is still open)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._events is not None:
            self._events.close()
            self._events = None
        for sub in self._subs:
            with contextlib.suppress(KalshiError):
                await sub.unsubscribe()
        self._subs = []

    # ------------------------------------------------------------------ WebSocket updates

    async def _consume(self, sub: Subscription[Any], apply: Callable[[Any, bool], None]) -> None:
        key = sub.client_id
        async for message in sub:
            number = self._taken[key] = self._taken.get(key, 0) + 1
            # Held while a reconciliation runs: applied before its snapshot replaces local state, an update
            # newer than the snapshot would be overwritten and lost. Applied after it, messages come in order,
            # so the last one of each channel leaves the state current. One received before the snapshot began
            # is older than it: applied on top, it would undo the snapshot, and after a reconnect the updates
            # that superseded it may be lost for good (a cancelled order shown resting).
            async with self._reconcile_lock:
                apply(message, number <= self._older_than_snapshot.get(key, 0))
            await self._notify_change()

    async def _notify_change(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _apply_fill(self, message: FillMessage, older_than_snapshot: bool) -> None:
        body = message.msg
        if (body.subaccount or 0) != self.subaccount:
            return  # another subaccount's fill
        if body.trade_id:  # without one a repeat cannot be told from a new fill: each counts
            key = (body.trade_id, body.order_id or "")
            if key in self._fill_ids:
                return  # delivered twice (e.g. around a reconnect): count it once
            self._fill_ids[key] = None
            if len(self._fill_ids) > _FILL_MEMORY:
                self._fill_ids.pop(next(iter(self._fill_ids)))
        self.fills_seen += 1
        if older_than_snapshot:
            return
        post = body.post_position
        if post is not None:
            current = self.positions.get(body.market_ticker)
            base = current or PositionState(body.market_ticker, _ZERO)
            if post == 0:
                self.positions.pop(body.market_ticker, None)
            else:
                self.positions[body.market_ticker] = replace(base, position=post)

    def _apply_order(self, message: UserOrdersMessage, older_than_snapshot: bool) -> None:
        body = message.msg
        if older_than_snapshot or (body.subaccount_number or 0) != self.subaccount:
            return
        status = (body.status or "").lower()
        remaining = body.remaining_count
        if status in _DONE_STATUSES or (remaining is not None and remaining == 0):
            self.orders.pop(body.order_id, None)
            return
        # A field the update leaves out keeps what was known of the order (an absent count is not zero).
        known = self.orders.get(body.order_id)
        if remaining is None:
            remaining = known.remaining if known is not None else _ZERO
        self.orders[body.order_id] = OrderState(
            order_id=body.order_id,
            ticker=body.market_ticker,
            status=status or (known.status if known is not None else "resting"),
            remaining=remaining,
            yes_price=body.yes_price if body.yes_price is not None or known is None else known.yes_price,
            book_side=body.book_side if body.book_side is not None or known is None else known.book_side,
            client_order_id=body.client_order_id or (known.client_order_id if known is not None else None),
        )

    def _apply_position(self, message: MarketPositionsMessage, older_than_snapshot: bool) -> None:
        body = message.msg
        if older_than_snapshot or (body.subaccount or 0) != self.subaccount:
            return
        position = body.position
        if position is None:
            return
        if position == 0:
            self.positions.pop(body.market_ticker, None)
            return
        self.positions[body.market_ticker] = PositionState(
            ticker=body.market_ticker,
            position=position,
            realized_pnl=body.realized_pnl or _ZERO,
            fees_paid=body.fees_paid or _ZERO,
        )

    async def wait_for_change(self) -> None:
        """Wait for the next change: a WebSocket update applied, the connection lost (:attr:`settled` turns
        false: the state is going stale), or a reconciliation done. Wrap in ``asyncio.timeout`` to bound it.

        Raises:
            KalshiConnectionError: the session closed for good (it gave up reconnecting, or it was closed): the
                portfolio no longer follows the exchange.
        """
        async with self._changed:
            if self._closed is None:
                await self._changed.wait()
        if self._closed is not None:
            raise KalshiConnectionError(
                f"the WebSocket session closed ({self._closed.cause}): the portfolio no longer follows the exchange"
            ) from self._closed.error

    # ------------------------------------------------------------------ reconciliation

    @property
    def settled(self) -> bool:
        """True when the state can be trusted: connected, and no reconciliation running or due (every disruption
        seen so far is reconciled). False from the moment the connection drops until the reconciliation after it,
        and for good once the session has closed."""
        events = self._events
        backlog = events.backlog if events is not None else 0
        return self._closed is None and not backlog and not self._tracker.pending and not self._reconcile_lock.locked()

    async def _watch_lifecycle(self, events: LifecycleListener) -> None:
        # The private channels have no seq: reconcile once all three flow again (see kalshi.ws.disruptions).
        tracker = self._tracker
        for sub in self._subs:
            tracker.watch(sub.client_id)
        pending = events.take_nowait()
        while True:
            for event in pending:
                tracker.observe(event)
                if isinstance(event, Closed):
                    self._closed = event
            if pending:
                await self._notify_change()  # waiters learn that the state went stale (or ended)
            if tracker.closed:
                return
            wait: float | None = None
            if tracker.due:
                try:
                    await self.reconcile()
                    tracker.reconciled()  # before any waiter woken by the reconciliation runs: it sees settled
                except KalshiError as exc:
                    logger.warning("reconciliation failed (%s); retrying in %s s", exc, _RETRY_SECONDS)
                    wait = _RETRY_SECONDS  # or sooner, at the next event
            pending = []
            try:
                async with asyncio.timeout(wait):
                    pending.append(await anext(events))
            except TimeoutError:
                continue
            except StopAsyncIteration:
                if self._closed is None:
                    self._closed = Closed("lifecycle events ended")
                    await self._notify_change()
                return
            pending.extend(events.take_nowait())

    async def reconcile(self, *, report: bool = True) -> list[Correction]:
        """Re-read balance, positions and resting orders over REST; replace local state; return the differences.

        WebSocket updates that arrive meanwhile are applied after the snapshot (so none is lost); updates received
        before it started and not applied yet are dropped (the snapshot has them).

        Raises:
            KalshiError: a REST call failed (local state is left as it was).
        """
        async with self._reconcile_lock:
            received = {sub.client_id: self._taken.get(sub.client_id, 0) + sub.queue.qsize() for sub in self._subs}
            balance = await self._rest.portfolio.balance(subaccount=self.subaccount)
            remote_positions = await self._fetch_positions()
            remote_orders = await self._fetch_orders()
            self._older_than_snapshot.update(received)  # only once the snapshot replaces the state
            corrections: list[Correction] = []
            if report:
                corrections = _diff(self.positions, remote_positions, self.orders, remote_orders)
            self.positions = remote_positions
            self.orders = remote_orders
            self.balance = Decimal(balance.balance_dollars)
            self.reconciliations += 1
            if corrections:
                self.corrections.extend(corrections)
                for correction in corrections:
                    logger.info("reconciled %s %s: local %s -> exchange %s", *_fields(correction))
                if self._on_correction is not None:
                    try:
                        await self._on_correction(corrections)
                    except Exception:
                        # The state is already replaced; a bug in the callback must not stop later reconciliations.
                        logger.exception("on_correction raised; the corrections are in Portfolio.corrections")
        await self._notify_change()
        return corrections

    async def _fetch_positions(self) -> dict[str, PositionState]:
        out: dict[str, PositionState] = {}
        async for item in self._rest.portfolio.iter_get_positions(limit=1000, subaccount=self.subaccount):
            position = Decimal(item.position_fp)
            if position == 0:
                continue  # flat: absent, like a market never traded
            out[item.ticker] = PositionState(
                ticker=item.ticker,
                position=position,
                realized_pnl=Decimal(item.realized_pnl_dollars),
                fees_paid=Decimal(item.fees_paid_dollars),
            )
        return out

    async def _fetch_orders(self) -> dict[str, OrderState]:
        out: dict[str, OrderState] = {}
        # Without a subaccount, GET /portfolio/orders lists every subaccount's orders (SubaccountQuery).
        orders = self._rest.orders.iter_get_orders(status="resting", limit=1000, subaccount=self.subaccount)
        async for order in orders:
            out[order.order_id] = OrderState(
                order_id=order.order_id,
                ticker=order.ticker,
                status=str(order.status),
                remaining=Decimal(order.remaining_count_fp),
                yes_price=Decimal(order.yes_price_dollars),
                book_side=str(order.book_side),
                client_order_id=order.client_order_id,
            )
        return out


def _diff(
    local_positions: dict[str, PositionState],
    remote_positions: dict[str, PositionState],
    local_orders: dict[str, OrderState],
    remote_orders: dict[str, OrderState],
) -> list[Correction]:
    out: list[Correction] = []
    for ticker in sorted(set(local_positions) | set(remote_positions)):
        mine = local_positions.get(ticker)
        theirs = remote_positions.get(ticker)
        mine_pos = mine.position if mine else _ZERO
        theirs_pos = theirs.position if theirs else _ZERO
        if mine_pos != theirs_pos:
            out.append(Correction("position", ticker, mine_pos, theirs_pos))
    for order_id in sorted(set(local_orders) | set(remote_orders)):
        mine_order = local_orders.get(order_id)
        theirs_order = remote_orders.get(order_id)
        if mine_order is None:
            out.append(Correction("order_missing", order_id, None, theirs_order))
        elif theirs_order is None:
            out.append(Correction("order_gone", order_id, mine_order, None))
        elif mine_order.remaining != theirs_order.remaining:
            out.append(Correction("order_changed", order_id, mine_order.remaining, theirs_order.remaining))
    return out


def _fields(correction: Correction) -> tuple[str, str, object, object]:
    return correction.kind, correction.key, correction.local, correction.remote
