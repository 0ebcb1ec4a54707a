"""The promisebot image (Dockerfile): built here from the local base, no registry; what it is
(OCI labels, non-root, no compiler, one entry point); and a container of it: the embedded
default (`serve`) answering /healthz and turning Docker-healthy, verifying signed webhooks with
the secret read from a `_FILE`, and running pipelines on the engine through the mounted socket."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from image_fixtures import (
    RUNTIME_BASE,
    SECRET,
    TOKEN,
    UID,
    UNREACHABLE_API,
    Built,
    docker,
    docker_socket,
    free_port,
    health,
    health_log,
    http_ok,
    inspect,
    post_webhook,
    process_uids,
    pull_request_opened,
    sign,
    write_secrets,
)
from paths import EXAMPLE_PLATFORM, ROOT
from waiting import wait_for

pytestmark = pytest.mark.docker


def project_version() -> str:
    for line in (ROOT / "pyproject.toml").read_text().splitlines():
        if line.startswith("version = "):
            return line.split('"')[1]
    raise AssertionError("no version in pyproject.toml")


def test_image_builds_from_the_local_base(deploy_images: Built):
    image = inspect(deploy_images.image)
    base = inspect(RUNTIME_BASE)
    # FROM promisebot/runtime-base: its layers are the image's first ones.
    base_layers = base["RootFS"]["Layers"]
    assert image["RootFS"]["Layers"][:len(base_layers)] == base_layers
    config = image["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "promisebot"
    assert labels["org.opencontainers.image.version"] == project_version()
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.description"]
    assert "org.opencontainers.image.source" in labels
    assert config["User"] == f"{UID}:{UID}"
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert config["Cmd"][:1] == ["gunicorn"] and "bot.server.wsgi:app" in config["Cmd"]
    assert "8080/tcp" in config["ExposedPorts"]
    print(f"\nimage {deploy_images.image}: {image['Size'] / 1e6:.0f} MB, base {base['Size'] / 1e6:.0f} MB; "
          f"build-images.sh --deploy took {deploy_images.seconds:.1f} s this session")

    # One entry point: anything but `gunicorn ...` goes to the promisebot CLI.
    out = docker("run", "--rm", deploy_images.image, "--version")
    assert out.stdout.strip() == f"promisebot {project_version()}"
    # The runtime stage holds the virtualenv of the wheels, not what made them.
    probe = ("for c in gcc cc make; do command -v $c && exit 1; done; "
             "test ! -e /wheels && test ! -e /src && test ! -e /tmp/promisebot-wheel && "
             "test ! -w /opt/promisebot && id -u && "
             "git --version >/dev/null && ssh -V 2>/dev/null && "
             "python3 -c 'import docker, redis, rq, gunicorn, bot.server.app'")
    out = docker("run", "--rm", "--entrypoint", "/bin/sh", deploy_images.image, "-c", probe, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == str(UID)


def test_gunicorn_refuses_to_start_without_redis(deploy_images: Built, tmp_path):
    """The default command is the Redis setup's web process: without REDIS_URL it says why and
    stops, rather than run a queue per gunicorn worker."""
    secrets = write_secrets(tmp_path / "secrets", github_token=TOKEN, github_webhook_secret=SECRET)
    out = docker("run", "--rm", "-v", f"{secrets}:/run/secrets:ro",
                 "-e", "PROMISEBOT_GITHUB_TOKEN_FILE=/run/secrets/github_token",
                 "-e", "PROMISEBOT_GITHUB_WEBHOOK_SECRET_FILE=/run/secrets/github_webhook_secret",
                 deploy_images.image, check=False, timeout=120)
    assert out.returncode != 0
    assert "REDIS_URL is not set" in out.stderr


@dataclass(frozen=True)
class Served:
    name: str
    url: str


@pytest.fixture(scope="module")
def served(deploy_images: Built, tmp_path_factory) -> Iterator[Served]:
    """`docker run IMAGE serve --host 0.0.0.0`: the embedded default (no Redis), the GitHub
    token and webhook secret read from files (`_FILE`), the engine's socket mounted (with its
    group, as the image's user is not root), published on a free loopback port."""
    sock = docker_socket()
    secrets = write_secrets(tmp_path_factory.mktemp("secrets"), github_token=TOKEN, github_webhook_secret=SECRET)
    name = f"promisebot-image-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080",
           "-v", f"{secrets}/github_token:/run/secrets/github_token:ro",
           "-v", f"{secrets}/github_webhook_secret:/run/secrets/github_webhook_secret:ro",
           "-e", "PROMISEBOT_GITHUB_TOKEN_FILE=/run/secrets/github_token",
           "-e", "PROMISEBOT_GITHUB_WEBHOOK_SECRET_FILE=/run/secrets/github_webhook_secret",
           "-e", f"PROMISEBOT_GITHUB_API_URL={UNREACHABLE_API}",
           "-v", f"{sock}:/var/run/docker.sock", "--group-add", str(sock.stat().st_gid),
           deploy_images.image, "serve", "--host", "0.0.0.0")
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: http_ok(f"{url}/healthz") or "not running" in health(name), 60, "serve to answer")
        finally:
            print(docker("logs", name, check=False).stderr[-3000:])
        assert http_ok(f"{url}/healthz"), health(name)
        yield Served(name, url)
    finally:
        docker("rm", "-f", name, check=False)


