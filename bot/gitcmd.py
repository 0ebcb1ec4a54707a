"""Running git plumbing commands on a local repository, and reading a commit's tree: one
`ls-tree` listing and batched `cat-file --batch` reads. The platform reader
(`bot.platform.GitTreeSource`), the reconciler and bookkeeping share these (the state-store
writers have their own, with credentials).
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bot.errors import PromisebotError


class GitError(PromisebotError):
    """A git command failed; the message has its first argument and git's stderr."""


def git(repo: Path, *args: str, input_bytes: bytes | None = None, ok: tuple[int, ...] = (0,)) -> bytes:
    """stdout of `git <args>` run in `repo`; raises GitError on an exit code not in `ok`.
    Never prompts for credentials."""
    proc = subprocess.run(["git", *args], cwd=repo, input=input_bytes, capture_output=True, check=False,
                          env=dict(os.environ, GIT_TERMINAL_PROMPT="0"))
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


# (repository, full sha) pairs known to be commits: a commit never changes, so a full sha
# once verified needs no further `rev-parse` in this process.
_COMMITS: set[tuple[str, str]] = set()


def rev_sha(repo: Path, rev: str) -> str | None:
    """The commit `rev` names, or None when it names none."""
    if (str(repo), rev) in _COMMITS:
        return rev
    out = git(repo, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}", ok=(0, 1, 128))
    sha = out.decode().strip() or None
    if sha:
        _COMMITS.add((str(repo), sha))
    return sha


@functools.cache
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
