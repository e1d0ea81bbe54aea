"""REST access to a contest's full liquidity table (used to build and rebuild the maintained tables).

``GET {rest_url}/contests/{contest_id}/liquidity`` with the key in the ``X-API-Key`` header (never in the URL,
so httpx's request logs and errors carry no key).
"""

from __future__ import annotations

import logging
from typing import Final
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from openmarkets._redact import redact_text
from openmarkets.errors import OpenMarketsAuthError, OpenMarketsConnectionError, RefreshError
from openmarkets.models import LiquiditySnapshot, decode_snapshot

__all__ = ["API_KEY_HEADER", "LiquidityRest", "rest_url_for"]

logger = logging.getLogger(__name__)

API_KEY_HEADER: Final = "X-API-Key"
_STREAM_SUFFIX: Final = "/stream"


def rest_url_for(ws_url: str) -> str:
    """The REST base that goes with a stream URL: ``wss://h/flow/v1/stream`` -> ``https://h/flow/v1``.

    Args:
        ws_url: the stream URL (any query is dropped).

    Returns:
        The REST base URL without a trailing slash.
    """
    parts = urlsplit(ws_url)
    scheme = {"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    if path.endswith(_STREAM_SUFFIX):
        path = path[: -len(_STREAM_SUFFIX)]
    return urlunsplit((scheme, parts.netloc, path, "", ""))


class LiquidityRest:
    """Fetches liquidity snapshots. Owns its httpx client unless one is given.

    Args:
        api_key: sent as ``X-API-Key``.
        rest_url: the REST base, e.g. ``https://api.openmarkets.ai/flow/v1``.
        timeout: seconds per request.
        verify_tls: verify the server certificate.
        client: an httpx.AsyncClient to use instead of a new one (not closed by :meth:`aclose`).
    """

    def __init__(
        self,
        api_key: str,
        rest_url: str,
        *,
        timeout: float = 10.0,
        verify_tls: bool = True,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._base = rest_url.rstrip("/")
        self._api_key = api_key
        self._headers = {API_KEY_HEADER: api_key, "Accept": "application/json"}
        self._owned = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout, verify=verify_tls)

    def __repr__(self) -> str:
        return f"LiquidityRest({self._base!r})"

    async def fetch(self, contest_id: str) -> LiquiditySnapshot:
        """Fetch the whole liquidity table of one contest.

        Args:
            contest_id: the contest.

        Returns:
            The snapshot.

        Raises:
            OpenMarketsAuthError: the key was refused (401/403).
            RefreshError: any other error status (``retryable`` tells 429/5xx from 4xx).
            OpenMarketsConnectionError: the request failed on the network.
            OpenMarketsProtocolError: the body is not a valid snapshot.
        """
        url = f"{self._base}/contests/{quote(contest_id, safe='')}/liquidity"
        try:
            response = await self._client.get(url, headers=self._headers)
        except httpx.HTTPError as exc:
            raise OpenMarketsConnectionError(f"liquidity request for {contest_id} failed: {exc}") from exc
        status = response.status_code
        if status in (401, 403):
            raise OpenMarketsAuthError(
                f"the OpenMarkets REST API refused the API key (HTTP {status}); check the key and its permissions",
                status=status,
            )
        if status != 200:
            detail = redact_text(response.text[:200].strip(), self._api_key)
            raise RefreshError(
                f"liquidity request for {contest_id} answered HTTP {status}" + (f": {detail}" if detail else ""),
                contest_id=contest_id,
                status=status,
            )
        snapshot = decode_snapshot(response.content)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("fetched %d entries of %s", len(snapshot.entries), contest_id)
        return snapshot

    async def aclose(self) -> None:
        """Close the httpx client if this object created it."""
        if self._owned:
            await self._client.aclose()
