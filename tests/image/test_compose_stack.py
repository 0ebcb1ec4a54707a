"""docker-compose.yml as users run it (Debian's docker-compose 1.29): web (gunicorn), two
workers and Redis come up healthy; the web answers through its published port and queues a
signed webhook on Redis, where a worker takes it; Redis keeps its data across a restart (the
append-only file in its volume); `down -v` leaves nothing of the project behind.

The test's settings are the file's own variables (no override file): the locally built images
(promisebot/promisebot, and promisebot/redis in place of redis:7), a temporary directory of
secret files, a free loopback port, the Docker socket's group, an unreachable GitHub API."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from image_fixtures import (
    IMAGE,
    REDIS_IMAGE,
    SECRET,
    TOKEN,
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
    pull_request_opened,
    sign,
    write_secrets,
)
from paths import ROOT
from waiting import wait_for

pytestmark = pytest.mark.docker

SERVICES = ("web", "worker-1", "worker-2", "redis")


@dataclass
class Stack:
    project: str
    env: dict[str, str]
    url: str
    up_seconds: float = 0.0
    containers: dict[str, str] = field(default_factory=dict)

    def compose(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        binary = shutil.which("docker-compose")
        assert binary, "docker-compose is not installed: run scripts/setup.sh"
        out = subprocess.run([binary, "--ansi", "never", "-p", self.project, "-f", str(ROOT / "docker-compose.yml"),
                              "--project-directory", str(ROOT), *args],
                             env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"docker-compose {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
        return out

    def logs(self, *services: str) -> str:
        return self.compose("logs", "--no-color", *services, check=False).stdout

    def container(self, service: str) -> str:
        if service not in self.containers:
            ids = self.compose("ps", "-q", service).stdout.split()
            assert len(ids) == 1, f"{service}: containers {ids}"
            self.containers[service] = ids[0]
        return self.containers[service]

    def leftovers(self) -> list[str]:
        label = f"label=com.docker.compose.project={self.project}"
        found = [f"container {c}" for c in docker("ps", "-aq", "--filter", label).stdout.split()]
        found += [f"volume {v}" for v in docker("volume", "ls", "-q", "--filter", label).stdout.split()]
        found += [f"network {n}" for n in docker("network", "ls", "-q", "--filter", label).stdout.split()]
        found += [f"volume {v}" for v in docker("volume", "ls", "-q").stdout.split()
                  if v.startswith(f"{self.project}_") and f"volume {v}" not in found]
        return found


@pytest.fixture
def stack(deploy_images: Built, tmp_path) -> Iterator[Stack]:
    sock = docker_socket()
    for image in (IMAGE, REDIS_IMAGE):
        docker("image", "inspect", image)  # present: compose must neither build nor pull
    port = free_port()
    env = dict(os.environ,
               PROMISEBOT_IMAGE=IMAGE, PROMISEBOT_REDIS_IMAGE=REDIS_IMAGE,
               PROMISEBOT_SECRETS=str(write_secrets(tmp_path / "secrets", github_token=TOKEN,
                                                    github_webhook_secret=SECRET)),
               PROMISEBOT_PUBLISH=f"127.0.0.1:{port}", PROMISEBOT_DOCKER_SOCKET=str(sock),
               PROMISEBOT_DOCKER_GID=str(sock.stat().st_gid), PROMISEBOT_GITHUB_API_URL=UNREACHABLE_API)
    env.pop("COMPOSE_FILE", None)
    env.pop("COMPOSE_PROJECT_NAME", None)
    stack = Stack(f"pbtest{uuid.uuid4().hex[:8]}", env, f"http://127.0.0.1:{port}")
    env["PROMISEBOT_HOSTNAME_PREFIX"] = stack.project
    try:
        yield stack
    finally:
        if stack.leftovers():
            print(stack.logs()[-8000:])
            stack.compose("down", "-v", "-t", "5", "--remove-orphans", check=False)


def test_compose_brings_up_web_two_workers_and_redis_healthy_then_down_cleans_up(stack: Stack):
    started = time.monotonic()
    stack.compose("up", "-d", "--no-build")

    def all_healthy() -> bool:
        states = {s: health(stack.container(s)) for s in SERVICES}
        broken = {s: state for s, state in states.items() if state not in ("starting", "healthy")}
        assert not broken, f"{broken}\n{stack.logs()[-6000:]}"
        return all(state == "healthy" for state in states.values())

    try:
        wait_for(all_healthy, 90, "every service to be healthy")
    except AssertionError:
        for service in SERVICES:
            print(f"{service}: {health(stack.container(service))}\n{health_log(stack.container(service))}")
        raise
    stack.up_seconds = time.monotonic() - started
    print(f"\ndocker-compose up -d: web, 2 workers and Redis healthy in {stack.up_seconds:.1f} s")
    assert len(stack.compose("ps", "-q").stdout.split()) == len(SERVICES)
    for service in ("worker-1", "worker-2"):
        assert "metrics on :9100 answer" in health_log(stack.container(service))
        hostname = inspect(stack.container(service), "container")["Config"]["Hostname"]
        assert hostname == f"{stack.project}-{service}"

    # The web process, through the published port.
    assert http_ok(f"{stack.url}/healthz")
    body = pull_request_opened()
    assert post_webhook(stack.url, body, signature=None).status_code == 401
    delivery = f"compose-{uuid.uuid4().hex[:8]}"
    accepted = post_webhook(stack.url, body, signature=sign(body), delivery=delivery)
    assert accepted.status_code == 202, accepted.text
    # Queued on Redis, run by a worker (which then fails to reach the unreachable GitHub API and
    # schedules a retry: the job's lines carry the delivery id).
    wait_for(lambda: f"'delivery': '{delivery}'" in stack.logs("worker-1", "worker-2")
             or delivery in stack.logs("worker-1", "worker-2"), 60, "a worker to take the job")
    assert TOKEN not in stack.logs() and SECRET not in stack.logs()

    # Redis persists: a key survives a restart (appendonly in the named volume).
    redis = stack.container("redis")
    assert docker("exec", redis, "redis-cli", "config", "get", "appendonly").stdout.split() == ["appendonly", "yes"]
    docker("exec", redis, "redis-cli", "set", "promisebot:test:persisted", delivery)
    stack.compose("restart", "-t", "10", "redis")
    wait_for(lambda: health(redis) == "healthy", 60, "Redis to be healthy again")
    assert docker("exec", redis, "redis-cli", "get", "promisebot:test:persisted").stdout.strip() == delivery
    # ... and the web process and the workers carry on (rq workers reconnect by themselves).
    wait_for(all_healthy, 90, "every service to be healthy after Redis restarted")
    assert http_ok(f"{stack.url}/healthz")

    stack.compose("down", "-v", "-t", "10", "--remove-orphans")
    assert stack.leftovers() == []
