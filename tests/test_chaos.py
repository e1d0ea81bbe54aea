"""The short form of the chaos run (bench/chaos.py): about a minute of every fault kind against two client
sessions, with quiescent checkpoints that compare every book with the simulator and account for every fill.

The long form is ``python -m bench.chaos --minutes 10 --seed 1``; figures (rates, RSS) are printed there, not
asserted here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # bench/ lives at the repository root, beside src/ and tests/

from bench.chaos import ChaosConfig, run_chaos  # noqa: E402
from bench.chaos_faults import FAULT_KINDS  # noqa: E402


@pytest.mark.slow
async def test_short_chaos_run_loses_nothing() -> None:
    # Faults twice as dense as the long run's 1-5 s, so that a minute covers every kind.
    config = ChaosConfig(
        seconds=60.0, seed=7, markets=50, checkpoint_every=15.0, converge_timeout=12.0, fault_every=(0.5, 2.5)
    )
    result = await run_chaos(config)
    table = result.table()
    assert result.ok, "\n".join(result.failures) + "\n" + table
    must = result.figures["must"]
    assert must["book mismatches at checkpoints"] == 0, table
    assert must["fills lost"] == 0, table
    assert must["unhandled exceptions"] == 0, table
    # Every recovery is accounted for by an injected drop, and every drop by a recovery.
    assert result.figures["reconnects"] + result.figures["restarts"] == result.figures["drops"], table
    assert result.figures["drops"] >= 5, table
    assert result.figures["restarts"] >= 1, table  # the one 401 while reconnecting
    # Each fault kind really fired (the scheduler covers every kind once before picking by weight) and was
    # survived: the run reached a verified checkpoint after it.
    for kind in [*FAULT_KINDS, "skip_seq", "dup", "reorder", "malformed", "slow_consumer"]:
        assert result.injected.get(kind, 0) >= 1, f"{kind} never injected\n{table}"
        assert result.survived.get(kind, 0) >= 1, f"{kind} not survived\n{table}"
    fills = result.figures["fills"]
    assert fills["produced"] > 0 and fills["produced"] == fills["delivered"] + fills["recovered"], table
    assert result.figures["checkpoints"] >= 3, table
