"""Host side of the pipeline's Kubernetes API: per-run TLS credentials and the sidecar's files.

`RunCredentials.new()` makes a fresh CA (EC P-256, valid one day) for one pipeline run, a server
certificate it signs for the given hosts (IP and DNS SANs, plus `kubernetes.default.svc` and
friends), and a random bearer token. The sidecar runs `python3 -c "$(bootstrap_source())"` and
reads two lines on stdin: `code_message()`, the stdlib-only code (`bot/__init__.py` sent empty,
`bot/kube/{__init__,api,patch,server,table}.py`), then `run_message(creds, run)`. The sidecar never
sees the CA's private key: it is dropped once the server certificate is signed.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = timedelta(days=1)
CLUSTER_NAMES = ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local")
SIDECAR_CODE = ("__init__.py", "api.py", "patch.py", "server.py", "table.py")


@dataclass(frozen=True)
class RunCredentials:
    """TLS material and bearer token of one pipeline run's API."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    token: str

    def __repr__(self) -> str:
        return "RunCredentials(ca_pem=..., cert_pem=..., key_pem=<redacted>, token=<redacted>)"

    @classmethod
    def new(cls, hosts: Iterable[str] = ("127.0.0.1", "localhost")) -> RunCredentials:
        """A fresh CA, a server certificate for hosts (and the in-cluster names), and a token."""
        now = datetime.now(UTC)
        not_before, not_after = now - timedelta(minutes=5), now + VALIDITY
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"promisebot run CA {secrets.token_hex(4)}")])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name).issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        sans: list[x509.GeneralName] = []
        seen: set[str] = set()
        for host in [*hosts, *CLUSTER_NAMES]:
            if host in seen:
                continue
            seen.add(host)
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return cls(
            ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            key_pem=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()),
            token=secrets.token_urlsafe(32),
        )


def sidecar_code() -> dict[str, bytes]:
    """The sidecar's code files, by path relative to its PYTHONPATH directory."""
    here = Path(__file__).resolve().parent
    files = {"bot/__init__.py": b""}
    for name in SIDECAR_CODE:
        files[f"bot/kube/{name}"] = (here / name).read_bytes()
    return files


@functools.cache
def bootstrap_source() -> str:
    """The sidecar's `python3 -c` program (`bot/kube/bootstrap.py`)."""
    return (Path(__file__).resolve().parent / "bootstrap.py").read_text(encoding="utf-8")


def run_message(creds: RunCredentials, run: dict[str, Any]) -> bytes:
    """The line that gives a waiting sidecar its run (`bot.kube.server.stdio_main`)."""
    message = {"run": run, "token": creds.token, "cert": creds.cert_pem.decode("ascii"),
               "key": creds.key_pem.decode("ascii")}
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode("utf-8") + b"\n"


@functools.cache
def code_message() -> bytes:
    """The first line a sidecar reads (`bot/kube/bootstrap.py`): its code, {path: source}."""
    sources = {path: data.decode("utf-8") for path, data in sidecar_code().items()}
    return json.dumps(sources, separators=(",", ":"), sort_keys=True).encode("utf-8") + b"\n"
