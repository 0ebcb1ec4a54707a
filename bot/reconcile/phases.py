"""Which workflows each phase of a reconcile runs (contract §4), with the Kratix-owned status of
the objects that do not run (§6).

Phase 1: Promise configure workflows whose cache key changed (§4.1, §4.2) — after their
`requiredPromises` (§4.6) — and the delete workflows of deleted Promises (§4.3); static
dependencies become a Work with no container. Phase 2: request configure workflows of
*available* Promises (§4.4) — all of a Promise's requests once per appearance of its
`kratix.io/reconcile-resources: "true"` label (§4.7) — and the delete workflows of deleted
requests, including every request of a deleted Promise whose delete pipeline succeeded (§4.3,
§4.5).

`kratix.io/paused: "true"` is checked first (§4.1 step 1, §4.4): a paused Promise or request
(and every request of a paused Promise) runs nothing and is reported
`Reconciled=Unknown/PausedReconciliation`; its record notes it (`paused_seen`), so once the
label is gone its configure workflow runs from the start, once (`configure_reason`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.kratix import layout
from bot.kratix.conditions import (
    configure_succeeded,
    invalid,
    paused,
    promise_requirements,
    requirements_not_installed,
    unpaused,
    valid_again,
    waiting_for_promise,
)
from bot.kratix.labels import MANUAL_RECONCILIATION_LABEL, PROMISE_VERSION_LABEL, RECONCILE_RESOURCES_LABEL
from bot.kratix.spechash import spec_hash
from bot.model.objects import PROMISE, Platform, Promise, Ref, ResourceRequest
from bot.model.records import ObjectRecord
from bot.reconcile.context import RunContext
from bot.reconcile.decide import (
    DELETED,
    MANUAL,
    RECONCILE_RESOURCES,
    Task,
    configure_reason,
    is_paused,
    label_pending,
    promise_cache_key,
    request_cache_key,
    still_answered,
)
from bot.reconcile.run import Outcome

INSTALLED = "Requirement installed"


@dataclass(slots=True)
class PromisePhase:
    """Phase 1's tasks and what phase 2 needs to know about each Promise."""

    tasks: list[Task] = field(default_factory=list)
    available: set[str] = field(default_factory=set)  # requests may run
    blocked: set[str] = field(default_factory=set)  # requiredPromises not fulfilled
    failed_deletes: set[str] = field(default_factory=set)  # their requests stay
    reconcile_resources: set[str] = field(default_factory=set)  # all their requests run (§4.7)
    paused: set[str] = field(default_factory=set)  # all their requests are paused too (§4.4)

    def absorb(self, outcomes: list[Outcome]) -> None:
        """Phase 1's results: a succeeded configure makes its Promise available."""
        for outcome in outcomes:
            task = outcome.task
            if task.action == "configure" and outcome.succeeded:
                self.available.add(task.promise.name)
            elif task.action == "delete" and not outcome.succeeded:
                self.failed_deletes.add(task.promise.name)


def requirement_states(platform: Platform, promise: Promise) -> list[dict[str, str]]:
    """`status.requiredPromises` of a Promise (§4.6): each required Promise at its version."""
    states = []
    for req in promise.required_promises:
        name, version = req.get("name", ""), req.get("version", "")
        dep = platform.promises.get(name)
        if dep is None:
            state = "Requirement not installed"
        elif version and dep.labels.get(PROMISE_VERSION_LABEL, "") != version:
            state = "Requirement not installed at the specified version"
        else:
            state = INSTALLED
        states.append({"name": name, "version": version, "state": state})
    return states


def _reason(ctx: RunContext, key: str, labels: dict[str, str], rec: ObjectRecord,
            forced: str | None = None) -> tuple[str | None, int]:
    rec.manual_seen = still_answered(labels, MANUAL_RECONCILIATION_LABEL, rec.manual_seen)
    if rec.ref in ctx.rerun:
        forced = forced or MANUAL  # `rerun`: a manual reconciliation asked for without a commit
    return configure_reason(key, labels, rec, now=ctx.now, interval_seconds=ctx.settings.reconcile_interval_seconds,
                            periodic=ctx.full, forced=forced)


