"""Run by tests/test_sim_official_clients.py in an interpreter of its own that has ``kalshi-sdk`` installed.

Usage: ``python kalshi_sdk_probe.py BASE_URL KEY_ID PRIVATE_KEY_FILE TICKER``. Talks to the simulator at
``BASE_URL`` with the SDK as a user would (public reads, balance, an order placed, listed and cancelled) and
prints one JSON line of what it saw; any failure is an exception and a non-zero exit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(base_url: str, key_id: str, key_file: str, ticker: str) -> dict[str, object]:
    # This `kalshi` is kalshi-sdk, not kalshi-kit: the two cannot share an environment.
    from kalshi import CreateOrderV2Request, KalshiClient

    client = KalshiClient(key_id=key_id, private_key=Path(key_file).read_bytes(), base_url=base_url)
    status = client.exchange.status()
    markets = client.markets.list(limit=10)
    client.markets.orderbook(ticker)
    balance = client.portfolio.balance()
    created = client.orders.create_v2(
        request=CreateOrderV2Request(
            ticker=ticker,
            client_order_id="sdk-1",
            side="bid",
            count="1.00",
            price="0.0100",
            time_in_force="good_till_canceled",
            self_trade_prevention_type="taker_at_cross",
        )
    )
    listed = [order.order_id for order in client.orders.list()]
    client.orders.cancel_v2(created.order_id)
    return {
        "exchange_active": status.exchange_active,
        "tickers": [m.ticker for m in markets],
        "balance_cents": balance.balance,
        "order_id": created.order_id,
        "order_listed": created.order_id in listed,
        "cancelled": True,
    }


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:5])))
