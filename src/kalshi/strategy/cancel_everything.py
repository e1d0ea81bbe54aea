"""The kill switch's last step: make sure no order of the account rests on the exchange, within a deadline.

One ``cancel_all_orders`` is not enough to know that: it can fail on a transient 503 or a lost connection (a
DELETE without a body is not retried by the REST client after a failure that may have reached the exchange), and
a success answer proves nothing about orders that land meanwhile. So this sends the cancel-all again until it
is answered, then lists the resting orders and cancels whatever is left one by one, until the list comes back
empty or the deadline passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

from kalshi.errors import KalshiError, KalshiNotFoundError
from kalshi.rest import AsyncKalshiClient

__all__ = ["cancel_everything"]

logger = logging.getLogger(__name__)

_FIRST_PAUSE_S: Final = 0.05
_MAX_PAUSE_S: Final = 1.0


async def cancel_everything(rest: AsyncKalshiClient, *, within_s: float) -> str | None:
    """Cancel every resting order of the account, in every subaccount, and check that none is left.

    Returns:
        None once the exchange lists no resting order; otherwise why it could not be made sure of within
        ``within_s`` seconds (orders may still rest: the caller must say so loudly).
    """
    orders = rest.orders
    deadline = time.monotonic() + within_s
    pause = _FIRST_PAUSE_S
    failure = "no attempt was made"
    cancelled_all = False
    while True:
        try:
            if not cancelled_all:
                await orders.cancel_all_orders()
                cancelled_all = True
            # Without a subaccount, GetOrders lists every subaccount's orders (as the cancel-all covers them all);
            # each is cancelled in its own subaccount, where an order id without one would not be found.
            left = [
                (o.order_id, o.subaccount_number) async for o in orders.iter_get_orders(status="resting", limit=1000)
            ]
            if not left:
                return None
            logger.error("%d orders still rest after the cancel-all; cancelling them one by one", len(left))
            for order_id, subaccount in left:
                with contextlib.suppress(KalshiNotFoundError):  # filled or cancelled meanwhile: gone either way
                    await orders.cancel_order_v2(order_id, subaccount=subaccount)
            failure = f"{len(left)} orders were still resting at the last look"
        except KalshiError as exc:
            failure = f"{type(exc).__name__}: {exc}"
            logger.error("cancelling every order failed (%s); trying again", failure)
        if time.monotonic() + pause > deadline:
            return failure
        await asyncio.sleep(pause)
        pause = min(pause * 2, _MAX_PAUSE_S)
