"""Index feeds of the simulator: ``cfbenchmarks_value``, ``cfbenchmarks_value_5hz`` and ``pyth_value``.

Values come from :class:`kalshi.sim.market.IndexWalk`; this module shapes them as asyncapi.yaml describes:
8-decimal ``value_usd`` strings, the raw upstream frame in ``data``, the trailing 60 s average
(``avg_60s_data``: prior ticks in ``[ts - 60 s, ts)``, the tick itself when there are none) and, in the final
minute before a quarter hour, ``last_60s_windowed_average_15min``.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Any, Final

import msgspec

from kalshi.sim.ws.fanout import Hub

__all__ = ["CFB_5HZ_INDICES", "CFB_INDEX_IDS", "PYTH_UNDERLYINGS", "IndexFeeds"]

# The coin tables of asyncapi.yaml: CF Benchmarks index ids, the 5 Hz subset, and Pyth symbols.
CFB_INDEX_IDS: Final = (
    "AAVEUSD_RTI",
    "ADAUSD_RTI",
    "BCHUSD_RTI",
    "BNBUSD_RTI",
    "BRTI",
    "DOGEUSD_RTI",
    "DOTUSD_RTI",
    "ETHUSD_RTI",
    "HBARUSD_RTI",
    "HYPEUSD_RTI",
    "LINKUSD_RTI",
    "LTCUSD_RTI",
    "NEARUSD_RTI",
    "SHIBUSD_RTI",
    "SOLUSD_RTI",
    "SUIUSD_RTI",
    "VVVUSD_RTI",
    "WLDUSD_RTI",
    "XLMUSD_RTI",
    "XRPUSD_RTI",
    "ZECUSD_RTI",
)
CFB_5HZ_INDICES: Final = ("BRTI", "DOGEUSD_RTI", "ETHUSD_RTI", "SOLUSD_RTI", "XRPUSD_RTI")
PYTH_UNDERLYINGS: Final = (
    "Commodities.BRENTX6/USD",
    "Commodities.CCU6/USD",
    "Commodities.COU6/USD",
    "Commodities.COZ6/USD",
    "Commodities.Index.BRENT/USD",
    "Commodities.Index.CU/USD",
    "Commodities.Index.NATGAS/USD",
    "Commodities.Index.PYTHOIL/USD",
    "Commodities.SOU6/USD",
    "Commodities.SOX6/USD",
    "Commodities.WHU6/USD",
    "Commodities.WHZ6/USD",
    "Metal.Index.GOLD/USD",
    "Metal.Index.SILVER/USD",
    "Metal.XAG/USD",
    "Metal.XAU/USD",
    "Metal.XPD/USD",
    "Metal.XPT/USD",
)
_FIVE_HZ: Final = frozenset(CFB_5HZ_INDICES)
_EIGHT: Final = Decimal("0.00000001")
_QUARTER_MS: Final = 15 * 60_000
_encode = msgspec.json.encode


def _value8(value: Decimal) -> str:
    return str(value.quantize(_EIGHT))


class IndexFeeds:
    """Publishes index ticks to the hub, keeping the per-index history the averages need."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._history: dict[str, deque[tuple[int, Decimal]]] = {}
        self._last_source: dict[str, int] = {}

    def _source_ts(self, key: str, source_ts_ms: int) -> int:
        """Keep each feed's source timestamps strictly increasing (the exchange drops stale upstream ticks)."""
        last = self._last_source.get(key)
        if last is not None and source_ts_ms <= last:
            source_ts_ms = last + 1
        self._last_source[key] = source_ts_ms
        return source_ts_ms

    def publish_index(
        self, index_id: str, value: Decimal, source_ts_ms: int, received_at: int, *, per_second: bool = True
    ) -> None:
        """Publish a CF Benchmarks tick.

        It goes to ``cfbenchmarks_value_5hz`` for the 5 Hz coin set and, when ``per_second`` (one tick in five),
        to ``cfbenchmarks_value`` with its averages.
        """
        source_ts_ms = self._source_ts(index_id, source_ts_ms)
        history = self._history.setdefault(index_id, deque())
        while history and history[0][0] < source_ts_ms - 60_000:
            history.popleft()
        value_text = _value8(value)
        data = _encode({"type": "value", "id": index_id, "time": source_ts_ms, "value": value_text}).decode()
        hub = self.hub
        if index_id in _FIVE_HZ:
            payload5 = _encode(
                {
                    "index_id": index_id,
                    "value_usd": value_text,
                    "source_ts_ms": source_ts_ms,
                    "received_at": received_at,
                    "data": data,
                }
            )
            hub.publish_index("cfbenchmarks_value_5hz", b"cfbenchmarks_value_5hz", index_id, payload5)
        if not per_second:
            return
        prior = [v for ts, v in history if ts < source_ts_ms]
        average = sum(prior, Decimal(0)) / len(prior) if prior else value
        msg: dict[str, Any] = {
            "index_id": index_id,
            "received_at": received_at,
            "data": data,
            "avg_60s_data": {
                "value": _value8(average),
                "window_size": len(prior),
                "window_start_ts_ms": source_ts_ms - 60_000,
                "window_end_ts_exclusive": source_ts_ms,
            },
        }
        close = -(-source_ts_ms // _QUARTER_MS) * _QUARTER_MS
        if close - source_ts_ms < 60_000:
            window = [v for ts, v in history if close - 60_000 < ts <= source_ts_ms] + [value]
            msg["last_60s_windowed_average_15min"] = {
                "value": _value8(sum(window, Decimal(0)) / len(window)),
                "window_size": len(window),
                "window_start_ts_ms": close - 60_000,
                "window_end_ts_exclusive": source_ts_ms,
            }
        history.append((source_ts_ms, value))
        hub.publish_index("cfbenchmarks_value", b"cfbenchmarks_value", index_id, _encode(msg))

    def publish_pyth(self, underlying: str, value: Decimal, source_ts_ms: int, received_at: int) -> None:
        """A Pyth price of one underlying ticker."""
        source_ts_ms = self._source_ts(f"pyth:{underlying}", source_ts_ms)
        payload = _encode(
            {
                "underlying_ticker": underlying,
                "value_usd": _value8(value),
                "source_ts_ms": source_ts_ms,
                "received_at": received_at,
            }
        )
        self.hub.publish_index("pyth_value", b"pyth_value", underlying, payload)
