"""Security checks, end to end over loopback sockets.

* The simulator refuses (HTTP 401, JSON body, counted in ``sim.rejections``) a wrong key, a bad signature, a
  timestamp outside the window and a replayed signature, on the WebSocket upgrade and on REST.
* The client never writes key material, signatures or api keys to logs, reprs or exceptions: a full session
  (WebSocket with private channels, a reconnect, REST orders and errors, refused keys) is run with every logger
  at DEBUG, and the PEM body and every signature the client produced are searched for in everything it wrote.
* TLS: verification is on by default; turning it off is an explicit flag that logs a warning; a self-signed
  server is refused when verifying and accepted (with that warning) when not.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kalshi._fixed import format_count, format_price
from kalshi.auth import KalshiAuth, generate_private_key_pem
from kalshi.config import REST_PATH, WS_PATH, KalshiConfig
from kalshi.errors import KalshiAPIError, KalshiConnectionError, KalshiError, KalshiHandshakeError
from kalshi.rest import AsyncKalshiClient, RateLimiter
from kalshi.sim import Simulator, rest_controls
from kalshi.ws import KalshiWebSocket
from kalshi.ws.transport import _client_ssl_context, open_connection

FAST = {"retry_base_delay": 0.01, "retry_max_delay": 0.05, "ws_max_retries": 3, "timeout": 5.0, "connect_timeout": 2.0}


@pytest.fixture
async def sim(kalshi_sim_factory: Callable[..., Simulator]) -> AsyncIterator[Simulator]:
    async with kalshi_sim_factory(seed=21, markets=3, rate=0.0, lifecycle=False) as s:
        yield s


def stranger() -> KalshiAuth:
    private_pem, _ = generate_private_key_pem("ed25519")
    return KalshiAuth.from_pem("never-registered", private_pem)


def impostor(key_id: str) -> KalshiAuth:
    """A registered key id, but someone else's private key."""
    private_pem, _ = generate_private_key_pem("ed25519")
    return KalshiAuth.from_pem(key_id, private_pem)


def tampered(headers: dict[str, str]) -> dict[str, str]:
    raw = bytearray(base64.b64decode(headers["KALSHI-ACCESS-SIGNATURE"]))
    raw[0] ^= 0x01
    return {**headers, "KALSHI-ACCESS-SIGNATURE": base64.b64encode(bytes(raw)).decode()}


async def upgrade(sim: Simulator, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """Ask for the WebSocket upgrade with ``headers``; the status and JSON body of the answer."""
    upgrade_headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode(),
        **headers,
    }
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.get(WS_PATH, headers=upgrade_headers)
    body = msgspec.json.decode(response.content) if response.status_code != 101 else {}
    return response.status_code, body


