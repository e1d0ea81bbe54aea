"""One latent value per event, and what it implies for each market of the event: its fair price and outcome.

Every event of the simulator tracks a hidden value of its underlying (an index close, a temperature) that
random-walks with the clock. Each market of the event is an :class:`Interval` of that value (above a strike,
below one, or between two): its fair YES price is the probability that the value ends inside the interval,
given the value now and the time left to the close, and its outcome is decided by the value at the close.
Because every market of an event prices off the same value, strike ladders are coherent: P(above K) falls
as K rises, and the buckets of a range event add up to one.

Values are integers in millionths of the series' unit; probabilities are computed with :mod:`decimal` in a
fixed context, so a seed and a clock give the same numbers on every machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from math import isqrt
from typing import Final

from kalshi._fixed import PRICE_SCALE

__all__ = ["UNIT", "Interval", "LatentValue", "probability_ticks"]

UNIT: Final = 1_000_000  # latent values are in millionths of the series' unit
_HALF: Final = UNIT // 2
_CTX: Final = Context(prec=28, rounding=ROUND_HALF_EVEN)  # independent of the caller's decimal context
# logistic(1.702 z) is within 0.01 of the normal CDF: a cheap, exact-decimal stand-in for it.
_LOGISTIC_SLOPE: Final = Decimal("1.702")
_MAX_EXPONENT: Final = Decimal(60)
# Irwin-Hall: the sum of 4 uniform integers on [-1000, 1000] is close to normal with this standard deviation.
_STEP_TERMS: Final = 4
_STEP_SPREAD: Final = 1000
_STEP_STD: Final = 1155
_RESOLUTION: Final = 10_000  # sqrt(time fraction) is computed in 1/10000ths


@dataclass(frozen=True, slots=True)
class Interval:
    """The outcomes a market pays YES on: ``lower <= value < upper`` (latent units; None is unbounded).

    The event's outcome is the latent value rounded to a whole unit, so the constructors place the bounds
    half a unit from the strikes.
    """

    lower: int | None
    upper: int | None

    @classmethod
    def above(cls, strike: int) -> Interval:
        """YES if the outcome is above ``strike`` (``strike_type`` ``greater``)."""
        return cls(strike * UNIT + _HALF, None)

    @classmethod
    def below(cls, strike: int) -> Interval:
        """YES if the outcome is below ``strike`` (``strike_type`` ``less``)."""
        return cls(None, strike * UNIT - _HALF)

    @classmethod
    def between(cls, floor: int, cap: int) -> Interval:
        """YES if the outcome is ``floor`` to ``cap``, both included (``strike_type`` ``between``)."""
        return cls(floor * UNIT - _HALF, cap * UNIT + _HALF)

    def contains(self, value: int) -> bool:
        """Whether a latent ``value`` resolves this interval YES."""
        return (self.lower is None or value >= self.lower) and (self.upper is None or value < self.upper)


def _above(value: int, bound: int, width: int) -> Decimal:
    """P(final value >= bound) with the value now ``value`` and a spread of ``width`` (logistic)."""
    exponent = _CTX.multiply(_LOGISTIC_SLOPE, _CTX.divide(Decimal(bound - value), Decimal(width)))
    exponent = max(min(exponent, _MAX_EXPONENT), -_MAX_EXPONENT)
    return _CTX.divide(Decimal(1), _CTX.add(Decimal(1), _CTX.exp(exponent)))


def probability(value: int, interval: Interval, width: int) -> Decimal:
    """P(final value in ``interval``) as a Decimal in [0, 1]; ``width`` is the remaining spread (> 0)."""
    low = Decimal(1) if interval.lower is None else _above(value, interval.lower, width)
    high = Decimal(0) if interval.upper is None else _above(value, interval.upper, width)
    return max(_CTX.subtract(low, high), Decimal(0))


def probability_ticks(value: int, interval: Interval, width: int) -> int:
    """:func:`probability` in YES price ticks (0..10000), rounded half to even."""
    return int(
        _CTX.multiply(probability(value, interval, width), Decimal(PRICE_SCALE)).to_integral_value(_CTX.rounding)
    )


@dataclass(slots=True)
class LatentValue:
    """An event's hidden value, random-walking with the clock until the event closes.

    Over one ``period_ms`` the value moves by about ``sigma`` (standard deviation), so the spread left at any
    time is ``sigma * sqrt(time left / period)``: prices converge on the outcome as the close nears.
    """

    value: int
    sigma: int
    period_ms: int
    close_ms: int
    updated_ms: int

    def advance(self, rng: random.Random, now_ms: int) -> None:
        """Walk the value to ``now_ms`` (never past the close); an unmoved clock leaves it as it is."""
        target = min(now_ms, self.close_ms)
        elapsed = target - self.updated_ms
        if elapsed <= 0:
            return
        self.updated_ms = target
        draw = sum(rng.randint(-_STEP_SPREAD, _STEP_SPREAD) for _ in range(_STEP_TERMS))
        root = isqrt(elapsed * _RESOLUTION * _RESOLUTION // self.period_ms)
        self.value += _round_div(draw * self.sigma * root, _STEP_STD * _RESOLUTION)

    def width(self, now_ms: int) -> int:
        """The spread of the final value seen from ``now_ms`` (at least 1/100 of ``sigma``)."""
        left = max(self.close_ms - now_ms, 0)
        root = isqrt(left * _RESOLUTION * _RESOLUTION // self.period_ms)
        return max(self.sigma * root // _RESOLUTION, self.sigma // 100, 1)

    def fair_ticks(self, interval: Interval, now_ms: int) -> int:
        """The fair YES price of ``interval`` now, in ticks."""
        return probability_ticks(self.value, interval, self.width(now_ms))


def _round_div(a: int, b: int) -> int:
    """``a / b`` rounded half away from zero (floor division alone would drift the walk downwards)."""
    q, r = divmod(abs(a), b)
    if 2 * r >= b:
        q += 1
    return q if a >= 0 else -q
