"""Key loading and request signing for the Kalshi API.

Kalshi authenticates every REST request and every WebSocket handshake with three headers:

* ``KALSHI-ACCESS-KEY``: the API key id,
* ``KALSHI-ACCESS-TIMESTAMP``: the current time in epoch milliseconds,
* ``KALSHI-ACCESS-SIGNATURE``: base64 of a signature over ``{timestamp}{METHOD}{path}``, where ``path`` has no
  query string (``/trade-api/v2/portfolio/orders``, never ``...?limit=5``).

RSA keys sign with RSA-PSS (SHA-256, MGF1 SHA-256, salt length 32 = the digest length); Ed25519 keys sign with
Ed25519. This module is pure: no I/O beyond reading a key file, and the clock is injectable.

Errors never carry key material: cryptography exceptions are converted with ``raise ... from None`` so the
bytes that failed to parse cannot reach a traceback.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, Literal, TypeAlias
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from kalshi.errors import KalshiAuthError

__all__ = [
    "ENV_KEY_ID",
    "ENV_PRIVATE_KEY",
    "ENV_PRIVATE_KEY_PASSWORD",
    "ENV_PRIVATE_KEY_PATH",
    "HEADER_KEY",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "KalshiAuth",
    "SigningAlgorithm",
    "generate_private_key_pem",
    "load_public_key",
    "signing_message",
]

HEADER_KEY: Final = "KALSHI-ACCESS-KEY"
HEADER_TIMESTAMP: Final = "KALSHI-ACCESS-TIMESTAMP"
HEADER_SIGNATURE: Final = "KALSHI-ACCESS-SIGNATURE"

ENV_KEY_ID: Final = "KALSHI_API_KEY_ID"
ENV_PRIVATE_KEY_PATH: Final = "KALSHI_PRIVATE_KEY_PATH"
ENV_PRIVATE_KEY: Final = "KALSHI_PRIVATE_KEY"
ENV_PRIVATE_KEY_PASSWORD: Final = "KALSHI_PRIVATE_KEY_PASSWORD"

SigningAlgorithm: TypeAlias = Literal["rsa-pss", "ed25519"]
PrivateKey: TypeAlias = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ed25519.Ed25519PublicKey

# Built once: the padding object is immutable and reused for every signature.
PSS_PADDING: Final = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
_SHA256: Final = hashes.SHA256()

_FROM_FILE_HINT: Final = "to load a key from a file use KalshiAuth.from_key_path(key_id, path)"


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def signing_message(timestamp_ms: int, method: str, path: str) -> bytes:
    """Build the exact bytes Kalshi expects to be signed.

    Args:
        timestamp_ms: Epoch milliseconds, the value of ``KALSHI-ACCESS-TIMESTAMP``.
        method: HTTP method; upper-cased here (the WebSocket handshake is ``GET``).
        path: Request path, or a full URL of which only the path is used. Any query string or fragment is
            dropped, as the exchange signs the bare path.

    Returns:
        ``f"{timestamp_ms}{METHOD}{path}"`` encoded as UTF-8.

    Raises:
        KalshiAuthError: ``method`` is empty.
    """
    if not method:
        raise KalshiAuthError("cannot sign a request with an empty HTTP method; pass e.g. 'GET'")
    if "://" in path:
        path = urlsplit(path).path or "/"
    else:
        cut = path.find("?")
        if cut >= 0:
            path = path[:cut]
        cut = path.find("#")
        if cut >= 0:
            path = path[:cut]
    return f"{timestamp_ms}{method.upper()}{path}".encode()


def _describe_key(key: object) -> str:
    """Name a key's type for error messages (a type name is not key material)."""
    name = type(key).__name__.removeprefix("_")
    for suffix in ("PrivateKey", "PublicKey"):
        if name.endswith(suffix) and name != suffix:
            return name[: -len(suffix)] + " key"
    return name


def _as_bytes(pem: str | bytes, *, what: str) -> bytes:
    if isinstance(pem, str):
        text = pem.strip()
        # Keys pasted into .env files often carry literal "\n" sequences instead of newlines.
        if "\n" not in text and "\\n" in text:
            text = text.replace("\\n", "\n")
        return text.encode("utf-8", errors="replace")
    if isinstance(pem, bytes | bytearray | memoryview):
        return bytes(pem).strip()
    raise KalshiAuthError(f"{what} must be PEM text (str or bytes), not {type(pem).__name__}")


