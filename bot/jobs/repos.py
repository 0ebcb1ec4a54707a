"""The platform repository, cloned once per machine into the data directory and then only
fetched. Concurrent jobs of one repository never corrupt it: every fetch holds a per-repository
file lock (processes and threads alike). Credentials travel as an HTTP header for the one git
command that needs them (`bot.gitcmd.git_environment`), never in a URL, a config file or a log.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.errors import PromisebotError
from bot.forges.base import Credentials, Repo
from bot.gitcmd import GitError, git, git_environment


class RepoError(PromisebotError):
    """The platform repository could not be cloned, fetched or merged."""


IDENTITY_SUFFIX = ".repo.json"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_THREAD_LOCKS: dict[Path, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def auth_environment(credentials: Credentials | None) -> dict[str, str]:
    """Environment variables giving git one extra HTTP header (Basic auth) for one command."""
    if credentials is None:
        return {}
    token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {token}"}


class RepoCache:
    """Bare clones of platform repositories under `data_dir/repos/`."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "repos"

    def path(self, repo: Repo) -> Path:
        digest = hashlib.sha256(f"{repo.forge}:{repo.full_name}".encode()).hexdigest()[:8]
        return self.root / repo.forge / f"{_SAFE.sub('_', repo.full_name)}-{digest}.git"

    @contextmanager
    def locked(self, repo: Repo) -> Iterator[Path]:
        """The repository's directory, held exclusively (fetches, merges)."""
        path = self.path(repo)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _THREAD_LOCKS_GUARD:
            thread_lock = _THREAD_LOCKS.setdefault(path, threading.Lock())
        with thread_lock, open(path.with_suffix(".lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield path
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def sync(self, repo: Repo, credentials: Credentials | None, refs: list[str]) -> Path:
        """Clone on first use, then fetch `refs` ("<remote ref>:<local ref>" refspecs, forced)
        plus the default branch. Returns the repository path."""
        with self.locked(repo) as path, git_environment(auth_environment(credentials)):
            try:
                if not (path / "HEAD").exists():
                    git(path.parent, "init", "-q", "--bare", path.name)
                    git(path, "remote", "add", "origin", repo.clone_url)
                    git(path, "config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*")
                specs = [f"+refs/heads/{repo.default_branch}:refs/remotes/origin/{repo.default_branch}"]
                specs += [s if s.startswith("+") else "+" + s for s in refs]
                git(path, "fetch", "-q", "--no-tags", "origin", *specs)
            except GitError as exc:
                raise RepoError(f"could not fetch {repo.full_name}: {_last_line(exc)}") from None
            _remember(path, repo)
        return path

    def known(self) -> list[Repo]:
        """Every repository synced into this cache, as its last event named it (the identity
        file `sync` writes next to each clone); what startup recovery walks."""
        found = []
        for identity in sorted(self.root.glob(f"*/*{IDENTITY_SUFFIX}")):
            try:
                data = json.loads(identity.read_text())
                found.append(Repo(**{f: data[f] for f in Repo.__dataclass_fields__ if f in data}))
            except (OSError, ValueError, TypeError):
                continue  # unreadable or from another version: that repository waits for its next event
        return found

    def merge_result(self, repo: Repo, base: str, head: str, message: str) -> str:
        """The commit a merge of `head` into `base` would make (what a PR/MR plan must show);
        RepoError on a conflict."""
        with self.locked(repo) as path:
            try:
                out = git(path, "merge-tree", "--write-tree", "--name-only", "--no-messages", base, head, ok=(0, 1))
            except GitError as exc:
                raise RepoError(f"cannot merge {head[:12]} into {base[:12]}: {_last_line(exc)}") from None
            lines = out.decode().strip().splitlines()  # the tree, then any conflicted file
            tree = lines[0].strip() if lines else ""
            if not tree or len(lines) > 1:
                raise RepoError(f"{head[:12]} does not merge cleanly into {base[:12]}: rebase it, then push again")
            env = {"GIT_AUTHOR_NAME": "promisebot", "GIT_AUTHOR_EMAIL": "promisebot@localhost",
                   "GIT_COMMITTER_NAME": "promisebot", "GIT_COMMITTER_EMAIL": "promisebot@localhost",
                   "GIT_AUTHOR_DATE": "1970-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "1970-01-01T00:00:00Z"}
            with git_environment(env):
                return git(path, "commit-tree", tree, "-p", base, "-p", head, "-m", message).decode().strip()


def _remember(path: Path, repo: Repo) -> None:
    """The repository's identity next to its clone (`<clone>.repo.json`), rewritten when it
    changed (a renamed default branch); atomic, under the repository's lock."""
    identity = path.with_name(path.name.removesuffix(".git") + IDENTITY_SUFFIX)
    text = json.dumps({f: getattr(repo, f) for f in Repo.__dataclass_fields__}, sort_keys=True)
    try:
        if identity.read_text() == text:
            return
    except OSError:
        pass
    partial = identity.with_name(identity.name + ".partial")
    partial.write_text(text)
    os.replace(partial, identity)


def _last_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else str(exc)
