"""Packaging: metadata, one version, the extras, ``python -m kalshi``, and a client library that needs no extra."""

from __future__ import annotations

import importlib.metadata
import inspect
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import kalshi
import kalshi.errors

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT: dict[str, Any] = PYPROJECT["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]


def names(requirements: list[str]) -> set[str]:
    out = set()
    for requirement in requirements:
        name = requirement.split(";")[0].split("[")[0]
        for sep in (">", "<", "=", "!", "~", " "):
            name = name.split(sep)[0]
        out.add(name.strip().lower())
    return out


def test_metadata_is_complete() -> None:
    assert PROJECT["license"] == "MIT"
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in license_text
    assert PROJECT["license-files"] == ["LICENSE"]
    assert PROJECT["authors"] and PROJECT["keywords"]
    assert {"Homepage", "Documentation", "Repository", "Issues"} <= set(PROJECT["urls"])
    assert "Programming Language :: Python :: 3.11" in PROJECT["classifiers"]
    assert "Typing :: Typed" in PROJECT["classifiers"]
    assert PROJECT["requires-python"] == ">=3.11"


def test_the_version_is_written_once() -> None:
    assert "version" not in PROJECT and PROJECT["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "kalshi.__version__"}
    assert importlib.metadata.version("kalshi-kit") == kalshi.__version__
    sources = [p for p in (ROOT / "src").rglob("*.py") if f'"{kalshi.__version__}"' in p.read_text()]
    assert sources == [ROOT / "src" / "kalshi" / "__init__.py"]


def test_the_client_library_needs_what_a_bot_needs() -> None:
    # sniffio is httpx's own (optional) helper: without it every async request pays a failing import.
    assert names(PROJECT["dependencies"]) == {"msgspec", "picows", "httpx", "sniffio", "cryptography"}
    assert names(EXTRAS["sim"]) == {"aiohttp"}
    assert names(EXTRAS["record"]) == {"pyarrow"}
    assert {"typer", "rich"} <= names(EXTRAS["cli"]) and "kalshi-kit[sim,record]" in EXTRAS["cli"]
    assert {"mkdocs-material", "mkdocstrings"} <= names(EXTRAS["docs"])
    assert names(EXTRAS["relay"]) == {"redis", "hiredis"}
    assert "plotly" in names(EXTRAS["backtest"]) and "kalshi-kit[record]" in EXTRAS["backtest"]
    # The test command needs the command line, the docs build, the relay, backtests and the test tools.
    assert "kalshi-kit[cli,docs,backtest,relay]" in EXTRAS["test"]
    assert {"pytest", "pytest-asyncio", "hypothesis", "ruff", "mypy"} <= names(EXTRAS["test"])
    assert PROJECT["scripts"] == {"kalshi": "kalshi.cli:main"}
    assert PROJECT["entry-points"]["pytest11"] == {"kalshi": "kalshi.testing"}


def test_the_library_imports_without_the_extras() -> None:
    """A bot installs kalshi-kit alone: streaming, REST, portfolio, openmarkets and the pytest plugin import."""
    script = (
        "import sys\n"
        "for name in ('aiohttp', 'pyarrow', 'typer', 'rich', 'click'):\n"
        "    sys.modules[name] = None\n"
        "import kalshi, kalshi.ws, kalshi.rest, kalshi.portfolio, kalshi.testing, openmarkets\n"
        "from kalshi import KalshiWebSocket, KalshiConfig, AsyncKalshiClient\n"
        "KalshiWebSocket(None, KalshiConfig.demo())\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_python_dash_m_kalshi_is_the_command() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "kalshi", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert version.returncode == 0 and version.stdout.strip() == f"kalshi-kit {kalshi.__version__}"
    usage = subprocess.run(
        [sys.executable, "-m", "kalshi", "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert usage.returncode == 0 and "Usage: kalshi" in usage.stdout


def test_help_kalshi_speaks_to_users() -> None:
    doc = inspect.getdoc(kalshi)
    assert doc is not None
    opening = doc.split("\n\n")[0]
    assert opening.startswith("kalshi-kit:") and "Kalshi exchange" in opening
    assert "__all__" not in opening and "locks" not in opening  # what it is for, not how it is tested
    assert "pip install 'kalshi-kit[cli]'" in doc and "KalshiWebSocket" in doc


def test_every_error_class_is_exported_at_the_top() -> None:
    raised = {
        name
        for name, obj in vars(kalshi.errors).items()
        if inspect.isclass(obj) and issubclass(obj, kalshi.errors.KalshiError)
    }
    assert raised <= set(kalshi.__all__)
    assert {"KalshiNotFoundError", "KalshiBadRequestError", "KalshiPaginationError"} <= set(kalshi.__all__)
    for name in raised:
        assert getattr(kalshi, name) is getattr(kalshi.errors, name)


def test_the_docs_site_stands_on_its_own() -> None:
    """Every page of the nav exists, and no page points outside the repository."""
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    pages: list[str] = []

    def walk(entries: Any) -> None:
        for entry in entries:
            value = next(iter(entry.values())) if isinstance(entry, dict) else entry
            if isinstance(value, list):
                walk(value)
            else:
                pages.append(value)

    walk(config["nav"])
    docs = ROOT / "docs"
    assert {"index.md", "quickstart.md", "architecture.md", "reference/index.md"} <= set(pages)
    for page in pages:
        assert (docs / page).is_file(), page
    for path in docs.rglob("*.md"):
        text = path.read_text()
        assert "../shared" not in text and "DESIGN.md" not in text, path
