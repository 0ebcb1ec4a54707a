"""Shared helpers for the runner tests: local images (built, never pulled), model builders,
and a check that nothing labelled by the runner is left on the engine."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from bot.model.objects import Container, Pipeline, Promise, PromiseAPI, ResourceRequest, Source
from bot.settings import RunnerSettings, load_settings
from runners.base import SESSION_LABEL
from runners.docker import DockerRunner

ROOT = Path(__file__).resolve().parent.parent
BUSYBOX = "promisebot/busybox:latest"
PYTHON = "promisebot/python:latest"


@pytest.fixture(scope="module")
def runner() -> Iterator[DockerRunner]:
    """One DockerRunner per test module; at the end, nothing of its session left on the engine."""
    r = DockerRunner()
    yield r
    r.close()
    assert leftovers(r.session) == []


@pytest.fixture(scope="session")
def images() -> None:
    """Build the local test images once per machine (scripts/build-images.sh is idempotent)."""
    subprocess.run([str(ROOT / "scripts" / "build-images.sh")], check=True, capture_output=True)


def settings(**overrides: Any) -> RunnerSettings:
    s = load_settings().runner
    for key, value in overrides.items():
        setattr(s, key, value)
    return s


def sh(name: str, script: str, image: str = BUSYBOX, **kw: Any) -> Container:
    return Container(name=name, image=image, command=["sh", "-c"], args=[script],
                     image_pull_policy=kw.pop("image_pull_policy", "Never"), **kw)


def pipeline(name: str, *containers: Container) -> Pipeline:
    return Pipeline(name=name, containers=list(containers), spec={}, source=Source("promise.yaml", 10))


def promise(name: str = "web", workflows: dict[tuple[str, str], list[Pipeline]] | None = None,
            selectors: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> Promise:
    body = {"apiVersion": "platform.kratix.io/v1alpha1", "kind": "Promise",
            "metadata": {"name": name, "annotations": annotations or {}}, "spec": {"api": {}}}
    return Promise(name=name, body=body, source=Source("promise.yaml"),
                   api=PromiseAPI(group="example.io", kind="Web", plural="webs", version="v1", scope="Namespaced",
                                  schema={}),
                   destination_selectors=selectors or {}, workflows=workflows or {})


def request(name: str = "shop", namespace: str = "team-a", spec: dict[str, Any] | None = None) -> ResourceRequest:
    body = {"apiVersion": "example.io/v1", "kind": "Web",
            "metadata": {"name": name, "namespace": namespace, "generation": 3}, "spec": spec or {"size": 2}}
    return ResourceRequest(promise="web", api_version="example.io/v1", kind="Web", group="example.io",
                           name=name, namespace=namespace, body=body, source=Source("requests/shop.yaml"))


def leftovers(session: str) -> list[str]:
    """Containers and volumes a runner session left on the engine."""
    client = docker.from_env()
    label = {"label": f"{SESSION_LABEL}={session}"}
    found = [f"container {c.name}" for c in client.containers.list(all=True, filters=label)]
    found += [f"volume {v.name}" for v in client.volumes.list(filters=label)]
    return found
