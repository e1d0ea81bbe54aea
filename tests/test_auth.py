"""Tests for kalshi.auth: key loading, signing and the errors of bad input."""

from __future__ import annotations

import base64
import copy
import pickle
import re
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa

from kalshi.auth import (
    HEADER_KEY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    KalshiAuth,
    generate_private_key_pem,
    load_public_key,
    signing_message,
)
from kalshi.errors import KalshiAuthError, KalshiError

KEY_ID = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"
TS = 1_700_000_000_123

PKCS8 = serialization.PrivateFormat.PKCS8
TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL
NO_ENC = serialization.NoEncryption()


def pem_of(key: object, fmt: serialization.PrivateFormat = PKCS8, password: bytes | None = None) -> bytes:
    enc = serialization.BestAvailableEncryption(password) if password else NO_ENC
    return key.private_bytes(serialization.Encoding.PEM, fmt, enc)  # type: ignore[attr-defined, no-any-return]


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def fixed_clock(value: int = TS) -> Callable[[], int]:
    return lambda: value


def body_fragments(pem: bytes) -> list[str]:
    """Chunks of a PEM's base64 body: none may appear in any error message or traceback."""
    lines = pem.decode("latin-1").splitlines()
    body = "".join(line for line in lines if line and not line.startswith("-----") and ":" not in line)
    if len(body) < 12:
        return [body] if body else []
    return [body[i : i + 12] for i in range(0, len(body) - 11, 12)]


def assert_no_key_material(exc: BaseException, pem: bytes) -> None:
    message = str(exc)
    assert "-----BEGIN" not in message or "expected" in message  # may name the armour it wants, never echo it
    assert "\n" not in message
    # The whole printed traceback (message, causes, contexts) holds no piece of the key.
    text = "".join(traceback.format_exception(exc))
    for fragment in body_fragments(pem):
        assert fragment not in text
    # Converted with "from None": no cryptography exception rides along as cause or context.
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__


# -- signing -------------------------------------------------------------------------------------------------


def test_rsa_headers_verify_with_pss_sha256_digest_length_salt(rsa_key: rsa.RSAPrivateKey) -> None:
    auth = KalshiAuth.from_pem(KEY_ID, pem_of(rsa_key), clock=fixed_clock())
    headers = auth.headers("GET", "/trade-api/ws/v2")
    assert set(headers) == {HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE}
    assert headers[HEADER_KEY] == KEY_ID
    assert headers[HEADER_TIMESTAMP] == str(TS)
    signature = base64.b64decode(headers[HEADER_SIGNATURE], validate=True)
    message = f"{TS}GET/trade-api/ws/v2".encode()
    exact_salt = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    rsa_key.public_key().verify(signature, message, exact_salt, hashes.SHA256())
    assert auth.algorithm == "rsa-pss"


def test_rsa_salt_length_is_exactly_the_digest_length(rsa_key: rsa.RSAPrivateKey) -> None:
    auth = KalshiAuth(KEY_ID, rsa_key, clock=fixed_clock())
    signature = base64.b64decode(auth.headers("POST", "/x")[HEADER_SIGNATURE])
    for other in (20, 64):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=other)
        with pytest.raises(InvalidSignature):
            rsa_key.public_key().verify(signature, f"{TS}POST/x".encode(), pss, hashes.SHA256())


def test_rsa_pss_signatures_are_randomised(rsa_key: rsa.RSAPrivateKey) -> None:
    auth = KalshiAuth(KEY_ID, rsa_key, clock=fixed_clock())
    assert auth.sign(TS, "GET", "/a") != auth.sign(TS, "GET", "/a")


def test_ed25519_headers_verify(ed_key: ed25519.Ed25519PrivateKey) -> None:
    auth = KalshiAuth.from_pem(KEY_ID, pem_of(ed_key), clock=fixed_clock())
    assert auth.algorithm == "ed25519"
    headers = auth.headers("delete", "/trade-api/v2/portfolio/orders/abc")
    signature = base64.b64decode(headers[HEADER_SIGNATURE], validate=True)
    ed_key.public_key().verify(signature, f"{TS}DELETE/trade-api/v2/portfolio/orders/abc".encode())


