"""Bookkeeping: what promisebot remembers between runs, as JSON on a branch of the platform repo.

Git has no controller memory, so the Kratix-owned status (contract §6, §1.5), sticky
placements (§2.3), cache keys (§1.7) and the Works (§1.6) that produced the state-store files
are kept on `settings.state_branch` (default `promisebot/state`) of the platform repo — a
branch no GitOps agent reads and that promisebot never reads as platform input:

    meta.json                                  last reconciled platform revision, last full run
    objects/<kind>/<namespace|_>/<name>.json   one ObjectRecord per Promise, request, Destination
    works/<work key>.json                      one Work: its groups and file contents
    pending/<store kind>/<store name>.json     a state-store write that failed, retried by every run

The branch is written with git plumbing (`git fast-import` into a private ref, then a
compare-and-swap `update-ref`), so the platform repo's working tree, index and HEAD are never
touched; it is pushed to the platform repo's remote when there is one. Reading is one
`ls-tree` plus `cat-file --batch` for the records actually needed. Nothing is committed when
no record changed (blob ids are compared before writing). The records themselves are
`bot.model.records`.

Rebuildable: a missing branch reads as empty. The next reconcile then re-runs every workflow
(outputs are deterministic, placements are chosen by a stable hash), which rewrites identical
files (so the state stores get no commit) and records everything again. See docs/reconciler.md.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bot.errors import PromisebotError
from bot.gitcmd import EMPTY_TREE, GitError, git, git_ok, ls_tree, read_blobs, rev_sha
from bot.model.objects import Ref
from bot.model.records import ObjectRecord, PendingWrite, dumps, work_from_json, work_to_json
from bot.model.works import Work

EVENT_TRAILER = "Promisebot-Event"
"""Trailer on every commit promisebot makes; commits carrying it never trigger promisebot work."""

_ZERO = "0" * 40
_CLUSTER_NS = "_"
_REMOTE_STATE = "refs/promisebot/remote-state"  # where the remote's state branch is fetched to


class BookkeepingError(PromisebotError):
    """The state branch could not be read or written."""


@contextmanager
def _git_errors() -> Iterator[None]:
    """Git failures as BookkeepingError."""
    try:
        yield
    except GitError as exc:
        raise BookkeepingError(str(exc)) from None


def _git(repo: Path, *args: str, input_bytes: bytes | None = None) -> bytes:
    with _git_errors():
        return git(repo, *args, input_bytes=input_bytes)


def blob_id(data: bytes) -> str:
    """The Git blob id of `data` (what `git hash-object` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def object_path(ref: Ref) -> str:
    return f"objects/{ref.kind}/{ref.namespace or _CLUSTER_NS}/{ref.name}.json"


def _ref_of(path: str) -> Ref | None:
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != "objects" or not parts[3].endswith(".json"):
        return None
    return Ref(parts[1], parts[3][: -len(".json")], "" if parts[2] == _CLUSTER_NS else parts[2])


def work_path(key: str) -> str:
    return f"works/{key}.json"


_PENDING = "pending/"


def pending_path(store_key: str) -> str:
    return f"{_PENDING}{store_key}.json"


@contextmanager
def run_lock(repo: Path) -> Iterator[None]:
    """Reconciles of one platform repo directory run one at a time: a second one waits here
    (an exclusive lock on a file in the repo's git directory, released even if the process dies)."""
    git_dir = Path(repo).resolve() / _git(repo, "rev-parse", "--git-common-dir").decode().strip()
    path = git_dir / "promisebot" / "reconcile.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Bookkeeping:
    """The state branch of one platform repo: lazy reads, staged writes, one commit.

    Reads see the branch as it was when opened plus this instance's staged changes.
    """

    def __init__(self, repo: Path, branch: str) -> None:
        self.repo = Path(repo)
        self.branch = branch
        self.ref = f"refs/heads/{branch}"
        self.head: str | None = None
        self._tree: dict[str, str] = {}  # path -> blob id at head
        self._cache: dict[str, bytes] = {}  # path -> content read or staged
        self._staged: dict[str, bytes | None] = {}  # path -> new content, None = delete
        self._refs_at_head: dict[str | None, set[Ref]] = {}
        self.meta: dict[str, Any] = {}
        self._remote = self._pick_remote()
        self.warnings: list[str] = []  # what could not be done and was not needed to go on

    @classmethod
    def open(cls, repo: Path, branch: str) -> Bookkeeping:
        bk = cls(repo, branch)
        bk._sync_from_remote()
        bk._load_head()
        return bk

    # -- reading -----------------------------------------------------------

    def _pick_remote(self) -> str | None:
        remotes = _git(self.repo, "remote").decode().split()
        return "origin" if "origin" in remotes else remotes[0] if remotes else None

    def _fetch_remote(self) -> str | None:
        """The remote's state branch head (fetched to a private ref), None if it has none yet.
        A remote that cannot be read is noted in `warnings`, not ignored."""
        assert self._remote
        try:
            git(self.repo, "fetch", "-q", self._remote, f"+{self.ref}:{_REMOTE_STATE}")
        except GitError as exc:
            if "couldn't find remote ref" not in str(exc).lower():
                self.warnings.append(f"could not fetch {self.branch} from {self._remote}: {_last_line(exc)}")
            return None
        return rev_sha(self.repo, _REMOTE_STATE)

    def _sync_from_remote(self) -> None:
        """Take the remote's state branch when it is ahead (a CI run after a server run). Local
        records the remote lacks (a run whose push failed) are re-applied on top of it."""
        if not self._remote:
            return
        remote_sha = self._fetch_remote()
        local_sha = rev_sha(self.repo, self.ref)
        if not remote_sha or remote_sha == local_sha:
            return
        if local_sha is None or git_ok(self.repo, "merge-base", "--is-ancestor", local_sha, remote_sha):
            _git(self.repo, "update-ref", self.ref, remote_sha)
        elif not git_ok(self.repo, "merge-base", "--is-ancestor", remote_sha, local_sha):
            self._replay_local(local_sha, remote_sha)

    def _replay_local(self, local_sha: str, remote_sha: str) -> None:
        """Diverged: the local commits since the common base are re-applied on the remote head
        (their records win: they are newer), so nothing either side recorded is lost."""
        with _git_errors():  # no common base (two runs each started the branch): all of local is newer
            base = git(self.repo, "merge-base", local_sha, remote_sha, ok=(0, 1)).decode().strip() or EMPTY_TREE
        changes: dict[str, bytes | None] = {}
        out = _git(self.repo, "diff-tree", "-r", "-z", "--no-renames", base, local_sha).split(b"\0")
        entries = [e.decode() for e in out if e]
        blobs: dict[str, str] = {}
        for info, path in zip(entries[0::2], entries[1::2], strict=False):
            new_id, status = info.split()[3], info.split()[4]
            if status == "D":
                changes[path] = None
            else:
                blobs[path] = new_id
        with _git_errors():
            data = read_blobs(self.repo, list(blobs.values()))
        changes.update({path: data[blob] for path, blob in blobs.items()})
        message = _git(self.repo, "log", "-1", "--format=%B", local_sha)
        new = self._import(remote_sha, message, changes)
        self._move_ref(new, local_sha)

    def _load_head(self) -> None:
        self.head = rev_sha(self.repo, self.ref)
        self._tree = {}
        self._cache = {}
        self._refs_at_head = {}
        if self.head:
            with _git_errors():
                self._tree = {e.path: e.object_id for e in ls_tree(self.repo, self.head)}
        meta = self._read("meta.json")
        self.meta = json.loads(meta) if meta else {}

    def _read(self, path: str) -> bytes | None:
        if path in self._staged:
            return self._staged[path]
        if path not in self._cache:
            self._read_many([path])
        return self._cache.get(path)

    def _read_many(self, paths: list[str]) -> None:
        wanted = {p: self._tree[p] for p in paths if p in self._tree and p not in self._cache and p not in self._staged}
        if not wanted:
            return
        with _git_errors():
            blobs = read_blobs(self.repo, list(wanted.values()))
        for path, blob in wanted.items():
            if blob in blobs:
                self._cache[path] = blobs[blob]

    def _refs_at(self, kind: str | None) -> set[Ref]:
        """Refs of one kind (None: every kind) recorded at the branch head, computed once per
        head and kind: asking for one kind does not parse every record path."""
        if kind not in self._refs_at_head:
            prefix = f"objects/{kind}/" if kind else "objects/"
            self._refs_at_head[kind] = {ref for p in self._tree if p.startswith(prefix) and (ref := _ref_of(p))}
        return self._refs_at_head[kind]

    def refs(self, kind: str | None = None) -> list[Ref]:
        """Refs of every recorded object (optionally one kind), without reading the records."""
        out = set(self._refs_at(kind))
        for path, data in self._staged.items():
            ref = _ref_of(path)
            if ref is None or (kind and ref.kind != kind):
                continue
            if data is None:
                out.discard(ref)
            else:
                out.add(ref)
        return sorted(out)

    def has(self, ref: Ref) -> bool:
        path = object_path(ref)
        return self._staged[path] is not None if path in self._staged else path in self._tree

    def get(self, ref: Ref) -> ObjectRecord | None:
        data = self._read(object_path(ref))
        return ObjectRecord.from_json(json.loads(data)) if data else None

    def get_many(self, refs: list[Ref]) -> dict[Ref, ObjectRecord]:
        """The records of `refs` that exist, read in one batch."""
        self._read_many([object_path(r) for r in refs])
        return {r: rec for r in refs if (rec := self.get(r)) is not None}

    def get_work(self, key: str) -> Work | None:
        data = self._read(work_path(key))
        return work_from_json(json.loads(data)) if data else None

    def get_works(self, keys: list[str]) -> dict[str, Work]:
        """The Works of `keys` that exist, read in one batch."""
        self._read_many([work_path(k) for k in keys])
        return {k: work for k in keys if (work := self.get_work(k)) is not None}

    def pending_writes(self) -> list[PendingWrite]:
        """Every state-store write that failed and has not landed since (staged ones included)."""
        paths = {p for p in self._tree if p.startswith(_PENDING)} | {p for p in self._staged if p.startswith(_PENDING)}
        self._read_many(sorted(paths))
        return [PendingWrite.from_json(json.loads(data)) for p in sorted(paths) if (data := self._read(p))]

    # -- staging -------------------------------------------------------------

    def put_pending(self, pending: PendingWrite) -> None:
        self._staged[pending_path(pending.store_key)] = dumps(pending.to_json())

    def delete_pending(self, store_key: str) -> None:
        self._staged[pending_path(store_key)] = None

    def put(self, record: ObjectRecord) -> None:
        self._staged[object_path(record.ref)] = dumps(record.to_json())

    def delete(self, ref: Ref) -> None:
        self._staged[object_path(ref)] = None

    def put_work(self, work: Work) -> None:
        self._staged[work_path(work.key)] = dumps(work_to_json(work))

    def delete_work(self, key: str) -> None:
        self._staged[work_path(key)] = None

    def set_meta(self, **values: Any) -> None:
        self.meta.update(values)
        self._staged["meta.json"] = dumps(self.meta)

    def pending_changes(self) -> dict[str, bytes | None]:
        """Staged paths whose content differs from the branch head."""
        out: dict[str, bytes | None] = {}
        for path, data in self._staged.items():
            if data is None:
                if path in self._tree:
                    out[path] = None
            elif self._tree.get(path) != blob_id(data):
                out[path] = data
        return out

    # -- writing -------------------------------------------------------------

    def commit(self, message: str, trailers: Sequence[tuple[str, str]] = ()) -> str | None:
        """Commit the staged changes on the state branch; None when nothing changed.
        `trailers`: (key, value) lines after the message (a key may repeat).

        Never touches the working tree, the index or HEAD of the platform repo.
        """
        changes = self.pending_changes()
        if not changes:
            self._staged.clear()
            return None
        body = message.rstrip("\n") + "\n"
        if trailers:
            body += "\n" + "".join(f"{k}: {v}\n" for k, v in trailers)
        first = new = self._import(self.head, body.encode(), changes)
        self._move_ref(new, self.head)
        if self._remote:
            new = self._push(new, body.encode(), changes)
        self._staged.clear()
        if new != first:  # re-applied on another run's records: read the branch as it is now
            self._load_head()
            return new
        for path, data in changes.items():  # the new head, without listing the tree again
            if data is None:
                self._tree.pop(path, None)
                self._cache.pop(path, None)
            else:
                self._tree[path] = blob_id(data)
                self._cache[path] = data
        self.head = new
        self._refs_at_head = {}
        return new

    def _import(self, parent: str | None, message: bytes, changes: dict[str, bytes | None]) -> str:
        """A new commit of `changes` on `parent`, written with fast-import into a private ref."""
        tmp_ref = f"refs/promisebot/tmp-{os.getpid()}-{threading.get_ident()}"
        try:
            _git(self.repo, "fast-import", "--quiet", "--done", "--force",
                 input_bytes=_fast_import_commit(tmp_ref, parent, message, changes))
            return _git(self.repo, "rev-parse", tmp_ref).decode().strip()
        finally:
            git_ok(self.repo, "update-ref", "-d", tmp_ref)

    def _move_ref(self, new: str, expected: str | None) -> None:
        """The state branch moves to `new` only if still at `expected` (compare-and-swap)."""
        try:
            git(self.repo, "update-ref", "-m", "promisebot bookkeeping", self.ref, new, expected or _ZERO)
        except GitError:
            raise BookkeepingError(
                f"the state branch {self.branch} moved while this run was recording (another promisebot "
                "run in this directory without the run lock?); nothing of this run's records was lost from "
                "the state stores: run again") from None

    def _push(self, new: str, message: bytes, changes: dict[str, bytes | None]) -> str:
        """Push the state branch; when another run pushed first, this run's records are re-applied
        on the remote's head and pushed again. Returns the commit the branch ends at."""
        assert self._remote
        for _attempt in range(_PUSH_ATTEMPTS):
            try:
                git(self.repo, "push", "-q", "--porcelain", self._remote, f"{self.ref}:{self.ref}")
                return new
            except GitError as exc:
                error = exc
            remote_sha = self._fetch_remote()
            if remote_sha is None or git_ok(self.repo, "merge-base", "--is-ancestor", remote_sha, new):
                # The remote did not move past us: another push may hold its ref lock, or the
                # remote is failing. Try again shortly; a lasting failure is reported below.
                time.sleep(random.uniform(0.05, 0.2) * (_attempt + 1))
                continue
            rebased = self._import(remote_sha, message, changes)
            self._move_ref(rebased, new)
            new = rebased
        raise BookkeepingError(f"could not push the state branch {self.branch} to {self._remote}: "
                               f"{_last_line(error)}; the records are kept locally and pushed by the next run")


_PUSH_ATTEMPTS = 5


def _last_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else str(exc)


def _fast_import_commit(ref: str, parent: str | None, message: bytes, changes: dict[str, bytes | None]) -> bytes:
    """A `git fast-import` stream of one commit on `ref`: `changes` on top of `parent`."""
    parts = [
        f"commit {ref}\n".encode(),
        f"committer promisebot <promisebot@localhost> {int(time.time())} +0000\n".encode(),
        b"data %d\n" % len(message), message, b"\n",
    ]
    if parent:
        parts.append(f"from {parent}\n".encode())
    for path, data in sorted(changes.items()):
        if data is None:
            parts.append(f"D {path}\n".encode())
        else:
            parts += [f"M 100644 inline {path}\n".encode(), b"data %d\n" % len(data), data, b"\n"]
    parts.append(b"done\n")
    return b"".join(parts)
