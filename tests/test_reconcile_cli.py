"""The plan / reconcile / status commands on a real platform repo and Docker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from reconcile_fixtures import Env, destination, promise, request

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_plan_reconcile_status(tmp_path):
    env = Env(tmp_path)
    env.write("destinations/dev.yaml", destination("dev"))
    env.write("promises/redis.yaml", promise("redis"))
    env.write("requests/r1.yaml", request("Redis", "r1"))
    env.commit("install")
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
