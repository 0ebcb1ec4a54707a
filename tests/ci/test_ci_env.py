"""The CI environment into an Event (bot/ci/env.py, pure): GitHub Actions' event file goes
through the webhook parser; GitLab CI's variables give the event the webhook parser makes of
GitLab's published payload for the same merge request or push."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
from ci_fixtures import REPO, github_comment_event, github_pull_event, github_push_event, gitlab_mr_event

from bot.ci.env import (
    CiEnvError,
    forge_of,
    github_event,
    gitlab_base_url,
    gitlab_event,
    strip_credentials,
)
from bot.forges.base import Repo
from bot.forges.events import parse_github, parse_gitlab

PLATFORM = SimpleNamespace(remote="/srv/git/platform.git", base="b" * 40)
HEAD = "a" * 40
GITHUB = {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": REPO, "GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "3"}
GITLAB_PROJECT = {"GITLAB_CI": "true", "CI_PROJECT_ID": "77", "CI_PROJECT_PATH": REPO,
                  "CI_PROJECT_URL": f"http://gitlab.example/{REPO}", "CI_SERVER_URL": "http://gitlab.example",
                  "CI_API_V4_URL": "http://gitlab.example/api/v4", "CI_REPOSITORY_URL": PLATFORM.remote,
                  "CI_DEFAULT_BRANCH": "main", "CI_PIPELINE_ID": "1000", "CI_JOB_ID": "2000"}


def mr_env(**more: str) -> dict[str, str]:
    return {**GITLAB_PROJECT, "CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "1",
            "CI_COMMIT_SHA": HEAD, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main", **more}


@pytest.mark.parametrize("name, payload", [
    ("pull_request", github_pull_event("opened", PLATFORM, 7, HEAD)),
    ("push", github_push_event(PLATFORM, "c" * 40, HEAD, commits=[(HEAD, "add r1")])),
    ("issue_comment", github_comment_event(PLATFORM, 7, "/promisebot plan")),
])
def test_github_reads_the_event_file_as_the_webhook_does(name, payload):
    event = github_event({**GITHUB, "GITHUB_EVENT_NAME": name}, payload)
    assert event == parse_github(name, "42-3", payload)
    assert event.kind in ("change_opened", "push", "comment")


def test_github_pull_request_target_is_a_pull_request():
    payload = github_pull_event("synchronize", PLATFORM, 7, HEAD)
    event = github_event({**GITHUB, "GITHUB_EVENT_NAME": "pull_request_target"}, payload)
    assert (event.kind, event.number, event.head_sha) == ("change_updated", 7, HEAD)


def test_github_run_attempt_defaults_to_1():
    env = {**GITHUB, "GITHUB_EVENT_NAME": "pull_request"}
    del env["GITHUB_RUN_ATTEMPT"]
    assert github_event(env, github_pull_event("opened", PLATFORM, 7, HEAD)).delivery == "42-1"


@pytest.mark.parametrize("change, says", [
    ({"GITHUB_REPOSITORY": "acme/other"}, "GITHUB_EVENT_PATH names repository acme/platform, but "
                                          "GITHUB_REPOSITORY is acme/other"),
    ({"GITHUB_RUN_ID": "x"}, "GITHUB_RUN_ID must be a number, got 'x'"),
    ({"GITHUB_EVENT_NAME": ""}, "GITHUB_EVENT_NAME is not set"),
])
def test_github_bad_variables_are_named(change, says):
    env = {**GITHUB, "GITHUB_EVENT_NAME": "pull_request", **change}
    with pytest.raises(CiEnvError) as raised:
        github_event(env, github_pull_event("opened", PLATFORM, 7, HEAD))
    assert str(raised.value) == says


def test_github_a_payload_without_a_field_names_the_file_and_the_field():
    payload = github_pull_event("opened", PLATFORM, 7, HEAD)
    del payload["pull_request"]["head"]["sha"]
    with pytest.raises(CiEnvError, match=r"^GITHUB_EVENT_PATH: .*missing field pull_request.head.sha"):
        github_event({**GITHUB, "GITHUB_EVENT_NAME": "pull_request"}, payload)
    with pytest.raises(CiEnvError, match="does not hold a JSON object"):
        github_event({**GITHUB, "GITHUB_EVENT_NAME": "pull_request"}, [])


def test_gitlab_merge_request_pipeline_is_the_webhooks_event():
    webhook = parse_gitlab("Merge Request Hook", "uuid", gitlab_mr_event("open", PLATFORM, 77, 1, HEAD))
    event = gitlab_event(mr_env())
    assert event == dataclasses.replace(webhook, delivery="gitlab-ci-1000-2000")
    assert event.repo == Repo("gitlab", REPO, PLATFORM.remote, "main", 77)


def test_gitlab_push_pipeline_is_the_webhooks_event():
    """GitLab's published push example, unchanged, and the variables of the pipeline it starts."""
    from bot_fixtures import gitlab_payload

    webhook = parse_gitlab("Push Hook", "uuid", gitlab_payload("push"))
    env = {"GITLAB_CI": "true", "CI_PIPELINE_SOURCE": "push", "CI_PROJECT_ID": "15", "CI_PROJECT_PATH": "mike/diaspora",
           "CI_SERVER_URL": "http://example.com", "CI_API_V4_URL": "http://example.com/api/v4",
           "CI_REPOSITORY_URL": "http://gitlab-ci-token:[MASKED]@example.com/mike/diaspora.git",
           "CI_DEFAULT_BRANCH": "master", "CI_COMMIT_BRANCH": "master", "CI_PIPELINE_ID": "1000",
           "CI_COMMIT_BEFORE_SHA": webhook.before, "CI_COMMIT_SHA": webhook.after, "GITLAB_USER_LOGIN": "jsmith"}
    event = gitlab_event(env)
    # a pipeline knows its head commit's message only: promisebot's own commits are not recognised
    assert event == dataclasses.replace(webhook, delivery="gitlab-ci-1000", commit_messages=())


