"""A whole bot for tests: a platform repo served as a bare repository on disk (with
refs/pull/N/head, or GitLab's refs/merge-requests/N/head), a Git state store, the GitHub or
GitLab stand-in, and the real flask app under a real HTTP server on loopback, fed with the
forges' published webhook examples (adapted to this repository) and signed (GitHub) or
token-authenticated (GitLab) as the forge does it."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from fake_runner import FakeRunner
from forge_servers.github import GitHubServer
from forge_servers.gitlab import GitLabServer, Project
from paths import FIXTURES
from reconcile_fixtures import destination, git, promise, request
from werkzeug.serving import make_server

from bot.jobs.handlers import run_event
from bot.jobs.plans import MemoryPlanStore
from bot.jobs.queue import InlineQueue
from bot.jobs.services import Services
from bot.server.app import create_app
from bot.server.config import BotConfig
from runners.base import Runner

SECRET = "webhook-secret-for-tests"
TOKEN = "ghp_tokenfortestsonly0000000000000000"
REPO = "acme/platform"
GITHUB_HEAD_REF = "refs/pull/{number}/head"
GITLAB_HEAD_REF = "refs/merge-requests/{number}/head"


def yaml_dump(*docs: dict[str, Any]) -> str:
    import yaml
    return yaml.safe_dump_all(list(docs), sort_keys=False)


class PlatformRemote:
    """The platform repo as the forge hosts it (a bare repo) and a clone to make commits in.
    `head_ref`: where the forge keeps a change's head (GitHub's refs/pull/N/head by default,
    GitLab's refs/merge-requests/N/head with GITLAB_HEAD_REF)."""

    def __init__(self, tmp: Path, head_ref: str = GITHUB_HEAD_REF) -> None:
        self.tmp = tmp
        self.head_ref = head_ref
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
        """A branch adding one request, pushed as the forge keeps a PR head (`head_ref`)."""
        git(self.work, "checkout", "-q", "-B", f"change-{number}", "main")
        self.write(f"requests/{name}.yaml", request("Redis", name, spec=spec))
        head = self.commit(f"request {name}")
        git(self.work, "push", "-q", "-f", "origin", f"HEAD:{self.head_ref.format(number=number)}")
        git(self.work, "checkout", "-q", "main")
        return head

    def push_main(self, name: str = "r1", spec: dict[str, Any] | None = None, message: str = "") -> tuple[str, str]:
        """A commit adding one request straight on main, pushed; (before, after)."""
        before = git(self.work, "rev-parse", "main")
        git(self.work, "checkout", "-q", "main")
        self.write(f"requests/{name}.yaml", request("Redis", name, spec=spec))
        after = self.commit(message or f"request {name}")
        git(self.work, "push", "-q", "origin", "main")
        return before, after

    def commits(self, before: str, after: str) -> list[tuple[str, str]]:
        """(sha, full message) of the commits in before..after, oldest first (a push's `commits`)."""
        out = git(self.work, "log", "--reverse", "--format=%H%x00%B%x01", f"{before}..{after}")
        pairs = [entry.strip("\n").split("\x00", 1) for entry in out.split("\x01") if entry.strip()]
        return [(sha, message.strip("\n")) for sha, message in pairs]

    def merge(self, number: int) -> str:
        """Merge the change into main as the forge would, and push main."""
        git(self.work, "fetch", "-q", "origin", self.head_ref.format(number=number))
        git(self.work, "merge", "-q", "--no-ff", "-m", f"Merge pull request #{number}", "FETCH_HEAD")
        git(self.work, "push", "-q", "origin", "main")
        return git(self.work, "rev-parse", "HEAD")

    def store_files(self) -> dict[str, str]:
        out = git(self.state, "ls-tree", "-r", "--name-only", "main")
        return {p: git(self.state, "show", f"main:{p}") for p in out.splitlines() if p}


