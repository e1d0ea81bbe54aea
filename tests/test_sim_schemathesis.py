"""Fidelity proof: schemathesis runs every operation of specs/openapi.yaml against the simulator.

Each operation gets a few derandomized examples generated from the spec (positive data: what the spec allows;
negative data: what it forbids, e.g. ``min_ts=9223372036854775808`` or ``market_ticker: {}``), sent signed to a
simulator on loopback. The checks: no server error (5xx), every response conforms to the spec's schema for its
status, and data the spec forbids is refused with a 4xx. Every operation is served: :data:`NOT_YET_SERVED` (the
operations that would answer 501) is empty, and the test holds it equal to what the route table lacks, so an
operation added to the spec but not to the route table fails here until it is served.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance

import hypothesis_profile  # noqa: F401  (derandomized unless HYPOTHESIS_PROFILE says otherwise)
from kalshi.auth import KalshiAuth
from kalshi.config import REST_PATH
from kalshi.rest import OPERATIONS
from kalshi.sim import Simulator, rest_controls
from kalshi.sim.engine.multivariate import CollectionSpec
from kalshi.sim.engine.reference import weather_cities
from kalshi.sim.rest import ROUTES
from test_cli_support import SimThread

SPEC = Path(__file__).resolve().parents[1] / "specs" / "openapi.yaml"
POSITIVE_EXAMPLES = 6
NEGATIVE_EXAMPLES = 3

# Operations answering 501 for want of a handler: none. A new spec operation must join the route table, not this.
NOT_YET_SERVED: frozenset[str] = frozenset()


class Signer(requests.auth.AuthBase):
    """Signs every request schemathesis sends, as a client of the exchange does (path without the query)."""

    def __init__(self, auth: KalshiAuth) -> None:
        self.auth = auth

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        assert request.method is not None and request.url is not None
        request.headers.update(self.auth.headers(request.method, urlsplit(request.url).path))
        return request


class Served(NamedTuple):
    base_url: str
    session: requests.Session
    known: dict[str, str]  # path parameter -> the id of something that exists


def seed_resources(sim: Simulator, account: str) -> dict[str, str]:
    """Things for path parameters to name: a market and its event and series, an order, a group, an RFQ, a quote,
    a block trade proposal, a weather city, a multivariate collection."""
    rest_controls(sim).limits.enabled = False  # a conformance run, not a rate-limit test
    ticker = sim.tickers[0]
    spec = sim.engine.market(ticker).spec
    order = sim.place_order(account, ticker, "bid", 100, 100)  # one contract bid at $0.01
    group = sim.do(lambda e: e.create_order_group(account, 1000))
    sim.ensure_account("rfq-maker")
    rfq = sim.do(lambda e: e.create_rfq("rfq-maker", ticker, contracts_units=1000))
    quote = sim.do(lambda e: e.create_quote(account, rfq.rfq_id, yes_bid_ticks=4000, no_bid_ticks=4000))
    proposal = sim.do(
        lambda e: e.propose_block_trade(
            account, buyer=account, seller="rfq-maker", ticker=ticker, price_ticks=5000, count_units=100,
            maker_side="yes", expiration_ms=e.now_ms + 86_400_000,
        )
    )  # fmt: skip
    singles = tuple(dict.fromkeys(sim.engine.market(t).spec.event_ticker for t in sim.tickers))
    now = sim.engine.now_ms
    sim.do(lambda e: e.add_collection(CollectionSpec("KXSIMCOMBO", "Combos", singles, 2, 2, now, now + 86_400_000)))
    return {
        "ticker": ticker,
        "event_ticker": spec.event_ticker,
        "series_ticker": spec.series_ticker,
        "order_id": order.order_id,
        "order_group_id": group.order_group_id,
        "rfq_id": rfq.rfq_id,
        "quote_id": quote.quote_id,
        "block_trade_proposal_id": proposal.proposal_id,
        "city": sorted(weather_cities())[0],
        "collection_ticker": "KXSIMCOMBO",
    }


def seed_over_rest(session: requests.Session, base_url: str) -> dict[str, str]:
    """Things made or listed through the API itself: a milestone and its live data type, a structured target,
    an intra-exchange transfer, a spare API key (DeleteApiKey may delete it)."""

    def ok(response: requests.Response) -> Any:
        assert response.status_code in (200, 201), response.text
        return response.json()

    milestone = ok(session.get(f"{base_url}/milestones", params={"limit": 1}))["milestones"][0]["id"]
    live = ok(session.get(f"{base_url}/live_data/milestone/{milestone}"))["live_data"]
    target = ok(session.get(f"{base_url}/structured_targets"))["structured_targets"][0]["id"]
    moved = {"source": "event_contract", "destination": "margined", "amount": 100}
    transfer = ok(session.post(f"{base_url}/portfolio/intra_exchange_instance_transfer", json=moved))
    key = ok(session.post(f"{base_url}/api_keys/generate", json={"name": "spare"}))
    return {
        "milestone_id": milestone,
        "type": live["type"],
        "structured_target_id": target,
        "transfer_id": transfer["transfer_id"],
        "api_key": key["api_key_id"],
    }


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with SimThread(seed=13, markets=4, rate=0.0, lifecycle=False) as st:
        auth, account = st.call(lambda sim: sim.create_account_auth())
        known = st.call(lambda sim: seed_resources(sim, account))
        with requests.Session() as session:
            session.auth = Signer(auth)
            known |= seed_over_rest(session, st.url + REST_PATH)
            yield Served(st.url + REST_PATH, session, known)


def operations() -> list[Any]:
    schema = schemathesis.openapi.from_path(str(SPEC))
    return [result.ok() for result in schema.get_all_operations()]


OPERATIONS_OF_SPEC = operations()


def test_the_not_yet_served_list_is_exactly_what_the_route_table_lacks() -> None:
    in_spec = {op.definition.raw["operationId"] for op in OPERATIONS_OF_SPEC}
    assert in_spec == set(OPERATIONS), "the schemathesis run covers every operation of the spec"
    missing = in_spec - set(ROUTES)
    assert missing - NOT_YET_SERVED == set(), f"served nowhere and not listed: {sorted(missing - NOT_YET_SERVED)}"
    assert NOT_YET_SERVED - missing == set(), (
        f"now served: remove from NOT_YET_SERVED {sorted(NOT_YET_SERVED - missing)}"
    )


def cases(operation: Any, mode: GenerationMode, known: dict[str, str]) -> Any:
    """Generated cases; where the path names a resource, half of them name one that exists."""
    generated = operation.as_strategy(generation_mode=mode)
    names = re.findall(r"{(\w+)}", operation.path)
    fixed = {name: known[name] for name in names if name in known}
    if not fixed or mode is GenerationMode.NEGATIVE:
        return generated
    return operation.as_strategy(generation_mode=mode, path_parameters=fixed) | generated


def run_operation(operation: Any, mode: GenerationMode, examples: int, served: Served) -> tuple[list[str], set[int]]:
    """Send ``examples`` generated cases of one operation: the failures found, as text, and the statuses seen."""
    checks = [not_a_server_error, response_schema_conformance]
    if mode is GenerationMode.NEGATIVE:
        checks = [not_a_server_error, negative_data_rejection]
    failures: list[str] = []
    statuses: set[int] = set()
    plain = requests.Session()

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases(operation, mode, served.known))
    def probe(case: Any) -> None:
        # Signed like any client, unless the case's point is the auth headers themselves (missing or malformed).
        unsigned = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
        response = case.call(base_url=served.base_url, session=plain if unsigned else served.session, timeout=10)
        statuses.add(response.status_code)
        if case.operation.definition.raw["operationId"] in NOT_YET_SERVED:
            return
        try:
            case.validate_response(response, checks=checks, transport_kwargs={"base_url": served.base_url})
        except FailureGroup as exc:
            for failure in exc.exceptions:
                detail = " ".join(failure.message.split())[:300]
                failures.append(f"{failure.title}: {detail} [{case.method} {response.request.url}]"[:600])

    try:
        with plain:
            probe()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE, "positive data always exists"
        return [], set()  # the spec constrains nothing of this operation: no request can break it
    op_id = operation.definition.raw["operationId"]
    if op_id in NOT_YET_SERVED and mode is GenerationMode.POSITIVE and statuses - {501}:
        failures.append(f"answered {sorted(statuses)}, expected 501 until served")
    return failures, statuses


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_operation_conforms_to_the_spec(served: Served, mode: GenerationMode) -> None:
    examples = POSITIVE_EXAMPLES if mode is GenerationMode.POSITIVE else NEGATIVE_EXAMPLES
    report: dict[str, list[str]] = {}
    succeeded: set[str] = set()
    for operation in OPERATIONS_OF_SPEC:
        op_id = operation.definition.raw["operationId"]
        found, statuses = run_operation(operation, mode, examples, served)
        if found:
            report[op_id] = found
        if any(200 <= status < 300 for status in statuses):
            succeeded.add(op_id)
    lines = [f"{op_id}: {failure}" for op_id, found in sorted(report.items()) for failure in dict.fromkeys(found)]
    assert not report, f"{len(report)} operations break the spec ({mode} data):\n" + "\n".join(lines)
    if mode is GenerationMode.POSITIVE:
        # Not only error bodies were checked: most served operations answered a success to spec-generated data.
        served_ops = set(ROUTES) & set(OPERATIONS)
        assert len(succeeded & served_ops) * 3 >= len(served_ops) * 2, sorted(served_ops - succeeded)
