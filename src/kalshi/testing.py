"""pytest plugin: fixtures that run a local Kalshi simulator for your bot's tests."""

from __future__ import annotations
