"""Which workflows one reconcile runs, and why (contract §1.7, §4.1-§4.7). Pure: no I/O. The one
place that decides it: bot.reconcile.changes only says what changed, bot.reconcile.phases asks
here for every object it looks at.

`kratix.io/paused: "true"` on an object or its Promise is checked first (`is_paused`): nothing
runs. Otherwise an object's configure workflow runs (`configure_reason`) when the cache key of
what determines its output differs from the key recorded in bookkeeping (Promise spec, request
spec, pipeline images — label-only edits never re-run, §1.7), when
`kratix.io/manual-reconciliation: "true"` newly appears on it or
`kratix.io/reconcile-resources: "true"` on its Promise, once after it (or its Promise) was
unpaused (§4.1 step 1, §4.4, §4.7), when a suspended workflow's `nextRetryAt` has passed
(§1.5c), or when its last run is older than the reconcile interval (§4.7, `due_for_periodic`).
Deleted objects run their delete pipeline (first one only, §1.1). Labels are read as Kratix
reads them: exactly "true" (`bot.kratix.labels.is_true`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.kratix.labels import MANUAL_RECONCILIATION_LABEL, PAUSED_LABEL, is_true
from bot.kratix.spechash import go_json, spec_hash
from bot.model.objects import Promise, Ref, ResourceRequest, WorkflowAction, WorkflowType
from bot.model.records import ObjectRecord

CREATED = "created"
SPEC_CHANGED = "spec changed"
MANUAL = "manual reconciliation"
RECONCILE_RESOURCES = "Promise reconcile-resources"
UNPAUSED = "unpaused"
RETRY_DUE = "retry due"
PERIODIC = "periodic reconcile"
DELETED = "deleted"

@dataclass(slots=True)
class Task:
    """One workflow run: object, workflow type/action, why, and where to resume."""

    ref: Ref
    promise: Promise
    wtype: WorkflowType
    action: WorkflowAction
    reason: str
    cache_key: str
    request: ResourceRequest | None = None
    start_at: int = 0  # index of the pipeline to resume from (§1.5c)

    @property
    def label(self) -> str:
        return f"{self.ref} {self.wtype}.{self.action} ({self.reason})"


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _images(promise: Promise, wtype: WorkflowType, action: WorkflowAction) -> list[str]:
    return [c.image for p in promise.pipelines(wtype, action) for c in p.containers]


def promise_cache_key(promise: Promise) -> str:
    """What determines a Promise's dependency outputs: Kratix's spec hash (the spec holds the
    static dependencies and the pipelines, §1.7) and the pipeline images."""
    return _digest("promise", spec_hash(promise), _images(promise, "promise", "configure"))


def request_cache_key(promise: Promise, req: ResourceRequest, promise_hash: str | None = None) -> str:
    """What determines a request's outputs: the Promise spec (so a Promise update re-runs every
    request, §4.2), the request spec (hashed as Kratix's `kratix.io/hash` does, §1.7) and the
    resource pipeline images. `promise_hash` (`spec_hash(promise)`) saves re-hashing the
    Promise for each of its requests."""
    return _digest("resource", promise_hash or spec_hash(promise), go_json(req.body.get("spec")).hex(),
                   _images(promise, "resource", "configure"))


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def due_for_periodic(last_run_epoch: float | None, now_epoch: float, interval_seconds: float) -> bool:
    """Whether a periodic full reconcile is due: never run yet, or `interval_seconds` passed.
    An interval of 0 or less disables it, as a zero interval does in Kratix (§3.8, §4.7)."""
    if interval_seconds <= 0:
        return False
    return last_run_epoch is None or now_epoch - last_run_epoch >= interval_seconds


def is_paused(promise: Promise | None, req: ResourceRequest | None = None) -> bool:
    """`kratix.io/paused: "true"` on the Promise or the request stops new workflows (§4.1 step 1,
    §4.4, §4.7); checked before anything else, so `configure_reason` is asked only for objects
    that are not paused. (A deleted object's delete workflow runs all the same: a deliberate
    deviation, docs/reconciler.md.)"""
    return bool(promise and is_true(promise.labels, PAUSED_LABEL)) or bool(
        req and is_true(req.labels, PAUSED_LABEL)
    )


def label_pending(labels: dict[str, str], label: str, answered: bool) -> bool:
    """Whether a once-per-appearance label (§4.7) asks for a run: it is "true" and the record's
    note (`answered`: ObjectRecord.manual_seen, .resources_seen) does not say it was acted on.
    promisebot cannot remove the label from Git as Kratix does, so the record notes it instead."""
    return is_true(labels, label) and not answered


def still_answered(labels: dict[str, str], label: str, answered: bool) -> bool:
    """The record's note that a label was acted on, kept only while the label is there: the
    note goes when the label goes, so removing and re-adding the label acts again."""
    return answered and is_true(labels, label)


def configure_reason(
    key: str,
    labels: dict[str, str],
    record: ObjectRecord | None,
    *,
    now: datetime,
    interval_seconds: float,
    periodic: bool,
    forced: str | None = None,
) -> tuple[str | None, int]:
    """(why the configure workflow runs, pipeline index to start at), or (None, 0) to skip.

    Called for objects that are not paused. The manual-reconciliation label triggers once per
    appearance (`label_pending`, note `manual_seen`), and so does an unpause: the object was
    reported paused (note `paused_seen`) and has not run since. `forced` is a reason to run
    from the start whatever the cache key says (a Promise's reconcile-resources label); like
    the manual label and an unpause it restarts a suspended workflow. A configure run clears
    `paused_seen` and answers the manual label (`bot.reconcile.run.fold_configure`).
    """
    if record is None or record.cache_key is None and not record.resume:
        return CREATED, 0
    if label_pending(labels, MANUAL_RECONCILIATION_LABEL, record.manual_seen):
        return MANUAL, 0
    if forced:
        return forced, 0
    if record.paused_seen:
        return UNPAUSED, 0
    resume = record.resume
    if resume:
        if resume.get("cacheKey") != key:
            return SPEC_CHANGED, 0
        due = parse_time(resume.get("nextRetryAt"))
        if due is not None and due <= now:
            return RETRY_DUE, int(resume.get("pipeline", 0))
        return None, 0  # suspended: waits for its retry time, a spec change or a manual reconcile
    if record.cache_key != key:
        return SPEC_CHANGED, 0
    last = parse_time(record.last_run)
    if periodic and due_for_periodic(last.timestamp() if last else None, now.timestamp(), interval_seconds):
        return PERIODIC, 0
    return None, 0


def now_utc() -> datetime:
    return datetime.now(UTC)
