"""The simulator's side of Kalshi authentication: registered public keys and signature checks.

:class:`KeyRegistry` verifies the three ``KALSHI-ACCESS-*`` headers the way the exchange does: the key id must be
registered, the timestamp must be close to the server clock, the signature must match
``{timestamp}{METHOD}{path}`` (no query string) under the registered public key, and a signature may not be
used twice while it is still fresh. Each failure raises :class:`SignatureRejected` with a machine-readable
``code`` (the server maps it to HTTP 401) and a message that says what to fix.

Demo keys for ``kalshi sim --write-demo-key DIR`` are written as ``DIR/<key_id>.key.pem`` (private, mode 0600)
and ``DIR/<key_id>.pub.pem`` (public); :func:`load_public_keys` finds the latter again.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi.auth import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    PSS_PADDING,
    KalshiAuth,
    PublicKey,
    generate_private_key_pem,
    load_public_key,
    signing_message,
)
from kalshi.errors import KalshiAuthError

__all__ = [
    "DEFAULT_WINDOW_MS",
    "PRIVATE_KEY_SUFFIX",
    "PUBLIC_KEY_SUFFIX",
    "KeyRegistry",
    "SignatureRejected",
    "load_public_keys",
    "write_demo_key",
]

DEFAULT_WINDOW_MS: Final = 30_000
PRIVATE_KEY_SUFFIX: Final = ".key.pem"
PUBLIC_KEY_SUFFIX: Final = ".pub.pem"

RejectCode = Literal["missing_header", "unknown_key", "bad_timestamp", "stale_timestamp", "bad_signature", "replayed"]

_SHA256: Final = hashes.SHA256()
_KEY_ID_FILE_SAFE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# 16 digits reach the year 318857: anything longer is not a millisecond timestamp.
_MAX_TIMESTAMP_DIGITS: Final = 16
_LOWER_KEY: Final = HEADER_KEY.lower()
_LOWER_TIMESTAMP: Final = HEADER_TIMESTAMP.lower()
_LOWER_SIGNATURE: Final = HEADER_SIGNATURE.lower()


class SignatureRejected(KalshiAuthError):
    """The simulator refused a request's ``KALSHI-ACCESS-*`` headers.

    Attributes:
        reason: What was wrong and what to do, without echoing the headers' values.
        code: One of ``missing_header``, ``unknown_key``, ``bad_timestamp``, ``stale_timestamp``,
            ``bad_signature``, ``replayed``.
    """

    def __init__(self, reason: str, *, code: RejectCode = "bad_signature") -> None:
        super().__init__(f"signature rejected: {reason}")
        self.reason = reason
        self.code: RejectCode = code


class KeyRegistry:
    """Public keys by key id, and the verification of signed requests.

    Replay protection remembers each accepted signature until its timestamp leaves the window, in a set
    bounded by ``max_remembered`` (oldest forgotten first). Note that Ed25519 signatures are deterministic: two
    identical requests signed in the same millisecond by one key carry the same signature, and the second is
    rejected as a replay, as a strict exchange would.
    """

    __slots__ = ("_accepted", "_expiry", "_keys", "_max_remembered", "_seen", "reject_replays", "window_ms")

    def __init__(
        self,
        *,
        window_ms: int = DEFAULT_WINDOW_MS,
        reject_replays: bool = True,
        max_remembered: int = 100_000,
    ) -> None:
        """Create an empty registry.

        Args:
            window_ms: Largest accepted distance between a request's timestamp and the server clock.
            reject_replays: Refuse a signature already accepted within the window.
            max_remembered: Bound on remembered signatures (memory cap under extreme request rates).

        Raises:
            ValueError: ``window_ms`` is negative or ``max_remembered`` is below 1.
        """
        if window_ms < 0:
            raise ValueError("window_ms must be >= 0")
        if max_remembered < 1:
            raise ValueError("max_remembered must be >= 1")
        self.window_ms = window_ms
        self.reject_replays = reject_replays
        self._max_remembered = max_remembered
        self._keys: dict[str, PublicKey] = {}
        self._seen: set[bytes] = set()
        # (timestamp_ms, acceptance number, signature) min-heap: signatures leave memory in timestamp order,
        # first accepted first among equal timestamps.
        self._expiry: list[tuple[int, int, bytes]] = []
        self._accepted = 0

    def register(self, key_id: str, public_pem: str | bytes) -> None:
        """Accept requests signed by ``public_pem``'s private key under ``key_id`` (replacing any earlier key).

        Args:
            key_id: The API key id clients will send.
            public_pem: The public key as PEM (RSA or Ed25519).

        Raises:
            KalshiAuthError: Empty key id or an unusable public key.
        """
        if not key_id or key_id.strip() != key_id:
            raise KalshiAuthError("key id must be non-empty, without surrounding whitespace")
        self._keys[key_id] = load_public_key(public_pem)

    def register_auth(self, auth: KalshiAuth) -> None:
        """Register the public half of a client's key under its key id.

        Args:
            auth: The client's signer.

        Raises:
            KalshiAuthError: Never in practice (the key was already validated by ``KalshiAuth``).
        """
        self.register(auth.key_id, auth.public_key_pem())

    def load_directory(self, directory: str | os.PathLike[str]) -> list[str]:
        """Register every ``<key_id>.pub.pem`` found in ``directory``.

        Args:
            directory: Folder holding public keys, e.g. one written by :func:`write_demo_key`.

        Returns:
            The key ids registered, sorted.

        Raises:
            KalshiAuthError: The folder is missing, or one of its public keys is unusable.
        """
        found = load_public_keys(directory)
        for key_id, pem in found.items():
            self.register(key_id, pem)
        return sorted(found)

    def unregister(self, key_id: str) -> None:
        """Forget a key id (later requests with it are rejected as unknown); unknown ids are ignored."""
        self._keys.pop(key_id, None)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRegistry(keys={len(self._keys)}, window_ms={self.window_ms})"

    def verify(self, headers: Mapping[str, str], method: str, path: str, *, now_ms: int) -> str:
        """Check a request's signature headers as the exchange would.

        Args:
            headers: Request headers; names are matched case-insensitively.
            method: The request's HTTP method (``GET`` for a WebSocket upgrade).
            path: The request path (a query string is ignored, as in signing).
            now_ms: The server clock in epoch milliseconds.

        Returns:
            The authenticated key id.

        Raises:
            SignatureRejected: A header is missing, the key id is unknown, the timestamp is malformed or outside
                the window, the signature does not verify, or it was already used.
        """
        key_id, timestamp, signature = _pick_headers(headers)
        missing = [
            name
            for name, value in ((HEADER_KEY, key_id), (HEADER_TIMESTAMP, timestamp), (HEADER_SIGNATURE, signature))
            if not value
        ]
        if missing or key_id is None or timestamp is None or signature is None:
            raise SignatureRejected(
                f"missing header(s) {', '.join(missing)}; sign the request with KalshiAuth.headers()",
                code="missing_header",
            )
        public_key = self._keys.get(key_id)
        if public_key is None:
            raise SignatureRejected(
                "unknown API key id; register its public key with the simulator (a key directory or KeyRegistry.register)",
                code="unknown_key",
            )
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _MAX_TIMESTAMP_DIGITS):
            raise SignatureRejected(
                f"{HEADER_TIMESTAMP} must be the epoch time in milliseconds as decimal digits",
                code="bad_timestamp",
            )
        ts = int(timestamp)
        skew = ts - now_ms
        if abs(skew) > self.window_ms:
            direction = "ahead of" if skew > 0 else "behind"
            raise SignatureRejected(
                f"timestamp is {abs(skew)} ms {direction} the server clock (allowed ±{self.window_ms} ms); "
                "sync your clock and sign each request just before sending it",
                code="stale_timestamp",
            )
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureRejected(f"{HEADER_SIGNATURE} is not valid base64", code="bad_signature") from None
        if self.reject_replays:
            self._forget_expired(now_ms)
            if raw in self._seen:
                raise SignatureRejected(
                    "this signature was already used; sign every request anew with a fresh timestamp",
                    code="replayed",
                )
        message = signing_message(ts, method, path)
        try:
            if isinstance(public_key, rsa.RSAPublicKey):
                public_key.verify(raw, message, PSS_PADDING, _SHA256)
            else:
                public_key.verify(raw, message)
        except InvalidSignature:
            raise SignatureRejected(
                "signature does not match; sign f'{timestamp}{METHOD}{path}' with the path but no query string, "
                "using the private key of this key id (RSA: PSS, SHA-256, salt length 32)",
                code="bad_signature",
            ) from None
        if self.reject_replays:
            self._remember(ts, raw)
        return key_id

    def _forget_expired(self, now_ms: int) -> None:
        expiry = self._expiry
        horizon = now_ms - self.window_ms
        while expiry and expiry[0][0] < horizon:
            _, _, old = heapq.heappop(expiry)
            self._seen.discard(old)

    def _remember(self, ts: int, raw: bytes) -> None:
        if len(self._expiry) >= self._max_remembered:
            _, _, old = heapq.heappop(self._expiry)
            self._seen.discard(old)
        self._seen.add(raw)
        self._accepted += 1
        heapq.heappush(self._expiry, (ts, self._accepted, raw))


def _pick_headers(headers: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
    """Find the three auth headers whatever their case (plain dicts are case-sensitive; HTTP is not)."""
    key_id = headers.get(HEADER_KEY)
    timestamp = headers.get(HEADER_TIMESTAMP)
    signature = headers.get(HEADER_SIGNATURE)
    if key_id is None or timestamp is None or signature is None:
        for name, value in headers.items():
            lowered = name.lower()
            if lowered == _LOWER_KEY:
                key_id = value
            elif lowered == _LOWER_TIMESTAMP:
                timestamp = value
            elif lowered == _LOWER_SIGNATURE:
                signature = value
    return key_id, timestamp, signature


def _check_file_key_id(key_id: str) -> None:
    if not _KEY_ID_FILE_SAFE.fullmatch(key_id):
        raise KalshiAuthError(
            "a key id used as a file name must be 1-128 characters of letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def write_demo_key(
    directory: str | os.PathLike[str],
    key_id: str = "sim-demo-key",
    *,
    kind: Literal["rsa", "ed25519"] = "ed25519",
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Create a key pair for the simulator and write it as PEM files.

    The private key goes to ``<directory>/<key_id>.key.pem`` with mode 0600, the public key to
    ``<directory>/<key_id>.pub.pem``. The directory is created if needed.

    Args:
        directory: Where to write the files.
        key_id: The key id clients will send; also the files' base name.
        kind: ``"ed25519"`` or ``"rsa"``.
        overwrite: Replace existing files of the same key id.

    Returns:
        ``(private_path, public_path)``.

    Raises:
        KalshiAuthError: The key id is not usable as a file name, the files exist and ``overwrite`` is false,
            or the files cannot be written.
    """
    _check_file_key_id(key_id)
    folder = Path(directory).expanduser()
    private_path = folder / f"{key_id}{PRIVATE_KEY_SUFFIX}"
    public_path = folder / f"{key_id}{PUBLIC_KEY_SUFFIX}"
    if not overwrite and (private_path.exists() or public_path.exists()):
        raise KalshiAuthError(f"a key named {key_id!r} already exists in {folder}; pass overwrite=True or delete it")
    private_pem, public_pem = generate_private_key_pem(kind)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Created with 0600 from the start, so the key is never readable by others, not even briefly.
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_pem)
        os.chmod(private_path, 0o600)  # an overwritten file keeps its old mode otherwise
        public_path.write_bytes(public_pem)
    except OSError as exc:
        raise KalshiAuthError(f"could not write the demo key to {folder}: {exc.strerror or exc}") from None
    return private_path, public_path


def load_public_keys(directory: str | os.PathLike[str]) -> dict[str, bytes]:
    """Read every ``<key_id>.pub.pem`` in a directory.

    Args:
        directory: Folder to scan (not recursive).

    Returns:
        Public key PEM by key id, checked to be a usable RSA or Ed25519 public key.

    Raises:
        KalshiAuthError: The folder does not exist, or a file is unreadable or not a usable public key (the
            message names the file).
    """
    folder = Path(directory).expanduser()
    if not folder.is_dir():
        raise KalshiAuthError(f"key directory not found: {folder}; create it with 'kalshi sim --write-demo-key'")
    keys: dict[str, bytes] = {}
    for file in sorted(folder.glob(f"*{PUBLIC_KEY_SUFFIX}")):
        key_id = file.name[: -len(PUBLIC_KEY_SUFFIX)]
        try:
            pem = file.read_bytes()
            load_public_key(pem)
        except OSError as exc:
            raise KalshiAuthError(f"could not read public key file {file}: {exc.strerror or exc}") from None
        except KalshiAuthError as exc:
            raise KalshiAuthError(f"{file}: {exc}") from None
        if key_id:
            keys[key_id] = pem
    return keys
