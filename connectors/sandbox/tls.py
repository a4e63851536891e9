"""A test certificate authority for the sandbox's loopback TLS.

simple-salesforce only speaks https, so the sandbox serves TLS with a server certificate for 127.0.0.1,
localhost and ::1 signed by a throwaway CA. Clients trust the CA file (`requests` `verify=`, urllib3
`ca_certs`, `REQUESTS_CA_BUNDLE`, hubspot-api-client `ssl_ca_cert`). Never trust it system-wide: its key
sits unprotected in the directory.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT_NAME = "sandbox-ca.pem"
CA_KEY_NAME = "sandbox-ca-key.pem"
SERVER_CERT_NAME = "sandbox-server.pem"
SERVER_KEY_NAME = "sandbox-server-key.pem"
SERVER_DNS_NAMES = ("localhost",)
SERVER_IPS = ("127.0.0.1", "::1")
VALID_FOR = dt.timedelta(days=825)
RENEW_BEFORE = dt.timedelta(days=7)  # regenerate when this close to expiry


@dataclass(frozen=True)
class TLSFiles:
    ca_cert: Path  # what clients trust
    cert: Path  # the server certificate (PEM)
    key: Path  # the server key (PEM, unencrypted)


def default_tls_dir() -> Path:
    """Where the sandbox keeps its test CA when no directory is given (per user, outside the repo)."""
    return Path(tempfile.gettempdir()) / f"kpi-agent-sandbox-tls-{os.getuid()}"


def ensure_test_ca(directory: Path) -> TLSFiles:
    """The test CA and server certificate in `directory`, made now unless present and still valid."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(directory / CA_CERT_NAME, directory / SERVER_CERT_NAME, directory / SERVER_KEY_NAME)
    # A lock, so two processes starting at once do not mix one's CA with the other's server certificate.
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _still_valid(files):
            _write_new_ca(directory, files)
    return files


def _still_valid(files: TLSFiles) -> bool:
    try:
        ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        server = x509.load_pem_x509_certificate(files.cert.read_bytes())
        serialization.load_pem_private_key(files.key.read_bytes(), password=None)
    except (OSError, ValueError):
        return False
    deadline = dt.datetime.now(dt.UTC) + RENEW_BEFORE
    if min(ca.not_valid_after_utc, server.not_valid_after_utc) < deadline:
        return False
    if server.issuer != ca.subject:
        return False
    try:
        server.verify_directly_issued_by(ca)
    except Exception:  # InvalidSignature, ValueError, TypeError: any failure means make a new one
        return False
    return True


def _write_new_ca(directory: Path, files: TLSFiles) -> None:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)  # tolerate small clock skew
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sales-kpi-agent sandbox test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in SERVER_DNS_NAMES]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    # Keys first, certificates last: a reader that sees the new CA certificate also sees the rest.
    _write_atomically(directory / CA_KEY_NAME, _private_pem(ca_key))
    _write_atomically(files.key, _private_pem(server_key))
    _write_atomically(files.cert, server_cert.public_bytes(serialization.Encoding.PEM))
    _write_atomically(files.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
    )


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_atomically(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o600 if b"PRIVATE KEY" in data else 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