@pytest.mark.parametrize(
    ("path", "signed_path"),
    [
        ("/trade-api/v2/portfolio/orders?limit=5", "/trade-api/v2/portfolio/orders"),
        ("/trade-api/v2/markets?cursor=a?b&x=1", "/trade-api/v2/markets"),
        ("/p#frag", "/p"),
        ("wss://api.elections.kalshi.com/trade-api/ws/v2?x=1", "/trade-api/ws/v2"),
        ("https://demo-api.kalshi.co/trade-api/v2/markets", "/trade-api/v2/markets"),
        ("http://127.0.0.1:8000", "/"),
    ],
)
def test_query_string_and_origin_are_not_signed(ed_key: ed25519.Ed25519PrivateKey, path: str, signed_path: str) -> None:
    auth = KalshiAuth(KEY_ID, ed_key, clock=fixed_clock())
    signature = base64.b64decode(auth.headers("get", path)[HEADER_SIGNATURE])
    ed_key.public_key().verify(signature, f"{TS}GET{signed_path}".encode())
    assert signing_message(TS, "get", path) == f"{TS}GET{signed_path}".encode()


def test_clock_is_injected_and_explicit_timestamp_wins(ed_key: ed25519.Ed25519PrivateKey) -> None:
    ticks = iter([5, 6])
    auth = KalshiAuth(KEY_ID, ed_key, clock=lambda: next(ticks))
    assert auth.headers("GET", "/a")[HEADER_TIMESTAMP] == "5"
    assert auth.now_ms() == 6
    assert auth.headers("GET", "/a", timestamp_ms=42)[HEADER_TIMESTAMP] == "42"


def test_default_clock_is_epoch_milliseconds(ed_key: ed25519.Ed25519PrivateKey) -> None:
    import time

    before = time.time_ns() // 1_000_000
    stamp = int(KalshiAuth(KEY_ID, ed_key).headers("GET", "/")[HEADER_TIMESTAMP])
    after = time.time_ns() // 1_000_000
    assert before <= stamp <= after


def test_empty_method_is_refused(ed_key: ed25519.Ed25519PrivateKey) -> None:
    with pytest.raises(KalshiAuthError, match="empty HTTP method"):
        KalshiAuth(KEY_ID, ed_key).headers("", "/a")


# -- loading -------------------------------------------------------------------------------------------------


def test_from_key_path_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ed_key: object) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".kalshi").mkdir()
    (tmp_path / ".kalshi" / "key.pem").write_bytes(pem_of(ed_key))
    auth = KalshiAuth.from_key_path(KEY_ID, "~/.kalshi/key.pem", clock=fixed_clock())
    assert auth.key_id == KEY_ID
    assert auth.public_key_pem() == ed_key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_traditional_rsa_and_encrypted_keys_load(rsa_key: rsa.RSAPrivateKey) -> None:
    assert KalshiAuth.from_pem(KEY_ID, pem_of(rsa_key, TRADITIONAL)).algorithm == "rsa-pss"
    encrypted = pem_of(rsa_key, PKCS8, b"s3cret")
    assert KalshiAuth.from_pem(KEY_ID, encrypted, "s3cret").algorithm == "rsa-pss"
    assert KalshiAuth.from_pem(KEY_ID, encrypted, b"s3cret").algorithm == "rsa-pss"


def test_str_pem_with_literal_backslash_n_loads(ed_key: ed25519.Ed25519PrivateKey) -> None:
    one_line = pem_of(ed_key).decode().strip().replace("\n", "\\n")
    assert "\n" not in one_line
    assert KalshiAuth.from_pem(KEY_ID, one_line).algorithm == "ed25519"


