"""Startup: recovery of what was missed while no server ran (bot/jobs/recovery.py), `promisebot
serve`'s wiring of it, and the WSGI app for gunicorn (bot/server/wsgi.py).

Real parts: the GitHub and GitLab stand-ins over HTTP through PyGithub / python-gitlab, real Git
repositories (a bare platform repo with refs/pull/N/head and a Git state store), the repository
cache filled by a previous bot's sync, the embedded default's queue running the real job
functions (pipelines through the fake runner), real Redis and a real gunicorn."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from bot_fixtures import (
    REPO,
    SECRET,
    TOKEN,
    BotServer,
    PlatformRemote,
    github_pull_event,
    github_world,
    send_github,
)
from fake_runner import FakeRunner
from forge_servers.github import GitHubServer
from forge_servers.gitlab import DEFAULT_TOKEN as GITLAB_TOKEN
from forge_servers.gitlab import GitLabServer
from paths import ROOT
from reconcile_fixtures import git, request
from rq import Queue

from bot.forges.base import Repo, event_from_json
from bot.forges.comment import MARKER
from bot.jobs.handlers import run_event
from bot.jobs.queue import QUEUE_NAME, InlineQueue, RqQueue
from bot.jobs.recovery import recover, start_recovery
from bot.jobs.repos import RepoCache
from bot.jobs.services import Services
from bot.jobs.steps import APPLY_CONTEXT, PLAN_CONTEXT
from bot.server.config import BotConfig

PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


class Recorder:
    """A JobQueue that only records (recovery's decisions, without running the jobs)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[dict[str, Any], str]] = []

    def enqueue(self, payload: dict[str, Any], job_id: str, received_at: float) -> None:
        self.jobs.append((payload, job_id))

    def depth(self) -> int:
        return len(self.jobs)


def plan_states(github: GitHubServer, sha: str) -> list[str]:
    return [s["state"] for s in github.statuses(REPO, sha) if s["context"] == PLAN_CONTEXT]


def plan_comments(github: GitHubServer, number: int) -> list[dict[str, Any]]:
    return [c for c in github.comments(REPO, number) if c["body"].startswith(MARKER)]


def push_to_main(platform: PlatformRemote, name: str) -> str:
    """A request committed straight to the default branch, as a push the bot never heard of."""
    git(platform.work, "checkout", "-q", "main")
    platform.write(f"requests/{name}.yaml", request("Redis", name))
    head = platform.commit(f"request {name}")
    git(platform.work, "push", "-q", "origin", "main")
    return head


@pytest.fixture
def world(tmp_path):
    with github_world(tmp_path) as world:
        yield world


def first_life(platform: PlatformRemote, github: GitHubServer, config: BotConfig) -> str:
    """A bot that planned pull request #1 from its webhook, then stopped: the repository cache
    holds the platform repo and its identity. Returns #1's head."""
    head = platform.open_change(1)
    github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)
    bot = BotServer(config, FakeRunner())
    try:
        assert send_github(bot.url, "pull_request", github_pull_event("opened", platform, 1, head)).status_code == 202
        bot.queue.join()
    finally:
        bot.close()
    assert plan_states(github, head) == ["pending", "success"]
    return head


