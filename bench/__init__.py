"""Benchmark and soak scripts (run as ``python -m bench.<name>`` from the repository root); never part of the
test run's timing assertions."""
