"""A failed state-store write is never forgotten (issue: "No lost write"): the store rejects a
push, later runs retry the write until it lands, status shows it pending, plan shows it.
Engine tests through the fake runner and real Git repositories on disk (no Docker)."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from fake_runner import FakeRunner
from paths import ROOT
from reconcile_fixtures import Env, one_request_platform, request

from bot.kratix.conditions import RECONCILED, WORKS_SUCCEEDED, find_condition
from bot.model.works import FileChanges

R1 = "dev/resources/default/redis/r1/instance/5058f/thing.yaml"
R2 = "dev/resources/default/redis/r2/instance/5058f/thing.yaml"


def reject_pushes(env: Env, message: str = "pushes are frozen today") -> Path:
    hook = env.state / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    return hook


@pytest.fixture
def env(tmp_path):
    return one_request_platform(tmp_path, runner=FakeRunner())


def record(env: Env, kind: str, name: str):
    (rec,) = [r for ref, r in env.bookkeeping().get_many(env.bookkeeping().refs(kind)).items() if ref.name == name]
    return rec


def test_rejected_write_is_retried_until_it_lands(env):
    hook = reject_pushes(env)
    first = env.reconcile()
    assert first.errors and "pushes are frozen today" in first.errors[0]  # the hook's own words
    assert R1 not in env.files()

    # Still rejected: the write is tried again, and is still an error.
    again = env.reconcile()
    assert again.errors, "a run after a failed write must retry it, not report no changes"
    rec = record(env, "Redis.test.promisebot.io", "r1")
    assert rec.placements[0].pending and "frozen" in rec.placements[0].pending
    assert find_condition(rec.status, RECONCILED)["status"] != "True"
    assert find_condition(rec.status, WORKS_SUCCEEDED)["reason"] == "StateStoreWritePending"
    (pending,) = env.bookkeeping().pending_writes()
    assert pending.attempts == 2 and R1 in pending.changes.puts

    # plan shows the pending files as a change
    planned = env.reconcile(dry_run=True)
    assert R1 in {d.path for b in planned.batches for d in b.diff}

    hook.unlink()
    calls = len(env.runner.calls)
    landed = env.reconcile()
    assert not landed.errors and landed.commits
    assert env.files()[R1] == "kind: Thing\nname: r1\n"
    assert len(env.runner.calls) == calls, "the pipeline outputs were kept: no re-run to land them"
    rec = record(env, "Redis.test.promisebot.io", "r1")
    assert not rec.placements[0].pending and rec.placements[0].commit == landed.commits["GitStateStore/state"]
    assert find_condition(rec.status, RECONCILED)["status"] == "True"
    assert env.bookkeeping().pending_writes() == []
    assert not env.reconcile(dry_run=True).changed


def test_changes_made_while_a_write_is_pending_are_kept_in_order(env):
    hook = reject_pushes(env)
    env.reconcile()
    env.write("requests/r2.yaml", request("Redis", "r2"))
    env.commit("r2")
    assert env.reconcile().errors
    env.remove("requests/r1.yaml")
    env.commit("r1 goes")
    assert env.reconcile().errors
    hook.unlink()
    assert not env.reconcile().errors
    files = env.files()
    assert R2 in files and R1 not in files


def test_unreachable_store_is_retried(env, tmp_path):
    moved = tmp_path / "elsewhere.git"
    env.state.rename(moved)
    assert env.reconcile().errors
    assert env.reconcile().errors
    moved.rename(env.state)
    assert not env.reconcile().errors
    assert R1 in env.files()


def test_cli_status_shows_the_pending_write(env):
    import subprocess
    import sys
    reject_pushes(env)
    env.reconcile()
    root = ROOT
    out = subprocess.run([sys.executable, "-m", "bot.cli", "status", "--platform", str(env.platform)],
                         capture_output=True, text=True, cwd=root)
    assert "dev@pending" in out.stdout and "pending write to GitStateStore/state" in out.stdout
    assert "frozen" in out.stdout


def test_then_composes_in_order():
    first = FileChanges({"a/x": b"1", "b/y": b"2"}, set(), {"a/"})
    later = FileChanges({"a/z": b"3"}, {"b/y"}, {"a/"})
    out = first.then(later)
    assert out.puts == {"a/z": b"3"} and "b/y" in out.deletes and out.delete_prefixes == {"a/"}
    assert FileChanges({"k": b"1"}).then(FileChanges(delete_prefixes={""})).puts == {}




def test_an_output_the_store_refuses_blocks_only_its_own_object(env):
    env.runner.outputs["bad"] = lambda job: {"back\\slash.yaml": b"kind: X\n"}
    from reconcile_fixtures import promise
    env.write("promises/bad.yaml", promise("bad", kind="Bad"))
    env.write("requests/b1.yaml", request("Bad", "b1"))
    env.commit()
    report = env.reconcile()
    assert R1 in env.files(), "the other request's files landed"
    assert not any("slash" in p for p in env.files())
    bk = env.bookkeeping()
    (rec,) = bk.get_many(bk.refs("Bad.test.promisebot.io")).values()
    assert rec.placements[0].pending and rec.placements[0].pending.startswith("refused:")
    assert find_condition(rec.status, RECONCILED)["status"] != "True"
    assert not report.errors and report.refused  # the store write itself succeeded; the refusal is reported


def test_wrong_password_write_is_kept_and_lands_once_fixed(tmp_path, monkeypatch):
    from git_http import GitHttpServer
    from reconcile_fixtures import destination, promise

    served = tmp_path / "served"
    served.mkdir()
    (tmp_path / "p").mkdir()
    env = Env(tmp_path / "p", runner=FakeRunner())
    import shutil
    shutil.copytree(env.state, served / "state.git")
    with GitHttpServer(served, "bot", "right-password") as server:
        store = {"apiVersion": "platform.kratix.io/v1alpha1", "kind": "GitStateStore", "metadata": {"name": "state"},
                 "spec": {"url": server.url("state.git"), "branch": "main", "authMethod": "basicAuth",
                          "secretRef": {"name": "git-creds", "namespace": "default"}}}
        env.write("stores/state.yaml", store)
        env.write("destinations/dev.yaml", destination("dev"))
        env.write("promises/redis.yaml", promise("redis"))
        env.write("requests/r1.yaml", request("Redis", "r1"))
        env.commit()
        monkeypatch.setenv("PROMISEBOT_SECRET_DEFAULT_GIT_CREDS_USERNAME", "bot")
        monkeypatch.setenv("PROMISEBOT_SECRET_DEFAULT_GIT_CREDS_PASSWORD", "wrong-password")
        failed = env.reconcile()
        assert failed.errors and "authentication failed" in failed.errors[0]
        assert "wrong-password" not in repr(env.bookkeeping().pending_writes())
        monkeypatch.setenv("PROMISEBOT_SECRET_DEFAULT_GIT_CREDS_PASSWORD", "right-password")
        assert not env.reconcile().errors
    out = subprocess.run(["git", "show", f"main:{R1}"], cwd=served / "state.git", capture_output=True, text=True)
    assert out.stdout == "kind: Thing\nname: r1\n"
