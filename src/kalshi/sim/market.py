"""Seeded market activity for the simulator: a crowd that trades the markets, and index walks.

* :class:`ActivityGenerator` performs one random action per :meth:`~ActivityGenerator.step` from a few
  "crowd" accounts: limit orders around each market's fair value (from its event's latent value, see
  :mod:`kalshi.sim.universe`), cancels, decreases, marketable orders; with ``lifecycle`` it also determines
  and settles markets once their close time has passed (never before) and lists the next event of their
  series.
* :class:`IndexWalk` random-walks index values for ``cfbenchmarks_value`` and ``pyth_value``.

:class:`~kalshi.sim.universe.MarketUniverse` and :class:`~kalshi.sim.universe.SeriesSpec` are re-exported
here. Everything draws from ``random.Random(seed)`` only and uses integer arithmetic, so the same seed and
clock give the same engine event sequence.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from kalshi._fixed import COUNT_SCALE, PRICE_SCALE
from kalshi.sim.engine import Engine
from kalshi.sim.engine.types import MICROS_PER_DOLLAR, BookSide, EngineError, MarketSpec
from kalshi.sim.universe import MarketUniverse, SeriesSpec, snap_to_grid

__all__ = [
    "CROWD_ACCOUNTS",
    "ActivityGenerator",
    "IndexTick",
    "IndexWalk",
    "MarketUniverse",
    "SeriesSpec",
]

CROWD_ACCOUNTS: Final = ("crowd-1", "crowd-2", "crowd-3", "crowd-4")
# The crowd never quotes a fair value closer to 0 or 1 than this (someone always offers the long shot).
_FAIR_FLOOR: Final = 200
# Quotes rest 50 to 600 ticks from the fair value (plus up to a grid step). When the fair value has moved
# through a quote by more than the slack, or left it further than the band, the crowd cancels it before acting
# on the market again, as market makers refresh: so a book's mid stays near its fair value.
_QUOTE_BAND: Final = 700
_REQUOTE_SLACK: Final = 100


class ActivityGenerator:
    """A crowd trading the engine's markets, one random action per :meth:`step`.

    Args:
        engine: the exchange to act on.
        seed: the only source of randomness.
        universe: the markets' fair values come from its latent values (else the mid price); required for
            ``lifecycle``.
        accounts: crowd account ids; opened with ``balance_micros`` if not open yet.
        balance_micros: starting cash of each crowd account.
        lifecycle: also settle the universe's markets at their close time and list the next event of their
            series (:meth:`settle_due`, run at every step).

    Raises:
        ValueError: ``lifecycle`` without a ``universe``.
    """

    def __init__(
        self,
        engine: Engine,
        seed: int,
        *,
        universe: MarketUniverse | None = None,
        accounts: Sequence[str] = CROWD_ACCOUNTS,
        balance_micros: int = 10_000_000 * MICROS_PER_DOLLAR,
        lifecycle: bool = False,
    ) -> None:
        if lifecycle and universe is None:
            raise ValueError("lifecycle actions need the universe to create new markets")
        self._engine = engine
        self._rng = random.Random(seed)
        self._universe = universe
        self._accounts = tuple(accounts)
        self._lifecycle = lifecycle
        self._fair: dict[str, int] = {}  # markets the universe does not know: a drifting guess
        self._resting: dict[str, list[str]] = {}  # market -> crowd orders that may still rest
        self._quotes: dict[str, tuple[str, BookSide, int]] = {}  # order id -> (account, side, price)
        self.steps = 0
        known = set(engine.accounts())
        for account in self._accounts:
            if account not in known:
                engine.open_account(account, balance_micros)

    def step(self) -> None:
        """Perform one action; refusals by the engine (a closed market, a spent balance) are skipped.

        With ``lifecycle``, markets whose close time has passed are settled first (:meth:`settle_due`).
        """
        self.steps += 1
        rng = self._rng
        if self._lifecycle:
            self.settle_due()
        else:
            self._engine.advance_time()
        tickers = self._engine.trading_tickers()
        if not tickers:
            return
        spec = self._engine.market(rng.choice(tickers)).spec
        fair = self._fair_value(spec)
        self._requote(spec.ticker, fair)
        account = rng.choice(self._accounts)
        roll = rng.randrange(100)
        try:
            if roll < 55:
                self._limit(spec, account, fair)
            elif roll < 72:
                self._cancel(spec.ticker)
            elif roll < 77:
                self._decrease(spec.ticker)
            else:
                self._marketable(spec, account, fair)
        except EngineError:
            pass

    def settle_due(self) -> list[str]:
        """Determine and settle the universe's markets whose close time has passed; roll their series.

        A market is never settled before its close time (a close moved later by
        :meth:`~kalshi.sim.engine.Engine.update_close_time` is waited for). Its result comes from its
        event's latent value at the close. Once every market of an event is settled, the next event of the
        series is listed, so the number of live markets stays the same.

        Returns:
            The tickers settled by this call, in order.
        """
        engine = self._engine
        engine.advance_time()
        universe = self._universe
        if universe is None:
            return []
        now = engine.now_ms
        settled: list[str] = []
        for event_ticker in universe.due(now):
            settled.extend(self._settle_event(universe, event_ticker, now))
        return settled

    def _settle_event(self, universe: MarketUniverse, event_ticker: str, now: int) -> list[str]:
        engine = self._engine
        settled: list[str] = []
        later: int | None = None
        finished = True
        for ticker in universe.event_markets(event_ticker):
            view = engine.market(ticker)
            close = view.close_time_ms
            if view.status in ("initialized", "active") and close is not None and close > now:
                later = close if later is None else min(later, close)
                finished = False
                continue
            try:
                if view.status in ("initialized", "active", "closed"):
                    legs = {
                        leg.market_ticker: engine.market(leg.market_ticker).result
                        for leg in view.spec.mve_selected_legs
                    }
                    engine.determine_market(ticker, universe.outcome(ticker, self._rng, legs))
                if engine.market(ticker).status == "determined":
                    engine.settle_market(ticker)
                    settled.append(ticker)
            except EngineError:
                pass
            self._forget(ticker)
            finished = finished and engine.market(ticker).status == "settled"
        if later is not None:
            universe.reschedule(event_ticker, later)
        elif finished:
            universe.roll(event_ticker, self._rng, now, engine, engine.trading_tickers())
        return settled

    # ------------------------------------------------------------------------------------ actions

    def _fair_value(self, spec: MarketSpec) -> int:
        universe = self._universe
        if universe is not None and universe.knows(spec.ticker):
            latent = universe.fair_ticks(spec.ticker, self._rng, self._engine.now_ms)
            return min(max(latent, _FAIR_FLOOR), PRICE_SCALE - _FAIR_FLOOR)
        guess = self._fair.get(spec.ticker)
        if guess is not None:
            fair = guess
        else:
            state = self._engine.ticker_state(spec.ticker)
            fair = (state.yes_bid_ticks + state.yes_ask_ticks) // 2
        fair = min(max(fair + self._rng.randint(-60, 60), 300), PRICE_SCALE - 300)
        self._fair[spec.ticker] = fair
        return fair

    def _count(self, spec: MarketSpec) -> int:
        rng = self._rng
        if spec.fractional_trading_enabled and rng.randrange(3) == 0:
            return rng.randint(1, 40) * 25
        return rng.choice((1, 2, 3, 5, 10, 25)) * COUNT_SCALE

    def _limit(self, spec: MarketSpec, account: str, fair: int) -> None:
        resting = self._resting.setdefault(spec.ticker, [])
        if len(resting) > 40:
            self._prune(spec.ticker)
            if len(resting) > 30:
                self._cancel(spec.ticker)
                return
        rng = self._rng
        side: BookSide = "bid" if rng.randrange(2) == 0 else "ask"
        offset = rng.randint(1, 12) * 50
        price = snap_to_grid(spec, fair - offset, -1) if side == "bid" else snap_to_grid(spec, fair + offset, 1)
        result = self._engine.place_order(
            account,
            spec.ticker,
            side,
            price,
            self._count(spec),
            self_trade_prevention="maker" if rng.randrange(4) == 0 else "taker_at_cross",
        )
        if result.status == "resting":
            resting.append(result.order_id)
            self._quotes[result.order_id] = (account, side, price)

    def _requote(self, ticker: str, fair: int) -> None:
        resting = self._resting.get(ticker)
        if not resting:
            return
        keep = []
        for order_id in resting:
            quote = self._quotes.get(order_id)
            if quote is None:
                continue
            account, side, price = quote
            crossed = price > fair + _REQUOTE_SLACK if side == "bid" else price < fair - _REQUOTE_SLACK
            if crossed or abs(price - fair) > _QUOTE_BAND + _REQUOTE_SLACK:
                del self._quotes[order_id]
                with contextlib.suppress(EngineError):  # filled or cancelled meanwhile
                    self._engine.cancel_order(account, order_id)
            else:
                keep.append(order_id)
        resting[:] = keep

    def _forget(self, ticker: str) -> None:
        for order_id in self._resting.pop(ticker, ()):
            self._quotes.pop(order_id, None)

    def _marketable(self, spec: MarketSpec, account: str, fair: int) -> None:
        rng = self._rng
        side: BookSide = "bid" if rng.randrange(2) == 0 else "ask"
        slack = rng.randint(0, 4) * 100
        price = snap_to_grid(spec, fair + slack, 1) if side == "bid" else snap_to_grid(spec, fair - slack, -1)
        self._engine.place_order(
            account,
            spec.ticker,
            side,
            price,
            self._count(spec),
            time_in_force="immediate_or_cancel" if rng.randrange(5) else "fill_or_kill",
        )

    def _pick_resting(self, ticker: str) -> str | None:
        resting = self._resting.get(ticker)
        while resting:
            order_id = resting[self._rng.randrange(len(resting))]
            try:
                if self._engine.order(order_id).status == "resting":
                    return order_id
            except EngineError:
                pass
            resting.remove(order_id)
            self._quotes.pop(order_id, None)
        return None

    def _prune(self, ticker: str) -> None:
        resting = self._resting.get(ticker, [])
        alive = []
        for order_id in resting:
            try:
                if self._engine.order(order_id).status == "resting":
                    alive.append(order_id)
                    continue
            except EngineError:
                pass
            self._quotes.pop(order_id, None)
        resting[:] = alive

    def _cancel(self, ticker: str) -> None:
        order_id = self._pick_resting(ticker)
        if order_id is not None:
            self._engine.cancel_order(self._engine.order(order_id).account, order_id)

    def _decrease(self, ticker: str) -> None:
        order_id = self._pick_resting(ticker)
        if order_id is not None:
            order = self._engine.order(order_id)
            if order.remaining_units > COUNT_SCALE:
                self._engine.decrease_order(order.account, order_id, reduce_by=COUNT_SCALE)


@dataclass(frozen=True, slots=True)
class IndexTick:
    """One index value: ``value`` has 8 decimals; ``source_ts_ms`` is a little before ``received_at_ms``."""

    index_id: str
    value: Decimal
    source_ts_ms: int
    received_at_ms: int

    @property
    def value_usd(self) -> str:
        """The wire form with exactly 8 decimals."""
        return f"{self.value:.8f}"


_START_VALUES: Final[Mapping[str, str]] = {
    "BRTI": "68000",
    "ETHUSD_RTI": "3500",
    "SOLUSD_RTI": "150",
    "XRPUSD_RTI": "0.6",
    "DOGEUSD_RTI": "0.15",
    "BTC": "68000",
    "ETH": "3500",
    "SOL": "150",
    "Metal.XAU/USD": "2400",
    "Commodities.Index.PYTHOIL/USD": "82",
}
_EIGHT_DP: Final = 10**8


class IndexWalk:
    """Deterministic random walks of index values (CF Benchmarks ids like ``BRTI``, Pyth underlyings).

    Each :meth:`step` moves every id by up to +-0.05% in exact integer units of 1e-8.
    """

    def __init__(self, seed: int, ids: Sequence[str], *, start_values: Mapping[str, Decimal] | None = None) -> None:
        self._rng = random.Random(seed)
        self._values: dict[str, int] = {}
        for index_id in ids:
            start = (start_values or {}).get(index_id)
            if start is None:
                start = Decimal(_START_VALUES.get(index_id, "100"))
            self._values[index_id] = int(start * _EIGHT_DP)

    @property
    def ids(self) -> tuple[str, ...]:
        """The walked ids, in the order given."""
        return tuple(self._values)

    def value(self, index_id: str) -> Decimal:
        """The current value of ``index_id``.

        Raises:
            KeyError: unknown id.
        """
        return Decimal(self._values[index_id]).scaleb(-8)

    def step(self, now_ms: int) -> list[IndexTick]:
        """Move every value once and return the ticks, received at ``now_ms``."""
        rng = self._rng
        ticks = []
        for index_id, units in self._values.items():
            units = max(units + units * rng.randint(-50, 50) // 100_000, 1)
            self._values[index_id] = units
            ticks.append(
                IndexTick(
                    index_id=index_id,
                    value=Decimal(units).scaleb(-8),
                    source_ts_ms=now_ms - rng.randint(5, 40),
                    received_at_ms=now_ms,
                )
            )
        return ticks
