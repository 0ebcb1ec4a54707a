"""The run's event, read from the CI environment (pure: the caller reads the files).

GitHub Actions writes the webhook payload of the event that started the workflow to
`GITHUB_EVENT_PATH` and names it in `GITHUB_EVENT_NAME`: it goes through the webhook path's own
parser (`bot.forges.events.parse_github`), with `GITHUB_RUN_ID`-`GITHUB_RUN_ATTEMPT` as its
delivery id. `pull_request_target` carries a `pull_request` payload and is read as one.

GitLab CI gives no payload: the event is built from its predefined variables, with the fields
the webhook parser fills for the same event (`parse_gitlab`):

    CI_PIPELINE_SOURCE=merge_request_event   -> change_opened: plan the merge request
                                                CI_MERGE_REQUEST_IID
    a branch pipeline of CI_DEFAULT_BRANCH   -> push: reconcile CI_COMMIT_BEFORE_SHA..CI_COMMIT_SHA
      (push; also web, schedule, api, trigger, pipeline, parent_pipeline: a run of the branch)
    anything else                            -> ignored, with the reason

Every missing or malformed variable raises `CiEnvError` naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.errors import PromisebotError
from bot.forges.base import Event, ForgeName, Repo
from bot.forges.events import EventError, parse_github

GITHUB_PARSED_AS = {"pull_request_target": "pull_request"}
GITLAB_BRANCH_SOURCES = frozenset({"push", "web", "schedule", "api", "trigger", "pipeline", "parent_pipeline"})
ZERO_SHA = "0" * 40
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


class CiEnvError(PromisebotError):
    """A CI variable promisebot needs is missing or malformed; the message names it."""


def required(environ: Mapping[str, str], name: str, hint: str = "") -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise CiEnvError(f"{name} is not set" + (f": {hint}" if hint else ""))
    return value


def integer(environ: Mapping[str, str], name: str) -> int:
    value = required(environ, name)
    if not value.isdigit():
        raise CiEnvError(f"{name} must be a number, got {value!r}")
    return int(value)


def forge_of(environ: Mapping[str, str]) -> ForgeName:
    """Which CI runs us: GitHub Actions sets GITHUB_ACTIONS=true, GitLab CI sets GITLAB_CI=true."""
    if environ.get("GITHUB_ACTIONS") == "true":
        return "github"
    if environ.get("GITLAB_CI") == "true":
        return "gitlab"
    raise CiEnvError("neither GITHUB_ACTIONS nor GITLAB_CI is set to true: `promisebot ci` runs inside a "
                     "GitHub Actions or GitLab CI job (docs/ci.md)")


# --- GitHub Actions -----------------------------------------------------------------------------

def github_delivery(environ: Mapping[str, str]) -> str:
    run_id = integer(environ, "GITHUB_RUN_ID")
    attempt = environ.get("GITHUB_RUN_ATTEMPT", "").strip() or "1"
    if not attempt.isdigit():
        raise CiEnvError(f"GITHUB_RUN_ATTEMPT must be a number, got {attempt!r}")
    return f"{run_id}-{attempt}"


def github_event(environ: Mapping[str, str], payload: Any) -> Event:
    """The event of this workflow run: `payload` is the JSON of the file GITHUB_EVENT_PATH names."""
    name = required(environ, "GITHUB_EVENT_NAME")
    repository = required(environ, "GITHUB_REPOSITORY")
    if not isinstance(payload, dict):
        raise CiEnvError("GITHUB_EVENT_PATH: the event file does not hold a JSON object")
    try:
        event = parse_github(GITHUB_PARSED_AS.get(name, name), github_delivery(environ), payload)
    except EventError as exc:
        raise CiEnvError(f"GITHUB_EVENT_PATH: {exc}") from None
    if event.repo is not None and event.repo.full_name.lower() != repository.lower():
        raise CiEnvError(f"GITHUB_EVENT_PATH names repository {event.repo.full_name}, but GITHUB_REPOSITORY "
                         f"is {repository}")
    return event


def github_run_url(environ: Mapping[str, str]) -> str:
    server, repo, run = (environ.get(n, "").rstrip("/") for n in
                         ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else ""


# --- GitLab CI ----------------------------------------------------------------------------------

def strip_credentials(url: str) -> str:
    """`url` without the user and password GitLab embeds in CI_REPOSITORY_URL (a path, or a URL
    without them, unchanged)."""
    return _USERINFO.sub(r"\1", url, count=1)


def gitlab_base_url(environ: Mapping[str, str]) -> str:
    """The GitLab instance's root URL: CI_API_V4_URL without /api/v4, else CI_SERVER_URL."""
    api = environ.get("CI_API_V4_URL", "").strip().rstrip("/")
    if api:
        if not api.endswith("/api/v4"):
            raise CiEnvError(f"CI_API_V4_URL must end with /api/v4, got {api!r}")
        return api.removesuffix("/api/v4")
    return required(environ, "CI_SERVER_URL", "neither CI_API_V4_URL nor CI_SERVER_URL is set").rstrip("/")