def test_recovery_plans_what_was_missed_and_reconciles_the_default_branch(world):
    platform, github, config = world
    planned_head = first_life(platform, github, config)
    (planned_comment,) = plan_comments(github, 1)
    # While no bot ran: #2 opened, #3 opened as a draft, a request pushed straight to main.
    missed_head = platform.open_change(2, name="r2")
    github.add_pull(REPO, 2, head_sha=missed_head, base_sha=platform.base)
    draft_head = platform.open_change(3, name="r3")
    github.add_pull(REPO, 3, head_sha=draft_head, base_sha=platform.base, draft=True)
    main_head = push_to_main(platform, "r4")
    github.requests.clear()

    runner = FakeRunner()
    services = Services.from_config(config, runner_factory=lambda: runner)
    queue = InlineQueue(lambda payload, received: run_event(payload, received, services), retry_intervals=[0.05])
    try:
        lines = recover(services, queue)
        queue.join()
    finally:
        queue.stop()

    # #2 is planned: a comment and the plan statuses on its head
    assert plan_states(github, missed_head) == ["pending", "success"]
    (comment,) = plan_comments(github, 2)
    assert "r2" in comment["body"]
    # #1 already had its plan: left alone, no status or comment written
    assert plan_states(github, planned_head) == ["pending", "success"]
    assert plan_comments(github, 1) == [planned_comment]
    assert github.calls("POST", r"/repos/acme/platform/statuses/" + planned_head) == []
    # the draft waits until it is ready
    assert plan_states(github, draft_head) == [] and plan_comments(github, 3) == []
    # main is reconciled: r4 landed in the store, `promisebot/apply` on main's head
    assert any("/r4/" in path for path in platform.store_files())
    assert [s["state"] for s in github.statuses(REPO, main_head) if s["context"] == APPLY_CONTEXT] == ["success"]
    assert lines == [
        f"github:{REPO}#1 at {planned_head[:12]}: left alone: {PLAN_CONTEXT} is success",
        f"github:{REPO}#2 at {missed_head[:12]}: queued a plan ({PLAN_CONTEXT} was not set)",
        f"github:{REPO}#3 at {draft_head[:12]}: left alone: a draft",
        f"github:{REPO} main at {main_head[:12]}: queued a reconcile ({APPLY_CONTEXT} was not set)",
    ]

    # Started again: everything has its status now, nothing is queued.
    again = Recorder()
    lines = recover(Services.from_config(config, runner_factory=lambda: runner), again)
    assert again.jobs == []
    assert lines[-1] == f"github:{REPO} main at {main_head[:12]}: left alone: {APPLY_CONTEXT} is success"


def test_a_plan_left_pending_is_redone_only_in_the_embedded_default(world):
    platform, github, config = world
    first_life(platform, github, config)
    head = platform.open_change(2, name="r2")
    github.add_pull(REPO, 2, head_sha=head, base_sha=platform.base)
    # The process died mid-plan: `pending` stays, and the in-memory queue that held the job is gone.
    github.add_token("other-token", "promisebot")
    requests.post(f"{github.api_url}/repos/{REPO}/statuses/{head}", timeout=10,
                  headers={"Authorization": "token other-token"},
                  json={"state": "pending", "context": PLAN_CONTEXT, "description": "planning"}).raise_for_status()

    services = Services.from_config(config, runner_factory=FakeRunner)
    embedded = Recorder()
    recover(services, embedded)
    (payload, job_id), _reconcile = embedded.jobs
    event = event_from_json(payload)
    assert (event.kind, event.number, event.head_sha, event.base_ref) == ("change_opened", 2, head, "main")
    assert event.repo == Repo("github", REPO, str(platform.remote), "main")
    assert event.delivery.startswith("recovery-") and job_id == f"github-{event.delivery}"
    assert services.backend.memo.latest(f"github:{REPO}:2") == head  # as the webhook would have set it

    # With Redis the job is still queued or running there: a pending plan is left to it.
    redis_mode = Recorder()
    lines = recover(Services.from_config(config, runner_factory=FakeRunner), redis_mode, replan_pending=False)
    assert [event_from_json(p).kind for p, _ in redis_mode.jobs] == ["push"]
    assert f"github:{REPO}#2 at {head[:12]}: left alone: {PLAN_CONTEXT} is pending" in lines


def test_repositories_that_cannot_be_recovered_are_skipped(world, tmp_path):
    platform, github, config = world
    first_life(platform, github, config)
    cache = RepoCache(config.data_dir)
    gone = Repo("github", "acme/gone", str(platform.remote), "main")
    cache.sync(gone, None, [])  # seen once, since deleted on the forge
    cache.sync(Repo("gitlab", "group/project", str(platform.remote), "main", project_id=5), None, [])
    assert {r.full_name for r in cache.known()} == {REPO, "acme/gone", "group/project"}

    lines = recover(Services.from_config(config, runner_factory=FakeRunner), Recorder())
    assert "github:acme/gone: skipped: GitHub: reading the repository (acme/gone) failed: HTTP 404: Not Found" in lines
    assert "gitlab:group/project: skipped: gitlab is not configured" in lines

    narrowed = BotConfig(**{**config.__dict__, "repo_allowlist": ("acme/other-*",)})
    lines = recover(Services.from_config(narrowed, runner_factory=FakeRunner), Recorder())
    assert f"github:{REPO}: skipped: not in PROMISEBOT_REPO_ALLOWLIST" in lines