def _pause(rec: ObjectRecord) -> None:
    """Report the object paused and note it, so that unpausing it runs it again (§4.7)."""
    rec.status = paused(rec.status)
    rec.paused_seen = True


def _answer_unpause(rec: ObjectRecord) -> None:
    """An unpaused object with no configure workflow to run: the pause is answered."""
    if rec.paused_seen:
        rec.paused_seen = False
        rec.status = unpaused(rec.status)


def plan_promises(ctx: RunContext) -> PromisePhase:
    """Phase 1: returns the Promise workflows to run and what phase 2 needs to know of each
    Promise. On the way it updates, in the run's records and Works (which the layout lays out and
    bookkeeping keeps), what needs no pipeline: each Promise's body, requirements, pause and
    label notes, its static dependencies Work, the Works and cache key of a Promise without a
    configure workflow, and forgets a deleted Promise without a delete workflow."""
    phase = PromisePhase()
    for promise in sorted(ctx.after.promises.values(), key=lambda p: p.name):
        rec = ctx.record(promise.ref)
        rec.body = promise.body
        if promise.api:
            rec.request_kind = promise.api.request_kind
        rec.resources_seen = still_answered(promise.labels, RECONCILE_RESOURCES_LABEL, rec.resources_seen)
        if label_pending(promise.labels, RECONCILE_RESOURCES_LABEL, rec.resources_seen):
            phase.reconcile_resources.add(promise.name)
        if is_paused(promise):
            _pause(rec)
            phase.paused.add(promise.name)
            continue
        states = requirement_states(ctx.after, promise)
        rec.status = promise_requirements(rec.status, states)
        if any(s["state"] != INSTALLED for s in states):
            phase.blocked.add(promise.name)
            continue
        works = ctx.owned(promise.ref)
        static = layout.static_dependencies_work(promise)
        if static:
            works[static.key] = static
        else:
            works.pop(f"{promise.name}/static", None)
        key = promise_cache_key(promise)
        if not promise.pipelines("promise", "configure"):
            for k in [k for k, w in works.items() if w.pipeline]:
                del works[k]
            rec.cache_key = key
            _answer_unpause(rec)
            phase.available.add(promise.name)
            continue
        reason, start = _reason(ctx, key, promise.labels, rec)
        if reason:
            phase.tasks.append(Task(promise.ref, promise, "promise", "configure", reason, key, start_at=start))
        elif configure_succeeded(rec.status):
            phase.available.add(promise.name)
    for ref in ctx.bk.refs(PROMISE):
        if ref.name in ctx.after.promises:
            continue
        old = ctx.rebuild(ctx.record(ref).body or {}).promises.get(ref.name)
        if old is not None and old.pipelines("promise", "delete"):
            phase.tasks.append(Task(ref, old, "promise", "delete", DELETED, ""))
        else:
            ctx.forget(ref)
    return phase


def _deleted_request_refs(ctx: RunContext, candidates: set[Ref] | None) -> list[Ref]:
    """Recorded requests no longer in the platform: deleted ones, and every request of a
    deleted Promise (§4.3 step 3)."""
    gone = {r.name for r in ctx.bk.refs(PROMISE) if r.name not in ctx.after.promises}
    kinds = {p.api.request_kind: p.name for p in ctx.after.promises.values() if p.api}
    for name in gone:
        kind = ctx.record(Ref(PROMISE, name)).request_kind
        if kind:
            kinds[kind] = name
    out: set[Ref] = set()
    for kind, promise_name in sorted(kinds.items()):
        if candidates is None or promise_name in gone:
            out |= {r for r in ctx.bk.refs(kind) if r not in ctx.after.requests}
    if candidates is not None:
        out |= {r for r in candidates if r.kind in kinds and r not in ctx.after.requests and ctx.bk.has(r)}
    return sorted(out)


