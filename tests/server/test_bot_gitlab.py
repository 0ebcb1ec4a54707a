"""The bot end to end on GitLab: GitLab's published webhook examples (adapted to this project)
with `X-Gitlab-Token` into the real flask app over HTTP, the embedded default's queue,
python-gitlab talking to the GitLab stand-in, real Git repositories (the merge request's head
fetched from refs/merge-requests/N/head). Pipelines run through the fake runner."""

from __future__ import annotations

import pytest
from bot_fixtures import (
    REPO,
    BotServer,
    gitlab_mr_event,
    gitlab_world,
    send_gitlab,
)
from fake_runner import FakeRunner
from reconcile_fixtures import git

from bot.forges.comment import MARKER

R1 = "dev/resources/default/redis/r1/instance/5058f/thing.yaml"
MR_HOOK = "Merge Request Hook"


@pytest.fixture
def world(tmp_path):
    with gitlab_world(tmp_path) as (platform, gitlab, project, config):
        runner = FakeRunner()
        bot = BotServer(config, runner)
        try:
            yield platform, gitlab, project, bot, runner
        finally:
            bot.close()


def plan_notes(mr):
    return [n for n in mr.notes if n.body.startswith(MARKER)]


def status_posts(gitlab, sha, name="promisebot/plan"):
    """The states promisebot posted for `sha` under `name`, in order (the stand-in folds a
    pending status and its outcome into one object, as GitLab does)."""
    return [r.body["state"] for r in gitlab.calls("POST", f"/statuses/{sha}")
            if r.body.get("name") == name and r.status == 201]


def test_open_update_merge(world):
    platform, gitlab, project, bot, runner = world
    head = platform.open_change(1)
    mr = gitlab.add_merge_request(project, iid=1, sha=head, base_sha=platform.base, source_branch="change-1")
    gitlab.approve(mr, "reviewer")

    # opened: one plan note, promisebot/plan pending then success on the head
    answer = send_gitlab(bot.url, MR_HOOK, gitlab_mr_event("open", platform, project.id, 1, head))
    assert answer.status_code == 202, answer.text
    bot.queue.join()
    (note,) = plan_notes(mr)
    assert note.author.username == "promisebot"
    assert "r1" in note.body and "thing.yaml" in note.body and head[:12] in note.body
    assert status_posts(gitlab, head) == ["pending", "success"]
    assert [s.status for s in gitlab.statuses(project, head) if s.name == "promisebot/plan"] == ["success"]
    assert platform.store_files().get(R1) is None, "a plan writes nothing"
    assert bot.plans.saved("gitlab", REPO, 1), "the plan's pipeline results are saved for the merge"

    # an update with oldrev (new commits): the same note, edited
    head2 = platform.open_change(1, spec={"size": 2})
    mr.sha = head2
    project.commits[head2] = "change-1"
    event = gitlab_mr_event("update", platform, project.id, 1, head2, oldrev=head)
    assert send_gitlab(bot.url, MR_HOOK, event).status_code == 202
    bot.queue.join()
    (edited,) = plan_notes(mr)
    assert edited.id == note.id and head2[:12] in edited.body and head[:12] not in edited.body
    assert len(gitlab.calls("PUT", f"/notes/{note.id}")) == 1
    assert status_posts(gitlab, head2) == ["pending", "success"]

    # an update without oldrev (a title edit): acknowledged, nothing done
    calls, runs = len(gitlab.requests), len(runner.calls)
    event = gitlab_mr_event("update", platform, project.id, 1, head2)
    event["changes"] = {"title": {"previous": "MS-Viewport", "current": "Add Redis r1"}}
    answer = send_gitlab(bot.url, MR_HOOK, event)
    assert answer.status_code == 200 and "oldrev" in answer.json()["ignored"]
    bot.queue.join()
    assert (len(gitlab.requests), len(runner.calls)) == (calls, runs)

    # merged: the store gets the planned files without a pipeline re-run; the note says where
    merge = platform.merge(1)
    mr.state, mr.merge_commit_sha = "merged", merge
    project.commits[merge] = "main"
    event = gitlab_mr_event("merge", platform, project.id, 1, head2, merge_sha=merge)
    assert send_gitlab(bot.url, MR_HOOK, event).status_code == 202
    bot.queue.join()
    assert platform.store_files()[R1] == "kind: Thing\nname: r1"
    assert len(runner.calls) == runs, "the apply reused the planned results"
    (applied,) = plan_notes(mr)
    assert applied.id == note.id and "GitStateStore/state" in applied.body and merge[:12] in applied.body
    assert status_posts(gitlab, merge, "promisebot/apply")[-1] == "success"
    message = git(platform.state, "log", "-1", "--format=%B", "main")
    assert f"Promisebot-Change: {gitlab.url}/{REPO}/-/merge_requests/1" in message
    assert "Promisebot-Author: dev" in message and "Promisebot-Approved-By: reviewer" in message
    assert bot.plans.saved("gitlab", REPO, 1) == [], "saved results are dropped after the merge"
    assert len(mr.notes) == 1


def test_closed_without_merge_drops_the_saved_plan(world):
    platform, gitlab, project, bot, runner = world
    head = platform.open_change(2, name="r2")
    mr = gitlab.add_merge_request(project, iid=2, sha=head, base_sha=platform.base, source_branch="change-2")
    assert send_gitlab(bot.url, MR_HOOK, gitlab_mr_event("open", platform, project.id, 2, head)).status_code == 202
    bot.queue.join()
    saved = bot.plans.saved("gitlab", REPO, 2)
    assert saved and len(plan_notes(mr)) == 1

    calls, runs = len(gitlab.requests), len(runner.calls)
    mr.state = "closed"
    assert send_gitlab(bot.url, MR_HOOK, gitlab_mr_event("close", platform, project.id, 2, head)).status_code == 202
    bot.queue.join()
    assert bot.plans.saved("gitlab", REPO, 2) == []
    assert all(bot.plans.get(key) is None for key in saved)
    assert bot.plans.discard("gitlab", REPO, 2) == 0, "nothing is left under the change"
    assert (len(gitlab.requests), len(runner.calls)) == (calls, runs), "a close reports nothing and runs nothing"
    assert platform.store_files() == {}, "nothing was written to the state store"


def test_the_head_is_fetched_from_the_merge_request_ref(world):
    """A head that only exists under refs/merge-requests/N/head (a fork's MR) is planned."""
    platform, gitlab, project, bot, _runner = world
    head = platform.open_change(3, name="r3")
    assert git(platform.remote, "for-each-ref", "--format=%(refname)", "refs/merge-requests/") \
        == "refs/merge-requests/3/head"
    assert git(platform.remote, "branch", "--list") == "* main"
    mr = gitlab.add_merge_request(project, iid=3, sha=head, base_sha=platform.base, source_branch="change-3")
    assert send_gitlab(bot.url, MR_HOOK, gitlab_mr_event("reopen", platform, project.id, 3, head)).status_code == 202
    bot.queue.join()
    (note,) = plan_notes(mr)
    assert "r3" in note.body
    assert status_posts(gitlab, head) == ["pending", "success"]
