"""The installed `promisebot ci`, as a CI job runs it: its own process with only the CI's
variables, the pipelines in real containers on the Docker engine (DOCKER_HOST or the local
socket), the GitHub stand-in over HTTP. A pull request is planned and commented on, then its
merge pushed to the default branch is reconciled into the state store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from ci_fixtures import R1, REPO, github_env, github_pull_event, github_push_event, github_world, outputs

from bot.forges.comment import MARKER

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("images")]
PROMISEBOT = Path(sys.executable).parent / "promisebot"


def promisebot_ci(env: dict[str, str], home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home.mkdir(exist_ok=True)
    base = {"PATH": os.environ["PATH"], "HOME": str(home)}
    if os.environ.get("DOCKER_HOST"):
        base["DOCKER_HOST"] = os.environ["DOCKER_HOST"]
    return subprocess.run([str(PROMISEBOT), "ci", *args], env={**base, **env}, capture_output=True, text=True,
                          timeout=300, check=False)


def test_a_pull_request_then_its_merge_through_real_containers(tmp_path):
    with github_world(tmp_path) as (platform, github, _config):
        head = platform.open_change(1)
        github.add_pull(REPO, 1, head_sha=head, base_sha=platform.base)
        env = github_env(github.api_url, github.web_url, tmp_path, "pull_request",
                         github_pull_event("opened", platform, 1, head))
        done = promisebot_ci(env, tmp_path / "home", "--mode", "plan", "--platform-path", str(platform.work),
                             "--detailed-exitcode")
        assert done.returncode == 2, done.stdout + done.stderr
        (comment,) = [c for c in github.comments(REPO, 1) if c["body"].startswith(MARKER)]
        assert "thing.yaml" in comment["body"] and "1 ran, 0 failed" in comment["body"]
        assert outputs(tmp_path)["has-changes"] == "true"

        before = platform.base
        after = platform.merge(1)
        env = github_env(github.api_url, github.web_url, tmp_path, "push", github_push_event(platform, before, after),
                         run_id=43)
        done = promisebot_ci(env, tmp_path / "home", "--mode", "reconcile")
        assert done.returncode == 0, done.stdout + done.stderr
        assert platform.store_files()[R1].startswith("kind: Thing")
        assert [s["state"] for s in github.statuses(REPO, after) if s["context"] == "promisebot/apply"] == ["success"]