def _check_key_id(key_id: object) -> str:
    if not isinstance(key_id, str):
        raise KalshiAuthError(f"API key id must be a str, not {type(key_id).__name__}")
    stripped = key_id.strip()
    if not stripped:
        raise KalshiAuthError(
            "API key id is empty; pass the key id shown next to your key in Kalshi's Account Settings > API Keys"
        )
    if stripped != key_id or any(ch in key_id for ch in "\r\n\0"):
        raise KalshiAuthError("API key id contains whitespace or control characters; pass the id exactly as issued")
    return key_id


def _load_private_key(data: bytes, password: str | bytes | None) -> PrivateKey:
    """Parse a PEM (PKCS#8, PKCS#1 or OpenSSH) private key into an RSA or Ed25519 key object."""
    if not data.startswith(b"-----BEGIN "):
        hint = ""
        if b"\n" not in data and len(data) < 4096 and not data.startswith(b"MII"):
            hint = f"; if this is a file path, {_FROM_FILE_HINT}"
        raise KalshiAuthError(f"private key is not PEM: expected text starting with '-----BEGIN ...'{hint}")
    header = data.split(b"\n", 1)[0]
    if b"PRIVATE KEY" not in header:
        if b"PUBLIC KEY" in header or b"CERTIFICATE" in header:
            raise KalshiAuthError(
                "got a public key or certificate where the private key is needed; "
                "pass the private key file you saved when creating the API key"
            )
        raise KalshiAuthError("PEM block is not a private key; expected '-----BEGIN PRIVATE KEY-----'")
    pw = password.encode() if isinstance(password, str) else password
    encrypted = b"ENCRYPTED" in data[:200]
    try:
        if b"OPENSSH" in header:
            key: object = serialization.load_ssh_private_key(data, pw)
        else:
            key = serialization.load_pem_private_key(data, pw)
    except TypeError:
        # cryptography signals a password mismatch with TypeError; the message is ours, never the input's.
        if pw is None:
            raise KalshiAuthError(
                "private key is encrypted and no password was given; pass password=... "
                f"(or set {ENV_PRIVATE_KEY_PASSWORD})"
            ) from None
        raise KalshiAuthError("a password was given but the private key is not encrypted; pass password=None") from None
    except UnsupportedAlgorithm:
        if b"OPENSSH" in header and encrypted:
            raise KalshiAuthError(
                "encrypted OpenSSH keys need the optional 'bcrypt' package; install it, or convert the key with "
                "'ssh-keygen -p -m PKCS8 -f <file>'"
            ) from None
        raise KalshiAuthError("unsupported private key algorithm; use an RSA or Ed25519 key") from None
    except ValueError:
        if encrypted and pw is not None:
            raise KalshiAuthError("could not decrypt the private key: wrong password") from None
        raise KalshiAuthError(
            "could not parse the private key PEM (damaged, truncated or not a key); "
            "check that the whole file was copied, including the BEGIN and END lines"
        ) from None
    if isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        return key
    raise KalshiAuthError(f"unsupported key type {_describe_key(key)}; Kalshi accepts RSA and Ed25519 keys")


def load_public_key(pem: str | bytes) -> PublicKey:
    """Parse a PEM public key (SubjectPublicKeyInfo or PKCS#1 RSA) into an RSA or Ed25519 key object.

    Args:
        pem: The public key as PEM text.

    Returns:
        The RSA or Ed25519 public key.

    Raises:
        KalshiAuthError: Not PEM, not a public key, or an algorithm Kalshi does not use.
    """
    data = _as_bytes(pem, what="public key")
    if not data.startswith(b"-----BEGIN "):
        raise KalshiAuthError("public key is not PEM: expected text starting with '-----BEGIN PUBLIC KEY-----'")
    if b"PRIVATE KEY" in data.split(b"\n", 1)[0]:
        raise KalshiAuthError("got a private key where a public key is expected; pass the public key PEM")
    try:
        key: object = serialization.load_pem_public_key(data)
    except UnsupportedAlgorithm:
        raise KalshiAuthError("unsupported public key algorithm; use an RSA or Ed25519 key") from None
    except ValueError:
        raise KalshiAuthError("could not parse the public key PEM (damaged or not a public key)") from None
    if isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        return key
    raise KalshiAuthError(f"unsupported key type {_describe_key(key)}; Kalshi accepts RSA and Ed25519 keys")


