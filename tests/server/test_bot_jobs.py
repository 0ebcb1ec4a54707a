"""How the queued jobs behave end to end (real app over HTTP, the embedded default's queue, the
forge stand-ins, real Git): a newer head supersedes a queued or running plan of the same change,
and a job that meets a forge answering 502 is retried until its report lands, once."""

from __future__ import annotations

import threading

from bot_fixtures import (
    GITLAB_HEAD_REF,
    REPO,
    SECRET,
    BotServer,
    PlatformRemote,
    add_platform_repo,
    github_config,
    github_pull_event,
    gitlab_mr_event,
    send_github,
    send_gitlab,
)
from fake_runner import FakeRunner, default_outputs
from forge_servers.github import GitHubServer
from forge_servers.gitlab import GitLabServer

from bot.forges.comment import MARKER
from bot.server.config import BotConfig
from runners.base import PipelineJob, PipelineResult

MR_HOOK = "Merge Request Hook"


def gitlab_config(gitlab, tmp_path):
    return BotConfig(gitlab_token=gitlab.token, gitlab_url=gitlab.url, gitlab_webhook_secrets=(SECRET,),
                     data_dir=tmp_path / "data")


def plan_states(github, sha):
    return [s["state"] for s in github.statuses(REPO, sha) if s["context"] == "promisebot/plan"]


def gitlab_plan_posts(gitlab, sha):
    return [r.body["state"] for r in gitlab.calls("POST", f"/statuses/{sha}")
            if r.body.get("name") == "promisebot/plan" and r.status == 201]


class BlockingRunner(FakeRunner):
    """The fake runner, whose first pipeline waits for `release` (and says it started)."""

    def __init__(self) -> None:
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()
        self._first = True

    def run(self, job: PipelineJob) -> PipelineResult:
        if self._first:
            self._first = False
            self.started.set()
            assert self.release.wait(60), "never released"
        return super().run(job)


# -- a newer head supersedes ------------------------------------------------------------------


def test_a_queued_plan_is_superseded_by_a_newer_head(tmp_path):
    """Both events wait in the queue: the plan of A is skipped, only B's is reported."""
    platform = PlatformRemote(tmp_path)
    gate = threading.Event()
    with GitHubServer() as github:
        add_platform_repo(github)
        runner = FakeRunner()
        bot = BotServer(github_config(github, tmp_path), runner, gate=gate)
        try:
            head_a = platform.open_change(1)
            github.add_pull(REPO, 1, head_sha=head_a, base_sha=platform.base)
            assert send_github(bot.url, "pull_request", github_pull_event("opened", platform, 1, head_a)
                               ).status_code == 202
            head_b = platform.open_change(1, spec={"size": 2})
            github.update_pull(REPO, 1, head_sha=head_b)
            assert send_github(bot.url, "pull_request", github_pull_event("synchronize", platform, 1, head_b)
                               ).status_code == 202
            assert github.requests == [] and runner.calls == [], "nothing ran before the release"
            gate.set()
            bot.queue.join()

            (comment,) = [c for c in github.comments(REPO, 1) if c["body"].startswith(MARKER)]
            assert head_b[:12] in comment["body"] and head_a[:12] not in comment["body"]
            assert plan_states(github, head_b) == ["pending", "success"]
            assert plan_states(github, head_a) == [], "the superseded plan reported nothing"
            assert {call[1] for call in runner.calls} == {"r1"}
            runs_of_one_plan = len(runner.calls)
        finally:
            bot.close()

    # the same change planned alone runs as many pipelines: A's plan ran none
    with GitHubServer() as github:
        add_platform_repo(github)
        alone = FakeRunner()
        bot = BotServer(github_config(github, tmp_path / "alone"), alone)
        try:
            github.add_pull(REPO, 1, head_sha=head_b, base_sha=platform.base)
            send_github(bot.url, "pull_request", github_pull_event("opened", platform, 1, head_b))
            bot.queue.join()
            assert len(alone.calls) == runs_of_one_plan
        finally:
            bot.close()


