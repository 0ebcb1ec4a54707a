"""`promisebot ci` in GitHub Actions, end to end: the event file GitHub writes (GitHub's published
webhook examples, adapted to this repository), PyGithub talking to the GitHub stand-in over HTTP,
real Git repositories, the pipelines through the fake runner. The webhook path runs in the same
world where a comparison is made: the CI job must do what the webhook's job does."""

from __future__ import annotations

import pytest
from ci_fixtures import (
    R1,
    REPO,
    github_bot,
    github_comment_event,
    github_env,
    github_pull_event,
    github_push_event,
    github_world,
    normalized,
    open_other_change,
    open_same_change,
    outputs,
    run_here,
    run_process,
    send_github,
    store_head,
)
from fake_runner import FakeRunner

from bot.forges.comment import MARKER

PLAN = "promisebot/plan"
APPLY = "promisebot/apply"


def plan_comments(github, number):
    return [c for c in github.comments(REPO, number) if c["body"].startswith(MARKER)]


def states(github, sha, context):
    return [s["state"] for s in github.statuses(REPO, sha) if s["context"] == context]


def env_for(github, tmp_path, event_name, payload, **kwargs):
    return github_env(github.api_url, github.web_url, tmp_path, event_name, payload, **kwargs)


def test_a_pull_request_gets_what_the_webhook_path_gives_it(tmp_path):
    with github_bot(tmp_path) as (platform, github, bot, _runner):
        head1 = platform.open_change(1)
        github.add_pull(REPO, 1, head_sha=head1, base_sha=platform.base)
        assert send_github(bot.url, "pull_request", github_pull_event("opened", platform, 1, head1)).status_code == 202
        bot.queue.join()

        head2 = open_same_change(platform, 2)
        github.add_pull(REPO, 2, head_sha=head2, base_sha=platform.base)
        payload = github_pull_event("opened", platform, 2, head2)
        payload["pull_request"]["html_url"] = pull_url = f"{github.web_url}/{REPO}/pull/2"
        env = env_for(github, tmp_path, "pull_request", payload)
        ran = run_process(env, "--mode", "plan", "--platform-path", str(platform.work), home=tmp_path / "home")
        assert ran.code == 0, ran.err

        (webhook,) = plan_comments(github, 1)
        (ci,) = plan_comments(github, 2)
        assert normalized(ci["body"], head2) == normalized(webhook["body"], head1)
        assert states(github, head2, PLAN) == states(github, head1, PLAN) == ["pending", "success"]
        assert platform.store_files().get(R1) is None, "a plan writes nothing"

        url = f"{pull_url}#issuecomment-{ci['id']}"
        assert outputs(tmp_path) == {"has-changes": "true", "comment-url": url, "status": "success"}
        summary = (tmp_path / "summary.md").read_text()
        assert summary.startswith(f"### promisebot: plan of #2 at `{head2[:12]}`")
        assert url in summary and "| changes | yes |" in summary and "thing.yaml" in summary
        assert "<!-- promisebot:" not in summary, "the comment's hidden lines stay out of the summary"
        assert f"{github.web_url}/{REPO}/actions/runs/42" in summary
        assert f"comment: {url}" in ran.out
        assert list((tmp_path / "runner-temp").iterdir()) == [], "the job's clone is removed"


def test_a_push_reconciles_and_says_where_it_landed(tmp_path):
    with github_world(tmp_path) as (platform, github, _config):
        before, after = platform.push_main()
        env = env_for(github, tmp_path, "push", github_push_event(platform, before, after))
        ran = run_process(env, "--mode", "reconcile", home=tmp_path / "home")
        assert ran.code == 0, ran.err
        assert platform.store_files()[R1] == "kind: Thing\nname: r1"
        assert states(github, after, APPLY) == ["success"]
        summary = (tmp_path / "summary.md").read_text()
        assert "#### Where it landed" in summary and "`GitStateStore/state`" in summary, summary
        assert store_head(platform)[:12] in summary
        assert outputs(tmp_path) == {"has-changes": "true", "comment-url": "", "status": "success"}

        # the same push again: nothing more to write
        (tmp_path / "output.txt").unlink()
        ran = run_process(env, home=tmp_path / "home")
        assert ran.code == 0, ran.err
        assert outputs(tmp_path)["has-changes"] == "false"


def test_detailed_exitcode_is_2_with_changes_and_0_without(tmp_path, capsys):
    with github_world(tmp_path) as (platform, github, _config):
        runner = FakeRunner()
        before, after = platform.push_main(name="r0")  # the default branch, reconciled
        env = env_for(github, tmp_path, "push", github_push_event(platform, before, after), run_id=41)
        assert run_here(capsys, env, "--detailed-exitcode", runner=runner).code == 0, "a reconcile is no plan"

        head = platform.open_change(1)
        github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)
        env = env_for(github, tmp_path, "pull_request", github_pull_event("opened", platform, 1, head))
        assert run_here(capsys, env, "--detailed-exitcode", runner=runner).code == 2
        again = run_here(capsys, env, runner=runner)
        assert again.code == 0, "without the flag, changes are no failure"
        assert github.calls("PATCH") == [], "the same plan: the comment is left as it is"
        (comment,) = plan_comments(github, 1)
        assert "changes: yes" in again.out and f"#issuecomment-{comment['id']}" in again.out, "read back"

        other = open_other_change(platform, 3)
        github.add_pull(REPO, 3, head_sha=other, base_sha=platform.base)
        env = env_for(github, tmp_path, "pull_request", github_pull_event("opened", platform, 3, other), run_id=43)
        ran = run_here(capsys, env, "--detailed-exitcode", runner=runner)
        assert ran.code == 0, ran.out + ran.err
        assert "changes: no" in ran.out


