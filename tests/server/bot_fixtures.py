"""A whole bot for tests: a platform repo served as a bare repository on disk (with
refs/pull/N/head), a Git state store, the GitHub or GitLab stand-in, and the real flask app
under a real HTTP server on loopback, fed with the forges' published webhook examples (adapted
to this repository) and signed as the forge signs them."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import requests
from paths import FIXTURES
from reconcile_fixtures import destination, git, promise, request
from werkzeug.serving import make_server

from bot.jobs.handlers import run_event
from bot.jobs.queue import InlineQueue
from bot.jobs.services import Services
from bot.server.app import create_app
from bot.server.config import BotConfig
from runners.base import Runner

SECRET = "webhook-secret-for-tests"
TOKEN = "ghp_tokenfortestsonly0000000000000000"
REPO = "acme/platform"


def yaml_dump(*docs: dict[str, Any]) -> str:
    import yaml
    return yaml.safe_dump_all(list(docs), sort_keys=False)


class PlatformRemote:
    """The platform repo as the forge hosts it (a bare repo) and a clone to make commits in."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.remote = tmp / "platform.git"
        self.state = tmp / "state.git"
        for bare in (self.remote, self.state):
            subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
        seed = tmp / "state-seed"
        subprocess.run(["git", "clone", "-q", str(self.state), str(seed)], check=True, capture_output=True)
        git(seed, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "--allow-empty", "-m", "init")
        git(seed, "push", "-q", "origin", "main")
        self.work = tmp / "work"
        subprocess.run(["git", "clone", "-q", str(self.remote), str(self.work)], check=True, capture_output=True)
        git(self.work, "config", "user.email", "dev@example.com")
        git(self.work, "config", "user.name", "dev")
        git(self.work, "checkout", "-q", "-b", "main")
        store = {"apiVersion": "platform.kratix.io/v1alpha1", "kind": "GitStateStore", "metadata": {"name": "state"},
                 "spec": {"url": str(self.state), "branch": "main"}}
        self.write("stores/state.yaml", store)
        self.write("destinations/dev.yaml", destination("dev"))
        self.write("promises/redis.yaml", promise("redis"))
        self.base = self.commit("platform")
        git(self.work, "push", "-q", "origin", "main")

    def write(self, path: str, *docs: dict[str, Any]) -> None:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml_dump(*docs))

    def commit(self, message: str) -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def open_change(self, number: int, name: str = "r1", spec: dict[str, Any] | None = None) -> str:
        """A branch adding one request, pushed as the forge keeps a PR head: refs/pull/N/head."""
        git(self.work, "checkout", "-q", "-B", f"change-{number}", "main")
        self.write(f"requests/{name}.yaml", request("Redis", name, spec=spec))
        head = self.commit(f"request {name}")
        git(self.work, "push", "-q", "-f", "origin", f"HEAD:refs/pull/{number}/head")
        git(self.work, "checkout", "-q", "main")
        return head

    def merge(self, number: int) -> str:
        """Merge the change into main as the forge would, and push main."""
        git(self.work, "fetch", "-q", "origin", f"refs/pull/{number}/head")
        git(self.work, "merge", "-q", "--no-ff", "-m", f"Merge pull request #{number}", "FETCH_HEAD")
        git(self.work, "push", "-q", "origin", "main")
        return git(self.work, "rev-parse", "HEAD")

    def store_files(self) -> dict[str, str]:
        out = git(self.state, "ls-tree", "-r", "--name-only", "main")
        return {p: git(self.state, "show", f"main:{p}") for p in out.splitlines() if p}


class BotServer:
    """The real app under a real HTTP server, with the embedded default's queue."""

    def __init__(self, config: BotConfig, runner: Runner) -> None:
        self.services = Services.from_config(config, runner_factory=lambda: runner)
        self.queue = InlineQueue(lambda payload, received: run_event(payload, received, self.services),
                                 retry_intervals=[0.05, 0.1])
        app = create_app(config, self.services.backend, self.queue)
        self.http = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.queue.stop()
        self.http.shutdown()
        self.thread.join()


def github_payload(name: str, **changes: Any) -> dict[str, Any]:
    data = json.loads((FIXTURES / "webhooks" / "github" / f"{name}.payload.json").read_text())
    return copy.deepcopy(data)


def github_pull_event(action: str, platform: PlatformRemote, number: int, head: str, *, merged: bool = False,
                      merge_sha: str | None = None) -> dict[str, Any]:
    """GitHub's published pull_request example, pointed at this repository and change."""
    payload = github_payload("pull_request.opened")
    payload["action"] = action
    repo = payload["repository"]
    repo.update(full_name=REPO, name="platform", clone_url=str(platform.remote), default_branch="main")
    repo["owner"]["login"] = "acme"
    pr = payload["pull_request"]
    pr.update(number=number, merged=merged, merge_commit_sha=merge_sha, draft=False,
              state="closed" if action == "closed" else "open")
    pr["head"]["sha"] = head
    pr["base"].update(ref="main", sha=platform.base)
    pr["base"]["repo"].update(full_name=REPO, default_branch="main", clone_url=str(platform.remote))
    payload["number"] = number
    return payload


def send_github(url: str, event: str, payload: dict[str, Any], secret: str = SECRET) -> requests.Response:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return requests.post(f"{url}/webhooks/github", data=body, timeout=30, headers={
        "X-GitHub-Event": event, "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": signature,
        "Content-Type": "application/json"})
