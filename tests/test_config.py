from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from kalshi.config import KalshiConfig
from kalshi.errors import KalshiConfigError

SPECS = Path(__file__).resolve().parents[1] / "specs"


def test_production_and_demo_default_to_the_spec_primary_hosts() -> None:
    prod = KalshiConfig.production()
    assert prod.rest_url == "https://external-api.kalshi.com/trade-api/v2"
    assert prod.ws_url == "wss://external-api-ws.kalshi.com/trade-api/ws/v2"
    assert prod.environment == "production"
    demo = KalshiConfig.demo()
    assert demo.rest_url == "https://external-api.demo.kalshi.co/trade-api/v2"
    assert demo.ws_url == "wss://external-api-ws.demo.kalshi.co/trade-api/ws/v2"
    assert demo.environment == "demo"
    assert prod.ws_max_retries == 10
    assert prod.verify_tls is True


def test_primary_hosts_are_the_spec_servers() -> None:
    spec = yaml.safe_load((SPECS / "openapi.yaml").read_text())
    rest_servers = [urlsplit(server["url"]).hostname for server in spec["servers"]]
    ws_servers = [s["host"] for s in yaml.safe_load((SPECS / "asyncapi.yaml").read_text())["servers"].values()]
    assert urlsplit(KalshiConfig.production().rest_url).hostname == rest_servers[0]
    assert urlsplit(KalshiConfig.production().ws_url).hostname == ws_servers[0]
    # openapi.yaml lists production, production shared, demo, demo shared.
    assert urlsplit(KalshiConfig.production(shared_host=True).rest_url).hostname == rest_servers[1]
    assert urlsplit(KalshiConfig.demo().rest_url).hostname == rest_servers[2]
    assert urlsplit(KalshiConfig.demo(shared_host=True).rest_url).hostname == rest_servers[3]


@pytest.mark.parametrize(
    ("rest", "ws", "environment"),
    [
        ("api.elections.kalshi.com", "api.elections.kalshi.com", "production"),
        ("external-api.kalshi.com", "api.elections.kalshi.com", "production"),
        ("demo-api.kalshi.co", "demo-api.kalshi.co", "demo"),
        ("external-api.demo.kalshi.co", "demo-api.kalshi.co", "demo"),
    ],
)
def test_shared_hosts_are_still_accepted(rest: str, ws: str, environment: str) -> None:
    config = KalshiConfig(rest_url=f"https://{rest}/trade-api/v2", ws_url=f"wss://{ws}/trade-api/ws/v2")
    assert config.environment == environment
    shared = getattr(KalshiConfig, environment)(shared_host=True)
    assert urlsplit(shared.rest_url).hostname == urlsplit(shared.ws_url).hostname
    assert shared.environment == environment


def test_primary_demo_and_shared_production_do_not_mix() -> None:
    with pytest.raises(KalshiConfigError, match="different environments"):
        KalshiConfig(
            rest_url="https://external-api.demo.kalshi.co/trade-api/v2", ws_url="wss://api.elections.kalshi.com/x"
        )


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
