"""`promisebot ci` in GitLab CI, end to end: no payload, only GitLab's predefined variables;
python-gitlab talking to the GitLab stand-in over HTTP, real Git repositories (a merge request's
head fetched from refs/merge-requests/N/head), the pipelines through the fake runner. The
webhook path runs in the same world for the comparison."""

from __future__ import annotations

import pytest
from ci_fixtures import (
    GITLAB_HEAD_REF,
    R1,
    REPO,
    BotServer,
    PlatformRemote,
    gitlab_env,
    gitlab_mr_event,
    gitlab_mr_variables,
    gitlab_push_variables,
    normalized,
    open_same_change,
    run_here,
    run_process,
    send_gitlab,
    store_head,
)
from fake_runner import FakeRunner
from forge_servers.gitlab import GitLabServer

from bot.forges.comment import MARKER
from bot.server.config import BotConfig

SECRET = "webhook-secret-for-tests"


@pytest.fixture
def world(tmp_path):
    platform = PlatformRemote(tmp_path, head_ref=GITLAB_HEAD_REF)
    with GitLabServer() as gitlab:
        project = gitlab.add_project(REPO)
        gitlab.add_member(REPO, "dev", 30)  # the merge requests' author, a Developer: trusted
        project.commits[platform.base] = "main"
        yield platform, gitlab, project
        assert gitlab.errors == [], "the stand-in failed on a request"


def plan_notes(mr):
    return [n for n in mr.notes if n.body.startswith(MARKER)]


def status_posts(gitlab, sha, name="promisebot/plan"):
    return [r.body["state"] for r in gitlab.calls("POST", f"/statuses/{sha}")
            if r.body.get("name") == name and r.status == 201]


def test_a_merge_request_pipeline_gets_what_the_webhook_gives(world, tmp_path):
    platform, gitlab, project = world
    config = BotConfig(gitlab_token=gitlab.token, gitlab_url=gitlab.url, gitlab_webhook_secrets=(SECRET,),
                       data_dir=tmp_path / "data")
    bot = BotServer(config, FakeRunner())
    try:
        head1 = platform.open_change(1)
        mr1 = gitlab.add_merge_request(project, iid=1, sha=head1, base_sha=platform.base, source_branch="change-1")
        answer = send_gitlab(bot.url, "Merge Request Hook", gitlab_mr_event("open", platform, project.id, 1, head1))
        assert answer.status_code == 202, answer.text
        bot.queue.join()
    finally:
        bot.close()

    head2 = open_same_change(platform, 2)
    mr2 = gitlab.add_merge_request(project, iid=2, sha=head2, base_sha=platform.base, source_branch="change-2")
    env = gitlab_env(gitlab.url, gitlab.token, project.id, platform, **gitlab_mr_variables(2, head2))
    ran = run_process(env, "--mode", "plan", "--platform-path", str(platform.work), home=tmp_path / "home")
    assert ran.code == 0, ran.out + ran.err

    (webhook,) = plan_notes(mr1)
    (ci,) = plan_notes(mr2)
    assert ci.author.username == "promisebot"
    assert normalized(ci.body, head2) == normalized(webhook.body, head1)
    assert status_posts(gitlab, head2) == status_posts(gitlab, head1) == ["pending", "success"]
    assert platform.store_files().get(R1) is None, "a plan writes nothing"
    assert f"comment: {gitlab.url}/{REPO}/-/merge_requests/2#note_{ci.id}" in ran.out
    assert "changes: yes" in ran.out


def test_a_push_pipeline_on_the_default_branch_reconciles(world, tmp_path):
    platform, gitlab, project = world
    before, after = platform.push_main()
    project.commits[after] = "main"
    env = gitlab_env(gitlab.url, gitlab.token, project.id, platform, **gitlab_push_variables(before, after))
    ran = run_process(env, "--mode", "reconcile", home=tmp_path / "home")
    assert ran.code == 0, ran.out + ran.err
    assert platform.store_files()[R1] == "kind: Thing\nname: r1"
    assert status_posts(gitlab, after, "promisebot/apply") == ["success"]
    assert "changes: yes" in ran.out and "reconcile of main" in ran.out
    assert store_head(platform) != "", "the store was written"


def test_detailed_exitcode_and_a_failing_pipeline(world, tmp_path, capsys):
    platform, gitlab, project = world
    head = platform.open_change(1)
    gitlab.add_merge_request(project, iid=1, sha=head, base_sha=platform.base, source_branch="change-1")
    env = gitlab_env(gitlab.url, gitlab.token, project.id, platform, **gitlab_mr_variables(1, head))
    assert run_here(capsys, env, "--detailed-exitcode", runner=FakeRunner()).code == 2
    failing = FakeRunner()
    failing.failing.add("redis")
    ran = run_here(capsys, env, "--detailed-exitcode", runner=failing)
    assert ran.code == 1, ran.out + ran.err
    assert status_posts(gitlab, head)[-1] == "failed"  # GitLab's name for failure


def test_a_pipeline_of_another_branch_is_nothing_to_do(world, tmp_path, capsys):
    platform, gitlab, project = world
    env = gitlab_env(gitlab.url, gitlab.token, project.id, platform,
                     **gitlab_push_variables(platform.base, platform.base, branch="feature"))
    ran = run_here(capsys, env, runner=FakeRunner())
    assert ran.code == 0 and "nothing to do: ignored: pipeline of branch feature" in ran.out
    assert gitlab.requests == []


def test_plan_mode_on_a_push_pipeline_writes_nothing(world, tmp_path, capsys):
    platform, gitlab, project = world
    before, after = platform.push_main()
    env = gitlab_env(gitlab.url, gitlab.token, project.id, platform, **gitlab_push_variables(before, after))
    ran = run_here(capsys, env, "--mode", "plan", "--detailed-exitcode", runner=FakeRunner())
    assert ran.code == 2, ran.out + ran.err
    assert R1 in ran.out and platform.store_files().get(R1) is None
    assert gitlab.calls("POST") == [] and gitlab.calls("PUT") == []


@pytest.mark.parametrize("missing, says", [
    ("PROMISEBOT_GITLAB_TOKEN", "PROMISEBOT_GITLAB_TOKEN is not set: a project or group access token"),
    ("CI_PIPELINE_SOURCE", "CI_PIPELINE_SOURCE is not set"),
    ("CI_MERGE_REQUEST_IID", "CI_MERGE_REQUEST_IID is not set"),
    ("CI_PROJECT_ID", "CI_PROJECT_ID is not set"),
    ("CI_DEFAULT_BRANCH", "CI_DEFAULT_BRANCH is not set"),
])
def test_a_missing_variable_is_named(world, capsys, missing, says):
    platform, gitlab, project = world
    env = gitlab_env(gitlab.url, gitlab.token, project.id, platform, **gitlab_mr_variables(1, platform.base))
    del env[missing]
    ran = run_here(capsys, env, runner=FakeRunner())
    assert ran.code == 1 and f"promisebot ci: {says}" in ran.err, ran.err
    assert gitlab.requests == []


def test_the_job_token_is_not_enough(world, tmp_path):
    platform, gitlab, project = world
    env = gitlab_env(gitlab.url, gitlab.token, project.id, platform, **gitlab_mr_variables(1, platform.base))
    del env["PROMISEBOT_GITLAB_TOKEN"]
    env["CI_JOB_TOKEN"] = "job-token"
    ran = run_process(env)
    assert ran.code == 1 and "CI_JOB_TOKEN cannot comment on merge requests" in ran.err
