"""Concurrent reconciles of one platform (issue: "No lost write"): from two clones the loser
re-applies its records on the winner's and exits cleanly; in one directory runs wait for each
other; a clone whose state push once failed catches up. Fake runner, real Git (no Docker)."""

from __future__ import annotations

import stat
import subprocess
import threading
from pathlib import Path

import pytest
from fake_runner import FakeRunner
from reconcile_fixtures import STATE_BRANCH, Env, git, one_request_platform, request

from bot.model.objects import Ref
from bot.model.records import ObjectRecord
from bot.reconcile.context import ReconcileError
from bot.reconcile.engine import reconcile
from bot.state.bookkeeping import Bookkeeping


def clone(env: Env, remote: Path, name: str) -> Path:
    target = env.tmp / name
    subprocess.run(["git", "clone", "-q", str(remote), str(target)], check=True, capture_output=True)
    return target


@pytest.fixture
def shared(tmp_path):
    """A platform pushed to a bare remote, and two clones of it (next to the state store)."""
    env = one_request_platform(tmp_path, runner=FakeRunner())
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    git(env.platform, "remote", "add", "origin", str(remote))
    git(env.platform, "push", "-q", "origin", "main")
    return env, remote, clone(env, remote, "a"), clone(env, remote, "b")


def records_on_remote(remote: Path) -> set[str]:
    out = git(remote, "ls-tree", "-r", "--name-only", STATE_BRANCH)
    return {p for p in out.splitlines() if p.startswith("objects/")}


def test_bookkeeping_loser_reapplies_its_records(shared):
    _env, remote, a, b = shared
    first, second = Bookkeeping.open(a, STATE_BRANCH), Bookkeeping.open(b, STATE_BRANCH)
    first.put(ObjectRecord(Ref("Promise", "one")))
    second.put(ObjectRecord(Ref("Promise", "two")))
    first.set_meta(revision="x")
    assert first.commit("first")
    assert second.commit("second")  # rejected once, re-applied on top of "first", pushed
    assert {"objects/Promise/_/one.json", "objects/Promise/_/two.json"} <= records_on_remote(remote)
    assert git(b, "rev-parse", STATE_BRANCH) == git(remote, "rev-parse", STATE_BRANCH)


def test_two_clones_reconciling_at_once_both_finish(shared):
    env, remote, a, b = shared
    reports, errors = {}, []

    def run(name: str, path: Path) -> None:
        try:
            reports[name] = reconcile(path, runner=FakeRunner())
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, p)) for n, p in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert "objects/Redis.test.promisebot.io/default/r1.json" in records_on_remote(remote)
    # and every later run from either clone works
    for path in (a, b):
        assert not reconcile(path, runner=FakeRunner()).errors


def test_a_clone_whose_state_push_failed_catches_up(shared):
    env, remote, a, b = shared
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    bk = Bookkeeping.open(a, STATE_BRANCH)
    bk.put(ObjectRecord(Ref("Promise", "kept")))
    with pytest.raises(Exception, match="could not push the state branch"):
        bk.commit("local only")
    hook.unlink()
    other = Bookkeeping.open(b, STATE_BRANCH)
    other.put(ObjectRecord(Ref("Promise", "theirs")))
    other.commit("theirs")
    again = Bookkeeping.open(a, STATE_BRANCH)  # diverged: its local record is re-applied on the remote's
    assert again.has(Ref("Promise", "kept")) and again.has(Ref("Promise", "theirs"))
    again.put(ObjectRecord(Ref("Promise", "more")))
    assert again.commit("more")
    assert {"objects/Promise/_/kept.json", "objects/Promise/_/theirs.json"} <= records_on_remote(remote)


def test_two_runs_in_one_directory_wait_for_each_other(tmp_path):
    env = one_request_platform(tmp_path, runner=FakeRunner())
    for i in range(3):
        env.write(f"requests/x{i}.yaml", request("Redis", f"x{i}"))
    env.commit()
    errors = []

    def run() -> None:
        try:
            reconcile(env.platform, runner=FakeRunner())
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len([p for p in env.files() if p.endswith("thing.yaml")]) == 4


@pytest.mark.parametrize("branch", ["main"])
def test_state_branch_is_never_the_reconciled_branch(tmp_path, branch):
    env = one_request_platform(tmp_path, runner=FakeRunner())
    (env.platform / ".promisebot.yaml").write_text(f"stateBranch: {branch}\n")
    env.commit()
    with pytest.raises(ReconcileError, match="stateBranch"):
        env.reconcile()
    assert int(git(env.platform, "rev-list", "--count", "main")) == 2  # no bookkeeping commit landed there


def test_state_branch_is_never_a_store_branch(tmp_path):
    env = one_request_platform(tmp_path, runner=FakeRunner())
    (env.platform / ".promisebot.yaml").write_text("stateBranch: deploy\n")
    git(env.platform, "checkout", "-q", "-b", "work")
    env.write("stores/state.yaml", {"apiVersion": "platform.kratix.io/v1alpha1", "kind": "GitStateStore",
                                    "metadata": {"name": "state"},
                                    "spec": {"url": "../state.git", "branch": "deploy"}})
    env.commit()
    with pytest.raises(ReconcileError, match="stateBranch"):
        env.reconcile()