async def rest_get(sim: Simulator, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.get(REST_PATH + path, headers=headers)
    return response.status_code, msgspec.json.decode(response.content)


# ----------------------------------------------------------------------------------------------- the simulator refuses


async def test_websocket_upgrade_refuses_bad_credentials(sim: Simulator) -> None:
    auth, _ = sim.create_account_auth()
    now = int(time.time() * 1000)
    cases = {
        "unknown_key": stranger().headers("GET", WS_PATH),
        "bad_signature": impostor(auth.key_id).headers("GET", WS_PATH),
        "stale_timestamp": auth.headers("GET", WS_PATH, timestamp_ms=now - 31_000),
        "future_timestamp": auth.headers("GET", WS_PATH, timestamp_ms=now + 31_000),
        "tampered": tampered(auth.headers("GET", WS_PATH)),
        "other_path": auth.headers("GET", "/trade-api/v2/portfolio/balance"),
        "other_method": auth.headers("POST", WS_PATH),
    }
    expected = {"future_timestamp": "stale_timestamp", "tampered": "bad_signature", "other_path": "bad_signature",
                "other_method": "bad_signature"}  # fmt: skip
    for name, headers in cases.items():
        status, body = await upgrade(sim, headers)
        assert status == 401, name
        assert body["error"]["code"] == expected.get(name, name), (name, body)
        assert headers["KALSHI-ACCESS-SIGNATURE"] not in str(body)  # the refusal never echoes the signature
    assert sim.rejections == {"unknown_key": 1, "bad_signature": 4, "stale_timestamp": 2}
    assert sim.connection_ids() == []


async def test_a_replayed_upgrade_signature_is_refused(sim: Simulator) -> None:
    auth, _ = sim.create_account_auth()
    headers = auth.headers("GET", WS_PATH)
    first, _ = await upgrade(sim, headers)
    assert first == 101
    again, body = await upgrade(sim, headers)
    assert again == 401 and body["error"]["code"] == "replayed"
    fresh, _ = await upgrade(sim, auth.headers("GET", WS_PATH))  # a new signature is fine
    assert fresh == 101
    assert sim.rejections == {"replayed": 1}


async def test_the_client_gets_a_401_for_a_wrong_key_without_retrying(sim: Simulator) -> None:
    auth, _ = sim.create_account_auth()
    for bad in (stranger(), impostor(auth.key_id)):
        with pytest.raises(KalshiHandshakeError) as refused:
            async with KalshiWebSocket(auth=bad, config=sim.config.with_options(**FAST)).connect():
                raise AssertionError("must not connect")
        assert refused.value.status == 401 and refused.value.is_permanent
    assert sum(sim.rejections.values()) == 2


async def test_rest_refuses_bad_credentials_and_replays_when_asked(sim: Simulator) -> None:
    auth, _ = sim.create_account_auth()
    path = REST_PATH + "/portfolio/balance"
    now = int(time.time() * 1000)
    for headers, code in [
        (stranger().headers("GET", path), "unknown_key"),
        (impostor(auth.key_id).headers("GET", path), "bad_signature"),
        (auth.headers("GET", path, timestamp_ms=now - 60_000), "stale_timestamp"),
        (tampered(auth.headers("GET", path)), "bad_signature"),
        ({"KALSHI-ACCESS-KEY": auth.key_id}, "missing_header"),
    ]:
        status, body = await rest_get(sim, "/portfolio/balance", headers)
        assert status == 401 and code in str(body), (code, body)
    status, body = await rest_get(sim, "/portfolio/balance", {})
    assert status == 401 and body["error"]["message"]
    rest_controls(sim).reject_replays = True
    headers = auth.headers("GET", path)
    assert (await rest_get(sim, "/portfolio/balance", headers))[0] == 200
    status, body = await rest_get(sim, "/portfolio/balance", headers)
    assert status == 401 and "replayed" in str(body)


# ----------------------------------------------------------------------------------------------- no secrets written


class Recording:
    """Wraps KalshiAuth.sign to keep every signature the client produced."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.signatures: list[str] = []
        original = KalshiAuth.sign

        def sign(auth: KalshiAuth, timestamp_ms: int, method: str, path: str) -> str:
            signature = original(auth, timestamp_ms, method, path)
            self.signatures.append(signature)
            return signature

        monkeypatch.setattr(KalshiAuth, "sign", sign)


def pem_secrets(pem: bytes) -> list[str]:
    """The base64 body of a PEM private key, line by line and whole."""
    lines = [line for line in pem.decode().splitlines() if line and not line.startswith("-----")]
    return [*lines, "".join(lines)]


async def test_no_key_material_or_signature_in_logs_reprs_or_exceptions(
    kalshi_sim_factory: Callable[..., Simulator], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = Recording(monkeypatch)
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)  # nothing filters above DEBUG
    private_pem, public_pem = generate_private_key_pem("rsa")
    writings: list[str] = []
    async with kalshi_sim_factory(seed=22, markets=3, rate=300.0, lifecycle=False) as sim:
        auth = KalshiAuth.from_pem("visible-key-id", private_pem)
        sim.register_key("visible-key-id", public_pem, account="secrets-account")
        config = sim.config.with_options(**FAST)
        ws = KalshiWebSocket(auth=auth, config=config)
        async with (
            ws.connect() as session,
            AsyncKalshiClient(config, auth=auth, rate_limiter=RateLimiter.unlimited()) as rest,
        ):
            subs = [
                await session.orderbook(sim.tickers),
                await session.subscribe_fill(),
                await session.subscribe_user_orders(),
                await session.subscribe_market_positions(),
            ]
            book = await asyncio.wait_for(anext(aiter(subs[0])), 5)
            best = book.best_bid_ticks("yes") or (5000, 100)
            await rest.orders.create_order_v2(
                ticker=sim.tickers[0], side="ask", count=format_count(100), price=format_price(best[0]),
                time_in_force="immediate_or_cancel", self_trade_prevention_type="taker_at_cross",
            )  # fmt: skip
            await rest.portfolio.get_balance()
            await rest.portfolio.get_fills(limit=5)
            sim.faults.drop()  # the upgrade is signed again on reconnect
            async with asyncio.timeout(5):
                while session.reconnects < 1 or not all(s.sids for s in subs):  # noqa: ASYNC110 - client state
                    await asyncio.sleep(0.01)
            async with AsyncKalshiClient(config, auth=impostor("visible-key-id")) as wrong:
                for failing in (rest.markets.get_market("NO-SUCH-MARKET"), wrong.portfolio.get_balance()):
                    with pytest.raises(KalshiAPIError) as api_error:
                        await failing
                    writings += [str(api_error.value), repr(api_error.value), repr(api_error.value.body)]
            with pytest.raises(KalshiHandshakeError) as refused:
                async with KalshiWebSocket(auth=impostor("visible-key-id"), config=config).connect():
                    pass
            writings += [str(refused.value), repr(refused.value)]
            writings += [repr(ws), repr(session), repr(auth), repr(rest), repr(config), repr(session.books)]
            writings += [repr(sub) for sub in subs]
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    writings += [formatter.format(record) for record in caplog.records]
    haystack = "\n".join(writings)
    assert len(caplog.records) > 20 and any(r.levelno == logging.DEBUG for r in caplog.records)
    assert len(recording.signatures) >= 6  # two upgrades, three REST calls, refused attempts
    leaks = [s for s in recording.signatures if s in haystack]
    assert not leaks, "a signature was written to a log, repr or exception"
    assert not [s for s in pem_secrets(private_pem) if s in haystack], "private key material was written"
    assert "visible-key-id" in repr(auth) or "visible-" in repr(auth)  # the key id is not secret


def test_auth_cannot_be_pickled_or_printed_with_its_key() -> None:
    import pickle

    private_pem, _ = generate_private_key_pem("rsa")
    auth = KalshiAuth.from_pem("k-1", private_pem)
    with pytest.raises(TypeError):
        pickle.dumps(auth)
    assert not [s for s in pem_secrets(private_pem) if s in repr(auth) + str(auth)]


# ----------------------------------------------------------------------------------------------- TLS


def test_tls_verification_is_on_by_default() -> None:
    for config in (KalshiConfig.production(), KalshiConfig.demo(), KalshiConfig.local("https://127.0.0.1:9")):
        assert config.verify_tls is True
    context = _client_ssl_context(True)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    off = _client_ssl_context(False)
    assert off.verify_mode is ssl.CERT_NONE and not off.check_hostname
    assert KalshiConfig.production(verify_tls=False).verify_tls is False  # only by an explicit flag


def self_signed(directory: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[str]:
    """A self-signed TLS server on loopback with a WebSocket endpoint and one REST route."""

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    async def status(_request: web.Request) -> web.Response:
        return web.json_response({"exchange_active": True, "trading_active": True})

    app = web.Application()
    app.router.add_get(WS_PATH, ws_handler)
    app.router.add_get(REST_PATH + "/exchange/status", status)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self_signed(tmp_path))
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_websocket_refuses_an_unverified_certificate_unless_told(
    tls_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = tls_server.replace("https://", "wss://") + WS_PATH
    options: dict[str, Any] = {
        "headers": {},
        "on_frame": lambda _data: None,
        "on_close": lambda _info: None,
        "connect_timeout": 5.0,
        "heartbeat_interval": 0.0,
        "heartbeat_timeout": 5.0,
    }
    caplog.set_level(logging.WARNING, logger="kalshi")
    with pytest.raises(KalshiConnectionError, match="certificate"):
        await open_connection(url, **options)
    assert not [r for r in caplog.records if "verification is OFF" in r.getMessage()]
    connection = await open_connection(url, verify_tls=False, **options)
    await connection.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "verification is OFF" in r.getMessage()]
    assert len(warnings) == 1


async def test_rest_refuses_an_unverified_certificate_unless_told(
    tls_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="kalshi")
    config = KalshiConfig.local(tls_server, max_retries=0)
    async with AsyncKalshiClient(config) as verifying:
        with pytest.raises(KalshiError):
            await verifying.exchange.get_exchange_status()
    assert not [r for r in caplog.records if "verification is OFF" in r.getMessage()]
    async with AsyncKalshiClient(config.with_options(verify_tls=False)) as trusting:
        status = await trusting.exchange.get_exchange_status()
        assert status.exchange_active is True
    assert [r for r in caplog.records if r.levelno == logging.WARNING and "verification is OFF" in r.getMessage()]