def test_openssh_ed25519_key_loads(ed_key: ed25519.Ed25519PrivateKey) -> None:
    openssh = pem_of(ed_key, serialization.PrivateFormat.OpenSSH)
    auth = KalshiAuth.from_pem(KEY_ID, openssh, clock=fixed_clock())
    signature = base64.b64decode(auth.headers("GET", "/a")[HEADER_SIGNATURE])
    ed_key.public_key().verify(signature, f"{TS}GET/a".encode())


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_generate_private_key_pem(kind: str) -> None:
    private_pem, public_pem = generate_private_key_pem(kind)  # type: ignore[arg-type]
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    auth = KalshiAuth.from_pem("k", private_pem, clock=fixed_clock())
    assert auth.algorithm == ("rsa-pss" if kind == "rsa" else "ed25519")
    assert auth.public_key_pem() == public_pem
    public = load_public_key(public_pem)
    signature = base64.b64decode(auth.headers("GET", "/a")[HEADER_SIGNATURE])
    if isinstance(public, rsa.RSAPublicKey):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        public.verify(signature, f"{TS}GET/a".encode(), pss, hashes.SHA256())
    else:
        public.verify(signature, f"{TS}GET/a".encode())


def test_generate_unknown_kind() -> None:
    with pytest.raises(KalshiAuthError, match="unknown key kind"):
        generate_private_key_pem("dsa")  # type: ignore[arg-type]


# -- bad input -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_pems(rsa_key: rsa.RSAPrivateKey) -> dict[str, tuple[bytes, bytes | None, str]]:
    """name -> (pem, password, expected message fragment)."""
    good = pem_of(rsa_key)
    lines = good.splitlines()
    ec_key = ec.generate_private_key(ec.SECP256R1())
    return {
        "encrypted_pkcs8_no_password": (pem_of(rsa_key, PKCS8, b"pw"), None, "encrypted and no password"),
        "encrypted_traditional_no_password": (pem_of(rsa_key, TRADITIONAL, b"pw"), None, "encrypted and no password"),
        "wrong_password_pkcs8": (pem_of(rsa_key, PKCS8, b"pw"), b"nope", "wrong password"),
        "wrong_password_traditional": (pem_of(rsa_key, TRADITIONAL, b"pw"), b"nope", "wrong password"),
        "password_for_plain_key": (good, b"pw", "not encrypted"),
        "truncated": (b"\n".join([*lines[:6], lines[-1]]), None, "could not parse"),
        "damaged_body": (good.replace(lines[3], b"!!!!" + lines[3][4:]), None, "could not parse"),
        "ec_key": (pem_of(ec_key), None, "unsupported key type EC"),
        "ec_key_traditional": (pem_of(ec_key, TRADITIONAL), None, "unsupported key type EC"),
        "dsa_key": (pem_of(dsa.generate_private_key(2048)), None, "unsupported key type DSA"),
        "ed448_key": (pem_of(ed448.Ed448PrivateKey.generate()), None, "unsupported key type Ed448"),
        "public_key": (
            rsa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            None,
            "public key or certificate",
        ),
        "not_pem_text": (b"this is not a key at all", None, "not PEM"),
        "der_bytes": (rsa_key.private_bytes(serialization.Encoding.DER, PKCS8, NO_ENC), None, "not PEM"),
        "base64_without_armour": (b"\n".join(lines[1:-1]), None, "not PEM"),
        "other_pem_block": (b"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", None, "not a private key"),
    }


BAD_PEM_CASES = [
    "encrypted_pkcs8_no_password",
    "encrypted_traditional_no_password",
    "wrong_password_pkcs8",
    "wrong_password_traditional",
    "password_for_plain_key",
    "truncated",
    "damaged_body",
    "ec_key",
    "ec_key_traditional",
    "dsa_key",
    "ed448_key",
    "public_key",
    "not_pem_text",
    "der_bytes",
    "base64_without_armour",
    "other_pem_block",
]


@pytest.mark.parametrize("case", BAD_PEM_CASES)
def test_bad_pem_raises_named_error_without_key_material(
    case: str, bad_pems: dict[str, tuple[bytes, bytes | None, str]], tmp_path: Path
) -> None:
    pem, password, expected = bad_pems[case]
    with pytest.raises(KalshiAuthError, match=re.escape(expected)) as from_pem:
        KalshiAuth.from_pem(KEY_ID, pem, password)
    assert_no_key_material(from_pem.value, pem)
    # The same problems surface identically through a file.
    path = tmp_path / "key.pem"
    path.write_bytes(pem)
    with pytest.raises(KalshiAuthError, match=re.escape(expected)) as from_file:
        KalshiAuth.from_key_path(KEY_ID, path, password)
    assert_no_key_material(from_file.value, pem)


