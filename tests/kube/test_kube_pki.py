"""bot.kube.pki: per-run credentials and the files shipped to the API sidecar."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from kube_run_data import make_run

from bot.kube.pki import RunCredentials, bootstrap_source, code_message, run_message


def test_new_credentials():
    creds = RunCredentials.new(hosts=("127.0.0.1", "localhost", "172.17.0.1"))
    ca = x509.load_pem_x509_certificate(creds.ca_pem)
    cert = x509.load_pem_x509_certificate(creds.cert_pem)
    key = load_pem_private_key(creds.key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    cert.verify_directly_issued_by(ca)
    assert cert.public_key() == key.public_key()
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.IPAddress)) == {ipaddress.ip_address("127.0.0.1"),
                                                             ipaddress.ip_address("172.17.0.1")}
    assert {"localhost", "kubernetes.default.svc", "kubernetes"} <= set(sans.get_values_for_type(x509.DNSName))
    assert cert.not_valid_after_utc - datetime.now(UTC) <= timedelta(days=1)
    assert len(creds.token) >= 40
    assert creds.token not in repr(creds)


def test_each_run_is_fresh():
    a, b = RunCredentials.new(), RunCredentials.new()
    assert a.ca_pem != b.ca_pem and a.token != b.token and a.key_pem != b.key_pem


def test_the_messages_a_sidecar_reads():
    creds = RunCredentials.new()
    run = make_run()
    code = json.loads(code_message())
    assert set(code) == {"bot/__init__.py", "bot/kube/__init__.py", "bot/kube/api.py", "bot/kube/patch.py",
                         "bot/kube/server.py", "bot/kube/table.py"}
    assert code["bot/__init__.py"] == "" and "class KubeApi" in code["bot/kube/api.py"]
    for name, source in code.items():
        assert "import cryptography" not in source and "from cryptography" not in source, name
    line = run_message(creds, run)
    assert line.endswith(b"\n") and line.count(b"\n") == 1  # one line: newlines in PEMs are escaped
    message = json.loads(line)
    assert message == {"run": run, "token": creds.token, "cert": creds.cert_pem.decode(),
                       "key": creds.key_pem.decode()}
    assert "stdio_main" in bootstrap_source()
