"""bot.kube.server over real TLS: in process through `serve()`, and as the sidecar would run it,
`python3 -S -s -m bot.kube.server` with PYTHONPATH holding only `payload_files` (stdlib-only and
self-contained; `-I` would ignore PYTHONPATH)."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from kube_run_data import make_run

from bot.kube.pki import RunCredentials, payload_files
from bot.kube.server import KubeServer, serve

OBJ = "/apis/marketplace.kratix.io/v1alpha1/namespaces/default/redis/example"
MERGE = "application/merge-patch+json"


def write_payload(directory: Path, creds: RunCredentials) -> None:
    for name, data in payload_files(creds, make_run()).items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[str, RunCredentials, Path, KubeServer]]:
    creds = RunCredentials.new()
    write_payload(tmp_path, creds)
    server, thread = serve(tmp_path, "127.0.0.1", 0)
    host, port = server.address
    try:
        yield f"https://127.0.0.1:{port}", creds, tmp_path, server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def session(creds: RunCredentials, ca: Path, token: str | None = None) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise win over s.verify
    s.verify = str(ca)
    s.headers["Authorization"] = f"Bearer {creds.token if token is None else token}"
    return s


def test_ready_file_and_get(running):
    url, creds, directory, server = running
    assert (directory / "ready").read_text().strip() == f"127.0.0.1:{server.address[1]}"
    s = session(creds, directory / "ca.crt")
    r = s.get(url + "/version")
    assert r.status_code == 200 and r.json()["gitVersion"].endswith("-promisebot")
    assert r.headers["Content-Type"] == "application/json"
    r = s.get(url + OBJ)  # same keep-alive connection
    assert r.status_code == 200 and r.json()["metadata"]["name"] == "example"


def test_localhost_name_verifies(running):
    url, creds, directory, _ = running
    r = session(creds, directory / "ca.crt").get(url.replace("127.0.0.1", "localhost") + "/api")
    assert r.status_code == 200 and r.json()["kind"] == "APIVersions"


def test_wrong_tokens_are_401(running):
    url, creds, directory, _ = running
    other = RunCredentials.new()
    for token in ("wrong", other.token, ""):
        r = session(creds, directory / "ca.crt", token).get(url + OBJ)
        assert r.status_code == 401
        assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    assert not (directory / "status.json").exists()


def test_other_run_ca_is_not_trusted(running, tmp_path_factory):
    url, creds, _, _ = running
    other_ca = tmp_path_factory.mktemp("other") / "ca.crt"
    other_ca.write_bytes(RunCredentials.new().ca_pem)
    with pytest.raises(requests.exceptions.SSLError):
        session(creds, other_ca).get(url + "/version")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_1_1_refused(running):
    url, _, directory, server = running
    context = ssl.create_default_context(cafile=str(directory / "ca.crt"))
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", server.address[1])) as sock, pytest.raises(ssl.SSLError):
        context.wrap_socket(sock, server_hostname="127.0.0.1")


def test_strategic_merge_is_415(running):
    url, creds, directory, _ = running
    r = session(creds, directory / "ca.crt").patch(
        url + OBJ + "/status", data=json.dumps({"status": {"a": 1}}),
        headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 415 and r.json()["reason"] == "UnsupportedMediaType"


def test_patch_writes_status_json(running):
    url, creds, directory, _ = running
    s = session(creds, directory / "ca.crt")
    r = s.patch(url + OBJ + "/status", data=json.dumps({"status": {"message": "Ready"}}),
                headers={"Content-Type": MERGE})
    assert r.status_code == 200 and r.json()["status"]["message"] == "Ready"
    written = json.loads((directory / "status.json").read_text())
    assert written == r.json()["status"]
    assert written["conditions"] == [{"type": "Reconciled", "status": "Unknown"}]
    assert not [p for p in directory.iterdir() if p.name.startswith(".status.json")]
    r = s.patch(url + OBJ, data=json.dumps({"spec": {}}), headers={"Content-Type": MERGE})
    assert r.status_code == 403


def test_oversized_body_is_413_without_reading_it(running):
    url, creds, directory, _ = running
    r = session(creds, directory / "ca.crt").patch(
        url + OBJ + "/status", data=b"{" + b" " * (3 * 1024 * 1024 + 10) + b"}", headers={"Content-Type": MERGE})
    assert r.status_code == 413 and r.json()["reason"] == "RequestEntityTooLarge"


def sidecar_command(directory: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """The interpreter with -S (no site-packages: not the venv's, not promisebot's editable install)
    and -s, PYTHONPATH the payload directory. `-I` cannot be used: it ignores PYTHONPATH."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(directory)}
    return [sys.executable, "-S", "-s", *args], env


def test_sidecar_code_imports_only_stdlib(tmp_path):
    write_payload(tmp_path, RunCredentials.new())
    probe = ("import sys, json, bot.kube.server; "
             "print(json.dumps([bot.kube.server.__file__, sorted(m for m in sys.modules "
             "if m != '__main__' and m.split('.')[0] not in sys.stdlib_module_names)]))")
    command, env = sidecar_command(tmp_path, "-c", probe)
    out = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    server_file, third_party = json.loads(out)
    assert Path(server_file).resolve() == (tmp_path / "bot/kube/server.py").resolve()
    assert third_party == ["bot", "bot.kube", "bot.kube.api", "bot.kube.patch", "bot.kube.server", "bot.kube.table"]


def test_sidecar_subprocess(tmp_path):
    creds = RunCredentials.new()
    write_payload(tmp_path, creds)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.py")) == [
        "bot/__init__.py", "bot/kube/__init__.py", "bot/kube/api.py", "bot/kube/patch.py", "bot/kube/server.py",
        "bot/kube/table.py"]
    port = free_port()
    command, env = sidecar_command(tmp_path, "-m", "bot.kube.server", "--dir", str(tmp_path),
                                   "--listen", f"127.0.0.1:{port}")
    proc = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "ready").exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the sidecar did not get ready"
            time.sleep(0.05)
        s = session(creds, tmp_path / "ca.crt")
        r = s.patch(f"https://127.0.0.1:{port}{OBJ}/status",
                    data=json.dumps([{"op": "add", "path": "/status/url", "value": "redis://x"}]),
                    headers={"Content-Type": "application/json-patch+json"})
        assert r.status_code == 200, r.text
        assert json.loads((tmp_path / "status.json").read_text())["url"] == "redis://x"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    assert f"PATCH {OBJ}/status 200" in stderr
    assert creds.token not in stderr
