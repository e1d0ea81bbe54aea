"""Cursor pagination: iter_* methods, max_pages, repeated cursors (async and sync)."""

from __future__ import annotations

import httpx
import pytest

from kalshi.config import KalshiConfig
from kalshi.rest import AsyncKalshiClient, KalshiClient, KalshiPaginationError, RateLimiter


def trade(n: int) -> dict[str, object]:
    return {
        "trade_id": f"t{n}",
        "ticker": "KXTEST-1",
        "count_fp": "1.00",
        "yes_price_dollars": "0.5600",
        "no_price_dollars": "0.4400",
        "taker_outcome_side": "yes",
        "taker_book_side": "bid",
        "created_time": "2026-01-01T00:00:00Z",
        "is_block_trade": False,
    }


class Pages:
    """Serves pages keyed by the cursor the client sends ("" for the first page)."""

    def __init__(self, pages: dict[str, tuple[list[int], str | None]], *, items: str = "trades") -> None:
        self.pages = pages
        self.items = items
        self.cursors: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        self.cursors.append(cursor)
        numbers, following = self.pages[cursor or ""]
        body: dict[str, object] = {self.items: [trade(n) for n in numbers]}
        body["cursor" if self.items == "trades" else "next_cursor"] = following
        return httpx.Response(200, json=body)


def async_client(handler: Pages, **options: object) -> AsyncKalshiClient:
    return AsyncKalshiClient(
        KalshiConfig.production(),
        transport=httpx.MockTransport(handler),
        rate_limiter=RateLimiter.unlimited(),
        **options,  # type: ignore[arg-type]
    )


THREE_PAGES: dict[str, tuple[list[int], str | None]] = {"": ([1, 2], "c1"), "c1": ([3], "c2"), "c2": ([4, 5], "")}


async def test_iter_follows_the_cursor_to_the_end() -> None:
    pages = Pages(THREE_PAGES)
    async with async_client(pages) as client:
        ids = [t.trade_id async for t in client.markets.iter_get_trades(ticker="KXTEST-1", limit=2)]
    assert ids == ["t1", "t2", "t3", "t4", "t5"]
    assert pages.cursors == [None, "c1", "c2"]


async def test_iter_keeps_the_other_query_parameters_on_every_page() -> None:
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(request.url.params))
        return Pages(THREE_PAGES)(request)

    async with AsyncKalshiClient(transport=httpx.MockTransport(handler), rate_limiter=RateLimiter.unlimited()) as c:
        assert len([t async for t in c.markets.iter_get_trades(ticker="K", limit=2)]) == 5
    assert seen[0] == {"ticker": "K", "limit": "2"}
    assert seen[2] == {"ticker": "K", "limit": "2", "cursor": "c2"}


async def test_null_cursor_ends_the_iteration() -> None:
    pages = Pages({"": ([1], "c1"), "c1": ([2], None)})
    async with async_client(pages) as client:
        assert [t.trade_id async for t in client.markets.iter_get_trades()] == ["t1", "t2"]


async def test_max_pages_stops_early() -> None:
    pages = Pages(THREE_PAGES)
    async with async_client(pages) as client:
        ids = [t.trade_id async for t in client.markets.iter_get_trades(max_pages=2)]
    assert ids == ["t1", "t2", "t3"]
    assert pages.cursors == [None, "c1"]


async def test_client_wide_max_pages_applies_unless_overridden() -> None:
    pages = Pages(THREE_PAGES)
    async with async_client(pages, max_pages=1) as client:
        assert [t.trade_id async for t in client.markets.iter_get_trades()] == ["t1", "t2"]
        assert len([t async for t in client.markets.iter_get_trades(max_pages=5)]) == 5


async def test_a_repeated_cursor_raises_instead_of_looping() -> None:
    pages = Pages({"": ([1], "c1"), "c1": ([2], "c1")})
    got: list[str] = []
    async with async_client(pages) as client:
        with pytest.raises(KalshiPaginationError, match="repeated cursor 'c1'"):
            async for t in client.markets.iter_get_trades():
                got.append(t.trade_id)
    assert got == ["t1", "t2"]
    assert pages.cursors == [None, "c1"]


async def test_a_cursor_cycle_is_detected() -> None:
    pages = Pages({"": ([1], "a"), "a": ([2], "b"), "b": ([3], "a")})
    async with async_client(pages) as client:
        with pytest.raises(KalshiPaginationError):
            _ = [t async for t in client.markets.iter_get_trades()]
    assert pages.cursors == [None, "a", "b"]


async def test_starting_cursor_is_sent_and_counts_as_seen() -> None:
    pages = Pages({"c1": ([3], "c1")})
    async with async_client(pages) as client:
        with pytest.raises(KalshiPaginationError):
            _ = [t async for t in client.markets.iter_get_trades(cursor="c1")]
    assert pages.cursors == ["c1"]


async def test_next_cursor_responses_paginate_too() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        cursor = request.url.params.get("cursor")
        body = {"incentive_programs": [], "next_cursor": None if cursor else "n1"}
        if cursor:
            body["incentive_programs"] = [
                {
                    "id": "i1",
                    "market_id": "m",
                    "market_ticker": "K",
                    "incentive_type": "liquidity",
                    "incentive_description": "d",
                    "start_date": "2026-01-01",
                    "end_date": "2026-02-01",
                    "period_reward": 100,
                    "paid_out": False,
                }
            ]
        return httpx.Response(200, json=body)

    async with AsyncKalshiClient(transport=httpx.MockTransport(handler), rate_limiter=RateLimiter.unlimited()) as c:
        programs = [p async for p in c.incentive_programs.iter_get_incentive_programs()]
    assert [p.id for p in programs] == ["i1"]


def test_sync_iteration_matches() -> None:
    pages = Pages(THREE_PAGES)
    with KalshiClient(transport=httpx.MockTransport(pages), rate_limiter=RateLimiter.unlimited()) as client:
        assert [t.trade_id for t in client.markets.iter_get_trades()] == ["t1", "t2", "t3", "t4", "t5"]
        assert [t.trade_id for t in client.markets.iter_get_trades(max_pages=1)] == ["t1", "t2"]
    repeat = Pages({"": ([1], "x"), "x": ([2], "x")})
    client = KalshiClient(transport=httpx.MockTransport(repeat), rate_limiter=RateLimiter.unlimited())
    with client, pytest.raises(KalshiPaginationError):
        list(client.markets.iter_get_trades())
