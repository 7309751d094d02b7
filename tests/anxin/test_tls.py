"""HTTPS and WSS from ``tls_cert`` / ``tls_key``, checked against a real server process with a real certificate.

The certificate is self-signed, made for 127.0.0.1 in a temporary folder; the clients verify the server against
it (not ``verify=False``), so a test that passes means a browser that trusts the certificate would connect.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from anxin.server import console_url, make_server, tls_files
from dispatch.errors import ConfigError
from dispatch.settings import Settings
from tests.process import ADMIN_PASSWORD, ServerProcess, anxin


def self_signed(folder: Path, name: str = "anxin-test") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its unencrypted key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


class TlsServer(ServerProcess):
    """``anxin serve`` with ANXIN_TLS_CERT / ANXIN_TLS_KEY, waited for over HTTPS."""

    def __init__(self, data: Path, cert: Path, key: Path) -> None:
        super().__init__(data, ANXIN_TLS_CERT=str(cert), ANXIN_TLS_KEY=str(key))
        self.trust: ssl.SSLContext = ssl.create_default_context(cafile=str(cert))

    scheme = "https"


@pytest.fixture
def tls_server(tmp_path: Path, cert: tuple[Path, Path]) -> Iterator[TlsServer]:
    process = TlsServer(tmp_path / "data", *cert).start()
    yield process
    process.stop()


@pytest.mark.process
async def test_https_and_wss_with_the_certificate_verified(tls_server: TlsServer) -> None:
    async with httpx.AsyncClient(base_url=tls_server.url, verify=tls_server.trust, timeout=10) as client:
        assert (await client.get("/healthz")).status_code == 200
        response = await client.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})
        assert response.status_code == 200, response.text
        token = response.json()["access_token"]
        me = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["username"] == "admin"
        assert (await client.get("/console")).status_code == 200

    async with websockets.connect(f"{tls_server.ws}/ws/console?token={token}", ssl=tls_server.trust) as console:
        first: dict[str, Any] = json.loads(await asyncio.wait_for(console.recv(), 10))
        assert first["type"] == "snapshot"

    assert f"console at https://127.0.0.1:{tls_server.port}/console" in tls_server.log.read_text()


@pytest.mark.process
async def test_plain_http_and_an_untrusted_client_get_nothing(tls_server: TlsServer) -> None:
    async with httpx.AsyncClient(timeout=5) as plain:
        with pytest.raises(httpx.TransportError):  # the TLS port does not speak HTTP: the connection is dropped
            await plain.get(f"http://127.0.0.1:{tls_server.port}/healthz")
        # a client that does not trust the certificate refuses it: the verification above was real
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await plain.get(f"{tls_server.url}/healthz")
    with pytest.raises((OSError, websockets.InvalidMessage)):
        async with websockets.connect(f"ws://127.0.0.1:{tls_server.port}/ws/console", open_timeout=5):
            pass


async def failed_login_address(client: httpx.AsyncClient, forwarded_for: str) -> str:
    """Where the server says a wrong password came from (the journal's login.failed), sent with a proxy's header."""
    refused = await client.post(
        "/api/auth/token", data={"username": "nobody", "password": "wrong"}, headers={"X-Forwarded-For": forwarded_for}
    )
    assert refused.status_code == 401
    token = (await client.post("/api/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD})).json()
    journal = await client.get("/api/journal?limit=5000", headers={"Authorization": f"Bearer {token['access_token']}"})
    failed = [entry for entry in journal.json()["entries"] if entry["kind"] == "login.failed"]
    address: str = failed[-1]["payload"]["address"]
    return address


@pytest.mark.process
async def test_the_client_address_is_the_proxys_word_only_from_the_proxy(tls_server: TlsServer, tmp_path: Path) -> None:
    # the default forwarded_allow_ips is 127.0.0.1: a proxy on this machine, which the test client is
    async with httpx.AsyncClient(base_url=tls_server.url, verify=tls_server.trust, timeout=10) as client:
        assert await failed_login_address(client, "203.0.113.7") == "203.0.113.7"
    # a server told its proxy is elsewhere does not believe the header from this client
    elsewhere = ServerProcess(tmp_path / "plain", ANXIN_FORWARDED_ALLOW_IPS="10.0.0.2").start()
    try:
        async with httpx.AsyncClient(base_url=elsewhere.url, timeout=10) as client:
            assert await failed_login_address(client, "203.0.113.7") == "127.0.0.1"
    finally:
        elsewhere.stop()


def settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(data=tmp_path / "data", device_ports={}, **values)


def test_one_file_without_the_other_is_refused(tmp_path: Path, cert: tuple[Path, Path]) -> None:
    crt, key = cert
    with pytest.raises(ConfigError, match="tls_cert is set but tls_key is not"):
        make_server(settings(tmp_path, tls_cert=crt))
    with pytest.raises(ConfigError, match="tls_key is set but tls_cert is not"):
        make_server(settings(tmp_path, tls_key=key))
    with pytest.raises(ConfigError, match="is not a readable file"):
        make_server(settings(tmp_path, tls_cert=crt, tls_key=tmp_path / "missing.key"))
    _, other_key = self_signed(tmp_path, "other")
    with pytest.raises(ConfigError, match="do not load together"):
        make_server(settings(tmp_path, tls_cert=crt, tls_key=other_key))
    assert tls_files(settings(tmp_path)) is None
    assert tls_files(settings(tmp_path, tls_cert=crt, tls_key=key)) == (crt, key)


def test_the_command_says_what_is_missing(tmp_path: Path, cert: tuple[Path, Path]) -> None:
    done = anxin("serve", "--data", str(tmp_path / "data"), env={"ANXIN_TLS_CERT": str(cert[0])})
    assert done.returncode == 2
    assert "anxin: tls_cert is set but tls_key is not" in done.stderr


def test_the_console_address_names_the_scheme(tmp_path: Path, cert: tuple[Path, Path]) -> None:
    assert console_url(settings(tmp_path, http_port=8443)) == "http://127.0.0.1:8443"
    assert console_url(settings(tmp_path, http_port=8443, tls_cert=cert[0], tls_key=cert[1])) == (
        "https://127.0.0.1:8443"
    )


async def test_the_forwarded_address_is_believed_from_the_proxy_only(tmp_path: Path) -> None:
    """What uvicorn is configured with: X-Forwarded-For from an allowed proxy becomes the client's address."""
    server = make_server(settings(tmp_path, forwarded_allow_ips="10.0.0.2"))
    seen: list[tuple[str, int] | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["client"])

    server.config.app = app  # the same Config, with an app that only records who it was told the client is
    server.config.load()

    async def request(peer: str, forwarded: str) -> str:
        scope = {
            "type": "http",
            "scheme": "http",
            "client": (peer, 50000),
            "headers": [(b"x-forwarded-for", forwarded.encode())],
        }
        await server.config.loaded_app(scope, None, None)
        client = seen.pop()
        assert client is not None
        return client[0]

    assert await request("10.0.0.2", "203.0.113.7") == "203.0.113.7"  # the proxy says who the client is
    assert await request("198.51.100.9", "203.0.113.7") == "198.51.100.9"  # anyone else may not
