"""Reconcile and plan never act on what `validate` rejects (issue: "No escape, no silent skip"):
escaping names and paths are reported and left out, the rest proceeds, nothing raises.
Engine tests through the fake runner and real Git repositories (no Docker)."""

from __future__ import annotations

import pytest
from fake_runner import FakeRunner
from paths import ROOT
from reconcile_fixtures import Env, destination, one_request_platform, promise, request

from bot.kratix.conditions import RECONCILED, find_condition

R1 = "dev/resources/default/redis/r1/instance/5058f/thing.yaml"


@pytest.fixture
def env(tmp_path):
    return one_request_platform(tmp_path, runner=FakeRunner())


def invalid_files(report) -> set[str]:
    return {p["file"] for p in report.invalid}


def test_escaping_promise_name_is_not_run(env):
    evil = promise("evil", kind="Evil")
    evil["metadata"]["name"] = "a/../../../../prod"
    env.write("promises/evil.yaml", evil)
    env.commit()
    report = env.reconcile()
    assert "promises/evil.yaml" in invalid_files(report)
    assert all(call[0] != "a/../../../../prod" for call in env.runner.calls)
    assert R1 in env.files() and not any("prod" in path for path in env.files())


@pytest.mark.parametrize("path", ["x/../prod", "../..", "/abs", "dev"])
def test_bad_or_shared_destination_path_is_not_written_and_blocks_nothing(env, path):
    env.write("destinations/prod.yaml", destination("prod", path=path))
    env.commit()
    report = env.reconcile()  # never raises
    assert "destinations/prod.yaml" in invalid_files(report)
    files = env.files()
    assert R1 in files, "the valid Destination is still written"
    assert not any(p.startswith("prod/") for p in files) and "kratix-canary-namespace.yaml" not in files
    assert all(not p.startswith("../") for p in files)


def test_escaping_store_path_is_not_written(env):
    store = {"apiVersion": "platform.kratix.io/v1alpha1", "kind": "GitStateStore", "metadata": {"name": "bad"},
             "spec": {"url": "../state.git", "branch": "main", "path": "../../../tmp/x"}}
    env.write("stores/bad.yaml", store)
    env.write("destinations/other.yaml", destination("other", store="bad"))
    env.commit()
    report = env.reconcile()
    assert "stores/bad.yaml" in invalid_files(report) or "destinations/other.yaml" in invalid_files(report)
    assert R1 in env.files()


def test_invalid_request_is_listed_and_not_run(env):
    env.write("requests/bad.yaml", request("Redis", "Not_A_Name"))
    env.write("requests/garbage.yaml")
    (env.platform / "requests/garbage.yaml").write_text("apiVersion: [unclosed\n")
    env.commit()
    report = env.reconcile()
    assert {"requests/bad.yaml", "requests/garbage.yaml"} <= invalid_files(report)
    assert all(call[1] != "Not_A_Name" for call in env.runner.calls)
    meta = env.bookkeeping().meta
    assert "requests/garbage.yaml" in meta["invalidFiles"]
    # reported again by the next (incremental) run, until fixed
    env.write("requests/r2.yaml", request("Redis", "r2"))
    env.commit()
    assert {"requests/bad.yaml", "requests/garbage.yaml"} <= invalid_files(env.reconcile())
    env.remove("requests/bad.yaml")
    env.remove("requests/garbage.yaml")
    env.commit()
    assert not env.reconcile().invalid


def test_request_turned_invalid_keeps_its_last_valid_version(env):
    env.reconcile()
    runs = len(env.runner.calls)
    broken = request("Redis", "r1")
    broken["metadata"]["labels"] = {"bad label!": "x"}
    env.write("requests/r1.yaml", broken)
    env.commit()
    report = env.reconcile()
    assert "requests/r1.yaml" in invalid_files(report)
    assert len(env.runner.calls) == runs, "nothing runs for an invalid request"
    assert R1 in env.files(), "its outputs stay: it is not treated as deleted"
    bk = env.bookkeeping()
    (rec,) = bk.get_many(bk.refs("Redis.test.promisebot.io")).values()
    assert find_condition(rec.status, RECONCILED)["reason"] == "ValidationFailed"
    env.write("requests/r1.yaml", request("Redis", "r1", spec={"size": 2}))
    env.commit()
    assert not env.reconcile().invalid
    bk = env.bookkeeping()
    (rec,) = bk.get_many(bk.refs("Redis.test.promisebot.io")).values()
    assert find_condition(rec.status, RECONCILED)["status"] == "True"


def test_plan_skips_invalid_objects_too(tmp_path):
    env = Env(tmp_path, runner=FakeRunner())
    env.write("destinations/dev.yaml", destination("dev"), destination("twin", path="dev"))
    env.write("promises/redis.yaml", promise("redis"))
    env.commit()
    report = env.reconcile(dry_run=True)
    assert "destinations/dev.yaml" in invalid_files(report)


def test_status_lists_invalid_files(env):
    import subprocess
    import sys

    (env.platform / "requests").mkdir(exist_ok=True)
    (env.platform / "requests/garbage.yaml").write_text("apiVersion: [unclosed\n")
    env.commit()
    env.reconcile()
    root = ROOT
    out = subprocess.run([sys.executable, "-m", "bot.cli", "status", "--platform", str(env.platform)],
                         capture_output=True, text=True, cwd=root)
    assert "invalid, not acted on: requests/garbage.yaml:" in out.stdout
