"""Tests for kalshi.sim.keys: the simulator's signature verification and demo keys."""

from __future__ import annotations

import base64
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from multidict import CIMultiDict

from kalshi.auth import HEADER_KEY, HEADER_SIGNATURE, HEADER_TIMESTAMP, KalshiAuth, generate_private_key_pem
from kalshi.errors import KalshiAuthError
from kalshi.sim.keys import (
    DEFAULT_WINDOW_MS,
    KeyRegistry,
    SignatureRejected,
    load_public_keys,
    write_demo_key,
)

NOW = 1_700_000_000_000
WS_PATH = "/trade-api/ws/v2"


def make_auth(kind: str, key_id: str, now: int = NOW) -> KalshiAuth:
    private_pem, _ = generate_private_key_pem(kind)  # type: ignore[arg-type]
    return KalshiAuth.from_pem(key_id, private_pem, clock=lambda: now)


@pytest.fixture(scope="module")
def rsa_auth() -> KalshiAuth:
    return make_auth("rsa", "rsa-key")


@pytest.fixture(scope="module")
def ed_auth() -> KalshiAuth:
    return make_auth("ed25519", "ed-key")


@pytest.fixture
def registry(rsa_auth: KalshiAuth, ed_auth: KalshiAuth) -> KeyRegistry:
    reg = KeyRegistry()
    reg.register_auth(rsa_auth)
    reg.register_auth(ed_auth)
    return reg


def rejected(
    registry: KeyRegistry, headers: dict[str, str], method: str = "GET", path: str = WS_PATH, now: int = NOW
) -> SignatureRejected:
    with pytest.raises(SignatureRejected) as info:
        registry.verify(headers, method, path, now_ms=now)
    return info.value


# -- accepted ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["rsa", "ed25519"])
def test_good_signature_is_accepted(
    registry: KeyRegistry, rsa_auth: KalshiAuth, ed_auth: KalshiAuth, which: str
) -> None:
    auth = rsa_auth if which == "rsa" else ed_auth
    headers = auth.headers("GET", WS_PATH)
    assert registry.verify(headers, "GET", WS_PATH, now_ms=NOW) == auth.key_id


@pytest.mark.parametrize("transform", [str.lower, str.upper, str.title])
def test_header_names_are_case_insensitive(
    registry: KeyRegistry, ed_auth: KalshiAuth, transform: Callable[[str], str]
) -> None:
    headers = {transform(name): value for name, value in ed_auth.headers("POST", "/p").items()}
    assert registry.verify(headers, "post", "/p", now_ms=NOW) == "ed-key"


def test_multidict_headers_from_aiohttp(registry: KeyRegistry, rsa_auth: KalshiAuth) -> None:
    headers = CIMultiDict({name.lower(): value for name, value in rsa_auth.headers("GET", WS_PATH).items()})
    headers.add("Host", "127.0.0.1")
    assert registry.verify(headers, "GET", WS_PATH, now_ms=NOW) == "rsa-key"


def test_query_string_is_ignored_on_both_sides(registry: KeyRegistry, ed_auth: KalshiAuth) -> None:
    headers = ed_auth.headers("GET", "/trade-api/v2/markets?limit=5")
    assert registry.verify(headers, "GET", "/trade-api/v2/markets?cursor=zzz", now_ms=NOW) == "ed-key"


@pytest.mark.parametrize("skew", [-DEFAULT_WINDOW_MS, DEFAULT_WINDOW_MS, 0, 1234])
def test_timestamps_inside_the_window_are_accepted(registry: KeyRegistry, ed_auth: KalshiAuth, skew: int) -> None:
    headers = ed_auth.headers("GET", WS_PATH, timestamp_ms=NOW + skew)
    assert registry.verify(headers, "GET", WS_PATH, now_ms=NOW) == "ed-key"


# -- rejected ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("drop", [HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE])
def test_missing_header(registry: KeyRegistry, ed_auth: KalshiAuth, drop: str) -> None:
    headers = ed_auth.headers("GET", WS_PATH)
    del headers[drop]
    exc = rejected(registry, headers)
    assert exc.code == "missing_header"
    assert drop in exc.reason


def test_empty_header_counts_as_missing(registry: KeyRegistry, ed_auth: KalshiAuth) -> None:
    headers = ed_auth.headers("GET", WS_PATH)
    headers[HEADER_SIGNATURE] = ""
    assert rejected(registry, headers).code == "missing_header"


def test_no_headers_names_all_three(registry: KeyRegistry) -> None:
    exc = rejected(registry, {})
    assert exc.code == "missing_header"
    for name in (HEADER_KEY, HEADER_TIMESTAMP, HEADER_SIGNATURE):
        assert name in str(exc)


def test_unknown_key_id(registry: KeyRegistry) -> None:
    stranger = make_auth("ed25519", "stranger-key-id")
    exc = rejected(registry, stranger.headers("GET", WS_PATH))
    assert exc.code == "unknown_key"
    assert "stranger-key-id" not in str(exc)


