"""Shared pieces of the reconcile tests: a real platform repo and a real Git state store on
disk, YAML builders, and a reconcile through the real Docker runner (local images only)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.reconcile import context, run
from bot.reconcile.engine import ReconcileReport, reconcile
from bot.state.bookkeeping import Bookkeeping
from runners.base import Runner
from runners.docker import DockerRunner

IMAGE = "promisebot/busybox:latest"
GROUP = "test.promisebot.io"
STATE_BRANCH = "promisebot/state"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def pipeline(name: str, script: str) -> dict[str, Any]:
    return {
        "apiVersion": "platform.kratix.io/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": IMAGE, "command": ["sh", "-c", script]}]},
    }


def promise(
    name: str,
    *,
    kind: str | None = None,
    configure: str | None = "echo \"kind: Thing\" > /kratix/output/thing.yaml",
    delete: str | None = None,
    promise_configure: str | None = None,
    dependencies: list[dict[str, Any]] | None = None,
    selectors: dict[str, str] | None = None,
    required: list[dict[str, str]] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    kind = kind or name.capitalize()
    workflows: dict[str, Any] = {}
    if configure:
        workflows.setdefault("resource", {})["configure"] = [pipeline("instance", configure)]
    if delete:
        workflows.setdefault("resource", {})["delete"] = [pipeline("cleanup", delete)]
    if promise_configure:
        workflows.setdefault("promise", {})["configure"] = [pipeline("setup", promise_configure)]
    spec: dict[str, Any] = {
        "api": {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{kind.lower()}s.{GROUP}"},
            "spec": {
                "group": GROUP,
                "names": {"kind": kind, "plural": f"{kind.lower()}s", "singular": kind.lower()},
                "scope": "Namespaced",
                "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                    "openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}],
            },
        },
        "workflows": workflows,
    }
    if dependencies:
        spec["dependencies"] = dependencies
    if selectors:
        spec["destinationSelectors"] = [{"matchLabels": selectors}]
    if required:
        spec["requiredPromises"] = required
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "platform.kratix.io/v1alpha1", "kind": "Promise", "metadata": meta, "spec": spec}


def request(kind: str, name: str, spec: dict[str, Any] | None = None, namespace: str = "default",
            labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": meta, "spec": spec or {}}


def destination(name: str, labels: dict[str, str] | None = None, *, path: str | None = None,
                mode: str = "nestedByMetadata", cleanup: str = "none", store: str = "state") -> dict[str, Any]:
    spec: dict[str, Any] = {"path": path or name, "stateStoreRef": {"kind": "GitStateStore", "name": store},
                            "filepath": {"mode": mode}, "cleanup": cleanup}
    return {"apiVersion": "platform.kratix.io/v1alpha1", "kind": "Destination",
            "metadata": {"name": name, "labels": labels or {}}, "spec": spec}


def git_store(name: str, url: str, branch: str = "main") -> dict[str, Any]:
    return {"apiVersion": "platform.kratix.io/v1alpha1", "kind": "GitStateStore", "metadata": {"name": name},
            "spec": {"url": url, "branch": branch, "gitAuthor": {"name": "promisebot", "email": "bot@example.com"}}}


class Env:
    """A platform repo (working tree; pushes into it update it) and a bare state-store repo.

    `template`: a directory copied as the platform repo's first content (it must name its own
    state stores); by default the repo gets one GitStateStore "state" for `state.git`.
    """

    def __init__(self, tmp: Path, template: Path | None = None, runner: Runner | None = None) -> None:
        self.tmp = tmp
        self.platform = tmp / "platform"
        self.state = tmp / "state.git"
        if template is None:
            self.platform.mkdir()
        else:
            shutil.copytree(template, self.platform)
        git(self.platform, "init", "-q", "-b", "main")
        git(self.platform, "config", "user.email", "dev@example.com")
        git(self.platform, "config", "user.name", "dev")
        git(self.platform, "config", "receive.denyCurrentBranch", "updateInstead")
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.state)], check=True)
        seed = tmp / "seed"
        subprocess.run(["git", "clone", "-q", str(self.state), str(seed)], check=True, capture_output=True)
        git(seed, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "--allow-empty", "-m", "init")
        git(seed, "push", "-q", "origin", "main")
        if template is None:
            self.write("stores/state.yaml", git_store("state", "../state.git"))
        self.runner: Runner = runner if runner is not None else DockerRunner()

    # -- the platform repo ---------------------------------------------------
    def write(self, path: str, *docs: dict[str, Any]) -> None:
        target = self.platform / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump_all(list(docs), sort_keys=False))

    def remove(self, path: str) -> None:
        (self.platform / path).unlink()

    def commit(self, message: str = "change") -> str:
        git(self.platform, "add", "-A")
        git(self.platform, "commit", "-q", "--allow-empty", "-m", message)
        return git(self.platform, "rev-parse", "HEAD")

    # -- reconciling ---------------------------------------------------------
    def reconcile(self, **kwargs: Any) -> ReconcileReport:
        return reconcile(self.platform, runner=self.runner, **kwargs)

    def reconcile_subprocess(self, crash_at: str | None = None, *args: str) -> subprocess.CompletedProcess[str]:
        """`promisebot reconcile` in a process of its own (through tests/crash_cli.py), with this
        Env's kind of runner (a fake one: tests/fake_runner.py's defaults); `crash_at`: the
        process is killed (exit 137) at that checkpoint of the run."""
        root = Path(__file__).resolve().parent.parent
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
        options = [*(["--crash-at", crash_at] if crash_at else []),
                   *([] if isinstance(self.runner, DockerRunner) else ["--fake-runner"])]
        return subprocess.run([sys.executable, str(root / "tests" / "crash_cli.py"), *options, "reconcile",
                               "--platform", str(self.platform), *args],
                              env=env, capture_output=True, text=True, cwd=root)

    # -- the state store -----------------------------------------------------
    def files(self) -> dict[str, str]:
        out = git(self.state, "ls-tree", "-r", "--name-only", "main")
        return {p: subprocess.run(["git", "show", f"main:{p}"], cwd=self.state, check=True, capture_output=True,
                                  text=True).stdout for p in out.splitlines() if p}

    def store_commits(self) -> int:
        return int(git(self.state, "rev-list", "--count", "main"))

    def bookkeeping(self) -> Bookkeeping:
        return Bookkeeping.open(self.platform, STATE_BRANCH)

    def state_branch_commits(self) -> int:
        out = subprocess.run(["git", "rev-list", "--count", STATE_BRANCH], cwd=self.platform,
                             capture_output=True, text=True, check=False).stdout.strip()
        return int(out or 0)


class Clock:
    """The engine's clock (`now_utc` where bot.reconcile reads it), moved by hand: retry times and
    the periodic reconcile are tested without sleeping."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = datetime.now(UTC)
        for module in (context, run):
            monkeypatch.setattr(module, "now_utc", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def one_request_platform(tmp: Path, runner: Runner | None = None) -> Env:
    """A platform with one Destination, one Promise and one request (Redis/default/r1), committed."""
    env = Env(tmp, runner=runner)
    env.write("destinations/dev.yaml", destination("dev"))
    env.write("promises/redis.yaml", promise("redis"))
    env.write("requests/r1.yaml", request("Redis", "r1"))
    env.commit("install")
    return env
