"""Running git plumbing commands on a local repository, and reading a commit's tree: one
`ls-tree` listing and batched `cat-file --batch` reads. The platform reader
(`bot.platform.GitTreeSource`), the reconciler and bookkeeping share these (the state-store
writers have their own, with credentials).
"""

from __future__ import annotations

import contextvars
import functools
import os
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from bot.errors import PromisebotError

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # the id of git's empty tree object


class GitError(PromisebotError):
    """A git command failed; the message has its first argument and git's stderr."""


_EXTRA_ENV: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar("promisebot_git_env",
                                                                                       default=())


@contextmanager
def git_environment(extra: dict[str, str]) -> Iterator[None]:
    """Extra environment variables for the git commands run in this context (this thread or
    task only): how a job hands git its credentials (an HTTP header) without a config file."""
    token = _EXTRA_ENV.set(tuple({**dict(_EXTRA_ENV.get()), **extra}.items()))
    try:
        yield
    finally:
        _EXTRA_ENV.reset(token)


def git(repo: Path, *args: str, input_bytes: bytes | None = None, ok: tuple[int, ...] = (0,)) -> bytes:
    """stdout of `git <args>` run in `repo`; raises GitError on an exit code not in `ok`.
    Never prompts for credentials."""
    proc = subprocess.run(["git", *args], cwd=repo, input=input_bytes, capture_output=True, check=False,
                          env={**os.environ, **dict(_EXTRA_ENV.get()), "GIT_TERMINAL_PROMPT": "0"})
    if proc.returncode not in ok:
        raise GitError(f"git {args[0]} failed in {repo}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def git_ok(repo: Path, *args: str) -> bool:
    """Whether `git <args>` exits 0 (its output is not wanted)."""
    try:
        git(repo, *args)
    except GitError:
        return False
    return True


K = TypeVar("K", bound=Hashable)


class RecentSet(Generic[K]):
    """A set of at most `size` members, the least recently added or found dropped first: a
    process-wide cache that a long-running worker holds forever without it growing. Thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._members: OrderedDict[K, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, member: K) -> bool:
        with self._lock:
            if member not in self._members:
                return False
            self._members.move_to_end(member)
            return True

    def __len__(self) -> int:
        return len(self._members)

    def add(self, member: K) -> None:
        with self._lock:
            self._members[member] = None
            self._members.move_to_end(member)
            while len(self._members) > self.size:
                self._members.popitem(last=False)


COMMITS_KNOWN = 4096
"""How many (repository, commit) pairs `rev_sha` remembers: about a run's worth of revisions
for many platform repos; one forgotten costs one `git rev-parse`."""

# (repository, full sha) pairs known to be commits: a commit never changes, so a full sha
# once verified needs no further `rev-parse` in this process.
_COMMITS: RecentSet[tuple[str, str]] = RecentSet(COMMITS_KNOWN)


def rev_sha(repo: Path, rev: str) -> str | None:
    """The commit `rev` names, or None when it names none."""
    if (str(repo), rev) in _COMMITS:
        return rev
    out = git(repo, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}", ok=(0, 1, 128))
    sha = out.decode().strip() or None
    if sha:
        _COMMITS.add((str(repo), sha))
    return sha


@functools.lru_cache(maxsize=256)  # bounded, like every process-wide cache (RecentSet)
def toplevel(repo: Path) -> Path:
    """The top directory of the work tree `repo` is in."""
    return Path(git(repo, "rev-parse", "--show-toplevel").decode().strip())


@dataclass(frozen=True, slots=True)
class TreeEntry:
    path: str
    mode: str  # "100644", "120000" (a symbolic link), ...
    kind: str  # "blob", or "commit" for a submodule
    object_id: str
    size: int | None  # known when listed with sizes


def ls_tree(repo: Path, rev: str, paths: list[str] | None = None, *, sizes: bool = False) -> list[TreeEntry]:
    """Every file of the commit `rev` (recursively; only `paths`, taken literally, when given)."""
    out = git(repo, "--literal-pathspecs", "ls-tree", "-r", "-z", "--full-tree", *(["--long"] if sizes else []),
              rev, *(["--", *paths] if paths is not None else []))
    entries = []
    for entry in out.split(b"\0"):
        if entry:
            info, path = entry.split(b"\t", 1)
            mode, kind, object_id, *size = info.decode().split()
            entries.append(TreeEntry(path.decode(errors="surrogateescape"), mode, kind, object_id,
                                     int(size[0]) if size and size[0] != "-" else None))
    return entries


def read_blobs(repo: Path, blob_ids: list[str]) -> dict[str, bytes]:
    """The contents of blobs, by id, in one `git cat-file --batch` run; missing ones are absent."""
    out = git(repo, "cat-file", "--batch", input_bytes="".join(b + "\n" for b in blob_ids).encode())
    blobs: dict[str, bytes] = {}
    pos = 0
    for blob in blob_ids:
        header_end = out.index(b"\n", pos)
        header = out[pos:header_end].split()
        pos = header_end + 1
        if len(header) < 3 or header[1] == b"missing":
            continue
        size = int(header[2])
        blobs[blob] = out[pos:pos + size]
        pos += size + 1
    return blobs
