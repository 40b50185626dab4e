"""TLS for ``taskgate serve``: given certificate files, or a self-signed CA made here.

``--tls-self-signed`` is for trying HTTPS clients (proxmoxer speaks nothing else): on the
first start it makes a private CA and a server certificate for ``localhost``,
``127.0.0.1`` and ``::1`` (plus the listening host when it is a name or address), signed
by that CA, and keeps them in a directory next to the database (``<db>.tls/``; for
``memory://``, ``./taskgate-tls/``). Later starts reuse them while they are valid for
that host. A client trusts the server by trusting ``ca.pem`` (proxmoxer:
``verify_ssl="<dir>/ca.pem"``; curl: ``--cacert``). The CA's key never leaves the
directory, which is made private (0700).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from taskgate.errors import ConfigurationError
from taskgate.settings import Settings

VALID_DAYS = 825
"""The longest validity common TLS clients accept for a server certificate."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    certfile: str
    keyfile: str
    ca: str | None = None
    """The CA that signed ``certfile`` when taskgate made it (self-signed mode)."""


def tls_files(settings: Settings) -> TlsFiles | None:
    """The certificate and key serve listens with (None: plain HTTP)."""
    if settings.tls_certfile or settings.tls_keyfile:
        if not (settings.tls_certfile and settings.tls_keyfile):
            raise ConfigurationError("TLS needs both --tls-cert and --tls-key")
        for path in (settings.tls_certfile, settings.tls_keyfile):
            if not Path(path).is_file():
                raise ConfigurationError(f"TLS file {path} does not exist")
        return TlsFiles(settings.tls_certfile, settings.tls_keyfile)
    if settings.tls_self_signed:
        return self_signed(tls_directory(settings.database), settings.host)
    return None


def tls_directory(database: str) -> Path:
    """Where self-signed files live: beside the SQLite file, else the current directory."""
    if database.lower().startswith("sqlite:///"):
        db = Path(database[len("sqlite:///") :])
        return db.with_name(db.name + ".tls")
    return Path("taskgate-tls")


def _names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    if host not in ("", "0.0.0.0", "::", "localhost", "127.0.0.1", "::1"):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _covers(certfile: Path, host: str) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(certfile.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    now = datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc < now + datetime.timedelta(days=1):
        return False
    return all(name in san for name in _names(host))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def self_signed(directory: Path, host: str) -> TlsFiles:
    """A CA and a server certificate in ``directory``, made unless usable ones exist."""
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server-key.pem",
    )
    if ca_path.exists() and key_path.exists() and _covers(cert_path, host):
        return TlsFiles(str(cert_path), str(key_path), str(ca_path.resolve()))
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot make {directory}: {exc.strerror}") from None
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=VALID_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "taskgate local CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(directory / "ca-key.pem", ca_key)
    _write_key(key_path, key)
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(str(cert_path), str(key_path), str(ca_path.resolve()))
