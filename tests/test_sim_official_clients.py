"""Fidelity proof: clients written for the real exchange work against the simulator unchanged.

* ``kalshi-python-async`` 3.31.0, the client Kalshi generates from the same spec version as ``specs/openapi.yaml``.
  It needs Python >= 3.13; on older interpreters the test is skipped and says so.
* ``kalshi-sdk``, the most used third-party SDK. It installs a top-level package named ``kalshi`` (this project's
  name too), so it can never share an environment with kalshi-kit: the test runs it in a separate interpreter
  named by ``KALSHI_SDK_PYTHON`` (Python >= 3.12 with ``pip install kalshi-sdk``), and is skipped, saying so,
  when none is given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kalshi.auth import generate_private_key_pem
from kalshi.sim import Simulator, rest_controls
from test_cli_support import SimThread

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
SDK_PROBE = Path(__file__).resolve().parent / "official_clients" / "kalshi_sdk_probe.py"
SDK_PYTHON = os.environ.get("KALSHI_SDK_PYTHON", "")
SPEC_VERSION = "3.31.0"


def register_rsa_key(sim: Simulator) -> tuple[str, str]:
    """An RSA key (both official clients sign with RSA-PSS only) registered with a funded account."""
    private_pem, public_pem = generate_private_key_pem("rsa")
    sim.register_key("official-client", public_pem, account="official")
    rest_controls(sim).limits.enabled = False
    return "official-client", private_pem.decode() if isinstance(private_pem, bytes) else private_pem


@pytest.mark.skipif(
    sys.version_info < (3, 13),
    reason=f"kalshi-python-async {SPEC_VERSION} (generated from the same spec) requires Python >= 3.13; "
    f"this is Python {PYTHON}",
)
async def test_kalshi_python_async_trades_against_the_simulator(kalshi_sim_factory: Callable[..., Simulator]) -> None:
    import kalshi_python_async as official

    assert official.__version__ == SPEC_VERSION, "the official client must be of the spec's version"
    async with kalshi_sim_factory(seed=4, markets=3) as sim:
        key_id, private_pem = register_rsa_key(sim)
        ticker = sim.tickers[0]
        config = official.Configuration(host=sim.url + "/trade-api/v2")
        async with official.ApiClient(config) as api:
            api.kalshi_auth = official.KalshiAuth(key_id, private_pem)
            status = await official.ExchangeApi(api).get_exchange_status()
            assert status.exchange_active is True
            markets = await official.MarketApi(api).get_markets(limit=10)
            assert ticker in [m.ticker for m in markets.markets]
            book = await official.MarketApi(api).get_market_orderbook(ticker, depth=5)
            assert book.orderbook_fp is not None
            balance = await official.PortfolioApi(api).get_balance()
            assert balance.balance > 0
            orders = official.OrdersApi(api)
            created = await orders.create_order_v2(
                ticker=ticker,
                side="bid",
                count="1.00",
                price="0.0100",
                time_in_force="good_till_canceled",
                self_trade_prevention_type="taker_at_cross",
                client_order_id="official-1",
            )
            assert created.order_id in [o.order_id for o in (await orders.get_orders()).orders]
            assert sim.engine.order(created.order_id).account == "official"
            await orders.cancel_order_v2(created.order_id)
            assert sim.engine.order(created.order_id).status == "canceled"


@pytest.mark.skipif(
    not SDK_PYTHON,
    reason="kalshi-sdk installs a top-level package named `kalshi`, which would replace kalshi-kit: set "
    "KALSHI_SDK_PYTHON to a Python >= 3.12 interpreter of its own with `pip install kalshi-sdk` to run it",
)
def test_kalshi_sdk_trades_against_the_simulator(tmp_path: Path) -> None:
    with SimThread(seed=4, markets=3, rate=0.0, lifecycle=False) as st:
        key_id, private_pem = st.call(register_rsa_key)
        ticker = st.call(lambda sim: sim.tickers[0])
        key_file = tmp_path / "official.pem"
        key_file.write_text(private_pem)
        done = subprocess.run(
            [SDK_PYTHON, str(SDK_PROBE), st.url + "/trade-api/v2", key_id, str(key_file), ticker],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": os.environ.get("PATH", ""), "PYTHONNOUSERSITE": "1"},
        )
        assert done.returncode == 0, done.stderr[-3000:]
        report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        assert report["exchange_active"] is True
        assert ticker in report["tickers"]
        assert report["order_listed"] and report["cancelled"]
        order = st.call(lambda sim: sim.engine.order(report["order_id"]))
        assert order.account == "official" and order.status == "canceled"
