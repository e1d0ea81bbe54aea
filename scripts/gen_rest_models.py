"""The models side of scripts/gen_rest.py: ``_generated_models.py`` (msgspec Structs, enum aliases, Decimal
accessors)."""

from __future__ import annotations

import textwrap
from typing import Any

from gen_rest_spec import DOC_WIDTH, Spec, doc_text, literal, py_name, sentence, typing_imports

# ----------------------------------------------------------------------------------------------- models


# Always optional, whatever the spec says: servers send null or nothing for "no more pages".
LENIENT_FIELDS = frozenset({"cursor", "next_cursor"})


def _field_lines(spec: Spec, name: str, schema: dict[str, Any], used: set[str]) -> list[str]:
    required = set(schema.get("required", [])) - LENIENT_FIELDS
    lines = []
    for wire, prop in (schema.get("properties") or {}).items():
        annotation = spec.pytype(prop, name, wire, used)
        attr = py_name(wire)
        nullable = bool(prop.get("nullable"))
        rename = f', name="{wire}"' if attr != wire else ""
        if wire in required and not nullable:
            default = f" = msgspec.field({rename[2:]})" if rename else ""
            lines.append(f"    {attr}: {annotation}{default}")
        elif rename:
            lines.append(f"    {attr}: {annotation} | None = msgspec.field(default=None{rename})")
        else:
            lines.append(f"    {attr}: {annotation} | None = None")
    return lines


FIXED_POINT = {"FixedPointDollars": "dollars", "FixedPointCount": "contracts"}
FIXED_SUFFIXES = ("_dollars", "_fp")


def _fixed_point(prop: dict[str, Any]) -> str | None:
    """``FixedPointDollars``/``FixedPointCount`` when a property holds one fixed-point string."""
    if "allOf" in prop and len(prop["allOf"]) == 1:
        prop = prop["allOf"][0]
    name = str(prop.get("$ref", "")).rsplit("/", 1)[-1]
    return name if name in FIXED_POINT else None


PRICE_LEVEL = "PriceLevelDollarsCountFp"


def _accessor_name(wire: str, taken: set[str]) -> str:
    base = py_name(wire)
    for suffix in FIXED_SUFFIXES:
        base = base.removesuffix(suffix)
    accessor = base if base not in taken else base + "_decimal"
    if accessor in taken or accessor == "decimal":
        raise ValueError(f"decimal accessor {accessor} clashes with a field of {sorted(taken)}")
    taken.add(accessor)
    return accessor


