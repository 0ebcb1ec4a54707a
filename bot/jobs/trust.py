"""A pull request from someone the platform does not trust, restricted to its Resource requests.

When the author lacks write access or the head is in a fork, Promises, Destinations, State
Stores, pipeline images and `.promisebot.yaml` are taken from the default branch: only the pull
request's Resource request files are planned. `restrict_to_requests` makes that commit in the
clone cache (bot.jobs.repos) with git plumbing alone, no checkout: the base commit's tree with the
pull request's changes to Resource request files applied, its parent the base. Every other
changed path is listed with why it was left out, so the plan can say so; which path is a
Resource request file is decided by bot.platform.requestfiles (pure).

Linear in the size of the change: one `git diff-tree` lists it, one `git cat-file --batch`
process streams every blob it touches (each read and classified in turn, files over
`maxFileBytes` not kept in memory), one temporary index builds the tree. The default branch's
platform is read with the project's loader (`load_platform` of a `GitTreeSource`).

Callers hold the repository's lock (`RepoCache.locked`) as for `merge_result`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bot.errors import PromisebotError
from bot.gitcmd import GitError, git, git_environment, rev_sha
from bot.platform.loader import GitTreeSource, load_platform
from bot.platform.requestfiles import (
    Contents,
    FileChange,
    RequestRules,
    Side,
    blob_contents,
    blocked_additions,
    blocked_reason,
    content_reason,
    path_reason,
)

_ABSENT = "0" * 40
_CHUNK = 1 << 20
# The restricted commit is a function of its inputs: the same change planned twice is one commit.
_IDENTITY = {"GIT_AUTHOR_NAME": "promisebot", "GIT_AUTHOR_EMAIL": "promisebot@localhost",
             "GIT_COMMITTER_NAME": "promisebot", "GIT_COMMITTER_EMAIL": "promisebot@localhost",
             "GIT_AUTHOR_DATE": "1970-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "1970-01-01T00:00:00Z"}


class TrustError(PromisebotError):
    """A change could not be restricted to its Resource requests; the message says why."""


@dataclass(frozen=True, slots=True)
class Dropped:
    """A changed path left out of the restricted commit, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Restricted:
    """The restricted commit (parent: the base), the paths whose change it takes (added, changed
    or deleted Resource request files) and the changed paths it leaves as the base has them."""

    commit: str
    taken: tuple[str, ...]
    dropped: tuple[Dropped, ...]


def restrict_to_requests(repo: Path, base: str, merged: str, *, message: str) -> Restricted:
    """A new commit of `repo` whose tree is `base`'s with only the changes of `merged` (a pull
    request's merge result) to Resource request files, parent `base`, and the log `message`.

    A path is taken when every YAML document of it, in `merged` and (when it existed) in `base`,
    is a Resource request of a Promise of `base`, the file is one the platform reads and is a
    plain file; every other changed path is dropped with its reason. Raises TrustError.
    """
    repo = Path(repo)
    if not repo.is_dir():
        raise TrustError(f"cannot restrict a change: {repo} is not a directory")
    try:
        base_sha, merged_sha = _commit(repo, base), _commit(repo, merged)
        changes = _changes(repo, base_sha, merged_sha)
        loaded = load_platform(GitTreeSource(repo, base_sha))
        rules = RequestRules.of(loaded, loaded.settings)
        reasons: dict[str, str] = {}
        pending: list[FileChange] = []
        for change in changes:
            reason = path_reason(change, rules)
            if reason is None:
                pending.append(change)
            else:
                reasons[change.path] = reason
        contents = _read_contents(repo, pending, rules)
        for change in pending:
            reason = content_reason(change, _side(contents, change.old), _side(contents, change.new))
            if reason is not None:
                reasons[change.path] = reason
        kept = [c.path for c in changes if c.path in reasons and c.old is not None]
        placed = [c.path for c in changes if c.path not in reasons and c.new is not None]
        for path, blocker in blocked_additions(placed, kept).items():
            reasons[path] = blocked_reason(blocker)
        taken = [c for c in changes if c.path not in reasons]
        commit = _commit_taken(repo, base_sha, taken, message)
    except GitError as exc:
        raise TrustError(f"cannot restrict {merged[:12]} to its Resource requests: {_last_line(exc)}") from None
    return Restricted(commit, tuple(c.path for c in taken),
                      tuple(Dropped(c.path, reasons[c.path]) for c in changes if c.path in reasons))


def _commit(repo: Path, rev: str) -> str:
    sha = rev_sha(repo, rev)
    if sha is None:
        raise TrustError(f"cannot restrict a change: commit {rev!r} is not in {repo} (fetch it first)")
    return sha


