"""Against the simulator: Decimal accessors on real responses, and 401s that say the server's reason."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from kalshi.auth import KalshiAuth, generate_private_key_pem
from kalshi.errors import KalshiUnauthorizedError
from kalshi.models import PriceLevel
from kalshi.rest import AsyncKalshiClient, Model, RateLimiter
from kalshi.sim import Simulator
from test_rest_generated import load_script


@pytest.fixture(scope="module")
def accessors() -> dict[str, list[tuple[str, str, str, bool]]]:
    """Model name -> its Decimal accessors, as the generator derives them from the spec."""
    gen_rest: ModuleType = load_script("gen_rest")
    spec = gen_rest.Spec(gen_rest.find_spec().read_bytes())
    return {name: gen_rest.decimal_accessors(schema) for name, schema in spec.schemas.items()}


@pytest.fixture
async def sim(kalshi_sim_factory: Callable[..., Simulator]) -> AsyncIterator[Simulator]:
    async with kalshi_sim_factory(seed=7, markets=3) as s:
        yield s


def client_of(sim: Simulator, auth: KalshiAuth | None) -> AsyncKalshiClient:
    return AsyncKalshiClient(sim.config, auth=auth, rate_limiter=RateLimiter.unlimited())


def check_accessors(model: Model, table: dict[str, list[tuple[str, str, str, bool]]]) -> int:
    """Every Decimal accessor of ``model`` equals its wire string read exactly; returns how many were set."""
    found = 0
    for accessor, field, unit, optional in table[type(model).__name__]:
        wire: Any = getattr(model, field)
        value = getattr(model, accessor)
        if wire is None:
            assert optional and value is None, (accessor, field)
            continue
        if unit == "levels":
            assert value == [PriceLevel(Decimal(p), Decimal(c)) for p, c in wire], (accessor, field)
            found += 1
            continue
        assert isinstance(wire, str) and isinstance(value, Decimal), (accessor, field, wire)
        assert value == Decimal(wire) and str(value) == wire, (accessor, field)  # exact: digits kept
        found += 1
    return found


async def test_decimal_accessors_on_simulator_responses(
    sim: Simulator, accessors: dict[str, list[tuple[str, str, str, bool]]]
) -> None:
    auth, _ = sim.create_account_auth()
    async with client_of(sim, auth) as client:
        markets = (await client.markets.get_markets(limit=10)).markets
        assert markets
        for market in markets:
            assert check_accessors(market, accessors) >= 14
        market = (await client.markets.get_market(markets[0].ticker)).market
        assert isinstance(market.yes_bid, Decimal) and market.yes_bid == Decimal(market.yes_bid_dollars)
        assert market.volume == Decimal(market.volume_fp)

        balance = await client.portfolio.get_balance()
        assert check_accessors(balance, accessors) == 1
        assert balance.balance_decimal > 0

        created = await client.orders.create_order_v2(
            ticker=market.ticker,
            side="bid",
            count="2.00",
            price="0.0100",
            client_order_id=str(uuid.uuid4()),
            time_in_force="good_till_canceled",
            self_trade_prevention_type="taker_at_cross",
        )
        check_accessors(created, accessors)
        assert created.fill_count_decimal + created.remaining_count_decimal == Decimal("2.00")
        order = (await client.orders.get_order(created.order_id)).order
        assert check_accessors(order, accessors) == 9
        assert order.initial_count == Decimal("2.00")
        assert order.yes_price == Decimal("0.0100")
        assert order.fill_count + order.remaining_count == order.initial_count

        book = (await client.markets.get_market_orderbook(market.ticker)).orderbook_fp
        assert check_accessors(book, accessors) == 2
        ours = [level.size for level in book.yes if level.price == Decimal("0.0100")]
        assert (ours and ours[0] >= order.remaining_count) or order.remaining_count == 0
        assert all(isinstance(level.price, Decimal) and isinstance(level.size, Decimal) for level in book.yes)


async def test_401s_say_the_servers_reason(sim: Simulator) -> None:
    """Unknown key, stale timestamp and no signature: three different messages, each naming its code."""
    stranger = KalshiAuth("not-registered", ed25519.Ed25519PrivateKey.generate())
    private_pem, public_pem = generate_private_key_pem("ed25519")
    sim.register_key("late-clock", public_pem)
    an_hour_ago = KalshiAuth.from_pem("late-clock", private_pem, clock=lambda: time.time_ns() // 1_000_000 - 3_600_000)
    errors: dict[str, KalshiUnauthorizedError] = {}
    for name, auth in (("unknown_key", stranger), ("stale_timestamp", an_hour_ago)):
        async with client_of(sim, auth) as client:
            with pytest.raises(KalshiUnauthorizedError) as caught:
                await client.portfolio.get_balance()
            errors[name] = caught.value
    async with client_of(sim, None) as client:
        with pytest.raises(KalshiUnauthorizedError) as caught:
            await client.request("GET", "/portfolio/balance")
        errors["missing_header"] = caught.value
    for code, error in errors.items():
        assert error.status == 401 and error.code == code
        assert str(error).startswith(f"HTTP 401 {code}: ") and error.message in str(error)
    assert "register" in errors["unknown_key"].message  # the server says what to do
    assert "clock" in errors["stale_timestamp"].message
    assert len({str(e) for e in errors.values()}) == 3
