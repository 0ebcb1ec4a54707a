"""The job's configuration in a CI job (bot/ci/services.py): tokens and URLs from the CI's
variables, the `PROMISEBOT_*` ones first; where the platform repo is cloned; borrowing the
objects of the job's own checkout (real Git repositories)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bot.ci.env import CiEnvError
from bot.ci.services import borrow_objects, ci_config, data_dir
from bot.server.config import DEFAULT_GITHUB_API

DATA = Path("/data")


def test_github_token_and_api_url():
    config = ci_config({"GITHUB_TOKEN": "ghs_actions", "GITHUB_API_URL": "https://ghe.example/api/v3/"}, "github", DATA)
    assert (config.github_token, config.github_api_url, config.data_dir) == ("ghs_actions", "https://ghe.example/api/v3",
                                                                            DATA)
    assert config.redis_url is None and config.github_webhook_secrets == ()
    assert ci_config({"GITHUB_TOKEN": "t"}, "github", DATA).github_api_url == DEFAULT_GITHUB_API


def test_promisebot_variables_come_first(tmp_path):
    (tmp_path / "token").write_text("ghp_own\n")
    env = {"GITHUB_TOKEN": "ghs_actions", "PROMISEBOT_GITHUB_TOKEN_FILE": str(tmp_path / "token"),
           "GITHUB_API_URL": "https://api.github.com", "PROMISEBOT_GITHUB_API_URL": "https://ghe.example/api/v3",
           "PROMISEBOT_REPO_ALLOWLIST": "acme/*", "PROMISEBOT_PLAN_DRAFTS": "true"}
    config = ci_config(env, "github", DATA)
    assert (config.github_token, config.github_api_url) == ("ghp_own", "https://ghe.example/api/v3")
    assert config.repo_allowlist == ("acme/*",) and config.plan_drafts


def test_gitlab_token_and_url():
    env = {"PROMISEBOT_GITLAB_TOKEN": "glpat-x", "CI_API_V4_URL": "https://gitlab.example/api/v4",
           "CI_JOB_TOKEN": "not this one"}
    config = ci_config(env, "gitlab", DATA)
    assert (config.gitlab_token, config.gitlab_url) == ("glpat-x", "https://gitlab.example")
    env["PROMISEBOT_GITLAB_URL"] = "https://gitlab.internal/"
    assert ci_config(env, "gitlab", DATA).gitlab_url == "https://gitlab.internal"


@pytest.mark.parametrize("forge, env, says", [
    ("github", {}, "GITHUB_TOKEN is not set"),
    ("github", {"GITHUB_TOKEN": "t", "GITHUB_API_URL": "api.github.com"},
     "GITHUB_API_URL must be an http(s) URL, got 'api.github.com'"),
    ("gitlab", {"CI_JOB_TOKEN": "j", "CI_API_V4_URL": "https://gl/api/v4"}, "PROMISEBOT_GITLAB_TOKEN is not set"),
    ("gitlab", {"PROMISEBOT_GITLAB_TOKEN": "t"}, "CI_SERVER_URL is not set"),
])
def test_what_is_missing_is_named(forge, env, says):
    with pytest.raises(CiEnvError, match=f"^{re.escape(says)}"):
        ci_config(env, forge, DATA)


def test_data_dir(tmp_path):
    chosen, temporary = data_dir({"PROMISEBOT_DATA_DIR": str(tmp_path / "cache")})
    assert (chosen, temporary) == (tmp_path / "cache", False)
    fresh, temporary = data_dir({"RUNNER_TEMP": str(tmp_path / "runner")})
    assert temporary and fresh.parent == tmp_path / "runner" and fresh.is_dir()


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def origin(tmp_path):
    work = tmp_path / "seed"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work)
    for n in range(3):
        (work / f"f{n}").write_text(str(n))
        git("add", ".", cwd=work)
        git("-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "-m", f"c{n}", cwd=work)
    bare = tmp_path / "origin.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    return bare


def fetch_into(clone: Path, origin: Path) -> int:
    """What RepoCache.sync does on first use; returns how many objects the clone holds itself."""
    clone.parent.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "--bare", clone.name, cwd=clone.parent)
    git("fetch", "-q", f"file://{origin}", "+refs/heads/main:refs/remotes/origin/main", cwd=clone)
    git("fsck", "--no-progress", cwd=clone)
    counts = dict(line.split(": ") for line in git("count-objects", "-v", cwd=clone).splitlines())
    return int(counts["count"]) + int(counts["in-pack"])


def test_a_complete_checkout_lends_its_objects(tmp_path, origin):
    checkout = tmp_path / "checkout"
    git("clone", "-q", f"file://{origin}", str(checkout), cwd=tmp_path)
    clone = tmp_path / "data" / "platform.git"
    assert borrow_objects(clone, checkout).startswith("borrowing the objects of ")
    assert fetch_into(clone, origin) == 0, "nothing fetched: the checkout had it all"


def test_a_shallow_checkout_lends_nothing(tmp_path, origin):
    checkout = tmp_path / "checkout"
    git("clone", "-q", "--depth", "1", f"file://{origin}", str(checkout), cwd=tmp_path)
    clone = tmp_path / "data" / "platform.git"
    assert borrow_objects(clone, checkout) == f"{checkout} is a shallow clone"
    assert not (clone / "objects" / "info" / "alternates").exists()
    assert fetch_into(clone, origin) == 9, "the whole history fetched (3 commits, 3 trees, 3 blobs)"


def test_what_is_not_a_checkout_lends_nothing(tmp_path):
    assert borrow_objects(tmp_path / "clone.git", tmp_path) == f"{tmp_path} is not a Git checkout"
    existing = tmp_path / "existing.git"
    git("init", "-q", "--bare", str(existing), cwd=tmp_path)
    assert borrow_objects(existing, tmp_path) == "the clone exists already"