def test_a_failing_pipeline_fails_the_job(tmp_path):
    with github_world(tmp_path) as (platform, github, _config):
        head = platform.open_change(1)
        github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)
        env = env_for(github, tmp_path, "pull_request", github_pull_event("opened", platform, 1, head))
        ran = run_process(env, "--detailed-exitcode", failing=("redis",), home=tmp_path / "home")
        assert ran.code == 1, ran.out + ran.err
        assert states(github, head, PLAN) == ["pending", "failure"]
        (comment,) = plan_comments(github, 1)
        assert "failed" in comment["body"]
        assert outputs(tmp_path)["status"] == "failure"
        assert "❌ failure" in (tmp_path / "summary.md").read_text()


def test_plan_mode_on_a_push_writes_nothing(tmp_path, capsys):
    with github_world(tmp_path) as (platform, github, _config):
        before, after = platform.push_main()
        env = env_for(github, tmp_path, "push", github_push_event(platform, before, after))
        ran = run_here(capsys, env, "--mode", "plan", "--detailed-exitcode", runner=FakeRunner())
        assert ran.code == 2, ran.out + ran.err
        assert f"plan for {after[:12]} (from {before[:12]})" in ran.out and R1 in ran.out
        assert platform.store_files().get(R1) is None
        assert github.calls("POST") == [] and github.calls("PATCH") == [], "no status, no comment"
        assert outputs(tmp_path) == {"has-changes": "true", "comment-url": "", "status": ""}
        assert "```text" in (tmp_path / "summary.md").read_text()


def test_reconcile_mode_refuses_a_pull_request(tmp_path, capsys):
    with github_world(tmp_path) as (platform, github, _config):
        head = platform.open_change(1)
        env = env_for(github, tmp_path, "pull_request", github_pull_event("opened", platform, 1, head))
        ran = run_here(capsys, env, "--mode", "reconcile", runner=FakeRunner())
        assert ran.code == 1
        assert "--mode reconcile cannot run on a pull/merge request" in ran.err
        assert github.requests == [], "refused before any request"


def test_an_ignored_event_is_nothing_to_do(tmp_path, capsys):
    with github_world(tmp_path) as (platform, github, _config):
        before, after = platform.push_main()
        payload = github_push_event(platform, before, after, ref="refs/heads/feature")
        ran = run_here(capsys, env_for(github, tmp_path, "push", payload), runner=FakeRunner())
        assert ran.code == 0
        assert "nothing to do: ignored: push to branch feature" in ran.out
        assert outputs(tmp_path)["has-changes"] == "false" and github.requests == []


@pytest.mark.parametrize("missing, says", [
    ("GITHUB_TOKEN", "GITHUB_TOKEN is not set"),
    ("GITHUB_EVENT_PATH", "GITHUB_EVENT_PATH is not set"),
    ("GITHUB_EVENT_NAME", "GITHUB_EVENT_NAME is not set"),
    ("GITHUB_REPOSITORY", "GITHUB_REPOSITORY is not set"),
    ("GITHUB_RUN_ID", "GITHUB_RUN_ID is not set"),
    ("GITHUB_ACTIONS", "neither GITHUB_ACTIONS nor GITLAB_CI"),
])
def test_a_missing_variable_is_named(tmp_path, capsys, missing, says):
    with github_world(tmp_path) as (platform, github, _config):
        head = platform.open_change(1)
        env = env_for(github, tmp_path, "pull_request", github_pull_event("opened", platform, 1, head))
        del env[missing]
        ran = run_here(capsys, env, runner=FakeRunner())
        assert ran.code == 1 and f"promisebot ci: {says}" in ran.err, ran.err
        assert github.requests == []


def test_a_missing_token_in_a_process_of_its_own(tmp_path):
    with github_world(tmp_path) as (platform, github, _config):
        head = platform.open_change(1)
        env = env_for(github, tmp_path, "pull_request", github_pull_event("opened", platform, 1, head))
        del env["GITHUB_TOKEN"]
        ran = run_process(env)
        assert ran.code == 1
        assert ran.err.strip() == ("promisebot ci: GITHUB_TOKEN is not set: give the step `env: GITHUB_TOKEN: "
                                   "${{ github.token }}` (or a token of your own as PROMISEBOT_GITHUB_TOKEN)")