def gitlab_delivery(environ: Mapping[str, str]) -> str:
    pipeline = integer(environ, "CI_PIPELINE_ID")
    job = environ.get("CI_JOB_ID", "").strip()
    return f"gitlab-ci-{pipeline}" + (f"-{job}" if job else "")


def _gitlab_repo(environ: Mapping[str, str], mr: bool) -> Repo:
    """The project the event is about: a merge request's target project (its pipeline may run in
    the source project, a fork), else the pipeline's own project."""
    own_id = integer(environ, "CI_PROJECT_ID")
    project_id, path = own_id, required(environ, "CI_PROJECT_PATH")
    if mr and environ.get("CI_MERGE_REQUEST_PROJECT_ID", "").strip():
        project_id = integer(environ, "CI_MERGE_REQUEST_PROJECT_ID")
        path = required(environ, "CI_MERGE_REQUEST_PROJECT_PATH")
    if project_id != own_id:
        clone_url = _project_url(environ, mr=True) + ".git"
    elif environ.get("CI_REPOSITORY_URL", "").strip():
        clone_url = strip_credentials(environ["CI_REPOSITORY_URL"].strip())
    else:
        clone_url = f"{gitlab_base_url(environ)}/{path}.git"
    return Repo(forge="gitlab", full_name=path, clone_url=clone_url,
                default_branch=required(environ, "CI_DEFAULT_BRANCH"), project_id=project_id)


def _project_url(environ: Mapping[str, str], *, mr: bool) -> str:
    names = ("CI_MERGE_REQUEST_PROJECT_URL", "CI_PROJECT_URL") if mr else ("CI_PROJECT_URL",)
    for name in names:
        if environ.get(name, "").strip():
            return environ[name].strip().rstrip("/")
    path = environ.get("CI_MERGE_REQUEST_PROJECT_PATH" if mr else "CI_PROJECT_PATH", "") or \
        required(environ, "CI_PROJECT_PATH")
    return f"{gitlab_base_url(environ)}/{path}"


def gitlab_event(environ: Mapping[str, str]) -> Event:
    """The event of this pipeline, as the GitLab webhook parser would have made it."""
    source = required(environ, "CI_PIPELINE_SOURCE")
    delivery = gitlab_delivery(environ)
    if source == "merge_request_event":
        return _gitlab_merge_request(environ, delivery)
    repo = _gitlab_repo(environ, mr=False)
    if environ.get("CI_COMMIT_TAG", "").strip():
        return _ignored(delivery, f"tag pipeline {environ['CI_COMMIT_TAG'].strip()}: tags are not reconciled", repo)
    if source not in GITLAB_BRANCH_SOURCES:
        return _ignored(delivery, f"pipeline source {source!r} is not acted on", repo)
    branch = required(environ, "CI_COMMIT_BRANCH", "a branch pipeline without a branch")
    if branch != repo.default_branch:
        return _ignored(delivery, f"pipeline of branch {branch}, not the default branch {repo.default_branch}",
                        repo)
    before = environ.get("CI_COMMIT_BEFORE_SHA", "").strip()
    return Event(forge="gitlab", kind="push", delivery=delivery, repo=repo, ref=f"refs/heads/{branch}",
                 before=before or ZERO_SHA, after=required(environ, "CI_COMMIT_SHA"),
                 pusher=environ.get("GITLAB_USER_LOGIN", "").strip())


def _gitlab_merge_request(environ: Mapping[str, str], delivery: str) -> Event:
    repo = _gitlab_repo(environ, mr=True)
    number = integer(environ, "CI_MERGE_REQUEST_IID")
    target = required(environ, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME")
    if target != repo.default_branch:
        return _ignored(delivery, f"merge request !{number} targets branch {target}, not the default branch "
                        f"{repo.default_branch}", repo)
    # A merged results pipeline runs on a merge commit GitLab made; the head is the source branch's
    head = (environ.get("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", "").strip()
            or required(environ, "CI_COMMIT_SHA"))
    source_id = environ.get("CI_MERGE_REQUEST_SOURCE_PROJECT_ID", "").strip()
    return Event(forge="gitlab", kind="change_opened", delivery=delivery, repo=repo, number=number,
                 head_sha=head, base_ref=target, draft=environ.get("CI_MERGE_REQUEST_DRAFT") == "true",
                 url=f"{_project_url(environ, mr=True)}/-/merge_requests/{number}",
                 from_fork=bool(source_id) and source_id != str(repo.project_id))


def _ignored(delivery: str, reason: str, repo: Repo) -> Event:
    return Event(forge="gitlab", kind="ignored", delivery=delivery, repo=repo, reason=reason)


def gitlab_run_url(environ: Mapping[str, str]) -> str:
    return environ.get("CI_JOB_URL", "").strip() or environ.get("CI_PIPELINE_URL", "").strip()
