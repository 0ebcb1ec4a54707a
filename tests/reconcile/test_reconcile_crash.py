"""Crash safety: the `promisebot reconcile` process killed (exit 137, by the run hook
tests/crash_cli.py installs) between the pipeline runs and the store commit, and between the
store commit and the bookkeeping write; the next run converges with nothing lost or duplicated.
Also: the bookkeeping branch lost altogether. Real processes and Git repositories; the pipelines
run through the fake runner (no Docker)."""

from __future__ import annotations

import pytest
from fake_runner import FakeRunner
from reconcile_fixtures import STATE_BRANCH, Env, destination, git, promise, request

from bot.model.objects import Ref

R1 = "dev/resources/default/redis/r1/instance/5058f/thing.yaml"
REF = Ref("Redis.test.promisebot.io", "r1", "default")


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path, runner=FakeRunner())
    e.write("destinations/dev.yaml", destination("dev"))
    e.write("promises/redis.yaml", promise("redis", delete="echo bye"))
    e.write("requests/r1.yaml", request("Redis", "r1", {"size": 1}))
    e.commit("install")
    return e


def test_killed_between_pipelines_and_store_commit(env):
    commits = env.store_commits()
    crashed = env.reconcile_subprocess("after-pipelines")
    assert crashed.returncode == 137, crashed.stderr
    assert env.store_commits() == commits
    assert env.state_branch_commits() == 0
    done = env.reconcile_subprocess()
    assert done.returncode == 0, done.stderr
    assert env.store_commits() == commits + 1
    assert R1 in env.files()
    assert env.bookkeeping().get(REF).cache_key


def test_killed_between_store_commit_and_bookkeeping(env):
    commits = env.store_commits()
    crashed = env.reconcile_subprocess("after-store-write")
    assert crashed.returncode == 137, crashed.stderr
    assert env.store_commits() == commits + 1
    files = env.files()
    assert env.state_branch_commits() == 0
    # The rerun re-runs the pipelines (nothing was recorded) but writes identical files: no commit.
    done = env.reconcile_subprocess()
    assert done.returncode == 0, done.stderr
    assert env.store_commits() == commits + 1
    assert env.files() == files
    rec = env.bookkeeping().get(REF)
    assert rec.placements[0].destination == "dev"

    # Same for a delete: the files go once, the delete pipeline may run again (at least once).
    env.remove("requests/r1.yaml")
    env.commit("delete")
    assert env.reconcile_subprocess("after-store-write").returncode == 137
    assert R1 not in env.files()
    after_delete = env.store_commits()
    assert env.reconcile_subprocess().returncode == 0
    assert env.store_commits() == after_delete
    assert env.bookkeeping().get(REF) is None


def test_lost_bookkeeping_is_rebuilt_without_duplicates(env):
    env.reconcile()
    commits, files = env.store_commits(), env.files()
    git(env.platform, "branch", "-D", STATE_BRANCH)
    report = env.reconcile()
    assert report.commits == {}
    assert env.store_commits() == commits and env.files() == files
    assert env.bookkeeping().get(REF).placements[0].destination == "dev"
