"""Validate server messages against the JSON schemas of Kalshi's asyncapi.yaml (not against our own models).

Every ``components.messages.<name>.payload`` whose ``type`` property is a ``const`` is indexed by that type;
a message is valid when it matches one of the schemas of its type (``ok`` has four: update ack, index and
underlying acks, list_subscriptions). ``$ref`` pointers resolve inside the spec document.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

_ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = (
    _ROOT / "specs" / "asyncapi.yaml",
    _ROOT.parent / "shared" / "specs" / "asyncapi.yaml",
)


def spec_path() -> Path:
    """Where asyncapi.yaml lives (the repo's specs/ first, then ../shared/specs/)."""
    for path in _CANDIDATES:
        if path.exists():
            return path
    raise FileNotFoundError(f"asyncapi.yaml not found in {[str(p) for p in _CANDIDATES]}")


@cache
def _document() -> dict[str, Any]:
    with spec_path().open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    assert isinstance(doc, dict)
    return doc


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = _document()
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    assert isinstance(target, dict)
    return _resolve(target)


@cache
def validators_by_type() -> dict[str, list[tuple[str, jsonschema.protocols.Validator]]]:
    """``type`` value -> [(message name, validator)] for every server message of the spec."""
    doc = _document()
    components = doc["components"]
    out: dict[str, list[tuple[str, jsonschema.protocols.Validator]]] = {}
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    for name, message in components["messages"].items():
        payload = message.get("payload")
        if not isinstance(payload, dict):
            continue
        resolved = _resolve(payload)
        type_prop = resolved.get("properties", {}).get("type", {})
        const = type_prop.get("const")
        if not isinstance(const, str) or name.endswith("Command"):
            continue
        # The whole spec rides along so '#/components/...' references resolve within it.
        schema = {"components": components, **payload}
        validator = jsonschema.Draft202012Validator(schema, format_checker=checker)
        out.setdefault(const, []).append((name, validator))
    return out


def validate_message(message: Any) -> str:
    """Check one decoded server message against the spec.

    Returns:
        The name of the spec message it matched (e.g. ``orderbookDelta``).

    Raises:
        AssertionError: unknown ``type``, or no schema of that type accepts it (all errors listed).
    """
    assert isinstance(message, dict), f"server message is not a JSON object: {message!r}"
    typ = message.get("type")
    candidates = validators_by_type().get(str(typ))
    assert candidates, f"message type {typ!r} is not in asyncapi.yaml: {message!r}"
    problems: list[str] = []
    for name, validator in candidates:
        errors = sorted(validator.iter_errors(message), key=lambda e: list(e.path))
        if not errors:
            return name
        problems.append(f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5]))
    raise AssertionError(f"message {message!r} matches no schema of type {typ!r}:\n" + "\n".join(problems))


def message_types() -> set[str]:
    """Every server message type the spec defines."""
    return set(validators_by_type())
