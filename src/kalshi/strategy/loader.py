"""Loading a strategy class named ``pkg.module:Class`` (the CLI's ``--strategy``)."""

from __future__ import annotations

import importlib
import json
from typing import Any

from kalshi.strategy.base import Strategy
from kalshi.strategy.types import StrategyError

__all__ = ["load_strategy"]


def load_strategy(spec: str, params: str | dict[str, Any] | None = None) -> Strategy:
    """Import ``pkg.module:Class`` and instantiate it with ``params`` (a dict or a JSON object string).

    Raises:
        StrategyError: a malformed spec, a module or class that cannot be found, not a Strategy subclass,
            or parameters the class does not accept.
    """
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise StrategyError(f"--strategy must look like 'pkg.module:Class', not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise StrategyError(f"cannot import {module_name!r} (is it on PYTHONPATH?): {exc}") from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        found = sorted(
            name
            for name, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, Strategy) and value is not Strategy
        )
        hint = f"; its strategies: {', '.join(found)}" if found else ""
        raise StrategyError(f"module {module_name!r} has no {class_name!r}{hint}")
    if not isinstance(cls, type) or not issubclass(cls, Strategy):
        raise StrategyError(f"{spec!r} is not a kalshi.strategy.Strategy subclass")
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except json.JSONDecodeError as exc:
            raise StrategyError(f"--params must be a JSON object: {exc}") from exc
    if params is not None and not isinstance(params, dict):
        raise StrategyError("--params must be a JSON object")
    try:
        return cls(**(params or {}))
    except TypeError as exc:
        raise StrategyError(f"cannot create {spec} with {params!r}: {exc}") from exc