def decimal_accessors(schema: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """``(accessor, field, unit, optional)`` for every fixed-point field of an object schema.

    The accessor is the field without its ``_dollars``/``_fp`` suffix, as on the WebSocket models
    (``yes_bid_dollars`` -> ``yes_bid``); when that name is taken (a field without suffix, or a
    legacy integer field such as ``balance``) it gets ``_decimal`` (``fill_count_decimal``). A list
    of ``[price, count]`` string pairs (an order book side) has unit ``"levels"``: its accessor gives
    :class:`kalshi.models.PriceLevel` Decimals.
    """
    props = schema.get("properties") or {}
    required = set(schema.get("required", []))
    taken = {py_name(w) for w in props}
    out = []
    for wire, prop in props.items():
        kind = _fixed_point(prop)
        items = str((prop.get("items") or {}).get("$ref", "")).rsplit("/", 1)[-1]
        unit = FIXED_POINT[kind] if kind else "levels" if prop.get("type") == "array" and items == PRICE_LEVEL else None
        if unit is None:
            continue
        optional = wire not in required or bool(prop.get("nullable"))
        out.append((_accessor_name(wire, taken), py_name(wire), unit, optional))
    return out


def _accessor_lines(schema: dict[str, Any]) -> list[str]:
    lines = []
    for accessor, attr, unit, optional in decimal_accessors(schema):
        value = f"self.{attr}"
        if unit == "levels":
            returns = "list[PriceLevel]"
            call = f'price_levels({value}, "{attr}")'
            doc = f"``{attr}`` as exact ``PriceLevel(price, size)`` Decimals, in the order sent"
        else:
            returns = "Decimal"
            call = f'fixed_decimal({value}, "{attr}")'
            doc = f"``{attr}`` as an exact Decimal ({unit})"
        if optional:
            returns += " | None"
            doc += "; None when absent"
        lines += [
            "",
            "    @property",
            f"    def {accessor}(self) -> {returns}:",
            f'        """{doc}."""',
            f"        return None if {value} is None else {call}" if optional else f"        return {call}",
        ]
    return lines


def _struct_doc(spec: Spec, name: str, schema: dict[str, Any]) -> str:
    """The class docstring: the schema's description, then its fields (Google ``Attributes:``)."""
    lines = [doc_text(schema.get("description")) or f"The ``{name}`` schema."]
    decimals = {field: (accessor, unit) for accessor, field, unit, _ in decimal_accessors(schema)}
    attributes = []
    for wire, prop in (schema.get("properties") or {}).items():
        attr = py_name(wire)
        target = spec.resolve(prop)
        text = doc_text(prop.get("description"), limit=300)
        if not text and attr not in decimals:  # the fixed-point schemas' descriptions are generic
            text = doc_text(target.get("description"), limit=300)
        parts = [sentence(text)] if text else []
        values = target.get("enum")
        if values:
            parts.append("One of " + ", ".join(f'``"{v}"``' for v in values if v is not None) + ".")
        if attr in decimals:
            accessor, unit = decimals[attr]
            kind = "``PriceLevel`` Decimals" if unit == "levels" else "an exact Decimal"
            parts.append(f"As {kind}: ``{accessor}``.")
        if parts:
            attributes += textwrap.wrap(
                f"{attr}: {' '.join(parts)}",
                width=DOC_WIDTH + 4,  # class docstrings sit 4 columns in
                initial_indent="    ",
                subsequent_indent="        ",
                break_long_words=False,
                break_on_hyphens=False,
            )
    if attributes:
        lines += ["", "Attributes:", *attributes]
    body = "\n".join(f"    {line}" if line else "" for line in lines)
    return f'    """{body.lstrip()}\n    """' if attributes else f'    """{lines[0]}"""'


def _struct(spec: Spec, name: str, schema: dict[str, Any], used: set[str]) -> str:
    head = f"class {name}(Model, kw_only=True):\n{_struct_doc(spec, name, schema)}\n"
    fields = _field_lines(spec, name, schema, used) + _accessor_lines(schema)
    return head + ("\n" + "\n".join(fields) + "\n" if fields else "")


def _enum_block(enums: dict[str, tuple[tuple[Any, ...], str]]) -> str:
    """Enum aliases: ``Literal`` for type checkers, the base type at run time (decoding stays lenient)."""
    checked = [f"    {n}: TypeAlias = {literal(values)}" for n, (values, _) in enums.items()]
    runtime = [f"    {n}: TypeAlias = {base}" for n, (_, base) in enums.items()]
    return (
        "if TYPE_CHECKING:\n"
        + "\n".join(checked)
        + "\nelse:\n"
        + "    # Plain str/int when decoding: a value newer than this spec must not fail a whole response.\n"
        + "\n".join(runtime)
    )


def render_models(spec: Spec) -> str:
    aliases: list[str] = []
    structs: list[str] = []
    used: set[str] = set()
    names: list[str] = []
    for name, schema in spec.schemas.items():
        if not name.isidentifier():
            raise ValueError(f"schema name {name!r} is not a Python identifier")
        names.append(name)
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            structs.append(_struct(spec, name, schema, used))
            continue
        if name in spec.enums:
            continue  # rendered with the inline enums below
        aliases.append(f"{name}: TypeAlias = {spec.pytype(schema, name, '', used)}")
    # Inline object schemas found while typing fields; they may nest further.
    done: set[str] = set()
    while set(spec.inline) - done:
        for name in sorted(set(spec.inline) - done):
            done.add(name)
            names.append(name)
            structs.append(_struct(spec, name, spec.inline[name], used))
    enum_names = [n for n in spec.enums if n in used or n in spec.schemas]
    names += [n for n in enum_names if n not in spec.schemas]
    enums = _enum_block({n: spec.enums[n] for n in enum_names})
    text = "\n".join(structs) + "\n".join(aliases) + enums
    imports = ["from __future__ import annotations", "", *typing_imports(text, ("TYPE_CHECKING", "Literal")), ""]
    if "msgspec.field" in text:
        imports += ["import msgspec", ""]
    helpers = [n for n in ("fixed_decimal", "price_levels") if f"{n}(" in text]
    imports.append(f"from kalshi.rest._model import {', '.join(['Model', *helpers])}")
    if "PriceLevel]" in text:
        imports.append("from kalshi.models.markets import PriceLevel")
    all_names = "\n".join(f'    "{n}",' for n in sorted(names))
    parts = [
        spec.header(),
        '"""Typed request and response bodies of the Kalshi REST API (components.schemas of openapi.yaml).\n\n'
        "Money and counts stay the wire strings (``*_dollars``, ``*_fp``), each with an exact Decimal property\n"
        "(``market.yes_bid`` for ``market.yes_bid_dollars``); JSON numbers decode to Decimal. Enums are\n"
        "``Literal`` types for type checkers and plain strings at run time, so a value the exchange adds later\n"
        "still decodes.\n"
        '"""',
        "\n".join(imports),
        f"__all__ = [\n{all_names}\n]",
        "\n".join(aliases) + "\n\n" + enums,
        "\n\n".join(structs),
    ]
    return "\n\n\n".join(parts) + "\n"
