"""The bot end to end on GitHub: signed webhooks into the real flask app over HTTP, the
embedded default's queue, PyGithub talking to the GitHub stand-in, real Git repositories.
Pipelines run through the fake runner here (tests/bot/test_bot_docker.py runs real containers)."""

from __future__ import annotations

import subprocess

import pytest
from bot_fixtures import REPO, SECRET, github_bot, github_pull_event, send_github

from bot.forges.comment import MARKER

R1 = "dev/resources/default/redis/r1/instance/5058f/thing.yaml"


@pytest.fixture
def world(tmp_path):
    with github_bot(tmp_path) as world:
        yield world


def plan_comments(github):
    return [c for c in github.comments(REPO, 1) if c["body"].startswith(MARKER)]


def test_open_update_merge(world):
    platform, github, bot, runner = world
    head = platform.open_change(1)
    github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)

    answer = send_github(bot.url, "pull_request", github_pull_event("opened", platform, 1, head))
    assert answer.status_code == 202, answer.text
    bot.queue.join()
    (comment,) = plan_comments(github)
    assert "r1" in comment["body"] and "thing.yaml" in comment["body"]
    states = [s["state"] for s in github.statuses(REPO, head) if s["context"] == "promisebot/plan"]
    assert states == ["pending", "success"]
    assert platform.store_files().get(R1) is None, "a plan writes nothing"

    # new commits: the same comment is edited
    head2 = platform.open_change(1, spec={"size": 2})
    github.update_pull(REPO, 1, head_sha=head2)
    assert send_github(bot.url, "pull_request", github_pull_event("synchronize", platform, 1, head2)).status_code == 202
    bot.queue.join()
    (edited,) = plan_comments(github)
    assert edited["id"] == comment["id"]
    runs_before_merge = len(runner.calls)

    # merged: the store gets the planned files, no pipeline re-runs, the comment says where
    merge = platform.merge(1)
    github.update_pull(REPO, 1, state="closed", merged=True, merge_commit_sha=merge)
    event = github_pull_event("closed", platform, 1, head2, merged=True, merge_sha=merge)
    assert send_github(bot.url, "pull_request", event).status_code == 202
    bot.queue.join()
    assert platform.store_files()[R1] == "kind: Thing\nname: r1"
    assert len(runner.calls) == runs_before_merge, "the apply reused the planned results"
    (applied,) = plan_comments(github)
    assert applied["id"] == comment["id"] and "GitStateStore/state" in applied["body"]
    assert [s["state"] for s in github.statuses(REPO, merge) if s["context"] == "promisebot/apply"][-1] == "success"


def test_bad_signatures_are_refused_before_anything(world):
    platform, github, bot, _runner = world
    event = github_pull_event("opened", platform, 1, platform.base)
    assert send_github(bot.url, "pull_request", event, secret="wrong").status_code == 401
    assert github.requests == [] and bot.queue.depth() == 0


def test_a_repeated_delivery_is_processed_once(world):
    import json
    import uuid

    import requests
    platform, github, bot, runner = world
    head = platform.open_change(1)
    github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)
    body = json.dumps(github_pull_event("opened", platform, 1, head)).encode()
    import hashlib
    import hmac
    headers = {"X-GitHub-Event": "pull_request", "X-GitHub-Delivery": str(uuid.uuid4()),
               "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
    first = requests.post(f"{bot.url}/webhooks/github", data=body, headers=headers, timeout=30)
    again = requests.post(f"{bot.url}/webhooks/github", data=body, headers=headers, timeout=30)
    assert (first.status_code, again.status_code) == (202, 200) and again.json() == {"duplicate": True}
    bot.queue.join()
    assert len(runner.calls) == 1


def test_two_merges_reconciled_by_one_job_both_say_where_they_landed(world):
    platform, github, bot, runner = world
    heads = {n: platform.open_change(n, name=f"r{n}") for n in (1, 2)}
    for n, head in heads.items():
        github.add_pull(REPO, n, head_sha=head, base_sha=platform.base)
    merges = {n: platform.merge(n) for n in (1, 2)}  # both merged before the bot hears of either
    for n, merge in merges.items():
        github.update_pull(REPO, n, state="closed", merged=True, merge_commit_sha=merge)
        event = github_pull_event("closed", platform, n, heads[n], merged=True, merge_sha=merge)
        assert send_github(bot.url, "pull_request", event).status_code == 202
    bot.queue.join()

    store_head = git_rev(platform.state, "main")
    assert len(git_log(platform.state, "main")) == 2, "one store commit (after the initial one) for both merges"
    for n in (1, 2):
        (comment,) = [c for c in github.comments(REPO, n) if c["body"].startswith(MARKER)]
        body = comment["body"]
        assert "#### Where it landed" in body, body
        row = next(line for line in body.splitlines() if f"/r{n}`" in line and line.startswith("|"))
        assert store_head[:12] in row and "`GitStateStore/state`" in row and "`dev`" in row, row
    second = next(c for c in github.comments(REPO, 2) if c["body"].startswith(MARKER))["body"]
    assert "state stores already held this change" in second


def git_rev(repo, rev):
    return subprocess.run(["git", "-C", str(repo), "rev-parse", rev], capture_output=True, text=True,
                          check=True).stdout.strip()


def git_log(repo, rev):
    return subprocess.run(["git", "-C", str(repo), "log", "--format=%H", rev], capture_output=True, text=True,
                          check=True).stdout.split()