def test_an_unreadable_event_file_is_named(tmp_path, capsys):
    with github_world(tmp_path) as (platform, github, _config):
        env = env_for(github, tmp_path, "pull_request", {})
        (tmp_path / "broken.json").write_text("{not json")
        env["GITHUB_EVENT_PATH"] = str(tmp_path / "broken.json")
        ran = run_here(capsys, env, runner=FakeRunner())
        assert ran.code == 1 and "GITHUB_EVENT_PATH: " in ran.err and "is not JSON" in ran.err


def test_chatops_with_the_actions_token(tmp_path, capsys):
    """GITHUB_TOKEN is an installation token of the github-actions app: it cannot read GET /user,
    so the bot's login is github-actions[bot]; a comment's command runs, the bot's own is ignored."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from bot.forges.github import GitHubApp

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    with github_world(tmp_path) as (platform, github, _config):
        github.add_app(15368, public, slug="github-actions")
        github.add_installation(15368, 77, [REPO])
        actions_token = GitHubApp(15368, private, api_url=github.api_url).installation_token(77)
        head = platform.open_change(1)
        github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)

        body = "/promisebot plan"
        comment_id = github.add_comment(REPO, 1, body, user="alice")
        payload = github_comment_event(platform, 1, body, comment_id=comment_id)
        payload["issue"]["pull_request"]["html_url"] = f"{github.web_url}/{REPO}/pull/1"
        env = env_for(github, tmp_path, "issue_comment", payload, token=actions_token)
        ran = run_here(capsys, env, "--detailed-exitcode", runner=FakeRunner())
        assert ran.code == 2, ran.out + ran.err
        (plan,) = plan_comments(github, 1)
        assert plan["user"] == "github-actions[bot]"
        assert [r["content"] for r in github.reactions(REPO, comment_id)] == ["eyes"]
        assert states(github, head, PLAN) == ["pending", "success"]
        assert outputs(tmp_path)["comment-url"] == f"{github.web_url}/{REPO}/pull/1#issuecomment-{plan['id']}"

        # the bot's own comment comes back as an event: ignored
        (tmp_path / "output.txt").unlink()
        own = github_comment_event(platform, 1, plan["body"], user="github-actions[bot]", user_type="Bot",
                                   comment_id=plan["id"])
        env = env_for(github, tmp_path, "issue_comment", own, token=actions_token, run_id=43)
        ran = run_here(capsys, env, runner=FakeRunner())
        assert ran.code == 0 and "ignored: a comment by a bot account" in ran.out, ran.out + ran.err
        assert len(github.comments(REPO, 1)) == 2, "alice's comment and the plan: no reply"


def test_a_transient_failure_is_retried(tmp_path, capsys):
    with github_world(tmp_path) as (platform, github, _config):
        head = platform.open_change(1)
        github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)
        github.fail_next(1, 502, path_contains="/statuses/")
        env = env_for(github, tmp_path, "pull_request", github_pull_event("opened", platform, 1, head))
        ran = run_here(capsys, env, runner=FakeRunner())
        assert ran.code == 0, ran.out + ran.err
        assert "HTTP 502" in ran.err and "trying again in 0 s" in ran.err
        assert states(github, head, PLAN) == ["pending", "success"]


def test_a_permission_refusal_fails_with_a_hint(tmp_path, capsys):
    with github_world(tmp_path) as (platform, github, _config):
        head = platform.open_change(1)
        github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)
        github.fail_next(5, 403, path_contains="/statuses/", rate_limited=False)
        env = env_for(github, tmp_path, "pull_request", github_pull_event("opened", platform, 1, head))
        ran = run_here(capsys, env, runner=FakeRunner())
        assert ran.code == 1
        assert "could not finish: GitHub: " in ran.out and "HTTP 403" in ran.out
        assert "a pull request from a fork a read-only GITHUB_TOKEN" in ran.out
        assert outputs(tmp_path) == {"has-changes": "false", "comment-url": "", "status": ""}


def test_a_merged_pull_request_is_applied(tmp_path, capsys):
    with github_world(tmp_path) as (platform, github, _config):
        runner = FakeRunner()
        head = platform.open_change(1)
        github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)
        env = env_for(github, tmp_path, "pull_request", github_pull_event("opened", platform, 1, head))
        assert run_here(capsys, env, runner=runner).code == 0
        (planned,) = plan_comments(github, 1)

        merge = platform.merge(1)
        github.update_pull(REPO, 1, state="closed", merged=True, merge_commit_sha=merge)
        event = github_pull_event("closed", platform, 1, head, merged=True, merge_sha=merge)
        ran = run_here(capsys, env_for(github, tmp_path, "pull_request", event, run_id=43), "--mode", "reconcile",
                       runner=runner)
        assert ran.code == 0, ran.out + ran.err
        assert platform.store_files()[R1] == "kind: Thing\nname: r1"
        (applied,) = plan_comments(github, 1)
        assert applied["id"] == planned["id"] and f"promisebot applied `{merge[:12]}`" in applied["body"]
        assert states(github, merge, APPLY) == ["pending", "success"]
        assert f"apply of #1 (merge `{merge[:12]}`)" in ran.out and "changes: yes" in ran.out