@pytest.mark.parametrize("timestamp", ["abc", "-5", "1.5", "１２３", " 1700000000000", "12345678901234567", "0x10"])
def test_malformed_timestamp(registry: KeyRegistry, ed_auth: KalshiAuth, timestamp: str) -> None:
    headers = ed_auth.headers("GET", WS_PATH)
    headers[HEADER_TIMESTAMP] = timestamp
    assert rejected(registry, headers).code == "bad_timestamp"


@pytest.mark.parametrize("skew", [-DEFAULT_WINDOW_MS - 1, DEFAULT_WINDOW_MS + 1, -3_600_000])
def test_timestamp_outside_window(registry: KeyRegistry, ed_auth: KalshiAuth, skew: int) -> None:
    headers = ed_auth.headers("GET", WS_PATH, timestamp_ms=NOW + skew)
    exc = rejected(registry, headers)
    assert exc.code == "stale_timestamp"
    assert ("ahead of" if skew > 0 else "behind") in exc.reason
    assert "clock" in exc.reason


def test_custom_window() -> None:
    auth = make_auth("ed25519", "k")
    reg = KeyRegistry(window_ms=100)
    reg.register_auth(auth)
    assert rejected(reg, auth.headers("GET", "/", timestamp_ms=NOW - 101), path="/").code == "stale_timestamp"
    assert reg.verify(auth.headers("GET", "/", timestamp_ms=NOW - 100), "GET", "/", now_ms=NOW) == "k"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", WS_PATH), ("GET", "/trade-api/v2/markets"), ("GET", WS_PATH + "/")],
)
@pytest.mark.parametrize("which", ["rsa", "ed25519"])
def test_signature_over_other_request_is_rejected(
    registry: KeyRegistry, rsa_auth: KalshiAuth, ed_auth: KalshiAuth, which: str, method: str, path: str
) -> None:
    auth = rsa_auth if which == "rsa" else ed_auth
    exc = rejected(registry, auth.headers("GET", WS_PATH), method=method, path=path)
    assert exc.code == "bad_signature"


def test_signature_by_another_key_under_a_known_id(registry: KeyRegistry) -> None:
    impostor = make_auth("ed25519", "ed-key")
    assert rejected(registry, impostor.headers("GET", WS_PATH)).code == "bad_signature"


def test_timestamp_swapped_after_signing(registry: KeyRegistry, rsa_auth: KalshiAuth) -> None:
    headers = rsa_auth.headers("GET", WS_PATH)
    headers[HEADER_TIMESTAMP] = str(NOW + 1)
    assert rejected(registry, headers).code == "bad_signature"


@pytest.mark.parametrize("signature", ["not base64!!", "AAA", base64.b64encode(b"\0" * 64).decode()])
def test_garbage_signature(registry: KeyRegistry, ed_auth: KalshiAuth, signature: str) -> None:
    headers = ed_auth.headers("GET", WS_PATH)
    headers[HEADER_SIGNATURE] = signature
    exc = rejected(registry, headers)
    assert exc.code == "bad_signature"
    assert signature not in str(exc)


@pytest.mark.parametrize("which", ["rsa", "ed25519"])
def test_replayed_signature_is_rejected(
    registry: KeyRegistry, rsa_auth: KalshiAuth, ed_auth: KalshiAuth, which: str
) -> None:
    auth = rsa_auth if which == "rsa" else ed_auth
    headers = auth.headers("GET", WS_PATH)
    assert registry.verify(headers, "GET", WS_PATH, now_ms=NOW) == auth.key_id
    exc = rejected(registry, headers, now=NOW + 10)
    assert exc.code == "replayed"
    # A freshly signed request is fine.
    assert registry.verify(auth.headers("GET", WS_PATH, timestamp_ms=NOW + 1), "GET", WS_PATH, now_ms=NOW + 10)
    # Once the window has passed the old headers are stale rather than remembered forever.
    assert rejected(registry, headers, now=NOW + DEFAULT_WINDOW_MS + 1).code == "stale_timestamp"


def test_rejected_signature_is_not_remembered(registry: KeyRegistry, ed_auth: KalshiAuth) -> None:
    headers = ed_auth.headers("GET", WS_PATH)
    assert rejected(registry, headers, path="/other").code == "bad_signature"
    assert registry.verify(headers, "GET", WS_PATH, now_ms=NOW) == "ed-key"


