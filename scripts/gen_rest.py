"""Generate the REST models, the operation table and the async resources from openapi.yaml.

Writes (all under src/kalshi/rest/):

- ``_generated_models.py``: one msgspec Struct per object schema of ``components.schemas``;
- ``_generated_ops.py``: ``OPERATIONS``, one :class:`kalshi.rest._model.Operation` per operation;
- ``_generated_resources.py``: the async resource classes (one per tag), one method per operation
  named after its operationId, and an ``iter_*`` method per cursor-paginated list.

The work is split by output: ``gen_rest_spec.py`` (reading the spec, naming rules and tables),
``gen_rest_models.py`` and ``gen_rest_resources.py``; this script writes the files.

The sync resources come from the async ones through ``scripts/gen_sync.py``. Run both after a spec
update::

    python scripts/gen_rest.py && python scripts/gen_sync.py

``--check`` compares instead of writing (exit status 1 on drift); the test suite does the same in memory.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the gen_rest_* modules beside this script

from gen_rest_models import decimal_accessors, render_models
from gen_rest_resources import render_resources, resource_for
from gen_rest_spec import (
    COMPAT_ALIASES,
    DEFAULT_COST,
    OUT_DIR,
    ROOT,
    Spec,
    body_schema,
    camel,
    deprecation_note,
    find_spec,
    needs_auth,
    op_cost,
    py_name,
    resource_of,
    snake,
)

# What the tests and gen_sync use from here.
__all__ = [
    "COMPAT_ALIASES",
    "Spec",
    "body_schema",
    "camel",
    "decimal_accessors",
    "find_spec",
    "main",
    "py_name",
    "render",
    "resource_for",
    "resource_of",
    "snake",
]


# ------------------------------------------------------------------------------------------- operations


def render_ops(spec: Spec) -> str:
    entries = []
    for entry in spec.operations():
        op = entry["op"]
        cost, per_item = op_cost(op)
        body = body_schema(spec, op)
        per_item_field = None
        if per_item and body:
            arrays = [k for k, v in body[1].get("properties", {}).items() if v.get("type") == "array"]
            per_item_field = arrays[0]
        fields = [
            f'operation_id="{op["operationId"]}"',
            f'method="{entry["method"]}"',
            f'path="{entry["path"]}"',
            f'tag="{op["tags"][0]}"',
            f"requires_auth={needs_auth(op)}",
            f"deprecated={bool(op.get('deprecated'))}",
            f'lane="{"read" if entry["method"] == "GET" else "write"}"',
            f"cost={cost}",
        ]
        if per_item_field:
            fields.append(f'cost_per_item="{per_item_field}"')
        if op.get("deprecated"):
            fields.append(f'note="{deprecation_note(op)}"')
        entries.append(f'    "{op["operationId"]}": Operation({", ".join(fields)}),')
    parts = [
        spec.header(),
        '"""Every operation of openapi.yaml: method, path, auth, deprecation, rate-limit lane and cost."""',
        "from __future__ import annotations\n\nfrom typing import Final\n\nfrom kalshi.rest._model import Operation",
        '__all__ = ["DEFAULT_COST", "OPERATIONS", "SPEC_VERSION"]',
        f'SPEC_VERSION: Final = "{spec.version}"\nDEFAULT_COST: Final = {DEFAULT_COST}\n'
        "OPERATIONS: Final[dict[str, Operation]] = {\n" + "\n".join(entries) + "\n}",
    ]
    return "\n\n\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------------------ output


def ruff_format(source: str, filename: Path) -> str:
    """The source with imports sorted and formatted by ruff, so the checked-in files stay lint-clean."""
    ruff = Path(sys.executable).parent / "ruff"
    exe = str(ruff) if ruff.exists() else "ruff"
    steps = (
        [
            exe,
            "check",
            "--select",
            "I,RUF022",
            "--fix",
            "--exit-zero",
            "--quiet",
            "--stdin-filename",
            str(filename),
            "-",
        ],
        [exe, "format", "--quiet", "--stdin-filename", str(filename), "-"],
    )
    for command in steps:
        done = subprocess.run(command, input=source, capture_output=True, text=True, cwd=ROOT, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:2])} failed on generated {filename.name}:\n{done.stderr}")
        source = done.stdout
    return source


def render(spec_path: Path | None = None) -> dict[Path, str]:
    """Every generated file (path -> formatted text), without touching the disk."""
    spec = Spec((spec_path or find_spec()).read_bytes())
    resources = render_resources(spec)
    models = render_models(spec)  # after resources: both may register inline structs
    files = {
        OUT_DIR / "_generated_models.py": models,
        OUT_DIR / "_generated_ops.py": render_ops(spec),
        OUT_DIR / "_generated_resources.py": resources,
    }
    return {path: ruff_format(text, path) for path, text in files.items()}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for path, text in render().items():
        current = path.read_text() if path.exists() else None
        if current != text:
            stale.append(path)
            if not check:
                path.write_text(text)
    for path in stale:
        print(f"{'stale' if check else 'wrote'} {path.relative_to(ROOT)}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
