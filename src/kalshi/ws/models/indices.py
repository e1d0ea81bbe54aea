"""Reference index feeds: CF Benchmarks (1 Hz and 5 Hz) and Pyth, with their list replies (all sequenced)."""

from __future__ import annotations

from decimal import Decimal

from kalshi.ws.models._base import DataMessage, Payload, money_or_none

__all__ = [
    "Cfbenchmarks5HzIndexListMessage",
    "CfbenchmarksAverage",
    "CfbenchmarksIndexListMessage",
    "CfbenchmarksValue5HzMessage",
    "CfbenchmarksValue5HzPayload",
    "CfbenchmarksValueMessage",
    "CfbenchmarksValuePayload",
    "IndexListPayload",
    "PythUnderlyingListMessage",
    "PythValueMessage",
    "PythValuePayload",
    "UnderlyingListPayload",
]


class CfbenchmarksAverage(Payload, frozen=True, kw_only=True):
    """A windowed average: ``value`` (8-decimal string) over ``window_size`` ticks."""

    value: str
    window_size: int | None = None
    window_start_ts_ms: int | None = None
    window_end_ts_exclusive: int | None = None

    @property
    def average(self) -> Decimal | None:
        """The average as an exact Decimal."""
        return money_or_none(self.value)


class CfbenchmarksValuePayload(Payload, frozen=True, kw_only=True):
    """One CF Benchmarks index tick (``data`` is the raw upstream JSON frame, as a string)."""

    index_id: str
    received_at: int | None = None
    data: str | None = None
    avg_60s_data: CfbenchmarksAverage | None = None
    last_60s_windowed_average_15min: CfbenchmarksAverage | None = None


class CfbenchmarksValue5HzPayload(Payload, frozen=True, kw_only=True):
    """One 5 Hz CF Benchmarks index tick."""

    index_id: str
    value_usd: str | None = None
    source_ts_ms: int | None = None
    received_at: int | None = None
    data: str | None = None

    @property
    def value(self) -> Decimal | None:
        """Index value in USD (exact)."""
        return money_or_none(self.value_usd)


class PythValuePayload(Payload, frozen=True, kw_only=True):
    """One Pyth price for an underlying."""

    underlying_ticker: str
    value_usd: str | None = None
    source_ts_ms: int | None = None
    received_at: int | None = None

    @property
    def value(self) -> Decimal | None:
        """Value in USD (exact)."""
        return money_or_none(self.value_usd)


class IndexListPayload(Payload, frozen=True, kw_only=True):
    """Index ids available (reply to the ``indexlist`` action)."""

    index_ids: list[str]


class UnderlyingListPayload(Payload, frozen=True, kw_only=True):
    """Underlyings recently streamed (reply to the ``underlying_list`` action)."""

    underlying_tickers: list[str]


class CfbenchmarksValueMessage(DataMessage, tag="cfbenchmarks_value", frozen=True, kw_only=True):
    """``cfbenchmarks_value``."""

    type = "cfbenchmarks_value"
    msg: CfbenchmarksValuePayload


class CfbenchmarksIndexListMessage(DataMessage, tag="cfbenchmarks_value_indexlist", frozen=True, kw_only=True):
    """``cfbenchmarks_value_indexlist`` (``id`` echoes the update_subscription command)."""

    type = "cfbenchmarks_value_indexlist"
    msg: IndexListPayload


class CfbenchmarksValue5HzMessage(DataMessage, tag="cfbenchmarks_value_5hz", frozen=True, kw_only=True):
    """``cfbenchmarks_value_5hz``."""

    type = "cfbenchmarks_value_5hz"
    msg: CfbenchmarksValue5HzPayload


class Cfbenchmarks5HzIndexListMessage(DataMessage, tag="cfbenchmarks_value_5hz_indexlist", frozen=True, kw_only=True):
    """``cfbenchmarks_value_5hz_indexlist``."""

    type = "cfbenchmarks_value_5hz_indexlist"
    msg: IndexListPayload


class PythValueMessage(DataMessage, tag="pyth_value", frozen=True, kw_only=True):
    """``pyth_value``."""

    type = "pyth_value"
    msg: PythValuePayload


class PythUnderlyingListMessage(DataMessage, tag="pyth_value_underlying_list", frozen=True, kw_only=True):
    """``pyth_value_underlying_list``."""

    type = "pyth_value_underlying_list"
    msg: UnderlyingListPayload
