"""The plan / reconcile / status commands on a real platform repo and Docker."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from paths import ROOT
from reconcile_fixtures import STATE_BRANCH, git, one_request_platform, request

pytestmark = pytest.mark.docker
ROOT = ROOT
R1 = "dev/resources/default/redis/r1/instance/5058f/thing.yaml"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture
def env(tmp_path):
    return one_request_platform(tmp_path)


def test_plan_reconcile_status(env):
    platform = str(env.platform)

    plan = cli("plan", "--platform", platform)
    assert plan.returncode == 2, plan.stderr
    assert "destination dev:" in plan.stdout
    assert "+++ b/dev/resources/default/redis/r1/instance/5058f/thing.yaml" in plan.stdout
    assert "+kind: Thing" in plan.stdout
    assert env.state_branch_commits() == 0

    done = cli("reconcile", "--platform", platform, "--output", "json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert {r["result"] for r in out["runs"]} == {"succeeded"} and out["commits"]

    assert cli("plan", "--platform", platform).returncode == 0

    status = cli("status", "Redis/default/r1", "--platform", platform, "--output", "json")
    assert status.returncode == 0, status.stderr
    (obj,) = json.loads(status.stdout)["objects"]
    assert obj["status"]["message"] == "Resource requested"
    assert obj["placements"][0]["commit"] == out["commits"]["GitStateStore/state"]
    table = cli("status", "--platform", platform)
    assert "r1" in table.stdout and "Reconciled" in table.stdout
    assert cli("status", "Redis/nope", "--platform", platform).returncode == 1


def test_plan_from_a_stateless_clone(env, tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    git(env.platform, "remote", "add", "origin", str(remote))
    assert env.reconcile().commits
    git(env.platform, "push", "-q", "origin", "main", STATE_BRANCH)
    # A CI checkout: a fresh clone (next to the state store, which the platform names ../state.git).
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True)

    plan = cli("plan", "--platform", str(clone))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "pipelines that would run: 0" in plan.stdout and "no changes" in plan.stdout
    full = cli("plan", "--all", "--platform", str(clone), "--output", "json")
    assert full.returncode == 0, full.stdout + full.stderr
    assert json.loads(full.stdout)["runs"] == []

    # A shallow clone lacks the last reconciled commit: the plan is made in full, and is the same.
    env.write("requests/r2.yaml", request("Redis", "r2"))
    env.commit("r2")
    git(env.platform, "push", "-q", "origin", "main")
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{remote}", str(shallow)], check=True)
    plan = cli("plan", "--platform", str(shallow), "--output", "json")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    out = json.loads(plan.stdout)
    assert [(r["object"], r["reason"]) for r in out["runs"]] == [("Redis.test.promisebot.io/default/r2", "created")]
    assert [f["path"] for s in out["stores"] for f in s["files"]] == [R1.replace("/r1/", "/r2/")]

    # A file deleted by hand from the store: only a full plan shows its repair.
    hand = tmp_path / "hand"
    subprocess.run(["git", "clone", "-q", str(env.state), str(hand)], check=True)
    git(hand, "rm", "-q", R1)
    git(hand, "-c", "user.name=h", "-c", "user.email=h@h", "commit", "-q", "-m", "by hand")
    git(hand, "push", "-q", "origin", "HEAD:main")
    assert cli("plan", "--platform", str(clone)).returncode == 0
    full = cli("plan", "--all", "--platform", str(clone))
    assert full.returncode == 2, full.stdout + full.stderr
    assert f"add    {R1}" in full.stdout


def test_failures_and_invalid_objects_are_printed_and_exit_1(env):
    from reconcile_fixtures import promise

    env.write("promises/broken.yaml", promise("broken", configure="echo step one; echo 'cannot reach db' >&2; exit 3"))
    env.write("requests/b1.yaml", request("Broken", "b1"))
    env.write("requests/bad.yaml", request("Redis", "Bad_Name"))
    env.commit("broken")
    platform = str(env.platform)
    plan = cli("plan", "--platform", platform)
    assert plan.returncode == 1, plan.stdout + plan.stderr
    assert "exited with code 3" in plan.stdout and "| cannot reach db" in plan.stdout
    assert "requests/bad.yaml:" in plan.stdout and "metadata.name" in plan.stdout

    done = cli("reconcile", "--platform", platform)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "pipeline instance, container main: exited with code 3" in done.stdout
    assert "| step one" in done.stdout and "| cannot reach db" in done.stdout
    assert "invalid, not acted on" in done.stdout and "requests/bad.yaml:" in done.stdout
    assert R1 in env.files(), "the healthy request was still written"
    out = json.loads(cli("reconcile", "--platform", platform, "--output", "json").stdout)
    assert out["needsAttention"] and any(i["file"] == "requests/bad.yaml" for i in out["invalid"])


def test_a_secret_a_container_prints_is_never_recorded_or_printed(env):
    from reconcile_fixtures import promise

    token = "s3cr3t-value-that-must-not-leak-42"
    leaky = promise("leaky", configure='echo "using $API_TOKEN"; exit 1')
    leaky["spec"]["workflows"]["resource"]["configure"][0]["spec"]["containers"][0]["env"] = [
        {"name": "API_TOKEN", "value": token}]
    env.write("promises/leaky.yaml", leaky)
    env.write("requests/l1.yaml", request("Leaky", "l1"))
    env.commit("leaky")
    done = cli("reconcile", "--platform", str(env.platform))
    assert done.returncode == 1 and "using ***" in done.stdout
    assert token not in done.stdout + done.stderr
    # Only the Promise's own body (already in the platform repo) holds it on the state branch;
    # no log, status or message does.
    state = subprocess.run(["git", "grep", "-l", token, STATE_BRANCH], cwd=env.platform, capture_output=True, text=True)
    assert state.stdout.split() == [f"{STATE_BRANCH}:objects/Promise/_/leaky.json"]
    record = subprocess.run(["git", "show", f"{STATE_BRANCH}:objects/Leaky.test.promisebot.io/default/l1.json"],
                            cwd=env.platform, capture_output=True, text=True).stdout
    assert "using ***" in record and token not in record
    status = cli("status", "Leaky/default/l1", "--platform", str(env.platform))
    assert "using ***" in status.stdout and token not in status.stdout