class KalshiAuth:
    """Signs Kalshi requests with an API key id and its private key.

    Build one with :meth:`from_key_path`, :meth:`from_pem` or :meth:`from_env`; the constructor takes an already
    loaded ``cryptography`` key object. Instances are immutable and safe to share between clients.

    Example::

        auth = KalshiAuth.from_key_path("a952bcbe-...", "~/.kalshi/private_key.pem")
        headers = auth.headers("GET", "/trade-api/ws/v2")
    """

    __slots__ = ("_algorithm", "_clock", "_key", "_key_id")

    def __init__(
        self,
        key_id: str,
        private_key: PrivateKey,
        *,
        clock: Callable[[], int] | None = None,
    ) -> None:
        """Wrap a loaded private key.

        Args:
            key_id: The API key id issued with the key.
            private_key: An RSA or Ed25519 private key object from ``cryptography``.
            clock: Returns the current time in epoch milliseconds; defaults to the system clock. Tests inject
                a fixed clock to get reproducible headers.

        Raises:
            KalshiAuthError: Empty key id, or a key that is neither RSA nor Ed25519.
        """
        self._key_id = _check_key_id(key_id)
        if isinstance(private_key, rsa.RSAPrivateKey):
            self._algorithm: SigningAlgorithm = "rsa-pss"
        elif isinstance(private_key, ed25519.Ed25519PrivateKey):
            self._algorithm = "ed25519"
        else:
            raise KalshiAuthError(
                f"unsupported key type {_describe_key(private_key)}; Kalshi accepts RSA and Ed25519 private keys"
            )
        self._key: PrivateKey = private_key
        self._clock: Callable[[], int] = clock if clock is not None else _wall_clock_ms

    @classmethod
    def from_pem(
        cls,
        key_id: str,
        pem: str | bytes,
        password: str | bytes | None = None,
        *,
        clock: Callable[[], int] | None = None,
    ) -> KalshiAuth:
        """Load a private key from PEM text.

        Accepts PKCS#8 (``BEGIN PRIVATE KEY``), PKCS#1 (``BEGIN RSA PRIVATE KEY``) and unencrypted OpenSSH keys.
        A one-line string with literal ``\\n`` sequences (as pasted into ``.env`` files) is accepted too.

        Args:
            key_id: The API key id.
            pem: The private key as PEM text.
            password: Password of an encrypted key.
            clock: Epoch-millisecond clock, see :class:`KalshiAuth`.

        Returns:
            A ready signer.

        Raises:
            KalshiAuthError: Empty key id, text that is not a PEM private key, an encrypted key without
                password, a wrong password, or a key type other than RSA and Ed25519.
        """
        key_id = _check_key_id(key_id)
        key = _load_private_key(_as_bytes(pem, what="private key"), password)
        return cls(key_id, key, clock=clock)

    @classmethod
    def from_key_path(
        cls,
        key_id: str,
        path: str | os.PathLike[str],
        password: str | bytes | None = None,
        *,
        clock: Callable[[], int] | None = None,
    ) -> KalshiAuth:
        """Load a private key from a PEM file (``~`` is expanded).

        Args:
            key_id: The API key id.
            path: Path of the private key file.
            password: Password of an encrypted key.
            clock: Epoch-millisecond clock, see :class:`KalshiAuth`.

        Returns:
            A ready signer.

        Raises:
            KalshiAuthError: Empty key id, missing or unreadable file, or any problem of :meth:`from_pem`.
        """
        key_id = _check_key_id(key_id)
        file = Path(path).expanduser()
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise KalshiAuthError(
                f"private key file not found: {file}; pass the path of the .pem file saved when the key was created"
            ) from None
        except IsADirectoryError:
            raise KalshiAuthError(f"private key path is a directory, not a file: {file}") from None
        except PermissionError:
            raise KalshiAuthError(
                f"private key file is not readable: {file}; check its permissions (chmod 600, owned by you)"
            ) from None
        except OSError as exc:
            raise KalshiAuthError(f"could not read private key file {file}: {exc.strerror or exc}") from None
        if not data.strip():
            raise KalshiAuthError(f"private key file is empty: {file}")
        return cls(key_id, _load_private_key(data.strip(), password), clock=clock)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        clock: Callable[[], int] | None = None,
    ) -> KalshiAuth:
        """Load credentials from environment variables.

        ``KALSHI_API_KEY_ID`` names the key; exactly one of ``KALSHI_PRIVATE_KEY_PATH`` (a PEM file) or
        ``KALSHI_PRIVATE_KEY`` (the PEM text) supplies it. ``KALSHI_PRIVATE_KEY_PASSWORD`` is the optional
        password of an encrypted key.

        Args:
            environ: Mapping to read instead of ``os.environ``.
            clock: Epoch-millisecond clock, see :class:`KalshiAuth`.

        Returns:
            A ready signer.

        Raises:
            KalshiAuthError: A variable is missing (the message names the one to set), both key variables are
                set, or the key cannot be loaded.
        """
        env = os.environ if environ is None else environ
        key_id = env.get(ENV_KEY_ID, "").strip()
        if not key_id:
            raise KalshiAuthError(f"{ENV_KEY_ID} is not set; set it to your Kalshi API key id")
        key_path = env.get(ENV_PRIVATE_KEY_PATH, "").strip()
        key_text = env.get(ENV_PRIVATE_KEY, "").strip()
        password = env.get(ENV_PRIVATE_KEY_PASSWORD) or None
        if key_path and key_text:
            raise KalshiAuthError(
                f"both {ENV_PRIVATE_KEY_PATH} and {ENV_PRIVATE_KEY} are set; unset one of them "
                "so it is clear which key to use"
            )
        if key_path:
            return cls.from_key_path(key_id, key_path, password, clock=clock)
        if key_text:
            return cls.from_pem(key_id, key_text, password, clock=clock)
        raise KalshiAuthError(
            f"no private key in the environment; set {ENV_PRIVATE_KEY_PATH} to the key file, "
            f"or {ENV_PRIVATE_KEY} to its PEM text"
        )

    @property
    def key_id(self) -> str:
        """The API key id sent as ``KALSHI-ACCESS-KEY``."""
        return self._key_id

    @property
    def algorithm(self) -> SigningAlgorithm:
        """``"rsa-pss"`` for RSA keys, ``"ed25519"`` for Ed25519 keys."""
        return self._algorithm

    def now_ms(self) -> int:
        """Current time in epoch milliseconds from the injected clock."""
        return self._clock()

    def sign(self, timestamp_ms: int, method: str, path: str) -> str:
        """Sign one request.

        Args:
            timestamp_ms: Epoch milliseconds that will be sent as ``KALSHI-ACCESS-TIMESTAMP``.
            method: HTTP method (case-insensitive).
            path: Request path or full URL; the query string is not signed.

        Returns:
            The base64 signature for ``KALSHI-ACCESS-SIGNATURE``.

        Raises:
            KalshiAuthError: ``method`` is empty.
        """
        message = signing_message(timestamp_ms, method, path)
        key = self._key
        raw = key.sign(message, PSS_PADDING, _SHA256) if isinstance(key, rsa.RSAPrivateKey) else key.sign(message)
        return base64.b64encode(raw).decode("ascii")

    def headers(self, method: str, path: str, *, timestamp_ms: int | None = None) -> dict[str, str]:
        """Build the three ``KALSHI-ACCESS-*`` headers for one request.

        Args:
            method: HTTP method (case-insensitive); ``GET`` for the WebSocket handshake.
            path: Request path (e.g. ``/trade-api/ws/v2``) or full URL; the query string is not signed.
            timestamp_ms: Epoch milliseconds to sign; defaults to the injected clock.

        Returns:
            ``KALSHI-ACCESS-KEY``, ``KALSHI-ACCESS-TIMESTAMP`` and ``KALSHI-ACCESS-SIGNATURE``.

        Raises:
            KalshiAuthError: ``method`` is empty.
        """
        ts = self._clock() if timestamp_ms is None else timestamp_ms
        return {
            HEADER_KEY: self._key_id,
            HEADER_TIMESTAMP: str(ts),
            HEADER_SIGNATURE: self.sign(ts, method, path),
        }

    def public_key_pem(self) -> bytes:
        """The public half of the key as SubjectPublicKeyInfo PEM (what Kalshi stores for the key id)."""
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def __repr__(self) -> str:
        # The key id is not secret, but it is shortened so logs cannot be mined for full ids.
        shown = self._key_id if len(self._key_id) <= 12 else self._key_id[:8] + "…"
        return f"KalshiAuth(key_id={shown!r}, algorithm={self._algorithm!r})"

    def __copy__(self) -> KalshiAuth:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, object]) -> KalshiAuth:
        return self

    def __reduce__(self) -> str | tuple[object, ...]:
        # Pickling would write the private key to wherever the pickle goes; refuse rather than leak it.
        raise TypeError("KalshiAuth cannot be pickled; load the key again in the other process")


def generate_private_key_pem(kind: Literal["rsa", "ed25519"] = "ed25519") -> tuple[bytes, bytes]:
    """Create a new key pair, as the simulator's ``--write-demo-key`` does.

    Args:
        kind: ``"ed25519"`` (fast, small) or ``"rsa"`` (2048-bit, what Kalshi's web UI issues).

    Returns:
        ``(private_pem, public_pem)``: unencrypted PKCS#8 and SubjectPublicKeyInfo PEM.

    Raises:
        KalshiAuthError: ``kind`` is neither ``"rsa"`` nor ``"ed25519"``.
    """
    key: PrivateKey
    if kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise KalshiAuthError(f"unknown key kind {kind!r}; use 'rsa' or 'ed25519'")
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem
