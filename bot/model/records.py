"""What bookkeeping remembers, as JSON: one `ObjectRecord` per Promise, Resource request and
Destination (Kratix-compatible status, cache key, placements, logs) and each `Work` with its file
contents (docs/reconciler.md, "Bookkeeping"). Pure: `bot.state.bookkeeping` keeps them on a branch.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from bot.model.objects import Ref
from bot.model.works import FileChanges, Placement, Selector, Work, Workload, WorkloadGroup

MAX_LOG_CHARS = 16384
"""Characters of pipeline log kept per failed container in a record (the tail)."""


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def ref_json(ref: Ref) -> list[str]:
    """A ref as meta.json lists it: [kind, namespace, name]."""
    return [ref.kind, ref.namespace, ref.name]


def ref_from_json(entry: list[str]) -> Ref:
    kind, namespace, name = entry
    return Ref(kind, name, namespace)


@dataclass(slots=True)
class PlacementRecord:
    """Where one workload group of one Work landed (Kratix's WorkPlacement), and in which commit."""

    work_key: str
    group_id: str
    destination: str
    store: str  # "<Kind>/<name>" of the state store
    commit: str | None = None
    misplaced: bool = False
    pending: str | None = None  # why its latest files are not in the store yet (a failed write)

    @property
    def placement(self) -> Placement:
        return Placement(self.work_key, self.group_id, self.destination)

    def to_json(self) -> dict[str, Any]:
        out = {
            "work": self.work_key, "group": self.group_id, "destination": self.destination,
            "store": self.store, "commit": self.commit, "misplaced": self.misplaced,
        }
        if self.pending:
            out["pending"] = self.pending
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PlacementRecord:
        return cls(d["work"], d["group"], d["destination"], d.get("store", ""), d.get("commit"),
                   bool(d.get("misplaced")), d.get("pending"))


@dataclass(slots=True)
class PendingWrite:
    """A state-store write that failed: the whole change set, kept until a later run lands it
    (docs/reconciler.md, "Failed writes"). `store` is the StateStore's body as it was, so the
    write can be retried even once the store is gone from the platform."""

    store_key: str
    store: dict[str, Any]
    changes: FileChanges
    error: str
    since: str
    attempts: int = 1
    refs: list[Ref] = field(default_factory=list)  # objects whose placements wait for it

    def to_json(self) -> dict[str, Any]:
        return {
            "storeKey": self.store_key, "store": self.store, "error": self.error, "since": self.since,
            "attempts": self.attempts, "refs": sorted(ref_json(r) for r in set(self.refs)),
            "changes": changes_to_json(self.changes),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PendingWrite:
        return cls(d["storeKey"], d.get("store") or {}, changes_from_json(d.get("changes") or {}),
                   d.get("error", ""), d.get("since", ""), int(d.get("attempts", 1)),
                   [ref_from_json(r) for r in d.get("refs") or []])


def changes_to_json(changes: FileChanges) -> dict[str, Any]:
    return {"puts": {p: _encode_bytes(c) for p, c in sorted(changes.puts.items())},
            "deletes": sorted(changes.deletes), "deletePrefixes": sorted(changes.delete_prefixes)}


def changes_from_json(d: dict[str, Any]) -> FileChanges:
    return FileChanges({p: _decode_bytes(c) for p, c in (d.get("puts") or {}).items()},
                       set(d.get("deletes") or []), set(d.get("deletePrefixes") or []))


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
    digests: `work_digest` of each Work in place, by key: a Work whose digest is unchanged is
      neither laid out again (incremental runs) nor stored again.

    What the object was, to act on it once its file is gone or its new version is invalid:
    body: its last valid version (a Destination: as its files were last written, with
      `store_body` and `labels`: where a moved or deleted one's files are).
    file: a request's file (an incremental run reads it again when the request wants another look).
    promise: a request's Promise. request_kind: a Promise's request kind (its requests, once it is gone).

    Notes (docs/reconciler.md, "Labels"): invalid: its current version was rejected by validation.
    paused_seen: it was reported paused and has not run since (unpausing runs it once);
    manual_seen / resources_seen: the manual-reconciliation / reconcile-resources label was
    answered (the note goes when the label goes).

    JSON (`to_json`): the fields in camelCase (`dumps` sorts the keys); the facts are left out
    when unknown, the notes when empty or false. Records written before these fields were typed
    kept them, under the same keys, in one "data" object: `from_json` reads both.
    """

    ref: Ref
    status: dict[str, Any] = field(default_factory=dict)
    cache_key: str | None = None
    works: list[str] = field(default_factory=list)
    placements: list[PlacementRecord] = field(default_factory=list)
    last_run: str | None = None
    logs: list[dict[str, Any]] = field(default_factory=list)
    resume: dict[str, Any] | None = None
    digests: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    file: str | None = None
    promise: str | None = None
    request_kind: str | None = None
    store_body: dict[str, Any] | None = None
    labels: dict[str, str] | None = None
    invalid: bool = False
    paused_seen: bool = False
    manual_seen: bool = False
    resources_seen: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ref": {"kind": self.ref.kind, "namespace": self.ref.namespace, "name": self.ref.name},
            "status": self.status,
            "cacheKey": self.cache_key,
            "works": sorted(self.works),
            "placements": [p.to_json() for p in sorted(self.placements, key=lambda p: p.placement)],
            "lastRun": self.last_run,
            "logs": self.logs,
            "resume": self.resume,
        }
        notes = {"digests": self.digests, "invalid": self.invalid, "pausedSeen": self.paused_seen,
                 "manualSeen": self.manual_seen, "reconcileResourcesSeen": self.resources_seen}
        facts = {"body": self.body, "file": self.file, "promise": self.promise, "requestKind": self.request_kind,
                 "storeBody": self.store_body, "labels": self.labels}
        out.update({k: v for k, v in notes.items() if v})  # left out when empty / false
        out.update({k: v for k, v in facts.items() if v is not None})  # left out when unknown
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ObjectRecord:
        r = d["ref"]
        legacy = d.get("data") or {}  # before the fields were typed, one "data" object held them

        def get(key: str) -> Any:
            return d[key] if key in d else legacy.get(key)

        return cls(
            ref=Ref(r["kind"], r["name"], r.get("namespace", "")),
            status=d.get("status") or {},
            cache_key=d.get("cacheKey"),
            works=list(d.get("works") or []),
            placements=[PlacementRecord.from_json(p) for p in d.get("placements") or []],
            last_run=d.get("lastRun"),
            logs=list(d.get("logs") or []),
            resume=d.get("resume"),
            digests=dict(get("digests") or {}),
            body=get("body"),
            file=get("file"),
            promise=get("promise"),
            request_kind=get("requestKind"),
            store_body=get("storeBody"),
            labels=get("labels"),
            invalid=bool(get("invalid")),
            paused_seen=bool(get("pausedSeen")),
            manual_seen=bool(get("manualSeen")),
            resources_seen=bool(get("reconcileResourcesSeen")),
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
    return hashlib.sha256(dumps(work_to_json(work))).hexdigest()


def dumps(obj: Any) -> bytes:
    """The bytes a record or Work is stored as: indented, sorted keys (stable blob ids)."""
    return (json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
