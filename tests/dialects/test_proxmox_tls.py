"""``taskgate serve`` TLS: the self-signed CA and certificate, and the flags' settings."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography import x509

from taskgate.cli import options
from taskgate.cli.serve import base_url
from taskgate.cli.tls import self_signed, tls_directory, tls_files
from taskgate.errors import ConfigurationError
from taskgate.settings import Settings


def test_self_signed_is_made_once_and_verifies(tmp_path: Path) -> None:
    files = self_signed(tmp_path / "db.tls", "127.0.0.1")
    assert files.ca is not None
    assert (Path(files.keyfile).stat().st_mode & 0o777) == 0o600
    cert = x509.load_pem_x509_certificate(Path(files.certfile).read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    # a client that trusts only the CA accepts the server certificate's chain
    context = ssl.create_default_context(cafile=files.ca)
    assert context.get_ca_certs()[0]["subject"] == ((("commonName", "taskgate local CA"),),)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.certfile, files.keyfile)
    first = Path(files.certfile).read_bytes()
    again = self_signed(tmp_path / "db.tls", "127.0.0.1")
    assert Path(again.certfile).read_bytes() == first
    other = self_signed(tmp_path / "db.tls", "pve.example.org")  # a new name: a new cert
    assert Path(other.certfile).read_bytes() != first


def test_tls_settings(tmp_path: Path) -> None:
    assert tls_files(Settings()) is None
    assert tls_directory("sqlite:///var/x.db") == Path("var/x.db.tls")
    assert tls_directory("memory://") == Path("taskgate-tls")
    with pytest.raises(ConfigurationError, match="both"):
        tls_files(Settings(tls_certfile="a.pem"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        tls_files(Settings(tls_certfile=str(tmp_path / "a"), tls_keyfile=str(tmp_path / "b")))
    made = tls_files(Settings(database=f"sqlite:///{tmp_path}/t.db", tls_self_signed=True))
    assert made is not None and Path(made.certfile).parent == tmp_path / "t.db.tls"
    assert base_url("127.0.0.1", 8006, tls=True) == "https://127.0.0.1:8006"


def test_dialect_flag_is_repeatable() -> None:
    flags = {"dialects": ("proxmox", "gcore"), "tls_self_signed": True}
    settings = options.settings_from(flags)
    assert settings.dialects == ("proxmox", "gcore") and settings.tls_self_signed
    assert options.settings_from({"dialects": ()}).dialects == ()
