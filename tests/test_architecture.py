"""The sans-I/O cores must stay free of I/O: tests feed them bytes, and they never block."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "kalshi"
FORBIDDEN = {"asyncio", "socket", "picows", "aiohttp", "httpx", "websockets", "selectors", "ssl"}
ENGINE = SRC / "sim" / "engine"
PURE_MODULES = [
    "ws/protocol.py",
    "ws/protocol_events.py",
    "ws/orderbook.py",
    "_fixed.py",
    *sorted(str(p.relative_to(SRC)) for p in ENGINE.glob("*.py")),
]
# The engine is the exchange's rules alone: nothing of the simulator's servers, nor of the client library.
ENGINE_MAY_IMPORT = ("kalshi.sim.engine", "kalshi._fixed", "kalshi.errors")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: use absolute imports"
            if node.module:
                modules.add(node.module)
    return modules


def imported_roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)}


@pytest.mark.parametrize("relative", PURE_MODULES)
def test_pure_module_imports_no_io(relative: str) -> None:
    path = SRC / relative
    assert path.exists(), f"{relative} is part of the design"
    assert not imported_roots(path) & FORBIDDEN


def test_engine_is_a_package_of_its_own() -> None:
    assert len(list(ENGINE.glob("*.py"))) > 5, "the engine modules live in kalshi/sim/engine/"
    strays = []
    for path in ENGINE.glob("*.py"):
        for name in imported_modules(path):
            if name.split(".")[0] == "kalshi" and not name.startswith(ENGINE_MAY_IMPORT):
                strays.append(f"{path.name} imports {name}")
    assert not strays, f"the engine imports only itself, kalshi._fixed and kalshi.errors: {strays}"


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


def test_the_simulator_engine_is_composed_not_mixed_in() -> None:
    import importlib
    import inspect

    from kalshi.sim.engine import Engine
    from kalshi.sim.engine.block_trades import BlockTradeDesk
    from kalshi.sim.engine.core import EngineCore
    from kalshi.sim.engine.groups import GroupDesk
    from kalshi.sim.engine.lifecycle import LifecycleDesk
    from kalshi.sim.engine.multivariate import ComboDesk
    from kalshi.sim.engine.off_book import OffBookDesk
    from kalshi.sim.engine.orders import OrderDesk
    from kalshi.sim.engine.rfq import RfqDesk
    from kalshi.sim.engine.subaccounts import SubaccountDesk

    inherited, mixins, reaching = [], [], []
    for path in sorted(ENGINE.glob("*.py")):
        module = importlib.import_module(f"kalshi.sim.engine.{path.stem}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            if name.endswith("Mixin"):
                mixins.append(f"{path.name}: {name}")
            inherited += [
                f"{name}({b.__name__})" for b in cls.__mro__[1:] if b.__module__.startswith("kalshi.sim.engine")
            ]
        # A desk calls the core's public primitives; `other._state` would be reaching into another object.
        reaching += [
            f"{path.name} line {node.lineno}: .{node.attr}"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
        ]
    assert not mixins, mixins
    assert not inherited, f"engine classes compose, they do not inherit from each other: {inherited}"
    assert not reaching, reaching
    assert Engine.__mro__ == (Engine, object)

    engine = Engine(clock_ms=lambda: 1_700_000_000_000)
    desks = {
        "order_desk": OrderDesk,
        "group_desk": GroupDesk,
        "lifecycle_desk": LifecycleDesk,
        "rfq_desk": RfqDesk,
        "block_trade_desk": BlockTradeDesk,
        "off_book": OffBookDesk,
        "subaccount_desk": SubaccountDesk,
        "combo_desk": ComboDesk,
    }
    for attribute, cls in desks.items():
        assert type(getattr(engine, attribute)) is cls, attribute
    assert isinstance(engine._core, EngineCore)
    # One core: every desk works on the same state and draws from the same id generator.
    assert all(getattr(engine, attribute)._core is engine._core for attribute in desks)
