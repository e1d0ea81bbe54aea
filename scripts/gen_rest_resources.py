"""The resources side of scripts/gen_rest.py: ``_generated_resources.py`` (one method per operation, iter_*
twins for cursor lists, typed and documented parameters)."""

from __future__ import annotations

import re
from typing import Any

from gen_rest_spec import (
    COMPAT_ALIASES,
    CSV_PARAM,
    FIELD_DOCS,
    ITEMS_FIELD_OVERRIDES,
    PARAM_ENUMS,
    RESOURCE_OVERRIDES,
    Spec,
    body_schema,
    camel,
    deprecation_note,
    doc_text,
    needs_auth,
    op_cost,
    py_name,
    resource_of,
    response_model,
    sentence,
    snake,
    typing_imports,
    wrap_doc,
)

# -------------------------------------------------------------------------------------------- resources


class Arg:
    """One keyword (or path) argument of a generated method: its annotation and its documentation."""

    def __init__(
        self,
        spec: Spec,
        wire: str,
        schema: dict[str, Any] | None,
        description: str | None,
        *,
        required: bool,
        query: bool = False,
    ) -> None:
        schema = schema or {}
        self.wire = wire
        self.py = py_name(wire)
        self.required = required
        target = spec.resolve(schema)
        self.csv = query and target.get("type") == "string" and bool(CSV_PARAM.search(description or ""))
        self.sequence = query and target.get("type") == "array"
        if self.sequence:
            item = spec.pytype(schema.get("items") or target.get("items"), "", "", set(), inline_enums=True)
            self.annotation = "str | Sequence[str]" if item == "str" else f"Sequence[{item}]"
        elif self.csv:
            self.annotation = "str | Sequence[str]"
        else:
            self.annotation = ""  # set by the caller, which knows the owner and records the models used
        text = doc_text(description, limit=400) or doc_text(target.get("description"), limit=400)
        text = text or FIELD_DOCS.get(wire, "")
        values = target.get("enum") or spec.resolve(target.get("items")).get("enum")
        parts = [sentence(text)] if text else []
        if self.csv or self.sequence:
            how = "joined with commas" if self.csv else "one query parameter per item"
            parts.append(f"Pass a list ({how}) or a single string.")
        if values:
            listed = ", ".join(f'``"{v}"``' if isinstance(v, str) else f"``{v}``" for v in values if v is not None)
            parts.append(f"One of {listed}.")
        default = schema.get("default", target.get("default"))
        if default is not None and not isinstance(default, dict | list) and "default" not in text.lower():
            shown = ("true" if default else "false") if isinstance(default, bool) else default
            parts.append(f"Server default: ``{shown}``.")
        self.doc = " ".join(parts) or "See the Kalshi API reference."

    def value(self) -> str:
        """The expression the method passes on for this argument."""
        return f'join_csv({self.py}, "{self.wire}")' if self.csv else self.py