class SpyPlanStore(MemoryPlanStore):
    """The embedded default's plan store, remembering which result keys each change saved (so a
    test can check, through the store's own `get`, that they are gone)."""

    def __init__(self) -> None:
        super().__init__()
        self.remembered: dict[tuple[str, str, int], set[str]] = {}

    def remember(self, forge: str, repo: str, number: int, keys: list[str]) -> None:
        self.remembered.setdefault((forge, repo, number), set()).update(keys)
        super().remember(forge, repo, number, keys)

    def saved(self, forge: str, repo: str, number: int) -> list[str]:
        """The keys the change saved that the store still holds."""
        return sorted(k for k in self.remembered.get((forge, repo, number), ()) if self.get(k) is not None)


class BotServer:
    """The real app under a real HTTP server, with the embedded default's queue. `gate`: every
    job waits for it before running (so a test can queue several events, then release them)."""

    def __init__(self, config: BotConfig, runner: Runner, *, gate: threading.Event | None = None,
                 retry_intervals: list[float] | None = None) -> None:
        self.services = Services.from_config(config, runner_factory=lambda: runner)
        self.plans = SpyPlanStore()
        self.services.backend.plans = self.plans
        self.gate = gate

        def run(payload: dict[str, Any], received: float) -> str:
            if gate is not None:
                gate.wait(60)
            return run_event(payload, received, self.services)

        self.queue = InlineQueue(run, retry_intervals=[0.05, 0.1] if retry_intervals is None else retry_intervals)
        app = create_app(config, self.services.backend, self.queue)
        self.http = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.http.server_port}"
        self.thread = threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.queue.stop()
        self.http.shutdown()
        self.thread.join()


def add_platform_repo(github: GitHubServer) -> None:
    """The stand-in knows TOKEN (promisebot's) and REPO, whose pull requests' default author,
    alice, has write access: her changes are trusted (planned as their full merge result)."""
    github.add_token(TOKEN)
    github.add_repo(REPO)
    github.set_permission(REPO, "alice", "write")


def github_config(github: GitHubServer, tmp: Path, **settings: Any) -> BotConfig:
    """The bot's settings for the GitHub stand-in: its token and webhook secret, data under `tmp`."""
    return BotConfig(github_token=TOKEN, github_api_url=github.api_url, github_webhook_secrets=(SECRET,),
                     data_dir=tmp / "data", **settings)


@contextmanager
def github_world(tmp: Path, **settings: Any) -> Iterator[tuple[PlatformRemote, GitHubServer, BotConfig]]:
    """A platform repo under `tmp`, the GitHub stand-in knowing TOKEN and REPO, and the bot's
    settings for it (`settings`: more BotConfig fields)."""
    platform = PlatformRemote(tmp)
    with GitHubServer() as github:
        add_platform_repo(github)
        yield platform, github, github_config(github, tmp, **settings)


@contextmanager
def github_bot(tmp: Path) -> Iterator[tuple[PlatformRemote, GitHubServer, BotServer, FakeRunner]]:
    """`github_world` with a running BotServer whose pipelines go through a FakeRunner."""
    with github_world(tmp) as (platform, github, config):
        runner = FakeRunner()
        bot = BotServer(config, runner)
        try:
            yield platform, github, bot, runner
        finally:
            bot.close()


@contextmanager
def gitlab_world(tmp: Path, **settings: Any) -> Iterator[tuple[PlatformRemote, GitLabServer, Project, BotConfig]]:
    """A platform repo under `tmp` (heads at refs/merge-requests/N/head), the GitLab stand-in
    knowing REPO (its merge requests' default author `dev` a Developer: trusted), and the bot's
    settings for it (`settings`: more BotConfig fields). The stand-in must have failed on no
    request."""
    platform = PlatformRemote(tmp, head_ref=GITLAB_HEAD_REF)
    with GitLabServer() as gitlab:
        project = gitlab.add_project(REPO)
        gitlab.add_member(REPO, "dev", 30)
        project.commits[platform.base] = "main"
        yield platform, gitlab, project, BotConfig(gitlab_token=gitlab.token, gitlab_url=gitlab.url,
                                                   gitlab_webhook_secrets=(SECRET,), data_dir=tmp / "data",
                                                   **settings)
        assert gitlab.errors == [], "the stand-in failed on a request"


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