def test_recovery_with_a_github_app_finds_the_installation(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    platform = PlatformRemote(tmp_path)
    with GitHubServer() as github:
        github.add_repo(REPO)
        github.set_permission(REPO, "alice", "write")  # the pull requests' author: trusted
        github.add_app(77, public)
        github.add_installation(77, 4321, [REPO])
        head = platform.open_change(1)
        github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)
        config = BotConfig(github_app_id="77", github_app_private_key=private, github_api_url=github.api_url,
                           github_webhook_secrets=(SECRET,), data_dir=tmp_path / "data")
        services = Services.from_config(config, runner_factory=FakeRunner)
        services.repos.sync(Repo("github", REPO, str(platform.remote), "main"), None, [])

        queue = Recorder()
        recover(services, queue)
        events = [event_from_json(p) for p, _ in queue.jobs]
        assert [(e.kind, e.installation_id) for e in events] == [("change_opened", 4321), ("push", 4321)]
        assert github.calls("GET", f"/repos/{REPO}/installation")[0].auth == "jwt"
        assert {r.who for r in github.calls("GET", f"/repos/{REPO}/pulls")} == {"installation:4321"}


def test_recovery_on_gitlab(tmp_path):
    platform = PlatformRemote(tmp_path)
    with GitLabServer() as gitlab:
        project = gitlab.add_project("platform/infra")
        head = platform.open_change(4)
        gitlab.add_merge_request(project, sha=head, base_sha=platform.base, iid=4, from_fork=True)
        config = BotConfig(gitlab_token=GITLAB_TOKEN, gitlab_url=gitlab.url, gitlab_webhook_secrets=(SECRET,),
                           data_dir=tmp_path / "data")
        services = Services.from_config(config, runner_factory=FakeRunner)
        services.repos.sync(Repo("gitlab", "platform/infra", str(platform.remote), "main", project.id), None, [])

        queue = Recorder()
        lines = recover(services, queue)
        plan, reconcile = (event_from_json(p) for p, _ in queue.jobs)
        assert (plan.kind, plan.forge, plan.number, plan.head_sha) == ("change_opened", "gitlab", 4, head)
        assert plan.repo == Repo("gitlab", "platform/infra", str(platform.remote), "main", project.id)
        assert (reconcile.kind, reconcile.after) == ("push", platform.base)
        assert lines[0] == f"gitlab:platform/infra#4 at {head[:12]}: queued a plan ({PLAN_CONTEXT} was not set)"
        # the MR's status as the plan job sets it (a fork's head: with its ref), then nothing to recover
        forge = services.forge(plan)
        forge.set_status(plan.repo, head, PLAN_CONTEXT, "success", "planned", ref=forge.head_ref(4))
        forge.set_status(plan.repo, platform.base, APPLY_CONTEXT, "success", "applied")
        again = Recorder()
        recover(Services.from_config(config, runner_factory=FakeRunner), again)
        assert again.jobs == []
    assert not gitlab.errors


def test_with_redis_web_processes_starting_together_enqueue_once(world, redis_server):
    platform, github, config = world
    first_life(platform, github, config)
    head = platform.open_change(2, name="r2")
    github.add_pull(REPO, 2, head_sha=head, base_sha=platform.base)
    shared = BotConfig(**{**config.__dict__, "redis_url": redis_server.url})

    one, two = (Services.from_config(shared, runner_factory=FakeRunner) for _ in range(2))
    first = recover(one, RqQueue(one.backend.redis))
    second = recover(two, RqQueue(two.backend.redis))

    queued = Queue(QUEUE_NAME, connection=redis_server.client()).jobs
    assert sorted(event_from_json(j.args[0]).kind for j in queued) == ["change_opened", "push"]
    assert sum("queued" in line for line in first) == 2
    assert sum("recovery queued" in line for line in second) == 2


# -- promisebot serve and the WSGI app ---------------------------------------------------------