class Method:
    """One generated resource method (and maybe its iter_* twin)."""

    def __init__(self, spec: Spec, entry: dict[str, Any], used: set[str]) -> None:
        op = entry["op"]
        self.op_id: str = op["operationId"]
        self.name = snake(self.op_id)
        self.summary = doc_text(op.get("summary")) or self.op_id
        description = doc_text(op.get("description"), limit=600)
        self.description = description if description.rstrip(".") != self.summary.rstrip(".") else ""
        self.method: str = entry["method"]
        self.path: str = entry["path"]
        self.requires_auth = needs_auth(op)
        self.deprecated = bool(op.get("deprecated"))
        self.note = deprecation_note(op) if self.deprecated else ""
        self.cost, self.per_item = op_cost(op)
        self.response = response_model(op)
        if self.response:
            used.add(self.response)
        by_name = {p["name"]: p for p in entry["params"] if p["in"] == "path"}
        self.path_params = []
        for name in re.findall(r"{(\w+)}", self.path):
            param = by_name[name]
            arg = Arg(spec, name, param.get("schema"), param.get("description"), required=True)
            arg.annotation = spec.pytype(param.get("schema"), "", "", used, inline_enums=True)
            self.path_params.append(arg)
        self.query: list[Arg] = []
        for param in entry["params"]:
            if param["in"] != "query":
                continue
            if (self.op_id, param["name"]) in PARAM_ENUMS:
                schema, prop = PARAM_ENUMS[self.op_id, param["name"]].split(".")
                param = {**param, "schema": spec.schemas[schema]["properties"][prop]}
            arg = Arg(
                spec,
                param["name"],
                param.get("schema"),
                param.get("description"),
                required=bool(param.get("required")),
                query=True,
            )
            arg.annotation = arg.annotation or spec.pytype(param.get("schema"), "", "", used, inline_enums=True)
            self.query.append(arg)
        self.body: tuple[str, list[Arg]] | None = None
        found = body_schema(spec, op)
        if found:
            name, schema = found
            used.add(name)
            required = set(schema.get("required", []))
            fields = []
            for wire, prop in (schema.get("properties") or {}).items():
                needed = wire in required and not prop.get("nullable")
                arg = Arg(spec, wire, prop, prop.get("description"), required=needed)
                arg.annotation = spec.pytype(prop, name, wire, used, inline_enums=True)
                fields.append(arg)
            self.body = (name, fields)
        self.pagination: tuple[str, str, str] | None = None
        if self.response and any(q.wire == "cursor" for q in self.query):
            props = spec.schemas[self.response].get("properties", {})
            arrays = [k for k, v in props.items() if v.get("type") == "array"]
            field = ITEMS_FIELD_OVERRIDES.get(self.op_id) or (arrays[0] if len(arrays) == 1 else None)
            if field is None:
                raise ValueError(f"{self.op_id}: pick the items field in ITEMS_FIELD_OVERRIDES from {arrays}")
            cursor = "cursor" if "cursor" in props else "next_cursor"
            list_type = spec.pytype(props[field], self.response, field, used, inline_enums=True)
            self.pagination = (field, cursor, list_type.removeprefix("list[").removesuffix("]"))

    def _keywords(self) -> list[Arg]:
        keyword = list(self.query) + (list(self.body[1]) if self.body else [])
        return sorted(keyword, key=lambda a: not a.required)  # required first, for readability

    def _signature(self, *, paginate: bool) -> list[str]:
        args = ["self"] + [f"{a.py}: {a.annotation}" for a in self.path_params]
        keyword = [
            f"{a.py}: {a.annotation}" if a.required else f"{a.py}: {a.annotation} | None = None"
            for a in self._keywords()
        ]
        if paginate:
            keyword.append("max_pages: int | None = None")
        if keyword:
            args += ["*", *keyword]
        return args

    def _docstring(self, *, paginate: bool) -> str:
        auth = "signed" if self.requires_auth else "public"
        cost = f"{self.cost} tokens" + (" per item" if self.per_item else "")
        if paginate:
            lines = [f"Every item of {self.summary}, following ``cursor`` page after page.", ""]
        else:
            lines = [sentence(self.summary), ""]
        if self.description:
            lines += [*wrap_doc(self.description), ""]
        lines.append(f"``{self.method} {self.path}`` ({auth}, {cost}).")
        if self.deprecated:
            lines += ["", f"Deprecated: {self.note}."]
        args = self.path_params + self._keywords()
        if args or paginate:
            lines += ["", "Args:"]
            for arg in args:
                lines += wrap_doc(f"{arg.py}: {arg.doc}", "    ", "        ")
            if paginate:
                lines += wrap_doc(
                    "max_pages: stop after this many pages (default: the client's ``max_pages``; None follows the "
                    "cursor to the end).",
                    "    ",
                    "        ",
                )
        if paginate:
            assert self.pagination
            lines += ["", "Yields:", f"    Each ``{self.pagination[2]}`` of ``{self.pagination[0]}``, page after page."]
        elif self.response:
            lines += ["", "Returns:", f"    The ``{self.response}`` the exchange answered."]
        lines += ["", "Raises:"]
        if self.requires_auth:
            lines.append("    KalshiAuthError: the client was made without auth.")
        lines.append("    KalshiAPIError: the exchange answered with an error (``code`` and ``message`` say why).")
        lines.append("    KalshiConnectionError: the exchange could not be reached.")
        if paginate:
            lines.append("    KalshiPaginationError: the server repeated a cursor.")
        if any(a.csv for a in args):
            lines.append("    ValueError: a list item is empty or holds a comma.")
        body = "\n".join(f"        {line}" if line else "" for line in lines)
        return f'        """{body.lstrip()}\n        """'

    def _call_args(self, *, paginate: bool) -> list[str]:
        args = [f'OPERATIONS["{self.op_id}"]']
        if paginate:
            assert self.pagination and self.response
            field, cursor, _ = self.pagination
            args += [self.response, f"lambda page: page.{field}", f"lambda page: page.{cursor}"]
        elif self.response:
            args.append(self.response)
        if self.path_params:
            args.append("path={" + ", ".join(f'"{a.wire}": {a.py}' for a in self.path_params) + "}")
        if self.query:
            args.append("query={" + ", ".join(f'"{a.wire}": {a.value()}' for a in self.query) + "}")
        if self.body:
            name, fields = self.body
            args.append(f"body={name}(" + ", ".join(f"{a.py}={a.py}" for a in fields) + ")")
        if paginate:
            args.append("max_pages=max_pages")
        return args

    def render(self) -> str:
        returns = self.response or "None"
        call = "_call" if self.response else "_call_empty"
        out = [
            f"    async def {self.name}({', '.join(self._signature(paginate=False))}) -> {returns}:",
            self._docstring(paginate=False),
            f"        return await self._client.{call}({', '.join(self._call_args(paginate=False))})",
        ]
        if self.pagination:
            item = self.pagination[2]
            out += [
                "",
                f"    def iter_{self.name}({', '.join(self._signature(paginate=True))}) -> AsyncIterator[{item}]:",
                self._docstring(paginate=True),
                f"        return self._client._paginate({', '.join(self._call_args(paginate=True))})",
            ]
        return "\n".join(out)