def test_replay_memory_is_pruned_by_time_and_bounded(ed_auth: KalshiAuth) -> None:
    reg = KeyRegistry(window_ms=1000, max_remembered=3)
    reg.register_auth(ed_auth)
    first = ed_auth.headers("GET", "/0", timestamp_ms=NOW)
    reg.verify(first, "GET", "/0", now_ms=NOW)
    for i in range(1, 4):
        reg.verify(ed_auth.headers("GET", f"/{i}", timestamp_ms=NOW), "GET", f"/{i}", now_ms=NOW)
    # The bound of 3 pushed the first signature out of memory: it is accepted again (documented trade-off).
    assert reg.verify(first, "GET", "/0", now_ms=NOW) == "ed-key"
    assert len(reg._seen) == 3
    reg.verify(ed_auth.headers("GET", "/late", timestamp_ms=NOW + 2000), "GET", "/late", now_ms=NOW + 2000)
    assert len(reg._seen) == 1


def test_replays_allowed_when_disabled(ed_auth: KalshiAuth) -> None:
    reg = KeyRegistry(reject_replays=False)
    reg.register_auth(ed_auth)
    headers = ed_auth.headers("GET", WS_PATH)
    assert reg.verify(headers, "GET", WS_PATH, now_ms=NOW) == reg.verify(headers, "GET", WS_PATH, now_ms=NOW)


def test_signature_rejected_is_an_auth_error() -> None:
    exc = SignatureRejected("x", code="replayed")
    assert isinstance(exc, KalshiAuthError)
    assert str(exc) == "signature rejected: x"


# -- registry management -------------------------------------------------------------------------------------


def test_register_refuses_bad_input(ed_auth: KalshiAuth) -> None:
    reg = KeyRegistry()
    with pytest.raises(KalshiAuthError, match="not PEM"):
        reg.register("k", "nope")
    private_pem, public_pem = generate_private_key_pem("ed25519")
    with pytest.raises(KalshiAuthError, match="got a private key"):
        reg.register("k", private_pem)
    with pytest.raises(KalshiAuthError, match="key id"):
        reg.register("", public_pem)
    assert len(reg) == 0
    reg.register("k", public_pem.decode())
    assert "k" in reg
    reg.unregister("k")
    assert "k" not in reg
    assert repr(reg) == f"KeyRegistry(keys=0, window_ms={DEFAULT_WINDOW_MS})"


def test_bad_registry_settings() -> None:
    with pytest.raises(ValueError, match="window_ms"):
        KeyRegistry(window_ms=-1)
    with pytest.raises(ValueError, match="max_remembered"):
        KeyRegistry(max_remembered=0)


# -- demo keys -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_write_demo_key_round_trip(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "keys" / "nested"
    private_path, public_path = write_demo_key(folder, kind=kind)  # type: ignore[arg-type]
    assert private_path == folder / "sim-demo-key.key.pem"
    assert public_path == folder / "sim-demo-key.pub.pem"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    auth = KalshiAuth.from_key_path("sim-demo-key", private_path, clock=lambda: NOW)
    assert auth.algorithm == ("rsa-pss" if kind == "rsa" else "ed25519")
    reg = KeyRegistry()
    assert reg.load_directory(folder) == ["sim-demo-key"]
    assert reg.verify(auth.headers("GET", WS_PATH), "GET", WS_PATH, now_ms=NOW) == "sim-demo-key"


def test_write_demo_key_refuses_to_overwrite(tmp_path: Path) -> None:
    private_path, _ = write_demo_key(tmp_path, "k1")
    before = private_path.read_bytes()
    with pytest.raises(KalshiAuthError, match="already exists"):
        write_demo_key(tmp_path, "k1")
    assert private_path.read_bytes() == before
    private_path.chmod(0o644)
    write_demo_key(tmp_path, "k1", overwrite=True)
    assert private_path.read_bytes() != before
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600


@pytest.mark.parametrize("key_id", ["", "../escape", "a/b", ".hidden", "x" * 129, "spa ce"])
def test_write_demo_key_refuses_unsafe_key_ids(tmp_path: Path, key_id: str) -> None:
    with pytest.raises(KalshiAuthError, match="file name"):
        write_demo_key(tmp_path, key_id)
    assert list(tmp_path.iterdir()) == []


def test_write_demo_key_reports_unwritable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(KalshiAuthError, match="could not write"):
        write_demo_key(blocker / "keys")


def test_load_public_keys(tmp_path: Path) -> None:
    write_demo_key(tmp_path, "alpha")
    write_demo_key(tmp_path, "beta", kind="rsa")
    (tmp_path / "notes.txt").write_text("ignored")
    keys = load_public_keys(tmp_path)
    assert sorted(keys) == ["alpha", "beta"]
    assert all(pem.startswith(b"-----BEGIN PUBLIC KEY-----") for pem in keys.values())


def test_load_public_keys_errors(tmp_path: Path) -> None:
    with pytest.raises(KalshiAuthError, match="not found"):
        load_public_keys(tmp_path / "missing")
    (tmp_path / "broken.pub.pem").write_text("garbage")
    with pytest.raises(KalshiAuthError, match=r"broken\.pub\.pem"):
        load_public_keys(tmp_path)
