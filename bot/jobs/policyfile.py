"""The ChatOps policy of a platform repository, read from `.promisebot.yaml` on its default
branch in the worker's clone (never from a change: docs/chatops.md, "Authorization")."""

from __future__ import annotations

from pathlib import Path

from bot.chatops.policy import Policy, PolicyError, load_policy
from bot.forges.base import Repo
from bot.gitcmd import GitError, git
from bot.settings import SETTINGS_FILE


def read_policy(path: Path, repo: Repo) -> tuple[Policy, PolicyError | None]:
    """The policy on the default branch as last fetched: the defaults when there is no file;
    the defaults and the error when it is invalid (the caller fails closed)."""
    try:
        text: str | None = git(path, "show", f"refs/remotes/origin/{repo.default_branch}:{SETTINGS_FILE}").decode(
            "utf-8", "replace")
    except GitError:
        text = None  # no such file on the default branch
    try:
        return load_policy(text), None
    except PolicyError as exc:
        return Policy(), exc
