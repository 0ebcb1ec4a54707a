"""Pushes on GitHub, end to end: GitHub's published push example (adapted to this repository)
signed into the real app over HTTP, the embedded default's queue, the GitHub stand-in, real Git
repositories. A push to the default branch reconciles its head; promisebot's own commits and
other branches are left alone."""

from __future__ import annotations

import pytest
from bot_fixtures import REPO, github_bot, github_push_event, send_github
from reconcile_fixtures import git

from bot.state.bookkeeping import EVENT_TRAILER

R1 = "dev/resources/default/redis/r1/instance/5058f/thing.yaml"


@pytest.fixture
def world(tmp_path):
    with github_bot(tmp_path) as world:
        yield world


def store_head(platform):
    return git(platform.state, "rev-parse", "main")


def apply_states(github, sha):
    return [s["state"] for s in github.statuses(REPO, sha) if s["context"] == "promisebot/apply"]


def test_a_push_to_the_default_branch_is_reconciled(world):
    platform, github, bot, runner = world
    before, after = platform.push_main("r1")
    answer = send_github(bot.url, "push", github_push_event(platform, before, after))
    assert answer.status_code == 202 and answer.json() == {"queued": "push"}
    bot.queue.join()
    assert platform.store_files()[R1] == "kind: Thing\nname: r1"
    assert apply_states(github, after) == ["success"]
    assert runner.calls, "the request's pipeline ran"

    # the same push again (another delivery): nothing new lands
    head, runs = store_head(platform), len(runner.calls)
    assert send_github(bot.url, "push", github_push_event(platform, before, after)).status_code == 202
    bot.queue.join()
    assert store_head(platform) == head
    assert len(runner.calls) == runs


def test_the_bots_own_commits_are_ignored(world):
    platform, github, bot, runner = world
    message = f"promisebot: record status\n\n{EVENT_TRAILER}: github:push:1234"
    before, after = platform.push_main("r1", message=message)
    head = store_head(platform)
    answer = send_github(bot.url, "push", github_push_event(platform, before, after))
    assert answer.status_code == 202
    bot.queue.join()
    assert store_head(platform) == head and platform.store_files() == {}
    assert runner.calls == [] and github.requests == [], "nothing was run, nothing reported"


def test_a_push_with_one_commit_of_a_person_is_reconciled(world):
    platform, github, bot, _runner = world
    start = git(platform.work, "rev-parse", "main")
    platform.push_main("r0", message=f"promisebot: bookkeeping\n\n{EVENT_TRAILER}: x")
    _, after = platform.push_main("r1")
    assert len(platform.commits(start, after)) == 2
    assert send_github(bot.url, "push", github_push_event(platform, start, after)).status_code == 202
    bot.queue.join()
    assert R1 in platform.store_files()
    assert apply_states(github, after) == ["success"]


def test_a_push_to_another_branch_is_ignored_at_the_webhook(world):
    platform, github, bot, runner = world
    before = git(platform.work, "rev-parse", "main")
    git(platform.work, "checkout", "-q", "-b", "feature")
    platform.write("requests/r1.yaml", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    after = platform.commit("on a branch")
    git(platform.work, "push", "-q", "origin", "feature")
    event = github_push_event(platform, before, after, ref="refs/heads/feature")
    answer = send_github(bot.url, "push", event)
    assert answer.status_code == 200
    assert "feature" in answer.json()["ignored"] and "default branch" in answer.json()["ignored"]
    assert bot.queue.depth() == 0
    bot.queue.join()
    assert runner.calls == [] and github.requests == [] and platform.store_files() == {}


def test_a_tag_push_and_a_branch_deletion_are_ignored(world):
    platform, github, bot, runner = world
    main = git(platform.work, "rev-parse", "main")
    tag = github_push_event(platform, "0" * 40, main, ref="refs/tags/v1", commits=[])
    deletion = github_push_event(platform, main, "0" * 40, ref="refs/heads/main", commits=[])
    for event in (tag, deletion):
        answer = send_github(bot.url, "push", event)
        assert answer.status_code == 200 and "ignored" in answer.json()
    bot.queue.join()
    assert runner.calls == [] and github.requests == []