def test_a_running_plan_is_not_reported_once_a_newer_head_arrives(tmp_path):
    """A's plan is running when B is pushed: A's result is not reported (not in the note, no
    final status on A); B's is."""
    platform = PlatformRemote(tmp_path, head_ref=GITLAB_HEAD_REF)
    with GitLabServer() as gitlab:
        project = gitlab.add_project(REPO)
        gitlab.add_member(REPO, "dev", 30)  # the merge requests' author, a Developer: trusted
        runner = BlockingRunner()
        bot = BotServer(gitlab_config(gitlab, tmp_path), runner)
        try:
            head_a = platform.open_change(1)
            mr = gitlab.add_merge_request(project, iid=1, sha=head_a, base_sha=platform.base,
                                          source_branch="change-1")
            assert send_gitlab(bot.url, MR_HOOK, gitlab_mr_event("open", platform, project.id, 1, head_a)
                               ).status_code == 202
            assert runner.started.wait(30), "A's plan never reached its pipeline"
            head_b = platform.open_change(1, spec={"size": 2})
            mr.sha = head_b
            project.commits[head_b] = "change-1"
            event = gitlab_mr_event("update", platform, project.id, 1, head_b, oldrev=head_a)
            assert send_gitlab(bot.url, MR_HOOK, event).status_code == 202
            runner.release.set()
            bot.queue.join()

            (note,) = [n for n in mr.notes if n.body.startswith(MARKER)]
            assert head_b[:12] in note.body and head_a[:12] not in note.body
            assert gitlab_plan_posts(gitlab, head_b) == ["pending", "success"]
            # A's plan was not reported; its pending status is closed off (GitLab has no "error": failed)
            assert gitlab_plan_posts(gitlab, head_a) == ["pending", "failed"]
            (last,) = [r.body for r in gitlab.calls("POST", f"/statuses/{head_a}")
                       if r.body.get("name") == "promisebot/plan" and r.body.get("state") == "failed"]
            assert "superseded by" in last["description"]
            assert len(gitlab.calls("POST", "/notes")) == 1 and gitlab.calls("PUT", "/notes/") == []
        finally:
            runner.release.set()
            bot.close()
            assert gitlab.errors == []


# -- retries ----------------------------------------------------------------------------------


def test_a_forge_answering_502_twice_is_retried_and_the_comment_lands_once(tmp_path):
    """GitLab answers the job's first two calls with a 502 (a proxy page): the job is retried
    and reports once."""
    platform = PlatformRemote(tmp_path, head_ref=GITLAB_HEAD_REF)
    with GitLabServer() as gitlab:
        project = gitlab.add_project(REPO)
        gitlab.add_member(REPO, "dev", 30)  # the merge requests' author, a Developer: trusted
        runner = FakeRunner()
        bot = BotServer(gitlab_config(gitlab, tmp_path), runner, retry_intervals=[0.05, 0.05, 0.05])
        try:
            head = platform.open_change(1)
            mr = gitlab.add_merge_request(project, iid=1, sha=head, base_sha=platform.base,
                                          source_branch="change-1")
            gitlab.fail_next(2, 502)
            assert send_gitlab(bot.url, MR_HOOK, gitlab_mr_event("open", platform, project.id, 1, head)
                               ).status_code == 202
            bot.queue.join()
            assert [r.status for r in gitlab.requests[:2]] == [502, 502]
            assert len([n for n in mr.notes if n.body.startswith(MARKER)]) == 1
            assert len(gitlab.calls("POST", "/notes")) == 1
            assert gitlab_plan_posts(gitlab, head) == ["pending", "success"]
        finally:
            bot.close()
            assert gitlab.errors == []


def test_a_retry_after_the_comment_landed_does_not_comment_again(tmp_path):
    """GitHub fails the plan's final status, then the retry's first status, with 502: the
    comment made by the first attempt is found again, not duplicated, and the last attempt's
    status is the plan's."""
    platform = PlatformRemote(tmp_path)
    with GitHubServer() as github:
        add_platform_repo(github)
        runner = FakeRunner()

        def outputs(job: PipelineJob) -> dict[str, bytes]:
            if not runner.calls[:-1]:  # during the first attempt's pipeline, after its pending status
                github.fail_next(2, 502, path_contains="/statuses/")
            return default_outputs(job)

        runner.outputs["redis"] = outputs
        bot = BotServer(github_config(github, tmp_path), runner)
        try:
            head = platform.open_change(1)
            github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)
            assert send_github(bot.url, "pull_request", github_pull_event("opened", platform, 1, head)
                               ).status_code == 202
            bot.queue.join()
            statuses = github.calls("POST", r"/repos/acme/platform/statuses/\w+")
            assert [r.status for r in statuses] == [201, 502, 502, 201, 201], "pending, final (502), pending " \
                "(502), then pending and final"
            assert len(github.calls("POST", r"/repos/acme/platform/issues/1/comments")) == 1
            assert len([c for c in github.comments(REPO, 1) if c["body"].startswith(MARKER)]) == 1
            assert plan_states(github, head) == ["pending", "pending", "success"]
        finally:
            bot.close()