def test_gitlab_merged_results_pipeline_plans_the_source_head():
    event = gitlab_event(mr_env(CI_COMMIT_SHA="f" * 40, CI_MERGE_REQUEST_SOURCE_BRANCH_SHA=HEAD))
    assert event.head_sha == HEAD


def test_gitlab_merge_request_from_a_fork_is_about_the_target_project():
    event = gitlab_event(mr_env(CI_PROJECT_ID="88", CI_PROJECT_PATH="someone/platform",
                                CI_PROJECT_URL="http://gitlab.example/someone/platform",
                                CI_MERGE_REQUEST_PROJECT_ID="77", CI_MERGE_REQUEST_PROJECT_PATH=REPO,
                                CI_MERGE_REQUEST_PROJECT_URL=f"http://gitlab.example/{REPO}",
                                CI_MERGE_REQUEST_SOURCE_PROJECT_ID="88", CI_MERGE_REQUEST_DRAFT="true"))
    assert event.repo == Repo("gitlab", REPO, f"http://gitlab.example/{REPO}.git", "main", 77)
    assert event.from_fork and event.draft
    assert event.url == f"http://gitlab.example/{REPO}/-/merge_requests/1"


@pytest.mark.parametrize("variables, reason", [
    ({"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "1", "CI_COMMIT_SHA": HEAD,
      "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "release"},
     "merge request !1 targets branch release, not the default branch main"),
    ({"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "v1", "CI_COMMIT_SHA": HEAD},
     "tag pipeline v1: tags are not reconciled"),
    ({"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "feature", "CI_COMMIT_SHA": HEAD},
     "pipeline of branch feature, not the default branch main"),
    ({"CI_PIPELINE_SOURCE": "chat", "CI_COMMIT_BRANCH": "main", "CI_COMMIT_SHA": HEAD},
     "pipeline source 'chat' is not acted on"),
])
def test_gitlab_what_is_not_acted_on(variables, reason):
    event = gitlab_event({**GITLAB_PROJECT, **variables})
    assert (event.kind, event.reason) == ("ignored", reason)


def test_gitlab_a_scheduled_pipeline_of_the_default_branch_reconciles():
    event = gitlab_event({**GITLAB_PROJECT, "CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "main",
                          "CI_COMMIT_SHA": HEAD, "CI_COMMIT_BEFORE_SHA": "0" * 40})
    assert (event.kind, event.after, event.before, event.ref) == ("push", HEAD, "0" * 40, "refs/heads/main")


@pytest.mark.parametrize("change, says", [
    ({"CI_PROJECT_ID": "acme"}, "CI_PROJECT_ID must be a number, got 'acme'"),
    ({"CI_MERGE_REQUEST_IID": ""}, "CI_MERGE_REQUEST_IID is not set"),
    ({"CI_PIPELINE_ID": ""}, "CI_PIPELINE_ID is not set"),
    ({"CI_REPOSITORY_URL": "", "CI_API_V4_URL": "", "CI_SERVER_URL": ""},
     "CI_SERVER_URL is not set: neither CI_API_V4_URL nor CI_SERVER_URL is set"),
])
def test_gitlab_bad_variables_are_named(change, says):
    with pytest.raises(CiEnvError) as raised:
        gitlab_event(mr_env(**change))
    assert str(raised.value) == says


def test_gitlab_clone_url_without_a_repository_url():
    event = gitlab_event(mr_env(CI_REPOSITORY_URL=""))
    assert event.repo is not None and event.repo.clone_url == f"http://gitlab.example/{REPO}.git"


@pytest.mark.parametrize("url, clean", [
    ("https://gitlab-ci-token:[MASKED]@gitlab.example.com/group/project.git",
     "https://gitlab.example.com/group/project.git"),
    ("https://gitlab-ci-token:s3cret@gitlab.example.com:8443/group/project.git",
     "https://gitlab.example.com:8443/group/project.git"),
    ("https://gitlab.example.com/group/project.git", "https://gitlab.example.com/group/project.git"),
    ("/srv/git/platform.git", "/srv/git/platform.git"),
])
def test_strip_credentials(url, clean):
    assert strip_credentials(url) == clean


def test_gitlab_base_url():
    assert gitlab_base_url({"CI_API_V4_URL": "https://gl.example/sub/api/v4"}) == "https://gl.example/sub"
    assert gitlab_base_url({"CI_SERVER_URL": "https://gl.example/"}) == "https://gl.example"
    with pytest.raises(CiEnvError, match="CI_API_V4_URL must end with /api/v4"):
        gitlab_base_url({"CI_API_V4_URL": "https://gl.example/api"})


def test_which_ci():
    assert forge_of({"GITHUB_ACTIONS": "true"}) == "github"
    assert forge_of({"GITLAB_CI": "true"}) == "gitlab"
    with pytest.raises(CiEnvError, match="neither GITHUB_ACTIONS nor GITLAB_CI"):
        forge_of({"CI": "true"})
