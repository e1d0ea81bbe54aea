"""Keeping the API key out of URLs shown to people, logs and exceptions.

The key travels as the ``api_key`` query parameter, so the connection URL is a secret. Everything this package
prints uses :func:`redact_url`. One lower layer can log the raw upgrade request: picows writes it at its level 9
(below DEBUG) to a per-connection child of the ``picows.client`` logger. Filters do not apply to records that
propagate from a child, so :func:`install_log_filter` raises ``picows.client`` to DEBUG when it is set lower (or
not set): picows then skips that trace (it checks the level when a connection starts). A filter also rewrites
``api_key=...`` in records logged on ``picows.client`` itself.
"""

from __future__ import annotations

import logging
import re
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "install_log_filter", "redact_text", "redact_url", "with_api_key"]

REDACTED: Final = "***"
_KEY_IN_TEXT: Final = re.compile(r"(api_key=)[^&\s'\"\\#]+", re.IGNORECASE)
_PARAM: Final = "api_key"


def with_api_key(url: str, api_key: str) -> str:
    """The URL with ``api_key`` set as its query parameter (replacing any that was there)."""
    parts = urlsplit(url)
    query = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if name != _PARAM]
    query.append((_PARAM, api_key))
    return urlunsplit(parts._replace(query=urlencode(query)))


def redact_url(url: str) -> str:
    """The URL with the ``api_key`` value replaced by ``***`` (other parameters kept)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (name, REDACTED if name == _PARAM else value) for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


def redact_text(text: str, api_key: str | None = None) -> str:
    """``text`` with every ``api_key=...`` value, and the key itself wherever it appears, replaced by ``***``."""
    text = _KEY_IN_TEXT.sub(r"\g<1>" + REDACTED, text)
    if api_key:
        text = text.replace(api_key, REDACTED)
    return text


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging module's problem to report, not ours
            return True
        if "api_key=" in message.lower():
            record.msg = redact_text(message)
            record.args = None
        return True


_FILTER: Final = _RedactingFilter()
_PICOWS_CLIENT: Final = "picows.client"
_FILTERED_LOGGERS: Final = (_PICOWS_CLIENT, "picows")


def install_log_filter() -> None:
    """Keep the raw upgrade request (URL and key) out of picows' logs; redact ``api_key=`` values. Idempotent."""
    client = logging.getLogger(_PICOWS_CLIENT)
    if client.level < logging.DEBUG:  # NOTSET included: the level-9 trace would follow the root's level
        client.setLevel(logging.DEBUG)
    for name in _FILTERED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
