"""The book's cached best prices of other traders agree with a brute-force scan after any sequence of changes."""

from __future__ import annotations

import random

from kalshi.strategy.book import Book


def brute_others_best(levels: dict[int, int], own: dict[int, int]) -> int:
    return max((p for p, units in levels.items() if units > own.get(p, 0)), default=0)


def test_others_best_prices_match_a_scan_after_random_changes() -> None:
    rng = random.Random(1)
    for _ in range(200):
        book = Book("X")
        versions = book.quote_version
        previous = (0, 0)
        for _ in range(200):
            roll, side, price = rng.random(), rng.random() < 0.5, rng.randint(1, 12) * 100
            if roll < 0.6:
                book.apply(side, price, rng.randint(-5, 6))
            elif roll < 0.9:
                book.apply_own(side, price, rng.randint(-3, 4))
            elif roll < 0.97:
                yes = [(rng.randint(1, 12) * 100, rng.randint(0, 9)) for _ in range(4)]
                no = [(rng.randint(1, 12) * 100, rng.randint(0, 9)) for _ in range(4)]
                book.set_levels(yes, no, keep_own=rng.random() < 0.5)
            else:
                book.clear()
            yes_best = brute_others_best(book.yes, book.own_yes)
            no_best = brute_others_best(book.no, book.own_no)
            assert book.others_best_bid == (yes_best or None)
            assert book.others_best_ask == (10_000 - no_best if no_best else None)
            # quote_version moves whenever those prices moved.
            if (yes_best, no_best) != previous:
                assert book.quote_version != versions
            previous, versions = (yes_best, no_best), book.quote_version


def test_a_snapshot_without_keep_own_forgets_own_sizes() -> None:
    book = Book("X")
    book.apply_own(True, 5000, 300)
    book.set_levels([(5000, 300)], [], keep_own=False)
    assert book.own_yes == {}
    assert book.others_best_bid == 5000
