"""Speed of the pure order book (kalshi.ws.orderbook) and its immutable views.

Figures (best of ``--rounds``, in ns):
- ``apply_delta``: a pre-generated valid random walk over 60 levels (30 YES, 30 NO), sizes in
  fractional units, levels created and emptied along the way. Reported as measured (loop included)
  and net of an empty loop over the same operations.
- ``view()`` with 2 x 50 levels: after a one-level change (copy of one side + new view), unchanged
  (cached), and with the first full read of a ladder (sort) and of its Decimal form.
- best bid/ask reads: state ``best_yes_bid()`` after a change, the view's properties fresh and cached.

    .venv/bin/python bench/book.py [--ops 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from kalshi.ws.orderbook import DeltaResult, OrderbookState

Op = tuple[str, int, int]


def delta_walk(n: int, rng: random.Random) -> list[Op]:
    """A random walk of deltas that never drives a level below zero (so every delta applies)."""
    levels = [("yes", 3000 + i * 7) for i in range(30)] + [("no", 6000 + i * 7) for i in range(30)]
    sizes = dict.fromkeys(levels, 0)
    ops: list[Op] = []
    for _ in range(n):
        key = levels[rng.randrange(60)]
        size = sizes[key]
        roll = rng.random()
        if size and roll < 0.1:
            delta = -size  # level emptied and removed
        elif size and roll < 0.5:
            delta = -rng.randint(1, size)
        else:
            delta = rng.randint(1, 50_000)  # up to 500 contracts, 1/100 steps
        sizes[key] = size + delta
        ops.append((key[0], key[1], delta))
    return ops


def time_apply(ops: list[Op]) -> float:
    book = OrderbookState("BENCH")
    book.apply_snapshot([], [])
    apply = book.apply_delta
    start = time.perf_counter_ns()
    for side, price, delta in ops:
        apply(side, price, delta)
    elapsed = time.perf_counter_ns() - start
    # A valid walk applies every delta; check it outside the timed loop.
    assert book.version == len(ops) + 1
    return elapsed / len(ops)


def time_apply_seq(ops: list[Op]) -> float:
    book = OrderbookState("BENCH")
    book.apply_snapshot([], [])
    apply = book.apply_delta
    start = time.perf_counter_ns()
    for seq, (side, price, delta) in enumerate(ops):
        apply(side, price, delta, seq=seq)
    return (time.perf_counter_ns() - start) / len(ops)


def time_empty_loop(ops: list[Op]) -> float:
    start = time.perf_counter_ns()
    for _side, _price, _delta in ops:
        pass
    return (time.perf_counter_ns() - start) / len(ops)


def full_book(levels: int = 50) -> OrderbookState:
    book = OrderbookState("BENCH")
    book.apply_snapshot(
        [(4000 + i * 3, 1000 + i) for i in range(levels)],
        [(3000 + i * 3, 2000 + i) for i in range(levels)],
    )
    return book


def per_call(fn: Callable[[int], object], n: int) -> float:
    start = time.perf_counter_ns()
    for i in range(n):
        fn(i)
    return (time.perf_counter_ns() - start) / n


def view_figures(n: int) -> dict[str, float]:
    book = full_book()
    apply, view = book.apply_delta, book.view
    # Alternate +1/-1 on one YES level so every view follows exactly one change.
    signs = (1, -1)
    out: dict[str, float] = {}
    out["apply_delta + view() (one side copied)"] = per_call(
        lambda i: (apply("yes", 4000, signs[i & 1]), view()), n
    ) - per_call(lambda i: apply("yes", 4000, signs[i & 1]), n)
    out["view() unchanged (cached)"] = per_call(lambda i: view(), n)
    out["apply_delta + view().best_yes_bid + best_yes_ask"] = per_call(
        lambda i: (apply("yes", 4000, signs[i & 1]), view().best_yes_bid, view().best_yes_ask), n
    )
    out["view() + yes_ticks (sort 50)"] = per_call(
        lambda i: (apply("yes", 4000, signs[i & 1]), view().yes_ticks), n // 4
    ) - per_call(lambda i: (apply("yes", 4000, signs[i & 1]), view()), n // 4)
    out["view() + yes (50 Decimal levels, first read)"] = per_call(
        lambda i: (apply("yes", 4000, signs[i & 1]), view().yes), n // 10
    ) - per_call(lambda i: (apply("yes", 4000, signs[i & 1]), view()), n // 10)
    return out


def best_figures(n: int) -> dict[str, float]:
    book = full_book()
    apply = book.apply_delta
    signs = (1, -1)
    base = per_call(lambda i: apply("yes", 4000, signs[i & 1]), n)
    out: dict[str, float] = {}
    out["state.best_yes_bid() after a change (max over 50)"] = (
        per_call(lambda i: (apply("yes", 4000, signs[i & 1]), book.best_yes_bid()), n) - base
    )
    view = book.view()
    out["view.best_yes_bid + best_yes_ask (cached ladders)"] = per_call(
        lambda i: (view.best_yes_bid, view.best_yes_ask), n
    )
    out["view.best_bid_ticks('yes') (cached)"] = per_call(lambda i: view.best_bid_ticks("yes"), n)
    out["view.spread (cached)"] = per_call(lambda i: view.spread, n)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    ops = delta_walk(args.ops, random.Random(7))
    assert OrderbookState("x").apply_delta("yes", 1, 1) is DeltaResult.NO_SNAPSHOT
    gross = min(time_apply(ops) for _ in range(args.rounds))
    with_seq = min(time_apply_seq(ops) for _ in range(args.rounds))
    loop = min(time_empty_loop(ops) for _ in range(args.rounds))
    print(f"apply_delta over 60 levels, {args.ops:,} ops (best of {args.rounds}):")
    print(f"  {gross:8.0f} ns/op measured (loop + call included)")
    print(f"  {gross - loop:8.0f} ns/op per call, net of the bare loop ({loop:.0f} ns)")
    print(f"  {with_seq:8.0f} ns/op measured with seq= keyword")

    n = max(args.ops // 10, 1000)
    print("view(), 2 x 50 levels (ns per op, best of rounds):")
    views = [view_figures(n) for _ in range(args.rounds)]
    for key in views[0]:
        print(f"  {min(v[key] for v in views):8.0f}  {key}")
    print("best bid/ask reads (ns per op):")
    bests = [best_figures(n) for _ in range(args.rounds)]
    for key in bests[0]:
        print(f"  {min(b[key] for b in bests):8.0f}  {key}")


if __name__ == "__main__":
    main()
