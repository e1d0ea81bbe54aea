"""A refused WebSocket upgrade as a :class:`~kalshi.errors.KalshiHandshakeError` that says why and what to do.

The server's own reason comes first (``unknown_key: unknown API key id``, ``stale timestamp``: from a JSON error
body, the body's text, or ``WWW-Authenticate``), then a hint per status, and ``Retry-After`` is parsed for 429.
"""

from __future__ import annotations

import json
from typing import Final

from picows import WSHandshakeError

from kalshi.errors import KalshiConnectionError, KalshiHandshakeError
from kalshi.ws.connection import parse_retry_after

__all__ = ["handshake_error", "refusal_reason"]

_HANDSHAKE_HINTS: Final[dict[int, str]] = {
    401: "check the API key id, the private key, and that the clock is right (the signature covers a timestamp)",
    403: "this key may not open the WebSocket; check its permissions",
    404: "check ws_url: the path is /trade-api/ws/v2",
    429: "too many connection attempts; wait retry_after seconds before the next one",
}


def handshake_error(exc: WSHandshakeError, where: str) -> KalshiConnectionError:
    """The error for a refused (or invalid) upgrade answer from ``where``."""
    response = exc.response
    if response is None or int(response.status) == 101:
        return KalshiConnectionError(f"invalid WebSocket upgrade response from {where}: {exc}")
    status = int(response.status)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    message = f"{where} refused the WebSocket upgrade with HTTP {status}"
    reason = refusal_reason(exc.raw_body or b"", response.headers.get("WWW-Authenticate"))
    if reason:
        message += f" ({reason})"
    hint = _HANDSHAKE_HINTS.get(status) or ("the exchange is unavailable; retry with backoff" if status >= 500 else "")
    if hint:
        message += f": {hint}"
    return KalshiHandshakeError(message, status=status, retry_after=retry_after)


_REASON_CHARS: Final = 200


def refusal_reason(body: bytes, authenticate: str | None) -> str:
    """The server's reason for refusing an upgrade: ``code: message`` from a JSON error body (``{"error": {"code",
    "message"}}``, ``{"code", "message"}`` or ``{"error": "..."}``), else the body's text, else the
    ``WWW-Authenticate`` header; shortened for a one-line message."""
    text = body[:4096].decode("utf-8", "replace").strip()
    reason = ""
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            inner = data.get("error", data)
            if isinstance(inner, dict):
                code, detail = inner.get("code"), inner.get("message") or inner.get("msg") or inner.get("detail")
                reason = ": ".join(str(part) for part in (code, detail) if part)
            elif isinstance(inner, str):
                reason = inner
    if not reason:
        reason = text or (authenticate or "").strip()
    reason = " ".join(reason.split())
    return reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 3] + "..."