def _configure_task(ctx: RunContext, req: ResourceRequest, promise: Promise, phase: PromisePhase,
                    promise_hash: str) -> Task | None:
    """The request's configure task, or None (its status says why it does not run)."""
    rec = ctx.record(req.ref)
    problems = ctx.screening.invalid.get(req.ref)
    if problems:  # validation rejects it: nothing runs, its previous outputs stay
        rec.status = invalid(rec.status, [f"{p.field}: {p.message}" if p.field else p.message for p in problems])
        rec.promise, rec.file = req.promise, req.source.file
        rec.invalid = True
        ctx.attention.add(req.ref)
        return None
    rec.body, rec.promise, rec.file = req.body, req.promise, req.source.file
    if rec.invalid:
        rec.invalid = False
        rec.status = valid_again(rec.status)
    if is_paused(promise, req):
        _pause(rec)
    elif req.promise in phase.blocked:
        rec.status = requirements_not_installed(rec.status)
    elif req.promise not in phase.available:
        rec.status = waiting_for_promise(rec.status, req.promise, "its configure workflow has not succeeded")
    else:
        key = request_cache_key(promise, req, promise_hash)
        if not promise.pipelines("resource", "configure"):
            if rec.works:
                ctx.owned(req.ref).clear()
            rec.cache_key = key
            _answer_unpause(rec)
            return None
        forced = RECONCILE_RESOURCES if promise.name in phase.reconcile_resources else None
        reason, start = _reason(ctx, key, req.labels, rec, forced)
        if reason:
            return Task(req.ref, promise, "resource", "configure", reason, key, request=req, start_at=start)
        if rec.resume and rec.resume.get("nextRetryAt"):
            ctx.attention.add(req.ref)  # a retry not due yet: a later event must still find it (§1.5c)
        return None
    ctx.attention.add(req.ref)  # paused, blocked or waiting: look again on the next event
    return None


def plan_requests(ctx: RunContext, candidates: set[Ref] | None, phase: PromisePhase) -> list[Task]:
    """Phase 2, after phase 1's runs (`phase`, absorbed): returns the request workflows to run.
    Like phase 1 it updates in the run's records and Works what needs no pipeline: each request's
    body, file, validity and pause, why it waits, the Works of a request without a configure
    workflow, and forgets a deleted request without a delete workflow."""
    tasks: list[Task] = []
    promise_hashes: dict[str, str] = {}
    # Every request of a Promise whose reconcile-resources label is pending, or that is paused,
    # is looked at. The label appearing changed the Promise's file, so the whole platform was
    # read; a request that could not run then (paused, Promise not available) asked for another
    # look, so it is read now.
    sweep = phase.reconcile_resources | phase.paused
    looked_at = [r for r in ctx.after.requests.values()
                 if candidates is None or r.ref in candidates or r.promise in sweep]
    ctx.load_records(r.ref for r in looked_at)  # one read
    for req in sorted(looked_at, key=lambda r: r.ref):
        promise = ctx.after.promises.get(req.promise)
        if promise is None:
            continue
        if promise.name not in promise_hashes:
            promise_hashes[promise.name] = spec_hash(promise)
        task = _configure_task(ctx, req, promise, phase, promise_hashes[promise.name])
        if task:
            tasks.append(task)
    for name in phase.reconcile_resources & phase.available:  # its requests were planned: done
        ctx.record(Ref(PROMISE, name)).resources_seen = True
    for ref in _deleted_request_refs(ctx, candidates):
        rec = ctx.record(ref)
        promise_name = rec.promise or ""
        if promise_name in phase.failed_deletes:
            continue  # §4.3: requests are deleted only after the promise delete pipeline
        promise = ctx.after.promises.get(promise_name)
        promise_body = promise.body if promise else ctx.record(Ref(PROMISE, promise_name)).body
        rebuilt = ctx.rebuild(promise_body or {}, rec.body or {})
        old_promise, old_req = rebuilt.promises.get(promise_name), rebuilt.requests.get(ref)
        if old_promise and old_req and old_promise.pipelines("resource", "delete"):
            tasks.append(Task(ref, old_promise, "resource", "delete", DELETED, "", request=old_req))
        else:
            ctx.forget(ref)
    return tasks
