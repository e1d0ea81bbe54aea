"""The ``kalshi`` command."""