def test_path_passed_as_pem_gets_a_hint() -> None:
    with pytest.raises(KalshiAuthError, match="from_key_path"):
        KalshiAuth.from_pem(KEY_ID, "~/.kalshi/private_key.pem")


def test_pem_of_wrong_type() -> None:
    with pytest.raises(KalshiAuthError, match="must be PEM text"):
        KalshiAuth.from_pem(KEY_ID, 12345)  # type: ignore[arg-type]


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(KalshiAuthError, match="not found") as info:
        KalshiAuth.from_key_path(KEY_ID, missing)
    assert str(missing) in str(info.value)
    assert info.value.__cause__ is None


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(KalshiAuthError, match="is a directory"):
        KalshiAuth.from_key_path(KEY_ID, tmp_path)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ed_key: object) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(pem_of(ed_key))

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    # chmod 000 does not stop root, so the refusal is simulated at the read.
    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(KalshiAuthError, match="not readable"):
        KalshiAuth.from_key_path(KEY_ID, path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(b"  \n")
    with pytest.raises(KalshiAuthError, match="empty"):
        KalshiAuth.from_key_path(KEY_ID, path)


@pytest.mark.parametrize("key_id", ["", "   ", " padded", "line\nbreak"])
def test_bad_key_id(key_id: str, ed_key: ed25519.Ed25519PrivateKey, tmp_path: Path) -> None:
    pem = pem_of(ed_key)
    with pytest.raises(KalshiAuthError, match="key id"):
        KalshiAuth.from_pem(key_id, pem)
    with pytest.raises(KalshiAuthError, match="key id"):
        KalshiAuth(key_id, ed_key)
    # The key id is checked before the file is touched.
    with pytest.raises(KalshiAuthError, match="key id"):
        KalshiAuth.from_key_path(key_id, tmp_path / "missing.pem")


def test_key_id_of_wrong_type(ed_key: ed25519.Ed25519PrivateKey) -> None:
    with pytest.raises(KalshiAuthError, match="must be a str"):
        KalshiAuth(None, ed_key)  # type: ignore[arg-type]


def test_constructor_refuses_other_key_objects() -> None:
    with pytest.raises(KalshiAuthError, match="unsupported key type EC"):
        KalshiAuth(KEY_ID, ec.generate_private_key(ec.SECP256R1()))  # type: ignore[arg-type]


def test_auth_error_is_a_kalshi_error() -> None:
    assert issubclass(KalshiAuthError, KalshiError)


# -- no leaks ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_repr_shows_no_key_material(kind: str) -> None:
    private_pem, public_pem = generate_private_key_pem(kind)  # type: ignore[arg-type]
    auth = KalshiAuth.from_pem(KEY_ID, private_pem)
    for text in (repr(auth), str(auth)):
        assert "a952bcbe" in text
        assert KEY_ID not in text  # shortened
        assert ("rsa-pss" if kind == "rsa" else "ed25519") in text
        for fragment in body_fragments(private_pem) + body_fragments(public_pem):
            assert fragment not in text
    assert not hasattr(auth, "__dict__")


def test_short_key_id_is_shown_whole(ed_key: ed25519.Ed25519PrivateKey) -> None:
    assert repr(KalshiAuth("sim-key", ed_key)) == "KalshiAuth(key_id='sim-key', algorithm='ed25519')"


def test_pickle_is_refused_and_copy_is_identity(ed_key: ed25519.Ed25519PrivateKey) -> None:
    auth = KalshiAuth(KEY_ID, ed_key)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(auth)
    assert copy.copy(auth) is auth
    assert copy.deepcopy(auth) is auth


# -- from_env ------------------------------------------------------------------------------------------------


def clear_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KALSHI_API_KEY_ID", "KALSHI_PRIVATE_KEY_PATH", "KALSHI_PRIVATE_KEY", "KALSHI_PRIVATE_KEY_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def test_from_env_with_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ed_key: object) -> None:
    clear_env(monkeypatch)
    path = tmp_path / "key.pem"
    path.write_bytes(pem_of(ed_key))
    monkeypatch.setenv("KALSHI_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("KALSHI_PRIVATE_KEY_PATH", str(path))
    auth = KalshiAuth.from_env(clock=fixed_clock())
    assert auth.key_id == KEY_ID
    assert auth.headers("GET", "/a")[HEADER_TIMESTAMP] == str(TS)


def test_from_env_with_pem_text(monkeypatch: pytest.MonkeyPatch, rsa_key: rsa.RSAPrivateKey) -> None:
    clear_env(monkeypatch)
    monkeypatch.setenv("KALSHI_API_KEY_ID", f" {KEY_ID}\n")
    monkeypatch.setenv("KALSHI_PRIVATE_KEY", pem_of(rsa_key).decode())
    auth = KalshiAuth.from_env()
    assert auth.key_id == KEY_ID
    assert auth.algorithm == "rsa-pss"


def test_from_env_with_one_line_pem_and_password(monkeypatch: pytest.MonkeyPatch, rsa_key: object) -> None:
    clear_env(monkeypatch)
    monkeypatch.setenv("KALSHI_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("KALSHI_PRIVATE_KEY", pem_of(rsa_key, PKCS8, b"pw").decode().replace("\n", "\\n"))
    monkeypatch.setenv("KALSHI_PRIVATE_KEY_PASSWORD", "pw")
    assert KalshiAuth.from_env().algorithm == "rsa-pss"


def test_from_env_reads_a_given_mapping(ed_key: object) -> None:
    env = {"KALSHI_API_KEY_ID": "k1", "KALSHI_PRIVATE_KEY": pem_of(ed_key).decode()}
    assert KalshiAuth.from_env(env).key_id == "k1"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "KALSHI_API_KEY_ID is not set"),
        ({"KALSHI_API_KEY_ID": "  "}, "KALSHI_API_KEY_ID is not set"),
        ({"KALSHI_API_KEY_ID": "k"}, "set KALSHI_PRIVATE_KEY_PATH"),
        ({"KALSHI_PRIVATE_KEY_PATH": "/x.pem"}, "KALSHI_API_KEY_ID is not set"),
        ({"KALSHI_API_KEY_ID": "k", "KALSHI_PRIVATE_KEY_PATH": "/x", "KALSHI_PRIVATE_KEY": "y"}, "both"),
        ({"KALSHI_API_KEY_ID": "k", "KALSHI_PRIVATE_KEY_PATH": "/definitely/missing.pem"}, "not found"),
        ({"KALSHI_API_KEY_ID": "k", "KALSHI_PRIVATE_KEY": "garbage"}, "not PEM"),
    ],
)
def test_from_env_errors_name_what_to_set(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str) -> None:
    clear_env(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(KalshiAuthError, match=re.escape(expected)):
        KalshiAuth.from_env()


def test_from_env_encrypted_key_names_password_variable(monkeypatch: pytest.MonkeyPatch, rsa_key: object) -> None:
    clear_env(monkeypatch)
    monkeypatch.setenv("KALSHI_API_KEY_ID", KEY_ID)
    pem = pem_of(rsa_key, PKCS8, b"pw")
    monkeypatch.setenv("KALSHI_PRIVATE_KEY", pem.decode())
    with pytest.raises(KalshiAuthError, match="KALSHI_PRIVATE_KEY_PASSWORD") as info:
        KalshiAuth.from_env()
    assert_no_key_material(info.value, pem)


# -- public keys ---------------------------------------------------------------------------------------------


def test_load_public_key_errors(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(KalshiAuthError, match="not PEM"):
        load_public_key("nope")
    with pytest.raises(KalshiAuthError, match="got a private key") as info:
        load_public_key(pem_of(rsa_key))
    assert_no_key_material(info.value, pem_of(rsa_key))
    with pytest.raises(KalshiAuthError, match="could not parse"):
        load_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    ec_public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KalshiAuthError, match="unsupported key type EC"):
        load_public_key(ec_public)