def _changes(repo: Path, base: str, merged: str) -> list[FileChange]:
    """Every path `merged` changes from `base` (a rename is a deletion and an addition)."""
    out = git(repo, "diff-tree", "-r", "-z", "--no-renames", "--no-abbrev", base, merged)
    fields = out.split(b"\0")
    changes = []
    for info, path in zip(fields[0::2], fields[1::2], strict=False):
        if not info.startswith(b":"):
            continue
        old_mode, new_mode, old_id, new_id, _status = info[1:].decode().split(" ")
        changes.append(FileChange(path.decode(errors="surrogateescape"),
                                  None if old_id == _ABSENT else Side(old_mode, old_id),
                                  None if new_id == _ABSENT else Side(new_mode, new_id)))
    return changes


def _side(contents: dict[str, Contents], side: Side | None) -> Contents | None:
    return None if side is None else contents[side.blob]


def _read_contents(repo: Path, changes: list[FileChange], rules: RequestRules) -> dict[str, Contents]:
    """The contents of every blob of `changes`, by id, from one `git cat-file --batch` process:
    a thread writes the ids while each answer is read and classified in turn; of a blob over
    `maxFileBytes` only its first bytes are kept (the loader's cap message needs no more)."""
    names: dict[str, str] = {}  # blob id -> a path it is at (for messages)
    for change in changes:
        for side in (change.old, change.new):
            if side is not None:
                names.setdefault(side.blob, change.path)
    if not names:
        return {}
    ids = list(names)
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(["git", "cat-file", "--batch"], cwd=repo, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=errors,
                                env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
        assert proc.stdin is not None and proc.stdout is not None
        writer = threading.Thread(target=_write_ids, args=(proc.stdin, ids), daemon=True)
        writer.start()
        found: dict[str, Contents] = {}
        failure = ""
        try:
            for blob in ids:
                found[blob] = _read_one(proc.stdout, blob, names[blob], rules)
        except GitError as exc:
            failure = str(exc)
        finally:
            proc.stdout.close()
            code = proc.wait()
            writer.join()
        if failure or code != 0:
            errors.seek(0)
            said = errors.read().decode(errors="replace").strip()
            raise GitError(f"git cat-file failed in {repo}: {said or failure or f'exit code {code}'}")
    return found


def _write_ids(stdin: IO[bytes], ids: Iterable[str]) -> None:
    try:
        for blob in ids:
            stdin.write(f"{blob}\n".encode())
        stdin.close()
    except OSError:  # git exited early; the reader reports it
        pass


def _read_one(stdout: IO[bytes], blob: str, path: str, rules: RequestRules) -> Contents:
    """One `cat-file --batch` answer, classified (bounded memory whatever the blob's size)."""
    header = stdout.readline().split()
    if len(header) == 2 and header[1] == b"missing":
        return Contents(problem="its blob is missing from the repository")
    if len(header) != 3 or header[0].decode() != blob:
        raise GitError(f"git cat-file answered {b' '.join(header)!r} for {blob}")
    size, keep = int(header[2]), rules.max_file_bytes + 1
    data = _read_exactly(stdout, min(size, keep))
    remaining = size - len(data)
    while remaining > 0:
        remaining -= len(_read_exactly(stdout, min(remaining, _CHUNK)))
    _read_exactly(stdout, 1)  # the newline after the content
    return blob_contents(data, path, rules, size=size)


def _read_exactly(stdout: IO[bytes], count: int) -> bytes:
    data = stdout.read(count) if count else b""
    if len(data) != count:
        raise GitError("git cat-file stopped answering")
    return data


def _commit_taken(repo: Path, base: str, taken: list[FileChange], message: str) -> str:
    """`base`'s tree with the taken changes, committed on `base`, in a temporary index (the
    repository's own index, HEAD and work tree are not touched); checked to differ from `base`
    in exactly the taken paths."""
    entries = b"".join(
        (f"{c.new.mode} {c.new.blob}" if c.new is not None else f"0 {_ABSENT}").encode()
        + b"\t" + c.path.encode(errors="surrogateescape") + b"\0"
        for c in taken)
    with tempfile.TemporaryDirectory(prefix="promisebot-trust-") as scratch:
        with git_environment({"GIT_INDEX_FILE": str(Path(scratch) / "index")}):
            git(repo, "read-tree", base)
            if entries:
                git(repo, "update-index", "-z", "--index-info", input_bytes=entries)
            tree = git(repo, "write-tree").decode().strip()
    differs = git(repo, "diff-tree", "-r", "-z", "--no-renames", "--name-only", base, tree).split(b"\0")
    if {p.decode(errors="surrogateescape") for p in differs if p} != {c.path for c in taken}:
        raise TrustError(f"the restricted tree {tree} does not differ from {base[:12]} in exactly the "
                         "Resource request files taken; nothing was planned")
    with git_environment(_IDENTITY):
        return git(repo, "commit-tree", tree, "-p", base, "-m", message).decode().strip()


def _last_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else str(exc)
