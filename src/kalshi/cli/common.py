"""What every ``kalshi`` command shares: connection options, credentials, error reporting, stop signals.

Errors become one line on stderr and an exit status (the status is part of the interface):

====  ====================================================================================
1     runtime failure: host unreachable, connection lost for good, a write failed
2     usage: bad option, missing or unusable credentials, refused credentials (401/403)
130   interrupted (Ctrl-C before the command could stop cleanly)
====  ====================================================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, NoReturn, TypeVar
from urllib.parse import urlsplit

import typer
from rich.console import Console

from kalshi.auth import ENV_KEY_ID, ENV_PRIVATE_KEY, ENV_PRIVATE_KEY_PATH, KalshiAuth
from kalshi.config import KalshiConfig
from kalshi.errors import (
    KalshiAPIError,
    KalshiAuthError,
    KalshiConfigError,
    KalshiConnectionError,
    KalshiError,
    KalshiForbiddenError,
    KalshiHandshakeError,
    KalshiSubscriptionError,
    KalshiUnauthorizedError,
)
from kalshi.ws.client import KalshiWebSocket

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "ConnectOptions",
    "EnvOpt",
    "KeyIdOpt",
    "KeyPathOpt",
    "UrlOpt",
    "err_console",
    "fail",
    "out_console",
    "preflight",
    "resolve_auth",
    "resolve_config",
    "run",
    "server_reason",
    "split_values",
    "stop_on_signals",
    "wait_for_end",
]

T = TypeVar("T")

EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

ENVIRONMENTS: Final = ("prod", "demo", "local")

EnvOpt = Annotated[
    str,
    typer.Option(
        "--env",
        envvar="KALSHI_ENV",
        help="Exchange to use: prod, demo or local (a simulator on 127.0.0.1:8765).",
        show_default=True,
    ),
]
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="KALSHI_URL",
        help="Base URL of a simulator or replay server, e.g. http://127.0.0.1:8765 (overrides --env).",
    ),
]
KeyIdOpt = Annotated[
    str | None,
    typer.Option("--key-id", help=f"API key id (default: ${ENV_KEY_ID}).", show_default=False),
]
KeyPathOpt = Annotated[
    str | None,
    typer.Option("--key-path", help=f"Private key PEM file (default: ${ENV_PRIVATE_KEY_PATH}).", show_default=False),
]


def out_console() -> Console:
    """The console for a command's output (made per call: tests swap stdout)."""
    return Console(highlight=False, soft_wrap=False)