def resource_for(op_id: str, tag: str) -> str:
    """The ``client.<resource>`` an operation lives on."""
    return RESOURCE_OVERRIDES.get(op_id) or resource_of(tag)


def _resource_class(attr: str, methods: list[Method], description: str) -> str:
    cls = f"Async{camel(attr)}Resource"
    names = {m.name for m in methods} | {f"iter_{m.name}" for m in methods if m.pagination}
    body = [
        f"class {cls}:",
        f'    """{description}"""',
        "",
        '    __slots__ = ("_client",)',
        "",
        "    def __init__(self, client: AsyncKalshiClient) -> None:",
        "        self._client = client",
    ]
    for method in methods:
        body += ["", method.render()]
    aliases = COMPAT_ALIASES.get(attr, {})
    if aliases:
        body += ["", "    # Second names kept for existing callers; use the names above in new code."]
    for alias, op_id in aliases.items():
        match = [m for m in methods if m.op_id == op_id]
        if alias in names or not match:
            raise ValueError(f"alias {attr}.{alias} -> {op_id}: clashes, or no such method on {cls}")
        body.append(f"    {alias} = {match[0].name}")
    return "\n".join(body) + "\n"


def render_resources(spec: Spec) -> str:
    used: set[str] = set()
    grouped: dict[str, list[Method]] = {}
    tag_of: dict[str, str] = {}
    for entry in spec.operations():
        tag = entry["op"]["tags"][0]
        method = Method(spec, entry, used)
        attr = resource_for(method.op_id, tag)
        grouped.setdefault(attr, []).append(method)
        tag_of.setdefault(attr, tag if attr == resource_of(tag) else attr)
    descriptions = {t["name"]: t.get("description", "") for t in spec.doc.get("tags", [])}
    classes = []
    for attr in sorted(grouped):
        tag = tag_of[attr]
        text = doc_text(descriptions.get(tag) or descriptions.get(tag + "s")) or f"{camel(attr)} operations"
        classes.append(_resource_class(attr, grouped[attr], f"{text.rstrip('.')} (``client.{attr}``)."))
    names = sorted(used)
    holder = [
        "class AsyncResources:",
        '    """Every resource of the API as an attribute of the client."""',
        "",
        "    def __init__(self) -> None:",
        '        client = cast("AsyncKalshiClient", self)',
    ]
    holder += [f"        self.{a} = Async{camel(a)}Resource(client)" for a in sorted(grouped)]
    resource_names = ", ".join(f'"{a}"' for a in sorted(grouped))
    body = "\n\n\n".join(classes)
    abc = [n for n in ("AsyncIterator", "Sequence") if re.search(rf"\b{n}\[", body)]
    typing_names = [n for n in ("Literal",) if re.search(rf"\b{n}\[", body)]
    parts = [
        spec.header(),
        '"""The API grouped by resource (spec tag): one method per operation, plus iter_* for cursor lists."""',
        "from __future__ import annotations\n\n"
        + (f"from collections.abc import {', '.join(abc)}\n" if abc else "")
        + "\n".join(typing_imports(body, ("TYPE_CHECKING", "Final", "cast", *typing_names)))
        + "\n\nfrom kalshi.rest._generated_models import (\n"
        + "".join(f"    {n},\n" for n in names)
        + ")\nfrom kalshi.rest._generated_ops import OPERATIONS\n"
        + ("from kalshi.rest._wire import join_csv\n" if "join_csv(" in body else "")
        + "\nif TYPE_CHECKING:\n    from kalshi.rest._async_client import AsyncKalshiClient",
        f"RESOURCE_NAMES: Final = ({resource_names})",
        body.rstrip(),
        "\n".join(holder),
    ]
    return "\n\n\n".join(parts) + "\n"
