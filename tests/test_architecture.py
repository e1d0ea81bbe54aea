"""The sans-I/O cores must stay free of I/O: tests feed them bytes, and they never block."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "kalshi"
FORBIDDEN = {"asyncio", "socket", "picows", "aiohttp", "httpx", "websockets", "selectors", "ssl"}
PURE_MODULES = ["ws/protocol.py", "ws/protocol_events.py", "ws/orderbook.py", "sim/engine.py", "_fixed.py"]


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("relative", PURE_MODULES)
def test_pure_module_imports_no_io(relative: str) -> None:
    path = SRC / relative
    assert path.exists(), f"{relative} is part of the design"
    assert not imported_roots(path) & FORBIDDEN


def test_detector_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import asyncio\nfrom aiohttp import web\n")
    assert imported_roots(sample) == {"asyncio", "aiohttp"}


def test_modules_stay_small() -> None:
    too_big = []
    for path in SRC.rglob("*.py"):
        if path.name.startswith("_generated"):
            continue
        lines = len(path.read_text().splitlines())
        if lines > 900:
            too_big.append(f"{path.relative_to(SRC)}: {lines}")
    assert not too_big, f"split these modules by responsibility: {too_big}"


WS_COLLABORATORS = ["client.py", "router.py", "books.py", "editing.py", "commands.py", "subscription.py", "flow.py"]


def test_the_streaming_client_is_composed_not_mixed_in() -> None:
    from kalshi.ws.client import KalshiWebSocket

    assert KalshiWebSocket.__mro__ == (KalshiWebSocket, object)
    assert "NotImplementedError" not in (SRC / "ws" / "channels.py").read_text()


@pytest.mark.parametrize("relative", WS_COLLABORATORS)
def test_no_collaborator_reaches_into_anothers_privates(relative: str) -> None:
    # Only self (or cls) may be followed by a private attribute: `other._state` is reaching in.
    tree = ast.parse((SRC / "ws" / relative).read_text())
    reaching = [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
    ]
    assert not reaching, reaching


def test_one_supervisor_and_one_channel_table() -> None:
    openmarkets_link = (SRC.parent / "openmarkets" / "link.py").read_text()
    assert "Supervisor(" in openmarkets_link and "backoff_delay" not in openmarkets_link
    assert "backoff_delay" not in (SRC / "ws" / "client.py").read_text()
    for relative in ("ws/subscription.py", "ws/router.py", "ws/editing.py"):
        text = (SRC / relative).read_text()
        assert '"event_lifecycle"' not in text and '"user_order"' not in text, relative  # types live in ws/codes.py