def github_push_event(platform: PlatformRemote, before: str, after: str, *, ref: str = "refs/heads/main",
                      commits: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """GitHub's published push example (the first push of a branch) as a push of before..after
    to `ref` of this repository, listing `commits` (sha, message; default: those of the range)."""
    payload = github_payload("push.with-new-branch")
    repo = payload["repository"]
    repo.update(full_name=REPO, name="platform", clone_url=str(platform.remote), default_branch="main",
                master_branch="main")
    repo["owner"].update(login="acme", name="acme")
    template = payload["commits"][0]
    listed = platform.commits(before, after) if commits is None else commits
    payload["commits"] = [dict(copy.deepcopy(template), id=sha, tree_id=sha, message=message) for sha, message in listed]
    payload["head_commit"] = copy.deepcopy(payload["commits"][-1]) if payload["commits"] else None
    payload.update(ref=ref, before=before, after=after, created=False)
    return payload


def sign(body: bytes, secret: str = SECRET) -> str:
    """X-Hub-Signature-256 of `body`, as GitHub computes it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_github(url: str, event: str, payload: dict[str, Any], secret: str = SECRET,
                delivery: str | None = None) -> requests.Response:
    body = json.dumps(payload).encode()
    return requests.post(f"{url}/webhooks/github", data=body, timeout=30, headers={
        "X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(body, secret), "Content-Type": "application/json"})


def gitlab_payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "webhooks" / "gitlab" / f"{name}.json").read_text())
    return data


def _gitlab_project(project: dict[str, Any], platform: PlatformRemote, project_id: int | None) -> None:
    """A project object of a GitLab payload pointed at this repository."""
    web = f"http://gitlab.example/{REPO}"
    project.update(name="platform", namespace="acme", path_with_namespace=REPO, default_branch="main",
                   git_http_url=str(platform.remote), http_url=str(platform.remote), url=str(platform.remote),
                   web_url=web, homepage=web)
    if project_id is not None:
        project["id"] = project_id


def gitlab_mr_event(action: str, platform: PlatformRemote, project_id: int, iid: int, head: str, *,
                    oldrev: str | None = None, merge_sha: str | None = None) -> dict[str, Any]:
    """GitLab's published merge request example (action `open`), pointed at this project and MR,
    with `action` changed and, as GitLab's code adds them, `oldrev` (an update with new commits)
    and `merge_commit_sha` (a merge). The state follows the action."""
    payload = gitlab_payload("merge_request")
    _gitlab_project(payload["project"], platform, project_id)
    attrs = payload["object_attributes"]
    _gitlab_project(attrs["source"], platform, None)
    _gitlab_project(attrs["target"], platform, None)
    attrs.update(iid=iid, action=action, target_branch="main", source_branch=f"change-{iid}",
                 source_project_id=project_id, target_project_id=project_id,
                 state={"merge": "merged", "close": "closed"}.get(action, "opened"),
                 url=f"http://gitlab.example/{REPO}/-/merge_requests/{iid}")
    attrs["last_commit"].update(id=head, url=f"http://gitlab.example/{REPO}/-/commit/{head}")
    if oldrev is not None:
        attrs["oldrev"] = oldrev
    if merge_sha is not None:
        attrs["merge_commit_sha"] = merge_sha
    return payload


def send_gitlab(url: str, event: str, payload: dict[str, Any], token: str | None = SECRET,
                delivery: str | None = None) -> requests.Response:
    headers = {"X-Gitlab-Event": event, "X-Gitlab-Event-UUID": delivery or str(uuid.uuid4()),
               "Content-Type": "application/json"}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return requests.post(f"{url}/webhooks/gitlab", data=json.dumps(payload).encode(), timeout=30, headers=headers)
