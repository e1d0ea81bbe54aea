from __future__ import annotations

import dataclasses

import pytest

from kalshi.config import KalshiConfig
from kalshi.errors import KalshiConfigError


def test_production_and_demo_urls() -> None:
    prod = KalshiConfig.production()
    assert prod.rest_url == "https://api.elections.kalshi.com/trade-api/v2"
    assert prod.ws_url == "wss://api.elections.kalshi.com/trade-api/ws/v2"
    assert prod.environment == "production"
    demo = KalshiConfig.demo()
    assert demo.ws_url == "wss://demo-api.kalshi.co/trade-api/ws/v2"
    assert demo.environment == "demo"
    assert prod.ws_max_retries == 10
    assert prod.verify_tls is True


def test_local_builds_matching_pair() -> None:
    cfg = KalshiConfig.local("http://127.0.0.1:9999")
    assert cfg.rest_url == "http://127.0.0.1:9999/trade-api/v2"
    assert cfg.ws_url == "ws://127.0.0.1:9999/trade-api/ws/v2"
    assert cfg.ws_path == "/trade-api/ws/v2"
    assert cfg.environment == "local"


def test_mixed_environments_refused() -> None:
    with pytest.raises(KalshiConfigError, match="different environments"):
        KalshiConfig(
            rest_url="https://api.elections.kalshi.com/trade-api/v2",
            ws_url="wss://demo-api.kalshi.co/trade-api/ws/v2",
        )
    with pytest.raises(KalshiConfigError, match="different environments"):
        KalshiConfig(rest_url="http://127.0.0.1:1/trade-api/v2", ws_url="wss://demo-api.kalshi.co/trade-api/ws/v2")


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": 0},
        {"retry_base_delay": -1},
        {"retry_base_delay": 5.0, "retry_max_delay": 1.0},
        {"ws_max_retries": -1},
        {"heartbeat_timeout": 0},
    ],
)
def test_bad_settings_refused(options: dict[str, float]) -> None:
    with pytest.raises(KalshiConfigError):
        KalshiConfig.demo(**options)


def test_bad_schemes_refused() -> None:
    with pytest.raises(KalshiConfigError, match="rest_url"):
        KalshiConfig(rest_url="ftp://x/trade-api/v2", ws_url="ws://x/trade-api/ws/v2")
    with pytest.raises(KalshiConfigError, match="ws_url"):
        KalshiConfig(rest_url="http://x/trade-api/v2", ws_url="http://x/trade-api/ws/v2")
    with pytest.raises(KalshiConfigError, match="TLS"):
        KalshiConfig(rest_url="http://api.elections.kalshi.com/trade-api/v2", ws_url="wss://api.elections.kalshi.com/x")
    with pytest.raises(KalshiConfigError, match="local base_url"):
        KalshiConfig.local("127.0.0.1:8765")


def test_frozen_and_with_options() -> None:
    cfg = KalshiConfig.demo()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.timeout = 3.0  # type: ignore[misc]
    changed = cfg.with_options(ws_max_retries=3)
    assert changed.ws_max_retries == 3 and cfg.ws_max_retries == 10


def test_for_env() -> None:
    assert KalshiConfig.for_env("prod").environment == "production"
    assert KalshiConfig.for_env("demo").environment == "demo"
    assert KalshiConfig.for_env("local", url="http://127.0.0.1:5").rest_url.startswith("http://127.0.0.1:5")
    with pytest.raises(KalshiConfigError, match="unknown environment"):
        KalshiConfig.for_env("staging")