def _env(github: GitHubServer | None, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {"PROMISEBOT_GITHUB_TOKEN": TOKEN, "PROMISEBOT_GITHUB_WEBHOOK_SECRET": SECRET,
           "PROMISEBOT_DATA_DIR": str(data_dir), **extra}
    if github is not None:
        env["PROMISEBOT_GITHUB_API_URL"] = github.api_url
    return env


def test_serve_builds_with_recovery_running_in_the_background(world):
    from bot.commands.serve import build

    platform, github, config = world
    first_life(platform, github, config)
    head = platform.open_change(2, name="r2")
    github.add_pull(REPO, 2, head_sha=head, base_sha=platform.base)

    app, queue = build(_env(github, config.data_dir), recover=True, runner_factory=FakeRunner)
    assert isinstance(queue, InlineQueue)  # no REDIS_URL: the embedded default
    try:
        deadline = time.monotonic() + 60
        while plan_states(github, head) != ["pending", "success"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert plan_states(github, head) == ["pending", "success"]
    finally:
        queue.join()
        queue.stop()


def test_serve_answers_while_recovery_waits_for_the_forge(tmp_path):
    from bot.commands.serve import build

    platform = PlatformRemote(tmp_path)
    RepoCache(tmp_path / "data").sync(Repo("github", REPO, str(platform.remote), "main"), None, [])
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        env = _env(None, tmp_path / "data", PROMISEBOT_GITHUB_API_URL=f"http://127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        app, queue = build(env, recover=True, runner_factory=FakeRunner)
        assert app.test_client().get("/healthz").status_code == 200
        assert time.monotonic() - started < 5
        assert isinstance(queue, InlineQueue)
        queue.stop()


def test_start_recovery_logs_and_survives_a_crash(world, caplog):
    platform, github, config = world
    first_life(platform, github, config)

    class Broken(Recorder):
        def enqueue(self, payload: dict[str, Any], job_id: str, received_at: float) -> None:
            raise RuntimeError("queue gone")

    with caplog.at_level("INFO", logger="promisebot.recovery"):
        start_recovery(Services.from_config(config, runner_factory=FakeRunner), Broken()).join(30)
        start_recovery(Services.from_config(config, runner_factory=FakeRunner), Recorder()).join(30)
    messages = [r.getMessage() for r in caplog.records]
    assert "startup recovery failed" in messages
    assert any(m.startswith(f"recovery: github:{REPO} main at ") for m in messages)


def _subprocess_env(extra: dict[str, str]) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("PROMISEBOT_") and k != "REDIS_URL"}
    return {**keep, "PYTHONPATH": str(ROOT), **extra}


def test_the_wsgi_app_refuses_to_start_without_redis(tmp_path):
    done = subprocess.run([PYTHON, "-c", "import bot.server.wsgi"], cwd=ROOT, capture_output=True, text=True,
                          env=_subprocess_env(_env(None, tmp_path)), timeout=60)
    assert done.returncode != 0
    assert "REDIS_URL is not set: the WSGI app (gunicorn) is for the Redis setup" in done.stderr
    assert "promisebot serve" in done.stderr


def test_gunicorn_serves_the_wsgi_app_and_enqueues_on_redis(world, redis_server):
    platform, github, config = world
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = _subprocess_env(_env(github, config.data_dir, REDIS_URL=redis_server.url))
    # the Dockerfile's command, on loopback
    server = subprocess.Popen([GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4",
                               "bot.server.wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.1)
        head = platform.open_change(1)
        answer = send_github(url, "pull_request", github_pull_event("opened", platform, 1, head))
        assert answer.status_code == 202, answer.text
        (job,) = Queue(QUEUE_NAME, connection=redis_server.client()).jobs
        assert event_from_json(job.args[0]).head_sha == head
        # a redelivery reaching the other gunicorn worker is still a duplicate (Redis)
        body = json.dumps(github_pull_event("opened", platform, 1, head)).encode()
        headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": str(uuid.uuid4()),
                   "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
        codes = [requests.post(f"{url}/webhooks/github", data=body, headers=headers, timeout=10).status_code
                 for _ in range(6)]
        assert codes == [202, 200, 200, 200, 200, 200]
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert server.returncode == 0, out.decode(errors="replace")