def test_container_answers_healthz_turns_healthy_and_runs_as_uid_10001(served: Served):
    assert http_ok(f"{served.url}/healthz")
    started = time.monotonic()
    wait_for(lambda: health(served.name) != "starting", 90, "the first health check")
    assert health(served.name) == "healthy", health_log(served.name)
    print(f"\nhealthy {time.monotonic() - started:.1f} s after /healthz first answered:\n{health_log(served.name)}")
    uids = process_uids(served.name)
    assert uids and set(uids.values()) == {UID}, uids


def test_signed_webhook_is_queued_and_an_unsigned_one_refused(served: Served):
    body = pull_request_opened()
    accepted = post_webhook(served.url, body, signature=sign(body))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"queued": "change_opened"}

    unsigned = post_webhook(served.url, body, signature=None)
    assert unsigned.status_code == 401, unsigned.text
    forged = post_webhook(served.url, body, signature=sign(body, "not-the-secret"))
    assert forged.status_code == 401, forged.text
    tampered = post_webhook(served.url, body.replace(b'"opened"', b'"closed"', 1), signature=sign(body))
    assert tampered.status_code == 401, tampered.text


def test_readyz_reaches_the_docker_engine_through_the_socket(served: Served):
    """Ready but for the (unreachable) GitHub API: the engine answers through the socket."""
    import requests

    answer = requests.get(f"{served.url}/readyz", timeout=30)
    problems = answer.json()["problems"]
    assert "docker" not in problems, problems
    assert set(problems) == {"github"}, problems


def test_a_pipeline_runs_on_the_engine_through_the_mounted_socket(deploy_images: Built):
    """`promisebot test` in the container runs the example Promise's pipeline container on the
    host's engine (inputs and outputs through the archive API: only the socket is shared)."""
    sock = docker_socket()
    platform = Path(EXAMPLE_PLATFORM)
    out = docker("run", "--rm", "-v", f"{sock}:/var/run/docker.sock", "--group-add", str(sock.stat().st_gid),
                 "-v", f"{platform}:/platform:ro", deploy_images.image, "test",
                 "--promise", "/platform/promises/team-namespace.yaml",
                 "--request", "/platform/requests/team-payments.yaml", check=False, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "succeeded" in out.stdout
    assert "namespace.yaml" in out.stdout and "name: payments" in out.stdout


def test_without_the_socket_group_the_engine_is_out_of_reach(deploy_images: Built):
    """The image's user is not root: the socket's group must be added (docs/deploy.md)."""
    sock = docker_socket()
    if sock.stat().st_mode & 0o006:
        pytest.skip("the socket is open to everyone here")
    probe = "import docker; docker.from_env(timeout=5).ping()"
    out = docker("run", "--rm", "-v", f"{sock}:/var/run/docker.sock", "--entrypoint", "python3",
                 deploy_images.image, "-c", probe, check=False)
    assert out.returncode != 0
    assert "Permission denied" in out.stderr or "PermissionError" in out.stderr, out.stderr[-2000:]
    out = docker("run", "--rm", "-v", f"{sock}:/var/run/docker.sock", "--group-add", str(sock.stat().st_gid),
                 "--entrypoint", "python3", deploy_images.image, "-c", probe, check=False)
    assert out.returncode == 0, out.stderr[-2000:]


def test_json_logs_name_no_secret(served: Served):
    """The secrets read from files never reach the logs."""
    logs = docker("logs", served.name).stdout + docker("logs", served.name).stderr
    assert TOKEN not in logs and SECRET not in logs
    assert any(line.startswith("{") and json.loads(line) for line in logs.splitlines())
