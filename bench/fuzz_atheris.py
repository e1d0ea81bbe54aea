"""Coverage-guided fuzzing with atheris (optional: ``pip install atheris``; not part of the test run).

Two targets, the same invariants as tests/test_fuzz_client.py and tests/test_fuzz_sim.py:

* ``client``: ``ClientProtocol.receive_frame`` on arbitrary bytes never raises; a rejected frame leaves the
  sequence state alone; every accessor of a decoded message works or raises ``KalshiError``.
* ``sim``: ``WsSession.receive`` (the simulator's command parser) on arbitrary bytes never raises and answers
  with JSON frames whose errors carry spec error codes.

Run (the fixtures are the seed corpus; libFuzzer flags pass through)::

    python -m bench.fuzz_atheris client -runs=200000
    python -m bench.fuzz_atheris sim -runs=200000

It prints the number of inputs run when libFuzzer stops. A crash leaves ``crash-<sha1>`` with the input.
"""

from __future__ import annotations

import inspect
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports(include=["kalshi"]):
    import msgspec

    from kalshi.errors import WS_ERROR_CODES, KalshiError
    from kalshi.sim import Simulator
    from kalshi.sim.ws.fanout import Outbox
    from kalshi.sim.ws.session import SessionLimits, WsSession
    from kalshi.ws.protocol import ClientProtocol, ProtocolErrorEvent

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "ws"
_runs = 0


def _prime(proto: ClientProtocol) -> None:
    for sid in range(0, 20):
        proto.receive_frame(json.dumps({"type": "subscribed", "msg": {"channel": "orderbook_delta", "sid": sid}}))
        proto.receive_frame(json.dumps({"type": "ok", "sid": sid, "seq": 1}))


def _state(proto: ClientProtocol) -> list[tuple[int | None, bool]]:
    return [(proto.last_seq(s), proto.is_awaiting_snapshot(s)) for s in range(0, 20)]


def _exercise(obj: Any, depth: int = 0) -> None:
    if depth > 3 or obj is None or isinstance(obj, str | bytes | int | float | bool):
        return
    if isinstance(obj, list | tuple):
        for item in obj[:8]:
            _exercise(item, depth + 1)
        return
    for name, member in inspect.getmembers(type(obj)):
        if name.startswith("_"):
            continue
        try:
            if isinstance(member, property) or inspect.ismemberdescriptor(member):
                value = getattr(obj, name)
            elif inspect.isfunction(member) and len(inspect.signature(member).parameters) == 1:
                if name in ("to_builtins",):
                    continue
                value = getattr(obj, name)()
            else:
                continue
        except KalshiError:
            continue
        _exercise(value, depth + 1)


def client_target(data: bytes) -> None:
    global _runs
    _runs += 1
    for validate in (True, False):
        proto = ClientProtocol(validate_book=validate)
        _prime(proto)
        before = _state(proto)
        result = proto.receive_frame(data)
        if isinstance(result, ProtocolErrorEvent):
            assert _state(proto) == before
        else:
            _exercise(getattr(result, "message", result))


_SIM = None
_clock = 0.0


def _tick() -> float:
    """One second per command: the command token bucket never runs dry (error 27 would hide everything)."""
    global _clock
    _clock += 1.0
    return _clock


def sim_target(data: bytes) -> None:
    global _runs, _SIM
    _runs += 1
    if _SIM is None:
        _SIM = Simulator(seed=5, markets=3, rate=0.0, lifecycle=False)
    outbox = Outbox(1, account="fuzz", limit=1_000_000)
    session = WsSession(outbox, _SIM.hub, _SIM.feeds, authenticated=True, limits=SessionLimits(), clock=_tick)
    try:
        session.receive(data)
        for frame in outbox.frames:
            message = msgspec.json.decode(frame)
            if message.get("type") == "error":
                assert message["msg"]["code"] in WS_ERROR_CODES
    finally:
        session.close()


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in ("client", "sim"):
        raise SystemExit("usage: python -m bench.fuzz_atheris {client|sim} [libFuzzer flags]")
    target = client_target if argv[1] == "client" else sim_target
    corpus = Path(tempfile.mkdtemp(prefix="kalshi-fuzz-"))
    seeds = [p.read_bytes() for p in FIXTURES.glob("*.json")]
    if argv[1] == "sim":
        seeds = [
            b'{"id":1,"cmd":"subscribe","params":{"channels":["orderbook_delta"],"market_tickers":["X"]}}',
            b'{"id":2,"cmd":"update_subscription","params":{"sid":1,"action":"get_snapshot","market_tickers":["X"]}}',
            b'{"id":3,"cmd":"unsubscribe","params":{"sids":[1]}}',
            b'{"id":4,"cmd":"list_subscriptions"}',
        ]
    for i, seed in enumerate(seeds):
        (corpus / f"seed-{i}").write_bytes(seed)
    try:
        atheris.Setup([argv[0], *argv[2:], str(corpus)], target)
        atheris.Fuzz()
    finally:
        print(f"{argv[1]}: {_runs:,} inputs run", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv)
