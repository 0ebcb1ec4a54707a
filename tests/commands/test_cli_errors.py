"""User mistakes and missing infrastructure get one clear line, never a traceback, and the
documented exit codes; nothing is written."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from paths import ROOT
from reconcile_fixtures import Env, destination, one_request_platform

ROOT = ROOT


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env})


@pytest.mark.parametrize(("command", "code"), [("plan", 1), ("reconcile", 2), ("status", 2), ("validate", 2)])
def test_usage_errors_exit_2_except_for_plan_where_2_means_changes(command, code):
    done = cli(command, "--no-such-flag")
    assert done.returncode == code
    assert "error: unrecognized arguments: --no-such-flag" in done.stderr and "usage:" in done.stderr


@pytest.mark.parametrize("command", ["plan", "reconcile", "status"])
def test_platform_path_that_is_missing_or_not_a_git_repo(tmp_path, command):
    missing = cli(command, "--platform", str(tmp_path / "nope"))
    assert missing.returncode == 1
    assert missing.stderr == f"promisebot {command}: --platform {tmp_path / 'nope'}: no such directory\n"

    plain = cli(command, "--platform", str(tmp_path))
    assert plain.returncode == 1
    assert "not a Git repository" in plain.stderr and "Traceback" not in plain.stderr


def test_unreachable_docker_engine_stops_the_reconcile_before_anything_is_written(tmp_path):
    env = one_request_platform(tmp_path)
    nowhere = f"unix://{tmp_path}/no-engine.sock"
    before = env.store_commits()

    done = cli("reconcile", "--platform", str(env.platform), DOCKER_HOST=nowhere)
    assert done.returncode == 1
    assert f"promisebot reconcile: cannot reach the Docker engine at {nowhere}" in done.stderr
    assert "Traceback" not in done.stderr
    assert env.state_branch_commits() == 0  # no object recorded as failed because of the engine
    assert env.store_commits() == before


def test_unreachable_engine_is_not_needed_when_nothing_runs(tmp_path):
    env = Env(tmp_path)
    env.write("destinations/dev.yaml", destination("dev"))
    env.commit("a Destination only: canaries, no pipeline")
    before = env.store_commits()
    done = cli("reconcile", "--platform", str(env.platform), DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    assert done.returncode == 0, done.stderr
    assert env.store_commits() == before + 1
    assert "dev/dependencies/kratix-canary-namespace.yaml" in env.files()
