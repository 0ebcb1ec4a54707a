"""The deployment images for the tests of tests/image: built once per session by
`scripts/build-images.sh --deploy` (idempotent; the base rootfs tarballs and the wheels are
cached per machine, nothing is pulled), and helpers to run them: secret files, signed webhooks,
free ports, waiting for Docker health states."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from paths import FIXTURES, ROOT

IMAGE = "promisebot/promisebot:latest"
RUNTIME_BASE = "promisebot/runtime-base:latest"
REDIS_IMAGE = "promisebot/redis:latest"
UID = 10001
SECRET = "image-webhook-secret"
TOKEN = "ghp_imagetestsonly000000000000000000000"
# A GitHub API nobody answers: the request path makes no forge call, the jobs' calls fail fast.
UNREACHABLE_API = "http://127.0.0.1:9"


@dataclass(frozen=True)
class Built:
    image: str
    seconds: float


@pytest.fixture(scope="session")
def deploy_images() -> Built:
    """promisebot/runtime-base, promisebot/redis and promisebot/promisebot, built (or found up
    to date) by the same script CI and users run."""
    started = time.monotonic()
    out = subprocess.run([str(ROOT / "scripts" / "build-images.sh"), "--deploy"], capture_output=True, text=True)
    seconds = time.monotonic() - started
    assert out.returncode == 0, f"scripts/build-images.sh --deploy failed:\n{out.stderr[-6000:]}"
    print(f"\nbuild-images.sh --deploy: {seconds:.1f} s\n{out.stderr.strip()}")
    return Built(IMAGE, seconds)


def docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
    return out


def inspect(ref: str, kind: str = "image") -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(docker(kind, "inspect", ref).stdout)
    return data[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def docker_socket() -> Path:
    """The local engine's socket, which the containers mount (skip when the engine is remote)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        pytest.skip(f"DOCKER_HOST={host}: these tests mount the engine's local socket")
    return Path(host.removeprefix("unix://"))


def write_secrets(directory: Path, **secrets: str) -> Path:
    """One file per secret, readable by the image's user only (uid 10001) when we may chown
    (as root), else by everyone (a bind-mounted file keeps its owner and mode)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in secrets.items():
        path = directory / name
        path.write_text(value + "\n")
        try:
            os.chown(path, UID, UID)
            path.chmod(0o400)
        except PermissionError:
            path.chmod(0o444)
    return directory


def sign(body: bytes, secret: str = SECRET) -> str:
    """X-Hub-Signature-256, as GitHub computes it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def pull_request_opened() -> bytes:
    """GitHub's published pull_request "opened" example (its base is the default branch)."""
    return (FIXTURES / "webhooks" / "github" / "pull_request.opened.payload.json").read_bytes()


def post_webhook(base_url: str, body: bytes, *, signature: str | None, delivery: str | None = None) -> requests.Response:
    headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
               "Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return requests.post(f"{base_url}/webhooks/github", data=body, headers=headers, timeout=30)


def health(container: str) -> str:
    """A container's Docker health status (starting, healthy, unhealthy), or its state when it
    has no health check or is not running."""
    state = inspect(container, "container")["State"]
    if not state.get("Running"):
        return f"not running ({state.get('Status')}, exit {state.get('ExitCode')})"
    return str((state.get("Health") or {}).get("Status") or "no healthcheck")


def health_log(container: str) -> str:
    log = (inspect(container, "container")["State"].get("Health") or {}).get("Log") or []
    return "\n".join(f"  exit {entry['ExitCode']}: {entry['Output'].strip()}" for entry in log[-3:])


def http_ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def process_uids(container: str) -> dict[str, int]:
    """The uid of every process of a container (`docker top`: the engine's view, on its host)."""
    lines = docker("top", container, "-eo", "pid,uid,args").stdout.splitlines()[1:]
    rows = [line.split(None, 2) for line in lines if line.strip()]
    return {f"{pid} {args}": int(uid) for pid, uid, args in rows}
