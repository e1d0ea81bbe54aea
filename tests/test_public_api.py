"""The public surface is a contract: changing it must be a deliberate edit of this file."""

from __future__ import annotations

import importlib

import kalshi

EXPECTED_TOP_LEVEL = {
    "AsyncKalshiClient",
    "ConnectionState",
    "KalshiAPIError",
    "KalshiAuth",
    "KalshiAuthError",
    "KalshiBackpressureError",
    "KalshiBadRequestError",
    "KalshiClient",
    "KalshiCommandError",
    "KalshiConfig",
    "KalshiConfigError",
    "KalshiConflictError",
    "KalshiConnectionError",
    "KalshiError",
    "KalshiForbiddenError",
    "KalshiHandshakeError",
    "KalshiNotFoundError",
    "KalshiPaginationError",
    "KalshiProtocolError",
    "KalshiRateLimitError",
    "KalshiSequenceGapError",
    "KalshiServerError",
    "KalshiSubscriptionError",
    "KalshiUnauthorizedError",
    "KalshiWebSocket",
    "Orderbook",
    "OverflowStrategy",
    "Portfolio",
    "__version__",
}


def test_top_level_all_is_locked() -> None:
    assert set(kalshi.__all__) == EXPECTED_TOP_LEVEL
    for name in kalshi.__all__:
        assert getattr(kalshi, name) is not None


def test_seed_000_import_paths() -> None:
    """Every import path used on the seed 000 page resolves to the same objects."""
    ws = importlib.import_module("kalshi.ws")
    client = importlib.import_module("kalshi.ws.client")
    connection = importlib.import_module("kalshi.ws.connection")
    backpressure = importlib.import_module("kalshi.ws.backpressure")
    markets = importlib.import_module("kalshi.models.markets")
    models = importlib.import_module("kalshi.ws.models")
    assert ws.KalshiWebSocket is client.KalshiWebSocket is kalshi.KalshiWebSocket
    assert ws.ConnectionState is connection.ConnectionState
    assert ws.OverflowStrategy is backpressure.OverflowStrategy
    assert backpressure.MessageQueue is ws.MessageQueue
    assert markets.Orderbook is kalshi.Orderbook
    for name in (
        "TickerMessage",
        "TradeMessage",
        "OrderbookSnapshotMessage",
        "OrderbookDeltaMessage",
        "MarketLifecycleMessage",
        "MultivariateMessage",
        "MultivariateLifecycleMessage",
        "FillMessage",
        "UserOrdersMessage",
        "MarketPositionsMessage",
        "OrderGroupMessage",
        "CommunicationsMessage",
        "ErrorMessage",
    ):
        assert hasattr(models, name), name
    assert {s.name for s in connection.ConnectionState} == {
        "DISCONNECTED",
        "CONNECTING",
        "CONNECTED",
        "STREAMING",
        "RECONNECTING",
        "CLOSED",
    }
    assert {"DROP_OLDEST", "ERROR"} <= {s.name for s in backpressure.OverflowStrategy}


def test_kalshi_websocket_public_methods() -> None:
    methods = {
        "connect",
        "on",
        "run_forever",
        "orderbook",
        "subscribe",
        "subscribe_ticker",
        "subscribe_trade",
        "subscribe_orderbook_delta",
        "subscribe_market_lifecycle",
        "subscribe_multivariate",
        "subscribe_multivariate_lifecycle",
        "subscribe_fill",
        "subscribe_user_orders",
        "subscribe_market_positions",
        "subscribe_order_group",
        "subscribe_communications",
        "subscribe_cfbenchmarks_value",
        "subscribe_cfbenchmarks_value_5hz",
        "subscribe_pyth_value",
        "list_subscriptions",
    }
    missing = {m for m in methods if not callable(getattr(kalshi.KalshiWebSocket, m, None))}
    assert not missing
