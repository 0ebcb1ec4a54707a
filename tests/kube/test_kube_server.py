"""bot.kube.server over real TLS: in process through `serve()`, and as the sidecar runs it,
`python3 -S -s -c <bot/kube/bootstrap.py>` with the code and the run sent on stdin (no
site-packages: stdlib-only and self-contained)."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from kube_run_data import make_run
from kube_serving import served_run

from bot.kube.pki import RunCredentials, bootstrap_source, code_message, run_message, sidecar_code
from bot.kube.server import KubeServer

OBJ = "/apis/marketplace.kratix.io/v1alpha1/namespaces/default/redis/example"
MERGE = "application/merge-patch+json"


def write_code(directory: Path) -> None:
    for name, data in sidecar_code().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[str, RunCredentials, Path, KubeServer]]:
    with served_run(tmp_path) as (url, creds, server):
        yield url, creds, tmp_path, server


def session(creds: RunCredentials, ca: Path, token: str | None = None) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise win over s.verify
    s.verify = str(ca)
    s.headers["Authorization"] = f"Bearer {creds.token if token is None else token}"
    return s


def test_get(running):
    url, creds, directory, server = running
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
    url, creds, directory, server = running
    other = RunCredentials.new()
    for token in ("wrong", other.token, ""):
        r = session(creds, directory / "ca.crt", token).get(url + OBJ)
        assert r.status_code == 401
        assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    assert server.api.status() is None


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


def test_patch_records_the_status(running):
    url, creds, directory, server = running
    s = session(creds, directory / "ca.crt")
    r = s.patch(url + OBJ + "/status", data=json.dumps({"status": {"message": "Ready"}}),
                headers={"Content-Type": MERGE})
    assert r.status_code == 200 and r.json()["status"]["message"] == "Ready"
    written = server.api.status()
    assert written == r.json()["status"]
    assert written["conditions"] == [{"type": "Reconciled", "status": "Unknown"}]
    r = s.patch(url + OBJ, data=json.dumps({"spec": {}}), headers={"Content-Type": MERGE})
    assert r.status_code == 403


def test_oversized_body_is_413_without_reading_it(running):
    url, creds, directory, _ = running
    r = session(creds, directory / "ca.crt").patch(
        url + OBJ + "/status", data=b"{" + b" " * (3 * 1024 * 1024 + 10) + b"}", headers={"Content-Type": MERGE})
    assert r.status_code == 413 and r.json()["reason"] == "RequestEntityTooLarge"


def test_sidecar_code_imports_only_stdlib(tmp_path):
    write_code(tmp_path)
    probe = ("import sys, json, bot.kube.server; "
             "print(json.dumps([bot.kube.server.__file__, sorted(m for m in sys.modules "
             "if m != '__main__' and m.split('.')[0] not in sys.stdlib_module_names)]))")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(tmp_path)}
    out = subprocess.run([sys.executable, "-S", "-s", "-c", probe], env=env, cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout
    server_file, third_party = json.loads(out)
    assert Path(server_file).resolve() == (tmp_path / "bot/kube/server.py").resolve()
    assert third_party == ["bot", "bot.kube", "bot.kube.api", "bot.kube.patch", "bot.kube.server", "bot.kube.table"]


def ask(proc: subprocess.Popen[bytes], line: bytes) -> dict:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line)
    proc.stdin.flush()
    return json.loads(proc.stdout.readline())


def test_sidecar_process_over_stdin_and_stdout(tmp_path):
    """As the runner drives it (runners/sidecar.py): a bare interpreter (no site-packages, an
    empty directory, no PYTHONPATH) gets its code and then its run on stdin, answers `ready`, serves,
    answers `sync` with what was written, and stops when stdin closes."""
    creds = RunCredentials.new()
    (tmp_path / "ca.crt").write_bytes(creds.ca_pem)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    proc = subprocess.Popen([sys.executable, "-S", "-s", "-c", bootstrap_source()], env=env, cwd=tmp_path,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdin is not None
        proc.stdin.write(code_message())
        message = json.loads(run_message(creds, make_run()))
        ready = ask(proc, json.dumps({**message, "listen": "127.0.0.1:0"}).encode() + b"\n")
        port = int(ready["ready"].rpartition(":")[2])
        assert ask(proc, b'{"sync":true}\n') == {"status": None}
        s = session(creds, tmp_path / "ca.crt")
        r = s.patch(f"https://127.0.0.1:{port}{OBJ}/status",
                    data=json.dumps([{"op": "add", "path": "/status/url", "value": "redis://x"}]),
                    headers={"Content-Type": "application/json-patch+json"})
        assert r.status_code == 200, r.text
        assert ask(proc, b'{"sync":true}\n')["status"]["url"] == "redis://x"
        assert "error" in ask(proc, b'{"what":1}\n')
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
        stderr = proc.stderr.read() if proc.stderr else b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = stderr.decode()
    assert f"PATCH {OBJ}/status 200" in text
    assert creds.token not in text and creds.key_pem.decode() not in text
    assert not list(tmp_path.glob("**/*.py"))  # the code stayed in memory


def test_sidecar_process_that_cannot_serve_says_why(tmp_path):
    creds = RunCredentials.new()
    proc = subprocess.Popen([sys.executable, "-S", "-s", "-c", bootstrap_source()], cwd=tmp_path,
                            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(code_message())
    message = {**json.loads(run_message(creds, make_run())), "key": "not a key", "listen": "127.0.0.1:0"}
    reply = ask(proc, json.dumps(message).encode() + b"\n")
    assert reply["error"].startswith("SSLError"), reply
    assert proc.wait(timeout=10) == 1
    proc.communicate()
