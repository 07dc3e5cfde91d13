"""PostgreSQL over TLS with `sslmode=verify-full`: the DSN's settings reach libpq, a certificate that
does not match is refused with a clear line, and the password never appears in a message.

The embedded PostgreSQL is built without OpenSSL, so a small TLS-terminating proxy stands in front of
it: libpq does the real handshake and the real certificate and host-name checks against the proxy's
certificate (issued here by a throw-away CA for `localhost`), then talks plain protocol to the server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tasks.core.redact import scrub_text
from tasks.store.database import (
    DatabaseConfigError,
    DatabaseUnavailable,
    check_tls,
    connect,
    resolve_dsn,
    tls_settings,
)

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
PASSWORD = "s3cret-Passw0rd-for-tls-tests"  # noqa: S105 - a test credential


@dataclass(frozen=True)
class Pki:
    ca: Path
    other_ca: Path
    cert: Path
    key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _ca("eia-test-ca")
    _, other_cert = _ca("some-other-ca")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = Pki(root / "ca.pem", root / "other-ca.pem", root / "server.pem", root / "server.key")
    paths.ca.write_bytes(ca_cert.public_bytes(pem))
    paths.other_ca.write_bytes(other_cert.public_bytes(pem))
    paths.cert.write_bytes(cert.public_bytes(pem))
    paths.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def _serve(client: socket.socket, context: ssl.SSLContext, backend: str) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        while True:  # GSSAPI encryption is declined, TLS accepted: as a TLS-only server would
            length, code = struct.unpack("!II", client.recv(8, socket.MSG_WAITALL))
            if length == 8 and code == GSSENC_REQUEST:
                client.sendall(b"N")
                continue
            if length == 8 and code == SSL_REQUEST:
                client.sendall(b"S")
                tls = context.wrap_socket(client, server_side=True)
                break
            client.close()  # a plain startup: this proxy only speaks TLS
            return
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(backend)
        threading.Thread(target=_pipe, args=(upstream, tls), daemon=True).start()
        _pipe(tls, upstream)


@contextlib.contextmanager
def tls_proxy(pki: Pki, unix_socket: str) -> Iterator[int]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert, pki.key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_serve, args=(client, context, unix_socket), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        listener.close()
        thread.join(timeout=5)


@pytest.fixture
def proxied(pg_dsn: str, pki: Pki) -> Iterator[int]:
    info = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    unix_socket = f"{info['host']}/.s.PGSQL.{info.get('port') or 5432}"
    with tls_proxy(pki, unix_socket) as port:
        yield port


def _dsn(port: int, *, host: str = "localhost", **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"postgresql://postgres:{PASSWORD}@{host}:{port}/postgres?{query}"


def test_the_dsn_tls_parameters_are_what_libpq_receives(pki: Pki) -> None:
    dsn = _dsn(5432, host="db.example.com", sslmode="verify-full", sslrootcert=str(pki.ca))
    assert tls_settings(dsn) == {"sslmode": "verify-full", "sslrootcert": str(pki.ca)}
    info = psycopg.conninfo.conninfo_to_dict(resolve_dsn(dsn))
    assert (info["sslmode"], info["sslrootcert"], info["host"]) == ("verify-full", str(pki.ca), "db.example.com")


def test_verify_full_connects_over_tls_when_the_certificate_matches_the_host(proxied: int, pki: Pki) -> None:
    with connect(resolve_dsn(_dsn(proxied, sslmode="verify-full", sslrootcert=str(pki.ca)))) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT count(*) FROM eia_schema_migrations").fetchone() is not None


@pytest.mark.parametrize(
    ("host", "ca", "expected"),
    [
        ("localhost", "other_ca", "certificate verify failed"),
        ("127.0.0.1", "ca", "does not match host name"),
    ],
)
def test_verify_full_refuses_a_certificate_from_another_ca_or_for_another_host(
    proxied: int, pki: Pki, host: str, ca: str, expected: str
) -> None:
    dsn = resolve_dsn(_dsn(proxied, host=host, sslmode="verify-full", sslrootcert=str(getattr(pki, ca))))
    with pytest.raises(DatabaseConfigError) as refused:
        connect(dsn)
    message = str(refused.value)
    assert expected in message and "sslmode=verify-full" in message and "sslrootcert" in message
    assert not isinstance(refused.value, DatabaseUnavailable)
    assert PASSWORD not in message


def test_a_missing_ca_file_fails_fast_naming_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(DatabaseConfigError, match=r"sslrootcert=.*not a readable file"):
        check_tls(_dsn(5432, sslmode="verify-full", sslrootcert=str(missing)))
    check_tls(_dsn(5432, sslmode="verify-full", sslrootcert="system"))  # the system's trusted roots
    check_tls(_dsn(5432, sslmode="require"))  # encrypts, verifies nothing: no CA needed


def test_the_password_is_registered_and_never_in_a_connection_error() -> None:
    dsn = resolve_dsn(f"postgresql://eia:{PASSWORD}@127.0.0.1:1/eia?connect_timeout=2")
    assert PASSWORD not in scrub_text(f"connecting with {dsn}")
    with pytest.raises(DatabaseUnavailable) as refused:
        connect(dsn)
    assert PASSWORD not in str(refused.value) and "127.0.0.1/eia" in str(refused.value)
