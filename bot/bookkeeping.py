"""Bookkeeping: what promisebot remembers between runs, as JSON on a branch of the platform repo.

Git has no controller memory, so the Kratix-owned status (contract §6, §1.5), sticky
placements (§2.3), cache keys (§1.7) and the Works (§1.6) that produced the state-store files
are kept on `settings.state_branch` (default `promisebot/state`) of the platform repo — a
branch no GitOps agent reads and that promisebot never reads as platform input:

    meta.json                                  last reconciled platform revision, last full run
    objects/<kind>/<namespace|_>/<name>.json   one ObjectRecord per Promise, request, Destination
    works/<work key>.json                      one Work: its groups and file contents

The branch is written with git plumbing (`git fast-import` into a private ref, then a
compare-and-swap `update-ref`), so the platform repo's working tree, index and HEAD are never
touched; it is pushed to the platform repo's remote when there is one. Reading is one
`ls-tree` plus `cat-file --batch` for the records actually needed. Nothing is committed when
no record changed (blob ids are compared before writing).

Rebuildable: a missing branch reads as empty. The next reconcile then re-runs every workflow
(outputs are deterministic, placements are chosen by a stable hash), which rewrites identical
files (so the state stores get no commit) and records everything again. See docs/reconciler.md.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.model import Placement, Ref, Selector, Work, Workload, WorkloadGroup

EVENT_TRAILER = "Promisebot-Event"
"""Trailer on every commit promisebot makes; commits carrying it never trigger promisebot work."""

MAX_LOG_CHARS = 16384
"""Bytes of pipeline log kept per failed container in a record (the tail)."""

_ZERO = "0" * 40
_CLUSTER_NS = "_"


class BookkeepingError(RuntimeError):
    """The state branch could not be read or written."""


def _git(repo: Path, *args: str, input_bytes: bytes | None = None, check: bool = True) -> bytes:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    proc = subprocess.run(
        ["git", *args], cwd=repo, input=input_bytes, capture_output=True, env=env, check=False
    )
    if check and proc.returncode != 0:
        raise BookkeepingError(f"git {args[0]} failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def blob_id(data: bytes) -> str:
    """The Git blob id of `data` (what `git hash-object` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ---------------------------------------------------------------------------
# Records


@dataclass(slots=True)
class PlacementRecord:
    """Where one workload group of one Work landed (Kratix's WorkPlacement), and in which commit."""

    work_key: str
    group_id: str
    destination: str
    store: str  # "<Kind>/<name>" of the state store
    commit: str | None = None
    misplaced: bool = False

    @property
    def placement(self) -> Placement:
        return Placement(self.work_key, self.group_id, self.destination)

    def to_json(self) -> dict[str, Any]:
        return {
            "work": self.work_key, "group": self.group_id, "destination": self.destination,
            "store": self.store, "commit": self.commit, "misplaced": self.misplaced,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PlacementRecord:
        return cls(d["work"], d["group"], d["destination"], d.get("store", ""), d.get("commit"),
                   bool(d.get("misplaced")))


@dataclass(slots=True)
class ObjectRecord:
    """Everything remembered about one Promise, Resource request or Destination.

    status: the Kratix-compatible status (§6) shown by `promisebot status` and fed back into the
      next run's object.yaml (§1.3).
    cache_key: hash of what determined the current outputs (§1.7 plus pipeline images);
      a run is skipped when the desired key equals it.
    works: keys of the Works whose files are in place for this object.
    resume: a suspended / retry-after workflow (§1.5c): {"pipeline": index, "nextRetryAt": iso|None,
      "cacheKey": key it was started for}.
    data: kind-specific facts (a Destination's labels, path, store and mode; a deleting object's
      last known body).
    """

    ref: Ref
    status: dict[str, Any] = field(default_factory=dict)
    cache_key: str | None = None
    works: list[str] = field(default_factory=list)
    placements: list[PlacementRecord] = field(default_factory=list)
    last_run: str | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    resume: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": {"kind": self.ref.kind, "namespace": self.ref.namespace, "name": self.ref.name},
            "status": self.status,
            "cacheKey": self.cache_key,
            "works": sorted(self.works),
            "placements": [p.to_json() for p in sorted(self.placements, key=lambda p: p.placement)],
            "lastRun": self.last_run,
            "logs": self.logs,
            "resume": self.resume,
            "data": self.data,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ObjectRecord:
        r = d["ref"]
        return cls(
            ref=Ref(r["kind"], r["name"], r.get("namespace", "")),
            status=d.get("status") or {},
            cache_key=d.get("cacheKey"),
            works=list(d.get("works") or []),
            placements=[PlacementRecord.from_json(p) for p in d.get("placements") or []],
            last_run=d.get("lastRun"),
            logs=list(d.get("logs") or []),
            resume=d.get("resume"),
            data=d.get("data") or {},
        )


def bounded_logs(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the tail of each log so a record stays small (logs are already redacted upstream)."""
    out = []
    for e in entries:
        e = dict(e)
        log = str(e.get("log") or "")
        if len(log) > MAX_LOG_CHARS:
            e["log"] = "[... truncated ...]\n" + log[-MAX_LOG_CHARS:]
        out.append(e)
    return out


def _encode_bytes(data: bytes) -> dict[str, str]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def _decode_bytes(d: dict[str, str]) -> bytes:
    if "text" in d:
        return d["text"].encode("utf-8")
    return base64.b64decode(d["base64"])


def work_to_json(work: Work) -> dict[str, Any]:
    return {
        "promise": work.promise,
        "pipeline": work.pipeline,
        "resourceName": work.resource_name,
        "resourceNamespace": work.resource_namespace,
        "groups": [
            {
                "directory": g.directory,
                "id": g.id,
                "selectors": [{"matchLabels": s.match_labels, "source": s.source} for s in g.selectors],
                "workloads": [{"filepath": w.filepath, **_encode_bytes(w.content)} for w in g.workloads],
            }
            for g in work.groups
        ],
    }


def work_from_json(d: dict[str, Any]) -> Work:
    return Work(
        promise=d["promise"],
        pipeline=d["pipeline"],
        resource_name=d.get("resourceName", ""),
        resource_namespace=d.get("resourceNamespace", ""),
        groups=[
            WorkloadGroup(
                directory=g["directory"],
                id=g["id"],
                selectors=[Selector(dict(s["matchLabels"]), s["source"]) for s in g["selectors"]],
                workloads=[Workload(w["filepath"], _decode_bytes(w)) for w in g["workloads"]],
            )
            for g in d["groups"]
        ],
    )


def work_digest(work: Work) -> str:
    """A hash of a Work's full content: equal digests mean identical state-store files."""
    return hashlib.sha256(_dumps(work_to_json(work))).hexdigest()


def _dumps(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def object_path(ref: Ref) -> str:
    return f"objects/{ref.kind}/{ref.namespace or _CLUSTER_NS}/{ref.name}.json"


def _ref_of(path: str) -> Ref | None:
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != "objects" or not parts[3].endswith(".json"):
        return None
    return Ref(parts[1], parts[3][: -len(".json")], "" if parts[2] == _CLUSTER_NS else parts[2])


def work_path(key: str) -> str:
    return f"works/{key}.json"


# ---------------------------------------------------------------------------
# The branch


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
        self._refs_at_head: dict[str, set[Ref]] | None = None
        self.meta: dict[str, Any] = {}
        self._remote = self._pick_remote()

    @classmethod
    def open(cls, repo: Path, branch: str) -> Bookkeeping:
        bk = cls(repo, branch)
        bk._sync_from_remote()
        bk._load_head()
        return bk

    # -- reading -----------------------------------------------------------

    def _pick_remote(self) -> str | None:
        remotes = _git(self.repo, "remote", check=False).decode().split()
        if "origin" in remotes:
            return "origin"
        return remotes[0] if remotes else None

    def _sync_from_remote(self) -> None:
        """Take the remote's state branch when it is ahead (a CI run after a server run)."""
        if not self._remote:
            return
        tmp = "refs/promisebot/remote-state"
        fetched = subprocess.run(
            ["git", "fetch", "-q", self._remote, f"+{self.ref}:{tmp}"],
            cwd=self.repo, capture_output=True, check=False, env=dict(os.environ, GIT_TERMINAL_PROMPT="0"),
        )
        if fetched.returncode != 0:
            return
        remote_sha = _git(self.repo, "rev-parse", "--verify", "-q", tmp, check=False).decode().strip()
        local_sha = self._resolve()
        if not remote_sha or remote_sha == local_sha:
            return
        behind = local_sha is None or subprocess.run(
            ["git", "merge-base", "--is-ancestor", local_sha, remote_sha],
            cwd=self.repo, capture_output=True, check=False,
        ).returncode == 0
        if behind:
            _git(self.repo, "update-ref", self.ref, remote_sha)

    def _resolve(self) -> str | None:
        out = _git(self.repo, "rev-parse", "--verify", "-q", f"{self.ref}^{{commit}}", check=False)
        return out.decode().strip() or None

    def _load_head(self) -> None:
        self.head = self._resolve()
        self._tree = {}
        self._cache = {}
        self._refs_at_head = None
        if self.head:
            out = _git(self.repo, "ls-tree", "-r", "-z", "--full-tree", self.head)
            for entry in out.split(b"\0"):
                if not entry:
                    continue
                info, path = entry.split(b"\t", 1)
                self._tree[path.decode()] = info.split()[2].decode()
        meta = self._read("meta.json")
        self.meta = json.loads(meta) if meta else {}

    def _read(self, path: str) -> bytes | None:
        if path in self._staged:
            return self._staged[path]
        if path not in self._cache:
            if path not in self._tree:
                return None
            self._read_many([path])
        return self._cache.get(path)

    def _read_many(self, paths: list[str]) -> None:
        wanted = [p for p in paths if p in self._tree and p not in self._cache and p not in self._staged]
        if not wanted:
            return
        out = _git(self.repo, "cat-file", "--batch",
                   input_bytes="".join(self._tree[p] + "\n" for p in wanted).encode())
        pos = 0
        for p in wanted:
            header_end = out.index(b"\n", pos)
            size = int(out[pos:header_end].split()[2])
            start = header_end + 1
            self._cache[p] = out[start:start + size]
            pos = start + size + 1

    def _index(self) -> dict[str, set[Ref]]:
        """kind -> refs recorded at the branch head (computed once per head)."""
        if self._refs_at_head is None:
            self._refs_at_head = {}
            for path in self._tree:
                ref = _ref_of(path)
                if ref is not None:
                    self._refs_at_head.setdefault(ref.kind, set()).add(ref)
        return self._refs_at_head

    def refs(self, kind: str | None = None) -> list[Ref]:
        """Refs of every recorded object (optionally one kind), without reading the records."""
        index = self._index()
        out = set(index.get(kind, set())) if kind else {r for refs in index.values() for r in refs}
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
        self._read_many([object_path(r) for r in refs])
        out = {}
        for r in refs:
            rec = self.get(r)
            if rec is not None:
                out[r] = rec
        return out

    def get_work(self, key: str) -> Work | None:
        data = self._read(work_path(key))
        return work_from_json(json.loads(data)) if data else None

    def get_works(self, keys: list[str]) -> dict[str, Work]:
        self._read_many([work_path(k) for k in keys])
        out = {}
        for k in keys:
            w = self.get_work(k)
            if w is not None:
                out[k] = w
        return out

    # -- staging -------------------------------------------------------------

    def _stage(self, path: str, data: bytes | None) -> None:
        self._staged[path] = data

    def put(self, record: ObjectRecord) -> None:
        self._stage(object_path(record.ref), _dumps(record.to_json()))

    def delete(self, ref: Ref) -> None:
        self._stage(object_path(ref), None)

    def put_work(self, work: Work) -> None:
        self._stage(work_path(work.key), _dumps(work_to_json(work)))

    def delete_work(self, key: str) -> None:
        self._stage(work_path(key), None)

    def set_meta(self, **values: Any) -> None:
        self.meta.update(values)
        self._stage("meta.json", _dumps(self.meta))

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

    def commit(self, message: str, trailers: dict[str, str] | None = None) -> str | None:
        """Commit the staged changes on the state branch; None when nothing changed.

        Never touches the working tree, the index or HEAD of the platform repo.
        """
        changes = self.pending_changes()
        if not changes:
            self._staged.clear()
            return None
        body = message.rstrip("\n") + "\n"
        if trailers:
            body += "\n" + "".join(f"{k}: {v}\n" for k, v in trailers.items())
        tmp_ref = f"refs/promisebot/tmp-{os.getpid()}"
        stamp = int(time.time())
        msg = body.encode()
        parts = [
            f"commit {tmp_ref}\n".encode(),
            f"committer promisebot <promisebot@localhost> {stamp} +0000\n".encode(),
            b"data %d\n" % len(msg), msg, b"\n",
        ]
        if self.head:
            parts.append(f"from {self.head}\n".encode())
        for path, data in sorted(changes.items()):
            if data is None:
                parts.append(f"D {path}\n".encode())
            else:
                parts += [f"M 100644 inline {path}\n".encode(), b"data %d\n" % len(data), data, b"\n"]
        parts.append(b"done\n")
        _git(self.repo, "fast-import", "--quiet", "--done", "--force", input_bytes=b"".join(parts))
        new = _git(self.repo, "rev-parse", tmp_ref).decode().strip()
        try:
            _git(self.repo, "update-ref", "-m", "promisebot bookkeeping", self.ref, new, self.head or _ZERO)
        finally:
            _git(self.repo, "update-ref", "-d", tmp_ref, check=False)
        self._push()
        for path, data in changes.items():  # the new head, without listing the tree again
            if data is None:
                self._tree.pop(path, None)
                self._cache.pop(path, None)
            else:
                self._tree[path] = blob_id(data)
                self._cache[path] = data
        self.head = new
        self._refs_at_head = None
        self._staged.clear()
        return new

    def _push(self) -> None:
        if self._remote:
            _git(self.repo, "push", "-q", self._remote, f"{self.ref}:{self.ref}")