def err_console() -> Console:
    """The console for progress and errors."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``.

    Raises:
        typer.Exit: always.
    """
    err_console().print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def split_values(values: Sequence[str] | None) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]`` (options may be repeated or comma-separated)."""
    out: list[str] = []
    for value in values or ():
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return list(dict.fromkeys(out))


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """The connection options of a command, as given."""

    env: str = "prod"
    url: str | None = None
    key_id: str | None = None
    key_path: str | None = None


def resolve_config(options: ConnectOptions, **settings: Any) -> KalshiConfig:
    """The KalshiConfig for ``--env``/``--url``.

    Raises:
        typer.Exit: an unknown environment or a malformed URL (status 2).
    """
    env = options.env.lower()
    if not options.url and env not in (*ENVIRONMENTS, "production"):
        fail(f"unknown --env {options.env!r}: use prod, demo or local (or --url http://HOST:PORT)", EXIT_USAGE)
    try:
        return KalshiConfig.for_env(env, url=options.url, **settings)
    except KalshiConfigError as exc:
        fail(str(exc), EXIT_USAGE)


def resolve_auth(
    options: ConnectOptions,
    config: KalshiConfig,
    *,
    required: bool,
    environ: Mapping[str, str] | None = None,
) -> KalshiAuth | None:
    """Credentials from ``--key-id``/``--key-path``, else ``KALSHI_API_KEY_ID``/``KALSHI_PRIVATE_KEY_PATH``.

    Without any credential, a local target (simulator, replay) gets None (an unsigned connection);
    a real exchange fails when ``required`` (the WebSocket always needs them).

    Raises:
        typer.Exit: missing or unusable credentials (status 2); the message names what to set.
    """
    env = dict(os.environ if environ is None else environ)
    if options.key_id:
        env[ENV_KEY_ID] = options.key_id
    if options.key_path:
        env[ENV_PRIVATE_KEY_PATH] = options.key_path
        env.pop(ENV_PRIVATE_KEY, None)
    given = any(env.get(name, "").strip() for name in (ENV_KEY_ID, ENV_PRIVATE_KEY_PATH, ENV_PRIVATE_KEY))
    if not given:
        if config.environment in ("local", "custom") or not required:
            return None
        fail(
            f"missing credentials for {config.environment}: set {ENV_KEY_ID} and {ENV_PRIVATE_KEY_PATH} "
            "(or pass --key-id and --key-path); try `kalshi demo` or `--env local` to run without an account",
            EXIT_USAGE,
        )
    try:
        return KalshiAuth.from_env(env)
    except KalshiAuthError as exc:
        hint = "" if options.key_id or options.key_path else " (or pass --key-id and --key-path)"
        fail(f"{exc}{hint}", EXIT_USAGE)


async def preflight(config: KalshiConfig, *, rest: bool = False) -> None:
    """Open and close one TCP connection to the WebSocket (or REST) host, to fail fast with one clear line.

    (The clients retry a failed connect with backoff, ``ws_max_retries`` times for the WebSocket: right for a
    running recorder, too slow to report a typo.)

    Raises:
        KalshiConnectionError: the host cannot be resolved or reached within ``connect_timeout``.
    """
    parts = urlsplit(config.rest_url if rest else config.ws_url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    try:
        async with asyncio.timeout(config.connect_timeout):
            _reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        raise KalshiConnectionError(
            f"cannot reach {host}:{port}: no answer within {config.connect_timeout:g} s"
        ) from None
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else exc.strerror or str(exc) or type(exc).__name__
        if isinstance(exc, ConnectionRefusedError):
            reason += " (is the server running?)"
        raise KalshiConnectionError(f"cannot reach {host}:{port}: {reason}") from None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def server_reason(exc: BaseException) -> str | None:
    """The server's own reason for a refusal (``unknown_key: no key 'x' is registered``), when it gave one.

    REST errors carry ``code`` and ``message``; a refused WebSocket upgrade carries the response body, which
    the exchange (and the simulator) write as ``{"error": {"code": ..., "message": ...}}``.
    """
    if isinstance(exc, KalshiAPIError):
        parts = [part for part in (exc.code, exc.message) if part]
        return ": ".join(parts) or None
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    body = getattr(exc, "body", None)
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body if isinstance(body, str) else None
    if text is None:
        # The transport puts the body in the message: "... refused the WebSocket upgrade with HTTP 401 ({...})".
        match = _BODY_IN_MESSAGE.search(str(exc))
        text = match.group(1) if match else None
    if not text:
        return None
    try:
        decoded = json.loads(text)
    except ValueError:
        return text.strip() or None
    error = decoded.get("error", decoded) if isinstance(decoded, dict) else None
    if isinstance(error, dict):
        parts = [str(error[key]) for key in ("code", "message") if error.get(key)]
        return ": ".join(parts) or None
    return text.strip() or None


_BODY_IN_MESSAGE: Final = re.compile(r"with HTTP \d{3} \((.*?)\)(?:: |$)")


def _describe(exc: BaseException, config: KalshiConfig | None) -> tuple[str, int]:
    where = f" by {config.ws_url}" if config is not None else ""
    if isinstance(exc, KalshiHandshakeError) and exc.status in (401, 403):
        hint = (
            "start the simulator with --open, or pass the key it accepts (kalshi sim --write-demo-key DIR prints "
            f"the export lines for ${ENV_KEY_ID} and ${ENV_PRIVATE_KEY_PATH})"
            if config is not None and config.environment in ("local", "custom")
            else f"check --key-id/${ENV_KEY_ID}, the private key file and that your clock is right"
        )
        reason = server_reason(exc)
        said = f" - the server says {reason}" if reason else ""
        return f"credentials refused (HTTP {exc.status}){where}{said}; {hint}", EXIT_USAGE
    if isinstance(exc, KalshiUnauthorizedError | KalshiForbiddenError):
        return f"credentials refused ({exc}): check --key-id/${ENV_KEY_ID} and the private key", EXIT_USAGE
    if isinstance(exc, KalshiAuthError | KalshiConfigError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, KalshiConnectionError):
        return str(exc), EXIT_FAILURE
    if isinstance(exc, KalshiSubscriptionError | KalshiAPIError):
        return str(exc), EXIT_FAILURE
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return f"{exc.strerror or exc}: another server has the port; pass --port 0 for a free one", EXIT_FAILURE
    return f"{type(exc).__name__}: {exc}", EXIT_FAILURE


def run(main: Callable[[], Coroutine[Any, Any, T]], *, config: KalshiConfig | None = None) -> T:
    """Run a command's coroutine; library errors become one line and an exit status.

    Ctrl-C exits with status 130 (the shell convention for SIGINT), also when the command used it to stop
    cleanly (:func:`stop_on_signals`); SIGTERM is a requested stop and exits 0.

    Raises:
        typer.Exit: on any KalshiError (status 1 or 2) or an interrupt (130).
    """
    _received.clear()
    try:
        result = asyncio.run(main())
    except KeyboardInterrupt:
        err_console().print("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (KalshiError, OSError) as exc:
        message, code = _describe(exc, config)
        fail(message, code)
    if signal.SIGINT in _received:
        raise typer.Exit(EXIT_INTERRUPTED)
    return result


async def wait_for_end(
    session: KalshiWebSocket,
    stop: asyncio.Event,
    *,
    duration: float | None = None,
    every: Callable[[], None] | None = None,
    interval: float = 0.5,
) -> None:
    """Wait until ``stop`` is set, ``duration`` has passed or the session ends; call ``every`` meanwhile.

    Raises:
        KalshiConnectionError: the session ended because reconnecting gave up.
    """
    loop = asyncio.get_running_loop()
    deadline = None if duration is None else loop.time() + duration
    ended = asyncio.create_task(session.run_forever(), name="kalshi-cli-session")
    stopped = asyncio.create_task(stop.wait(), name="kalshi-cli-stop")
    try:
        while not stop.is_set() and not ended.done():
            wait = interval if deadline is None else min(interval, deadline - loop.time())
            if wait <= 0:
                break
            await asyncio.wait({ended, stopped}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if every is not None:
                every()
    finally:
        for task in (ended, stopped):
            if not task.done():
                task.cancel()
        await asyncio.gather(ended, stopped, return_exceptions=True)
    error = None if ended.cancelled() else ended.exception()
    if error is not None:
        raise error


# Signals that stopped the current command (read by run() for the exit status).
_received: list[signal.Signals] = []


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT and SIGTERM while the block runs (the command then stops cleanly).

    Must run inside the event loop, in the main thread; elsewhere (or on Windows) signals keep their
    default behaviour.
    """
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def received(sig: signal.Signals) -> None:
        _received.append(sig)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, received, sig)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def configure_logging(verbose: int) -> None:
    """Library logs on stderr: warnings by default, ``-v`` info, ``-vv`` debug.

    Leaves logging alone when the host program (a test runner, an embedding app) already configured it.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    # picows announces every connection at INFO; keep it for -vv.
    logging.getLogger("picows").setLevel(logging.DEBUG if verbose > 1 else max(level, logging.WARNING))
