"""ChatOps end to end on GitLab: GitLab's published Note Hook example (a note on a merge
request) into the real flask app over HTTP, python-gitlab against the GitLab stand-in, real Git
repositories, the fake runner. Award emoji, access levels as roles, a fork merge request held
until ok-to-test, and an apply that merges once approved."""

from __future__ import annotations

import pytest
from bot_fixtures import (
    REPO,
    BotServer,
    PlatformRemote,
    gitlab_mr_event,
    gitlab_world,
    send_gitlab,
)
from chatops_fixtures import gitlab_note_event
from fake_runner import FakeRunner
from forge_servers.gitlab import GitLabServer

from bot.chatops.replies import REPLY_MARKER
from bot.forges.comment import MARKER

DEVELOPER, REPORTER = 30, 20


class World:
    def __init__(self, platform: PlatformRemote, gitlab: GitLabServer, project, bot: BotServer,
                 runner: FakeRunner) -> None:
        self.platform, self.gitlab, self.project, self.bot, self.runner = platform, gitlab, project, bot, runner

    def open(self, iid: int, name: str, *, author: str = "dev", from_fork: bool = False):
        head = self.platform.open_change(iid, name=name)
        mr = self.gitlab.add_merge_request(self.project, iid=iid, sha=head, base_sha=self.platform.base,
                                           source_branch=f"change-{iid}", author=author, from_fork=from_fork)
        event = gitlab_mr_event("open", self.platform, self.project.id, iid, head)
        if from_fork:
            event["object_attributes"]["source_project_id"] = mr.source_project_id
        assert send_gitlab(self.bot.url, "Merge Request Hook", event).status_code == 202
        self.bot.queue.join()
        return mr, head

    def say(self, mr, head: str, body: str, *, user: str):
        note = self.gitlab.add_note(mr, body, author=user)
        event = gitlab_note_event(self.platform, self.project.id, mr.iid, head, body, user=user, note_id=note.id)
        assert send_gitlab(self.bot.url, "Note Hook", event).status_code == 202
        self.bot.queue.join()
        return note

    def replies(self, mr) -> list[str]:
        return [n.body for n in mr.notes if n.body.startswith(REPLY_MARKER)]

    def plan(self, mr) -> str:
        (body,) = [n.body for n in mr.notes if n.body.startswith(MARKER)]
        return body


@pytest.fixture
def world(tmp_path):
    with gitlab_world(tmp_path) as (platform, gitlab, project, config):
        gitlab.add_member(REPO, "reporter", REPORTER)
        gitlab.add_member(REPO, "maintainer", 40)
        runner = FakeRunner()
        bot = BotServer(config, runner)
        try:
            yield World(platform, gitlab, project, bot, runner)
        finally:
            bot.close()


def test_help_gets_an_award_emoji_and_a_reply(world):
    mr, head = world.open(1, "r1")
    note = world.say(mr, head, "/promisebot help", user="reporter")
    assert [a.name for a in note.awards] == ["eyes"]
    (reply,) = world.replies(mr)
    assert "@reporter:" in reply and "needs write access to acme/platform" in reply


def test_a_reporter_may_not_apply(world):
    mr, head = world.open(1, "r1")
    world.say(mr, head, "/promisebot apply", user="reporter")
    assert "`apply` needs write access" in world.replies(mr)[-1]
    assert world.gitlab.calls("PUT", "/merge") == []


def test_a_fork_merge_request_waits_for_ok_to_test(world):
    mr, head = world.open(1, "r1", author="outsider", from_fork=True)
    assert world.runner.calls == [] and "waiting for approval" in world.plan(mr)
    world.say(mr, head, "/promisebot ok-to-test", user="dev")
    assert len(world.runner.calls) == 1
    assert "waiting for approval" not in world.plan(mr) and "thing.yaml" in world.plan(mr)


def test_apply_merges_once_approved(world):
    mr, head = world.open(1, "r1")
    world.say(mr, head, "/promisebot apply", user="maintainer")
    assert "**approved**" in world.replies(mr)[-1]
    world.gitlab.approve(mr, "maintainer")
    world.gitlab.set_merge_result(mr, merge_commit_sha="d" * 40)
    world.say(mr, head, "/promisebot apply", user="maintainer")
    (merge,) = world.gitlab.calls("PUT", "/merge")
    assert merge.body["sha"] == head
