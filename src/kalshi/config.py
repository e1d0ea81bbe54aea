"""Connection settings: where the exchange is, and how patiently to talk to it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from kalshi.errors import KalshiConfigError

__all__ = [
    "DEMO_HOST",
    "DEMO_SHARED_HOST",
    "DEMO_WS_HOST",
    "PRODUCTION_HOST",
    "PRODUCTION_SHARED_HOST",
    "PRODUCTION_WS_HOST",
    "KalshiConfig",
]

# The spec's primary hosts (openapi.yaml ``servers``, asyncapi.yaml ``servers``): dedicated to the Trade API.
PRODUCTION_HOST = "external-api.kalshi.com"
PRODUCTION_WS_HOST = "external-api-ws.kalshi.com"
DEMO_HOST = "external-api.demo.kalshi.co"
DEMO_WS_HOST = "external-api-ws.demo.kalshi.co"
# The shared hosts the spec still supports (REST and WebSocket on one host), for existing setups.
PRODUCTION_SHARED_HOST = "api.elections.kalshi.com"
DEMO_SHARED_HOST = "demo-api.kalshi.co"
REST_PATH = "/trade-api/v2"
WS_PATH = "/trade-api/ws/v2"

Environment = Literal["production", "demo", "local", "custom"]


def _environment_of(host: str) -> Environment:
    # Checked in this order: every demo host ends in .kalshi.co, every production host in .kalshi.com.
    if host.endswith(".kalshi.co"):
        return "demo"
    if host.endswith(".kalshi.com"):
        return "production"
    if host in ("127.0.0.1", "localhost", "::1") or host.startswith("127."):
        return "local"
    return "custom"


@dataclass(frozen=True, slots=True, kw_only=True)
class KalshiConfig:
    """Immutable client settings.

    Build one with :meth:`production`, :meth:`demo` or :meth:`local`, or pass explicit URLs.
    Use :meth:`with_options` to derive a changed copy.

    Raises:
        KalshiConfigError: a URL has the wrong scheme, or REST and WebSocket point at different
            environments (e.g. production REST with demo WebSocket), or a setting is out of range.
    """

    rest_url: str
    ws_url: str
    timeout: float = 10.0
    connect_timeout: float = 10.0
    retry_base_delay: float = 0.5
    retry_max_delay: float = 30.0
    max_retries: int = 3
    ws_max_retries: int = 10
    heartbeat_interval: float = 10.0
    heartbeat_timeout: float = 30.0
    verify_tls: bool = True
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        rest = urlsplit(self.rest_url)
        ws = urlsplit(self.ws_url)
        if rest.scheme not in ("http", "https"):
            raise KalshiConfigError(f"rest_url must start with https:// (or http:// locally), got {rest.scheme!r}")
        if ws.scheme not in ("ws", "wss"):
            raise KalshiConfigError(f"ws_url must start with wss:// (or ws:// locally), got {ws.scheme!r}")
        rest_env = _environment_of(rest.hostname or "")
        ws_env = _environment_of(ws.hostname or "")
        exchange_envs = {"production", "demo"}
        if rest_env != ws_env and (rest_env in exchange_envs or ws_env in exchange_envs):
            raise KalshiConfigError(
                f"rest_url ({rest_env}) and ws_url ({ws_env}) point at different environments; "
                "use KalshiConfig.production(), .demo() or .local(url) to get a matching pair"
            )
        if rest_env in ("production", "demo") and (rest.scheme != "https" or ws.scheme != "wss"):
            raise KalshiConfigError("the exchange only speaks TLS: use https:// and wss://")
        for name in ("timeout", "connect_timeout", "retry_base_delay", "retry_max_delay", "heartbeat_timeout"):
            if getattr(self, name) <= 0:
                raise KalshiConfigError(f"{name} must be > 0")
        if self.heartbeat_interval < 0:
            raise KalshiConfigError("heartbeat_interval must be >= 0 (0 turns our own pings off)")
        if self.retry_max_delay < self.retry_base_delay:
            raise KalshiConfigError("retry_max_delay must be >= retry_base_delay")
        if self.ws_max_retries < 0 or self.max_retries < 0:
            raise KalshiConfigError("ws_max_retries and max_retries must be >= 0")

    @property
    def environment(self) -> Environment:
        """'production', 'demo', 'local' or 'custom', read from the REST host."""
        return _environment_of(urlsplit(self.rest_url).hostname or "")

    @property
    def ws_path(self) -> str:
        """The path the WebSocket upgrade is signed with."""
        return urlsplit(self.ws_url).path or "/"

    @property
    def rest_path_prefix(self) -> str:
        return urlsplit(self.rest_url).path.rstrip("/")

    @classmethod
    def production(cls, *, shared_host: bool = False, **options: Any) -> KalshiConfig:
        """The live exchange, on the spec's primary hosts (``external-api.kalshi.com`` for REST,
        ``external-api-ws.kalshi.com`` for the WebSocket).

        Args:
            shared_host: use the shared host ``api.elections.kalshi.com`` for both instead (still supported).
            **options: other settings (``timeout=...``).
        """
        rest, ws = (PRODUCTION_SHARED_HOST,) * 2 if shared_host else (PRODUCTION_HOST, PRODUCTION_WS_HOST)
        return cls(rest_url=f"https://{rest}{REST_PATH}", ws_url=f"wss://{ws}{WS_PATH}", **options)

    @classmethod
    def demo(cls, *, shared_host: bool = False, **options: Any) -> KalshiConfig:
        """Kalshi's demo environment (paper money), on the spec's primary hosts (``external-api.demo.kalshi.co``,
        ``external-api-ws.demo.kalshi.co``).

        Args:
            shared_host: use the shared host ``demo-api.kalshi.co`` for both instead (still supported).
            **options: other settings (``timeout=...``).
        """
        rest, ws = (DEMO_SHARED_HOST,) * 2 if shared_host else (DEMO_HOST, DEMO_WS_HOST)
        return cls(rest_url=f"https://{rest}{REST_PATH}", ws_url=f"wss://{ws}{WS_PATH}", **options)

    @classmethod
    def local(cls, base_url: str = "http://127.0.0.1:8765", **options: Any) -> KalshiConfig:
        """A simulator (``kalshi sim``) at ``base_url`` such as ``http://127.0.0.1:8765``."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
            raise KalshiConfigError(f"local base_url must look like http://127.0.0.1:8765, got {base_url!r}")
        secure = parts.scheme in ("https", "wss")
        rest = urlunsplit(("https" if secure else "http", parts.netloc, REST_PATH, "", ""))
        ws = urlunsplit(("wss" if secure else "ws", parts.netloc, WS_PATH, "", ""))
        return cls(rest_url=rest, ws_url=ws, **options)

    @classmethod
    def for_env(cls, env: str, *, url: str | None = None, **options: Any) -> KalshiConfig:
        """Pick a config by name: 'prod'/'production', 'demo' or 'local' (with ``url``)."""
        if url:
            return cls.local(url, **options)
        name = env.lower()
        if name in ("prod", "production"):
            return cls.production(**options)
        if name == "demo":
            return cls.demo(**options)
        if name == "local":
            return cls.local(**options)
        raise KalshiConfigError(f"unknown environment {env!r}: use prod, demo or local (or --url)")

    def with_options(self, **options: Any) -> KalshiConfig:
        """A copy with some settings changed."""
        return replace(self, **options)
