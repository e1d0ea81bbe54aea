"""Hypothesis profiles of the test suite; importing this module loads one (``ci`` unless told otherwise).

``ci`` (the default) is derandomized: the same examples on every run and every machine, so a red test is a
real regression, never a lucky draw, and no example database is written. ``explore`` draws fresh random
examples for a local bug hunt: ``HYPOTHESIS_PROFILE=explore pytest tests/test_fuzz_sim.py``; a failure it
finds prints the seed and blob to reproduce it (then add the example as an ``@example``).

Import it before any ``@settings`` is evaluated: from ``tests/conftest.py`` (``import hypothesis_profile``)
or, until then, at the top of each module that uses hypothesis.
"""

from __future__ import annotations

import os
from typing import Final

from hypothesis import HealthCheck, settings

__all__ = ["ACTIVE", "PROFILES"]

PROFILES: Final = ("ci", "explore")

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])

ACTIVE: Final = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if ACTIVE not in PROFILES:
    raise RuntimeError(f"HYPOTHESIS_PROFILE={ACTIVE!r}: use one of {', '.join(PROFILES)}")
settings.load_profile(ACTIVE)
