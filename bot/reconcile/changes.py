"""What changed between two platform snapshots, and which workflows must (re)run
(contract §1.7, §4.1-§4.7). Pure: no I/O; `before` and `after` are `Platform`s read elsewhere.

Public API (called by the reconciler):

    detect_changes(before: Platform | None, after: Platform | None) -> PlatformChanges
    due_for_periodic(last_run_epoch: float | None, now_epoch: float, interval_seconds: float) -> bool
    spec_hash(promise: Promise, request: ResourceRequest | None = None) -> str
    go_json(value: Any) -> bytes

Re-run rules, as Kratix decides them:

- §1.7 only `spec` changes re-run a workflow: Kratix labels each pipeline Job with a hash of the
  Promise's and the request's spec. Label- or annotation-only edits make an object "updated"
  (a Destination relabel matters for scheduling) but re-run nothing.
- §4.2 a Promise spec change re-runs the Promise's configure workflow and every request of it.
  A Promise created while requests of it already existed (they waited for it) runs them too.
- §4.7 `kratix.io/manual-reconciliation: "true"` re-runs the object when the label appears;
  `kratix.io/reconcile-resources: "true"` appearing on a Promise re-runs all its requests.
- §4.1/§4.4 `kratix.io/paused: "true"` on a Promise or a request suppresses its runs (a
  Promise's label also pauses its requests); removing it re-runs from the start, and an
  unpaused Promise re-runs all its requests, as Kratix's `resumedFromPause` does. These lists
  only make objects candidates: the reconciler runs an unpaused object once from what its
  bookkeeping record noted while it was paused (bot.reconcile.decide `PAUSED_SEEN`).
- §4.7 a periodic full reconcile (default every 10h, `due_for_periodic`) looks at everything:
  the reconciler then takes every object as a candidate instead of these lists.

For a deleted Promise or request `rerun` means "run its delete workflow"; it is False when the
object was paused, as Kratix checks the pause label before deletion.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from bot.model.objects import Platform, Promise, Ref, ResourceRequest

MANUAL_RECONCILIATION_LABEL = "kratix.io/manual-reconciliation"
RECONCILE_RESOURCES_LABEL = "kratix.io/reconcile-resources"
PAUSED_LABEL = "kratix.io/paused"

Change = Literal["created", "updated", "deleted", "unchanged"]


@dataclass(frozen=True, slots=True)
class ObjectChange:
    """One object's change. `change` is "unchanged" only for objects listed because they must
    re-run (a Promise cascade). `reason` says why, "; "-separated."""

    ref: Ref
    change: Change
    rerun: bool
    reason: str


@dataclass(slots=True)
class PlatformChanges:
    """Per kind, the objects that changed or must re-run, sorted by ref. `rerun` applies to
    Promises and requests only: Destinations and State Stores have no workflows, and any of
    their changes (labels included) matter to scheduling and layout."""

    promises: list[ObjectChange] = field(default_factory=list)
    requests: list[ObjectChange] = field(default_factory=list)
    destinations: list[ObjectChange] = field(default_factory=list)
    state_stores: list[ObjectChange] = field(default_factory=list)

    def promises_to_run(self) -> list[Ref]:
        """Promises whose configure workflow (and static dependencies) must run."""
        return _to_run(self.promises)

    def requests_to_run(self) -> list[Ref]:
        """Requests whose configure workflow must run."""
        return _to_run(self.requests)

    def promises_to_delete(self) -> list[Ref]:
        """Deleted Promises whose delete lifecycle must run (§4.3)."""
        return _to_delete(self.promises)

    def requests_to_delete(self) -> list[Ref]:
        """Deleted requests whose delete lifecycle must run (§4.5)."""
        return _to_delete(self.requests)

    def __bool__(self) -> bool:
        return bool(self.promises or self.requests or self.destinations or self.state_stores)


def detect_changes(before: Platform | None, after: Platform | None) -> PlatformChanges:
    """Compare two snapshots; None is an empty platform (first run, or everything removed)."""
    before = before or Platform()
    after = after or Platform()
    names = before.promises.keys() | after.promises.keys()
    refs = before.requests.keys() | after.requests.keys()
    return PlatformChanges(
        promises=_listed(_promise_change(before.promises.get(n), after.promises.get(n)) for n in names),
        requests=_listed(_request_change(before, after, ref) for ref in refs),
        destinations=_listed(_plain_changes(before.destinations, after.destinations)),
        state_stores=_listed(_plain_changes(before.state_stores, after.state_stores)),
    )


def due_for_periodic(last_run_epoch: float | None, now_epoch: float, interval_seconds: float) -> bool:
    """Whether a periodic full reconcile is due: never run yet, or `interval_seconds` passed.
    An interval of 0 or less disables it, as a zero interval does in Kratix (§3.8, §4.7)."""
    if interval_seconds <= 0:
        return False
    return last_run_epoch is None or now_epoch - last_run_epoch >= interval_seconds


def spec_hash(promise: Promise, request: ResourceRequest | None = None) -> str:
    """Kratix's `kratix.io/hash` (contract §1.7, K:lib/hash/hasher.go, K:pipeline_factory.go):
    md5(json(promise.spec)) for promise workflows, md5(md5(json(promise.spec)) + "-" +
    md5(json(request.spec))) for resource workflows. A request without `spec` hashes JSON null,
    as Kratix's unstructured object does. Kratix hashes the Promise after a typed round trip,
    so a spec carrying empty or unknown fields can hash differently there."""
    promise_hash = _md5(go_json(promise.spec))
    if request is None:
        return promise_hash
    return _md5(f"{promise_hash}-{_md5(go_json(request.body.get('spec')))}".encode())


def go_json(value: Any) -> bytes:
    """`encoding/json.Marshal` of a decoded YAML/JSON value: map keys sorted, no spaces,
    <, >, & and U+2028/U+2029 escaped, non-ASCII left as UTF-8, floats formatted as Go does."""
    return _encode(value).encode()


# --- per-kind comparison --------------------------------------------------------------------


def _promise_change(old: Promise | None, new: Promise | None) -> ObjectChange:
    if new is None:
        assert old is not None
        return _deleted(old.ref, _paused(old.labels))
    blockers = _promise_blockers(new)
    if old is None:
        return ObjectChange(new.ref, "created", not blockers, _join(["created"], blockers))
    edits = _edits(old.spec, new.spec, old.body, new.body)
    triggers = _own_triggers(edits, old.labels, new.labels)
    rerun = bool(triggers) and not blockers
    return ObjectChange(new.ref, _kind(old.body, new.body), rerun, _join(_merge(edits, triggers), blockers))


def _request_change(before: Platform, after: Platform, ref: Ref) -> ObjectChange:
    old, new = before.requests.get(ref), after.requests.get(ref)
    if new is None:
        assert old is not None
        return _deleted(ref, _paused(old.labels) or _paused(_labels(before.promises.get(old.promise))))
    promise = after.promises.get(new.promise)
    blockers = _request_blockers(new, promise)
    if old is None:
        return ObjectChange(ref, "created", not blockers, _join(["created"], blockers))
    edits = _edits(old.spec, new.spec, old.body, new.body)
    triggers = _own_triggers(edits, old.labels, new.labels) + _cascade(
        before.promises.get(new.promise), promise
    )
    rerun = bool(triggers) and not blockers
    return ObjectChange(ref, _kind(old.body, new.body), rerun, _join(_merge(edits, triggers), blockers))


def _cascade(old: Promise | None, new: Promise | None) -> list[str]:
    """Why a Promise change re-runs every existing request of it (§4.1 step 8, §4.2, §4.7)."""
    if new is None:
        return []
    if old is None:
        return [f"Promise {new.name} created"]
    reasons = []
    if old.spec != new.spec:
        reasons.append(f"Promise {new.name} spec changed")
    if _newly_true(old.labels, new.labels, RECONCILE_RESOURCES_LABEL):
        reasons.append(f"Promise {new.name} {RECONCILE_RESOURCES_LABEL}")
    if _paused(old.labels) and not _paused(new.labels):
        reasons.append(f"Promise {new.name} unpaused")
    return reasons


def _plain_changes(old: Mapping[Any, Any], new: Mapping[Any, Any]) -> list[ObjectChange]:
    """Destinations and State Stores: created, updated (any body edit) or deleted; no runs."""
    changes = []
    for key in old.keys() | new.keys():
        before, after = old.get(key), new.get(key)
        if before is None:
            changes.append(ObjectChange(after.ref, "created", False, "created"))
        elif after is None:
            changes.append(ObjectChange(before.ref, "deleted", False, "deleted"))
        elif before.body != after.body:
            edits = _edits(before.body.get("spec"), after.body.get("spec"), before.body, after.body)
            changes.append(ObjectChange(after.ref, "updated", False, _join(edits, [])))
    return changes


# --- helpers --------------------------------------------------------------------------------


def _edits(old_spec: Any, new_spec: Any, old_body: Mapping, new_body: Mapping) -> list[str]:
    """What an edit touched: "spec changed", "metadata changed", or "changed outside spec"
    (any other top-level field)."""
    edits = []
    if old_spec != new_spec:
        edits.append("spec changed")
    if old_body.get("metadata") != new_body.get("metadata"):
        edits.append("metadata changed")
    if not edits and old_body != new_body:
        edits.append("changed outside spec")
    return edits


def _own_triggers(
    edits: list[str], old_labels: Mapping[str, str], new_labels: Mapping[str, str]
) -> list[str]:
    """Why an object re-runs by itself: a spec edit (§1.7), the manual-reconciliation label
    appearing, or the paused label going away (§4.7)."""
    triggers = [e for e in edits if e == "spec changed"]
    if _newly_true(old_labels, new_labels, MANUAL_RECONCILIATION_LABEL):
        triggers.append("manual reconciliation")
    if _paused(old_labels) and not _paused(new_labels):
        triggers.append("unpaused")
    return triggers


def _merge(edits: list[str], triggers: list[str]) -> list[str]:
    return edits + [t for t in triggers if t not in edits]


def _promise_blockers(promise: Promise) -> list[str]:
    return ["paused"] if _paused(promise.labels) else []


def _request_blockers(request: ResourceRequest, promise: Promise | None) -> list[str]:
    if promise is None:
        return [f"waiting for Promise {request.promise}"]
    blockers = []
    if _paused(request.labels):
        blockers.append("paused")
    if _paused(promise.labels):
        blockers.append(f"Promise {promise.name} paused")
    return blockers


def _deleted(ref: Ref, paused: bool) -> ObjectChange:
    return ObjectChange(ref, "deleted", not paused, "deleted; paused" if paused else "deleted")


def _kind(old_body: Mapping, new_body: Mapping) -> Change:
    return "unchanged" if old_body == new_body else "updated"


def _paused(labels: Mapping[str, str]) -> bool:
    return labels.get(PAUSED_LABEL) == "true"


def _labels(promise: Promise | None) -> dict[str, str]:
    return promise.labels if promise is not None else {}


def _newly_true(old: Mapping[str, str], new: Mapping[str, str], label: str) -> bool:
    return new.get(label) == "true" and old.get(label) != "true"


def _join(reasons: list[str], blockers: list[str]) -> str:
    return "; ".join(reasons + blockers)


def _by_ref(change: ObjectChange) -> Ref:
    return change.ref


def _listed(changes: Iterable[ObjectChange]) -> list[ObjectChange]:
    """Keep real changes and re-runs; drop untouched objects."""
    kept = [c for c in changes if c.change != "unchanged" or c.rerun]
    return sorted(kept, key=_by_ref)


def _to_run(changes: list[ObjectChange]) -> list[Ref]:
    return [c.ref for c in changes if c.rerun and c.change != "deleted"]


def _to_delete(changes: list[ObjectChange]) -> list[Ref]:
    return [c.ref for c in changes if c.rerun and c.change == "deleted"]


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _encode(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return "".join(_GO_ESCAPES.get(c, c) for c in text)
    if isinstance(value, Mapping):
        items = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{_encode(k)}:{_encode(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _go_float(value: float) -> str:
    """strconv.FormatFloat(f, 'f' or 'e', -1, 64) as encoding/json picks it: shortest digits,
    exponent form below 1e-6 and from 1e21, "e-07" tidied to "e-7"."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"JSON cannot encode {value}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return re.sub(r"e-0(\d)$", r"e-\1", repr(value))
    return format(Decimal(repr(value)).normalize(), "f")
