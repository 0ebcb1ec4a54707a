"""Running `promisebot ci` in the tests' worlds (tests/server/bot_fixtures.py: a platform repo as
bare repositories, the GitHub or GitLab stand-in): the CI environment GitHub Actions or GitLab CI
would give the job, the event file GitHub writes (the forges' published webhook examples, adapted
as bot_fixtures does), and the command run as a process of its own (tests/ci/ci_cli.py, the fake
runner) or in this process (`bot.commands.ci.run`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paths import TESTS

sys.path.insert(0, str(TESTS / "server"))  # bot_fixtures, chatops_fixtures: the bot's world

from bot_fixtures import (  # noqa: E402
    GITLAB_HEAD_REF,
    REPO,
    TOKEN,
    BotServer,
    PlatformRemote,
    github_bot,
    github_pull_event,
    github_push_event,
    github_world,
    gitlab_mr_event,
    send_github,
    send_gitlab,
)
from chatops_fixtures import github_comment_event  # noqa: E402
from reconcile_fixtures import git, request  # noqa: E402

from bot.cli import build_parser  # noqa: E402
from bot.commands import ci  # noqa: E402
from runners.base import Runner  # noqa: E402

__all__ = ["GITLAB_HEAD_REF", "REPO", "TOKEN", "BotServer", "PlatformRemote", "github_bot", "github_comment_event",
           "github_pull_event", "github_push_event", "github_world", "gitlab_mr_event", "send_github", "send_gitlab"]

CI_CLI = Path(__file__).resolve().with_name("ci_cli.py")
R1 = "dev/resources/default/redis/r1/instance/5058f/thing.yaml"


@dataclass
class Ran:
    code: int
    out: str
    err: str


def github_env(api_url: str, web_url: str, tmp: Path, event_name: str, payload: dict[str, Any], *,
               repository: str = "acme/platform", token: str = TOKEN, run_id: int = 42) -> dict[str, str]:
    """What GitHub Actions gives a job of `repository` started by `event_name`, the payload in
    the event file; the summary and outputs files under `tmp`."""
    event_file = tmp / f"event-{event_name}-{run_id}.json"
    event_file.write_text(json.dumps(payload))
    (tmp / "runner-temp").mkdir(exist_ok=True)
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event_file),
            "GITHUB_REPOSITORY": repository, "GITHUB_API_URL": api_url, "GITHUB_SERVER_URL": web_url,
            "GITHUB_TOKEN": token, "GITHUB_RUN_ID": str(run_id), "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"), "GITHUB_OUTPUT": str(tmp / "output.txt"),
            "RUNNER_TEMP": str(tmp / "runner-temp")}


def gitlab_env(url: str, token: str, project_id: int, platform: PlatformRemote, *, path: str = "acme/platform",
               **variables: str) -> dict[str, str]:
    """What GitLab CI gives a job of project `path` (no payload: variables only); `variables`
    add to or replace them (a merge request pipeline's CI_MERGE_REQUEST_*, a push's CI_COMMIT_*)."""
    env = {"GITLAB_CI": "true", "CI_PROJECT_ID": str(project_id), "CI_PROJECT_PATH": path,
           "CI_PROJECT_URL": f"{url}/{path}", "CI_SERVER_URL": url, "CI_API_V4_URL": f"{url}/api/v4",
           "CI_REPOSITORY_URL": str(platform.remote), "CI_DEFAULT_BRANCH": "main", "CI_PIPELINE_ID": "1000",
           "CI_JOB_ID": "2000", "CI_JOB_URL": f"{url}/{path}/-/jobs/2000", "PROMISEBOT_GITLAB_TOKEN": token}
    env.update(variables)
    return env


def gitlab_mr_variables(iid: int, head: str) -> dict[str, str]:
    return {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": str(iid), "CI_COMMIT_SHA": head,
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": f"change-{iid}"}


def gitlab_push_variables(before: str, after: str, branch: str = "main") -> dict[str, str]:
    return {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": branch, "CI_COMMIT_BEFORE_SHA": before,
            "CI_COMMIT_SHA": after}


def open_same_change(platform: PlatformRemote, number: int, name: str = "r1") -> str:
    """Another change adding the very request `open_change(n, name)` adds, as another commit."""
    git(platform.work, "checkout", "-q", "-B", f"change-{number}", "main")
    platform.write(f"requests/{name}.yaml", request("Redis", name))
    head = platform.commit(f"request {name}, again as change {number}")
    git(platform.work, "push", "-q", "-f", "origin", f"HEAD:{platform.head_ref.format(number=number)}")
    git(platform.work, "checkout", "-q", "main")
    return head


def open_other_change(platform: PlatformRemote, number: int) -> str:
    """A change adding a file that holds no platform object (a plan without changes)."""
    git(platform.work, "checkout", "-q", "-B", f"change-{number}", "main")
    (platform.work / "NOTES.md").write_text("nothing for promisebot here\n")
    head = platform.commit("notes")
    git(platform.work, "push", "-q", "-f", "origin", f"HEAD:{platform.head_ref.format(number=number)}")
    git(platform.work, "checkout", "-q", "main")
    return head


def store_head(platform: PlatformRemote) -> str:
    return git(platform.state, "rev-parse", "main")


def run_process(env: Mapping[str, str], *args: str, failing: tuple[str, ...] = (), home: Path | None = None) -> Ran:
    """`promisebot ci ARGS` in a process whose environment is `env` and nothing else the CI job
    would not have (PATH; HOME an empty directory; tests/ on PYTHONPATH for the fake runner)."""
    base = {"PATH": os.environ["PATH"], "PYTHONPATH": str(TESTS), "PYTHONDONTWRITEBYTECODE": "1"}
    if home is not None:
        home.mkdir(exist_ok=True)
        base["HOME"] = str(home)
    flags = [f"--failing={promise}" for promise in failing]
    done = subprocess.run([sys.executable, str(CI_CLI), *flags, "ci", *args], env={**base, **env},
                          capture_output=True, text=True, timeout=300, check=False)
    return Ran(done.returncode, done.stdout, done.stderr)


def run_here(capsys: Any, env: Mapping[str, str], *args: str, runner: Runner) -> Ran:
    """`promisebot ci ARGS` in this process (`bot.commands.ci.run`), with `runner`."""
    parsed = build_parser().parse_args(["ci", *args])
    code = ci.run(parsed, environ=env, runner_factory=lambda: runner, retry_waits=(0.05,))
    captured = capsys.readouterr()
    return Ran(code, captured.out, captured.err)


def outputs(tmp: Path) -> dict[str, str]:
    """The step outputs the run appended to `$GITHUB_OUTPUT` (github_env's file)."""
    lines = (tmp / "output.txt").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def normalized(body: str, *shas: str) -> str:
    """`body` with each of `shas` (full or abbreviated) replaced by HEAD."""
    for sha in shas:
        body = body.replace(sha, "HEAD").replace(sha[:12], "HEAD")
    return body
